/*
 * SVE (Scalable Vector Extension) ALiBi kernels: the external bias row and the fused bias-add-softmax row, vector
 * length agnostic (svcntw() float32 lanes, 4 to 64).
 *
 * ISA: SVE (ARMv8.2-A+SVE), compiled with -march=armv8.2-a+sve and only called after the dispatcher has seen
 * HWCAP_SVE. Nothing here assumes a width: every stride through a row is svcntw(), and no constant, buffer or
 * unrolling depends on it, so the same code runs at 128, 256, 384, 512 or 2048 bits. The softcap calls SLEEF's
 * SVE tanh (out of line in SLEEF 3.5); the exponential is inline (constants in exp_f32.h). Slopes, RoPE and LieRE
 * have no SVE variant: the NEON ones run on the same cores.
 *
 * Tails: every loop runs whole vectors under an svwhilelt predicate, so the last, partial vector is the same code
 * with fewer active lanes. Predicated loads, gathers and structure loads do not touch inactive lanes, so nothing
 * outside [0, nk) of any caller buffer (or [lo, hi) of the scores and mask) is read or written, without a scalar
 * tail loop or a padded copy. Inactive lanes never reach a result: the maximum and the sums merge active lanes only.
 *
 * Sums: exponentials are accumulated in float32 lanes for at most 16 vectors (16 terms per lane), then widened
 * (even and odd lanes) and added in float64. A float32 partial of k <= 16 non-negative terms is within (k-1)u of its
 * exact value and float64 adds only 2^-53 per step, so the denominator is within 16u for any row length and any
 * vector length (the bound of the Accuracy paragraph of posattn_alibi_softmax). The order of the additions depends
 * on the vector length, so softmax outputs may differ by an ulp or so between widths; the logits, the maximum, the
 * flush decisions and the external bias do not.
 *
 * Exponential and subnormals: the polynomial of exp_f32.h with 2^n added to the exponent field. Exponentials of
 * x - mx < POSATTN_EXP_FLUSH_BELOW and outputs below POSATTN_OUTPUT_FLUSH_BELOW * sum are exactly 0, each decided by
 * a compare before the value is formed, so no subnormal is ever produced; a vector whose lanes are all flushed
 * skips the polynomial. "Less than" is false for NaN, which therefore propagates to the row.
 *
 * Logits are formed with exactly the roundings of the scalar reference: scale * s, |q - k| by FABD (one rounding,
 * as fabsf(q - k)), the slope product and the difference each rounded (no FMA: compiled with -ffp-contract=off, and
 * the intrinsics written as separate multiplies and subtractions), the mask term likewise. Without a softcap the
 * logits are the scalar reference's bit for bit, so are the maximum and every flush decision; the paths differ only
 * through the exp polynomial, the summation order and the final scaling. Implicit key positions (float)j come from
 * an int32 iota converted by SCVTF, or past 2^31 from an int64 iota, both correctly rounded as the C conversion is.
 *
 * N-D positions (2..4 axes): the logits of the row are formed once into probs, then the 1-D softmax runs on them in
 * place with scale 1 and nothing to add, which is exact. Packed positions (stride 2..4) are de-interleaved by
 * LD2W/LD3W/LD4W where the last structure read exists in full, otherwise each axis is gathered. The distance
 * follows posattn_alibi_dist_nd operation for operation (FSQRT is correctly rounded), so N-D biases are the scalar
 * reference's bit for bit.
 */
#include <arm_sve.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"
#include "alibi_sve.h"
#include "vector_sve.h"

/* Vectors summed in float32 before widening: one term per lane per vector, so 16 terms per lane at most. */
#define VECTORS_PER_PARTIAL 16

int64_t posattn_sve_lanes_f32(void) {
    return (int64_t)svcntw();
}

