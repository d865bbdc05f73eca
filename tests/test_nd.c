/*
 * N-D positions (SPEC 2, A = 1..4 axes, metrics L1 and L2, per-head axis weights and positions) for the external
 * bias and the fused softmax, on every supported ISA.
 *
 * Every result is checked against float64 oracles computed here from the same float32 inputs, within the header's
 * N-D bounds (bias: (K + 2) u for L1, (K/2 + 4) u for L2; softmax: (20 L + d + 22) u), and the biases bit for bit
 * against the scalar reference. Identities: A = 1 is the 1-D path; L1 with one-hot weights is the 1-D kernel on
 * that axis; a common translation leaves the outputs unchanged; L2 with A = 1 is L1; invalid A, metric and weights
 * are refused. Outputs live in guarded buffers (canaries) and inputs in exact-size ones (AddressSanitizer).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define U UNIT_ROUNDOFF

/* ------------------------------------------------------------------------------------------------------------ */
/* Problems                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct nd_problem {
    int64_t H, nq, nk, A, q_stride, k_stride;
    int per_head, weights_kind, l2; /* weights_kind: 0 none, 1 random (some 0), 2 one-hot on axis `axis` */
    int axis;
    float *slopes, *q, *k, *w;
    guarded gq, gk, gw;
    posattn_positions pos;
} nd_problem;

static void make_problem(nd_problem *p, rng *g, double span) {
    int64_t heads_q = p->per_head ? p->H : 1;
    int64_t q_len = heads_q * p->nq * p->q_stride, k_len = (p->per_head ? p->H : 1) * p->nk * p->k_stride;
    /* Exact-size arrays: the last position ends at its A-th float (no padding after it). */
    q_len -= p->q_stride - p->A, k_len -= p->k_stride - p->A;
    p->gq = guarded_input((size_t)q_len, sizeof(float), 1);
    p->gk = guarded_input((size_t)k_len, sizeof(float), 0);
    p->q = p->gq.data, p->k = p->gk.data;
    fill_nan(p->q, (size_t)q_len); /* padding between positions is NaN: never read */
    fill_nan(p->k, (size_t)k_len);
    for (int64_t n = 0; n < heads_q * p->nq; ++n) {
        for (int64_t a = 0; a < p->A; ++a) p->q[n * p->q_stride + a] = rng_float(g, -span, span);
    }
    for (int64_t n = 0; n < (p->per_head ? p->H : 1) * p->nk; ++n) {
        for (int64_t a = 0; a < p->A; ++a) p->k[n * p->k_stride + a] = rng_float(g, -span, span);
    }
    p->slopes = malloc((size_t)p->H * sizeof(float));
    posattn_alibi_slopes(p->H, 8.0f, p->slopes);
    memset(&p->pos, 0, sizeof p->pos);
    p->w = NULL;
    if (p->weights_kind) {
        p->gw = guarded_input((size_t)(p->H * p->A), sizeof(float), 1);
        p->w = p->gw.data;
        for (int64_t n = 0; n < p->H * p->A; ++n) {
            if (p->weights_kind == 2) {
                p->w[n] = n % p->A == p->axis ? 1.0f : 0.0f;
            } else {
                p->w[n] = rng_below(g, 4) == 0 ? 0.0f : rng_float(g, p->l2 ? -2.0 : 0.0, 2.0);
            }
        }
    }
    p->pos.q = p->q, p->pos.k = p->k, p->pos.axes = p->A, p->pos.weights = p->w;
    p->pos.q_stride = p->q_stride, p->pos.k_stride = p->k_stride;
    p->pos.q_head_stride = p->per_head ? p->nq * p->q_stride : 0;
    p->pos.k_head_stride = p->per_head ? p->nk * p->k_stride : 0;
    p->pos.metric = p->l2 ? POSATTN_METRIC_L2 : POSATTN_METRIC_L1;
}

static void free_problem(nd_problem *p) {
    guarded_free(&p->gq);
    guarded_free(&p->gk);
    if (p->w) guarded_free(&p->gw);
    free(p->slopes);
}

