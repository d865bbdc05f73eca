/*
 * Benchmarks of ALiBi with N-D positions (SPEC 2), registered by the shim through pab_alibi_nd_family (bench.h).
 *
 * Names:  alibi_nd_softmax/<isa>/<shape>   posattn_alibi_softmax (scale 1/8, no mask) on every row, ISA forced
 *         alibi_nd_bias/<isa>/<shape>      posattn_alibi_bias (the external bias), for the image shapes
 * Shapes (queries = keys = the tokens, in raster order; every shape of a group has the same H, nq and nk, so the
 * ratio of two cases of one run is the cost of the positions):
 *   image_h12_32x32_*     a 32 x 32 patch grid (1024 tokens), H = 12: l2 (Euclidean, CROMA), l1, split (heads 0-5
 *                         on y, 6-11 on x: posattn_alibi_split_heads), 1d (float positions 0..1023 given,
 *                         contiguous: the 1-D baseline), 1d_default (the KV-cache default positions)
 *   video_h16_8x16x16_*   8 frames of 16 x 16 patches (2048 tokens), H = 16, (t, y, x): l1, l2, split, 1d
 *   vol4d_h8_4x8x8x8_*    a (t, z, y, x) grid of 2048 tokens, H = 8: l1, l2, 1d
 *   *_q32_*               the same keys, only the first 32 tokens as queries: S and P stay in the L2 cache, so
 *                         the ratio shows the cost of the positions rather than of the memory traffic
 * Bytes counted: 8 per element (S read, P written), 4 for the bias (written). Targets (ratios within one run, on
 * AVX-512 and AVX2): image l2 <= 1.3 x image 1d, vol4d l1 <= 1.5 x vol4d 1d.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "posattn.h"

typedef enum nd_kind { ND_L1, ND_L2, ND_SPLIT, ND_1D, ND_1D_DEFAULT } nd_kind;

typedef struct nd_shape {
    const char *name;
    int64_t heads;
    int64_t dims[4]; /* grid extents, slowest first */
    int64_t axes;
    nd_kind kind;
    int with_bias;
    int64_t nq; /* 0: every token queries; else the first nq tokens (rows that stay in the caches) */
} nd_shape;

static const nd_shape nd_shapes[] = {
    {"image_h12_32x32_l2", 12, {32, 32}, 2, ND_L2, 1, 0},
    {"image_h12_32x32_l1", 12, {32, 32}, 2, ND_L1, 0, 0},
    {"image_h12_32x32_split", 12, {32, 32}, 2, ND_SPLIT, 0, 0},
    {"image_h12_32x32_1d", 12, {32, 32}, 2, ND_1D, 1, 0},
    {"image_h12_32x32_1d_default", 12, {32, 32}, 2, ND_1D_DEFAULT, 0, 0},
    {"video_h16_8x16x16_l1", 16, {8, 16, 16}, 3, ND_L1, 0, 0},
    {"video_h16_8x16x16_l2", 16, {8, 16, 16}, 3, ND_L2, 0, 0},
    {"video_h16_8x16x16_split", 16, {8, 16, 16}, 3, ND_SPLIT, 0, 0},
    {"video_h16_8x16x16_1d", 16, {8, 16, 16}, 3, ND_1D, 0, 0},
    {"vol4d_h8_4x8x8x8_l1", 8, {4, 8, 8, 8}, 4, ND_L1, 0, 0},
    {"vol4d_h8_4x8x8x8_l2", 8, {4, 8, 8, 8}, 4, ND_L2, 0, 0},
    {"vol4d_h8_4x8x8x8_1d", 8, {4, 8, 8, 8}, 4, ND_1D, 0, 0},
    /* The same keys with 32 query rows per head (S and P within the L2 cache): the compute, not the memory. */
    {"image_h12_32x32_q32_l2", 12, {32, 32}, 2, ND_L2, 0, 32},
    {"image_h12_32x32_q32_1d", 12, {32, 32}, 2, ND_1D, 0, 32},
    {"vol4d_h8_4x8x8x8_q32_l1", 8, {4, 8, 8, 8}, 4, ND_L1, 0, 32},
    {"vol4d_h8_4x8x8x8_q32_1d", 8, {4, 8, 8, 8}, 4, ND_1D, 0, 32},
};
enum { ND_SHAPE_COUNT = sizeof nd_shapes / sizeof nd_shapes[0] };

