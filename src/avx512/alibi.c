/*
 * AVX-512 ALiBi kernels: the external bias row and the fused bias-add-softmax row (the slopes are the scalar
 * kernel's on every ISA: once per model, exact in float64).
 *
 * ISA: AVX-512 F (arithmetic, masks, scalef), BW+VL (masked 16-bit loads of f16 masks), DQ (64-bit integer to
 * float for very long rows, 256-bit halves); F16C for the f16 mask conversion. The caller has checked the CPU.
 *
 * Tails: every loop ends with one masked vector (_mm512_maskz_loadu_ps / _mm512_mask_storeu_ps and masked
 * gathers), so no byte outside [0, nk) of any caller buffer is read or written, whatever the alignment.
 *
 * Sums: each lane of a float32 accumulator adds at most 16 exponentials, each in [0, 1], before it is widened and
 * added to float64 accumulators. A float32 partial sum of 16 non-negative terms is within 15 u of exact and the
 * float64 stage adds nothing visible at 2^-24, so the denominator is within 16 u for any row length (2^20 keys
 * and far beyond), which is the budget of the Accuracy paragraph of posattn_alibi_softmax in posattn.h.
 *
 * Logits: formed with the scalar reference's roundings (no FMA), so without a softcap both paths hold the same
 * logits bit for bit and agree on the maximum and on every flush decision.
 *
 * Exponential: the polynomial of exp_f32.h kept in registers (below 2 ulp on [-87, 0]), 2^n applied with scalef.
 * Every lane with x - mx < POSATTN_EXP_FLUSH_BELOW is zeroed by the write mask, so 2^n is only ever formed for
 * normal results. The same flush, applied to whole vectors, lets the exp pass skip the polynomial where ALiBi has
 * pushed every lane far below the maximum, which is most of a long row.
 *
 * N-D positions (2..4 axes): the softmax body runs with the logits stored by pass 1 and reloaded by pass 2 (formed
 * once: the coordinates cost more than the traffic). Packed positions (stride <= 4 floats) are loaded as whole
 * vectors (masked at the end of the key array) and de-interleaved by two-source permutes, or for (t, z, y, x) by a
 * 4 x 4 transpose per 128-bit lane; wider strides gather per axis. The distance follows posattn_alibi_dist_nd
 * operation for operation (vsqrtps is correctly rounded), so N-D biases are the scalar reference's bit for bit.
 */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../exp_f32.h"
#include "../kernels.h"
#include "../x86_row_variants.h"

#define POSATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------------------------------------------- */
/* Key positions                                                                                                */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct keys_ctx {
    const float *k_pos;
    int64_t k_stride;
    __m512i offsets_lo_i64x8, offsets_hi_i64x8; /* lane * k_stride, for the gather */
} keys_ctx;

static inline keys_ctx keys_context(const posattn_key_positions *keys) {
    keys_ctx k;
    k.k_pos = keys->k_pos;
    k.k_stride = keys->k_pos_stride;
    __m512i stride_i64x8 = _mm512_set1_epi64(keys->k_pos_stride);
    k.offsets_lo_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), stride_i64x8);
    k.offsets_hi_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15), stride_i64x8);
    return k;
}

static inline __m512 iota_f32x16(void) {
    return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/* (float)(j + lane) for any j: int64 to float rounds once, exactly as the scalar conversion does. */
static inline __m512 iota_wide_f32x16(int64_t j) {
    __m512i j_i64x8 = _mm512_set1_epi64(j);
    __m256 lo_f32x8 = _mm512_cvtepi64_ps(_mm512_add_epi64(j_i64x8, _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)));
    __m256 hi_f32x8 = _mm512_cvtepi64_ps(_mm512_add_epi64(j_i64x8, _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo_f32x8), hi_f32x8, 1);
}

/* Positions of keys j..j+15 (inactive lanes are not read). iota_k carries them for KEYS_IOTA, where the loops
 * keep the vector up to date with one addition instead of a conversion per vector. */
POSATTN_ALWAYS_INLINE __m512 key_positions_f32x16(const keys_ctx *k, int mode, int64_t j, __mmask16 active,
                                                  int full, __m512 iota_k) {
    switch (mode) {
    case KEYS_IOTA: return iota_k;
    case KEYS_IOTA_WIDE: return iota_wide_f32x16(j);
    case KEYS_CONTIGUOUS: return full ? _mm512_loadu_ps(k->k_pos + j) : _mm512_maskz_loadu_ps(active, k->k_pos + j);
    default: {
        /* 64-bit offsets: j * stride and lane * stride can exceed 2^31 elements for long strided rows. */
        const float *base = k->k_pos + j * k->k_stride;
        __m256 lo_f32x8 = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)active, k->offsets_lo_i64x8,
                                                   base, 4);
        __m256 hi_f32x8 = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)(active >> 8),
                                                   k->offsets_hi_i64x8, base, 4);
        return _mm512_insertf32x8(_mm512_castps256_ps512(lo_f32x8), hi_f32x8, 1);
    }
    }
}

