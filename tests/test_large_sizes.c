/*
 * Sizes whose products pass 2^32 (header: "Products of sizes and strides are checked for overflow"): offsets are
 * formed in 64-bit arithmetic or the call is refused, never wrapped.
 *
 * One large virtual region is reserved with MAP_NORESERVE, so only the pages a case touches cost memory (a few
 * pages per case). Each accepted case describes, through strides or row counts, a tensor whose touched rows lie
 * beyond 2^32 elements (and bytes) from its base, and runs only those rows. The same rows are computed by a small
 * compact call; the far rows must hold exactly its results, bit for bit, and everything around them, and the near
 * region where an index taken modulo 2^32 (or as a signed 32-bit value) would land, must keep its canary. Refused
 * cases (products beyond int64 or the address space) must return POSATTN_ERR_OVERFLOW and write nothing. When the
 * region cannot be reserved (a small address space, a strict overcommit policy) the process exits with 77, which
 * meson reports as skipped. Every case runs on every supported ISA.
 */
#define _DEFAULT_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "liere_scratch.h"
#include "support.h"

/* The region: LEAD floats before base (a signed 32-bit index would land below base), then up to 2^32 + 2^28
 * floats (17 GiB in all). */
#define LEAD_FLOATS INT64_C(16384)
#define NEAR_FLOATS INT64_C(16384)
#define REGION_FLOATS ((INT64_C(1) << 32) + (INT64_C(1) << 28))
#define SLACK_FLOATS 64 /* canary floats checked on each side of every far row */

static const int64_t TWO32 = INT64_C(1) << 32;
static const int64_t TWO31 = INT64_C(1) << 31;

typedef struct region {
    void *map;
    size_t bytes;
    float *base;
} region;

/* Reserves the region once per process; NULL (logged once) when the system refuses. */
static region *open_region(void) {
    static region r;
    static int tried;
    if (!tried) {
        tried = 1;
        r.bytes = (size_t)(LEAD_FLOATS + REGION_FLOATS) * sizeof(float);
        r.map = mmap(NULL, r.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r.map == MAP_FAILED) {
            fprintf(stderr, "posattn tests: cannot reserve %zu bytes (mmap failed): large-size cases skipped\n",
                    r.bytes);
            r.map = NULL;
        } else {
            r.base = (float *)r.map + LEAD_FLOATS;
        }
    }
    return r.map ? &r : NULL;
}

/* Rows of a case: `len` floats at element offset `at` from the region's base, equal to the compact result's
 * floats from offset `from`. */
typedef struct placement {
    int64_t at, from, len;
} placement;

typedef struct layout {
    placement rows[4];
    int n_rows;
} layout;

static void add_row(layout *l, int64_t at, int64_t from, int64_t len) {
    l->rows[l->n_rows++] = (placement){at, from, len};
}

/* The near window [-LEAD, NEAR) and SLACK floats around each row get the canary. */
static void fill_windows(float *base, const layout *l) {
    fill_untouched(base - LEAD_FLOATS, (size_t)(LEAD_FLOATS + NEAR_FLOATS));
    for (int k = 0; k < l->n_rows; ++k) {
        fill_untouched(base + l->rows[k].at - SLACK_FLOATS, (size_t)(l->rows[k].len + 2 * SLACK_FLOATS));
    }
}

/* Inputs of in-place cases: the compact input's rows, copied to their far places. */
static void place_inputs(float *base, const layout *l, const float *compact) {
    for (int k = 0; k < l->n_rows; ++k) {
        memcpy(base + l->rows[k].at, compact + l->rows[k].from, (size_t)l->rows[k].len * sizeof(float));
    }
}

static float expected_at(int64_t off, const layout *l, const float *compact) {
    for (int k = 0; k < l->n_rows; ++k) {
        if (off >= l->rows[k].at && off < l->rows[k].at + l->rows[k].len) {
            return compact ? compact[l->rows[k].from + off - l->rows[k].at] : untouched_pattern();
        }
    }
    return untouched_pattern();
}

