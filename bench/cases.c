/*
 * The benchmark bodies: shapes, their buffers, and one case per (family, variant, shape). See bench.h for the
 * naming grammar.
 *
 * Buffers. All cases on one shape share its buffers, kept in a one-slot cache (cases are registered shape by shape,
 * so each shape is allocated and filled once per run, outside any timed loop). Buffers are 64-byte aligned
 * (aligned_alloc) and touched when allocated, so no page fault is timed. A shape with rotate_bytes > 0 keeps
 * several copies ("sets") of every buffer and each call uses the next one, so that the working set of
 * consecutive calls exceeds the caches (the "_cold" shapes); the other shapes reuse one set ("hot": decode rows
 * that QK^T has just written are in cache; the large shapes exceed the caches anyway).
 *
 * Bytes counted per element (bench.h's pab_case.bytes): 8 for everything that reads S and writes P (the fused
 * softmax, the memcpy roofline, the SLEEF roofline, the peers' softmax on precomputed logits, the naive
 * multi-pass, whose bias tensor is internal scratch); 12 for the peers' bias+softmax (S and the materialised bias
 * read, P written); 4 for the external bias (written only).
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers, sysconf under -std=c11 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "peers.h"
#include "posattn.h"

#ifndef PAB_HAVE_SLEEF_AVX512
#define PAB_HAVE_SLEEF_AVX512 0
#endif
#ifndef PAB_HAVE_SLEEF_AVX2
#define PAB_HAVE_SLEEF_AVX2 0
#endif
#ifndef PAB_HAVE_SLEEF_NEON
#define PAB_HAVE_SLEEF_NEON 0
#endif
#ifndef PAB_HAVE_ONEDNN
#define PAB_HAVE_ONEDNN 0
#endif
#ifndef PAB_HAVE_XNNPACK
#define PAB_HAVE_XNNPACK 0
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* Shapes                                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct pab_shape {
    const char *name;
    int64_t heads, nq, nk;
    int causal;
    int irregular;       /* positions: cumulative sums of exponential gaps (mean 1), queries = the last nq keys */
    int decode;          /* also benchmark the external bias on it */
    size_t rotate_bytes; /* > 0: rotate over enough buffer sets to cover this many bytes of S and P */
} pab_shape;

enum { PAB_MIB = 1 << 20 };

static const pab_shape shapes[] = {
    {"decode_h32_nq1_nk512", 32, 1, 512, 0, 0, 1, 0},
    {"decode_h32_nq1_nk4096", 32, 1, 4096, 0, 0, 1, 0},
    {"decode_h32_nq1_nk4096_cold", 32, 1, 4096, 0, 0, 0, 256 * (size_t)PAB_MIB},
    {"decode_h32_nq1_nk32768", 32, 1, 32768, 0, 0, 1, 0},
    {"decode_h32_nq1_nk131072", 32, 1, 131072, 0, 0, 1, 0},
    {"prefill_h32_n1024", 32, 1024, 1024, 0, 0, 0, 0},
    {"prefill_h32_n1024_causal", 32, 1024, 1024, 1, 0, 0, 0},
    {"prefill_h8_n4096", 8, 4096, 4096, 0, 0, 0, 0},
    {"timeseries_h8_n2048", 8, 2048, 2048, 0, 1, 0, 0},
    {"decode_h32_nq1_nk16", 32, 1, 16, 0, 0, 1, 0}, /* the fixed cost of a row (issue 16: <= 20 ns) */
    /* Explicit sorted key positions against the default ones (issue 16: at most 1.1x) */
    {"decode_h32_nq1_nk32768_irregular", 32, 1, 32768, 0, 1, 1, 0},
    {"decode_h32_nq1_nk131072_irregular", 32, 1, 131072, 0, 1, 1, 0},
};
enum {
    PAB_SHAPE_COUNT = sizeof shapes / sizeof shapes[0],
    PAB_MT_SHAPE = 5,       /* prefill_h32_n1024 */
    PAB_GGML_MASK_SHAPE = 7 /* prefill_h8_n4096 */
};

