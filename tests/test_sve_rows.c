/*
 * The SVE ALiBi rows (src/sve/alibi.c) against the scalar reference rows, called directly through the internal row
 * contract of src/kernels.h (the registry does not dispatch SVE yet, so the public API cannot reach them).
 *
 * Many random rows: sizes 0..70 (every tail at every vector length up to 2048 bits), a few hundred keys, 4097;
 * every key mode (implicit j, contiguous, strided, N-D with 2..4 axes, L1/L2, weighted or not, packed or padded
 * positions); f32 and f16 masks with mask_scale; softcap; sink; lse; [lo, hi) limits; NaN and infinities in
 * scores, positions, mask and sink; in place; each pointer misaligned on its own. Checks:
 * - bias rows: every value bit-identical to the scalar row (NaN: both NaN);
 * - softmax rows: zeros outside [lo, hi), canaries, exact 0 for excluded keys, NaN exactly where the scalar row
 *   has NaN, every output and the lse within the bound of include/posattn.h against a float64 oracle of the row
 *   (the scalar row is held to the same bound, which checks the oracle), and for rows with one valid key, no
 *   softcap and no sink the lse (= that key's logit) bit-identical to the scalar row's;
 * - implicit key positions (float)j past 2^24, 2^31 and 2^53, reached through a hook (a row cannot reach them);
 * - strides too wide for 32-bit gather indices (sparse reservations of tens of GiB);
 * - rows whose every buffer starts right after, or ends right before, an inaccessible page (no access outside).
 * Run with the expected vector length in bits as argument, it also checks that svcntw() is what qemu was asked for
 * (QEMU_CPU). POSATTN_SVE_DUMP=file writes every SVE bias and probability there (lse to file.lse), to compare
 * vector lengths with each other.
 * The process exits 77 (skipped) on a CPU without SVE.
 */
/* MAP_ANONYMOUS and MAP_NORESERVE are not C11: ask glibc for them. */
#define _DEFAULT_SOURCE
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels.h"
#include "support.h"
#include "sve/alibi_sve.h"

#ifndef HWCAP_SVE
#define HWCAP_SVE (1UL << 22)
#endif

#define BIAS_CASES 3000
#define SOFTMAX_CASES 6000

static long expected_vector_bits; /* from argv[1]; 0: not checked */
static FILE *dump_file, *dump_lse_file; /* POSATTN_SVE_DUMP: biases and probabilities, and lse apart */

static void dump_floats(FILE *f, const float *x, int64_t n) {
    if (f && n > 0) fwrite(x, sizeof(float), (size_t)n, f);
}