static void check_range(const float *base, int64_t begin, int64_t end, const layout *l, const float *compact,
                        const char *what) {
    for (int64_t off = begin; off < end; ++off) {
        const float want = expected_at(off, l, compact);
        CHECK(same_bits(base[off], want), "isa %s, %s: element at offset %" PRId64 " is %a (0x%08" PRIx32
              "), expected %a%s", posattn_isa_name(posattn_active_isa()), what, off, (double)base[off],
              ((const uint32_t *)(const void *)base)[off], (double)want,
              same_bits(want, untouched_pattern()) ? " (the canary: nothing may be written here)" : "");
    }
}

/* The far rows equal the compact result (compact NULL: still the canary), everything else checked is the canary. */
static void check_windows(const float *base, const layout *l, const float *compact, const char *what) {
    check_range(base, -LEAD_FLOATS, NEAR_FLOATS, l, compact, what);
    for (int k = 0; k < l->n_rows; ++k) {
        check_range(base, l->rows[k].at - SLACK_FLOATS, l->rows[k].at + l->rows[k].len + SLACK_FLOATS, l, compact,
                    what);
    }
}

static void expect_ok(posattn_status st, const char *what) {
    CHECK(st == POSATTN_OK, "isa %s, %s: returned %d (%s)", posattn_isa_name(posattn_active_isa()), what, (int)st,
          posattn_status_string(st));
}

static void expect_overflow(posattn_status st, const float *base, const char *what) {
    CHECK(st == POSATTN_ERR_OVERFLOW, "isa %s, %s: returned %d (%s), expected overflow",
          posattn_isa_name(posattn_active_isa()), what, (int)st, posattn_status_string(st));
    const layout none = {.n_rows = 0};
    check_windows(base, &none, NULL, what);
}

#define REQUIRE_REGION(r)                                                                                          \
    region *r = open_region();                                                                                     \
    if (!r) return

/* ------------------------------------------------------------------------------------------------------------ */
/* ALiBi bias                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

/* Head 2 of 3 at head_stride 2^31 + 5: its rows start at 2^32 + 10 elements (2^34 + 40 bytes); modulo 2^32 both
 * land at the base's first floats. */
START_TEST(test_bias_head_stride) {
    REQUIRE_REGION(r);
    const int64_t H = 3, nq = 2, nk = 8, hs = TWO31 + 5;
    const float slopes[3] = {0.5f, 0.25f, 0.125f};
    float compact[3 * 2 * 8];
    layout l = {.n_rows = 0};
    for (int64_t i = 0; i < nq; ++i) add_row(&l, 2 * hs + i * nk, (2 * nq + i) * nk, nk);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(compact, 48);
        expect_ok(posattn_alibi_bias(H, nq, nk, slopes, NULL, compact, 0, 0, 4, 6), "compact bias");
        fill_windows(r->base, &l);
        expect_ok(posattn_alibi_bias(H, nq, nk, slopes, NULL, r->base, 0, hs, 4, 6), "bias, head_stride 2^31+5");
        check_windows(r->base, &l, compact, "bias, head_stride 2^31+5");
    }
}
END_TEST

/* Row 2 of 3 at row_stride 2^31 + 3, i.e. 2^32 + 6 elements. */
START_TEST(test_bias_row_stride) {
    REQUIRE_REGION(r);
    const int64_t nq = 3, nk = 8, rs = TWO31 + 3;
    const float slopes[1] = {0.75f};
    float compact[3 * 8];
    layout l = {.n_rows = 0};
    add_row(&l, 2 * rs, 2 * nk, nk);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(compact, 24);
        expect_ok(posattn_alibi_bias(1, nq, nk, slopes, NULL, compact, 0, 0, 2, 3), "compact bias");
        fill_windows(r->base, &l);
        expect_ok(posattn_alibi_bias(1, nq, nk, slopes, NULL, r->base, rs, 0, 2, 3), "bias, row_stride 2^31+3");
        check_windows(r->base, &l, compact, "bias, row_stride 2^31+3");
    }
}
END_TEST

/* More than 2^32 rows: nq = 2^32 + 8 queries of one key, rows 2^32 + 2 and 2^32 + 3. The row index, the query
 * index and the default query position nk - nq + i (here -5 and -4, exact) all need 64 bits; the compact call
 * passes those positions explicitly. */
