/*
 * Benchmarks of the fused attention over a KV cache (SPEC 9, issue 12), registered by the shim through
 * pab_attention_family (bench.h).
 *
 * Shapes: head size 128 for q, k and v, scale 1/sqrt(128), slopes posattn_alibi_slopes(H, 8), the KV-cache default
 * positions; K and V in f16 or f32 (the name says which).
 *   decode_h<H>_kv<Hkv>_d128_<f16|f32>_nk<nk>_<tok|head>   one query (nq = 1) per head over nk keys; H = Hkv = 32
 *       (MHA), H = 32 over Hkv = 8 (GQA) and H = Hkv = 8 (the MHA call GQA is measured against: the same K and V
 *       bytes, a quarter of the query heads); nk = 4096, 32768, 131072; tok: token-major K and V [nk][Hkv][128]
 *       (llama.cpp's cache), head: head-major [Hkv][nk][128]. The two layouts of one shape share one buffer.
 *   prefill_h32_d128_<f16|f32>_n1024_causal   nq = nk = 1024, H = Hkv = 32, causal, token-major.
 * Names:
 *   attention/<isa>/<shape>                posattn_attention over all rows, ISA forced (one row per ISA with its own
 *                                          attention kernel in the registry); scalar skipped above nk = 32768
 *   mt_attention/<isa>/<decode shape nk32768, f16, tok>/threads:<1|2>   split-KV: each thread runs
 *                                          posattn_attention_partial over its share of the keys, then the calling
 *                                          thread runs posattn_attention_merge; wall-clock time (1 thread: the same
 *                                          partial + merge over all keys, so the ratio is the scaling alone)
 *   roofline_read/<isa|plain>/decode_kv<Hkv>_d128_<f16|f32>_nk<nk>   a read-only vector sum over the same K + V
 *                                          bytes (bench/roofline_read_*.c, one translation unit per ISA); shared by
 *                                          the shapes with the same K and V (both layouts, H = 32 and 8)
 *   peer_onednn/attention_unfused/<shape without _tok>   the unfused path of an engine without fused attention:
 *                                          S = Q K^T with oneDNN's matmul, posattn_alibi_softmax on S (bias, causal,
 *                                          softmax, in place), O = P V with oneDNN's matmul; f32 throughout: the
 *                                          f16 K and V are converted to f32 head-major copies beforehand, untimed,
 *                                          so the peer reads twice the bytes posattn reads. Decode nk = 32768 (MHA
 *                                          and GQA) and prefill, f16 shapes.
 *   far_field/<isa>/decode_h32_kv32_d128_f16_nk<nk>_tok[_varied]/<skip:on|skip:off|summary_update:1token>
 *                                          far-field skipping (issue 15): unit-variance q, k and v (uniform,
 *                                          f16-exact), the same call with posattn_attention_far_field (summaries made
 *                                          untimed) and with posattn_attention; the counter kv_read_fraction is the
 *                                          fraction of the K/V bytes the skipping call read; summary_update:
 *                                          posattn_kv_summary_update for one appended token. nk 4096 to 131072 on
 *                                          every SIMD ISA, 262144 and 524288 on the most capable one; _varied: keys
 *                                          of varied norms with outlier channels (attn_varied_key), nk 32768, 131072.
 * The FMA peak the prefill is compared with is roofline_fma/<isa>/chains (bench/liere.c), in the same run.
 * Counters: elements = the valid logits of a call (H * nq * nk for decode, H * n(n+1)/2 for causal prefill; the
 * report counts 4 * 128 flops per valid logit for the prefill's fraction of the FMA peak); bytes = the K + V bytes
 * read (for the peer: its f32 copies; for the read roofline: the same K + V bytes).
 * Every attention, split-KV and peer case is checked after its untimed warm-up call against a float64 attention of
 * the same inputs on a few rows, so a wrong result cannot pass as a fast one.
 * Targets (AVX-512, ratios within one run; scripts/bench_report.py marks them): decode f16 nk32768 Hkv=32 tok within
 * 1/0.85 of its read roofline; GQA h32_kv8 <= 1.2 x h8_kv8; prefill >= 50% of the FMA peak; the peer >= 3 x posattn
 * on decode nk32768; 2 threads >= 1.8 x 1 thread; AVX2 within 1.6 x AVX-512.
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers under -std=c11 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "peers.h"
#include "posattn.h"

#ifndef PAB_HAVE_ONEDNN
#define PAB_HAVE_ONEDNN 0
#endif
#ifndef PAB_HAVE_READ_AVX512
#define PAB_HAVE_READ_AVX512 0
#endif
#ifndef PAB_HAVE_READ_AVX2
#define PAB_HAVE_READ_AVX2 0
#endif
#ifndef PAB_HAVE_READ_NEON
#define PAB_HAVE_READ_NEON 0
#endif

enum {
    ATTN_DIM = 128,
    ATTN_PREFILL_N = 1024,
    ATTN_MT_NK = 32768,
    ATTN_PEER_NK = 32768,
    /* Scalar decode above this many keys takes seconds a call; the smaller shapes time the same kernel. */
    ATTN_SCALAR_MAX_NK = 32768,
    ATTN_MAX_THREADS = 2
};

