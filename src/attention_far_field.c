/*
 * Far-field skipping (posattn_attention_far_field) and the key-block summaries it reads.
 *
 * A row's logits are bounded per block of keys from the summary (key norms, position interval), rigorously,
 * including the float32 roundings of the kernel's own logit (see the header). Blocks are then visited in rounds:
 * every unvisited block whose bound reaches a threshold is run through the active ISA's tile kernel (runs of
 * consecutive blocks as one key range), its partials merged into the row's running (m, l, a) in float64 as the
 * split-KV merge does; after each round the bound of everything left is compared with eps times the running sum.
 * The first threshold is log(eps) - 4 below the largest bound; later ones come from the running maximum and sum
 * (a block below m_run + log(eps l_run / n_left) can weigh at most its share of eps l_run), lowered by 30 more when
 * that does not suffice. m_run + log l_run never decreases as blocks join, so a round at or below that threshold
 * is the last: a row ends within a few rounds, and the bound is always checked over all blocks left.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention_call.h"

#define BLOCK POSATTN_KV_SUMMARY_BLOCK

static int64_t blocks_of(int64_t keys) {
    return keys / BLOCK + (keys % BLOCK != 0); /* no overflow near INT64_MAX */
}

posattn_status posattn_kv_summary_size(int64_t n_kv_heads, int64_t max_keys, size_t *bytes) {
    if (!bytes) return POSATTN_ERR_NULL;
    if (n_kv_heads <= 0 || max_keys <= 0) return POSATTN_ERR_SIZE;
    int64_t floats, size;
    if (__builtin_mul_overflow(n_kv_heads + 2 * POSATTN_KV_SUMMARY_AXES, blocks_of(max_keys), &floats) ||
        __builtin_mul_overflow(floats, (int64_t)sizeof(float), &size) || size > PTRDIFF_MAX) {
        return POSATTN_ERR_OVERFLOW;
    }
    *bytes = (size_t)size;
    return POSATTN_OK;
}

posattn_status posattn_kv_summary_init(posattn_kv_summary *summary, int64_t n_kv_heads, int64_t max_keys,
                                       void *buffer, size_t bytes) {
    if (!summary || !buffer) return POSATTN_ERR_NULL;
    size_t need;
    posattn_status st = posattn_kv_summary_size(n_kv_heads, max_keys, &need);
    if (st) return st;
    if (bytes < need) return POSATTN_ERR_SIZE;
    const int64_t blocks = blocks_of(max_keys);
    float *f = buffer;
    memset(buffer, 0, need); /* the axes a summary never uses stay defined, so equal summaries are equal bytes */
    *summary = (posattn_kv_summary){
        .n_kv_heads = n_kv_heads,
        .max_keys = max_keys,
        .n_keys = 0,
        .axes = 0,
        .key_norm = f,
        .pos_min = f + n_kv_heads * blocks,
        .pos_max = f + (n_kv_heads + POSATTN_KV_SUMMARY_AXES) * blocks,
    };
    return POSATTN_OK;
}

/* x rounded up to float32 (NaN stays NaN, overflow gives +inf). */
static float round_up_f32(double x) {
    float f = (float)x;
    if ((double)f < x) f = nextafterf(f, INFINITY);
    return f;
}

