/* The per-type entry points and ax_q_linear_rows of an x86 level: the 32-element formats over
 * groups of blocks (quant_x86_group.h, with the level's grp_ primitives), the K-quants over the
 * kernels of quant_x86_body.h or (ROWS_Q45_K, ROWS_Q6_K) the level's own. */
#include "quant_x86_group.h"

#ifndef ROWS_Q45_K
#define ROWS_Q45_K rows_q45_k
#endif
#ifndef ROWS_Q6_K
#define ROWS_Q6_K rows_q6_k
#endif

/* One weight row against mr activation rows; mr a constant in each instance. */
AXQ_INLINE void rows_any(int type, const uint8_t *w, long nb, const act_rows *a, float *out, const int mr) {
  switch (type) {
  case AX_T_Q4_K: ROWS_Q45_K(0, w, nb, a, out, mr); break;
  case AX_T_Q5_K: ROWS_Q45_K(1, w, nb, a, out, mr); break;
  default: ROWS_Q6_K(w, nb, a, out, mr); break;
  }
}

#define AXQ_ROWS_TYPE(T, NAME)                                                                             \
  static void NAME##_1(const uint8_t *w, long nb, const act_rows *a, float *o) { rows_any(T, w, nb, a, o, 1); } \
  static void NAME##_2(const uint8_t *w, long nb, const act_rows *a, float *o) { rows_any(T, w, nb, a, o, 2); } \
  static void NAME##_3(const uint8_t *w, long nb, const act_rows *a, float *o) { rows_any(T, w, nb, a, o, 3); } \
  static void NAME##_4(const uint8_t *w, long nb, const act_rows *a, float *o) { rows_any(T, w, nb, a, o, 4); }

AXQ_ROWS_TYPE(AX_T_Q4_K, k_q4_k)
AXQ_ROWS_TYPE(AX_T_Q5_K, k_q5_k)
AXQ_ROWS_TYPE(AX_T_Q6_K, k_q6_k)

/* linear_32 for one type (the type a constant, so its branches fold). */
#define AXQ_LINEAR_32(T, NAME)                                                                              \
  static void NAME(const uint8_t *w, long ldw, long n, long k, const uint8_t *xq, long m, float *y, long ldy) { \
    linear_32(T, w, ldw, n, k, xq, m, y, ldy);                                                             \
  }
AXQ_LINEAR_32(AX_T_Q4_0, lin_q4_0)
AXQ_LINEAR_32(AX_T_Q4_1, lin_q4_1)
AXQ_LINEAR_32(AX_T_Q5_0, lin_q5_0)
AXQ_LINEAR_32(AX_T_Q5_1, lin_q5_1)
AXQ_LINEAR_32(AX_T_Q8_0, lin_q8_0)

typedef void (*rows_fn)(const uint8_t *w, long nb, const act_rows *a, float *o);
#define AXQ_FNS(NAME) {NAME##_1, NAME##_2, NAME##_3, NAME##_4}

void FNQ(linear_rows)(int type, const void *w, long ldw, long n, long k, const void *xq, long m, float *y, long ldy) {
  static const rows_fn fns[][AXQ_MR] = {AXQ_FNS(k_q4_k), AXQ_FNS(k_q5_k), AXQ_FNS(k_q6_k)};
  long be = ax_q_block_elems(type);
  if (be == 0 || n <= 0 || m <= 0) return;
  const uint8_t *wb = (const uint8_t *)w, *xb = (const uint8_t *)xq;
  int which = -1;
  switch (type) {
  case AX_T_Q4_0: lin_q4_0(wb, ldw, n, k, xb, m, y, ldy); return;
  case AX_T_Q4_1: lin_q4_1(wb, ldw, n, k, xb, m, y, ldy); return;
  case AX_T_Q5_0: lin_q5_0(wb, ldw, n, k, xb, m, y, ldy); return;
  case AX_T_Q5_1: lin_q5_1(wb, ldw, n, k, xb, m, y, ldy); return;
  case AX_T_Q8_0: lin_q8_0(wb, ldw, n, k, xb, m, y, ldy); return;
  case AX_T_Q4_K: which = 0; break;
  case AX_T_Q5_K: which = 1; break;
  case AX_T_Q6_K: which = 2; break;
  default: break;
  }
  if (which < 0) {
    FNQ(linear_generic)(type, (const uint8_t *)w, ldw, n, k, (const uint8_t *)xq, m, y, ldy);
    return;
  }
  long nb = k / be, rb = ax_q_act_row_bytes(ax_q_act_type(type), k);
  /* Weight rows outside, activation rows inside: a weight row is read from memory once and
   * stays in L1 while every chunk of AXQ_MR activation rows passes over it. */
  for (long j = 0; j < n; j++) {
    for (long r0 = 0; r0 < m; r0 += AXQ_MR) {
      int mr = m - r0 < AXQ_MR ? (int)(m - r0) : AXQ_MR;
      act_rows a;
      for (int r = 0; r < mr; r++) {
        const uint8_t *row = (const uint8_t *)xq + (r0 + r) * rb;
        a.q[r] = axq_act_q(row);
        a.d[r] = axq_act_d(row, k);
        a.aux[r] = axq_act_aux(row, k, nb);
      }
      float out[AXQ_MR];
      fns[which][mr - 1]((const uint8_t *)w + j * ldw, nb, &a, out);
      for (int r = 0; r < mr; r++) y[(r0 + r) * ldy + j] = out[r];
    }
  }
}
