/*
 * Differential fuzz target of posattn_alibi_bias, posattn_alibi_slopes and posattn_alibi_split_heads, and of the
 * ISA entry points (names, forcing): bit-identical biases on every ISA (as documented; NaN results only need to be
 * NaN), each within the header's bound of a float64 oracle, same status everywhere, nothing written on error,
 * hostile arguments refused.
 */
#include <ctype.h>

#include "fuzz_alibi.h"

static void fuzz_slopes(fz_bytes *b) {
    int64_t H = fz_range(b, 1, 70);
    float max_bias = fz_u8(b) < 200 ? (float)fz_range(b, 0, 16) * 0.5f : fz_float(b, 100.0f, 1);
    int bad = !(max_bias >= 0.0f) || isinf(max_bias);
    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        float *out = fz_floats(H);
        fz_fill_untouched(out, H);
        posattn_status st = posattn_alibi_slopes(H, max_bias, out);
        FZ_CHECK(st == (bad ? POSATTN_ERR_MAX_BIAS : POSATTN_OK), "slopes H %lld max_bias %g: %s", (long long)H,
                 (double)max_bias, posattn_status_string(st));
        for (int64_t h = 0; h < H; ++h) {
            if (bad) {
                FZ_CHECK(isnan(out[h]), "slopes: error but wrote");
                continue;
            }
            int64_t c = 1;
            while (2 * c <= H) c *= 2;
            double e = h < c ? -(double)max_bias * (double)(h + 1) / (double)c
                             : -((double)max_bias / 2.0) * (double)(2 * (h - c) + 1) / (double)c;
            double exact = exp2(e);
            FZ_CHECK(fabs((double)out[h] - exact) <= fz_ulp(exact), "isa %s slopes H %lld B %g h %lld: %.9g vs %.9g",
                     posattn_isa_name(isas[n]), (long long)H, (double)max_bias, (long long)h, (double)out[h], exact);
        }
        free(out);
    }
}

/* posattn_alibi_split_heads: the contiguous groups of the header, exact-size output, refusals untouched. */
static void fuzz_split_heads(fz_bytes *b) {
    const int64_t H = fz_range(b, -2, 300), A = fz_range(b, -1, 6);
    const int valid_axes = A >= 1 && A <= 4;
    const posattn_status expect = H <= 0 ? POSATTN_ERR_SIZE : !valid_axes ? POSATTN_ERR_AXES : POSATTN_OK;
    const int64_t n = H > 0 && A > 0 ? H * A : 1;
    const int null_out = fz_u8(b) < 16;
    float *w = fz_floats(n);
    fz_fill_untouched(w, n);
    posattn_status st = posattn_alibi_split_heads(H, A, null_out ? NULL : w);
    const posattn_status want = null_out && expect == POSATTN_OK ? POSATTN_ERR_NULL : expect;
    FZ_CHECK(st == want || (null_out && st == POSATTN_ERR_NULL), "split_heads H %lld A %lld: %s, expected %s",
             (long long)H, (long long)A, posattn_status_string(st), posattn_status_string(want));
    if (st != POSATTN_OK) {
        float untouched;
        fz_fill_untouched(&untouched, 1);
        for (int64_t e = 0; e < n; ++e) FZ_CHECK(fz_same_bits(w[e], untouched), "split_heads: error but wrote");
        free(w);
        return;
    }
    const int64_t g = H / A, r = H % A;
    for (int64_t h = 0; h < H; ++h) {
        for (int64_t a = 0; a < A; ++a) {
            const int64_t lo = a * g + (a < r ? a : r), hi = (a + 1) * g + (a + 1 < r ? a + 1 : r);
            const float want_w = h >= lo && h < hi ? 1.0f : 0.0f;
            FZ_CHECK(fz_same_bits(w[h * A + a], want_w), "split_heads H %lld A %lld: w[%lld][%lld] = %g, expected %g",
                     (long long)H, (long long)A, (long long)h, (long long)a, (double)w[h * A + a], (double)want_w);
        }
    }
    free(w);
}

/* The ISA entry points: any name parses or is refused, any enum value is forced or refused with the active ISA
 * unchanged, and the strings of any status or ISA value exist. */
