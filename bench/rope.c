/*
 * Benchmarks of the rotary embeddings (SPEC 4), registered by the shim through pab_rope_family (bench.h).
 *
 * Names:  rope/<isa>/<shape>               posattn_rope_apply on every token, ISA forced
 *         roofline_memcpy/rope/<shape>     memcpy of the same tensor to another buffer: the bytes the in-place
 *                                          rotation must read and write at least
 * Shapes: llm_*: q of 4096 tokens x 32 heads x 128 dims (64 MiB, past every cache), half-split, D_rot = D;
 *         vision_*: 1024 tokens x 16 heads x 80 dims (Qwen2-VL ViT), half-split, (y, x) on a 32 x 32 grid.
 *         1d: one shared table (base 10000), positions 0..4095 (at1e6: 1e6..1e6+4095, a long context);
 *         3sec: Qwen2-VL M-RoPE sections [16, 24, 24] over (t, y, x) of a video of 16 frames of 16 x 16 patches;
 *         vision: restarting sections [20, 20];
 *         mixed: RoPE-Mixed, a dense learned table per head over (y, x) positions of a 64 x 64 grid.
 * Bytes counted: 8 per element (read and written in place; memcpy reads and writes the same amount). The targets
 * are ratios within one run: rope/avx512/<shape> against roofline_memcpy/rope/<shape>.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "posattn.h"

typedef enum rope_table_kind { TABLE_1D, TABLE_SECTIONS, TABLE_VISION, TABLE_MIXED } rope_table_kind;

typedef struct rope_shape {
    const char *name;
    int64_t n_tok, heads, dim;
    int64_t axes;
    rope_table_kind table;
    posattn_rope_layout layout;
    double pos_offset; /* 1-D positions start here (a long context: angles up to 1e6 radians) */
} rope_shape;

static const rope_shape rope_shapes[] = {
    {"llm_t4096_h32_d128_1d", 4096, 32, 128, 1, TABLE_1D, POSATTN_ROPE_HALF_SPLIT, 0},
    {"llm_t4096_h32_d128_1d_interleaved", 4096, 32, 128, 1, TABLE_1D, POSATTN_ROPE_INTERLEAVED, 0},
    {"llm_t4096_h32_d128_1d_at1e6", 4096, 32, 128, 1, TABLE_1D, POSATTN_ROPE_HALF_SPLIT, 1e6},
    {"llm_t4096_h32_d128_3sec", 4096, 32, 128, 3, TABLE_SECTIONS, POSATTN_ROPE_HALF_SPLIT, 0},
    {"llm_t4096_h32_d128_mixed", 4096, 32, 128, 2, TABLE_MIXED, POSATTN_ROPE_HALF_SPLIT, 0},
    {"vision_t1024_h16_d80", 1024, 16, 80, 2, TABLE_VISION, POSATTN_ROPE_HALF_SPLIT, 0},
    {"vision_t1024_h16_d80_mixed", 1024, 16, 80, 2, TABLE_MIXED, POSATTN_ROPE_HALF_SPLIT, 0},
};
enum { ROPE_SHAPE_COUNT = sizeof rope_shapes / sizeof rope_shapes[0] };

typedef struct rope_impl {
    const rope_shape *shape;
    posattn_isa isa; /* POSATTN_ISA_AUTO: the memcpy roofline */
} rope_impl;

enum { ROPE_MAX_CASES = 64 };
static pab_case rope_cases[ROPE_MAX_CASES];
static rope_impl rope_impls[ROPE_MAX_CASES];
static size_t rope_case_count;

static void add_rope_case(const rope_shape *s, posattn_isa isa, const char *family, const char *variant) {
    if (rope_case_count == ROPE_MAX_CASES) return;
    pab_case *c = &rope_cases[rope_case_count];
    rope_impl *im = &rope_impls[rope_case_count];
    ++rope_case_count;
    im->shape = s;
    im->isa = isa;
    snprintf(c->name, sizeof c->name, "%s/%s/%s", family, variant, s->name);
    c->elements = (double)s->n_tok * (double)s->heads * (double)s->dim;
    c->bytes = 8.0 * c->elements;
    c->threads = 1;
    c->wall_clock = 0;
    c->impl = im;
}

static void build_rope_cases(void) {
    if (rope_case_count) return;
    for (size_t k = 0; k < ROPE_SHAPE_COUNT; ++k) {
        const rope_shape *s = &rope_shapes[k];
        int isas[POSATTN_ISA_COUNT];
        const int n = pab_op_isas(POSATTN_OP_ROPE, isas);
        for (int m = 0; m < n; ++m) add_rope_case(s, (posattn_isa)isas[m], "rope", posattn_isa_name((posattn_isa)isas[m]));
        add_rope_case(s, POSATTN_ISA_AUTO, "roofline_memcpy", "rope");
    }
}

static size_t rope_count(void) {
    build_rope_cases();
    return rope_case_count;
}

static const pab_case *rope_at(size_t i) {
    build_rope_cases();
    return i < rope_case_count ? &rope_cases[i] : NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Buffers: one shape at a time, kept while consecutive cases use it                                              */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct rope_data {
    const rope_shape *shape;
    size_t n;     /* elements of x */
    float *x;     /* [n_tok][heads][dim] */
    float *copy;  /* memcpy destination */
    float *pos;   /* [n_tok][axes] */
    float *freqs; /* [axes][dim/2], or [heads][axes][dim/2] for mixed */
    int64_t freq_head_stride;
} rope_data;

static rope_data *rope_cached;

static void *rope_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded); /* touch every page now */
    return p;
}

