/* Shared by the builds of the block-format kernels (attnax_quant.h): block layouts, the
 * activation rows' layout, float16 / bfloat16 conversions and the per-level prototypes.
 *
 * Activation rows (ax_q_quantize_act), k elements, nb blocks, padded to a multiple of 64 bytes:
 *   Q8_0: int8 q[k] | float d[nb] | int32 sum[nb]        d = the float16-rounded amax/127 as a
 *                                                         float; sum = Σ q of the block
 *   Q8_1: int8 q[k] | float d[nb] | float s[nb]          s = float16(d_unrounded · Σ q) as a float
 *   Q8_K: int8 q[k] | float d[nb] | int16 bsums[16 nb]   d = 1 / (-127 / max); bsums per 16
 *   F16, BF16: uint16 h[k];  F32: float x[k]
 * The quants come first and are a multiple of 32 bytes, so with a 32- or 64-byte aligned row
 * every block's quants are aligned for vector loads (the kernels load unaligned anyway). */
#ifndef ATTNAX_QUANT_INTERNAL_H
#define ATTNAX_QUANT_INTERNAL_H

#include "attnax_quant.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Dequantization must be bit-equal to ggml's reference: every product rounded on its own. */
#pragma STDC FP_CONTRACT OFF

#define AXQ_INLINE static inline __attribute__((always_inline))

enum { AXQ_PORTABLE = 0, AXQ_AVX2 = 1, AXQ_AVX512 = 2 };

/* Activation rows of up to this many are taken in one pass over a weight row. */
#define AXQ_MR 4

AXQ_INLINE uint16_t axq_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
AXQ_INLINE uint32_t axq_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
AXQ_INLINE float axq_bits_float(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
AXQ_INLINE uint32_t axq_float_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

/* float16 bits -> float32, exact; NaN payloads kept bit for bit (as numpy and GGMLDequantize). */
AXQ_INLINE float axq_h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0x1f) return axq_bits_float(sign | 0x7f800000u | m << 13);
  if (e == 0) {
    float f = (float)m * 0x1p-24f;
    return sign ? -f : f;
  }
  return axq_bits_float(sign | (e + 112) << 23 | m << 13);
}
AXQ_INLINE float axq_half_at(const uint8_t *p) { return axq_h2f(axq_u16(p)); }

/* float32 -> float16 bits, round to nearest even (as F16C's vcvtps2ph and ggml's
 * GGML_FP32_TO_FP16): overflow to infinity, subnormals rounded, NaN quieted. */
AXQ_INLINE uint16_t axq_f2h(float f) {
  uint32_t x = axq_float_bits(f), sign = (x >> 16) & 0x8000, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 rounds to infinity */
  if (a >= 0x38800000u) {                                  /* normal: >= 2^-14 */
    uint32_t r = a + 0xfff + ((a >> 13) & 1);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
  }
  /* Subnormal (or zero): units of 2^-24; scaling by 2^24 is exact, rintf rounds to even. */
  return (uint16_t)(sign | (uint32_t)rintf(axq_bits_float(a) * 0x1p24f));
}
AXQ_INLINE float axq_round_half(float f) { return axq_h2f(axq_f2h(f)); }

/* float32 -> bfloat16 bits as ggml_compute_fp32_to_bf16: NaN quieted, else round to nearest even. */
AXQ_INLINE uint16_t axq_f2bf(float f) {
  uint32_t x = axq_float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64);
  return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}
AXQ_INLINE float axq_bf2f(uint16_t b) { return axq_bits_float((uint32_t)b << 16); }

/* Scales and minimums of a Q4_K / Q5_K super-block, 6 bits each packed in 12 bytes at q:
 * out[0..7] the scales, out[8..15] the minimums (ggml's get_scale_min_k4, for all j at once). */
AXQ_INLINE void axq_k4_scales(const uint8_t *q, uint8_t out[16]) {
  uint32_t a = axq_u32(q), b = axq_u32(q + 4), c = axq_u32(q + 8), w[4];
  w[0] = a & 0x3f3f3f3fu;                                      /* scales 0-3: low 6 bits of q[0..3] */
  w[1] = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;   /* scales 4-7 */
  w[2] = b & 0x3f3f3f3fu;                                      /* mins 0-3: low 6 bits of q[4..7] */
  w[3] = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4; /* mins 4-7 */
  memcpy(out, w, 16);
}

/* ax_q_block_bytes for the quantized types, inlined so a constant type folds. */
AXQ_INLINE long axq_block_bytes(int type) {
  switch (type) {
  case AX_T_Q4_0: return 18;
  case AX_T_Q4_1: return 20;
  case AX_T_Q5_0: return 22;
  case AX_T_Q5_1: return 24;
  case AX_T_Q8_0: return 34;
  default: return ax_q_block_bytes(type);
  }
}

/* Where a row of activations keeps its parts (the layout above). */
AXQ_INLINE const int8_t *axq_act_q(const uint8_t *row) { return (const int8_t *)row; }
AXQ_INLINE const float *axq_act_d(const uint8_t *row, long k) { return (const float *)(row + k); }
AXQ_INLINE const uint8_t *axq_act_aux(const uint8_t *row, long k, long nb) { return row + k + 4 * nb; }

/* Quantize / round one row of activations (quant_act.c; one implementation for every level, so
 * every level sees the same activations). */
void axq_quantize_act_rows(int act_type, const float *x, long m, long k, long ldx, void *xq);

#define AXQ_DECLARE(S)                                                                            \
  void axq_linear_rows_##S(int type, const void *w, long ldw, long n, long k, const void *xq, long m, \
                           float *y, long ldy);                                                   \
  void axq_dequantize_rows_##S(int type, const void *w, long ldw, long n, long k, float *out, long ldo);

AXQ_DECLARE(portable)
#if defined(__x86_64__)
AXQ_DECLARE(avx2)
AXQ_DECLARE(avx512)
#endif

#endif