START_TEST(test_bias_many_rows) {
    REQUIRE_REGION(r);
    const int64_t nq = TWO32 + 8, first = TWO32 + 2;
    const float slopes[1] = {0.375f};
    const float q_pos[2] = {-5.0f, -4.0f};
    posattn_positions p = {0};
    p.q = q_pos;
    float compact[2];
    layout l = {.n_rows = 0};
    add_row(&l, first, 0, 2);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        expect_ok(posattn_alibi_bias(1, 2, 1, slopes, &p, compact, 0, 0, 0, 2), "compact bias");
        fill_windows(r->base, &l);
        expect_ok(posattn_alibi_bias(1, nq, 1, slopes, NULL, r->base, 0, 0, first, first + 2), "bias, 2^32+8 rows");
        check_windows(r->base, &l, compact, "bias, 2^32+8 rows");
    }
}
END_TEST

/* Inputs read far out: per-head key positions at k_head_stride 2^31 + 5 (head 2's at 2^32 + 10 elements). The
 * positions must be left as they were and the bias must equal that of compact per-head positions. */
START_TEST(test_bias_positions_head_stride) {
    REQUIRE_REGION(r);
    const int64_t H = 3, nq = 2, nk = 8, hs = TWO31 + 5;
    const float slopes[3] = {0.5f, 0.25f, 0.125f};
    float k_pos[3 * 8], q_pos[2] = {6.5f, 7.25f}, compact[48], far[48];
    for (int k = 0; k < 24; ++k) k_pos[k] = (float)((k * 5) % 9) * 1.5f - 3.0f;
    layout l = {.n_rows = 0};
    add_row(&l, 2 * hs, 2 * nk, nk);
    posattn_positions pc = {0}, pf = {0};
    pc.q = pf.q = q_pos;
    pc.k = k_pos, pc.k_head_stride = nk;
    pf.k = r->base, pf.k_head_stride = hs;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(compact, 48);
        fill_untouched(far, 48);
        expect_ok(posattn_alibi_bias(H, nq, nk, slopes, &pc, compact, 0, 0, 4, 6), "compact bias");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, k_pos);
        expect_ok(posattn_alibi_bias(H, nq, nk, slopes, &pf, far, 0, 0, 4, 6), "bias, k_head_stride 2^31+5");
        check_windows(r->base, &l, k_pos, "bias, k_head_stride 2^31+5 (positions unchanged)");
        ck_assert_msg(memcmp(far, compact, sizeof far) == 0, "isa %s: bias from far positions differs",
                      posattn_isa_name(isa));
    }
}
END_TEST

START_TEST(test_bias_refused) {
    REQUIRE_REGION(r);
    const float slopes[3] = {0.5f, 0.25f, 0.125f};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        const layout none = {.n_rows = 0};
        fill_windows(r->base, &none);
        /* (2^40 - 1) * 2^30 rows' elements: beyond int64. */
        expect_overflow(posattn_alibi_bias(1, INT64_C(1) << 40, 8, slopes, NULL, r->base, INT64_C(1) << 30, 0, 0, 1),
                        r->base, "bias, nq * row_stride > INT64_MAX");
        /* 2 * 2^61 elements fit int64, their 2^64 bytes do not fit the address space. */
        expect_overflow(posattn_alibi_bias(1, 3, 8, slopes, NULL, r->base, INT64_C(1) << 61, 0, 0, 1), r->base,
                        "bias, 2^64 bytes");
        /* H * nq * row_stride through the default head stride. */
        expect_overflow(posattn_alibi_bias(3, INT64_C(1) << 31, INT64_C(1) << 32, slopes, NULL, r->base, 0, 0, 0, 1),
                        r->base, "bias, 3 * 2^31 * 2^32");
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Fused softmax                                                                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

static void fill_scores(float *s, int64_t n) {
    for (int64_t k = 0; k < n; ++k) s[k] = (float)((k * 37) % 23) * 0.375f - 4.0f;
}

/* In place, head 2 of 3 at head_stride 2^31 + 5 (scores read and probabilities written 2^32 + 10 elements out),
 * causal, with the log-sum-exp. */
START_TEST(test_softmax_in_place_head_stride) {
    REQUIRE_REGION(r);
    const int64_t H = 3, nq = 2, nk = 8, hs = TWO31 + 5;
    const float slopes[3] = {0.5f, 0.25f, 0.125f};
    float compact[48], input[48], lse_compact[6], lse_far[6];
    layout l = {.n_rows = 0};
    for (int64_t i = 0; i < nq; ++i) add_row(&l, 2 * hs + i * nk, (2 * nq + i) * nk, nk);
    posattn_softmax_options o = {0};
    o.flags = POSATTN_CAUSAL;
    fill_scores(input, 48);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        memcpy(compact, input, sizeof compact);
        fill_untouched(lse_compact, 6);
        o.lse = lse_compact;
        expect_ok(posattn_alibi_softmax(H, nq, nk, compact, 0, 0, compact, 0, 0, 0.5f, slopes, NULL, &o, 4, 6),
                  "compact softmax");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, input);
        fill_untouched(lse_far, 6);
        o.lse = lse_far;
        expect_ok(posattn_alibi_softmax(H, nq, nk, r->base, 0, hs, r->base, 0, hs, 0.5f, slopes, NULL, &o, 4, 6),
                  "softmax in place, head_stride 2^31+5");
        check_windows(r->base, &l, compact, "softmax in place, head_stride 2^31+5");
        ck_assert_msg(memcmp(lse_far, lse_compact, sizeof lse_far) == 0, "isa %s: lse differs",
                      posattn_isa_name(isa));
    }
}
END_TEST

