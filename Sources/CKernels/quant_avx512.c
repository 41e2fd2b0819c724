/* The block-format kernels for AVX-512 (F/BW/VL) with VNNI: vpdpbusd (u8 × s8 sums of 4 into
 * int32, no int16 saturation) for the 32-element formats, vpdpwssd to scale the K-quants'
 * int16 pair sums, and mask registers for Q5's fifth bits. */
#include "quant_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)

#define FNQ(name) axq_##name##_avx512

#define DOT_US(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#define MADD_ACC(acc, p, s) _mm256_dpwssd_epi32(acc, p, s)
#define BITS32(bits) _mm256_movm_epi8((__mmask32)(bits))

#include "quant_x86_body.h"

#pragma clang attribute pop
#endif
