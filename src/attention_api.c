/*
 * The public entry points of the fused attention (SPEC 9): validate everything, resolve each (head, query) row's
 * positions, mask and valid keys, group the rows that read the same KV head into tiles, and hand the tiles to the
 * active ISA's kernel; the split-KV merge is plain float64 arithmetic here (a few operations per output value).
 *
 * Validation happens entirely before the first write, so that an error leaves every output untouched. Extents are
 * 64-bit with overflow checks; overlap is judged on the byte ranges the tensors span (conservative for
 * interleaved layouts, which are refused rather than risked).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "attention_call.h"
#include "dispatch.h"

size_t posattn_kv_elem_size(posattn_kv_type type) {
    return type == POSATTN_KV_F32 ? sizeof(float) : sizeof(uint16_t);
}

int posattn_kv_type_known(posattn_kv_type type) {
    return type == POSATTN_KV_F32 || type == POSATTN_KV_F16 || type == POSATTN_KV_BF16;
}

posattn_status posattn_attention_check_dims(int64_t dk, int64_t dv) {
    if (dk < 1 || dk > POSATTN_ATTENTION_MAX_DIM || dv < 1 || dv > POSATTN_ATTENTION_MAX_DIM) {
        return POSATTN_ERR_HEAD_DIM;
    }
    return POSATTN_OK;
}

/* Default strides, then the spans of q, k, v (inputs) and out. */
static posattn_status resolve_tensors(attention_call *c, int need_out) {
    posattn_attention_tensors *t = &c->t;
    const int64_t H = t->n_heads, Hkv = t->n_kv_heads;
    if (t->q_tok_stride < 0 || t->q_head_stride < 0 || t->q_dim_stride < 0 || t->k_tok_stride < 0 ||
        t->k_head_stride < 0 || t->v_tok_stride < 0 || t->v_head_stride < 0 ||
        (need_out && (t->o_tok_stride < 0 || t->o_head_stride < 0))) {
        return POSATTN_ERR_STRIDE;
    }
    /* Defaults are products of at most 576 and a head count: checked all the same. */
    if (!t->q_dim_stride) t->q_dim_stride = 1;
    if (!t->q_head_stride && __builtin_mul_overflow(t->dk, t->q_dim_stride, &t->q_head_stride)) {
        return POSATTN_ERR_OVERFLOW;
    }
    if (!t->q_tok_stride && __builtin_mul_overflow(H, t->q_head_stride, &t->q_tok_stride)) return POSATTN_ERR_OVERFLOW;
    if (!t->k_head_stride) t->k_head_stride = t->dk;
    if (!t->k_tok_stride && __builtin_mul_overflow(Hkv, t->k_head_stride, &t->k_tok_stride)) {
        return POSATTN_ERR_OVERFLOW;
    }
    if (!t->v_head_stride) t->v_head_stride = t->dv;
    if (!t->v_tok_stride && __builtin_mul_overflow(Hkv, t->v_head_stride, &t->v_tok_stride)) {
        return POSATTN_ERR_OVERFLOW;
    }
    /* q's row is dk elements q_dim_stride apart: its extent is (dk - 1) * q_dim_stride + 1. */
    int64_t q_len = 1;
    if (!posattn_mul_add_ok(t->dk - 1, t->q_dim_stride, &q_len)) return POSATTN_ERR_OVERFLOW;
    posattn_status st;
    if ((st = posattn_tensor_span(t->q, t->nq, t->q_tok_stride, H, t->q_head_stride, q_len, sizeof(float),
                                  &c->inputs[0])) ||
        (st = posattn_tensor_span(t->k, t->nk, t->k_tok_stride, Hkv, t->k_head_stride, t->dk,
                                  posattn_kv_elem_size(t->k_type), &c->inputs[1])) ||
        (st = posattn_tensor_span(t->v, t->nk, t->v_tok_stride, Hkv, t->v_head_stride, t->dv,
                                  posattn_kv_elem_size(t->v_type), &c->inputs[2]))) {
        return st;
    }
    c->out.begin = c->out.end = 0;
    if (need_out) {
        if (!t->o_head_stride) t->o_head_stride = t->dv;
        if (!t->o_tok_stride && __builtin_mul_overflow(H, t->o_head_stride, &t->o_tok_stride)) {
            return POSATTN_ERR_OVERFLOW;
        }
        if ((st = posattn_tensor_span(t->out, t->nq, t->o_tok_stride, H, t->o_head_stride, t->dv, sizeof(float),
                                      &c->out))) {
            return st;
        }
        if (!posattn_output_rows_disjoint(t->nq, t->o_tok_stride, H, t->o_head_stride, t->dv)) {
            return POSATTN_ERR_STRIDE;
        }
    }
    return POSATTN_OK;
}

