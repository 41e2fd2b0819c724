/* Block sizes, and the rounding of activations into the blocks llama.cpp's dot products take
 * (ggml-quants.c's quantize_row_q8_0_ref, _q8_1_ref, _q8_K_ref; float16 / bfloat16 rows).
 * One implementation for every kernel level: the activations are O(m·k) work against the
 * weights' O(n·k), and one copy keeps the levels' inputs identical. */
#include "quant_internal.h"

#include <stdlib.h>

long ax_q_block_elems(int type) {
  switch (type) {
  case AX_T_F32: case AX_T_F16: case AX_T_BF16: return 1;
  case AX_T_Q4_0: case AX_T_Q4_1: case AX_T_Q5_0: case AX_T_Q5_1: case AX_T_Q8_0: return 32;
  case AX_T_Q2_K: case AX_T_Q3_K: case AX_T_Q4_K: case AX_T_Q5_K: case AX_T_Q6_K: return 256;
  default: return 0;
  }
}

long ax_q_block_bytes(int type) {
  switch (type) {
  case AX_T_F32: return 4;
  case AX_T_F16: case AX_T_BF16: return 2;
  case AX_T_Q4_0: return 18;
  case AX_T_Q4_1: return 20;
  case AX_T_Q5_0: return 22;
  case AX_T_Q5_1: return 24;
  case AX_T_Q8_0: return 34;
  case AX_T_Q2_K: return 84;
  case AX_T_Q3_K: return 110;
  case AX_T_Q4_K: return 144;
  case AX_T_Q5_K: return 176;
  case AX_T_Q6_K: return 210;
  default: return 0;
  }
}

int ax_q_act_type(int weight_type) {
  switch (weight_type) {
  case AX_T_F32: return AX_T_F32;
  case AX_T_F16: return AX_T_F16;
  case AX_T_BF16: return AX_T_BF16;
  case AX_T_Q4_0: case AX_T_Q5_0: case AX_T_Q8_0: return AX_T_Q8_0;
  case AX_T_Q4_1: case AX_T_Q5_1: return AX_T_Q8_1;
  case AX_T_Q2_K: case AX_T_Q3_K: case AX_T_Q4_K: case AX_T_Q5_K: case AX_T_Q6_K: return AX_T_Q8_K;
  default: return -1;
  }
}

long ax_q_act_row_bytes(int act_type, long k) {
  long bytes;
  switch (act_type) {
  case AX_T_Q8_0: case AX_T_Q8_1: bytes = k + 8 * (k / 32); break;
  case AX_T_Q8_K: bytes = k + 4 * (k / 256) + 32 * (k / 256); break;
  case AX_T_F16: case AX_T_BF16: bytes = 2 * k; break;
  case AX_T_F32: bytes = 4 * k; break;
  default: return 0;
  }
  return (bytes + 63) / 64 * 64;
}

/* (int)roundf / the float-to-int of ggml for values that are in range for finite input; NaN
 * (from infinite input) becomes 0 instead of undefined behaviour. */
AXQ_INLINE int8_t to_q8(float v) {
  if (!(v == v)) return 0;
  v = v > 127 ? 127 : (v < -128 ? -128 : v);
  return (int8_t)v;
}

/* ggml's nearest_int: round half to even through the float adder (|v| < 2^22). */
AXQ_INLINE int nearest_int(float v) {
  float t = v + 12582912.f;
  return (int)(axq_float_bits(t) & 0x007fffff) - 0x00400000;
}

/* One block of 32: q, the float16-rounded d (as a float) and the unrounded d (for Q8_1's s).
 * Activations (`activations` 1) as llama.cpp's x86 CPU backend quantizes them (quantize_row_q8_0
 * / _q8_1 in ggml-cpu/arch/x86/quants.c, the peer we compare with): the multiplier 127 / amax,
 * rounding half to even. Weights (0) as quantize_row_q8_0_ref, what llama-quantize writes: the
 * multiplier 1 / d, rounding half away from zero. The two differ on ties and by an ulp of the
 * multiplier. */
AXQ_INLINE void q8_block(const float *x, int8_t *q, float *d16, float *d32, int activations) {
  float amax = 0;
  for (int j = 0; j < 32; j++) {
    float a = fabsf(x[j]);
    amax = amax > a ? amax : a;
  }
  float d = amax / 127;
  if (activations) {
    float id = amax != 0 ? 127.0f / amax : 0.0f;
    for (int j = 0; j < 32; j++) q[j] = to_q8(__builtin_rintf(x[j] * id));
  } else {
    float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; j++) q[j] = to_q8(roundf(x[j] * id));
  }
  *d16 = axq_round_half(d);
  *d32 = d;
}