/* Compact scores, probabilities at p_row_stride 2^31 + 3: row 2 lands 2^32 + 6 elements out. */
START_TEST(test_softmax_row_stride) {
    REQUIRE_REGION(r);
    const int64_t nq = 3, nk = 8, rs = TWO31 + 3;
    const float slopes[1] = {0.75f};
    float scores[24], compact[24];
    fill_scores(scores, 24);
    layout l = {.n_rows = 0};
    add_row(&l, 2 * rs, 2 * nk, nk);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(compact, 24);
        expect_ok(posattn_alibi_softmax(1, nq, nk, scores, 0, 0, compact, 0, 0, 1.0f, slopes, NULL, NULL, 2, 3),
                  "compact softmax");
        fill_windows(r->base, &l);
        expect_ok(posattn_alibi_softmax(1, nq, nk, scores, 0, 0, r->base, rs, 0, 1.0f, slopes, NULL, NULL, 2, 3),
                  "softmax, p_row_stride 2^31+3");
        check_windows(r->base, &l, compact, "softmax, p_row_stride 2^31+3");
    }
}
END_TEST

/* More than 2^31 rows of 2 keys, in place: H * nq * nk = 2^32 + 16; rows 2^31 + 2 and 2^31 + 3 (default query
 * positions -4 and -3, passed explicitly to the compact call). */
START_TEST(test_softmax_many_rows) {
    REQUIRE_REGION(r);
    const int64_t nq = TWO31 + 8, nk = 2, first = TWO31 + 2;
    const float slopes[1] = {0.625f};
    const float q_pos[2] = {-4.0f, -3.0f};
    posattn_positions p = {0};
    p.q = q_pos;
    float input[4] = {1.5f, -0.25f, 3.0f, 2.75f}, compact[4];
    layout l = {.n_rows = 0};
    add_row(&l, first * nk, 0, 2 * nk);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        memcpy(compact, input, sizeof compact);
        expect_ok(posattn_alibi_softmax(1, 2, nk, compact, 0, 0, compact, 0, 0, 1.0f, slopes, &p, NULL, 0, 2),
                  "compact softmax");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, input);
        expect_ok(posattn_alibi_softmax(1, nq, nk, r->base, 0, 0, r->base, 0, 0, 1.0f, slopes, NULL, NULL, first,
                                        first + 2),
                  "softmax, 2^31+8 rows of 2 keys");
        check_windows(r->base, &l, compact, "softmax, 2^31+8 rows of 2 keys");
    }
}
END_TEST