posattn_status posattn_kv_summary_update(posattn_kv_summary *summary, const posattn_attention_tensors *t,
                                         const posattn_positions *positions, int64_t key_begin) {
    if (!summary || !t || !t->k || !summary->key_norm) return POSATTN_ERR_NULL;
    if (t->n_kv_heads != summary->n_kv_heads || t->nk <= 0 || t->nk > summary->max_keys) return POSATTN_ERR_SIZE;
    posattn_status st = posattn_attention_check_dims(t->dk, 1);
    if (st) return st;
    if (!posattn_kv_type_known(t->k_type)) return POSATTN_ERR_KV_TYPE;
    if (key_begin < 0 || key_begin > t->nk || key_begin > summary->n_keys) return POSATTN_ERR_KEY_RANGE;
    if (t->k_tok_stride < 0 || t->k_head_stride < 0) return POSATTN_ERR_STRIDE;
    const int64_t k_head_stride = t->k_head_stride ? t->k_head_stride : t->dk;
    int64_t k_tok_stride = t->k_tok_stride;
    if (!k_tok_stride && __builtin_mul_overflow(t->n_kv_heads, k_head_stride, &k_tok_stride)) {
        return POSATTN_ERR_OVERFLOW;
    }
    span k_span;
    if ((st = posattn_tensor_span(t->k, t->nk, k_tok_stride, t->n_kv_heads, k_head_stride, t->dk,
                                  posattn_kv_elem_size(t->k_type), &k_span))) {
        return st;
    }
    const float *k_pos = NULL;
    int64_t k_pos_stride = 1, axes = 1;
    if (positions) {
        if (positions->axes > POSATTN_KV_SUMMARY_AXES || positions->axes < 0) return POSATTN_ERR_AXES;
        if (positions->k_head_stride != 0) return POSATTN_ERR_AXES;
        axes = positions->axes ? positions->axes : 1;
        if (positions->k_stride < 0 || (positions->k_stride && positions->k_stride < axes)) return POSATTN_ERR_STRIDE;
        k_pos = positions->k;
        k_pos_stride = positions->k_stride ? positions->k_stride : axes;
        int64_t extent = axes;
        if (k_pos && !posattn_mul_add_ok(t->nk - 1, k_pos_stride, &extent)) return POSATTN_ERR_OVERFLOW;
        if (!k_pos && axes > 1) return POSATTN_ERR_AXES; /* the default positions have one axis */
    }
    /* Blocks summarised before key_begin and kept must have the same axes. */
    if (key_begin > 0 && summary->n_keys > 0 && axes != summary->axes) return POSATTN_ERR_AXES;

    const int64_t blocks = blocks_of(summary->max_keys), elem = (int64_t)posattn_kv_elem_size(t->k_type);
    /* Appending to a partly filled block (key_begin == n_keys): its summary so far is kept and extended by the new
     * keys only, so an engine appending one token pays for one key, not one block; the bounds come out the same
     * as from scratch (a maximum of values rounded up is the rounded-up maximum). Otherwise keys from key_begin on
     * may have changed, and their blocks are summarised anew. */
    const int extend = key_begin == summary->n_keys && key_begin % BLOCK != 0;
    for (int64_t b = key_begin / BLOCK; b < blocks_of(t->nk); ++b) {
        const int64_t j1 = (b + 1) * BLOCK < t->nk ? (b + 1) * BLOCK : t->nk;
        const int keep = extend && b == key_begin / BLOCK;
        const int64_t j0 = keep ? key_begin : b * BLOCK;
        for (int64_t a = 0; a < axes; ++a) {
            float *lo_at = &summary->pos_min[a * blocks + b], *hi_at = &summary->pos_max[a * blocks + b];
            float lo = keep ? *lo_at : INFINITY, hi = keep ? *hi_at : -INFINITY;
            int nan = lo != lo;
            for (int64_t j = j0; j < j1; ++j) {
                const float p = k_pos ? k_pos[j * k_pos_stride + a] : (float)j;
                nan |= p != p;
                lo = p < lo ? p : lo;
                hi = p > hi ? p : hi;
            }
            *lo_at = nan ? NAN : lo;
            *hi_at = nan ? NAN : hi;
        }
        for (int64_t g = 0; g < t->n_kv_heads; ++g) {
            double largest = keep ? (double)summary->key_norm[g * blocks + b] : 0.0;
            int norm_nan = largest != largest;
            for (int64_t j = j0; j < j1; ++j) {
                const char *row = (const char *)t->k + (size_t)(j * k_tok_stride + g * k_head_stride) * (size_t)elem;
                double sq = 0.0;
                for (int64_t d = 0; d < t->dk; ++d) {
                    const double x = (double)posattn_attention_kv_element(row, (int)t->k_type, d);
                    sq += x * x;
                }
                /* float64 sums of squares of floats: relative error below dk 2^-53, covered by the margin of
                 * 2^-30 (dk <= 576); a NaN makes the bound NaN (the block is then always read). */
                const double norm = sqrt(sq) * (1.0 + 0x1p-30);
                norm_nan |= norm != norm;
                largest = norm > largest ? norm : largest;
            }
            summary->key_norm[g * blocks + b] = norm_nan ? NAN : round_up_f32(largest);
        }
    }
    summary->n_keys = t->nk;
    summary->axes = axes;
    return POSATTN_OK;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The skipping walk                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

posattn_status posattn_far_field_scratch_size(int64_t nk, int64_t dv, size_t *bytes) {
    if (!bytes) return POSATTN_ERR_NULL;
    if (nk <= 0) return POSATTN_ERR_SIZE;
    posattn_status st = posattn_attention_check_dims(1, dv);
    if (st) return st;
    /* (m, l, a) running and the partials of one range, in float64; a bound (double) and a flag per block. */
    int64_t size;
    if (__builtin_mul_overflow(blocks_of(nk), (int64_t)(sizeof(double) + 1), &size) ||
        __builtin_add_overflow(size, (2 * dv + 4) * (int64_t)sizeof(double), &size) || size > PTRDIFF_MAX) {
        return POSATTN_ERR_OVERFLOW;
    }
    *bytes = (size_t)size;
    return POSATTN_OK;
}

typedef struct row_state {
    double m, l;
    double *a;    /* [dv] */
    double *part; /* [dv + 2]: one range's partials */
} row_state;

/* Runs row (h, i) over [key_begin, key_end) and merges the range into the running state (as the split-KV merge). */
static void visit_range(const attention_call *c, int64_t h, int64_t i, int64_t key_begin, int64_t key_end,
                        row_state *s) {
    const int64_t dv = c->t.dv;
    posattn_attention_row_partial(c, h, i, key_begin, key_end, s->part);
    const double m = s->part[0] > s->m ? s->part[0] : s->m;
    const double f_old = posattn_attention_rescale(s->m, m), f_new = posattn_attention_rescale(s->part[0], m);
    s->l = s->l * f_old + s->part[1] * f_new;
    for (int64_t d = 0; d < dv; ++d) s->a[d] = s->a[d] * f_old + s->part[2 + d] * f_new;
    s->m = m;
}

/* Whether row (h, i) has a bias this walk can bound: slope > 0 from positions shared by all heads (summarised with
 * the call's axes: checked once per call), no mask. */
static int row_is_boundable(const attention_call *c, const posattn_attention_row *row) {
    return row->slope > 0.0f && isfinite(row->slope) && c->pos.p.k_head_stride == 0 && !row->mask;
}

/* A lower bound on the distance from the row's query to every key position of block b (the block's box), in
 * float64 from the float32 positions: exact up to a few float64 roundings, far below the margin of the logit bound.
 * NaN when a coordinate is NaN or infinities meet (the block is then read). */
static double box_distance(const posattn_kv_summary *sum, const posattn_attention_row *row, int64_t blocks,
                           int64_t b) {
    const posattn_nd_positions *nd = &row->nd;
    if (nd->axes < 2) { /* a 1-D row: its one axis (nd->offset[0]: 0 for one-axis positions) */
        const int64_t at = nd->offset[0] * blocks + b;
        const double lo = sum->pos_min[at], hi = sum->pos_max[at], q = row->q_pos;
        if (lo != lo || q != q) return NAN;
        return q < lo ? lo - q : q > hi ? q - hi : 0.0;
    }
    double acc = 0.0;
    for (int a = 0; a < nd->axes; ++a) {
        const int64_t at = nd->offset[a] * blocks + b;
        const double lo = sum->pos_min[at], hi = sum->pos_max[at], q = nd->q[a];
        if (lo != lo || q != q) return NAN;
        double gap = q < lo ? lo - q : q > hi ? q - hi : 0.0;
        if (nd->weighted) gap *= fabs((double)nd->w[a]);
        acc += nd->l2 ? gap * gap : gap;
    }
    return nd->l2 ? sqrt(acc) : acc;
}

/* The keys of block b that the row may use. */
static int64_t valid_in_block(const posattn_attention_row *row, int64_t b) {
    const int64_t j0 = b * BLOCK > row->lo ? b * BLOCK : row->lo;
    const int64_t j1 = (b + 1) * BLOCK < row->hi ? (b + 1) * BLOCK : row->hi;
    return j1 > j0 ? j1 - j0 : 0;
}

/* Row (h, i) over its valid keys in [key_begin, key_end) into the running state s: every key when its bias cannot
 * be bounded, else the skipping walk. Returns the keys read. */
static int64_t far_field_row(const attention_call *c, const posattn_far_field *far, int64_t h, int64_t i,
                             int64_t key_begin, int64_t key_end, double *bound, unsigned char *visited, row_state *s) {
    const posattn_attention_tensors *t = &c->t;
    const posattn_kv_summary *sum = far->summary;
    const posattn_attention_row row = posattn_attention_row_of(c, h, i, key_begin, key_end);
    s->m = -INFINITY;
    s->l = 0.0;
    memset(s->a, 0, (size_t)t->dv * sizeof(double));
    int64_t read = 0;
    if (row.lo >= row.hi) {
        /* no valid key */
    } else if (!row_is_boundable(c, &row)) {
        visit_range(c, h, i, row.lo, row.hi, s);
        read = row.hi - row.lo;
    } else {
        double q_sq = 0.0;
        for (int64_t d = 0; d < t->dk; ++d) {
            const double x = row.q[d * t->q_dim_stride];
            q_sq += x * x;
        }
        const double q_norm = sqrt(q_sq) * (1.0 + 0x1p-30), scale = fabs((double)c->scale);
        const double margin = (double)(t->dk + 16) * 0x1p-23, slope = row.slope;
        const double cap = c->o->softcap > 0.0f ? (double)c->o->softcap : INFINITY;
        const int64_t b_first = row.lo / BLOCK, b_end = blocks_of(row.hi), blocks = blocks_of(sum->max_keys);
        const float *norms = sum->key_norm + (h / c->group) * blocks;
        double top = -INFINITY;
        int64_t left = 0;
        for (int64_t b = b_first; b < b_end; ++b) {
            double a = scale * q_norm * (double)norms[b];
            if (a > cap) a = cap;
            const double gap = box_distance(sum, &row, blocks, b);
            const double u = a - slope * gap + margin * (a + slope * gap);
            bound[b] = u == u ? u : INFINITY; /* a NaN bound: the block is always read */
            visited[b] = 0;
            if (bound[b] > top) top = bound[b];
            left += valid_in_block(&row, b);
        }
        const double eps = far->eps > 0.0f ? (double)far->eps : 0x1p-24;
        double threshold = top + log(eps) - 4.0; /* a block below weighs under eps e^-4 of the top block's max */
        for (;;) {
            /* Visit every block at or above the threshold, runs of consecutive blocks as one range. */
            for (int64_t b = b_first; b < b_end;) {
                if (visited[b] || bound[b] < threshold) {
                    ++b;
                    continue;
                }
                int64_t e = b;
                while (e < b_end && !visited[e] && !(bound[e] < threshold)) {
                    visited[e] = 1;
                    left -= valid_in_block(&row, e);
                    read += valid_in_block(&row, e);
                    ++e;
                }
                const int64_t j0 = b * BLOCK > row.lo ? b * BLOCK : row.lo;
                const int64_t j1 = e * BLOCK < row.hi ? e * BLOCK : row.hi;
                visit_range(c, h, i, j0, j1, s);
                b = e;
            }
            if (left == 0) break;
            if (s->m == -INFINITY || s->l != s->l) { /* no sum to compare with (a NaN row): read the rest */
                threshold = -INFINITY;
                continue;
            }
            double w = 0.0;
            for (int64_t b = b_first; b < b_end; ++b) {
                if (!visited[b]) w += (double)valid_in_block(&row, b) * exp(bound[b] - s->m);
            }
            if (w <= eps * s->l) break;
            const double next = s->m + log(eps * s->l / (double)left);
            threshold = next < threshold - 30.0 ? next : threshold - 30.0;
        }
    }
    return read;
}

/* Every check of a far-field call beyond its attention call's; the scratch laid out into s, bound and visited. */
static posattn_status far_field_begin(const attention_call *c, const posattn_far_field *far, span partial_bytes,
                                      row_state *s, double **bound, unsigned char **visited) {
    if (!far || !far->summary || !far->scratch || !far->summary->key_norm) return POSATTN_ERR_NULL;
    const posattn_kv_summary *sum = far->summary;
    if (sum->n_kv_heads != c->t.n_kv_heads) return POSATTN_ERR_SIZE;
    if (sum->n_keys < c->t.nk) return POSATTN_ERR_KEY_RANGE;
    /* Positions shared by all heads must be those summarised, so at least their axes must agree (per-head key
     * positions are not summarised: their rows read every key). */
    if (c->pos.p.k_head_stride == 0 && (c->pos.p.axes ? c->pos.p.axes : 1) != sum->axes) return POSATTN_ERR_AXES;
    if (!(far->eps >= 0.0f && far->eps <= 0x1p-10f)) return POSATTN_ERR_SCALE;
    size_t need;
    posattn_status st = posattn_far_field_scratch_size(c->t.nk, c->t.dv, &need);
    if (st) return st;
    if (far->scratch_bytes < need) return POSATTN_ERR_SIZE;
    const span scratch = {(uintptr_t)far->scratch, (uintptr_t)far->scratch + need};
    if (posattn_spans_overlap(scratch, c->out) || posattn_spans_overlap(scratch, c->lse) ||
        posattn_spans_overlap(scratch, partial_bytes)) {
        return POSATTN_ERR_OVERLAP;
    }
    for (size_t n = 0; n < sizeof c->inputs / sizeof c->inputs[0]; ++n) {
        if (posattn_spans_overlap(scratch, c->inputs[n])) return POSATTN_ERR_OVERLAP;
    }
    double *d = far->scratch;
    *s = (row_state){.a = d, .part = d + c->t.dv};
    *bound = d + 2 * c->t.dv + 4;
    *visited = (unsigned char *)(*bound + blocks_of(c->t.nk));
    return POSATTN_OK;
}

posattn_status posattn_attention_far_field(const posattn_attention_tensors *t, float scale, const float *slopes,
                                           const posattn_positions *positions,
                                           const posattn_softmax_options *options, posattn_far_field *far,
                                           int64_t row_begin, int64_t row_end) {
    attention_call c;
    posattn_status st = posattn_attention_prepare(&c, t, scale, slopes, positions, options, row_begin, row_end, 1);
    if (st) return st;
    row_state s;
    double *bound;
    unsigned char *visited;
    if ((st = far_field_begin(&c, far, (span){0, 0}, &s, &bound, &visited))) return st;
    const posattn_softmax_options *o = c.o;
    int64_t read = 0;
    for (int64_t r = row_begin; r < row_end; ++r) {
        const int64_t h = r / c.t.nq, i = r % c.t.nq;
        read += far_field_row(&c, far, h, i, 0, c.t.nk, bound, visited, &s);
        posattn_attention_finish(c.t.out + i * c.t.o_tok_stride + h * c.t.o_head_stride, o->lse ? o->lse + r : NULL,
                                 c.t.dv, o->sinks != NULL, o->sinks ? o->sinks[h] : 0.0f, s.m, s.l, s.a);
    }
    far->keys_read = read;
    return POSATTN_OK;
}

posattn_status posattn_attention_far_field_partial(const posattn_attention_tensors *t, float scale,
                                                   const float *slopes, const posattn_positions *positions,
                                                   const posattn_softmax_options *options, posattn_far_field *far,
                                                   int64_t key_begin, int64_t key_end, double *partials,
                                                   int64_t row_begin, int64_t row_end) {
    attention_call c;
    posattn_status st = posattn_attention_prepare(&c, t, scale, slopes, positions, options, row_begin, row_end, 0);
    if (st) return st;
    span partial_bytes;
    if ((st = posattn_attention_check_partials(&c, partials, key_begin, key_end, &partial_bytes))) return st;
    row_state s;
    double *bound;
    unsigned char *visited;
    if ((st = far_field_begin(&c, far, partial_bytes, &s, &bound, &visited))) return st;
    const int64_t dv = c.t.dv;
    int64_t read = 0;
    for (int64_t r = row_begin; r < row_end; ++r) {
        read += far_field_row(&c, far, r / c.t.nq, r % c.t.nq, key_begin, key_end, bound, visited, &s);
        double *out = partials + r * (dv + 2);
        out[0] = s.m, out[1] = s.l;
        memcpy(out + 2, s.a, (size_t)dv * sizeof(double));
    }
    far->keys_read = read;
    return POSATTN_OK;
}
