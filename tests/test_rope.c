/*
 * Rotary embeddings for N-D float positions (SPEC 4) on every supported ISA: posattn_rope_apply and the table
 * builders.
 *
 * One driver (run_rope_case) builds a case from a seed (sizes, strides, padding, misalignment, layout, axes, shared
 * or per-head tables, factors, direction, token range), calls every ISA on a fresh copy of the same input and checks:
 * canaries; every element outside the rotated dimensions of the tokens in range bit for bit unchanged; every rotated
 * pair against the exact rotation (float64) by the float32 angle formed as the header says, within its 6 u |f| r;
 * the pair norms within 9 u |f| r; and (without factors) the backward call returning the input within 12 u r.
 * Further tests: the SPEC's printed vectors, the builders, angles up to 1e6 radians and beyond, the relative-
 * position property of a shared 1-D table, shared tables against identical per-head ones, and refused input.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope_kernels.h"
#include "support.h"

/* The header's bounds, in units of u |f| r. */
#define ROPE_BOUND_U 6.0
#define ROPE_NORM_BOUND_U 9.0
#define ROPE_ROUNDTRIP_BOUND_U 12.0
/* Products of tiny inputs may underflow: an absolute slack far below any real error. */
#define ROPE_ABS_SLACK 1e-37

/* ------------------------------------------------------------------------------------------------------------ */
/* The oracle                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

/* The float32 angle as the header forms it: products, then sums in axis order, each rounded (volatile keeps the
 * compiler from fusing or widening). */
static float rope_angle(const float *pos, int64_t n_axes, const float *F, int64_t n_pairs, int64_t k) {
    volatile float theta = pos[0] * F[k];
    for (int64_t a = 1; a < n_axes; ++a) {
        volatile float term = pos[a] * F[a * n_pairs + k];
        theta = theta + term;
    }
    return theta;
}

