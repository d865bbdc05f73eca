/*
 * Bad input (SPEC 7, header "Errors"): every invalid argument gets its own status and leaves every output untouched.
 *
 * Every call works inside one exact-size arena that holds all the buffers of a small valid call (H=2, nq=3, nk=5,
 * with positions, weights, a mask, sinks and lse). The arena is filled with a pattern, then each case changes one
 * argument of the valid baseline and expects one status, and the arena must be byte-for-byte unchanged afterwards:
 * nothing was written anywhere. Near each refused value a valid neighbour (stride == nk, adjacent buffers, window
 * 0, ...) must still succeed, so the checks are not too strict either. The whole table runs under every ISA.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

enum {
    ARENA_FLOATS = 512,
    /* Offsets (in floats) of the baseline's buffers inside the arena. */
    AT_SCORES = 0,   /* 30 = 2 * 3 * 5 */
    AT_PROBS = 64,   /* 30 */
    AT_LSE = 128,    /* 6 */
    AT_MASK = 160,   /* 15, broadcast over heads */
    AT_MASK16 = 192, /* 15 binary16 values */
    AT_SINKS = 224,  /* 2 */
    AT_SLOPES = 232, /* 2 */
    AT_Q = 240,      /* 3 */
    AT_K = 248,      /* 5 */
    AT_WEIGHTS = 256 /* 2 */
};

static const int64_t BIG = INT64_C(1) << 62;

