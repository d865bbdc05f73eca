/* The per-row pieces shared by the softmax and attention entry points (see rows.h). */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "rows.h"

posattn_status posattn_check_shape_and_range(posattn_shape s, int64_t row_begin, int64_t row_end) {
    if (s.n_heads <= 0 || s.nq <= 0 || s.nk <= 0) return POSATTN_ERR_SIZE;
    int64_t rows;
    if (__builtin_mul_overflow(s.n_heads, s.nq, &rows)) return POSATTN_ERR_OVERFLOW;
    if (row_begin < 0 || row_end < row_begin || row_end > rows) return POSATTN_ERR_ROW_RANGE;
    return POSATTN_OK;
}

posattn_status posattn_resolve_positions(const posattn_positions *given, posattn_shape s,
                                         posattn_positions_layout *out) {
    static const posattn_positions defaults = {0};
    out->p = given ? *given : defaults;
    posattn_positions *p = &out->p;
    if (p->axes < 0 || p->axes > 4) return POSATTN_ERR_AXES;
    if (p->axes == 0) p->axes = 1;
    /* The KV-cache default positions are integer indices: one axis. */
    if (p->axes > 1 && (!p->q || !p->k)) return POSATTN_ERR_AXES;
    if (p->metric != POSATTN_METRIC_L1 && p->metric != POSATTN_METRIC_L2) return POSATTN_ERR_METRIC;
    if (p->q_stride < 0 || p->k_stride < 0 || p->q_head_stride < 0 || p->k_head_stride < 0) {
        return POSATTN_ERR_STRIDE;
    }
    if (!p->q_stride) p->q_stride = p->axes;
    if (!p->k_stride) p->k_stride = p->axes;
    if (p->q_stride < p->axes || p->k_stride < p->axes) return POSATTN_ERR_STRIDE;
    posattn_status st;
    if ((st = posattn_tensor_span(p->q, s.n_heads, p->q_head_stride, s.nq, p->q_stride, p->axes, sizeof(float),
                                  &out->q)) ||
        (st = posattn_tensor_span(p->k, s.n_heads, p->k_head_stride, s.nk, p->k_stride, p->axes, sizeof(float),
                                  &out->k)) ||
        (st = posattn_tensor_span(p->weights, 1, 0, s.n_heads, p->axes, p->axes, sizeof(float), &out->weights))) {
        return st;
    }
    /* A small [H][A] array: cheap to check. NaN or infinite weights, and negative ones for L1 (a bias that would
     * grow with distance), are refused; for L2 the sign is irrelevant ((w d)^2). */
    if (p->weights) {
        for (int64_t n = 0; n < s.n_heads * p->axes; ++n) {
            float w = p->weights[n];
            if (!isfinite(w) || (p->metric == POSATTN_METRIC_L1 && w < 0.0f)) return POSATTN_ERR_WEIGHTS;
        }
    }
    return POSATTN_OK;
}

/* The slope of head h for the position bias: m_h times the head's axis weight (|w| for the L2 metric). */
static float effective_slope(const float *slopes, const posattn_positions *p, int64_t h) {
    if (!p->weights) return slopes[h];
    float w = p->weights[h * p->axes];
    /* A zero weight means "no bias" whatever the slope: never form inf * 0 = NaN. */
    if (w == 0.0f) return 0.0f;
    return slopes[h] * (p->metric == POSATTN_METRIC_L2 ? fabsf(w) : w);
}

/*
 * The N-D positions of head h's query i (A >= 2), with the axes of weight 0 dropped. Returns the number of axes
 * kept: 0 (every weight 0: no bias), 1 (a 1-D row on that axis: *axis1 and *w1 say which and its weight, so
 * one-hot weights run the 1-D kernels bit for bit), or 2..4 (nd filled).
 */