/* f_k as the header defines it (attn_factor 0 counts as 1). */
static float rope_factor(const posattn_rope_options *o, int64_t k) {
    float attn = (o && o->attn_factor != 0.0f) ? o->attn_factor : 1.0f;
    if (o && o->pair_factors) {
        volatile float f = attn * o->pair_factors[k];
        return f;
    }
    return attn;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The case driver                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct rope_case {
    int64_t n_tok, n_heads, head_dim, rot_offset, rot_dims;
    posattn_rope_layout layout;
    int64_t n_axes;
    int64_t tok_pad, head_pad, pos_pad; /* extra elements between tokens / heads / positions (strides != 0) */
    int default_strides;                /* pass 0 strides (contiguous) */
    int per_head;                       /* each head its own table */
    int table_1d;                       /* 1-D builder table (else random dense table) */
    double pos_lo, pos_hi;              /* positions uniform in [pos_lo, pos_hi] */
    double freq_hi;                     /* random tables uniform in [0, freq_hi] */
    float attn_factor;
    int pair_factors;
    int backward;
    int64_t tok_begin, tok_end;
    int misalign_x, misalign_pos, misalign_freqs;
    uint64_t seed;
} rope_case;

static void describe(const rope_case *c, char *buf, size_t size) {
    snprintf(buf, size,
             "case seed %" PRIu64 ": n_tok %" PRId64 " heads %" PRId64 " D %" PRId64 " offset %" PRId64
             " D_rot %" PRId64 " %s A %" PRId64 " pads %" PRId64 "/%" PRId64 "/%" PRId64 "%s%s%s pos [%g, %g]"
             " attn %g%s%s tokens [%" PRId64 ", %" PRId64 ") misalign %d%d%d",
             c->seed, c->n_tok, c->n_heads, c->head_dim, c->rot_offset, c->rot_dims,
             c->layout == POSATTN_ROPE_HALF_SPLIT ? "half-split" : "interleaved", c->n_axes, c->tok_pad, c->head_pad,
             c->pos_pad, c->default_strides ? " default-strides" : "", c->per_head ? " per-head" : "",
             c->table_1d ? " 1d-table" : "", c->pos_lo, c->pos_hi, (double)c->attn_factor,
             c->pair_factors ? " pair-factors" : "", c->backward ? " backward" : "", c->tok_begin, c->tok_end,
             c->misalign_x, c->misalign_pos, c->misalign_freqs);
}

typedef struct rope_buffers {
    int64_t head_stride, tok_stride, pos_stride, freq_head_stride, table;
    size_t x_len, pos_len, freq_len;
    guarded x, pos, freqs, factors;
    float *original;
} rope_buffers;

static void build_case(const rope_case *c, rope_buffers *b) {
    rng g = rng_seeded(c->seed);
    const int64_t n_pairs = c->rot_dims / 2;
    b->head_stride = c->default_strides ? c->head_dim : c->head_dim + c->head_pad;
    b->tok_stride = c->default_strides ? c->n_heads * b->head_stride : c->n_heads * b->head_stride + c->tok_pad;
    b->pos_stride = c->default_strides ? c->n_axes : c->n_axes + c->pos_pad;
    b->table = c->n_axes * n_pairs;
    b->freq_head_stride = c->per_head ? b->table + (c->default_strides ? 0 : 3) : 0;
    b->x_len = (size_t)((c->n_tok - 1) * b->tok_stride + (c->n_heads - 1) * b->head_stride + c->head_dim);
    b->pos_len = (size_t)((c->n_tok - 1) * b->pos_stride + c->n_axes);
    b->freq_len = (size_t)(c->per_head ? (c->n_heads - 1) * b->freq_head_stride + b->table : b->table);

    b->x = guarded_output(b->x_len, sizeof(float), c->misalign_x);
    b->original = malloc(b->x_len * sizeof(float));
    ck_assert_msg(b->original != NULL, "out of memory");
    fill_untouched(b->original, b->x_len); /* padding between heads and tokens */
    for (int64_t t = 0; t < c->n_tok; ++t) {
        for (int64_t h = 0; h < c->n_heads; ++h) {
            float *row = b->original + t * b->tok_stride + h * b->head_stride;
            for (int64_t d = 0; d < c->head_dim; ++d) row[d] = rng_float(&g, -4.0, 4.0);
        }
    }

    b->pos = guarded_input(b->pos_len, sizeof(float), c->misalign_pos);
    float *pos = b->pos.data;
    fill_nan(pos, b->pos_len);
    for (int64_t t = 0; t < c->n_tok; ++t) {
        for (int64_t a = 0; a < c->n_axes; ++a) pos[t * b->pos_stride + a] = rng_float(&g, c->pos_lo, c->pos_hi);
    }

    b->freqs = guarded_input(b->freq_len, sizeof(float), c->misalign_freqs);
    float *F = b->freqs.data;
    fill_nan(F, b->freq_len);
    for (int64_t h = 0; h < (c->per_head ? c->n_heads : 1); ++h) {
        float *table = F + h * b->freq_head_stride;
        if (c->table_1d) {
            ck_assert_int_eq(posattn_rope_freqs_1d(c->rot_dims, 10000.0f, table), POSATTN_OK);
            for (int64_t a = 1; a < c->n_axes; ++a) memcpy(table + a * n_pairs, table, (size_t)n_pairs * sizeof(float));
        } else {
            for (int64_t k = 0; k < b->table; ++k) table[k] = rng_float(&g, 0.0, c->freq_hi);
        }
    }
    memset(&b->factors, 0, sizeof b->factors);
    if (c->pair_factors) {
        b->factors = guarded_input((size_t)n_pairs, sizeof(float), 0);
        float *f = b->factors.data;
        for (int64_t k = 0; k < n_pairs; ++k) f[k] = rng_float(&g, 0.25, 2.0);
    }
}

static void free_case(rope_buffers *b) {
    guarded_free(&b->x);
    guarded_free(&b->pos);
    guarded_free(&b->freqs);
    guarded_free(&b->factors);
    free(b->original);
}

static posattn_status call_apply(const rope_case *c, const rope_buffers *b, float *x, const posattn_rope_options *o) {
    return posattn_rope_apply(c->n_tok, c->n_heads, c->head_dim, x, c->default_strides ? 0 : b->tok_stride,
                              c->default_strides ? 0 : b->head_stride, c->rot_offset, c->rot_dims, c->layout, c->n_axes,
                              b->pos.data, c->default_strides ? 0 : b->pos_stride, b->freqs.data, b->freq_head_stride,
                              o, c->tok_begin, c->tok_end);
}

/* Indices of pair k within a head's rotated part. */
static void pair_index(posattn_rope_layout layout, int64_t n_pairs, int64_t k, int64_t *ia, int64_t *ib) {
    if (layout == POSATTN_ROPE_HALF_SPLIT) {
        *ia = k, *ib = k + n_pairs;
    } else {
        *ia = 2 * k, *ib = 2 * k + 1;
    }
}

/* Whether element e of the x buffer is rotated by the case: 0 or 1. */
static unsigned char *rotated_map(const rope_case *c, const rope_buffers *b) {
    unsigned char *map = calloc(b->x_len, 1);
    ck_assert_msg(map != NULL, "out of memory");
    for (int64_t t = c->tok_begin; t < c->tok_end; ++t) {
        for (int64_t h = 0; h < c->n_heads; ++h) {
            const int64_t base = t * b->tok_stride + h * b->head_stride + c->rot_offset;
            for (int64_t d = 0; d < c->rot_dims; ++d) map[base + d] = 1;
        }
    }
    return map;
}

static void run_rope_case(const rope_case *c) {
    char what[400];
    describe(c, what, sizeof what);
    rope_buffers b;
    build_case(c, &b);
    unsigned char *map = rotated_map(c, &b);
    const int64_t n_pairs = c->rot_dims / 2;
    const float *pos = b.pos.data, *F = b.freqs.data;
    posattn_rope_options o = {0};
    o.flags = c->backward ? POSATTN_ROPE_BACKWARD : 0;
    o.attn_factor = c->attn_factor;
    o.pair_factors = c->pair_factors ? b.factors.data : NULL;
    const int unit_factor = !c->pair_factors && (c->attn_factor == 0.0f || c->attn_factor == 1.0f);
    float *x = b.x.data;

    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        memcpy(x, b.original, b.x_len * sizeof(float));
        posattn_status st = call_apply(c, &b, x, &o);
        CHECK(st == POSATTN_OK, "%s isa %s: status %d (%s)", what, posattn_isa_name(isa), (int)st,
              posattn_status_string(st));
        guarded_check(&b.x, what);
        for (size_t e = 0; e < b.x_len; ++e) {
            CHECK(map[e] || same_bits(x[e], b.original[e]), "%s isa %s: element %zu changed (not rotated)", what,
                  posattn_isa_name(isa), e);
        }
        for (int64_t t = c->tok_begin; t < c->tok_end; ++t) {
            for (int64_t h = 0; h < c->n_heads; ++h) {
                const int64_t base = t * b.tok_stride + h * b.head_stride + c->rot_offset;
                const float *table = F + h * b.freq_head_stride;
                for (int64_t k = 0; k < n_pairs; ++k) {
                    int64_t ia, ib;
                    pair_index(c->layout, n_pairs, k, &ia, &ib);
                    const double a = b.original[base + ia], bb = b.original[base + ib];
                    const double r = sqrt(a * a + bb * bb);
                    const float theta = rope_angle(pos + t * b.pos_stride, c->n_axes, table, n_pairs, k);
                    const double f = rope_factor(&o, k);
                    const double cs = f * cos((double)theta), sn = (c->backward ? -f : f) * sin((double)theta);
                    const double ea = a * cs - bb * sn, eb = a * sn + bb * cs;
                    const double got_a = x[base + ia], got_b = x[base + ib];
                    const double bound = ROPE_BOUND_U * UNIT_ROUNDOFF * fabs(f) * r + ROPE_ABS_SLACK;
                    CHECK(fabs(got_a - ea) <= bound && fabs(got_b - eb) <= bound,
                          "%s isa %s: token %" PRId64 " head %" PRId64 " pair %" PRId64 " (theta %.9g): got (%.9g, "
                          "%.9g), exact (%.9g, %.9g), bound %.3g",
                          what, posattn_isa_name(isa), t, h, k, (double)theta, got_a, got_b, ea, eb, bound);
                    const double norm = sqrt(got_a * got_a + got_b * got_b);
                    CHECK(fabs(norm - fabs(f) * r) <= ROPE_NORM_BOUND_U * UNIT_ROUNDOFF * fabs(f) * r + ROPE_ABS_SLACK,
                          "%s isa %s: token %" PRId64 " head %" PRId64 " pair %" PRId64 ": norm %.9g, expected %.9g",
                          what, posattn_isa_name(isa), t, h, k, norm, fabs(f) * r);
                }
            }
        }
        if (unit_factor) {
            /* The opposite direction undoes the rotation. */
            posattn_rope_options back = o;
            back.flags ^= POSATTN_ROPE_BACKWARD;
            st = call_apply(c, &b, x, &back);
            CHECK(st == POSATTN_OK, "%s isa %s: inverse call status %d", what, posattn_isa_name(isa), (int)st);
            guarded_check(&b.x, what);
            for (int64_t t = c->tok_begin; t < c->tok_end; ++t) {
                for (int64_t h = 0; h < c->n_heads; ++h) {
                    const int64_t base = t * b.tok_stride + h * b.head_stride + c->rot_offset;
                    for (int64_t k = 0; k < n_pairs; ++k) {
                        int64_t ia, ib;
                        pair_index(c->layout, n_pairs, k, &ia, &ib);
                        const double a = b.original[base + ia], bb = b.original[base + ib];
                        const double r = sqrt(a * a + bb * bb);
                        const double bound = ROPE_ROUNDTRIP_BOUND_U * UNIT_ROUNDOFF * r + ROPE_ABS_SLACK;
                        CHECK(fabs(x[base + ia] - a) <= bound && fabs(x[base + ib] - bb) <= bound,
                              "%s isa %s: round trip token %" PRId64 " head %" PRId64 " pair %" PRId64
                              ": (%.9g, %.9g) from (%.9g, %.9g)",
                              what, posattn_isa_name(isa), t, h, k, (double)x[base + ia], (double)x[base + ib], a, bb);
                    }
                }
            }
            for (size_t e = 0; e < b.x_len; ++e) {
                CHECK(map[e] || same_bits(x[e], b.original[e]), "%s isa %s: element %zu changed by the inverse", what,
                      posattn_isa_name(isa), e);
            }
        }
    }
    free(map);
    free_case(&b);
}