static inline __mmask16 tail_mask(int64_t remaining) {
    return (__mmask16)((1u << remaining) - 1u);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* External bias row                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

POSATTN_ALWAYS_INLINE void bias_row_body(const posattn_bias_row *row, int mode) {
    keys_ctx k = keys_context(&row->keys);
    float *bias = row->bias;
    int64_t nk = row->nk;
    /* -slope * |d| with the sign folded into the constant: one rounding, bit-identical to the scalar path. */
    __m512 neg_slope_f32x16 = _mm512_set1_ps(-row->slope);
    __m512 q_f32x16 = _mm512_set1_ps(row->q_pos);
    __m512 iota_k_f32x16 = _mm512_add_ps(_mm512_set1_ps(0.0f), iota_f32x16());
    __m512 sixteen_f32x16 = _mm512_set1_ps(16.0f);
    int64_t j = 0;
    for (; j + 16 <= nk; j += 16) {
        __m512 pos_f32x16 = key_positions_f32x16(&k, mode, j, (__mmask16)0xffff, 1, iota_k_f32x16);
        __m512 dist_f32x16 = _mm512_abs_ps(_mm512_sub_ps(q_f32x16, pos_f32x16));
        _mm512_storeu_ps(bias + j, _mm512_mul_ps(neg_slope_f32x16, dist_f32x16));
        iota_k_f32x16 = _mm512_add_ps(iota_k_f32x16, sixteen_f32x16);
    }
    if (j < nk) {
        __mmask16 active = tail_mask(nk - j);
        __m512 pos_f32x16 = key_positions_f32x16(&k, mode, j, active, 0, iota_k_f32x16);
        __m512 dist_f32x16 = _mm512_abs_ps(_mm512_sub_ps(q_f32x16, pos_f32x16));
        _mm512_mask_storeu_ps(bias + j, active, _mm512_mul_ps(neg_slope_f32x16, dist_f32x16));
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* N-D positions (2..4 axes)                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

/* Key coordinates of 16 keys. Positions at most 4 floats apart (packed, the common layout) come from S contiguous
 * vectors (masked where the key array ends: no float past the last key's k_len is read) split by two-source
 * permutes; wider strides gather each axis with 64-bit offsets. The distance follows posattn_alibi_dist_nd
 * operation for operation, so the result is the scalar reference's bit for bit. */
typedef struct nd_ctx {
    const float *k_pos;
    int64_t k_stride, k_len, nk;
    int packed, weighted;
    int whole4; /* S = A = 4 kept axes in order: the 128-bit transpose applies */
    __m512i idx_i32x16[4];
    __mmask16 hi[4];
    int offset[4];
    __m512i offsets_lo_i64x8, offsets_hi_i64x8;
    __m512 q_f32x16[4], w_f32x16[4];
} nd_ctx;

static inline nd_ctx nd_context(const posattn_nd_positions *nd, const posattn_key_positions *keys, int64_t nk) {
    nd_ctx c;
    c.k_pos = keys->k_pos;
    c.k_stride = keys->k_pos_stride;
    c.k_len = nd->k_len;
    c.nk = nk;
    c.packed = c.k_stride <= 4;
    c.weighted = nd->weighted;
    c.whole4 = c.k_stride == 4 && nd->axes == 4;
    for (int a = 0; a < nd->axes; ++a) c.whole4 &= nd->offset[a] == a;
    __m512i stride_i64x8 = _mm512_set1_epi64(c.k_stride);
    c.offsets_lo_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), stride_i64x8);
    c.offsets_hi_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15), stride_i64x8);
    /* Packed layout: the float of lane l on axis a is element e = S l + offset of the S loaded vectors, taken by
     * permutex2var from (v0, v1) when e < 32 and from (v2, v3) otherwise (index e mod 32 either way). */
    const __m512i lane_i32x16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i e_base_i32x16 = _mm512_mullo_epi32(lane_i32x16, _mm512_set1_epi32(c.packed ? (int)c.k_stride : 0));
    for (int a = 0; a < 4; ++a) {
        int off = a < nd->axes ? nd->offset[a] : 0;
        __m512i e_i32x16 = _mm512_add_epi32(e_base_i32x16, _mm512_set1_epi32(off));
        c.idx_i32x16[a] = _mm512_and_si512(e_i32x16, _mm512_set1_epi32(31));
        c.hi[a] = _mm512_cmpge_epi32_mask(e_i32x16, _mm512_set1_epi32(32));
        c.offset[a] = off;
        c.q_f32x16[a] = _mm512_set1_ps(a < nd->axes ? nd->q[a] : 0.0f);
        c.w_f32x16[a] = _mm512_set1_ps(a < nd->axes ? nd->w[a] : 1.0f);
    }
    return c;
}

static inline __mmask16 elements_mask(int64_t avail, int64_t first) {
    int64_t n = avail - first;
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : tail_mask(n);
}

