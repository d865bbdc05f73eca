/*
 * AVX2 ALiBi kernels: the external bias row and the fused bias-add-softmax row (the slopes are the scalar
 * kernel's on every ISA: once per model, exact in float64).
 *
 * ISA: AVX2 (256-bit integer lanes for tail masks, gathers for strided key positions), FMA (the exponential and
 * the bias in one rounding each), F16C (_mm256_cvtph_ps for f16 masks). The dispatcher has checked the CPU and
 * the OS (YMM state) before any of this runs.
 *
 * Tails: AVX2 has no write masks, so every loop ends with one vector whose lanes past the end are switched off by
 * a lane mask: _mm256_maskload_ps / _mm256_maskstore_ps (which neither fault nor touch masked-out lanes) and
 * masked gathers for float data; an f16 mask tail is copied into a local buffer, as there is no 16-bit masked
 * load. So no byte outside [0, nk) of any caller buffer is read or written, whatever the alignment (all accesses
 * are unaligned loads and stores), and in place (probs == scores) works because each vector is read before the
 * same vector is written.
 *
 * Sums: each lane of a float32 accumulator adds at most 16 exponentials, each in [0, 1], before it is widened and
 * added to float64 accumulators. A float32 partial sum of 16 non-negative terms is within 15 u of exact and the
 * float64 stage adds nothing visible at 2^-24, so the denominator is within 16 u for any row length (2^20 keys
 * and far beyond), the budget of the Accuracy paragraph of posattn_alibi_softmax in posattn.h.
 *
 * Exponential: the polynomial of exp_f32.h kept in registers (below 2 ulp on [-87, 0]). The argument is clamped
 * to POSATTN_EXP_FLUSH_BELOW first, so 2^n is built only for n in [-126, 0] and every product is at least
 * e^-87 > FLT_MIN: no lane, live or flushed, ever forms a subnormal (each one would cost a microcode assist).
 * Lanes below the threshold are then zeroed, and whole groups of them skip the polynomial: under ALiBi most of a
 * long row sits far below the maximum.
 *
 * N-D positions (2..4 axes): the softmax body runs with the logits stored by pass 1 and reloaded by pass 2 (formed
 * once). Packed positions (stride <= 4 floats) are loaded as whole vectors (masked at the end of the key array) and
 * de-interleaved by shuffles (dedicated ones for (y, x), (t, y, x) and (t, z, y, x)), wider strides gathered per
 * axis. The distance follows posattn_alibi_dist_nd operation for operation (no FMA; vsqrtps is correctly
 * rounded), so N-D biases are the scalar reference's bit for bit; the softmax adds the bias with one FMA, as 1-D.
 */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <stdint.h>
#include <string.h>

#include "../exp_f32.h"
#include "../kernels.h"
#include "../x86_row_variants.h"

#define POSATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---------------------------------------------------------------------------------------------------------- */
/* Key positions and lane masks                                                                                 */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct keys_ctx {
    const float *k_pos;
    int64_t k_stride;
    __m256i offsets_lo_i64x4, offsets_hi_i64x4; /* lane * k_stride, for the gathers */
} keys_ctx;

static inline keys_ctx keys_context(const posattn_key_positions *keys) {
    keys_ctx k;
    k.k_pos = keys->k_pos;
    k.k_stride = keys->k_pos_stride;
    /* 64-bit offsets: lane * stride can pass 2^31 elements. Unsigned, because the offsets of lanes past the end of
     * a short row may wrap; those lanes are masked off and never dereferenced. */
    uint64_t s = (uint64_t)keys->k_pos_stride;
    k.offsets_lo_i64x4 = _mm256_setr_epi64x(0, (int64_t)s, (int64_t)(2 * s), (int64_t)(3 * s));
    k.offsets_hi_i64x4 = _mm256_setr_epi64x((int64_t)(4 * s), (int64_t)(5 * s), (int64_t)(6 * s), (int64_t)(7 * s));
    return k;
}

static inline __m256 iota_f32x8(void) {
    return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
}

/* Lanes [0, min(remaining, 8)) set; remaining >= 1. */
static inline __m256i active_lanes_i32x8(int64_t remaining) {
    int n = remaining < 8 ? (int)remaining : 8;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* (float)(j + lane) for any j, rounded once as the scalar conversion rounds. AVX2 converts only 32-bit integers,
 * so rows past 2^31 keys (never seen in practice) convert lane by lane. */
static inline __m256 iota_wide_f32x8(int64_t j) {
    if (j <= INT32_MAX - 8) {
        __m256i j_i32x8 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        return _mm256_cvtepi32_ps(j_i32x8);
    }
    float lanes[8];
    for (int l = 0; l < 8; ++l) lanes[l] = (float)(j + l);
    return _mm256_loadu_ps(lanes);
}

/* Positions of keys j..j+7 (inactive lanes are not read). iota_k carries them for KEYS_IOTA, where the loops keep
 * the vector up to date with one addition instead of a conversion per vector. */
POSATTN_ALWAYS_INLINE __m256 key_positions_f32x8(const keys_ctx *k, int mode, int64_t j, __m256i active, int full,
                                                 __m256 iota_k) {
    switch (mode) {
    case KEYS_IOTA: return iota_k;
    case KEYS_IOTA_WIDE: return iota_wide_f32x8(j);
    case KEYS_CONTIGUOUS: return full ? _mm256_loadu_ps(k->k_pos + j) : _mm256_maskload_ps(k->k_pos + j, active);
    default: {
        const float *base = k->k_pos + j * k->k_stride;
        __m128 lo_f32x4 = _mm256_mask_i64gather_ps(_mm_setzero_ps(), base, k->offsets_lo_i64x4,
                                                   _mm_castsi128_ps(_mm256_castsi256_si128(active)), 4);
        __m128 hi_f32x4 = _mm256_mask_i64gather_ps(_mm_setzero_ps(), base, k->offsets_hi_i64x4,
                                                   _mm_castsi128_ps(_mm256_extracti128_si256(active, 1)), 4);
        return _mm256_insertf128_ps(_mm256_castps128_ps256(lo_f32x4), hi_f32x4, 1);
    }
    }
}

static inline __m256 abs_f32x8(__m256 v_f32x8) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v_f32x8);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* External bias row                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