typedef enum attn_kind { ATTN_FUSED, ATTN_SPLIT, ATTN_READ, ATTN_PEER, ATTN_FAR } attn_kind;

typedef struct attn_impl {
    attn_kind kind;
    posattn_isa isa; /* FUSED, SPLIT: forced; READ: the roofline's ISA, POSATTN_ISA_SCALAR for the plain C one */
    int64_t heads, kv_heads, nq, nk;
    posattn_kv_type type;
    int head_major;
    int causal;
    int threads;
    int skip; /* ATTN_FAR: 1 posattn_attention_far_field, 0 posattn_attention on the same unit-variance data; 2 one
               * appended token's posattn_kv_summary_update (the engine's cost per token) */
    int varied; /* ATTN_FAR: keys whose norms vary across tokens, with outlier channels (attn_varied_key) */
} attn_impl;

enum { ATTN_MAX_CASES = 512 };
static pab_case attn_cases[ATTN_MAX_CASES];
static attn_impl attn_impls[ATTN_MAX_CASES];
static size_t attn_case_count;

static size_t kv_elem_size(posattn_kv_type type) { return type == POSATTN_KV_F32 ? 4 : 2; }
static const char *kv_type_name(posattn_kv_type type) { return type == POSATTN_KV_F32 ? "f32" : "f16"; }

/* K + V bytes of a shape: what one call must read at least. */
static double kv_bytes(int64_t kv_heads, int64_t nk, posattn_kv_type type) {
    return 2.0 * (double)nk * (double)kv_heads * ATTN_DIM * (double)kv_elem_size(type);
}

static double valid_logits(const attn_impl *im) {
    if (!im->causal) return (double)im->heads * (double)im->nq * (double)im->nk;
    double pairs = 0.0; /* bottom-right causal: query i sees keys 0 .. i + nk - nq */
    for (int64_t i = 0; i < im->nq; ++i) pairs += (double)(i + im->nk - im->nq + 1);
    return (double)im->heads * pairs;
}

/* The shape part of a name: decode_h32_kv8_d128_f16_nk32768_tok, prefill_h32_d128_f32_n1024_causal; with_layout 0
 * drops the layout suffix (the peer, which uses its own copies). */
static void shape_name(const attn_impl *im, int with_layout, char *buf, size_t size) {
    if (im->causal) {
        snprintf(buf, size, "prefill_h%lld_d%d_%s_n%lld_causal", (long long)im->heads, ATTN_DIM,
                 kv_type_name(im->type), (long long)im->nk);
    } else {
        snprintf(buf, size, "decode_h%lld_kv%lld_d%d_%s_nk%lld%s%s", (long long)im->heads, (long long)im->kv_heads,
                 ATTN_DIM, kv_type_name(im->type), (long long)im->nk,
                 with_layout ? (im->head_major ? "_head" : "_tok") : "", im->varied ? "_varied" : "");
    }
}

static void add_attn_case(attn_impl im, const char *family, const char *variant) {
    if (attn_case_count == ATTN_MAX_CASES) return;
    pab_case *c = &attn_cases[attn_case_count];
    attn_impls[attn_case_count] = im;
    c->impl = &attn_impls[attn_case_count];
    ++attn_case_count;
    char shape[96];
    if (im.kind == ATTN_READ) {
        snprintf(shape, sizeof shape, "decode_kv%lld_d%d_%s_nk%lld", (long long)im.kv_heads, ATTN_DIM,
                 kv_type_name(im.type), (long long)im.nk);
    } else {
        shape_name(&im, im.kind != ATTN_PEER, shape, sizeof shape);
    }
    if (im.kind == ATTN_SPLIT) {
        snprintf(c->name, sizeof c->name, "%s/%s/%s/threads:%d", family, variant, shape, im.threads);
    } else if (im.kind == ATTN_FAR) {
        snprintf(c->name, sizeof c->name, "%s/%s/%s/%s", family, variant, shape,
                 im.skip == 2 ? "summary_update:1token" : im.skip ? "skip:on" : "skip:off");
    } else {
        snprintf(c->name, sizeof c->name, "%s/%s/%s", family, variant, shape);
    }
    const double bytes = kv_bytes(im.kv_heads, im.nk, im.type);
    c->elements = im.kind == ATTN_READ ? bytes / (double)kv_elem_size(im.type) : valid_logits(&im);
    c->bytes = im.kind == ATTN_PEER ? kv_bytes(im.kv_heads, im.nk, POSATTN_KV_F32) : bytes;
    c->threads = im.kind == ATTN_SPLIT ? im.threads : 1;
    c->wall_clock = im.kind == ATTN_SPLIT;
}

