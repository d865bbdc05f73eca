/*
 * Rows longer than any other test builds: past 2^24 keys with the default key positions, past 2^31 keys, and key
 * positions whose offset j * k_stride passes 2^31 elements. These reach the branches the kernels keep for such rows:
 * the x86 "wide iota" (past 2^24 keys (float)j is no longer formed by float additions but converted from an
 * integer per lane), the AVX2 and NEON lane-by-lane conversion of key indices past INT32_MAX, and the 64-bit
 * gather offsets of strided key positions.
 *
 * The default position of key j is documented (posattn_positions) as j rounded to the nearest float32, ties to
 * even, and of query i as nk - nq + i rounded likewise: exact up to 2^24, then spaced 2, 4, ... 256 apart. The
 * oracles here use exactly that, (double)(float)j, and bound the results by the header's accuracy statements; the
 * bias must also equal the scalar reference bit for bit, as documented.
 *
 * Memory. Every array lives in address space reserved with MAP_NORESERVE, so only the pages a case touches cost
 * memory: an input read only in a window of its row costs that window. An output row past 2^31 keys is written
 * whole (8 GiB), so outside the index ranges the test checks, its pages all map one small shared memory file
 * ("aliased": writes there cost nothing beyond that file); the checked ranges (the start, around 2^24, around 2^31,
 * the end, and sampled pages) are private pages of their own. Each case states what it commits; the most is about
 * 300 MiB. When the address space cannot be reserved, the process exits 77 (meson: skipped).
 *
 * Runtime under emulation (qemu-user, CK_FORK=no): writing a bias row of 2^31 keys takes minutes there (every
 * float operation is a helper call), so the past-2^31 bias row runs only when POSATTN_TEST_SKIP_HUGE_BIAS is not
 * set (the cross build sets it, tests/meson.build). The past-2^31 softmax row still reaches the same NEON branch
 * (the key positions are formed by the one function both rows use) for the price of zeroing 8 GiB of aliased
 * memory: its valid keys are restricted to 258 keys around INT32_MAX by a window. (Measured: the whole file runs in
 * about 10 s natively and 14 s under qemu-aarch64; with the past-2^31 bias row, 166 s under qemu.)
 *
 * Past 2^24 keys, float additions of whole vectors (steps that are multiples of 4) still happen to give (float)j
 * until 2^25 or 2^26; the rows of 2^26 + 41 and 2^31 + 43 keys are those where a wrong choice of iota would show.
 */
#define _GNU_SOURCE
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "support.h"

static const int64_t TWO24 = INT64_C(1) << 24;
static const int64_t TWO31 = INT64_C(1) << 31;

/* Rows just past each limit, with a tail that is not a whole vector on any ISA (41 = 2 * 16 + 8 + 1). */
#define NK_PAST_2_24 ((INT64_C(1) << 24) + 41)
#define NK_PAST_2_31 ((INT64_C(1) << 31) + 41)

/* ------------------------------------------------------------------------------------------------------------ */
/* Reserved arrays                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct long_array {
    void *map;
    size_t bytes;
    float *data;
} long_array;

/* n floats of address space; untouched pages read as 0 and cost nothing. Fails the test if refused (main has
 * checked that the largest reservation succeeds, so this does not happen on a system that passed that probe). */
