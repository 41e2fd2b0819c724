/* The 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) over groups of AXQ_G blocks, written once
 * for AVX2 (8 blocks, 256-bit) and AVX-512 VNNI (16 blocks, 512-bit). Included by quant_x86_driver.h
 * after the level defined:
 *   AXQ_G                       blocks per group: the lanes of grp_i / grp_f
 *   grp_i, grp_f                int32 / float vectors of AXQ_G lanes; grp_q the weight-byte vectors
 *   GRP_Q8_OFFSET               what grp_unpack adds to Q8_0's quants (0 or 128), taken off as for Q4_0
 *   grp_unpack(type, w, bb, t, q)   the quants of t ≤ AXQ_G blocks at w (stride bb) as 8 vectors of
 *                                   unsigned bytes (Q4_0 / Q5_0 without their offset), AXQ_G / 8
 *                                   blocks each; vectors past the t blocks are never read
 *   grp_dot(type, q, x)             int32 lanes of sums of 4 products q · x, x: the vector's 4·AXQ_G
 *                                   activation bytes (of a vector only half real, the rest of the
 *                                   row: its quants are zero)
 *   grp_reduce(v)                   the 8 vectors' sums per block, block order
 *   grp_scales(type, w, bb, t, d, m)  the float16 d (and m) of t blocks, as floats
 *   grp_load_i / grp_load_f(p, t)   t lanes from p, zero beyond;  grp_fma(a, b, c, t): a·b + c in
 *                                   lanes < t, c beyond;  grp_hsum_rows(acc, mr, out): each of mr
 *                                   vectors' sum of lanes, in a tree that does not depend on mr
 *   grp_zero_i, grp_zero_f, grp_sub_i, grp_shl_i(v, bits), grp_mul_f, grp_cvt (int32 -> float)
 * and, optionally, a transposed form for many rows (Q4_0, Q4_1, Q8_0; lane i of every vector
 * block i, so the products need no reduction; the activations rearranged once per call):
 *   GRP_TRANSPOSED              the rows from which it pays
 *   grp_unpack_t(type, w, bb, t, q), grp_transpose_x(x, t, dst), grp_isum_t(q, xt)   a group's
 *                               weights, its activations rearranged (512 bytes), their block sums
 *
 * Why groups: a block's integer sum is exact, but its scale product d_w·d_x and the float
 * multiply-add are per block and per activation row; done a block at a time (8 int32 lanes
 * converted, a broadcast scale, one FMA per row and block) that float work cost more than the
 * integer products. Here a group's block sums are reduced to one int32 lane per block, and one
 * conversion and one multiply-add of AXQ_G lanes per row scale the whole group, with the scales
 * gathered once per weight row; the weights are unpacked once per group for up to AXQ_RB rows.
 *
 * Row invariance (continuous batching needs it, BatchInvarianceTests checks it): every output is
 * computed by the same float operations in the same order whatever the number of rows or the
 * row's place among them: acc (AXQ_G lanes, lane i taking blocks i, i + G, ...) += cvt(isum) ·
 * (d_w · d_x) [+ m_w · s_x, a second multiply-add], then grp_hsum_rows. Only integer work (exact) is
 * shared between rows; the two forms give the same block sums. */

/* Activation rows taken per pass over a weight row (the accumulators live on the stack). */
#define AXQ_RB 16

/* The float steps of one group (t blocks from block g0) of one activation row, its block sums
 * isum in hand: the same for every row count (see above). t is AXQ_G for all but the last group,
 * a constant there so the full groups fold. */
AXQ_INLINE grp_f grp_scale_row(int type, grp_i isum, grp_f d, grp_f mw, const uint8_t *row, long k, long nb, long g0,
                               int t, grp_f acc) {
  int offset = type == AX_T_Q4_0 ? 8 : type == AX_T_Q5_0 ? 16 : type == AX_T_Q8_0 ? GRP_Q8_OFFSET : 0;
  const uint8_t *aux = axq_act_aux(row, k, nb) + 4 * g0;
  if (offset) isum = grp_sub_i(isum, grp_shl_i(grp_load_i((const int32_t *)aux, t), offset == 8 ? 3 : offset == 16 ? 4 : 7));
  grp_f scale = grp_mul_f(d, grp_load_f(axq_act_d(row, k) + g0, t));
  acc = grp_fma(grp_cvt(isum), scale, acc, t);
  if (type == AX_T_Q4_1 || type == AX_T_Q5_1) acc = grp_fma(mw, grp_load_f((const float *)aux, t), acc, t);
  return acc;
}

