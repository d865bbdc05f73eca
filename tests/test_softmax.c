/*
 * posattn_alibi_softmax on every supported ISA, against a float64 oracle of SPEC section 3 (support.c) with the
 * error bound of include/posattn.h, and against the scalar reference.
 *
 * One driver (run_softmax_case) does all the work: it builds the inputs of a case from a seed (exact-size input
 * allocations, NaN in every padding element an input has, canaries after every output), computes the oracle once,
 * then for each ISA forces it, calls the kernel, and checks canaries, untouched elements (padding, rows outside the
 * range, lse of other rows), exact zeros for excluded keys, every output against the oracle, the row sums, the
 * lse, and every output against the scalar result. The tests below are tables of cases fed to that driver, plus
 * the SPEC's printed test vectors and the documented NaN behaviour.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* Cases                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum mask_kind { MASK_NONE, MASK_F32, MASK_F16 } mask_kind;

/* Layouts of the scores and probs tensors, as strides passed to the API. */
typedef enum layout {
    LAYOUT_DEFAULT,     /* strides 0: contiguous */
    LAYOUT_EXPLICIT,    /* the contiguous strides spelled out */
    LAYOUT_PADDED,      /* rows of nk + 3, heads of nq (nk + 3) + 5 */
    LAYOUT_INTERLEAVED, /* [nq][H][nk + 2]: row stride H (nk + 2), head stride nk + 2 */
    LAYOUT_COUNT
} layout;

/* Each pointer can be misaligned on its own: one element after a 64-byte aligned block. */
enum {
    MIS_SCORES = 1u << 0,
    MIS_PROBS = 1u << 1,
    MIS_SLOPES = 1u << 2,
    MIS_QPOS = 1u << 3,
    MIS_KPOS = 1u << 4,
    MIS_WEIGHTS = 1u << 5,
    MIS_MASK = 1u << 6,
    MIS_SINKS = 1u << 7,
    MIS_LSE = 1u << 8,
    MIS_COUNT = 9
};

typedef struct softmax_case {
    const char *name;
    int64_t n_heads, nq, nk;
    float scale;             /* 0 means 1 */
    double logit_range;      /* scale*S uniform in [-range, range]; 0 means 100 */
    int mostly_constant;     /* seven keys in eight get scale*S = -0.175 range instead (a constant term) */
    float max_bias;          /* slopes from posattn_alibi_slopes(H, max_bias); 0 means 8 */
    int zero_slope_heads;    /* this many of the last heads get slope 0 */
    positions_kind positions;
    double position_span;    /* irregular key positions cover about [0, span]; 0 means nk */
    int infinite_keys;       /* key positions j = 3, 10, 17, ... are +inf (position arrays only) */
    int causal;
    int64_t window;
    mask_kind mask;
    int mask_per_head;       /* mask_head_stride nq * row + 1, else 0 (broadcast) */
    int mask_padded;         /* mask_row_stride nk + 2, else 0 (contiguous) */
    int mask_times_slope;    /* POSATTN_MASK_TIMES_SLOPE; positions must be POSITIONS_NULL */
    int sinks;
    float softcap;
    int lse;
    layout scores_layout, probs_layout;
    int in_place;            /* probs == scores, with the scores layout */
    unsigned misalign;       /* MIS_* bits */
    int partial_rows;        /* compute [row_begin, row_end) only */
    int64_t row_begin, row_end;
    uint64_t variant;        /* mixed into the seed; also selects NULL vs zeroed options when all are off */
} softmax_case;

typedef struct strides {
    int64_t row, head;
} strides;

static strides layout_strides(layout l, int64_t n_heads, int64_t nq, int64_t nk) {
    switch (l) {
    case LAYOUT_EXPLICIT: return (strides){nk, nq * nk};
    case LAYOUT_PADDED: return (strides){nk + 3, nq * (nk + 3) + 5};
    case LAYOUT_INTERLEAVED: return (strides){n_heads * (nk + 2), nk + 2};
    default: return (strides){0, 0};
    }
}

/* Elements spanned by a [H][nq][nk] tensor with the given API strides (0: the documented defaults). */
static int64_t tensor_extent(strides s, int64_t n_heads, int64_t nq, int64_t nk, int64_t *row, int64_t *head) {
    *row = s.row ? s.row : nk;
    *head = s.head ? s.head : nq * *row;
    return (n_heads - 1) * *head + (nq - 1) * *row + nk;
}

