/*
 * The rounding policy of include/posattn.h (posattn_alibi_softmax, Accuracy): every ISA forms the ALiBi logits with
 * the scalar reference's roundings, so the external bias and, without a softcap, the logits of the fused softmax
 * are bit-identical on every ISA.
 *
 * The bias is compared with the scalar reference's directly. The logits are observed exactly through lse: in a row
 * whose maximum x_j stands more than 87 above every other logit (or whose other keys are excluded), every other
 * exponential flushes to exactly 0, exp(0) is exactly 1 on every path, so the denominator is exactly 1 and
 * lse = (float)(x_j + log 1) = x_j bit for bit, and P_j = 1. Each row below has one such "hot" key; the rows of a
 * call put it at every position of the row in turn (every lane of a vector, of a group of 4 vectors, and of the
 * partial vector at the end, for the lane counts 4, 8 and 16), so each ISA's lse must equal the scalar lse bit for
 * bit, and so must every output. Finally, rows with large distances (where a fused multiply-add in the bias once
 * moved the logits by up to an ulp of the bias, 2.9e-5 relative in the outputs) are checked against the float64
 * oracle within the header's bound on every ISA.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* Positions                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

/* How a case places queries and keys: the KV-cache default, or arrays of A coordinates per position (stride
 * floats apart, NaN in between), shared or per head, with optional per-head axis weights and metric L2. */
typedef struct pos_case {
    const char *name;
    int is_default; /* positions NULL */
    int64_t axes, stride;
    int per_head, weighted, l2;
    int default_keys; /* 1-D: k NULL (keys at their indices), q given */
} pos_case;

static const pos_case pos_cases[] = {
    {"default", 1, 1, 1, 0, 0, 0, 0},
    {"1-D queries only (fractional, default keys)", 0, 1, 1, 1, 0, 0, 1},
    {"1-D contiguous", 0, 1, 1, 0, 0, 0, 0},
    {"1-D per head", 0, 1, 1, 1, 0, 0, 0},
    {"1-D strided", 0, 1, 3, 1, 0, 0, 0},
    {"1-D weighted", 0, 1, 1, 0, 1, 0, 0},
    {"2-D L1", 0, 2, 2, 0, 0, 0, 0},
    {"2-D L2 weighted", 0, 2, 2, 1, 1, 1, 0},
    {"2-D L1 stride 5 (gathered)", 0, 2, 5, 0, 1, 0, 0},
    {"3-D L1 weighted", 0, 3, 3, 1, 1, 0, 0},
    {"3-D L2 stride 4", 0, 3, 4, 0, 0, 1, 0},
    {"4-D L1", 0, 4, 4, 0, 0, 0, 0},
    {"4-D L2 weighted", 0, 4, 4, 1, 1, 1, 0},
};
enum { POS_CASES = sizeof pos_cases / sizeof pos_cases[0] };

typedef struct positions_data {
    posattn_positions p;
    guarded q, k, w;
} positions_data;

/* Coordinates uniform in [0, span] with fractional parts, so that the differences, the products and the sums all
 * round; weights in [0.25, 2] (one head with a weight of 0 on one axis, to drop it). */
static const posattn_positions *make_positions(const pos_case *pc, rng *g, int64_t H, int64_t nq, int64_t nk,
                                               double span, positions_data *d) {
    memset(d, 0, sizeof *d);
    if (pc->is_default) return NULL;
    const int64_t A = pc->axes, S = pc->stride, heads = pc->per_head ? H : 1;
    const int64_t q_len = (heads * nq - 1) * S + A, k_len = (heads * nk - 1) * S + A;
    d->q = guarded_input((size_t)q_len, sizeof(float), 0);
    d->k = guarded_input((size_t)k_len, sizeof(float), 1);
    float *q = d->q.data, *k = d->k.data;
    fill_nan(q, (size_t)q_len);
    fill_nan(k, (size_t)k_len);
    for (int64_t n = 0; n < heads * nq; ++n)
        for (int64_t a = 0; a < A; ++a) q[n * S + a] = rng_float(g, 0.0, span);
    for (int64_t n = 0; n < heads * nk; ++n)
        for (int64_t a = 0; a < A; ++a) k[n * S + a] = rng_float(g, 0.0, span);
    d->p.q = q, d->p.k = pc->default_keys ? NULL : k, d->p.axes = A, d->p.q_stride = S, d->p.k_stride = S;
    d->p.q_head_stride = pc->per_head ? nq * S : 0;
    d->p.k_head_stride = pc->per_head && !pc->default_keys ? nk * S : 0;
    d->p.metric = pc->l2 ? POSATTN_METRIC_L2 : POSATTN_METRIC_L1;
    if (pc->weighted) {
        d->w = guarded_input((size_t)(H * A), sizeof(float), 0);
        float *w = d->w.data;
        for (int64_t n = 0; n < H * A; ++n) w[n] = rng_float(g, 0.25, 2.0);
        if (A > 2) w[A - 1] = 0.0f; /* head 0 keeps A - 1 axes */
        d->p.weights = w;
    }
    return &d->p;
}