/* A per-head mask read far out: mask_head_stride 2^31 + 5, head 2's mask 2^32 + 10 elements from its base. */
START_TEST(test_softmax_mask_head_stride) {
    REQUIRE_REGION(r);
    const int64_t H = 3, nq = 2, nk = 8, hs = TWO31 + 5;
    const float slopes[3] = {0.5f, 0.25f, 0.125f};
    float scores[48], mask[48], compact[48], far[48];
    fill_scores(scores, 48);
    for (int k = 0; k < 48; ++k) mask[k] = k % 5 == 3 ? -INFINITY : (float)(k % 7) * -0.5f;
    layout l = {.n_rows = 0};
    add_row(&l, 2 * hs, 0, nq * nk); /* head 2's mask, rows 0 and 1 contiguous */
    posattn_softmax_options oc = {0}, of = {0};
    oc.mask = mask, oc.mask_head_stride = nq * nk;
    of.mask = r->base, of.mask_head_stride = hs;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float head2_mask[16];
        memcpy(head2_mask, mask + 2 * nq * nk, sizeof head2_mask);
        fill_untouched(compact, 48);
        fill_untouched(far, 48);
        expect_ok(posattn_alibi_softmax(H, nq, nk, scores, 0, 0, compact, 0, 0, 0.5f, slopes, NULL, &oc, 4, 6),
                  "compact softmax");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, head2_mask);
        expect_ok(posattn_alibi_softmax(H, nq, nk, scores, 0, 0, far, 0, 0, 0.5f, slopes, NULL, &of, 4, 6),
                  "softmax, mask_head_stride 2^31+5");
        check_windows(r->base, &l, head2_mask, "softmax, mask_head_stride 2^31+5 (mask unchanged)");
        ck_assert_msg(memcmp(far, compact, sizeof far) == 0, "isa %s: softmax with a far mask differs",
                      posattn_isa_name(isa));
    }
}
END_TEST

START_TEST(test_softmax_refused) {
    REQUIRE_REGION(r);
    const float slopes[3] = {0.5f, 0.25f, 0.125f};
    float scores[24];
    fill_scores(scores, 24);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        const layout none = {.n_rows = 0};
        fill_windows(r->base, &none);
        expect_overflow(posattn_alibi_softmax(1, 3, 8, scores, 0, 0, r->base, INT64_C(1) << 62, 0, 1.0f, slopes,
                                              NULL, NULL, 0, 1),
                        r->base, "softmax, 2 * 2^62 > INT64_MAX");
        expect_overflow(posattn_alibi_softmax(3, 1, 8, scores, 0, 0, r->base, 0, INT64_C(1) << 61, 1.0f, slopes,
                                              NULL, NULL, 0, 1),
                        r->base, "softmax, 2^64 bytes");
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Rotary embeddings                                                                                              */
/* ------------------------------------------------------------------------------------------------------------ */

static void fill_x(float *x, int64_t n) {
    for (int64_t k = 0; k < n; ++k) x[k] = (float)((k * 13) % 17) * 0.25f - 2.0f;
}

/* Token 1 of 2 at tok_stride 2^32 + 16 (2 heads of 8, all rotated, 2 axes, backward). */
START_TEST(test_rope_tok_stride) {
    REQUIRE_REGION(r);
    const int64_t n_tok = 2, H = 2, D = 8, ts = TWO32 + 16;
    const float pos[4] = {3.0f, -7.5f, 1000.25f, 12.0f};
    float freqs[8], input[32], compact[32];
    const int64_t sections[2] = {2, 2};
    ck_assert_int_eq(posattn_rope_freqs_sections(8, 10000.0f, 2, sections, freqs), POSATTN_OK);
    posattn_rope_options o = {0};
    o.flags = POSATTN_ROPE_BACKWARD;
    fill_x(input, 32);
    layout l = {.n_rows = 0};
    add_row(&l, ts, H * D, H * D);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        memcpy(compact, input, sizeof compact);
        expect_ok(posattn_rope_apply(n_tok, H, D, compact, 0, 0, 0, D, POSATTN_ROPE_INTERLEAVED, 2, pos, 0, freqs, 0,
                                     &o, 1, 2),
                  "compact rope");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, input);
        expect_ok(posattn_rope_apply(n_tok, H, D, r->base, ts, 0, 0, D, POSATTN_ROPE_INTERLEAVED, 2, pos, 0, freqs, 0,
                                     &o, 1, 2),
                  "rope, tok_stride 2^32+16");
        check_windows(r->base, &l, compact, "rope, tok_stride 2^32+16");
    }
}
END_TEST

