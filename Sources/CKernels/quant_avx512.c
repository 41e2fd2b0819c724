/* The block-format kernels for AVX-512 (F/BW/VL) with VNNI: vpdpbusd (u8 × s8 sums of 4 into
 * int32, no int16 saturation) for the 32-element formats over 256-bit vectors, and 512-bit
 * kernels for the K-quants here, where vpdpwssd applies the scales to int16 pair sums of 64
 * elements at a time and mask registers carry Q5_K's fifth bits. */
#include "quant_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)

#define FNQ(name) axq_##name##_avx512

#define DOT_US(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#define MADD_ACC(acc, p, s) _mm256_dpwssd_epi32(acc, p, s)
#define BITS32(bits) _mm256_movm_epi8((__mmask32)(bits))

#include "quant_x86_body.h"

AXQ_INLINE __m512i ld512(const void *p) { return _mm512_loadu_si512(p); }
AXQ_INLINE __m512i bytes512(int v) { return _mm512_set1_epi8((char)v); }
/* a in the low 256 bits, b in the high 256 bits. */
AXQ_INLINE __m512i halves(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }
/* The int32 sums of two accumulators, folded to 8 lanes. */
AXQ_INLINE __m256i fold512(__m512i a, __m512i b) {
  __m512i s = _mm512_add_epi32(a, b);
  return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}

/* Q4_K / Q5_K, 64 elements per step: low nibbles (sub-block 2j) in the low half, high nibbles
 * (2j + 1) in the high half, as the activations lie; two accumulators against vpdpwssd's latency. */
AXQ_INLINE void rows_q45_k_512(int five, const uint8_t *w, long nb, const act_rows *a, float *out, const int mr) {
  __m256 acc[AXQ_MR];
  __m128 accm[AXQ_MR];
  for (int r = 0; r < mr; r++) { acc[r] = _mm256_setzero_ps(); accm[r] = _mm_setzero_ps(); }
  long bytes = five ? 176 : 144;
  for (long b = 0; b < nb; b++, w += bytes) {
    prefetch_ahead(w, bytes);
    __m128i sm8 = k4_scales(w + 4);
    __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(sm8));
    __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sm8, 8));
    const uint8_t *qs = w + (five ? 48 : 16);
    __m512i hb = five ? _mm512_broadcast_i64x4(ld256(w + 16)) : _mm512_setzero_si512();
    __m512i is0[AXQ_MR], is1[AXQ_MR];
    for (int r = 0; r < mr; r++) is0[r] = is1[r] = _mm512_setzero_si512();
    for (int j = 0; j < 4; j++) {
      __m256i raw = ld256(qs + 32 * j);
      __m512i q = _mm512_and_si512(halves(raw, _mm256_srli_epi16(raw, 4)), bytes512(15));
      if (five) {
        __mmask64 k = _mm512_test_epi8_mask(hb, halves(bytes_set(1 << (2 * j)), bytes_set(2 << (2 * j))));
        q = _mm512_mask_add_epi8(q, k, q, bytes512(16));
      }
      __m512i s = _mm512_shuffle_epi8(sc16, halves(word_mask(2 * j, 2 * j), word_mask(2 * j + 1, 2 * j + 1)));
      for (int r = 0; r < mr; r++) {
        __m512i p = _mm512_maddubs_epi16(q, ld512(a->q[r] + 256 * b + 64 * j));
        if (j & 1) is1[r] = _mm512_dpwssd_epi32(is1[r], p, s);
        else is0[r] = _mm512_dpwssd_epi32(is0[r], p, s);
      }
    }
    __m128 dd = h2f_pair(w);
    float d = _mm_cvtss_f32(dd), dmin = _mm_cvtss_f32(_mm_movehdup_ps(dd));
    for (int r = 0; r < mr; r++) {
      __m256i bs = ld256((const int16_t *)a->aux[r] + 16 * b);
      __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      __m128i mprod = _mm_madd_epi16(mins16, pairs);
      float dx = a->d[r][b];
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * d), _mm256_cvtepi32_ps(fold512(is0[r], is1[r])), acc[r]);
      accm[r] = _mm_fmadd_ps(_mm_set1_ps(dx * dmin), _mm_cvtepi32_ps(mprod), accm[r]);
    }
  }
  for (int r = 0; r < mr; r++) out[r] = hsum8(acc[r]) - hsum4(accm[r]);
}

