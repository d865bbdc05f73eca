/*
 * Part of alibi_generic.h (included from there, after the vector layer and alibi_generic_positions.h): the fused
 * bias-add-softmax row. A row is three passes over [lo, hi), each in groups of 4 vectors (4 independent dependency
 * chains in flight) then single vectors and one partial vector at the end:
 *   pass 1  the logits and their maximum (the logits stored into probs when pass 2 is to reload them);
 *   pass 2  exp(x - max), flushed, stored and summed: float32 partial sums of at most 16 terms per lane, widened
 *           into float64 (so the denominator is within 16 u for any row length, the budget of the Accuracy
 *           paragraph of posattn_alibi_softmax); groups whose every lane flushes skip the polynomial;
 *   pass 3  the scaling by 1/sum, with the output flush decided before the multiply.
 * Keys outside [lo, hi) are written as 0 first (they are never read, so this is safe in place too). Then the sink,
 * the lse, and the two rules for rows without a finite maximum (empty rows, NaN).
 */
#ifndef ALIBI_ISA
#error "include alibi_generic.h, not this file"
#endif

enum { MASK_NONE, MASK_F32, MASK_F16 };

static inline int mask_mode(const posattn_softmax_row *row) {
    return !row->mask ? MASK_NONE : row->mask_is_f16 ? MASK_F16 : MASK_F32;
}

/* Up to this many keys a row's scores and probs (32 KiB) stay in L1, where storing the logits in pass 1 and
 * reloading them in pass 2 costs less than forming them again (11-13% faster at 512 and 4096 keys on AVX-512).
 * Longer rows live in L2 or memory, where the extra write stream costs more than the arithmetic it saves. A layer
 * whose logits cost more than that traffic at any length defines its own value before including (AVX2). */
#ifndef POSATTN_STORED_LOGITS_MAX_KEYS
#define POSATTN_STORED_LOGITS_MAX_KEYS 4096
#endif

/* ---------------------------------------------------------------------------------------------------------- */
/* Logits                                                                                                       */
/* ---------------------------------------------------------------------------------------------------------- */

/* What a row's logits are made of. Scalars only, copied from the row (whose fields could alias probs as far as
 * the compiler knows): broadcasting them in the loops costs nothing once the compiler hoists the broadcasts. */
typedef struct alibi_logits {
    const float *scores;
    const void *mask;
    float scale, softcap, slope, q_pos, mask_scale;
    alibi_keys keys;
    alibi_nd nd; /* N-D rows only */
} alibi_logits;

/* Logits of keys j..j+n-1 (full: n == V) with the scalar logit()'s roundings (see alibi_generic.h). When full is
 * 0, only the elements of lanes [0, n) are read and the other lanes hold anything. keys, mask and softcap are
 * compile-time constants in the specialised variants. */
ALIBI_INLINE vf logits(const alibi_logits *c, int keys, int mask, int softcap, int64_t j, int64_t n, int full,
                       vf qk) {
    vf x = vf_mul(vf_set1(c->scale), full ? vf_load(c->scores + j) : vf_load_part(c->scores + j, n));
    if (softcap) x = vf_mul(vf_set1(c->softcap), vf_tanh(vf_div(x, vf_set1(c->softcap))));
    if (keys >= KEYS_ND) {
        vf dist = nd_distance(&c->nd, KEYS_ND_AXES(keys), KEYS_ND_L2(keys), j, n);
        x = vf_sub_mul(x, vf_set1(c->slope), dist);
    } else if (keys != KEYS_NONE) {
        x = vf_sub_mul(x, vf_set1(c->slope), key_distances(&c->keys, keys, c->q_pos, j, n, full, qk));
    }
    if (mask != MASK_NONE) {
        vf m;
        if (mask == MASK_F32) {
            const float *p = (const float *)c->mask + j;
            m = full ? vf_load(p) : vf_load_part(p, n);
        } else {
            const uint16_t *p = (const uint16_t *)c->mask + j;
            m = full ? vf_load_f16(p) : vf_load_f16_part(p, n);
        }
        /* An entry of -inf excludes its key whatever x is (0 * -inf, a zero slope in ggml mode, is discarded). */
        const vf neg_inf = vf_set1(-INFINITY);
        x = vf_select(vm_eq(m, neg_inf), neg_inf, vf_add_mul(x, vf_set1(c->mask_scale), m));
    }
    return x;
}