/* A small default case, to be varied. */
static rope_case base_case(uint64_t seed) {
    rope_case c;
    memset(&c, 0, sizeof c);
    c.n_tok = 5, c.n_heads = 3, c.head_dim = 16, c.rot_dims = 16;
    c.layout = POSATTN_ROPE_INTERLEAVED;
    c.n_axes = 1;
    c.pos_lo = 0.0, c.pos_hi = 100.0, c.freq_hi = 1.0;
    c.tok_end = c.n_tok;
    c.seed = test_case_seed(seed);
    return c;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* SPEC 4 test vectors                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

static void check_spec_vector(const char *what, posattn_rope_layout layout, int64_t rot_dims, const double *expected) {
    float freqs[4];
    ck_assert_int_eq(posattn_rope_freqs_1d(rot_dims, 10000.0f, freqs), POSATTN_OK);
    const float pos[1] = {3.0f};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        guarded g = guarded_output(8, sizeof(float), 1);
        float *x = g.data;
        for (int d = 0; d < 8; ++d) x[d] = (float)(d + 1);
        posattn_status st = posattn_rope_apply(1, 1, 8, x, 0, 0, 0, rot_dims, layout, 1, pos, 0, freqs, 0, NULL, 0, 1);
        CHECK(st == POSATTN_OK, "%s isa %s: status %d", what, posattn_isa_name(isa), (int)st);
        guarded_check(&g, what);
        for (int d = 0; d < 8; ++d) {
            CHECK(fabs(x[d] - expected[d]) <= 1e-6 * fabs(expected[d]) + 1e-7, "%s isa %s: x[%d] = %.9g, SPEC %.9g",
                  what, posattn_isa_name(isa), d, (double)x[d], expected[d]);
        }
        guarded_free(&g);
    }
}

