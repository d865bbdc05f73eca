/*
 * Differential fuzz target of posattn_rope_apply and the four frequency-table builders posattn_rope_freqs_* (SPEC 4):
 * every ISA against a float64 oracle within the header's bound (6 u |f_k| r per output, r the pair norm, plus the
 * header's absolute slack below FLT_MIN), same status everywhere, nothing written on error or outside the rotated
 * dimensions and tokens, hostile arguments refused with their exact status. See fuzz_support.h.
 *
 * The oracle forms the float32 angle exactly as the header says (products, then sums in axis order, each rounded;
 * this file is built with -ffp-contract=off and the volatiles keep the compiler from widening), then rotates in
 * float64 by cos and sin of that float32 angle. The rotation is not bit-identical across ISAs (each ISA has its own
 * sincos), so every ISA is compared with the oracle, not with the scalar path.
 */
#include "fuzz_support.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* Builders                                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

/* Bases the models use, and edges that are still valid (positive and finite: subnormal, FLT_MAX, below 1). */
static const float fz_bases[] = {10000.0f, 500000.0f, 1e6f, 100.0f, 2.0f, 1.0f, 0.5f, 1e-3f, 0x1p-149f, FLT_MAX,
                                 1e30f,    1.0001f};

/* base^(-2 j / denom) in float64; the library must be within 0.5 ulp of it (float64 slack far below that). */
static void check_power(const char *what, const char *isa, float got, float base, int64_t j, int64_t denom) {
    const double exact = pow((double)base, -2.0 * (double)j / (double)denom);
    if (exact >= 0x1.ffffffp127) { /* FLT_MAX + half an ulp and beyond: round to nearest gives inf */
        FZ_CHECK(isinf(got) && got > 0.0f, "isa %s %s base %g j %lld/%lld: %g, expected inf", isa, what, (double)base,
                 (long long)j, (long long)denom, (double)got);
        return;
    }
    const double bound = 0.5 * fz_ulp(exact) + 0x1p-40 * exact;
    FZ_CHECK(fabs((double)got - exact) <= bound, "isa %s %s base %.9g j %lld/%lld: %.9g, exact %.17g", isa, what,
             (double)base, (long long)j, (long long)denom, (double)got, exact);
}

