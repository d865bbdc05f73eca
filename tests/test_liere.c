/*
 * LieRE rotations (SPEC 5) on every supported ISA: posattn_liere_rotations, posattn_liere_apply and
 * posattn_liere_rotation_size.
 *
 * The oracle is a float64 matrix exponential (scaling and squaring to norm 1/8, Taylor to degree 18, whose
 * truncation and rounding are far below float32) of the exponent S formed exactly from the same float32 inputs.
 * Checks: the SPEC's printed vector; rotations against the oracle within the header's bounds for b in
 * {2, 3, 4, 8, 16, 64} (and odd sizes) with angles beyond 100; orthogonality; exp(0) = I exactly; b = 2 against
 * posattn_rope_apply with the equivalent frequencies; R(p)^T R(q) = R(q - p) for commuting (block-diagonal 2 x 2)
 * generators; apply (forward, backward, q and k, shared and per-head sets, offsets, strides, tails) against a
 * float64 product with the float32 rotations; token ranges; refused input that writes nothing.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "liere_scratch.h"
#include "support.h"

#define U UNIT_ROUNDOFF

/* ------------------------------------------------------------------------------------------------------------ */
/* The float64 oracle                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

static void matmul_f64(const double *a, const double *b, double *c, int n) {
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) {
            double s = 0.0;
            for (int k = 0; k < n; ++k) s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
    }
}

/* exp(S) in float64 for an n x n S (row-major). */
static void expm_f64(const double *s, double *r, int n) {
    double norm = 0.0;
    for (int c = 0; c < n; ++c) {
        double sum = 0.0;
        for (int i = 0; i < n; ++i) sum += fabs(s[i * n + c]);
        if (sum > norm) norm = sum;
    }
    int sq = 0;
    while (norm > 0.125) norm *= 0.5, ++sq;
    const size_t bytes = (size_t)n * (size_t)n * sizeof(double);
    double *a = malloc(bytes), *term = malloc(bytes), *tmp = malloc(bytes);
    for (int i = 0; i < n * n; ++i) a[i] = ldexp(s[i], -sq);
    for (int i = 0; i < n * n; ++i) r[i] = term[i] = (i % (n + 1) == 0) ? 1.0 : 0.0;
    for (int k = 1; k <= 18; ++k) {
        matmul_f64(term, a, tmp, n);
        for (int i = 0; i < n * n; ++i) term[i] = tmp[i] / k, r[i] += term[i];
    }
    for (int k = 0; k < sq; ++k) {
        matmul_f64(r, r, tmp, n);
        memcpy(r, tmp, bytes);
    }
    free(a), free(term), free(tmp);
}

/* The exponent of set g, block j, for a token's positions, exactly (products of floats are exact in double). */
static void exponent_f64(const float *pos, int64_t n_axes, const float *gens, int64_t g, int64_t j, int64_t nb,
                         int b, double *s) {
    const int64_t tri = (int64_t)b * (b - 1) / 2;
    int e = 0;
    for (int r = 0; r < b; ++r) {
        s[r * b + r] = 0.0;
        for (int c = r + 1; c < b; ++c, ++e) {
            double v = 0.0;
            for (int64_t a = 0; a < n_axes; ++a) {
                v += (double)pos[a] * (double)gens[((g * n_axes + a) * nb + j) * tri + e];
            }
            s[r * b + c] = v;
            s[c * b + r] = -v;
        }
    }
}

static double norm1(const double *s, int b) {
    double norm = 0.0;
    for (int c = 0; c < b; ++c) {
        double sum = 0.0;
        for (int r = 0; r < b; ++r) sum += fabs(s[r * b + c]);
        if (sum > norm) norm = sum;
    }
    return norm;
}

/* The header's entry bound for a block with exponent s. */
static double entry_bound(const double *s, int b) {
    if (b <= 3) {
        double mx = 0.0;
        for (int i = 0; i < b * b; ++i) mx = fmax(mx, fabs(s[i]));
        return U + 0x1p-50 * (1.0 + 2.0 * mx);
    }
    int sq = 0;
    double norm = norm1(s, b);
    if (norm > 0.5) {
        int e;
        frexp(norm, &e);
        sq = e + 1;
    }
    return (1.0 + ldexp(1.0, sq)) * 4.0 * b * U;
}

static double ortho_bound(int b) { return b <= 3 ? 4.0 * U : (2.0 * b + 4.0) * U; }

/* R_j[r][c] of set g from the stored layout. */
static float rot_at(const float *rot_tok, int64_t g, int64_t j, int b, int64_t d, int r, int c) {
    return rot_tok[(g * b + c) * d + j * b + r];
}

