/* The block-format kernels in plain C: integer dot products per block, accumulated in float
 * per block as ggml's vec_dot_*: sum += (d_w · d_x) · isum (+ min terms). The reference the
 * SIMD levels are tested against, and the path for CPUs without AVX2. */
#include "quant_internal.h"

#include <stdlib.h>

#define FNQ(name) axq_##name##_portable

static float dot_f32(const float *a, const float *b, long n) {
  float s[4] = {0, 0, 0, 0};
  for (long i = 0; i < n; i += 4)
    for (int t = 0; t < 4; t++) s[t] += a[i + t] * b[i + t];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

#include "quant_generic_body.h"

/* One weight row (nb blocks at w) against one activation row: the dot product. */
typedef float (*row_dot)(const uint8_t *w, long nb, const uint8_t *x, long k);

/* Q4_0 (d, 16 nibble bytes; q - 8) and Q5_0 (d, 32 fifth bits, nibbles; q - 16) with Q8_0. */
static float dot_q4_0(const uint8_t *w, long nb, const uint8_t *x, long k) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += 18, q += 32) {
    int isum = 0;
    for (int j = 0; j < 16; j++) isum += ((w[2 + j] & 15) - 8) * q[j] + ((w[2 + j] >> 4) - 8) * q[j + 16];
    sum += (axq_half_at(w) * dx[b]) * (float)isum;
  }
  return sum;
}

static float dot_q5_0(const uint8_t *w, long nb, const uint8_t *x, long k) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += 22, q += 32) {
    uint32_t qh = axq_u32(w + 2);
    int isum = 0;
    for (int j = 0; j < 16; j++) {
      int lo = (w[6 + j] & 15) | ((qh >> j) << 4 & 0x10), hi = (w[6 + j] >> 4) | ((qh >> (j + 12)) & 0x10);
      isum += (lo - 16) * q[j] + (hi - 16) * q[j + 16];
    }
    sum += (axq_half_at(w) * dx[b]) * (float)isum;
  }
  return sum;
}

static float dot_q8_0(const uint8_t *w, long nb, const uint8_t *x, long k) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += 34, q += 32) {
    int isum = 0;
    for (int j = 0; j < 32; j++) isum += (int8_t)w[2 + j] * q[j];
    sum += (axq_half_at(w) * dx[b]) * (float)isum;
  }
  return sum;
}

/* Q4_1 / Q5_1 with Q8_1: (d_w · d_x) · Σ q·x + m_w · s_x. */
static float dot_q4_1(const uint8_t *w, long nb, const uint8_t *x, long k) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k), *sx = (const float *)axq_act_aux(x, k, nb);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += 20, q += 32) {
    int isum = 0;
    for (int j = 0; j < 16; j++) isum += (w[4 + j] & 15) * q[j] + (w[4 + j] >> 4) * q[j + 16];
    sum += (axq_half_at(w) * dx[b]) * (float)isum + axq_half_at(w + 2) * sx[b];
  }
  return sum;
}

static float dot_q5_1(const uint8_t *w, long nb, const uint8_t *x, long k) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k), *sx = (const float *)axq_act_aux(x, k, nb);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += 24, q += 32) {
    uint32_t qh = axq_u32(w + 4);
    int isum = 0;
    for (int j = 0; j < 16; j++) {
      int lo = (w[8 + j] & 15) | ((qh >> j) << 4 & 0x10), hi = (w[8 + j] >> 4) | ((qh >> (j + 12)) & 0x10);
      isum += lo * q[j] + hi * q[j + 16];
    }
    sum += (axq_half_at(w) * dx[b]) * (float)isum + axq_half_at(w + 2) * sx[b];
  }
  return sum;
}