POSATTN_ALWAYS_INLINE void bias_row_body(const posattn_bias_row *row, int mode) {
    keys_ctx k = keys_context(&row->keys);
    float *bias = row->bias;
    const int64_t nk = row->nk;
    /* -slope * |d| with the sign folded into the constant: one rounding, bit-identical to the scalar path. */
    const __m256 neg_slope_f32x8 = _mm256_set1_ps(-row->slope);
    const __m256 q_f32x8 = _mm256_set1_ps(row->q_pos);
    const __m256 eight_f32x8 = _mm256_set1_ps(8.0f);
    const __m256i all_i32x8 = _mm256_set1_epi32(-1);
    __m256 iota_k_f32x8 = iota_f32x8();
    int64_t j = 0;
    for (; j + 8 <= nk; j += 8) {
        __m256 pos_f32x8 = key_positions_f32x8(&k, mode, j, all_i32x8, 1, iota_k_f32x8);
        __m256 dist_f32x8 = abs_f32x8(_mm256_sub_ps(q_f32x8, pos_f32x8));
        _mm256_storeu_ps(bias + j, _mm256_mul_ps(neg_slope_f32x8, dist_f32x8));
        iota_k_f32x8 = _mm256_add_ps(iota_k_f32x8, eight_f32x8);
    }
    if (j < nk) {
        __m256i active_i32x8 = active_lanes_i32x8(nk - j);
        __m256 pos_f32x8 = key_positions_f32x8(&k, mode, j, active_i32x8, 0, iota_k_f32x8);
        __m256 dist_f32x8 = abs_f32x8(_mm256_sub_ps(q_f32x8, pos_f32x8));
        _mm256_maskstore_ps(bias + j, active_i32x8, _mm256_mul_ps(neg_slope_f32x8, dist_f32x8));
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* N-D positions (2..4 axes)                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

/* Key coordinates of 8 keys. Positions at most 4 floats apart (packed, the common layout) come from S contiguous
 * vectors (masked loads where the key array ends: no float past the last key's k_len is read), each axis picked
 * from them by lane permutes and blends; wider strides gather each axis with 64-bit offsets. The distance follows
 * posattn_alibi_dist_nd operation for operation (no FMA), so it is the scalar reference's bit for bit. */
typedef struct nd_ctx {
    const float *k_pos;
    int64_t k_stride, k_len, nk;
    int packed, weighted;
    int whole; /* S = A = kept axes in order (the usual layout): the dedicated 3- and 4-axis shuffles apply */
    __m256i idx_i32x8[4];
    __m256 from_f32x8[4][4]; /* lanes of axis a that come from loaded vector i */
    int offset[4];
    __m256i offsets_lo_i64x4, offsets_hi_i64x4;
    __m256 q_f32x8[4], w_f32x8[4];
} nd_ctx;

static inline nd_ctx nd_context(const posattn_nd_positions *nd, const posattn_key_positions *keys, int64_t nk) {
    nd_ctx c;
    keys_ctx k = keys_context(keys);
    c.k_pos = keys->k_pos;
    c.k_stride = keys->k_pos_stride;
    c.k_len = nd->k_len;
    c.nk = nk;
    c.packed = c.k_stride <= 4;
    c.weighted = nd->weighted;
    c.whole = c.k_stride == nd->axes;
    for (int a = 0; a < nd->axes; ++a) c.whole &= nd->offset[a] == a;
    c.offsets_lo_i64x4 = k.offsets_lo_i64x4;
    c.offsets_hi_i64x4 = k.offsets_hi_i64x4;
    /* Packed layout: the float of lane l on axis a is element e = S l + offset of the S loaded vectors: lane
     * e mod 8 of vector e / 8. */
    const __m256i e_base_i32x8 = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                    _mm256_set1_epi32(c.packed ? (int)c.k_stride : 0));
    for (int a = 0; a < 4; ++a) {
        int off = a < nd->axes ? nd->offset[a] : 0;
        __m256i e_i32x8 = _mm256_add_epi32(e_base_i32x8, _mm256_set1_epi32(c.packed ? off : 0));
        c.idx_i32x8[a] = _mm256_and_si256(e_i32x8, _mm256_set1_epi32(7));
        __m256i vec_i32x8 = _mm256_srli_epi32(e_i32x8, 3);
        for (int i = 0; i < 4; ++i) {
            c.from_f32x8[a][i] = _mm256_castsi256_ps(_mm256_cmpeq_epi32(vec_i32x8, _mm256_set1_epi32(i)));
        }
        c.offset[a] = off;
        c.q_f32x8[a] = _mm256_set1_ps(a < nd->axes ? nd->q[a] : 0.0f);
        c.w_f32x8[a] = _mm256_set1_ps(a < nd->axes ? nd->w[a] : 1.0f);
    }
    return c;
}

static inline __m256 load_elements_f32x8(const float *p, int64_t avail) {
    if (avail >= 8) return _mm256_loadu_ps(p);
    if (avail <= 0) return _mm256_setzero_ps();
    return _mm256_maskload_ps(p, active_lanes_i32x8(avail));
}

/* Distances of keys j..j+7 (lanes outside active may hold anything; their memory is not read). */
POSATTN_ALWAYS_INLINE __m256 nd_dist_f32x8(const nd_ctx *c, int axes, int l2, int64_t j, __m256i active_i32x8) {
    const float *base = c->k_pos + j * c->k_stride;
    __m256 coord_f32x8[4];
    if (c->packed) {
        const int64_t S = c->k_stride;
        int64_t avail = (c->nk - 1 - j) * S + c->k_len; /* floats readable from base */
        if (axes == 4 && c->whole && avail >= 32) {
            /* (t, z, y, x): a 4 x 4 transpose in each 128-bit half, keys l and l + 4 side by side. */
            __m256 r0_f32x8 = _mm256_loadu2_m128(base + 16, base);
            __m256 r1_f32x8 = _mm256_loadu2_m128(base + 20, base + 4);
            __m256 r2_f32x8 = _mm256_loadu2_m128(base + 24, base + 8);
            __m256 r3_f32x8 = _mm256_loadu2_m128(base + 28, base + 12);
            __m256 t0_f32x8 = _mm256_unpacklo_ps(r0_f32x8, r1_f32x8);
            __m256 t1_f32x8 = _mm256_unpackhi_ps(r0_f32x8, r1_f32x8);
            __m256 t2_f32x8 = _mm256_unpacklo_ps(r2_f32x8, r3_f32x8);
            __m256 t3_f32x8 = _mm256_unpackhi_ps(r2_f32x8, r3_f32x8);
            coord_f32x8[0] = _mm256_shuffle_ps(t0_f32x8, t2_f32x8, 0x44);
            coord_f32x8[1] = _mm256_shuffle_ps(t0_f32x8, t2_f32x8, 0xee);
            coord_f32x8[2] = _mm256_shuffle_ps(t1_f32x8, t3_f32x8, 0x44);
            coord_f32x8[3] = _mm256_shuffle_ps(t1_f32x8, t3_f32x8, 0xee);
            goto distance;
        }
        if (axes == 2 && c->whole && avail >= 16) {
            /* (y, x): even and odd floats of two vectors, then the 64-bit quarters back in key order. */
            __m256 v0_f32x8 = _mm256_loadu_ps(base), v1_f32x8 = _mm256_loadu_ps(base + 8);
            coord_f32x8[0] = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(v0_f32x8, v1_f32x8, 0x88)), 0xd8));
            coord_f32x8[1] = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(v0_f32x8, v1_f32x8, 0xdd)), 0xd8));
            goto distance;
        }
        if (axes == 3 && c->whole && avail >= 24) {
            /* (t, y, x): 3 is prime to 8, so each axis sits at 8 distinct lane positions of the 3 vectors; two
             * blends gather them into one vector and one permute puts them in key order. */
            __m256 v0_f32x8 = _mm256_loadu_ps(base), v1_f32x8 = _mm256_loadu_ps(base + 8);
            __m256 v2_f32x8 = _mm256_loadu_ps(base + 16);
            __m256 a0_f32x8 = _mm256_blend_ps(_mm256_blend_ps(v0_f32x8, v1_f32x8, 0x92), v2_f32x8, 0x24);
            __m256 a1_f32x8 = _mm256_blend_ps(_mm256_blend_ps(v0_f32x8, v1_f32x8, 0x24), v2_f32x8, 0x49);
            __m256 a2_f32x8 = _mm256_blend_ps(_mm256_blend_ps(v0_f32x8, v1_f32x8, 0x49), v2_f32x8, 0x92);
            coord_f32x8[0] = _mm256_permutevar8x32_ps(a0_f32x8, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
            coord_f32x8[1] = _mm256_permutevar8x32_ps(a1_f32x8, _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
            coord_f32x8[2] = _mm256_permutevar8x32_ps(a2_f32x8, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
            goto distance;
        }
        __m256 v_f32x8[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int i = 0; i < 4; ++i) {
            if (i < S) {
                v_f32x8[i] = avail >= 8 * S ? _mm256_loadu_ps(base + 8 * i)
                                            : load_elements_f32x8(base + 8 * i, avail - 8 * i);
            }
        }
        for (int a = 0; a < axes; ++a) {
            __m256 r_f32x8 = _mm256_permutevar8x32_ps(v_f32x8[0], c->idx_i32x8[a]);
            for (int i = 1; i < 4; ++i) {
                if (i < S) {
                    r_f32x8 = _mm256_blendv_ps(r_f32x8, _mm256_permutevar8x32_ps(v_f32x8[i], c->idx_i32x8[a]),
                                               c->from_f32x8[a][i]);
                }
            }
            coord_f32x8[a] = r_f32x8;
        }
    } else {
        for (int a = 0; a < axes; ++a) {
            const float *axis = base + c->offset[a];
            __m128 lo_f32x4 = _mm256_mask_i64gather_ps(_mm_setzero_ps(), axis, c->offsets_lo_i64x4,
                                                       _mm_castsi128_ps(_mm256_castsi256_si128(active_i32x8)), 4);
            __m128 hi_f32x4 = _mm256_mask_i64gather_ps(_mm_setzero_ps(), axis, c->offsets_hi_i64x4,
                                                       _mm_castsi128_ps(_mm256_extracti128_si256(active_i32x8, 1)), 4);
            coord_f32x8[a] = _mm256_insertf128_ps(_mm256_castps128_ps256(lo_f32x4), hi_f32x4, 1);
        }
    }
distance:;
    __m256 acc_f32x8 = _mm256_setzero_ps();
    for (int a = 0; a < axes; ++a) {
        __m256 t_f32x8 = _mm256_sub_ps(c->q_f32x8[a], coord_f32x8[a]);
        if (!l2) t_f32x8 = abs_f32x8(t_f32x8);
        if (c->weighted) t_f32x8 = _mm256_mul_ps(c->w_f32x8[a], t_f32x8);
        if (l2) t_f32x8 = _mm256_mul_ps(t_f32x8, t_f32x8);
        acc_f32x8 = a == 0 ? t_f32x8 : _mm256_add_ps(acc_f32x8, t_f32x8);
    }
    return l2 ? _mm256_sqrt_ps(acc_f32x8) : acc_f32x8;
}

POSATTN_ALWAYS_INLINE void nd_bias_row_body(const posattn_bias_row *row, int axes, int l2) {
    nd_ctx c = nd_context(&row->nd, &row->keys, row->nk);
    const __m256 neg_slope_f32x8 = _mm256_set1_ps(-row->slope);
    for (int64_t j = 0; j < row->nk; j += 8) {
        __m256i active_i32x8 = active_lanes_i32x8(row->nk - j);
        __m256 b_f32x8 = _mm256_mul_ps(neg_slope_f32x8, nd_dist_f32x8(&c, axes, l2, j, active_i32x8));
        if (row->nk - j >= 8) {
            _mm256_storeu_ps(row->bias + j, b_f32x8);
        } else {
            _mm256_maskstore_ps(row->bias + j, active_i32x8, b_f32x8);
        }
    }
}

/* The N-D variants and the entry the registry points at (see x86_row_variants.h). */
POSATTN_DEFINE_BIAS_ROW(posattn_alibi_bias_row_f32_avx2)
#undef POSATTN_ND_BIAS_VARIANT

/* ---------------------------------------------------------------------------------------------------------- */
/* Exponential                                                                                                  */
/* ---------------------------------------------------------------------------------------------------------- */

/* exp(d) for d <= 0, exactly 0 in the lanes of flush (the caller's d < POSATTN_EXP_FLUSH_BELOW, false for NaN). */
static inline __m256 exp_flushed_f32x8(__m256 d_f32x8, __m256 flush_f32x8) {
    /* Clamped at the flush threshold: n >= -126 and the result >= e^-87 in every lane, so neither 2^n nor the
     * product is ever subnormal, and -inf (masked keys) never reaches the reduction. max(c, NaN) is NaN. */
    d_f32x8 = _mm256_max_ps(_mm256_set1_ps(POSATTN_EXP_FLUSH_BELOW), d_f32x8);
    /* Adding 1.5 * 2^23 + 127 rounds d * log2(e) to the nearest integer n and leaves n + 127, the biased exponent
     * of 2^n, in the low mantissa bits. */
    const __m256 magic_f32x8 = _mm256_set1_ps(12582912.0f + 127.0f);
    __m256 t_f32x8 = _mm256_fmadd_ps(d_f32x8, _mm256_set1_ps(POSATTN_EXP_LOG2E), magic_f32x8);
    __m256 n_f32x8 = _mm256_sub_ps(t_f32x8, magic_f32x8);
    /* Cody-Waite: n * LN2_HI is exact, so r carries only the rounding of the second step. */
    __m256 r_f32x8 = _mm256_fnmadd_ps(n_f32x8, _mm256_set1_ps(POSATTN_EXP_LN2_HI), d_f32x8);
    r_f32x8 = _mm256_fnmadd_ps(n_f32x8, _mm256_set1_ps(POSATTN_EXP_LN2_LO), r_f32x8);
    __m256 p_f32x8 = _mm256_fmadd_ps(_mm256_set1_ps(POSATTN_EXP_P0), r_f32x8, _mm256_set1_ps(POSATTN_EXP_P1));
    p_f32x8 = _mm256_fmadd_ps(p_f32x8, r_f32x8, _mm256_set1_ps(POSATTN_EXP_P2));
    p_f32x8 = _mm256_fmadd_ps(p_f32x8, r_f32x8, _mm256_set1_ps(POSATTN_EXP_P3));
    p_f32x8 = _mm256_fmadd_ps(p_f32x8, r_f32x8, _mm256_set1_ps(POSATTN_EXP_P4));
    p_f32x8 = _mm256_fmadd_ps(p_f32x8, r_f32x8, _mm256_set1_ps(POSATTN_EXP_P5));
    /* 1 + r + r^2 P(r) as 1 + r (1 + r P(r)): two FMAs, no r^2 (which would underflow for tiny r), and the last
     * rounding is that of the result. */
    const __m256 one_f32x8 = _mm256_set1_ps(1.0f);
    p_f32x8 = _mm256_fmadd_ps(p_f32x8, r_f32x8, one_f32x8);
    p_f32x8 = _mm256_fmadd_ps(p_f32x8, r_f32x8, one_f32x8);
    /* A multiply rather than an integer add to the exponent field, so a NaN stays NaN. */
    __m256 pow2n_f32x8 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t_f32x8), 23));
    return _mm256_andnot_ps(flush_f32x8, _mm256_mul_ps(p_f32x8, pow2n_f32x8));
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Fused softmax row                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct logits_ctx {
    const float *scores;
    const void *mask;
    keys_ctx keys;
    nd_ctx nd; /* N-D rows only */
    __m256 scale_f32x8, cap_f32x8, slope_f32x8, q_f32x8, mask_scale_f32x8;
} logits_ctx;

