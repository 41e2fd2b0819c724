/* The block-format kernels for AVX2 + FMA + F16C: integer dot products with vpmaddubsw
 * (unsigned weights × signed activations, int16 pairs) and vpmaddwd. */
#include "quant_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)

#define FNQ(name) axq_##name##_avx2


AXQ_INLINE __m256i dot_us_avx2(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
AXQ_INLINE __m256i madd_acc_avx2(__m256i acc, __m256i p, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
}
/* Byte i = 0xFF when bit i is set: byte i/8 of the bits spread over each 8 bytes, then every
 * bit but bit i%8 forced on, then compared with all-ones. */
AXQ_INLINE __m256i bits32_avx2(uint32_t bits) {
  const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
  v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

#define DOT_US(acc, u, s) dot_us_avx2(acc, u, s)
#define MADD_ACC(acc, p, s) madd_acc_avx2(acc, p, s)
#define BITS32(bits) bits32_avx2(bits)

#include "quant_x86_body.h"
#include "quant_x86_driver.h"

#pragma clang attribute pop
#endif