START_TEST(test_spec_vectors) {
    static const double interleaved[8] = {-1.27223251, -1.83886499, 1.68392864, 4.70790658,
                                          4.81777717,  6.1472777,   6.97596854, 8.02096397};
    static const double half_split[8] = {-1.69559254, 0.137551738, 2.7886816,  3.97598204,
                                         -4.80884247, 6.32305935,  7.08683674, 8.01196398};
    static const double partial[8] = {-1.41335252, 1.87911807, -2.82885748, 4.05819114, 5, 6, 7, 8};
    check_spec_vector("SPEC interleaved", POSATTN_ROPE_INTERLEAVED, 8, interleaved);
    check_spec_vector("SPEC half-split", POSATTN_ROPE_HALF_SPLIT, 8, half_split);
    check_spec_vector("SPEC half-split D_rot 4", POSATTN_ROPE_HALF_SPLIT, 4, partial);
}
END_TEST

/* Multi-section, D = 16, sections [2, 3, 3] pairs, (t, h, w) = (3, 1, 2): unit pairs (1, 0) rotate to
 * (cos, sin) of the SPEC's angles. */
START_TEST(test_spec_multi_section) {
    static const double angles[8] = {3, 0.948683298, 0.1, 0.0316227766, 0.01, 0.00632455532, 0.002, 0.000632455532};
    const int64_t sections[3] = {2, 3, 3};
    float freqs[3 * 8];
    ck_assert_int_eq(posattn_rope_freqs_sections(16, 10000.0f, 3, sections, freqs), POSATTN_OK);
    const float pos[3] = {3.0f, 1.0f, 2.0f};
    for (int k = 0; k < 8; ++k) {
        const double theta = rope_angle(pos, 3, freqs, 8, k);
        CHECK(fabs(theta - angles[k]) <= 1e-7 * angles[k], "angle %d: %.9g, SPEC %.9g", k, theta, angles[k]);
    }
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int layout = 0; layout < 2; ++layout) {
            float x[16];
            for (int k = 0; k < 8; ++k) {
                int64_t ia, ib;
                pair_index((posattn_rope_layout)layout, 8, k, &ia, &ib);
                x[ia] = 1.0f, x[ib] = 0.0f;
            }
            posattn_status st = posattn_rope_apply(1, 1, 16, x, 0, 0, 0, 16, (posattn_rope_layout)layout, 3, pos, 0,
                                                   freqs, 0, NULL, 0, 1);
            CHECK(st == POSATTN_OK, "isa %s: status %d", posattn_isa_name(isa), (int)st);
            for (int k = 0; k < 8; ++k) {
                int64_t ia, ib;
                pair_index((posattn_rope_layout)layout, 8, k, &ia, &ib);
                CHECK(fabs(x[ia] - cos(angles[k])) <= 1e-6 && fabs(x[ib] - sin(angles[k])) <= 1e-6,
                      "isa %s layout %d pair %d: (%.9g, %.9g), SPEC angle %.9g", posattn_isa_name(isa), layout, k,
                      (double)x[ia], (double)x[ib], angles[k]);
            }
        }
    }
}
END_TEST

/* M-RoPE on a text token (t = h = w = its index) is 1-D RoPE, bit for bit: one axis contributes p * F, the others
 * + 0 (exact). Checked for contiguous (Qwen2-VL) and interleaved (Qwen3-VL) sections, both layouts, every ISA. */