/* Q4_K / Q5_K with Q8_K: (d_x·d)·Σ_s sc_s Σ q·x − (d_x·dmin)·Σ_s m_s · (bsum_2s + bsum_2s+1). */
static float dot_q45_k(const uint8_t *w, long nb, const uint8_t *x, long k, int five) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k);
  const int16_t *bsums = (const int16_t *)axq_act_aux(x, k, nb);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += five ? 176 : 144, q += 256, bsums += 16) {
    uint8_t sm[16];
    axq_k4_scales(w + 4, sm);
    const uint8_t *qs = w + (five ? 48 : 16), *qh = w + 16;
    int isum = 0, msum = 0;
    for (int j = 0; j < 4; j++) {
      int lo_sum = 0, hi_sum = 0;
      for (int l = 0; l < 32; l++) {
        int lo = qs[32 * j + l] & 15, hi = qs[32 * j + l] >> 4;
        if (five) {
          lo |= (qh[l] >> (2 * j) & 1) << 4;
          hi |= (qh[l] >> (2 * j + 1) & 1) << 4;
        }
        lo_sum += lo * q[64 * j + l];
        hi_sum += hi * q[64 * j + 32 + l];
      }
      isum += sm[2 * j] * lo_sum + sm[2 * j + 1] * hi_sum;
    }
    for (int s = 0; s < 8; s++) msum += sm[8 + s] * (bsums[2 * s] + bsums[2 * s + 1]);
    sum += (dx[b] * axq_half_at(w)) * (float)isum;
    sum -= (dx[b] * axq_half_at(w + 2)) * (float)msum;
  }
  return sum;
}

static float dot_q4_k(const uint8_t *w, long nb, const uint8_t *x, long k) { return dot_q45_k(w, nb, x, k, 0); }
static float dot_q5_k(const uint8_t *w, long nb, const uint8_t *x, long k) { return dot_q45_k(w, nb, x, k, 1); }

/* Q6_K with Q8_K: (d_x·d)·Σ_g sc_g Σ (q − 32)·x over 16 groups of 16. */
static float dot_q6_k(const uint8_t *w, long nb, const uint8_t *x, long k) {
  const int8_t *q = axq_act_q(x);
  const float *dx = axq_act_d(x, k);
  float sum = 0;
  for (long b = 0; b < nb; b++, w += 210, q += 256) {
    const int8_t *sc = (const int8_t *)(w + 192);
    int isum = 0;
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
      const int8_t *qx = q + 128 * h;
      int g[8] = {0};
      for (int l = 0; l < 32; l++) {
        int a = ql[l], c = ql[l + 32], hb = qh[l], part = l / 16;
        g[part] += (((a & 15) | (hb & 3) << 4) - 32) * qx[l];
        g[2 + part] += (((c & 15) | (hb >> 2 & 3) << 4) - 32) * qx[l + 32];
        g[4 + part] += (((a >> 4) | (hb >> 4 & 3) << 4) - 32) * qx[l + 64];
        g[6 + part] += (((c >> 4) | (hb >> 6 & 3) << 4) - 32) * qx[l + 96];
      }
      for (int t = 0; t < 8; t++) isum += sc[8 * h + t] * g[t];
    }
    sum += (dx[b] * axq_half_at(w + 208)) * (float)isum;
  }
  return sum;
}

static row_dot dot_for(int type) {
  switch (type) {
  case AX_T_Q4_0: return dot_q4_0;
  case AX_T_Q4_1: return dot_q4_1;
  case AX_T_Q5_0: return dot_q5_0;
  case AX_T_Q5_1: return dot_q5_1;
  case AX_T_Q8_0: return dot_q8_0;
  case AX_T_Q4_K: return dot_q4_k;
  case AX_T_Q5_K: return dot_q5_k;
  case AX_T_Q6_K: return dot_q6_k;
  default: return 0;
  }
}

void axq_linear_rows_portable(int type, const void *w, long ldw, long n, long k, const void *xq, long m, float *y,
                              long ldy) {
  long be = ax_q_block_elems(type);
  if (be == 0 || n <= 0 || m <= 0) return;
  row_dot dot = dot_for(type);
  if (!dot) {
    axq_linear_generic_portable(type, (const uint8_t *)w, ldw, n, k, (const uint8_t *)xq, m, y, ldy);
    return;
  }
  long rb = ax_q_act_row_bytes(ax_q_act_type(type), k);
  for (long j = 0; j < n; j++)
    for (long r = 0; r < m; r++)
      y[r * ldy + j] = dot((const uint8_t *)w + j * ldw, k / be, (const uint8_t *)xq + r * rb, k);
}
