/*
 * Differential fuzz target of the LieRE entry points (SPEC 5): posattn_liere_rotation_size, posattn_liere_rotations
 * and posattn_liere_apply. Every ISA this CPU supports runs each call on its own copy of the outputs; they must
 * return the same status, write nothing on error, leave every element outside the tokens, heads and dims they own
 * bit-identical (stride padding, the v part of a packed qkv buffer, the dims outside the rotated range), and be
 * within the header's bound of a float64 oracle: exp(S) of the exponent formed from the same float32 inputs for the
 * rotations, the exact sum over the float32 rotations for apply. Hostile arguments are injected one at a time with
 * the status they must give. The scratch is an exact-size buffer of posattn_liere_scratch_size floats (so that
 * AddressSanitizer sees any access past it), which an error must leave untouched too. See fuzz_support.h.
 *
 * The leading byte picks the part: < 16 rotation_size, < 136 rotations, else apply.
 */
#include "fuzz_support.h"

/* Sizes stay small (exec/s matters more than size here): b = 64 costs milliseconds per block, 16 is rare. */
static int64_t draw_block(fz_bytes *b) {
    static const int64_t common[] = {2, 3, 4, 5, 8};
    const uint8_t k = fz_u8(b);
    return k < 3 ? 16 : common[k % 5];
}

/* One ISA's status against the first ISA's and against what the arguments demand. */
static void check_status(posattn_status st, posattn_status first, posattn_status want, const char *what,
                         const char *isa) {
    FZ_CHECK(st == first, "%s: isa %s returned %s, the first isa %s", what, isa, posattn_status_string(st),
             posattn_status_string(first));
    FZ_CHECK(st == want, "%s: isa %s returned %s, expected %s", what, isa, posattn_status_string(st),
             posattn_status_string(want));
}

/* An exact-size scratch for block blk (valid), filled with the untouched pattern. */
static float *scratch_new(int64_t blk, int64_t *floats) {
    FZ_CHECK(posattn_liere_scratch_size(blk, floats) == POSATTN_OK && *floats >= 4096,
             "scratch_size refused block %lld", (long long)blk);
    float *s = fz_floats(*floats);
    fz_fill_untouched(s, *floats);
    return s;
}