/* ------------------------------------------------------------------------------------------------------------ */
/* The shape's buffers, one-slot cache                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct pab_data {
    const pab_shape *shape;
    int64_t rows;    /* heads * nq */
    size_t n;        /* rows * nk: elements of one set */
    size_t stride;   /* elements between sets (n rounded up to 16) */
    size_t sets;
    float scale;
    float *scores;   /* [sets][stride] */
    float *probs;    /* [sets][stride] */
    float *bias;     /* lazily: materialised bias with the causal mask as -inf, [sets][stride] */
    float *logits;   /* lazily: scale * S + bias, [sets][stride] */
    float *scratch;  /* lazily: the naive peer's bias tensor, one set */
    float *slopes;   /* [heads] */
    float *pos;      /* irregular shapes: [nk] positions, NULL otherwise */
    posattn_positions positions;
    const posattn_positions *positions_arg; /* NULL: the KV-cache default */
} pab_data;

static pab_data *cached;

static void *alloc64(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded); /* touch every page now */
    return p;
}

static void data_free(pab_data *d) {
    if (!d) return;
    free(d->scores);
    free(d->probs);
    free(d->bias);
    free(d->logits);
    free(d->scratch);
    free(d->slopes);
    free(d->pos);
    free(d);
}

void pab_release_all(void) {
    data_free(cached);
    cached = NULL;
}

/* xorshift64*: fixed seed, so every run sees the same data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform01(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53;
}

static pab_data *data_get(const pab_shape *s) {
    if (cached && cached->shape == s) return cached;
    pab_release_all();
    pab_data *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->shape = s;
    d->rows = s->heads * s->nq;
    d->n = (size_t)(d->rows * s->nk);
    d->stride = (d->n + 15) / 16 * 16;
    d->sets = 1;
    if (s->rotate_bytes) {
        size_t set_bytes = 2 * d->n * sizeof(float);
        d->sets = (s->rotate_bytes + set_bytes - 1) / set_bytes;
    }
    d->scale = 1.0f / sqrtf(128.0f);
    d->scores = alloc64(d->sets * d->stride * sizeof(float));
    d->probs = alloc64(d->sets * d->stride * sizeof(float));
    d->slopes = alloc64((size_t)s->heads * sizeof(float));
    if (!d->scores || !d->probs || !d->slopes) {
        data_free(d);
        return NULL;
    }
    rng_state = 0x9e3779b97f4a7c15ull;
    /* Raw scores q.k for head_dim 128 and unit-variance entries have a standard deviation near sqrt(128); uniform
     * on [-16, 16] after the 1/sqrt(128) scale gives logits of standard deviation about 0.8. */
    for (size_t i = 0; i < d->sets * d->stride; ++i) d->scores[i] = (float)(32.0 * uniform01() - 16.0);
    posattn_alibi_slopes(s->heads, 8.0f, d->slopes);
    if (s->irregular) {
        d->pos = alloc64((size_t)s->nk * sizeof(float));
        if (!d->pos) {
            data_free(d);
            return NULL;
        }
        double t = 0.0;
        for (int64_t j = 0; j < s->nk; ++j) {
            t += -log(1.0 - uniform01()); /* exponential gap, mean 1 */
            d->pos[j] = (float)t;
        }
        d->positions.q = d->pos + (s->nk - s->nq);
        d->positions.k = d->pos;
        d->positions_arg = &d->positions;
    }
    cached = d;
    return d;
}

#if PAB_HAVE_ONEDNN || PAB_HAVE_XNNPACK
/* The materialised bias (with -inf where the causal mask excludes) and the logits scale*S + bias, built with the
 * library, untimed: what the peers are given. */
static int data_need_bias(pab_data *d) {
    if (d->bias) return 1;
    const pab_shape *s = d->shape;
    d->bias = alloc64(d->sets * d->stride * sizeof(float));
    if (!d->bias) return 0;
    for (size_t set = 0; set < d->sets; ++set) {
        float *b = d->bias + set * d->stride;
        if (posattn_alibi_bias(s->heads, s->nq, s->nk, d->slopes, d->positions_arg, b, 0, 0, 0, d->rows)) return 0;
        if (s->causal) {
            for (int64_t r = 0; r < d->rows; ++r) {
                int64_t i = r % s->nq;
                for (int64_t j = i + s->nk - s->nq + 1; j < s->nk; ++j) b[r * s->nk + j] = -INFINITY;
            }
        }
    }
    return 1;
}

static int data_need_logits(pab_data *d) {
    if (d->logits) return 1;
    if (!data_need_bias(d)) return 0;
    d->logits = alloc64(d->sets * d->stride * sizeof(float));
    if (!d->logits) return 0;
    pab_add_bias(d->scores, d->bias, d->scale, d->logits, d->sets * d->stride);
    return 1;
}
#endif

