/* The integer kernels over 256-bit vectors, written once for AVX2 and for AVX-512 VNNI.
 * Included by quant_avx2.c and quant_avx512.c inside their target pragma (then quant_x86_driver.h),
 * after they define:
 *   FNQ(name)            the level's suffix
 *   DOT_US(acc, u, s)    acc + Σ of 4 products u8·s8 per int32 lane (u ≤ 128: no saturation
 *                        for our inputs with maddubs: |pair| ≤ 2·128·127 < 32768)
 *   MADD_ACC(acc, p, s)  acc + p·s summed in pairs of int16 lanes (int32 lanes)
 *   BITS32(bits)         32 bytes, 0xFF where bit i of the uint32 is set
 * Each weight block is unpacked once and used for up to AXQ_MR activation rows; every block's
 * integer sum is scaled in float as ggml does: acc += (d_w · d_x) · isum. The 32-element formats
 * are in quant_x86_group.h. */

/* How far ahead of the block in hand the weight rows are prefetched (bytes): a thread streams
 * short rows back to back, and the hardware prefetchers alone left the kernels waiting on loads.
 * SmolLM2 Q4_1 decode at 2 threads: none 80 tokens/s, 512 B 88, 1 KiB 98, 4 KiB 104-110, 8 KiB
 * 101-104, 16 KiB 97-101. */
#define AXQ_PREFETCH 4096
/* Prefetches the cache lines of [p + AXQ_PREFETCH, p + AXQ_PREFETCH + bytes). */
AXQ_INLINE void prefetch_ahead(const uint8_t *p, long bytes) {
  for (long o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + AXQ_PREFETCH + o, _MM_HINT_T0);
}

/* The float16 at p (and the one after it, in lane 1), through a 4-byte vmovd load, which clears
 * the rest of the register. Left to itself the compiler narrows this to vpinsrw into whatever
 * register it likes, often a live accumulator: a false dependency chaining every block to the
 * last (3x slower). The empty asm makes all lanes look used, so the load stays whole. */
AXQ_INLINE __m128 h2f_pair(const uint8_t *p) {
  __m128i v = _mm_cvtsi32_si128((int)axq_u32(p));
  __asm__("" : "+x"(v));
  return _mm_cvtph_ps(v);
}
AXQ_INLINE float h2f(const uint8_t *p) { return _mm_cvtss_f32(h2f_pair(p)); }
AXQ_INLINE __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
AXQ_INLINE __m256i bytes_set(int v) { return _mm256_set1_epi8((char)v); }
/* 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0-15), then high nibbles (16-31). */
AXQ_INLINE __m256i nib32(const uint8_t *p) {
  __m128i b = _mm_loadu_si128((const __m128i *)p);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), bytes_set(15));
}
/* An int32 vector holding v in lane 0: the integer offset of a block folded into its sum. */
AXQ_INLINE __m256i lane0(int v) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(v)); }
AXQ_INLINE float hsum8(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
AXQ_INLINE float hsum4(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
/* Word j of each 128-bit lane broadcast across that lane (for in-lane scale shuffles). */
AXQ_INLINE __m256i word_mask(int lo_word, int hi_word) {
  return _mm256_set_m128i(_mm_set1_epi16((short)((2 * hi_word + 1) << 8 | 2 * hi_word)),
                          _mm_set1_epi16((short)((2 * lo_word + 1) << 8 | 2 * lo_word)));
}

/* axq_k4_scales in vector registers: the 8 scales then the 8 minimums of a Q4_K / Q5_K block,
 * from a 16-byte load at q (the 12 scale bytes and 4 of the next field, ignored). Built from
 * the load alone: assembled in general registers, the compiler inserted the words into a live
 * accumulator's register and chained every super-block to the last. */
AXQ_INLINE __m128i k4_scales(const uint8_t *q) {
  __m128i v = _mm_loadu_si128((const __m128i *)q); /* 32-bit lanes a, b, c */
  __m128i low6 = _mm_and_si128(v, _mm_set1_epi8(0x3f));                      /* [a & 63, b & 63] */
  __m128i top2 = _mm_and_si128(_mm_srli_epi32(v, 2), _mm_set1_epi8(0x30));   /* bits 6-7 at 4-5 */
  __m128i c_lo = _mm_and_si128(v, _mm_set1_epi8(0x0f)), c_hi = _mm_and_si128(_mm_srli_epi32(v, 4), _mm_set1_epi8(0x0f));
  __m128i high = _mm_or_si128(_mm_unpackhi_epi32(c_lo, c_hi), top2);           /* [scales 4-7, mins 4-7] */
  return _mm_unpacklo_epi32(low6, high);
}

static float dot_f32(const float *a, const float *b, long n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (long i = 0; i < n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

#include "quant_generic_body.h"

/* The activation rows of one pass: quants, d, and the per-block aux (sums, s or bsums). */
typedef struct {
  const int8_t *q[AXQ_MR];
  const float *d[AXQ_MR];
  const uint8_t *aux[AXQ_MR];
} act_rows;

/* Q4_K / Q5_K: per 64 elements, low nibbles (sub-block 2j) and high nibbles (2j + 1), each
 * sub-block's 6-bit scale applied to int16 pair sums; minimums against the activations' bsums. */
AXQ_INLINE void rows_q45_k(int five, const uint8_t *w, long nb, const act_rows *a, float *out, const int mr) {
  __m256 acc[AXQ_MR];
  __m128 accm[AXQ_MR];
  for (int r = 0; r < mr; r++) { acc[r] = _mm256_setzero_ps(); accm[r] = _mm_setzero_ps(); }
  long bytes = five ? 176 : 144;
  for (long b = 0; b < nb; b++, w += bytes) {
    prefetch_ahead(w, bytes);
    __m128i sm8 = k4_scales(w + 4);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm8));
    __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));
    const uint8_t *qs = w + (five ? 48 : 16);
    __m256i hb = five ? ld256(w + 16) : _mm256_setzero_si256();
    __m256i isum[AXQ_MR];
    for (int r = 0; r < mr; r++) isum[r] = _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
      __m256i raw = ld256(qs + 32 * j);
      __m256i lo = _mm256_and_si256(raw, bytes_set(15)), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), bytes_set(15));
      if (five) {
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(hb, 4), bytes_set(16)));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(hb, 3), bytes_set(16)));
        hb = _mm256_srli_epi16(hb, 2);
      }
      __m256i s_lo = _mm256_shuffle_epi8(sc16, word_mask(2 * j, 2 * j));
      __m256i s_hi = _mm256_shuffle_epi8(sc16, word_mask(2 * j + 1, 2 * j + 1));
      for (int r = 0; r < mr; r++) {
        const int8_t *x = a->q[r] + 256 * b + 64 * j;
        isum[r] = MADD_ACC(isum[r], _mm256_maddubs_epi16(lo, ld256(x)), s_lo);
        isum[r] = MADD_ACC(isum[r], _mm256_maddubs_epi16(hi, ld256(x + 32)), s_hi);
      }
    }
    __m128 dd = h2f_pair(w);
    float d = _mm_cvtss_f32(dd), dmin = _mm_cvtss_f32(_mm_movehdup_ps(dd));
    for (int r = 0; r < mr; r++) {
      __m256i bs = ld256((const int16_t *)a->aux[r] + 16 * b);
      __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      __m128i mprod = _mm_madd_epi16(mins16, pairs);
      float dx = a->d[r][b];
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * d), _mm256_cvtepi32_ps(isum[r]), acc[r]);
      accm[r] = _mm_fmadd_ps(_mm_set1_ps(dx * dmin), _mm_cvtepi32_ps(mprod), accm[r]);
    }
  }
  for (int r = 0; r < mr; r++) out[r] = hsum8(acc[r]) - hsum4(accm[r]);
}