/* Word i of the scale vector for 64 elements starting at group `base`: group base + i / 8. */
static const int16_t q6_scale_index[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                           2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

/* Q6_K, 64 elements per step: ql's 64 bytes of a half are one load; the high bits of each
 * half-vector are shifted by their own count (vpsllvw / vpsrlvw). */
AXQ_INLINE void rows_q6_k_512(const uint8_t *w, long nb, const act_rows *a, float *out, const int mr) {
  __m256 acc[AXQ_MR];
  for (int r = 0; r < mr; r++) acc[r] = _mm256_setzero_ps();
  const __m512i lanes = ld512(q6_scale_index), m4 = bytes512(15);
  const __m512i hmask01 = halves(bytes_set(3), bytes_set(12)), hmask23 = halves(bytes_set(48), bytes_set(192));
  const __m512i shl01 = halves(_mm256_set1_epi16(4), _mm256_set1_epi16(2));
  const __m512i shr23 = halves(_mm256_setzero_si256(), _mm256_set1_epi16(2));
  for (long b = 0; b < nb; b++, w += 210) {
    prefetch_ahead(w, 210);
    __m256i sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
    __m512i sc512 = _mm512_castsi256_si512(sc_all);
    __m512i is0[AXQ_MR], is1[AXQ_MR];
    for (int r = 0; r < mr; r++) is0[r] = is1[r] = _mm512_setzero_si512();
    for (int h = 0; h < 2; h++) {
      __m512i AC = ld512(w + 64 * h), HH = _mm512_broadcast_i64x4(ld256(w + 128 + 32 * h));
      __m512i v01 = _mm512_or_si512(_mm512_and_si512(AC, m4), _mm512_sllv_epi16(_mm512_and_si512(HH, hmask01), shl01));
      __m512i v23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(AC, 4), m4),
                                    _mm512_srlv_epi16(_mm512_and_si512(HH, hmask23), shr23));
      __m512i s01 = _mm512_permutexvar_epi16(_mm512_add_epi16(lanes, _mm512_set1_epi16((short)(8 * h))), sc512);
      __m512i s23 = _mm512_permutexvar_epi16(_mm512_add_epi16(lanes, _mm512_set1_epi16((short)(8 * h + 4))), sc512);
      for (int r = 0; r < mr; r++) {
        const int8_t *x = a->q[r] + 256 * b + 128 * h;
        is0[r] = _mm512_dpwssd_epi32(is0[r], _mm512_maddubs_epi16(v01, ld512(x)), s01);
        is1[r] = _mm512_dpwssd_epi32(is1[r], _mm512_maddubs_epi16(v23, ld512(x + 64)), s23);
      }
    }
    float d = _mm_cvtss_f32(_mm_movehdup_ps(h2f_pair(w + 206)));
    for (int r = 0; r < mr; r++) {
      __m256i corr = _mm256_madd_epi16(sc_all, ld256((const int16_t *)a->aux[r] + 16 * b));
      __m256i v = _mm256_sub_epi32(fold512(is0[r], is1[r]), _mm256_slli_epi32(corr, 5));
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a->d[r][b] * d), _mm256_cvtepi32_ps(v), acc[r]);
    }
  }
  for (int r = 0; r < mr; r++) out[r] = hsum8(acc[r]);
}

/* The group primitives of quant_x86_group.h: 16 blocks per group, vector i holding blocks 2i and
 * 2i + 1 (64 activation bytes, one load). Q8_0's weights are taken as w + 128 (unsigned for
 * vpdpbusd; AVX-512 has no vpsignb for the AVX2 way) and 128 · Σx taken off like Q4_0's 8 · Σx. */
#define AXQ_G 16
#define GRP_Q8_OFFSET 128
typedef __m512i grp_i;
typedef __m512i grp_q;
typedef __m512 grp_f;

/* The 16 nibble bytes of two blocks (p1 0: none) -> 64 bytes: low nibbles, high nibbles, each block. */
AXQ_INLINE __m512i nib64(const uint8_t *p0, const uint8_t *p1) {
  __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p0));
  __m256i b = p1 ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p1)) : _mm256_setzero_si256();
  __m512i z = halves(a, b);
  return _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xFF00FF00u, z, 4), bytes512(15));
}