/* max |R^T R - I| for one stored block, in float64. */
static double ortho_error(const float *rot_tok, int64_t g, int64_t j, int b, int64_t d) {
    double worst = 0.0;
    for (int c1 = 0; c1 < b; ++c1) {
        for (int c2 = 0; c2 < b; ++c2) {
            double s = 0.0;
            for (int r = 0; r < b; ++r) {
                s += (double)rot_at(rot_tok, g, j, b, d, r, c1) * rot_at(rot_tok, g, j, b, d, r, c2);
            }
            worst = fmax(worst, fabs(s - (c1 == c2)));
        }
    }
    return worst;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The SPEC's vector                                                                                              */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_spec_vector) {
    /* S = [[0,-0.7,0.4],[0.7,0,0.5],[-0.4,-0.5,0]]: upper entries (0,1) (0,2) (1,2) at position 1. */
    const float gens[3] = {-0.7f, 0.4f, 0.5f};
    const float pos[1] = {1.0f};
    const double want[3][3] = {{0.698655386, -0.692346425, 0.180380375},
                               {0.506903585, 0.656930747, 0.558113563},
                               {-0.504905345, -0.298493587, 0.809921089}};
    const double want_x[3] = {-0.144896338, 3.49510577, 1.32787075};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float rot[9];
        ck_assert_int_eq(posattn_liere_rotations(1, 1, pos, 0, 1, 3, 3, gens, rot, 0, NULL, 0, NULL, 0, 1), POSATTN_OK);
        for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 3; ++c)
                /* The SPEC's values are exp of the decimal S; ours of S rounded to float32 (within 4e-8). */
                CHECK(fabs(rot_at(rot, 0, 0, 3, 3, r, c) - want[r][c]) < 1e-7, "%s: R[%d][%d] = %.9g, want %.9g",
                      posattn_isa_name(isa), r, c, rot_at(rot, 0, 0, 3, 3, r, c), want[r][c]);
        float x[3] = {1.0f, 2.0f, 3.0f};
        ck_assert_int_eq(posattn_liere_apply(1, 3, 0, 3, 3, x, 1, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, 1),
                         POSATTN_OK);
        for (int r = 0; r < 3; ++r)
            CHECK(fabs(x[r] - want_x[r]) < 1e-6, "%s: x'[%d] = %.9g, want %.9g", posattn_isa_name(isa), r, x[r],
                  want_x[r]);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Rotations against the float64 exponential                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct rot_problem {
    int b;
    int64_t n_tok, n_axes, n_gen, rot_dims;
    float *pos, *gens;
} rot_problem;

/* Generators with entries in [-gmax, gmax] and positions in [-pmax, pmax]. */
static rot_problem make_problem(int b, int64_t n_tok, int64_t n_axes, int64_t n_gen, int64_t rot_dims, double gmax,
                                double pmax, rng *g) {
    rot_problem p = {b, n_tok, n_axes, n_gen, rot_dims, NULL, NULL};
    const int64_t n_gens = n_gen * n_axes * (rot_dims / b) * b * (b - 1) / 2;
    p.pos = malloc((size_t)(n_tok * n_axes) * sizeof(float));
    p.gens = malloc((size_t)n_gens * sizeof(float));
    for (int64_t i = 0; i < n_tok * n_axes; ++i) p.pos[i] = rng_float(g, -pmax, pmax);
    for (int64_t i = 0; i < n_gens; ++i) p.gens[i] = rng_float(g, -gmax, gmax);
    return p;
}

static void free_problem(rot_problem *p) { free(p->pos), free(p->gens); }

static double worst_ortho; /* of the last check_rotations, in units of the bound */

/* Runs the rotations on the active ISA and checks every block against the oracle. Returns the largest error seen in
 * units of the bound (for the log). */