static int same_or_both_nan(float a, float b) {
    return same_bits(a, b) || (isnan(a) && isnan(b));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Random key positions                                                                                           */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum key_mode { KEYS_IMPLICIT, KEYS_CONTIGUOUS, KEYS_STRIDED, KEYS_ND, KEY_MODE_COUNT } key_mode;
static const char *const key_mode_names[KEY_MODE_COUNT] = {"implicit", "contiguous", "strided", "nd"};

typedef struct keys_input {
    key_mode mode;
    guarded k; /* exact size: (nk - 1) * stride + length of one position; NaN between positions */
    posattn_key_positions keys;
    posattn_nd_positions nd;
    float q_pos;
} keys_input;

static int64_t random_nk(rng *g) {
    int64_t r = rng_below(g, 100);
    if (r < 80) return rng_below(g, 71);
    if (r < 97) return 71 + rng_below(g, 600);
    return 4097;
}

/* A position at most once in a while +inf, -inf or NaN (special set), otherwise x. */
static float maybe_special(rng *g, int special, float x) {
    if (!special || rng_below(g, 40) != 0) return x;
    static const float specials[3] = {INFINITY, -INFINITY, NAN};
    return specials[rng_below(g, 3)];
}

static keys_input make_keys(rng *g, key_mode mode, int64_t nk, int misalign, int special) {
    keys_input in;
    memset(&in, 0, sizeof in);
    in.mode = mode;
    in.keys.k_pos_stride = 1;
    in.q_pos = rng_float(g, -4.0, (double)nk + 4.0);
    if (rng_below(g, 4) == 0) in.q_pos = (float)rng_below(g, nk + 1); /* on the integer grid, as in a KV cache */
    if (mode == KEYS_IMPLICIT) return in;

    int64_t stride = 1, len = 1;
    if (mode == KEYS_STRIDED) stride = 2 + rng_below(g, 5);
    if (mode == KEYS_ND) {
        posattn_nd_positions *nd = &in.nd;
        nd->k_len = 2 + (int)rng_below(g, 3);
        nd->axes = 2 + (int)rng_below(g, nd->k_len - 1);
        /* Keep `axes` of the k_len axes, in order (the API drops zero-weight axes and keeps the others' order). */
        int kept = 0;
        for (int a = 0; a < nd->k_len; ++a) {
            if (rng_below(g, nd->k_len - a) < nd->axes - kept) nd->offset[kept++] = a;
        }
        nd->l2 = (int)rng_below(g, 2);
        nd->weighted = (int)rng_below(g, 2);
        for (int a = 0; a < nd->axes; ++a) {
            nd->q[a] = rng_float(g, -2.0, 40.0);
            nd->w[a] = nd->weighted ? rng_float(g, 0.125, 2.0) : 1.0f;
        }
        len = nd->k_len;
        stride = len + (rng_below(g, 3) == 0 ? 1 + rng_below(g, 2) : 0);
    }
    const int64_t n_floats = nk > 0 ? (nk - 1) * stride + len : 0;
    in.k = guarded_input((size_t)n_floats, sizeof(float), misalign);
    float *k = in.k.data;
    fill_nan(k, (size_t)n_floats);
    double at = rng_float(g, -3.0, 3.0);
    for (int64_t j = 0; j < nk; ++j) {
        if (mode == KEYS_ND) {
            for (int64_t c = 0; c < len; ++c) k[j * stride + c] = maybe_special(g, special, rng_float(g, 0.0, 40.0));
        } else {
            at += rng_float(g, 0.0, 3.0);
            k[j * stride] = maybe_special(g, special, (float)at);
        }
    }
    in.keys.k_pos = k;
    in.keys.k_pos_stride = stride;
    return in;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Bias rows                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

static float random_slope(rng *g) {
    switch (rng_below(g, 10)) {
    case 0: return -rng_float(g, 0.01, 1.0);             /* the row contract only asks slope != 0 */
    case 1: return (float)ldexp(1.0, -130);              /* a subnormal slope: subnormal biases */
    case 2: return 3e37f;                                /* products past FLT_MAX: -inf */
    default: return (float)exp2(-rng_float(g, 0.0, 8.0)); /* ALiBi's 2^(-8h/H) */
    }
}

static void run_bias_case(uint64_t case_number) {
    rng g = rng_seeded(test_case_seed(case_number));
    const int64_t nk = random_nk(&g);
    const key_mode mode = (key_mode)rng_below(&g, KEY_MODE_COUNT);
    keys_input in = make_keys(&g, mode, nk, (int)rng_below(&g, 2), 1);
    guarded out = guarded_output((size_t)nk, sizeof(float), (int)rng_below(&g, 2));
    float *ref = malloc((size_t)(nk > 0 ? nk : 1) * sizeof(float));
    ck_assert(ref != NULL);
    fill_untouched(out.data, (size_t)nk);
    posattn_bias_row row = {
        .bias = ref, .nk = nk, .slope = random_slope(&g), .q_pos = in.q_pos, .keys = in.keys, .nd = in.nd};
    posattn_alibi_bias_row_f32_scalar(&row);
    row.bias = out.data;
    posattn_alibi_bias_row_f32_sve(&row);
    guarded_check(&out, "bias");
    const float *b = out.data;
    for (int64_t j = 0; j < nk; ++j) {
        CHECK(same_or_both_nan(b[j], ref[j]),
              "bias case %" PRIu64 " (%s, nk %" PRId64 ", axes %d l2 %d): key %" PRId64 ": sve %a, scalar %a",
              case_number, key_mode_names[mode], nk, in.nd.axes, in.nd.l2, j, b[j], ref[j]);
    }
    dump_floats(dump_file, b, nk);
    free(ref);
    guarded_free(&out);
    guarded_free(&in.k);
}

START_TEST(test_vector_length) {
    const int64_t lanes = posattn_sve_lanes_f32();
    fprintf(stderr, "test_sve_rows: svcntw() = %" PRId64 " (%" PRId64 "-bit vectors)\n", lanes, lanes * 32);
    CHECK(lanes >= 4 && lanes <= 64 && lanes % 4 == 0, "svcntw() = %" PRId64, lanes);
    if (expected_vector_bits) {
        CHECK(lanes * 32 == expected_vector_bits, "vectors of %" PRId64 " bits, %ld expected (QEMU_CPU ignored?)",
              lanes * 32, expected_vector_bits);
    }
}
END_TEST

START_TEST(test_bias_rows) {
    for (uint64_t c = 0; c < BIAS_CASES; ++c) run_bias_case(c);
}
END_TEST

/* (float)j exactly as the C conversion rounds it, for vectors of keys straddling 2^24, 2^31, 2^32, 2^53, 2^62. */
START_TEST(test_implicit_positions) {
    const int64_t lanes = posattn_sve_lanes_f32();
    const int64_t around[] = {0, INT64_C(1) << 24, INT64_C(1) << 31, INT64_C(1) << 32, INT64_C(1) << 53,
                              INT64_C(1) << 62};
    const posattn_key_positions implicit = {NULL, 1};
    float out[64];
    int64_t checked = 0;
    for (size_t a = 0; a < sizeof around / sizeof around[0]; ++a) {
        for (int64_t j = around[a] - 2 * lanes - 3; j <= around[a] + 2 * lanes + 3; ++j) {
            if (j < 0) continue;
            for (int64_t n = 1; n <= lanes; ++n) {
                posattn_sve_key_positions_f32(&implicit, j, n, out);
                for (int64_t l = 0; l < n; ++l, ++checked) {
                    CHECK(same_bits(out[l], (float)(j + l)), "key %" PRId64 ": %a, (float)j = %a", j + l, out[l],
                          (float)(j + l));
                }
            }
        }
    }
    ck_assert_int_gt(checked, 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Softmax rows                                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

/* include/posattn.h, N-D rows: |P_j - P*_j| <= (20 L + d_j + 22) u P*_j + 2.4e-38, |lse - lse*| <= (21 L + 20) u
 * + u |lse*|. One-axis rows use softmax_rel_bound and lse_bound of support.h. */
static double nd_softmax_rel_bound(double L, double d) {
    return (20.0 * L + d + 22.0) * UNIT_ROUNDOFF;
}
static double nd_lse_bound(double L, double lse_exact) {
    return (21.0 * L + 20.0) * UNIT_ROUNDOFF + UNIT_ROUNDOFF * fabs(lse_exact);
}

/* The exact result of a row from its float32 inputs (SPEC 3), in float64. */
typedef struct row_oracle {
    double *x;  /* [nk] exact logits; -inf for excluded keys */
    double *p;  /* [nk] probabilities */
    double mx;  /* maximum over finite logits and a finite sink; -inf when none */
    double lse; /* NaN, -inf, or mx + log(denominator) */
    double L;   /* the L of the bound */
    int is_nan; /* a NaN or +inf logit or sink: the row is NaN */
    int64_t finite_keys;
} row_oracle;

static double exact_distance(const posattn_softmax_row *row, int64_t j) {
    if (row->nd.axes >= 2) {
        const posattn_nd_positions *nd = &row->nd;
        const float *k = row->keys.k_pos + j * row->keys.k_pos_stride;
        double acc = 0.0;
        for (int a = 0; a < nd->axes; ++a) {
            double t = (double)nd->w[a] * ((double)nd->q[a] - (double)k[nd->offset[a]]);
            acc += nd->l2 ? t * t : fabs(t);
        }
        return nd->l2 ? sqrt(acc) : acc;
    }
    const double k = row->keys.k_pos ? (double)row->keys.k_pos[j * row->keys.k_pos_stride] : (double)j;
    return fabs((double)row->q_pos - k);
}

static void oracle_of_row(const posattn_softmax_row *row, row_oracle *o) {
    o->mx = -INFINITY, o->L = 0.0, o->is_nan = 0, o->finite_keys = 0;
    for (int64_t j = row->lo; j < row->hi; ++j) {
        double x = (double)row->scale * (double)row->scores[j];
        if (row->softcap > 0.0f) x = (double)row->softcap * tanh(x / (double)row->softcap);
        double L_j = fabs(x);
        if (row->slope != 0.0f) {
            const double b = -(double)row->slope * exact_distance(row, j);
            x += b, L_j += fabs(b);
        }
        if (row->mask) {
            const double m = row->mask_is_f16 ? f16_to_f64(((const uint16_t *)row->mask)[j])
                                              : (double)((const float *)row->mask)[j];
            const double t = (double)row->mask_scale * m;
            x = m == -INFINITY ? -INFINITY : x + t;
            L_j += fabs(t);
        }
        o->x[j] = x;
        if (isnan(x) || x == INFINITY) o->is_nan = 1;
        if (isfinite(x)) {
            o->finite_keys++;
            if (x > o->mx) o->mx = x;
            if (L_j > o->L) o->L = L_j;
        }
    }
    const int sink_counts = row->has_sink && isfinite(row->sink);
    if (row->has_sink && (isnan(row->sink) || row->sink == INFINITY)) o->is_nan = 1;
    if (sink_counts) {
        if (row->sink > o->mx) o->mx = row->sink;
        if (fabs(row->sink) > o->L) o->L = fabs(row->sink);
    }
    for (int64_t j = 0; j < row->nk; ++j) o->p[j] = 0.0;
    if (o->is_nan) {
        o->lse = NAN;
        return;
    }
    if (o->mx == -INFINITY) {
        o->lse = -INFINITY;
        return;
    }
    double denominator = sink_counts ? exp(row->sink - o->mx) : 0.0;
    for (int64_t j = row->lo; j < row->hi; ++j) denominator += exp(o->x[j] - o->mx);
    for (int64_t j = row->lo; j < row->hi; ++j) o->p[j] = exp(o->x[j] - o->mx) / denominator;
    o->lse = o->mx + log(denominator);
}

/* Differences between the SVE and the scalar rows, printed at the end of the test (question: how far apart). */
typedef struct difference_stats {
    int64_t outputs, differing, single_key_lse_rows, nan_rows, nd_rows, softcap_rows;
    double max_rel[2]; /* rows without, with a softcap */
} difference_stats;

/* Checks one path's outputs against the oracle and the bound. */
static void check_against_oracle(const posattn_softmax_row *row, const row_oracle *o, const float *probs, float lse,
                                 const char *path, uint64_t case_number) {
    const int nd = row->nd.axes >= 2 && row->slope != 0.0f;
    for (int64_t j = 0; j < row->nk; ++j) {
        const float p = probs[j];
        if (j < row->lo || j >= row->hi) {
            CHECK(same_bits(p, 0.0f), "case %" PRIu64 " %s: key %" PRId64 " outside [lo, hi) is %a", case_number,
                  path, j, p);
        } else if (o->is_nan) {
            CHECK(isnan(p), "case %" PRIu64 " %s: key %" PRId64 " of a NaN row is %a", case_number, path, j, p);
        } else if (o->x[j] == -INFINITY) {
            CHECK(same_bits(p, 0.0f), "case %" PRIu64 " %s: excluded key %" PRId64 " is %a", case_number, path, j, p);
        } else {
            CHECK(p == 0.0f || !(fabsf(p) < FLT_MIN), "case %" PRIu64 " %s: key %" PRId64 " is subnormal (%a)",
                  case_number, path, j, p);
            const double d = o->mx - o->x[j];
            const double rel = nd ? nd_softmax_rel_bound(o->L, d) : softmax_rel_bound(o->L, d);
            const double err = fabs((double)p - o->p[j]);
            CHECK(err <= rel * o->p[j] + SOFTMAX_ABS_BOUND,
                  "case %" PRIu64 " %s: key %" PRId64 " = %.9g, exact %.17g: error %.3g > bound %.3g (L %.3g d %.3g)",
                  case_number, path, j, (double)p, o->p[j], err, rel * o->p[j] + SOFTMAX_ABS_BOUND, o->L, d);
        }
    }
    if (!row->lse) return;
    if (isnan(o->lse)) {
        CHECK(isnan(lse), "case %" PRIu64 " %s: lse %a of a NaN row", case_number, path, lse);
    } else if (o->lse == -INFINITY) {
        CHECK(lse == -INFINITY, "case %" PRIu64 " %s: lse %a of an empty row", case_number, path, lse);
    } else {
        const double bound = nd ? nd_lse_bound(o->L, o->lse) : lse_bound(o->L, o->lse);
        CHECK(fabs((double)lse - o->lse) <= bound, "case %" PRIu64 " %s: lse %.9g, exact %.17g, bound %.3g",
              case_number, path, (double)lse, o->lse, bound);
    }
}

typedef struct softmax_buffers {
    guarded scores, mask, probs, ref, lse;
} softmax_buffers;

/* One random row: inputs from the case's seed, the scalar and the SVE rows, every check of the header. */
static void run_softmax_case(uint64_t case_number, difference_stats *stats) {
    rng g = rng_seeded(test_case_seed(case_number ^ UINT64_C(0x5eed0f5e)));
    const int64_t nk = random_nk(&g);
    const key_mode mode = (key_mode)rng_below(&g, KEY_MODE_COUNT);
    const int special = rng_below(&g, 8) == 0;
    keys_input in = make_keys(&g, mode, nk, (int)rng_below(&g, 2), special);
    softmax_buffers b;
    memset(&b, 0, sizeof b);

    posattn_softmax_row row;
    memset(&row, 0, sizeof row);
    row.nk = nk;
    row.lo = 0, row.hi = nk;
    if (rng_below(&g, 3) == 0) {
        row.lo = rng_below(&g, nk + 1);
        row.hi = row.lo + rng_below(&g, nk - row.lo + 1);
    }
    row.scale = rng_below(&g, 4) == 0 ? 1.0f : rng_float(&g, 0.05, 2.0);
    row.softcap = rng_below(&g, 4) == 0 ? rng_float(&g, 1.0, 50.0) : 0.0f;
    row.slope = rng_below(&g, 5) == 0 ? 0.0f : (float)exp2(-rng_float(&g, 0.0, 8.0));
    if (row.slope != 0.0f && rng_below(&g, 20) == 0) row.slope = -row.slope;
    row.q_pos = in.q_pos;
    row.keys = in.keys;
    row.nd = in.nd;

    /* Scores: logits of a few tens, sometimes up to 100; NaN outside [lo, hi), which must never be read. */
    const double range = rng_below(&g, 4) == 0 ? 100.0 : 12.0;
    const int in_place = rng_below(&g, 5) == 0;
    b.scores = in_place ? guarded_output((size_t)nk, sizeof(float), (int)rng_below(&g, 2))
                        : guarded_input((size_t)nk, sizeof(float), (int)rng_below(&g, 2));
    float *s = b.scores.data;
    for (int64_t j = 0; j < nk; ++j) s[j] = (j >= row.lo && j < row.hi) ? rng_float(&g, -range, range) : NAN;
    if (special && row.hi > row.lo) {
        static const float specials[3] = {INFINITY, -INFINITY, NAN};
        s[row.lo + rng_below(&g, row.hi - row.lo)] = specials[rng_below(&g, 3)];
    }

    /* Mask: none, f32 or f16; entries 0, small values or -inf; sometimes exactly one key left valid. */
    const int64_t mask_kind = rng_below(&g, 3);
    const int one_valid_key = mask_kind != 0 && row.hi > row.lo && rng_below(&g, 3) == 0;
    const int64_t kept_key = one_valid_key ? row.lo + rng_below(&g, row.hi - row.lo) : -1;
    if (mask_kind != 0) {
        b.mask = guarded_input((size_t)nk, mask_kind == 2 ? sizeof(uint16_t) : sizeof(float), (int)rng_below(&g, 2));
        row.mask = b.mask.data;
        row.mask_is_f16 = mask_kind == 2;
        row.mask_scale = rng_below(&g, 2) ? 1.0f : (rng_below(&g, 8) == 0 ? 0.0f : rng_float(&g, 0.01, 1.0));
        for (int64_t j = 0; j < nk; ++j) {
            float m = 0.0f;
            const int64_t r = rng_below(&g, 10);
            if (r < 2) m = -INFINITY;
            if (r >= 8) m = rng_float(&g, -4.0, 4.0);
            if (one_valid_key) m = j == kept_key ? rng_float(&g, -4.0, 4.0) : -INFINITY;
            if (special && j == kept_key + 1) m = INFINITY;
            if (row.mask_is_f16) ((uint16_t *)b.mask.data)[j] = f32_to_f16(m);
            else ((float *)b.mask.data)[j] = m;
        }
    }
    if (!one_valid_key && rng_below(&g, 4) == 0) {
        row.has_sink = 1;
        row.sink = rng_float(&g, -12.0, 12.0);
        if (special && rng_below(&g, 2)) row.sink = rng_below(&g, 2) ? NAN : -INFINITY;
    }

    b.probs = guarded_output((size_t)nk, sizeof(float), (int)rng_below(&g, 2));
    b.ref = guarded_output((size_t)nk, sizeof(float), 0);
    b.lse = guarded_output(2, sizeof(float), (int)rng_below(&g, 2));
    float *lse = b.lse.data;
    lse[0] = lse[1] = untouched_pattern();
    const int want_lse = rng_below(&g, 4) != 0;

    /* The scalar reference first, in place when the SVE row is (on its own copy of the scores). */
    float *ref = b.ref.data;
    posattn_softmax_row ref_row = row;
    if (in_place) {
        memcpy(ref, s, (size_t)nk * sizeof(float));
        ref_row.scores = ref;
    } else {
        fill_untouched(ref, (size_t)nk);
        ref_row.scores = s;
    }
    ref_row.probs = ref;
    ref_row.lse = want_lse ? &lse[1] : NULL;

    row_oracle o;
    o.x = malloc((size_t)(nk > 0 ? nk : 1) * sizeof(double));
    o.p = malloc((size_t)(nk > 0 ? nk : 1) * sizeof(double));
    ck_assert(o.x != NULL && o.p != NULL);
    oracle_of_row(&ref_row, &o); /* before any row overwrites scores in place */
    posattn_alibi_softmax_row_f32_scalar(&ref_row);

    float *probs = in_place ? s : b.probs.data;
    if (!in_place) fill_untouched(probs, (size_t)nk);
    row.scores = s;
    row.probs = probs;
    row.lse = want_lse ? &lse[0] : NULL;
    posattn_alibi_softmax_row_f32_sve(&row);

    guarded_check(&b.probs, "probs");
    guarded_check(&b.scores, "scores (in place)");
    guarded_check(&b.lse, "lse");
    if (!want_lse) CHECK(same_bits(lse[0], untouched_pattern()), "case %" PRIu64 ": lse written", case_number);

    check_against_oracle(&ref_row, &o, ref, lse[1], "scalar", case_number);
    check_against_oracle(&ref_row, &o, probs, lse[0], "sve", case_number);
    for (int64_t j = 0; j < nk; ++j) {
        CHECK(!isnan(probs[j]) == !isnan(ref[j]), "case %" PRIu64 ": key %" PRId64 " sve %a, scalar %a", case_number,
              j, probs[j], ref[j]);
        if (isnan(probs[j]) || same_bits(probs[j], ref[j])) continue;
        stats->differing++;
        const double rel = fabs((double)probs[j] - ref[j]) / fabs((double)ref[j]);
        if (rel > stats->max_rel[row.softcap > 0.0f]) stats->max_rel[row.softcap > 0.0f] = rel;
    }
    stats->outputs += nk;
    /* One valid key, no softcap, no sink: sum = e^0 = 1 exactly on both paths, so lse is that key's logit. */
    if (want_lse && one_valid_key && row.softcap == 0.0f && o.finite_keys == 1 && !o.is_nan) {
        CHECK(same_bits(lse[0], lse[1]), "case %" PRIu64 " (%s): one-key lse (its logit) sve %a, scalar %a",
              case_number, key_mode_names[mode], lse[0], lse[1]);
        stats->single_key_lse_rows++;
    }
    stats->nan_rows += o.is_nan;
    stats->nd_rows += mode == KEYS_ND;
    stats->softcap_rows += row.softcap > 0.0f;
    dump_floats(dump_file, probs, nk);
    if (want_lse) dump_floats(dump_lse_file, lse, 1);

    free(o.x);
    free(o.p);
    guarded_free(&b.scores);
    guarded_free(&b.mask);
    guarded_free(&b.probs);
    guarded_free(&b.ref);
    guarded_free(&b.lse);
    guarded_free(&in.k);
}

START_TEST(test_softmax_rows) {
    difference_stats stats;
    memset(&stats, 0, sizeof stats);
    for (uint64_t c = 0; c < SOFTMAX_CASES; ++c) run_softmax_case(c, &stats);
    fprintf(stderr,
            "test_sve_rows: %d softmax rows (%" PRId64 " N-D, %" PRId64 " softcap, %" PRId64 " NaN, %" PRId64
            " one-key lse bit-identical), %" PRId64 " outputs, %" PRId64
            " differ from scalar, by at most %.3g relative (%.2f u) without softcap, %.3g (%.2f u) with\n",
            SOFTMAX_CASES, stats.nd_rows, stats.softcap_rows, stats.nan_rows, stats.single_key_lse_rows,
            stats.outputs, stats.differing, stats.max_rel[0], stats.max_rel[0] / UNIT_ROUNDOFF, stats.max_rel[1],
            stats.max_rel[1] / UNIT_ROUNDOFF);
    /* The random mix must reach what the checks are about. */
    ck_assert_int_gt(stats.single_key_lse_rows, 100);
    ck_assert_int_gt(stats.nan_rows, 10);
    ck_assert_int_gt(stats.nd_rows, 100);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Strides past 32-bit gather indices                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/* 2^26 floats between keys: 63 lanes of it pass INT32_MAX, so the gathers take their 64-bit index path at every
 * vector length. The positions live in a sparse reservation (only their pages are touched). */
START_TEST(test_wide_strides) {
    const int64_t stride = INT64_C(1) << 26, nk = 70, len = 3;
    const size_t bytes = (size_t)((nk - 1) * stride + len) * sizeof(float);
    float *k = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k == MAP_FAILED) {
        fprintf(stderr, "test_sve_rows: wide strides skipped (cannot reserve %zu bytes)\n", bytes);
        return;
    }
    rng g = rng_seeded(test_case_seed(UINT64_C(0x3117e)));
    for (int64_t j = 0; j < nk; ++j) {
        for (int64_t c = 0; c < len; ++c) k[j * stride + c] = rng_float(&g, 0.0, 100.0);
    }
    float bias[70], ref[70], scores[70], probs[70], probs_ref[70], lse = 0.0f, lse_ref = 0.0f;
    double x_exact[70], p_exact[70];
    for (int64_t j = 0; j < nk; ++j) scores[j] = rng_float(&g, -5.0, 5.0);
    for (int axes = 0; axes <= 3; axes += 3) {
        posattn_bias_row row = {.bias = ref, .nk = nk, .slope = 0.25f, .q_pos = 40.0f, .keys = {k, stride}};
        if (axes) {
            row.nd = (posattn_nd_positions){.axes = 3, .l2 = 1, .weighted = 1, .k_len = (int)len,
                                            .offset = {0, 1, 2}, .q = {1.0f, 50.0f, 7.0f}, .w = {1.0f, 0.5f, 2.0f}};
        }
        posattn_alibi_bias_row_f32_scalar(&row);
        row.bias = bias;
        posattn_alibi_bias_row_f32_sve(&row);
        for (int64_t j = 0; j < nk; ++j) {
            CHECK(same_bits(bias[j], ref[j]), "axes %d key %" PRId64 ": sve %a, scalar %a", axes, j, bias[j], ref[j]);
        }
        posattn_softmax_row srow = {.scores = scores, .probs = probs_ref, .nk = nk, .lo = 3, .hi = nk - 1,
                                    .scale = 1.0f, .slope = 0.25f, .q_pos = 40.0f, .keys = {k, stride},
                                    .lse = &lse_ref, .nd = row.nd};
        row_oracle o = {.x = x_exact, .p = p_exact};
        oracle_of_row(&srow, &o);
        posattn_alibi_softmax_row_f32_scalar(&srow);
        srow.probs = probs, srow.lse = &lse;
        posattn_alibi_softmax_row_f32_sve(&srow);
        check_against_oracle(&srow, &o, probs_ref, lse_ref, "scalar", UINT64_C(0x3117e) + (uint64_t)axes);
        check_against_oracle(&srow, &o, probs, lse, "sve", UINT64_C(0x3117e) + (uint64_t)axes);
    }
    munmap(k, bytes);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Buffers against inaccessible pages                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/* bytes of data that start right after, or end right before, a PROT_NONE page: any access outside them faults
 * (qemu-user enforces page protections; predicated loads and stores leave inactive lanes alone). */
typedef struct fenced {
    unsigned char *map;
    size_t map_bytes;
    void *data;
} fenced;

static fenced fenced_alloc(size_t bytes, int at_end) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t data_pages = (bytes + page - 1) / page;
    fenced f;
    f.map_bytes = (data_pages + 2) * page;
    f.map = mmap(NULL, f.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(f.map != MAP_FAILED);
    ck_assert(mprotect(f.map, page, PROT_NONE) == 0);
    ck_assert(mprotect(f.map + (data_pages + 1) * page, page, PROT_NONE) == 0);
    f.data = at_end ? f.map + (data_pages + 1) * page - bytes : f.map + page;
    return f;
}

static void fenced_free(fenced *f) {
    munmap(f->map, f->map_bytes);
}

/* Every key mode and both mask types on rows of 0..70 keys whose inputs and outputs touch an inaccessible page at
 * their start or their end. */
START_TEST(test_fenced_rows) {
    int64_t rows = 0;
    for (int at_end = 0; at_end <= 1; ++at_end) {
        for (int64_t nk = 0; nk <= 70; ++nk) {
            for (int mode = 0; mode < KEY_MODE_COUNT; ++mode, ++rows) {
                rng g = rng_seeded(test_case_seed(UINT64_C(0xfe4ce) + (uint64_t)rows));
                keys_input in = make_keys(&g, (key_mode)mode, nk, 0, 0);
                fenced k = fenced_alloc(in.k.size, at_end);
                if (in.k.size) memcpy(k.data, in.k.data, in.k.size);
                const size_t n = (size_t)nk;
                fenced bias = fenced_alloc(n * sizeof(float), at_end);
                fenced scores = fenced_alloc(n * sizeof(float), at_end);
                fenced probs = fenced_alloc(n * sizeof(float), at_end);
                const int f16 = (int)(rows & 1);
                fenced mask = fenced_alloc(n * (f16 ? sizeof(uint16_t) : sizeof(float)), at_end);
                float *ref = malloc((n ? n : 1) * sizeof(float));
                ck_assert(ref != NULL);
                for (int64_t j = 0; j < nk; ++j) {
                    ((float *)scores.data)[j] = rng_float(&g, -8.0, 8.0);
                    const float m = rng_below(&g, 4) == 0 ? -INFINITY : 0.0f;
                    if (f16) ((uint16_t *)mask.data)[j] = f32_to_f16(m);
                    else ((float *)mask.data)[j] = m;
                }
                posattn_bias_row brow = {.bias = ref, .nk = nk, .slope = 0.5f, .q_pos = in.q_pos,
                                         .keys = {in.k.size ? (const float *)k.data : NULL, in.keys.k_pos_stride},
                                         .nd = in.nd};
                posattn_alibi_bias_row_f32_scalar(&brow);
                brow.bias = bias.data;
                posattn_alibi_bias_row_f32_sve(&brow);
                for (int64_t j = 0; j < nk; ++j) {
                    CHECK(same_or_both_nan(((float *)bias.data)[j], ref[j]), "fenced bias %s nk %" PRId64 " key %" PRId64,
                          key_mode_names[mode], nk, j);
                }
                float lse = 0.0f, lse_ref = 0.0f;
                posattn_softmax_row srow = {.scores = scores.data, .probs = ref, .nk = nk, .lo = 0, .hi = nk,
                                            .scale = 1.0f, .slope = 0.5f, .q_pos = in.q_pos, .keys = brow.keys,
                                            .mask = mask.data, .mask_is_f16 = f16, .mask_scale = 1.0f,
                                            .lse = &lse_ref, .nd = in.nd};
                double x_exact[71], p_exact[71];
                row_oracle o = {.x = x_exact, .p = p_exact};
                oracle_of_row(&srow, &o);
                posattn_alibi_softmax_row_f32_scalar(&srow);
                srow.probs = probs.data, srow.lse = &lse;
                posattn_alibi_softmax_row_f32_sve(&srow);
                check_against_oracle(&srow, &o, ref, lse_ref, "scalar fenced", (uint64_t)rows);
                check_against_oracle(&srow, &o, probs.data, lse, "sve fenced", (uint64_t)rows);
                free(ref);
                fenced_free(&mask);
                fenced_free(&probs);
                fenced_free(&scores);
                fenced_free(&bias);
                fenced_free(&k);
                guarded_free(&in.k);
            }
        }
    }
}
END_TEST

static Suite *sve_rows_suite(void) {
    Suite *suite = suite_create("sve_rows");
    TCase *t = make_tcase("sve_rows");
    tcase_add_test(t, test_vector_length);
    tcase_add_test(t, test_implicit_positions);
    tcase_add_test(t, test_bias_rows);
    tcase_add_test(t, test_softmax_rows);
    tcase_add_test(t, test_wide_strides);
    tcase_add_test(t, test_fenced_rows);
    suite_add_tcase(suite, t);
    return suite;
}

int main(int argc, char **argv) {
    if (!(getauxval(AT_HWCAP) & HWCAP_SVE)) {
        fprintf(stderr, "test_sve_rows: this CPU has no SVE, skipped\n");
        return 77;
    }
    if (argc > 1) expected_vector_bits = strtol(argv[1], NULL, 10);
    const char *dump = getenv("POSATTN_SVE_DUMP");
    if (dump && *dump) {
        char lse_path[4096];
        snprintf(lse_path, sizeof lse_path, "%s.lse", dump);
        dump_file = fopen(dump, "wb");
        dump_lse_file = fopen(lse_path, "wb");
        if (!dump_file || !dump_lse_file) {
            fprintf(stderr, "test_sve_rows: cannot write %s\n", dump);
            return EXIT_FAILURE;
        }
    }
    const int status = run_suite(sve_rows_suite());
    if (dump_file) fclose(dump_file);
    if (dump_lse_file) fclose(dump_lse_file);
    return status;
}
