/* Shared by the three builds of the kernels: levels, prototypes and the scalar helpers that
 * handle tails (and are the whole computation in the portable build). */
#ifndef ATTNAX_KERNELS_INTERNAL_H
#define ATTNAX_KERNELS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Helpers are always inlined, also in debug builds (-O0), where a call per vector op would be slow. */
#define AX_INLINE static inline __attribute__((always_inline))

enum { AX_LEVEL_PORTABLE = 0, AX_LEVEL_AVX2 = 1, AX_LEVEL_AVX512 = 2 };

#define AX_DECLARE(S)                                                                            \
  float exp_shift_sum_##S(float *row, long n, float shift);                                      \
  float row_max_##S(const float *row, long n, float floor);                                      \
  void scale_##S(float *x, long n, float a);                                                     \
  float stream_sum_##S(const float *x, long n);                                                  \
  void bias_act_##S(float *y, const float *bias, long rows, long cols, int act);                 \
  void glu_##S(float *gate, const float *gb, const float *up, const float *ub, long rows,        \
               long cols, int act);                                                              \
  void bias_residual_##S(float *y, const float *bias, const float *residual, long rows,          \
                         long cols);                                                             \
  void norm_rows_##S(const float *x, float *out, long rows, long d, const float *scale,          \
                     const float *bias, float eps, int rms);                                     \
  void linear_rows_##S(const float *x, long m, long k, long ldx, const float *w, long ldw,       \
                       long n, float *y, long ldy);                                              \
  void rows_times_##S(const float *p, long m, long k, long ldp, const float *v, long ldv, long n, \
                      float *y, long ldy);                                                       \
  void key_scores_##S(const float *q, long m, long d, long ldq, const long *kv, const float *k,   \
                      long ldk, long n, float *s, long lds);                                     \
  void value_sums_##S(const float *p, long m, long n, long ldp, const long *kv, const float *v,   \
                      long ldv, long d, float *y, long ldy);

AX_DECLARE(portable)
#if defined(__x86_64__)
AX_DECLARE(avx2)
AX_DECLARE(avx512)
#endif

/* exp(x) as 2^n * p(r), r = x - n ln2 (Cephes expf: degree-6 polynomial, <= 2 ulp on
 * [-87.3, 88.4]); below -87.34 (where float32 exp underflows) exactly 0, NaN stays NaN. */
#define AX_EXP_LO (-87.3365447504f)
#define AX_EXP_HI (88.3762626647949f)
#define AX_LOG2E (1.44269504088896341f)
#define AX_LN2_HI (0.693359375f)
#define AX_LN2_LO (-2.12194440e-4f)
#define AX_P0 (1.9875691500e-4f)
#define AX_P1 (1.3981999507e-3f)
#define AX_P2 (8.3334519073e-3f)
#define AX_P3 (4.1665795894e-2f)
#define AX_P4 (1.6666665459e-1f)
#define AX_P5 (5.0000001201e-1f)
#define AX_GELU_C (0.7978845608028654f) /* sqrt(2/pi) */
#define AX_GELU_A (0.044715f)
#define AX_SQRT1_2 (0.7071067811865476f)
/* erf as x·P(x²)/Q(x²) on [-4, 4] (±1 beyond, in float32): the rational approximation XLA and
 * Eigen use for float erf (about 1e-7 absolute error). */
#define AX_ERF_A1 (-1.60960333262415e-02f)
#define AX_ERF_A3 (-2.95459980854025e-03f)
#define AX_ERF_A5 (-7.34990630326855e-04f)
#define AX_ERF_A7 (-5.69250639462346e-05f)
#define AX_ERF_A9 (-2.10102402082508e-06f)
#define AX_ERF_A11 (2.77068142495902e-08f)
#define AX_ERF_A13 (-2.72614225801306e-10f)
#define AX_ERF_B0 (-1.42647390514189e-02f)
#define AX_ERF_B2 (-7.37332916720468e-03f)
#define AX_ERF_B4 (-1.68282697438203e-03f)
#define AX_ERF_B6 (-2.13374055278905e-04f)
#define AX_ERF_B8 (-1.45660718464996e-05f)

AX_INLINE float s_erf(float x) {
  x = x > 4 ? 4 : (x < -4 ? -4 : x);
  float x2 = x * x;
  float p = AX_ERF_A13;
  p = p * x2 + AX_ERF_A11;
  p = p * x2 + AX_ERF_A9;
  p = p * x2 + AX_ERF_A7;
  p = p * x2 + AX_ERF_A5;
  p = p * x2 + AX_ERF_A3;
  p = p * x2 + AX_ERF_A1;
  float q = AX_ERF_B8;
  q = q * x2 + AX_ERF_B6;
  q = q * x2 + AX_ERF_B4;
  q = q * x2 + AX_ERF_B2;
  q = q * x2 + AX_ERF_B0;
  return x * p / q;
}

AX_INLINE float s_exp(float x) {
  if (x != x) return x;
  if (x < AX_EXP_LO) return 0;
  float xc = x > AX_EXP_HI ? AX_EXP_HI : x;
  float n = __builtin_rintf(xc * AX_LOG2E);
  float r = xc - n * AX_LN2_HI;
  r = r - n * AX_LN2_LO;
  float p = AX_P0;
  p = p * r + AX_P1;
  p = p * r + AX_P2;
  p = p * r + AX_P3;
  p = p * r + AX_P4;
  p = p * r + AX_P5;
  p = p * (r * r) + r + 1;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* The activations, written as x * sigmoid: GELU (tanh form) = x / (1 + e^(-2u)),
 * u = sqrt(2/pi) (x + 0.044715 x^3); SiLU = x / (1 + e^(-x)); ReLU = max(x, 0) keeping -0 and NaN;
 * exact GELU = x/2 (1 + erf(x / sqrt 2)). */
AX_INLINE float s_act(float x, int act) {
  switch (act) {
  case 1: return x < 0 ? 0 : x;
  case 2: return x / (1 + s_exp(-x));
  case 3: {
    float u = AX_GELU_C * (x + AX_GELU_A * x * x * x);
    return x / (1 + s_exp(-2 * u));
  }
  case 4: return 0.5f * x * (1 + s_erf(x * AX_SQRT1_2));
  default: return x;
  }
}

#endif
