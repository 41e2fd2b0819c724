/* The kernels in plain C, for CPUs without AVX2+FMA (and as the tests' reference path). */
#include "kernels_internal.h"

typedef float V;
typedef double DV;
#define W 1
#define FN(name) name##_portable

AX_INLINE V v_set1(float a) { return a; }
AX_INLINE V v_load(const float *p) { return *p; }
AX_INLINE void v_store(float *p, V v) { *p = v; }
AX_INLINE V v_add(V a, V b) { return a + b; }
AX_INLINE V v_sub(V a, V b) { return a - b; }
AX_INLINE V v_mul(V a, V b) { return a * b; }
AX_INLINE V v_div(V a, V b) { return a / b; }
AX_INLINE V v_fmadd(V a, V b, V c) { return a * b + c; }
AX_INLINE V v_fnmadd(V a, V b, V c) { return c - a * b; }
/* max/min keep the second argument when unordered, as maxps/minps do. */
AX_INLINE V v_max(V a, V b) { return a > b ? a : b; }
AX_INLINE V v_min(V a, V b) { return a < b ? a : b; }
AX_INLINE V v_round(V a) { return __builtin_rintf(a); }
AX_INLINE V v_scale2n(V p, V n) {
  int32_t bits = ((int32_t)n + 127) << 23;
  float s;
  memcpy(&s, &bits, sizeof s);
  return p * s;
}
AX_INLINE V v_zero_below(V y, V x, V lo) { return x < lo ? 0 : y; }
AX_INLINE float v_hsum(V a) { return a; }
AX_INLINE float v_hmax(V a) { return a; }
AX_INLINE DV dv_zero(void) { return 0; }
AX_INLINE void v_sums(V x, DV *s, DV *ss) { double v = x; *s += v; *ss += v * v; }
AX_INLINE double dv_hsum(DV a) { return a; }

/* The sums of four vectors' lanes: out[t] = v_t. */
AX_INLINE void v_hsum4(V a, V b, V c, V d, float *out) { out[0] = a; out[1] = b; out[2] = c; out[3] = d; }

/* The scalar step of the tails, rounded as the vector FMA is. */
AX_INLINE float s_fmadd(float a, float b, float c) { return a * b + c; }

#include "kernels_body.h"