static void build_far_cases(void);

/* Cases are registered K/V buffer by K/V buffer (Hkv, nk, type), so each buffer is filled once per run. */
static void build_attn_cases(void) {
    if (attn_case_count) return;
    int isas[POSATTN_ISA_COUNT], simd[POSATTN_ISA_COUNT];
    const int n_isas = pab_op_isas(POSATTN_OP_ATTENTION, isas);
    const int n_simd = pab_simd_isas(simd);
    const int64_t nks[] = {4096, 32768, 131072}, kv_heads[] = {32, 8};
    const posattn_kv_type types[] = {POSATTN_KV_F16, POSATTN_KV_F32};
    for (size_t a = 0; a < sizeof nks / sizeof nks[0]; ++a) {
        for (size_t b = 0; b < 2; ++b) {
            for (size_t c = 0; c < 2; ++c) {
                attn_impl im = {0};
                im.kv_heads = kv_heads[c], im.nk = nks[a], im.nq = 1, im.type = types[b];
                const int64_t heads[] = {32, 8};
                for (size_t h = 0; h < (im.kv_heads == 32 ? 1u : 2u); ++h) {
                    im.heads = heads[h];
                    for (int layout = 0; layout < 2; ++layout) {
                        im.head_major = layout;
                        im.kind = ATTN_FUSED;
                        for (int m = 0; m < n_isas; ++m) {
                            im.isa = (posattn_isa)isas[m];
                            add_attn_case(im, "attention", posattn_isa_name(im.isa));
                        }
                    }
                }
                im.heads = 32, im.head_major = 0;
                im.kind = ATTN_READ, im.isa = POSATTN_ISA_SCALAR;
                add_attn_case(im, "roofline_read", "plain");
                for (int m = 0; m < n_simd; ++m) {
                    im.isa = (posattn_isa)simd[m];
                    add_attn_case(im, "roofline_read", posattn_isa_name(im.isa));
                }
                if (im.nk == ATTN_PEER_NK && im.type == POSATTN_KV_F16) {
                    im.kind = ATTN_PEER, im.isa = POSATTN_ISA_AUTO;
                    add_attn_case(im, "peer_onednn", "attention_unfused");
                }
                if (im.nk == ATTN_MT_NK && im.type == POSATTN_KV_F16 && im.kv_heads == 32) {
                    im.kind = ATTN_SPLIT;
                    for (int m = 0; m < n_isas; ++m) {
                        im.isa = (posattn_isa)isas[m];
                        for (im.threads = 1; im.threads <= ATTN_MAX_THREADS; ++im.threads) {
                            add_attn_case(im, "mt_attention", posattn_isa_name(im.isa));
                        }
                    }
                    im.threads = 0;
                }
            }
        }
    }
    for (size_t b = 0; b < 2; ++b) {
        attn_impl im = {0};
        im.heads = im.kv_heads = 32, im.nq = im.nk = ATTN_PREFILL_N, im.type = types[b], im.causal = 1;
        im.kind = ATTN_FUSED;
        for (int m = 0; m < n_isas; ++m) {
            im.isa = (posattn_isa)isas[m];
            add_attn_case(im, "attention", posattn_isa_name(im.isa));
        }
        if (im.type == POSATTN_KV_F16) {
            im.kind = ATTN_PEER, im.isa = POSATTN_ISA_AUTO;
            add_attn_case(im, "peer_onednn", "attention_unfused");
        }
    }
    build_far_cases();
}

/* Far-field skipping (issue 15): decode H = Hkv = 32, f16, token-major, unit-variance q and k, with and without
 * skipping, on each SIMD ISA; longer contexts (the report's time-against-nk plot) and keys of varied norms on the most
 * capable ISA only, the one the dispatcher picks (a 512k-key cache is 8 GiB of K and V). */
static void add_far_case(posattn_isa isa, int64_t nk, int skip, int varied) {
    attn_impl im = {0};
    im.kind = ATTN_FAR, im.isa = isa, im.skip = skip, im.varied = varied;
    im.heads = im.kv_heads = 32, im.nq = 1, im.nk = nk, im.type = POSATTN_KV_F16;
    add_attn_case(im, "far_field", posattn_isa_name(im.isa));
}