posattn_status posattn_attention_prepare(attention_call *c, const posattn_attention_tensors *t, float scale,
                                        const float *slopes, const posattn_positions *positions,
                                        const posattn_softmax_options *options, int64_t row_begin, int64_t row_end,
                                        int need_out) {
    static const posattn_softmax_options no_options = {0};
    if (!t) return POSATTN_ERR_NULL;
    c->t = *t;
    c->o = options ? options : &no_options;
    const posattn_softmax_options *o = c->o;
    if (!t->q || !t->k || !t->v || (need_out && !t->out)) return POSATTN_ERR_NULL;
    c->shape = (posattn_shape){t->n_heads, t->nq, t->nk};
    posattn_status st = posattn_check_shape_and_range(c->shape, row_begin, row_end);
    if (st) return st;
    if (t->n_kv_heads <= 0 || t->n_heads % t->n_kv_heads != 0) return POSATTN_ERR_SIZE;
    c->group = t->n_heads / t->n_kv_heads;
    if ((st = posattn_attention_check_dims(t->dk, t->dv))) return st;
    if (!posattn_kv_type_known(t->k_type) || !posattn_kv_type_known(t->v_type)) return POSATTN_ERR_KV_TYPE;
    if (!isfinite(scale)) return POSATTN_ERR_SCALE;
    if ((st = posattn_check_softmax_options(o, positions))) return st;
    if ((o->flags & POSATTN_MASK_TIMES_SLOPE) && !slopes) return POSATTN_ERR_FLAGS;
    c->scale = scale;
    c->slopes = slopes;
    if ((st = posattn_resolve_positions(positions, c->shape, &c->pos)) || (st = resolve_tensors(c, need_out))) {
        return st;
    }
    c->mask_row_stride = o->mask_row_stride ? o->mask_row_stride : t->nk;
    if (o->mask_row_stride < 0 || o->mask_head_stride < 0 || c->mask_row_stride < t->nk) return POSATTN_ERR_STRIDE;
    const int mask_is_f16 = o->mask_type == POSATTN_MASK_F16;
    if ((st = posattn_tensor_span(o->mask, t->n_heads, o->mask_head_stride, t->nq, c->mask_row_stride, t->nk,
                                  mask_is_f16 ? sizeof(uint16_t) : sizeof(float), &c->inputs[5]))) {
        return st;
    }
    c->inputs[3] = posattn_array_span(slopes, t->n_heads, sizeof(float));
    c->inputs[4] = posattn_array_span(need_out ? o->sinks : NULL, t->n_heads, sizeof(float));
    c->inputs[6] = c->pos.q;
    c->inputs[7] = c->pos.k;
    c->inputs[8] = c->pos.weights;
    c->lse = posattn_array_span(need_out ? o->lse : NULL, t->n_heads * t->nq, sizeof(float));
    if (posattn_spans_overlap(c->out, c->lse)) return POSATTN_ERR_OVERLAP;
    for (size_t n = 0; n < sizeof c->inputs / sizeof c->inputs[0]; ++n) {
        if (posattn_spans_overlap(c->out, c->inputs[n]) || posattn_spans_overlap(c->lse, c->inputs[n])) {
            return POSATTN_ERR_OVERLAP;
        }
    }
    return POSATTN_OK;
}