void posattn_sve_key_positions_f32(const posattn_key_positions *keys, int64_t j, int64_t n, float *out) {
    const svbool_t pg = svwhilelt_b32_s64(0, n);
    svst1_f32(pg, out, key_positions_f32(pg, keys, j));
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The external bias                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

void posattn_alibi_bias_row_f32_sve(const posattn_bias_row *row) {
    const int64_t nk = row->nk, lanes = (int64_t)svcntw();
    const float neg_slope = -row->slope;
    if (row->nd.axes >= 2) {
        for (int64_t j = 0; j < nk; j += lanes) {
            const svbool_t pg = svwhilelt_b32_s64(j, nk);
            svst1_f32(pg, row->bias + j, svmul_n_f32_x(pg, nd_dist_f32(pg, &row->nd, &row->keys, nk, j), neg_slope));
        }
        return;
    }
    for (int64_t j = 0; j < nk; j += lanes) {
        const svbool_t pg = svwhilelt_b32_s64(j, nk);
        const svfloat32_t dist_f32 = svabd_n_f32_x(pg, key_positions_f32(pg, &row->keys, j), row->q_pos);
        svst1_f32(pg, row->bias + j, svmul_n_f32_x(pg, dist_f32, neg_slope));
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Logits                                                                                                       */
/* ---------------------------------------------------------------------------------------------------------- */

/* The row's constants (SVE vectors cannot live in a struct: broadcast at the point of use, hoisted by the
 * compiler); the feature flags branch the same way for every vector of a row. */
typedef struct logit_params {
    const float *scores;
    const void *mask;
    int mask_is_f16;
    int has_softcap;
    int has_bias;
    float scale, softcap, slope, q_pos, mask_scale;
    posattn_key_positions keys;
    const posattn_nd_positions *nd; /* axes >= 2: the distance is N-D */
    int64_t nk;
} logit_params;

/* Logits of keys j .. j+lanes-1 under pg, with the scalar reference's roundings; inactive lanes hold garbage. */
static inline svfloat32_t logits_f32(const logit_params *p, svbool_t pg, int64_t j) {
    svfloat32_t x_f32 = svmul_n_f32_x(pg, svld1_f32(pg, p->scores + j), p->scale);
    if (p->has_softcap) {
        /* A true division, as the reference does: x * (1/cap) would round twice. */
        x_f32 = svmul_n_f32_x(pg, Sleef_tanhfx_u10sve(svdiv_n_f32_x(pg, x_f32, p->softcap)), p->softcap);
    }
    if (p->has_bias) {
        const svfloat32_t dist_f32 = p->nd->axes >= 2 ? nd_dist_f32(pg, p->nd, &p->keys, p->nk, j)
                                                      : svabd_n_f32_x(pg, key_positions_f32(pg, &p->keys, j), p->q_pos);
        x_f32 = svsub_f32_x(pg, x_f32, svmul_n_f32_x(pg, dist_f32, p->slope));
    }
    if (p->mask) {
        const svfloat32_t m_f32 =
            p->mask_is_f16 ? load_f16_as_f32(pg, (const uint16_t *)p->mask + j)
                           : svld1_f32(pg, (const float *)p->mask + j);
        /* Select rather than add, so that a scale of 0 times a -inf entry (ggml mode) still excludes, never NaN. */
        const svbool_t excluded = svcmpeq_n_f32(pg, m_f32, -INFINITY);
        x_f32 = svsel_f32(excluded, svdup_n_f32(-INFINITY),
                          svadd_f32_x(pg, x_f32, svmul_n_f32_x(pg, m_f32, p->mask_scale)));
    }
    return x_f32;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Softmax passes                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

/* exp(d) for d = x - mx <= 0, exactly 0 below the flush threshold so that no subnormal is ever formed. */
static inline svfloat32_t flushed_exp_f32(svbool_t pg, svfloat32_t d_f32) {
    return flushed_exp_below_f32(pg, d_f32, POSATTN_EXP_FLUSH_BELOW);
}

static inline void fill_range(float *x, int64_t from, int64_t to, float value) {
    const svfloat32_t v_f32 = svdup_n_f32(value);
    for (int64_t j = from; j < to; j += (int64_t)svcntw()) svst1_f32(svwhilelt_b32_s64(j, to), x + j, v_f32);
}

/* The maximum of the logits in [lo, hi), -inf when there is none. FMAXNM ignores NaN like fmaxf does, so a NaN
 * logit does not become the row maximum here either (it still poisons the sum). */
static float row_max(const logit_params *p, int64_t lo, int64_t hi) {
    svfloat32_t max_f32 = svdup_n_f32(-INFINITY);
    for (int64_t j = lo; j < hi; j += (int64_t)svcntw()) {
        const svbool_t pg = svwhilelt_b32_s64(j, hi);
        max_f32 = svmaxnm_f32_m(pg, max_f32, logits_f32(p, pg, j));
    }
    return svmaxnmv_f32(svptrue_b32(), max_f32);
}

/* Whether a logit in [lo, hi) is NaN: the rare check behind an all -inf maximum, which FMAXNM reached by skipping
 * NaN, so that a NaN logit makes its row NaN on every ISA. */
static int row_has_nan(const logit_params *p, int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; j += (int64_t)svcntw()) {
        const svbool_t pg = svwhilelt_b32_s64(j, hi);
        const svfloat32_t x_f32 = logits_f32(p, pg, j);
        if (svptest_any(pg, svcmpuo_f32(pg, x_f32, x_f32))) return 1;
    }
    return 0;
}

/* Adds the float32 partial sums, even and odd lanes widened apart (FCVT converts the low half of each 64-bit
 * container), to the float64 lanes. */
static inline svfloat64_t add_widened_f64(svfloat64_t sum_f64, svfloat32_t partial_f32) {
    const svbool_t all_b64 = svptrue_b64();
    sum_f64 = svadd_f64_x(all_b64, sum_f64, svcvt_f64_f32_x(all_b64, partial_f32));
    return svadd_f64_x(all_b64, sum_f64, svcvt_f64_f32_x(all_b64, svtrn2_f32(partial_f32, partial_f32)));
}

/* Writes exp(x_j - mx) (flushed) to probs[lo, hi), recomputing the logits rather than storing and re-reading
 * them, and returns their sum. */
static double exp_store_sum(const logit_params *p, float *probs, int64_t lo, int64_t hi, float mx) {
    const svfloat32_t zero_f32 = svdup_n_f32(0.0f);
    const int64_t lanes = (int64_t)svcntw();
    svfloat64_t sum_f64 = svdup_n_f64(0.0);
    int64_t j = lo;
    while (j < hi) {
        svfloat32_t partial_f32 = zero_f32;
        for (int v = 0; v < VECTORS_PER_PARTIAL && j < hi; ++v, j += lanes) {
            const svbool_t pg = svwhilelt_b32_s64(j, hi);
            const svfloat32_t d_f32 = svsub_n_f32_x(pg, logits_f32(p, pg, j), mx);
            const svbool_t below = svcmplt_n_f32(pg, d_f32, POSATTN_EXP_FLUSH_BELOW);
            if (!svptest_any(pg, svnot_b_z(pg, below))) {
                /* Far from the maximum (distant keys under a steep slope, masked spans): all exactly 0, adding
                 * nothing to the sum. */
                svst1_f32(pg, probs + j, zero_f32);
                continue;
            }
            const svfloat32_t e_f32 = svsel_f32(below, zero_f32, exp_f32(pg, d_f32));
            svst1_f32(pg, probs + j, e_f32);
            partial_f32 = svadd_f32_m(pg, partial_f32, e_f32);
        }
        sum_f64 = add_widened_f64(sum_f64, partial_f32);
    }
    return svaddv_f64(svptrue_b64(), sum_f64);
}

/*
 * probs[lo, hi) = e_j / sum as e_j * inv, inv = 1/sum rounded to float32: within 1 ulp of the quotient. Outputs
 * that would be below 2^-125 are 0, decided on e_j before the multiply so that no subnormal is ever formed:
 * `below` is 2^-125 * sum rounded up to float32, and for a float32 e_j, e_j < below exactly when
 * e_j / sum < 2^-125, the reference's rule. A NaN e_j or sum compares false and stays NaN.
 */
static void scale_row(float *probs, int64_t lo, int64_t hi, double sum) {
    const float inv = (float)(1.0 / sum);
    const double below_f64 = sum * (double)POSATTN_OUTPUT_FLUSH_BELOW; /* a power of 2: exact */
    float below = (float)below_f64;
    if ((double)below < below_f64) below = nextafterf(below, INFINITY);
    const svfloat32_t zero_f32 = svdup_n_f32(0.0f);
    for (int64_t j = lo; j < hi; j += (int64_t)svcntw()) {
        const svbool_t pg = svwhilelt_b32_s64(j, hi);
        svfloat32_t e_f32 = svld1_f32(pg, probs + j);
        e_f32 = svsel_f32(svcmplt_n_f32(pg, e_f32, below), zero_f32, e_f32);
        svst1_f32(pg, probs + j, svmul_n_f32_x(pg, e_f32, inv));
    }
}

/* The logits of [lo, hi) of an N-D row into probs (in place is safe: x_j only depends on s_j). */
static void nd_logits_row(const posattn_softmax_row *row) {
    const logit_params p = {
        .scores = row->scores,
        .mask = row->mask,
        .mask_is_f16 = row->mask_is_f16,
        .has_softcap = row->softcap > 0.0f,
        .has_bias = 1,
        .scale = row->scale,
        .softcap = row->softcap,
        .slope = row->slope,
        .mask_scale = row->mask_scale,
        .keys = row->keys,
        .nd = &row->nd,
        .nk = row->nk,
    };
    for (int64_t j = row->lo; j < row->hi; j += (int64_t)svcntw()) {
        const svbool_t pg = svwhilelt_b32_s64(j, row->hi);
        svst1_f32(pg, row->probs + j, logits_f32(&p, pg, j));
    }
}

void posattn_alibi_softmax_row_f32_sve(const posattn_softmax_row *row) {
    if (row->nd.axes >= 2 && row->slope != 0.0f) {
        /* N-D: the logits once into probs (the coordinates cost more than the traffic), then the softmax of those
         * logits in place, with nothing left to add: x = 1 * x is exact, so this is the fused result. */
        nd_logits_row(row);
        posattn_softmax_row rest = *row;
        rest.scores = row->probs;
        rest.scale = 1.0f;
        rest.softcap = 0.0f;
        rest.slope = 0.0f;
        rest.mask = NULL;
        rest.nd.axes = 0;
        posattn_alibi_softmax_row_f32_sve(&rest);
        return;
    }
    float *probs = row->probs;
    const int64_t lo = row->lo, hi = row->hi;
    /* Keys outside [lo, hi) are never read, so zeroing them first is safe in place too. */
    fill_range(probs, 0, lo, 0.0f);
    fill_range(probs, hi, row->nk, 0.0f);

    const logit_params p = {
        .scores = row->scores,
        .mask = row->mask,
        .mask_is_f16 = row->mask_is_f16,
        .has_softcap = row->softcap > 0.0f,
        .has_bias = row->slope != 0.0f,
        .scale = row->scale,
        .softcap = row->softcap,
        .slope = row->slope,
        .q_pos = row->q_pos,
        .mask_scale = row->mask_scale,
        .keys = row->keys,
        .nd = &row->nd,
        .nk = row->nk,
    };
    float mx = row_max(&p, lo, hi);
    if (row->has_sink) mx = fmaxf(mx, row->sink);
    if (mx == -INFINITY) {
        /* No valid key and no sink: zeros, never 0/0, and an empty log-sum-exp; unless the maximum skipped a NaN
         * (of a logit or of the sink), which makes the row NaN as it would anywhere else. */
        const int has_nan = (row->has_sink && isnan(row->sink)) || row_has_nan(&p, lo, hi);
        fill_range(probs, lo, hi, has_nan ? NAN : 0.0f);
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }
    double sum = exp_store_sum(&p, probs, lo, hi, mx);
    if (row->has_sink) {
        const svbool_t all_b32 = svptrue_b32();
        sum += (double)svlastb_f32(all_b32, flushed_exp_f32(all_b32, svdup_n_f32(row->sink - mx)));
    }
    /* sum >= 1 (the maximum contributes e^0), so 1/sum and the threshold are normal floats. */
    scale_row(probs, lo, hi, sum);
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
}
