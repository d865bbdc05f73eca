/*
 * Scalar reference for the ALiBi kernels: portable C11, no intrinsics.
 *
 * This is the implementation every SIMD path is tested against, so it is written for clarity and accuracy rather
 * than speed: libm expf and tanhf, the denominator summed in float64, the final division done in float64 and
 * rounded once. It honours the same flush rule as the SIMD paths (exp below e^-87 is 0), so that no path
 * produces subnormals and all paths agree on which outputs are exactly 0.
 */
#include <math.h>

#include "../kernels.h"

void posattn_alibi_slopes_f32_scalar(int64_t n_heads, float max_bias, float *slopes) {
    for (int64_t h = 0; h < n_heads; ++h) {
        slopes[h] = (float)exp2(posattn_alibi_slope_exponent(h, n_heads, (double)max_bias));
    }
}

static inline float key_position(const posattn_key_positions *keys, int64_t j) {
    return keys->k_pos ? keys->k_pos[j * keys->k_pos_stride] : (float)j;
}

void posattn_alibi_bias_row_f32_scalar(const posattn_bias_row *row) {
    if (row->nd.axes >= 2) {
        const float *k = row->keys.k_pos;
        for (int64_t j = 0; j < row->nk; ++j) {
            row->bias[j] = -row->slope * posattn_alibi_dist_nd(&row->nd, k + j * row->keys.k_pos_stride);
        }
        return;
    }
    for (int64_t j = 0; j < row->nk; ++j) {
        row->bias[j] = -row->slope * fabsf(row->q_pos - key_position(&row->keys, j));
    }
}

static float logit(const posattn_softmax_row *row, int64_t j) {
    float x = row->scale * row->scores[j];
    if (row->softcap > 0.0f) x = row->softcap * tanhf(x / row->softcap);
    if (row->slope != 0.0f) {
        float dist = row->nd.axes >= 2
                         ? posattn_alibi_dist_nd(&row->nd, row->keys.k_pos + j * row->keys.k_pos_stride)
                         : fabsf(row->q_pos - key_position(&row->keys, j));
        x -= row->slope * dist;
    }
    if (row->mask) {
        float m = row->mask_is_f16 ? posattn_f16_to_f32(((const uint16_t *)row->mask)[j])
                                   : ((const float *)row->mask)[j];
        x = (m == -INFINITY) ? -INFINITY : x + row->mask_scale * m;
    }
    return x;
}

static inline float flushed_exp(float x) {
    return x < POSATTN_EXP_FLUSH_BELOW ? 0.0f : expf(x);
}

void posattn_alibi_softmax_row_f32_scalar(const posattn_softmax_row *row) {
    float *probs = row->probs;
    /* Pass 1: logits into probs (in place is safe: x_j only depends on s_j), and their maximum. */
    float mx = row->has_sink ? row->sink : -INFINITY;
    for (int64_t j = row->lo; j < row->hi; ++j) {
        float x = logit(row, j);
        probs[j] = x;
        mx = fmaxf(mx, x);
    }
    for (int64_t j = 0; j < row->lo; ++j) probs[j] = 0.0f;
    for (int64_t j = row->hi; j < row->nk; ++j) probs[j] = 0.0f;

    if (mx == -INFINITY || isnan(mx)) {
        /* No valid key and no sink (or every valid key masked by -inf): zeros, and an empty log-sum-exp. fmaxf
         * skips NaN, so look for one: a NaN logit or sink makes the row NaN, as it does when the maximum is
         * finite (through the sum). */
        int has_nan = isnan(mx) || (row->has_sink && isnan(row->sink));
        for (int64_t j = row->lo; j < row->hi; ++j) has_nan |= isnan(probs[j]);
        for (int64_t j = row->lo; j < row->hi; ++j) probs[j] = has_nan ? NAN : 0.0f;
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }
    /* Pass 2: exponentials and their sum in float64. */
    double sum = row->has_sink ? (double)flushed_exp(row->sink - mx) : 0.0;
    for (int64_t j = row->lo; j < row->hi; ++j) {
        float e = flushed_exp(probs[j] - mx);
        probs[j] = e;
        sum += e;
    }
    /* Pass 3: normalise with one rounding per output, flushing what would round to a subnormal. */
    for (int64_t j = row->lo; j < row->hi; ++j) {
        double p = (double)probs[j] / sum;
        probs[j] = p < (double)POSATTN_OUTPUT_FLUSH_BELOW ? 0.0f : (float)p;
    }
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
}
