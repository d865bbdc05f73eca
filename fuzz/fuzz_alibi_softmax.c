/*
 * Differential fuzz target of posattn_alibi_softmax: every ISA against a float64 oracle of SPEC 3 within the
 * header's bound, same status everywhere, nothing written on error, hostile arguments refused. See fuzz_support.h.
 */
#include "fuzz_alibi.h"

typedef struct call {
    int64_t H, nq, nk;
    const float *scores;
    const float *ref_scores; /* the scores the oracle reads (a copy when the call runs in place) */
    int64_t srs, shs;
    float *probs;
    int64_t prs, phs;
    float scale;
    const float *slopes;
    fz_positions pos;
    posattn_softmax_options o;
    int use_options;
    int64_t rb, re;
} call;

static posattn_status run(const call *c, float *probs, float *lse) {
    posattn_softmax_options o = c->o;
    o.lse = lse;
    return posattn_alibi_softmax(c->H, c->nq, c->nk, c->scores, c->srs, c->shs, probs, c->prs, c->phs, c->scale,
                                 c->slopes, c->pos.use ? &c->pos.p : NULL, c->use_options ? &o : NULL, c->rb, c->re);
}

static double mask_value(const call *c, int64_t h, int64_t i, int64_t j) {
    const posattn_softmax_options *o = &c->o;
    int64_t mrs = o->mask_row_stride ? o->mask_row_stride : c->nk;
    int64_t at = h * o->mask_head_stride + i * mrs + j;
    if (o->mask_type == POSATTN_MASK_F16) {
        uint16_t v = ((const uint16_t *)o->mask)[at];
        double sign = (v & 0x8000u) ? -1.0 : 1.0;
        unsigned e = (v >> 10) & 0x1Fu, m = v & 0x3FFu;
        if (e == 0x1Fu) return m ? NAN : sign * INFINITY;
        if (e == 0) return sign * ldexp((double)m, -24);
        return sign * ldexp((double)(m + 1024u), (int)e - 25);
    }
    return (double)((const float *)o->mask)[at];
}

