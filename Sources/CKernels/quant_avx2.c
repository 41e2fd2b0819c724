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

/* The group primitives of quant_x86_group.h: 8 blocks per group, vector i holding block i.
 * Q8_0 keeps its signed weights: the signs move onto x (vpmaddubsw would saturate on w + 128). */
#define AXQ_G 8
#define GRP_Q8_OFFSET 0
typedef __m256i grp_i;
typedef __m256i grp_q;
typedef __m256 grp_f;

AXQ_INLINE void grp_unpack(int type, const uint8_t *w, long bb, int t, __m256i *q) {
  for (int i = 0; i < 8; i++) {
    const uint8_t *p = w + i * bb;
    if (i >= t) { q[i] = _mm256_setzero_si256(); continue; }
    switch (type) {
    case AX_T_Q4_0: q[i] = nib32(p + 2); break;
    case AX_T_Q4_1: q[i] = nib32(p + 4); break;
    case AX_T_Q5_0: q[i] = _mm256_or_si256(nib32(p + 6), _mm256_and_si256(BITS32(axq_u32(p + 2)), bytes_set(16))); break;
    case AX_T_Q5_1: q[i] = _mm256_or_si256(nib32(p + 8), _mm256_and_si256(BITS32(axq_u32(p + 4)), bytes_set(16))); break;
    default: q[i] = ld256(p + 2); break; /* Q8_0 */
    }
  }
}

AXQ_INLINE __m256i grp_dot(int type, __m256i q, const int8_t *x) {
  __m256i v = ld256(x);
  if (type == AX_T_Q8_0) return DOT_US(_mm256_setzero_si256(), _mm256_abs_epi8(q), _mm256_sign_epi8(v, q));
  return DOT_US(_mm256_setzero_si256(), q, v);
}

AXQ_INLINE __m256i fold32(__m256i a, __m256i b) { return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b)); }
AXQ_INLINE __m256i fold64(__m256i a, __m256i b) { return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b)); }

/* v[i]: block i's 8 lanes -> lane i: after two folds each 128-bit lane holds its half of blocks
 * 0-3 (or 4-7), in order; the halves are then added. */
AXQ_INLINE __m256i grp_reduce(const __m256i *v) {
  __m256i t0 = fold64(fold32(v[0], v[1]), fold32(v[2], v[3])), t1 = fold64(fold32(v[4], v[5]), fold32(v[6], v[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(t0, t1, 0x20), _mm256_permute2x128_si256(t0, t1, 0x31));
}

/* All-ones in lanes < t. */
AXQ_INLINE __m256i grp_mask(int t) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(t), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

/* The 4 bytes at the start of each of t blocks (float16 d, then m for Q4_1 / Q5_1); lanes past t
 * read block 0 again (their products are masked). */
AXQ_INLINE void grp_scales(int type, const uint8_t *w, long bb, int t, __m256 *d, __m256 *m) {
  (void)type;
  __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  if (t < AXQ_G) lane = _mm256_and_si256(lane, grp_mask(t));
  __m256i g = _mm256_i32gather_epi32((const int *)w, _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)bb)), 1);
  __m256i lo = _mm256_and_si256(g, _mm256_set1_epi32(0xffff)), hi = _mm256_srli_epi32(g, 16);
  *d = _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1)));
  *m = _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1)));
}

AXQ_INLINE __m256i grp_load_i(const int32_t *p, int t) {
  return t == AXQ_G ? ld256(p) : _mm256_maskload_epi32(p, grp_mask(t));
}
AXQ_INLINE __m256 grp_load_f(const float *p, int t) {
  return t == AXQ_G ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, grp_mask(t));
}
AXQ_INLINE __m256 grp_fma(__m256 a, __m256 b, __m256 c, int t) {
  __m256 r = _mm256_fmadd_ps(a, b, c);
  return t == AXQ_G ? r : _mm256_blendv_ps(c, r, _mm256_castsi256_ps(grp_mask(t)));
}
AXQ_INLINE void grp_hsum_rows(const __m256 *acc, int mr, float *out) {
  for (int r = 0; r < mr; r++) out[r] = hsum8(acc[r]);
}
AXQ_INLINE __m256i grp_zero_i(void) { return _mm256_setzero_si256(); }
AXQ_INLINE __m256 grp_zero_f(void) { return _mm256_setzero_ps(); }
AXQ_INLINE __m256i grp_sub_i(__m256i a, __m256i b) { return _mm256_sub_epi32(a, b); }
AXQ_INLINE __m256i grp_shl_i(__m256i a, int bits) { return _mm256_slli_epi32(a, bits); }
AXQ_INLINE __m256 grp_mul_f(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
AXQ_INLINE __m256 grp_cvt(__m256i a) { return _mm256_cvtepi32_ps(a); }

#include "quant_x86_driver.h"

#pragma clang attribute pop
#endif