static long_array reserve_floats(int64_t n) {
    long_array a;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    a.bytes = ((size_t)n * sizeof(float) + page - 1) / page * page;
    a.map = mmap(NULL, a.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert_msg(a.map != MAP_FAILED, "cannot reserve %zu bytes", a.bytes);
    a.data = a.map;
    return a;
}

static void release(long_array *a) {
    munmap(a->map, a->bytes);
    a->map = NULL;
}

/* Index ranges [begin, end) of a row that a case checks element by element. */
#define MAX_RANGES 64
#define SAMPLED_PAGES 24
#define FLOATS_PER_SAMPLE 1024

typedef struct index_ranges {
    int64_t begin[MAX_RANGES], end[MAX_RANGES];
    int n;
} index_ranges;

static void add_range(index_ranges *r, int64_t begin, int64_t end, int64_t nk) {
    if (begin < 0) begin = 0;
    if (end > nk) end = nk;
    if (begin >= end) return;
    ck_assert_int_lt(r->n, MAX_RANGES);
    r->begin[r->n] = begin, r->end[r->n] = end, r->n++;
}

static int64_t ranges_total(const index_ranges *r) {
    int64_t total = 0;
    for (int k = 0; k < r->n; ++k) total += r->end[k] - r->begin[k];
    return total;
}

/* The start, 2048 keys either side of 2^24 and of 2^31, the last 4096 keys, and sampled pages. */
static index_ranges checked_ranges(int64_t nk, uint64_t seed) {
    index_ranges r = {.n = 0};
    add_range(&r, 0, 2048, nk);
    add_range(&r, TWO24 - 2048, TWO24 + 2048, nk);
    add_range(&r, TWO31 - 2048, TWO31 + 2048, nk);
    add_range(&r, nk - 4096, nk, nk);
    rng g = rng_seeded(seed);
    for (int k = 0; k < SAMPLED_PAGES; ++k) {
        int64_t at = rng_below(&g, nk / FLOATS_PER_SAMPLE) * FLOATS_PER_SAMPLE;
        add_range(&r, at, at + FLOATS_PER_SAMPLE, nk);
    }
    return r;
}

/* Every page of a outside the ranges maps the same pages of one small memory file, so writing the whole row costs
 * that file; the ranges keep private pages, whose contents the test can check. */
#define ALIAS_FILE_BYTES ((size_t)2 << 20)

static void alias_outside(long_array *a, const index_ranges *keep) {
    int fd = memfd_create("posattn-long-rows", MFD_CLOEXEC);
    ck_assert_msg(fd >= 0, "memfd_create failed");
    ck_assert_msg(ftruncate(fd, (off_t)ALIAS_FILE_BYTES) == 0, "ftruncate failed");
    unsigned char *base = a->map;
    for (size_t off = 0; off < a->bytes; off += ALIAS_FILE_BYTES) {
        size_t len = a->bytes - off < ALIAS_FILE_BYTES ? a->bytes - off : ALIAS_FILE_BYTES;
        void *m = mmap(base + off, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        ck_assert_msg(m == base + off, "aliasing mmap failed at offset %zu", off);
    }
    close(fd);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int k = 0; k < keep->n; ++k) {
        size_t from = (size_t)keep->begin[k] * sizeof(float) / page * page;
        size_t to = ((size_t)keep->end[k] * sizeof(float) + page - 1) / page * page;
        if (to > a->bytes) to = a->bytes;
        void *m = mmap(base + from, to - from, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        ck_assert_msg(m == base + from, "private mmap over the alias failed");
    }
}

/* The checked ranges of a row, one after the other (for the bit-for-bit comparison with the scalar path). */
static float *gather_ranges(const float *row, const index_ranges *r) {
    float *out = malloc((size_t)ranges_total(r) * sizeof(float));
    ck_assert_ptr_nonnull(out);
    int64_t n = 0;
    for (int k = 0; k < r->n; ++k) {
        memcpy(out + n, row + r->begin[k], (size_t)(r->end[k] - r->begin[k]) * sizeof(float));
        n += r->end[k] - r->begin[k];
    }
    return out;
}

static void expect_ok(posattn_status st, const char *what) {
    CHECK(st == POSATTN_OK, "isa %s, %s: returned %d (%s)", posattn_isa_name(posattn_active_isa()), what, (int)st,
          posattn_status_string(st));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Oracles                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

/* The documented default position of key j, or of query i of nq (at index nk - nq + i): the index rounded to the
 * nearest float32, ties to even. Written with the double-to-float conversion, which rounds to nearest even on
 * every IEEE target, so the test does not rely on the conversion it tests (int64 to float). */
static double default_position(int64_t index) {
    return (double)(float)(double)index; /* index < 2^53: exact in double, then one rounding to float */
}

/* -m |pq - pk| exactly, from the float32 inputs. */
static double exact_bias(float slope, double q_pos, double k_pos) {
    return -(double)slope * fabs(q_pos - k_pos);
}

/* posattn_alibi_bias, 1-D: within 1.5 ulp of the exact value from the float32 inputs. */
static void check_bias_value(float got, double want, int64_t j, const char *what) {
    CHECK(fabs((double)got - want) <= 1.5 * f32_ulp(want),
          "isa %s, %s: bias[%" PRId64 "] = %.9g, exact %.17g (more than 1.5 ulp apart)",
          posattn_isa_name(posattn_active_isa()), what, j, (double)got, want);
}

/* The exact softmax of one row's keys [lo, hi) (the valid keys; all others must be 0), each logit
 * scale * s_j - m |pq - pk_j| + mask_j, pk_j = k_pos[j * k_stride] or (k_pos NULL) the documented default. */
typedef struct exact_row {
    int64_t lo, hi;
    double *x;    /* [hi - lo] logits, -inf for masked keys */
    double mx, sum, L, lse;
} exact_row;

static exact_row exact_softmax(const float *scores, const float *mask, float scale, float slope, double q_pos,
                               const float *k_pos, int64_t k_stride, int64_t lo, int64_t hi) {
    exact_row o = {.lo = lo, .hi = hi, .mx = -INFINITY, .sum = 0.0, .L = 0.0};
    o.x = malloc((size_t)(hi - lo) * sizeof(double));
    ck_assert_ptr_nonnull(o.x);
    for (int64_t j = lo; j < hi; ++j) {
        double m = mask ? (double)mask[j] : 0.0;
        double s = (double)scale * (double)scores[j];
        double b = exact_bias(slope, q_pos, k_pos ? (double)k_pos[j * k_stride] : default_position(j));
        double x = m == -INFINITY ? -INFINITY : s + b + m;
        o.x[j - lo] = x;
        if (x == -INFINITY) continue;
        if (x > o.mx) o.mx = x;
        double Lj = fabs(s) + fabs(b) + fabs(m);
        if (Lj > o.L) o.L = Lj;
    }
    for (int64_t j = lo; j < hi; ++j) o.sum += exp(o.x[j - lo] - o.mx);
    o.lse = o.mx + log(o.sum);
    return o;
}

/* Probabilities of the checked ranges: exactly +0 outside the row's valid keys [row_lo, row_hi) and where the mask
 * is -inf; the oracle's within the header's bound inside the oracle's range [o->lo, o->hi); within the absolute
 * term elsewhere (valid keys left out of the oracle's range, whose exact probability the case has shown to be
 * below e^-120). */
static void check_probs(const float *probs, const index_ranges *r, const exact_row *o, int64_t row_lo,
                        int64_t row_hi, const char *what) {
    for (int k = 0; k < r->n; ++k) {
        for (int64_t j = r->begin[k]; j < r->end[k]; ++j) {
            const float p = probs[j];
            if (j < row_lo || j >= row_hi) {
                CHECK(same_bits(p, 0.0f), "isa %s, %s: key %" PRId64 " is outside the valid keys [%" PRId64
                      ", %" PRId64 ") but holds %a", posattn_isa_name(posattn_active_isa()), what, j, row_lo, row_hi,
                      (double)p);
                continue;
            }
            const int excluded = j >= o->lo && j < o->hi && o->x[j - o->lo] == -INFINITY;
            CHECK(!excluded || same_bits(p, 0.0f), "isa %s, %s: key %" PRId64 " is masked by -inf but holds %a",
                  posattn_isa_name(posattn_active_isa()), what, j, (double)p);
            double want = 0.0, bound = SOFTMAX_ABS_BOUND;
            if (j >= o->lo && j < o->hi && !excluded) {
                double d = o->mx - o->x[j - o->lo];
                want = exp(-d) / o->sum;
                bound = softmax_rel_bound(o->L, d) * want + SOFTMAX_ABS_BOUND;
            }
            CHECK(fabs((double)p - want) <= bound,
                  "isa %s, %s: P[%" PRId64 "] = %.9g, exact %.17g, bound %.3g", posattn_isa_name(posattn_active_isa()),
                  what, j, (double)p, want, bound);
        }
    }
}

static void check_lse(float lse, const exact_row *o, const char *what) {
    CHECK(fabs((double)lse - o->lse) <= lse_bound(o->L, o->lse), "isa %s, %s: lse %.9g, exact %.17g",
          posattn_isa_name(posattn_active_isa()), what, (double)lse, o->lse);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Past 2^24 keys: the wide iota of the x86 kernels                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * Two rows of the bias over 2^24 + 41 keys with the default positions (queries at (float)(2^24 + 39) and
 * (float)(2^24 + 40)), written whole: every value equals the scalar reference's bit for bit, and the checked
 * ranges are within 1.5 ulp of the oracle. 2^24 + 1 rounds down to 2^24 and 2^24 + 3 up to 2^24 + 4, so float
 * additions would drift off the documented positions here. Commits 256 MiB (the rows and the scalar copy).
 */
START_TEST(test_bias_past_2_24) {
    const int64_t nq = 2, nk = NK_PAST_2_24;
    const float slopes[1] = {0.0625f};
    long_array out = reserve_floats(nq * nk);
    float *reference = malloc((size_t)(nq * nk) * sizeof(float));
    ck_assert_ptr_nonnull(reference);
    ck_assert(enter_isa(POSATTN_ISA_SCALAR));
    expect_ok(posattn_alibi_bias(1, nq, nk, slopes, NULL, reference, 0, 0, 0, nq), "scalar bias, 2^24+41 keys");
    const index_ranges r = checked_ranges(nk, test_case_seed(1));
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        fill_nan(out.data, (size_t)(nq * nk));
        expect_ok(posattn_alibi_bias(1, nq, nk, slopes, NULL, out.data, 0, 0, 0, nq), "bias, 2^24+41 keys");
        for (int64_t i = 0; i < nq; ++i) {
            const float *row = out.data + i * nk;
            const double q_pos = default_position(nk - nq + i);
            for (int k = 0; k < r.n; ++k) {
                for (int64_t j = r.begin[k]; j < r.end[k]; ++j) {
                    check_bias_value(row[j], exact_bias(slopes[0], q_pos, default_position(j)), j, "2^24+41 keys");
                }
            }
        }
        for (int64_t n = 0; n < nq * nk; ++n) {
            CHECK(same_bits(out.data[n], reference[n]), "isa %s: bias of row %" PRId64 ", key %" PRId64
                  " is %a, the scalar reference's %a", posattn_isa_name(isa), n / nk, n % nk, (double)out.data[n],
                  (double)reference[n]);
        }
    }
    free(reference);
    release(&out);
}
END_TEST

static void fill_pattern(float *s, int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) s[k] = (float)((k * 37) % 23) * 0.375f - 4.0f; /* [-4, 4.25] */
}

/*
 * One whole row of 2^24 + 41 keys, no window: every key is valid and the logits are formed for the whole row. The
 * query sits at (float)(2^24 + 40) with slope 1/8 and scores in [-4, 4.25], so a key more than 1100 positions away
 * has x_j - mx < -(1100/8 - 8.25 - 4) < -120: its exact probability is below e^-120, and all of them together
 * change the denominator by less than 2^24 e^-120 (far below u). The oracle is exact over the last 2048 keys and
 * treats the others as 0 (checked here, not assumed: see below). Commits 128 MiB (scores and probs).
 */
START_TEST(test_softmax_whole_row_past_2_24) {
    const int64_t nk = NK_PAST_2_24, exact_keys = 2048;
    const float slopes[1] = {0.125f}, scale = 1.0f;
    long_array scores = reserve_floats(nk), probs = reserve_floats(nk);
    fill_pattern(scores.data, 0, nk);
    const double q_pos = default_position(nk - 1);
    exact_row o = exact_softmax(scores.data, NULL, scale, slopes[0], q_pos, NULL, 0, nk - exact_keys, nk);
    /* The keys left out: every logit below the oracle's range is at most 4.25 + bias at key nk - exact_keys - 1. */
    const double left_out_max = 4.25 + exact_bias(slopes[0], q_pos, default_position(nk - exact_keys - 1));
    ck_assert_msg(left_out_max < o.mx - 120.0, "the oracle's range is too short");
    const index_ranges r = checked_ranges(nk, test_case_seed(2));
    posattn_softmax_options opt = {0};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float lse = NAN;
        opt.lse = &lse;
        fill_nan(probs.data, (size_t)nk);
        expect_ok(posattn_alibi_softmax(1, 1, nk, scores.data, 0, 0, probs.data, 0, 0, scale, slopes, NULL, &opt, 0,
                                        1),
                  "softmax, 2^24+41 keys");
        check_probs(probs.data, &r, &o, 0, nk, "softmax, 2^24+41 keys");
        check_lse(lse, &o, "softmax, 2^24+41 keys");
    }
    free(o.x);
    release(&scores);
    release(&probs);
}
END_TEST

/*
 * Two queries, causal, window 301, with an f32 mask: row i's valid keys are the 301 up to its diagonal nk - 2 + i,
 * in the wide iota from starts of both parities (nk - 302 and nk - 301) to a partial vector on every ISA; the mask puts -inf on every 7th key and
 * finite values on the others. At nk = 2^24 + 41 the valid keys straddle 2^24. At nk = 2^26 + 41 positions are 8
 * apart and float additions from (float)lo would no longer give (float)j, so choosing the short-row iota there
 * would fail. Scores and mask are read only in the window (their other pages are never touched); the probs are
 * written whole, aliased outside the checked ranges. Commits under 20 MiB.
 */
static void run_window_mask_case(int64_t nk, uint64_t seed) {
    const int64_t nq = 2, window = 301;
    const float slopes[1] = {0.03125f}, scale = 0.5f;
    long_array scores = reserve_floats(nq * nk), mask = reserve_floats(nq * nk), probs = reserve_floats(nq * nk);
    const index_ranges r = checked_ranges(nk, seed);
    index_ranges both = {.n = 0}; /* the checked ranges of both rows, as offsets into probs */
    for (int64_t i = 0; i < nq; ++i) {
        for (int k = 0; k < r.n; ++k) add_range(&both, i * nk + r.begin[k], i * nk + r.end[k], nq * nk);
    }
    alias_outside(&probs, &both);
    rng g = rng_seeded(seed + 1);
    exact_row o[2];
    int64_t lo[2], hi[2];
    for (int64_t i = 0; i < nq; ++i) {
        hi[i] = nk - nq + i + 1, lo[i] = hi[i] - window;
        float *s = scores.data + i * nk, *m = mask.data + i * nk;
        for (int64_t j = lo[i]; j < hi[i]; ++j) {
            s[j] = rng_float(&g, -6.0, 6.0);
            m[j] = j % 7 == 3 ? -INFINITY : rng_float(&g, -2.0, 0.5);
        }
        o[i] = exact_softmax(s, m, scale, slopes[0], default_position(nk - nq + i), NULL, 0, lo[i], hi[i]);
    }
    posattn_softmax_options opt = {0};
    opt.flags = POSATTN_CAUSAL;
    opt.window = window;
    opt.mask = mask.data;
    opt.mask_type = POSATTN_MASK_F32;
    char what[64];
    snprintf(what, sizeof what, "softmax, 2^%d+41 keys, window and mask", nk > INT64_C(1) << 25 ? 26 : 24);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float lse[2] = {NAN, NAN};
        opt.lse = lse;
        for (int k = 0; k < both.n; ++k) fill_nan(probs.data + both.begin[k], (size_t)(both.end[k] - both.begin[k]));
        expect_ok(posattn_alibi_softmax(1, nq, nk, scores.data, 0, 0, probs.data, 0, 0, scale, slopes, NULL, &opt, 0,
                                        nq),
                  what);
        for (int64_t i = 0; i < nq; ++i) {
            check_probs(probs.data + i * nk, &r, &o[i], lo[i], hi[i], what);
            check_lse(lse[i], &o[i], what);
        }
    }
    for (int64_t i = 0; i < nq; ++i) free(o[i].x);
    release(&scores);
    release(&mask);
    release(&probs);
}

