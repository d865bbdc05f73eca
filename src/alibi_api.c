/*
 * The public ALiBi entry points: validate everything, then cut the work into rows for the active ISA's kernels.
 *
 * Validation happens entirely before the first write, so that an error leaves every output untouched. Extents are
 * computed in 64-bit arithmetic with overflow checks; overlap is judged on the byte ranges the tensors span, which
 * is conservative for interleaved layouts (they are refused rather than risked).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "validate.h"

/* The shape shared by the bias and the softmax entry points. */
typedef struct shape {
    int64_t n_heads, nq, nk;
} shape;

static posattn_status check_shape_and_range(shape s, int64_t row_begin, int64_t row_end) {
    if (s.n_heads <= 0 || s.nq <= 0 || s.nk <= 0) return POSATTN_ERR_SIZE;
    int64_t rows;
    if (__builtin_mul_overflow(s.n_heads, s.nq, &rows)) return POSATTN_ERR_OVERFLOW;
    if (row_begin < 0 || row_end < row_begin || row_end > rows) return POSATTN_ERR_ROW_RANGE;
    return POSATTN_OK;
}

/* A row-major [H][nq][nk] tensor with resolved strides and its byte span. */
typedef struct rows_layout {
    int64_t row_stride, head_stride;
    span bytes;
} rows_layout;

static posattn_status resolve_rows(const void *base, shape s, int64_t row_stride, int64_t head_stride,
                                   int is_output, rows_layout *out) {
    if (row_stride < 0 || head_stride < 0) return POSATTN_ERR_STRIDE;
    out->row_stride = row_stride ? row_stride : s.nk;
    if (out->row_stride < s.nk) return POSATTN_ERR_STRIDE;
    if (head_stride) {
        out->head_stride = head_stride;
    } else if (__builtin_mul_overflow(s.nq, out->row_stride, &out->head_stride)) {
        return POSATTN_ERR_OVERFLOW;
    }
    posattn_status st = posattn_tensor_span(base, s.n_heads, out->head_stride, s.nq, out->row_stride, s.nk,
                                            sizeof(float), &out->bytes);
    if (st != POSATTN_OK) return st;
    if (is_output && !posattn_output_rows_disjoint(s.n_heads, out->head_stride, s.nq, out->row_stride, s.nk)) {
        return POSATTN_ERR_STRIDE;
    }
    return POSATTN_OK;
}

/* Positions with resolved strides, the spans of everything they point to, and a ready-to-use default. */
typedef struct positions_layout {
    posattn_positions p;
    span q, k, weights;
} positions_layout;

