/*
 * Benchmarks of the LieRE rotations (SPEC 5), registered by the shim through pab_liere_family (bench.h).
 *
 * Shapes: 1024 tokens on a 32 x 32 grid of (y, x) positions, q and k of 12 heads x 64 dims, D_rot = 64, with
 * b = 2, 4, 8 and 64 (the reference LieRE configuration), generators shared by all heads ("shared") or one set per
 * head ("perhead"). Generator entries are uniform in [-0.02, 0.02] (b = 64: ||S||_1 about 10 at the far corner of
 * the grid, 6 squarings), a learned-looking scale.
 * Names:  liere_rot/<isa>/<shape>        posattn_liere_rotations for every token, ISA forced
 *         liere_apply/<isa>/<shape>      posattn_liere_apply to q and k (12 + 12 heads) for every token
 *         liere_apply_backward/<isa>/<shape>   the same with POSATTN_LIERE_BACKWARD (R^T; SIMD ISAs only)
 *         roofline_fma/<isa>/chains      independent FMA chains in registers: the core's FMA peak
 *         roofline_memcpy/liere_apply/<shape>   memcpy moving the bytes liere_apply must read and write
 * Counters: items_per_second is FLOP/s (elements = floating-point operations per call: for the rotations the
 * products 2 b^3 each that the kernel performs for these positions, 4 + s + 2k per block, counted here with the
 * kernel's own rule; b = 2 has no products and counts one flop per block entry; for apply 2 b flops per rotated
 * element of q and k); bytes_per_second is GB/s of the bytes a call must move at least (apply: q and k read and
 * written plus the rotations read; rotations: written). Targets are ratios within one run:
 *   liere_rot/avx512/b64_shared         >= 40% of roofline_fma/avx512/chains (FLOP/s)
 *   liere_apply/avx512/b64_shared       >= 50% of roofline_fma/avx512/chains (FLOP/s)
 *   liere_apply/avx512/b64_perhead      time within 1.3x of roofline_memcpy/liere_apply/b64_perhead
 * The scalar rotations of b64_perhead (about 80 GFLOP a call) are skipped: b64_shared times the same kernel.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "posattn.h"

#ifndef PAB_HAVE_FMA_AVX512
#define PAB_HAVE_FMA_AVX512 0
#endif
#ifndef PAB_HAVE_FMA_AVX2
#define PAB_HAVE_FMA_AVX2 0
#endif
#ifndef PAB_HAVE_FMA_NEON
#define PAB_HAVE_FMA_NEON 0
#endif

/* The rooflines (bench/roofline_fma_<isa>.c, each compiled with its ISA's flags). Return the flops done. */
double pab_fma_chains_avx512(int64_t iters, float *sink);
double pab_fma_chains_avx2(int64_t iters, float *sink);
double pab_fma_chains_neon(int64_t iters, float *sink);

enum { LIERE_SIDE = 32, LIERE_TOK = LIERE_SIDE * LIERE_SIDE, LIERE_HEADS = 12, LIERE_DIM = 64, LIERE_AXES = 2 };
/* FMA chain iterations per call of the roofline: 2^20 x 16 vectors, a few milliseconds. */
#define LIERE_FMA_ITERS (INT64_C(1) << 20)

typedef struct liere_shape {
    const char *name;
    int64_t block;
    int64_t n_gen; /* 1 (shared) or LIERE_HEADS (per head) */
} liere_shape;

static const liere_shape liere_shapes[] = {
    {"b2_shared", 2, 1},  {"b2_perhead", 2, LIERE_HEADS},  {"b4_shared", 4, 1},   {"b4_perhead", 4, LIERE_HEADS},
    {"b8_shared", 8, 1},  {"b8_perhead", 8, LIERE_HEADS},  {"b64_shared", 64, 1}, {"b64_perhead", 64, LIERE_HEADS},
};
enum { LIERE_SHAPE_COUNT = sizeof liere_shapes / sizeof liere_shapes[0] };

typedef enum liere_op { OP_ROT, OP_APPLY, OP_APPLY_BACKWARD, OP_MEMCPY, OP_FMA } liere_op;

typedef struct liere_impl {
    const liere_shape *shape; /* NULL for OP_FMA */
    liere_op op;
    posattn_isa isa;
} liere_impl;

enum { LIERE_MAX_CASES = 128 };
static pab_case liere_cases[LIERE_MAX_CASES];
static liere_impl liere_impls[LIERE_MAX_CASES];
static size_t liere_case_count;

/* ------------------------------------------------------------------------------------------------------------ */
/* Data: positions, generators, rotations, q and k of one shape                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct liere_data {
    const liere_shape *shape;
    float *pos, *gens, *rot, *q, *k;
    float *scratch; /* posattn_liere_scratch_size floats, allocated once as a worker thread would */
    int64_t scratch_floats;
    size_t rot_floats, qk_floats;
    char *copy_src, *copy_dst; /* the memcpy roofline */
    size_t copy_bytes;
} liere_data;

