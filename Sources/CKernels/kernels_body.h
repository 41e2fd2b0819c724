/* The kernels, written once over a vector type V of W lanes. Included by k_portable.c
 * (V = float, W = 1), k_avx2.c and k_avx512.c after they define V, W, FN() and the v_* ops.
 * Tails shorter than W use the scalar helpers of kernels_internal.h. */

AX_INLINE V v_exp(V x) {
  V xc = v_min(v_set1(AX_EXP_HI), v_max(v_set1(AX_EXP_LO), x)); /* NaN passes through */
  V n = v_round(v_mul(xc, v_set1(AX_LOG2E)));
  V r = v_fnmadd(n, v_set1(AX_LN2_HI), xc);
  r = v_fnmadd(n, v_set1(AX_LN2_LO), r);
  V p = v_set1(AX_P0);
  p = v_fmadd(p, r, v_set1(AX_P1));
  p = v_fmadd(p, r, v_set1(AX_P2));
  p = v_fmadd(p, r, v_set1(AX_P3));
  p = v_fmadd(p, r, v_set1(AX_P4));
  p = v_fmadd(p, r, v_set1(AX_P5));
  p = v_fmadd(p, v_mul(r, r), v_add(r, v_set1(1)));
  return v_zero_below(v_scale2n(p, n), x, v_set1(AX_EXP_LO));
}

AX_INLINE V v_erf(V x) {
  x = v_min(v_set1(4), v_max(v_set1(-4), x));
  V x2 = v_mul(x, x);
  V p = v_set1(AX_ERF_A13);
  p = v_fmadd(p, x2, v_set1(AX_ERF_A11));
  p = v_fmadd(p, x2, v_set1(AX_ERF_A9));
  p = v_fmadd(p, x2, v_set1(AX_ERF_A7));
  p = v_fmadd(p, x2, v_set1(AX_ERF_A5));
  p = v_fmadd(p, x2, v_set1(AX_ERF_A3));
  p = v_fmadd(p, x2, v_set1(AX_ERF_A1));
  V q = v_set1(AX_ERF_B8);
  q = v_fmadd(q, x2, v_set1(AX_ERF_B6));
  q = v_fmadd(q, x2, v_set1(AX_ERF_B4));
  q = v_fmadd(q, x2, v_set1(AX_ERF_B2));
  q = v_fmadd(q, x2, v_set1(AX_ERF_B0));
  return v_div(v_mul(x, p), q);
}

AX_INLINE V v_act(V x, int act) {
  switch (act) {
  case 1: return v_max(v_set1(0), x);
  case 2: return v_div(x, v_add(v_set1(1), v_exp(v_sub(v_set1(0), x))));
  case 3: {
    V u = v_mul(v_set1(AX_GELU_C), v_fmadd(v_mul(v_set1(AX_GELU_A), x), v_mul(x, x), x));
    return v_div(x, v_add(v_set1(1), v_exp(v_mul(v_set1(-2), u))));
  }
  case 4: return v_mul(v_mul(v_set1(0.5f), x), v_add(v_set1(1), v_erf(v_mul(x, v_set1(AX_SQRT1_2)))));
  default: return x;
  }
}

float FN(exp_shift_sum)(float *row, long n, float shift) {
  V s = v_set1(shift), acc = v_set1(0);
  long j = 0;
  for (; j + W <= n; j += W) {
    V e = v_exp(v_sub(v_load(row + j), s));
    v_store(row + j, e);
    acc = v_add(acc, e);
  }
  float sum = v_hsum(acc);
  for (; j < n; j++) { float e = s_exp(row[j] - shift); row[j] = e; sum += e; }
  return sum;
}

float FN(row_max)(const float *row, long n, float floor) {
  V acc = v_set1(floor);
  long j = 0;
  for (; j + W <= n; j += W) acc = v_max(acc, v_load(row + j));
  float m = v_hmax(acc);
  for (; j < n; j++) m = row[j] > m ? row[j] : m;
  return m;
}