/* The block sums of one group of one activation row: 8 vectors of products, reduced. */
AXQ_INLINE grp_i grp_isum(int type, const grp_q *q, const uint8_t *row, long g0, int t) {
  const int8_t *x = axq_act_q(row) + 32 * g0;
  grp_i v[8];
  for (int i = 0; i < 8; i++) v[i] = i * (AXQ_G / 8) < t ? grp_dot(type, q[i], x + 4 * AXQ_G * i) : grp_zero_i();
  return grp_reduce(v);
}

/* One group of one weight row (t blocks from block g0 at wg) for the chunk's mr rows. */
AXQ_INLINE void grp_rows(int type, const uint8_t *wg, long bb, long g0, int t, const uint8_t *rows, long rb, int mr,
                         const int8_t *xt, long ngt, long k, long nb, grp_f *acc) {
  grp_q q[8];
  grp_f d, mw;
  grp_scales(type, wg, bb, t, &d, &mw);
#ifdef GRP_TRANSPOSED
  if (xt) {
    grp_unpack_t(type, wg, bb, t, q);
    for (int r = 0; r < mr; r++) {
      grp_i isum = grp_isum_t(q, xt + 512 * (r * ngt + g0 / AXQ_G));
      acc[r] = grp_scale_row(type, isum, d, mw, rows + r * rb, k, nb, g0, t, acc[r]);
    }
    return;
  }
#else
  (void)xt, (void)ngt;
#endif
  grp_unpack(type, wg, bb, t, q);
  for (int r = 0; r < mr; r++) {
    const uint8_t *row = rows + r * rb;
    acc[r] = grp_scale_row(type, grp_isum(type, q, row, g0, t), d, mw, row, k, nb, g0, t, acc[r]);
  }
}

/* y[r, j] for weight rows j < n and activation rows r < m, a weight row at a time. */
AXQ_INLINE void linear_32(int type, const uint8_t *w, long ldw, long n, long k, const uint8_t *xq, long m, float *y,
                          long ldy) {
  long nb = k / 32, bb = axq_block_bytes(type), rb = ax_q_act_row_bytes(ax_q_act_type(type), k);
  long ngt = (nb + AXQ_G - 1) / AXQ_G; /* groups, the last maybe partial */
  grp_f acc[AXQ_RB];
  int8_t *xt = 0; /* a chunk's activations transposed: group g of row r at 512 (r ngt + g) */
#ifdef GRP_TRANSPOSED
  if (m >= GRP_TRANSPOSED && (type == AX_T_Q4_0 || type == AX_T_Q4_1 || type == AX_T_Q8_0))
    xt = (int8_t *)aligned_alloc(64, (size_t)(AXQ_RB * ngt * 512)); /* none: the reduced form */
#endif
  for (long r0 = 0; r0 < m; r0 += AXQ_RB) {
    int mr = m - r0 < AXQ_RB ? (int)(m - r0) : AXQ_RB;
    const uint8_t *rows = xq + r0 * rb;
    const int8_t *xtc = 0;
#ifdef GRP_TRANSPOSED
    if (xt && mr >= GRP_TRANSPOSED) {
      for (int r = 0; r < mr; r++)
        for (long g = 0; g < ngt; g++) {
          int t = nb - g * AXQ_G < AXQ_G ? (int)(nb - g * AXQ_G) : AXQ_G;
          grp_transpose_x(axq_act_q(rows + r * rb) + 512 * g, t, xt + 512 * (r * ngt + g));
        }
      xtc = xt;
    }
#endif
    const uint8_t *wj = w;
    for (long j = 0; j < n; j++, wj += ldw) {
      for (int r = 0; r < mr; r++) acc[r] = grp_zero_f();
      long g0 = 0;
      for (; g0 + AXQ_G <= nb; g0 += AXQ_G) {
        prefetch_ahead(wj + g0 * bb, AXQ_G * bb);
        grp_rows(type, wj + g0 * bb, bb, g0, AXQ_G, rows, rb, mr, xtc, ngt, k, nb, acc);
      }
      if (g0 < nb) grp_rows(type, wj + g0 * bb, bb, g0, (int)(nb - g0), rows, rb, mr, xtc, ngt, k, nb, acc);
      float out[AXQ_RB];
      grp_hsum_rows(acc, mr, out);
      for (int r = 0; r < mr; r++) y[(r0 + r) * ldy + j] = out[r];
    }
  }
  free(xt);
}