AXQ_INLINE void grp_unpack(int type, const uint8_t *w, long bb, int t, __m512i *q) {
  for (int i = 0; i < 8; i++) {
    const uint8_t *p0 = w + 2 * i * bb, *p1 = 2 * i + 1 < t ? p0 + bb : 0;
    if (2 * i >= t) { q[i] = _mm512_setzero_si512(); continue; }
    switch (type) {
    case AX_T_Q4_0: q[i] = nib64(p0 + 2, p1 ? p1 + 2 : 0); break;
    case AX_T_Q4_1: q[i] = nib64(p0 + 4, p1 ? p1 + 4 : 0); break;
    case AX_T_Q5_0: case AX_T_Q5_1: {
      int o = type == AX_T_Q5_0 ? 2 : 4;
      __mmask64 fifth = _cvtu64_mask64((uint64_t)axq_u32(p0 + o) | (p1 ? (uint64_t)axq_u32(p1 + o) << 32 : 0));
      __m512i v = nib64(p0 + o + 4, p1 ? p1 + o + 4 : 0);
      q[i] = _mm512_mask_add_epi8(v, fifth, v, bytes512(16));
      break;
    }
    default: { /* Q8_0 */
      __m256i lo = _mm256_xor_si256(ld256(p0 + 2), bytes_set(0x80));
      q[i] = halves(lo, p1 ? _mm256_xor_si256(ld256(p1 + 2), bytes_set(0x80)) : _mm256_setzero_si256());
      break;
    }
    }
  }
}

AXQ_INLINE __m512i grp_dot(int type, __m512i q, const int8_t *x) {
  (void)type;
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, ld512(x));
}

/* Two vectors' int32 lanes summed in pairs of their 128-bit lanes' halves: unpack + add. */
AXQ_INLINE __m512i fold32(__m512i a, __m512i b) { return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b)); }
AXQ_INLINE __m512i fold64(__m512i a, __m512i b) { return _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b)); }

/* v[i]: blocks 2i (lanes 0-7) and 2i + 1 (8-15) -> one lane per block. After the three folds lane
 * L holds block 0 2 4 6 1 3 5 7 8 10 12 14 9 11 13 15; the permutation puts them in order. */
AXQ_INLINE __m512i grp_reduce(const __m512i *v) {
  __m512i t0 = fold64(fold32(v[0], v[1]), fold32(v[2], v[3])), t1 = fold64(fold32(v[4], v[5]), fold32(v[6], v[7]));
  __m512i s = _mm512_add_epi32(_mm512_shuffle_i32x4(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_i32x4(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15), s);
}

AXQ_INLINE __mmask16 grp_mask(int t) { return (__mmask16)((1u << t) - 1); }

/* The 4 bytes at the start of each of t blocks (float16 d, then m for Q4_1 / Q5_1). */
AXQ_INLINE void grp_scales(int type, const uint8_t *w, long bb, int t, __m512 *d, __m512 *m) {
  (void)type;
  __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                   _mm512_set1_epi32((int)bb));
  __m512i g = t == AXQ_G ? _mm512_i32gather_epi32(idx, w, 1)
                         : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), grp_mask(t), idx, w, 1);
  *d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
  *m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
}

AXQ_INLINE __m512i grp_load_i(const int32_t *p, int t) {
  return t == AXQ_G ? ld512(p) : _mm512_maskz_loadu_epi32(grp_mask(t), p);
}
AXQ_INLINE __m512 grp_load_f(const float *p, int t) {
  return t == AXQ_G ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(grp_mask(t), p);
}
AXQ_INLINE __m512 grp_fma(__m512 a, __m512 b, __m512 c, int t) {
  return t == AXQ_G ? _mm512_fmadd_ps(a, b, c) : _mm512_mask3_fmadd_ps(a, b, c, grp_mask(t));
}
/* The rows' sums of lanes, in one tree whichever function takes them: per 128-bit lane
 * (x0 + x2) + (x1 + x3), then (S0 + S1) + (S2 + S3). grp_hsum_rows transposes 16 rows at a time
 * (15 folds of two vectors instead of 4 shuffles and 4 adds per row); a row's sum is the same
 * float additions either way (a + b == b + a), so it does not depend on the rows beside it. */