float FN(stream_sum)(const float *x, long n) {
  V a0 = v_set1(0), a1 = v_set1(0), a2 = v_set1(0), a3 = v_set1(0);
  long j = 0;
  for (; j + 4 * W <= n; j += 4 * W) {
    a0 = v_add(a0, v_load(x + j));
    a1 = v_add(a1, v_load(x + j + W));
    a2 = v_add(a2, v_load(x + j + 2 * W));
    a3 = v_add(a3, v_load(x + j + 3 * W));
  }
  float sum = v_hsum(v_add(v_add(a0, a1), v_add(a2, a3)));
  for (; j < n; j++) sum += x[j];
  return sum;
}

void FN(scale)(float *x, long n, float a) {
  V va = v_set1(a);
  long j = 0;
  for (; j + W <= n; j += W) v_store(x + j, v_mul(v_load(x + j), va));
  for (; j < n; j++) x[j] *= a;
}

/* One loop per activation so the switch stays outside the element loop. */
#define AX_ROWS(BODY_V, BODY_S)                                                                  \
  for (long r = 0; r < rows; r++) {                                                              \
    long j = 0;                                                                                  \
    for (; j + W <= cols; j += W) { BODY_V; }                                                    \
    for (; j < cols; j++) { BODY_S; }                                                            \
  }

#define AX_LOADB(b) ((b) ? v_load((b) + j) : v_set1(0))
#define AX_B(b) ((b) ? (b)[j] : 0.0f)

void FN(bias_act)(float *y, const float *bias, long rows, long cols, int act) {
#define AX_BIAS_ACT(A)                                                                           \
  AX_ROWS(float *p = y + r * cols + j; v_store(p, v_act(v_add(v_load(p), AX_LOADB(bias)), A)),     \
          float *p = y + r * cols + j; *p = s_act(*p + AX_B(bias), A))
  switch (act) {
  case 1: AX_BIAS_ACT(1); break;
  case 2: AX_BIAS_ACT(2); break;
  case 3: AX_BIAS_ACT(3); break;
  case 4: AX_BIAS_ACT(4); break;
  default: if (bias) AX_BIAS_ACT(0); break;
  }
#undef AX_BIAS_ACT
}

void FN(glu)(float *gate, const float *gb, const float *up, const float *ub, long rows, long cols, int act) {
#define AX_GLU(A)                                                                                \
  AX_ROWS(float *g = gate + r * cols + j; const float *u = up + r * cols + j;                    \
          v_store(g, v_mul(v_act(v_add(v_load(g), AX_LOADB(gb)), A), v_add(v_load(u), AX_LOADB(ub)))), \
          float *g = gate + r * cols + j; const float *u = up + r * cols + j;                    \
          *g = s_act(*g + AX_B(gb), A) * (*u + AX_B(ub)))
  switch (act) {
  case 1: AX_GLU(1); break;
  case 2: AX_GLU(2); break;
  case 3: AX_GLU(3); break;
  case 4: AX_GLU(4); break;
  default: AX_GLU(0); break;
  }
#undef AX_GLU
}

void FN(bias_residual)(float *y, const float *bias, const float *residual, long rows, long cols) {
  AX_ROWS(float *p = y + r * cols + j; const float *q = residual + r * cols + j;
          v_store(p, v_add(v_add(v_load(p), AX_LOADB(bias)), v_load(q))),
          float *p = y + r * cols + j; const float *q = residual + r * cols + j;
          *p = (*p + AX_B(bias)) + *q)
}