static void free_positions_data(positions_data *d) {
    guarded_free(&d->q);
    guarded_free(&d->k);
    guarded_free(&d->w);
}

static int same_value(float a, float b) {
    return same_bits(a, b) || (isnan(a) && isnan(b));
}

/* Row lengths: every length up to 70 (full vectors, groups of 4 vectors and every tail of 4, 8 and 16 lanes), then
 * one past the stored-logits threshold of the softmax (4096 keys), where pass 2 may form the logits again. */
#define MAX_SHORT 70
#define LONG_NK 4097

/* ------------------------------------------------------------------------------------------------------------ */
/* The external bias                                                                                              */
/* ------------------------------------------------------------------------------------------------------------ */

static void check_bias_case(const pos_case *pc, int64_t nk) {
    const int64_t H = 3, nq = 2, rows = H * nq;
    rng g = rng_seeded(test_case_seed((uint64_t)(pc - pos_cases) * 100003u + (uint64_t)nk));
    float slopes[3] = {0.5f, 0.0883883476f, 0.00390625f};
    positions_data pd;
    const posattn_positions *pos = make_positions(pc, &g, H, nq, nk, 2.5 * (double)nk + 3.0, &pd);
    guarded out_g = guarded_output((size_t)(rows * nk), sizeof(float), 1);
    float *out = out_g.data, *ref = malloc((size_t)(rows * nk) * sizeof(float));
    ck_assert_ptr_nonnull(ref);
    int have_ref = 0;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(out, (size_t)(rows * nk));
        posattn_status st = posattn_alibi_bias(H, nq, nk, slopes, pos, out, 0, 0, 0, rows);
        CHECK(st == POSATTN_OK, "bias %s nk %" PRId64 " isa %s: %s", pc->name, nk, posattn_isa_name(isa),
              posattn_status_string(st));
        guarded_check(&out_g, pc->name);
        if (!have_ref) {
            memcpy(ref, out, (size_t)(rows * nk) * sizeof(float));
            have_ref = 1;
            continue;
        }
        for (int64_t e = 0; e < rows * nk; ++e) {
            CHECK(same_value(out[e], ref[e]),
                  "bias %s nk %" PRId64 " isa %s: row %" PRId64 " key %" PRId64 " is %a, the scalar reference %a",
                  pc->name, nk, posattn_isa_name(isa), e / nk, e % nk, (double)out[e], (double)ref[e]);
        }
    }
    free(ref);
    guarded_free(&out_g);
    free_positions_data(&pd);
}