static void arena_reset(arena *ar) {
    arena_fill(ar);
    uint16_t *mask16 = (uint16_t *)(ar->a + AT_MASK16);
    for (int k = 0; k < 15; ++k) mask16[k] = 0x3800u; /* 0.5 */
    arena_snapshot(ar);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_alibi_softmax                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct softmax_call {
    int64_t n_heads, nq, nk;
    const float *scores;
    int64_t s_row_stride, s_head_stride;
    float *probs;
    int64_t p_row_stride, p_head_stride;
    float scale;
    const float *slopes;
    posattn_positions positions;
    int use_positions;
    posattn_softmax_options options;
    int use_options;
    int64_t row_begin, row_end;
} softmax_call;

static softmax_call softmax_baseline(float *a) {
    softmax_call c;
    memset(&c, 0, sizeof c);
    c.n_heads = 2, c.nq = 3, c.nk = 5;
    c.scores = a + AT_SCORES, c.probs = a + AT_PROBS, c.scale = 0.5f, c.slopes = a + AT_SLOPES;
    c.use_positions = 1;
    c.positions.q = a + AT_Q, c.positions.k = a + AT_K, c.positions.weights = a + AT_WEIGHTS;
    c.use_options = 1;
    c.options.flags = POSATTN_CAUSAL;
    c.options.mask = a + AT_MASK, c.options.mask_type = POSATTN_MASK_F32;
    c.options.sinks = a + AT_SINKS, c.options.lse = a + AT_LSE;
    c.row_begin = 0, c.row_end = 6;
    return c;
}

static posattn_status call_softmax(const softmax_call *c) {
    return posattn_alibi_softmax(c->n_heads, c->nq, c->nk, c->scores, c->s_row_stride, c->s_head_stride, c->probs,
                                 c->p_row_stride, c->p_head_stride, c->scale, c->slopes,
                                 c->use_positions ? &c->positions : NULL, c->use_options ? &c->options : NULL,
                                 c->row_begin, c->row_end);
}

static void expect_softmax(arena *ar, const softmax_call *c, posattn_status expected, const char *change, int line) {
    arena_reset(ar);
    posattn_status st = call_softmax(c);
    arena_expect(ar, st, expected, "softmax", change, line);
}

/* One case: the baseline with one change, and the status it must give. */
#define SOFTMAX_CASE(expected, ...)                                                                                \
    do {                                                                                                           \
        softmax_call c = softmax_baseline(ar.a);                                                                   \
        float *a = ar.a;                                                                                           \
        (void)a;                                                                                                   \
        __VA_ARGS__;                                                                                               \
        expect_softmax(&ar, &c, expected, #__VA_ARGS__, __LINE__);                                                 \
    } while (0)

START_TEST(test_softmax_errors) {
    arena ar;
    arena_open(&ar, ARENA_FLOATS);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        /* The baseline and valid neighbours of the refused values below. */
        SOFTMAX_CASE(POSATTN_OK, (void)0);
        SOFTMAX_CASE(POSATTN_OK, c.use_options = 0);
        SOFTMAX_CASE(POSATTN_OK, c.use_positions = 0);
        SOFTMAX_CASE(POSATTN_OK, c.s_row_stride = 5, c.p_row_stride = 5, c.options.mask_row_stride = 5);
        SOFTMAX_CASE(POSATTN_OK, c.s_row_stride = 6, c.p_row_stride = 6, c.p_head_stride = 18);
        SOFTMAX_CASE(POSATTN_OK, c.p_row_stride = 12, c.p_head_stride = 6); /* interleaved heads */
        SOFTMAX_CASE(POSATTN_OK, c.probs = a + AT_SCORES);                  /* exactly in place */
        SOFTMAX_CASE(POSATTN_OK, c.probs = a + AT_SCORES + 30);             /* adjacent, not overlapping */
        SOFTMAX_CASE(POSATTN_OK, c.options.lse = a + AT_PROBS + 30);
        SOFTMAX_CASE(POSATTN_OK, c.options.lse = a + AT_PROBS - 6);
        SOFTMAX_CASE(POSATTN_OK, c.row_begin = 6, c.row_end = 6);
        SOFTMAX_CASE(POSATTN_OK, c.row_begin = 0, c.row_end = 0);
        SOFTMAX_CASE(POSATTN_OK, c.scale = 0.0f);
        SOFTMAX_CASE(POSATTN_OK, c.scale = -3.0e38f);
        SOFTMAX_CASE(POSATTN_OK, c.options.softcap = 1e30f);
        SOFTMAX_CASE(POSATTN_OK, c.options.window = 1);
        SOFTMAX_CASE(POSATTN_OK, c.options.window = INT64_MAX);
        SOFTMAX_CASE(POSATTN_OK, c.positions.axes = 1);
        SOFTMAX_CASE(POSATTN_OK, c.positions.metric = POSATTN_METRIC_L2);
        SOFTMAX_CASE(POSATTN_OK, c.options.mask = a + AT_MASK16, c.options.mask_type = POSATTN_MASK_F16);
        SOFTMAX_CASE(POSATTN_OK, c.options.flags = POSATTN_CAUSAL | POSATTN_MASK_TIMES_SLOPE, c.use_positions = 0);
        SOFTMAX_CASE(POSATTN_OK, c.options.mask_head_stride = 15, c.options.mask = a + AT_MASK - 15);

        /* NULL */
        SOFTMAX_CASE(POSATTN_ERR_NULL, c.scores = NULL);
        SOFTMAX_CASE(POSATTN_ERR_NULL, c.probs = NULL);
        SOFTMAX_CASE(POSATTN_ERR_NULL, c.slopes = NULL);

        /* SIZE: nk = 0 included */
        SOFTMAX_CASE(POSATTN_ERR_SIZE, c.nk = 0);
        SOFTMAX_CASE(POSATTN_ERR_SIZE, c.nk = -1);
        SOFTMAX_CASE(POSATTN_ERR_SIZE, c.nq = 0, c.row_end = 0);
        SOFTMAX_CASE(POSATTN_ERR_SIZE, c.nq = -3, c.row_end = 0);
        SOFTMAX_CASE(POSATTN_ERR_SIZE, c.n_heads = 0, c.row_end = 0);
        SOFTMAX_CASE(POSATTN_ERR_SIZE, c.n_heads = -2, c.row_end = 0);

        /* ROW_RANGE */
        SOFTMAX_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = -1);
        SOFTMAX_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = 4, c.row_end = 3);
        SOFTMAX_CASE(POSATTN_ERR_ROW_RANGE, c.row_end = 7);
        SOFTMAX_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = 7, c.row_end = 7);
        SOFTMAX_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = -2, c.row_end = -1);

        /* STRIDE */
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.s_row_stride = 4);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.p_row_stride = 4);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.s_row_stride = -5);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.s_head_stride = -15);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.p_row_stride = -5);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.p_head_stride = -15);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.p_head_stride = 5);                     /* head 1 row 0 = head 0 row 1 */
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.p_head_stride = 14);                    /* one element shared */
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.p_row_stride = 6, c.p_head_stride = 10); /* interleaved, overlapping */
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.options.mask_row_stride = 4);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.options.mask_row_stride = -5);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.options.mask_head_stride = -1);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.positions.q_stride = -1);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.positions.k_stride = -1);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.positions.q_head_stride = -1);
        SOFTMAX_CASE(POSATTN_ERR_STRIDE, c.positions.k_head_stride = -1);

        /* OVERFLOW: the error comes before any access (the buffers are small) */
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.n_heads = INT64_C(1) << 32, c.nq = INT64_C(1) << 32, c.row_end = 0);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.n_heads = 1, c.nq = INT64_C(1) << 40, c.s_row_stride = INT64_C(1) << 30,
                     c.p_row_stride = INT64_C(1) << 30, c.use_positions = 0, c.use_options = 0, c.row_end = 1);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.s_row_stride = INT64_C(1) << 61);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.s_head_stride = BIG);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.p_head_stride = BIG);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.p_head_stride = INT64_MAX);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.positions.q_stride = INT64_C(1) << 61);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.positions.k_stride = INT64_C(1) << 61);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.positions.q_head_stride = BIG);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.positions.k_head_stride = BIG);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.options.mask_row_stride = BIG);
        SOFTMAX_CASE(POSATTN_ERR_OVERFLOW, c.options.mask_head_stride = BIG);

        /* OVERLAP: any overlap but exact in place */
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.probs = a + AT_SCORES + 1);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.probs = a + AT_SCORES + 29);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.probs = a + AT_SCORES, c.p_row_stride = 6);  /* same base, other layout */
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.probs = a + AT_SCORES, c.p_head_stride = 16);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.scores = a + AT_PROBS + 29);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.lse = a + AT_PROBS + 2);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.lse = a + AT_PROBS - 5);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.lse = a + AT_SCORES + 10);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.mask = a + AT_PROBS + 3);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.mask = a + AT_PROBS + 20, c.options.mask_type = POSATTN_MASK_F16);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.mask = a + AT_LSE);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.sinks = a + AT_PROBS + 29);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.options.sinks = a + AT_LSE + 5);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.slopes = a + AT_PROBS + 4);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.slopes = a + AT_LSE);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.positions.q = a + AT_PROBS + 10);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.positions.k = a + AT_PROBS + 26);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.positions.k = a + AT_LSE + 2);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.positions.weights = a + AT_PROBS);
        SOFTMAX_CASE(POSATTN_ERR_OVERLAP, c.positions.weights = a + AT_LSE + 4);

        /* SCALE */
        SOFTMAX_CASE(POSATTN_ERR_SCALE, c.scale = NAN);
        SOFTMAX_CASE(POSATTN_ERR_SCALE, c.scale = INFINITY);
        SOFTMAX_CASE(POSATTN_ERR_SCALE, c.scale = -INFINITY);

        /* SOFTCAP */
        SOFTMAX_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = -1.0f);
        SOFTMAX_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = -0x1p-149f);
        SOFTMAX_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = NAN);
        SOFTMAX_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = INFINITY);

        /* WINDOW */
        SOFTMAX_CASE(POSATTN_ERR_WINDOW, c.options.window = -1);
        SOFTMAX_CASE(POSATTN_ERR_WINDOW, c.options.window = INT64_MIN);

        /* AXES: 1..4 (0 means 1); N-D positions need both q and k (the default positions have one axis). Valid
         * N-D cases are in test_nd.c. */
        SOFTMAX_CASE(POSATTN_ERR_AXES, c.positions.axes = 2, c.positions.q = NULL);
        SOFTMAX_CASE(POSATTN_ERR_AXES, c.positions.axes = 3, c.positions.k = NULL);
        SOFTMAX_CASE(POSATTN_ERR_AXES, c.positions.axes = 4, c.positions.q = NULL, c.positions.k = NULL);
        SOFTMAX_CASE(POSATTN_ERR_AXES, c.positions.axes = 5);
        SOFTMAX_CASE(POSATTN_ERR_AXES, c.positions.axes = -1);

        /* METRIC */
        SOFTMAX_CASE(POSATTN_ERR_METRIC, c.positions.metric = (posattn_metric)7);
        SOFTMAX_CASE(POSATTN_ERR_METRIC, c.positions.metric = (posattn_metric)2);

        /* MASK_TYPE (with a mask) */
        SOFTMAX_CASE(POSATTN_ERR_MASK_TYPE, c.options.mask_type = (posattn_mask_type)9);
        SOFTMAX_CASE(POSATTN_ERR_MASK_TYPE, c.options.mask_type = (posattn_mask_type)2);

        /* FLAGS */
        SOFTMAX_CASE(POSATTN_ERR_FLAGS, c.options.flags |= 1u << 2);
        SOFTMAX_CASE(POSATTN_ERR_FLAGS, c.options.flags |= 1u << 31);
        SOFTMAX_CASE(POSATTN_ERR_FLAGS, c.options.flags |= POSATTN_MASK_TIMES_SLOPE);
        SOFTMAX_CASE(POSATTN_ERR_FLAGS, c.options.flags |= POSATTN_MASK_TIMES_SLOPE, c.positions.q = NULL,
                     c.positions.k = NULL, c.positions.weights = NULL); /* a zeroed struct is still not NULL */
    }
    arena_close(&ar);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_alibi_bias                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct bias_call {
    int64_t n_heads, nq, nk;
    const float *slopes;
    posattn_positions positions;
    int use_positions;
    float *bias;
    int64_t row_stride, head_stride, row_begin, row_end;
} bias_call;

