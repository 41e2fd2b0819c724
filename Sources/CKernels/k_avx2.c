/* The kernels for AVX2 + FMA (8 lanes). */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)

typedef __m256 V;
typedef __m256d DV;
#define W 8
#define FN(name) name##_avx2

AX_INLINE V v_set1(float a) { return _mm256_set1_ps(a); }
AX_INLINE V v_load(const float *p) { return _mm256_loadu_ps(p); }
AX_INLINE void v_store(float *p, V v) { _mm256_storeu_ps(p, v); }
AX_INLINE V v_add(V a, V b) { return _mm256_add_ps(a, b); }
AX_INLINE V v_sub(V a, V b) { return _mm256_sub_ps(a, b); }
AX_INLINE V v_mul(V a, V b) { return _mm256_mul_ps(a, b); }
AX_INLINE V v_div(V a, V b) { return _mm256_div_ps(a, b); }
AX_INLINE V v_fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
AX_INLINE V v_fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
AX_INLINE V v_max(V a, V b) { return _mm256_max_ps(a, b); }
AX_INLINE V v_min(V a, V b) { return _mm256_min_ps(a, b); }
AX_INLINE V v_round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
AX_INLINE V v_scale2n(V p, V n) {
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
AX_INLINE V v_zero_below(V y, V x, V lo) { return _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_NLT_UQ)); }
AX_INLINE float v_hsum(V a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
AX_INLINE float v_hmax(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
AX_INLINE DV dv_zero(void) { return _mm256_setzero_pd(); }
AX_INLINE void v_sums(V x, DV *s, DV *ss) {
  __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
  *s = _mm256_add_pd(*s, _mm256_add_pd(lo, hi));
  *ss = _mm256_fmadd_pd(lo, lo, _mm256_fmadd_pd(hi, hi, *ss));
}
AX_INLINE double dv_hsum(DV a) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* The sums of four vectors' lanes, in one reduction tree: out[t] = Σ lanes of v_t. */
AX_INLINE void v_hsum4(V a, V b, V c, V d, float *out) {
  __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
}

/* The scalar step of the tails, rounded as the vector FMA is. */
AX_INLINE float s_fmadd(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

#include "kernels_body.h"

#pragma clang attribute pop
#endif