static void build_far_cases(void) {
    int simd[POSATTN_ISA_COUNT];
    const int n_simd = pab_simd_isas(simd);
    const int64_t nks[] = {4096, 32768, 131072}, long_nks[] = {262144, 524288}, varied_nks[] = {32768, 131072};
    for (size_t a = 0; a < sizeof nks / sizeof nks[0]; ++a) {
        for (int m = 0; m < n_simd; ++m) {
            for (int skip = 0; skip < (m == 0 ? 3 : 2); ++skip) add_far_case((posattn_isa)simd[m], nks[a], skip, 0);
        }
    }
    if (!n_simd) return;
    const posattn_isa best = (posattn_isa)simd[n_simd - 1];
    for (size_t a = 0; a < sizeof long_nks / sizeof long_nks[0]; ++a) {
        for (int skip = 0; skip < 2; ++skip) add_far_case(best, long_nks[a], skip, 0);
    }
    for (size_t a = 0; a < sizeof varied_nks / sizeof varied_nks[0]; ++a) {
        for (int skip = 0; skip < 2; ++skip) add_far_case(best, varied_nks[a], skip, 1);
    }
}

static size_t attn_count(void) {
    build_attn_cases();
    return attn_case_count;
}

static const pab_case *attn_at(size_t i) {
    build_attn_cases();
    return i < attn_case_count ? &attn_cases[i] : NULL;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* K and V: one buffer pair at a time, kept while consecutive cases use it                                        */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum attn_distribution {
    ATTN_SMALL_VALUES, /* attn_value: the attention cases */
    ATTN_UNIT_VARIANCE, /* attn_unit_value: the far-field cases */
    ATTN_VARIED_KEYS    /* attn_varied_key for K, unit variance for V: the far-field cases with real-looking keys */
} attn_distribution;

typedef struct attn_data {
    int64_t kv_heads, nk;
    posattn_kv_type type;
    attn_distribution distribution;
    size_t elems; /* of K, and of V: nk * Hkv * 128 */
    void *k, *v;
} attn_data;

static attn_data *attn_cached;

static void *attn_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded); /* touch every page now */
    return p;
}

static void attn_data_free(attn_data *d) {
    if (!d) return;
    free(d->k);
    free(d->v);
    free(d);
}

static void attn_release_all(void) {
    attn_data_free(attn_cached);
    attn_cached = NULL;
}

/* xorshift64: fixed seed, so every run sees the same data. */
static uint64_t attn_rng_state;
static uint64_t attn_rng(void) {
    attn_rng_state ^= attn_rng_state >> 12;
    attn_rng_state ^= attn_rng_state << 25;
    attn_rng_state ^= attn_rng_state >> 27;
    return attn_rng_state * 0x2545f4914f6cdd1dull;
}

/* Values n/1024 with n uniform in [-1024, 1024): exact in f16 (11 significant bits, normal down to 2^-14), so the
 * f16 and f32 buffers hold the same numbers and the float64 check reads either. */
static float attn_value(uint64_t bits) { return (float)((int)(bits & 2047u) - 1024) / 1024.0f; }

/* binary16 bits of a float that is exactly representable and normal in f16 (or zero): the values above only. */
static uint16_t half_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    if (!(u & 0x7fffffffu)) return sign;
    const uint32_t exponent = ((u >> 23) & 0xffu) - 127u + 15u;
    return (uint16_t)(sign | (exponent << 10) | ((u >> 13) & 0x3ffu));
}

