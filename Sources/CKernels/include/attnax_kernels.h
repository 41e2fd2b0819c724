#ifndef ATTNAX_KERNELS_H
#define ATTNAX_KERNELS_H

/* Element-wise and row kernels of the attention blocks, compiled three times (AVX-512,
 * AVX2+FMA, portable C) and dispatched at run time on the CPU's features, because Swift code
 * is built for baseline x86-64 (SSE2 only). Every buffer is contiguous float32, row-major.
 * Results of the three paths agree to a few ulp (same polynomials; FMA rounding differs). */

#ifdef __cplusplus
extern "C" {
#endif

/* Instruction set in use: 0 portable, 1 AVX2+FMA, 2 AVX-512 (F/DQ/BW/VL), the best the CPU
 * has unless ATTNAX_SIMD=portable|avx2 lowers it. */
int ax_simd_level(void);
/* "avx512", "avx2" or "portable". */
const char *ax_simd_name(void);

/* The kernels of one level (clamped to what the CPU supports), so tests can compare levels
 * without changing the process-wide choice. The ax_* functions below call the current level's. */
typedef struct ax_kernel_table {
  int level;
  const char *name;
  float (*exp_shift_sum)(float *row, long n, float shift);
  float (*row_max)(const float *row, long n, float floor);
  void (*scale)(float *x, long n, float a);
  void (*bias_act)(float *y, const float *bias, long rows, long cols, int act);
  void (*glu)(float *gate, const float *gate_bias, const float *up, const float *up_bias, long rows,
              long cols, int act);
  void (*bias_residual)(float *y, const float *bias, const float *residual, long rows, long cols);
  void (*norm_rows)(const float *x, float *out, long rows, long d, const float *scale,
                    const float *bias, float eps, int rms);
  float (*stream_sum)(const float *x, long n);
  void (*linear_rows)(const float *x, long m, long k, long ldx, const float *w, long ldw, long n,
                      float *y, long ldy);
  void (*rows_times)(const float *p, long m, long k, long ldp, const float *v, long ldv, long n,
                     float *y, long ldy);
  void (*key_scores)(const float *q, long m, long d, long ldq, const long *kv, const float *k, long ldk,
                     long n, float *s, long lds);
  void (*value_sums)(const float *p, long m, long n, long ldp, const long *kv, const float *v, long ldv,
                     long d, float *y, long ldy);
} ax_kernel_table;
const ax_kernel_table *ax_kernels_at(int level);

/* Activations of the feed-forward layer. */
enum { AX_ACT_NONE = 0, AX_ACT_RELU = 1, AX_ACT_SILU = 2, AX_ACT_GELU_TANH = 3, AX_ACT_GELU_ERF = 4 };

/* row: (n) -> row[j] = exp(row[j] - shift); returns the sum. Requires row[j] <= shift (the
 * softmax case: shift is the row max); arguments below -87.34 give exactly 0. */
float ax_exp_shift_sum(float *row, long n, float shift);

/* row: (n) -> max(floor, max_j row[j]). */
float ax_row_max(const float *row, long n, float floor);

/* x: (n) -> sum of x, read with full-width loads, in order: the streaming-read probe of benchmarks,
 * and how a decode step pulls a block of its KV cache into the caches before reading it in a pattern
 * the hardware prefetchers follow less well. */
float ax_stream_sum(const float *x, long n);

/* x: (n) -> x * a, in place. */
void ax_scale(float *x, long n, float a);

/* y: (rows, cols), bias: (cols) or NULL -> y = act(y + bias), in place. */
void ax_bias_act(float *y, const float *bias, long rows, long cols, int act);

/* gate, up: (rows, cols), biases: (cols) or NULL -> gate = act(gate + gb) * (up + ub). */
void ax_glu(float *gate, const float *gate_bias, const float *up, const float *up_bias,
            long rows, long cols, int act);

/* y, residual: (rows, cols), bias: (cols) or NULL -> y = (y + bias) + residual, in place. */
void ax_bias_residual(float *y, const float *bias, const float *residual, long rows, long cols);

/* x, out: (rows, d), scale/bias: (d), bias may be NULL. LayerNorm (rms = 0: Flax's fast
 * variance E[x^2] - E[x]^2 clipped at 0, sums in double) or RMSNorm (rms = 1):
 * out = (x - mean) * (rsqrt(var + eps) * scale) + bias, or x * rsqrt(E[x^2] + eps) * scale. */
void ax_norm_rows(const float *x, float *out, long rows, long d, const float *scale,
                  const float *bias, float eps, int rms);

/* A linear layer (or the tied LM head) for a few rows (decode steps), streaming the weights once.
 * x: (m, k) row stride ldx, w: (n, k) row stride ldw (weights stored (out, in)) -> y: (m, n) row stride
 * ldy, y[r, j] = x[r] . w[j], each a fixed-order reduction, so splitting the rows of w over calls
 * (threads) gives the same bits as one call. */
void ax_linear_rows(const float *x, long m, long k, long ldx, const float *w, long ldw, long n, float *y, long ldy);

/* y: (m, n) row stride ldy += p: (m, k) row stride ldp . v: (k, n) row stride ldv, for a few rows:
 * a decode step's attention probabilities times one head's values; v read once, in order. */
void ax_rows_times(const float *p, long m, long k, long ldp, const float *v, long ldv, long n, float *y, long ldy);

/* A decode step's attention over a block of cached keys, all query heads at once. q: (m, d) row stride
 * ldq, one row per query head; kv[r]: the KV head row r reads; k: (n, .) row stride ldk, KV
 * head h at columns h*d.. -> s: (m, n) row stride lds, s[r, j] = q[r] . k[j][kv[r]*d ..]. The cache
 * rows are read in order, whole (four keys per reduction tree). */
void ax_key_scores(const float *q, long m, long d, long ldq, const long *kv, const float *k, long ldk, long n,
                   float *s, long lds);

/* p: (m, n) row stride ldp; kv as above; v: (n, .) row stride ldv -> y: (m, d) row stride ldy +=
 * sum_j p[r, j] v[j][kv[r]*d ..]: the same block's values, rows read in order, y in L1. */
void ax_value_sums(const float *p, long m, long n, long ldp, const long *kv, const float *v, long ldv, long d,
                   float *y, long ldy);

/* Keeps freed heap memory mapped (glibc: no trimming, mmap only above 32 MiB) so repeated
 * forwards reuse their activation buffers instead of page-faulting them in. 1 if applied. */
int ax_keep_freed_memory(void);

#ifdef __cplusplus
}
#endif
#endif