/* Checks one computed row of one ISA against the oracle. */
static void check_row(const call *c, int64_t r, const float *probs, const float *lse, const char *isa) {
    const int64_t nq = c->nq, nk = c->nk, h = r / nq, i = r % nq;
    const posattn_softmax_options *o = &c->o;
    const int use_o = c->use_options;
    const int causal = use_o && (o->flags & POSATTN_CAUSAL);
    const int mts = use_o && (o->flags & POSATTN_MASK_TIMES_SLOPE);
    const int64_t window = use_o ? o->window : 0;
    const int64_t prs = c->prs ? c->prs : nk, phs = c->phs ? c->phs : nq * prs;
    const int64_t srs = c->srs ? c->srs : nk, shs = c->shs ? c->shs : nq * srs;
    const float *s = c->ref_scores + h * shs + i * srs;
    const float *p = probs + h * phs + i * prs;
    const int64_t diag = i + nk - nq;
    const int has_sink = use_o && o->sinks;
    const double sink = has_sink ? (double)o->sinks[h] : -INFINITY;
    double *x = malloc((size_t)nk * sizeof *x);
    unsigned char *valid = malloc((size_t)nk);
    double mx = sink, L = has_sink ? fabs(sink) : 0.0, mid = 0.0;
    int nan_row = has_sink && isnan(sink), nd = 0, loose = 0;
    for (int64_t j = 0; j < nk; ++j) {
        int v = !(causal && j > diag) && !(window > 0 && llabs(j - diag) >= window);
        double mask = (use_o && o->mask) ? mask_value(c, h, i, j) : 0.0;
        if (use_o && o->mask && mask == -INFINITY) v = 0;
        valid[j] = (unsigned char)v;
        if (!v) continue;
        double xj = (double)c->scale * (double)s[j];
        if (use_o && o->softcap > 0.0f) xj = (double)o->softcap * tanh(xj / (double)o->softcap);
        int kept = 0;
        double m = 0.0, bias = mts ? 0.0 : fz_oracle_bias(c->slopes, &c->pos, nq, nk, h, i, j, &kept, &m);
        if (kept >= 2) nd = 1;
        /* Reported (see fuzz_alibi_bias.c): A = 1, weight 0 and a non-finite slope give NaN, not "no bias". */
        if (kept == 0 && !mts && !isfinite(c->slopes[h])) loose = 1;
        double mterm = (use_o && o->mask) ? (mts ? (double)c->slopes[h] * mask : mask) : 0.0;
        mid = fmax(mid, fmax(m, fabs((double)c->scale * (double)s[j])));
        L = fmax(L, fabs(xj) + fabs(bias) + fabs(mterm));
        xj += bias + mterm;
        x[j] = xj;
        if (isnan(xj)) nan_row = 1;
        if (xj > mx) mx = xj;
    }
    if (!nan_row && mx == INFINITY) nan_row = 1; /* inf - inf in the exponent */
    double sum = has_sink ? exp(sink - mx) : 0.0;
    if (!nan_row && mx > -INFINITY) {
        for (int64_t j = 0; j < nk; ++j) {
            if (valid[j]) sum += exp(x[j] - mx);
        }
    }
    /* The header's bound is first order in u: it needs L u << 1 (its own example has L <= 100). Rows with larger
     * logits, where a float32 logit is off by many units (and may overflow), are only checked for sanity. */
    const int huge = L > 1e4 || mid > 1e4 || loose;
    const double ulps = nd ? 20.0 : 10.0;
    for (int64_t j = 0; j < nk; ++j) {
        const float got = p[j];
        if (!valid[j]) {
            FZ_CHECK(got == 0.0f || (isnan(got) && (nan_row || huge)), "isa %s row %lld key %lld: excluded key got %g",
                     isa, (long long)r, (long long)j, (double)got);
            continue;
        }
        if (nan_row) {
            FZ_CHECK(isnan(got), "isa %s row %lld key %lld: NaN row (a NaN or +inf logit) but got %g", isa,
                     (long long)r, (long long)j, (double)got);
            continue;
        }
        if (huge) {
            FZ_CHECK(isnan(got) || (got >= 0.0f && got <= 1.0f), "isa %s row %lld key %lld: %g is no probability",
                     isa, (long long)r, (long long)j, (double)got);
            continue;
        }
        double exact = mx == -INFINITY ? 0.0 : exp(x[j] - mx) / sum;
        double d = mx - x[j];
        double bound = exact > 0.0 ? (ulps * L + d + 22.0) * FZ_U * exact + 2.4e-38 : 2.4e-38;
        FZ_CHECK(fabs((double)got - exact) <= bound,
                 "isa %s row %lld (h %lld i %lld) key %lld of %lld: got %.9g, exact %.9g, bound %.3g (L %g d %g%s)",
                 isa, (long long)r, (long long)h, (long long)i, (long long)j, (long long)nk, (double)got, exact,
                 bound, L, d, nd ? ", N-D" : "");
    }
    if (lse && !huge) {
        double lx = mx == -INFINITY ? -INFINITY : mx + log(sum);
        float got = lse[r];
        if (nan_row) {
            FZ_CHECK(isnan(got), "isa %s row %lld: lse %g, expected NaN", isa, (long long)r, (double)got);
        } else if (lx == -INFINITY) {
            FZ_CHECK(got == -INFINITY, "isa %s row %lld: lse %g, expected -inf", isa, (long long)r, (double)got);
        } else {
            double bound = ((ulps + 1.0) * L + 20.0) * FZ_U + FZ_U * fabs(lx);
            FZ_CHECK(fabs((double)got - lx) <= bound, "isa %s row %lld: lse %.9g, exact %.9g, bound %.3g", isa,
                     (long long)r, (double)got, lx, bound);
        }
    }
    free(x);
    free(valid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = {data, size};
    call c;
    memset(&c, 0, sizeof c);
    c.H = fz_range(&b, 1, 4), c.nq = fz_range(&b, 1, 6), c.nk = fz_range(&b, 1, 80);
    const int64_t H = c.H, nq = c.nq, nk = c.nk, rows = H * nq;
    c.srs = fz_bool(&b) ? 0 : nk + fz_range(&b, 0, 3);
    c.prs = fz_bool(&b) ? 0 : nk + fz_range(&b, 0, 3);
    int in_place = fz_u8(&b) < 32;
    if (in_place) c.prs = c.srs;
    const int64_t srs = c.srs ? c.srs : nk, prs = c.prs ? c.prs : nk;
    c.shs = fz_bool(&b) ? 0 : nq * srs + fz_range(&b, 0, 5);
    c.phs = fz_bool(&b) ? 0 : nq * prs + fz_range(&b, 0, 5);
    if (in_place) c.phs = c.shs;
    c.rb = fz_range(&b, 0, rows);
    c.re = fz_range(&b, c.rb, rows);
    c.scale = fz_u8(&b) < 16 ? fz_float(&b, 4.0f, 1) : fz_float(&b, 2.0f, 0);
    if (!isfinite(c.scale)) c.scale = 0.125f; /* non-finite scales are the injected SCALE case */
    float score_mag = (float)fz_range(&b, 1, 200);
    int special = fz_u8(&b) < 96;

    /* Inputs at exact size. */
    const int64_t s_ext = (H - 1) * (c.shs ? c.shs : nq * srs) + (nq - 1) * srs + nk;
    const int64_t p_ext = (H - 1) * (c.phs ? c.phs : nq * prs) + (nq - 1) * prs + nk;
    float *scores = fz_floats(s_ext);
    for (int64_t e = 0; e < s_ext; ++e) scores[e] = fz_float(&b, score_mag, special);
    c.scores = scores;
    float *slopes = fz_floats(H);
    int slope_mode = fz_u8(&b) % 4;
    if (slope_mode == 0) {
        posattn_alibi_slopes(H, 8.0f, slopes);
    } else {
        for (int64_t h = 0; h < H; ++h) slopes[h] = fz_float(&b, 2.0f, slope_mode == 3);
    }
    c.slopes = slopes;
    fz_positions_draw(&b, H, nq, nk, &c.pos);

    uint8_t omode = fz_u8(&b);
    c.use_options = omode & 1;
    float *mask = NULL, *sinks = NULL;
    int want_lse = 0;
    if (c.use_options) {
        posattn_softmax_options *o = &c.o;
        o->flags = (omode & 2 ? POSATTN_CAUSAL : 0) | (omode & 4 && !c.pos.use ? POSATTN_MASK_TIMES_SLOPE : 0);
        if (omode & 8) o->softcap = fz_u8(&b) < 32 ? fz_float(&b, 1e3f, 1) : (float)fz_range(&b, 1, 60);
        if (!(o->softcap >= 0.0f) || isinf(o->softcap)) o->softcap = 30.0f;
        if (omode & 16) o->window = fz_range(&b, 1, nk + 2);
        if (omode & 32) {
            o->mask_type = fz_bool(&b) ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
            o->mask_row_stride = fz_bool(&b) ? 0 : nk + fz_range(&b, 0, 2);
            int64_t mrs = o->mask_row_stride ? o->mask_row_stride : nk;
            o->mask_head_stride = fz_bool(&b) ? 0 : nq * mrs + fz_range(&b, 0, 2);
            int64_t ext = (H - 1) * o->mask_head_stride + (nq - 1) * mrs + nk;
            if (o->mask_type == POSATTN_MASK_F16) {
                uint16_t *m16 = malloc((size_t)ext * sizeof *m16);
                for (int64_t e = 0; e < ext; ++e) {
                    uint8_t k = fz_u8(&b);
                    m16[e] = k < 16   ? 0xFC00u
                             : k < 40 ? (uint16_t)fz_u32(&b)
                                      : (uint16_t)(0xB800u + k); /* -inf, raw, ~ -0.5 */
                }
                mask = (float *)m16;
            } else {
                mask = fz_floats(ext);
                for (int64_t e = 0; e < ext; ++e) {
                    uint8_t k = fz_u8(&b);
                    mask[e] = k < 16 ? -INFINITY : fz_float(&b, 8.0f, k < 48);
                }
            }
            o->mask = mask;
        }
        if (omode & 64) {
            sinks = fz_floats(H);
            for (int64_t h = 0; h < H; ++h) sinks[h] = fz_float(&b, 10.0f, fz_u8(&b) < 32);
            o->sinks = sinks;
        }
        want_lse = (omode & 128) != 0;
    }

    /* One hostile argument (or none): the status it must give. */
    posattn_status injected = POSATTN_OK;
    float *dummy = fz_floats(1);
    float *overlap_buf = NULL;
    const int error_kind = fz_u8(&b) % 24;
    switch (error_kind) {
    case 0: c.scores = NULL, injected = POSATTN_ERR_NULL; break;
    case 1: c.slopes = NULL, injected = POSATTN_ERR_NULL; break;
    case 2: c.nk = -fz_range(&b, 0, 3), injected = POSATTN_ERR_SIZE; break;
    case 3: c.H = 0, injected = POSATTN_ERR_SIZE; break;
    case 4: c.re = rows + 1 + fz_range(&b, 0, 3), injected = POSATTN_ERR_ROW_RANGE; break;
    case 5: c.rb = -1, injected = POSATTN_ERR_ROW_RANGE; break;
    case 6: c.srs = -1, in_place = 0, injected = POSATTN_ERR_STRIDE; break;
    case 7:
        if (nk > 1) c.prs = nk - 1, in_place = 0, injected = POSATTN_ERR_STRIDE;
        break;
    case 8:
        if (H > 1) c.shs = INT64_C(1) << 62, c.scores = dummy, in_place = 0, injected = POSATTN_ERR_OVERFLOW;
        break;
    case 9: case 10: case 11: case 12: case 13: case 14: case 15: case 16: /* the shared errors */
        injected = fz_inject_common_error(&b, error_kind - 9, &c.scale, &c.pos, &c.o, &c.use_options);
        break;
    case 17:
        if (!in_place && p_ext > 1) { /* probs overlapping scores, not identically */
            in_place = 0;
            overlap_buf = fz_floats(s_ext + p_ext);
            memcpy(overlap_buf, scores, (size_t)s_ext * sizeof(float));
            c.scores = overlap_buf;
            injected = POSATTN_ERR_OVERLAP;
        }
        break;
    default: break;
    }

    /* The reference output state: untouched pattern (a fresh copy of the scores when in place). */
    int64_t out_n = in_place ? s_ext : p_ext;
    float *out0 = fz_floats(out_n);
    if (in_place) memcpy(out0, scores, (size_t)s_ext * sizeof(float));
    else fz_fill_untouched(out0, out_n);
    c.ref_scores = in_place ? out0 : scores;
    float *lse0 = want_lse ? fz_floats(rows) : NULL;
    if (lse0) fz_fill_untouched(lse0, rows);

    if (getenv("FZ_VERBOSE")) {
        fprintf(stderr, "H %lld nq %lld nk %lld srs %lld shs %lld prs %lld phs %lld in_place %d rows [%lld, %lld) "
                "scale %g injected %d options %d flags %u softcap %g window %lld mask %p type %d sinks %p lse %d\n",
                (long long)c.H, (long long)c.nq, (long long)c.nk, (long long)c.srs, (long long)c.shs,
                (long long)c.prs, (long long)c.phs, in_place, (long long)c.rb, (long long)c.re, (double)c.scale,
                (int)injected, c.use_options, c.o.flags, (double)c.o.softcap, (long long)c.o.window, c.o.mask,
                (int)c.o.mask_type, (const void *)c.o.sinks, want_lse);
        fprintf(stderr,
                "positions use %d axes %lld p.axes %lld q %p k %p w %p metric %d qs %lld ks %lld qhs %lld khs %lld\n",
                c.pos.use, (long long)c.pos.axes, (long long)c.pos.p.axes, (const void *)c.pos.p.q,
                (const void *)c.pos.p.k, (const void *)c.pos.p.weights, (int)c.pos.p.metric,
                (long long)c.pos.p.q_stride, (long long)c.pos.p.k_stride, (long long)c.pos.p.q_head_stride,
                (long long)c.pos.p.k_head_stride);
        for (int64_t e = 0; e < s_ext; ++e) fprintf(stderr, "s[%lld] = %g\n", (long long)e, (double)scores[e]);
        for (int64_t h = 0; h < H; ++h) {
            fprintf(stderr, "slope[%lld] = %g sink %g\n", (long long)h, (double)slopes[h],
                    sinks ? (double)sinks[h] : 0.0);
        }
    }
    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    posattn_status first = POSATTN_OK;
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *name = posattn_isa_name(isas[n]);
        float *out = fz_copy(out0, out_n);
        float *lse = lse0 ? fz_copy(lse0, rows) : NULL;
        if (in_place && c.scores) c.scores = out;
        if (injected == POSATTN_ERR_OVERLAP) { /* probs = scores + 1 inside one buffer */
            memcpy(overlap_buf, scores, (size_t)s_ext * sizeof(float));
            fz_fill_untouched(overlap_buf + s_ext, p_ext);
        }
        float *probs = injected == POSATTN_ERR_OVERLAP ? overlap_buf + 1 : out;
        posattn_status st = run(&c, probs, lse);
        if (n == 0) first = st;
        FZ_CHECK(st == first, "isa %s returned %d (%s), scalar %d (%s)", name, (int)st, posattn_status_string(st),
                 (int)first, posattn_status_string(first));
        int ok_status = st == injected || (c.pos.axes > 1 && st == POSATTN_ERR_AXES) ||
                        (c.pos.weights_invalid && (st == POSATTN_ERR_WEIGHTS || st == injected));
        if (injected == POSATTN_OK && c.pos.weights_invalid && st == POSATTN_OK) ok_status = 1;
        FZ_CHECK(ok_status, "isa %s returned %d (%s), expected %d (%s) (H %lld nq %lld nk %lld axes %lld)", name,
                 (int)st, posattn_status_string(st), (int)injected, posattn_status_string(injected), (long long)c.H,
                 (long long)c.nq, (long long)c.nk, (long long)c.pos.axes);
        if (st != POSATTN_OK) {
            if (injected == POSATTN_ERR_OVERLAP) {
                FZ_CHECK(memcmp(overlap_buf, scores, (size_t)s_ext * sizeof(float)) == 0,
                         "isa %s: error %s but scores changed", name, posattn_status_string(st));
                for (int64_t e = 0; e < p_ext; ++e) {
                    FZ_CHECK(fz_same_bits(overlap_buf[s_ext + e], out0[0]) || in_place, "isa %s: error %s but wrote",
                             name, posattn_status_string(st));
                }
            }
            FZ_CHECK(memcmp(out, out0, (size_t)out_n * sizeof(float)) == 0, "isa %s: error %s but probs written",
                     name, posattn_status_string(st));
            FZ_CHECK(!lse || memcmp(lse, lse0, (size_t)rows * sizeof(float)) == 0, "isa %s: error %s but lse written",
                     name, posattn_status_string(st));
        } else {
            const int64_t phs = c.phs ? c.phs : nq * prs;
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t h = r / nq, i = r % nq;
                if (r >= c.rb && r < c.re) {
                    check_row(&c, r, out, lse, name);
                } else {
                    FZ_CHECK(memcmp(out + h * phs + i * prs, out0 + h * phs + i * prs, (size_t)nk * sizeof(float)) == 0,
                             "isa %s: row %lld outside [%lld, %lld) written", name, (long long)r, (long long)c.rb,
                             (long long)c.re);
                    FZ_CHECK(!lse || fz_same_bits(lse[r], lse0[r]), "isa %s: lse of row %lld outside the range written",
                             name, (long long)r);
                }
            }
            /* Padding between rows and heads is never written. */
            for (int64_t e = 0; e < out_n; ++e) {
                int64_t h = e / phs, rem = e % phs, i = rem / prs, j = rem % prs;
                int inside = h < H && i < nq && j < nk;
                if (!inside) {
                    FZ_CHECK(fz_same_bits(out[e], out0[e]), "isa %s: padding element %lld written", name, (long long)e);
                }
            }
        }
        free(out);
        free(lse);
    }
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(scores), free(slopes), free(mask), free(sinks), free(dummy), free(overlap_buf), free(out0), free(lse0);
    fz_positions_free(&c.pos);
    return 0;
}
