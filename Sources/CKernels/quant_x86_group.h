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
 *                                   lanes < t, c beyond;  grp_hsum(f): the sum of the lanes
 *   grp_zero_i, grp_zero_f, grp_sub_i, grp_shl_i(v, bits), grp_mul_f, grp_cvt (int32 -> float)
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
 * (d_w · d_x) [+ m_w · s_x, a second multiply-add], then grp_hsum. Only integer work (exact) is
 * shared between rows. */

/* Activation rows taken per pass over a weight row (the accumulators live on the stack). */
#define AXQ_RB 16

/* One group (t blocks from block g0) of one activation row into acc: t is AXQ_G for all but the
 * last group, a constant there so the full groups fold. */
AXQ_INLINE grp_f grp_row(int type, const grp_q *q, grp_f d, grp_f mw, const uint8_t *row, long k, long nb, long g0,
                         int t, grp_f acc) {
  const int8_t *x = axq_act_q(row) + 32 * g0;
  grp_i v[8];
  for (int i = 0; i < 8; i++) {
    int first = i * (AXQ_G / 8);
    v[i] = first < t ? grp_dot(type, q[i], x + 4 * AXQ_G * i) : grp_zero_i();
  }
  grp_i isum = grp_reduce(v);
  int offset = type == AX_T_Q4_0 ? 8 : type == AX_T_Q5_0 ? 16 : type == AX_T_Q8_0 ? GRP_Q8_OFFSET : 0;
  const uint8_t *aux = axq_act_aux(row, k, nb) + 4 * g0;
  if (offset) isum = grp_sub_i(isum, grp_shl_i(grp_load_i((const int32_t *)aux, t), offset == 8 ? 3 : offset == 16 ? 4 : 7));
  grp_f scale = grp_mul_f(d, grp_load_f(axq_act_d(row, k) + g0, t));
  acc = grp_fma(grp_cvt(isum), scale, acc, t);
  if (type == AX_T_Q4_1 || type == AX_T_Q5_1) acc = grp_fma(mw, grp_load_f((const float *)aux, t), acc, t);
  return acc;
}

/* y[r, j] for weight rows j < n and activation rows r < m, a weight row at a time. */
AXQ_INLINE void linear_32(int type, const uint8_t *w, long ldw, long n, long k, const uint8_t *xq, long m, float *y,
                          long ldy) {
  long nb = k / 32, bb = axq_block_bytes(type), rb = ax_q_act_row_bytes(ax_q_act_type(type), k);
  grp_f acc[AXQ_RB];
  for (long j = 0; j < n; j++, w += ldw) {
    for (long r0 = 0; r0 < m; r0 += AXQ_RB) {
      int mr = m - r0 < AXQ_RB ? (int)(m - r0) : AXQ_RB;
      const uint8_t *rows = xq + r0 * rb;
      for (int r = 0; r < mr; r++) acc[r] = grp_zero_f();
      long g0 = 0;
      for (; g0 + AXQ_G <= nb; g0 += AXQ_G) {
        const uint8_t *wg = w + g0 * bb;
        prefetch_ahead(wg, AXQ_G * bb);
        grp_q q[8];
        grp_f d, mw;
        grp_unpack(type, wg, bb, AXQ_G, q);
        grp_scales(type, wg, bb, AXQ_G, &d, &mw);
        for (int r = 0; r < mr; r++) acc[r] = grp_row(type, q, d, mw, rows + r * rb, k, nb, g0, AXQ_G, acc[r]);
      }
      if (g0 < nb) {
        int t = (int)(nb - g0);
        const uint8_t *wg = w + g0 * bb;
        grp_q q[8];
        grp_f d, mw;
        grp_unpack(type, wg, bb, t, q);
        grp_scales(type, wg, bb, t, &d, &mw);
        for (int r = 0; r < mr; r++) acc[r] = grp_row(type, q, d, mw, rows + r * rb, k, nb, g0, t, acc[r]);
      }
      for (int r = 0; r < mr; r++) y[(r0 + r) * ldy + j] = grp_hsum(acc[r]);
    }
  }
}
