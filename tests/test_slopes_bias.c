/*
 * posattn_alibi_slopes (SPEC 1) and posattn_alibi_bias, the external bias (SPEC 2), on every supported ISA.
 *
 * Slopes: the SPEC's printed vectors (1e-6 relative) and the header's 1 ulp against the formula in double.
 * Bias: one driver (run_bias_case) builds a case from a seed, calls every ISA, and checks canaries, untouched
 * padding and rows, and every value against -m |pq - pk| computed in double from the same float32 inputs, within
 * the header's 1.5 ulp (2.5 with axis weights), and bit for bit against the scalar result.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* Slopes                                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/* Calls posattn_alibi_slopes into a guarded (optionally misaligned) buffer and returns a copy. */
static void slopes_of(int64_t n_heads, float max_bias, int misalign, float *out, const char *what) {
    guarded g = guarded_output((size_t)n_heads, sizeof(float), misalign);
    fill_untouched(g.data, (size_t)n_heads);
    posattn_status st = posattn_alibi_slopes(n_heads, max_bias, g.data);
    CHECK(st == POSATTN_OK, "%s: posattn_alibi_slopes(%" PRId64 ", %g) returned %d", what, n_heads,
          (double)max_bias, (int)st);
    guarded_check(&g, what);
    memcpy(out, g.data, (size_t)n_heads * sizeof(float));
    guarded_free(&g);
}

static void check_slopes_within_1e6(const char *what, int64_t n_heads, const double *expected) {
    float slopes[64];
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        slopes_of(n_heads, 8.0f, 0, slopes, what);
        for (int64_t h = 0; h < n_heads; ++h) {
            CHECK(fabs(slopes[h] - expected[h]) <= 1e-6 * expected[h],
                  "%s isa %s head %" PRId64 ": %.9g, SPEC %.9g", what, posattn_isa_name(isa), h, (double)slopes[h],
                  expected[h]);
        }
    }
}

/* SPEC 1 test vectors, within 1e-6 relative. */
START_TEST(test_spec_slopes) {
    double h8[8], h12[12], h32[32];
    for (int h = 0; h < 8; ++h) h8[h] = ldexp(1.0, -(h + 1)); /* 2^-1 ... 2^-8 */
    for (int h = 0; h < 8; ++h) h12[h] = ldexp(1.0, -(h + 1));
    h12[8] = 0.707106781, h12[9] = 0.353553391, h12[10] = 0.176776695, h12[11] = 0.0883883476;
    for (int h = 0; h < 32; ++h) h32[h] = exp2(-0.25 * (h + 1)); /* m_h = 2^(-0.25(h+1)) */
    check_slopes_within_1e6("SPEC slopes H=8", 8, h8);
    check_slopes_within_1e6("SPEC slopes H=12", 12, h12);
    check_slopes_within_1e6("SPEC slopes H=32", 32, h32);
    /* The printed H=32 values, independently of the formula above. */
    const double printed32[4] = {0.840896415, 0.707106781, 0.594603558, 0.5};
    float slopes[32];
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        slopes_of(32, 8.0f, 0, slopes, "SPEC slopes H=32");
        for (int h = 0; h < 4; ++h) {
            CHECK(fabs(slopes[h] - printed32[h]) <= 1e-6 * printed32[h], "isa %s head %d: %.9g, SPEC %.9g",
                  posattn_isa_name(isa), h, (double)slopes[h], printed32[h]);
        }
        CHECK(slopes[31] == 0.00390625f, "isa %s head 31: %.9g, SPEC 0.00390625", posattn_isa_name(isa),
              (double)slopes[31]);
    }
}
END_TEST

/* Every head count 1..130 and several max_bias values, within the header's 1 ulp of the formula in double;
 * exactly n_heads values written (canary), aligned and misaligned output. */
