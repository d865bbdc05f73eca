/*
 * Differential fuzz target of the fused attention (SPEC 9): posattn_attention over a row range,
 * posattn_attention_partial over 1..8 key ranges then posattn_attention_merge, or posattn_attention_far_field
 * over summaries of the same keys and positions (its bound adds 2 eps max|v| and the merges of up to one range per
 * block; keys_read within [0, rows * nk]), on every ISA against a float64
 * oracle within the bound of include/posattn.h; same status on every ISA, nothing written on error (out, lse, and
 * the partials of a refused partial call), hostile arguments one at a time. See fuzz_support.h.
 */
#include "fuzz_alibi.h"

enum { MODE_FULL, MODE_SPLIT, MODE_FAR };

#define FAR_EPS 0x1p-24 /* the default eps of posattn_attention_far_field */

typedef struct call {
    posattn_attention_tensors t;
    int use_t;
    float scale;
    const float *slopes;
    fz_positions pos;
    posattn_softmax_options o;
    int use_options;
    int mode;
    int n_ranges;
    int64_t cuts[9];
    int parts_null;
    int out_on_input; /* out placed on q (1), k (2) or v (3): POSATTN_ERR_OVERLAP */
    int64_t rb, re;
    /* resolved strides, for the oracle */
    int64_t q_tok, q_head, q_dim, k_tok, k_head, v_tok, v_head, o_tok, o_head;
} call;

static size_t kv_bytes(posattn_kv_type type) {
    return type == POSATTN_KV_F32 ? 4 : 2;
}

static double f16_value(uint16_t v) {
    double sign = (v & 0x8000u) ? -1.0 : 1.0;
    unsigned e = (v >> 10) & 0x1Fu, m = v & 0x3FFu;
    if (e == 0x1Fu) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * ldexp((double)m, -24);
    return sign * ldexp((double)(m + 1024u), (int)e - 25);
}

static double kv_value(const void *base, posattn_kv_type type, int64_t at) {
    if (type == POSATTN_KV_F32) return (double)((const float *)base)[at];
    const uint16_t v = ((const uint16_t *)base)[at];
    if (type == POSATTN_KV_F16) return f16_value(v);
    const uint32_t bits = (uint32_t)v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return (double)f;
}

/* A float as the element type: f32 as is, f16 from a float of its range, bf16 from the high half of the bits. */
static void kv_store(void *base, posattn_kv_type type, int64_t at, float f, uint16_t raw16, int use_raw) {
    if (type == POSATTN_KV_F32) {
        ((float *)base)[at] = f;
        return;
    }
    uint16_t v;
    if (use_raw) {
        v = raw16;
    } else if (type == POSATTN_KV_BF16) {
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        v = (uint16_t)(bits >> 16);
    } else { /* f16: nearest representable by truncation is enough for a generator */
        double x = fabs((double)f);
        int e;
        frexp(x, &e);
        if (!(x == x)) v = 0x7E00u;
        else if (x >= 65504.0) v = 0x7C00u;
        else if (x < 0x1p-24) v = 0;
        else if (e - 1 < -14) v = (uint16_t)(x / 0x1p-24);
        else v = (uint16_t)(((unsigned)(e - 1 + 15) << 10) | ((unsigned)(ldexp(x, -(e - 1)) * 1024.0) & 0x3FFu));
        if (f < 0) v |= 0x8000u;
    }
    ((uint16_t *)base)[at] = v;
}

static double mask_value(const call *c, int64_t h, int64_t i, int64_t j) {
    const posattn_softmax_options *o = &c->o;
    const int64_t mrs = o->mask_row_stride ? o->mask_row_stride : c->t.nk;
    const int64_t at = h * o->mask_head_stride + i * mrs + j;
    if (o->mask_type == POSATTN_MASK_F16) return f16_value(((const uint16_t *)o->mask)[at]);
    return (double)((const float *)o->mask)[at];
}

/*
 * One computed row of one ISA against the oracle: include/posattn.h, posattn_attention, "Accuracy":
 *   |O_d - O*_d| <= ((dk + 10) max A_j + 10 L + 2 max d_j + B + 60) u V_d + nk 2^-62 max_j |v_jd|
 *                    + (2 nk + 1) 2^-150   (+ 2 u V_d per merged range),
 *   |lse - lse*| <= ((dk + 10) max A_j + 11 L + 20) u + u |lse*|;  N-D rows: 20 L and 21 L.
 */
