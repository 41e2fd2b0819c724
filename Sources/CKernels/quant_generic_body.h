/* Dequantization of every weight type, and the float fallback of the products (types without
 * an integer kernel at a level: F32, F16, BF16, Q2_K, Q3_K). Written once in scalar C and
 * included by quant_portable.c, quant_avx2.c and quant_avx512.c after they define FNQ() and
 * dot_f32(a, b, n) (a float dot product over n, a multiple of 32). Products are rounded one by
 * one, as GGMLDequantize.swift and the gguf package (FP_CONTRACT is off in quant_internal.h). */

/* `blocks` blocks of `type` at p -> y (blocks x block_elems floats). */
static void FNQ(dequant_blocks)(int type, const uint8_t *p, long blocks, float *y) {
  switch (type) {
  case AX_T_F32: memcpy(y, p, (size_t)blocks * 4); break;
  case AX_T_F16:
    for (long i = 0; i < blocks; i++) y[i] = axq_half_at(p + 2 * i);
    break;
  case AX_T_BF16:
    for (long i = 0; i < blocks; i++) y[i] = axq_bf2f(axq_u16(p + 2 * i));
    break;
  case AX_T_Q8_0:
    for (long b = 0; b < blocks; b++, p += 34, y += 32) {
      float d = axq_half_at(p);
      for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)p[2 + j] * d;
    }
    break;
  case AX_T_Q4_0: case AX_T_Q4_1: {
    int has_min = type == AX_T_Q4_1, qo = has_min ? 4 : 2;
    for (long b = 0; b < blocks; b++, p += qo + 16, y += 32) {
      float d = axq_half_at(p), mn = has_min ? axq_half_at(p + 2) : 0;
      for (int j = 0; j < 16; j++) {
        int lo = p[qo + j] & 15, hi = p[qo + j] >> 4;
        if (has_min) { y[j] = (float)lo * d + mn; y[j + 16] = (float)hi * d + mn; }
        else { y[j] = (float)(lo - 8) * d; y[j + 16] = (float)(hi - 8) * d; }
      }
    }
    break;
  }
  case AX_T_Q5_0: case AX_T_Q5_1: {
    int has_min = type == AX_T_Q5_1, ho = has_min ? 4 : 2;
    long bytes = has_min ? 24 : 22;
    for (long b = 0; b < blocks; b++, p += bytes, y += 32) {
      float d = axq_half_at(p), mn = has_min ? axq_half_at(p + 2) : 0;
      uint32_t qh = axq_u32(p + ho);
      for (int j = 0; j < 16; j++) {
        int x = p[ho + 4 + j];
        int lo = (x & 15) | ((qh >> j) << 4 & 0x10), hi = (x >> 4) | ((qh >> (j + 12)) & 0x10);
        if (has_min) { y[j] = (float)lo * d + mn; y[j + 16] = (float)hi * d + mn; }
        else { y[j] = (float)(lo - 16) * d; y[j + 16] = (float)(hi - 16) * d; }
      }
    }
    break;
  }
  case AX_T_Q4_K: case AX_T_Q5_K: {
    int five = type == AX_T_Q5_K;
    long bytes = five ? 176 : 144;
    for (long b = 0; b < blocks; b++, p += bytes, y += 256) {
      float d = axq_half_at(p), dmin = axq_half_at(p + 2);
      uint8_t sm[16];
      axq_k4_scales(p + 4, sm);
      const uint8_t *qs = p + (five ? 48 : 16), *qh = p + 16;
      for (int j = 0; j < 4; j++) {
        float d1 = d * (float)sm[2 * j], m1 = dmin * (float)sm[8 + 2 * j];
        float d2 = d * (float)sm[2 * j + 1], m2 = dmin * (float)sm[9 + 2 * j];
        for (int l = 0; l < 32; l++) {
          int x = qs[32 * j + l], lo = x & 15, hi = x >> 4;
          if (five) {
            lo |= (qh[l] >> (2 * j) & 1) << 4;
            hi |= (qh[l] >> (2 * j + 1) & 1) << 4;
          }
          y[64 * j + l] = d1 * (float)lo - m1;
          y[64 * j + 32 + l] = d2 * (float)hi - m2;
        }
      }
    }
    break;
  }
  case AX_T_Q6_K:
    for (long b = 0; b < blocks; b++, p += 210, y += 256) {
      float d = axq_half_at(p + 208);
      const int8_t *sc = (const int8_t *)(p + 192);
      for (int h = 0; h < 2; h++) {
        const uint8_t *ql = p + 64 * h, *qh = p + 128 + 32 * h;
        float *yh = y + 128 * h;
        for (int l = 0; l < 32; l++) {
          int is = 8 * h + l / 16;
          int a = ql[l], c = ql[l + 32], hb = qh[l];
          yh[l] = d * (float)sc[is] * (float)(((a & 15) | (hb & 3) << 4) - 32);
          yh[l + 32] = d * (float)sc[is + 2] * (float)(((c & 15) | (hb >> 2 & 3) << 4) - 32);
          yh[l + 64] = d * (float)sc[is + 4] * (float)(((a >> 4) | (hb >> 4 & 3) << 4) - 32);
          yh[l + 96] = d * (float)sc[is + 6] * (float)(((c >> 4) | (hb >> 6 & 3) << 4) - 32);
        }
      }
    }
    break;
  case AX_T_Q2_K:
    for (long b = 0; b < blocks; b++, p += 84, y += 256) {
      float d = axq_half_at(p + 80), dmin = axq_half_at(p + 82);
      for (int g = 0; g < 16; g++) {
        int s = p[g];
        float dl = d * (float)(s & 15), ml = dmin * (float)(s >> 4);
        const uint8_t *q = p + 16 + 32 * (g / 8) + 16 * (g % 2);
        int shift = 2 * (g % 8 / 2);
        for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)(q[l] >> shift & 3) - ml;
      }
    }
    break;
  case AX_T_Q3_K:
    for (long b = 0; b < blocks; b++, p += 110, y += 256) {
      float d = axq_half_at(p + 108);
      for (int g = 0; g < 16; g++) {
        int low = p[96 + g % 8] >> (4 * (g / 8)) & 15, high = p[104 + g % 4] >> (2 * (g / 4)) & 3;
        float dl = d * (float)((low | high << 4) - 32);
        int e0 = 16 * g, shift = 2 * (e0 / 32 % 4), hbit = e0 / 32;
        const uint8_t *q = p + 32 + 32 * (e0 / 128) + e0 % 32, *hm = p + e0 % 32;
        for (int l = 0; l < 16; l++) {
          int v = (q[l] >> shift & 3) - ((hm[l] >> hbit & 1) ? 0 : 4);
          y[16 * g + l] = dl * (float)v;
        }
      }
    }
    break;
  default: break;
  }
}

