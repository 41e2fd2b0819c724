/* Run-time choice of the instruction set for the block-format kernels (attnax_quant.h), as
 * dispatch.c does for attnax_kernels.h. Level 2 needs AVX-512 F/BW/VL and VNNI (vpdpbusd,
 * vpdpwssd); level 1 AVX2, FMA and F16C. */
#include "quant_internal.h"

#include <stdlib.h>
#include <string.h>

static int supported_level(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    return AXQ_AVX512;
  if (avx2) return AXQ_AVX2;
#endif
  return AXQ_PORTABLE;
}

#define AXQ_TABLE(S, L, NAME) {L, NAME, axq_quantize_act_rows, axq_linear_rows_##S, axq_dequantize_rows_##S}

static const ax_quant_table tables[] = {
    AXQ_TABLE(portable, AXQ_PORTABLE, "portable"),
#if defined(__x86_64__)
    AXQ_TABLE(avx2, AXQ_AVX2, "avx2"),
    AXQ_TABLE(avx512, AXQ_AVX512, "avx512vnni"),
#endif
};

const ax_quant_table *ax_quant_kernels_at(int level) {
  int top = supported_level();
  return &tables[level < 0 ? 0 : (level > top ? top : level)];
}

/* Chosen once; racing first calls from several threads store the same value. */
static const ax_quant_table *volatile current = 0;

static const ax_quant_table *table(void) {
  const ax_quant_table *t = current;
  if (!t) {
    int level = supported_level();
    const char *env = getenv("ATTNAX_SIMD");
    if (env && strcmp(env, "portable") == 0) level = AXQ_PORTABLE;
    else if (env && strcmp(env, "avx2") == 0 && level > AXQ_AVX2) level = AXQ_AVX2;
    current = t = ax_quant_kernels_at(level);
  }
  return t;
}

const char *ax_quant_name(void) { return table()->name; }

void ax_q_quantize_act(int act_type, const float *x, long m, long k, long ldx, void *xq) {
  table()->quantize_act(act_type, x, m, k, ldx, xq);
}

void ax_q_linear_rows(int type, const void *w, long ldw, long n, long k, const void *xq, long m, float *y,
                      long ldy) {
  table()->linear_rows(type, w, ldw, n, k, xq, m, y, ldy);
}

void ax_q_dequantize_rows(int type, const void *w, long ldw, long n, long k, float *out, long ldo) {
  table()->dequantize_rows(type, w, ldw, n, k, out, ldo);
}