void FN(norm_rows)(const float *x, float *out, long rows, long d, const float *scale, const float *bias,
                   float eps, int rms) {
  for (long r = 0; r < rows; r++) {
    const float *row = x + r * d;
    float *o = out + r * d;
    DV s = dv_zero(), ss = dv_zero();
    long j = 0;
    for (; j + W <= d; j += W) v_sums(v_load(row + j), &s, &ss);
    double sum = dv_hsum(s), sumsq = dv_hsum(ss);
    for (; j < d; j++) { double v = row[j]; sum += v; sumsq += v * v; }
    if (rms) {
      V inv = v_set1((float)(1 / sqrt(sumsq / (double)d + (double)eps)));
      j = 0;
      for (; j + W <= d; j += W) v_store(o + j, v_mul(v_mul(v_load(row + j), inv), v_load(scale + j)));
      float fi = (float)(1 / sqrt(sumsq / (double)d + (double)eps));
      for (; j < d; j++) o[j] = row[j] * fi * scale[j];
    } else {
      double mean = sum / (double)d, var = sumsq / (double)d - mean * mean;
      if (var < 0) var = 0;
      float fi = (float)(1 / sqrt(var + (double)eps)), fm = (float)mean;
      V inv = v_set1(fi), m = v_set1(fm);
      j = 0;
      for (; j + W <= d; j += W) {
        V c = v_sub(v_load(row + j), m), k = v_mul(inv, v_load(scale + j));
        v_store(o + j, bias ? v_fmadd(c, k, v_load(bias + j)) : v_mul(c, k));
      }
      for (; j < d; j++) o[j] = (row[j] - fm) * (fi * scale[j]) + (bias ? bias[j] : 0.0f);
    }
  }
}

/* x: (m, k) row stride ldx, w: (n, k) row stride ldw -> y: (m, n) row stride ldy, y[r, j] = x[r] · w[j]:
 * a linear layer with its weights stored (out, in), or the tied LM head over the embedding table, for a
 * few rows (decode). w is streamed once, row after row: one sequential stream, which the hardware
 * prefetchers follow best (interleaving four rows of w measured 25% slower, and OpenBLAS's sgemv on
 * (in, out) weights 15-30% slower). Each dot product is a fixed-order reduction (two vector accumulators
 * over alternate W-blocks, their sum, the lanes, then the tail), so y[r, j] does not depend on which
 * rows of w a call covers: a thread split gives the same bits as one call. */
void FN(linear_rows)(const float *x, long m, long k, long ldx, const float *w, long ldw, long n, float *y, long ldy) {
  for (long j = 0; j < n; j++) {
    const float *wj = w + j * ldw;
    for (long r = 0; r < m; r++) {
      const float *xr = x + r * ldx;
      V a0 = v_set1(0), a1 = v_set1(0);
      long i = 0;
      for (; i + 2 * W <= k; i += 2 * W) {
        a0 = v_fmadd(v_load(wj + i), v_load(xr + i), a0);
        a1 = v_fmadd(v_load(wj + i + W), v_load(xr + i + W), a1);
      }
      if (i + W <= k) { a0 = v_fmadd(v_load(wj + i), v_load(xr + i), a0); i += W; }
      float s = v_hsum(v_add(a0, a1));
      for (; i < k; i++) s = s_fmadd(xr[i], wj[i], s);
      y[r * ldy + j] = s;
    }
  }
}

/* Attention of a decode step over a block of cached keys, all query heads at once.
 * q: (m, d) row stride ldq, one row per query head; kv[r]: the KV head query row r reads;
 * k: (n, ·) row stride ldk, one cached token per row, KV head h at columns h·d ..< (h+1)·d
 * -> s: (m, n) row stride lds, s[r, j] = q[r] · k[j][kv[r]·d ..].
 * Four keys at a time, every query row against them before the next four: the cache rows are read
 * in order, whole, each once for all heads (a pass per query head read them 3 times for SmolLM2), and
 * the four dot products of a row end in one reduction tree (a reduction per key cost more than the
 * products at d = 64). Each s[r, j] is a fixed-order reduction: W-blocks in order, the lanes, then
 * the tail. */