static int data_need_scratch(pab_data *d) {
    if (!d->scratch) d->scratch = alloc64(d->stride * sizeof(float));
    return d->scratch != NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Cases                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum pab_family {
    PAB_SOFTMAX,        /* posattn_alibi_softmax, ISA forced */
    PAB_BIAS,           /* posattn_alibi_bias, ISA forced */
    PAB_MEMCPY,         /* roofline: memcpy of each row S -> P */
    PAB_SLEEF,          /* roofline: SLEEF vector expf S -> P */
    PAB_ONEDNN,         /* oneDNN softmax on precomputed logits */
    PAB_ONEDNN_BIAS,    /* scale*S + B, then oneDNN softmax in place */
    PAB_XNNPACK,        /* XNNPACK softmax on precomputed logits */
    PAB_XNNPACK_BIAS,   /* scale*S + B, then XNNPACK softmax in place */
    PAB_NAIVE,          /* plain multi-pass C */
    PAB_MT,             /* posattn_alibi_softmax, rows split over threads */
    PAB_GGML_MASK       /* posattn_alibi_softmax as ggml calls it: ALiBi from a mask -|i - j| shared by the heads */
} pab_family;

typedef struct pab_impl {
    pab_family family;
    posattn_isa isa; /* PAB_SOFTMAX, PAB_BIAS, PAB_SLEEF, PAB_MT (AUTO: the best supported) */
    const pab_shape *shape;
    int threads;
} pab_impl;

enum { PAB_MAX_CASES = 512 };
static pab_case cases[PAB_MAX_CASES];
static pab_impl impls[PAB_MAX_CASES];
static size_t case_count;
static int cases_built;

static void add_case(pab_family family, posattn_isa isa, const pab_shape *s, int threads, const char *fam_name,
                     const char *variant, double bytes_per_element) {
    if (case_count == PAB_MAX_CASES) return;
    pab_case *c = &cases[case_count];
    pab_impl *im = &impls[case_count];
    ++case_count;
    im->family = family;
    im->isa = isa;
    im->shape = s;
    im->threads = threads;
    if (threads > 0) {
        snprintf(c->name, sizeof c->name, "%s/%s/%s/threads:%d", fam_name, variant, s->name, threads);
    } else {
        snprintf(c->name, sizeof c->name, "%s/%s/%s", fam_name, variant, s->name);
    }
    c->elements = (double)s->heads * (double)s->nq * (double)s->nk;
    c->bytes = c->elements * bytes_per_element;
    c->threads = threads > 0 ? threads : 1;
    c->wall_clock = family == PAB_MT;
    c->impl = im;
}

static int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

static void build_cases(void) {
    if (cases_built) return;
    cases_built = 1;
    /* The best ISA, named without resolving POSATTN_ISA from the environment differently from the dispatcher. */
    posattn_isa best = POSATTN_ISA_SCALAR;
    int softmax_isas[POSATTN_ISA_COUNT], bias_isas[POSATTN_ISA_COUNT], simd_isas[POSATTN_ISA_COUNT];
    const int n_softmax = pab_op_isas(POSATTN_OP_ALIBI_SOFTMAX, softmax_isas);
    const int n_bias = pab_op_isas(POSATTN_OP_ALIBI_BIAS, bias_isas);
    const int n_simd = pab_simd_isas(simd_isas);
    for (int k = 0; k < n_softmax; ++k) {
        if (posattn_isa_supported((posattn_isa)softmax_isas[k])) best = (posattn_isa)softmax_isas[k];
    }
    for (size_t k = 0; k < PAB_SHAPE_COUNT; ++k) {
        const pab_shape *s = &shapes[k];
        /* One case per ISA of the registry, supported here or not (unsupported ones are skipped at run time). */
        for (int k = 0; k < n_softmax; ++k) {
            const posattn_isa isa = (posattn_isa)softmax_isas[k];
            add_case(PAB_SOFTMAX, isa, s, 0, "alibi_softmax", posattn_isa_name(isa), 8);
        }
        if (s->decode) {
            for (int k = 0; k < n_bias; ++k) {
                const posattn_isa isa = (posattn_isa)bias_isas[k];
                add_case(PAB_BIAS, isa, s, 0, "alibi_bias", posattn_isa_name(isa), 4);
            }
        }
        add_case(PAB_MEMCPY, POSATTN_ISA_AUTO, s, 0, "roofline_memcpy", "rows", 8);
        for (int k = 0; k < n_simd; ++k) {
            const posattn_isa isa = (posattn_isa)simd_isas[k];
            add_case(PAB_SLEEF, isa, s, 0, "roofline_sleef_expf", posattn_isa_name(isa), 8);
        }
        add_case(PAB_ONEDNN, POSATTN_ISA_AUTO, s, 0, "peer_onednn", "softmax", 8);
        add_case(PAB_ONEDNN_BIAS, POSATTN_ISA_AUTO, s, 0, "peer_onednn", "bias+softmax", 12);
        add_case(PAB_XNNPACK, POSATTN_ISA_AUTO, s, 0, "peer_xnnpack", "softmax", 8);
        add_case(PAB_XNNPACK_BIAS, POSATTN_ISA_AUTO, s, 0, "peer_xnnpack", "bias+softmax", 12);
        add_case(PAB_NAIVE, POSATTN_ISA_AUTO, s, 0, "peer_naive", "multipass", 8);
        if (k == PAB_MT_SHAPE) {
            /* Scaling over 1..N threads: the best ISA (memory-bound past the caches) and the scalar reference
             * (compute-bound), so both regimes show. */
            const posattn_isa mt_isas[] = {best, POSATTN_ISA_SCALAR};
            for (size_t i = 0; i < (best == POSATTN_ISA_SCALAR ? 1u : 2u); ++i) {
                for (int t = 1; t <= cpu_count(); ++t) {
                    add_case(PAB_MT, mt_isas[i], s, t, "mt_alibi_softmax", posattn_isa_name(mt_isas[i]), 8);
                }
            }
        }
        if (k == PAB_GGML_MASK_SHAPE) {
            /* ggml's call (issue 16: at most 1.15x the positions-in-kernel call on the same shape, best ISA) */
            add_case(PAB_GGML_MASK, best, s, 0, "alibi_softmax_ggml_mask", posattn_isa_name(best), 8);
        }
    }
}

size_t pab_case_count(void) {
    build_cases();
    return case_count;
}

const pab_case *pab_case_at(size_t i) {
    build_cases();
    return i < case_count ? &cases[i] : NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A fixed pool of worker threads for the multi-core family                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

struct pab_ctx;
typedef struct pab_pool {
    int threads;
    pthread_t tid[64];
    pthread_barrier_t start, done;
    int stop;
    struct pab_ctx *ctx;
    int status; /* first non-OK status of the last call */
} pab_pool;

typedef struct pab_worker {
    pab_pool *pool;
    int index;
} pab_worker;

/* ------------------------------------------------------------------------------------------------------------ */
/* Preparing and running a case                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

typedef void (*pab_sleef_fn)(const float *, float *, size_t, float);

typedef struct pab_ctx {
    const pab_impl *im;
    pab_data *d;
    size_t next_set;
    posattn_softmax_options options;
    pab_sleef_fn sleef;
    pab_onednn *onednn;
    pab_xnnpack *xnnpack;
    pab_pool *pool;
    pab_worker workers[64];
    float *mask; /* PAB_GGML_MASK: [nq][nk] */
} pab_ctx;

static posattn_status softmax_rows(pab_ctx *x, size_t set, int64_t row_begin, int64_t row_end) {
    const pab_data *d = x->d;
    const pab_shape *s = d->shape;
    return posattn_alibi_softmax(s->heads, s->nq, s->nk, d->scores + set * d->stride, 0, 0,
                                 d->probs + set * d->stride, 0, 0, d->scale, d->slopes, d->positions_arg,
                                 &x->options, row_begin, row_end);
}

static void *worker_main(void *arg) {
    pab_worker *w = arg;
    pab_pool *pool = w->pool;
    for (;;) {
        pthread_barrier_wait(&pool->start);
        if (pool->stop) break;
        const int64_t rows = pool->ctx->d->rows;
        const int64_t begin = rows * w->index / pool->threads, end = rows * (w->index + 1) / pool->threads;
        posattn_status st = softmax_rows(pool->ctx, 0, begin, end);
        if (st) pool->status = (int)st;
        pthread_barrier_wait(&pool->done);
    }
    return NULL;
}

static void pool_destroy(pab_pool *pool) {
    if (!pool) return;
    pool->stop = 1;
    pthread_barrier_wait(&pool->start);
    for (int t = 1; t < pool->threads; ++t) pthread_join(pool->tid[t], NULL);
    pthread_barrier_destroy(&pool->start);
    pthread_barrier_destroy(&pool->done);
    free(pool);
}

static pab_pool *pool_create(pab_ctx *x, int threads) {
    pab_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pool->ctx = x;
    pthread_barrier_init(&pool->start, NULL, (unsigned)threads);
    pthread_barrier_init(&pool->done, NULL, (unsigned)threads);
    for (int t = 1; t < threads; ++t) {
        x->workers[t].pool = pool;
        x->workers[t].index = t;
        if (pthread_create(&pool->tid[t], NULL, worker_main, &x->workers[t])) {
            /* Workers already started wait on the barrier: nothing sensible to unwind in a benchmark. */
            fprintf(stderr, "posattn_bench: pthread_create failed for thread %d\n", t);
            exit(1);
        }
    }
    return pool;
}

static posattn_status pool_run(pab_pool *pool) {
    pool->status = 0;
    pthread_barrier_wait(&pool->start);
    const int64_t rows = pool->ctx->d->rows;
    posattn_status st = softmax_rows(pool->ctx, 0, 0, rows / pool->threads);
    pthread_barrier_wait(&pool->done);
    return st ? st : (posattn_status)pool->status;
}

/* One call; returns a posattn status for the library families, 0 otherwise. */
static posattn_status run_once(pab_ctx *x) {
    pab_data *d = x->d;
    const pab_shape *s = d->shape;
    const size_t set = x->next_set;
    x->next_set = set + 1 == d->sets ? 0 : set + 1;
    const float *scores = d->scores + set * d->stride;
    float *probs = d->probs + set * d->stride;
    switch (x->im->family) {
    case PAB_SOFTMAX:
    case PAB_GGML_MASK: return softmax_rows(x, set, 0, d->rows);
    case PAB_BIAS:
        return posattn_alibi_bias(s->heads, s->nq, s->nk, d->slopes, d->positions_arg, probs, 0, 0, 0, d->rows);
    case PAB_MEMCPY:
        for (int64_t r = 0; r < d->rows; ++r) {
            memcpy(probs + r * s->nk, scores + r * s->nk, (size_t)s->nk * sizeof(float));
        }
        return POSATTN_OK;
    case PAB_SLEEF:
        for (int64_t r = 0; r < d->rows; ++r) x->sleef(scores + r * s->nk, probs + r * s->nk, (size_t)s->nk, d->scale);
        return POSATTN_OK;
#if PAB_HAVE_ONEDNN
    case PAB_ONEDNN: pab_onednn_softmax(x->onednn, d->logits + set * d->stride, probs); return POSATTN_OK;
    case PAB_ONEDNN_BIAS:
        pab_add_bias(scores, d->bias + set * d->stride, d->scale, probs, d->n);
        pab_onednn_softmax(x->onednn, probs, probs);
        return POSATTN_OK;
#endif
#if PAB_HAVE_XNNPACK
    case PAB_XNNPACK: pab_xnnpack_softmax(x->xnnpack, d->logits + set * d->stride, probs); return POSATTN_OK;
    case PAB_XNNPACK_BIAS:
        pab_add_bias(scores, d->bias + set * d->stride, d->scale, probs, d->n);
        pab_xnnpack_softmax(x->xnnpack, probs, probs);
        return POSATTN_OK;
#endif
    case PAB_NAIVE: {
        pab_naive_args a = {s->heads, s->nq, s->nk, scores, probs, d->scratch, d->scale, d->slopes,
                            d->pos ? d->pos + (s->nk - s->nq) : NULL, d->pos, s->causal};
        pab_naive_multipass(&a);
        return POSATTN_OK;
    }
    case PAB_MT: return pool_run(x->pool);
    default: return POSATTN_OK; /* peers not built: prepare skipped them */
    }
}

void pab_run(void *ctx) { (void)run_once(ctx); }

/* After the warm-up call: the output of three rows against a float64 softmax of the same logits, so that every
 * family on the table computes the same thing (a peer fed the wrong logits, or an in-place call gone wrong, would
 * show here rather than as a flattering time). Tolerance 1e-3 relative + 1e-6 absolute: loose enough for float
 * sums over 2^17 keys, far tighter than any real mistake. Returns NULL or a message. */
static const char *check_output(const pab_ctx *x, size_t set) {
    switch (x->im->family) {
    case PAB_SOFTMAX:
    case PAB_GGML_MASK:
    case PAB_ONEDNN:
    case PAB_ONEDNN_BIAS:
    case PAB_XNNPACK:
    case PAB_XNNPACK_BIAS:
    case PAB_NAIVE:
    case PAB_MT: break;
    default: return NULL;
    }
    const pab_data *d = x->d;
    const pab_shape *s = d->shape;
    const int64_t check_rows[3] = {0, d->rows / 2, d->rows - 1};
    double *ref = malloc((size_t)s->nk * sizeof(double));
    if (!ref) return "out of memory";
    const char *why = NULL;
    for (int k = 0; k < 3 && !why; ++k) {
        const int64_t r = check_rows[k], h = r / s->nq, i = r % s->nq;
        const float *sc = d->scores + set * d->stride + r * s->nk;
        const float *p = d->probs + set * d->stride + r * s->nk;
        const double qp = d->pos ? d->pos[s->nk - s->nq + i] : (double)(s->nk - s->nq + i);
        const int64_t last = s->causal ? i + s->nk - s->nq : s->nk - 1;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j <= last; ++j) {
            const double kp = d->pos ? d->pos[j] : (double)j;
            ref[j] = (double)d->scale * sc[j] - (double)d->slopes[h] * fabs(qp - kp);
            mx = ref[j] > mx ? ref[j] : mx;
        }
        for (int64_t j = 0; j <= last; ++j) sum += exp(ref[j] - mx);
        for (int64_t j = 0; j < s->nk && !why; ++j) {
            const double want = j <= last ? exp(ref[j] - mx) / sum : 0.0;
            if (!(fabs(p[j] - want) <= 1e-3 * want + 1e-6)) why = "output differs from a float64 reference softmax";
        }
    }
    free(ref);
    return why;
}