/* Logits of keys j..j+7, as the scalar logit(). The bias and the mask are added with one FMA each: one rounding
 * fewer than the scalar path, within the same bound; with mask_scale = 1 the mask term is bit-identical. When
 * full is 0, only the lanes of active (the first min(remaining, 8)) are read; the others hold garbage. */
POSATTN_ALWAYS_INLINE __m256 logits_f32x8(const logits_ctx *c, int keys, int mask, int softcap, int64_t j,
                                          int64_t remaining, __m256i active_i32x8, int full, __m256 iota_k) {
    __m256 s_f32x8 = full ? _mm256_loadu_ps(c->scores + j) : _mm256_maskload_ps(c->scores + j, active_i32x8);
    __m256 x_f32x8 = _mm256_mul_ps(c->scale_f32x8, s_f32x8);
    if (softcap) {
        /* A division, not a reciprocal multiply, to round x / cap as the scalar path does. */
        x_f32x8 = _mm256_mul_ps(c->cap_f32x8, Sleef_tanhf8_u10avx2(_mm256_div_ps(x_f32x8, c->cap_f32x8)));
    }
    if (keys >= KEYS_ND) {
        __m256 dist_f32x8 = nd_dist_f32x8(&c->nd, KEYS_ND_AXES(keys), KEYS_ND_L2(keys), j, active_i32x8);
        x_f32x8 = _mm256_fnmadd_ps(c->slope_f32x8, dist_f32x8, x_f32x8);
    } else if (keys != KEYS_NONE) {
        __m256 pos_f32x8 = key_positions_f32x8(&c->keys, keys, j, active_i32x8, full, iota_k);
        __m256 dist_f32x8 = abs_f32x8(_mm256_sub_ps(c->q_f32x8, pos_f32x8));
        x_f32x8 = _mm256_fnmadd_ps(c->slope_f32x8, dist_f32x8, x_f32x8);
    }
    if (mask != MASK_NONE) {
        __m256 m_f32x8;
        if (mask == MASK_F32) {
            const float *m = (const float *)c->mask + j;
            m_f32x8 = full ? _mm256_loadu_ps(m) : _mm256_maskload_ps(m, active_i32x8);
        } else {
            const uint16_t *m = (const uint16_t *)c->mask + j;
            __m128i h_i16x8;
            if (full) {
                h_i16x8 = _mm_loadu_si128((const __m128i *)m);
            } else {
                uint16_t tail[8] = {0};
                memcpy(tail, m, (size_t)(remaining < 8 ? remaining : 8) * sizeof(uint16_t));
                h_i16x8 = _mm_loadu_si128((const __m128i *)tail);
            }
            m_f32x8 = _mm256_cvtph_ps(h_i16x8);
        }
        /* -inf excludes the key whatever x is, so m_h * (-inf) never meets a NaN or +inf. */
        const __m256 neg_inf_f32x8 = _mm256_set1_ps(-INFINITY);
        __m256 excluded_f32x8 = _mm256_cmp_ps(m_f32x8, neg_inf_f32x8, _CMP_EQ_OQ);
        x_f32x8 = _mm256_fmadd_ps(c->mask_scale_f32x8, m_f32x8, x_f32x8);
        x_f32x8 = _mm256_blendv_ps(x_f32x8, neg_inf_f32x8, excluded_f32x8);
    }
    return x_f32x8;
}