START_TEST(test_text_tokens_are_1d) {
    enum { TOK = 7, HEADS = 3, D = 128, PAIRS = 64 };
    const int64_t sections[3] = {16, 24, 24};
    int32_t map[PAIRS];
    for (int k = 0; k < PAIRS; ++k) map[k] = (k % 3 == 1 && k < 3 * 20) ? 1 : ((k % 3 == 2 && k < 3 * 20) ? 2 : 0);
    static float f1[PAIRS], f3[2][3 * PAIRS], pos1[TOK], pos3[TOK * 3], x0[TOK * HEADS * D], a[TOK * HEADS * D],
        b[TOK * HEADS * D];
    ck_assert_int_eq(posattn_rope_freqs_1d(D, 1e6f, f1), POSATTN_OK);
    ck_assert_int_eq(posattn_rope_freqs_sections(D, 1e6f, 3, sections, f3[0]), POSATTN_OK);
    ck_assert_int_eq(posattn_rope_freqs_axis_map(D, 1e6f, 3, map, f3[1]), POSATTN_OK);
    rng g = rng_seeded(test_case_seed(4500));
    for (int t = 0; t < TOK; ++t) pos1[t] = pos3[3 * t] = pos3[3 * t + 1] = pos3[3 * t + 2] = (float)(1000 + 37 * t);
    for (int i = 0; i < TOK * HEADS * D; ++i) x0[i] = rng_float(&g, -3.0, 3.0);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int layout = 0; layout < 2; ++layout) {
            for (int table = 0; table < 2; ++table) {
                memcpy(a, x0, sizeof a);
                memcpy(b, x0, sizeof b);
                ck_assert_int_eq(posattn_rope_apply(TOK, HEADS, D, a, 0, 0, 0, D, (posattn_rope_layout)layout, 1, pos1,
                                                    0, f1, 0, NULL, 0, TOK),
                                 POSATTN_OK);
                ck_assert_int_eq(posattn_rope_apply(TOK, HEADS, D, b, 0, 0, 0, D, (posattn_rope_layout)layout, 3, pos3,
                                                    0, f3[table], 0, NULL, 0, TOK),
                                 POSATTN_OK);
                for (int i = 0; i < TOK * HEADS * D; ++i) {
                    CHECK(same_bits(a[i], b[i]), "isa %s layout %d table %d: element %d: 1-D %.9g, M-RoPE %.9g",
                          posattn_isa_name(isa), layout, table, i, (double)a[i], (double)b[i]);
                }
            }
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Builders                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

static void check_half_ulp(double got, double exact, const char *what, int64_t k) {
    CHECK(fabs(got - exact) <= 0.5 * f32_ulp(exact) * (1.0 + 1e-9), "%s: freq %" PRId64 " = %.9g, exact %.12g", what, k,
          got, exact);
}

START_TEST(test_builders) {
    enum { ROT = 80, PAIRS = ROT / 2 };
    float f[4 * PAIRS];
    /* 1-D */
    ck_assert_int_eq(posattn_rope_freqs_1d(ROT, 10000.0f, f), POSATTN_OK);
    for (int64_t k = 0; k < PAIRS; ++k) check_half_ulp(f[k], pow(10000.0, -2.0 * (double)k / ROT), "1-D", k);
    /* Sections, Qwen2-VL style: contiguous, frequencies running over all pairs. */
    const int64_t sections[3] = {10, 15, 15};
    ck_assert_int_eq(posattn_rope_freqs_sections(ROT, 1e6f, 3, sections, f), POSATTN_OK);
    for (int64_t k = 0; k < PAIRS; ++k) {
        const int64_t axis = k < 10 ? 0 : (k < 25 ? 1 : 2);
        for (int64_t a = 0; a < 3; ++a) {
            if (a == axis) {
                check_half_ulp(f[a * PAIRS + k], pow(1e6, -2.0 * (double)k / ROT), "sections", k);
            } else {
                CHECK(f[a * PAIRS + k] == 0.0f, "sections: F[%" PRId64 "][%" PRId64 "] = %g", a, k,
                      (double)f[a * PAIRS + k]);
            }
        }
    }
    /* Axis map, Qwen3-VL interleaved (t, h, w) = (14, 13, 13). */
    int32_t map[PAIRS];
    for (int k = 0; k < PAIRS; ++k) map[k] = (k % 3 == 1 && k < 3 * 13) ? 1 : ((k % 3 == 2 && k < 3 * 13) ? 2 : 0);
    ck_assert_int_eq(posattn_rope_freqs_axis_map(ROT, 10000.0f, 3, map, f), POSATTN_OK);
    for (int64_t k = 0; k < PAIRS; ++k) {
        for (int64_t a = 0; a < 3; ++a) {
            if (a == map[k]) {
                check_half_ulp(f[a * PAIRS + k], pow(10000.0, -2.0 * (double)k / ROT), "axis map", k);
            } else {
                CHECK(f[a * PAIRS + k] == 0.0f, "axis map: F[%" PRId64 "][%" PRId64 "] not 0", a, k);
            }
        }
    }
    /* Vision, Qwen2-VL ViT: head_dim 80, (h, w) = [20, 20], frequencies restart: HF VisionRotaryEmbedding(40). */
    const int64_t vision[2] = {20, 20};
    ck_assert_int_eq(posattn_rope_freqs_vision(ROT, 10000.0f, 2, vision, f), POSATTN_OK);
    for (int64_t k = 0; k < PAIRS; ++k) {
        const int64_t axis = k < 20 ? 0 : 1, j = k - 20 * axis;
        check_half_ulp(f[axis * PAIRS + k], 1.0 / pow(10000.0, (double)(2 * j) / 40.0), "vision", k);
        CHECK(f[(1 - axis) * PAIRS + k] == 0.0f, "vision: other axis not 0 at pair %" PRId64, k);
    }
    /* Errors, nothing written. */
    float untouched[8];
    fill_untouched(untouched, 8);
    const int64_t short_sections[2] = {1, 2}, negative[2] = {5, -1};
    const int32_t bad_map[4] = {0, 1, 2, 0};
    ck_assert_int_eq(posattn_rope_freqs_1d(8, 10000.0f, NULL), POSATTN_ERR_NULL);
    ck_assert_int_eq(posattn_rope_freqs_1d(0, 10000.0f, untouched), POSATTN_ERR_SIZE);
    ck_assert_int_eq(posattn_rope_freqs_1d(7, 10000.0f, untouched), POSATTN_ERR_LAYOUT);
    ck_assert_int_eq(posattn_rope_freqs_1d(8, 0.0f, untouched), POSATTN_ERR_BASE);
    ck_assert_int_eq(posattn_rope_freqs_1d(8, -2.0f, untouched), POSATTN_ERR_BASE);
    ck_assert_int_eq(posattn_rope_freqs_1d(8, NAN, untouched), POSATTN_ERR_BASE);
    ck_assert_int_eq(posattn_rope_freqs_1d(8, INFINITY, untouched), POSATTN_ERR_BASE);
    ck_assert_int_eq(posattn_rope_freqs_sections(8, 10000.0f, 2, short_sections, untouched), POSATTN_ERR_SECTIONS);
    ck_assert_int_eq(posattn_rope_freqs_sections(8, 10000.0f, 2, negative, untouched), POSATTN_ERR_SECTIONS);
    ck_assert_int_eq(posattn_rope_freqs_vision(8, 10000.0f, 2, short_sections, untouched), POSATTN_ERR_SECTIONS);
    ck_assert_int_eq(posattn_rope_freqs_sections(8, 10000.0f, 2, NULL, untouched), POSATTN_ERR_NULL);
    ck_assert_int_eq(posattn_rope_freqs_sections(8, 10000.0f, 5, short_sections, untouched), POSATTN_ERR_AXES);
    ck_assert_int_eq(posattn_rope_freqs_sections(8, 10000.0f, 0, short_sections, untouched), POSATTN_ERR_AXES);
    ck_assert_int_eq(posattn_rope_freqs_axis_map(8, 10000.0f, 2, bad_map, untouched), POSATTN_ERR_SECTIONS);
    ck_assert_int_eq(posattn_rope_freqs_axis_map(8, 10000.0f, 2, NULL, untouched), POSATTN_ERR_NULL);
    for (int e = 0; e < 8; ++e) CHECK(same_bits(untouched[e], untouched_pattern()), "builder wrote on error");
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Sweeps against the oracle                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

/* Rotated widths around every vector width and the block size, both layouts, offsets, 1..4 axes. */
START_TEST(test_sizes_and_layouts) {
    static const int64_t rot_dims[] = {2,  4,  6,  8,  10,  14,  16,  18,  30,  32,
                                       34, 62, 64, 66, 126, 128, 130, 256, 258, 262};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof rot_dims / sizeof rot_dims[0]; ++i) {
        for (int layout = 0; layout < 2; ++layout) {
            rope_case c = base_case(1000 + n++);
            c.rot_dims = rot_dims[i];
            c.rot_offset = (int64_t)(i % 3);
            c.head_dim = c.rot_dims + c.rot_offset + (int64_t)(i % 2) * 3;
            c.layout = (posattn_rope_layout)layout;
            c.n_axes = 1 + (int64_t)(n % 4);
            c.n_tok = 3, c.tok_end = 3;
            c.n_heads = 1 + (int64_t)(i % 3);
            c.misalign_x = (int)(n % 2), c.misalign_pos = (int)((n / 2) % 2), c.misalign_freqs = (int)((n / 4) % 2);
            run_rope_case(&c);
        }
    }
}
END_TEST

/* Padded strides, default strides, token sub-ranges, per-head tables, factors, backward. */
START_TEST(test_strides_tables_options) {
    for (uint64_t n = 0; n < 96; ++n) {
        rope_case c = base_case(2000 + n);
        rng g = rng_seeded(c.seed ^ 0x5bd1e995u);
        c.n_tok = 1 + rng_below(&g, 6);
        c.n_heads = 1 + rng_below(&g, 5);
        c.rot_dims = 2 * (1 + rng_below(&g, 40));
        c.rot_offset = rng_below(&g, 4);
        c.head_dim = c.rot_dims + c.rot_offset + rng_below(&g, 4);
        c.layout = (posattn_rope_layout)(n % 2);
        c.n_axes = 1 + rng_below(&g, 4);
        c.default_strides = (n % 5) == 0;
        c.tok_pad = rng_below(&g, 7), c.head_pad = rng_below(&g, 5), c.pos_pad = rng_below(&g, 3);
        c.per_head = (n / 2) % 2;
        c.table_1d = (n % 7) == 3;
        c.attn_factor = (n % 3) == 0 ? 0.0f : ((n % 3) == 1 ? 1.0f : rng_float(&g, 0.5, 1.5));
        c.pair_factors = (n % 11) == 4;
        c.backward = (n / 4) % 2;
        c.pos_lo = -50.0, c.pos_hi = 500.0;
        c.tok_begin = rng_below(&g, c.n_tok);
        c.tok_end = c.tok_begin + 1 + rng_below(&g, c.n_tok - c.tok_begin);
        c.misalign_x = (int)(n % 2), c.misalign_pos = (int)((n / 3) % 2), c.misalign_freqs = (int)((n / 5) % 2);
        run_rope_case(&c);
    }
}
END_TEST

/* Long contexts: angles up to 1e6 radians and beyond, where a short range reduction would lose every digit. */
START_TEST(test_large_angles) {
    static const double his[] = {1e4, 1e5, 1e6, 1.5e6, 1e8, 3e9};
    for (size_t i = 0; i < sizeof his / sizeof his[0]; ++i) {
        for (int layout = 0; layout < 2; ++layout) {
            rope_case c = base_case(3000 + 2 * i + (uint64_t)layout);
            c.n_tok = 4, c.tok_end = 4, c.n_heads = 2;
            c.rot_dims = 40, c.head_dim = 40;
            c.layout = (posattn_rope_layout)layout;
            c.pos_lo = his[i] * 0.5, c.pos_hi = his[i];
            c.freq_hi = 1.0;
            c.per_head = layout;
            c.n_axes = 1 + (int64_t)i % 2;
            run_rope_case(&c);
        }
    }
}
END_TEST

/* Calls that rotate at least POSATTN_ROPE_PREFETCH_MIN_BYTES with a shared table take the SIMD drivers' prefetching
 * path (the heads ahead in this block, in the next block of pairs, in the next token): results as for any call.
 * 260 rotated dimensions are two blocks of pairs; 20 heads of them put the prefetch distance (17 heads) inside the
 * token; a sub-range of tokens ends before the last one. */
START_TEST(test_prefetching_calls) {
    for (int layout = 0; layout < 2; ++layout) {
        rope_case c = base_case(6000 + (uint64_t)layout);
        c.n_heads = 20, c.rot_dims = 260, c.rot_offset = 2, c.head_dim = 264;
        c.head_pad = 3, c.tok_pad = 5;
        c.n_tok = 820, c.tok_begin = 3, c.tok_end = 815;
        c.layout = (posattn_rope_layout)layout;
        c.table_1d = layout == POSATTN_ROPE_HALF_SPLIT; /* else a random dense table, shared too */
        c.n_axes = 1 + layout;
        c.backward = layout;
        c.pos_lo = 0.0, c.pos_hi = 4096.0;
        ck_assert_int_ge((c.tok_end - c.tok_begin) * c.n_heads * c.rot_dims * (int64_t)sizeof(float),
                         POSATTN_ROPE_PREFETCH_MIN_BYTES);
        run_rope_case(&c);
    }
}
END_TEST

/* With one shared table, identical per-head tables give bit-identical results (the shared path computes cos/sin
 * once per token and pair; the per-head path per head). */
static void check_shared_equals_per_head(int D, uint64_t seed) {
    enum { TOK = 3, HEADS = 4, MAX_D = 160 };
    const int PAIRS = D / 2;
    rng g = rng_seeded(test_case_seed(seed));
    float pos[TOK * 2], shared[MAX_D], per_head[HEADS * MAX_D];
    float x0[TOK * HEADS * MAX_D], x1[TOK * HEADS * MAX_D], a[TOK * HEADS * MAX_D];
    for (int i = 0; i < TOK * 2; ++i) pos[i] = rng_float(&g, 0.0, 3000.0);
    for (int i = 0; i < 2 * PAIRS; ++i) shared[i] = rng_float(&g, 0.0, 1.0);
    for (int h = 0; h < HEADS; ++h) memcpy(per_head + h * 2 * PAIRS, shared, (size_t)(2 * PAIRS) * sizeof(float));
    for (int i = 0; i < TOK * HEADS * D; ++i) x0[i] = rng_float(&g, -2.0, 2.0);
    const size_t bytes = (size_t)(TOK * HEADS * D) * sizeof(float);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int layout = 0; layout < 2; ++layout) {
            memcpy(a, x0, bytes);
            memcpy(x1, x0, bytes);
            ck_assert_int_eq(posattn_rope_apply(TOK, HEADS, D, a, 0, 0, 0, D, (posattn_rope_layout)layout, 2, pos, 0,
                                                shared, 0, NULL, 0, TOK),
                             POSATTN_OK);
            ck_assert_int_eq(posattn_rope_apply(TOK, HEADS, D, x1, 0, 0, 0, D, (posattn_rope_layout)layout, 2, pos, 0,
                                                per_head, 2 * PAIRS, NULL, 0, TOK),
                             POSATTN_OK);
            for (int i = 0; i < TOK * HEADS * D; ++i) {
                CHECK(same_bits(a[i], x1[i]), "isa %s D %d layout %d: element %d differs (%.9g vs %.9g)",
                      posattn_isa_name(isa), D, layout, i, (double)a[i], (double)x1[i]);
            }
        }
    }
}