START_TEST(test_slopes_within_one_ulp) {
    static const float max_biases[] = {0.0f, 0.5f, 1.0f, 3.0f, 8.0f, 12.5f, 16.0f, 20.0f};
    float slopes[130];
    char what[120];
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t b = 0; b < sizeof max_biases / sizeof max_biases[0]; ++b) {
            for (int64_t n = 1; n <= 130; ++n) {
                snprintf(what, sizeof what, "slopes isa %s H=%" PRId64 " max_bias %g", posattn_isa_name(isa), n,
                         (double)max_biases[b]);
                slopes_of(n, max_biases[b], (int)(n % 2), slopes, what);
                for (int64_t h = 0; h < n; ++h) {
                    double exact = oracle_slope(h, n, max_biases[b]);
                    CHECK(fabs(slopes[h] - exact) <= f32_ulp(exact), "%s head %" PRId64 ": %a, exact %a", what, h,
                          (double)slopes[h], exact);
                }
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* The bias driver                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum bias_layout {
    BIAS_DEFAULT,     /* strides 0 */
    BIAS_EXPLICIT,    /* nk, nq*nk */
    BIAS_PADDED,      /* rows of nk + 3, heads of nq (nk + 3) + 5 */
    BIAS_INTERLEAVED, /* [nq][H][nk + 1] */
    BIAS_LAYOUT_COUNT
} bias_layout;

typedef struct bias_case {
    const char *name;
    int64_t n_heads, nq, nk;
    float max_bias;       /* slopes from posattn_alibi_slopes; 0 means 8 */
    int zero_slope_heads; /* the last heads get slope 0 */
    positions_kind positions;
    double position_span;
    int infinite_keys;
    bias_layout layout;
    int misalign_bias, misalign_slopes, misalign_q, misalign_k, misalign_weights;
    int partial_rows;
    int64_t row_begin, row_end;
    uint64_t variant;
} bias_case;

static uint64_t bias_case_seed(const bias_case *c) {
    uint64_t h = UINT64_C(1469598103934665603);
    for (const char *p = c->name; *p; ++p) h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    h ^= (uint64_t)c->n_heads * 0x100000001B3u + (uint64_t)c->nq * 7919u + (uint64_t)c->nk * 1000003u;
    return test_case_seed(h ^ (c->variant * UINT64_C(0x9E3779B97F4A7C15)));
}

/* Checks one value against the oracle within the header's 1.5 ulp (2.5 ulp with axis weights, whose product
 * m_h * w is rounded once); infinities and zeros must be exact (zero of either sign). Every ISA must give the
 * scalar result bit for bit (header: "Bit-identical on all ISAs"). */
static void check_bias_value(const char *where, int64_t r, int64_t j, float b, double exact, int weighted,
                             const float *ref) {
    if (ref) {
        CHECK(same_bits(b, *ref), "%s: row %" PRId64 " key %" PRId64 ": %a, scalar %a (not bit-identical)", where, r,
              j, (double)b, (double)*ref);
    }
    if (exact == 0.0 || isinf(exact)) {
        CHECK(b == exact, "%s: row %" PRId64 " key %" PRId64 ": %a, expected %a", where, r, j, (double)b, exact);
        return;
    }
    double ulp = f32_ulp(exact), allowed = weighted ? 2.5 : 1.5;
    CHECK(fabs(b - exact) <= allowed * ulp,
          "%s: row %" PRId64 " key %" PRId64 ": %a, oracle %a, error %.3g ulp > %.1f", where, r, j, (double)b, exact,
          fabs(b - exact) / ulp, allowed);
}

static void run_bias_case(const bias_case *c) {
    const int64_t H = c->n_heads, nq = c->nq, nk = c->nk, rows = H * nq;
    const int64_t begin = c->partial_rows ? c->row_begin : 0, end = c->partial_rows ? c->row_end : rows;
    const uint64_t seed = bias_case_seed(c);
    rng g = rng_seeded(seed);
    char ctx[400];
    snprintf(ctx, sizeof ctx, "bias case '%s' (H=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 " positions=%s layout %d "
             "rows [%" PRId64 ",%" PRId64 ") seed 0x%016" PRIx64 ")",
             c->name, H, nq, nk, positions_kind_names[c->positions], (int)c->layout, begin, end, seed);

    guarded slopes_g = guarded_input((size_t)H, sizeof(float), c->misalign_slopes);
    float *slopes = slopes_g.data;
    ck_assert_int_eq(posattn_alibi_slopes(H, c->max_bias > 0 ? c->max_bias : 8.0f, slopes), POSATTN_OK);
    for (int64_t h = H - c->zero_slope_heads; h < H; ++h) {
        if (h >= 0) slopes[h] = 0.0f;
    }
    posattn_positions positions;
    position_buffers pos_bufs;
    positions_spec spec = {c->positions, H, nq, nk, c->position_span, c->infinite_keys,
                           c->misalign_q, c->misalign_k, c->misalign_weights};
    build_positions(&spec, &g, &positions, &pos_bufs);
    const posattn_positions *positions_arg = c->positions == POSITIONS_NULL ? NULL : &positions;

    int64_t row_arg = 0, head_arg = 0;
    switch (c->layout) {
    case BIAS_EXPLICIT: row_arg = nk, head_arg = nq * nk; break;
    case BIAS_PADDED: row_arg = nk + 3, head_arg = nq * (nk + 3) + 5; break;
    case BIAS_INTERLEAVED: row_arg = H * (nk + 1), head_arg = nk + 1; break;
    default: break;
    }
    const int64_t row = row_arg ? row_arg : nk, head = head_arg ? head_arg : nq * row;
    const int64_t extent = (H - 1) * head + (nq - 1) * row + nk;
    guarded out_g = guarded_output((size_t)extent, sizeof(float), c->misalign_bias);
    float *out = out_g.data;
    unsigned char *written = calloc((size_t)extent, 1);
    float *ref = malloc((size_t)extent * sizeof(float));
    ck_assert(written && ref);
    for (int64_t r = begin; r < end; ++r) memset(written + (r / nq) * head + (r % nq) * row, 1, (size_t)nk);

    int have_ref = 0;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        char where[480];
        snprintf(where, sizeof where, "%s isa %s", ctx, posattn_isa_name(isa));
        fill_untouched(out, (size_t)extent);
        posattn_status st = posattn_alibi_bias(H, nq, nk, slopes, positions_arg, out, row_arg, head_arg, begin, end);
        CHECK(st == POSATTN_OK, "%s: returned %d (%s)", where, (int)st, posattn_status_string(st));
        guarded_check(&out_g, where);
        for (int64_t e = 0; e < extent; ++e) {
            CHECK(written[e] || same_bits(out[e], untouched_pattern()),
                  "%s: element %" PRId64 " outside the computed rows was written", where, e);
        }
        for (int64_t r = begin; r < end; ++r) {
            int64_t h = r / nq, i = r % nq, at = h * head + i * row;
            for (int64_t j = 0; j < nk; ++j) {
                check_bias_value(where, r, j, out[at + j], oracle_bias(slopes, positions_arg, nq, nk, h, i, j),
                                 positions.weights != NULL, have_ref ? &ref[at + j] : NULL);
            }
        }
        if (isa == POSATTN_ISA_SCALAR) {
            memcpy(ref, out, (size_t)extent * sizeof(float));
            have_ref = 1;
        }
    }
    free(written);
    free(ref);
    guarded_free(&out_g);
    guarded_free(&slopes_g);
    free_positions(&pos_bufs);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Bias tests                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

/* SPEC 2: KV cache, m = 0.5, nq = 2, nk = 5, default positions (queries at 3 and 4). */
START_TEST(test_spec_kv_cache_bias) {
    const double expected[2][5] = {{-1.5, -1.0, -0.5, 0.0, -0.5}, {-2.0, -1.5, -1.0, -0.5, 0.0}};
    const float slope = 0.5f;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int zeroed = 0; zeroed <= 1; ++zeroed) { /* NULL positions and a zero-initialised struct */
            const posattn_positions none = {0};
            guarded g = guarded_output(10, sizeof(float), 0);
            float *bias = g.data;
            ck_assert_int_eq(posattn_alibi_bias(1, 2, 5, &slope, zeroed ? &none : NULL, bias, 0, 0, 0, 2),
                             POSATTN_OK);
            for (int i = 0; i < 2; ++i) {
                for (int j = 0; j < 5; ++j) {
                    check_bias_value("SPEC KV-cache bias", i, j, bias[i * 5 + j], expected[i][j], 0, NULL);
                }
            }
            guarded_check(&g, "SPEC KV-cache bias");
            guarded_free(&g);
        }
    }
}
END_TEST