static void check_row(const call *c, int64_t r, const float *out, const float *lse, const char *isa) {
    const posattn_attention_tensors *t = &c->t;
    const int64_t nq = t->nq, nk = t->nk, dk = t->dk, dv = t->dv, h = r / nq, i = r % nq;
    const int64_t g = h / (t->n_heads / t->n_kv_heads);
    const posattn_softmax_options *o = &c->o;
    const int use_o = c->use_options;
    const int causal = use_o && (o->flags & POSATTN_CAUSAL);
    const int mts = use_o && (o->flags & POSATTN_MASK_TIMES_SLOPE);
    const int64_t window = use_o ? o->window : 0, diag = i + nk - nq;
    const int has_sink = use_o && o->sinks;
    const double sink = has_sink ? (double)o->sinks[h] : -INFINITY;
    const float *got = out + i * c->o_tok + h * c->o_head;
    double *x = malloc((size_t)nk * sizeof *x);
    unsigned char *valid = malloc((size_t)nk);
    double mx = -INFINITY, A = 0.0, L = has_sink ? fabs(sink) : 0.0, mid = 0.0, vmax_all = 0.0;
    int nan_row = has_sink && isnan(sink), nd = 0, loose = 0, any_valid = 0;
    for (int64_t j = 0; j < nk; ++j) {
        int v = !(causal && j > diag) && !(window > 0 && llabs(j - diag) >= window);
        const double mask = (use_o && o->mask) ? mask_value(c, h, i, j) : 0.0;
        if (use_o && o->mask && mask == -INFINITY) v = 0;
        valid[j] = (unsigned char)v;
        if (!v) continue;
        any_valid = 1;
        double s = 0.0, s_abs = 0.0;
        for (int64_t d = 0; d < dk; ++d) {
            const double p = (double)t->q[i * c->q_tok + h * c->q_head + d * c->q_dim] *
                             kv_value(t->k, t->k_type, j * c->k_tok + g * c->k_head + d);
            s += p, s_abs += fabs(p);
        }
        /* A_j is the uncapped magnitude (the cap shrinks the dot product's error, never the reverse); L_j takes
         * the capped score, as posattn_alibi_softmax's L. */
        double xj = (double)c->scale * s;
        const double Aj = fabs((double)c->scale) * s_abs;
        if (use_o && o->softcap > 0.0f) xj = (double)o->softcap * tanh(xj / (double)o->softcap);
        const double Lx = (use_o && o->softcap > 0.0f) ? fabs(xj) : Aj;
        int kept = 0;
        double m = 0.0, bias = 0.0;
        if (c->slopes && !mts) bias = fz_oracle_bias(c->slopes, &c->pos, nq, nk, h, i, j, &kept, &m);
        if (kept >= 2) nd = 1;
        if (c->slopes && kept == 0 && !mts && !isfinite(c->slopes[h])) loose = 1;
        const double mterm = (use_o && o->mask) ? (mts ? (double)c->slopes[h] * mask : mask) : 0.0;
        /* The float32 dot product forms the unscaled sum: it may overflow even when scale makes it small. */
        mid = fmax(mid, fmax(m, fmax(s_abs, fabs((double)c->scale) * s_abs)));
        A = fmax(A, Aj);
        L = fmax(L, Lx + fabs(bias) + fabs(mterm));
        xj += bias + mterm;
        x[j] = xj;
        if (isnan(xj)) nan_row = 1;
        if (xj > mx) mx = xj;
        for (int64_t d = 0; d < dv; ++d) {
            const double vv = fabs(kv_value(t->v, t->v_type, j * c->v_tok + g * c->v_head + d));
            vmax_all = isnan(vv) ? INFINITY : fmax(vmax_all, vv); /* NaN or inf in v: sanity checks only */
        }
    }
    if (!nan_row && mx == INFINITY) nan_row = 1; /* inf - inf */
    const double logit_max = mx;
    double top = mx;
    if (has_sink && sink > top) top = sink;
    /* First order in u (L u << 1), finite values: otherwise only sanity is checked, as in fuzz_alibi_softmax. */
    const int huge = L > 1e4 || mid > 1e4 || A > 1e4 || loose || !(vmax_all <= 1e30);
    const double merge_u = c->mode == MODE_SPLIT ? 2.0 * c->n_ranges
                           : c->mode == MODE_FAR ? 2.0 * (double)((nk + POSATTN_KV_SUMMARY_BLOCK - 1) / POSATTN_KV_SUMMARY_BLOCK +
                                                                  c->n_ranges)
                                                 : 0.0;
    const double far_eps = c->mode == MODE_FAR ? FAR_EPS : 0.0;
    if (nan_row) {
        if (!huge) {
            for (int64_t d = 0; d < dv; ++d) {
                FZ_CHECK(isnan(got[d]), "isa %s row %lld: NaN logit but out[%lld] = %g", isa, (long long)r,
                         (long long)d, (double)got[d]);
            }
            FZ_CHECK(!lse || isnan(lse[r]), "isa %s row %lld: lse %g, expected NaN", isa, (long long)r, (double)lse[r]);
        }
    } else if (top == -INFINITY) { /* no valid key (or only -inf logits) and no sink */
        if (!any_valid || !huge) {
            for (int64_t d = 0; d < dv; ++d) {
                FZ_CHECK(got[d] == 0.0f, "isa %s row %lld: no valid key but out[%lld] = %g", isa, (long long)r,
                         (long long)d, (double)got[d]);
            }
            FZ_CHECK(!lse || lse[r] == -INFINITY, "isa %s row %lld: lse %g, expected -inf", isa, (long long)r,
                     (double)lse[r]);
        }
    } else if (huge) {
        for (int64_t d = 0; d < dv; ++d) {
            FZ_CHECK(isnan(got[d]) || !(vmax_all <= 1e30) || fabs((double)got[d]) <= vmax_all * (1.0 + 1e-3),
                     "isa %s row %lld: out[%lld] = %g beyond max |v| %g", isa, (long long)r, (long long)d,
                     (double)got[d], vmax_all);
        }
    } else {
        double sum = has_sink ? exp(sink - top) : 0.0, dmax = 0.0;
        for (int64_t j = 0; j < nk; ++j) {
            if (!valid[j] || x[j] == -INFINITY) continue;
            sum += exp(x[j] - top);
            dmax = fmax(dmax, logit_max - x[j]);
        }
        dmax = fmin(dmax, 44.0);
        for (int64_t d = 0; d < dv; ++d) {
            double o_exact = 0.0, vsum = 0.0, vmax = 0.0;
            for (int64_t j = 0; j < nk; ++j) {
                if (!valid[j]) continue;
                const double v = kv_value(t->v, t->v_type, j * c->v_tok + g * c->v_head + d);
                vmax = fmax(vmax, fabs(v));
                if (x[j] == -INFINITY) continue;
                const double p = exp(x[j] - top) / sum;
                o_exact += p * v, vsum += p * fabs(v);
            }
            const double bound = ((double)(dk + 10) * A + (nd ? 20.0 : 10.0) * L + 2.0 * dmax +
                                  POSATTN_ATTENTION_BLOCK + 60.0 + merge_u) * FZ_U * vsum +
                                 (double)nk * 0x1p-62 * vmax + (double)(2 * nk + 1) * 0x1p-150 + 2.0 * far_eps * vmax;
            FZ_CHECK(fabs((double)got[d] - o_exact) <= bound,
                     "isa %s row %lld (h %lld i %lld) out[%lld]: got %.9g, exact %.12g, bound %.3g (A %g L %g d %g "
                     "nk %lld dk %lld%s%s)",
                     isa, (long long)r, (long long)h, (long long)i, (long long)d, (double)got[d], o_exact, bound, A, L,
                     dmax, (long long)nk, (long long)dk, nd ? ", N-D" : "", c->mode == MODE_SPLIT ? ", split" : "");
        }
        if (lse) {
            const double lx = top + log(sum);
            const double bound = ((double)(dk + 10) * A + (nd ? 21.0 : 11.0) * L + 20.0 + merge_u) * FZ_U +
                                 FZ_U * fabs(lx) + far_eps;
            FZ_CHECK(fabs((double)lse[r] - lx) <= bound, "isa %s row %lld: lse %.9g, exact %.12g, bound %.3g (A %g L %g%s)",
                     isa, (long long)r, (double)lse[r], lx, bound, A, L, nd ? ", N-D" : "");
        }
    }
    free(x);
    free(valid);
}