static uint64_t case_seed(const softmax_case *c) {
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a of the name, then the shape and the variant */
    for (const char *p = c->name; *p; ++p) h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    h ^= (uint64_t)c->n_heads * 0x100000001B3u + (uint64_t)c->nq * 7919u + (uint64_t)c->nk * 1000003u;
    return test_case_seed(h ^ (c->variant * UINT64_C(0x9E3779B97F4A7C15)));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Inputs                                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/* The mask value of head hm (0 when broadcast), query i, key j: rows with (hm + i) % 4 == 2 are fully excluded,
 * otherwise one key in eight is -inf, one in sixteen is tiny (binary16 subnormals, +-0) and the rest are uniform in
 * [-range/4, range/4]. */
static float mask_value(rng *g, int64_t hm, int64_t i, double range) {
    if ((hm + i) % 4 == 2) return -INFINITY;
    switch (rng_below(g, 16)) {
    case 0:
    case 1: return -INFINITY;
    case 2: return rng_float(g, -6e-5, 6e-5);
    case 3: return rng_below(g, 2) ? -0.0f : 0.0f;
    default: return rng_float(g, -range / 4, range / 4);
    }
}

typedef struct mask_buffer {
    guarded buf;
    int64_t row_stride, head_stride; /* as passed to the API */
} mask_buffer;

static void build_mask(const softmax_case *c, rng *g, double range, mask_buffer *m) {
    memset(m, 0, sizeof *m);
    if (c->mask == MASK_NONE) return;
    const int64_t H = c->n_heads, nq = c->nq, nk = c->nk;
    m->row_stride = c->mask_padded ? nk + 2 : 0;
    int64_t row = m->row_stride ? m->row_stride : nk;
    m->head_stride = c->mask_per_head ? nq * row + 1 : 0;
    int64_t heads = c->mask_per_head ? H : 1;
    int64_t extent = (heads - 1) * m->head_stride + (nq - 1) * row + nk;
    int f16 = c->mask == MASK_F16;
    m->buf = guarded_input((size_t)extent, f16 ? sizeof(uint16_t) : sizeof(float), c->misalign & MIS_MASK);
    if (f16) {
        uint16_t *mask = m->buf.data;
        for (int64_t e = 0; e < extent; ++e) mask[e] = 0x7E00u; /* NaN padding */
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t i = 0; i < nq; ++i)
                for (int64_t j = 0; j < nk; ++j)
                    mask[h * m->head_stride + i * row + j] = f32_to_f16(mask_value(g, h, i, range));
    } else {
        float *mask = m->buf.data;
        fill_nan(mask, (size_t)extent);
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t i = 0; i < nq; ++i)
                for (int64_t j = 0; j < nk; ++j) mask[h * m->head_stride + i * row + j] = mask_value(g, h, i, range);
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Checking one row                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

/* probs[0..nk) of row r against the oracle and (when given) the scalar result; lse likewise. */
static void check_row(const char *where, int64_t r, int64_t nk, const float *probs, const oracle_row *o,
                      const float *lse, const float *ref_probs, const float *ref_lse) {
    double sum = 0.0, sum_exact = 0.0, sum_bound = 0.0;
    for (int64_t j = 0; j < nk; ++j) {
        float P = probs[j];
        if (!o->valid[j]) {
            CHECK(P == 0.0f, "%s: row %" PRId64 " key %" PRId64 " is excluded but holds %a (expected exactly 0)",
                  where, r, j, (double)P);
            continue;
        }
        CHECK(P >= 0.0f && P <= 1.0f, "%s: row %" PRId64 " key %" PRId64 " holds %a, not a probability", where, r,
              j, (double)P);
        /* SPEC 6: results below FLT_MIN are flushed to 0 by construction; no output is subnormal. */
        CHECK(P == 0.0f || P >= FLT_MIN, "%s: row %" PRId64 " key %" PRId64 " holds the subnormal %a", where, r, j,
              (double)P);
        double exact = o->p[j];
        double bound = (exact > 0.0 ? softmax_rel_bound(o->L, o->d[j]) * exact : 0.0) + SOFTMAX_ABS_BOUND;
        CHECK(fabs(P - exact) <= bound,
              "%s: row %" PRId64 " key %" PRId64 ": P = %.9g, oracle %.17g, |error| %.3g > bound %.3g (L %.6g, "
              "d %.6g)",
              where, r, j, (double)P, exact, fabs(P - exact), bound, o->L, o->d[j]);
        if (ref_probs) {
            CHECK(fabs(P - ref_probs[j]) <= 2.0 * bound,
                  "%s: row %" PRId64 " key %" PRId64 ": P = %.9g but scalar gives %.9g, |difference| %.3g > %.3g "
                  "(oracle %.17g)",
                  where, r, j, (double)P, (double)ref_probs[j], fabs(P - ref_probs[j]), 2.0 * bound, exact);
        }
        sum += P;
        sum_exact += exact;
        sum_bound += bound;
    }
    CHECK(fabs(sum - sum_exact) <= sum_bound, "%s: row %" PRId64 " sums to %.17g, oracle %.17g, bound %.3g", where,
          r, sum, sum_exact, sum_bound);
    if (!lse) return;
    if (o->lse == -INFINITY) {
        CHECK(*lse == -INFINITY, "%s: row %" PRId64 " has no valid key and no sink, lse %a (expected -inf)", where,
              r, (double)*lse);
        return;
    }
    double bound = lse_bound(o->L, o->lse);
    CHECK(fabs(*lse - o->lse) <= bound, "%s: row %" PRId64 ": lse %.9g, oracle %.17g, |error| %.3g > bound %.3g",
          where, r, (double)*lse, o->lse, fabs(*lse - o->lse), bound);
    if (ref_lse) {
        CHECK(fabs(*lse - *ref_lse) <= 2.0 * bound, "%s: row %" PRId64 ": lse %.9g but scalar gives %.9g", where, r,
              (double)*lse, (double)*ref_lse);
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The driver                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

static void run_softmax_case(const softmax_case *c) {
    const int64_t H = c->n_heads, nq = c->nq, nk = c->nk, rows = H * nq;
    const uint64_t seed = case_seed(c);
    const float scale = c->scale != 0.0f ? c->scale : 1.0f;
    const double range = c->logit_range > 0 ? c->logit_range : 100.0;
    const int64_t begin = c->partial_rows ? c->row_begin : 0, end = c->partial_rows ? c->row_end : rows;
    rng g = rng_seeded(seed);
    char ctx[400];
    snprintf(ctx, sizeof ctx, "case '%s' (H=%" PRId64 " nq=%" PRId64 " nk=%" PRId64 " rows [%" PRId64 ",%" PRId64
             ") seed 0x%016" PRIx64 ")",
             c->name, H, nq, nk, begin, end, seed);

    /* Slopes (inputs, computed once for all ISAs), with the last heads' slope 0. */
    guarded slopes_g = guarded_input((size_t)H, sizeof(float), c->misalign & MIS_SLOPES);
    float *slopes = slopes_g.data;
    ck_assert_int_eq(posattn_alibi_slopes(H, c->max_bias > 0 ? c->max_bias : 8.0f, slopes), POSATTN_OK);
    for (int64_t h = H - c->zero_slope_heads; h < H; ++h) {
        if (h >= 0) slopes[h] = 0.0f;
    }

    /* Scores, NaN in the padding; scale*S is uniform in [-range, range]. */
    strides ss = layout_strides(c->scores_layout, H, nq, nk);
    int64_t s_row, s_head, s_extent = tensor_extent(ss, H, nq, nk, &s_row, &s_head);
    float *pristine = malloc((size_t)s_extent * sizeof(float));
    ck_assert_ptr_nonnull(pristine);
    fill_nan(pristine, (size_t)s_extent);
    for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < nq; ++i)
            for (int64_t j = 0; j < nk; ++j) {
                double x = (c->mostly_constant && j % 8 != 0) ? -0.175 * range : (double)rng_float(&g, -range, range);
                pristine[h * s_head + i * s_row + j] = (float)(x / scale);
            }
    const int scores_misaligned = (c->misalign & (c->in_place ? MIS_SCORES | MIS_PROBS : MIS_SCORES)) != 0;
    guarded scores_g = c->in_place ? guarded_output((size_t)s_extent, sizeof(float), scores_misaligned)
                                   : guarded_input((size_t)s_extent, sizeof(float), scores_misaligned);
    float *scores = scores_g.data;
    memcpy(scores, pristine, (size_t)s_extent * sizeof(float));

    posattn_positions positions;
    position_buffers pos_bufs;
    positions_spec pos_spec = {c->positions, H, nq, nk, c->position_span, c->infinite_keys,
                               (c->misalign & MIS_QPOS) != 0, (c->misalign & MIS_KPOS) != 0,
                               (c->misalign & MIS_WEIGHTS) != 0};
    build_positions(&pos_spec, &g, &positions, &pos_bufs);
    const posattn_positions *positions_arg = c->positions == POSITIONS_NULL ? NULL : &positions;

    mask_buffer mask;
    build_mask(c, &g, range, &mask);

    guarded sinks_g = {0}, lse_g = {0};
    if (c->sinks) {
        sinks_g = guarded_input((size_t)H, sizeof(float), c->misalign & MIS_SINKS);
        for (int64_t h = 0; h < H; ++h) ((float *)sinks_g.data)[h] = rng_float(&g, -range / 2, range / 2);
    }
    if (c->lse) lse_g = guarded_output((size_t)rows, sizeof(float), c->misalign & MIS_LSE);
    float *lse = lse_g.data;

    posattn_softmax_options options = {0};
    options.flags = (c->causal ? POSATTN_CAUSAL : 0u) | (c->mask_times_slope ? POSATTN_MASK_TIMES_SLOPE : 0u);
    options.softcap = c->softcap;
    options.window = c->window;
    options.mask = mask.buf.data;
    options.mask_type = c->mask == MASK_F16 ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
    options.mask_row_stride = mask.row_stride;
    options.mask_head_stride = mask.head_stride;
    options.sinks = sinks_g.data;
    options.lse = lse;
    static const posattn_softmax_options all_off = {0};
    const posattn_softmax_options *options_arg =
        (memcmp(&options, &all_off, sizeof options) == 0 && c->variant % 2 == 0) ? NULL : &options;

    /* Probs: their own buffer with canaries, or the scores buffer (in place). */
    strides ps = c->in_place ? ss : layout_strides(c->probs_layout, H, nq, nk);
    int64_t p_row, p_head, p_extent = tensor_extent(ps, H, nq, nk, &p_row, &p_head);
    guarded probs_g = {0};
    if (!c->in_place) probs_g = guarded_output((size_t)p_extent, sizeof(float), c->misalign & MIS_PROBS);
    const guarded *out_g = c->in_place ? &scores_g : &probs_g;
    float *probs = out_g->data;

    /* The oracle, once, from the pristine scores; and which output elements the call may write. */
    softmax_problem problem = {H, nq, nk, pristine, ss.row, ss.head, scale, slopes, positions_arg, &options};
    int64_t n_rows = end - begin;
    oracle_row *oracle = calloc((size_t)(n_rows > 0 ? n_rows : 1), sizeof *oracle);
    unsigned char *written = calloc((size_t)p_extent, 1);
    ck_assert_ptr_nonnull(oracle);
    ck_assert_ptr_nonnull(written);
    for (int64_t r = begin; r < end; ++r) {
        oracle[r - begin] = oracle_row_alloc(nk);
        oracle_softmax_row(&problem, r, &oracle[r - begin]);
        int64_t at = (r / nq) * p_head + (r % nq) * p_row;
        for (int64_t j = 0; j < nk; ++j) {
            ck_assert_msg(!written[at + j], "test bug: output rows overlap");
            written[at + j] = 1;
        }
    }

    size_t ref_count = (size_t)(n_rows > 0 ? n_rows : 1) * (size_t)nk;
    float *ref_probs = malloc(ref_count * sizeof(float)), *ref_lse = malloc((size_t)(rows + 1) * sizeof(float));
    float *before = malloc((size_t)p_extent * sizeof(float));
    ck_assert(ref_probs && ref_lse && before);
    int have_ref = 0;

    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        char where[480];
        snprintf(where, sizeof where, "%s isa %s", ctx, posattn_isa_name(isa));
        if (c->in_place) {
            memcpy(probs, pristine, (size_t)p_extent * sizeof(float));
        } else {
            fill_untouched(probs, (size_t)p_extent);
        }
        if (lse) fill_untouched(lse, (size_t)rows);
        memcpy(before, probs, (size_t)p_extent * sizeof(float));

        posattn_status st = posattn_alibi_softmax(H, nq, nk, scores, ss.row, ss.head, probs, ps.row, ps.head, scale,
                                                  slopes, positions_arg, options_arg, begin, end);
        CHECK(st == POSATTN_OK, "%s: returned %d (%s)", where, (int)st, posattn_status_string(st));

        guarded_check(out_g, where);
        if (lse) guarded_check(&lse_g, where);
        if (!c->in_place) {
            CHECK(memcmp(scores, pristine, (size_t)s_extent * sizeof(float)) == 0, "%s: scores were modified",
                  where);
        }
        for (int64_t e = 0; e < p_extent; ++e) {
            CHECK(written[e] || same_bits(probs[e], before[e]),
                  "%s: output element %" PRId64 " (padding or a row outside the range) was written", where, e);
        }
        for (int64_t r = 0; lse && r < rows; ++r) {
            CHECK((r >= begin && r < end) || same_bits(lse[r], untouched_pattern()),
                  "%s: lse[%" PRId64 "] outside the row range was written", where, r);
        }
        for (int64_t r = begin; r < end; ++r) {
            const float *row = probs + (r / nq) * p_head + (r % nq) * p_row;
            float *ref_row = ref_probs + (size_t)(r - begin) * (size_t)nk;
            check_row(where, r, nk, row, &oracle[r - begin], lse ? lse + r : NULL, have_ref ? ref_row : NULL,
                      have_ref && lse ? ref_lse + r : NULL);
            if (isa == POSATTN_ISA_SCALAR) {
                memcpy(ref_row, row, (size_t)nk * sizeof(float));
                if (lse) ref_lse[r] = lse[r];
            }
        }
        if (isa == POSATTN_ISA_SCALAR) have_ref = 1;
    }

    for (int64_t r = begin; r < end; ++r) oracle_row_free(&oracle[r - begin]);
    free(oracle);
    free(written);
    free(ref_probs);
    free(ref_lse);
    free(before);
    free(pristine);
    guarded_free(&slopes_g);
    guarded_free(&scores_g);
    guarded_free(&probs_g);
    free_positions(&pos_bufs);
    guarded_free(&mask.buf);
    guarded_free(&sinks_g);
    guarded_free(&lse_g);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Option combinations                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/* Every combination of causal, window, mask (none, f32, f16; broadcast or per head), ggml mode, sinks, softcap and
 * lse, for nq < nk, nq == nk and nq > nk; the position layout cycles through every kind (NULL in ggml mode).
 * Head 2 of 3 has slope 0. */
START_TEST(test_option_combinations) {
    static const struct {
        int64_t nq, nk;
    } shapes[] = {{3, 11}, {11, 11}, {13, 5}};
    uint64_t combo = 0;
    char name[200];
    for (int causal = 0; causal <= 1; ++causal)
    for (int64_t window = 0; window <= 3; window += 3)
    for (int mask = MASK_NONE; mask <= MASK_F16; ++mask)
    for (int per_head = 0; per_head <= (mask != MASK_NONE); ++per_head)
    for (int ggml = 0; ggml <= 1; ++ggml)
    for (int sinks = 0; sinks <= 1; ++sinks)
    for (int softcap = 0; softcap <= 1; ++softcap)
    for (int lse = 0; lse <= 1; ++lse)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s, ++combo) {
        softmax_case c = {0};
        c.n_heads = 3, c.nq = shapes[s].nq, c.nk = shapes[s].nk;
        c.zero_slope_heads = 1;
        c.causal = causal, c.window = window, c.mask = (mask_kind)mask, c.mask_per_head = per_head;
        c.mask_padded = (int)(combo % 3 == 1);
        c.mask_times_slope = ggml, c.sinks = sinks, c.softcap = softcap ? 30.0f : 0.0f, c.lse = lse;
        c.positions = ggml ? POSITIONS_NULL : (positions_kind)(combo % POSITIONS_KIND_COUNT);
        c.variant = combo;
        snprintf(name, sizeof name, "options:%s%s%s%s%s%s%s%s positions=%s", causal ? " causal" : "",
                 window ? " window=3" : "", mask == MASK_F32 ? " mask=f32" : mask == MASK_F16 ? " mask=f16" : "",
                 per_head ? "/per-head" : "", ggml ? " mask-times-slope" : "", sinks ? " sinks" : "",
                 softcap ? " softcap=30" : "", lse ? " lse" : "", positions_kind_names[c.positions]);
        c.name = name;
        run_softmax_case(&c);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Sizes                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

/* nk = 1, W-1, W, W+1 for W in {4, 8, 16}, 2W±1, 3W+5, odd tails and large rows, each with three option sets. */
START_TEST(test_sizes) {
    static const int64_t sizes[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  15, 16, 17,  23,
                                    25, 29, 31, 32, 33, 37, 47, 48, 53, 64, 65, 1000, 4099};
    static const int64_t query_counts[] = {1, 5};
    char name[120];
    uint64_t variant = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        for (size_t q = 0; q < sizeof query_counts / sizeof query_counts[0]; ++q) {
            for (int set = 0; set < 3; ++set, ++variant) {
                softmax_case c = {0};
                c.n_heads = 2, c.nq = query_counts[q], c.nk = sizes[s], c.variant = variant;
                switch (set) {
                case 0: /* plain ALiBi, KV-cache positions */
                    snprintf(name, sizeof name, "sizes: plain");
                    break;
                case 1: /* causal, f16 mask, sinks, lse, irregular positions */
                    snprintf(name, sizeof name, "sizes: causal mask=f16 sinks lse positions=shared");
                    c.causal = 1, c.mask = MASK_F16, c.sinks = 1, c.lse = 1, c.positions = POSITIONS_SHARED;
                    break;
                default: /* softcap, window, f32 per-head mask, per-head positions, padded rows */
                    snprintf(name, sizeof name, "sizes: softcap window=5 mask=f32/per-head positions=per-head padded");
                    c.softcap = 50.0f, c.window = 5, c.mask = MASK_F32, c.mask_per_head = 1, c.lse = 1;
                    c.positions = POSITIONS_PER_HEAD, c.scores_layout = LAYOUT_PADDED, c.probs_layout = LAYOUT_PADDED;
                    break;
                }
                c.name = name;
                run_softmax_case(&c);
            }
        }
    }
}
END_TEST

/* One row of 2^20 keys per ISA: the row sum must stay within the bound of 1 (no drift with the row length) and
 * every output within the bound of the oracle. Seven keys in eight have the same logit (-0.7), whose exponential
 * e^-0.7 is not a float: a running float32 sum (or float32 partial sums of more than a few terms) drifts
 * systematically when the same inexact term is added to a growing sum, far beyond the bound. The other keys are
 * uniform in [-4, 4]; the slope is 0 so that the constant terms stay identical. */
START_TEST(test_row_of_2_20_keys) {
    softmax_case c = {0};
    c.name = "2^20 keys";
    c.n_heads = 1, c.nq = 1, c.nk = INT64_C(1) << 20;
    c.logit_range = 4.0, c.mostly_constant = 1, c.zero_slope_heads = 1, c.lse = 1;
    run_softmax_case(&c);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Memory layouts                                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

/* Each pointer misaligned on its own (one element off an aligned block), with every input in use. */
START_TEST(test_misaligned_pointers) {
    static const int64_t sizes[] = {7, 17, 37};
    char name[120];
    uint64_t variant = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        for (unsigned bit = 0; bit < MIS_COUNT; ++bit) {
            for (int mask = MASK_F32; mask <= MASK_F16; ++mask, ++variant) {
                softmax_case c = {0};
                c.n_heads = 2, c.nq = 3, c.nk = sizes[s], c.variant = variant;
                c.positions = POSITIONS_WEIGHTED, c.mask = (mask_kind)mask, c.sinks = 1, c.lse = 1, c.causal = 1;
                c.misalign = 1u << bit;
                snprintf(name, sizeof name, "misaligned pointer %u (MIS_* bit), mask=%s", bit,
                         mask == MASK_F16 ? "f16" : "f32");
                c.name = name;
                run_softmax_case(&c);
            }
        }
    }
}
END_TEST

/* Row strides > nk, explicit and padded head strides, interleaved heads, padded per-head masks, per-head key
 * positions with k_stride 3. */
START_TEST(test_strided_layouts) {
    static const int64_t sizes[] = {5, 16, 33};
    char name[160];
    uint64_t variant = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        for (int in = 0; in < LAYOUT_COUNT; ++in) {
            for (int out = 0; out < LAYOUT_COUNT; ++out, ++variant) {
                softmax_case c = {0};
                c.n_heads = 3, c.nq = 4, c.nk = sizes[s], c.variant = variant;
                c.scores_layout = (layout)in, c.probs_layout = (layout)out;
                c.positions = variant % 2 ? POSITIONS_STRIDED : POSITIONS_PER_HEAD;
                c.mask = variant % 3 ? MASK_F32 : MASK_F16, c.mask_per_head = (int)(variant % 2);
                c.mask_padded = 1, c.lse = 1, c.sinks = (int)(variant % 2);
                snprintf(name, sizeof name, "strided: scores layout %d, probs layout %d, positions=%s", in, out,
                         positions_kind_names[c.positions]);
                c.name = name;
                run_softmax_case(&c);
            }
        }
    }
}
END_TEST

/* probs == scores with equal strides: contiguous, padded and interleaved, with and without every option. */
START_TEST(test_in_place) {
    static const int64_t sizes[] = {8, 19, 100};
    static const layout layouts[] = {LAYOUT_DEFAULT, LAYOUT_EXPLICIT, LAYOUT_PADDED, LAYOUT_INTERLEAVED};
    char name[120];
    uint64_t variant = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
        for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; ++l) {
            for (int all = 0; all <= 1; ++all, ++variant) {
                softmax_case c = {0};
                c.n_heads = 2, c.nq = 5, c.nk = sizes[s], c.variant = variant;
                c.in_place = 1, c.scores_layout = layouts[l];
                if (all) {
                    c.causal = 1, c.mask = MASK_F16, c.sinks = 1, c.lse = 1, c.softcap = 20.0f;
                    c.positions = POSITIONS_SHARED;
                }
                snprintf(name, sizeof name, "in place, layout %d%s", (int)layouts[l], all ? ", all options" : "");
                c.name = name;
                run_softmax_case(&c);
            }
        }
        softmax_case c = {0};
        c.name = "in place, misaligned";
        c.n_heads = 2, c.nq = 3, c.nk = sizes[s], c.in_place = 1, c.misalign = MIS_SCORES, c.lse = 1;
        run_softmax_case(&c);
    }
}
END_TEST