/* The float value of binary16 bits (normal numbers and zeros: what half_bits writes). */
static float half_value(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    const uint32_t u = exponent ? sign | ((exponent - 15u + 127u) << 23) | (mantissa << 13) : sign;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The nearest float with at most 11 significant bits, 0 below 2^-14 and at most 65504 in magnitude: exact in f16,
 * so the f16 buffers and the float64 check see the same numbers. */
static float f16_exact(float x) {
    if (fabsf(x) < 0x1p-14f) return 0.0f;
    if (fabsf(x) > 65504.0f) return copysignf(65504.0f, x);
    int e;
    const float m = frexpf(x, &e);
    return ldexpf(nearbyintf(m * 2048.0f) / 2048.0f, e);
}

/* Unit variance: uniform on [-sqrt 3, sqrt 3), exact in f16 as attn_value is. */
static float attn_unit_value(uint64_t bits) {
    return f16_exact(1.7320508f * ((float)(bits >> 40) / (float)(1u << 23) - 1.0f));
}

/* Keys shaped like a trained model's rather than i.i.d.: the norm of each (token, head) key varies over a factor of
 * 4 (2^u, u uniform on [-1, 1]) and two channels per head carry a large offset of fixed sign (+-4), the outlier
 * channels seen in LLM keys. Both widen the gap between the norm bound and the logits a block really has. */
static float attn_varied_key(size_t index, float token_scale) {
    const size_t channel = index % ATTN_DIM;
    const float offset = channel == 3 ? 4.0f : channel == 77 ? -4.0f : 0.0f;
    return f16_exact(offset + token_scale * attn_unit_value(attn_rng()));
}

static void store_kv(void *buf, posattn_kv_type type, size_t i, float value) {
    if (type == POSATTN_KV_F32) {
        ((float *)buf)[i] = value;
    } else {
        ((uint16_t *)buf)[i] = half_bits(value);
    }
}

static void fill_kv(void *buf, size_t n, posattn_kv_type type, attn_distribution distribution) {
    float (*value)(uint64_t) = distribution == ATTN_SMALL_VALUES ? attn_value : attn_unit_value;
    if (distribution != ATTN_VARIED_KEYS) {
        for (size_t i = 0; i < n; ++i) store_kv(buf, type, i, value(attn_rng()));
        return;
    }
    float token_scale = 1.0f;
    for (size_t i = 0; i < n; ++i) {
        if (i % ATTN_DIM == 0) token_scale = exp2f((float)(attn_rng() >> 40) / (float)(1u << 23) - 1.0f);
        store_kv(buf, type, i, attn_varied_key(i, token_scale));
    }
}

static attn_distribution distribution_of(const attn_impl *im) {
    if (im->kind != ATTN_FAR) return ATTN_SMALL_VALUES;
    return im->varied ? ATTN_VARIED_KEYS : ATTN_UNIT_VARIANCE;
}

static attn_data *attn_data_get(const attn_impl *im) {
    attn_data *d = attn_cached;
    const attn_distribution distribution = distribution_of(im);
    if (d && d->kv_heads == im->kv_heads && d->nk == im->nk && d->type == im->type &&
        d->distribution == distribution) {
        return d;
    }
    attn_release_all();
    d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->kv_heads = im->kv_heads, d->nk = im->nk, d->type = im->type, d->distribution = distribution;
    d->elems = (size_t)(im->nk * im->kv_heads * ATTN_DIM);
    d->k = attn_alloc(d->elems * kv_elem_size(im->type));
    d->v = attn_alloc(d->elems * kv_elem_size(im->type));
    if (!d->k || !d->v) {
        attn_data_free(d);
        return NULL;
    }
    attn_rng_state = 0x9e3779b97f4a7c15ull;
    fill_kv(d->k, d->elems, d->type, distribution);
    fill_kv(d->v, d->elems, d->type, distribution == ATTN_VARIED_KEYS ? ATTN_UNIT_VARIANCE : distribution);
    attn_cached = d;
    return d;
}

static float kv_at(const attn_data *d, const void *buf, size_t index) {
    return d->type == POSATTN_KV_F32 ? ((const float *)buf)[index] : half_value(((const uint16_t *)buf)[index]);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Split-KV over a fixed pool of threads                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

struct attn_ctx;
typedef struct attn_pool {
    int threads;
    pthread_t tid[ATTN_MAX_THREADS];
    pthread_barrier_t start, done;
    int stop;
    struct attn_ctx *ctx;
    int status; /* a non-OK status of the last call's workers */
} attn_pool;

typedef struct attn_worker {
    attn_pool *pool;
    int index;
} attn_worker;

typedef struct attn_ctx {
    const attn_impl *im;
    attn_data *d;
    float scale;
    float *q, *out, *slopes;
    posattn_attention_tensors t;
    posattn_softmax_options options;
    uint32_t read_sink;
    uint32_t (*read_sum)(const void *, size_t);
    attn_pool *pool;
    attn_worker workers[ATTN_MAX_THREADS];
    double *partials[ATTN_MAX_THREADS];
#if PAB_HAVE_ONEDNN
    pab_onednn_attention *peer;
#endif
    float *peer_q, *peer_k, *peer_v, *peer_s, *peer_o; /* the peer's f32 copies, scores and output */
    posattn_kv_summary summary;                        /* ATTN_FAR */
    posattn_far_field far;
    void *summary_buffer;
} attn_ctx;

static posattn_status split_part(attn_ctx *x, int index, int threads) {
    const int64_t nk = x->t.nk, rows = x->t.n_heads * x->t.nq;
    return posattn_attention_partial(&x->t, x->scale, x->slopes, NULL, &x->options, nk * index / threads,
                                     nk * (index + 1) / threads, x->partials[index], 0, rows);
}

static void *attn_worker_main(void *arg) {
    attn_worker *w = arg;
    attn_pool *pool = w->pool;
    for (;;) {
        pthread_barrier_wait(&pool->start);
        if (pool->stop) break;
        posattn_status st = split_part(pool->ctx, w->index, pool->threads);
        if (st) pool->status = (int)st;
        pthread_barrier_wait(&pool->done);
    }
    return NULL;
}

static void attn_pool_destroy(attn_pool *pool) {
    if (!pool) return;
    pool->stop = 1;
    pthread_barrier_wait(&pool->start);
    for (int t = 1; t < pool->threads; ++t) pthread_join(pool->tid[t], NULL);
    pthread_barrier_destroy(&pool->start);
    pthread_barrier_destroy(&pool->done);
    free(pool);
}

static attn_pool *attn_pool_create(attn_ctx *x, int threads) {
    attn_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = threads;
    pool->ctx = x;
    pthread_barrier_init(&pool->start, NULL, (unsigned)threads);
    pthread_barrier_init(&pool->done, NULL, (unsigned)threads);
    for (int t = 1; t < threads; ++t) {
        x->workers[t].pool = pool;
        x->workers[t].index = t;
        if (pthread_create(&pool->tid[t], NULL, attn_worker_main, &x->workers[t])) {
            /* Workers already started wait on the barrier: nothing sensible to unwind in a benchmark. */
            fprintf(stderr, "posattn_bench: pthread_create failed for thread %d\n", t);
            exit(1);
        }
    }
    return pool;
}

/* One split-KV call: every thread its key range (the calling thread the first), then the merge here. */
static posattn_status split_run(attn_ctx *x) {
    attn_pool *pool = x->pool;
    pool->status = 0;
    pthread_barrier_wait(&pool->start);
    posattn_status st = split_part(x, 0, pool->threads);
    pthread_barrier_wait(&pool->done);
    if (st || pool->status) return st ? st : (posattn_status)pool->status;
    const double *const *parts = (const double *const *)x->partials;
    return posattn_attention_merge(&x->t, NULL, parts, pool->threads, 0, x->t.n_heads * x->t.nq);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Running                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

static posattn_status attn_run_once(attn_ctx *x) {
    const attn_impl *im = x->im;
    switch (im->kind) {
    case ATTN_FUSED:
        return posattn_attention(&x->t, x->scale, x->slopes, NULL, &x->options, 0, im->heads * im->nq);
    case ATTN_FAR:
        if (!im->skip) return posattn_attention(&x->t, x->scale, x->slopes, NULL, &x->options, 0, im->heads);
        if (im->skip == 2) { /* the last key appended again: one token's update */
            x->summary.n_keys = im->nk - 1;
            return posattn_kv_summary_update(&x->summary, &x->t, NULL, im->nk - 1);
        }
        return posattn_attention_far_field(&x->t, x->scale, x->slopes, NULL, &x->options, &x->far, 0, im->heads);
    case ATTN_SPLIT: return split_run(x);
    case ATTN_READ: {
        const size_t bytes = x->d->elems * kv_elem_size(x->d->type);
        x->read_sink += x->read_sum(x->d->k, bytes) + x->read_sum(x->d->v, bytes);
        return POSATTN_OK;
    }
    case ATTN_PEER:
#if PAB_HAVE_ONEDNN
        pab_onednn_attention_qk(x->peer, x->peer_q, x->peer_k, x->peer_s);
        posattn_status st = posattn_alibi_softmax(im->heads, im->nq, im->nk, x->peer_s, 0, 0, x->peer_s, 0, 0,
                                                  x->scale, x->slopes, NULL, &x->options, 0, im->heads * im->nq);
        pab_onednn_attention_pv(x->peer, x->peer_s, x->peer_v, x->peer_o);
        return st;
#else
        return POSATTN_OK;
#endif
    }
    return POSATTN_OK;
}

static void attn_run(void *ctx) { (void)attn_run_once(ctx); }

/* Row (h, i) of the output against a float64 attention of the same (widened) inputs: every output element within
 * 1e-4 of sum_j P_j |v_jd| (plus 1e-6), far looser than the header's bound for these sizes and far tighter than any
 * real mistake. K and V are read token-major or head-major as the case's tensors say (the peer's copies were made
 * from the token-major reading). */
static const char *check_row(const attn_ctx *x, int64_t h, int64_t i, const float *o) {
    const attn_impl *im = x->im;
    const attn_data *d = x->d;
    const int64_t g = h / (im->heads / im->kv_heads), nk = im->nk;
    const int64_t tok = im->head_major ? ATTN_DIM : im->kv_heads * ATTN_DIM;
    const int64_t head = im->head_major ? nk * ATTN_DIM : ATTN_DIM;
    const float *q = x->q + (i * im->heads + h) * ATTN_DIM;
    const int64_t last = im->causal ? i + nk - im->nq : nk - 1;
    const double qpos = (double)(nk - im->nq + i);
    double *logit = malloc((size_t)nk * sizeof(double)), *acc = calloc(ATTN_DIM, sizeof(double)),
           *mag = calloc(ATTN_DIM, sizeof(double));
    const char *why = NULL;
    if (!logit || !acc || !mag) {
        why = "out of memory";
        goto done;
    }
    double mx = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j <= last; ++j) {
        double dot = 0.0;
        for (int64_t e = 0; e < ATTN_DIM; ++e) dot += (double)q[e] * kv_at(d, d->k, (size_t)(j * tok + g * head + e));
        logit[j] = (double)x->scale * dot - (double)x->slopes[h] * fabs(qpos - (double)j);
        mx = logit[j] > mx ? logit[j] : mx;
    }
    for (int64_t j = 0; j <= last; ++j) {
        const double p = exp(logit[j] - mx);
        sum += p;
        for (int64_t e = 0; e < ATTN_DIM; ++e) {
            const double v = kv_at(d, d->v, (size_t)(j * tok + g * head + e));
            acc[e] += p * v;
            mag[e] += p * fabs(v);
        }
    }
    for (int64_t e = 0; e < ATTN_DIM && !why; ++e) {
        if (!(fabs((double)o[e] - acc[e] / sum) <= 1e-4 * mag[e] / sum + 1e-6)) {
            why = "output differs from a float64 reference attention";
        }
    }
done:
    free(logit);
    free(acc);
    free(mag);
    return why;
}

static const char *check_output(const attn_ctx *x) {
    const attn_impl *im = x->im;
    if (im->kind == ATTN_READ || (im->kind == ATTN_FAR && im->skip == 2)) return NULL; /* no attention output */
    const int64_t rows[3][2] = {{0, im->nq - 1}, {im->heads - 1, 0}, {im->heads / 2, im->nq / 3}};
    for (int k = 0; k < 3; ++k) {
        const int64_t h = rows[k][0], i = rows[k][1];
        /* posattn writes [nq][H][128]; the peer [H][nq][128] */
        const float *o = im->kind == ATTN_PEER ? x->peer_o + (h * im->nq + i) * ATTN_DIM
                                               : x->out + (i * im->heads + h) * ATTN_DIM;
        const char *why = check_row(x, h, i, o);
        if (why) return why;
    }
    return NULL;
}

static void attn_finish(void *ctx) {
    attn_ctx *x = ctx;
    if (!x) return;
    attn_pool_destroy(x->pool);
    for (int t = 0; t < ATTN_MAX_THREADS; ++t) free(x->partials[t]);
#if PAB_HAVE_ONEDNN
    pab_onednn_attention_destroy(x->peer);
#endif
    free(x->peer_q), free(x->peer_k), free(x->peer_v), free(x->peer_s), free(x->peer_o);
    free(x->q), free(x->out), free(x->slopes);
    free(x->summary_buffer), free(x->far.scratch);
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(x);
}

static const char *read_roofline(attn_ctx *x) {
    switch (x->im->isa) {
    case POSATTN_ISA_SCALAR: x->read_sum = pab_read_sum_plain; return NULL;
#if PAB_HAVE_READ_AVX512
    case POSATTN_ISA_AVX512: x->read_sum = pab_read_sum_avx512; return NULL;
#endif
#if PAB_HAVE_READ_AVX2
    case POSATTN_ISA_AVX2: x->read_sum = pab_read_sum_avx2; return NULL;
#endif
#if PAB_HAVE_READ_NEON
    case POSATTN_ISA_NEON: x->read_sum = pab_read_sum_neon; return NULL;
#endif
    default: return "read roofline for this ISA not built";
    }
}

#if PAB_HAVE_ONEDNN
/* The peer's inputs: q regrouped head-major, K and V widened to f32 head-major copies (untimed). */
static const char *prepare_peer(attn_ctx *x) {
    const attn_impl *im = x->im;
    const attn_data *d = x->d;
    const size_t qn = (size_t)(im->heads * im->nq * ATTN_DIM), sn = (size_t)(im->heads * im->nq * im->nk);
    x->peer_q = attn_alloc(qn * sizeof(float));
    x->peer_k = attn_alloc(d->elems * sizeof(float));
    x->peer_v = attn_alloc(d->elems * sizeof(float));
    x->peer_s = attn_alloc(sn * sizeof(float));
    x->peer_o = attn_alloc(qn * sizeof(float));
    if (!x->peer_q || !x->peer_k || !x->peer_v || !x->peer_s || !x->peer_o) return "out of memory";
    for (int64_t h = 0; h < im->heads; ++h) {
        for (int64_t i = 0; i < im->nq; ++i) {
            memcpy(x->peer_q + (h * im->nq + i) * ATTN_DIM, x->q + (i * im->heads + h) * ATTN_DIM,
                   ATTN_DIM * sizeof(float));
        }
    }
    for (int64_t g = 0; g < im->kv_heads; ++g) {
        for (int64_t j = 0; j < im->nk; ++j) {
            for (int64_t e = 0; e < ATTN_DIM; ++e) {
                const size_t from = (size_t)((j * im->kv_heads + g) * ATTN_DIM + e),
                             to = (size_t)((g * im->nk + j) * ATTN_DIM + e);
                x->peer_k[to] = kv_at(d, d->k, from);
                x->peer_v[to] = kv_at(d, d->v, from);
            }
        }
    }
    return pab_onednn_attention_create(im->heads, im->kv_heads, im->nq, im->nk, ATTN_DIM, ATTN_DIM, &x->peer);
}
#endif

static const char *prepare_kind(attn_ctx *x) {
    const attn_impl *im = x->im;
    switch (im->kind) {
    case ATTN_FAR:
        if (posattn_force_isa(im->isa) != POSATTN_OK) return "ISA not supported on this CPU";
        if (im->skip) { /* the summaries an engine would keep, made once, untimed */
            size_t bytes = 0, scratch = 0;
            if (posattn_kv_summary_size(im->kv_heads, im->nk, &bytes) != POSATTN_OK ||
                posattn_far_field_scratch_size(im->nk, ATTN_DIM, &scratch) != POSATTN_OK) {
                return "far-field sizes failed";
            }
            x->summary_buffer = malloc(bytes);
            x->far.scratch = malloc(scratch);
            if (!x->summary_buffer || !x->far.scratch) return "out of memory";
            x->far.scratch_bytes = scratch;
            if (posattn_kv_summary_init(&x->summary, im->kv_heads, im->nk, x->summary_buffer, bytes) != POSATTN_OK ||
                posattn_kv_summary_update(&x->summary, &x->t, NULL, 0) != POSATTN_OK) {
                return "posattn_kv_summary_update failed";
            }
            x->far.summary = &x->summary;
        }
        return NULL;
    case ATTN_FUSED:
    case ATTN_SPLIT:
        if (!posattn_isa_supported(im->isa)) {
            return posattn_isa_compiled(im->isa) ? "ISA not supported on this CPU"
                                                 : "ISA not supported on this CPU (not compiled into this build)";
        }
        if (im->isa == POSATTN_ISA_SCALAR && im->nk > ATTN_SCALAR_MAX_NK) {
            return "skipped: scalar decode above nk=32768 takes seconds a call (the nk<=32768 rows time the same "
                   "kernel)";
        }
        if (posattn_force_isa(im->isa) != POSATTN_OK) return "ISA not supported on this CPU";
        if (im->kind == ATTN_SPLIT) {
            size_t bytes = 0;
            if (posattn_attention_partials_size(im->heads, im->nq, ATTN_DIM, &bytes) != POSATTN_OK) {
                return "posattn_attention_partials_size failed";
            }
            for (int t = 0; t < im->threads; ++t) {
                if (!(x->partials[t] = attn_alloc(bytes))) return "out of memory";
            }
            if (!(x->pool = attn_pool_create(x, im->threads))) return "could not start the threads";
        }
        return NULL;
    case ATTN_READ:
        if (im->isa != POSATTN_ISA_SCALAR && !posattn_isa_supported(im->isa)) return "ISA not supported on this CPU";
        return read_roofline(x);
    case ATTN_PEER:
#if PAB_HAVE_ONEDNN
        return prepare_peer(x);
#else
        return "oneDNN not found at build time (libdnnl-dev)";
#endif
    }
    return "unknown kind";
}

static const char *attn_prepare(const pab_case *c, void **ctx) {
    *ctx = NULL;
    const attn_impl *im = c->impl;
    attn_ctx *x = calloc(1, sizeof *x);
    if (!x) return "out of memory";
    x->im = im;
    x->scale = 1.0f / sqrtf((float)ATTN_DIM);
    const size_t qn = (size_t)(im->heads * im->nq * ATTN_DIM);
    x->d = attn_data_get(im);
    x->q = attn_alloc(qn * sizeof(float));
    x->out = attn_alloc(qn * sizeof(float));
    x->slopes = attn_alloc((size_t)im->heads * sizeof(float));
    if (!x->d || !x->q || !x->out || !x->slopes) {
        attn_finish(x);
        return "out of memory for the shape's buffers";
    }
    attn_rng_state = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < qn; ++i) {
        x->q[i] = im->kind == ATTN_FAR ? attn_unit_value(attn_rng()) : attn_value(attn_rng());
    }
    posattn_alibi_slopes(im->heads, 8.0f, x->slopes);
    if (im->causal) x->options.flags = POSATTN_CAUSAL;
    posattn_attention_tensors *t = &x->t;
    t->n_heads = im->heads, t->n_kv_heads = im->kv_heads, t->nq = im->nq, t->nk = im->nk;
    t->dk = t->dv = ATTN_DIM;
    t->q = x->q, t->out = x->out;
    t->k = x->d->k, t->v = x->d->v, t->k_type = t->v_type = im->type;
    if (im->head_major) {
        t->k_tok_stride = t->v_tok_stride = ATTN_DIM;
        t->k_head_stride = t->v_head_stride = im->nk * ATTN_DIM;
    }
    const char *why = prepare_kind(x);
    if (!why) {
        posattn_status st = attn_run_once(x); /* warm-up, untimed */
        why = st != POSATTN_OK ? posattn_status_string(st) : check_output(x);
        if (!why && im->kind == ATTN_FAR && im->skip == 1) {
            attn_cases[c - attn_cases].read_fraction = (double)x->far.keys_read / (double)(im->heads * im->nk);
        }
    }
    if (why) {
        attn_finish(x);
        return why;
    }
    *ctx = x;
    return NULL;
}

const pab_family_ops pab_attention_family = {attn_count, attn_at, attn_prepare, attn_run, attn_finish,
                                             attn_release_all};
