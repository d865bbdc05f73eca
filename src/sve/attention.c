/*
 * SVE fused attention tile (SPEC 9, contract in attention_kernels.h), vector-length agnostic: svcntw() float32
 * lanes, 4 to 64, and no constant, buffer or unrolling that depends on it, so the same code runs at 128, 256, 384,
 * 512 or 2048 bits.
 *
 * ISA: SVE (ARMv8.2-A+SVE), compiled with -march=armv8.2-a+sve and -ffp-contract=off, called only after the
 * dispatcher has seen HWCAP_SVE. The generic body of the other ISAs (attention_generic.h) keeps arrays of vectors
 * in register tiles, which sizeless SVE types cannot form; this body is the same algorithm written for them:
 *   per pass of rows, blocks of POSATTN_ATTENTION_BLOCK keys at multiples of the block size (so a row's result
 *   depends on its own keys only, whatever rows share the tile), and per row of the block:
 *   1. scores q . k_j, vector over dk (FMA) and reduced by FADDV: any order, as the contract allows;
 *   2. logits vector over the keys with the scalar reference's roundings (scale * s; softcap by a true division
 *      and SLEEF's tanh; x - slope * dist with FABD for the 1-D distance, product and difference each rounded;
 *      the mask, -inf entries selected rather than added), keys outside the row's [lo, hi) -inf, predicated so
 *      that their positions and mask entries are never read; the NaN-ignoring block maximum (FMAXNM);
 *   3. the running maximum, the float64 rescale of l and a, weights exp(x - m) exactly 0 below
 *      POSATTN_ATTENTION_FLUSH (compared before any exponential is formed) and their float32 block sum;
 *   4. the weighted sums of v: per group of svcntw() dims a float32 accumulator over the block's keys whose weight
 *      is not 0 (an excluded key's v never reaches the sums), then added to the row's float64 sums.
 * K and V of a block are read once from memory and re-read from L1 by the block's other rows (GQA, prefill).
 * f16 and bf16 K and V are widened exactly in registers (LD1H into 32-bit containers, then FCVT or a shift).
 *
 * Stack: the block's scores and weights (8 x 64 floats) and, in final mode, the float64 sums of a pass in 8 KiB,
 * split into passes as in attention_generic.h (all 8 rows for dv <= 128); partial mode sums in row.partial.
 */
#include <arm_sve.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../kernels.h"
#include "vector_sve.h"

#define BLOCK POSATTN_ATTENTION_BLOCK
#define TILE_ROWS POSATTN_ATTENTION_TILE_ROWS

/* The active lanes of a K or V row of the given type from element d, widened exactly to float32. */
static inline svfloat32_t load_kv(svbool_t pg, const void *row, int type, int64_t d) {
    switch (type) {
    case POSATTN_KV_TYPE_F16: return load_f16_as_f32(pg, (const uint16_t *)row + d);
    case POSATTN_KV_TYPE_BF16:
        return svreinterpret_f32_u32(svlsl_n_u32_x(pg, svld1uh_u32(pg, (const uint16_t *)row + d), 16));
    default: return svld1_f32(pg, (const float *)row + d);
    }
}

static inline const void *kv_row(const void *base, int type, int64_t stride, int64_t j) {
    return (const char *)base + (size_t)(j * stride) * (type == POSATTN_KV_TYPE_F32 ? 4u : 2u);
}

/* s[b] = q . k_{j0 + b} for the row's keys in the block, b in [first, end); the others are left alone (the logits
 * exclude them without reading them). */
static void row_scores(const posattn_attention_tile *t, const posattn_attention_row *row, int64_t j0, int64_t first,
                       int64_t end, float *s) {
    const int64_t lanes = (int64_t)svcntw(), dk = t->dk, q_stride = t->q_dim_stride;
    for (int64_t b = first; b < end; ++b) {
        const void *k = kv_row(t->k, t->k_type, t->k_tok_stride, j0 + b);
        svfloat32_t acc_f32 = svdup_n_f32(0.0f);
        for (int64_t d = 0; d < dk; d += lanes) {
            const svbool_t pg = svwhilelt_b32_s64(d, dk);
            const svfloat32_t q_f32 = load_strided_f32(pg, row->q + d * q_stride, q_stride);
            acc_f32 = svmla_f32_m(pg, acc_f32, q_f32, load_kv(pg, k, t->k_type, d));
        }
        s[b] = svaddv_f32(svptrue_b32(), acc_f32);
    }
}