void FN(key_scores)(const float *q, long m, long d, long ldq, const long *kv, const float *k, long ldk, long n,
                    float *s, long lds) {
  long j = 0;
  for (; j + 4 <= n; j += 4) {
    for (long r = 0; r < m; r++) {
      const float *qr = q + r * ldq, *k0 = k + j * ldk + kv[r] * d;
      const float *k1 = k0 + ldk, *k2 = k1 + ldk, *k3 = k2 + ldk;
      V a0 = v_set1(0), a1 = v_set1(0), a2 = v_set1(0), a3 = v_set1(0);
      long i = 0;
      for (; i + W <= d; i += W) {
        V x = v_load(qr + i);
        a0 = v_fmadd(v_load(k0 + i), x, a0);
        a1 = v_fmadd(v_load(k1 + i), x, a1);
        a2 = v_fmadd(v_load(k2 + i), x, a2);
        a3 = v_fmadd(v_load(k3 + i), x, a3);
      }
      float out[4];
      v_hsum4(a0, a1, a2, a3, out);
      for (; i < d; i++) {
        out[0] = s_fmadd(qr[i], k0[i], out[0]);
        out[1] = s_fmadd(qr[i], k1[i], out[1]);
        out[2] = s_fmadd(qr[i], k2[i], out[2]);
        out[3] = s_fmadd(qr[i], k3[i], out[3]);
      }
      float *sr = s + r * lds + j;
      sr[0] = out[0]; sr[1] = out[1]; sr[2] = out[2]; sr[3] = out[3];
    }
  }
  for (; j < n; j++) {
    for (long r = 0; r < m; r++) {
      const float *qr = q + r * ldq, *kj = k + j * ldk + kv[r] * d;
      V a0 = v_set1(0), z = v_set1(0);
      long i = 0;
      for (; i + W <= d; i += W) a0 = v_fmadd(v_load(kj + i), v_load(qr + i), a0);
      float out[4];
      v_hsum4(a0, z, z, z, out);
      for (; i < d; i++) out[0] = s_fmadd(qr[i], kj[i], out[0]);
      s[r * lds + j] = out[0];
    }
  }
}

/* The values of the same block: p: (m, n) row stride ldp, the probabilities of each query head;
 * kv as for key_scores; v: (n, ·) row stride ldv -> y: (m, d) row stride ldy += Σ_j p[r, j] v[j][kv[r]·d ..].
 * Four keys at a time, every query row against them before the next four (the cache rows read in
 * order, whole); a row of y is loaded once per four keys. Every y[r, c] gets one FMA per key, in order. */
void FN(value_sums)(const float *p, long m, long n, long ldp, const long *kv, const float *v, long ldv, long d,
                    float *y, long ldy) {
  long j = 0;
  for (; j + 4 <= n; j += 4) {
    for (long r = 0; r < m; r++) {
      const float *v0 = v + j * ldv + kv[r] * d, *v1 = v0 + ldv, *v2 = v1 + ldv, *v3 = v2 + ldv;
      const float *pr = p + r * ldp + j;
      V p0 = v_set1(pr[0]), p1 = v_set1(pr[1]), p2 = v_set1(pr[2]), p3 = v_set1(pr[3]);
      float *yr = y + r * ldy;
      long c = 0;
      for (; c + W <= d; c += W) {
        V a = v_load(yr + c);
        a = v_fmadd(p0, v_load(v0 + c), a);
        a = v_fmadd(p1, v_load(v1 + c), a);
        a = v_fmadd(p2, v_load(v2 + c), a);
        a = v_fmadd(p3, v_load(v3 + c), a);
        v_store(yr + c, a);
      }
      for (; c < d; c++) {
        float a = yr[c];
        a = s_fmadd(pr[0], v0[c], a);
        a = s_fmadd(pr[1], v1[c], a);
        a = s_fmadd(pr[2], v2[c], a);
        a = s_fmadd(pr[3], v3[c], a);
        yr[c] = a;
      }
    }
  }
  for (; j < n; j++) {
    for (long r = 0; r < m; r++) {
      const float *vj = v + j * ldv + kv[r] * d;
      float *yr = y + r * ldy;
      V pr = v_set1(p[r * ldp + j]);
      long c = 0;
      for (; c + W <= d; c += W) v_store(yr + c, v_fmadd(pr, v_load(vj + c), v_load(yr + c)));
      for (; c < d; c++) yr[c] = s_fmadd(p[r * ldp + j], vj[c], yr[c]);
    }
  }
}