/* Summaries of the call's keys (with its positions when they are shared by all heads: the call refuses others) and
 * the far-field call over them. */
static posattn_status run_far_field(const call *c, const posattn_attention_tensors *tp, const posattn_positions *pp,
                                    const posattn_softmax_options *op) {
    posattn_kv_summary summary;
    memset(&summary, 0, sizeof summary);
    void *summary_buffer = NULL, *scratch = NULL;
    size_t bytes = 0, scratch_bytes = 0;
    if (tp && posattn_kv_summary_size(tp->n_kv_heads, tp->nk, &bytes) == POSATTN_OK) {
        summary_buffer = malloc(bytes);
        posattn_kv_summary_init(&summary, tp->n_kv_heads, tp->nk, summary_buffer, bytes);
        const posattn_positions *shared = pp && pp->k_head_stride == 0 ? pp : NULL;
        if (posattn_kv_summary_update(&summary, tp, shared, 0) != POSATTN_OK && shared) {
            posattn_kv_summary_update(&summary, tp, NULL, 0); /* hostile positions: the call must refuse them */
        }
    }
    if (tp && posattn_far_field_scratch_size(tp->nk, tp->dv, &scratch_bytes) == POSATTN_OK) {
        scratch = malloc(scratch_bytes);
    }
    posattn_far_field far = {.summary = summary_buffer ? &summary : NULL, .scratch = scratch,
                             .scratch_bytes = scratch_bytes, .keys_read = -1};
    posattn_status st = POSATTN_OK;
    if (c->n_ranges == 1) {
        st = posattn_attention_far_field(tp, c->scale, c->slopes, pp, op, &far, c->rb, c->re);
        FZ_CHECK(st != POSATTN_OK || (far.keys_read >= 0 && far.keys_read <= (c->re - c->rb) * c->t.nk),
                 "far field: keys_read %lld outside [0, %lld]", (long long)far.keys_read,
                 (long long)((c->re - c->rb) * c->t.nk));
    } else { /* split-KV with skipping inside each range, then the merge (whose rows are [rb, re)) */
        size_t part_bytes = 0;
        posattn_attention_partials_size(c->t.n_heads, c->t.nq, c->t.dv, &part_bytes);
        double *parts[8] = {0};
        const int64_t rows = c->t.n_heads * c->t.nq;
        for (int n = 0; n < c->n_ranges && st == POSATTN_OK; ++n) {
            parts[n] = malloc(part_bytes ? part_bytes : 1);
            far.keys_read = -1;
            st = posattn_attention_far_field_partial(tp, c->scale, c->slopes, pp, op, &far, c->cuts[n],
                                                     c->cuts[n + 1], parts[n], 0, rows);
            FZ_CHECK(st != POSATTN_OK || (far.keys_read >= 0 && far.keys_read <= rows * (c->cuts[n + 1] - c->cuts[n])),
                     "far field partial: keys_read %lld over %lld keys", (long long)far.keys_read,
                     (long long)(c->cuts[n + 1] - c->cuts[n]));
        }
        if (st == POSATTN_OK) {
            st = posattn_attention_merge(tp, op, (const double *const *)parts, c->n_ranges, c->rb, c->re);
            far.keys_read = -1; /* a merge error is not the far-field call's */
        }
        for (int n = 0; n < c->n_ranges; ++n) free(parts[n]);
    }
    FZ_CHECK(st == POSATTN_OK || far.keys_read == -1, "far field: error %s but keys_read written",
             posattn_status_string(st));
    free(summary_buffer), free(scratch);
    return st;
}