/* The logits of one row for the block's n keys from j0, from its scores x[0, n), in place; keys outside the row's
 * [lo, hi) become -inf. Returns their maximum, NaN-ignoring. */
static float row_logits(const posattn_attention_tile *t, const posattn_attention_row *row, int64_t j0, int64_t n,
                        float *x) {
    const int64_t lanes = (int64_t)svcntw();
    const svfloat32_t excluded_f32 = svdup_n_f32(-INFINITY);
    svfloat32_t max_f32 = excluded_f32;
    for (int64_t b = 0; b < n; b += lanes) {
        const int64_t j = j0 + b;
        const svbool_t in_block = svwhilelt_b32_s64(b, n);
        /* Lanes of keys j + l with lo <= j + l < hi: the only ones whose scores, positions and mask are read. */
        const svbool_t pg = svbic_b_z(in_block, svwhilelt_b32_s64(j, row->hi), svwhilelt_b32_s64(j, row->lo));
        svfloat32_t x_f32 = svmul_n_f32_x(pg, svld1_f32(pg, x + b), t->scale);
        if (t->softcap > 0.0f) {
            x_f32 = svmul_n_f32_x(pg, Sleef_tanhfx_u10sve(svdiv_n_f32_x(pg, x_f32, t->softcap)), t->softcap);
        }
        if (row->slope != 0.0f) {
            /* The row's hi as the positions' length: a structure load never reaches past the row's last key. */
            const svfloat32_t dist_f32 = row->nd.axes >= 2
                                             ? nd_dist_f32(pg, &row->nd, &row->keys, row->hi, j)
                                             : svabd_n_f32_x(pg, key_positions_f32(pg, &row->keys, j), row->q_pos);
            x_f32 = svsub_f32_x(pg, x_f32, svmul_n_f32_x(pg, dist_f32, row->slope));
        }
        if (row->mask) {
            const svfloat32_t m_f32 = t->mask_is_f16 ? load_f16_as_f32(pg, (const uint16_t *)row->mask + j)
                                                     : svld1_f32(pg, (const float *)row->mask + j);
            /* Select rather than add: a mask scale of 0 times a -inf entry (ggml mode) still excludes. */
            x_f32 = svsel_f32(svcmpeq_n_f32(pg, m_f32, -INFINITY), excluded_f32,
                              svadd_f32_x(pg, x_f32, svmul_n_f32_x(pg, m_f32, row->mask_scale)));
        }
        x_f32 = svsel_f32(pg, x_f32, excluded_f32);
        svst1_f32(in_block, x + b, x_f32);
        max_f32 = svmaxnm_f32_m(in_block, max_f32, x_f32);
    }
    return svmaxnmv_f32(svptrue_b32(), max_f32);
}

/* Weights p = exp(x - m) of one row in place (n keys), 0 below POSATTN_ATTENTION_FLUSH; returns their float32 sum.
 * An excluded key (-inf) weighs exactly 0; a NaN stays NaN and reaches the sums. */
static float row_weights(float *x, int64_t n, float m) {
    const int64_t lanes = (int64_t)svcntw();
    svfloat32_t sum_f32 = svdup_n_f32(0.0f);
    for (int64_t b = 0; b < n; b += lanes) {
        const svbool_t pg = svwhilelt_b32_s64(b, n);
        const svfloat32_t gap_f32 = svsub_n_f32_x(pg, svld1_f32(pg, x + b), m);
        const svfloat32_t p_f32 = flushed_exp_below_f32(pg, gap_f32, POSATTN_ATTENTION_FLUSH);
        svst1_f32(pg, x + b, p_f32);
        sum_f32 = svadd_f32_m(pg, sum_f32, p_f32);
    }
    return svaddv_f32(svptrue_b32(), sum_f32);
}