/* Partial row ranges write only their rows (and lse entries); empty ranges succeed and write nothing. */
START_TEST(test_row_ranges) {
    static const struct {
        int64_t begin, end;
    } ranges[] = {{0, 12}, {0, 1}, {5, 6}, {11, 12}, {1, 11}, {3, 9}, {4, 8}, {0, 0}, {5, 5}, {12, 12}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; ++k) {
        for (int padded = 0; padded <= 1; ++padded) {
            softmax_case c = {0};
            c.name = ranges[k].begin == ranges[k].end ? "empty row range" : "partial row range";
            c.n_heads = 3, c.nq = 4, c.nk = 9, c.lse = 1, c.sinks = 1, c.causal = 1;
            c.probs_layout = padded ? LAYOUT_PADDED : LAYOUT_DEFAULT;
            c.partial_rows = 1, c.row_begin = ranges[k].begin, c.row_end = ranges[k].end;
            /* A mask shared by the heads: ranges of more than nq rows run query by query, partial heads included. */
            c.mask = padded ? MASK_F16 : MASK_F32;
            c.variant = k * 2 + (uint64_t)padded;
            run_softmax_case(&c);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Values                                                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/* Logits across [-100, 100] (scale 1 and scale 1/8 on scores up to ±800), irregular float positions up to 1e6
 * (cumulative sums of random gaps) with the paper's slopes and with slopes down to 2^-40, zero-slope heads. */
START_TEST(test_logit_and_position_ranges) {
    static const float scales[] = {1.0f, 0.125f};
    static const float max_biases[] = {8.0f, 40.0f};
    static const positions_kind kinds[] = {POSITIONS_SHARED, POSITIONS_PER_HEAD, POSITIONS_STRIDED};
    uint64_t variant = 0;
    for (size_t s = 0; s < 2; ++s) {
        for (size_t b = 0; b < 2; ++b) {
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
                for (int causal = 0; causal <= 1; ++causal, ++variant) {
                    softmax_case c = {0};
                    c.name = "logits in [-100, 100], positions up to 1e6";
                    c.n_heads = 4, c.nq = 6, c.nk = 1000, c.variant = variant;
                    c.scale = scales[s], c.logit_range = 100.0, c.max_bias = max_biases[b];
                    c.zero_slope_heads = 1, c.positions = kinds[k], c.position_span = 1e6, c.causal = causal;
                    c.lse = 1, c.sinks = causal;
                    run_softmax_case(&c);
                }
            }
        }
    }
    /* Positions clustered near 1e6: the differences lose bits in float32, which the bound accounts for. */
    softmax_case c = {0};
    c.name = "positions near 1e6, narrow logits";
    c.n_heads = 3, c.nq = 4, c.nk = 300, c.logit_range = 10.0, c.max_bias = 16.0f;
    c.positions = POSITIONS_SHARED, c.position_span = 1e6, c.lse = 1;
    run_softmax_case(&c);
}
END_TEST

/* Windows at and beyond the row length, up to INT64_MAX (valid: any W > 0), with and without causal masking and
 * with nq > nk (negative diagonals): a window covering every key must behave as no window (no overflow in
 * i + nk - nq +- W). */
START_TEST(test_wide_windows) {
    static const int64_t windows[] = {1, 2, 9, 10, 11, 1000, INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
    static const struct {
        int64_t nq, nk;
    } shapes[] = {{4, 10}, {10, 10}, {14, 10}};
    uint64_t variant = 0;
    char name[80];
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; ++w) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s) {
            for (int causal = 0; causal <= 1; ++causal, ++variant) {
                softmax_case c = {0};
                snprintf(name, sizeof name, "window %" PRId64 "%s", windows[w], causal ? ", causal" : "");
                c.name = name;
                c.n_heads = 2, c.nq = shapes[s].nq, c.nk = shapes[s].nk, c.variant = variant;
                c.window = windows[w], c.causal = causal, c.lse = 1;
                run_softmax_case(&c);
            }
        }
    }
}
END_TEST