/* Runs the call on the active ISA: the status of the first call that fails, or OK. */
static posattn_status run(const call *c, float *out, float *lse, double **parts, size_t part_bytes) {
    posattn_attention_tensors t = c->t;
    t.out = c->out_on_input == 1 ? (float *)(uintptr_t)t.q
            : c->out_on_input == 2 ? (float *)(uintptr_t)t.k
            : c->out_on_input == 3 ? (float *)(uintptr_t)t.v
                                   : out;
    posattn_softmax_options o = c->o;
    o.lse = lse;
    const posattn_attention_tensors *tp = c->use_t ? &t : NULL;
    const posattn_positions *pp = c->pos.use ? &c->pos.p : NULL;
    const posattn_softmax_options *op = c->use_options ? &o : NULL;
    if (getenv("FZ_VERBOSE")) {
        fprintf(stderr, "mode %d H %lld/%lld nq %lld nk %lld dk %lld dv %lld types %d/%d scale %g slopes %p pos %d ranges %d rows [%lld, %lld) flags %u softcap %g window %lld mask %p sinks %p\n",
                c->mode, (long long)t.n_heads, (long long)t.n_kv_heads, (long long)t.nq, (long long)t.nk, (long long)t.dk,
                (long long)t.dv, (int)t.k_type, (int)t.v_type, (double)c->scale, (const void *)c->slopes, c->pos.use,
                c->n_ranges, (long long)c->rb, (long long)c->re, c->o.flags, (double)c->o.softcap,
                (long long)c->o.window, c->o.mask, (const void *)c->o.sinks);
        for (int n = 0; n <= c->n_ranges; ++n) fprintf(stderr, "cut %lld\n", (long long)c->cuts[n]);
    }
    if (c->mode == MODE_FULL) return posattn_attention(tp, c->scale, c->slopes, pp, op, c->rb, c->re);
    if (c->mode == MODE_FAR) return run_far_field(c, tp, pp, op);
    for (int n = 0; n < c->n_ranges; ++n) {
        unsigned char *before = malloc(part_bytes ? part_bytes : 1);
        memcpy(before, parts[n], part_bytes);
        const posattn_status st = posattn_attention_partial(tp, c->scale, c->slopes, pp, op, c->cuts[n],
                                                            c->cuts[n + 1], parts[n], 0, c->t.n_heads * c->t.nq);
        if (st != POSATTN_OK) {
            FZ_CHECK(memcmp(before, parts[n], part_bytes) == 0, "partial failed with %s but wrote its partials",
                     posattn_status_string(st));
        }
        free(before);
        if (st != POSATTN_OK) return st;
        if (getenv("FZ_VERBOSE")) {
            for (int64_t r = 0; r < c->t.n_heads * c->t.nq; ++r) {
                fprintf(stderr, "range %d row %lld: m %g l %g a0 %g\n", n, (long long)r, parts[n][r * (c->t.dv + 2)],
                        parts[n][r * (c->t.dv + 2) + 1], parts[n][r * (c->t.dv + 2) + 2]);
            }
        }
    }
    return posattn_attention_merge(tp, op, c->parts_null ? NULL : (const double *const *)parts,
                                   c->n_ranges, c->rb, c->re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_bytes b = {data, size};
    call c;
    memset(&c, 0, sizeof c);
    posattn_attention_tensors *t = &c.t;
    c.use_t = 1;
    const int64_t Hkv = fz_range(&b, 1, 3), G = fz_range(&b, 1, 3);
    t->n_heads = Hkv * G, t->n_kv_heads = Hkv;
    t->nq = fz_range(&b, 1, 5), t->nk = fz_range(&b, 1, 80);
    const uint8_t dims = fz_u8(&b);
    t->dk = dims < 16 ? 64 + fz_range(&b, 0, 16) : fz_range(&b, 1, 12);
    t->dv = dims >= 240 ? 80 : fz_range(&b, 1, 12);
    t->k_type = (posattn_kv_type)fz_range(&b, 0, 2), t->v_type = (posattn_kv_type)fz_range(&b, 0, 2);
    const int64_t H = t->n_heads, nq = t->nq, nk = t->nk, dk = t->dk, dv = t->dv, rows = H * nq;

    /* Strides: defaults, head-major, or padded; padding holds NaN, which must never be read. */
    const uint8_t layout = fz_u8(&b);
    c.q_dim = (layout & 1) ? 2 : 1;
    c.q_head = (layout & 2) ? nq * ((dk - 1) * c.q_dim + 1) : (dk - 1) * c.q_dim + 1 + fz_range(&b, 0, 1);
    c.q_tok = (layout & 2) ? (dk - 1) * c.q_dim + 1 : H * c.q_head + fz_range(&b, 0, 2);
    if (!(layout & 3) && c.q_head == dk) c.q_tok = H * dk; /* the defaults, passed as 0 */
    const int kv_head_major = (layout & 4) != 0, kv_pad = (layout & 8) ? 2 : 0;
    c.k_head = kv_head_major ? nk * (dk + kv_pad) : dk + kv_pad;
    c.k_tok = kv_head_major ? dk + kv_pad : Hkv * (dk + kv_pad) + kv_pad;
    c.v_head = kv_head_major ? nk * (dv + kv_pad) : dv + kv_pad;
    c.v_tok = kv_head_major ? dv + kv_pad : Hkv * (dv + kv_pad) + kv_pad;
    c.o_head = (layout & 16) ? dv + 1 : dv;
    c.o_tok = (layout & 16) ? H * (dv + 1) + 1 : H * dv;
    t->q_dim_stride = c.q_dim == 1 && (layout & 32) ? 0 : c.q_dim;
    t->q_head_stride = c.q_head, t->q_tok_stride = c.q_tok;
    if ((layout & 32) && c.q_dim == 1 && c.q_head == dk && c.q_tok == H * dk) t->q_head_stride = t->q_tok_stride = 0;
    t->k_head_stride = c.k_head, t->k_tok_stride = c.k_tok, t->v_head_stride = c.v_head, t->v_tok_stride = c.v_tok;
    if ((layout & 64) && !kv_head_major && !kv_pad) t->k_head_stride = t->k_tok_stride = t->v_head_stride = t->v_tok_stride = 0;
    t->o_head_stride = c.o_head, t->o_tok_stride = c.o_tok;
    if ((layout & 128) && !(layout & 16)) t->o_head_stride = t->o_tok_stride = 0;

    const int64_t q_ext = (nq - 1) * c.q_tok + (H - 1) * c.q_head + (dk - 1) * c.q_dim + 1;
    const int64_t k_ext = (nk - 1) * c.k_tok + (Hkv - 1) * c.k_head + dk;
    const int64_t v_ext = (nk - 1) * c.v_tok + (Hkv - 1) * c.v_head + dv;
    const int64_t o_ext = (nq - 1) * c.o_tok + (H - 1) * c.o_head + dv;
    const float mag = (float)fz_range(&b, 1, 8);
    const int special = fz_u8(&b) < 48;
    float *q = fz_floats(q_ext);
    for (int64_t e = 0; e < q_ext; ++e) q[e] = NAN;
    for (int64_t i = 0; i < nq; ++i) {
        for (int64_t h = 0; h < H; ++h) {
            for (int64_t d = 0; d < dk; ++d) q[i * c.q_tok + h * c.q_head + d * c.q_dim] = fz_float(&b, mag, special);
        }
    }
    void *k = malloc((size_t)k_ext * kv_bytes(t->k_type)), *v = malloc((size_t)v_ext * kv_bytes(t->v_type));
    for (int64_t e = 0; e < k_ext; ++e) kv_store(k, t->k_type, e, NAN, 0x7E00u, 0);
    for (int64_t e = 0; e < v_ext; ++e) kv_store(v, t->v_type, e, NAN, 0x7E00u, 0);
    for (int64_t j = 0; j < nk; ++j) {
        for (int64_t g = 0; g < Hkv; ++g) {
            for (int64_t d = 0; d < dk; ++d) {
                const uint8_t raw = fz_u8(&b);
                kv_store(k, t->k_type, j * c.k_tok + g * c.k_head + d, fz_float(&b, mag, special),
                         (uint16_t)fz_u32(&b), special && raw < 8);
            }
            for (int64_t d = 0; d < dv; ++d) {
                kv_store(v, t->v_type, j * c.v_tok + g * c.v_head + d, fz_float(&b, 4.0f, special && fz_u8(&b) < 16),
                         0, 0);
            }
        }
    }
    t->q = q, t->k = k, t->v = v;
    c.scale = fz_u8(&b) < 16 ? fz_float(&b, 4.0f, 1) : (float)(1.0 / sqrt((double)dk)) * (float)fz_range(&b, 1, 4);
    if (!isfinite(c.scale)) c.scale = 0.125f; /* non-finite scales are the injected SCALE case */

    float *slopes = NULL;
    const int slope_mode = fz_u8(&b) % 4;
    if (slope_mode) {
        slopes = fz_floats(H);
        if (slope_mode == 1) posattn_alibi_slopes(H, 8.0f, slopes);
        for (int64_t h = 0; slope_mode > 1 && h < H; ++h) slopes[h] = fz_float(&b, 2.0f, slope_mode == 3);
    }
    c.slopes = slopes;
    fz_positions_draw(&b, H, nq, nk, &c.pos);

    const uint8_t omode = fz_u8(&b);
    c.use_options = omode & 1;
    void *mask = NULL;
    float *sinks = NULL;
    int want_lse = 0;
    if (c.use_options) {
        posattn_softmax_options *o = &c.o;
        o->flags = (omode & 2 ? POSATTN_CAUSAL : 0) | (omode & 4 && !c.pos.use && slopes ? POSATTN_MASK_TIMES_SLOPE : 0);
        if (omode & 8) o->softcap = fz_u8(&b) < 32 ? fz_float(&b, 1e3f, 1) : (float)fz_range(&b, 1, 60);
        if (!(o->softcap >= 0.0f) || isinf(o->softcap)) o->softcap = 30.0f;
        if (omode & 16) o->window = fz_range(&b, 1, nk + 2);
        if (omode & 32) {
            o->mask_type = fz_bool(&b) ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
            o->mask_row_stride = fz_bool(&b) ? 0 : nk + fz_range(&b, 0, 2);
            const int64_t mrs = o->mask_row_stride ? o->mask_row_stride : nk;
            o->mask_head_stride = fz_bool(&b) ? 0 : nq * mrs + fz_range(&b, 0, 2);
            const int64_t ext = (H - 1) * o->mask_head_stride + (nq - 1) * mrs + nk;
            if (o->mask_type == POSATTN_MASK_F16) {
                uint16_t *m16 = malloc((size_t)ext * sizeof *m16);
                for (int64_t e = 0; e < ext; ++e) {
                    const uint8_t kind = fz_u8(&b);
                    m16[e] = kind < 16 ? 0xFC00u : kind < 40 ? (uint16_t)fz_u32(&b) : (uint16_t)(0xB800u + kind);
                }
                mask = m16;
            } else {
                float *m32 = fz_floats(ext);
                for (int64_t e = 0; e < ext; ++e) {
                    const uint8_t kind = fz_u8(&b);
                    m32[e] = kind < 16 ? -INFINITY : fz_float(&b, 8.0f, kind < 48);
                }
                mask = m32;
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

    /* Full call or split-KV; the row range of the call (of the merge in split mode). */
    c.mode = (int)fz_range(&b, MODE_FULL, MODE_FAR);
    c.n_ranges = (int)fz_range(&b, 1, 8);
    c.cuts[0] = 0, c.cuts[c.n_ranges] = nk;
    for (int n = 1; n < c.n_ranges; ++n) c.cuts[n] = fz_range(&b, c.cuts[n - 1], nk);
    c.rb = fz_range(&b, 0, rows);
    c.re = fz_range(&b, c.rb, rows);

    /* One hostile argument (or none): the status it must give. */
    posattn_status injected = POSATTN_OK;
    const int error_kind = fz_u8(&b) % 32;
    switch (error_kind) {
    case 0: c.use_t = 0, injected = POSATTN_ERR_NULL; break;
    case 1:
        if (c.mode == MODE_FULL) t->q = NULL, injected = POSATTN_ERR_NULL;
        break;
    case 2:
        if (c.mode == MODE_FULL) t->v = NULL, injected = POSATTN_ERR_NULL;
        break;
    case 3: c.parts_null = c.mode == MODE_SPLIT, injected = c.mode == MODE_SPLIT ? POSATTN_ERR_NULL : POSATTN_OK; break;
    case 4:
        if (c.mode == MODE_FULL) t->n_kv_heads = H + 1, injected = POSATTN_ERR_SIZE; /* H % Hkv != 0 */
        break;
    case 5:
        if (c.mode == MODE_FULL) t->dk = fz_bool(&b) ? 0 : 577, injected = POSATTN_ERR_HEAD_DIM;
        break;
    case 6: t->dv = 577, injected = POSATTN_ERR_HEAD_DIM; break;
    case 7:
        if (c.mode == MODE_FULL) t->k_type = (posattn_kv_type)(3 + fz_range(&b, 0, 9)), injected = POSATTN_ERR_KV_TYPE;
        break;
    case 8: c.re = rows + 1 + fz_range(&b, 0, 3), injected = POSATTN_ERR_ROW_RANGE; break;
    case 9:
        if (c.mode == MODE_FULL) {
            int64_t *strides[] = {&t->q_tok_stride, &t->q_head_stride, &t->q_dim_stride, &t->k_tok_stride,
                                  &t->k_head_stride, &t->v_tok_stride, &t->v_head_stride, &t->o_tok_stride,
                                  &t->o_head_stride};
            *strides[fz_range(&b, 0, 8)] = -1 - fz_range(&b, 0, 3), injected = POSATTN_ERR_STRIDE;
        }
        break;
    case 10:
        if (c.mode == MODE_FULL && nk > 1) t->k_tok_stride = INT64_C(1) << 62, injected = POSATTN_ERR_OVERFLOW;
        break;
    case 11:
        if (c.mode == MODE_FULL) c.out_on_input = (int)fz_range(&b, 1, 3), injected = POSATTN_ERR_OVERLAP;
        break;
    case 16: /* ggml mode: also refused without positions when there are no slopes to multiply the mask by */
        if (!c.pos.use && !slopes) {
            c.use_options = 1, c.o.flags |= POSATTN_MASK_TIMES_SLOPE, injected = POSATTN_ERR_FLAGS;
        } else {
            injected = fz_inject_common_error(&b, error_kind - 12, &c.scale, &c.pos, &c.o, &c.use_options);
        }
        break;
    case 12: case 13: case 14: case 15: case 17: case 18: case 19: /* the shared errors */
        injected = fz_inject_common_error(&b, error_kind - 12, &c.scale, &c.pos, &c.o, &c.use_options);
        break;
    case 20:
        if (c.mode == MODE_SPLIT) c.cuts[c.n_ranges] = nk + 1 + fz_range(&b, 0, 3), injected = POSATTN_ERR_KEY_RANGE;
        break;
    case 21:
        if (c.mode == MODE_SPLIT && c.n_ranges > 1) c.cuts[1] = c.cuts[2] + 1, injected = POSATTN_ERR_KEY_RANGE;
        break;
    default: break;
    }

    /* Outputs: the untouched pattern; partials: exact size. */
    float *out0 = fz_floats(o_ext), *lse0 = want_lse ? fz_floats(rows) : NULL;
    fz_fill_untouched(out0, o_ext);
    if (lse0) fz_fill_untouched(lse0, rows);
    size_t part_bytes = 0;
    posattn_attention_partials_size(H, nq, dv, &part_bytes);

    posattn_isa isas[POSATTN_ISA_COUNT];
    const int n_isa = fz_isas(isas);
    posattn_status first = POSATTN_OK;
    const int weights_invalid = c.pos.weights_invalid;
    const int axes_invalid = c.pos.use && c.pos.axes > 1 && (!c.pos.p.q || !c.pos.p.k);
    for (int n = 0; n < n_isa; ++n) {
        fz_force(isas[n]);
        const char *name = posattn_isa_name(isas[n]);
        float *out = fz_copy(out0, o_ext);
        float *lse = lse0 ? fz_copy(lse0, rows) : NULL;
        double *parts[8] = {0};
        for (int p = 0; p < c.n_ranges; ++p) {
            parts[p] = malloc(part_bytes ? part_bytes : 1);
            memset(parts[p], 0xA5, part_bytes);
        }
        const posattn_status st = run(&c, out, lse, parts, part_bytes);
        if (n == 0) first = st;
        FZ_CHECK(st == first, "isa %s returned %d (%s), scalar %d (%s)", name, (int)st, posattn_status_string(st),
                 (int)first, posattn_status_string(first));
        int ok_status = st == injected || (weights_invalid && st == POSATTN_ERR_WEIGHTS) ||
                        (axes_invalid && st == POSATTN_ERR_AXES);
        if (injected == POSATTN_OK && (weights_invalid || axes_invalid)) ok_status = st != POSATTN_OK;
        FZ_CHECK(ok_status, "isa %s returned %d (%s), expected %d (%s) (H %lld/%lld nq %lld nk %lld dk %lld dv %lld mode %d)",
                 name, (int)st, posattn_status_string(st), (int)injected, posattn_status_string(injected),
                 (long long)H, (long long)Hkv, (long long)nq, (long long)nk, (long long)dk, (long long)dv, c.mode);
        if (st != POSATTN_OK) {
            FZ_CHECK(memcmp(out, out0, (size_t)o_ext * sizeof(float)) == 0, "isa %s: error %s but out written", name,
                     posattn_status_string(st));
            FZ_CHECK(!lse || memcmp(lse, lse0, (size_t)rows * sizeof(float)) == 0, "isa %s: error %s but lse written",
                     name, posattn_status_string(st));
        } else {
            unsigned char *written = calloc((size_t)o_ext, 1);
            for (int64_t r = c.rb; r < c.re; ++r) {
                check_row(&c, r, out, lse, name);
                const int64_t h = r / nq, i = r % nq;
                for (int64_t d = 0; d < dv; ++d) written[i * c.o_tok + h * c.o_head + d] = 1;
            }
            for (int64_t e = 0; e < o_ext; ++e) {
                FZ_CHECK(written[e] || fz_same_bits(out[e], out0[e]), "isa %s: out element %lld outside the rows written",
                         name, (long long)e);
            }
            for (int64_t r = 0; lse && r < rows; ++r) {
                FZ_CHECK((r >= c.rb && r < c.re) || fz_same_bits(lse[r], lse0[r]), "isa %s: lse[%lld] written", name,
                         (long long)r);
            }
            free(written);
        }
        for (int p = 0; p < c.n_ranges; ++p) free(parts[p]);
        free(out);
        free(lse);
    }
    posattn_force_isa(POSATTN_ISA_AUTO);
    free(q), free(k), free(v), free(slopes), free(mask), free(sinks), free(out0), free(lse0);
    fz_positions_free(&c.pos);
    return 0;
}
