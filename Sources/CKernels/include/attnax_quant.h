#ifndef ATTNAX_QUANT_H
#define ATTNAX_QUANT_H

/* Products with weights kept in GGUF's block formats, as the file stores them.
 *
 * A weight matrix is n rows (output features) of k elements (input features), each row a run of
 * whole blocks in the GGUF layout of its type (row stride ldw bytes). Activations are rounded
 * per block the way llama.cpp's dot products take them (each weight type's "vec_dot_type"):
 * Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, float16 for F16, bfloat16
 * for BF16, nothing for F32. Two paths compute the same numbers:
 *   - a few rows (decode): ax_q_quantize_act, then ax_q_linear_rows (integer dot products);
 *   - many rows (prefill): ax_q_round_act (the activations as those blocks represent them, in
 *     float) and ax_q_dequantize_rows (tiles of weights in float) for an sgemm.
 * Both equal sum_i dequant(w)[i] * round(x)[i], up to float summation order, except that for
 * Q4_1 / Q5_1 the integer path takes each block's sum of x as Q8_1's float16 s, as ggml does:
 * the paths then differ by m_w * (s - sum x) per block (about 2^-11 of the minimum's term).
 * ax_q_linear_rows needs no scratch for the integer kernels; the float fallback (F32, F16, BF16,
 * Q2_K, Q3_K) mallocs m * k floats per call. All functions are thread-safe; split n across
 * threads by offsetting w and y.
 *
 * Compiled three times (portable C, AVX2, AVX-512 with VNNI) and dispatched at run time like
 * attnax_kernels.h; ATTNAX_SIMD=portable|avx2 lowers the level. */

#ifdef __cplusplus
extern "C" {
#endif

/* GGUF type ids (ggml_type). */
enum {
  AX_T_F32 = 0, AX_T_F16 = 1, AX_T_Q4_0 = 2, AX_T_Q4_1 = 3, AX_T_Q5_0 = 6, AX_T_Q5_1 = 7,
  AX_T_Q8_0 = 8, AX_T_Q8_1 = 9, AX_T_Q2_K = 10, AX_T_Q3_K = 11, AX_T_Q4_K = 12, AX_T_Q5_K = 13,
  AX_T_Q6_K = 14, AX_T_Q8_K = 15, AX_T_BF16 = 30
};

/* Elements per block of a weight type (32, 256, or 1 for F32/F16/BF16); 0 if the kernels do not
 * take it as a weight type. */
long ax_q_block_elems(int type);
/* GGUF bytes per block of a weight type; 0 if unsupported. */
long ax_q_block_bytes(int type);
/* The activation type of a weight type's products: AX_T_Q8_0, AX_T_Q8_1, AX_T_Q8_K, AX_T_F16,
 * AX_T_BF16 or AX_T_F32; -1 if unsupported. */
int ax_q_act_type(int weight_type);
/* Bytes of one row of k activations in ax_q_quantize_act's layout for act_type (k a multiple of
 * the weight type's block); a multiple of 64. The layout (quants first, then float scales and
 * per-block sums) is described in quant_internal.h. An xq buffer must be 4-byte aligned (the
 * kernels read its scales as floats); 64-byte alignment keeps every block's quants in one cache
 * line. Weights need no alignment. */
long ax_q_act_row_bytes(int act_type, long k);

/* x: (m, k) row stride ldx -> xq: m rows of ax_q_act_row_bytes(act_type, k) bytes. */
void ax_q_quantize_act(int act_type, const float *x, long m, long k, long ldx, void *xq);
/* x: (m, k) row stride ldx -> out: (m, k) row stride ldo, the values ax_q_quantize_act's blocks
 * represent (d * q; a float16 / bfloat16 rounding; x itself for F32). out may equal x. */
void ax_q_round_act(int act_type, const float *x, long m, long k, long ldx, float *out, long ldo);
/* w: n rows of `type`, k elements each, row stride ldw bytes; xq: m rows from ax_q_quantize_act
 * for ax_q_act_type(type) -> y[r * ldy + j] = dequant(w row j) . round(x row r). */
void ax_q_linear_rows(int type, const void *w, long ldw, long n, long k, const void *xq, long m, float *y,
                      long ldy);
/* w: n rows of `type` -> out: (n, k) row stride ldo, float32, bit-equal to ggml's dequantize. */
void ax_q_dequantize_rows(int type, const void *w, long ldw, long n, long k, float *out, long ldo);
/* x: (n, k) row stride ldx -> n rows of Q8_0 blocks (k / 32 * 34 bytes), row stride ldo bytes, as
 * ggml's quantize_row_q8_0_ref (k a multiple of 32). */
void ax_q_quantize_q8_0(const float *x, long n, long k, long ldx, void *out, long ldo);

/* One level's kernels, for tests comparing levels without changing the process-wide choice. */
typedef struct ax_quant_table {
  int level;
  const char *name;
  void (*quantize_act)(int act_type, const float *x, long m, long k, long ldx, void *xq);
  void (*linear_rows)(int type, const void *w, long ldw, long n, long k, const void *xq, long m, float *y,
                      long ldy);
  void (*dequantize_rows)(int type, const void *w, long ldw, long n, long k, float *out, long ldo);
} ax_quant_table;
/* Levels: 0 portable, 1 AVX2 (+FMA, F16C), 2 AVX-512 (F/BW/VL) with VNNI; clamped to the CPU's. */
const ax_quant_table *ax_quant_kernels_at(int level);
/* "avx512vnni", "avx2" or "portable": the level in use. */
const char *ax_quant_name(void);

#ifdef __cplusplus
}
#endif
#endif