/* The last, partial vector of a row: lanes past its end hold -inf, which neither the max nor the sum sees. */
ALIBI_INLINE vf logits_tail(const alibi_logits *c, int keys, int mask, int softcap, int64_t j, int64_t n, vf qk) {
    return vf_select(vm_first(n), logits(c, keys, mask, softcap, j, n, 0, qk), vf_set1(-INFINITY));
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Exponential                                                                                                  */
/* ---------------------------------------------------------------------------------------------------------- */

/* exp(d) for d <= 0 in the lanes of keep, exactly 0 elsewhere: the polynomial of exp_f32.h (below 2 ulp on
 * [-87, 0]). The caller's keep holds the lanes with d >= POSATTN_EXP_FLUSH_BELOW, and NaN. The argument is first
 * clamped at the flush threshold (a NaN stays NaN), so that n >= -126 and p 2^n >= e^-87 > FLT_MIN in every lane:
 * no lane, kept or not, forms a subnormal (each would cost a microcode assist on x86), and -inf (masked keys)
 * never reaches the arithmetic. */
ALIBI_INLINE vf exp_flushed(vf d, vm keep) {
    d = vf_max_nan(vf_set1(POSATTN_EXP_FLUSH_BELOW), d);
    /* Adding the shifter rounds d log2(e) to the nearest integer n, once, and leaves n + 127 (the biased exponent
     * of 2^n) in the low mantissa bits of t. */
    const vf t = vf_fma(d, vf_set1(POSATTN_EXP_LOG2E), vf_set1(POSATTN_EXP_SHIFTER));
    const vf n = vf_sub(t, vf_set1(POSATTN_EXP_SHIFTER));
    /* Cody-Waite: n LN2_HI is exact, so r carries only the rounding of the second step. */
    vf r = vf_fnma(n, vf_set1(POSATTN_EXP_LN2_HI), d);
    r = vf_fnma(n, vf_set1(POSATTN_EXP_LN2_LO), r);
    vf p = vf_fma(vf_set1(POSATTN_EXP_P0), r, vf_set1(POSATTN_EXP_P1));
    p = vf_fma(p, r, vf_set1(POSATTN_EXP_P2));
    p = vf_fma(p, r, vf_set1(POSATTN_EXP_P3));
    p = vf_fma(p, r, vf_set1(POSATTN_EXP_P4));
    p = vf_fma(p, r, vf_set1(POSATTN_EXP_P5));
    /* 1 + r + r^2 P(r) as 1 + r (1 + r P(r)): two FMAs, no r^2 (which would underflow for tiny r), and the last
     * rounding is that of the result; exactly 1 at d = 0. */
    p = vf_fma(p, r, vf_set1(1.0f));
    p = vf_fma(p, r, vf_set1(1.0f));
    return vf_pow2_mulz(keep, p, n, t);
}

/* The flush rule applied to the sink, with the scalar reference's libm expf (one call per row, on every ISA). */
static inline float flushed_expf(float x) {
    return x < POSATTN_EXP_FLUSH_BELOW ? 0.0f : expf(x);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The three passes                                                                                             */
/* ---------------------------------------------------------------------------------------------------------- */

static inline void fill_f32(float *dst, int64_t begin, int64_t end, float value) {
    const int64_t V = ALIBI_LANES;
    int64_t j = begin;
    for (; j + V <= end; j += V) vf_store(dst + j, vf_set1(value));
    if (j < end) vf_store_part(dst + j, vf_set1(value), end - j);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Keys that pass 2 need not visit                                                                              */
/* ---------------------------------------------------------------------------------------------------------- */

/* A long row's passes form every logit (scores and key positions read) to find most of them far below the maximum
 * under a steep slope. With A the largest scaled score fl(scale s_j) of the row (pass 0, which reads the scores
 * only), a key's logit is at most A - m d after the roundings' margin (d its distance to the query, m the slope).
 * So pass 1 needs only the keys nearer than D1 = (A - L0)/m, L0 a lower bound on the nearest key's logit (no key
 * beyond can be the maximum), and pass 2 only those nearer than D = (A - mx - F)/m, F the flush threshold (every
 * key beyond has probability exactly 0: pass 2 writes its zero without looking). Both are found arithmetically for
 * the default positions and by binary search for sorted ones, and give the same bits as visiting every key. A NaN
 * or infinite score turns this off (NaN must reach the sum). Rows without a mask or a softcap, with a slope > 0,
 * 1-D positions that are the default ones (exact iota) or sorted and contiguous, too long to store their logits. */
static inline int far_skip_possible(int keys, int mask, int softcap) {
    return (keys == KEYS_IOTA || keys == KEYS_CONTIGUOUS) && mask == MASK_NONE && !softcap;
}

/* Pass 0: A over [lo, hi), or NaN when a score is NaN or infinite (a - a is then NaN, and the sum of them). */
ALIBI_INLINE float pass0_scores_max(const alibi_logits *c, int64_t lo, int64_t hi) {
    const int64_t V = ALIBI_LANES;
    const vf scale = vf_set1(c->scale);
    vf max0 = vf_set1(-INFINITY), max1 = max0, special0 = vf_zero(), special1 = special0;
    int64_t j = lo;
    for (; j + 2 * V <= hi; j += 2 * V) {
        const vf a0 = vf_mul(scale, vf_load(c->scores + j)), a1 = vf_mul(scale, vf_load(c->scores + j + V));
        max0 = vf_max_ign(max0, a0);
        max1 = vf_max_ign(max1, a1);
        special0 = vf_add(special0, vf_sub(a0, a0));
        special1 = vf_add(special1, vf_sub(a1, a1));
    }
    for (; j < hi; j += V) {
        const int64_t n = hi - j < V ? hi - j : V;
        const vf a = vf_select(vm_first(n), vf_mul(scale, vf_load_part(c->scores + j, n)), vf_set1(-INFINITY));
        max0 = vf_max_ign(max0, a);
        special0 = vf_add(special0, vf_select(vm_first(n), vf_sub(a, a), vf_zero()));
    }
    const double special = vd_reduce_add(vd_widen_add(vd_widen_add(vd_zero(), special0), special1));
    return special == 0.0 ? vf_reduce_max(vf_max_ign(max0, max1)) : NAN;
}

/* The keys of [lo, hi) at distance at most D from the query: [*first, *end). */
static inline void keys_within(const posattn_softmax_row *row, int keys, double D, int64_t lo, int64_t hi,
                               int64_t *first, int64_t *end) {
    const double q = (double)row->q_pos;
    *first = lo, *end = hi;
    if (!(D < 0x1p60)) return;
    if (keys == KEYS_IOTA) { /* key j at j */
        const double a = floor(q - D), b = ceil(q + D) + 1.0;
        if (a > (double)lo) *first = a < (double)hi ? (int64_t)a : hi;
        if (b < (double)hi) *end = b > (double)*first ? (int64_t)b : *first;
        return;
    }
    /* Sorted positions: from the first key with k_j >= q - D to the first with k_j > q + D. */
    const float *k = row->keys.k_pos;
    int64_t a = lo, b = hi;
    while (a < b) {
        const int64_t mid = a + (b - a) / 2;
        if ((double)k[mid] < q - D) a = mid + 1; else b = mid;
    }
    *first = a;
    b = hi;
    while (a < b) {
        const int64_t mid = a + (b - a) / 2;
        if ((double)k[mid] <= q + D) a = mid + 1; else b = mid;
    }
    *end = a;
}

/* The keys pass 1 must visit: those within D1 of the query. With u = 2^-24 the kernel's logit of a key at distance
 * d with scaled score a is x = fl(a - fl(m fl(d))): at least L0 = a - m d (1 + 4u) - 2u (|a| + m d) for the
 * nearest key, and for a key with m d (1 - u)^2 >= A - L0 + e1, e1 = 2u (|L0| + 1), at most fl(L0 - e1) < L0
 * (fl is monotone). D1 is formed in float64 and enlarged by 2^-40 relative for its own roundings. */
static inline void far_max_keys(const posattn_softmax_row *row, int keys, float score_max, int64_t lo, int64_t hi,
                                int64_t *first, int64_t *end) {
    *first = lo, *end = hi;
    const double u = 0x1p-24, m = (double)row->slope, q = (double)row->q_pos;
    if (!(score_max == score_max) || !isfinite(row->q_pos) || lo >= hi) return;
    int64_t near;
    if (keys == KEYS_IOTA) {
        near = q <= (double)lo ? lo : q >= (double)(hi - 1) ? hi - 1 : (int64_t)q;
    } else {
        int64_t a, b;
        keys_within(row, keys, 0.0, lo, hi, &a, &b); /* a: the first key at or past q */
        near = a == hi || (a > lo && q - (double)row->keys.k_pos[a - 1] < (double)row->keys.k_pos[a] - q) ? a - 1 : a;
    }
    const double k_near = keys == KEYS_IOTA ? (double)near : (double)row->keys.k_pos[near];
    const double a_near = (double)(row->scale * row->scores[near]), md = m * fabs(q - k_near);
    const double L0 = a_near - md * (1.0 + 4.0 * u) - 2.0 * u * (fabs(a_near) + md);
    const double D1 = ((double)score_max - L0 + 2.0 * u * (fabs(L0) + 1.0)) / (m * (1.0 - u) * (1.0 - u));
    keys_within(row, keys, D1 * (1.0 + 0x1p-40), lo, hi, first, end);
}

/* The keys pass 2 must visit: those nearer than D. A key at distance d has a bias of at least m d (1 - u)^2 after
 * its roundings, so x_j = fl(a_j - b_j) <= fl(mx + F - e) and fl(x_j - mx) < F once e > 4 u (|mx| + 2 |F| + 1),
 * the two roundings' worst case (every quantity here is far above the subnormals). D is formed in float64 and
 * enlarged by 2^-40 relative. */
static inline void far_near_keys(const posattn_softmax_row *row, int keys, float score_max, float mx, int64_t lo,
                                 int64_t hi, int64_t *near_lo, int64_t *near_hi) {
    *near_lo = lo, *near_hi = hi;
    const double F = (double)POSATTN_EXP_FLUSH_BELOW, u = 0x1p-24, m = (double)row->slope;
    if (!(score_max == score_max) || !isfinite(mx) || !isfinite(row->q_pos)) return;
    const double e = 4.0 * u * (fabs((double)mx) + 2.0 * fabs(F) + 1.0);
    const double t = (double)score_max - (double)mx - F + e;
    const double D = t / (m * (1.0 - u) * (1.0 - u)) * (1.0 + 0x1p-40);
    keys_within(row, keys, D < 0.0 ? 0.0 : D, lo, hi, near_lo, near_hi);
}

/* Pass 1: the maximum of the logits of [lo, hi), -inf when there is none; with `stored`, the logits go to probs.
 * vf_max_ign skips NaN as fmaxf does: NaN reaches the sum through exp instead, except in a row whose maximum is
 * -inf, which the caller checks. */
ALIBI_INLINE float pass1_logits_max(const alibi_logits *c, int keys, int mask, int softcap, int stored,
                                    float *probs, int64_t lo, int64_t hi, vf qk_lo) {
    const int64_t V = ALIBI_LANES;
    vf max0 = vf_set1(-INFINITY), max1 = max0, max2 = max0, max3 = max0;
    vf qk0 = qk_lo;
    int64_t j = lo;
    for (; j + 4 * V <= hi; j += 4 * V) {
        const vf qk1 = vf_sub(qk0, vf_set1((float)V));
        const vf qk2 = vf_sub(qk1, vf_set1((float)V));
        const vf qk3 = vf_sub(qk2, vf_set1((float)V));
        const vf x0 = logits(c, keys, mask, softcap, j, V, 1, qk0);
        const vf x1 = logits(c, keys, mask, softcap, j + V, V, 1, qk1);
        const vf x2 = logits(c, keys, mask, softcap, j + 2 * V, V, 1, qk2);
        const vf x3 = logits(c, keys, mask, softcap, j + 3 * V, V, 1, qk3);
        if (stored) {
            vf_store(probs + j, x0);
            vf_store(probs + j + V, x1);
            vf_store(probs + j + 2 * V, x2);
            vf_store(probs + j + 3 * V, x3);
        }
        max0 = vf_max_ign(max0, x0);
        max1 = vf_max_ign(max1, x1);
        max2 = vf_max_ign(max2, x2);
        max3 = vf_max_ign(max3, x3);
        qk0 = vf_sub(qk0, vf_set1((float)(4 * V)));
    }
    for (; j + V <= hi; j += V) {
        const vf x = logits(c, keys, mask, softcap, j, V, 1, qk0);
        if (stored) vf_store(probs + j, x);
        max0 = vf_max_ign(max0, x);
        qk0 = vf_sub(qk0, vf_set1((float)V));
    }
    if (j < hi) {
        const vf x = logits_tail(c, keys, mask, softcap, j, hi - j, qk0);
        if (stored) vf_store_part(probs + j, x, hi - j);
        max1 = vf_max_ign(max1, x);
    }
    return vf_reduce_max(vf_max_ign(vf_max_ign(max0, max1), vf_max_ign(max2, max3)));
}

/* Whether a logit of [lo, hi) is NaN: the rare check behind a maximum of -inf, which vf_max_ign may have reached
 * by skipping NaN, so that a NaN logit makes its row NaN on every ISA. */
ALIBI_INLINE int logits_have_nan(const alibi_logits *c, int keys, int mask, int softcap, int stored,
                                 const float *probs, int64_t lo, int64_t hi, vf qk_lo) {
    const int64_t V = ALIBI_LANES;
    vf qk = qk_lo;
    for (int64_t j = lo; j < hi; j += V) {
        const int64_t n = hi - j < V ? hi - j : V;
        vf x = stored ? vf_load_part(probs + j, n) : logits(c, keys, mask, softcap, j, n, 0, qk);
        if (vm_any(vm_isnan(vf_select(vm_first(n), x, vf_zero())))) return 1;
        qk = vf_sub(qk, vf_set1((float)V));
    }
    return 0;
}

/* Pass 2: probs[j] = exp(x_j - mx) (flushed) over [lo, hi), and their sum. Lanes with d < -87 are 0 by the flush
 * rule (an ordered compare: NaN is never flushed), so a group where every lane is below needs only its zeros
 * stored. [*live_lo, *live_hi) receives the span of the groups that were not skipped, so pass 3 does not rescale
 * stored zeros. The logits are reloaded when pass 1 stored them, else formed again with the same roundings (the
 * softcap, which always stores, is not needed here). */
ALIBI_INLINE double pass2_exp_sum(const alibi_logits *c, int keys, int mask, int stored, float *probs, int64_t lo,
                                  int64_t hi, float mx, vf qk_lo, posattn_row_prefetch *pf, int64_t *live_lo,
                                  int64_t *live_hi) {
    const int64_t V = ALIBI_LANES;
    const int lines = V >= 8 ? (int)(V / 4) : 1; /* cache lines per group of 4 vectors */
    const vf mxv = vf_set1(mx), flush = vf_set1(POSATTN_EXP_FLUSH_BELOW);
    vd sum0 = vd_zero(), sum1 = vd_zero();
    vf acc0 = vf_zero(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int terms = 0;
    int64_t first = hi, last = lo;
    vf qk0 = qk_lo;
    int64_t j = lo;
    for (; j + 4 * V <= hi; j += 4 * V) {
        posattn_row_prefetch_next(pf, lines); /* the next row: as many lines as this group covers */
        vf x0, x1, x2, x3;
        if (stored) {
            x0 = vf_load(probs + j);
            x1 = vf_load(probs + j + V);
            x2 = vf_load(probs + j + 2 * V);
            x3 = vf_load(probs + j + 3 * V);
        } else {
            const vf qk1 = vf_sub(qk0, vf_set1((float)V));
            const vf qk2 = vf_sub(qk1, vf_set1((float)V));
            const vf qk3 = vf_sub(qk2, vf_set1((float)V));
            x0 = logits(c, keys, mask, 0, j, V, 1, qk0);
            x1 = logits(c, keys, mask, 0, j + V, V, 1, qk1);
            x2 = logits(c, keys, mask, 0, j + 2 * V, V, 1, qk2);
            x3 = logits(c, keys, mask, 0, j + 3 * V, V, 1, qk3);
            qk0 = vf_sub(qk0, vf_set1((float)(4 * V)));
        }
        const vf d0 = vf_sub(x0, mxv), d1 = vf_sub(x1, mxv), d2 = vf_sub(x2, mxv), d3 = vf_sub(x3, mxv);
        const vm keep0 = vm_nlt(d0, flush), keep1 = vm_nlt(d1, flush);
        const vm keep2 = vm_nlt(d2, flush), keep3 = vm_nlt(d3, flush);
        if (!vm_any(vm_or(vm_or(keep0, keep1), vm_or(keep2, keep3)))) {
            /* Far from the maximum (distant keys under a steep slope, masked spans): all exactly 0. */
            vf_store(probs + j, vf_zero());
            vf_store(probs + j + V, vf_zero());
            vf_store(probs + j + 2 * V, vf_zero());
            vf_store(probs + j + 3 * V, vf_zero());
            continue;
        }
        const vf e0 = exp_flushed(d0, keep0), e1 = exp_flushed(d1, keep1);
        const vf e2 = exp_flushed(d2, keep2), e3 = exp_flushed(d3, keep3);
        vf_store(probs + j, e0);
        vf_store(probs + j + V, e1);
        vf_store(probs + j + 2 * V, e2);
        vf_store(probs + j + 3 * V, e3);
        acc0 = vf_add(acc0, e0);
        acc1 = vf_add(acc1, e1);
        acc2 = vf_add(acc2, e2);
        acc3 = vf_add(acc3, e3);
        if (j < first) first = j;
        last = j + 4 * V;
        if (++terms == 16) {
            sum0 = vd_widen_add(sum0, acc0);
            sum1 = vd_widen_add(sum1, acc1);
            sum0 = vd_widen_add(sum0, acc2);
            sum1 = vd_widen_add(sum1, acc3);
            acc0 = acc1 = acc2 = acc3 = vf_zero();
            terms = 0;
        }
    }
    sum0 = vd_widen_add(sum0, acc0);
    sum1 = vd_widen_add(sum1, acc1);
    sum0 = vd_widen_add(sum0, acc2);
    sum1 = vd_widen_add(sum1, acc3);
    /* At most 3 whole vectors and a partial one are left: at most 4 terms per lane of acc0. */
    acc0 = vf_zero();
    for (; j < hi; j += V) {
        const int full = hi - j >= V;
        const int64_t n = full ? V : hi - j;
        vf x;
        if (stored) {
            x = full ? vf_load(probs + j) : vf_select(vm_first(n), vf_load_part(probs + j, n), vf_set1(-INFINITY));
        } else {
            x = full ? logits(c, keys, mask, 0, j, V, 1, qk0) : logits_tail(c, keys, mask, 0, j, n, qk0);
            qk0 = vf_sub(qk0, vf_set1((float)V));
        }
        const vf d = vf_sub(x, mxv);
        const vm keep = vm_nlt(d, flush);
        vf e = vf_zero();
        if (vm_any(keep)) {
            e = exp_flushed(d, keep);
            acc0 = vf_add(acc0, e);
            if (j < first) first = j;
            last = j + n;
        }
        if (full) {
            vf_store(probs + j, e);
        } else {
            vf_store_part(probs + j, e, n);
        }
    }
    sum0 = vd_widen_add(sum0, acc0);
    *live_lo = first, *live_hi = last;
    return vd_reduce_add(vd_add(sum0, sum1));
}

/* Pass 3: probs[j] = e_j / sum over [lo, hi) as e_j * inv, inv = 1/sum rounded once from float64 (0.5 u) and the
 * product once more (0.5 u). Outputs below POSATTN_OUTPUT_FLUSH_BELOW are 0, decided before the multiply could
 * form a subnormal (a microcode assist of about 100 cycles per vector on Intel): e_j / sum < 2^-125 exactly when
 * e_j < 2^-125 sum, and for a float e_j exactly when e_j is below that product rounded up to float, so the decision
 * is the scalar path's. A NaN (e_j or sum) is never flushed. */
static inline float output_floor(double sum) {
    const double floor_f64 = (double)POSATTN_OUTPUT_FLUSH_BELOW * sum; /* a power of 2 times sum: exact */
    float floor_f32 = (float)floor_f64;
    if ((double)floor_f32 < floor_f64) floor_f32 = nextafterf(floor_f32, INFINITY);
    return floor_f32;
}

ALIBI_INLINE void pass3_scale(float *probs, int64_t lo, int64_t hi, double sum) {
    const int64_t V = ALIBI_LANES;
    const vf inv = vf_set1((float)(1.0 / sum)), below = vf_set1(output_floor(sum));
    int64_t j = lo;
    for (; j + 4 * V <= hi; j += 4 * V) {
        const vf e0 = vf_load(probs + j), e1 = vf_load(probs + j + V);
        const vf e2 = vf_load(probs + j + 2 * V), e3 = vf_load(probs + j + 3 * V);
        vf_store(probs + j, vf_mulz(vm_nlt(e0, below), e0, inv));
        vf_store(probs + j + V, vf_mulz(vm_nlt(e1, below), e1, inv));
        vf_store(probs + j + 2 * V, vf_mulz(vm_nlt(e2, below), e2, inv));
        vf_store(probs + j + 3 * V, vf_mulz(vm_nlt(e3, below), e3, inv));
    }
    for (; j + V <= hi; j += V) {
        const vf e = vf_load(probs + j);
        vf_store(probs + j, vf_mulz(vm_nlt(e, below), e, inv));
    }
    if (j < hi) {
        const vf e = vf_load_part(probs + j, hi - j);
        vf_store_part(probs + j, vf_mulz(vm_nlt(e, below), e, inv), hi - j);
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The row                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

/* A row of at most 2 vectors of valid keys (decode over a short cache, a local window), all three passes in
 * registers: a long row's passes cost about 40 ns of fixed work per row (loop set-up, prefetch plan, stores and
 * reloads), more than 16 keys' arithmetic. The same operations in the same order as the passes, so the same bits:
 * the logits, their maximum, exp_flushed, the float32 sum of at most 2 terms per lane widened once, the output
 * flush and the scaling. c holds the row's logit fields; [lo, hi) is not empty. */
ALIBI_INLINE void softmax_row_short(const posattn_softmax_row *row, const alibi_logits *c, int keys, int mask,
                                    int softcap, vf qk_lo) {
    const int64_t V = ALIBI_LANES, lo = row->lo, hi = row->hi;
    const int64_t n0 = hi - lo < V ? hi - lo : V, n1 = hi - lo - n0;
    const vf x0 = n0 == V ? logits(c, keys, mask, softcap, lo, V, 1, qk_lo)
                          : logits_tail(c, keys, mask, softcap, lo, n0, qk_lo);
    const vf qk1 = vf_sub(qk_lo, vf_set1((float)V));
    const vf x1 = n1 == V   ? logits(c, keys, mask, softcap, lo + V, V, 1, qk1)
                  : n1 > 0 ? logits_tail(c, keys, mask, softcap, lo + V, n1, qk1)
                           : vf_set1(-INFINITY);
    float mx = vf_reduce_max(vf_max_ign(x0, x1));
    int sink_is_nan = 0;
    if (row->has_sink) {
        sink_is_nan = isnan(row->sink);
        mx = fmaxf(mx, row->sink);
    }
    float *probs = row->probs;
    if (mx == -INFINITY) { /* as in softmax_row_body */
        const int has_nan = sink_is_nan || vm_any(vm_or(vm_isnan(x0), vm_isnan(x1)));
        fill_f32(probs, lo, hi, has_nan ? NAN : 0.0f);
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }
    const vf mxv = vf_set1(mx), flush = vf_set1(POSATTN_EXP_FLUSH_BELOW);
    const vf d0 = vf_sub(x0, mxv), d1 = vf_sub(x1, mxv);
    const vm keep0 = vm_nlt(d0, flush), keep1 = vm_nlt(d1, flush);
    const vf e0 = vm_any(keep0) ? exp_flushed(d0, keep0) : vf_zero();
    const vf e1 = vm_any(keep1) ? exp_flushed(d1, keep1) : vf_zero();
    double sum = vd_reduce_add(vd_widen_add(vd_zero(), vf_add(vf_add(vf_zero(), e0), e1)));
    if (row->has_sink) sum += (double)flushed_expf(row->sink - mx);
    const vf inv = vf_set1((float)(1.0 / sum)), below = vf_set1(output_floor(sum));
    const vf p0 = vf_mulz(vm_nlt(e0, below), e0, inv), p1 = vf_mulz(vm_nlt(e1, below), e1, inv);
    if (n0 == V) {
        vf_store(probs + lo, p0);
    } else {
        vf_store_part(probs + lo, p0, n0);
    }
    if (n1 == V) {
        vf_store(probs + lo + V, p1);
    } else if (n1 > 0) {
        vf_store_part(probs + lo + V, p1, n1);
    }
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
}

/* The body of every softmax row variant; keys, mask and softcap are compile-time constants in the specialised
 * variants and run-time values in the generic one. */
ALIBI_INLINE void softmax_row_body(const posattn_softmax_row *row, int keys, int mask, int softcap) {
    /* Logits stored by pass 1 and reloaded by pass 2 rather than formed twice: with a softcap (tanh costs more
     * than the traffic), for strided key positions (gathers do), for N-D positions (as do the coordinates), and
     * for rows that stay in L1 (POSATTN_STORED_LOGITS_MAX_KEYS). Either way pass 2 sees the same bits. */
    const int stored = softcap || keys == KEYS_STRIDED || keys >= KEYS_ND || row->nk <= POSATTN_STORED_LOGITS_MAX_KEYS;
    float *probs = row->probs;
    const int64_t lo = row->lo, hi = row->hi;
    fill_f32(probs, 0, lo, 0.0f);
    fill_f32(probs, hi, row->nk, 0.0f);

    alibi_logits c;
    c.scores = row->scores;
    c.mask = row->mask;
    c.scale = row->scale;
    c.softcap = row->softcap;
    c.slope = row->slope;
    c.q_pos = row->q_pos;
    c.mask_scale = row->mask_scale;
    alibi_keys_init(&c.keys, &row->keys);
    if (keys >= KEYS_ND) alibi_nd_init(&c.nd, &row->nd, &row->keys, row->nk);
    const vf qk_lo = keys == KEYS_IOTA ? iota_distances_at(row->q_pos, lo) : vf_zero();
    if (hi > lo && hi - lo <= 2 * ALIBI_LANES) {
        softmax_row_short(row, &c, keys, mask, softcap, qk_lo);
        return;
    }
    posattn_row_prefetch pf = posattn_row_prefetch_of(row); /* the next row: see kernels.h */

    const int far_skip = far_skip_possible(keys, mask, softcap) && !stored && row->slope > 0.0f &&
                         (keys != KEYS_CONTIGUOUS || row->keys_sorted);
    float score_max = NAN;
    int64_t max_lo = lo, max_hi = hi;
    if (far_skip) {
        score_max = pass0_scores_max(&c, lo, hi);
        far_max_keys(row, keys, score_max, lo, hi, &max_lo, &max_hi);
    }
    const vf qk_max = keys == KEYS_IOTA && max_lo != lo ? iota_distances_at(row->q_pos, max_lo) : qk_lo;
    float mx = pass1_logits_max(&c, keys, mask, softcap, stored, probs, max_lo, max_hi, qk_max);
    int sink_is_nan = 0;
    if (row->has_sink) {
        sink_is_nan = isnan(row->sink);
        mx = fmaxf(mx, row->sink);
    }
    if (mx == -INFINITY) {
        /* No key above -inf and no sink: zeros, and an empty log-sum-exp; unless the maximum skipped a NaN (of a
         * logit or of the sink), which makes the row NaN as it would anywhere else. */
        const int has_nan = sink_is_nan || logits_have_nan(&c, keys, mask, softcap, stored, probs, lo, hi, qk_lo);
        fill_f32(probs, lo, hi, has_nan ? NAN : 0.0f);
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }

    int64_t live_lo, live_hi, near_lo = lo, near_hi = hi;
    if (far_skip) {
        far_near_keys(row, keys, score_max, mx, lo, hi, &near_lo, &near_hi);
        /* Widened to pass 2's groups of 4 vectors counted from lo (and to hi past the last whole group): pass 2 then
         * runs the same groups in the same order as over [lo, hi), less groups whose every lane flushes (which
         * add nothing and do not count), so the sum has the same bits as without skipping. */
        const int64_t G = 4 * ALIBI_LANES, groups_end = lo + (hi - lo) / G * G;
        near_lo = lo + (near_lo - lo) / G * G;
        near_hi = near_hi > groups_end ? hi : lo + (near_hi - lo + G - 1) / G * G;
        fill_f32(probs, lo, near_lo, 0.0f);
        fill_f32(probs, near_hi, hi, 0.0f);
    }
    const vf qk_near = keys == KEYS_IOTA && near_lo != lo ? iota_distances_at(row->q_pos, near_lo) : qk_lo;
    double sum = pass2_exp_sum(&c, keys, mask, stored, probs, near_lo, near_hi, mx, qk_near, &pf, &live_lo,
                               &live_hi);
    if (row->has_sink) sum += (double)flushed_expf(row->sink - mx);
    /* A NaN sum (a NaN logit) must reach every key of [lo, hi), the zeros of skipped groups included. */
    if (isnan(sum)) live_lo = lo, live_hi = hi;
    pass3_scale(probs, live_lo, live_hi, sum);
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
    posattn_row_prefetch_rest(&pf);
}