static posattn_status resolve_positions(const posattn_positions *given, shape s, positions_layout *out) {
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

/* The slope, query position, key positions and N-D fields of one row (head h, query i). */
typedef struct row_positions {
    float slope, q_pos;
    posattn_key_positions keys;
    posattn_nd_positions nd;
} row_positions;

static float query_position(const posattn_positions *p, shape s, int64_t h, int64_t i);
static posattn_key_positions key_positions(const posattn_positions *p, int64_t h);

static row_positions row_positions_of(const float *slopes, const posattn_positions *p, shape s, int64_t h,
                                      int64_t i) {
    row_positions r = {0};
    if (p->axes == 1) {
        r.slope = effective_slope(slopes, p, h);
        r.q_pos = query_position(p, s, h, i);
        r.keys = key_positions(p, h);
        return r;
    }
    int axis1 = 0;
    float w1 = 1.0f;
    int kept = nd_positions(p, h, i, &r.nd, &axis1, &w1);
    r.keys = key_positions(p, h);
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

static float query_position(const posattn_positions *p, shape s, int64_t h, int64_t i) {
    return p->q ? p->q[h * p->q_head_stride + i * p->q_stride] : (float)(s.nk - s.nq + i);
}

static posattn_key_positions key_positions(const posattn_positions *p, int64_t h) {
    posattn_key_positions keys = {NULL, 0};
    if (p->k) {
        keys.k_pos = p->k + h * p->k_head_stride;
        keys.k_pos_stride = p->k_stride;
    }
    return keys;
}

posattn_status posattn_alibi_slopes(int64_t n_heads, float max_bias, float *slopes) {
    if (!slopes) return POSATTN_ERR_NULL;
    if (n_heads <= 0) return POSATTN_ERR_SIZE;
    if (!(max_bias >= 0.0f) || isinf(max_bias)) return POSATTN_ERR_MAX_BIAS;
    if ((uint64_t)n_heads > (uint64_t)PTRDIFF_MAX / sizeof(float)) return POSATTN_ERR_OVERFLOW;
    posattn_dispatch_alibi_slopes()(n_heads, max_bias, slopes);
    return POSATTN_OK;
}

posattn_status posattn_alibi_bias(int64_t n_heads, int64_t nq, int64_t nk, const float *slopes,
                                  const posattn_positions *positions, float *bias, int64_t row_stride,
                                  int64_t head_stride, int64_t row_begin, int64_t row_end) {
    if (!slopes || !bias) return POSATTN_ERR_NULL;
    shape s = {n_heads, nq, nk};
    posattn_status st = check_shape_and_range(s, row_begin, row_end);
    if (st) return st;
    positions_layout pos;
    rows_layout out;
    if ((st = resolve_positions(positions, s, &pos)) ||
        (st = resolve_rows(bias, s, row_stride, head_stride, 1, &out))) {
        return st;
    }
    span slope_bytes = posattn_array_span(slopes, n_heads, sizeof(float));
    if (posattn_spans_overlap(out.bytes, slope_bytes) || posattn_spans_overlap(out.bytes, pos.q) ||
        posattn_spans_overlap(out.bytes, pos.k) || posattn_spans_overlap(out.bytes, pos.weights)) {
        return POSATTN_ERR_OVERLAP;
    }

    posattn_alibi_bias_row_kernel *const bias_row = posattn_dispatch_alibi_bias_row();
    int64_t h = row_begin / nq, i = row_begin % nq; /* advanced with the row, as in posattn_alibi_softmax */
    for (int64_t r = row_begin; r < row_end; ++r, i = i + 1 < nq ? i + 1 : (++h, 0)) {
        float *row = bias + h * out.head_stride + i * out.row_stride;
        row_positions rp = row_positions_of(slopes, &pos.p, s, h, i);
        if (rp.slope == 0.0f) {
            /* "No bias" must stay exactly 0 even for infinite positions (0 * inf would be NaN). */
            for (int64_t j = 0; j < nk; ++j) row[j] = 0.0f;
            continue;
        }
        posattn_bias_row args = {row, nk, rp.slope, rp.q_pos, rp.keys, rp.nd};
        bias_row(&args);
    }
    return POSATTN_OK;
}

/* The valid keys [lo, hi) of query i under causal and window masking (SPEC 3), clamped to [0, nk]. */
static void valid_keys(shape s, int64_t i, int causal, int64_t window, int64_t *lo, int64_t *hi) {
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

static posattn_status check_options(const posattn_softmax_options *o, const posattn_positions *positions) {
    if (o->flags & ~(uint32_t)(POSATTN_CAUSAL | POSATTN_MASK_TIMES_SLOPE)) return POSATTN_ERR_FLAGS;
    if ((o->flags & POSATTN_MASK_TIMES_SLOPE) && positions) return POSATTN_ERR_FLAGS;
    if (!(o->softcap >= 0.0f) || isinf(o->softcap)) return POSATTN_ERR_SOFTCAP;
    if (o->window < 0) return POSATTN_ERR_WINDOW;
    if (o->mask && o->mask_type != POSATTN_MASK_F32 && o->mask_type != POSATTN_MASK_F16) {
        return POSATTN_ERR_MASK_TYPE;
    }
    return POSATTN_OK;
}

posattn_status posattn_alibi_softmax(int64_t n_heads, int64_t nq, int64_t nk, const float *scores,
                                     int64_t s_row_stride, int64_t s_head_stride, float *probs, int64_t p_row_stride,
                                     int64_t p_head_stride, float scale, const float *slopes,
                                     const posattn_positions *positions, const posattn_softmax_options *options,
                                     int64_t row_begin, int64_t row_end) {
    static const posattn_softmax_options no_options = {0};
    const posattn_softmax_options *o = options ? options : &no_options;
    if (!scores || !probs || !slopes) return POSATTN_ERR_NULL;
    shape s = {n_heads, nq, nk};
    posattn_status st = check_shape_and_range(s, row_begin, row_end);
    if (st) return st;
    if (!isfinite(scale)) return POSATTN_ERR_SCALE;
    if ((st = check_options(o, positions))) return st;

    positions_layout pos;
    rows_layout in, out;
    if ((st = resolve_positions(positions, s, &pos)) ||
        (st = resolve_rows(scores, s, s_row_stride, s_head_stride, 0, &in)) ||
        (st = resolve_rows(probs, s, p_row_stride, p_head_stride, 1, &out))) {
        return st;
    }
    int64_t mask_row_stride = o->mask_row_stride ? o->mask_row_stride : nk;
    if (o->mask_row_stride < 0 || o->mask_head_stride < 0 || mask_row_stride < nk) return POSATTN_ERR_STRIDE;
    int mask_is_f16 = o->mask_type == POSATTN_MASK_F16;
    span mask_bytes;
    if ((st = posattn_tensor_span(o->mask, n_heads, o->mask_head_stride, nq, mask_row_stride, nk,
                          mask_is_f16 ? sizeof(uint16_t) : sizeof(float), &mask_bytes))) {
        return st;
    }
    span lse_bytes = posattn_array_span(o->lse, n_heads * nq, sizeof(float));
    span inputs[] = {posattn_array_span(slopes, n_heads, sizeof(float)),
                     posattn_array_span(o->sinks, n_heads, sizeof(float)),
                     mask_bytes,
                     pos.q,
                     pos.k,
                     pos.weights};
    int in_place = probs == scores && in.row_stride == out.row_stride && in.head_stride == out.head_stride;
    if ((!in_place && posattn_spans_overlap(out.bytes, in.bytes)) || posattn_spans_overlap(lse_bytes, in.bytes) ||
        posattn_spans_overlap(lse_bytes, out.bytes)) {
        return POSATTN_ERR_OVERLAP;
    }
    for (size_t n = 0; n < sizeof inputs / sizeof inputs[0]; ++n) {
        if (posattn_spans_overlap(out.bytes, inputs[n]) || posattn_spans_overlap(lse_bytes, inputs[n])) {
            return POSATTN_ERR_OVERLAP;
        }
    }

    posattn_alibi_softmax_row_kernel *const softmax_row = posattn_dispatch_alibi_softmax_row();
    int mask_times_slope = (o->flags & POSATTN_MASK_TIMES_SLOPE) != 0;
    size_t mask_elem = mask_is_f16 ? sizeof(uint16_t) : sizeof(float);
    /* Head and query advance with the row instead of two 64-bit divisions per row (and two more for the next
     * row): at a few hundred keys per row those divisions cost as much as a pass over the row. */
    const int causal = (o->flags & POSATTN_CAUSAL) != 0;
    int64_t h = row_begin / nq, i = row_begin % nq, lo, hi;
    valid_keys(s, i, causal, o->window, &lo, &hi);
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t h1 = i + 1 < nq ? h : h + 1, i1 = i + 1 < nq ? i + 1 : 0; /* row r + 1 */
        row_positions rp = {0};
        if (!mask_times_slope) rp = row_positions_of(slopes, &pos.p, s, h, i);
        posattn_softmax_row row = {
            .scores = scores + h * in.head_stride + i * in.row_stride,
            .probs = probs + h * out.head_stride + i * out.row_stride,
            .nk = nk,
            .scale = scale,
            .softcap = o->softcap,
            .slope = rp.slope,
            .q_pos = mask_times_slope ? query_position(&pos.p, s, h, i) : rp.q_pos,
            .keys = mask_times_slope ? key_positions(&pos.p, h) : rp.keys,
            .nd = rp.slope != 0.0f ? rp.nd : (posattn_nd_positions){0},
            .mask = o->mask
                        ? (const char *)o->mask + (size_t)(h * o->mask_head_stride + i * mask_row_stride) * mask_elem
                        : NULL,
            .mask_is_f16 = mask_is_f16,
            .mask_scale = mask_times_slope ? slopes[h] : 1.0f,
            .has_sink = o->sinks != NULL,
            .sink = o->sinks ? o->sinks[h] : 0.0f,
            .lse = o->lse ? o->lse + r : NULL,
            .lo = lo,
            .hi = hi,
        };
        int64_t lo1 = 0, hi1 = 0; /* the next row's keys, found once: for the prefetch here and its own call next */
        if (r + 1 < row_end) { /* the next row, for the kernel's prefetch (kernels.h) */
            valid_keys(s, i1, causal, o->window, &lo1, &hi1);
            row.next_scores = scores + h1 * in.head_stride + i1 * in.row_stride + lo1;
            row.next_scores_n = hi1 - lo1;
            row.next_probs = probs + h1 * out.head_stride + i1 * out.row_stride;
        }
        softmax_row(&row);
        h = h1, i = i1, lo = lo1, hi = hi1;
    }
    return POSATTN_OK;
}

posattn_status posattn_alibi_split_heads(int64_t n_heads, int64_t axes, float *weights) {
    if (!weights) return POSATTN_ERR_NULL;
    if (n_heads <= 0) return POSATTN_ERR_SIZE;
    if (axes < 1 || axes > 4) return POSATTN_ERR_AXES;
    if ((uint64_t)n_heads > (uint64_t)PTRDIFF_MAX / sizeof(float) / (uint64_t)axes) return POSATTN_ERR_OVERFLOW;
    /* Contiguous groups: axis a gets heads [a*g + min(a, r), (a+1)*g + min(a+1, r)), g = H / A, r = H % A. */
    int64_t g = n_heads / axes, r = n_heads % axes, h = 0;
    for (int64_t a = 0; a < axes; ++a) {
        int64_t count = g + (a < r);
        for (int64_t n = 0; n < count; ++n, ++h) {
            for (int64_t b = 0; b < axes; ++b) weights[h * axes + b] = b == a ? 1.0f : 0.0f;
        }
    }
    return POSATTN_OK;
}