START_TEST(test_bias_bit_identical) {
    for (int c = 0; c < POS_CASES; ++c) {
        for (int64_t nk = 1; nk <= MAX_SHORT; ++nk) check_bias_case(&pos_cases[c], nk);
        check_bias_case(&pos_cases[c], LONG_NK);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* The logits of the fused softmax, through lse                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum mask_kind { MASK_NONE, MASK_F32, MASK_F16 } mask_kind;
static const char *const mask_names[] = {"no mask", "mask f32", "mask f16"};

/* The hot key of each row: every key for short rows (nq = nk, row i's hot key is i), and for the long row the
 * first and last 128 keys (every lane and group position from both ends, for groups of up to 64 keys) and 32 in
 * between. */
static int64_t hot_keys(int64_t nk, int64_t *hot, rng *g) {
    if (nk <= MAX_SHORT) {
        for (int64_t j = 0; j < nk; ++j) hot[j] = j;
        return nk;
    }
    int64_t n = 0;
    for (int64_t j = 0; j < 128; ++j) hot[n++] = j;
    for (int64_t k = 0; k < 32; ++k) hot[n++] = 128 + rng_below(g, nk - 256);
    for (int64_t j = nk - 128; j < nk; ++j) hot[n++] = j;
    return n;
}

typedef struct logit_case {
    const pos_case *pc;
    mask_kind mask;
    int ggml;       /* POSATTN_MASK_TIMES_SLOPE (positions NULL): x = scale*S + m_h*M */
    int window;     /* causal with a window of 5 (short rows only): [lo, hi) no longer starts at 0 */
    int mask_only;  /* the other keys excluded by the mask (-inf) rather than pushed 87 below by their scores */
    int64_t nk;
} logit_case;

static void check_logit_case(const logit_case *lc) {
    const pos_case *pc = lc->pc;
    const int64_t H = 2, nk = lc->nk;
    rng g = rng_seeded(test_case_seed(((uint64_t)(pc - pos_cases) * 16u + (uint64_t)lc->mask * 4u +
                                       (uint64_t)lc->ggml * 2u + (uint64_t)lc->window) * 8191u +
                                      (uint64_t)nk * 3u + (uint64_t)lc->mask_only));
    int64_t *hot = malloc((size_t)(nk <= MAX_SHORT ? nk : 288) * sizeof(int64_t));
    ck_assert_ptr_nonnull(hot);
    const int64_t nq = hot_keys(nk, hot, &g), rows = H * nq;
    char name[200];
    snprintf(name, sizeof name, "logits %s, %s%s%s%s, nk %" PRId64, pc->name, mask_names[lc->mask],
             lc->ggml ? ", mask times slope" : "", lc->window ? ", causal window 5" : "",
             lc->mask_only ? ", other keys masked" : "", nk);

    /* Slopes whose products round; a scale that is not a power of 2, so scale * s rounds too. */
    const float slopes[2] = {0.707106781f, 0.0883883476f}, scale = 0.0883883476f;
    positions_data pd;
    const posattn_positions *pos = make_positions(pc, &g, H, nq, nk, 2.0 * (double)nk + 5.0, &pd);

    /* Scores: the hot key's scale*s in [-30, 30]; the others at -1e6 (their logits are more than 87 below the hot
     * one: its bias is above -(span * slope * 2 * 4) > -1e5), or random when the mask excludes them. */
    guarded s_g = guarded_input((size_t)(rows * nk), sizeof(float), 0);
    float *s = s_g.data;
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t j_hot = hot[r % nq];
        for (int64_t j = 0; j < nk; ++j) {
            float x = j == j_hot || lc->mask_only ? rng_float(&g, -30.0, 30.0) : -1e6f;
            s[r * nk + j] = x / scale;
        }
    }
    /* Mask rows (one per query, broadcast over heads): the hot key gets a finite entry; the others -inf or finite
     * (mask_only: all -inf). */
    guarded m_g = {0};
    if (lc->mask != MASK_NONE) {
        const int f16 = lc->mask == MASK_F16;
        m_g = guarded_input((size_t)(nq * nk), f16 ? sizeof(uint16_t) : sizeof(float), 1);
        for (int64_t i = 0; i < nq; ++i) {
            for (int64_t j = 0; j < nk; ++j) {
                const int excluded = j != hot[i] && (lc->mask_only || rng_below(&g, 3) == 0);
                const float m = excluded ? -INFINITY : rng_float(&g, -20.0, 20.0);
                if (f16) {
                    ((uint16_t *)m_g.data)[i * nk + j] = f32_to_f16(m);
                } else {
                    ((float *)m_g.data)[i * nk + j] = m;
                }
            }
        }
    }
    posattn_softmax_options o = {0};
    o.flags = (lc->ggml ? POSATTN_MASK_TIMES_SLOPE : 0u) | (lc->window ? POSATTN_CAUSAL : 0u);
    o.window = lc->window ? 5 : 0;
    o.mask = m_g.data;
    o.mask_type = lc->mask == MASK_F16 ? POSATTN_MASK_F16 : POSATTN_MASK_F32;

    guarded p_g = guarded_output((size_t)(rows * nk), sizeof(float), 1);
    guarded l_g = guarded_output((size_t)rows, sizeof(float), 0);
    float *probs = p_g.data, *lse = l_g.data;
    o.lse = lse;
    float *ref_probs = malloc((size_t)(rows * nk) * sizeof(float)), *ref_lse = malloc((size_t)rows * sizeof(float));
    ck_assert(ref_probs && ref_lse);
    int have_ref = 0;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(probs, (size_t)(rows * nk));
        fill_untouched(lse, (size_t)rows);
        posattn_status st = posattn_alibi_softmax(H, nq, nk, s, 0, 0, probs, 0, 0, scale, slopes, pos, &o, 0, rows);
        CHECK(st == POSATTN_OK, "%s isa %s: %s", name, posattn_isa_name(isa), posattn_status_string(st));
        guarded_check(&p_g, name);
        guarded_check(&l_g, name);
        if (!have_ref) {
            for (int64_t r = 0; r < rows; ++r) {
                /* The premise: one key carries the whole row. */
                const int64_t j_hot = hot[r % nq];
                CHECK(isfinite(lse[r]) && probs[r * nk + j_hot] == 1.0f,
                      "%s: scalar row %" PRId64 " has lse %a and P[%" PRId64 "] = %a, not one key of weight 1", name,
                      r, (double)lse[r], j_hot, (double)probs[r * nk + j_hot]);
            }
            memcpy(ref_probs, probs, (size_t)(rows * nk) * sizeof(float));
            memcpy(ref_lse, lse, (size_t)rows * sizeof(float));
            have_ref = 1;
            continue;
        }
        for (int64_t r = 0; r < rows; ++r) {
            CHECK(same_bits(lse[r], ref_lse[r]),
                  "%s isa %s: row %" PRId64 " (hot key %" PRId64 "): logit %a (lse), the scalar reference's %a", name,
                  posattn_isa_name(isa), r, hot[r % nq], (double)lse[r], (double)ref_lse[r]);
            for (int64_t j = 0; j < nk; ++j) {
                CHECK(same_bits(probs[r * nk + j], ref_probs[r * nk + j]),
                      "%s isa %s: row %" PRId64 " key %" PRId64 " holds %a, the scalar reference %a", name,
                      posattn_isa_name(isa), r, j, (double)probs[r * nk + j], (double)ref_probs[r * nk + j]);
            }
        }
    }
    free(ref_probs);
    free(ref_lse);
    free(hot);
    guarded_free(&p_g);
    guarded_free(&l_g);
    guarded_free(&s_g);
    guarded_free(&m_g);
    free_positions_data(&pd);
}