/* Head 1 of 2 at head_stride 2^32 + 8, inside the kernel's head loop (one token, half-split, rotated dims 2..5,
 * per-head tables). Head 0 sits at the base, so the near window holds a row of its own. */
START_TEST(test_rope_head_stride) {
    REQUIRE_REGION(r);
    const int64_t H = 2, D = 8, hs = TWO32 + 8;
    const float pos[1] = {-321.5f};
    const float freqs[4] = {0.5f, -0.03125f, 1.75f, 0.0078125f};
    float input[16], compact[16];
    fill_x(input, 16);
    layout l = {.n_rows = 0};
    add_row(&l, 0, 0, D);
    add_row(&l, hs, D, D);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        memcpy(compact, input, sizeof compact);
        expect_ok(posattn_rope_apply(1, H, D, compact, 0, 0, 2, 4, POSATTN_ROPE_HALF_SPLIT, 1, pos, 0, freqs, 2, NULL,
                                     0, 1),
                  "compact rope");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, input);
        expect_ok(posattn_rope_apply(1, H, D, r->base, 0, hs, 2, 4, POSATTN_ROPE_HALF_SPLIT, 1, pos, 0, freqs, 2, NULL,
                                     0, 1),
                  "rope, head_stride 2^32+8");
        check_windows(r->base, &l, compact, "rope, head_stride 2^32+8");
    }
}
END_TEST

/* Per-head tables read far out: freq_head_stride 2^32 + 8, head 1's table 2^32 + 8 elements from head 0's. */
START_TEST(test_rope_freq_head_stride) {
    REQUIRE_REGION(r);
    const int64_t H = 2, D = 8, fs = TWO32 + 8;
    const float pos[1] = {77.0f};
    const float tables[8] = {1.0f, 0.125f, -0.5f, 0.015625f, 0.75f, -2.0f, 0.0625f, 3.0f};
    float input[16], compact[16], far[16];
    fill_x(input, 16);
    layout l = {.n_rows = 0};
    add_row(&l, 0, 0, 4);
    add_row(&l, fs, 4, 4);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        memcpy(compact, input, sizeof compact);
        memcpy(far, input, sizeof far);
        expect_ok(posattn_rope_apply(1, H, D, compact, 0, 0, 0, D, POSATTN_ROPE_INTERLEAVED, 1, pos, 0, tables, 4,
                                     NULL, 0, 1),
                  "compact rope");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, tables);
        expect_ok(posattn_rope_apply(1, H, D, far, 0, 0, 0, D, POSATTN_ROPE_INTERLEAVED, 1, pos, 0, r->base, fs, NULL,
                                     0, 1),
                  "rope, freq_head_stride 2^32+8");
        check_windows(r->base, &l, tables, "rope, freq_head_stride 2^32+8 (tables unchanged)");
        ck_assert_msg(memcmp(far, compact, sizeof far) == 0, "isa %s: rope with far tables differs",
                      posattn_isa_name(isa));
    }
}
END_TEST