static const char *const isa_unsupported = "ISA not supported on this CPU";

static const char *prepare_family(pab_ctx *x) {
    const pab_impl *im = x->im;
    pab_data *d = x->d;
    switch (im->family) {
    case PAB_SOFTMAX:
    case PAB_BIAS:
    case PAB_MT:
        if (!posattn_isa_supported(im->isa)) {
            return posattn_isa_compiled(im->isa) ? isa_unsupported
                                                 : "ISA not supported on this CPU (not compiled into this build)";
        }
        if (posattn_force_isa(im->isa) != POSATTN_OK) return isa_unsupported;
        if (im->shape->causal) x->options.flags = POSATTN_CAUSAL;
        if (im->family == PAB_MT && !(x->pool = pool_create(x, im->threads))) return "could not start the threads";
        return NULL;
    case PAB_GGML_MASK: {
        /* llama.cpp's ALiBi: the mask holds -|p_i - p_j| (here the default positions), soft_max_ext multiplies
         * it by the head's slope; one mask for all heads. The same logits as positions in the kernel. */
        if (posattn_force_isa(im->isa) != POSATTN_OK) return isa_unsupported;
        const pab_shape *s = im->shape;
        if (!(x->mask = alloc64((size_t)(s->nq * s->nk) * sizeof(float)))) return "out of memory";
        for (int64_t i = 0; i < s->nq; ++i) {
            const int64_t q = s->nk - s->nq + i;
            for (int64_t j = 0; j < s->nk; ++j) x->mask[i * s->nk + j] = -(float)(q > j ? q - j : j - q);
        }
        x->options.flags = POSATTN_MASK_TIMES_SLOPE | (s->causal ? POSATTN_CAUSAL : 0u);
        x->options.mask = x->mask;
        x->options.mask_type = POSATTN_MASK_F32;
        return NULL;
    }
    case PAB_MEMCPY: return NULL;
    case PAB_SLEEF:
        if (!posattn_isa_supported(im->isa)) return isa_unsupported;
        switch (im->isa) {
#if PAB_HAVE_SLEEF_AVX512
        case POSATTN_ISA_AVX512: x->sleef = pab_sleef_expf_avx512; break;
#endif
#if PAB_HAVE_SLEEF_AVX2
        case POSATTN_ISA_AVX2: x->sleef = pab_sleef_expf_avx2; break;
#endif
#if PAB_HAVE_SLEEF_NEON
        case POSATTN_ISA_NEON: x->sleef = pab_sleef_expf_advsimd; break;
#endif
        default: return "SLEEF roofline for this ISA not built (compiler or sleef.h lacks it)";
        }
        return NULL;
    case PAB_ONEDNN:
    case PAB_ONEDNN_BIAS:
#if PAB_HAVE_ONEDNN
        if (!(im->family == PAB_ONEDNN ? data_need_logits(d) : data_need_bias(d))) return "out of memory";
        return pab_onednn_create(d->rows, im->shape->nk, &x->onednn);
#else
        return "oneDNN not found at build time (libdnnl-dev)";
#endif
    case PAB_XNNPACK:
    case PAB_XNNPACK_BIAS:
#if PAB_HAVE_XNNPACK
        if (!(im->family == PAB_XNNPACK ? data_need_logits(d) : data_need_bias(d))) return "out of memory";
        return pab_xnnpack_create(d->rows, im->shape->nk, &x->xnnpack);
#else
        return "XNNPACK not found at build time (libxnnpack-dev, libpthreadpool-dev)";
#endif
    case PAB_NAIVE: return data_need_scratch(d) ? NULL : "out of memory";
    }
    return "unknown family";
}