posattn_attention_row posattn_attention_row_of(const attention_call *c, int64_t h, int64_t i, int64_t key_begin,
                                    int64_t key_end) {
    const posattn_softmax_options *o = c->o;
    const posattn_attention_tensors *t = &c->t;
    const int mask_times_slope = (o->flags & POSATTN_MASK_TIMES_SLOPE) != 0;
    posattn_row_positions rp = {0};
    if (c->slopes && !mask_times_slope) rp = posattn_row_positions_of(c->slopes, &c->pos.p, c->shape, h, i);
    posattn_attention_row row = {
        .q = t->q + i * t->q_tok_stride + h * t->q_head_stride,
        .slope = rp.slope,
        .q_pos = rp.q_pos,
        .keys = rp.keys,
        .nd = rp.slope != 0.0f ? rp.nd : (posattn_nd_positions){0},
        .mask_scale = mask_times_slope ? c->slopes[h] : 1.0f,
        .has_sink = o->sinks != NULL,
        .sink = o->sinks ? o->sinks[h] : 0.0f,
    };
    if (o->mask) {
        const size_t elem = o->mask_type == POSATTN_MASK_F16 ? sizeof(uint16_t) : sizeof(float);
        row.mask = (const char *)o->mask + (size_t)(h * o->mask_head_stride + i * c->mask_row_stride) * elem;
    }
    int64_t lo, hi;
    posattn_valid_keys(c->shape, i, (o->flags & POSATTN_CAUSAL) != 0, o->window, &lo, &hi);
    row.lo = lo > key_begin ? lo : key_begin;
    row.hi = hi < key_end ? hi : key_end;
    if (row.hi < row.lo) row.hi = row.lo;
    return row;
}

/* The tile fields of KV head g over the keys [key_begin, key_end), for rows still to be filled in. */
static posattn_attention_tile tile_of(const attention_call *c, int64_t g, int64_t key_begin, int64_t key_end,
                                      int partial, const posattn_attention_row *rows) {
    const posattn_attention_tensors *t = &c->t;
    return (posattn_attention_tile){
        .k = (const char *)t->k + (size_t)(g * t->k_head_stride) * posattn_kv_elem_size(t->k_type),
        .v = (const char *)t->v + (size_t)(g * t->v_head_stride) * posattn_kv_elem_size(t->v_type),
        .k_tok_stride = t->k_tok_stride,
        .v_tok_stride = t->v_tok_stride,
        .k_type = (int)t->k_type,
        .v_type = (int)t->v_type,
        .dk = t->dk,
        .dv = t->dv,
        .q_dim_stride = t->q_dim_stride,
        .key_begin = key_begin,
        .key_end = key_end,
        .scale = c->scale,
        .softcap = c->o->softcap,
        .mask_is_f16 = c->o->mask_type == POSATTN_MASK_F16,
        .partial = partial,
        .rows = rows,
    };
}

void posattn_attention_row_partial(const attention_call *c, int64_t h, int64_t i, int64_t key_begin,
                                   int64_t key_end, double *partial) {
    posattn_attention_row row = posattn_attention_row_of(c, h, i, key_begin, key_end);
    row.partial = partial;
    posattn_attention_tile tile = tile_of(c, h / c->group, key_begin, key_end, 1, &row);
    tile.n_rows = 1;
    posattn_dispatch_attention_tile()(&tile);
}

/*
 * The rows [row_begin, row_end) in tiles: for each KV head g, blocks of consecutive queries whose (head, query)
 * rows of g's query heads lie in the range, at most POSATTN_ATTENTION_TILE_ROWS rows per tile. A decode call
 * (nq = 1) makes one tile of the group's heads; a prefill call tiles queries too, so K and V are streamed once per
 * tile. partials NULL: final outputs.
 */