static void rope_data_free(rope_data *d) {
    if (!d) return;
    free(d->x);
    free(d->copy);
    free(d->pos);
    free(d->freqs);
    free(d);
}

static void rope_release_all(void) {
    rope_data_free(rope_cached);
    rope_cached = NULL;
}

static uint64_t rope_rng = 0x2545f4914f6cdd1dull;
static double rope_uniform01(void) {
    rope_rng ^= rope_rng >> 12;
    rope_rng ^= rope_rng << 25;
    rope_rng ^= rope_rng >> 27;
    return (double)((rope_rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53;
}

static rope_data *rope_data_get(const rope_shape *s) {
    if (rope_cached && rope_cached->shape == s) return rope_cached;
    rope_release_all();
    rope_data *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->shape = s;
    d->n = (size_t)(s->n_tok * s->heads * s->dim);
    const int64_t pairs = s->dim / 2, table = s->axes * pairs;
    const int64_t tables = s->table == TABLE_MIXED ? s->heads : 1;
    d->x = rope_alloc(d->n * sizeof(float));
    d->copy = rope_alloc(d->n * sizeof(float));
    d->pos = rope_alloc((size_t)(s->n_tok * s->axes) * sizeof(float));
    d->freqs = rope_alloc((size_t)(tables * table) * sizeof(float));
    if (!d->x || !d->copy || !d->pos || !d->freqs) {
        rope_data_free(d);
        return NULL;
    }
    rope_rng = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < d->n; ++i) d->x[i] = (float)(2.0 * rope_uniform01() - 1.0);
    for (int64_t t = 0; t < s->n_tok; ++t) {
        float *p = d->pos + t * s->axes;
        if (s->axes == 1) {
            p[0] = (float)(s->pos_offset + (double)t);
        } else if (s->axes == 3) { /* a video: 16 frames of 16 x 16 patches */
            p[0] = (float)(t / 256), p[1] = (float)((t / 16) % 16), p[2] = (float)(t % 16);
        } else { /* a square grid */
            const int64_t side = (int64_t)sqrt((double)s->n_tok);
            p[0] = (float)(t / side), p[1] = (float)(t % side);
        }
    }
    posattn_status st = POSATTN_OK;
    switch (s->table) {
    case TABLE_1D: st = posattn_rope_freqs_1d(s->dim, 10000.0f, d->freqs); break;
    case TABLE_SECTIONS: {
        const int64_t sections[3] = {16, 24, 24};
        st = posattn_rope_freqs_sections(s->dim, 1e6f, 3, sections, d->freqs);
        break;
    }
    case TABLE_VISION: {
        const int64_t sections[2] = {pairs / 2, pairs - pairs / 2};
        st = posattn_rope_freqs_vision(s->dim, 10000.0f, 2, sections, d->freqs);
        break;
    }
    case TABLE_MIXED: /* learned-looking: RoPE-Mixed initialises random directions with magnitudes base^(-2k/D) */
        for (int64_t h = 0; h < s->heads; ++h) {
            for (int64_t k = 0; k < pairs; ++k) {
                const double mag = pow(100.0, -2.0 * (double)k / (double)s->dim),
                             phase = 6.283185307 * rope_uniform01();
                d->freqs[h * table + k] = (float)(mag * cos(phase));
                d->freqs[h * table + pairs + k] = (float)(mag * sin(phase));
            }
        }
        d->freq_head_stride = table;
        break;
    }
    if (st != POSATTN_OK) {
        rope_data_free(d);
        return NULL;
    }
    rope_cached = d;
    return d;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Running                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct rope_ctx {
    const rope_impl *im;
    rope_data *d;
    int backward; /* alternate directions so the data stays the same on average */
} rope_ctx;

static posattn_status rope_run_once(rope_ctx *x) {
    const rope_shape *s = x->im->shape;
    rope_data *d = x->d;
    if (x->im->isa == POSATTN_ISA_AUTO) {
        memcpy(d->copy, d->x, d->n * sizeof(float));
        return POSATTN_OK;
    }
    posattn_rope_options o = {0};
    o.flags = x->backward ? POSATTN_ROPE_BACKWARD : 0;
    x->backward = !x->backward;
    return posattn_rope_apply(s->n_tok, s->heads, s->dim, d->x, 0, 0, 0, s->dim, s->layout, s->axes, d->pos, 0,
                              d->freqs, d->freq_head_stride, &o, 0, s->n_tok);
}

static void rope_run(void *ctx) { (void)rope_run_once(ctx); }

static void rope_finish(void *ctx) {
    if (!ctx) return;
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(ctx);
}

static const char *rope_prepare(const pab_case *c, void **ctx) {
    *ctx = NULL;
    const rope_impl *im = c->impl;
    if (im->isa != POSATTN_ISA_AUTO) {
        if (!posattn_isa_supported(im->isa)) {
            return posattn_isa_compiled(im->isa) ? "ISA not supported on this CPU"
                                                 : "ISA not supported on this CPU (not compiled into this build)";
        }
        if (posattn_force_isa(im->isa) != POSATTN_OK) return "ISA not supported on this CPU";
    }
    rope_ctx *x = calloc(1, sizeof *x);
    if (!x) return "out of memory";
    x->im = im;
    x->d = rope_data_get(im->shape);
    if (!x->d) {
        rope_finish(x);
        return "out of memory for the shape's buffers";
    }
    posattn_status st = rope_run_once(x); /* warm-up, untimed */
    if (st != POSATTN_OK) {
        rope_finish(x);
        return posattn_status_string(st);
    }
    *ctx = x;
    return NULL;
}

const pab_family_ops pab_rope_family = {rope_count, rope_at, rope_prepare, rope_run, rope_finish, rope_release_all};