static void check_logit_sizes(logit_case lc) {
    for (lc.nk = 1; lc.nk <= MAX_SHORT; ++lc.nk) check_logit_case(&lc);
    if (!lc.window) {
        lc.nk = LONG_NK;
        check_logit_case(&lc);
    }
}

/* Every position kind with each mask kind (the specialised and the generic variants of every ISA). */
START_TEST(test_logits_bit_identical) {
    for (int c = 0; c < POS_CASES; ++c) {
        for (int mask = MASK_NONE; mask <= MASK_F16; ++mask) {
            logit_case lc = {&pos_cases[c], (mask_kind)mask, 0, 0, 0, 0};
            check_logit_sizes(lc);
        }
    }
}
END_TEST

/* ggml mode (x = scale*S + m_h*M, no positions), the hot key as the only valid one, and rows that start past 0. */
START_TEST(test_logits_bit_identical_masks_and_ranges) {
    for (int mask = MASK_F32; mask <= MASK_F16; ++mask) {
        logit_case ggml = {&pos_cases[0], (mask_kind)mask, 1, 0, 0, 0};
        check_logit_sizes(ggml);
        for (int c = 0; c < POS_CASES; c += 3) {
            logit_case only = {&pos_cases[c], (mask_kind)mask, 0, 0, 1, 0};
            check_logit_sizes(only);
        }
    }
    for (int c = 0; c < POS_CASES; ++c) {
        for (int mask = MASK_NONE; mask <= MASK_F16; mask += 2) {
            logit_case windowed = {&pos_cases[c], (mask_kind)mask, 0, 1, 0, 0};
            check_logit_sizes(windowed);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Large distances: every ISA within the header's bound of the float64 oracle                                    */
/* ------------------------------------------------------------------------------------------------------------ */

/* Queries far beyond the keys (biases of hundreds to thousands), so that an ulp of the bias is a visible error in
 * the outputs: keys at irregular positions in [0, 4000], queries in [4000, 6000] or among the keys, slopes of 8
 * heads from 1/2 to 1/256, scale*S in [-50, 50]. */
START_TEST(test_large_distances_within_bound) {
    const int64_t H = 8, nq = 4, nk = 1000, rows = H * nq;
    rng g = rng_seeded(test_case_seed(777001));
    float slopes[8];
    ck_assert_int_eq(posattn_alibi_slopes(H, 8.0f, slopes), POSATTN_OK);
    guarded q_g = guarded_input((size_t)(H * nq), sizeof(float), 0);
    guarded k_g = guarded_input((size_t)(H * nk), sizeof(float), 0);
    float *q = q_g.data, *k = k_g.data;
    for (int64_t h = 0; h < H; ++h) {
        double at = 0.0;
        for (int64_t j = 0; j < nk; ++j) k[h * nk + j] = (float)(at += rng_float(&g, 0.0, 8.0));
        for (int64_t i = 0; i < nq; ++i) {
            q[h * nq + i] = i < 2 ? rng_float(&g, 4000.0, 6000.0) : rng_float(&g, 0.0, 4000.0);
        }
    }
    posattn_positions pos = {0};
    pos.q = q, pos.k = k, pos.q_head_stride = nq, pos.k_head_stride = nk;
    const float scale = 0.125f;
    guarded s_g = guarded_input((size_t)(rows * nk), sizeof(float), 0);
    float *s = s_g.data;
    for (int64_t e = 0; e < rows * nk; ++e) s[e] = rng_float(&g, -50.0, 50.0) / scale;
    float lse[32];
    posattn_softmax_options o = {0};
    o.lse = lse;
    softmax_problem pr = {H, nq, nk, s, 0, 0, scale, slopes, &pos, &o};
    oracle_row oracle = oracle_row_alloc(nk);
    guarded p_g = guarded_output((size_t)(rows * nk), sizeof(float), 0);
    float *probs = p_g.data;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        ck_assert_int_eq(posattn_alibi_softmax(H, nq, nk, s, 0, 0, probs, 0, 0, scale, slopes, &pos, &o, 0, rows),
                         POSATTN_OK);
        guarded_check(&p_g, "large distances");
        for (int64_t r = 0; r < rows; ++r) {
            oracle_softmax_row(&pr, r, &oracle);
            for (int64_t j = 0; j < nk; ++j) {
                const double exact = oracle.p[j], got = probs[r * nk + j];
                const double bound = softmax_rel_bound(oracle.L, oracle.d[j]) * exact + SOFTMAX_ABS_BOUND;
                CHECK(fabs(got - exact) <= bound,
                      "isa %s row %" PRId64 " key %" PRId64 ": P = %.9g, oracle %.17g, |error| %.3g > bound %.3g "
                      "(L %.6g, d %.6g)",
                      posattn_isa_name(isa), r, j, got, exact, fabs(got - exact), bound, oracle.L, oracle.d[j]);
            }
            CHECK(fabs(lse[r] - oracle.lse) <= lse_bound(oracle.L, oracle.lse),
                  "isa %s row %" PRId64 ": lse %.9g, oracle %.17g", posattn_isa_name(isa), r, (double)lse[r],
                  oracle.lse);
        }
    }
    oracle_row_free(&oracle);
    guarded_free(&p_g);
    guarded_free(&s_g);
    guarded_free(&q_g);
    guarded_free(&k_g);
}
END_TEST

static Suite *identity_suite(void) {
    Suite *s = suite_create("logits_identity");
    TCase *bias = make_tcase("bias");
    tcase_add_test(bias, test_bias_bit_identical);
    suite_add_tcase(s, bias);
    TCase *logits = make_tcase("logits");
    tcase_add_test(logits, test_logits_bit_identical);
    tcase_add_test(logits, test_logits_bit_identical_masks_and_ranges);
    suite_add_tcase(s, logits);
    TCase *bound = make_tcase("bound");
    tcase_add_test(bound, test_large_distances_within_bound);
    suite_add_tcase(s, bound);
    return s;
}

int main(void) {
    return run_suite(identity_suite());
}