/* Widens a float32 partial sum (at most 16 terms per lane) into the float64 accumulator. */
static inline __m256d widen_add_f64x4(__m256d sum_f64x4, __m256 part_f32x8) {
    sum_f64x4 = _mm256_add_pd(sum_f64x4, _mm256_cvtps_pd(_mm256_castps256_ps128(part_f32x8)));
    return _mm256_add_pd(sum_f64x4, _mm256_cvtps_pd(_mm256_extractf128_ps(part_f32x8, 1)));
}

static inline float reduce_max_f32x8(__m256 v_f32x8) {
    __m128 m_f32x4 = _mm_max_ps(_mm256_castps256_ps128(v_f32x8), _mm256_extractf128_ps(v_f32x8, 1));
    m_f32x4 = _mm_max_ps(m_f32x4, _mm_movehl_ps(m_f32x4, m_f32x4));
    m_f32x4 = _mm_max_ss(m_f32x4, _mm_shuffle_ps(m_f32x4, m_f32x4, 1));
    return _mm_cvtss_f32(m_f32x4);
}

static inline double reduce_add_f64x4(__m256d v_f64x4) {
    __m128d s_f64x2 = _mm_add_pd(_mm256_castpd256_pd128(v_f64x4), _mm256_extractf128_pd(v_f64x4, 1));
    s_f64x2 = _mm_add_sd(s_f64x2, _mm_unpackhi_pd(s_f64x2, s_f64x2));
    return _mm_cvtsd_f64(s_f64x2);
}