static double check_rotations(const rot_problem *p, const char *what) {
    const int b = p->b;
    const int64_t d = p->rot_dims, nb = d / b, per = p->n_gen * b * d;
    int64_t size = 0;
    ck_assert_int_eq(posattn_liere_rotation_size(p->n_gen, b, d, &size), POSATTN_OK);
    ck_assert_int_eq(size, per);
    guarded out = guarded_output((size_t)(per * p->n_tok), sizeof(float), 1);
    float *rot = out.data;
    ck_assert_int_eq(posattn_liere_rotations(p->n_tok, p->n_axes, p->pos, 0, p->n_gen, b, d, p->gens, rot, 0,
                                             LIERE_SCRATCH(b), NULL, 0, p->n_tok),
                     POSATTN_OK);
    guarded_check(&out, what);
    double *s = malloc(sizeof(double) * (size_t)(b * b)), *r = malloc(sizeof(double) * (size_t)(b * b));
    double worst = 0.0;
    worst_ortho = 0.0;
    for (int64_t t = 0; t < p->n_tok; ++t) {
        for (int64_t g = 0; g < p->n_gen; ++g) {
            for (int64_t j = 0; j < nb; ++j) {
                exponent_f64(p->pos + t * p->n_axes, p->n_axes, p->gens, g, j, nb, b, s);
                expm_f64(s, r, b);
                const double bound = entry_bound(s, b);
                const float *rt = rot + t * per;
                for (int i = 0; i < b; ++i) {
                    for (int c = 0; c < b; ++c) {
                        const double err = fabs(rot_at(rt, g, j, b, d, i, c) - r[i * b + c]);
                        worst = fmax(worst, err / bound);
                        CHECK(err <= bound, "%s %s b=%d t=%" PRId64 " g=%" PRId64 " j=%" PRId64
                              " R[%d][%d] = %.9g, want %.12g (err %.3g > bound %.3g, |S|_1 %.4g)",
                              posattn_isa_name(posattn_active_isa()), what, b, t, g, j, i, c,
                              rot_at(rt, g, j, b, d, i, c), r[i * b + c], err, bound, norm1(s, b));
                    }
                }
                const double oe = ortho_error(rt, g, j, b, d);
                worst_ortho = fmax(worst_ortho, oe / ortho_bound(b));
                CHECK(oe <= ortho_bound(b), "%s %s b=%d t=%" PRId64 ": |R^T R - I| = %.3g > %.3g",
                      posattn_isa_name(posattn_active_isa()), what, b, t, oe, ortho_bound(b));
            }
        }
    }
    free(s), free(r);
    guarded_free(&out);
    return worst;
}

START_TEST(test_rotations_vs_expm) {
    /* b, tokens, axes, sets, rot_dims, generator range, position range: angles ||S||_1 up to a few hundred. */
    static const struct {
        int b;
        int64_t n_tok, n_axes, n_gen, rot_dims;
        double gmax, pmax;
    } cases[] = {
        {2, 40, 2, 2, 12, 3.0, 60.0},  {2, 9, 1, 1, 2, 1.0, 2e4},    {3, 40, 2, 1, 9, 2.0, 50.0},
        {3, 20, 1, 2, 6, 1e-6, 1e-3},  {4, 16, 2, 2, 8, 1.0, 50.0},  {8, 12, 3, 1, 16, 0.5, 40.0},
        {8, 12, 1, 1, 8, 0.02, 1.0},   {16, 6, 2, 1, 32, 0.3, 30.0}, {64, 3, 2, 1, 64, 0.1, 20.0},
        {64, 2, 1, 1, 64, 0.002, 1.0}, {5, 6, 2, 1, 10, 1.0, 20.0},  {24, 2, 2, 1, 48, 0.3, 20.0},
    };
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
            rng g = rng_seeded(test_case_seed(100 + k));
            rot_problem p = make_problem(cases[k].b, cases[k].n_tok, cases[k].n_axes, cases[k].n_gen,
                                         cases[k].rot_dims, cases[k].gmax, cases[k].pmax, &g);
            char what[64];
            snprintf(what, sizeof what, "case %zu", k);
            double worst = check_rotations(&p, what);
            if (isa == best_supported_isa() || isa == FIRST_ISA) {
                fprintf(stderr, "liere %s b=%d: worst entry error %.3g, orthogonality %.3g of the bounds\n",
                        posattn_isa_name(isa), cases[k].b, worst, worst_ortho);
            }
            free_problem(&p);
        }
    }
}
END_TEST

/* Angles of at least 100 radians in every block size the issue names. */
START_TEST(test_rotations_large_angles) {
    static const int blocks[] = {2, 3, 4, 8, 16, 64};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; ++k) {
            const int b = blocks[k];
            rng g = rng_seeded(test_case_seed(200 + k));
            /* One axis, position 100 + : the generator's largest rotation angle (its spectral radius) is about
             * |g| sqrt(b) on average, so g in [-1.5/sqrt(b), 1.5/sqrt(b)] puts it near or beyond 100. */
            rot_problem p = make_problem(b, b == 64 ? 1 : 4, 1, 1, b, 1.5 / sqrt((double)b), 1.0, &g);
            for (int64_t t = 0; t < p.n_tok; ++t) p.pos[t] = 100.0f + 37.0f * (float)t;
            check_rotations(&p, "large angles");
            free_problem(&p);
        }
    }
}
END_TEST