/* Exact -m_h dist (double from the float32 inputs), the number of axes kept (weight != 0) and the bound. */
static double oracle_bias_nd(const nd_problem *p, int64_t h, int64_t i, int64_t j, double *bound) {
    const float *q = p->q + h * p->pos.q_head_stride + i * p->q_stride;
    const float *k = p->k + h * p->pos.k_head_stride + j * p->k_stride;
    double acc = 0.0;
    int kept = 0, weighted = 0;
    for (int64_t a = 0; a < p->A; ++a) {
        double w = p->w ? (double)p->w[h * p->A + a] : 1.0;
        if (w == 0.0) continue;
        ++kept;
        weighted |= fabs(w) != 1.0;
        double d = (double)q[a] - (double)k[a];
        acc += p->l2 ? (w * d) * (w * d) : w * fabs(d);
    }
    double dist = p->l2 ? sqrt(acc) : acc;
    double b = -(double)p->slopes[h] * dist;
    double rel = p->l2 ? (kept / 2.0 + 4.0) : (kept + 2.0);
    if (kept <= 1) rel = 3.0; /* the 1-D bound, 2.5 ulp with weights: within 3 u relative to the binade... */
    (void)weighted;
    *bound = (rel + 0.01) * U * fabs(b) + (kept <= 1 ? 2.5 * f32_ulp(b) : 0.0);
    return kept ? b : 0.0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Calls                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

static float *bias_of(const nd_problem *p, const posattn_positions *pos) {
    size_t n = (size_t)(p->H * p->nq * p->nk);
    guarded g = guarded_output(n, sizeof(float), 1);
    fill_untouched(g.data, n);
    posattn_status st = posattn_alibi_bias(p->H, p->nq, p->nk, p->slopes, pos, g.data, 0, 0, 0, p->H * p->nq);
    CHECK(st == POSATTN_OK, "posattn_alibi_bias returned %d (%s)", (int)st, posattn_status_string(st));
    guarded_check(&g, "nd bias");
    float *out = malloc(n * sizeof(float));
    memcpy(out, g.data, n * sizeof(float));
    guarded_free(&g);
    return out;
}

static void softmax_of(const nd_problem *p, const posattn_positions *pos, const float *scores,
                       const posattn_softmax_options *o, int in_place, float *out) {
    size_t n = (size_t)(p->H * p->nq * p->nk);
    guarded g = guarded_output(n, sizeof(float), 0);
    if (in_place) {
        memcpy(g.data, scores, n * sizeof(float));
    } else {
        fill_untouched(g.data, n);
    }
    posattn_status st = posattn_alibi_softmax(p->H, p->nq, p->nk, in_place ? g.data : scores, 0, 0, g.data, 0, 0,
                                              0.125f, p->slopes, pos, o, 0, p->H * p->nq);
    CHECK(st == POSATTN_OK, "posattn_alibi_softmax returned %d (%s)", (int)st, posattn_status_string(st));
    guarded_check(&g, "nd softmax");
    memcpy(out, g.data, n * sizeof(float));
    guarded_free(&g);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* SPEC 2 vectors                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_spec_vectors) {
    const float q[2] = {0, 0}, k[8] = {0, 0, 1, 0, 0, 1, 2, 3};
    const double l2[4] = {0, 1, 1, 3.60555128}, l1[4] = {0, 1, 1, 5};
    const float slope = 1.0f;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int metric = 0; metric < 2; ++metric) {
            posattn_positions pos = {.q = q, .k = k, .axes = 2, .metric = (posattn_metric)metric};
            float bias[4];
            ck_assert_int_eq(posattn_alibi_bias(1, 1, 4, &slope, &pos, bias, 0, 0, 0, 1), POSATTN_OK);
            for (int j = 0; j < 4; ++j) {
                double want = -(metric ? l2[j] : l1[j]);
                CHECK(fabs(bias[j] - want) <= 1e-7 * fabs(want), "isa %s metric %d key %d: %.9g, SPEC %.9g",
                      posattn_isa_name(isa), metric, j, (double)bias[j], want);
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* External bias: oracle, bound, bit for bit across ISAs                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

static void run_bias_case(nd_problem *p, uint64_t seed) {
    rng g = rng_seeded(seed);
    make_problem(p, &g, 50.0);
    float *ref = NULL;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float *b = bias_of(p, &p->pos);
        for (int64_t h = 0; h < p->H; ++h) {
            for (int64_t i = 0; i < p->nq; ++i) {
                for (int64_t j = 0; j < p->nk; ++j) {
                    double bound, want = oracle_bias_nd(p, h, i, j, &bound);
                    float got = b[(h * p->nq + i) * p->nk + j];
                    CHECK(fabs(got - want) <= bound,
                          "seed %#" PRIx64 " isa %s A %" PRId64 " l2 %d strides %" PRId64 "/%" PRId64
                          " (h %" PRId64 " i %" PRId64 " j %" PRId64 "): %.9g, exact %.9g",
                          seed, posattn_isa_name(isa), p->A, p->l2, p->q_stride, p->k_stride, h, i, j, (double)got,
                          want);
                    if (ref) {
                        CHECK(same_bits(got, ref[(h * p->nq + i) * p->nk + j]),
                              "seed %#" PRIx64 " isa %s: not bit-identical to scalar at %" PRId64 "/%" PRId64
                              "/%" PRId64,
                              seed, posattn_isa_name(isa), h, i, j);
                    }
                }
            }
        }
        if (!ref) {
            ref = b;
        } else {
            free(b);
        }
    }
    free(ref);
    free_problem(p);
}

START_TEST(test_bias_nd) {
    static const int64_t sizes[] = {1, 3, 7, 8, 15, 16, 17, 33, 70};
    uint64_t n = 0;
    for (int64_t A = 2; A <= 4; ++A) {
        for (int l2 = 0; l2 < 2; ++l2) {
            for (int layout = 0; layout < 3; ++layout) {
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
                    nd_problem p = {.H = 3, .nq = 2, .nk = sizes[s], .A = A, .l2 = l2};
                    /* packed, padded within 4 floats (or 5), and wide (gathered) strides */
                    p.q_stride = layout == 0 ? A : A + 1;
                    p.k_stride = layout == 0 ? A : layout == 1 ? (A < 4 ? A + 1 : 5) : 7;
                    p.per_head = (int)(s & 1);
                    p.weights_kind = (int)((s + layout) % 2);
                    run_bias_case(&p, test_case_seed(n++));
                }
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Fused softmax: oracle and N-D bound                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct opts_case {
    int causal, window, mask, sinks, softcap, in_place, lse;
} opts_case;

static void check_softmax_nd(const nd_problem *p, const float *scores, const posattn_softmax_options *o,
                             const float *got, const float *lse, const char *what, uint64_t seed) {
    const int64_t nq = p->nq, nk = p->nk;
    double *x = malloc((size_t)nk * sizeof(double));
    double *L = malloc((size_t)nk * sizeof(double));
    unsigned char *valid = malloc((size_t)nk);
    for (int64_t r = 0; r < p->H * nq; ++r) {
        int64_t h = r / nq, i = r % nq, diagonal = i + nk - nq;
        double mx = o->sinks ? (double)o->sinks[h] : -INFINITY, Lmax = o->sinks ? fabs((double)o->sinks[h]) : 0.0;
        for (int64_t j = 0; j < nk; ++j) {
            int v = 1;
            if ((o->flags & POSATTN_CAUSAL) && j > diagonal) v = 0;
            if (o->window > 0 && llabs(j - diagonal) >= o->window) v = 0;
            double m = 0.0;
            if (o->mask) {
                m = o->mask_type == POSATTN_MASK_F16 ? f16_to_f64(((const uint16_t *)o->mask)[i * nk + j])
                                                     : (double)((const float *)o->mask)[i * nk + j];
                if (m == -INFINITY) v = 0;
            }
            valid[j] = (unsigned char)v;
            if (!v) continue;
            double s = 0.125 * (double)scores[r * nk + j];
            if (o->softcap > 0.0f) s = (double)o->softcap * tanh(s / (double)o->softcap);
            double bound, b = oracle_bias_nd(p, h, i, j, &bound);
            x[j] = s + b + m;
            L[j] = fabs(s) + fabs(b) + fabs(m);
            if (x[j] > mx) mx = x[j];
            if (L[j] > Lmax) Lmax = L[j];
        }
        double sum = o->sinks ? exp((double)o->sinks[h] - mx) : 0.0;
        for (int64_t j = 0; j < nk; ++j) {
            if (valid[j]) sum += exp(x[j] - mx);
        }
        for (int64_t j = 0; j < nk; ++j) {
            float y = got[r * nk + j];
            if (!valid[j] || mx == -INFINITY) {
                CHECK(y == 0.0f, "%s seed %#" PRIx64 " row %" PRId64 " key %" PRId64 ": excluded key is %.9g", what,
                      seed, r, j, (double)y);
                continue;
            }
            double want = exp(x[j] - mx) / sum, d = mx - x[j];
            double tol = (20.0 * Lmax + d + 22.0) * U * want + SOFTMAX_ABS_BOUND;
            CHECK(fabs(y - want) <= tol,
                  "%s seed %#" PRIx64 " A %" PRId64 " l2 %d row %" PRId64 " key %" PRId64 ": %.9g, exact %.9g (L %g)",
                  what, seed, p->A, p->l2, r, j, (double)y, want, Lmax);
        }
        if (lse) {
            double want = mx == -INFINITY ? -INFINITY : mx + log(sum);
            if (isinf(want)) {
                CHECK(lse[r] == -INFINITY, "%s: lse of an empty row is %g", what, (double)lse[r]);
            } else {
                CHECK(fabs(lse[r] - want) <= (21.0 * Lmax + 20.0) * U + U * fabs(want), "%s row %" PRId64
                      ": lse %.9g, exact %.9g", what, r, (double)lse[r], want);
            }
        }
    }
    free(x);
    free(L);
    free(valid);
}

static void run_softmax_case(nd_problem *p, const opts_case *oc, uint64_t seed) {
    rng g = rng_seeded(seed);
    make_problem(p, &g, 20.0);
    size_t n = (size_t)(p->H * p->nq * p->nk);
    guarded gs = guarded_input(n, sizeof(float), 0);
    float *scores = gs.data;
    for (size_t m = 0; m < n; ++m) scores[m] = rng_float(&g, -200.0, 200.0);
    posattn_softmax_options o = {0};
    float mask32[64 * 256];
    uint16_t mask16[64 * 256];
    float sinks[16], lse[256];
    ck_assert(p->nq * p->nk <= 64 * 256 && p->H <= 16 && p->H * p->nq <= 256);
    if (oc->causal) o.flags |= POSATTN_CAUSAL;
    if (oc->window) o.window = 5;
    if (oc->softcap) o.softcap = 20.0f;
    if (oc->mask) {
        for (int64_t m = 0; m < p->nq * p->nk; ++m) {
            float v = rng_below(&g, 5) == 0 ? -INFINITY : rng_float(&g, -3.0, 1.0);
            mask32[m] = v;
            mask16[m] = f32_to_f16(v);
        }
        o.mask = oc->mask == 2 ? (const void *)mask16 : (const void *)mask32;
        o.mask_type = oc->mask == 2 ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
    }
    if (oc->sinks) {
        for (int64_t h = 0; h < p->H; ++h) sinks[h] = rng_float(&g, -2.0, 4.0);
        o.sinks = sinks;
    }
    if (oc->lse) o.lse = lse;
    float *out = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    int have_ref = 0;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        softmax_of(p, &p->pos, scores, &o, oc->in_place, out);
        char what[64];
        snprintf(what, sizeof what, "softmax nd isa %s", posattn_isa_name(isa));
        check_softmax_nd(p, scores, &o, out, oc->lse ? lse : NULL, what, seed);
        if (!have_ref) memcpy(ref, out, n * sizeof(float)), have_ref = 1;
    }
    free(out);
    free(ref);
    guarded_free(&gs);
    free_problem(p);
}

START_TEST(test_softmax_nd) {
    static const opts_case opts[] = {
        {0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 1}, {0, 1, 1, 0, 0, 0, 0}, {0, 0, 2, 1, 0, 1, 1},
        {1, 0, 1, 1, 1, 0, 1}, {0, 0, 0, 0, 1, 1, 0},
    };
    static const int64_t sizes[] = {1, 5, 16, 17, 40, 131};
    uint64_t n = 1000;
    for (int64_t A = 2; A <= 4; ++A) {
        for (int l2 = 0; l2 < 2; ++l2) {
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
                for (size_t c = 0; c < sizeof opts / sizeof opts[0]; ++c) {
                    nd_problem p = {.H = 2, .nq = 3, .nk = sizes[s], .A = A, .l2 = l2};
                    p.q_stride = A + (int64_t)(c & 1);
                    p.k_stride = (c % 3 == 2) ? 6 : A;
                    p.per_head = (int)(c & 1);
                    p.weights_kind = (int)(s % 2);
                    run_softmax_case(&p, &opts[c], test_case_seed(n++));
                }
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Identities                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

static void assert_same(const float *a, const float *b, size_t n, const char *what) {
    for (size_t m = 0; m < n; ++m) {
        CHECK(same_bits(a[m], b[m]), "%s: element %zu differs: %.9g vs %.9g", what, m, (double)a[m], (double)b[m]);
    }
}

/* A = 1 with every field spelled out is the 1-D path (axes 0), and L2 with A = 1 is L1: bit for bit. */
START_TEST(test_one_axis_is_1d) {
    nd_problem p = {.H = 4, .nq = 5, .nk = 37, .A = 1, .q_stride = 1, .k_stride = 2, .weights_kind = 1};
    rng g = rng_seeded(test_case_seed(7));
    make_problem(&p, &g, 100.0);
    size_t n = (size_t)(p.H * p.nq * p.nk);
    float *scores = malloc(n * sizeof(float)), *s1 = malloc(n * sizeof(float)), *s2 = malloc(n * sizeof(float));
    for (size_t m = 0; m < n; ++m) scores[m] = rng_float(&g, -50.0, 50.0);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        posattn_positions zero_axes = p.pos, l2 = p.pos;
        zero_axes.axes = 0;
        l2.metric = POSATTN_METRIC_L2;
        float *b1 = bias_of(&p, &p.pos), *b0 = bias_of(&p, &zero_axes), *b2 = bias_of(&p, &l2);
        assert_same(b1, b0, n, "bias A = 1 vs axes 0");
        assert_same(b1, b2, n, "bias L2 vs L1 with A = 1");
        free(b0), free(b1), free(b2);
        softmax_of(&p, &p.pos, scores, NULL, 0, s1);
        softmax_of(&p, &l2, scores, NULL, 0, s2);
        assert_same(s1, s2, n, "softmax L2 vs L1 with A = 1");
    }
    free(scores), free(s1), free(s2);
    free_problem(&p);
}
END_TEST

/* Regression (found by fuzz_alibi_bias): with one axis, a weight of 0 means no bias even when the slope is infinite;
 * the effective slope used to be formed as inf * 0 = NaN. Expected: a bias of exactly 0 and a uniform softmax. */
START_TEST(test_zero_weight_infinite_slope) {
    const float slopes[2] = {INFINITY, 0.5f}, weights[2] = {0.0f, 0.0f};
    const float q[1] = {3.0f}, k[3] = {0.0f, 1.0f, 7.0f}, scores[6] = {0};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int metric = POSATTN_METRIC_L1; metric <= POSATTN_METRIC_L2; ++metric) {
            posattn_positions pos = {.q = q, .k = k, .axes = 1, .weights = weights, .metric = (posattn_metric)metric};
            float bias[6], probs[6];
            ck_assert_int_eq(posattn_alibi_bias(2, 1, 3, slopes, &pos, bias, 0, 0, 0, 2), POSATTN_OK);
            ck_assert_int_eq(posattn_alibi_softmax(2, 1, 3, scores, 0, 0, probs, 0, 0, 1.0f, slopes, &pos, NULL, 0, 2),
                             POSATTN_OK);
            for (int j = 0; j < 6; ++j) {
                CHECK(bias[j] == 0.0f, "isa %s metric %d: bias[%d] = %g, expected 0", posattn_isa_name(isa), metric, j,
                      (double)bias[j]);
                CHECK(fabs(probs[j] - 1.0 / 3.0) <= 1e-6, "isa %s metric %d: probs[%d] = %g, expected 1/3",
                      posattn_isa_name(isa), metric, j, (double)probs[j]);
            }
        }
    }
}
END_TEST

/* Regression (found by fuzz_alibi_bias): a NaN coordinate with a payload came out of AVX-512 with its payload and
 * out of the scalar path as the default NaN, which the fuzzer's "bit-identical on every ISA" check rejected. The
 * header now leaves the NaN unspecified: every pair that reads a NaN coordinate is NaN on every ISA, and every
 * other value stays bit-identical to the scalar path. */
START_TEST(test_nan_coordinates_any_isa) {
    const uint32_t payload_bits = 0x7fff26e8u, negative_nan_bits = 0xffc00000u;
    float q_nan, k_nan;
    memcpy(&q_nan, &payload_bits, sizeof q_nan);
    memcpy(&k_nan, &negative_nan_bits, sizeof k_nan);
    /* Query 0 has a NaN on axis 1 (its whole row is NaN); key 3 a negative NaN on axis 2 (column 3 is NaN). */
    const float q[2 * 3] = {-6.9f, q_nan, 6.1f, 1.0f, 2.0f, 3.0f};
    const float k[4 * 3] = {-5.6f, -10.0f, 0.5f, 0.0f, 1.0f, 2.0f, 4.0f, -3.0f, 8.0f, 2.0f, 2.0f, k_nan};
    const float weights[3] = {2.0f, 2.0f, 2.0f}, slopes[1] = {-1.75f};
    for (int metric = POSATTN_METRIC_L1; metric <= POSATTN_METRIC_L2; ++metric) {
        posattn_positions pos = {.q = q, .k = k, .axes = 3, .weights = weights, .metric = (posattn_metric)metric};
        float ref[8];
        ck_assert(enter_isa(POSATTN_ISA_SCALAR));
        ck_assert_int_eq(posattn_alibi_bias(1, 2, 4, slopes, &pos, ref, 0, 0, 0, 2), POSATTN_OK);
        FOR_EACH_ISA(isa) {
            if (!enter_isa(isa)) continue;
            float bias[8];
            ck_assert_int_eq(posattn_alibi_bias(1, 2, 4, slopes, &pos, bias, 0, 0, 0, 2), POSATTN_OK);
            for (int e = 0; e < 8; ++e) {
                const int reads_nan = e < 4 || e == 7;
                if (reads_nan) {
                    CHECK(isnan(bias[e]), "isa %s metric %d: bias[%d] = %g, expected NaN", posattn_isa_name(isa),
                          metric, e, (double)bias[e]);
                } else {
                    CHECK(isfinite(bias[e]) && memcmp(&bias[e], &ref[e], sizeof(float)) == 0,
                          "isa %s metric %d: bias[%d] = %a, scalar %a", posattn_isa_name(isa), metric, e,
                          (double)bias[e], (double)ref[e]);
                }
            }
        }
    }
}
END_TEST

/* Regression (found by fuzz_alibi_bias): four L1 terms w |Δ| of about 2^-140 are each rounded as subnormals (within
 * 2^-150), then multiplied by the slope: the error exceeded a blanket 2^-148 allowance, so the header now states the
 * subnormal terms one by one (K 2^-150 |m| for L1, sqrt(K) 2^-75 |m| for L2, 2^-150 for the bias itself). */
START_TEST(test_subnormal_terms_bound) {
    const float w = 0x1.373734p+0f, m = -0x1.713cf8p+0f, tiny = -0x1p-140f;
    const float weights[4] = {w, w, w, w}, slopes[1] = {m};
    const float q[4] = {tiny, tiny, tiny, tiny}, k[2 * 4] = {0.0f, 0.0f, 0.0f, 0.0f, tiny, 0.0f, -tiny, 0x1p-130f};
    for (int metric = POSATTN_METRIC_L1; metric <= POSATTN_METRIC_L2; ++metric) {
        const int l2 = metric == POSATTN_METRIC_L2;
        posattn_positions pos = {.q = q, .k = k, .axes = 4, .weights = weights, .metric = (posattn_metric)metric};
        FOR_EACH_ISA(isa) {
            if (!enter_isa(isa)) continue;
            float bias[2];
            ck_assert_int_eq(posattn_alibi_bias(1, 1, 2, slopes, &pos, bias, 0, 0, 0, 1), POSATTN_OK);
            for (int j = 0; j < 2; ++j) {
                double acc = 0.0;
                for (int a = 0; a < 4; ++a) {
                    double t = (double)w * fabs((double)q[a] - (double)k[j * 4 + a]);
                    acc += l2 ? t * t : t;
                }
                const double exact = -(double)m * (l2 ? sqrt(acc) : acc);
                const double slack = l2 ? 2.0 * fabs((double)m) * 0x1p-75 : 4.0 * fabs((double)m) * 0x1p-150;
                const double bound = 6.0 * 0x1p-24 * fabs(exact) + 0x1p-150 + slack;
                CHECK(fabs((double)bias[j] - exact) <= bound, "isa %s metric %d key %d: %a, exact %a, bound %g",
                      posattn_isa_name(isa), metric, j, (double)bias[j], exact, bound);
            }
        }
    }
}
END_TEST

/* L1 (and L2) with one-hot weights is the 1-D kernel on that axis, bit for bit; so is posattn_alibi_split_heads. */
START_TEST(test_one_hot_is_1d) {
    for (int64_t A = 2; A <= 4; ++A) {
        for (int axis = 0; axis < A; ++axis) {
            nd_problem p = {.H = 3, .nq = 4, .nk = 45, .A = A, .q_stride = A, .k_stride = A, .weights_kind = 2,
                            .axis = axis, .l2 = axis & 1};
            rng g = rng_seeded(test_case_seed(100 + (uint64_t)(A * 4 + axis)));
            make_problem(&p, &g, 60.0);
            p.k[(p.nk - 1) * A + (axis + 1) % A] = INFINITY; /* never read: weight 0 */
            size_t n = (size_t)(p.H * p.nq * p.nk);
            float *scores = malloc(n * sizeof(float)), *s1 = malloc(n * sizeof(float)), *s2 = malloc(n * sizeof(float));
            for (size_t m = 0; m < n; ++m) scores[m] = rng_float(&g, -50.0, 50.0);
            posattn_positions one = {.q = p.q + axis, .k = p.k + axis, .axes = 1, .q_stride = A, .k_stride = A};
            posattn_softmax_options o = {.flags = POSATTN_CAUSAL};
            FOR_EACH_ISA(isa) {
                if (!enter_isa(isa)) continue;
                float *b1 = bias_of(&p, &p.pos), *b2 = bias_of(&p, &one);
                assert_same(b1, b2, n, "one-hot bias vs 1-D on that axis");
                free(b1), free(b2);
                softmax_of(&p, &p.pos, scores, &o, 0, s1);
                softmax_of(&p, &one, scores, &o, 0, s2);
                assert_same(s1, s2, n, "one-hot softmax vs 1-D on that axis");
            }
            free(scores), free(s1), free(s2);
            free_problem(&p);
        }
    }
}
END_TEST

/* Translating every position by the same vector: exact shifts (positions on a grid of 1/8, shifts of whole
 * numbers) leave every output bit for bit; arbitrary float shifts within the N-D bounds. */
START_TEST(test_translation) {
    for (int64_t A = 2; A <= 4; ++A) {
        for (int l2 = 0; l2 < 2; ++l2) {
            nd_problem p = {.H = 2, .nq = 3, .nk = 50, .A = A, .q_stride = A, .k_stride = A, .l2 = l2,
                            .weights_kind = 1};
            rng g = rng_seeded(test_case_seed(200 + (uint64_t)(A * 2 + l2)));
            make_problem(&p, &g, 30.0);
            size_t nqf = (size_t)(p.nq * A), nkf = (size_t)(p.nk * A);
            for (size_t m = 0; m < nqf; ++m) p.q[m] = roundf(p.q[m] * 8.0f) / 8.0f;
            for (size_t m = 0; m < nkf; ++m) p.k[m] = roundf(p.k[m] * 8.0f) / 8.0f;
            float *q2 = malloc(nqf * sizeof(float)), *k2 = malloc(nkf * sizeof(float));
            float shift[4];
            for (int64_t a = 0; a < A; ++a) shift[a] = (float)(rng_below(&g, 2001) - 1000);
            for (size_t m = 0; m < nqf; ++m) q2[m] = p.q[m] + shift[m % (size_t)A];
            for (size_t m = 0; m < nkf; ++m) k2[m] = p.k[m] + shift[m % (size_t)A];
            posattn_positions moved = p.pos;
            moved.q = q2, moved.k = k2;
            size_t n = (size_t)(p.H * p.nq * p.nk);
            float *scores = malloc(n * sizeof(float)), *s1 = malloc(n * sizeof(float)), *s2 = malloc(n * sizeof(float));
            for (size_t m = 0; m < n; ++m) scores[m] = rng_float(&g, -50.0, 50.0);
            FOR_EACH_ISA(isa) {
                if (!enter_isa(isa)) continue;
                float *b1 = bias_of(&p, &p.pos), *b2 = bias_of(&p, &moved);
                assert_same(b1, b2, n, "bias after an exact translation");
                free(b1), free(b2);
                softmax_of(&p, &p.pos, scores, NULL, 0, s1);
                softmax_of(&p, &moved, scores, NULL, 0, s2);
                assert_same(s1, s2, n, "softmax after an exact translation");
                /* An arbitrary shift: both within the N-D bound of the exact (shift-free) result. */
                for (size_t m = 0; m < nqf; ++m) q2[m] = p.q[m] + 0.3f * shift[m % (size_t)A];
                for (size_t m = 0; m < nkf; ++m) k2[m] = p.k[m] + 0.3f * shift[m % (size_t)A];
                softmax_of(&p, &moved, scores, NULL, 0, s2);
                for (size_t m = 0; m < n; ++m) {
                    double tol = 4e-4 * fabs((double)s1[m]) + 1e-6 * 0.3 * 1000.0 * 8.0 * 0.5;
                    CHECK(fabs(s1[m] - s2[m]) <= tol, "translated softmax element %zu: %.9g vs %.9g", m,
                          (double)s1[m], (double)s2[m]);
                }
                for (size_t m = 0; m < nqf; ++m) q2[m] = p.q[m] + shift[m % (size_t)A];
                for (size_t m = 0; m < nkf; ++m) k2[m] = p.k[m] + shift[m % (size_t)A];
            }
            free(q2), free(k2), free(scores), free(s1), free(s2);
            free_problem(&p);
        }
    }
}
END_TEST

START_TEST(test_split_heads) {
    float w[64];
    ck_assert_int_eq(posattn_alibi_split_heads(12, 2, w), POSATTN_OK);
    for (int h = 0; h < 12; ++h) {
        int axis = h < 6 ? 0 : 1;
        for (int a = 0; a < 2; ++a) ck_assert(w[h * 2 + a] == (a == axis ? 1.0f : 0.0f));
    }
    ck_assert_int_eq(posattn_alibi_split_heads(16, 3, w), POSATTN_OK);
    for (int h = 0; h < 16; ++h) {
        int axis = h < 6 ? 0 : h < 11 ? 1 : 2;
        for (int a = 0; a < 3; ++a) ck_assert(w[h * 3 + a] == (a == axis ? 1.0f : 0.0f));
    }
    ck_assert_int_eq(posattn_alibi_split_heads(2, 4, w), POSATTN_OK);
    for (int a = 0; a < 4; ++a) ck_assert(w[a] == (a == 0 ? 1.0f : 0.0f) && w[4 + a] == (a == 1 ? 1.0f : 0.0f));
    ck_assert_int_eq(posattn_alibi_split_heads(7, 1, w), POSATTN_OK);
    for (int h = 0; h < 7; ++h) ck_assert(w[h] == 1.0f);
    ck_assert_int_eq(posattn_alibi_split_heads(4, 2, NULL), POSATTN_ERR_NULL);
    ck_assert_int_eq(posattn_alibi_split_heads(0, 2, w), POSATTN_ERR_SIZE);
    ck_assert_int_eq(posattn_alibi_split_heads(4, 0, w), POSATTN_ERR_AXES);
    ck_assert_int_eq(posattn_alibi_split_heads(4, 5, w), POSATTN_ERR_AXES);
}
END_TEST

/* Refused: A outside 1..4, A >= 2 with default positions, unknown metric, bad weights, short strides. Nothing is
 * written on error. */
START_TEST(test_errors_nd) {
    float q[8] = {0, 1, 2, 3, 4, 5, 6, 7}, k[8] = {1, 2, 3, 4, 5, 6, 7, 8}, w[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    float slopes[2] = {0.5f, 0.25f}, scores[4] = {1, 2, 3, 4};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int which = 0; which < 2; ++which) {
            float out[4];
#define EXPECT(status, ...)                                                                                        \
    do {                                                                                                           \
        posattn_positions pos = {.q = q, .k = k, .axes = 2, .weights = w};                                         \
        __VA_ARGS__;                                                                                               \
        for (int m = 0; m < 4; ++m) out[m] = untouched_pattern();                                                  \
        posattn_status st = which ? posattn_alibi_softmax(2, 1, 2, scores, 0, 0, out, 0, 0, 1.0f, slopes, &pos,    \
                                                          NULL, 0, 2)                                              \
                                  : posattn_alibi_bias(2, 1, 2, slopes, &pos, out, 0, 0, 0, 2);                    \
        CHECK(st == (status), "isa %s %s: %s gives %d (%s), expected %d", posattn_isa_name(isa),                   \
              which ? "softmax" : "bias", #__VA_ARGS__, (int)st, posattn_status_string(st), (int)(status));        \
        if (st != POSATTN_OK) {                                                                                    \
            for (int m = 0; m < 4; ++m) CHECK(same_bits(out[m], untouched_pattern()), "written on error");        \
        }                                                                                                          \
    } while (0)
            EXPECT(POSATTN_OK, (void)0);
            EXPECT(POSATTN_OK, pos.axes = 4);
            EXPECT(POSATTN_OK, pos.axes = 3, pos.metric = POSATTN_METRIC_L2);
            EXPECT(POSATTN_ERR_AXES, pos.axes = 5);
            EXPECT(POSATTN_ERR_AXES, pos.axes = -1);
            EXPECT(POSATTN_ERR_AXES, pos.q = NULL);
            EXPECT(POSATTN_ERR_AXES, pos.k = NULL);
            EXPECT(POSATTN_ERR_METRIC, pos.metric = (posattn_metric)2);
            EXPECT(POSATTN_ERR_METRIC, pos.metric = (posattn_metric)-1);
            EXPECT(POSATTN_ERR_STRIDE, pos.q_stride = 1);
            EXPECT(POSATTN_ERR_STRIDE, pos.k_stride = 1);
            EXPECT(POSATTN_ERR_STRIDE, pos.k_stride = -2);
            w[3] = NAN;
            EXPECT(POSATTN_ERR_WEIGHTS, (void)0);
            w[3] = INFINITY;
            EXPECT(POSATTN_ERR_WEIGHTS, pos.metric = POSATTN_METRIC_L2);
            w[3] = -0.5f;
            EXPECT(POSATTN_ERR_WEIGHTS, (void)0);
            EXPECT(POSATTN_ERR_WEIGHTS, pos.axes = 1, pos.q_stride = 2, pos.k_stride = 2, pos.weights = w + 2);
            EXPECT(POSATTN_OK, pos.metric = POSATTN_METRIC_L2); /* (w d)^2: the sign does not matter */
            EXPECT(POSATTN_OK, pos.axes = 1);                     /* w[3] is not among the weights of A = 1 */
            w[3] = 1.0f;
            w[0] = w[1] = 0.0f; /* head 0 has no axis left: no bias */
            EXPECT(POSATTN_OK, (void)0);
            w[0] = w[1] = 1.0f;
#undef EXPECT
        }
    }
    ck_assert_str_ne(posattn_status_string(POSATTN_ERR_WEIGHTS), "unknown status");
}
END_TEST

static Suite *nd_suite(void) {
    Suite *s = suite_create("nd");
    TCase *t = make_tcase("nd");
    tcase_add_test(t, test_spec_vectors);
    tcase_add_test(t, test_split_heads);
    tcase_add_test(t, test_errors_nd);
    tcase_add_test(t, test_one_axis_is_1d);
    tcase_add_test(t, test_zero_weight_infinite_slope);
    tcase_add_test(t, test_nan_coordinates_any_isa);
    tcase_add_test(t, test_subnormal_terms_bound);
    tcase_add_test(t, test_one_hot_is_1d);
    tcase_add_test(t, test_translation);
    tcase_add_test(t, test_bias_nd);
    tcase_add_test(t, test_softmax_nd);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    return run_suite(nd_suite());
}