void FNQ(dequantize_rows)(int type, const void *w, long ldw, long n, long k, float *out, long ldo) {
  long be = ax_q_block_elems(type);
  if (be == 0) return;
  for (long j = 0; j < n; j++) FNQ(dequant_blocks)(type, (const uint8_t *)w + j * ldw, k / be, out + j * ldo);
}

/* Weights dequantized 256 columns at a time into a stack buffer, activations rounded once into
 * a heap buffer (ax_q_round_act's values from xq), float dot products. */
static void FNQ(linear_generic)(int type, const uint8_t *w, long ldw, long n, long k, const uint8_t *xq, long m,
                                float *y, long ldy) {
  int act = ax_q_act_type(type);
  long rb = ax_q_act_row_bytes(act, k), be = ax_q_block_elems(type), bb = ax_q_block_bytes(type);
  float *xf = act == AX_T_F32 ? 0 : (float *)malloc((size_t)(m * k) * sizeof(float));
  if (act != AX_T_F32 && !xf) {
    for (long r = 0; r < m; r++) for (long j = 0; j < n; j++) y[r * ldy + j] = NAN;
    return;
  }
  for (long r = 0; r < m && xf; r++) {
    const uint8_t *row = xq + r * rb;
    float *o = xf + r * k;
    if (act == AX_T_Q8_K) {
      const float *d = axq_act_d(row, k);
      for (long i = 0; i < k; i++) o[i] = d[i / 256] * (float)axq_act_q(row)[i];
    } else if (act == AX_T_F16) {
      for (long i = 0; i < k; i++) o[i] = axq_half_at(row + 2 * i);
    } else {
      for (long i = 0; i < k; i++) o[i] = axq_bf2f(axq_u16(row + 2 * i));
    }
  }
  float wbuf[256] __attribute__((aligned(64)));
  for (long j = 0; j < n; j++) {
    const uint8_t *wr = w + j * ldw;
    for (long r = 0; r < m; r++) y[r * ldy + j] = 0;
    for (long c = 0; c < k; c += 256) {
      long len = k - c < 256 ? k - c : 256;
      const float *wc = wbuf;
      if (type == AX_T_F32 && len % 32 == 0) wc = (const float *)(wr + 4 * c);
      else FNQ(dequant_blocks)(type, wr + c / be * bb, len / be, wbuf);
      for (long r = 0; r < m; r++) {
        const float *xc = xf ? xf + r * k + c : (const float *)(xq + r * rb) + c;
        long len32 = len / 32 * 32;
        float s = len32 ? dot_f32(wc, xc, len32) : 0;
        for (long i = len32; i < len; i++) s += wc[i] * xc[i];
        y[r * ldy + j] += s;
      }
    }
  }
  free(xf);
}