/* D 128 and 160: half-split halves at the same offset in a 64-byte line, where AVX-512 rotates per-head tables in
 * 512-bit vectors and shared ones in 256-bit halves; D 70: halves at different offsets. */
START_TEST(test_shared_equals_per_head) {
    check_shared_equals_per_head(70, 4000);
    check_shared_equals_per_head(128, 4001);
    check_shared_equals_per_head(160, 4002);
}
END_TEST

/* A shared 1-D table makes <R(p) q, R(r) k> a function of p - r: against the exact value for the angle (p - r) F,
 * within the rounding of the float32 angles (|theta| u each) and of the rotations. */
START_TEST(test_relative_position) {
    enum { D = 64, PAIRS = D / 2 };
    float freqs[PAIRS];
    ck_assert_int_eq(posattn_rope_freqs_1d(D, 10000.0f, freqs), POSATTN_OK);
    rng g = rng_seeded(test_case_seed(5000));
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int trial = 0; trial < 40; ++trial) {
            const posattn_rope_layout layout = (posattn_rope_layout)(trial % 2);
            float q[D], k[D], qr[D], kr[D];
            for (int d = 0; d < D; ++d) q[d] = rng_float(&g, -1.0, 1.0), k[d] = rng_float(&g, -1.0, 1.0);
            const float p = (float)rng_below(&g, 4096), r = (float)rng_below(&g, 4096);
            memcpy(qr, q, sizeof q);
            memcpy(kr, k, sizeof k);
            ck_assert_int_eq(posattn_rope_apply(1, 1, D, qr, 0, 0, 0, D, layout, 1, &p, 0, freqs, 0, NULL, 0, 1),
                             POSATTN_OK);
            ck_assert_int_eq(posattn_rope_apply(1, 1, D, kr, 0, 0, 0, D, layout, 1, &r, 0, freqs, 0, NULL, 0, 1),
                             POSATTN_OK);
            double got = 0.0, exact = 0.0, tol = 0.0;
            for (int64_t j = 0; j < PAIRS; ++j) {
                int64_t ia, ib;
                pair_index(layout, PAIRS, j, &ia, &ib);
                got += (double)qr[ia] * kr[ia] + (double)qr[ib] * kr[ib];
                /* q^T R(p)^T R(r) k = q^T R(r - p) k */
                const double phi = ((double)r - (double)p) * (double)freqs[j];
                const double c = cos(phi), s = sin(phi);
                const double ka = c * k[ia] - s * k[ib], kb = s * k[ia] + c * k[ib];
                exact += (double)q[ia] * ka + (double)q[ib] * kb;
                const double rq = hypot(q[ia], q[ib]), rk = hypot(k[ia], k[ib]);
                const double angle_error = (fabs((double)p) + fabs((double)r)) * freqs[j] * UNIT_ROUNDOFF;
                tol += rq * rk * (angle_error + 2.0 * ROPE_BOUND_U * UNIT_ROUNDOFF) + 1e-7 * rq * rk;
            }
            CHECK(fabs(got - exact) <= tol, "isa %s trial %d: p %g r %g: dot %.9g, exact %.9g (tol %.3g)",
                  posattn_isa_name(isa), trial, (double)p, (double)r, got, exact, tol);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Bad input                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_errors) {
    enum { TOK = 2, HEADS = 2, D = 8, N = TOK * HEADS * D };
    float x[N], pos[TOK * 2] = {1, 2, 3, 4}, freqs[2 * 4] = {1, 0.5f, 0.25f, 0.125f, 1, 1, 1, 1};
    fill_untouched(x, N);
    posattn_rope_options bad_flags = {0}, bad_factor = {0}, overlapping = {0};
    bad_flags.flags = 2;
    bad_factor.attn_factor = INFINITY;
    overlapping.pair_factors = x + 3;
    const posattn_rope_layout I = POSATTN_ROPE_INTERLEAVED;
#define APPLY(tok, heads, dim, xp, ts, hs, off, rot, layout, axes, pp, ps, fp, fhs, opt, b, e)                         \
    posattn_rope_apply(tok, heads, dim, xp, ts, hs, off, rot, layout, axes, pp, ps, fp, fhs, opt, b, e)
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        ck_assert_int_eq(APPLY(TOK, HEADS, D, NULL, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_NULL);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, NULL, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_NULL);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, NULL, 0, NULL, 0, TOK), POSATTN_ERR_NULL);
        ck_assert_int_eq(APPLY(0, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, 0), POSATTN_ERR_SIZE);
        ck_assert_int_eq(APPLY(TOK, 0, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_SIZE);
        ck_assert_int_eq(APPLY(TOK, HEADS, -8, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_SIZE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, 0, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_SIZE);
        /* Layouts: unknown, odd D_rot, out of the head, negative offset. */
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, (posattn_rope_layout)2, 1, pos, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_LAYOUT);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, 7, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_LAYOUT);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 2, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_LAYOUT);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, -2, 4, I, 1, pos, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_LAYOUT);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, 10, I, 1, pos, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_LAYOUT);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 0, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_AXES);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 5, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_AXES);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 1, 0),
                         POSATTN_ERR_ROW_RANGE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, -1, 1),
                         POSATTN_ERR_ROW_RANGE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK + 1),
                         POSATTN_ERR_ROW_RANGE);
        /* Strides: negative, head shorter than a head, tokens overlapping heads, positions shorter than A. */
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, -1, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_STRIDE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 4, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_STRIDE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 8, 8, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK), POSATTN_ERR_STRIDE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 2, pos, 1, freqs, 0, NULL, 0, TOK), POSATTN_ERR_STRIDE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, -4, NULL, 0, TOK),
                         POSATTN_ERR_STRIDE);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, INT64_MAX / 2, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_OVERFLOW);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, &bad_flags, 0, TOK),
                         POSATTN_ERR_FLAGS);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, &bad_factor, 0, TOK),
                         POSATTN_ERR_SCALE);
        /* Overlaps: positions, table or factors inside x. */
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, x + 5, 0, freqs, 0, NULL, 0, TOK),
                         POSATTN_ERR_OVERLAP);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, x + N - 4, 0, NULL, 0, TOK),
                         POSATTN_ERR_OVERLAP);
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, &overlapping, 0, TOK),
                         POSATTN_ERR_OVERLAP);
        for (int e = 0; e < N; ++e)
            CHECK(same_bits(x[e], untouched_pattern()), "isa %s: x[%d] written on error", posattn_isa_name(isa), e);
        /* An empty token range is valid and writes nothing. */
        ck_assert_int_eq(APPLY(TOK, HEADS, D, x, 0, 0, 0, D, I, 1, pos, 0, freqs, 0, NULL, 1, 1), POSATTN_OK);
        for (int e = 0; e < N; ++e)
            CHECK(same_bits(x[e], untouched_pattern()), "isa %s: empty range wrote", posattn_isa_name(isa));
    }