/* sums[d] += sum over the block of p[b] v_{j0 + b}[d], float32 within the block, for every d < dv. */
static void row_values(const posattn_attention_tile *t, int64_t j0, int64_t n, const float *p, double *sums) {
    const int64_t lanes = (int64_t)svcntw(), dv = t->dv;
    float lanes_f32[SVE_MAX_LANES_F32];
    for (int64_t d = 0; d < dv; d += lanes) {
        const svbool_t pg = svwhilelt_b32_s64(d, dv);
        svfloat32_t acc_f32 = svdup_n_f32(0.0f);
        for (int64_t b = 0; b < n; ++b) {
            if (p[b] == 0.0f) continue; /* excluded or flushed: its v never reaches the sums (0 * inf is NaN) */
            const void *v = kv_row(t->v, t->v_type, t->v_tok_stride, j0 + b);
            acc_f32 = svmla_n_f32_m(pg, acc_f32, load_kv(pg, v, t->v_type, d), p[b]);
        }
        svst1_f32(pg, lanes_f32, acc_f32);
        const int64_t count = dv - d < lanes ? dv - d : lanes;
        for (int64_t i = 0; i < count; ++i) sums[d + i] += (double)lanes_f32[i];
    }
}

/* Rows [0, nr) of `rows`, with their float64 sums a at sums[r] (dv doubles each). */
static void tile_pass(const posattn_attention_tile *t, const posattn_attention_row *rows, int nr,
                      double *const *sums) {
    const int64_t dv = t->dv;
    float x[TILE_ROWS][BLOCK];
    float m[TILE_ROWS];
    double l[TILE_ROWS];
    int64_t lo, hi;
    posattn_attention_pass_begin(rows, nr, dv, m, l, sums, &lo, &hi);
    for (int64_t j0 = lo < hi ? lo - lo % BLOCK : lo; j0 < hi; j0 += BLOCK) {
        const int64_t n = hi - j0 < BLOCK ? hi - j0 : BLOCK;
        for (int r = 0; r < nr; ++r) {
            const posattn_attention_row *row = &rows[r];
            const int64_t first = row->lo > j0 ? row->lo - j0 : 0, end = row->hi < j0 + n ? row->hi - j0 : n;
            if (first >= end) continue; /* no key of the row in this block */
            row_scores(t, row, j0, first, end, x[r]);
            const float block_max = row_logits(t, row, j0, n, x[r]);
            if (block_max == -INFINITY) {
                int nan = 0;
                for (int64_t b = 0; b < n; ++b) nan |= isnan(x[r][b]);
                if (!nan) continue; /* nothing valid: never -inf - (-inf) */
            }
            if (block_max > m[r]) {
                const double f = posattn_attention_rescale(m[r], block_max);
                l[r] *= f;
                for (int64_t d = 0; d < dv; ++d) sums[r][d] *= f;
                m[r] = block_max;
            }
            l[r] += (double)row_weights(x[r], n, m[r]);
            row_values(t, j0, n, x[r], sums[r]);
        }
    }
    for (int r = 0; r < nr; ++r) {
        if (t->partial) {
            rows[r].partial[0] = m[r];
            rows[r].partial[1] = l[r]; /* a is rows[r].partial + 2 already */
        } else {
            posattn_attention_finish(rows[r].out, rows[r].lse, dv, rows[r].has_sink, rows[r].sink, m[r], l[r],
                                     sums[r]);
        }
    }
}

void posattn_attention_tile_f32_sve(const posattn_attention_tile *t) {
    double *sums[TILE_ROWS];
    if (t->partial) {
        for (int r = 0; r < t->n_rows; ++r) sums[r] = t->rows[r].partial + 2;
        tile_pass(t, t->rows, t->n_rows, sums);
        return;
    }
    double a[POSATTN_ATTENTION_SUM_DOUBLES];
    const int per_pass = posattn_attention_rows_per_pass(t->n_rows, t->dv);
    for (int r0 = 0; r0 < t->n_rows; r0 += per_pass) {
        const int nr = t->n_rows - r0 < per_pass ? t->n_rows - r0 : per_pass;
        for (int r = 0; r < nr; ++r) sums[r] = a + r * t->dv;
        tile_pass(t, t->rows + r0, nr, sums);
    }
}