/* Distances of keys j..j+15 (lanes outside active may hold anything; their memory is not read). */
POSATTN_ALWAYS_INLINE __m512 nd_dist_f32x16(const nd_ctx *c, int axes, int l2, int64_t j, __mmask16 active) {
    const float *base = c->k_pos + j * c->k_stride;
    __m512 coord_f32x16[4];
    int transposed = 0;
    if (axes == 4 && c->whole4 && (c->nk - 1 - j) * 4 + 4 >= 64) {
        /* (t, z, y, x), 16 whole positions: a 4 x 4 transpose in each 128-bit lane (8 one-source shuffles instead
         * of 8 two-source permutes and 4 blends). Lane 4L + m then holds key 4m + L; the distance is put back in
         * key order at the end (one permute), which changes no rounding. */
        __m512 v0_f32x16 = _mm512_loadu_ps(base), v1_f32x16 = _mm512_loadu_ps(base + 16);
        __m512 v2_f32x16 = _mm512_loadu_ps(base + 32), v3_f32x16 = _mm512_loadu_ps(base + 48);
        __m512 t0_f32x16 = _mm512_unpacklo_ps(v0_f32x16, v1_f32x16);
        __m512 t1_f32x16 = _mm512_unpackhi_ps(v0_f32x16, v1_f32x16);
        __m512 t2_f32x16 = _mm512_unpacklo_ps(v2_f32x16, v3_f32x16);
        __m512 t3_f32x16 = _mm512_unpackhi_ps(v2_f32x16, v3_f32x16);
        coord_f32x16[0] = _mm512_shuffle_ps(t0_f32x16, t2_f32x16, 0x44);
        coord_f32x16[1] = _mm512_shuffle_ps(t0_f32x16, t2_f32x16, 0xee);
        coord_f32x16[2] = _mm512_shuffle_ps(t1_f32x16, t3_f32x16, 0x44);
        coord_f32x16[3] = _mm512_shuffle_ps(t1_f32x16, t3_f32x16, 0xee);
        transposed = 1;
    } else if (c->packed) {
        const int64_t S = c->k_stride;
        int64_t avail = (c->nk - 1 - j) * S + c->k_len; /* floats readable from base */
        __m512 v0_f32x16, v1_f32x16, v2_f32x16, v3_f32x16;
        if (avail >= 16 * S) {
            v0_f32x16 = _mm512_loadu_ps(base);
            v1_f32x16 = _mm512_loadu_ps(base + 16);
            v2_f32x16 = S > 2 ? _mm512_loadu_ps(base + 32) : v1_f32x16;
            v3_f32x16 = S > 3 ? _mm512_loadu_ps(base + 48) : v2_f32x16;
        } else {
            v0_f32x16 = _mm512_maskz_loadu_ps(elements_mask(avail, 0), base);
            v1_f32x16 = _mm512_maskz_loadu_ps(elements_mask(avail, 16), base + 16);
            v2_f32x16 = S > 2 ? _mm512_maskz_loadu_ps(elements_mask(avail, 32), base + 32) : v1_f32x16;
            v3_f32x16 = S > 3 ? _mm512_maskz_loadu_ps(elements_mask(avail, 48), base + 48) : v2_f32x16;
        }
        for (int a = 0; a < axes; ++a) {
            __m512 r_f32x16 = _mm512_permutex2var_ps(v0_f32x16, c->idx_i32x16[a], v1_f32x16);
            if (S > 2) {
                r_f32x16 = _mm512_mask_mov_ps(r_f32x16, c->hi[a],
                                              _mm512_permutex2var_ps(v2_f32x16, c->idx_i32x16[a], v3_f32x16));
            }
            coord_f32x16[a] = r_f32x16;
        }
    } else {
        for (int a = 0; a < axes; ++a) {
            const float *axis = base + c->offset[a];
            __m256 lo_f32x8 = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)active, c->offsets_lo_i64x8,
                                                       axis, 4);
            __m256 hi_f32x8 = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)(active >> 8),
                                                       c->offsets_hi_i64x8, axis, 4);
            coord_f32x16[a] = _mm512_insertf32x8(_mm512_castps256_ps512(lo_f32x8), hi_f32x8, 1);
        }
    }
    __m512 acc_f32x16 = _mm512_setzero_ps();
    for (int a = 0; a < axes; ++a) {
        __m512 t_f32x16 = _mm512_sub_ps(c->q_f32x16[a], coord_f32x16[a]);
        if (!l2) t_f32x16 = _mm512_abs_ps(t_f32x16);
        if (c->weighted) t_f32x16 = _mm512_mul_ps(c->w_f32x16[a], t_f32x16);
        if (l2) t_f32x16 = _mm512_mul_ps(t_f32x16, t_f32x16);
        acc_f32x16 = a == 0 ? t_f32x16 : _mm512_add_ps(acc_f32x16, t_f32x16);
    }
    if (l2) acc_f32x16 = _mm512_sqrt_ps(acc_f32x16);
    if (axes == 4 && transposed) {
        acc_f32x16 = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
                                           acc_f32x16);
    }
    return acc_f32x16;
}

POSATTN_ALWAYS_INLINE void nd_bias_row_body(const posattn_bias_row *row, int axes, int l2) {
    nd_ctx c = nd_context(&row->nd, &row->keys, row->nk);
    const __m512 neg_slope_f32x16 = _mm512_set1_ps(-row->slope);
    for (int64_t j = 0; j < row->nk; j += 16) {
        __mmask16 active = row->nk - j >= 16 ? (__mmask16)0xffff : tail_mask(row->nk - j);
        __m512 b_f32x16 = _mm512_mul_ps(neg_slope_f32x16, nd_dist_f32x16(&c, axes, l2, j, active));
        _mm512_mask_storeu_ps(row->bias + j, active, b_f32x16);
    }
}

