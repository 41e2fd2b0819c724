/* Run-time choice of the instruction set for the kernels in this target. */
#include "attnax_kernels.h"
#include "kernels_internal.h"

#include <stdlib.h>
#include <string.h>

static int supported_level(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return AX_LEVEL_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return AX_LEVEL_AVX2;
#endif
  return AX_LEVEL_PORTABLE;
}

#define AX_TABLE(S, L, NAME)                                                                     \
  {L, NAME, exp_shift_sum_##S, row_max_##S, scale_##S, bias_act_##S, glu_##S, bias_residual_##S, \
   norm_rows_##S, stream_sum_##S, linear_rows_##S, rows_times_##S, key_scores_##S, value_sums_##S}

static const ax_kernel_table tables[] = {
    AX_TABLE(portable, AX_LEVEL_PORTABLE, "portable"),
#if defined(__x86_64__)
    AX_TABLE(avx2, AX_LEVEL_AVX2, "avx2"),
    AX_TABLE(avx512, AX_LEVEL_AVX512, "avx512"),
#endif
};

const ax_kernel_table *ax_kernels_at(int level) {
  int top = supported_level();
  return &tables[level < 0 ? 0 : (level > top ? top : level)];
}

/* Chosen once; racing first calls from several threads store the same value. */
static const ax_kernel_table *volatile current = 0;

static const ax_kernel_table *table(void) {
  const ax_kernel_table *t = current;
  if (!t) {
    int level = supported_level();
    const char *env = getenv("ATTNAX_SIMD");
    if (env && strcmp(env, "portable") == 0) level = AX_LEVEL_PORTABLE;
    else if (env && strcmp(env, "avx2") == 0 && level > AX_LEVEL_AVX2) level = AX_LEVEL_AVX2;
    current = t = ax_kernels_at(level);
  }
  return t;
}

int ax_simd_level(void) { return table()->level; }

const char *ax_simd_name(void) { return table()->name; }

float ax_exp_shift_sum(float *row, long n, float shift) { return table()->exp_shift_sum(row, n, shift); }

float ax_row_max(const float *row, long n, float floor) { return table()->row_max(row, n, floor); }

void ax_scale(float *x, long n, float a) { table()->scale(x, n, a); }

float ax_stream_sum(const float *x, long n) { return table()->stream_sum(x, n); }

void ax_bias_act(float *y, const float *bias, long rows, long cols, int act) {
  table()->bias_act(y, bias, rows, cols, act);
}

void ax_glu(float *gate, const float *gb, const float *up, const float *ub, long rows, long cols, int act) {
  table()->glu(gate, gb, up, ub, rows, cols, act);
}

void ax_bias_residual(float *y, const float *bias, const float *residual, long rows, long cols) {
  table()->bias_residual(y, bias, residual, rows, cols);
}

void ax_norm_rows(const float *x, float *out, long rows, long d, const float *scale, const float *bias,
                  float eps, int rms) {
  table()->norm_rows(x, out, rows, d, scale, bias, eps, rms);
}

void ax_linear_rows(const float *x, long m, long k, long ldx, const float *w, long ldw, long n, float *y, long ldy) {
  table()->linear_rows(x, m, k, ldx, w, ldw, n, y, ldy);
}

void ax_rows_times(const float *p, long m, long k, long ldp, const float *v, long ldv, long n, float *y, long ldy) {
  table()->rows_times(p, m, k, ldp, v, ldv, n, y, ldy);
}

void ax_key_scores(const float *q, long m, long d, long ldq, const long *kv, const float *k, long ldk, long n,
                   float *s, long lds) {
  table()->key_scores(q, m, d, ldq, kv, k, ldk, n, s, lds);
}

void ax_value_sums(const float *p, long m, long n, long ldp, const long *kv, const float *v, long ldv, long d,
                   float *y, long ldy) {
  table()->value_sums(p, m, n, ldp, kv, v, ldv, d, y, ldy);
}