AXQ_INLINE float grp_hsum(__m512 x) {
  __m512 p = _mm512_add_ps(x, _mm512_permute_ps(x, _MM_SHUFFLE(1, 0, 3, 2)));
  __m512 q = _mm512_add_ps(p, _mm512_permute_ps(p, _MM_SHUFFLE(2, 3, 0, 1)));
  __m512 r = _mm512_add_ps(q, _mm512_shuffle_f32x4(q, q, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(_mm512_add_ps(r, _mm512_shuffle_f32x4(r, r, _MM_SHUFFLE(1, 0, 3, 2))));
}
AXQ_INLINE __m512 fold32f(__m512 a, __m512 b) { return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)); }
AXQ_INLINE __m512 fold64f(__m512 a, __m512 b) {
  __m512d x = _mm512_castps_pd(a), y = _mm512_castps_pd(b);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
}
AXQ_INLINE __m512 fold128f(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
AXQ_INLINE void grp_hsum_rows(const __m512 *acc, int mr, float *out) {
  if (mr < 6) {
    for (int r = 0; r < mr; r++) out[r] = grp_hsum(acc[r]);
    return;
  }
  __m512 a[16];
  for (int r = 0; r < 16; r++) a[r] = r < mr ? acc[r] : _mm512_setzero_ps();
  __m512 t[4];
  for (int i = 0; i < 4; i++) t[i] = fold64f(fold32f(a[4 * i], a[4 * i + 1]), fold32f(a[4 * i + 2], a[4 * i + 3]));
  _mm512_storeu_ps(out, fold128f(fold128f(t[0], t[1]), fold128f(t[2], t[3])));
}
AXQ_INLINE __m512i grp_zero_i(void) { return _mm512_setzero_si512(); }
AXQ_INLINE __m512 grp_zero_f(void) { return _mm512_setzero_ps(); }
AXQ_INLINE __m512i grp_sub_i(__m512i a, __m512i b) { return _mm512_sub_epi32(a, b); }
AXQ_INLINE __m512i grp_shl_i(__m512i a, int bits) { return _mm512_slli_epi32(a, (unsigned)bits); }
AXQ_INLINE __m512 grp_mul_f(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
AXQ_INLINE __m512 grp_cvt(__m512i a) { return _mm512_cvtepi32_ps(a); }

/* The transposed form (GRP_TRANSPOSED rows or more, see quant_x86_group.h):
 * vector e holds in lane b the 4 bytes e of block b, weights and activations alike, so vpdpbusd
 * sums a block in one lane over the 8 vectors and no reduction is left. Weights gathered per
 * group (once per weight row and chunk of rows); activations transposed once per call; the
 * last group's missing blocks are zero on both sides. */
#define GRP_TRANSPOSED 4

AXQ_INLINE __m512i block_offsets(long stride) {
  return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                            _mm512_set1_epi32((int)stride));
}

/* t blocks at w (lanes past t zero). */
AXQ_INLINE __m512i gather_t(__m512i idx, const uint8_t *p, int t) {
  return t == AXQ_G ? _mm512_i32gather_epi32(idx, p, 1) : _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), grp_mask(t), idx, p, 1);
}

AXQ_INLINE void grp_unpack_t(int type, const uint8_t *w, long bb, int t, __m512i *q) {
  __m512i idx = block_offsets(bb);
  if (type == AX_T_Q8_0) {
    for (int e = 0; e < 8; e++) {
      __m512i v = _mm512_xor_si512(gather_t(idx, w + 2 + 4 * e, t), bytes512(0x80));
      q[e] = t == AXQ_G ? v : _mm512_maskz_mov_epi32(grp_mask(t), v);
    }
    return;
  }
  const uint8_t *qs = w + (type == AX_T_Q4_0 ? 2 : 4); /* Q4_0, Q4_1: low nibbles elements 0-15, high 16-31 */
  for (int e = 0; e < 4; e++) {
    __m512i g = gather_t(idx, qs + 4 * e, t);
    q[e] = _mm512_and_si512(g, bytes512(15));
    q[e + 4] = _mm512_and_si512(_mm512_srli_epi32(g, 4), bytes512(15));
  }
}

/* The activation bytes of t blocks at x -> dst (512 bytes) in the transposed form. */
AXQ_INLINE void grp_transpose_x(const int8_t *x, int t, int8_t *dst) {
  __m512i idx = block_offsets(32);
  for (int e = 0; e < 8; e++) _mm512_storeu_si512(dst + 64 * e, gather_t(idx, (const uint8_t *)x + 4 * e, t));
}

AXQ_INLINE __m512i grp_isum_t(const __m512i *q, const int8_t *xt) {
  __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
  for (int e = 0; e < 8; e += 2) {
    a = _mm512_dpbusd_epi32(a, q[e], ld512(xt + 64 * e));
    b = _mm512_dpbusd_epi32(b, q[e + 1], ld512(xt + 64 * e + 64));
  }
  return _mm512_add_epi32(a, b);
}

#define ROWS_Q45_K rows_q45_k_512
#define ROWS_Q6_K rows_q6_k_512
#include "quant_x86_driver.h"

#pragma clang attribute pop
#endif