void pab_finish(void *ctx) {
    pab_ctx *x = ctx;
    if (!x) return;
    pool_destroy(x->pool);
#if PAB_HAVE_ONEDNN
    pab_onednn_destroy(x->onednn);
#endif
#if PAB_HAVE_XNNPACK
    pab_xnnpack_destroy(x->xnnpack);
#endif
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(x->mask);
    free(x);
}

const char *pab_prepare(const pab_case *c, void **ctx) {
    *ctx = NULL;
    pab_ctx *x = calloc(1, sizeof *x);
    if (!x) return "out of memory";
    x->im = c->impl;
    x->d = data_get(x->im->shape);
    if (!x->d) {
        free(x);
        return "out of memory for the shape's buffers";
    }
    const char *why = prepare_family(x);
    if (!why) {
        const size_t set = x->next_set;
        posattn_status st = run_once(x); /* warm-up, untimed */
        why = st != POSATTN_OK ? posattn_status_string(st) : check_output(x, set);
    }
    if (why) {
        pab_finish(x);
        return why;
    }
    *ctx = x;
    return NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Context for the JSON output                                                                                    */
/* ------------------------------------------------------------------------------------------------------------ */

static void cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10) || !strncmp(line, "CPU part", 8)) {
            char *v = strchr(line, ':');
            if (v) {
                v += 1 + (v[1] == ' ');
                v[strcspn(v, "\n")] = '\0';
                snprintf(buf, size, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

/* The data and unified caches as "L1d:<bytes>:<cpus sharing> L2:... source:<where>", for the report's CPU line.
 * Google Benchmark's own "caches" context comes from /sys/devices/system/cpu/cpu0/cache only and is empty where a
 * hypervisor or container hides that directory; glibc's sysconf (cpuid on x86) still answers there, without the
 * sharing count. */
static void cpu_caches(char *buf, size_t size) {
    buf[0] = '\0';
    size_t used = 0;
    for (int index = 0; index < 8; ++index) {
        char path[96], level[16] = "", type[32] = "", bytes[32] = "", shared[256] = "";
        const char *fields[] = {"level", "type", "size", "shared_cpu_list"};
        char *values[] = {level, type, bytes, shared};
        const size_t sizes[] = {sizeof level, sizeof type, sizeof bytes, sizeof shared};
        for (int k = 0; k < 4; ++k) {
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/%s", index, fields[k]);
            FILE *f = fopen(path, "r");
            if (!f) break;
            if (!fgets(values[k], (int)sizes[k], f)) values[k][0] = '\0';
            values[k][strcspn(values[k], "\n")] = '\0';
            fclose(f);
        }
        if (!level[0] || !bytes[0] || !strcmp(type, "Instruction")) continue;
        char *unit = NULL;
        long long n = strtoll(bytes, &unit, 10);
        if (unit && (*unit == 'K' || *unit == 'k')) n *= 1024;
        if (unit && (*unit == 'M' || *unit == 'm')) n *= 1024 * 1024;
        /* shared_cpu_list is "0-1" or "0,2,4": count the CPUs it names. */
        int sharing = 0;
        for (char *p = shared; *p;) {
            char *end = NULL;
            const long lo = strtol(p, &end, 10);
            long hi = lo;
            if (end == p) break;
            if (*end == '-') hi = strtol(end + 1, &end, 10);
            sharing += (int)(hi - lo + 1);
            p = *end == ',' ? end + 1 : end;
        }
        used += (size_t)snprintf(buf + used, size - used, "%sL%s%s:%lld:%d", used ? " " : "",
                                 level, !strcmp(type, "Data") ? "d" : "", n, sharing ? sharing : 1);
        if (used >= size) break;
    }
    if (used) {
        if (used < size) snprintf(buf + used, size - used, " source:sysfs");
        return;
    }
    const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    snprintf(buf, size, "L1d:%ld:0 L2:%ld:0 L3:%ld:0 source:sysconf", l1 > 0 ? l1 : 0, l2 > 0 ? l2 : 0,
             l3 > 0 ? l3 : 0);
}

/* The ISA each operation runs on with the ISA chosen automatically ("alibi_softmax:avx512 rope:avx2 ..."), so the
 * report compares the dispatched kernel, not merely the best ISA, with the others. */
static void dispatched_isas(char *buf, size_t size) {
    buf[0] = '\0';
    posattn_force_isa(POSATTN_ISA_AUTO);
    size_t used = 0;
    for (int op = 0; op < POSATTN_OP_COUNT && used < size; ++op) {
        used += (size_t)snprintf(buf + used, size - used, "%s%s:%s", op ? " " : "", posattn_op_name((posattn_op)op),
                                 posattn_isa_name(posattn_op_isa((posattn_op)op, POSATTN_ISA_AUTO)));
    }
}

static int listed_least_capable_first(int *isas) {
    posattn_isa listed[POSATTN_ISA_COUNT];
    const int n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    for (int k = 0; k < n; ++k) isas[k] = (int)listed[n - 1 - k];
    return n;
}

int pab_op_isas(int op, int *isas) {
    int all[POSATTN_ISA_COUNT], n = 0;
    const int listed = listed_least_capable_first(all);
    for (int k = 0; k < listed; ++k) {
        if (posattn_op_isa((posattn_op)op, (posattn_isa)all[k]) == (posattn_isa)all[k]) isas[n++] = all[k];
    }
    return n;
}

int pab_simd_isas(int *isas) {
    int all[POSATTN_ISA_COUNT], n = 0;
    const int listed = listed_least_capable_first(all);
    for (int k = 0; k < listed; ++k) {
        if (all[k] != POSATTN_ISA_SCALAR) isas[n++] = all[k];
    }
    return n;
}

int pab_context(size_t i, const char **key, char *value, size_t size) {
    switch (i) {
    case 0: {
        *key = "posattn_isas";
        value[0] = '\0';
        posattn_isa listed[POSATTN_ISA_COUNT];
        const int n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
        for (int k = 0; k < n; ++k) {
            const char *state = posattn_isa_supported(listed[k]) ? "supported" : "compiled";
            size_t used = strlen(value);
            snprintf(value + used, size - used, "%s%s:%s", k ? " " : "", posattn_isa_name(listed[k]), state);
        }
        return 1;
    }
    case 1:
        *key = "posattn_best_isa";
        posattn_force_isa(POSATTN_ISA_AUTO);
        snprintf(value, size, "%s", posattn_isa_name(posattn_active_isa()));
        return 1;
    case 2: *key = "cpu_model"; cpu_model(value, size); return 1;
    case 3:
        *key = "onednn";
#if PAB_HAVE_ONEDNN
        pab_onednn_describe(value, size);
#else
        snprintf(value, size, "not built");
#endif
        return 1;
    case 4:
        *key = "xnnpack";
#if PAB_HAVE_XNNPACK
        snprintf(value, size, "built");
#else
        snprintf(value, size, "not built");
#endif
        return 1;
    case 5:
        *key = "sleef_rooflines";
        snprintf(value, size, "%s%s%s", PAB_HAVE_SLEEF_AVX512 ? "avx512 " : "", PAB_HAVE_SLEEF_AVX2 ? "avx2 " : "",
                 PAB_HAVE_SLEEF_NEON ? "neon" : "");
        return 1;
    case 6: *key = "online_cpus"; snprintf(value, size, "%d", cpu_count()); return 1;
    case 7: *key = "cpu_caches"; cpu_caches(value, size); return 1;
    case 8: *key = "posattn_dispatch"; dispatched_isas(value, size); return 1;
    default: return 0;
    }
}