/* Sizes around the vector widths (W = 4, 8, 16) and beyond, each with a position kind and a layout. */
START_TEST(test_bias_sizes) {
    static const int64_t sizes[] = {1,  2,  3,  4,  5,  7,  8,  9,  15, 16, 17, 23,  25,
                                    29, 31, 32, 33, 37, 47, 53, 64, 65, 100, 1000, 4099};
    uint64_t variant = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        for (int kind = 0; kind < POSITIONS_KIND_COUNT; ++kind, ++variant) {
            bias_case c = {0};
            c.name = "bias sizes";
            c.n_heads = 3, c.nq = sizes[s] > 100 ? 2 : 4, c.nk = sizes[s], c.variant = variant;
            c.positions = (positions_kind)kind, c.layout = (bias_layout)(variant % BIAS_LAYOUT_COUNT);
            c.zero_slope_heads = (int)(variant % 3 == 0);
            run_bias_case(&c);
        }
    }
}
END_TEST

/* Irregular positions up to 1e6 (and the float32 rounding of their differences), slopes down to 2^-40. */
START_TEST(test_bias_large_positions) {
    static const float max_biases[] = {8.0f, 40.0f};
    uint64_t variant = 0;
    for (size_t b = 0; b < 2; ++b) {
        for (int kind = POSITIONS_SHARED; kind < POSITIONS_KIND_COUNT; ++kind, ++variant) {
            bias_case c = {0};
            c.name = "bias, positions up to 1e6";
            c.n_heads = 5, c.nq = 7, c.nk = 500, c.variant = variant, c.max_bias = max_biases[b];
            c.positions = (positions_kind)kind, c.position_span = 1e6, c.zero_slope_heads = 1;
            run_bias_case(&c);
        }
    }
}
END_TEST