static void fuzz_isa_api(fz_bytes *b) {
    char name[16];
    const size_t drawn = (size_t)fz_range(b, 0, sizeof name - 1);
    for (size_t c = 0; c < drawn; ++c) name[c] = (char)fz_u8(b);
    name[drawn] = '\0';
    const size_t len = strlen(name); /* a zero byte drawn ends the name early */
    posattn_isa parsed = (posattn_isa)-7;
    posattn_status st = posattn_isa_from_name(name, &parsed);
    if (st == POSATTN_OK) {
        FZ_CHECK(parsed >= POSATTN_ISA_AUTO && parsed < POSATTN_ISA_COUNT, "from_name: %d", (int)parsed);
        const char *canonical = posattn_isa_name(parsed);
        FZ_CHECK(strlen(canonical) == len, "from_name accepted \"%s\" as %s", name, canonical);
        for (size_t c = 0; c < len; ++c) {
            FZ_CHECK(tolower((unsigned char)name[c]) == canonical[c], "from_name accepted \"%s\" as %s", name,
                     canonical);
        }
    } else {
        FZ_CHECK(st == POSATTN_ERR_ISA_UNKNOWN && parsed == (posattn_isa)-7, "from_name: %s, wrote %d",
                 posattn_status_string(st), (int)parsed);
    }
    FZ_CHECK(posattn_isa_from_name(NULL, &parsed) == POSATTN_ERR_NULL, "from_name(NULL)");
    const int value = (int)(int32_t)fz_u32(b) % 12 - 3;
    const posattn_isa before = posattn_active_isa();
    st = posattn_force_isa((posattn_isa)value);
    const int known = value >= POSATTN_ISA_AUTO && value < POSATTN_ISA_COUNT;
    if (!known) {
        FZ_CHECK(st == POSATTN_ERR_ISA_UNKNOWN, "force_isa(%d): %s", value, posattn_status_string(st));
    } else if (!posattn_isa_supported((posattn_isa)value)) {
        FZ_CHECK(st == POSATTN_ERR_ISA_UNSUPPORTED, "force_isa(%d): %s", value, posattn_status_string(st));
    } else {
        FZ_CHECK(st == POSATTN_OK, "force_isa(%d): %s", value, posattn_status_string(st));
    }
    if (st != POSATTN_OK) FZ_CHECK(posattn_active_isa() == before, "force_isa(%d) refused but changed the ISA", value);
    FZ_CHECK(posattn_isa_name((posattn_isa)value) != NULL && posattn_status_string((posattn_status)value) != NULL,
             "no string for %d", value);
    FZ_CHECK(posattn_isa_compiled((posattn_isa)value) == 0 || known, "compiled(%d)", value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = {data, size};
    const uint8_t part = fz_u8(&b);
    if (part < 24) {
        if (part < 16) fuzz_slopes(&b);
        else if (part < 20) fuzz_split_heads(&b);
        else fuzz_isa_api(&b);
        posattn_force_isa(POSATTN_ISA_AUTO);
        return 0;
    }
    const int64_t H = fz_range(&b, 1, 4), nq = fz_range(&b, 1, 6), nk = fz_range(&b, 1, 80), rows = H * nq;
    int64_t rs = fz_bool(&b) ? 0 : nk + fz_range(&b, 0, 3);
    const int64_t rsv = rs ? rs : nk;
    int64_t hs = fz_bool(&b) ? 0 : nq * rsv + fz_range(&b, 0, 5);
    const int64_t hsv = hs ? hs : nq * rsv;
    int64_t rb = fz_range(&b, 0, rows);
    int64_t re = fz_range(&b, rb, rows);
    float *slopes = fz_floats(H);
    int slope_mode = fz_u8(&b) % 4;
    if (slope_mode == 0) {
        posattn_alibi_slopes(H, 8.0f, slopes);
    } else {
        for (int64_t h = 0; h < H; ++h) slopes[h] = fz_float(&b, 2.0f, slope_mode == 3);
    }
    fz_positions pos;
    fz_positions_draw(&b, H, nq, nk, &pos);
    const int64_t ext = (H - 1) * hsv + (nq - 1) * rsv + nk;

    int64_t cH = H, cnq = nq, cnk = nk;
    const float *cslopes = slopes;
    int null_bias = 0;
    posattn_status injected = POSATTN_OK;
    switch (fz_u8(&b) % 16) {
    case 0: cslopes = NULL, injected = POSATTN_ERR_NULL; break;
    case 1: null_bias = 1, injected = POSATTN_ERR_NULL; break;
    case 2: cnq = -fz_range(&b, 0, 2), injected = POSATTN_ERR_SIZE; break;
    case 3: re = rows + 1, injected = POSATTN_ERR_ROW_RANGE; break;
    case 4:
        if (nk > 1) rs = nk - 1, injected = POSATTN_ERR_STRIDE;
        break;
    case 5: hs = -1, injected = POSATTN_ERR_STRIDE; break;
    case 6:
        if (nq > 1) rs = INT64_C(1) << 61, injected = POSATTN_ERR_OVERFLOW;
        break;
    case 7:
        if (pos.use) pos.p.metric = (posattn_metric)-1, injected = POSATTN_ERR_METRIC;
        break;
    case 8:
        if (pos.use) pos.p.axes = 5 + fz_range(&b, 0, 100), injected = POSATTN_ERR_AXES;
        break;
    case 9:
        if (pos.use && pos.p.k) pos.p.k_stride = -1, injected = POSATTN_ERR_STRIDE;
        break;
    default: break;
    }
    (void)cH, (void)cnk;

    float *out0 = fz_floats(ext);
    fz_fill_untouched(out0, ext);
    float *ref = NULL;
    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    posattn_status first = POSATTN_OK;
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *name = posattn_isa_name(isas[n]);
        float *out = fz_copy(out0, ext);
        posattn_status st = posattn_alibi_bias(cH, cnq, cnk, cslopes, pos.use ? &pos.p : NULL, null_bias ? NULL : out,
                                               rs, hs, rb, re);
        if (n == 0) first = st;
        FZ_CHECK(st == first, "isa %s returned %s, scalar %s", name, posattn_status_string(st),
                 posattn_status_string(first));
        int ok_status = st == injected || (pos.axes > 1 && st == POSATTN_ERR_AXES) ||
                        (pos.weights_invalid && st == POSATTN_ERR_WEIGHTS);
        FZ_CHECK(ok_status, "isa %s returned %s, expected %s (H %lld nq %lld nk %lld axes %lld)", name,
                 posattn_status_string(st), posattn_status_string(injected), (long long)H, (long long)nq,
                 (long long)nk, (long long)pos.axes);
        if (st != POSATTN_OK) {
            FZ_CHECK(memcmp(out, out0, (size_t)ext * sizeof(float)) == 0, "isa %s: error %s but bias written", name,
                     posattn_status_string(st));
            free(out);
            continue;
        }
        for (int64_t e = 0; e < ext; ++e) {
            int64_t h = e / hsv, rem = e % hsv, i = rem / rsv, j = rem % rsv, r = h * nq + i;
            int inside = h < H && i < nq && j < nk && r >= rb && r < re;
            if (!inside) {
                FZ_CHECK(fz_same_bits(out[e], out0[e]), "isa %s: element %lld outside the rows written", name,
                         (long long)e);
                continue;
            }
            if (ref) { /* documented: bit-identical on all ISAs */
                FZ_CHECK(fz_same_result(out[e], ref[e]), "isa %s: bias h %lld i %lld j %lld = %.9g, scalar %.9g", name,
                         (long long)h, (long long)i, (long long)j, (double)out[e], (double)ref[e]);
                continue;
            }
            int kept = 0;
            double mid = 0.0;
            double exact = fz_oracle_bias(slopes, &pos, nq, nk, h, i, j, &kept, &mid);
            if (isnan(exact)) {
                FZ_CHECK(isnan(out[e]), "bias h %lld i %lld j %lld: %g, expected NaN", (long long)h, (long long)i,
                         (long long)j, (double)out[e]);
                continue;
            }
            if (fabs(exact) > (double)FLT_MAX * (1.0 + 16.0 * FZ_U)) { /* the header: above FLT_MAX, +-inf or NaN */
                FZ_CHECK(!isfinite(out[e]), "bias h %lld i %lld j %lld: %g, exact %g overflows float32", (long long)h,
                         (long long)i, (long long)j, (double)out[e], exact);
                continue;
            }
            if (mid > 1e37) continue; /* an intermediate near FLT_MAX: the relative bound does not apply */
            int weighted = pos.use && pos.p.weights;
            double bound = fz_bias_bound(exact, kept, weighted, pos.use && pos.p.metric == POSATTN_METRIC_L2,
                                         (double)slopes[h]);
            FZ_CHECK(fabs((double)out[e] - exact) <= bound,
                     "bias h %lld i %lld j %lld (axes %lld kept %d): %.9g, exact %.9g, bound %.3g", (long long)h,
                     (long long)i, (long long)j, (long long)pos.axes, kept, (double)out[e], exact, bound);
        }
        if (!ref) ref = out;
        else free(out);
    }
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(ref), free(out0), free(slopes);
    fz_positions_free(&pos);
    return 0;
}
