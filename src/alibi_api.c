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
#include "rows.h"
#include "validate.h"

/* A row-major [H][nq][nk] tensor with resolved strides and its byte span. */
typedef struct rows_layout {
    int64_t row_stride, head_stride;
    span bytes;
} rows_layout;

static posattn_status resolve_rows(const void *base, posattn_shape s, int64_t row_stride, int64_t head_stride,
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
    posattn_shape s = {n_heads, nq, nk};
    posattn_status st = posattn_check_shape_and_range(s, row_begin, row_end);
    if (st) return st;
    posattn_positions_layout pos;
    rows_layout out;
    if ((st = posattn_resolve_positions(positions, s, &pos)) ||
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
        posattn_row_positions rp = posattn_row_positions_of(slopes, &pos.p, s, h, i);
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

/* A validated posattn_alibi_softmax call: what every row of it shares. */
typedef struct softmax_call {
    posattn_shape s;
    const float *scores;
    float *probs;
    rows_layout in, out;
    float scale;
    const float *slopes;
    const posattn_positions *pos;
    const posattn_softmax_options *o;
    int64_t mask_row_stride;
    size_t mask_elem;
    int mask_is_f16, mask_times_slope, causal;
    int keys_sorted; /* posattn_softmax_row.keys_sorted, the same for every row */
    int default_positions; /* no positions at all and slopes multiply distances: posattn_row_positions_of's result
                            * is slopes[h] and nk - nq + i */
    posattn_alibi_softmax_row_kernel *kernel;
} softmax_call;

/* Whether the key positions are one contiguous 1-D array shared by all heads, non-decreasing and without NaN: the
 * kernels then skip the far keys of long rows in pass 2 by binary search (alibi_generic_softmax.h). Checked once per
 * call, where it pays: rows too long to keep their logits in L1 (the kernels' threshold), several rows. */
static int keys_sorted(const posattn_positions *p, int64_t nk, int64_t rows) {
    if (!p->k || p->axes > 1 || p->k_head_stride != 0 || p->k_stride != 1 || nk <= 4096 || rows < 2) return 0;
    /* Branch-free within chunks, so the compiler vectorises the compares (a call pays 1/H of a row pass at most). */
    const float *k = p->k;
    for (int64_t j0 = 1; j0 < nk; j0 += 1024) {
        const int64_t j1 = nk - j0 < 1024 ? nk : j0 + 1024;
        int unordered = 0;
        for (int64_t j = j0; j < j1; ++j) unordered |= !(k[j - 1] <= k[j]); /* NaN fails too */
        if (unordered) return 0;
    }
    return 1;
}

/* Row (h, i) = r of the call, its valid keys [lo, hi); the next row to be run (for the kernel's prefetch, kernels.h)
 * is (h1, i1) with keys [lo1, hi1), or none when h1 < 0. */
static void run_row(const softmax_call *k, int64_t h, int64_t i, int64_t lo, int64_t hi, int64_t h1, int64_t i1,
                    int64_t lo1, int64_t hi1) {
    const posattn_softmax_options *o = k->o;
    const int64_t r = h * k->s.nq + i;
    posattn_row_positions rp = {0};
    if (k->default_positions) { /* the common decode call: no call into rows.c per row */
        rp.slope = k->slopes[h];
        rp.q_pos = (float)(k->s.nk - k->s.nq + i);
    } else if (!k->mask_times_slope) {
        rp = posattn_row_positions_of(k->slopes, k->pos, k->s, h, i);
    }
    posattn_softmax_row row = {
        .scores = k->scores + h * k->in.head_stride + i * k->in.row_stride,
        .probs = k->probs + h * k->out.head_stride + i * k->out.row_stride,
        .nk = k->s.nk,
        .scale = k->scale,
        .softcap = o->softcap,
        .slope = rp.slope,
        .q_pos = k->mask_times_slope ? posattn_query_position(k->pos, k->s, h, i) : rp.q_pos,
        .keys = k->mask_times_slope ? posattn_key_positions_of(k->pos, h) : rp.keys,
        .keys_sorted = k->keys_sorted,
        .nd = rp.slope != 0.0f ? rp.nd : (posattn_nd_positions){0},
        .mask = o->mask ? (const char *)o->mask + (size_t)(h * o->mask_head_stride + i * k->mask_row_stride) *
                                                      k->mask_elem
                        : NULL,
        .mask_is_f16 = k->mask_is_f16,
        .mask_scale = k->mask_times_slope ? k->slopes[h] : 1.0f,
        .has_sink = o->sinks != NULL,
        .sink = o->sinks ? o->sinks[h] : 0.0f,
        .lse = o->lse ? o->lse + r : NULL,
        .lo = lo,
        .hi = hi,
    };
    if (h1 >= 0) {
        row.next_scores = k->scores + h1 * k->in.head_stride + i1 * k->in.row_stride + lo1;
        row.next_scores_n = hi1 - lo1;
        row.next_probs = k->probs + h1 * k->out.head_stride + i1 * k->out.row_stride;
    }
    k->kernel(&row);
}

/* Rows in their order r = h nq + i. Head and query advance with the row instead of two 64-bit divisions per row
 * (and two more for the next row): at a few hundred keys per row those divisions cost as much as a pass over the
 * row. */
static void run_rows_head_major(const softmax_call *k, int64_t row_begin, int64_t row_end) {
    const int64_t nq = k->s.nq;
    int64_t h = row_begin / nq, i = row_begin % nq, lo, hi;
    posattn_valid_keys(k->s, i, k->causal, k->o->window, &lo, &hi);
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t h1 = i + 1 < nq ? h : h + 1, i1 = i + 1 < nq ? i + 1 : 0; /* row r + 1 */
        int64_t lo1 = 0, hi1 = 0; /* the next row's keys, found once: for the prefetch here and its own call next */
        if (r + 1 < row_end) posattn_valid_keys(k->s, i1, k->causal, k->o->window, &lo1, &hi1);
        run_row(k, h, i, lo, hi, r + 1 < row_end ? h1 : -1, i1, lo1, hi1);
        h = h1, i = i1, lo = lo1, hi = hi1;
    }
}

/* Rows in tiles of queries, every head over the tile in turn: with a mask shared by all heads (mask_head_stride 0,
 * as ggml's), the tile's mask rows are read from memory once and from L2 by the other heads, instead of once per
 * head, while each head still streams through consecutive rows of S and P (query by query, every head in turn,
 * jumped between heads' distant rows and measured no faster). A tile's mask rows take at most 256 KiB. The rows of
 * [row_begin, row_end) only, each once; the valid keys depend on the query alone. */
static void run_rows_mask_tiled(const softmax_call *k, int64_t row_begin, int64_t row_end) {
    const int64_t nq = k->s.nq, h_first = row_begin / nq, h_end = (row_end - 1) / nq + 1;
    const int64_t mask_row_bytes = k->mask_row_stride * (int64_t)k->mask_elem;
    int64_t tile = (INT64_C(256) << 10) / (mask_row_bytes > 0 ? mask_row_bytes : 1);
    if (tile < 1) tile = 1;
    for (int64_t i0 = 0; i0 < nq; i0 += tile) {
        const int64_t i1 = nq - i0 < tile ? nq : i0 + tile;
        for (int64_t h = h_first; h < h_end; ++h) {
            const int64_t b = h * nq + i0 > row_begin ? i0 : row_begin - h * nq;
            const int64_t e = h * nq + i1 < row_end ? i1 : row_end - h * nq;
            for (int64_t i = b; i < e; ++i) {
                int64_t lo, hi, lo1 = 0, hi1 = 0;
                posattn_valid_keys(k->s, i, k->causal, k->o->window, &lo, &hi);
                if (i + 1 < e) posattn_valid_keys(k->s, i + 1, k->causal, k->o->window, &lo1, &hi1);
                run_row(k, h, i, lo, hi, i + 1 < e ? h : -1, i + 1, lo1, hi1);
            }
        }
    }
}

posattn_status posattn_alibi_softmax(int64_t n_heads, int64_t nq, int64_t nk, const float *scores,
                                     int64_t s_row_stride, int64_t s_head_stride, float *probs, int64_t p_row_stride,
                                     int64_t p_head_stride, float scale, const float *slopes,
                                     const posattn_positions *positions, const posattn_softmax_options *options,
                                     int64_t row_begin, int64_t row_end) {
    static const posattn_softmax_options no_options = {0};
    const posattn_softmax_options *o = options ? options : &no_options;
    if (!scores || !probs || !slopes) return POSATTN_ERR_NULL;
    posattn_shape s = {n_heads, nq, nk};
    posattn_status st = posattn_check_shape_and_range(s, row_begin, row_end);
    if (st) return st;
    if (!isfinite(scale)) return POSATTN_ERR_SCALE;
    if ((st = posattn_check_softmax_options(o, positions))) return st;

    posattn_positions_layout pos;
    rows_layout in, out;
    if ((st = posattn_resolve_positions(positions, s, &pos)) ||
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

    const softmax_call k = {
        .s = s,
        .scores = scores,
        .probs = probs,
        .in = in,
        .out = out,
        .scale = scale,
        .slopes = slopes,
        .pos = &pos.p,
        .o = o,
        .mask_row_stride = mask_row_stride,
        .mask_elem = mask_is_f16 ? sizeof(uint16_t) : sizeof(float),
        .mask_is_f16 = mask_is_f16,
        .mask_times_slope = (o->flags & POSATTN_MASK_TIMES_SLOPE) != 0,
        .causal = (o->flags & POSATTN_CAUSAL) != 0,
        .keys_sorted = keys_sorted(&pos.p, nk, row_end - row_begin),
        .default_positions = !pos.p.q && !pos.p.k && !pos.p.weights && pos.p.axes <= 1 &&
                             !(o->flags & POSATTN_MASK_TIMES_SLOPE),
        .kernel = posattn_dispatch_alibi_softmax_row(),
    };
    if (o->mask && o->mask_head_stride == 0 && nq > 1 && row_end - row_begin > nq) {
        run_rows_mask_tiled(&k, row_begin, row_end);
    } else {
        run_rows_head_major(&k, row_begin, row_end);
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