/* Each pointer misaligned on its own; every layout; partial and empty row ranges. */
START_TEST(test_bias_layouts) {
    static const int64_t sizes[] = {7, 17, 37};
    uint64_t variant = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        for (int which = 0; which < 5; ++which, ++variant) {
            bias_case c = {0};
            c.name = "bias, one misaligned pointer";
            c.n_heads = 3, c.nq = 4, c.nk = sizes[s], c.variant = variant, c.positions = POSITIONS_WEIGHTED;
            c.misalign_bias = which == 0, c.misalign_slopes = which == 1, c.misalign_q = which == 2;
            c.misalign_k = which == 3, c.misalign_weights = which == 4;
            run_bias_case(&c);
        }
        for (int l = 0; l < BIAS_LAYOUT_COUNT; ++l) {
            static const positions_kind strided_kinds[] = {POSITIONS_PER_HEAD, POSITIONS_STRIDED};
            for (int k = 0; k < 2; ++k, ++variant) {
                bias_case c = {0};
                c.name = "bias, strided";
                c.n_heads = 3, c.nq = 4, c.nk = sizes[s], c.variant = variant;
                c.layout = (bias_layout)l, c.positions = strided_kinds[k];
                run_bias_case(&c);
            }
        }
    }
    static const struct {
        int64_t begin, end;
    } ranges[] = {{0, 1}, {2, 3}, {1, 11}, {11, 12}, {0, 0}, {7, 7}, {12, 12}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; ++k) {
        bias_case c = {0};
        c.name = ranges[k].begin == ranges[k].end ? "bias, empty row range" : "bias, partial row range";
        c.n_heads = 3, c.nq = 4, c.nk = 9, c.variant = k, c.layout = BIAS_PADDED, c.positions = POSITIONS_SHARED;
        c.partial_rows = 1, c.row_begin = ranges[k].begin, c.row_end = ranges[k].end;
        run_bias_case(&c);
    }
}
END_TEST

/* Per-head weights (A = 1: effective slope m * w): L1 with w in [0, 2] (one head 0), L2 with w in [-2, 2]. The
 * oracle multiplies m * w in double; the header allows 2.5 ulp with weights (m * w is rounded once). With
 * max_bias 8 and H <= 8 every slope is a power of two and m * w is exact; with H = 12 and 32 it is not. */
START_TEST(test_bias_weights) {
    static const int64_t head_counts[] = {3, 4, 5, 8, 12, 32};
    uint64_t variant = 0;
    for (size_t k = 0; k < sizeof head_counts / sizeof head_counts[0]; ++k) {
        for (int l2 = 0; l2 <= 1; ++l2, ++variant) {
            bias_case c = {0};
            c.name = "bias, weighted heads";
            c.n_heads = head_counts[k], c.nq = 5, c.nk = 67, c.variant = variant;
            c.positions = l2 ? POSITIONS_WEIGHTED_L2 : POSITIONS_WEIGHTED, c.position_span = 1000.0;
            run_bias_case(&c);
        }
    }
}
END_TEST

/* For one axis the L2 metric equals L1 (header): same bits, with weights w >= 0 and without weights; and L2 with
 * weight w equals L1 with weight |w|. */
START_TEST(test_bias_l2_equals_l1) {
    enum { H = 4, NQ = 3, NK = 41 };
    rng g = rng_seeded(test_case_seed(77));
    float q[NQ], k[NK], slopes[H], weights[H], abs_weights[H];
    float l1[H * NQ * NK], l2[H * NQ * NK];
    for (int i = 0; i < NQ; ++i) q[i] = rng_float(&g, 0.0, 500.0);
    for (int j = 0; j < NK; ++j) k[j] = rng_float(&g, 0.0, 500.0);
    for (int h = 0; h < H; ++h) {
        weights[h] = rng_float(&g, -2.0, 2.0);
        abs_weights[h] = fabsf(weights[h]);
    }
    ck_assert_int_eq(posattn_alibi_slopes(H, 8.0f, slopes), POSATTN_OK);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int weighted = 0; weighted <= 1; ++weighted) {
            posattn_positions p1 = {q, k, 1, 0, 0, 0, 0, weighted ? abs_weights : NULL, POSATTN_METRIC_L1};
            posattn_positions p2 = {q, k, 1, 0, 0, 0, 0, weighted ? weights : NULL, POSATTN_METRIC_L2};
            ck_assert_int_eq(posattn_alibi_bias(H, NQ, NK, slopes, &p1, l1, 0, 0, 0, H * NQ), POSATTN_OK);
            ck_assert_int_eq(posattn_alibi_bias(H, NQ, NK, slopes, &p2, l2, 0, 0, 0, H * NQ), POSATTN_OK);
            for (int e = 0; e < H * NQ * NK; ++e) {
                CHECK(same_bits(l1[e], l2[e]), "isa %s%s: element %d: L1 %a, L2 %a", posattn_isa_name(isa),
                      weighted ? " (weighted)" : "", e, (double)l1[e], (double)l2[e]);
            }
        }
    }
}
END_TEST