START_TEST(test_softmax_window_mask_past_2_24) {
    run_window_mask_case(NK_PAST_2_24, test_case_seed(3));
    run_window_mask_case((INT64_C(1) << 26) + 41, test_case_seed(4));
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Past 2^31 keys                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * The softmax of one query over 2^31 + 43 keys, its valid keys cut by a window of 258 to [2^31 - 215, 2^31 + 43).
 * The start is 1 modulo 8, so vectors of 8 (AVX2) and of 4 (NEON) begin at INT32_MAX - 6 and INT32_MAX - 2: the
 * first vectors whose last lane passes INT32_MAX, which the int32 iota must not take; 258 keys end in a partial
 * vector on every ISA (NEON forms its tail's positions apart). Positions there are spaced 128 (below 2^31) and 256
 * (above) apart, and the query at (float)(2^31 + 42) = 2^31, so with slope 2^-7 the bias is 0, -1 or -2: a key index wrapped to a negative int32 would instead be 2^32 away, probability 0. The probs are
 * aliased outside the checked ranges; the scores are read in the window only. Commits about 20 MiB (the 2 MiB
 * alias file, the checked pages, and the page tables of 8 GiB).
 */
START_TEST(test_softmax_past_2_31) {
    const int64_t nk = TWO31 + 43, window = 258, lo = nk - window;
    ck_assert_int_eq(lo % 8, 1);
    const float slopes[1] = {0x1p-7f}, scale = 1.0f;
    long_array scores = reserve_floats(nk), probs = reserve_floats(nk);
    index_ranges r = checked_ranges(nk, test_case_seed(5));
    alias_outside(&probs, &r);
    rng g = rng_seeded(test_case_seed(6));
    for (int64_t j = lo; j < nk; ++j) scores.data[j] = rng_float(&g, -3.0, 3.0);
    exact_row o = exact_softmax(scores.data, NULL, scale, slopes[0], default_position(nk - 1), NULL, 0, lo, nk);
    posattn_softmax_options opt = {0};
    opt.window = window;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float lse = NAN;
        opt.lse = &lse;
        for (int k = 0; k < r.n; ++k) fill_nan(probs.data + r.begin[k], (size_t)(r.end[k] - r.begin[k]));
        expect_ok(posattn_alibi_softmax(1, 1, nk, scores.data, 0, 0, probs.data, 0, 0, scale, slopes, NULL, &opt, 0,
                                        1),
                  "softmax, 2^31+43 keys, window 258");
        check_probs(probs.data, &r, &o, lo, nk, "softmax, 2^31+43 keys, window 258");
        check_lse(lse, &o, "softmax, 2^31+43 keys, window 258");
    }
    free(o.x);
    release(&scores);
    release(&probs);
}
END_TEST

/*
 * The bias of one query over 2^31 + 41 keys, written whole (8 GiB, aliased outside the checked ranges): the
 * checked ranges (around 2^24, around INT32_MAX, the end, sampled pages) within 1.5 ulp of the oracle and equal to
 * the scalar reference's bit for bit. Slope 2^-20, so that the bias near the start (about -2^11) and near the end
 * (near 0) are both ordinary numbers. Commits about 20 MiB. Skipped under emulation (see the top of the file).
 */
START_TEST(test_bias_past_2_31) {
    if (getenv("POSATTN_TEST_SKIP_HUGE_BIAS")) {
        fprintf(stderr, "posattn tests: POSATTN_TEST_SKIP_HUGE_BIAS set: the bias row of 2^31+41 keys is skipped\n");
        return;
    }
    const int64_t nk = NK_PAST_2_31;
    const float slopes[1] = {0x1p-20f};
    long_array out = reserve_floats(nk);
    const index_ranges r = checked_ranges(nk, test_case_seed(7));
    alias_outside(&out, &r);
    ck_assert(enter_isa(POSATTN_ISA_SCALAR));
    expect_ok(posattn_alibi_bias(1, 1, nk, slopes, NULL, out.data, 0, 0, 0, 1), "scalar bias, 2^31+41 keys");
    float *reference = gather_ranges(out.data, &r);
    const double q_pos = default_position(nk - 1);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int k = 0; k < r.n; ++k) fill_nan(out.data + r.begin[k], (size_t)(r.end[k] - r.begin[k]));
        expect_ok(posattn_alibi_bias(1, 1, nk, slopes, NULL, out.data, 0, 0, 0, 1), "bias, 2^31+41 keys");
        int64_t n = 0;
        for (int k = 0; k < r.n; ++k) {
            for (int64_t j = r.begin[k]; j < r.end[k]; ++j, ++n) {
                check_bias_value(out.data[j], exact_bias(slopes[0], q_pos, default_position(j)), j, "2^31+41 keys");
                CHECK(same_bits(out.data[j], reference[n]), "isa %s: bias[%" PRId64 "] is %a, the scalar "
                      "reference's %a", posattn_isa_name(isa), j, (double)out.data[j], (double)reference[n]);
            }
        }
    }
    free(reference);
    release(&out);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Strided key positions past 2^31 elements                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * 19 keys (a vector and a tail on every ISA) whose positions sit k_stride = 2^28 + 3 floats apart: lane 8 of the
 * first vector is 2^31 + 24 elements from key 0, the last key 2^32 + 2^29 + 54 elements (19 GiB of address space,
 * 19 pages touched). 1-D (q given) and 2-D L2 positions (the N-D gathers); the bias and the softmax must equal
 * those of the same positions stored contiguously bit for bit (same ISA), the bias the scalar reference's, the 1-D
 * bias within 1.5 ulp of the oracle, the softmax within the header's bound of its oracle. Commits under 1 MiB.
 */