START_TEST(test_exp_zero_is_identity) {
    static const int blocks[] = {2, 3, 4, 7, 8, 16, 64};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; ++k) {
            const int b = blocks[k];
            rng g = rng_seeded(test_case_seed(300 + k));
            rot_problem p = make_problem(b, 2, 2, 1, b, 1.0, 1.0, &g);
            for (int64_t i = 0; i < 4; ++i) p.pos[i] = 0.0f; /* S = 0 with non-zero generators */
            float *rot = malloc(sizeof(float) * (size_t)(2 * b * b));
            ck_assert_int_eq(
                posattn_liere_rotations(2, 2, p.pos, 0, 1, b, b, p.gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, 2),
                POSATTN_OK);
            for (int64_t i = 0; i < 2 * b * b; ++i) {
                const int r = (int)(i % b), c = (int)((i / b) % b);
                CHECK(rot[i] == (r == c ? 1.0f : 0.0f), "%s b=%d: exp(0) entry %" PRId64 " = %.9g",
                      posattn_isa_name(isa), b, i, rot[i]);
            }
            free(rot);
            free_problem(&p);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* b = 2 against the rotary kernel                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/* LieRE with b = 2 and entry g is RoPE (interleaved) with frequency -g. Positions and generators with few bits make
 * both libraries' angles exact (float32 for RoPE, float64 here), so the results agree within both kernels' bounds
 * (RoPE: 6 u r; LieRE: u per entry, then (b + 1) u per output). */
START_TEST(test_b2_matches_rope_apply) {
    enum { n_tok = 7, heads = 3, head_dim = 24, rot_offset = 4, rot_dims = 16, axes = 2, pairs = rot_dims / 2 };
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        rng g = rng_seeded(test_case_seed(400));
        float pos[n_tok * axes], gens[axes * pairs], freqs[axes * pairs];
        for (int i = 0; i < n_tok * axes; ++i) pos[i] = (float)(rng_below(&g, 4096) - 2048) / 8.0f;
        for (int i = 0; i < axes * pairs; ++i) {
            gens[i] = (float)(rng_below(&g, 2048) - 1024) / 1024.0f;
            freqs[i] = -gens[i];
        }
        float x[n_tok * heads * head_dim], y[n_tok * heads * head_dim];
        for (int i = 0; i < n_tok * heads * head_dim; ++i) x[i] = y[i] = rng_float(&g, -2.0, 2.0);
        float rot[n_tok * 2 * rot_dims];
        ck_assert_int_eq(
            posattn_liere_rotations(n_tok, axes, pos, 0, 1, 2, rot_dims, gens, rot, 0, NULL, 0, NULL, 0, n_tok),
            POSATTN_OK);
        ck_assert_int_eq(posattn_liere_apply(n_tok, head_dim, rot_offset, rot_dims, 2, x, heads, 0, 0, NULL, 0, 0, 0,
                                             rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                         POSATTN_OK);
        ck_assert_int_eq(posattn_rope_apply(n_tok, heads, head_dim, y, 0, 0, rot_offset, rot_dims,
                                            POSATTN_ROPE_INTERLEAVED, axes, pos, 0, freqs, 0, NULL, 0, n_tok),
                         POSATTN_OK);
        for (int i = 0; i < n_tok * heads * head_dim; i += 2) {
            const double r = hypot(x[i], x[i + 1]) + 1e-30;
            for (int k = 0; k < 2; ++k) {
                CHECK(fabs((double)x[i + k] - y[i + k]) <= 12.0 * U * r + 1e-37, "%s: element %d liere %.9g rope %.9g",
                      posattn_isa_name(isa), i + k, x[i + k], y[i + k]);
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Commuting generators: R(p)^T R(q) = R(q - p)                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_commuting_generators_relative) {
    static const int blocks[] = {4, 8, 16};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; ++k) {
            const int b = blocks[k], axes = 2, tri = b * (b - 1) / 2;
            rng g = rng_seeded(test_case_seed(500 + k));
            float *gens = calloc((size_t)(axes * tri), sizeof(float));
            /* Only the entries (2i, 2i+1): block-diagonal 2 x 2 generators, which commute. */
            for (int a = 0; a < axes; ++a) {
                int e = 0;
                for (int r = 0; r < b; ++r)
                    for (int c = r + 1; c < b; ++c, ++e)
                        if (r % 2 == 0 && c == r + 1) gens[a * tri + e] = rng_float(&g, -1.0, 1.0);
            }
            /* Positions p, q and q - p, with q - p exact in float32. */
            float pos[3 * 2];
            for (int a = 0; a < axes; ++a) {
                pos[a] = (float)rng_below(&g, 64);
                pos[2 + a] = (float)rng_below(&g, 64);
                pos[4 + a] = pos[2 + a] - pos[a];
            }
            float *rot = malloc(sizeof(float) * (size_t)(3 * b * b));
            ck_assert_int_eq(
                posattn_liere_rotations(3, axes, pos, 0, 1, b, b, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, 3),
                POSATTN_OK);
            const float *rp = rot, *rq = rot + b * b, *rd = rot + 2 * b * b;
            /* Bound: the error of each factor (entry bound with s squarings at |S|_1 <= 2 * 64 * 1) twice, plus
             * the product's rounding. */
            double s[16 * 16];
            exponent_f64(pos + 2, axes, gens, 0, 0, 1, b, s);
            double bound = 3.0 * entry_bound(s, b) * b;
            for (int r = 0; r < b; ++r) {
                for (int c = 0; c < b; ++c) {
                    double v = 0.0;
                    for (int i = 0; i < b; ++i) {
                        v += (double)rot_at(rp, 0, 0, b, b, i, r) * rot_at(rq, 0, 0, b, b, i, c);
                    }
                    const double want = rot_at(rd, 0, 0, b, b, r, c);
                    CHECK(fabs(v - want) <= bound, "%s b=%d: (R(p)^T R(q))[%d][%d] = %.9g, R(q-p) = %.9g",
                          posattn_isa_name(isa), b, r, c, v, want);
                }
            }
            free(rot), free(gens);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Apply                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct apply_case {
    int b;
    int64_t n_tok, head_dim, rot_offset, rot_dims, q_heads, k_heads, n_gen;
    int64_t q_head_pad, k_tok_pad; /* extra elements between heads (q) and tokens (k) */
    int backward, use_k;
} apply_case;

static void run_apply_case(const apply_case *ac, uint64_t seed) {
    const int b = ac->b;
    const int64_t d = ac->rot_dims, nb = d / b, per = ac->n_gen * b * d;
    rng g = rng_seeded(seed);
    rot_problem p = make_problem(b, ac->n_tok, 2, ac->n_gen, d, 0.5, 4.0, &g);
    float *rot = malloc(sizeof(float) * (size_t)(per * ac->n_tok));
    ck_assert_int_eq(posattn_liere_rotations(p.n_tok, 2, p.pos, 0, ac->n_gen, b, d, p.gens, rot, 0, LIERE_SCRATCH(b),
                                             NULL, 0, p.n_tok),
                     POSATTN_OK);
    const int64_t qhs = ac->head_dim + ac->q_head_pad, qts = ac->q_heads * qhs;
    const int64_t khs = ac->head_dim, kts = ac->k_heads * khs + ac->k_tok_pad;
    const int64_t nq = ac->n_tok * qts, nk = ac->n_tok * kts;
    guarded qg = guarded_output((size_t)nq, sizeof(float), 1), kg = guarded_output((size_t)nk, sizeof(float), 0);
    float *q = qg.data, *k = kg.data;
    float *q0 = malloc(sizeof(float) * (size_t)nq), *k0 = malloc(sizeof(float) * (size_t)nk);
    for (int64_t i = 0; i < nq; ++i) q0[i] = q[i] = rng_float(&g, -3.0, 3.0);
    for (int64_t i = 0; i < nk; ++i) k0[i] = k[i] = rng_float(&g, -3.0, 3.0);
    posattn_liere_options o = {0};
    if (ac->backward) o.flags = POSATTN_LIERE_BACKWARD;
    const int64_t t0 = ac->n_tok > 2 ? 1 : 0, t1 = ac->n_tok;
    ck_assert_int_eq(posattn_liere_apply(ac->n_tok, ac->head_dim, ac->rot_offset, d, b, q, ac->q_heads, qts, qhs,
                                         ac->use_k ? k : NULL, ac->k_heads, kts, khs, rot, 0, ac->n_gen,
                                         LIERE_SCRATCH(b), &o, t0, t1),
                     POSATTN_OK);
    guarded_check(&qg, "q"), guarded_check(&kg, "k");
    for (int side = 0; side < 2; ++side) {
        const float *x = side ? k : q, *x0 = side ? k0 : q0;
        const int64_t heads = side ? ac->k_heads : ac->q_heads, hs = side ? khs : qhs, ts = side ? kts : qts;
        const int64_t n = side ? nk : nq;
        const int touched = side == 0 || ac->use_k;
        for (int64_t i = 0; i < n; ++i) {
            const int64_t t = i / ts, h = (i % ts) / hs, e = (i % ts) % hs;
            const int rotated = touched && t >= t0 && t < t1 && h < heads && e >= ac->rot_offset &&
                                e < ac->rot_offset + d;
            if (!rotated) {
                CHECK(same_bits(x[i], x0[i]), "%s: %s element %" PRId64 " changed",
                      posattn_isa_name(posattn_active_isa()), side ? "k" : "q", i);
                continue;
            }
            const int64_t dd = e - ac->rot_offset, j = dd / b, r = dd % b, gset = h / (heads / ac->n_gen);
            const float *xb = x0 + t * ts + h * hs + ac->rot_offset + j * b;
            double want = 0.0, mag = 0.0;
            for (int c = 0; c < b; ++c) {
                const double coef = ac->backward ? rot_at(rot + t * per, gset, j, b, d, c, (int)r)
                                                 : rot_at(rot + t * per, gset, j, b, d, (int)r, c);
                want += coef * xb[c];
                mag += fabs(coef * xb[c]);
            }
            CHECK(fabs(x[i] - want) <= (b + 1) * U * mag + 1e-37,
                  "%s b=%d %s t=%" PRId64 " h=%" PRId64 " dim %" PRId64 ": %.9g, want %.9g (backward %d)",
                  posattn_isa_name(posattn_active_isa()), b, side ? "k" : "q", t, h, dd, x[i], want, ac->backward);
        }
    }
    (void)nb;
    free(q0), free(k0), free(rot);
    guarded_free(&qg), guarded_free(&kg);
    free_problem(&p);
}

START_TEST(test_apply) {
    static const apply_case cases[] = {
        /* b, n_tok, D, offset, D_rot, q heads, k heads, sets, q head pad, k token pad, backward, use k */
        {64, 3, 64, 0, 64, 12, 12, 1, 0, 0, 0, 1},  {64, 3, 64, 0, 64, 6, 6, 6, 0, 0, 1, 1},
        {64, 2, 72, 5, 64, 5, 1, 1, 3, 7, 0, 1},    {2, 5, 64, 0, 64, 4, 2, 2, 0, 0, 0, 1},
        {2, 4, 11, 3, 6, 3, 3, 1, 1, 0, 1, 1},      {4, 4, 40, 2, 36, 4, 4, 4, 0, 1, 0, 1},
        {8, 4, 64, 0, 64, 12, 4, 4, 0, 0, 1, 1},    {8, 3, 30, 1, 24, 2, 2, 1, 0, 0, 0, 0},
        {16, 3, 48, 0, 48, 3, 3, 1, 2, 0, 1, 1},    {32, 3, 64, 0, 64, 9, 3, 3, 0, 0, 0, 1},
        {3, 4, 20, 2, 18, 2, 1, 1, 0, 0, 1, 1},     {5, 3, 25, 0, 25, 2, 2, 2, 0, 0, 0, 1},
        {24, 2, 48, 0, 48, 5, 5, 1, 0, 0, 1, 1},    {12, 2, 40, 4, 36, 2, 2, 1, 0, 0, 0, 1},
        {48, 2, 50, 1, 48, 3, 3, 1, 0, 0, 1, 1},    {7, 2, 14, 0, 14, 17, 17, 1, 0, 0, 0, 1},
    };
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) run_apply_case(&cases[k], test_case_seed(600 + k));
    }
}
END_TEST

/* Forward then backward returns the input within the rotations' orthogonality and two applications' rounding. */
START_TEST(test_backward_undoes_forward) {
    static const int blocks[] = {2, 3, 8, 64};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof blocks / sizeof blocks[0]; ++k) {
            const int b = blocks[k];
            const int64_t d = b == 3 ? 63 : 64, heads = 4, n_tok = 3;
            rng g = rng_seeded(test_case_seed(700 + k));
            rot_problem p = make_problem(b, n_tok, 2, 1, d, 0.3, 30.0, &g);
            float *rot = malloc(sizeof(float) * (size_t)(n_tok * b * d));
            ck_assert_int_eq(
                posattn_liere_rotations(n_tok, 2, p.pos, 0, 1, b, d, p.gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_OK);
            const int64_t n = n_tok * heads * d;
            float *x = malloc(sizeof(float) * (size_t)n), *x0 = malloc(sizeof(float) * (size_t)n);
            for (int64_t i = 0; i < n; ++i) x0[i] = x[i] = rng_float(&g, -1.0, 1.0);
            posattn_liere_options back = {POSATTN_LIERE_BACKWARD};
            ck_assert_int_eq(posattn_liere_apply(n_tok, d, 0, d, b, x, heads, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0,
                                                 NULL, 0, n_tok),
                             POSATTN_OK);
            ck_assert_int_eq(posattn_liere_apply(n_tok, d, 0, d, b, x, heads, 0, 0, NULL, 0, 0, 0, rot, 0, 1,
                                                 LIERE_SCRATCH(b), &back, 0, n_tok),
                             POSATTN_OK);
            for (int64_t i = 0; i < n; i += b) {
                double nrm = 0.0;
                for (int c = 0; c < b; ++c) nrm += (double)x0[i + c] * x0[i + c];
                nrm = sqrt(nrm);
                for (int c = 0; c < b; ++c) {
                    const double bound = (ortho_bound(b) * b + 2.0 * (b + 1) * U * sqrt((double)b)) * nrm * 1.5;
                    CHECK(fabs(x[i + c] - x0[i + c]) <= bound, "%s b=%d: round trip %.9g -> %.9g (bound %.3g)",
                          posattn_isa_name(isa), b, x0[i + c], x[i + c], bound);
                }
            }
            free(x), free(x0), free(rot);
            free_problem(&p);
        }
    }
}
END_TEST

/* Splitting the token range changes nothing, bit for bit; every ISA against the scalar reference within bounds. */
START_TEST(test_token_ranges_and_isas_agree) {
    enum { n_tok = 6, b = 8, d = 16 };
    rng g = rng_seeded(test_case_seed(800));
    rot_problem p = make_problem(b, n_tok, 2, 2, d, 0.5, 20.0, &g);
    float ref[n_tok * 2 * b * d], whole[n_tok * 2 * b * d], split[n_tok * 2 * b * d];
    ck_assert(enter_isa(POSATTN_ISA_SCALAR));
    ck_assert_int_eq(
        posattn_liere_rotations(n_tok, 2, p.pos, 0, 2, b, d, p.gens, ref, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
        POSATTN_OK);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(split, n_tok * 2 * b * d);
        ck_assert_int_eq(
            posattn_liere_rotations(n_tok, 2, p.pos, 0, 2, b, d, p.gens, whole, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
            POSATTN_OK);
        ck_assert_int_eq(
            posattn_liere_rotations(n_tok, 2, p.pos, 0, 2, b, d, p.gens, split, 0, LIERE_SCRATCH(b), NULL, 4, n_tok),
            POSATTN_OK);
        const int64_t ranges[3][2] = {{1, 4}, {0, 1}, {3, 3}};
        for (int r = 0; r < 3; ++r) {
            ck_assert_int_eq(posattn_liere_rotations(n_tok, 2, p.pos, 0, 2, b, d, p.gens, split, 0, LIERE_SCRATCH(b),
                                                     NULL, ranges[r][0], ranges[r][1]),
                             POSATTN_OK);
        }
        for (int i = 0; i < n_tok * 2 * b * d; ++i) {
            CHECK(same_bits(whole[i], split[i]), "%s: token ranges differ at %d", posattn_isa_name(isa), i);
            /* Both within the oracle's bound (2 * 4 b u (1 + 2^s) at ||S||_1 <= 2*20*... keep it loose but tight
             * enough to catch a wrong ISA path). */
            CHECK(fabs(whole[i] - ref[i]) <= 1e-4, "%s: %.9g vs scalar %.9g at %d", posattn_isa_name(isa), whole[i],
                  ref[i], i);
        }
    }
    free_problem(&p);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Refused input                                                                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_errors) {
    enum { n_tok = 2, d = 8, b = 4, axes = 2, tri = b * (b - 1) / 2 };
    /* One arena: positions, generators, rotations, q, k; every refused call must leave it unchanged. */
    enum { AT_POS = 0, AT_GENS = 8, AT_ROT = 64, AT_Q = 192, AT_K = 240, ARENA = 320 };
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float a[ARENA], before[ARENA];
        rng g = rng_seeded(test_case_seed(900));
        for (int i = 0; i < ARENA; ++i) a[i] = rng_float(&g, -1.0, 1.0);
        float *pos = a + AT_POS, *gens = a + AT_GENS, *rot = a + AT_ROT, *q = a + AT_Q, *k = a + AT_K;
        (void)tri;
        memcpy(before, a, sizeof a);
#define REFUSED(call, want)                                                                                        \
    do {                                                                                                           \
        posattn_status st_ = (call);                                                                               \
        CHECK(st_ == (want), "%s: %s returned %s, want %s", posattn_isa_name(isa), #call,                          \
              posattn_status_string(st_), posattn_status_string(want));                                            \
        CHECK(!memcmp(a, before, sizeof a), "%s: %s wrote to its buffers", posattn_isa_name(isa), #call);          \
    } while (0)
        /* Rotations. */
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, NULL, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_NULL);
        REFUSED(posattn_liere_rotations(n_tok, axes, NULL, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_NULL);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, NULL, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_NULL);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, 1, d, gens, rot, 0, LIERE_SCRATCH(1), NULL, 0, n_tok),
                POSATTN_ERR_BLOCK);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, 0, d, gens, rot, 0, LIERE_SCRATCH(0), NULL, 0, n_tok),
                POSATTN_ERR_BLOCK);
        REFUSED(
            posattn_liere_rotations(n_tok, axes, pos, 0, 1, 65, 65, gens, rot, 0, LIERE_SCRATCH(65), NULL, 0, n_tok),
            POSATTN_ERR_BLOCK);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, 3, d, gens, rot, 0, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_BLOCK);
        REFUSED(posattn_liere_rotations(n_tok, 0, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_AXES);
        REFUSED(posattn_liere_rotations(n_tok, 5, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_AXES);
        REFUSED(posattn_liere_rotations(0, axes, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, 0),
                POSATTN_ERR_SIZE);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 0, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_SIZE);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 1, 3),
                POSATTN_ERR_ROW_RANGE);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 2, 1),
                POSATTN_ERR_ROW_RANGE);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 1, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_STRIDE);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, rot, 31, LIERE_SCRATCH(b), NULL, 0, n_tok),
                POSATTN_ERR_STRIDE);
        REFUSED(
            posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, gens + 4, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
            POSATTN_ERR_OVERLAP);
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, rot, INT64_MAX / 2, LIERE_SCRATCH(b), NULL,
                                        0, n_tok),
                POSATTN_ERR_OVERFLOW);
        posattn_liere_options bad = {1u << 5};
        REFUSED(posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), &bad, 0, n_tok),
                POSATTN_ERR_FLAGS);
        int64_t size = -1;
        CHECK(posattn_liere_rotation_size(1, 3, 8, &size) == POSATTN_ERR_BLOCK && size == -1, "size: b = 3, D = 8");
        CHECK(posattn_liere_rotation_size(1, 4, 8, NULL) == POSATTN_ERR_NULL, "size: NULL");
        CHECK(posattn_liere_rotation_size(0, 4, 8, &size) == POSATTN_ERR_SIZE, "size: no set");
        /* Apply (q: 2 tokens x 3 heads x 8; k: 2 tokens x 3 heads x 8 at AT_K... only 80 floats: use 2 heads). */
        REFUSED(
            posattn_liere_apply(n_tok, d, 0, d, b, NULL, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
            POSATTN_ERR_NULL);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 0, NULL, 0, 0, 0, NULL, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_NULL);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, 3, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_BLOCK);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, 1, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_BLOCK);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, 65, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_BLOCK);
        REFUSED(posattn_liere_apply(n_tok, d, 2, d, b, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_LAYOUT);
        REFUSED(posattn_liere_apply(n_tok, d, -1, 4, b, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_LAYOUT);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 3, 0, 0, NULL, 0, 0, 0, rot, 0, 2, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_SIZE);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 0, k, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_SIZE);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 4, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_STRIDE);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 0, q + 8, 2, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
                POSATTN_ERR_OVERLAP);
        REFUSED(
            posattn_liere_apply(n_tok, d, 0, d, b, rot + 8, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
            POSATTN_ERR_OVERLAP);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, LIERE_SCRATCH(b), &bad, 0,
                                    n_tok),
                POSATTN_ERR_FLAGS);
        REFUSED(posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, 3),
                POSATTN_ERR_ROW_RANGE);