/* A zero slope turns the bias off even for infinite positions (no 0 * inf = NaN); with a nonzero slope an infinite
 * key position gives that key a bias of -inf and so probability 0. */
START_TEST(test_infinite_positions) {
    static const positions_kind kinds[] = {POSITIONS_SHARED, POSITIONS_PER_HEAD, POSITIONS_STRIDED,
                                           POSITIONS_KEYS_ONLY, POSITIONS_WEIGHTED};
    uint64_t variant = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
        for (int all_zero = 0; all_zero <= 1; ++all_zero, ++variant) {
            softmax_case c = {0};
            c.name = all_zero ? "infinite key positions, all slopes 0" : "infinite key positions, head 2 slope 0";
            c.n_heads = 3, c.nq = 4, c.nk = 21, c.variant = variant;
            c.positions = kinds[k], c.infinite_keys = 1, c.zero_slope_heads = all_zero ? 3 : 1, c.lse = 1;
            run_softmax_case(&c);
        }
    }
}
END_TEST

/* ggml mode (x = scale*S + m_h*M, positions NULL): a slope of 0 with a -inf mask entry must exclude the key, not
 * give 0 * (-inf) = NaN. */
START_TEST(test_mask_times_slope_with_zero_slope) {
    for (int mask = MASK_F32; mask <= MASK_F16; ++mask) {
        for (int per_head = 0; per_head <= 1; ++per_head) {
            softmax_case c = {0};
            c.name = "mask times slope, slope 0, -inf entries";
            c.n_heads = 2, c.nq = 6, c.nk = 19, c.variant = (uint64_t)(mask * 2 + per_head);
            c.mask = (mask_kind)mask, c.mask_per_head = per_head, c.mask_times_slope = 1, c.zero_slope_heads = 1;
            c.lse = 1;
            run_softmax_case(&c);
        }
    }
}
END_TEST