static bias_call bias_baseline(float *a) {
    bias_call c;
    memset(&c, 0, sizeof c);
    c.n_heads = 2, c.nq = 3, c.nk = 5, c.slopes = a + AT_SLOPES;
    c.use_positions = 1;
    c.positions.q = a + AT_Q, c.positions.k = a + AT_K, c.positions.weights = a + AT_WEIGHTS;
    c.bias = a + AT_PROBS, c.row_begin = 0, c.row_end = 6;
    return c;
}

static void expect_bias(arena *ar, const bias_call *c, posattn_status expected, const char *change, int line) {
    arena_reset(ar);
    posattn_status st = posattn_alibi_bias(c->n_heads, c->nq, c->nk, c->slopes, c->use_positions ? &c->positions : NULL,
                                           c->bias, c->row_stride, c->head_stride, c->row_begin, c->row_end);
    arena_expect(ar, st, expected, "bias", change, line);
}

#define BIAS_CASE(expected, ...)                                                                                   \
    do {                                                                                                           \
        bias_call c = bias_baseline(ar.a);                                                                         \
        float *a = ar.a;                                                                                           \
        (void)a;                                                                                                   \
        __VA_ARGS__;                                                                                               \
        expect_bias(&ar, &c, expected, #__VA_ARGS__, __LINE__);                                                    \
    } while (0)

START_TEST(test_bias_errors) {
    arena ar;
    arena_open(&ar, ARENA_FLOATS);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        BIAS_CASE(POSATTN_OK, (void)0);
        BIAS_CASE(POSATTN_OK, c.use_positions = 0);
        BIAS_CASE(POSATTN_OK, c.row_stride = 5, c.head_stride = 15);
        BIAS_CASE(POSATTN_OK, c.row_stride = 12, c.head_stride = 6);
        BIAS_CASE(POSATTN_OK, c.bias = a + AT_SLOPES - 30);   /* ends where the slopes begin */
        BIAS_CASE(POSATTN_OK, c.bias = a + AT_WEIGHTS + 2);   /* starts where the weights end */
        BIAS_CASE(POSATTN_OK, c.row_begin = 3, c.row_end = 3);

        BIAS_CASE(POSATTN_ERR_NULL, c.slopes = NULL);
        BIAS_CASE(POSATTN_ERR_NULL, c.bias = NULL);
        BIAS_CASE(POSATTN_ERR_SIZE, c.nk = 0);
        BIAS_CASE(POSATTN_ERR_SIZE, c.nk = -5);
        BIAS_CASE(POSATTN_ERR_SIZE, c.nq = 0, c.row_end = 0);
        BIAS_CASE(POSATTN_ERR_SIZE, c.n_heads = 0, c.row_end = 0);
        BIAS_CASE(POSATTN_ERR_SIZE, c.n_heads = -1, c.row_end = 0);
        BIAS_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = -1);
        BIAS_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = 5, c.row_end = 2);
        BIAS_CASE(POSATTN_ERR_ROW_RANGE, c.row_end = 7);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.row_stride = 4);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.row_stride = -1);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.head_stride = -1);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.head_stride = 10);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.row_stride = 6, c.head_stride = 10);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.positions.k_stride = -3);
        BIAS_CASE(POSATTN_ERR_STRIDE, c.positions.q_head_stride = -3);
        BIAS_CASE(POSATTN_ERR_OVERFLOW, c.n_heads = INT64_C(1) << 33, c.nq = INT64_C(1) << 31, c.row_end = 0);
        BIAS_CASE(POSATTN_ERR_OVERFLOW, c.n_heads = 1, c.nq = INT64_C(1) << 40, c.row_stride = INT64_C(1) << 30,
                  c.use_positions = 0, c.row_end = 1);
        BIAS_CASE(POSATTN_ERR_OVERFLOW, c.head_stride = BIG);
        BIAS_CASE(POSATTN_ERR_OVERFLOW, c.positions.k_stride = INT64_C(1) << 61);
        BIAS_CASE(POSATTN_ERR_OVERFLOW, c.positions.q_head_stride = BIG);
        BIAS_CASE(POSATTN_ERR_OVERLAP, c.bias = a + AT_SLOPES - 29);
        BIAS_CASE(POSATTN_ERR_OVERLAP, c.slopes = a + AT_PROBS + 29);
        BIAS_CASE(POSATTN_ERR_OVERLAP, c.positions.q = a + AT_PROBS + 1);
        BIAS_CASE(POSATTN_ERR_OVERLAP, c.positions.k = a + AT_PROBS + 27);
        BIAS_CASE(POSATTN_ERR_OVERLAP, c.positions.weights = a + AT_PROBS + 28);
        BIAS_CASE(POSATTN_ERR_AXES, c.positions.axes = 2, c.positions.k = NULL);
        BIAS_CASE(POSATTN_ERR_AXES, c.positions.axes = 5);
        BIAS_CASE(POSATTN_ERR_AXES, c.positions.axes = -1);
        BIAS_CASE(POSATTN_ERR_METRIC, c.positions.metric = (posattn_metric)7);
    }
    arena_close(&ar);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_alibi_slopes                                                                                           */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_slopes_errors) {
    static const struct {
        int64_t n_heads;
        float max_bias;
        int null_output;
        posattn_status expected;
        const char *what;
    } cases[] = {
        {4, 8.0f, 1, POSATTN_ERR_NULL, "slopes NULL"},
        {0, 8.0f, 0, POSATTN_ERR_SIZE, "n_heads 0"},
        {-4, 8.0f, 0, POSATTN_ERR_SIZE, "n_heads -4"},
        {4, -1.0f, 0, POSATTN_ERR_MAX_BIAS, "max_bias -1"},
        {4, -0x1p-149f, 0, POSATTN_ERR_MAX_BIAS, "max_bias -denormal"},
        {4, NAN, 0, POSATTN_ERR_MAX_BIAS, "max_bias NaN"},
        {4, INFINITY, 0, POSATTN_ERR_MAX_BIAS, "max_bias inf"},
        {4, -INFINITY, 0, POSATTN_ERR_MAX_BIAS, "max_bias -inf"},
        /* More heads than an address space holds floats: refused before writing (not in the header's list). */
        {INT64_C(1) << 62, 8.0f, 0, POSATTN_ERR_OVERFLOW, "n_heads 2^62"},
    };
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
            guarded out = guarded_output(4, sizeof(float), 0);
            fill_untouched(out.data, 4);
            posattn_status st = posattn_alibi_slopes(cases[k].n_heads, cases[k].max_bias,
                                                     cases[k].null_output ? NULL : out.data);
            CHECK(st == cases[k].expected, "isa %s, slopes with %s: returned %d (%s), expected %s",
                  posattn_isa_name(isa), cases[k].what, (int)st, posattn_status_string(st),
                  posattn_status_string(cases[k].expected));
            for (int h = 0; h < 4; ++h) {
                CHECK(same_bits(((float *)out.data)[h], untouched_pattern()), "isa %s, slopes with %s wrote slot %d",
                      posattn_isa_name(isa), cases[k].what, h);
            }
            guarded_check(&out, cases[k].what);
            guarded_free(&out);
        }
        float ok[4];
        ck_assert_int_eq(posattn_alibi_slopes(4, 0.0f, ok), POSATTN_OK); /* max_bias 0 is valid: all slopes 1 */
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Status strings                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_status_strings) {
    const posattn_status last = POSATTN_ERR_ISA_UNSUPPORTED;
    for (int a = POSATTN_OK; a <= (int)last; ++a) {
        const char *sa = posattn_status_string((posattn_status)a);
        ck_assert_msg(sa != NULL && sa[0] != '\0', "status %d has no name", a);
        for (int b = POSATTN_OK; b < a; ++b) {
            ck_assert_msg(strcmp(sa, posattn_status_string((posattn_status)b)) != 0,
                          "statuses %d and %d share the name \"%s\"", b, a, sa);
        }
    }
    ck_assert_str_eq(posattn_status_string(POSATTN_OK), "ok");
    ck_assert_ptr_nonnull(posattn_status_string((posattn_status)99));
    ck_assert_ptr_nonnull(posattn_status_string((posattn_status)-1));
}
END_TEST

static Suite *errors_suite(void) {
    Suite *s = suite_create("errors");
    TCase *tc = make_tcase("errors");
    tcase_add_test(tc, test_softmax_errors);
    tcase_add_test(tc, test_bias_errors);
    tcase_add_test(tc, test_slopes_errors);
    tcase_add_test(tc, test_status_strings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(errors_suite());
}
