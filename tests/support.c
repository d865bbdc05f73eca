/* Shared helpers of the posattn Check suite; see support.h. */
#define _POSIX_C_SOURCE 200112L

#include "support.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------------------------ */
/* Running a suite                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

#define DEFAULT_SEED UINT64_C(0x9E3779B97F4A7C15)

uint64_t test_base_seed(void) {
    const char *text = getenv("POSATTN_TEST_SEED");
    if (text && *text) return strtoull(text, NULL, 0);
    return DEFAULT_SEED;
}

static uint64_t splitmix64(uint64_t x) {
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

uint64_t test_case_seed(uint64_t case_number) {
    return splitmix64(test_base_seed() ^ splitmix64(case_number));
}

/* Which ISAs were reported as skipped (once per process; fork-mode children inherit it). */
static int skip_logged[POSATTN_ISA_COUNT];

int run_suite(Suite *suite) {
    fprintf(stderr, "posattn tests: seed 0x%016" PRIx64 " (set POSATTN_TEST_SEED to replay another)\n",
            test_base_seed());
    FOR_EACH_ISA(isa) {
        int supported = posattn_isa_supported(isa);
        fprintf(stderr, "posattn tests: isa %-7s %s\n", posattn_isa_name(isa),
                supported ? "tested" : "skipped (not compiled in or not supported here)");
        skip_logged[isa] = !supported;
    }
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

TCase *make_tcase(const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 240);
    return tc;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Instruction sets                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

int enter_isa(posattn_isa isa) {
    if (!posattn_isa_supported(isa)) {
        if (!skip_logged[isa]) {
            fprintf(stderr, "posattn tests: skipping isa %s (not supported here)\n", posattn_isa_name(isa));
            skip_logged[isa] = 1;
        }
        return 0;
    }
    posattn_status st = posattn_force_isa(isa);
    ck_assert_msg(st == POSATTN_OK, "posattn_force_isa(%s) returned %d (%s)", posattn_isa_name(isa), (int)st,
                  posattn_status_string(st));
    ck_assert_msg(posattn_active_isa() == isa, "forced %s but posattn_active_isa() reports %s",
                  posattn_isa_name(isa), posattn_isa_name(posattn_active_isa()));
    return 1;
}

/* posattn_isa_list in the loop's order: scalar (listed last, the reference) first, then the others reversed. */
static int test_isas(posattn_isa order[POSATTN_ISA_COUNT]) {
    posattn_isa listed[POSATTN_ISA_COUNT];
    int n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    /* Also called outside a running test (run_suite), where ck_assert cannot report: exit instead. */
    if (!(n >= 1 && n < POSATTN_ISA_COUNT && listed[n - 1] == POSATTN_ISA_SCALAR)) {
        fprintf(stderr, "posattn tests: posattn_isa_list returned %d ISAs, not ending with scalar\n", n);
        exit(EXIT_FAILURE);
    }
    for (int k = 0; k < n; ++k) order[k] = listed[n - 1 - k];
    return n;
}

posattn_isa test_isa_first(void) {
    posattn_isa order[POSATTN_ISA_COUNT];
    test_isas(order);
    return order[0];
}

posattn_isa test_isa_next(posattn_isa isa) {
    posattn_isa order[POSATTN_ISA_COUNT];
    int n = test_isas(order);
    for (int k = 0; k + 1 < n; ++k) {
        if (order[k] == isa) return order[k + 1];
    }
    return POSATTN_ISA_AUTO;
}

posattn_isa best_supported_isa(void) {
    posattn_isa listed[POSATTN_ISA_COUNT];
    int n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    for (int k = 0; k < n; ++k) {
        if (posattn_isa_supported(listed[k])) return listed[k];
    }
    return POSATTN_ISA_SCALAR;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Random numbers                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

rng rng_seeded(uint64_t seed) {
    rng r = {splitmix64(seed)};
    if (r.state == 0) r.state = 1;
    return r;
}

uint64_t rng_next(rng *r) {
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * UINT64_C(0x2545F4914F6CDD1D);
}

double rng_unit(rng *r) {
    return (double)(rng_next(r) >> 40) * 0x1p-24;
}

float rng_float(rng *r, double lo, double hi) {
    return (float)(lo + (hi - lo) * rng_unit(r));
}

int64_t rng_below(rng *r, int64_t n) {
    return (int64_t)(rng_next(r) % (uint64_t)n);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Guarded allocations                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

static unsigned char canary_byte(size_t k) {
    return (unsigned char)(0xA5u ^ (k * 29u));
}

static guarded guarded_alloc(size_t n, size_t elem_size, int misalign, size_t trail) {
    guarded g;
    g.lead = misalign ? elem_size : 0;
    g.size = n * elem_size;
    g.trail = trail;
    size_t total = g.lead + g.size + g.trail;
    void *block = NULL;
    ck_assert_msg(posix_memalign(&block, 64, total ? total : 1) == 0, "out of memory (%zu bytes)", total);
    g.block = block;
    g.data = g.block + g.lead;
    for (size_t k = 0; k < g.lead; ++k) g.block[k] = canary_byte(k);
    for (size_t k = 0; k < g.trail; ++k) g.block[g.lead + g.size + k] = canary_byte(k + 7);
    return g;
}

guarded guarded_input(size_t n, size_t elem_size, int misalign) {
    return guarded_alloc(n, elem_size, misalign, 0);
}

guarded guarded_output(size_t n, size_t elem_size, int misalign) {
    return guarded_alloc(n, elem_size, misalign, GUARD_BYTES);
}

void guarded_free(guarded *g) {
    free(g->block);
    g->block = NULL;
    g->data = NULL;
}

void guarded_check(const guarded *g, const char *what) {
    for (size_t k = 0; k < g->lead; ++k) {
        CHECK(g->block[k] == canary_byte(k), "%s: canary byte %zu before the data was overwritten", what,
              g->lead - k);
    }
    for (size_t k = 0; k < g->trail; ++k) {
        CHECK(g->block[g->lead + g->size + k] == canary_byte(k + 7),
              "%s: canary byte %zu after the data was overwritten", what, k);
    }
}

void arena_open(arena *ar, int64_t n_floats) {
    CHECK(n_floats > 0 && n_floats <= ARENA_MAX_FLOATS, "arena of %lld floats", (long long)n_floats);
    ar->buf = guarded_input((size_t)n_floats, sizeof(float), 0);
    ar->a = ar->buf.data;
    ar->n = n_floats;
}

void arena_close(arena *ar) {
    guarded_free(&ar->buf);
    ar->a = NULL;
    ar->n = 0;
}

void arena_fill(arena *ar) {
    for (int64_t k = 0; k < ar->n; ++k) ar->a[k] = 0.25f + (float)(k % 7) * 0.125f;
}

void arena_snapshot(arena *ar) {
    memcpy(ar->before, ar->a, (size_t)ar->n * sizeof(float));
}

int arena_unchanged(const arena *ar) {
    return memcmp(ar->before, ar->a, (size_t)ar->n * sizeof(float)) == 0;
}

void arena_expect(const arena *ar, posattn_status st, posattn_status expected, const char *fn, const char *change,
                  int line) {
    CHECK(st == expected, "isa %s, line %d, %s with `%s`: returned %d (%s), expected %d (%s)",
          posattn_isa_name(posattn_active_isa()), line, fn, change, (int)st, posattn_status_string(st), (int)expected,
          posattn_status_string(expected));
    if (expected != POSATTN_OK) {
        CHECK(arena_unchanged(ar), "isa %s, line %d, %s with `%s` failed with %s but wrote to memory",
              posattn_isa_name(posattn_active_isa()), line, fn, change, posattn_status_string(st));
    }
}

float untouched_pattern(void) {
    uint32_t bits = 0xFFC5A5A5u; /* a quiet NaN with a payload no arithmetic produces */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void fill_untouched(float *x, size_t n) {
    float pattern = untouched_pattern();
    for (size_t k = 0; k < n; ++k) x[k] = pattern;
}

void fill_nan(float *x, size_t n) {
    for (size_t k = 0; k < n; ++k) x[k] = NAN;
}

int same_bits(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Positions                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

const char *const positions_kind_names[POSITIONS_KIND_COUNT] = {
    "null", "zeroed", "shared", "per-head", "keys-only", "queries-only", "strided", "weighted", "weighted-l2"};

static void fill_irregular_keys(rng *g, float *k, int64_t nk, int64_t stride, double span, int infinite_keys) {
    double at = 0.0;
    for (int64_t j = 0; j < nk; ++j) {
        at += (double)rng_float(g, 0.0, 2.0 * span / (double)nk);
        k[j * stride] = (infinite_keys && j % 7 == 3) ? INFINITY : (float)at;
    }
}

static void fill_queries(rng *g, float *q, int64_t nq, int64_t stride, double span) {
    for (int64_t i = 0; i < nq; ++i) q[i * stride] = rng_float(g, 0.0, span);
}

void build_positions(const positions_spec *s, rng *g, posattn_positions *p, position_buffers *b) {
    const int64_t H = s->n_heads, nq = s->nq, nk = s->nk;
    const double span = s->span > 0 ? s->span : (double)nk;
    memset(p, 0, sizeof *p);
    memset(b, 0, sizeof *b);
    switch (s->kind) {
    case POSITIONS_NULL:
    case POSITIONS_ZEROED:
    case POSITIONS_KIND_COUNT: return;
    case POSITIONS_SHARED:
    case POSITIONS_WEIGHTED:
    case POSITIONS_WEIGHTED_L2:
    case POSITIONS_KEYS_ONLY:
    case POSITIONS_QUERIES_ONLY:
        if (s->kind != POSITIONS_KEYS_ONLY) {
            b->q = guarded_input((size_t)nq, sizeof(float), s->misalign_q);
            fill_queries(g, b->q.data, nq, 1, span);
            p->q = b->q.data;
        }
        if (s->kind != POSITIONS_QUERIES_ONLY) {
            b->k = guarded_input((size_t)nk, sizeof(float), s->misalign_k);
            fill_irregular_keys(g, b->k.data, nk, 1, span, s->infinite_keys);
            p->k = b->k.data;
        }
        break;
    case POSITIONS_PER_HEAD:
        b->q = guarded_input((size_t)(H * nq), sizeof(float), s->misalign_q);
        b->k = guarded_input((size_t)(H * nk), sizeof(float), s->misalign_k);
        for (int64_t h = 0; h < H; ++h) {
            fill_queries(g, (float *)b->q.data + h * nq, nq, 1, span);
            fill_irregular_keys(g, (float *)b->k.data + h * nk, nk, 1, span, s->infinite_keys);
        }
        p->q = b->q.data, p->k = b->k.data;
        p->q_head_stride = nq, p->k_head_stride = nk;
        break;
    case POSITIONS_STRIDED: {
        int64_t q_extent = (nq - 1) * 2 + 1, k_head = 3 * nk + 1, k_extent = (H - 1) * k_head + (nk - 1) * 3 + 1;
        b->q = guarded_input((size_t)q_extent, sizeof(float), s->misalign_q);
        b->k = guarded_input((size_t)k_extent, sizeof(float), s->misalign_k);
        fill_nan(b->q.data, (size_t)q_extent);
        fill_nan(b->k.data, (size_t)k_extent);
        fill_queries(g, b->q.data, nq, 2, span);
        for (int64_t h = 0; h < H; ++h) {
            fill_irregular_keys(g, (float *)b->k.data + h * k_head, nk, 3, span, s->infinite_keys);
        }
        p->q = b->q.data, p->k = b->k.data;
        p->q_stride = 2, p->k_stride = 3, p->k_head_stride = k_head;
        break;
    }
    }
    if (s->kind == POSITIONS_WEIGHTED || s->kind == POSITIONS_WEIGHTED_L2) {
        b->weights = guarded_input((size_t)H, sizeof(float), s->misalign_weights);
        float *w = b->weights.data;
        int l2 = s->kind == POSITIONS_WEIGHTED_L2;
        for (int64_t h = 0; h < H; ++h) w[h] = rng_float(g, l2 ? -2.0 : 0.0, 2.0);
        if (!l2) w[0] = 0.0f; /* an effective slope of 0 */
        p->weights = w;
        p->metric = l2 ? POSATTN_METRIC_L2 : POSATTN_METRIC_L1;
    }
}

void free_positions(position_buffers *b) {
    guarded_free(&b->q);
    guarded_free(&b->k);
    guarded_free(&b->weights);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* IEEE binary16                                                                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exponent = (x >> 23) & 0xFFu;
    uint32_t mantissa = x & 0x7FFFFFu;
    if (exponent == 0xFFu) { /* infinity or NaN (kept quiet, payload truncated) */
        return (uint16_t)(sign | 0x7C00u | (mantissa ? 0x200u | (mantissa >> 13) : 0u));
    }
    int e = (int)exponent - 127 + 15; /* the binary16 biased exponent */
    if (e >= 31) return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        /* Result is a binary16 subnormal (or 0 or the smallest normal after rounding): units of 2^-24. */
        if (e < -10) return (uint16_t)sign; /* below 2^-25: rounds to 0 */
        mantissa |= 0x800000u;
        unsigned shift = (unsigned)(14 - e);
        uint32_t m = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rest > half || (rest == half && (m & 1u))) ++m;
        return (uint16_t)(sign | m);
    }
    uint32_t h = ((uint32_t)e << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h; /* a carry into the exponent is correct, up to inf */
    return (uint16_t)(sign | h);
}

double f16_to_f64(uint16_t h) {
    double sign = (h & 0x8000u) ? -1.0 : 1.0;
    unsigned exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu) return mantissa ? NAN : sign * INFINITY;
    if (exponent == 0) return sign * ldexp((double)mantissa, -24);
    return sign * ldexp((double)(mantissa + 1024u), (int)exponent - 25);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Error bounds                                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

/* include/posattn.h: |P_j - P*_j| <= (10 L + d_j + 22) u P*_j + 2.4e-38 */
double softmax_rel_bound(double L, double d) {
    return (10.0 * L + d + 22.0) * UNIT_ROUNDOFF;
}

/* include/posattn.h: |lse - lse*| <= (11 L + 20) u + u |lse*| */
double lse_bound(double L, double lse_exact) {
    return (11.0 * L + 20.0) * UNIT_ROUNDOFF + UNIT_ROUNDOFF * fabs(lse_exact);
}

double f32_ulp(double x) {
    double ax = fabs(x);
    if (ax < FLT_MIN) return 0x1p-149;
    int e;
    frexp(ax, &e); /* ax in [2^(e-1), 2^e) */
    return ldexp(1.0, e - 24);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Oracles                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

double oracle_slope(int64_t h, int64_t n_heads, double max_bias) {
    int64_t c = 1;
    while (2 * c <= n_heads) c *= 2; /* 2^floor(log2 H) */
    if (h < c) return exp2(-max_bias * (double)(h + 1) / (double)c);
    return exp2(-(max_bias / 2.0) * (double)(2 * (h - c) + 1) / (double)c);
}

static int64_t axes_of(const posattn_positions *p) {
    return p->axes ? p->axes : 1;
}

double query_position(const posattn_positions *p, int64_t nq, int64_t nk, int64_t h, int64_t i) {
    if (!p || !p->q) return (double)(nk - nq + i);
    int64_t stride = p->q_stride ? p->q_stride : axes_of(p);
    return (double)p->q[h * p->q_head_stride + i * stride];
}

double key_position(const posattn_positions *p, int64_t h, int64_t j) {
    if (!p || !p->k) return (double)j;
    int64_t stride = p->k_stride ? p->k_stride : axes_of(p);
    return (double)p->k[h * p->k_head_stride + j * stride];
}

double oracle_bias(const float *slopes, const posattn_positions *p, int64_t nq, int64_t nk, int64_t h, int64_t i,
                   int64_t j) {
    double m = (double)slopes[h];
    double w = (p && p->weights) ? (double)p->weights[h * axes_of(p)] : 1.0;
    if (m * w == 0.0) return 0.0;
    double delta = query_position(p, nq, nk, h, i) - key_position(p, h, j);
    double dist = (p && p->metric == POSATTN_METRIC_L2) ? fabs(w * delta) : w * fabs(delta);
    return -m * dist;
}

oracle_row oracle_row_alloc(int64_t nk) {
    oracle_row o = {0};
    o.p = malloc((size_t)nk * sizeof *o.p);
    o.d = malloc((size_t)nk * sizeof *o.d);
    o.valid = malloc((size_t)nk);
    ck_assert_msg(o.p && o.d && o.valid, "out of memory");
    return o;
}

void oracle_row_free(oracle_row *o) {
    free(o->p);
    free(o->d);
    free(o->valid);
    o->p = o->d = NULL;
    o->valid = NULL;
}

void oracle_softmax_row(const softmax_problem *pr, int64_t r, oracle_row *out) {
    static const posattn_softmax_options none = {0};
    const posattn_softmax_options *o = pr->options ? pr->options : &none;
    const int64_t nq = pr->nq, nk = pr->nk, h = r / nq, i = r % nq;
    const int causal = (o->flags & POSATTN_CAUSAL) != 0;
    const int mask_times_slope = (o->flags & POSATTN_MASK_TIMES_SLOPE) != 0;
    const int64_t s_row = pr->s_row_stride ? pr->s_row_stride : nk;
    const int64_t s_head = pr->s_head_stride ? pr->s_head_stride : nq * s_row;
    const int64_t m_row = o->mask_row_stride ? o->mask_row_stride : nk;
    const int64_t diagonal = i + nk - nq;
    const float *scores = pr->scores + h * s_head + i * s_row;
    const double sink = o->sinks ? (double)o->sinks[h] : -INFINITY;

    double mx = sink, L = o->sinks ? fabs(sink) : 0.0;
    out->any_valid = 0;
    for (int64_t j = 0; j < nk; ++j) {
        int valid = 1;
        if (causal && j > diagonal) valid = 0;
        if (o->window > 0 && llabs(j - diagonal) >= o->window) valid = 0;
        double mask = 0.0;
        if (o->mask) {
            int64_t at = h * o->mask_head_stride + i * m_row + j;
            mask = o->mask_type == POSATTN_MASK_F16 ? f16_to_f64(((const uint16_t *)o->mask)[at])
                                                     : (double)((const float *)o->mask)[at];
            if (mask == -INFINITY) valid = 0;
        }
        out->valid[j] = (unsigned char)valid;
        out->p[j] = 0.0;
        if (!valid) continue;
        double x = (double)pr->scale * (double)scores[j];
        if (o->softcap > 0.0f) x = (double)o->softcap * tanh(x / (double)o->softcap);
        double bias = mask_times_slope ? 0.0 : oracle_bias(pr->slopes, pr->positions, nq, nk, h, i, j);
        double mask_term = o->mask ? (mask_times_slope ? (double)pr->slopes[h] * mask : mask) : 0.0;
        double Lj = fabs(x) + fabs(bias) + fabs(mask_term);
        x += bias + mask_term;
        out->d[j] = x; /* holds x_j until the maximum is known */
        out->any_valid = 1;
        if (x > mx) mx = x;
        if (Lj > L) L = Lj;
    }
    out->L = L;
    if (mx == -INFINITY) {
        out->lse = -INFINITY;
        return;
    }
    double sum = o->sinks ? exp(sink - mx) : 0.0;
    for (int64_t j = 0; j < nk; ++j) {
        if (!out->valid[j]) continue;
        out->d[j] = mx - out->d[j];
        out->p[j] = exp(-out->d[j]);
        sum += out->p[j];
    }
    for (int64_t j = 0; j < nk; ++j) out->p[j] /= sum;
    out->lse = mx + log(sum);
}