/* nq > nk with causal masking: the first nq - nk rows have no valid key, so they are all zeros with lse = -inf, or
 * with a sink all zeros with lse = sink (SPEC 3). Checked explicitly here, on top of the oracle in the sweeps. */
START_TEST(test_rows_without_valid_keys) {
    const int64_t H = 2, nq = 6, nk = 3;
    float scores[2 * 6 * 3], probs[2 * 6 * 3], lse[2 * 6];
    const float slopes[2] = {0.5f, 0.25f}, sinks[2] = {2.5f, -7.0f};
    for (int k = 0; k < 36; ++k) scores[k] = (float)(k % 5) - 2.0f;
    for (int with_sink = 0; with_sink <= 1; ++with_sink) {
        FOR_EACH_ISA(isa) {
            if (!enter_isa(isa)) continue;
            posattn_softmax_options o = {0};
            o.flags = POSATTN_CAUSAL, o.lse = lse, o.sinks = with_sink ? sinks : NULL;
            fill_untouched(probs, 36);
            fill_untouched(lse, 12);
            ck_assert_int_eq(
                posattn_alibi_softmax(H, nq, nk, scores, 0, 0, probs, 0, 0, 1.0f, slopes, NULL, &o, 0, H * nq),
                POSATTN_OK);
            for (int64_t h = 0; h < H; ++h) {
                for (int64_t i = 0; i < nq - nk; ++i) {
                    for (int64_t j = 0; j < nk; ++j) {
                        CHECK(probs[(h * nq + i) * nk + j] == 0.0f, "isa %s head %d row %d key %d: %a, expected 0",
                              posattn_isa_name(isa), (int)h, (int)i, (int)j, (double)probs[(h * nq + i) * nk + j]);
                    }
                    float got = lse[h * nq + i];
                    if (with_sink) {
                        CHECK(fabs(got - sinks[h]) <= lse_bound(fabs(sinks[h]), sinks[h]),
                              "isa %s head %d row %d: lse %.9g, expected the sink %.9g", posattn_isa_name(isa),
                              (int)h, (int)i, (double)got, (double)sinks[h]);
                    } else {
                        CHECK(got == -INFINITY, "isa %s head %d row %d: lse %a, expected -inf",
                              posattn_isa_name(isa), (int)h, (int)i, (double)got);
                    }
                }
                for (int64_t i = nq - nk; i < nq; ++i) { /* rows with keys: finite lse */
                    CHECK(isfinite(lse[h * nq + i]), "isa %s: row with keys has lse %a", posattn_isa_name(isa),
                          (double)lse[h * nq + i]);
                }
            }
        }
    }
}
END_TEST