START_TEST(test_rope_refused) {
    REQUIRE_REGION(r);
    const float pos[2] = {1.0f, 2.0f}, freqs[4] = {1.0f, 0.5f, 0.25f, 0.125f};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        const layout none = {.n_rows = 0};
        fill_windows(r->base, &none);
        /* n_tok * tok_stride = 2^33 * 2^31 > INT64_MAX (positions strided alike would overflow too: keep 1 axis). */
        expect_overflow(posattn_rope_apply(INT64_C(1) << 33, 1, 8, r->base, INT64_C(1) << 31, 0, 0, 8,
                                           POSATTN_ROPE_INTERLEAVED, 1, pos, 0, freqs, 0, NULL, 0, 1),
                        r->base, "rope, n_tok * tok_stride > INT64_MAX");
        expect_overflow(posattn_rope_apply(3, 1, 8, r->base, INT64_C(1) << 61, 0, 0, 8, POSATTN_ROPE_INTERLEAVED, 1,
                                           pos, 0, freqs, 0, NULL, 0, 1),
                        r->base, "rope, 2^64 bytes");
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* LieRE                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

enum { LB = 4, LD = 8, L_PER_TOKEN = LB * LD, L_GENS = 2 * (LD / LB) * (LB * (LB - 1) / 2) };

static void liere_inputs(float *pos, float *gens) {
    const float p[4] = {0.5f, -1.25f, 2.0f, 0.75f}; /* 2 tokens, 2 axes */
    memcpy(pos, p, sizeof p);
    for (int k = 0; k < L_GENS; ++k) gens[k] = (float)((k * 7) % 11) * 0.0625f - 0.3125f;
}

/* Token 1's rotations at rot_tok_stride 2^32 + 8 (block 4, 8 dims: 32 floats). */
START_TEST(test_liere_rotations_stride) {
    REQUIRE_REGION(r);
    const int64_t ts = TWO32 + 8;
    float pos[4], gens[L_GENS], compact[2 * L_PER_TOKEN];
    liere_inputs(pos, gens);
    layout l = {.n_rows = 0};
    add_row(&l, ts, L_PER_TOKEN, L_PER_TOKEN);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_untouched(compact, 2 * L_PER_TOKEN);
        expect_ok(posattn_liere_rotations(2, 2, pos, 0, 1, LB, LD, gens, compact, 0, LIERE_SCRATCH(LB), NULL, 1, 2),
                  "compact rotations");
        fill_windows(r->base, &l);
        expect_ok(posattn_liere_rotations(2, 2, pos, 0, 1, LB, LD, gens, r->base, ts, LIERE_SCRATCH(LB), NULL, 1, 2),
                  "rotations, rot_tok_stride 2^32+8");
        check_windows(r->base, &l, compact, "rotations, rot_tok_stride 2^32+8");
    }
}
END_TEST

/* Token 1 of a packed [token][q heads | k head] buffer at token stride 2^32 + 32: q (2 heads) and k (1 head)
 * interleave token by token, each rotated 2^32 + 32 elements out (dims 0..7 of 8 rotated, block 4). */
START_TEST(test_liere_apply_packed_stride) {
    REQUIRE_REGION(r);
    const int64_t ts = TWO32 + 32;
    float pos[4], gens[L_GENS], rot[2 * L_PER_TOKEN];
    float input[2 * 24], compact[2 * 24];
    liere_inputs(pos, gens);
    fill_x(input, 48);
    layout l = {.n_rows = 0};
    add_row(&l, ts, 24, 24);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        expect_ok(posattn_liere_rotations(2, 2, pos, 0, 1, LB, LD, gens, rot, 0, LIERE_SCRATCH(LB), NULL, 0, 2),
                  "rotations");
        memcpy(compact, input, sizeof compact);
        expect_ok(posattn_liere_apply(2, LD, 0, LD, LB, compact, 2, 24, 0, compact + 16, 1, 24, 0, rot, 0, 1, NULL, 0,
                                      NULL, 1, 2),
                  "compact apply");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, input);
        expect_ok(posattn_liere_apply(2, LD, 0, LD, LB, r->base, 2, ts, 0, r->base + 16, 1, ts, 0, rot, 0, 1, NULL, 0,
                                      NULL, 1, 2),
                  "apply, packed q/k at token stride 2^32+32");
        check_windows(r->base, &l, compact, "apply, packed q/k at token stride 2^32+32");
    }
}
END_TEST