static int nd_positions(const posattn_positions *p, int64_t h, int64_t i, posattn_nd_positions *nd, int *axis1,
                        float *w1) {
    const float *q = p->q + h * p->q_head_stride + i * p->q_stride;
    const float *w = p->weights ? p->weights + h * p->axes : NULL;
    int kept = 0, weighted = 0;
    for (int a = 0; a < (int)p->axes; ++a) {
        float wa = w ? w[a] : 1.0f;
        if (wa == 0.0f) continue;
        if (p->metric == POSATTN_METRIC_L2) wa = fabsf(wa);
        weighted |= wa != 1.0f;
        nd->offset[kept] = a;
        nd->q[kept] = q[a];
        nd->w[kept] = wa;
        *axis1 = a, *w1 = wa;
        ++kept;
    }
    nd->axes = kept >= 2 ? kept : 0;
    nd->l2 = p->metric == POSATTN_METRIC_L2;
    nd->weighted = weighted;
    nd->k_len = (int)p->axes;
    return kept;
}

posattn_row_positions posattn_row_positions_of(const float *slopes, const posattn_positions *p, posattn_shape s,
                                               int64_t h, int64_t i) {
    posattn_row_positions r = {0};
    if (p->axes == 1) {
        r.slope = effective_slope(slopes, p, h);
        r.q_pos = posattn_query_position(p, s, h, i);
        r.keys = posattn_key_positions_of(p, h);
        return r;
    }
    int axis1 = 0;
    float w1 = 1.0f;
    int kept = nd_positions(p, h, i, &r.nd, &axis1, &w1);
    r.keys = posattn_key_positions_of(p, h);
    if (kept == 0) return r; /* slope 0: no bias */
    if (kept == 1) {
        /* One axis left: the 1-D row on it, with the effective slope m_h * w (as for A = 1). */
        r.slope = w1 == 1.0f ? slopes[h] : slopes[h] * w1;
        r.q_pos = p->q[h * p->q_head_stride + i * p->q_stride + axis1];
        r.keys.k_pos += axis1;
        return r;
    }
    r.slope = slopes[h];
    return r;
}

float posattn_query_position(const posattn_positions *p, posattn_shape s, int64_t h, int64_t i) {
    return p->q ? p->q[h * p->q_head_stride + i * p->q_stride] : (float)(s.nk - s.nq + i);
}

posattn_key_positions posattn_key_positions_of(const posattn_positions *p, int64_t h) {
    posattn_key_positions keys = {NULL, 0};
    if (p->k) {
        keys.k_pos = p->k + h * p->k_head_stride;
        keys.k_pos_stride = p->k_stride;
    }
    return keys;
}

/* The valid keys [lo, hi) of query i under causal and window masking (SPEC 3), clamped to [0, nk]. */
void posattn_valid_keys(posattn_shape s, int64_t i, int causal, int64_t window, int64_t *lo, int64_t *hi) {
    int64_t diagonal = i + s.nk - s.nq; /* the key aligned with query i */
    int64_t begin = 0, end = s.nk;
    if (causal && diagonal + 1 < end) end = diagonal + 1;
    if (window > 0) { /* compared without forming diagonal +- window, which overflows for windows near INT64_MAX */
        if (window <= diagonal) begin = diagonal - window + 1;
        if (!causal && window < end - diagonal) end = diagonal + window;
    }
    if (begin > s.nk) begin = s.nk;
    if (end < begin) end = begin;
    *lo = begin, *hi = end;
}

posattn_status posattn_check_softmax_options(const posattn_softmax_options *o, const posattn_positions *positions) {
    if (o->flags & ~(uint32_t)(POSATTN_CAUSAL | POSATTN_MASK_TIMES_SLOPE)) return POSATTN_ERR_FLAGS;
    if ((o->flags & POSATTN_MASK_TIMES_SLOPE) && positions) return POSATTN_ERR_FLAGS;
    if (!(o->softcap >= 0.0f) || isinf(o->softcap)) return POSATTN_ERR_SOFTCAP;
    if (o->window < 0) return POSATTN_ERR_WINDOW;
    if (o->mask && o->mask_type != POSATTN_MASK_F32 && o->mask_type != POSATTN_MASK_F16) {
        return POSATTN_ERR_MASK_TYPE;
    }
    return POSATTN_OK;
}