/* SPEC 7 and the header: values are not scanned, so a NaN score makes its row NaN (every key the row actually
 * weighs, and its lse), as IEEE arithmetic says. Keys excluded by causal masking stay exactly 0, and the other
 * rows are unaffected. */
START_TEST(test_nan_score_makes_its_row_nan) {
    enum { H = 2, NQ = 3, NK = 37 };
    float scores[H * NQ * NK], probs[H * NQ * NK], lse[H * NQ];
    const float slopes[H] = {0.5f, 0.0625f};
    rng g = rng_seeded(test_case_seed(4242));
    for (int k = 0; k < H * NQ * NK; ++k) scores[k] = rng_float(&g, -10.0, 10.0);
    const int nan_head = 1, nan_row = 1, nan_key = 20;
    scores[(nan_head * NQ + nan_row) * NK + nan_key] = NAN;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        posattn_softmax_options o = {0};
        o.flags = POSATTN_CAUSAL, o.lse = lse;
        ck_assert_int_eq(posattn_alibi_softmax(H, NQ, NK, scores, 0, 0, probs, 0, 0, 0.5f, slopes, NULL, &o, 0, H * NQ),
                         POSATTN_OK);
        for (int h = 0; h < H; ++h) {
            for (int i = 0; i < NQ; ++i) {
                const float *row = probs + (h * NQ + i) * NK;
                int last_valid = i + NK - NQ, nan_row_here = h == nan_head && i == nan_row;
                double sum = 0.0;
                for (int j = 0; j < NK; ++j) {
                    if (j > last_valid) {
                        CHECK(row[j] == 0.0f, "isa %s: causally masked key %d of row %d/%d holds %a",
                              posattn_isa_name(isa), j, h, i, (double)row[j]);
                    } else if (nan_row_here) {
                        CHECK(isnan(row[j]), "isa %s: key %d of the row with a NaN score holds %a, expected NaN",
                              posattn_isa_name(isa), j, (double)row[j]);
                    } else {
                        CHECK(isfinite(row[j]), "isa %s: row %d/%d without NaN has %a", posattn_isa_name(isa), h, i,
                              (double)row[j]);
                        sum += row[j];
                    }
                }
                if (nan_row_here) {
                    CHECK(isnan(lse[h * NQ + i]), "isa %s: lse of the NaN row is %a", posattn_isa_name(isa),
                          (double)lse[h * NQ + i]);
                } else {
                    /* L <= 0.5 * 10 + 0.5 * (NK - 1) and d <= 2 L: the header's bound on every output */
                    double L = 0.5 * 10.0 + 0.5 * (NK - 1);
                    CHECK(fabs(sum - 1.0) <= softmax_rel_bound(L, 2.0 * L) + NK * SOFTMAX_ABS_BOUND &&
                              isfinite(lse[h * NQ + i]),
                          "isa %s: row %d/%d sums to %.9g", posattn_isa_name(isa), h, i, sum);
                }
            }
        }
    }
}
END_TEST

/* Long rows skip in pass 2 the keys a steep slope flushes (default positions, or positions shared by all heads that
 * are sorted): the same bits as the call that visits them, which positions given per head (never skipped) make.
 * Sorted positions with gaps and repeats, queries inside, past the end and before the start; a huge far score (it
 * sets the row's bound: nothing may be skipped that it would keep), a NaN and an infinite far score (skipping must
 * turn off), unsorted positions, causal rows, windows, sinks and lse, every ISA. */
enum { FAR_PLAIN, FAR_HUGE, FAR_NAN, FAR_INF };