/* y: (m, n) row stride ldy += p: (m, k) row stride ldp · v: (k, n) row stride ldv: attention's
 * probabilities times the values of one KV head for a few query rows or the query heads sharing it
 * (decode). v is read once, row after row; up to 4 rows × 4 vectors of y stay in registers while the
 * rows of v stream past (a y kept in memory would chain every update through a store and a load).
 * Every y[r, c] gets one FMA per row of v, in order. */
#define AX_ROWS_TIMES_BLOCK(MR)                                                                   \
  AX_INLINE void FN(rows_times_##MR)(const float *p, long k, long ldp, const float *v, long ldv,   \
                                      long n, float *y, long ldy) {                                \
    long c = 0;                                                                                   \
    for (; c + 4 * W <= n; c += 4 * W) {                                                          \
      V acc[MR][4];                                                                               \
      for (int r = 0; r < MR; r++)                                                                \
        for (int q = 0; q < 4; q++) acc[r][q] = v_load(y + r * ldy + c + q * W);                  \
      for (long i = 0; i < k; i++) {                                                              \
        const float *vi = v + i * ldv + c;                                                        \
        V b0 = v_load(vi), b1 = v_load(vi + W), b2 = v_load(vi + 2 * W), b3 = v_load(vi + 3 * W); \
        for (int r = 0; r < MR; r++) {                                                            \
          V pr = v_set1(p[r * ldp + i]);                                                          \
          acc[r][0] = v_fmadd(pr, b0, acc[r][0]);                                                 \
          acc[r][1] = v_fmadd(pr, b1, acc[r][1]);                                                 \
          acc[r][2] = v_fmadd(pr, b2, acc[r][2]);                                                 \
          acc[r][3] = v_fmadd(pr, b3, acc[r][3]);                                                 \
        }                                                                                         \
      }                                                                                           \
      for (int r = 0; r < MR; r++)                                                                \
        for (int q = 0; q < 4; q++) v_store(y + r * ldy + c + q * W, acc[r][q]);                  \
    }                                                                                             \
    for (; c + W <= n; c += W) {                                                                  \
      V acc[MR];                                                                                  \
      for (int r = 0; r < MR; r++) acc[r] = v_load(y + r * ldy + c);                              \
      for (long i = 0; i < k; i++) {                                                              \
        V b0 = v_load(v + i * ldv + c);                                                           \
        for (int r = 0; r < MR; r++) acc[r] = v_fmadd(v_set1(p[r * ldp + i]), b0, acc[r]);       \
      }                                                                                           \
      for (int r = 0; r < MR; r++) v_store(y + r * ldy + c, acc[r]);                              \
    }                                                                                             \
    for (; c < n; c++)                                                                            \
      for (int r = 0; r < MR; r++) {                                                              \
        float a = y[r * ldy + c];                                                                 \
        for (long i = 0; i < k; i++) a = s_fmadd(p[r * ldp + i], v[i * ldv + c], a);             \
        y[r * ldy + c] = a;                                                                       \
      }                                                                                           \
  }
AX_ROWS_TIMES_BLOCK(1)
AX_ROWS_TIMES_BLOCK(2)
AX_ROWS_TIMES_BLOCK(3)
AX_ROWS_TIMES_BLOCK(4)
#undef AX_ROWS_TIMES_BLOCK

void FN(rows_times)(const float *p, long m, long k, long ldp, const float *v, long ldv, long n, float *y, long ldy) {
  for (long r0 = 0; r0 < m; r0 += 4) {
    const float *pr = p + r0 * ldp;
    float *yr = y + r0 * ldy;
    switch (m - r0 < 4 ? m - r0 : 4) {
    case 1: FN(rows_times_1)(pr, k, ldp, v, ldv, n, yr, ldy); break;
    case 2: FN(rows_times_2)(pr, k, ldp, v, ldv, n, yr, ldy); break;
    case 3: FN(rows_times_3)(pr, k, ldp, v, ldv, n, yr, ldy); break;
    default: FN(rows_times_4)(pr, k, ldp, v, ldv, n, yr, ldy); break;
    }
  }
}