/* Q6_K: 6-bit quants q in 0..63 (unsigned for maddubs), int8 scale per 16, the − 32 offset as
 * 32 · Σ_g sc_g · bsum_g subtracted in int32. */
AXQ_INLINE void rows_q6_k(const uint8_t *w, long nb, const act_rows *a, float *out, const int mr) {
  __m256 acc[AXQ_MR];
  for (int r = 0; r < mr; r++) acc[r] = _mm256_setzero_ps();
  const __m256i m4 = bytes_set(15), m2 = bytes_set(3);
  for (long b = 0; b < nb; b++, w += 210) {
    prefetch_ahead(w, 210);
    __m256i sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
    __m256i isum[AXQ_MR];
    for (int r = 0; r < mr; r++) isum[r] = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i scb = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(w + 192 + 8 * h))));
      __m256i A = ld256(w + 64 * h), C = ld256(w + 64 * h + 32), H = ld256(w + 128 + 32 * h);
      __m256i v[4];
      v[0] = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_slli_epi16(_mm256_and_si256(H, m2), 4));
      v[1] = _mm256_or_si256(_mm256_and_si256(C, m4), _mm256_slli_epi16(_mm256_and_si256(H, bytes_set(12)), 2));
      v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_and_si256(H, bytes_set(48)));
      v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(C, 4), m4),
                             _mm256_srli_epi16(_mm256_and_si256(H, bytes_set(192)), 2));
      for (int i = 0; i < 4; i++) {
        __m256i s = _mm256_shuffle_epi8(scb, word_mask(2 * i, 2 * i + 1));
        for (int r = 0; r < mr; r++)
          isum[r] = MADD_ACC(isum[r], _mm256_maddubs_epi16(v[i], ld256(a->q[r] + 256 * b + 128 * h + 32 * i)), s);
      }
    }
    float d = _mm_cvtss_f32(_mm_movehdup_ps(h2f_pair(w + 206)));
    for (int r = 0; r < mr; r++) {
      __m256i corr = _mm256_madd_epi16(sc_all, ld256((const int16_t *)a->aux[r] + 16 * b));
      __m256i v = _mm256_sub_epi32(isum[r], _mm256_slli_epi32(corr, 5));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a->d[r][b] * d), _mm256_cvtepi32_ps(v), acc[r]);
    }
  }
  for (int r = 0; r < mr; r++) out[r] = hsum8(acc[r]);
}