/* The N-D variants and the entry the registry points at (see x86_row_variants.h). */
POSATTN_DEFINE_BIAS_ROW(posattn_alibi_bias_row_f32_avx512)
#undef POSATTN_ND_BIAS_VARIANT

/* ---------------------------------------------------------------------------------------------------------- */
/* Exponential                                                                                                  */
/* ---------------------------------------------------------------------------------------------------------- */

/* exp(d) for d <= 0 in the lanes of keep, exactly 0 elsewhere. The caller puts into keep only lanes with
 * d >= POSATTN_EXP_FLUSH_BELOW (or NaN), where the result is at least e^-87 > FLT_MIN, so scalef never forms a
 * subnormal in a live lane, and zeroed lanes cost nothing. */
static inline __m512 exp_flushed_f32x16(__m512 d_f32x16, __mmask16 keep) {
    /* Clamping first keeps -inf (masked keys) from raising "invalid" in the reduction; max(c, NaN) is NaN. */
    d_f32x16 = _mm512_max_ps(_mm512_set1_ps(-87.5f), d_f32x16);
    /* Adding 1.5 * 2^23 rounds d * log2(e) to the nearest integer in the low mantissa bits. */
    const __m512 magic_f32x16 = _mm512_set1_ps(12582912.0f);
    __m512 t_f32x16 = _mm512_fmadd_ps(d_f32x16, _mm512_set1_ps(POSATTN_EXP_LOG2E), magic_f32x16);
    __m512 n_f32x16 = _mm512_sub_ps(t_f32x16, magic_f32x16);
    /* Cody-Waite: n * LN2_HI is exact, so r carries only the rounding of the second step. */
    __m512 r_f32x16 = _mm512_fnmadd_ps(n_f32x16, _mm512_set1_ps(POSATTN_EXP_LN2_HI), d_f32x16);
    r_f32x16 = _mm512_fnmadd_ps(n_f32x16, _mm512_set1_ps(POSATTN_EXP_LN2_LO), r_f32x16);
    __m512 p_f32x16 = _mm512_fmadd_ps(_mm512_set1_ps(POSATTN_EXP_P0), r_f32x16, _mm512_set1_ps(POSATTN_EXP_P1));
    p_f32x16 = _mm512_fmadd_ps(p_f32x16, r_f32x16, _mm512_set1_ps(POSATTN_EXP_P2));
    p_f32x16 = _mm512_fmadd_ps(p_f32x16, r_f32x16, _mm512_set1_ps(POSATTN_EXP_P3));
    p_f32x16 = _mm512_fmadd_ps(p_f32x16, r_f32x16, _mm512_set1_ps(POSATTN_EXP_P4));
    p_f32x16 = _mm512_fmadd_ps(p_f32x16, r_f32x16, _mm512_set1_ps(POSATTN_EXP_P5));
    /* 1 + r + r^2 P(r) as 1 + r (1 + r P(r)): two FMAs, no r^2, and the last rounding is that of the result. */
    const __m512 one_f32x16 = _mm512_set1_ps(1.0f);
    p_f32x16 = _mm512_fmadd_ps(p_f32x16, r_f32x16, one_f32x16);
    p_f32x16 = _mm512_fmadd_ps(p_f32x16, r_f32x16, one_f32x16);
    return _mm512_maskz_scalef_ps(keep, p_f32x16, n_f32x16);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Fused softmax row                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct logits_ctx {
    const float *scores;
    const void *mask;
    keys_ctx keys;
    nd_ctx nd; /* N-D rows only */
    __m512 scale_f32x16, cap_f32x16, slope_f32x16, q_f32x16, mask_scale_f32x16;
} logits_ctx;

/* Logits of keys j..j+15 with the scalar logit()'s roundings, one per operation and no contraction into FMA
 * (the library builds with -std=c11, where GCC does not contract): both paths then see the same x bit for bit,
 * so they agree on every flush decision and differ only by the exponential, the sum and the scaling. */
POSATTN_ALWAYS_INLINE __m512 logits_f32x16(const logits_ctx *c, int keys, int mask, int softcap, int64_t j,
                                           __mmask16 active, int full, __m512 iota_k) {
    __m512 s_f32x16 = full ? _mm512_loadu_ps(c->scores + j) : _mm512_maskz_loadu_ps(active, c->scores + j);
    __m512 x_f32x16 = _mm512_mul_ps(c->scale_f32x16, s_f32x16);
    if (softcap) {
        x_f32x16 = _mm512_mul_ps(c->cap_f32x16, Sleef_tanhf16_u10avx512f(_mm512_div_ps(x_f32x16, c->cap_f32x16)));
    }
    if (keys >= KEYS_ND) {
        __m512 dist_f32x16 = nd_dist_f32x16(&c->nd, KEYS_ND_AXES(keys), KEYS_ND_L2(keys), j, active);
        x_f32x16 = _mm512_sub_ps(x_f32x16, _mm512_mul_ps(c->slope_f32x16, dist_f32x16));
    } else if (keys != KEYS_NONE) {
        __m512 pos_f32x16 = key_positions_f32x16(&c->keys, keys, j, active, full, iota_k);
        __m512 dist_f32x16 = _mm512_abs_ps(_mm512_sub_ps(c->q_f32x16, pos_f32x16));
        x_f32x16 = _mm512_sub_ps(x_f32x16, _mm512_mul_ps(c->slope_f32x16, dist_f32x16));
    }
    if (mask != MASK_NONE) {
        __m512 m_f32x16;
        if (mask == MASK_F32) {
            const float *m = (const float *)c->mask + j;
            m_f32x16 = full ? _mm512_loadu_ps(m) : _mm512_maskz_loadu_ps(active, m);
        } else {
            const uint16_t *m = (const uint16_t *)c->mask + j;
            __m256i h_i16x16 = full ? _mm256_loadu_si256((const __m256i *)m) : _mm256_maskz_loadu_epi16(active, m);
            m_f32x16 = _mm512_cvtph_ps(h_i16x16);
        }
        /* An entry of -inf excludes its key whatever x is: such lanes keep the -inf of m through the write mask,
         * so 0 * (-inf) (a zero slope in ggml mode) is neither formed nor raises "invalid". */
        __mmask16 excluded = _mm512_cmp_ps_mask(m_f32x16, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
        __m512 term_f32x16 = _mm512_maskz_mul_ps((__mmask16)~excluded, c->mask_scale_f32x16, m_f32x16);
        x_f32x16 = _mm512_mask_add_ps(m_f32x16, (__mmask16)~excluded, x_f32x16, term_f32x16);
    }
    return x_f32x16;
}

/* Widens a float32 partial sum (at most 16 terms per lane) into the float64 accumulator. */
static inline __m512d widen_add_f64x8(__m512d sum_f64x8, __m512 part_f32x16) {
    sum_f64x8 = _mm512_add_pd(sum_f64x8, _mm512_cvtps_pd(_mm512_castps512_ps256(part_f32x16)));
    return _mm512_add_pd(sum_f64x8, _mm512_cvtps_pd(_mm512_extractf32x8_ps(part_f32x16, 1)));
}

static inline void fill_f32(float *dst, int64_t begin, int64_t end, __m512 value_f32x16) {
    int64_t j = begin;
    for (; j + 16 <= end; j += 16) _mm512_storeu_ps(dst + j, value_f32x16);
    if (j < end) _mm512_mask_storeu_ps(dst + j, tail_mask(end - j), value_f32x16);
}

/* The flush rule applied to the sink, in the same libm expf as the scalar path (one call per row). */
static inline float flushed_expf(float x) {
    return x < POSATTN_EXP_FLUSH_BELOW ? 0.0f : expf(x);
}

/*
 * The body of every softmax row variant. keys, mask and softcap are compile-time constants in the specialised
 * variants below and run-time values in the generic one.
 *
 * Pass 1 forms the logits and their maximum; pass 2 forms them again (cheaper than a store and a reload for rows
 * past the caches; with a softcap, pass 1 stores them instead, as tanh costs more than the traffic), takes the
 * exponentials, stores them and sums them; pass 3 scales. Groups of 4 vectors keep 4 independent dependency
 * chains in flight.
 */
POSATTN_ALWAYS_INLINE void softmax_row_body(const posattn_softmax_row *row, int keys, int mask, int softcap) {
    /* Logits stored by pass 1 and reloaded by pass 2 rather than formed twice: with a softcap (tanh costs more
     * than the traffic), for strided key positions (gathers do), for N-D positions (as do the coordinates), and
     * for rows that stay in L1 (x86_row_variants.h). Either way pass 2 sees the same bits. */
    const int stored = softcap || keys == KEYS_STRIDED || keys >= KEYS_ND || row->nk <= POSATTN_STORED_LOGITS_MAX_KEYS;
    float *probs = row->probs;
    const int64_t lo = row->lo, hi = row->hi;
    const __m512 zero_f32x16 = _mm512_setzero_ps();
    const __m512 neg_inf_f32x16 = _mm512_set1_ps(-INFINITY);
    const __m512 sixteen_f32x16 = _mm512_set1_ps(16.0f);
    const __m512 step_f32x16 = _mm512_set1_ps(64.0f);

    fill_f32(probs, 0, lo, zero_f32x16);
    fill_f32(probs, hi, row->nk, zero_f32x16);
    posattn_row_prefetch pf = posattn_row_prefetch_of(row); /* the next row: see kernels.h */

    logits_ctx c;
    c.scores = row->scores;
    c.mask = row->mask;
    c.keys = keys_context(&row->keys);
    if (keys >= KEYS_ND) c.nd = nd_context(&row->nd, &row->keys, row->nk);
    c.scale_f32x16 = _mm512_set1_ps(row->scale);
    c.cap_f32x16 = _mm512_set1_ps(row->softcap);
    c.slope_f32x16 = _mm512_set1_ps(row->slope);
    c.q_f32x16 = _mm512_set1_ps(row->q_pos);
    c.mask_scale_f32x16 = _mm512_set1_ps(row->mask_scale);
    /* Exact: lo <= 2^24 whenever KEYS_IOTA is chosen. */
    const __m512 iota_lo_f32x16 = _mm512_add_ps(_mm512_set1_ps((float)lo), iota_f32x16());

    /* Pass 1. max(x, acc) returns acc when x is NaN, as fmaxf does: NaN reaches the sum through exp instead,
     * except in an otherwise empty row, which is checked below. */
    __m512 max0_f32x16 = neg_inf_f32x16, max1_f32x16 = neg_inf_f32x16;
    __m512 max2_f32x16 = neg_inf_f32x16, max3_f32x16 = neg_inf_f32x16;
    {
        __m512 k0_f32x16 = iota_lo_f32x16;
        int64_t j = lo;
        for (; j + 64 <= hi; j += 64) {
            __m512 k1_f32x16 = _mm512_add_ps(k0_f32x16, sixteen_f32x16);
            __m512 k2_f32x16 = _mm512_add_ps(k1_f32x16, sixteen_f32x16);
            __m512 k3_f32x16 = _mm512_add_ps(k2_f32x16, sixteen_f32x16);
            __m512 x0_f32x16 = logits_f32x16(&c, keys, mask, softcap, j, 0xffff, 1, k0_f32x16);
            __m512 x1_f32x16 = logits_f32x16(&c, keys, mask, softcap, j + 16, 0xffff, 1, k1_f32x16);
            __m512 x2_f32x16 = logits_f32x16(&c, keys, mask, softcap, j + 32, 0xffff, 1, k2_f32x16);
            __m512 x3_f32x16 = logits_f32x16(&c, keys, mask, softcap, j + 48, 0xffff, 1, k3_f32x16);
            if (stored) {
                _mm512_storeu_ps(probs + j, x0_f32x16);
                _mm512_storeu_ps(probs + j + 16, x1_f32x16);
                _mm512_storeu_ps(probs + j + 32, x2_f32x16);
                _mm512_storeu_ps(probs + j + 48, x3_f32x16);
            }
            max0_f32x16 = _mm512_max_ps(x0_f32x16, max0_f32x16);
            max1_f32x16 = _mm512_max_ps(x1_f32x16, max1_f32x16);
            max2_f32x16 = _mm512_max_ps(x2_f32x16, max2_f32x16);
            max3_f32x16 = _mm512_max_ps(x3_f32x16, max3_f32x16);
            k0_f32x16 = _mm512_add_ps(k0_f32x16, step_f32x16);
        }
        for (; j + 16 <= hi; j += 16) {
            __m512 x_f32x16 = logits_f32x16(&c, keys, mask, softcap, j, 0xffff, 1, k0_f32x16);
            if (stored) _mm512_storeu_ps(probs + j, x_f32x16);
            max0_f32x16 = _mm512_max_ps(x_f32x16, max0_f32x16);
            k0_f32x16 = _mm512_add_ps(k0_f32x16, sixteen_f32x16);
        }
        if (j < hi) {
            __mmask16 active = tail_mask(hi - j);
            __m512 x_f32x16 = logits_f32x16(&c, keys, mask, softcap, j, active, 0, k0_f32x16);
            if (stored) _mm512_mask_storeu_ps(probs + j, active, x_f32x16);
            max1_f32x16 = _mm512_mask_max_ps(max1_f32x16, active, x_f32x16, max1_f32x16);
        }
    }
    max0_f32x16 = _mm512_max_ps(_mm512_max_ps(max0_f32x16, max1_f32x16), _mm512_max_ps(max2_f32x16, max3_f32x16));
    float mx = _mm512_reduce_max_ps(max0_f32x16);
    int sink_is_nan = 0;
    if (row->has_sink) {
        sink_is_nan = isnan(row->sink);
        mx = fmaxf(mx, row->sink);
    }

    if (mx == -INFINITY) {
        /* No key above -inf and no sink. The max skipped NaN, so look for one now (rare path): a NaN logit makes
         * the row NaN, as everywhere else; otherwise the row is empty. */
        int has_nan = sink_is_nan;
        __m512 k_f32x16 = iota_lo_f32x16;
        for (int64_t j = lo; j < hi && !has_nan; j += 16) {
            __mmask16 active = hi - j >= 16 ? (__mmask16)0xffff : tail_mask(hi - j);
            __m512 x_f32x16 = stored ? _mm512_maskz_loadu_ps(active, probs + j)
                                      : logits_f32x16(&c, keys, mask, softcap, j, active, 0, k_f32x16);
            has_nan = _mm512_mask_cmp_ps_mask(active, x_f32x16, x_f32x16, _CMP_UNORD_Q) != 0;
            k_f32x16 = _mm512_add_ps(k_f32x16, sixteen_f32x16);
        }
        fill_f32(probs, lo, hi, has_nan ? _mm512_set1_ps(NAN) : zero_f32x16);
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }

    /* Pass 2. Lanes with d < -87 are 0 by the flush rule (an ordered compare: NaN is never flushed), so a group
     * where every lane is below needs only its zeros stored. [live_lo, live_hi) tracks the groups that were not
     * skipped, so pass 3 does not rescale stored zeros. */
    const __m512 mx_f32x16 = _mm512_set1_ps(mx);
    const __m512 flush_f32x16 = _mm512_set1_ps(POSATTN_EXP_FLUSH_BELOW);
    __m512d sum0_f64x8 = _mm512_setzero_pd(), sum1_f64x8 = _mm512_setzero_pd();
    int64_t live_lo = hi, live_hi = lo;
    {
        __m512 acc0_f32x16 = zero_f32x16, acc1_f32x16 = zero_f32x16;
        __m512 acc2_f32x16 = zero_f32x16, acc3_f32x16 = zero_f32x16;
        int terms = 0;
        __m512 k0_f32x16 = iota_lo_f32x16;
        int64_t j = lo;
        for (; j + 64 <= hi; j += 64) {
            posattn_row_prefetch_next(&pf, 4); /* as many lines as this group covers */
            __m512 x0_f32x16, x1_f32x16, x2_f32x16, x3_f32x16;
            if (stored) {
                x0_f32x16 = _mm512_loadu_ps(probs + j);
                x1_f32x16 = _mm512_loadu_ps(probs + j + 16);
                x2_f32x16 = _mm512_loadu_ps(probs + j + 32);
                x3_f32x16 = _mm512_loadu_ps(probs + j + 48);
            } else {
                __m512 k1_f32x16 = _mm512_add_ps(k0_f32x16, sixteen_f32x16);
                __m512 k2_f32x16 = _mm512_add_ps(k1_f32x16, sixteen_f32x16);
                __m512 k3_f32x16 = _mm512_add_ps(k2_f32x16, sixteen_f32x16);
                x0_f32x16 = logits_f32x16(&c, keys, mask, 0, j, 0xffff, 1, k0_f32x16);
                x1_f32x16 = logits_f32x16(&c, keys, mask, 0, j + 16, 0xffff, 1, k1_f32x16);
                x2_f32x16 = logits_f32x16(&c, keys, mask, 0, j + 32, 0xffff, 1, k2_f32x16);
                x3_f32x16 = logits_f32x16(&c, keys, mask, 0, j + 48, 0xffff, 1, k3_f32x16);
                k0_f32x16 = _mm512_add_ps(k0_f32x16, step_f32x16);
            }
            __m512 d0_f32x16 = _mm512_sub_ps(x0_f32x16, mx_f32x16);
            __m512 d1_f32x16 = _mm512_sub_ps(x1_f32x16, mx_f32x16);
            __m512 d2_f32x16 = _mm512_sub_ps(x2_f32x16, mx_f32x16);
            __m512 d3_f32x16 = _mm512_sub_ps(x3_f32x16, mx_f32x16);
            __mmask16 keep0 = _mm512_cmp_ps_mask(d0_f32x16, flush_f32x16, _CMP_NLT_UQ);
            __mmask16 keep1 = _mm512_cmp_ps_mask(d1_f32x16, flush_f32x16, _CMP_NLT_UQ);
            __mmask16 keep2 = _mm512_cmp_ps_mask(d2_f32x16, flush_f32x16, _CMP_NLT_UQ);
            __mmask16 keep3 = _mm512_cmp_ps_mask(d3_f32x16, flush_f32x16, _CMP_NLT_UQ);
            if ((keep0 | keep1 | keep2 | keep3) == 0) {
                _mm512_storeu_ps(probs + j, zero_f32x16);
                _mm512_storeu_ps(probs + j + 16, zero_f32x16);
                _mm512_storeu_ps(probs + j + 32, zero_f32x16);
                _mm512_storeu_ps(probs + j + 48, zero_f32x16);
                continue;
            }
            __m512 e0_f32x16 = exp_flushed_f32x16(d0_f32x16, keep0);
            __m512 e1_f32x16 = exp_flushed_f32x16(d1_f32x16, keep1);
            __m512 e2_f32x16 = exp_flushed_f32x16(d2_f32x16, keep2);
            __m512 e3_f32x16 = exp_flushed_f32x16(d3_f32x16, keep3);
            _mm512_storeu_ps(probs + j, e0_f32x16);
            _mm512_storeu_ps(probs + j + 16, e1_f32x16);
            _mm512_storeu_ps(probs + j + 32, e2_f32x16);
            _mm512_storeu_ps(probs + j + 48, e3_f32x16);
            acc0_f32x16 = _mm512_add_ps(acc0_f32x16, e0_f32x16);
            acc1_f32x16 = _mm512_add_ps(acc1_f32x16, e1_f32x16);
            acc2_f32x16 = _mm512_add_ps(acc2_f32x16, e2_f32x16);
            acc3_f32x16 = _mm512_add_ps(acc3_f32x16, e3_f32x16);
            if (j < live_lo) live_lo = j;
            live_hi = j + 64;
            if (++terms == 16) {
                sum0_f64x8 = widen_add_f64x8(sum0_f64x8, acc0_f32x16);
                sum1_f64x8 = widen_add_f64x8(sum1_f64x8, acc1_f32x16);
                sum0_f64x8 = widen_add_f64x8(sum0_f64x8, acc2_f32x16);
                sum1_f64x8 = widen_add_f64x8(sum1_f64x8, acc3_f32x16);
                acc0_f32x16 = acc1_f32x16 = acc2_f32x16 = acc3_f32x16 = zero_f32x16;
                terms = 0;
            }
        }
        /* At most 3 full vectors and a tail are left: one term each per lane of acc0..acc3 after the flush. */
        sum0_f64x8 = widen_add_f64x8(sum0_f64x8, acc0_f32x16);
        sum1_f64x8 = widen_add_f64x8(sum1_f64x8, acc1_f32x16);
        sum0_f64x8 = widen_add_f64x8(sum0_f64x8, acc2_f32x16);
        sum1_f64x8 = widen_add_f64x8(sum1_f64x8, acc3_f32x16);
        acc0_f32x16 = zero_f32x16;
        for (; j < hi; j += 16) {
            int full = hi - j >= 16;
            __mmask16 active = full ? (__mmask16)0xffff : tail_mask(hi - j);
            __m512 x_f32x16;
            if (stored) {
                x_f32x16 = _mm512_maskz_loadu_ps(active, probs + j);
            } else {
                x_f32x16 = logits_f32x16(&c, keys, mask, 0, j, active, 0, k0_f32x16);
                k0_f32x16 = _mm512_add_ps(k0_f32x16, sixteen_f32x16);
            }
            __m512 d_f32x16 = _mm512_sub_ps(x_f32x16, mx_f32x16);
            __mmask16 keep = _mm512_mask_cmp_ps_mask(active, d_f32x16, flush_f32x16, _CMP_NLT_UQ);
            __m512 e_f32x16 = zero_f32x16;
            if (keep) {
                e_f32x16 = exp_flushed_f32x16(d_f32x16, keep);
                acc0_f32x16 = _mm512_add_ps(acc0_f32x16, e_f32x16);
                if (j < live_lo) live_lo = j;
                live_hi = full ? j + 16 : hi;
            }
            _mm512_mask_storeu_ps(probs + j, active, e_f32x16);
        }
        sum0_f64x8 = widen_add_f64x8(sum0_f64x8, acc0_f32x16);
    }
    double sum = _mm512_reduce_add_pd(_mm512_add_pd(sum0_f64x8, sum1_f64x8));
    if (row->has_sink) sum += (double)flushed_expf(row->sink - mx);

    /* Pass 3. The reciprocal is rounded once from float64 (0.5 u) and the product once more (0.5 u). Outputs
     * below POSATTN_OUTPUT_FLUSH_BELOW are 0, decided through the write mask before the multiply could form a
     * subnormal (a microcode assist of about 100 cycles per vector on Intel): e_j / sum < 2^-125 exactly when
     * e_j < 2^-125 * sum, and for a float e_j exactly when e_j is below that product rounded up to float, so
     * the decision is the scalar path's. A NaN sum (a NaN logit) must reach every key of [lo, hi), zeros
     * included, hence NLT_UQ and the full range. */
    if (isnan(sum)) live_lo = lo, live_hi = hi;
    const double flush_below_f64 = (double)POSATTN_OUTPUT_FLUSH_BELOW * sum;
    float flush_below_f32 = (float)flush_below_f64;
    if ((double)flush_below_f32 < flush_below_f64) flush_below_f32 = nextafterf(flush_below_f32, INFINITY);
    const __m512 inv_f32x16 = _mm512_set1_ps((float)(1.0 / sum));
    const __m512 flush_below_f32x16 = _mm512_set1_ps(flush_below_f32);
    {
        int64_t j = live_lo;
        for (; j + 64 <= live_hi; j += 64) {
            __m512 e0_f32x16 = _mm512_loadu_ps(probs + j);
            __m512 e1_f32x16 = _mm512_loadu_ps(probs + j + 16);
            __m512 e2_f32x16 = _mm512_loadu_ps(probs + j + 32);
            __m512 e3_f32x16 = _mm512_loadu_ps(probs + j + 48);
            __mmask16 keep0 = _mm512_cmp_ps_mask(e0_f32x16, flush_below_f32x16, _CMP_NLT_UQ);
            __mmask16 keep1 = _mm512_cmp_ps_mask(e1_f32x16, flush_below_f32x16, _CMP_NLT_UQ);
            __mmask16 keep2 = _mm512_cmp_ps_mask(e2_f32x16, flush_below_f32x16, _CMP_NLT_UQ);
            __mmask16 keep3 = _mm512_cmp_ps_mask(e3_f32x16, flush_below_f32x16, _CMP_NLT_UQ);
            _mm512_storeu_ps(probs + j, _mm512_maskz_mul_ps(keep0, e0_f32x16, inv_f32x16));
            _mm512_storeu_ps(probs + j + 16, _mm512_maskz_mul_ps(keep1, e1_f32x16, inv_f32x16));
            _mm512_storeu_ps(probs + j + 32, _mm512_maskz_mul_ps(keep2, e2_f32x16, inv_f32x16));
            _mm512_storeu_ps(probs + j + 48, _mm512_maskz_mul_ps(keep3, e3_f32x16, inv_f32x16));
        }
        for (; j < live_hi; j += 16) {
            __mmask16 active = live_hi - j >= 16 ? (__mmask16)0xffff : tail_mask(live_hi - j);
            __m512 e_f32x16 = _mm512_maskz_loadu_ps(active, probs + j);
            __mmask16 keep = _mm512_mask_cmp_ps_mask(active, e_f32x16, flush_below_f32x16, _CMP_NLT_UQ);
            _mm512_mask_storeu_ps(probs + j, active, _mm512_maskz_mul_ps(keep, e_f32x16, inv_f32x16));
        }
    }
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
    posattn_row_prefetch_rest(&pf);
}

/* The specialised variants and the entry the registry points at (see x86_row_variants.h). */
POSATTN_DEFINE_SOFTMAX_ROW(posattn_alibi_softmax_row_f32_avx512)
#undef POSATTN_SOFTMAX_VARIANT
#undef POSATTN_ND_SOFTMAX_VARIANT
#undef POSATTN_SOFTMAX_CASE