static liere_data *liere_cached;

static void *liere_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded); /* touch every page now */
    return p;
}

static void liere_data_free(liere_data *d) {
    if (!d) return;
    free(d->pos), free(d->gens), free(d->rot), free(d->q), free(d->k), free(d->scratch), free(d->copy_src),
        free(d->copy_dst);
    free(d);
}

static void liere_release_all(void) {
    liere_data_free(liere_cached);
    liere_cached = NULL;
}

static uint64_t liere_rng = 0x9e3779b97f4a7c15ull;
static double liere_uniform01(void) {
    liere_rng ^= liere_rng >> 12;
    liere_rng ^= liere_rng << 25;
    liere_rng ^= liere_rng >> 27;
    return (double)((liere_rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53;
}

static int64_t gen_floats(const liere_shape *s) {
    return s->n_gen * LIERE_AXES * (LIERE_DIM / s->block) * s->block * (s->block - 1) / 2;
}

/* Bytes apply must move at least: q and k read and written, the rotations read. */
static double apply_bytes(const liere_shape *s) {
    const double qk = 2.0 * LIERE_TOK * LIERE_HEADS * LIERE_DIM * sizeof(float);
    const double rot = (double)LIERE_TOK * (double)(s->n_gen * s->block * LIERE_DIM) * sizeof(float);
    return 2.0 * qk + rot;
}

static liere_data *liere_data_get(const liere_shape *s) {
    if (liere_cached && liere_cached->shape == s) return liere_cached;
    liere_release_all();
    liere_data *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->shape = s;
    d->rot_floats = (size_t)(LIERE_TOK * s->n_gen * s->block * LIERE_DIM);
    d->qk_floats = (size_t)(LIERE_TOK * LIERE_HEADS * LIERE_DIM);
    d->copy_bytes = (size_t)(apply_bytes(s) / 2.0); /* a memcpy reads and writes this many */
    d->pos = liere_alloc((size_t)(LIERE_TOK * LIERE_AXES) * sizeof(float));
    d->gens = liere_alloc((size_t)gen_floats(s) * sizeof(float));
    d->rot = liere_alloc(d->rot_floats * sizeof(float));
    d->q = liere_alloc(d->qk_floats * sizeof(float));
    d->k = liere_alloc(d->qk_floats * sizeof(float));
    d->copy_src = liere_alloc(d->copy_bytes);
    d->copy_dst = liere_alloc(d->copy_bytes);
    if (posattn_liere_scratch_size(s->block, &d->scratch_floats) == POSATTN_OK) {
        d->scratch = liere_alloc((size_t)d->scratch_floats * sizeof(float));
    }
    if (!d->pos || !d->gens || !d->rot || !d->q || !d->k || !d->scratch || !d->copy_src || !d->copy_dst) {
        liere_data_free(d);
        return NULL;
    }
    liere_rng = 0x9e3779b97f4a7c15ull;
    for (int64_t t = 0; t < LIERE_TOK; ++t) {
        d->pos[t * 2] = (float)(t / LIERE_SIDE);
        d->pos[t * 2 + 1] = (float)(t % LIERE_SIDE);
    }
    for (int64_t i = 0; i < gen_floats(s); ++i) d->gens[i] = (float)(0.04 * liere_uniform01() - 0.02);
    for (size_t i = 0; i < d->qk_floats; ++i) {
        d->q[i] = (float)(2.0 * liere_uniform01() - 1.0);
        d->k[i] = (float)(2.0 * liere_uniform01() - 1.0);
    }
    memset(d->copy_src, 1, d->copy_bytes);
    if (posattn_liere_rotations(LIERE_TOK, LIERE_AXES, d->pos, 0, s->n_gen, s->block, LIERE_DIM, d->gens, d->rot, 0,
                                d->scratch, d->scratch_floats, NULL, 0, LIERE_TOK) != POSATTN_OK) {
        liere_data_free(d);
        return NULL;
    }
    liere_cached = d;
    return d;
}

/* The flops of computing the rotations of this shape: the kernel's rule (src/liere_generic.h) applied to the same
 * exponents, 2 b^3 per product, 4 + s + 2k products per block. b <= 3: one flop per stored entry. */
static double rot_flops(const liere_shape *s, const liere_data *d) {
    const int64_t b = s->block, nb = LIERE_DIM / b, tri = b * (b - 1) / 2;
    if (b <= 3) return (double)LIERE_TOK * (double)(s->n_gen * b * LIERE_DIM);
    double products = 0.0, *col = calloc((size_t)b, sizeof(double));
    for (int64_t t = 0; t < LIERE_TOK; ++t) {
        for (int64_t g = 0; g < s->n_gen; ++g) {
            for (int64_t j = 0; j < nb; ++j) {
                memset(col, 0, (size_t)b * sizeof(double));
                int64_t e = 0;
                for (int64_t r = 0; r < b; ++r) {
                    for (int64_t c = r + 1; c < b; ++c, ++e) {
                        double v = 0.0;
                        for (int64_t a = 0; a < LIERE_AXES; ++a) {
                            v += (double)d->pos[t * LIERE_AXES + a] *
                                 (double)d->gens[((g * LIERE_AXES + a) * nb + j) * tri + e];
                        }
                        col[c] += fabs(v), col[r] += fabs(v);
                    }
                }
                double norm = 0.0;
                for (int64_t c = 0; c < b; ++c) norm = fmax(norm, col[c]);
                int sq = 0;
                if (norm > 0.5) {
                    int ex;
                    frexp(norm, &ex);
                    sq = ex + 1;
                }
                products += 4 + sq + 2 * (sq <= 6 ? 1 : (sq <= 10 ? 2 : 3));
            }
        }
    }
    free(col);
    return products * 2.0 * (double)(b * b * b);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Cases                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

static void add_liere_case(const liere_shape *s, liere_op op, posattn_isa isa, const char *family,
                           const char *variant, double elements, double bytes) {
    if (liere_case_count == LIERE_MAX_CASES) return;
    pab_case *c = &liere_cases[liere_case_count];
    liere_impl *im = &liere_impls[liere_case_count];
    ++liere_case_count;
    im->shape = s, im->op = op, im->isa = isa;
    snprintf(c->name, sizeof c->name, "%s/%s/%s", family, variant, s ? s->name : "chains");
    c->elements = elements;
    c->bytes = bytes;
    c->threads = 1;
    c->wall_clock = 0;
    c->impl = im;
}

static double fma_flops(posattn_isa isa) {
    const double lanes = isa == POSATTN_ISA_AVX512 ? 16.0 * 16.0 : (isa == POSATTN_ISA_AVX2 ? 12.0 * 8.0 : 16.0 * 4.0);
    return (double)LIERE_FMA_ITERS * lanes * 2.0;
}

static void build_liere_cases(void) {
    if (liere_case_count) return;
    int fma_isas[POSATTN_ISA_COUNT], rot_isas[POSATTN_ISA_COUNT], apply_isas[POSATTN_ISA_COUNT];
    const int n_fma = pab_simd_isas(fma_isas);
    const int n_rot = pab_op_isas(POSATTN_OP_LIERE_ROTATIONS, rot_isas);
    const int n_apply = pab_op_isas(POSATTN_OP_LIERE_APPLY, apply_isas);
    for (int k = 0; k < n_fma; ++k) {
        const posattn_isa isa = (posattn_isa)fma_isas[k];
        add_liere_case(NULL, OP_FMA, isa, "roofline_fma", posattn_isa_name(isa), fma_flops(isa), 0.0);
    }
    for (size_t k = 0; k < LIERE_SHAPE_COUNT; ++k) {
        const liere_shape *s = &liere_shapes[k];
        /* Rotation flops depend on the data: filled in at prepare time (elements 0 until then). */
        const double rot_bytes = (double)LIERE_TOK * (double)(s->n_gen * s->block * LIERE_DIM) * sizeof(float);
        const double apply_flops = 2.0 * (double)s->block * 2.0 * LIERE_TOK * LIERE_HEADS * LIERE_DIM;
        for (int m = 0; m < n_rot; ++m) {
            const posattn_isa isa = (posattn_isa)rot_isas[m];
            add_liere_case(s, OP_ROT, isa, "liere_rot", posattn_isa_name(isa), 0.0, rot_bytes);
        }
        for (int m = 0; m < n_apply; ++m) {
            const posattn_isa isa = (posattn_isa)apply_isas[m];
            add_liere_case(s, OP_APPLY, isa, "liere_apply", posattn_isa_name(isa), apply_flops, apply_bytes(s));
        }
        for (int m = 0; m < n_apply; ++m) { /* the SIMD ones: the scalar backward pass is the forward one's code */
            const posattn_isa isa = (posattn_isa)apply_isas[m];
            if (isa == POSATTN_ISA_SCALAR) continue;
            add_liere_case(s, OP_APPLY_BACKWARD, isa, "liere_apply_backward", posattn_isa_name(isa), apply_flops,
                           apply_bytes(s));
        }
        add_liere_case(s, OP_MEMCPY, POSATTN_ISA_AUTO, "roofline_memcpy", "liere_apply", apply_bytes(s) / 8.0,
                       apply_bytes(s));
    }
}

static size_t liere_count(void) {
    build_liere_cases();
    return liere_case_count;
}

static const pab_case *liere_at(size_t i) {
    build_liere_cases();
    return i < liere_case_count ? &liere_cases[i] : NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Running                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct liere_ctx {
    const liere_impl *im;
    liere_data *d;
    float sink;
} liere_ctx;

static posattn_status liere_run_once(liere_ctx *x) {
    const liere_shape *s = x->im->shape;
    liere_data *d = x->d;
    switch (x->im->op) {
    case OP_FMA:
        switch (x->im->isa) {
#if PAB_HAVE_FMA_AVX512
        case POSATTN_ISA_AVX512: pab_fma_chains_avx512(LIERE_FMA_ITERS, &x->sink); break;
#endif
#if PAB_HAVE_FMA_AVX2
        case POSATTN_ISA_AVX2: pab_fma_chains_avx2(LIERE_FMA_ITERS, &x->sink); break;
#endif
#if PAB_HAVE_FMA_NEON
        case POSATTN_ISA_NEON: pab_fma_chains_neon(LIERE_FMA_ITERS, &x->sink); break;
#endif
        default: break;
        }
        return POSATTN_OK;
    case OP_MEMCPY: memcpy(d->copy_dst, d->copy_src, d->copy_bytes); return POSATTN_OK;
    case OP_ROT:
        return posattn_liere_rotations(LIERE_TOK, LIERE_AXES, d->pos, 0, s->n_gen, s->block, LIERE_DIM, d->gens, d->rot,
                                       0, d->scratch, d->scratch_floats, NULL, 0, LIERE_TOK);
    case OP_APPLY:
    case OP_APPLY_BACKWARD: {
        /* One direction every call: rotations keep norms, so q and k stay bounded (no drift to infinities or
         * subnormals over the iterations). */
        posattn_liere_options o = {0};
        if (x->im->op == OP_APPLY_BACKWARD) o.flags = POSATTN_LIERE_BACKWARD;
        return posattn_liere_apply(LIERE_TOK, LIERE_DIM, 0, LIERE_DIM, s->block, d->q, LIERE_HEADS, 0, 0, d->k,
                                   LIERE_HEADS, 0, 0, d->rot, 0, s->n_gen, d->scratch, d->scratch_floats, &o, 0,
                                   LIERE_TOK);
    }
    }
    return POSATTN_OK;
}

static void liere_run(void *ctx) { (void)liere_run_once(ctx); }

static void liere_finish(void *ctx) {
    if (!ctx) return;
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(ctx);
}

static const char *liere_prepare(const pab_case *c, void **ctx) {
    *ctx = NULL;
    const liere_impl *im = c->impl;
    if (im->isa != POSATTN_ISA_AUTO) {
        if (!posattn_isa_supported(im->isa)) {
            return posattn_isa_compiled(im->isa) ? "ISA not supported on this CPU"
                                                 : "ISA not supported on this CPU (not compiled into this build)";
        }
        if (im->op != OP_FMA && posattn_force_isa(im->isa) != POSATTN_OK) return "ISA not supported on this CPU";
    }
    if (im->op == OP_FMA) {
        const int built = (im->isa == POSATTN_ISA_AVX512 && PAB_HAVE_FMA_AVX512) ||
                          (im->isa == POSATTN_ISA_AVX2 && PAB_HAVE_FMA_AVX2) ||
                          (im->isa == POSATTN_ISA_NEON && PAB_HAVE_FMA_NEON);
        if (!built) return "FMA roofline for this ISA not built";
    }
    if (im->op == OP_ROT && im->isa == POSATTN_ISA_SCALAR && im->shape->block == 64 && im->shape->n_gen > 1) {
        return "skipped: about 80 GFLOP per call in scalar code (liere_rot/scalar/b64_shared times the same kernel)";
    }
    liere_ctx *x = calloc(1, sizeof *x);
    if (!x) return "out of memory";
    x->im = im;
    if (im->shape) {
        x->d = liere_data_get(im->shape);
        if (!x->d) {
            liere_finish(x);
            return "out of memory for the shape's buffers";
        }
        if (im->op == OP_ROT && c->elements == 0.0) {
            /* The flop count depends on the data (the number of squarings): fill it in once. The shim reads
             * c->elements after the timed loop. */
            ((pab_case *)c)->elements = rot_flops(im->shape, x->d);
        }
    }
    posattn_status st = liere_run_once(x); /* warm-up, untimed */
    if (st != POSATTN_OK) {
        liere_finish(x);
        return posattn_status_string(st);
    }
    *ctx = x;
    return NULL;
}

const pab_family_ops pab_liere_family = {liere_count, liere_at, liere_prepare, liere_run, liere_finish,
                                         liere_release_all};