static void run_tiles(const attention_call *c, int64_t key_begin, int64_t key_end, double *partials,
                      int64_t row_begin, int64_t row_end) {
    const posattn_attention_tensors *t = &c->t;
    const int64_t nq = t->nq, G = c->group, dv = t->dv;
    posattn_attention_tile_kernel *const kernel = posattn_dispatch_attention_tile();
    posattn_attention_row rows[POSATTN_ATTENTION_TILE_ROWS];
    posattn_attention_tile tile;
    const int64_t h_first = row_begin / nq, h_last = (row_end - 1) / nq;
    for (int64_t g = h_first / G; g <= h_last / G; ++g) {
        tile = tile_of(c, g, key_begin, key_end, partials != NULL, rows);
        int n = 0;
        for (int64_t i = 0; i < nq; ++i) {
            for (int64_t h = g * G; h < (g + 1) * G; ++h) {
                const int64_t r = h * nq + i;
                if (r < row_begin || r >= row_end) continue;
                if (n == POSATTN_ATTENTION_TILE_ROWS) {
                    tile.n_rows = n;
                    kernel(&tile);
                    n = 0;
                }
                posattn_attention_row *row = &rows[n++];
                *row = posattn_attention_row_of(c, h, i, key_begin, key_end);
                if (partials) {
                    row->partial = partials + r * (dv + 2);
                } else {
                    row->out = t->out + i * t->o_tok_stride + h * t->o_head_stride;
                    row->lse = c->o->lse ? c->o->lse + r : NULL;
                }
            }
        }
        if (n) {
            tile.n_rows = n;
            kernel(&tile);
        }
    }
}

posattn_status posattn_attention(const posattn_attention_tensors *t, float scale, const float *slopes,
                                 const posattn_positions *positions, const posattn_softmax_options *options,
                                 int64_t row_begin, int64_t row_end) {
    attention_call c;
    posattn_status st = posattn_attention_prepare(&c, t, scale, slopes, positions, options, row_begin, row_end, 1);
    if (st) return st;
    if (row_begin < row_end) run_tiles(&c, 0, c.t.nk, NULL, row_begin, row_end);
    return POSATTN_OK;
}

posattn_status posattn_attention_partials_size(int64_t n_heads, int64_t nq, int64_t dv, size_t *bytes) {
    if (!bytes) return POSATTN_ERR_NULL;
    if (n_heads <= 0 || nq <= 0) return POSATTN_ERR_SIZE;
    posattn_status st = posattn_attention_check_dims(1, dv);
    if (st) return st;
    int64_t rows, doubles, size;
    if (__builtin_mul_overflow(n_heads, nq, &rows) || __builtin_mul_overflow(rows, dv + 2, &doubles) ||
        __builtin_mul_overflow(doubles, (int64_t)sizeof(double), &size) || size > PTRDIFF_MAX) {
        return POSATTN_ERR_OVERFLOW;
    }
    *bytes = (size_t)size;
    return POSATTN_OK;
}

posattn_status posattn_attention_check_partials(const attention_call *c, const double *partials, int64_t key_begin,
                                                int64_t key_end, span *partial_bytes) {
    if (!partials) return POSATTN_ERR_NULL;
    if (key_begin < 0 || key_end < key_begin || key_end > c->t.nk) return POSATTN_ERR_KEY_RANGE;
    size_t bytes;
    posattn_status st = posattn_attention_partials_size(c->t.n_heads, c->t.nq, c->t.dv, &bytes);
    if (st) return st;
    *partial_bytes = (span){(uintptr_t)partials, (uintptr_t)partials + bytes};
    if (partial_bytes->end < partial_bytes->begin) return POSATTN_ERR_OVERFLOW;
    for (size_t n = 0; n < sizeof c->inputs / sizeof c->inputs[0]; ++n) {
        if (posattn_spans_overlap(*partial_bytes, c->inputs[n])) return POSATTN_ERR_OVERLAP;
    }
    return POSATTN_OK;
}

posattn_status posattn_attention_partial(const posattn_attention_tensors *t, float scale, const float *slopes,
                                         const posattn_positions *positions, const posattn_softmax_options *options,
                                         int64_t key_begin, int64_t key_end, double *partials, int64_t row_begin,
                                         int64_t row_end) {
    attention_call c;
    posattn_status st = posattn_attention_prepare(&c, t, scale, slopes, positions, options, row_begin, row_end, 0);
    if (st) return st;
    span partial_bytes;
    if ((st = posattn_attention_check_partials(&c, partials, key_begin, key_end, &partial_bytes))) return st;
    if (row_begin < row_end) run_tiles(&c, key_begin, key_end, partials, row_begin, row_end);
    return POSATTN_OK;
}