/* Head 1 of q at q_head_stride 2^32 + 8, inside the kernel's head loop (one token; head 0 at the base). */
START_TEST(test_liere_apply_head_stride) {
    REQUIRE_REGION(r);
    const int64_t hs = TWO32 + 8;
    float pos[4], gens[L_GENS], rot[2 * L_PER_TOKEN], input[16], compact[16];
    liere_inputs(pos, gens);
    fill_x(input, 16);
    layout l = {.n_rows = 0};
    add_row(&l, 0, 0, LD);
    add_row(&l, hs, LD, LD);
    posattn_liere_options o = {0};
    o.flags = POSATTN_LIERE_BACKWARD;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        expect_ok(posattn_liere_rotations(1, 2, pos, 0, 1, LB, LD, gens, rot, 0, LIERE_SCRATCH(LB), NULL, 0, 1),
                  "rotations");
        memcpy(compact, input, sizeof compact);
        expect_ok(posattn_liere_apply(1, LD, 0, LD, LB, compact, 2, 0, 0, NULL, 0, 0, 0, rot, 0, 1, LIERE_SCRATCH(LB),
                                      &o, 0, 1),
                  "compact apply");
        fill_windows(r->base, &l);
        place_inputs(r->base, &l, input);
        expect_ok(posattn_liere_apply(1, LD, 0, LD, LB, r->base, 2, 0, hs, NULL, 0, 0, 0, rot, 0, 1, LIERE_SCRATCH(LB),
                                      &o, 0, 1),
                  "apply, q_head_stride 2^32+8");
        check_windows(r->base, &l, compact, "apply, q_head_stride 2^32+8");
    }
}
END_TEST

START_TEST(test_liere_refused) {
    REQUIRE_REGION(r);
    float pos[4], gens[L_GENS], rot[2 * L_PER_TOKEN];
    liere_inputs(pos, gens);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        ck_assert_int_eq(posattn_liere_rotations(2, 2, pos, 0, 1, LB, LD, gens, rot, 0, LIERE_SCRATCH(LB), NULL, 0, 2),
                         POSATTN_OK);
        const layout none = {.n_rows = 0};
        fill_windows(r->base, &none);
        expect_overflow(posattn_liere_rotations(INT64_C(1) << 33, 1, pos, 0, 1, LB, LD, gens, r->base, INT64_C(1) << 31,
                                                LIERE_SCRATCH(LB), NULL, 0, 1),
                        r->base, "rotations, n_tok * rot_tok_stride > INT64_MAX");
        expect_overflow(posattn_liere_apply(INT64_C(1) << 33, LD, 0, LD, LB, r->base, 1, INT64_C(1) << 31, 0, NULL, 0,
                                            0, 0, rot, 0, 1, NULL, 0, NULL, 0, 1),
                        r->base, "apply, n_tok * q_tok_stride > INT64_MAX");
        expect_overflow(posattn_liere_apply(2, LD, 0, LD, LB, r->base, 1, INT64_C(1) << 61, 0, NULL, 0, 0, 0, rot, 0, 1,
                                            NULL, 0, NULL, 0, 1),
                        r->base, "apply, 2^64 bytes");
    }
}
END_TEST

static Suite *large_sizes_suite(void) {
    Suite *s = suite_create("large_sizes");
    TCase *tc = make_tcase("large_sizes");
    tcase_add_test(tc, test_bias_head_stride);
    tcase_add_test(tc, test_bias_row_stride);
    tcase_add_test(tc, test_bias_many_rows);
    tcase_add_test(tc, test_bias_positions_head_stride);
    tcase_add_test(tc, test_bias_refused);
    tcase_add_test(tc, test_softmax_in_place_head_stride);
    tcase_add_test(tc, test_softmax_row_stride);
    tcase_add_test(tc, test_softmax_many_rows);
    tcase_add_test(tc, test_softmax_mask_head_stride);
    tcase_add_test(tc, test_softmax_refused);
    tcase_add_test(tc, test_rope_tok_stride);
    tcase_add_test(tc, test_rope_head_stride);
    tcase_add_test(tc, test_rope_freq_head_stride);
    tcase_add_test(tc, test_rope_refused);
    tcase_add_test(tc, test_liere_rotations_stride);
    tcase_add_test(tc, test_liere_apply_packed_stride);
    tcase_add_test(tc, test_liere_apply_head_stride);
    tcase_add_test(tc, test_liere_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    /* Reserved before the tests run, so that forked tests inherit it (each child's touched pages are its own). */
    region *r = open_region();
    if (!r) return 77; /* meson's "skipped": visible in the test log, not a silent pass */
    int status = run_suite(large_sizes_suite());
    munmap(r->map, r->bytes);
    return status;
}