static void run_far_keys_case(int64_t nk, int sorted_positions, int unsorted, int special, int causal, int64_t window,
                              uint64_t seed) {
    enum { H = 8, NQ = 3 };
    rng g = rng_seeded(test_case_seed(seed));
    const size_t n = (size_t)(H * NQ * nk);
    float *scores = malloc(n * sizeof *scores), *pa = malloc(n * sizeof *pa), *pb = malloc(n * sizeof *pb);
    float *k_shared = malloc((size_t)nk * sizeof(float)), *k_heads = malloc((size_t)(H * nk) * sizeof(float));
    float q_shared[NQ], q_heads[H * NQ], slopes[H], sinks[H], lse_a[H * NQ], lse_b[H * NQ];
    ck_assert(scores && pa && pb && k_shared && k_heads);
    ck_assert_int_eq(posattn_alibi_slopes(H, 8.0f, slopes), POSATTN_OK);
    for (int h = 0; h < H; ++h) sinks[h] = rng_float(&g, -2.0, 2.0);
    for (size_t k = 0; k < n; ++k) scores[k] = rng_float(&g, -16.0, 16.0);
    const int64_t far = nk / 7; /* far from every query below */
    for (int64_t r = 0; r < H * NQ; ++r) {
        float *row = scores + r * nk;
        if (special == FAR_HUGE && r % 3 == 0) row[far] = 3.0e4f;
        if (special == FAR_NAN && r == 4) row[far] = NAN;
        if (special == FAR_INF && r == 5) row[far] = INFINITY;
    }
    static const float gaps[] = {0.0f, 0.5f, 1.0f, 1.0f, 3.0f, 100.0f};
    float p = -50.0f;
    for (int64_t j = 0; j < nk; ++j) {
        k_shared[j] = sorted_positions ? p : (float)j;
        p += gaps[rng_below(&g, 6)];
    }
    if (unsorted) k_shared[nk / 2] = k_shared[nk - 1] + 1.0f;
    const float q_at[NQ] = {sorted_positions ? k_shared[nk / 3] + 0.25f : (float)(nk - NQ),
                            sorted_positions ? k_shared[nk - 1] + 40.0f : (float)(nk - NQ + 1),
                            sorted_positions ? -80.0f : (float)(nk - 1)};
    for (int i = 0; i < NQ; ++i) q_shared[i] = q_at[i];
    for (int h = 0; h < H; ++h) {
        memcpy(k_heads + h * nk, k_shared, (size_t)nk * sizeof(float));
        for (int i = 0; i < NQ; ++i) q_heads[h * NQ + i] = q_shared[i];
    }
    /* The default positions are q = nk - NQ + i and k = j: given per head, they take the path that never skips. */
    const posattn_positions shared = {.q = q_shared, .k = k_shared, .axes = 1};
    const posattn_positions per_head = {.q = q_heads, .k = k_heads, .axes = 1, .q_head_stride = NQ,
                                        .k_head_stride = nk};
    const int explicit_a = sorted_positions || unsorted;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        posattn_softmax_options o = {0};
        o.flags = causal ? POSATTN_CAUSAL : 0u, o.window = window, o.sinks = sinks;
        o.lse = lse_a;
        ck_assert_int_eq(posattn_alibi_softmax(H, NQ, nk, scores, 0, 0, pa, 0, 0, 0.125f, slopes,
                                               explicit_a ? &shared : NULL, &o, 0, H * NQ),
                         POSATTN_OK);
        o.lse = lse_b;
        ck_assert_int_eq(posattn_alibi_softmax(H, NQ, nk, scores, 0, 0, pb, 0, 0, 0.125f, slopes, &per_head, &o, 0,
                                               H * NQ),
                         POSATTN_OK);
        for (size_t k = 0; k < n; ++k) {
            if (!same_bits(pa[k], pb[k])) {
                CHECK(0, "isa %s, nk %" PRId64 " %s%s special %d causal %d window %" PRId64 ": row %zu key %zu: %a "
                      "with skipping, %a without", posattn_isa_name(isa), nk, sorted_positions ? "sorted" : "default",
                      unsorted ? " unsorted" : "", special, causal, window, k / (size_t)nk, k % (size_t)nk,
                      (double)pa[k], (double)pb[k]);
                break;
            }
        }
        for (int r = 0; r < H * NQ; ++r) {
            CHECK(same_bits(lse_a[r], lse_b[r]), "isa %s, nk %" PRId64 ": lse of row %d %a with skipping, %a without",
                  posattn_isa_name(isa), nk, r, (double)lse_a[r], (double)lse_b[r]);
        }
        if (special == FAR_NAN && !window) {
            CHECK(isnan(lse_a[4]), "isa %s: the row with a NaN score is not NaN", posattn_isa_name(isa));
        }
    }
    free(scores), free(pa), free(pb), free(k_shared), free(k_heads);
}

START_TEST(test_far_keys_skipped_exactly) {
    static const int64_t lengths[] = {4097, 5000, 9001, 20000};
    uint64_t seed = 7100;
    for (size_t a = 0; a < sizeof lengths / sizeof lengths[0]; ++a) {
        for (int sorted = 0; sorted <= 1; ++sorted) {
            for (int special = FAR_PLAIN; special <= FAR_INF; ++special) {
                run_far_keys_case(lengths[a], sorted, 0, special, (int)(a % 2), a == 2 ? 3000 : 0, seed++);
            }
        }
    }
    run_far_keys_case(9000, 1, 1, FAR_PLAIN, 0, 0, seed++); /* unsorted: not skipped, still the same */
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* SPEC 3 test vectors                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/* Calls the softmax on one row with slope 0 (no bias) and checks it against printed values, with the header's
 * bound (L = max |logit|, d_j = max - x_j from the printed logits). */
static void check_spec_row(const char *what, const float *scores, int64_t nk, float scale, const float *sink,
                           float softcap, const double *expected, double expected_lse, double L,
                           const double *logits, double expected_sink_mass) {
    const float slope = 0.0f;
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        guarded probs_g = guarded_output((size_t)nk, sizeof(float), 0), lse_g = guarded_output(1, sizeof(float), 0);
        float *probs = probs_g.data, *lse = lse_g.data;
        posattn_softmax_options o = {0};
        o.sinks = sink, o.softcap = softcap, o.lse = lse;
        ck_assert_int_eq(posattn_alibi_softmax(1, 1, nk, scores, 0, 0, probs, 0, 0, scale, &slope, NULL, &o, 0, 1),
                         POSATTN_OK);
        double mx = sink ? (double)*sink : -INFINITY;
        for (int64_t j = 0; j < nk; ++j) mx = fmax(mx, logits[j]);
        double sum = 0.0, sum_bound = 0.0;
        for (int64_t j = 0; j < nk; ++j) {
            double bound = softmax_rel_bound(L, mx - logits[j]) * expected[j] + SOFTMAX_ABS_BOUND;
            CHECK(fabs(probs[j] - expected[j]) <= bound, "%s isa %s key %d: %.9g, SPEC %.9g, bound %.3g", what,
                  posattn_isa_name(isa), (int)j, (double)probs[j], expected[j], bound);
            sum += probs[j];
            sum_bound += bound;
        }
        if (expected_sink_mass >= 0.0) { /* what the row lacks is the sink's share */
            /* + 2e-9: the SPEC rounded the four printed values */
            CHECK(fabs((1.0 - sum) - expected_sink_mass) <= sum_bound + 2e-9,
                  "%s isa %s: sink mass %.9g, SPEC %.9g", what, posattn_isa_name(isa), 1.0 - sum, expected_sink_mass);
        }
        CHECK(fabs(*lse - expected_lse) <= lse_bound(L, expected_lse), "%s isa %s: lse %.9g, expected %.9g", what,
              posattn_isa_name(isa), (double)*lse, expected_lse);
        guarded_check(&probs_g, what);
        guarded_check(&lse_g, what);
        guarded_free(&probs_g);
        guarded_free(&lse_g);
    }
}

/* SPEC 3: logits [1, 2, 3] -> [0.0900305732, 0.244728471, 0.665240956]; with sink 2.5 -> [0.0641476854,
 * 0.174371488, 0.473990846] (sink mass 0.287489981). The lse values are
 * log(e + e^2 + e^3) and log(e + e^2 + e^3 + e^2.5). */
START_TEST(test_spec_softmax_vectors) {
    const float scores[3] = {1.0f, 2.0f, 3.0f}, sink = 2.5f;
    const double logits[3] = {1.0, 2.0, 3.0};
    const double plain[3] = {0.0900305732, 0.244728471, 0.665240956};
    const double with_sink[3] = {0.0641476854, 0.174371488, 0.473990846};
    const double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0), es = exp(2.5);
    check_spec_row("SPEC [1, 2, 3]", scores, 3, 1.0f, NULL, 0.0f, plain, log(e1 + e2 + e3), 3.0, logits, -1.0);
    check_spec_row("SPEC [1, 2, 3] with sink 2.5", scores, 3, 1.0f, &sink, 0.0f, with_sink,
                   log(e1 + e2 + e3 + es), 3.0, logits, 0.287489981);
}
END_TEST