START_TEST(test_strided_positions_past_2_31) {
    const int64_t nq = 2, nk = 19, stride = (INT64_C(1) << 28) + 3;
    const float slopes[2] = {0.25f, 0.0625f};
    long_array far = reserve_floats((nk - 1) * stride + 2);
    rng g = rng_seeded(test_case_seed(8));
    float compact_k[2 * 19], q[2 * 2], scores[2 * 2 * 19];
    for (int64_t n = 0; n < 2 * nk; ++n) compact_k[n] = rng_float(&g, -50.0, 50.0);
    for (int64_t n = 0; n < 2 * nq; ++n) q[n] = rng_float(&g, -50.0, 50.0);
    for (int64_t n = 0; n < 2 * nq * nk; ++n) scores[n] = rng_float(&g, -4.0, 4.0);
    for (int64_t j = 0; j < nk; ++j) memcpy(far.data + j * stride, compact_k + 2 * j, 2 * sizeof(float));
    for (int axes = 1; axes <= 2; ++axes) {
        posattn_positions pc = {0}, pf = {0};
        pc.axes = pf.axes = axes;
        pc.metric = pf.metric = POSATTN_METRIC_L2;
        pc.q = pf.q = q;
        pc.q_stride = pf.q_stride = 2; /* axis 0 of q[] alone for 1-D */
        pc.k = compact_k, pc.k_stride = 2;
        pf.k = far.data, pf.k_stride = stride;
        float reference[2 * 2 * 19];
        ck_assert(enter_isa(POSATTN_ISA_SCALAR));
        expect_ok(posattn_alibi_bias(2, nq, nk, slopes, &pc, reference, 0, 0, 0, 2 * nq), "scalar bias");
        FOR_EACH_ISA(isa) {
            if (!enter_isa(isa)) continue;
            float bias[2 * 2 * 19], compact[2 * 2 * 19], probs[2 * 2 * 19], lse[4], lse_compact[4];
            fill_nan(bias, 76);
            expect_ok(posattn_alibi_bias(2, nq, nk, slopes, &pf, bias, 0, 0, 0, 2 * nq), "bias, k_stride 2^28+3");
            ck_assert_msg(memcmp(bias, reference, sizeof bias) == 0,
                          "isa %s, %d axes: bias from far strided positions differs from the scalar reference's",
                          posattn_isa_name(isa), axes);
            if (axes == 1) {
                for (int64_t r = 0; r < 2 * nq; ++r) {
                    for (int64_t j = 0; j < nk; ++j) {
                        check_bias_value(bias[r * nk + j],
                                         exact_bias(slopes[r / nq], (double)q[2 * (r % nq)], (double)compact_k[2 * j]),
                                         j, "k_stride 2^28+3");
                    }
                }
            }
            posattn_softmax_options opt = {0};
            fill_nan(compact, 76);
            opt.lse = lse_compact;
            expect_ok(posattn_alibi_softmax(2, nq, nk, scores, 0, 0, compact, 0, 0, 0.75f, slopes, &pc, &opt, 0,
                                            2 * nq),
                      "softmax, contiguous positions");
            fill_nan(probs, 76);
            opt.lse = lse;
            expect_ok(posattn_alibi_softmax(2, nq, nk, scores, 0, 0, probs, 0, 0, 0.75f, slopes, &pf, &opt, 0,
                                            2 * nq),
                      "softmax, k_stride 2^28+3");
            ck_assert_msg(memcmp(probs, compact, sizeof probs) == 0 && memcmp(lse, lse_compact, sizeof lse) == 0,
                          "isa %s, %d axes: softmax with far strided positions differs from contiguous ones",
                          posattn_isa_name(isa), axes);
            if (axes == 1) {
                const index_ranges all = {.begin = {0}, .end = {nk}, .n = 1};
                for (int64_t r = 0; r < 2 * nq; ++r) {
                    exact_row o = exact_softmax(scores + r * nk, NULL, 0.75f, slopes[r / nq], (double)q[2 * (r % nq)],
                                                compact_k, 2, 0, nk);
                    check_probs(probs + r * nk, &all, &o, 0, nk, "softmax, k_stride 2^28+3");
                    check_lse(lse[r], &o, "softmax, k_stride 2^28+3");
                    free(o.x);
                }
            }
        }
    }
    release(&far);
}
END_TEST