/* One builder (which: 0 1d, 1 sections, 2 axis map, 3 vision) with valid arguments or one hostile argument. */
static void fuzz_builders(fz_bytes *b, int which) {
    static const char *names[4] = {"freqs_1d", "freqs_sections", "freqs_axis_map", "freqs_vision"};
    const int uses_sections = which == 1 || which == 3;
    int64_t rd = 2 * fz_range(b, 1, 24);
    const int64_t np = rd / 2;
    int64_t A = which == 0 ? 1 : fz_range(b, 1, 4);
    const int64_t A_valid = A;
    float base = fz_u8(b) < 200 ? fz_bases[fz_u8(b) % (sizeof fz_bases / sizeof fz_bases[0])]
                                : fabsf(fz_float(b, 1e4f, 0)) + 0x1p-20f;
    /* Sections: a random split of the np pairs (empty sections included); the axis map: any axis per pair. */
    int64_t *sections = malloc((size_t)A * sizeof *sections);
    int32_t *axis_of_pair = malloc((size_t)np * sizeof *axis_of_pair);
    int64_t left = np;
    for (int64_t a = 0; a < A; ++a) {
        sections[a] = a == A - 1 ? left : fz_range(b, 0, left);
        left -= sections[a];
    }
    for (int64_t k = 0; k < np; ++k) axis_of_pair[k] = (int32_t)fz_range(b, 0, A - 1);
    const int64_t n_out = A * np; /* exact: the valid call writes all of it */

    int null_out = 0, null_table = 0;
    posattn_status injected = POSATTN_OK;
    switch (fz_u8(b) % 12) { /* 0 (also when the bytes run out) and 10, 11: none */
    case 1: null_out = 1, injected = POSATTN_ERR_NULL; break;
    case 2: rd = -2 * fz_range(b, 0, 2), injected = POSATTN_ERR_SIZE; break;
    case 3: rd += 1, injected = POSATTN_ERR_LAYOUT; break; /* (rd+1)/2 == np: only the parity is wrong */
    case 4:
        if (which != 0) A = fz_bool(b) ? 5 : -fz_range(b, 0, 1), injected = POSATTN_ERR_AXES;
        break;
    case 5: {
        static const float bad[] = {0.0f, -0.0f, -1.0f, -10000.0f, NAN, INFINITY, -INFINITY, -0x1p-149f};
        base = bad[fz_u8(b) % 8], injected = POSATTN_ERR_BASE;
        break;
    }
    case 6: /* one negative section (the sum still right), or an axis out of range */
        if (uses_sections && A > 1) {
            const int64_t m = 1 + fz_range(b, 0, 5), i = fz_range(b, 0, A - 1), old = sections[i];
            sections[i] = -m, sections[(i + 1) % A] += old + m; /* the sum stays np */
            injected = POSATTN_ERR_SECTIONS;
        } else if (uses_sections) {
            sections[0] = -1 - fz_range(b, 0, 5), injected = POSATTN_ERR_SECTIONS;
        } else if (which == 2) {
            axis_of_pair[fz_range(b, 0, np - 1)] = fz_bool(b) ? (int32_t)(A + fz_range(b, 0, 3)) : -1,
            injected = POSATTN_ERR_SECTIONS;
        }
        break;
    case 7: /* a sum other than np (no implicit leftover rule) */
        if (uses_sections) {
            const int64_t i = fz_range(b, 0, A - 1);
            sections[i] += (sections[i] > 0 && fz_bool(b)) ? -1 : 1 + fz_range(b, 0, 3);
            injected = POSATTN_ERR_SECTIONS;
        }
        break;
    case 8:
        if (which != 0) null_table = 1, injected = POSATTN_ERR_NULL;
        break;
    case 9: /* a sum that overflows int64 */
        if (uses_sections && A > 1) sections[0] = INT64_MAX, sections[1] = INT64_MAX, injected = POSATTN_ERR_SECTIONS;
        break;
    default: break;
    }

    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    float *first_out = NULL;
    posattn_status first = POSATTN_OK;
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *isa = posattn_isa_name(isas[n]);
        float *out = fz_floats(n_out);
        fz_fill_untouched(out, n_out);
        float *o = null_out ? NULL : out;
        posattn_status st;
        switch (which) {
        case 0: st = posattn_rope_freqs_1d(rd, base, o); break;
        case 1: st = posattn_rope_freqs_sections(rd, base, A, null_table ? NULL : sections, o); break;
        case 2: st = posattn_rope_freqs_axis_map(rd, base, A, null_table ? NULL : axis_of_pair, o); break;
        default: st = posattn_rope_freqs_vision(rd, base, A, null_table ? NULL : sections, o); break;
        }
        if (n == 0) first = st;
        FZ_CHECK(st == first, "isa %s %s returned %s, scalar %s", isa, names[which], posattn_status_string(st),
                 posattn_status_string(first));
        FZ_CHECK(st == injected, "isa %s %s (rot_dims %lld base %g axes %lld) returned %s, expected %s", isa,
                 names[which], (long long)rd, (double)base, (long long)A, posattn_status_string(st),
                 posattn_status_string(injected));
        if (st != POSATTN_OK) {
            float untouched;
            fz_fill_untouched(&untouched, 1);
            for (int64_t e = 0; e < n_out; ++e) {
                FZ_CHECK(fz_same_bits(out[e], untouched), "isa %s %s: error %s but wrote", isa, names[which],
                         posattn_status_string(st));
            }
            free(out);
            continue;
        }
        /* The builders do not depend on the ISA: the same bits everywhere. */
        if (first_out) {
            FZ_CHECK(memcmp(out, first_out, (size_t)n_out * sizeof(float)) == 0, "isa %s %s differs from scalar", isa,
                     names[which]);
            free(out);
            continue;
        }
        int64_t k_begin = 0;
        for (int64_t a = 0; a < A_valid; ++a) {
            for (int64_t k = 0; k < np; ++k) {
                const float got = out[a * np + k];
                int on = 1; /* pair k follows axis a */
                if (which == 2) on = axis_of_pair[k] == a;
                if (uses_sections) on = k >= k_begin && k < k_begin + sections[a];
                if (!on) {
                    FZ_CHECK(got == 0.0f, "isa %s %s: F[%lld][%lld] = %g, expected 0", isa, names[which],
                             (long long)a, (long long)k, (double)got);
                } else if (which == 3) {
                    check_power(names[which], isa, got, base, k - k_begin, np);
                } else {
                    check_power(names[which], isa, got, base, k, rd);
                }
            }
            if (uses_sections) k_begin += sections[a];
        }
        first_out = out;
    }
    free(first_out), free(sections), free(axis_of_pair);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_rope_apply                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/* What the oracle demands of one element of x. */