/* SPEC 3 softcap: cap 30, scale 0.125, score 400 -> 27.9332883. Observed as the lse of a 1-key row (lse = x), and
 * through a 2-key row [400, 0]: P_1 = 1 / (1 + e^27.9332883). */
START_TEST(test_spec_softcap_vector) {
    const double capped = 27.9332883;
    const float one_key[1] = {400.0f}, two_keys[2] = {400.0f, 0.0f};
    const double p_one[1] = {1.0}, logits_one[1] = {capped};
    check_spec_row("SPEC softcap, 1 key", one_key, 1, 0.125f, NULL, 30.0f, p_one, capped, capped, logits_one, -1.0);
    const double small = 1.0 / (1.0 + exp(capped));
    const double p_two[2] = {1.0 - small, small}, logits_two[2] = {capped, 0.0};
    check_spec_row("SPEC softcap, 2 keys", two_keys, 2, 0.125f, NULL, 30.0f, p_two, capped + log1p(exp(-capped)),
                   capped, logits_two, -1.0);
}
END_TEST

/* SPEC 2 and 3: KV cache, m = 0.5, nq = 2, nk = 5, scores 0, causal. The bias rows are [-1.5, -1, -0.5, 0, -0.5]
 * (key 4 masked) and [-2, -1.5, -1, -0.5, 0]; the probabilities are their softmax, computed here in double. */
START_TEST(test_spec_kv_cache_causal) {
    const double bias[2][5] = {{-1.5, -1.0, -0.5, 0.0, -0.5}, {-2.0, -1.5, -1.0, -0.5, 0.0}};
    const int valid_keys[2] = {4, 5};
    const float slope = 0.5f, scores[10] = {0};
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        float probs[10];
        posattn_softmax_options o = {0};
        o.flags = POSATTN_CAUSAL;
        ck_assert_int_eq(posattn_alibi_softmax(1, 2, 5, scores, 0, 0, probs, 0, 0, 1.0f, &slope, NULL, &o, 0, 2),
                         POSATTN_OK);
        for (int i = 0; i < 2; ++i) {
            double sum = 0.0;
            for (int j = 0; j < valid_keys[i]; ++j) sum += exp(bias[i][j]);
            for (int j = 0; j < 5; ++j) {
                if (j >= valid_keys[i]) {
                    CHECK(probs[i * 5 + j] == 0.0f, "isa %s: masked key %d of row %d is %a", posattn_isa_name(isa),
                          j, i, (double)probs[i * 5 + j]);
                    continue;
                }
                double expected = exp(bias[i][j]) / sum;
                double bound = softmax_rel_bound(2.0, -bias[i][j]) * expected + SOFTMAX_ABS_BOUND;
                CHECK(fabs(probs[i * 5 + j] - expected) <= bound, "isa %s row %d key %d: %.9g, expected %.9g",
                      posattn_isa_name(isa), i, j, (double)probs[i * 5 + j], expected);
            }
        }
    }
}
END_TEST

/* The test's own float -> binary16 conversion, which the f16 mask tests rely on. */
START_TEST(test_f16_conversion) {
    static const struct {
        float f;
        uint16_t h;
    } known[] = {
        {0.0f, 0x0000},         {-0.0f, 0x8000},         {1.0f, 0x3C00},        {-2.0f, 0xC000},
        {0.5f, 0x3800},         {65504.0f, 0x7BFF},      {65519.0f, 0x7BFF},    {65520.0f, 0x7C00},
        {1e6f, 0x7C00},         {-1e6f, 0xFC00},         {INFINITY, 0x7C00},    {-INFINITY, 0xFC00},
        {0x1p-14f, 0x0400},     {0x1p-24f, 0x0001},      {0x1p-25f, 0x0000},    {0x1.8p-25f, 0x0001},
        {0x1.8p-24f, 0x0002},   {0x1p-15f, 0x0200},      {0.1f, 0x2E66},        {-3.140625f, 0xC248},
        {1.0009765625f, 0x3C01}, {1.00048828125f, 0x3C00}, {1.00146484375f, 0x3C02}, {0x1.ffcp-15f, 0x0400},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; ++k) {
        uint16_t h = f32_to_f16(known[k].f);
        ck_assert_msg(h == known[k].h, "f32_to_f16(%a) = 0x%04x, expected 0x%04x", (double)known[k].f, h,
                      known[k].h);
    }
    ck_assert(isnan(f16_to_f64(f32_to_f16(NAN))));
    ck_assert(f16_to_f64(0xFC00) == -INFINITY);
    ck_assert(f16_to_f64(0x0001) == 0x1p-24);
    ck_assert(f16_to_f64(0x3555) == 0x1.554p-2);
    /* Round trip of every finite binary16 value. */
    for (uint32_t h = 0; h < 0x10000u; ++h) {
        if ((h & 0x7C00u) == 0x7C00u) continue;
        double v = f16_to_f64((uint16_t)h);
        uint16_t back = f32_to_f16((float)v);
        CHECK(back == h || (v == 0.0 && (back & 0x7FFFu) == 0), "binary16 0x%04x -> %a -> 0x%04x", h, v, back);
    }
}
END_TEST

static Suite *softmax_suite(void) {
    Suite *s = suite_create("softmax");
    TCase *vectors = make_tcase("spec_vectors");
    tcase_add_test(vectors, test_f16_conversion);
    tcase_add_test(vectors, test_spec_softmax_vectors);
    tcase_add_test(vectors, test_spec_softcap_vector);
    tcase_add_test(vectors, test_spec_kv_cache_causal);
    suite_add_tcase(s, vectors);

    TCase *sweeps = make_tcase("sweeps");
    tcase_add_test(sweeps, test_option_combinations);
    tcase_add_test(sweeps, test_sizes);
    tcase_add_test(sweeps, test_row_of_2_20_keys);
    suite_add_tcase(s, sweeps);

    TCase *layouts = make_tcase("layouts");
    tcase_add_test(layouts, test_misaligned_pointers);
    tcase_add_test(layouts, test_strided_layouts);
    tcase_add_test(layouts, test_in_place);
    tcase_add_test(layouts, test_row_ranges);
    suite_add_tcase(s, layouts);

    TCase *values = make_tcase("values");
    tcase_add_test(values, test_logit_and_position_ranges);
    tcase_add_test(values, test_wide_windows);
    tcase_add_test(values, test_infinite_positions);
    tcase_add_test(values, test_mask_times_slope_with_zero_slope);
    tcase_add_test(values, test_rows_without_valid_keys);
    tcase_add_test(values, test_nan_score_makes_its_row_nan);
    tcase_add_test(values, test_far_keys_skipped_exactly);
    suite_add_tcase(s, values);
    return s;
}

int main(void) {
    return run_suite(softmax_suite());
}