static int64_t nd_tokens(const nd_shape *s) {
    int64_t n = 1;
    for (int64_t a = 0; a < s->axes; ++a) n *= s->dims[a];
    return n;
}

typedef struct nd_impl {
    const nd_shape *shape;
    posattn_isa isa;
    int bias; /* 1: the external bias */
} nd_impl;

enum { ND_MAX_CASES = 128 };
static pab_case nd_cases[ND_MAX_CASES];
static nd_impl nd_impls[ND_MAX_CASES];
static size_t nd_case_count;

static void add_nd_case(const nd_shape *s, posattn_isa isa, int bias) {
    if (nd_case_count == ND_MAX_CASES) return;
    pab_case *c = &nd_cases[nd_case_count];
    nd_impl *im = &nd_impls[nd_case_count];
    ++nd_case_count;
    im->shape = s, im->isa = isa, im->bias = bias;
    snprintf(c->name, sizeof c->name, "%s/%s/%s", bias ? "alibi_nd_bias" : "alibi_nd_softmax", posattn_isa_name(isa),
             s->name);
    const double n = (double)nd_tokens(s);
    c->elements = (double)s->heads * (s->nq ? (double)s->nq : n) * n;
    c->bytes = (bias ? 4.0 : 8.0) * c->elements;
    c->threads = 1;
    c->wall_clock = 0;
    c->impl = im;
}

static void build_nd_cases(void) {
    if (nd_case_count) return;
    for (size_t k = 0; k < ND_SHAPE_COUNT; ++k) {
        int isas[POSATTN_ISA_COUNT];
        const int n = pab_op_isas(POSATTN_OP_ALIBI_SOFTMAX, isas);
        for (int m = 0; m < n; ++m) add_nd_case(&nd_shapes[k], (posattn_isa)isas[m], 0);
    }
    for (size_t k = 0; k < ND_SHAPE_COUNT; ++k) {
        if (!nd_shapes[k].with_bias) continue;
        int isas[POSATTN_ISA_COUNT];
        const int n = pab_op_isas(POSATTN_OP_ALIBI_BIAS, isas);
        for (int m = 0; m < n; ++m) add_nd_case(&nd_shapes[k], (posattn_isa)isas[m], 1);
    }
}

static size_t nd_count(void) {
    build_nd_cases();
    return nd_case_count;
}

static const pab_case *nd_at(size_t i) {
    build_nd_cases();
    return i < nd_case_count ? &nd_cases[i] : NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Buffers: one shape at a time                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct nd_data {
    const nd_shape *shape;
    int64_t n;      /* tokens (keys) */
    int64_t nq;     /* query rows per head */
    size_t elems;   /* heads * n * n */
    float *scores, *probs, *pos, *slopes, *weights;
    posattn_positions positions;
    int default_positions;
} nd_data;

static nd_data *nd_cached;

static void *nd_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded); /* touch every page now */
    return p;
}

static void nd_data_free(nd_data *d) {
    if (!d) return;
    free(d->scores);
    free(d->probs);
    free(d->pos);
    free(d->slopes);
    free(d->weights);
    free(d);
}

static void nd_release_all(void) {
    nd_data_free(nd_cached);
    nd_cached = NULL;
}