#undef APPLY
    ck_assert_str_ne(posattn_status_string(POSATTN_ERR_LAYOUT), "unknown status");
    ck_assert_str_ne(posattn_status_string(POSATTN_ERR_SECTIONS), "unknown status");
    ck_assert_str_ne(posattn_status_string(POSATTN_ERR_BASE), "unknown status");
}
END_TEST

static Suite *rope_suite(void) {
    Suite *s = suite_create("rope");
    TCase *spec = make_tcase("spec");
    tcase_add_test(spec, test_spec_vectors);
    tcase_add_test(spec, test_spec_multi_section);
    tcase_add_test(spec, test_builders);
    tcase_add_test(spec, test_text_tokens_are_1d);
    suite_add_tcase(s, spec);

    TCase *apply = make_tcase("apply");
    tcase_add_test(apply, test_sizes_and_layouts);
    tcase_add_test(apply, test_strides_tables_options);
    tcase_add_test(apply, test_large_angles);
    tcase_add_test(apply, test_shared_equals_per_head);
    tcase_add_test(apply, test_relative_position);
    tcase_add_test(apply, test_prefetching_calls);
    suite_add_tcase(s, apply);

    TCase *errors = make_tcase("errors");
    tcase_add_test(errors, test_errors);
    suite_add_tcase(s, errors);
    return s;
}

int main(void) { return run_suite(rope_suite()); }
