/* The kernels for AVX-512 F/DQ/BW/VL (16 lanes). */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))), apply_to = function)

typedef __m512 V;
typedef __m512d DV;
#define W 16
#define FN(name) name##_avx512

AX_INLINE V v_set1(float a) { return _mm512_set1_ps(a); }
AX_INLINE V v_load(const float *p) { return _mm512_loadu_ps(p); }
AX_INLINE void v_store(float *p, V v) { _mm512_storeu_ps(p, v); }
AX_INLINE V v_add(V a, V b) { return _mm512_add_ps(a, b); }
AX_INLINE V v_sub(V a, V b) { return _mm512_sub_ps(a, b); }
AX_INLINE V v_mul(V a, V b) { return _mm512_mul_ps(a, b); }
AX_INLINE V v_div(V a, V b) { return _mm512_div_ps(a, b); }
AX_INLINE V v_fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
AX_INLINE V v_fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
AX_INLINE V v_max(V a, V b) { return _mm512_max_ps(a, b); }
AX_INLINE V v_min(V a, V b) { return _mm512_min_ps(a, b); }
AX_INLINE V v_round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
AX_INLINE V v_scale2n(V p, V n) {
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}
AX_INLINE V v_zero_below(V y, V x, V lo) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ), y); }
AX_INLINE float v_hsum(V a) { return _mm512_reduce_add_ps(a); }
AX_INLINE float v_hmax(V a) { return _mm512_reduce_max_ps(a); }
AX_INLINE DV dv_zero(void) { return _mm512_setzero_pd(); }
AX_INLINE void v_sums(V x, DV *s, DV *ss) {
  __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
  __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  *s = _mm512_add_pd(*s, _mm512_add_pd(lo, hi));
  *ss = _mm512_fmadd_pd(lo, lo, _mm512_fmadd_pd(hi, hi, *ss));
}
AX_INLINE double dv_hsum(DV a) { return _mm512_reduce_add_pd(a); }

/* The sums of four vectors' lanes, in one reduction tree: out[t] = Σ lanes of v_t. */
AX_INLINE void v_hsum4(V a, V b, V c, V d, float *out) {
  __m256 h[4], x[4] = {_mm512_castps512_ps256(a), _mm512_castps512_ps256(b), _mm512_castps512_ps256(c),
                       _mm512_castps512_ps256(d)};
  V v[4] = {a, b, c, d};
  for (int t = 0; t < 4; t++) h[t] = _mm256_add_ps(x[t], _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[t]), 1)));
  __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
}

/* The scalar step of the tails, rounded as the vector FMA is. */
AX_INLINE float s_fmadd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

#include "kernels_body.h"

#pragma clang attribute pop
#endif