/* Injected scratch faults: none, NULL, or one float short. What they must give when the call needs a scratch. */
enum { SCRATCH_GOOD, SCRATCH_NULL, SCRATCH_SHORT };
static posattn_status scratch_fault_status(int fault) {
    return fault == SCRATCH_NULL ? POSATTN_ERR_NULL : fault == SCRATCH_SHORT ? POSATTN_ERR_SIZE : POSATTN_OK;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_rotation_size                                                                                    */
/* ------------------------------------------------------------------------------------------------------------ */

static int64_t draw_huge(fz_bytes *b) {
    static const int64_t huge[] = {INT64_MAX,         INT64_MIN,         INT64_C(1) << 62, INT64_C(1) << 61,
                                   INT64_C(1) << 40,  INT64_C(1) << 32,  INT32_MAX,        -(INT64_C(1) << 62),
                                   INT64_MAX / 2 + 1, INT64_MAX / 3 + 1, INT64_C(3) << 60, INT64_C(1) << 58};
    return huge[fz_u8(b) % (sizeof huge / sizeof huge[0])];
}

static void fuzz_rotation_size(fz_bytes *b) {
    const int64_t G = fz_u8(b) < 32 ? draw_huge(b) : fz_range(b, -2, 5);
    const int64_t blk = fz_u8(b) < 16 ? draw_huge(b) : fz_range(b, -1, 66);
    int64_t rd;
    const uint8_t rd_mode = fz_u8(b);
    if (rd_mode < 40 && blk >= 2 && blk <= 64) {
        rd = blk * (draw_huge(b) & (INT64_MAX / 64)); /* a multiple of b that makes G * b * rd overflow, mostly */
    } else if (rd_mode < 56) {
        rd = draw_huge(b);
    } else {
        rd = fz_range(b, -2, 130);
    }
    const int null_out = fz_u8(b) < 16;
    int64_t product = 0;
    posattn_status want = POSATTN_OK;
    if (null_out) want = POSATTN_ERR_NULL;
    else if (G <= 0 || rd <= 0) want = POSATTN_ERR_SIZE;
    else if (blk < 2 || blk > 64 || rd % blk != 0) want = POSATTN_ERR_BLOCK;
    else if (__builtin_mul_overflow(G, blk, &product) || __builtin_mul_overflow(product, rd, &product)) {
        want = POSATTN_ERR_OVERFLOW; /* all positive: a step overflows exactly when the true product does */
    }
    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        int64_t out = INT64_C(-0x5A5A5A5A5A5A5A5);
        posattn_status st = posattn_liere_rotation_size(G, blk, rd, null_out ? NULL : &out);
        check_status(st, want, want, "rotation_size", posattn_isa_name(isas[n]));
        if (st != POSATTN_OK) {
            FZ_CHECK(out == INT64_C(-0x5A5A5A5A5A5A5A5), "rotation_size: error %s but wrote",
                     posattn_status_string(st));
        } else {
            FZ_CHECK(out == product, "rotation_size(%lld, %lld, %lld) = %lld", (long long)G, (long long)blk,
                     (long long)rd, (long long)out);
        }
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The float64 oracle of the rotations                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/* The oracle's loops carry no coverage instrumentation: their edges say nothing about the library, and tracing every
 * comparison of a 16 x 16 product took a quarter of the time. */
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

FZ_NO_COVERAGE static void matmul_f64(const double *x, const double *y, double *z, int n) {
    for (int i = 0; i < n; ++i) {
        for (int j = 0; j < n; ++j) {
            double s = 0.0;
            for (int k = 0; k < n; ++k) s += x[i * n + k] * y[k * n + j];
            z[i * n + j] = s;
        }
    }
}

/* exp(S) for an n x n row-major S (n <= 16): scaling to norm 1/8, Taylor to degree 12 (truncation below 1e-21),
 * squaring. Its own error grows like 2^sq * 1e-16, far below the float32 bounds it is compared with. */
FZ_NO_COVERAGE static void expm_f64(const double *s, double *r, int n, double norm) {
    double a[256], term[256], tmp[256];
    int sq = 0;
    while (norm > 0.125) norm *= 0.5, ++sq;
    for (int i = 0; i < n * n; ++i) a[i] = ldexp(s[i], -sq);
    for (int i = 0; i < n * n; ++i) r[i] = term[i] = (i % (n + 1) == 0) ? 1.0 : 0.0;
    for (int k = 1; k <= 12; ++k) {
        matmul_f64(term, a, tmp, n);
        for (int i = 0; i < n * n; ++i) term[i] = tmp[i] / k, r[i] += term[i];
    }
    for (int k = 0; k < sq; ++k) {
        matmul_f64(r, r, tmp, n);
        memcpy(r, tmp, (size_t)n * (size_t)n * sizeof(double));
    }
}

/* Oracle of one block: R* in r (row-major) and the entry bound; returns 0 (check against the bound), 1 (inputs not
 * finite: the header promises NaN in the block) or 2 (no value check: the bound says nothing useful). */
static int oracle_block(const float *pos, int64_t A, const float *gens, int64_t axis_stride, int b, double *r,
                        double *bound) {
    const int T = b * (b - 1) / 2;
    double s[256];
    int finite = 1;
    for (int64_t a = 0; a < A; ++a) finite &= isfinite(pos[a]) != 0;
    for (int64_t a = 0; a < A; ++a) {
        for (int e = 0; e < T; ++e) finite &= isfinite(gens[a * axis_stride + e]) != 0;
    }
    if (!finite) return 1;
    /* S in float64, in axis order as the library forms it (each product is exact in float64). */
    int e = 0;
    for (int i = 0; i < b; ++i) {
        s[i * b + i] = 0.0;
        for (int j = i + 1; j < b; ++j, ++e) {
            double v = 0.0;
            for (int64_t a = 0; a < A; ++a) v += (double)pos[a] * (double)gens[a * axis_stride + e];
            s[i * b + j] = v;
            s[j * b + i] = -v;
        }
    }
    double norm = 0.0;
    for (int c = 0; c < b; ++c) {
        double sum = 0.0;
        for (int i = 0; i < b; ++i) sum += fabs(s[i * b + c]);
        if (sum > norm) norm = sum;
    }
    if (b <= 3) {
        *bound = FZ_U + 0x1p-50 * (1.0 + norm); /* |S| taken as ||S||_1, the largest reading of the header's |S| */
        if (b == 2) {
            const double t = s[1];
            r[0] = cos(t), r[1] = sin(t), r[2] = -sin(t), r[3] = cos(t);
        } else if (norm <= 1.0) {
            expm_f64(s, r, 3, norm);
        } else { /* Rodrigues: exact for any angle, unlike a scaled Taylor series at 1e30 */
            const double th = sqrt(s[1] * s[1] + s[2] * s[2] + s[5] * s[5]);
            double s2[9];
            matmul_f64(s, s, s2, 3);
            const double f1 = sin(th) / th, f2 = (1.0 - cos(th)) / (th * th);
            for (int i = 0; i < 9; ++i) r[i] = (i % 4 == 0 ? 1.0 : 0.0) + f1 * s[i] + f2 * s2[i];
        }
        return 0;
    }
    int sc = 0;
    for (double m = norm; m > 0.5; m *= 0.5) ++sc;
    *bound = (1.0 + ldexp(1.0, sc)) * 4.0 * b * FZ_U;
    if (*bound >= 2.0) return 2; /* entries of R and R* are in [-1, 1]: nothing to check */
    expm_f64(s, r, b, norm);
    return 0;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_rotations                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

static void fuzz_rotations(fz_bytes *b) {
    const int64_t n_tok = fz_range(b, 1, 4), A = fz_range(b, 1, 4), G = fz_range(b, 1, 2), blk = draw_block(b);
    const int64_t nb = fz_range(b, 1, blk <= 4 ? 3 : blk <= 8 ? 2 : 1), rd = nb * blk, T = blk * (blk - 1) / 2;
    const int64_t per = G * blk * rd;
    int64_t ps = fz_bool(b) ? 0 : A + fz_range(b, 0, 2);
    int64_t rts = fz_bool(b) ? 0 : per + fz_range(b, 0, 3);
    const int64_t psv = ps ? ps : A, rtsv = rts ? rts : per;
    int64_t tb = fz_range(b, 0, n_tok), te = fz_range(b, tb, n_tok);
    const int special = fz_u8(b) < 24;
    static const float pmags[] = {0.5f, 2.0f, 16.0f, 100.0f}, gmags[] = {0.05f, 0.5f, 2.0f, 0.01f};
    const float pmag = pmags[fz_u8(b) % 4], gmag = gmags[fz_u8(b) % 4];

    /* Exact-size inputs; position padding holds NaN, so reading it would show in the rotations. */
    const int64_t n_pos = (n_tok - 1) * psv + A, n_gen = G * A * nb * T, ext = (n_tok - 1) * rtsv + per;
    float *pos = fz_floats(n_pos), *gens = fz_floats(n_gen);
    fz_fill_untouched(pos, n_pos);
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t a = 0; a < A; ++a) pos[t * psv + a] = fz_float(b, pmag, special);
    }
    for (int64_t e = 0; e < n_gen; ++e) gens[e] = fz_float(b, gmag, special);
    float *pos0 = fz_copy(pos, n_pos), *gens0 = fz_copy(gens, n_gen);

    float *rot0 = fz_floats(ext);
    fz_fill_untouched(rot0, ext);
    posattn_liere_options o = {0};
    const int use_options = fz_bool(b);
    int64_t c_n_tok = n_tok, c_A = A, c_G = G, c_blk = blk, c_rd = rd;
    int null_pos = 0, null_gens = 0, null_rot = 0, pos_is_rot = 0, gens_is_rot = 0, scratch_fault = SCRATCH_GOOD;
    int64_t scratch_floats;
    float *scratch0 = scratch_new(blk, &scratch_floats);
    posattn_status want = POSATTN_OK;
    switch (fz_u8(b) % 24) {
    case 0: null_pos = 1, want = POSATTN_ERR_NULL; break;
    case 1: null_gens = 1, want = POSATTN_ERR_NULL; break;
    case 2: null_rot = 1, want = POSATTN_ERR_NULL; break;
    case 3: c_n_tok = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE; break;
    case 4: c_A = fz_bool(b) ? 0 : 5 + fz_range(b, 0, 60), want = POSATTN_ERR_AXES; break;
    case 5: c_G = -fz_range(b, 0, 1), want = POSATTN_ERR_SIZE; break;
    case 6: {
        const int64_t bad[] = {1, 65, rd + 1, 0, -2};
        c_blk = bad[fz_u8(b) % 5], want = POSATTN_ERR_BLOCK;
        break;
    }
    case 7:
        if (fz_bool(b)) te = n_tok + 1 + fz_range(b, 0, 3);
        else if (tb < n_tok) tb = te + 1;
        else tb = -1;
        want = POSATTN_ERR_ROW_RANGE;
        break;
    case 8: ps = -fz_range(b, 1, 3), want = POSATTN_ERR_STRIDE; break;
    case 9:
        if (A > 1) ps = fz_range(b, 1, A - 1), want = POSATTN_ERR_STRIDE;
        break;
    case 10: rts = fz_bool(b) ? -1 : per - fz_range(b, 1, 3), want = POSATTN_ERR_STRIDE; break;
    case 11: o.flags = 1u << fz_range(b, 0, 31), want = use_options ? POSATTN_ERR_FLAGS : POSATTN_OK; break;
    case 12:
        if (n_tok > 1) rts = (INT64_C(1) << 61) + fz_range(b, 0, 3), want = POSATTN_ERR_OVERFLOW;
        break;
    case 13:
        if (n_tok > 1) ps = fz_bool(b) ? INT64_C(1) << 61 : INT64_MAX / 2, want = POSATTN_ERR_OVERFLOW;
        break;
    case 14: pos_is_rot = 1, want = POSATTN_ERR_OVERLAP; break;
    case 15: gens_is_rot = 1, want = POSATTN_ERR_OVERLAP; break;
    case 16: c_rd = blk * (INT64_MAX / blk), want = POSATTN_ERR_OVERFLOW; break; /* G * b * rd > INT64_MAX */
    case 17: /* the scratch is needed (and checked) for b >= 4 only */
        scratch_fault = fz_bool(b) ? SCRATCH_NULL : SCRATCH_SHORT;
        want = blk >= 4 ? scratch_fault_status(scratch_fault) : POSATTN_OK;
        break;
    default: break;
    }

    /* The oracle of every block of every token in range, laid out as rot (offsets within a token). */
    double *ora = malloc((size_t)(n_tok * per) * sizeof(double));
    double *bnd = malloc((size_t)(n_tok * G * nb) * sizeof(double));
    int *mode = malloc((size_t)(n_tok * G * nb) * sizeof(int));
    if (want == POSATTN_OK) {
        double r[256];
        for (int64_t t = tb; t < te; ++t) {
            for (int64_t g = 0; g < G; ++g) {
                for (int64_t j = 0; j < nb; ++j) {
                    const int64_t blk_id = (t * G + g) * nb + j;
                    mode[blk_id] = oracle_block(pos + t * psv, A, gens + (g * A * nb + j) * T, nb * T, (int)blk, r,
                                                &bnd[blk_id]);
                    for (int64_t i = 0; i < blk; ++i) {
                        for (int64_t c = 0; c < blk; ++c) {
                            ora[t * per + (g * blk + c) * rd + j * blk + i] = r[i * blk + c];
                        }
                    }
                }
            }
        }
    }

    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    posattn_status first = POSATTN_OK;
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *name = posattn_isa_name(isas[n]);
        float *rot = fz_copy(rot0, ext), *scratch = fz_copy(scratch0, scratch_floats);
        const float *cpos = null_pos ? NULL : pos_is_rot ? rot : pos;
        const float *cgens = null_gens ? NULL : gens_is_rot ? rot : gens;
        posattn_status st =
            posattn_liere_rotations(c_n_tok, c_A, cpos, ps, c_G, c_blk, c_rd, cgens, null_rot ? NULL : rot, rts,
                                    scratch_fault == SCRATCH_NULL ? NULL : scratch,
                                    scratch_floats - (scratch_fault == SCRATCH_SHORT), use_options ? &o : NULL, tb, te);
        if (n == 0) first = st;
        check_status(st, first, want, "rotations", name);
        FZ_CHECK(memcmp(pos, pos0, (size_t)n_pos * sizeof(float)) == 0 &&
                     memcmp(gens, gens0, (size_t)n_gen * sizeof(float)) == 0,
                 "rotations: isa %s wrote its inputs", name);
        if (st != POSATTN_OK) {
            FZ_CHECK(memcmp(rot, rot0, (size_t)ext * sizeof(float)) == 0 &&
                         memcmp(scratch, scratch0, (size_t)scratch_floats * sizeof(float)) == 0,
                     "rotations: isa %s: error %s but wrote", name, posattn_status_string(st));
            free(rot), free(scratch);
            continue;
        }
        for (int64_t e = 0; e < ext; ++e) {
            const int64_t t = e / rtsv, o_t = e % rtsv;
            if (t < tb || t >= te || o_t >= per) {
                FZ_CHECK(fz_same_bits(rot[e], rot0[e]), "rotations: isa %s wrote element %lld outside its tokens", name,
                         (long long)e);
            }
        }
        for (int64_t t = tb; t < te; ++t) {
            for (int64_t g = 0; g < G; ++g) {
                for (int64_t j = 0; j < nb; ++j) {
                    const int64_t blk_id = (t * G + g) * nb + j;
                    int nan_seen = 0;
                    for (int64_t i = 0; i < blk; ++i) {
                        for (int64_t c = 0; c < blk; ++c) {
                            const int64_t at = (g * blk + c) * rd + j * blk + i;
                            const float got = rot[t * rtsv + at];
                            nan_seen |= isnan(got) != 0;
                            if (mode[blk_id] != 0) continue;
                            const double want_v = ora[t * per + at];
                            FZ_CHECK(fabs((double)got - want_v) <= bnd[blk_id],
                                     "rotations: isa %s b %lld A %lld token %lld set %lld block %lld R[%lld][%lld] = "
                                     "%.9g, exp(S) %.17g, bound %.3g",
                                     name, (long long)blk, (long long)A, (long long)t, (long long)g, (long long)j,
                                     (long long)i, (long long)c, (double)got, want_v, bnd[blk_id]);
                        }
                    }
                    FZ_CHECK(mode[blk_id] != 1 || nan_seen,
                             "rotations: isa %s b %lld token %lld set %lld block %lld: non-finite input, no NaN", name,
                             (long long)blk, (long long)t, (long long)g, (long long)j);
                }
            }
        }
        free(rot), free(scratch);
    }
    free(ora), free(bnd), free(mode);
    free(rot0), free(pos), free(gens), free(pos0), free(gens0), free(scratch0);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_apply                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/* Where a [n_tok][heads][D] tensor lives in its buffer, strides resolved. */
typedef struct tensor {
    int64_t off, heads, ts, hs;
} tensor;

/* The expected value of every element of a buffer: want[e] with kind[e] = 0 (bit-identical to before), 1 (within
 * bnd[e] of want[e]), 2 (NaN), 3 (not checked: float32 overflow of the formula). */
typedef struct expect {
    double *want, *bnd;
    unsigned char *kind;
} expect;

static void expect_tensor(const float *buf, const tensor *x, int64_t tb, int64_t te, int64_t ro, int64_t rd,
                          int64_t blk, const float *rot, int64_t rtsv, int64_t G, int backward, expect *ex) {
    const int64_t per_set = x->heads / G;
    for (int64_t t = tb; t < te; ++t) {
        for (int64_t h = 0; h < x->heads; ++h) {
            const int64_t g = h / per_set, base = x->off + t * x->ts + h * x->hs + ro;
            for (int64_t d = 0; d < rd; ++d) {
                const int64_t j = d / blk, r = d % blk;
                double sum = 0.0, sabs = 0.0;
                for (int64_t c = 0; c < blk; ++c) {
                    const int64_t rr = backward ? c : r, cc = backward ? r : c;
                    const double term = (double)rot[t * rtsv + (g * blk + cc) * rd + j * blk + rr] *
                                        (double)buf[base + j * blk + c];
                    sum += term, sabs += fabs(term);
                }
                const int64_t e = base + d;
                ex->want[e] = sum;
                if (isnan(sum)) {
                    ex->kind[e] = 2;
                } else if (!(sabs <= 1e37)) {
                    ex->kind[e] = 3;
                } else {
                    /* The header's (b + 1) u relative bound, plus the absolute half-ulps of the float32 subnormal
                     * range that a first-order relative bound cannot express (products of tiny values). */
                    ex->kind[e] = 1;
                    ex->bnd[e] = (double)(blk + 1) * FZ_U * sabs + (double)(blk + 1) * 0x1p-149;
                }
            }
        }
    }
}

static void check_buffer(const float *got, const float *before, const expect *ex, int64_t n, const char *what,
                         const char *isa) {
    for (int64_t e = 0; e < n; ++e) {
        switch (ex->kind[e]) {
        case 0:
            FZ_CHECK(fz_same_bits(got[e], before[e]), "apply: isa %s wrote %s element %lld it does not own", isa,
                     what, (long long)e);
            break;
        case 1:
            FZ_CHECK(fabs((double)got[e] - ex->want[e]) <= ex->bnd[e],
                     "apply: isa %s %s element %lld = %.9g, exact %.17g, bound %.3g", isa, what, (long long)e,
                     (double)got[e], ex->want[e], ex->bnd[e]);
            break;
        case 2:
            FZ_CHECK(isnan(got[e]), "apply: isa %s %s element %lld = %g, expected NaN", isa, what, (long long)e,
                     (double)got[e]);
            break;
        default: break;
        }
    }
}

static expect expect_new(int64_t n) {
    expect ex = {malloc((size_t)n * sizeof(double)), malloc((size_t)n * sizeof(double)), calloc((size_t)n, 1)};
    return ex;
}

static void expect_free(expect *ex) {
    free(ex->want), free(ex->bnd), free(ex->kind);
}

static void fuzz_apply(fz_bytes *b) {
    const int64_t n_tok = fz_range(b, 1, 4), G = fz_range(b, 1, 2), blk = draw_block(b);
    const int64_t nb = fz_range(b, 1, blk <= 4 ? 3 : blk <= 8 ? 2 : 1), rd = nb * blk, per = G * blk * rd;
    const int64_t ro = fz_range(b, 0, 2), D = ro + rd + fz_range(b, 0, 2);
    const int64_t qh = G * fz_range(b, 1, 2);
    const int has_k = fz_u8(b) < 192;
    const int64_t kh = has_k ? G * fz_range(b, 1, qh / G) : 0; /* GQA: k has at most as many heads as q */
    const int packed = has_k && fz_u8(b) < 64;
    const int backward = fz_bool(b);
    int64_t tb = fz_range(b, 0, n_tok), te = fz_range(b, tb, n_tok);
    int64_t rts = fz_bool(b) ? 0 : per + fz_range(b, 0, 3);
    const int64_t rtsv = rts ? rts : per;
    const int special = fz_u8(b) < 24;
    static const float xmags[] = {1.0f, 100.0f, 1e-3f, 1e20f};
    const float xmag = xmags[fz_u8(b) % 4];

    /* Layouts: separate q and k buffers with padded strides, or one packed [n_tok][q | k | v] buffer. */
    tensor q = {0, qh, 0, 0}, k = {0, kh, 0, 0};
    int64_t q_ts, q_hs, k_ts = 0, k_hs = 0, q_ext, k_ext = 0;
    q_hs = fz_bool(b) ? 0 : D + fz_range(b, 0, 2);
    q.hs = q_hs ? q_hs : D;
    if (packed) {
        k_hs = q_hs, k.hs = q.hs;
        k.off = qh * q.hs;
        q.ts = k.ts = (qh + kh) * q.hs + fz_range(b, 0, 2 * D); /* the v part */
        q_ts = k_ts = q.ts;
        q_ext = n_tok * q.ts;
    } else {
        q_ts = fz_bool(b) ? 0 : qh * q.hs + fz_range(b, 0, 3);
        q.ts = q_ts ? q_ts : qh * q.hs;
        q_ext = (n_tok - 1) * q.ts + (qh - 1) * q.hs + D;
        if (has_k) {
            k_hs = fz_bool(b) ? 0 : D + fz_range(b, 0, 2);
            k.hs = k_hs ? k_hs : D;
            k_ts = fz_bool(b) ? 0 : kh * k.hs + fz_range(b, 0, 3);
            k.ts = k_ts ? k_ts : kh * k.hs;
            k_ext = (n_tok - 1) * k.ts + (kh - 1) * k.hs + D;
        }
    }

    /* Rotations: arbitrary values (the bound holds for any rot), or true rotations of the library. Padding is NaN,
     * so reading it would show in the outputs. */
    const int64_t r_ext = (n_tok - 1) * rtsv + per;
    float *rot = fz_floats(r_ext);
    fz_fill_untouched(rot, r_ext);
    int64_t scratch_floats;
    float *scratch0 = scratch_new(blk, &scratch_floats);
    if (fz_u8(b) < 96) {
        const int64_t T = blk * (blk - 1) / 2;
        float *pos = fz_floats(n_tok), *gens = fz_floats(G * nb * T);
        for (int64_t t = 0; t < n_tok; ++t) pos[t] = fz_float(b, 8.0f, 0);
        for (int64_t e = 0; e < G * nb * T; ++e) gens[e] = fz_float(b, 1.0f, 0);
        float *scratch = fz_copy(scratch0, scratch_floats);
        posattn_status st = posattn_liere_rotations(n_tok, 1, pos, 0, G, blk, rd, gens, rot, rts, scratch,
                                                    scratch_floats, NULL, 0, n_tok);
        free(scratch);
        FZ_CHECK(st == POSATTN_OK, "apply: building rotations: %s", posattn_status_string(st));
        free(pos), free(gens);
    } else {
        for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t e = 0; e < per; ++e) rot[t * rtsv + e] = fz_float(b, 1.0f, special);
        }
    }
    float *q0 = fz_floats(q_ext), *k0 = has_k && !packed ? fz_floats(k_ext) : NULL;
    for (int64_t e = 0; e < q_ext; ++e) q0[e] = fz_float(b, xmag, special);
    for (int64_t e = 0; e < k_ext; ++e) k0[e] = fz_float(b, xmag, special);

    posattn_liere_options o = {0};
    o.flags = backward ? POSATTN_LIERE_BACKWARD : 0;
    const int use_options = backward || fz_bool(b);
    int64_t c_n_tok = n_tok, c_D = D, c_ro = ro, c_rd = rd, c_blk = blk, c_qh = qh, c_kh = kh, c_G = G;
    int null_q = 0, null_rot = 0, k_on_q = 0, rot_on_q = 0, rot_on_k = 0, scratch_fault = SCRATCH_GOOD;
    posattn_status want = POSATTN_OK;
    switch (fz_u8(b) % 40) {
    case 0: null_q = 1, want = POSATTN_ERR_NULL; break;
    case 1: null_rot = 1, want = POSATTN_ERR_NULL; break;
    case 2: c_n_tok = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE; break;
    case 3: c_D = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE; break;
    case 4: c_qh = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE; break;
    case 5: c_G = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE; break;
    case 6:
        if (has_k) c_kh = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE;
        break;
    case 7: c_rd = -fz_range(b, 0, 2), want = POSATTN_ERR_SIZE; break;
    case 8: c_ro = fz_bool(b) ? -fz_range(b, 1, 3) : D + 1, want = POSATTN_ERR_LAYOUT; break;
    case 9: c_D = ro + rd - fz_range(b, 1, ro + rd - 1 > 0 ? ro + rd - 1 : 1), want = POSATTN_ERR_LAYOUT; break;
    case 10: {
        const int64_t bad[] = {1, 65, rd + 1, 0, -3};
        c_blk = bad[fz_u8(b) % 5], want = POSATTN_ERR_BLOCK;
        break;
    }
    case 11:
        if (G == 2) c_qh = qh + 1, want = POSATTN_ERR_SIZE;
        break;
    case 12:
        if (G == 2 && has_k) c_kh = kh - 1, want = POSATTN_ERR_SIZE;
        break;
    case 13:
        if (fz_bool(b)) te = n_tok + 1;
        else if (tb < n_tok) tb = te + 1;
        else tb = -fz_range(b, 1, 2);
        want = POSATTN_ERR_ROW_RANGE;
        break;
    case 14: q_ts = -1, want = POSATTN_ERR_STRIDE; break;
    case 15: q_hs = -fz_range(b, 1, 2), want = POSATTN_ERR_STRIDE; break;
    case 16: q_hs = D - fz_range(b, 1, D - 1), want = POSATTN_ERR_STRIDE; break; /* also with one head */
    case 17:
        if (n_tok > 1) q_ts = (qh - 1) * q.hs + D - 1, want = POSATTN_ERR_STRIDE; /* token rows overlap */
        break;
    case 18:
        if (has_k) k_ts = -1, want = POSATTN_ERR_STRIDE;
        break;
    case 19:
        if (has_k) k_hs = D - fz_range(b, 1, D - 1), want = POSATTN_ERR_STRIDE;
        break;
    case 20: rts = fz_bool(b) ? -1 : per - fz_range(b, 1, 3), want = POSATTN_ERR_STRIDE; break;
    case 21:
        if (n_tok > 1) q_ts = fz_bool(b) ? INT64_C(1) << 61 : INT64_MAX / 3, want = POSATTN_ERR_OVERFLOW;
        break;
    case 22:
        if (qh > 1) q_ts = 0, q_hs = INT64_C(1) << 61, want = POSATTN_ERR_OVERFLOW;
        break;
    case 23:
        if (n_tok > 1) rts = INT64_C(1) << 61, want = POSATTN_ERR_OVERFLOW;
        break;
    case 24:
        if (has_k && n_tok > 1 && !packed) k_ts = (INT64_MAX / 4) + fz_range(b, 0, 7), want = POSATTN_ERR_OVERFLOW;
        break;
    case 25: o.flags |= 2u << fz_range(b, 0, 30), want = use_options ? POSATTN_ERR_FLAGS : POSATTN_OK; break;
    case 26: k_on_q = 1, want = POSATTN_ERR_OVERLAP; break; /* k one float after q: shares bytes */
    case 27: rot_on_q = 1, want = POSATTN_ERR_OVERLAP; break;
    case 28:
        if (has_k) rot_on_k = 1, want = POSATTN_ERR_OVERLAP;
        break;
    case 29:
        /* One token, k the same heads as q, equal token strides whose byte count does not fit in int64: the packed
         * q/k check must not form tok_stride * sizeof(float) unchecked (a signed overflow before ef4690f). */
        if (n_tok == 1) k_on_q = 2, q_ts = k_ts = (INT64_C(1) << 61) + fz_range(b, 0, 3), want = POSATTN_ERR_OVERLAP;
        break;
    case 30:
        /* A head larger than the address space, rotated at its far end (wrapped and was accepted before ef4690f). */
        c_D = INT64_C(1) << 62, c_ro = c_D - rd, q_ts = q_hs = 0, want = POSATTN_ERR_OVERFLOW;
        break;
    case 31: /* the scratch is needed (and checked) backward only */
        scratch_fault = fz_bool(b) ? SCRATCH_NULL : SCRATCH_SHORT;
        want = backward ? scratch_fault_status(scratch_fault) : POSATTN_OK;
        break;
    default: break;
    }
    if (!use_options) o.flags = 0;

    /* Expectations, from the values before the call. */
    expect qx = expect_new(q_ext), kx = expect_new(k_ext > 0 ? k_ext : 1);
    if (want == POSATTN_OK) {
        expect_tensor(q0, &q, tb, te, ro, rd, blk, rot, rtsv, G, backward, &qx);
        if (has_k) expect_tensor(packed ? q0 : k0, &k, tb, te, ro, rd, blk, rot, rtsv, G, backward, packed ? &qx : &kx);
    }
    float *rot_before = fz_copy(rot, r_ext);

    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    posattn_status first = POSATTN_OK;
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *name = posattn_isa_name(isas[n]);
        float *qb = fz_copy(q0, q_ext), *kb = k0 ? fz_copy(k0, k_ext) : NULL;
        float *scratch = fz_copy(scratch0, scratch_floats);
        float *qp = null_q ? NULL : qb;
        float *kp = !has_k ? NULL : packed ? qb + k.off : kb;
        int64_t kh_arg = c_kh;
        if (k_on_q) kp = qb + (k_on_q == 1 ? 1 : 0), kh_arg = k_on_q == 1 && has_k ? c_kh : qh;
        const float *rp = null_rot ? NULL : rot_on_q ? (const float *)qb : rot_on_k ? (const float *)kp : rot;
        posattn_status st =
            posattn_liere_apply(c_n_tok, c_D, c_ro, c_rd, c_blk, qp, c_qh, q_ts, q_hs, kp, kh_arg, k_ts, k_hs, rp, rts,
                                c_G, scratch_fault == SCRATCH_NULL ? NULL : scratch,
                                scratch_floats - (scratch_fault == SCRATCH_SHORT), use_options ? &o : NULL, tb, te);
        if (n == 0) first = st;
        check_status(st, first, want, "apply", name);
        FZ_CHECK(memcmp(rot, rot_before, (size_t)r_ext * sizeof(float)) == 0, "apply: isa %s wrote rot", name);
        if (st != POSATTN_OK) {
            FZ_CHECK(memcmp(qb, q0, (size_t)q_ext * sizeof(float)) == 0 &&
                         (!kb || memcmp(kb, k0, (size_t)k_ext * sizeof(float)) == 0) &&
                         memcmp(scratch, scratch0, (size_t)scratch_floats * sizeof(float)) == 0,
                     "apply: isa %s: error %s but wrote", name, posattn_status_string(st));
        } else {
            check_buffer(qb, q0, &qx, q_ext, packed ? "qkv" : "q", name);
            if (kb) check_buffer(kb, k0, &kx, k_ext, "k", name);
        }
        free(qb), free(kb), free(scratch);
    }
    expect_free(&qx), expect_free(&kx);
    free(rot), free(rot_before), free(q0), free(k0), free(scratch0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = {data, size};
    const uint8_t part = fz_u8(&b);
    if (part < 16) fuzz_rotation_size(&b);
    else if (part < 136) fuzz_rotations(&b);
    else fuzz_apply(&b);
    posattn_force_isa(POSATTN_ISA_AUTO);
    return 0;
}