static nd_data *nd_data_get(const nd_shape *s) {
    if (nd_cached && nd_cached->shape == s) return nd_cached;
    nd_release_all();
    nd_data *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->shape = s;
    d->n = nd_tokens(s);
    d->nq = s->nq ? s->nq : d->n;
    d->elems = (size_t)(s->heads * d->nq * d->n);
    const int64_t A = s->kind == ND_1D || s->kind == ND_1D_DEFAULT ? 1 : s->axes;
    d->scores = nd_alloc(d->elems * sizeof(float));
    d->probs = nd_alloc(d->elems * sizeof(float));
    d->pos = nd_alloc((size_t)(d->n * A) * sizeof(float));
    d->slopes = nd_alloc((size_t)s->heads * sizeof(float));
    d->weights = nd_alloc((size_t)(s->heads * s->axes) * sizeof(float));
    if (!d->scores || !d->probs || !d->pos || !d->slopes || !d->weights) {
        nd_data_free(d);
        return NULL;
    }
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < d->elems; ++i) {
        r ^= r >> 12, r ^= r << 25, r ^= r >> 27;
        d->scores[i] = (float)((double)((r * 0x2545f4914f6cdd1dull) >> 40) * 0x1.0p-24 * 16.0 - 8.0);
    }
    for (int64_t t = 0; t < d->n; ++t) {
        if (A == 1) {
            d->pos[t] = (float)t;
            continue;
        }
        int64_t rest = t;
        for (int64_t a = A - 1; a >= 0; --a) {
            d->pos[t * A + a] = (float)(rest % s->dims[a]);
            rest /= s->dims[a];
        }
    }
    posattn_alibi_slopes(s->heads, 8.0f, d->slopes);
    memset(&d->positions, 0, sizeof d->positions);
    d->positions.q = d->pos, d->positions.k = d->pos, d->positions.axes = A;
    d->positions.metric = s->kind == ND_L2 ? POSATTN_METRIC_L2 : POSATTN_METRIC_L1;
    if (s->kind == ND_SPLIT) {
        posattn_alibi_split_heads(s->heads, A, d->weights);
        d->positions.weights = d->weights;
    }
    d->default_positions = s->kind == ND_1D_DEFAULT;
    nd_cached = d;
    return d;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Running                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct nd_ctx {
    const nd_impl *im;
    nd_data *d;
} nd_ctx;

static posattn_status nd_run_once(nd_ctx *x) {
    const nd_shape *s = x->im->shape;
    nd_data *d = x->d;
    const posattn_positions *p = d->default_positions ? NULL : &d->positions;
    if (x->im->bias) {
        return posattn_alibi_bias(s->heads, d->nq, d->n, d->slopes, p, d->probs, 0, 0, 0, s->heads * d->nq);
    }
    return posattn_alibi_softmax(s->heads, d->nq, d->n, d->scores, 0, 0, d->probs, 0, 0, 0.125f, d->slopes, p, NULL,
                                 0, s->heads * d->nq);
}

static void nd_run(void *ctx) { (void)nd_run_once(ctx); }

static void nd_finish(void *ctx) {
    if (!ctx) return;
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(ctx);
}

static const char *nd_prepare(const pab_case *c, void **ctx) {
    *ctx = NULL;
    const nd_impl *im = c->impl;
    if (!posattn_isa_supported(im->isa)) {
        return posattn_isa_compiled(im->isa) ? "ISA not supported on this CPU"
                                             : "ISA not supported on this CPU (not compiled into this build)";
    }
    if (posattn_force_isa(im->isa) != POSATTN_OK) return "ISA not supported on this CPU";
    nd_ctx *x = calloc(1, sizeof *x);
    if (!x) return "out of memory";
    x->im = im;
    x->d = nd_data_get(im->shape);
    if (!x->d) {
        nd_finish(x);
        return "out of memory for the shape's buffers";
    }
    posattn_status st = nd_run_once(x); /* warm-up, untimed */
    if (st != POSATTN_OK) {
        nd_finish(x);
        return posattn_status_string(st);
    }
    *ctx = x;
    return NULL;
}

const pab_family_ops pab_alibi_nd_family = {nd_count, nd_at, nd_prepare, nd_run, nd_finish, nd_release_all};