/* One super-block of 256 as quantize_row_q8_K_ref: q and d (0 for an all-zero block). */
AXQ_INLINE void q8k_block(const float *x, int8_t *q, float *d) {
  float max = 0, amax = 0;
  for (int j = 0; j < 256; j++) {
    float a = fabsf(x[j]);
    if (a > amax) { amax = a; max = x[j]; }
  }
  if (amax == 0) {
    memset(q, 0, 256);
    *d = 0;
    return;
  }
  float iscale = -127.f / max;
  for (int j = 0; j < 256; j++) {
    float v = iscale * x[j];
    int t = (v == v && fabsf(v) < 4194303.f) ? nearest_int(v) : 0;
    q[j] = (int8_t)(t > 127 ? 127 : (t < -128 ? -128 : t));
  }
  *d = 1 / iscale;
}

void axq_quantize_act_rows(int act_type, const float *x, long m, long k, long ldx, void *xq) {
  long rb = ax_q_act_row_bytes(act_type, k);
  for (long r = 0; r < m; r++) {
    const float *xr = x + r * ldx;
    uint8_t *row = (uint8_t *)xq + r * rb;
    int8_t *q = (int8_t *)row;
    switch (act_type) {
    case AX_T_Q8_0: case AX_T_Q8_1: {
      long nb = k / 32;
      float *d = (float *)(row + k);
      for (long b = 0; b < nb; b++) {
        float d32;
        q8_block(xr + 32 * b, q + 32 * b, &d[b], &d32, 1);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += q[32 * b + j];
        if (act_type == AX_T_Q8_0) ((int32_t *)(row + k + 4 * nb))[b] = sum;
        else ((float *)(row + k + 4 * nb))[b] = axq_round_half((float)sum * d32);
      }
      break;
    }
    case AX_T_Q8_K: {
      long nb = k / 256;
      float *d = (float *)(row + k);
      int16_t *bsums = (int16_t *)(row + k + 4 * nb);
      for (long b = 0; b < nb; b++) {
        q8k_block(xr + 256 * b, q + 256 * b, &d[b]);
        for (int g = 0; g < 16; g++) {
          int sum = 0;
          for (int j = 0; j < 16; j++) sum += q[256 * b + 16 * g + j];
          bsums[16 * b + g] = (int16_t)sum;
        }
      }
      break;
    }
    case AX_T_F16:
      for (long i = 0; i < k; i++) ((uint16_t *)row)[i] = axq_f2h(xr[i]);
      break;
    case AX_T_BF16:
      for (long i = 0; i < k; i++) ((uint16_t *)row)[i] = axq_f2bf(xr[i]);
      break;
    case AX_T_F32: memcpy(row, xr, (size_t)k * 4); break;
    default: break;
    }
  }
}

void ax_q_round_act(int act_type, const float *x, long m, long k, long ldx, float *out, long ldo) {
  int8_t q[256];
  for (long r = 0; r < m; r++) {
    const float *xr = x + r * ldx;
    float *o = out + r * ldo;
    switch (act_type) {
    case AX_T_Q8_0: case AX_T_Q8_1:
      for (long b = 0; b < k / 32; b++) {
        float d, d32;
        q8_block(xr + 32 * b, q, &d, &d32, 1);
        for (int j = 0; j < 32; j++) o[32 * b + j] = d * (float)q[j];
      }
      break;
    case AX_T_Q8_K:
      for (long b = 0; b < k / 256; b++) {
        float d;
        q8k_block(xr + 256 * b, q, &d);
        for (int j = 0; j < 256; j++) o[256 * b + j] = d * (float)q[j];
      }
      break;
    case AX_T_F16:
      for (long i = 0; i < k; i++) o[i] = axq_round_half(xr[i]);
      break;
    case AX_T_BF16:
      for (long i = 0; i < k; i++) o[i] = axq_bf2f(axq_f2bf(xr[i]));
      break;
    case AX_T_F32:
      if (o != xr) memmove(o, xr, (size_t)k * 4);
      break;
    default: break;
    }
  }
}

void ax_q_quantize_q8_0(const float *x, long n, long k, long ldx, void *out, long ldo) {
  for (long r = 0; r < n; r++) {
    uint8_t *row = (uint8_t *)out + r * ldo;
    for (long b = 0; b < k / 32; b++) {
      uint8_t *blk = row + 34 * b;
      float d16, d32;
      q8_block(x + r * ldx + 32 * b, (int8_t *)(blk + 2), &d16, &d32, 0);
      uint16_t h = axq_f2h(d32);
      memcpy(blk, &h, 2);
    }
  }
}