static inline void fill_f32(float *dst, int64_t begin, int64_t end, __m256 value_f32x8) {
    int64_t j = begin;
    for (; j + 8 <= end; j += 8) _mm256_storeu_ps(dst + j, value_f32x8);
    if (j < end) _mm256_maskstore_ps(dst + j, active_lanes_i32x8(end - j), value_f32x8);
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
    const __m256 zero_f32x8 = _mm256_setzero_ps();
    const __m256 neg_inf_f32x8 = _mm256_set1_ps(-INFINITY);
    const __m256 eight_f32x8 = _mm256_set1_ps(8.0f);
    const __m256 step_f32x8 = _mm256_set1_ps(32.0f);
    const __m256i all_i32x8 = _mm256_set1_epi32(-1);

    fill_f32(probs, 0, lo, zero_f32x8);
    fill_f32(probs, hi, row->nk, zero_f32x8);
    posattn_row_prefetch pf = posattn_row_prefetch_of(row); /* the next row: see kernels.h */

    logits_ctx c;
    c.scores = row->scores;
    c.mask = row->mask;
    c.keys = keys_context(&row->keys);
    if (keys >= KEYS_ND) c.nd = nd_context(&row->nd, &row->keys, row->nk);
    c.scale_f32x8 = _mm256_set1_ps(row->scale);
    c.cap_f32x8 = _mm256_set1_ps(row->softcap);
    c.slope_f32x8 = _mm256_set1_ps(row->slope);
    c.q_f32x8 = _mm256_set1_ps(row->q_pos);
    c.mask_scale_f32x8 = _mm256_set1_ps(row->mask_scale);
    /* Exact: lo <= 2^24 whenever KEYS_IOTA is chosen. */
    const __m256 iota_lo_f32x8 = _mm256_add_ps(_mm256_set1_ps((float)lo), iota_f32x8());

    /* Pass 1. max(x, acc) returns acc when x is NaN, as fmaxf does: NaN reaches the sum through exp instead,
     * except in an otherwise empty row, which is checked below. */
    __m256 max0_f32x8 = neg_inf_f32x8, max1_f32x8 = neg_inf_f32x8;
    __m256 max2_f32x8 = neg_inf_f32x8, max3_f32x8 = neg_inf_f32x8;
    {
        __m256 k0_f32x8 = iota_lo_f32x8;
        int64_t j = lo;
        for (; j + 32 <= hi; j += 32) {
            __m256 k1_f32x8 = _mm256_add_ps(k0_f32x8, eight_f32x8);
            __m256 k2_f32x8 = _mm256_add_ps(k1_f32x8, eight_f32x8);
            __m256 k3_f32x8 = _mm256_add_ps(k2_f32x8, eight_f32x8);
            __m256 x0_f32x8 = logits_f32x8(&c, keys, mask, softcap, j, 8, all_i32x8, 1, k0_f32x8);
            __m256 x1_f32x8 = logits_f32x8(&c, keys, mask, softcap, j + 8, 8, all_i32x8, 1, k1_f32x8);
            __m256 x2_f32x8 = logits_f32x8(&c, keys, mask, softcap, j + 16, 8, all_i32x8, 1, k2_f32x8);
            __m256 x3_f32x8 = logits_f32x8(&c, keys, mask, softcap, j + 24, 8, all_i32x8, 1, k3_f32x8);
            if (stored) {
                _mm256_storeu_ps(probs + j, x0_f32x8);
                _mm256_storeu_ps(probs + j + 8, x1_f32x8);
                _mm256_storeu_ps(probs + j + 16, x2_f32x8);
                _mm256_storeu_ps(probs + j + 24, x3_f32x8);
            }
            max0_f32x8 = _mm256_max_ps(x0_f32x8, max0_f32x8);
            max1_f32x8 = _mm256_max_ps(x1_f32x8, max1_f32x8);
            max2_f32x8 = _mm256_max_ps(x2_f32x8, max2_f32x8);
            max3_f32x8 = _mm256_max_ps(x3_f32x8, max3_f32x8);
            k0_f32x8 = _mm256_add_ps(k0_f32x8, step_f32x8);
        }
        for (; j < hi; j += 8) {
            __m256i active_i32x8 = active_lanes_i32x8(hi - j);
            __m256 x_f32x8 = logits_f32x8(&c, keys, mask, softcap, j, hi - j, active_i32x8, 0, k0_f32x8);
            if (stored) _mm256_maskstore_ps(probs + j, active_i32x8, x_f32x8);
            x_f32x8 = _mm256_blendv_ps(neg_inf_f32x8, x_f32x8, _mm256_castsi256_ps(active_i32x8));
            max1_f32x8 = _mm256_max_ps(x_f32x8, max1_f32x8);
            k0_f32x8 = _mm256_add_ps(k0_f32x8, eight_f32x8);
        }
    }
    max0_f32x8 = _mm256_max_ps(_mm256_max_ps(max0_f32x8, max1_f32x8), _mm256_max_ps(max2_f32x8, max3_f32x8));
    float mx = reduce_max_f32x8(max0_f32x8);
    int sink_is_nan = 0;
    if (row->has_sink) {
        sink_is_nan = isnan(row->sink);
        mx = fmaxf(mx, row->sink);
    }

    if (mx == -INFINITY) {
        /* No key above -inf and no sink. The max skipped NaN, so look for one now (rare path): a NaN logit makes
         * the row NaN, as everywhere else; otherwise the row is empty. */
        int has_nan = sink_is_nan;
        __m256 k_f32x8 = iota_lo_f32x8;
        for (int64_t j = lo; j < hi && !has_nan; j += 8) {
            __m256i active_i32x8 = active_lanes_i32x8(hi - j);
            __m256 x_f32x8 = stored ? _mm256_maskload_ps(probs + j, active_i32x8)
                                     : logits_f32x8(&c, keys, mask, softcap, j, hi - j, active_i32x8, 0, k_f32x8);
            __m256 nan_f32x8 = _mm256_and_ps(_mm256_cmp_ps(x_f32x8, x_f32x8, _CMP_UNORD_Q),
                                             _mm256_castsi256_ps(active_i32x8));
            has_nan = _mm256_movemask_ps(nan_f32x8) != 0;
            k_f32x8 = _mm256_add_ps(k_f32x8, eight_f32x8);
        }
        fill_f32(probs, lo, hi, has_nan ? _mm256_set1_ps(NAN) : zero_f32x8);
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }

    /* Pass 2. Lanes with d < -87 are 0 by the flush rule (an ordered compare: NaN is never flushed), so a group
     * where every lane is below needs only its zeros stored. [live_lo, live_hi) tracks the vectors that were not
     * skipped, so pass 3 does not rescale stored zeros. */
    const __m256 mx_f32x8 = _mm256_set1_ps(mx);
    const __m256 flush_below_f32x8 = _mm256_set1_ps(POSATTN_EXP_FLUSH_BELOW);
    __m256d sum0_f64x4 = _mm256_setzero_pd(), sum1_f64x4 = _mm256_setzero_pd();
    int64_t live_lo = hi, live_hi = lo;
    {
        __m256 acc0_f32x8 = zero_f32x8, acc1_f32x8 = zero_f32x8;
        __m256 acc2_f32x8 = zero_f32x8, acc3_f32x8 = zero_f32x8;
        int terms = 0;
        __m256 k0_f32x8 = iota_lo_f32x8;
        int64_t j = lo;
        for (; j + 32 <= hi; j += 32) {
            posattn_row_prefetch_next(&pf, 2); /* as many lines as this group covers */
            __m256 x0_f32x8, x1_f32x8, x2_f32x8, x3_f32x8;
            if (stored) {
                x0_f32x8 = _mm256_loadu_ps(probs + j);
                x1_f32x8 = _mm256_loadu_ps(probs + j + 8);
                x2_f32x8 = _mm256_loadu_ps(probs + j + 16);
                x3_f32x8 = _mm256_loadu_ps(probs + j + 24);
            } else {
                __m256 k1_f32x8 = _mm256_add_ps(k0_f32x8, eight_f32x8);
                __m256 k2_f32x8 = _mm256_add_ps(k1_f32x8, eight_f32x8);
                __m256 k3_f32x8 = _mm256_add_ps(k2_f32x8, eight_f32x8);
                x0_f32x8 = logits_f32x8(&c, keys, mask, 0, j, 8, all_i32x8, 1, k0_f32x8);
                x1_f32x8 = logits_f32x8(&c, keys, mask, 0, j + 8, 8, all_i32x8, 1, k1_f32x8);
                x2_f32x8 = logits_f32x8(&c, keys, mask, 0, j + 16, 8, all_i32x8, 1, k2_f32x8);
                x3_f32x8 = logits_f32x8(&c, keys, mask, 0, j + 24, 8, all_i32x8, 1, k3_f32x8);
                k0_f32x8 = _mm256_add_ps(k0_f32x8, step_f32x8);
            }
            __m256 d0_f32x8 = _mm256_sub_ps(x0_f32x8, mx_f32x8);
            __m256 d1_f32x8 = _mm256_sub_ps(x1_f32x8, mx_f32x8);
            __m256 d2_f32x8 = _mm256_sub_ps(x2_f32x8, mx_f32x8);
            __m256 d3_f32x8 = _mm256_sub_ps(x3_f32x8, mx_f32x8);
            __m256 flush0_f32x8 = _mm256_cmp_ps(d0_f32x8, flush_below_f32x8, _CMP_LT_OQ);
            __m256 flush1_f32x8 = _mm256_cmp_ps(d1_f32x8, flush_below_f32x8, _CMP_LT_OQ);
            __m256 flush2_f32x8 = _mm256_cmp_ps(d2_f32x8, flush_below_f32x8, _CMP_LT_OQ);
            __m256 flush3_f32x8 = _mm256_cmp_ps(d3_f32x8, flush_below_f32x8, _CMP_LT_OQ);
            __m256 all_flushed_f32x8 = _mm256_and_ps(_mm256_and_ps(flush0_f32x8, flush1_f32x8),
                                                     _mm256_and_ps(flush2_f32x8, flush3_f32x8));
            if (_mm256_movemask_ps(all_flushed_f32x8) == 0xff) {
                _mm256_storeu_ps(probs + j, zero_f32x8);
                _mm256_storeu_ps(probs + j + 8, zero_f32x8);
                _mm256_storeu_ps(probs + j + 16, zero_f32x8);
                _mm256_storeu_ps(probs + j + 24, zero_f32x8);
                continue;
            }
            __m256 e0_f32x8 = exp_flushed_f32x8(d0_f32x8, flush0_f32x8);
            __m256 e1_f32x8 = exp_flushed_f32x8(d1_f32x8, flush1_f32x8);
            __m256 e2_f32x8 = exp_flushed_f32x8(d2_f32x8, flush2_f32x8);
            __m256 e3_f32x8 = exp_flushed_f32x8(d3_f32x8, flush3_f32x8);
            _mm256_storeu_ps(probs + j, e0_f32x8);
            _mm256_storeu_ps(probs + j + 8, e1_f32x8);
            _mm256_storeu_ps(probs + j + 16, e2_f32x8);
            _mm256_storeu_ps(probs + j + 24, e3_f32x8);
            acc0_f32x8 = _mm256_add_ps(acc0_f32x8, e0_f32x8);
            acc1_f32x8 = _mm256_add_ps(acc1_f32x8, e1_f32x8);
            acc2_f32x8 = _mm256_add_ps(acc2_f32x8, e2_f32x8);
            acc3_f32x8 = _mm256_add_ps(acc3_f32x8, e3_f32x8);
            if (j < live_lo) live_lo = j;
            live_hi = j + 32;
            if (++terms == 16) {
                sum0_f64x4 = widen_add_f64x4(sum0_f64x4, acc0_f32x8);
                sum1_f64x4 = widen_add_f64x4(sum1_f64x4, acc1_f32x8);
                sum0_f64x4 = widen_add_f64x4(sum0_f64x4, acc2_f32x8);
                sum1_f64x4 = widen_add_f64x4(sum1_f64x4, acc3_f32x8);
                acc0_f32x8 = acc1_f32x8 = acc2_f32x8 = acc3_f32x8 = zero_f32x8;
                terms = 0;
            }
        }
        sum0_f64x4 = widen_add_f64x4(sum0_f64x4, acc0_f32x8);
        sum1_f64x4 = widen_add_f64x4(sum1_f64x4, acc1_f32x8);
        sum0_f64x4 = widen_add_f64x4(sum0_f64x4, acc2_f32x8);
        sum1_f64x4 = widen_add_f64x4(sum1_f64x4, acc3_f32x8);
        /* At most 3 full vectors and a tail are left: at most 4 terms per lane of acc0. */
        acc0_f32x8 = zero_f32x8;
        for (; j < hi; j += 8) {
            __m256i active_i32x8 = active_lanes_i32x8(hi - j);
            __m256 x_f32x8;
            if (stored) {
                x_f32x8 = _mm256_maskload_ps(probs + j, active_i32x8);
            } else {
                x_f32x8 = logits_f32x8(&c, keys, mask, 0, j, hi - j, active_i32x8, 0, k0_f32x8);
                k0_f32x8 = _mm256_add_ps(k0_f32x8, eight_f32x8);
            }
            /* Lanes past the end become -inf, hence flushed: they add nothing to the sum. */
            x_f32x8 = _mm256_blendv_ps(neg_inf_f32x8, x_f32x8, _mm256_castsi256_ps(active_i32x8));
            __m256 d_f32x8 = _mm256_sub_ps(x_f32x8, mx_f32x8);
            __m256 flush_f32x8 = _mm256_cmp_ps(d_f32x8, flush_below_f32x8, _CMP_LT_OQ);
            __m256 e_f32x8 = zero_f32x8;
            if (_mm256_movemask_ps(flush_f32x8) != 0xff) {
                e_f32x8 = exp_flushed_f32x8(d_f32x8, flush_f32x8);
                acc0_f32x8 = _mm256_add_ps(acc0_f32x8, e_f32x8);
                if (j < live_lo) live_lo = j;
                live_hi = hi - j >= 8 ? j + 8 : hi;
            }
            _mm256_maskstore_ps(probs + j, active_i32x8, e_f32x8);
        }
        sum0_f64x4 = widen_add_f64x4(sum0_f64x4, acc0_f32x8);
    }
    double sum = reduce_add_f64x4(_mm256_add_pd(sum0_f64x4, sum1_f64x4));
    if (row->has_sink) sum += (double)flushed_expf(row->sink - mx);

    /* Pass 3. The reciprocal is rounded once from float64 (0.5 u) and the product once more (0.5 u). Outputs
     * below POSATTN_OUTPUT_FLUSH_BELOW are 0, decided before the multiply could form a subnormal (a microcode
     * assist of about 100 cycles per vector on Intel): e_j / sum < 2^-125 exactly when e_j < 2^-125 * sum, and
     * for a float e_j exactly when e_j is below that product rounded up to float, so the decision is the scalar
     * path's. A NaN sum (a NaN logit) must reach every key of [lo, hi), zeros included: an ordered compare keeps
     * NaN lanes, and the range widens to the whole row. */
    if (isnan(sum)) live_lo = lo, live_hi = hi;
    const double floor_f64 = (double)POSATTN_OUTPUT_FLUSH_BELOW * sum;
    float floor_f32 = (float)floor_f64;
    if ((double)floor_f32 < floor_f64) floor_f32 = nextafterf(floor_f32, INFINITY);
    const __m256 inv_f32x8 = _mm256_set1_ps((float)(1.0 / sum));
    const __m256 floor_f32x8 = _mm256_set1_ps(floor_f32);
    {
        int64_t j = live_lo;
        for (; j + 32 <= live_hi; j += 32) {
            __m256 e0_f32x8 = _mm256_loadu_ps(probs + j);
            __m256 e1_f32x8 = _mm256_loadu_ps(probs + j + 8);
            __m256 e2_f32x8 = _mm256_loadu_ps(probs + j + 16);
            __m256 e3_f32x8 = _mm256_loadu_ps(probs + j + 24);
            e0_f32x8 = _mm256_andnot_ps(_mm256_cmp_ps(e0_f32x8, floor_f32x8, _CMP_LT_OQ), e0_f32x8);
            e1_f32x8 = _mm256_andnot_ps(_mm256_cmp_ps(e1_f32x8, floor_f32x8, _CMP_LT_OQ), e1_f32x8);
            e2_f32x8 = _mm256_andnot_ps(_mm256_cmp_ps(e2_f32x8, floor_f32x8, _CMP_LT_OQ), e2_f32x8);
            e3_f32x8 = _mm256_andnot_ps(_mm256_cmp_ps(e3_f32x8, floor_f32x8, _CMP_LT_OQ), e3_f32x8);
            _mm256_storeu_ps(probs + j, _mm256_mul_ps(e0_f32x8, inv_f32x8));
            _mm256_storeu_ps(probs + j + 8, _mm256_mul_ps(e1_f32x8, inv_f32x8));
            _mm256_storeu_ps(probs + j + 16, _mm256_mul_ps(e2_f32x8, inv_f32x8));
            _mm256_storeu_ps(probs + j + 24, _mm256_mul_ps(e3_f32x8, inv_f32x8));
        }
        for (; j < live_hi; j += 8) {
            __m256i active_i32x8 = active_lanes_i32x8(live_hi - j);
            __m256 e_f32x8 = _mm256_maskload_ps(probs + j, active_i32x8);
            e_f32x8 = _mm256_andnot_ps(_mm256_cmp_ps(e_f32x8, floor_f32x8, _CMP_LT_OQ), e_f32x8);
            _mm256_maskstore_ps(probs + j, active_i32x8, _mm256_mul_ps(e_f32x8, inv_f32x8));
        }
    }
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
    posattn_row_prefetch_rest(&pf);
}

/* The specialised variants and the entry the registry points at (see x86_row_variants.h). */
POSATTN_DEFINE_SOFTMAX_ROW(posattn_alibi_softmax_row_f32_avx2)
#undef POSATTN_SOFTMAX_VARIANT
#undef POSATTN_ND_SOFTMAX_VARIANT
#undef POSATTN_SOFTMAX_CASE