static Suite *long_rows_suite(void) {
    Suite *s = suite_create("long_rows");
    /* One test case each, so that CK_RUN_CASE can pick one. */
    const struct {
        const char *name;
        const TTest *test;
    } tests[] = {
        {"bias_past_2_24", test_bias_past_2_24},
        {"softmax_whole_row_past_2_24", test_softmax_whole_row_past_2_24},
        {"softmax_window_mask_past_2_24", test_softmax_window_mask_past_2_24},
        {"softmax_past_2_31", test_softmax_past_2_31},
        {"bias_past_2_31", test_bias_past_2_31},
        {"strided_positions_past_2_31", test_strided_positions_past_2_31},
    };
    for (size_t k = 0; k < sizeof tests / sizeof tests[0]; ++k) {
        TCase *tc = make_tcase(tests[k].name);
        tcase_add_test(tc, tests[k].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) {
    /* The largest reservation of any case (the strided positions: 19 GiB), and an aliasing memory file: when the
     * system refuses either, meson reports the file as skipped rather than passed. */
    const size_t probe_bytes = (size_t)(INT64_C(18) * ((INT64_C(1) << 28) + 3) + 2) * sizeof(float);
    void *probe = mmap(NULL, probe_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    int fd = memfd_create("posattn-probe", MFD_CLOEXEC);
    if (probe == MAP_FAILED || fd < 0) {
        fprintf(stderr, "posattn tests: cannot reserve %zu bytes or create a memory file: long rows skipped\n",
                probe_bytes);
        return 77;
    }
    munmap(probe, probe_bytes);
    close(fd);
    return run_suite(long_rows_suite());
}