/* A zero slope, or a zero weight, gives +-0 even with infinite positions (never 0 * inf = NaN); with a nonzero
 * slope an infinite key position gives -inf. */
START_TEST(test_bias_zero_slope_infinite_positions) {
    enum { H = 3, NQ = 2, NK = 9 };
    const float q[NQ] = {INFINITY, 3.0f};
    float k[NK];
    for (int j = 0; j < NK; ++j) k[j] = (j % 3 == 1) ? INFINITY : (j % 3 == 2 ? -INFINITY : (float)j);
    const float slopes[H] = {0.0f, 0.25f, 0.5f}, weights[H] = {1.0f, 0.0f, 1.0f};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int metric = POSATTN_METRIC_L1; metric <= POSATTN_METRIC_L2; ++metric) {
            posattn_positions p = {q, k, 1, 0, 0, 0, 0, weights, (posattn_metric)metric};
            float bias[H * NQ * NK];
            ck_assert_int_eq(posattn_alibi_bias(H, NQ, NK, slopes, &p, bias, 0, 0, 0, H * NQ), POSATTN_OK);
            for (int h = 0; h < 2; ++h) { /* head 0: slope 0; head 1: weight 0 */
                for (int e = 0; e < NQ * NK; ++e) {
                    CHECK(bias[h * NQ * NK + e] == 0.0f, "isa %s head %d element %d: %a, expected +-0",
                          posattn_isa_name(isa), h, e, (double)bias[h * NQ * NK + e]);
                }
            }
            for (int j = 0; j < NK; ++j) { /* head 2, query at 3: -inf for infinite keys, -0.5|3 - j| otherwise */
                double expected = isinf(k[j]) ? -INFINITY : -0.5 * fabs(3.0 - j);
                float got = bias[(2 * NQ + 1) * NK + j];
                CHECK(got == expected, "isa %s head 2 key %d: %a, expected %a", posattn_isa_name(isa), j,
                      (double)got, expected);
            }
        }
    }
}
END_TEST

/* Infinite key positions in the driver: zero-slope heads give 0, others -inf at those keys. */
START_TEST(test_bias_infinite_keys) {
    uint64_t variant = 0;
    for (int kind = POSITIONS_SHARED; kind <= POSITIONS_STRIDED; ++kind) {
        if (kind == POSITIONS_QUERIES_ONLY) continue; /* no key array */
        bias_case c = {0};
        c.name = "bias, infinite key positions";
        c.n_heads = 3, c.nq = 3, c.nk = 30, c.variant = variant++;
        c.positions = (positions_kind)kind, c.infinite_keys = 1, c.zero_slope_heads = 1;
        run_bias_case(&c);
    }
}
END_TEST

static Suite *slopes_bias_suite(void) {
    Suite *s = suite_create("slopes_bias");
    TCase *slopes = make_tcase("slopes");
    tcase_add_test(slopes, test_spec_slopes);
    tcase_add_test(slopes, test_slopes_within_one_ulp);
    suite_add_tcase(s, slopes);

    TCase *bias = make_tcase("bias");
    tcase_add_test(bias, test_spec_kv_cache_bias);
    tcase_add_test(bias, test_bias_sizes);
    tcase_add_test(bias, test_bias_large_positions);
    tcase_add_test(bias, test_bias_layouts);
    tcase_add_test(bias, test_bias_weights);
    tcase_add_test(bias, test_bias_l2_equals_l1);
    tcase_add_test(bias, test_bias_zero_slope_infinite_positions);
    tcase_add_test(bias, test_bias_infinite_keys);
    suite_add_tcase(s, bias);
    return s;
}

int main(void) {
    return run_suite(slopes_bias_suite());
}