enum { KEEP = 0, BOUND, MUST_NAN, NOT_FINITE, ANY };

/* The float32 angle as the header forms it. */
static float rope_angle(const float *pos, int64_t A, const float *F, int64_t np, int64_t k) {
    volatile float theta = pos[0] * F[k];
    for (int64_t a = 1; a < A; ++a) {
        volatile float term = pos[a] * F[a * np + k];
        theta = theta + term;
    }
    return theta;
}

/* f_k as the header defines it: attn_factor (0 counts as 1) times pair_factors[k], rounded once to float32. */
static float rope_factor(const posattn_rope_options *o, int64_t k) {
    const float attn = o->attn_factor != 0.0f ? o->attn_factor : 1.0f;
    if (!o->pair_factors) return attn;
    volatile float f = attn * o->pair_factors[k];
    return f;
}

static float draw_position(fz_bytes *b, uint8_t mode, float mag, int special) {
    switch (mode % 4) {
    case 0: return (float)fz_range(b, 0, 255);                             /* token indices */
    case 1: return (float)fz_range(b, 0, 1 << 24) * (fz_bool(b) ? 1 : 64); /* huge positions (long contexts) */
    default: return fz_float(b, mag, special);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = {data, size};
    const uint8_t part = fz_u8(&b);
    if (part < 32) {
        fuzz_builders(&b, part % 4);
        posattn_force_isa(POSATTN_ISA_AUTO);
        return 0;
    }

    /* Sizes and the rotated part: rot_offset + partial rot_dims anywhere in the head. */
    const int64_t T = fz_range(&b, 1, 6), H = fz_range(&b, 1, 3), D = fz_range(&b, 2, 40);
    const int64_t rd = 2 * fz_range(&b, 1, D / 2), off = fz_range(&b, 0, D - rd), np = rd / 2;
    const posattn_rope_layout layout = fz_bool(&b) ? POSATTN_ROPE_HALF_SPLIT : POSATTN_ROPE_INTERLEAVED;
    const int64_t A = fz_range(&b, 1, 4);
    /* Strides: token-major with padding, head-major (tokens inside a head's block), or the 0 defaults. */
    int64_t hs = 0, ts = 0, hsv = D, tsv;
    const uint8_t smode = fz_u8(&b) % 4;
    if (smode == 1 || smode == 2) hs = hsv = D + fz_range(&b, 0, 3);
    tsv = H * hsv;
    if (smode == 2) ts = tsv = H * hsv + fz_range(&b, 0, 5);
    if (smode == 3) { /* head-major: x[h][t][d] */
        ts = tsv = D + fz_range(&b, 0, 2);
        hs = hsv = (T - 1) * tsv + D + fz_range(&b, 0, 3);
    }
    const int64_t ext = (T - 1) * tsv + (H - 1) * hsv + D;
    int64_t tb = fz_range(&b, 0, T);
    int64_t te = fz_range(&b, tb, T);

    /* Positions and the table, exact size: a padded position stride sometimes; the table shared
     * (freq_head_stride 0) or per head, possibly overlapping (the table is only read). */
    int64_t ps = fz_bool(&b) ? 0 : A + fz_range(&b, 0, 2);
    const int64_t psv = ps ? ps : A, pos_n = (T - 1) * psv + A;
    int64_t fhs = 0;
    if (fz_bool(&b)) fhs = fz_range(&b, 1, A * np + 2);
    const int64_t freq_n = fhs ? (H - 1) * fhs + A * np : A * np;
    float *pos = fz_floats(pos_n), *freqs = fz_floats(freq_n), *x0 = fz_floats(ext);

    /* Options: NULL, or any mix of backward, attn factor and pair factors. */
    posattn_rope_options o = {0};
    int use_options = 0;
    float *factors = NULL;
    {
        const uint8_t omode = fz_u8(&b);
        use_options = (omode & 1) != 0;
        if (use_options) {
            if (omode & 2) o.flags |= POSATTN_ROPE_BACKWARD;
            if (omode & 4) {
                o.attn_factor = fz_float(&b, 4.0f, fz_u8(&b) < 64);
                if (!isfinite(o.attn_factor)) o.attn_factor = 1.0f; /* non-finite: the injection below */
            }
            if (omode & 8) {
                factors = fz_floats(np); /* values below */
                o.pair_factors = factors;
            }
        }
    }

    /* One hostile argument (or none): the status it must give. */
    int64_t cT = T, cH = H, cD = D, cts = ts, chs = hs, coff = off, crd = rd, cA = A, cps = ps, cfhs = fhs;
    int64_t ctb = tb, cte = te;
    posattn_rope_layout clayout = layout;
    int null_x = 0, null_pos = 0, null_freqs = 0;
    int overlap_with = 0; /* 1 pos, 2 freqs, 3 pair factors: placed inside x's buffer at overlap_at */
    int64_t overlap_at = 0;
    posattn_status injected = POSATTN_OK;
    switch (fz_u8(&b) % 40) { /* 0 (also when the bytes run out) and 19..39: none */
    case 1: null_x = 1, injected = POSATTN_ERR_NULL; break;
    case 2: null_pos = 1, injected = POSATTN_ERR_NULL; break;
    case 3: null_freqs = 1, injected = POSATTN_ERR_NULL; break;
    case 4: {
        const int64_t v = -fz_range(&b, 0, 2);
        switch (fz_u8(&b) % 4) {
        case 0: cT = v; break;
        case 1: cH = v; break;
        case 2: cD = v; break;
        default: crd = 2 * v; break;
        }
        injected = POSATTN_ERR_SIZE;
        break;
    }
    case 5: crd = rd - 1, injected = POSATTN_ERR_LAYOUT; break;
    case 6: coff = -1 - fz_range(&b, 0, 3), injected = POSATTN_ERR_LAYOUT; break;
    case 7: /* rotated dimensions beyond the head */
        if (fz_bool(&b)) coff = D - rd + 1 + fz_range(&b, 0, 3);
        else crd = 2 * ((D - off) / 2 + 1 + fz_range(&b, 0, 2));
        injected = POSATTN_ERR_LAYOUT;
        break;
    case 8:
        clayout = (posattn_rope_layout)(fz_bool(&b) ? -1 : 2 + fz_range(&b, 0, 100)), injected = POSATTN_ERR_LAYOUT;
        break;
    case 9: cA = fz_bool(&b) ? 0 : 5 + fz_range(&b, 0, 3), injected = POSATTN_ERR_AXES; break;
    case 10:
        switch (fz_u8(&b) % 3) {
        case 0: ctb = -1 - fz_range(&b, 0, 3); break;
        case 1: cte = T + 1 + fz_range(&b, 0, 3); break;
        default: ctb = te + 1, cte = te; break; /* reversed (may also end beyond T) */
        }
        injected = POSATTN_ERR_ROW_RANGE;
        break;
    case 11:
        switch (fz_u8(&b) % 4) {
        case 0: cts = -1 - fz_range(&b, 0, 5); break;
        case 1: chs = -1 - fz_range(&b, 0, 5); break;
        case 2: cps = -1 - fz_range(&b, 0, 5); break;
        default: cfhs = -1 - fz_range(&b, 0, 5); break;
        }
        injected = POSATTN_ERR_STRIDE;
        break;
    case 12: /* heads that overlap */
        if (H > 1 && D > 1) chs = D - 1 - fz_range(&b, 0, D - 2), injected = POSATTN_ERR_STRIDE;
        break;
    case 13: /* tokens that overlap (shorter than the span of a token's heads) */
        if (T > 1) {
            const int64_t v = (H - 1) * hsv + D - 1 - fz_range(&b, 0, D < 4 ? D - 1 : 3); /* >= hsv when H > 1 */
            if (v >= 1) cts = v, injected = POSATTN_ERR_STRIDE;
        }
        break;
    case 14:
        if (A > 1) cps = fz_range(&b, 1, A - 1), injected = POSATTN_ERR_STRIDE;
        break;
    case 15: { /* strides whose products overflow */
        const int64_t big = INT64_C(1) << (61 + fz_range(&b, 0, 1));
        switch (fz_u8(&b) % 4) {
        case 0:
            if (T > 1) cts = big, injected = POSATTN_ERR_OVERFLOW;
            break;
        case 1:
            if (H > 1) chs = big, injected = POSATTN_ERR_OVERFLOW;
            break;
        case 2:
            if (T > 1) cps = big, injected = POSATTN_ERR_OVERFLOW;
            break;
        default:
            if (H > 1) cfhs = big, injected = POSATTN_ERR_OVERFLOW;
            break;
        }
        break;
    }
    case 16:
        overlap_with = 1 + (int)(fz_u8(&b) % 3);
        if (overlap_with == 3 && !factors) overlap_with = 0;
        if (overlap_with) overlap_at = fz_range(&b, 0, ext - 1), injected = POSATTN_ERR_OVERLAP;
        break;
    case 17: use_options = 1, o.flags |= 1u << fz_range(&b, 1, 31), injected = POSATTN_ERR_FLAGS; break;
    case 18: {
        static const float bad[] = {NAN, INFINITY, -INFINITY};
        use_options = 1, o.attn_factor = bad[fz_u8(&b) % 3], injected = POSATTN_ERR_SCALE;
        break;
    }
    default: break;
    }

    /* The bulk of the bytes (read after every choice above, so that a short input still decodes them):
     * positions (token indices, huge ones, or floats with specials), the table, the values and the factors. */
    {
        const uint8_t pmode = fz_u8(&b);
        const float mag = (float)fz_range(&b, 1, 100000);
        const int special = fz_u8(&b) < 24;
        for (int64_t e = 0; e < pos_n; ++e) pos[e] = draw_position(&b, pmode, mag, special);
    }
    {
        const uint8_t fmode = fz_u8(&b) % 4;
        const int special = fz_u8(&b) < 16;
        for (int64_t e = 0; e < freq_n; ++e) {
            const int64_t k = (e % (A * np)) % np;
            const float f1d = (float)pow(10000.0, -2.0 * (double)k / (double)rd); /* 1-D RoPE on each axis */
            if (fmode == 0) freqs[e] = f1d;
            else if (fmode == 1) freqs[e] = f1d * (float)fz_range(&b, 0, 1); /* sections: zeros */
            else freqs[e] = fz_float(&b, fmode == 2 ? 1.0f : 100.0f, special);
        }
    }
    {
        const float mag = ldexpf(1.0f, (int)fz_range(&b, -20, 20));
        const int special = fz_u8(&b) < 24;
        for (int64_t e = 0; e < ext; ++e) x0[e] = fz_float(&b, mag, special);
    }
    if (factors) {
        const int special = fz_u8(&b) < 32;
        for (int64_t k = 0; k < np; ++k) factors[k] = fz_float(&b, 2.0f, special);
    }

    /* The buffer x lives in (with pos, freqs or the factors inside it for the overlap case), exact size. */
    const int64_t over_n = overlap_with == 1 ? pos_n : overlap_with == 2 ? freq_n : overlap_with == 3 ? np : 0;
    const int64_t buf_n = overlap_with && overlap_at + over_n > ext ? overlap_at + over_n : ext;
    float *tmpl = fz_floats(buf_n);
    memcpy(tmpl, x0, (size_t)ext * sizeof(float));
    if (overlap_with) {
        const float *src = overlap_with == 1 ? pos : overlap_with == 2 ? freqs : factors;
        memcpy(tmpl + overlap_at, src, (size_t)over_n * sizeof(float));
    }

    /* The oracle, once for all ISAs (the valid call only). */
    uint8_t *kind = NULL;
    double *want = NULL, *bound = NULL;
    if (injected == POSATTN_OK) {
        kind = calloc((size_t)ext, 1);
        want = calloc((size_t)ext, sizeof *want);
        bound = calloc((size_t)ext, sizeof *bound);
        const int backward = use_options && (o.flags & POSATTN_ROPE_BACKWARD);
        const posattn_rope_options none = {0};
        const posattn_rope_options *oo = use_options ? &o : &none;
        for (int64_t t = tb; t < te; ++t) {
            for (int64_t h = 0; h < H; ++h) {
                const int64_t base = t * tsv + h * hsv + off;
                for (int64_t k = 0; k < np; ++k) {
                    const int64_t ia = base + (layout == POSATTN_ROPE_HALF_SPLIT ? k : 2 * k);
                    const int64_t ib = ia + (layout == POSATTN_ROPE_HALF_SPLIT ? np : 1);
                    const float a = x0[ia], bb = x0[ib];
                    const float theta = rope_angle(pos + t * psv, A, freqs + h * fhs, np, k);
                    const float f = rope_factor(oo, k);
                    int kd;
                    if (isnan(a) || isnan(bb) || !isfinite(theta)) {
                        kd = MUST_NAN; /* NaN values, or NaN / infinite angles: cos and sin are NaN */
                    } else if (!isfinite(f)) {
                        kd = ANY; /* an infinite pair factor: values are not scanned, nothing promised */
                    } else if (isinf(a) || isinf(bb)) {
                        /* IEEE: inf * c stays infinite (or NaN when c is 0); the other product cannot cancel it. */
                        kd = NOT_FINITE;
                    } else if ((fabs((double)a) + fabs((double)bb)) * fabs((double)f) > 0x1p127) {
                        kd = ANY; /* float32 overflow of the documented products */
                    } else {
                        kd = BOUND;
                        const double r = sqrt((double)a * a + (double)bb * bb);
                        const double cs = (double)f * cos((double)theta);
                        const double sn = (backward ? -(double)f : (double)f) * sin((double)theta);
                        want[ia] = (double)a * cs - (double)bb * sn;
                        want[ib] = (double)a * sn + (double)bb * cs;
                        /* The header's bound, plus the absolute error of float32 underflow: f cos and f sin rounded
                         * to subnormals (2^-150 each, times the values) and subnormal products. */
                        bound[ia] = bound[ib] = 6.0 * FZ_U * fabs((double)f) * r +
                                                (fabs((double)a) + fabs((double)bb)) * 0x1p-149 + 0x1p-146;
                    }
                    kind[ia] = kind[ib] = (uint8_t)kd;
                }
            }
        }
    }

    if (getenv("FZ_VERBOSE")) {
        fprintf(stderr, "T %lld H %lld D %lld ts %lld hs %lld off %lld rd %lld layout %d A %lld ps %lld fhs %lld "
                "tokens [%lld, %lld) options %d flags %u attn %g factors %p injected %d overlap %d at %lld\n",
                (long long)cT, (long long)cH, (long long)cD, (long long)cts, (long long)chs, (long long)coff,
                (long long)crd, (int)clayout, (long long)cA, (long long)cps, (long long)cfhs, (long long)ctb,
                (long long)cte, use_options, o.flags, (double)o.attn_factor, (const void *)o.pair_factors,
                (int)injected, overlap_with, (long long)overlap_at);
        for (int64_t e = 0; e < pos_n; ++e) fprintf(stderr, "pos[%lld] = %.9g\n", (long long)e, (double)pos[e]);
        for (int64_t e = 0; e < freq_n; ++e) fprintf(stderr, "F[%lld] = %.9g\n", (long long)e, (double)freqs[e]);
        for (int64_t k = 0; factors && k < np; ++k) {
            fprintf(stderr, "f[%lld] = %.9g\n", (long long)k, (double)factors[k]);
        }
        for (int64_t e = 0; e < ext; ++e) fprintf(stderr, "x[%lld] = %.9g\n", (long long)e, (double)x0[e]);
    }

    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    posattn_status first = POSATTN_OK;
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *name = posattn_isa_name(isas[n]);
        float *buf = fz_copy(tmpl, buf_n); /* a fresh x per ISA */
        posattn_rope_options co = o;
        const float *cpos = null_pos ? NULL : pos, *cfreqs = null_freqs ? NULL : freqs;
        if (overlap_with == 1) cpos = buf + overlap_at;
        if (overlap_with == 2) cfreqs = buf + overlap_at;
        if (overlap_with == 3) co.pair_factors = buf + overlap_at;
        posattn_status st = posattn_rope_apply(cT, cH, cD, null_x ? NULL : buf, cts, chs, coff, crd, clayout, cA, cpos,
                                               cps, cfreqs, cfhs, use_options ? &co : NULL, ctb, cte);
        if (n == 0) first = st;
        FZ_CHECK(st == first, "isa %s returned %d (%s), scalar %d (%s)", name, (int)st, posattn_status_string(st),
                 (int)first, posattn_status_string(first));
        FZ_CHECK(st == injected, "isa %s returned %d (%s), expected %d (%s) (T %lld H %lld D %lld rot %lld+%lld "
                 "A %lld)",
                 name, (int)st, posattn_status_string(st), (int)injected, posattn_status_string(injected),
                 (long long)T, (long long)H, (long long)D, (long long)off, (long long)rd, (long long)A);
        if (st != POSATTN_OK) {
            FZ_CHECK(memcmp(buf, tmpl, (size_t)buf_n * sizeof(float)) == 0, "isa %s: error %s but x written", name,
                     posattn_status_string(st));
            free(buf);
            continue;
        }
        for (int64_t e = 0; e < ext; ++e) {
            const double got = buf[e];
            switch (kind[e]) {
            case KEEP: /* outside the rotated dims or tokens, or padding between strides */
                FZ_CHECK(fz_same_bits(buf[e], x0[e]), "isa %s: element %lld changed (not rotated): %.9g -> %.9g", name,
                         (long long)e, (double)x0[e], got);
                break;
            case MUST_NAN:
                FZ_CHECK(isnan(got), "isa %s: element %lld = %.9g, expected NaN", name, (long long)e, got);
                break;
            case NOT_FINITE:
                FZ_CHECK(!isfinite(got), "isa %s: element %lld = %.9g, expected inf or NaN (infinite input)", name,
                         (long long)e, got);
                break;
            case BOUND:
                FZ_CHECK(fabs(got - want[e]) <= bound[e], "isa %s: element %lld (was %.9g): %.9g, exact %.9g, "
                         "bound %.3g",
                         name, (long long)e, (double)x0[e], got, want[e], bound[e]);
                break;
            default: break;
            }
        }
        free(buf);
    }
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(pos), free(freqs), free(x0), free(factors), free(tmpl), free(kind), free(want), free(bound);
    return 0;
}