posattn_status posattn_attention_merge(const posattn_attention_tensors *t, const posattn_softmax_options *options,
                                       const double *const *partials, int64_t n_ranges, int64_t row_begin,
                                       int64_t row_end) {
    static const posattn_softmax_options no_options = {0};
    const posattn_softmax_options *o = options ? options : &no_options;
    if (!t || !t->out || !partials) return POSATTN_ERR_NULL;
    if (n_ranges < 1) return POSATTN_ERR_SIZE;
    for (int64_t n = 0; n < n_ranges; ++n) {
        if (!partials[n]) return POSATTN_ERR_NULL;
    }
    posattn_status st = posattn_attention_check_dims(1, t->dv);
    if (st) return st;
    size_t bytes;
    if ((st = posattn_attention_partials_size(t->n_heads, t->nq, t->dv, &bytes))) return st;
    const posattn_shape s = {t->n_heads, t->nq, 1};
    if ((st = posattn_check_shape_and_range(s, row_begin, row_end))) return st;
    if (t->o_tok_stride < 0 || t->o_head_stride < 0) return POSATTN_ERR_STRIDE;
    const int64_t H = t->n_heads, dv = t->dv;
    const int64_t o_head_stride = t->o_head_stride ? t->o_head_stride : dv;
    int64_t o_tok_stride = t->o_tok_stride;
    if (!o_tok_stride && __builtin_mul_overflow(H, o_head_stride, &o_tok_stride)) return POSATTN_ERR_OVERFLOW;
    span out, lse = posattn_array_span(o->lse, H * t->nq, sizeof(float));
    if ((st = posattn_tensor_span(t->out, t->nq, o_tok_stride, H, o_head_stride, dv, sizeof(float), &out))) return st;
    if (!posattn_output_rows_disjoint(t->nq, o_tok_stride, H, o_head_stride, dv)) return POSATTN_ERR_STRIDE;
    const span sinks = posattn_array_span(o->sinks, H, sizeof(float));
    if (posattn_spans_overlap(out, lse) || posattn_spans_overlap(out, sinks) || posattn_spans_overlap(lse, sinks)) {
        return POSATTN_ERR_OVERLAP;
    }
    for (int64_t n = 0; n < n_ranges; ++n) {
        const span p = {(uintptr_t)partials[n], (uintptr_t)partials[n] + bytes};
        if (p.end < p.begin) return POSATTN_ERR_OVERFLOW;
        if (posattn_spans_overlap(out, p) || posattn_spans_overlap(lse, p)) return POSATTN_ERR_OVERLAP;
    }

    double a[POSATTN_ATTENTION_MAX_DIM];
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t h = r / t->nq, i = r % t->nq;
        /* The maximum over the ranges (a range with nothing valid has m = -inf and adds nothing), then every range
         * moved to it, in the given order; the sink joins in posattn_attention_finish as in a single call. */
        double m = -INFINITY, l = 0.0;
        for (int64_t n = 0; n < n_ranges; ++n) {
            const double mr = partials[n][r * (dv + 2)];
            if (mr > m) m = mr;
        }
        for (int64_t d = 0; d < dv; ++d) a[d] = 0.0;
        for (int64_t n = 0; n < n_ranges; ++n) {
            const double *part = partials[n] + r * (dv + 2), f = posattn_attention_rescale(part[0], m);
            l += part[1] * f;
            for (int64_t d = 0; d < dv; ++d) a[d] += part[2 + d] * f;
        }
        posattn_attention_finish(t->out + i * o_tok_stride + h * o_head_stride, o->lse ? o->lse + r : NULL, dv,
                                 o->sinks != NULL, o->sinks ? o->sinks[h] : 0.0f, m, l, a);
    }
    return POSATTN_OK;
}