#undef REFUSED
        /* Valid neighbours succeed: q and k interleaved token by token (packed qk), rotations just fit. */
        ck_assert_int_eq(
            posattn_liere_rotations(n_tok, axes, pos, 0, 1, b, d, gens, rot, 0, LIERE_SCRATCH(b), NULL, 0, n_tok),
            POSATTN_OK);
        ck_assert_int_eq(
            posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 32, 0, q + 16, 2, 32, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
            POSATTN_OK);
        ck_assert_int_eq(
            posattn_liere_apply(n_tok, d, 0, d, b, q, 2, 0, 0, k, 2, 0, 0, rot, 0, 1, NULL, 0, NULL, 0, n_tok),
            POSATTN_OK);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("liere");
    TCase *tc = make_tcase("liere");
    tcase_add_test(tc, test_spec_vector);
    tcase_add_test(tc, test_rotations_vs_expm);
    tcase_add_test(tc, test_rotations_large_angles);
    tcase_add_test(tc, test_exp_zero_is_identity);
    tcase_add_test(tc, test_b2_matches_rope_apply);
    tcase_add_test(tc, test_commuting_generators_relative);
    tcase_add_test(tc, test_apply);
    tcase_add_test(tc, test_backward_undoes_forward);
    tcase_add_test(tc, test_token_ranges_and_isas_agree);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
