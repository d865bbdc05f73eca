/*
 * Fused attention over a KV cache (SPEC 9): posattn_attention, posattn_attention_partial and
 * posattn_attention_merge on every ISA against a float64 oracle written here from SPEC 9 (and SPEC 2-3 for the
 * logit), on the same widened inputs: f16 through support's f16_to_f64, bf16 by a 16-bit shift.
 *
 * Every result is checked against the bound of include/posattn.h ("Accuracy", implemented once in
 * attention_bound below, never widened), with NMSE <= 1e-10 per call on top, and every call runs on exact-size
 * buffers (guarded_input / guarded_output) with canaries and NaN in every padding element an input may not read.
 *
 * Sizes: the big key counts (4097 and 65537) run with one or two heads and one to three queries, so the file takes
 * about a second natively and well under two minutes under qemu-aarch64 with CK_FORK=no.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ------------------------------------------------------------------------------------------------------------ */
/* K and V elements                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

static size_t kv_size(posattn_kv_type type) {
    return type == POSATTN_KV_F32 ? sizeof(float) : sizeof(uint16_t);
}

/* float32 -> bfloat16, round to nearest even (NaN kept quiet). */
static uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static double bf16_to_f64(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return (double)f;
}

/* The widened value of element `index` of a K or V buffer: what the result is defined on. */
static double kv_get(const void *base, posattn_kv_type type, int64_t index) {
    switch (type) {
    case POSATTN_KV_F16: return f16_to_f64(((const uint16_t *)base)[index]);
    case POSATTN_KV_BF16: return bf16_to_f64(((const uint16_t *)base)[index]);
    default: return (double)((const float *)base)[index];
    }
}

/* Stores value rounded to the element type. */
static void kv_put(void *base, posattn_kv_type type, int64_t index, float value) {
    switch (type) {
    case POSATTN_KV_F16: ((uint16_t *)base)[index] = f32_to_f16(value); break;
    case POSATTN_KV_BF16: ((uint16_t *)base)[index] = f32_to_bf16(value); break;
    default: ((float *)base)[index] = value; break;
    }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* A problem: what the test varies, and the buffers built from it                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

enum { Q_TOKEN_MAJOR, Q_HEAD_MAJOR, Q_DIM_STRIDED };         /* q layouts */
enum { KV_TOKEN_MAJOR, KV_HEAD_MAJOR, KV_PADDED };            /* K/V cache layouts (llama.cpp: token-major) */
enum { SLOPES_NONE, SLOPES_ALIBI, SLOPES_SOME_ZERO };         /* slopes NULL, posattn_alibi_slopes, half zero */
enum { MASK_NONE, MASK_F32, MASK_F32_HEADS, MASK_F16, MASK_F16_HEADS };
enum { MIS_Q = 1, MIS_K = 2, MIS_V = 4, MIS_OUT = 8, MIS_MASK = 16, MIS_POS = 32, MIS_LSE = 64, MIS_SINKS = 128 };

typedef struct attn_case {
    int64_t H, Hkv, nq, nk, dk, dv;
    posattn_kv_type k_type, v_type;
    int q_layout, kv_layout, out_padded;
    unsigned misalign;
    float scale; /* 0: 1/sqrt(dk) */
    float q_mag, k_mag, v_mag;
    int slopes;
    positions_kind positions; /* 1-D positions of tests/support.h */
    int64_t nd_axes;          /* 2..4: N-D positions instead (per-head weights, nd_metric) */
    posattn_metric nd_metric;
    float softcap;
    int64_t window;
    uint32_t flags;
    int mask;
    int sinks, lse;
} attn_case;

typedef struct attn_buffers {
    attn_case c;
    guarded q, k, v, out, mask, slopes, sinks, lse, nd_q, nd_k, nd_w;
    position_buffers pb;
    posattn_attention_tensors t;
    posattn_positions pos;
    const posattn_positions *pos_arg;
    posattn_softmax_options o;
    float scale;
    int64_t out_extent;
} attn_buffers;

static void fill_kv_nan(void *base, posattn_kv_type type, int64_t n) {
    for (int64_t e = 0; e < n; ++e) kv_put(base, type, e, NAN);
}

static void build_case(const attn_case *c, rng *g, attn_buffers *b) {
    memset(b, 0, sizeof *b);
    b->c = *c;
    const int64_t H = c->H, Hkv = c->Hkv, nq = c->nq, nk = c->nk, dk = c->dk, dv = c->dv;
    posattn_attention_tensors *t = &b->t;
    t->n_heads = H, t->n_kv_heads = Hkv, t->nq = nq, t->nk = nk, t->dk = dk, t->dv = dv;
    t->k_type = c->k_type, t->v_type = c->v_type;

    /* q: token-major by default, else head-major or every other element with padding between heads and tokens. */
    int64_t q_dim = 1, q_head = dk, q_tok = H * dk;
    if (c->q_layout == Q_HEAD_MAJOR) q_tok = dk, q_head = nq * dk, t->q_tok_stride = q_tok, t->q_head_stride = q_head;
    if (c->q_layout == Q_DIM_STRIDED) {
        q_dim = 2, q_head = 2 * dk + 1, q_tok = H * q_head + 3;
        t->q_dim_stride = q_dim, t->q_head_stride = q_head, t->q_tok_stride = q_tok;
    }
    const int64_t q_ext = (nq - 1) * q_tok + (H - 1) * q_head + (dk - 1) * q_dim + 1;
    b->q = guarded_input((size_t)q_ext, sizeof(float), (c->misalign & MIS_Q) != 0);
    float *q = b->q.data;
    fill_nan(q, (size_t)q_ext);
    const float q_mag = c->q_mag > 0 ? c->q_mag : 1.0f;
    for (int64_t i = 0; i < nq; ++i) {
        for (int64_t h = 0; h < H; ++h) {
            for (int64_t d = 0; d < dk; ++d) q[i * q_tok + h * q_head + d * q_dim] = rng_float(g, -q_mag, q_mag);
        }
    }
    t->q = q;

    /* K and V: token-major [nk][Hkv][d] (strides 0, llama.cpp's cache), head-major [Hkv][nk][d], or padded rows. */
    int64_t k_tok = Hkv * dk, k_head = dk, v_tok = Hkv * dv, v_head = dv;
    if (c->kv_layout == KV_HEAD_MAJOR) {
        k_tok = dk, k_head = nk * dk, v_tok = dv, v_head = nk * dv;
        t->k_tok_stride = k_tok, t->k_head_stride = k_head, t->v_tok_stride = v_tok, t->v_head_stride = v_head;
    } else if (c->kv_layout == KV_PADDED) {
        k_head = dk + 3, k_tok = Hkv * k_head + 5, v_head = dv + 1, v_tok = Hkv * v_head + 2;
        t->k_tok_stride = k_tok, t->k_head_stride = k_head, t->v_tok_stride = v_tok, t->v_head_stride = v_head;
    }
    const int64_t k_ext = (nk - 1) * k_tok + (Hkv - 1) * k_head + dk;
    const int64_t v_ext = (nk - 1) * v_tok + (Hkv - 1) * v_head + dv;
    b->k = guarded_input((size_t)k_ext, kv_size(c->k_type), (c->misalign & MIS_K) != 0);
    b->v = guarded_input((size_t)v_ext, kv_size(c->v_type), (c->misalign & MIS_V) != 0);
    fill_kv_nan(b->k.data, c->k_type, k_ext);
    fill_kv_nan(b->v.data, c->v_type, v_ext);
    const float k_mag = c->k_mag > 0 ? c->k_mag : 1.0f, v_mag = c->v_mag > 0 ? c->v_mag : 1.0f;
    for (int64_t j = 0; j < nk; ++j) {
        for (int64_t gh = 0; gh < Hkv; ++gh) {
            for (int64_t d = 0; d < dk; ++d) kv_put(b->k.data, c->k_type, j * k_tok + gh * k_head + d, rng_float(g, -k_mag, k_mag));
            for (int64_t d = 0; d < dv; ++d) kv_put(b->v.data, c->v_type, j * v_tok + gh * v_head + d, rng_float(g, -v_mag, v_mag));
        }
    }
    t->k = b->k.data, t->v = b->v.data;

    /* out: default, or padded heads and tokens (the padding must stay untouched). */
    int64_t o_head = dv, o_tok = H * dv;
    if (c->out_padded) o_head = dv + 2, o_tok = H * o_head + 1, t->o_head_stride = o_head, t->o_tok_stride = o_tok;
    b->out_extent = (nq - 1) * o_tok + (H - 1) * o_head + dv;
    b->out = guarded_output((size_t)b->out_extent, sizeof(float), (c->misalign & MIS_OUT) != 0);
    fill_untouched(b->out.data, (size_t)b->out_extent);
    t->out = b->out.data;

    b->scale = c->scale != 0.0f ? c->scale : (float)(1.0 / sqrt((double)dk));

    if (c->slopes != SLOPES_NONE) {
        b->slopes = guarded_input((size_t)H, sizeof(float), 0);
        float *s = b->slopes.data;
        ck_assert_int_eq(posattn_alibi_slopes(H, 8.0f, s), POSATTN_OK);
        if (c->slopes == SLOPES_SOME_ZERO) {
            for (int64_t h = 0; h < H; h += 2) s[h] = 0.0f;
        }
    }

    if (c->nd_axes >= 2) {
        const int64_t A = c->nd_axes;
        b->nd_q = guarded_input((size_t)(nq * A), sizeof(float), (c->misalign & MIS_POS) != 0);
        b->nd_k = guarded_input((size_t)(nk * A), sizeof(float), (c->misalign & MIS_POS) != 0);
        b->nd_w = guarded_input((size_t)(H * A), sizeof(float), 0);
        float *pq = b->nd_q.data, *pk = b->nd_k.data, *w = b->nd_w.data;
        for (int64_t e = 0; e < nq * A; ++e) pq[e] = rng_float(g, 0.0, 16.0);
        for (int64_t e = 0; e < nk * A; ++e) pk[e] = rng_float(g, 0.0, 16.0);
        for (int64_t e = 0; e < H * A; ++e) w[e] = rng_float(g, c->nd_metric == POSATTN_METRIC_L2 ? -2.0 : 0.0, 2.0);
        w[0] = 0.0f; /* head 0 ignores axis 0 */
        b->pos = (posattn_positions){.q = pq, .k = pk, .axes = A, .weights = w, .metric = c->nd_metric};
        b->pos_arg = &b->pos;
    } else {
        positions_spec ps = {.kind = c->positions, .n_heads = H, .nq = nq, .nk = nk, .span = (double)nk,
                             .misalign_q = (c->misalign & MIS_POS) != 0, .misalign_k = (c->misalign & MIS_POS) != 0};
        build_positions(&ps, g, &b->pos, &b->pb);
        b->pos_arg = c->positions == POSITIONS_NULL ? NULL : &b->pos;
    }

    posattn_softmax_options *o = &b->o;
    o->flags = c->flags, o->softcap = c->softcap, o->window = c->window;
    if (c->mask != MASK_NONE) {
        const int f16 = c->mask == MASK_F16 || c->mask == MASK_F16_HEADS;
        const int per_head = c->mask == MASK_F32_HEADS || c->mask == MASK_F16_HEADS;
        o->mask_type = f16 ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
        o->mask_row_stride = nk + 3;
        o->mask_head_stride = per_head ? nq * (nk + 3) + 1 : 0;
        const int64_t ext = (per_head ? (H - 1) * o->mask_head_stride : 0) + (nq - 1) * (nk + 3) + nk;
        b->mask = guarded_input((size_t)ext, f16 ? 2 : 4, (c->misalign & MIS_MASK) != 0);
        for (int64_t e = 0; e < ext; ++e) {
            float m = rng_unit(g) < 0.1 ? -INFINITY : rng_float(g, -2.0, 1.0);
            const int64_t in_head = per_head ? e % o->mask_head_stride : e;
            if (in_head >= nq * (nk + 3) || in_head % (nk + 3) >= nk) m = NAN; /* padding, never read */
            if (f16) ((uint16_t *)b->mask.data)[e] = f32_to_f16(m);
            else ((float *)b->mask.data)[e] = m;
        }
        o->mask = b->mask.data;
    }
    if (c->sinks) {
        b->sinks = guarded_input((size_t)H, sizeof(float), (c->misalign & MIS_SINKS) != 0);
        for (int64_t h = 0; h < H; ++h) ((float *)b->sinks.data)[h] = rng_float(g, -3.0, 3.0);
        o->sinks = b->sinks.data;
    }
    if (c->lse) {
        b->lse = guarded_output((size_t)(H * nq), sizeof(float), (c->misalign & MIS_LSE) != 0);
        fill_untouched(b->lse.data, (size_t)(H * nq));
        o->lse = b->lse.data;
    }
}

static void free_case(attn_buffers *b) {
    guarded *all[] = {&b->q, &b->k, &b->v, &b->out, &b->mask, &b->slopes, &b->sinks, &b->lse, &b->nd_q, &b->nd_k, &b->nd_w};
    for (size_t n = 0; n < sizeof all / sizeof all[0]; ++n) {
        if (all[n]->block) guarded_free(all[n]);
    }
    free_positions(&b->pb);
}

static const float *slopes_of(const attn_buffers *b) {
    return b->c.slopes == SLOPES_NONE ? NULL : b->slopes.data;
}

static const posattn_softmax_options *options_of(const attn_buffers *b) {
    return &b->o;
}

static void reset_outputs(attn_buffers *b) {
    fill_untouched(b->out.data, (size_t)b->out_extent);
    if (b->c.lse) fill_untouched(b->lse.data, (size_t)(b->c.H * b->c.nq));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The float64 oracle (SPEC 9) and the header's bound                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

static int64_t stride_or(int64_t stride, int64_t fallback) {
    return stride ? stride : fallback;
}

static double q_value(const attn_buffers *b, int64_t h, int64_t i, int64_t d) {
    const posattn_attention_tensors *t = &b->t;
    const int64_t dim = stride_or(t->q_dim_stride, 1), head = stride_or(t->q_head_stride, t->dk * dim);
    const int64_t tok = stride_or(t->q_tok_stride, t->n_heads * head);
    return (double)t->q[i * tok + h * head + d * dim];
}

static double k_value(const attn_buffers *b, int64_t g, int64_t j, int64_t d) {
    const posattn_attention_tensors *t = &b->t;
    const int64_t head = stride_or(t->k_head_stride, t->dk), tok = stride_or(t->k_tok_stride, t->n_kv_heads * head);
    return kv_get(t->k, t->k_type, j * tok + g * head + d);
}

static double v_value(const attn_buffers *b, int64_t g, int64_t j, int64_t d) {
    const posattn_attention_tensors *t = &b->t;
    const int64_t head = stride_or(t->v_head_stride, t->dv), tok = stride_or(t->v_tok_stride, t->n_kv_heads * head);
    return kv_get(t->v, t->v_type, j * tok + g * head + d);
}

static float *out_row(const attn_buffers *b, float *out, int64_t h, int64_t i) {
    const posattn_attention_tensors *t = &b->t;
    const int64_t head = stride_or(t->o_head_stride, t->dv), tok = stride_or(t->o_tok_stride, t->n_heads * head);
    return out + i * tok + h * head;
}

/* SPEC 2: -m_h * dist_h(i, j), 1-D through support's oracle_bias, N-D here (kept axes: non-zero weight). */
static double bias_of(const attn_buffers *b, int64_t h, int64_t i, int64_t j) {
    const float *slopes = slopes_of(b);
    if (!slopes || (b->o.flags & POSATTN_MASK_TIMES_SLOPE)) return 0.0;
    if (b->c.nd_axes < 2) return oracle_bias(slopes, b->pos_arg, b->c.nq, b->c.nk, h, i, j);
    const posattn_positions *p = &b->pos;
    const int64_t A = p->axes;
    const double m = (double)slopes[h];
    double sum = 0.0;
    int kept = 0;
    for (int64_t a = 0; a < A; ++a) {
        const double w = (double)p->weights[h * A + a];
        if (w == 0.0) continue;
        const double delta = (double)p->q[i * A + a] - (double)p->k[j * A + a];
        sum += p->metric == POSATTN_METRIC_L2 ? (w * delta) * (w * delta) : w * fabs(delta);
        ++kept;
    }
    if (m == 0.0 || kept == 0) return 0.0;
    const double dist = p->metric == POSATTN_METRIC_L2 ? sqrt(sum) : sum;
    return -m * dist;
}

/* The axes of non-zero weight of head h when its N-D bias is on (0 for 1-D positions or no bias). */
static int nd_kept_axes(const attn_buffers *b, int64_t h) {
    const float *slopes = slopes_of(b);
    if (b->c.nd_axes < 2 || !slopes || slopes[h] == 0.0f || (b->o.flags & POSATTN_MASK_TIMES_SLOPE)) return 0;
    int kept = 0;
    for (int64_t a = 0; a < b->pos.axes; ++a) kept += b->pos.weights[h * b->pos.axes + a] != 0.0f;
    return kept;
}

static double mask_entry(const attn_buffers *b, int64_t h, int64_t i, int64_t j) {
    const posattn_softmax_options *o = &b->o;
    const int64_t at = h * o->mask_head_stride + i * stride_or(o->mask_row_stride, b->c.nk) + j;
    return o->mask_type == POSATTN_MASK_F16 ? f16_to_f64(((const uint16_t *)o->mask)[at])
                                             : (double)((const float *)o->mask)[at];
}

/* The exact results of every row, each output element's bound, and the facts the checks need. */
typedef struct expected {
    int64_t rows, dv;
    double *o;       /* [rows][dv] O* */
    double *bound;   /* [rows][dv] the header's bound of |O - O*| */
    double *vsum;    /* [rows][dv] V_d = sum_j P*_j |v_jd| (for the merge's 2 u per range) */
    double *vmax;    /* [rows][dv] max_j |v_jd| over the valid keys (for far-field skipping's 2 eps) */
    double *lse;     /* [rows] lse* */
    double *lse_bnd; /* [rows] */
    unsigned char *nan_row;
} expected;

/*
 * include/posattn.h, posattn_attention, "Accuracy":
 *     |O_d - O*_d| <= ((dk + 10) max_j A_j + 10 L + 2 max_j d_j + B + 60) u V_d + nk 2^-62 max_j |v_jd|
 *                      + (2 nk + 1) 2^-150
 * A_j = |scale| sum_d |q_d k_jd|, L = max(max_j L_j, |sink|) with L_j = A_j (the capped |score| with a softcap)
 * + |bias_j| + |mask term_j|, d_j <= 44 the gaps of the weights kept (measured here from the largest
 * valid logit, which the kernels' flush refers to), B = POSATTN_ATTENTION_BLOCK. N-D rows: 20 L in place of 10 L.
 */
static double attention_bound(int64_t dk, double A, double L, int nd, double dmax, double V, int64_t nk,
                              double vmax) {
    const double u = UNIT_ROUNDOFF;
    return ((double)(dk + 10) * A + (nd ? 20.0 : 10.0) * L + 2.0 * dmax + POSATTN_ATTENTION_BLOCK + 60.0) * u * V +
           (double)nk * 0x1p-62 * vmax + (double)(2 * nk + 1) * 0x1p-150;
}

/* |lse - lse*| <= ((dk + 10) max_j A_j + 11 L + 20) u + u |lse*|: posattn_alibi_softmax's (11 L + 20) u + u |lse*|
 * plus the dot products' term. N-D rows (two or more axes of non-zero weight, slope not 0): 21 L. */
static double attention_lse_bound(int64_t dk, double A, double L, int nd, double lse_exact) {
    return ((double)(dk + 10) * A + (nd ? 21.0 : 11.0) * L + 20.0) * UNIT_ROUNDOFF + UNIT_ROUNDOFF * fabs(lse_exact);
}

static void expected_free(expected *e) {
    free(e->o), free(e->bound), free(e->vsum), free(e->vmax), free(e->lse), free(e->lse_bnd), free(e->nan_row);
}

static expected oracle_attention(const attn_buffers *b) {
    const attn_case *c = &b->c;
    const int64_t H = c->H, nq = c->nq, nk = c->nk, dk = c->dk, dv = c->dv, G = c->H / c->Hkv;
    const posattn_softmax_options *o = &b->o;
    expected e = {.rows = H * nq, .dv = dv};
    e.o = calloc((size_t)(e.rows * dv), sizeof(double));
    e.bound = calloc((size_t)(e.rows * dv), sizeof(double));
    e.vsum = calloc((size_t)(e.rows * dv), sizeof(double));
    e.vmax = calloc((size_t)(e.rows * dv), sizeof(double));
    e.lse = calloc((size_t)e.rows, sizeof(double));
    e.lse_bnd = calloc((size_t)e.rows, sizeof(double));
    e.nan_row = calloc((size_t)e.rows, 1);
    double *x = malloc((size_t)nk * sizeof *x), *vmax = malloc((size_t)dv * sizeof *vmax);
    unsigned char *valid = malloc((size_t)nk);
    ck_assert(e.o && e.bound && e.vsum && e.vmax && e.lse && e.lse_bnd && e.nan_row && x && vmax && valid);
    const int mts = (o->flags & POSATTN_MASK_TIMES_SLOPE) != 0;
    for (int64_t r = 0; r < e.rows; ++r) {
        const int64_t h = r / nq, i = r % nq, g = h / G, diagonal = i + nk - nq;
        const int nd_row = nd_kept_axes(b, h) >= 2;
        double mx = -INFINITY, A = 0.0, L = o->sinks ? fabs((double)o->sinks[h]) : 0.0;
        int nan = 0;
        for (int64_t j = 0; j < nk; ++j) {
            int ok = !((o->flags & POSATTN_CAUSAL) && j > diagonal) && !(o->window > 0 && llabs(j - diagonal) >= o->window);
            double mask = o->mask ? mask_entry(b, h, i, j) : 0.0;
            if (mask == -INFINITY) ok = 0;
            valid[j] = (unsigned char)ok;
            if (!ok) continue;
            double s = 0.0, s_abs = 0.0;
            for (int64_t d = 0; d < dk; ++d) {
                const double p = q_value(b, h, i, d) * k_value(b, g, j, d);
                s += p, s_abs += fabs(p);
            }
            /* A_j uncapped (the cap only shrinks the dot product's error); L_j with the capped score. */
            double xj = (double)b->scale * s;
            const double Aj = fabs((double)b->scale) * s_abs;
            if (o->softcap > 0.0f) xj = (double)o->softcap * tanh(xj / (double)o->softcap);
            const double Lx = o->softcap > 0.0f ? fabs(xj) : Aj;
            const double bias = bias_of(b, h, i, j);
            const double mterm = o->mask ? (mts ? (double)slopes_of(b)[h] * mask : mask) : 0.0;
            xj += bias + mterm;
            x[j] = xj;
            if (isnan(xj)) nan = 1;
            A = fmax(A, Aj);
            L = fmax(L, Lx + fabs(bias) + fabs(mterm));
            if (xj > mx) mx = xj;
        }
        e.nan_row[r] = (unsigned char)nan;
        if (nan) continue;
        const double logit_max = mx;
        const double sink = o->sinks ? (double)o->sinks[h] : -INFINITY;
        if (sink > mx) mx = sink;
        double *orow = e.o + r * dv, *vrow = e.vsum + r * dv;
        if (mx == -INFINITY) { /* no valid key, no sink: O = 0, lse = -inf (exactly) */
            e.lse[r] = -INFINITY;
            continue;
        }
        double sum = o->sinks ? exp(sink - mx) : 0.0, dmax = 0.0;
        for (int64_t d = 0; d < dv; ++d) vmax[d] = 0.0;
        for (int64_t j = 0; j < nk; ++j) {
            if (!valid[j]) continue;
            const double p = exp(x[j] - mx);
            sum += p;
            dmax = fmax(dmax, logit_max - x[j]);
            for (int64_t d = 0; d < dv; ++d) {
                const double v = v_value(b, g, j, d);
                orow[d] += p * v, vrow[d] += p * fabs(v), vmax[d] = fmax(vmax[d], fabs(v));
            }
        }
        dmax = fmin(dmax, 44.0);
        for (int64_t d = 0; d < dv; ++d) {
            orow[d] /= sum, vrow[d] /= sum;
            e.bound[r * dv + d] = attention_bound(dk, A, L, nd_row, dmax, vrow[d], nk, vmax[d]);
            e.vmax[r * dv + d] = vmax[d];
        }
        e.lse[r] = mx + log(sum);
        e.lse_bnd[r] = attention_lse_bound(dk, A, L, nd_row, e.lse[r]);
    }
    free(x), free(vmax), free(valid);
    return e;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Checking a call's outputs                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * Rows [rb, re) against the oracle, within the bound plus extra_u * u * V_d (the merge's 2 u per range), NMSE over
 * the call <= 1e-10; every other element of out (rows outside the range, padding) and of lse still untouched, and
 * the canaries intact.
 */
static void check_against_oracle(const attn_buffers *b, const expected *e, int64_t rb, int64_t re, double extra_u,
                                 double far_eps, const char *what) {
    const attn_case *c = &b->c;
    const int64_t nq = c->nq, dv = c->dv;
    const float *lse = c->lse ? b->lse.data : NULL;
    unsigned char *written = calloc((size_t)b->out_extent, 1);
    ck_assert(written);
    double err2 = 0.0, ref2 = 0.0;
    for (int64_t r = rb; r < re; ++r) {
        const int64_t h = r / nq, i = r % nq;
        const float *got = out_row(b, b->out.data, h, i);
        for (int64_t d = 0; d < dv; ++d) written[got - (const float *)b->out.data + d] = 1;
        if (e->nan_row[r]) {
            for (int64_t d = 0; d < dv; ++d) {
                CHECK(isnan(got[d]), "%s, isa %s: row %" PRId64 " has a NaN logit but out[%" PRId64 "] = %g", what,
                      posattn_isa_name(posattn_active_isa()), r, d, (double)got[d]);
            }
            if (lse) CHECK(isnan(lse[r]), "%s: row %" PRId64 " lse %g, expected NaN", what, r, (double)lse[r]);
            continue;
        }
        for (int64_t d = 0; d < dv; ++d) {
            const double exact = e->o[r * dv + d];
            const double bound = e->bound[r * dv + d] + extra_u * UNIT_ROUNDOFF * e->vsum[r * dv + d] +
                                 2.0 * far_eps * e->vmax[r * dv + d];
            const double err = fabs((double)got[d] - exact);
            CHECK(err <= bound, "%s, isa %s (seed 0x%" PRIx64 "): row %" PRId64 " (h %" PRId64 " i %" PRId64
                  ") out[%" PRId64 "] = %.9g, exact %.12g, error %.3g > bound %.3g [flags %u softcap %g window %"
                  PRId64 " mask %d sinks %d slopes %d positions %d nd %" PRId64 " layouts q %d kv %d]",
                  what, posattn_isa_name(posattn_active_isa()), test_base_seed(), r, h, i, d, (double)got[d], exact,
                  err, bound, (unsigned)c->flags, (double)c->softcap, c->window, c->mask, c->sinks, c->slopes,
                  (int)c->positions, c->nd_axes, c->q_layout, c->kv_layout);
            if (e->lse[r] == -INFINITY) CHECK(same_bits(got[d], 0.0f), "%s: empty row %" PRId64 " not +0", what, r);
            err2 += err * err, ref2 += exact * exact;
        }
        if (lse) {
            if (e->lse[r] == -INFINITY) {
                CHECK(lse[r] == -INFINITY, "%s: row %" PRId64 " has no valid key but lse %g", what, r, (double)lse[r]);
            } else {
                const double err = fabs((double)lse[r] - e->lse[r]);
                CHECK(err <= e->lse_bnd[r], "%s, isa %s: row %" PRId64 " lse %.9g, exact %.12g, error %.3g > %.3g",
                      what, posattn_isa_name(posattn_active_isa()), r, (double)lse[r], e->lse[r], err, e->lse_bnd[r]);
            }
        }
    }
    if (ref2 > 0.0) {
        CHECK(err2 / ref2 <= 1e-10, "%s, isa %s: NMSE %.3g > 1e-10", what, posattn_isa_name(posattn_active_isa()),
              err2 / ref2);
    }
    const float *out = b->out.data;
    for (int64_t k = 0; k < b->out_extent; ++k) {
        if (!written[k]) {
            CHECK(same_bits(out[k], untouched_pattern()), "%s: out element %" PRId64 " (outside the rows or padding) written",
                  what, k);
        }
    }
    if (lse) {
        for (int64_t r = 0; r < e->rows; ++r) {
            if (r < rb || r >= re) CHECK(same_bits(lse[r], untouched_pattern()), "%s: lse[%" PRId64 "] written", what, r);
        }
        guarded_check(&b->lse, "lse");
    }
    guarded_check(&b->out, "out");
    free(written);
}

static void call_full(attn_buffers *b, const char *what) {
    reset_outputs(b);
    const posattn_status st = posattn_attention(&b->t, b->scale, slopes_of(b), b->pos_arg, options_of(b), 0,
                                                b->c.H * b->c.nq);
    CHECK(st == POSATTN_OK, "%s, isa %s: posattn_attention returned %s", what, posattn_isa_name(posattn_active_isa()),
          posattn_status_string(st));
}

/* A copy of out and lse, to compare calls bit for bit. */
typedef struct snapshot {
    float *out, *lse;
} snapshot;

static snapshot take_snapshot(const attn_buffers *b) {
    snapshot s = {malloc((size_t)b->out_extent * sizeof(float)), malloc((size_t)(b->c.H * b->c.nq) * sizeof(float))};
    ck_assert(s.out && s.lse);
    memcpy(s.out, b->out.data, (size_t)b->out_extent * sizeof(float));
    if (b->c.lse) memcpy(s.lse, b->lse.data, (size_t)(b->c.H * b->c.nq) * sizeof(float));
    return s;
}

static void free_snapshot(snapshot *s) {
    free(s->out), free(s->lse);
}

static int same_result(float a, float b) {
    return same_bits(a, b) || (isnan(a) && isnan(b));
}

static void expect_identical(const attn_buffers *b, const snapshot *s, const char *what) {
    const float *out = b->out.data;
    for (int64_t k = 0; k < b->out_extent; ++k) {
        CHECK(same_result(out[k], s->out[k]), "%s, isa %s: out element %" PRId64 " %.9g differs from %.9g", what,
              posattn_isa_name(posattn_active_isa()), k, (double)out[k], (double)s->out[k]);
    }
    if (b->c.lse) {
        const float *lse = b->lse.data;
        for (int64_t r = 0; r < b->c.H * b->c.nq; ++r) {
            CHECK(same_result(lse[r], s->lse[r]), "%s: lse[%" PRId64 "] %.9g differs from %.9g", what, r,
                  (double)lse[r], (double)s->lse[r]);
        }
    }
}

/* Random cut points: n - 1 sorted values in [0, total] (repeats make empty pieces), with 0 and total at the ends. */
static void random_cuts(rng *g, int64_t total, int n, int64_t *cuts) {
    cuts[0] = 0, cuts[n] = total;
    for (int k = 1; k < n; ++k) cuts[k] = rng_below(g, total + 1);
    for (int k = 1; k < n; ++k) { /* insertion sort of a few values */
        for (int m = k; m > 1 && cuts[m - 1] > cuts[m]; --m) {
            int64_t tmp = cuts[m];
            cuts[m] = cuts[m - 1], cuts[m - 1] = tmp;
        }
    }
}

/* Row ranges: the rows cut into several calls give the one call's result bit for bit. */
static void check_row_split(attn_buffers *b, rng *g, const snapshot *whole, const char *what) {
    const int64_t rows = b->c.H * b->c.nq;
    const int n = 2 + (int)rng_below(g, 4);
    int64_t cuts[9];
    random_cuts(g, rows, n, cuts);
    reset_outputs(b);
    for (int k = 0; k < n; ++k) {
        const posattn_status st =
            posattn_attention(&b->t, b->scale, slopes_of(b), b->pos_arg, options_of(b), cuts[k], cuts[k + 1]);
        CHECK(st == POSATTN_OK, "%s: rows [%" PRId64 ", %" PRId64 ") returned %s", what, cuts[k], cuts[k + 1],
              posattn_status_string(st));
    }
    expect_identical(b, whole, what);
}

/* Split-KV over n ranges (cut at random; some may be empty): partials into exact-size guarded buffers, then merge. */
static void run_split(attn_buffers *b, int n, const int64_t *cuts, int misalign) {
    const attn_case *c = &b->c;
    size_t bytes = 0;
    ck_assert_int_eq(posattn_attention_partials_size(c->H, c->nq, c->dv, &bytes), POSATTN_OK);
    ck_assert_uint_eq(bytes, (size_t)(c->H * c->nq * (c->dv + 2)) * sizeof(double));
    guarded parts[8];
    const double *ptrs[8];
    for (int k = 0; k < n; ++k) {
        parts[k] = guarded_output(bytes / sizeof(double), sizeof(double), misalign && k % 2);
        memset(parts[k].data, 0xFF, bytes);
        const posattn_status st = posattn_attention_partial(&b->t, b->scale, slopes_of(b), b->pos_arg, options_of(b),
                                                            cuts[k], cuts[k + 1], parts[k].data, 0, c->H * c->nq);
        CHECK(st == POSATTN_OK, "partial over keys [%" PRId64 ", %" PRId64 ") returned %s", cuts[k], cuts[k + 1],
              posattn_status_string(st));
        guarded_check(&parts[k], "partials");
        ptrs[k] = parts[k].data;
    }
    reset_outputs(b);
    const posattn_status st = posattn_attention_merge(&b->t, options_of(b), ptrs, n, 0, c->H * c->nq);
    CHECK(st == POSATTN_OK, "merge of %d ranges returned %s", n, posattn_status_string(st));
    for (int k = 0; k < n; ++k) guarded_free(&parts[k]);
}

static void check_key_split(attn_buffers *b, rng *g, const expected *e, const char *what) {
    const int n = 1 + (int)rng_below(g, 8);
    int64_t cuts[9];
    random_cuts(g, b->c.nk, n, cuts);
    if (n >= 3) cuts[2] = cuts[1]; /* always one empty range among several */
    char label[160];
    snprintf(label, sizeof label, "%s, split-KV into %d ranges", what, n);
    run_split(b, n, cuts, 1);
    check_against_oracle(b, e, 0, b->c.H * b->c.nq, 2.0 * n, 0.0, label);
    snapshot first = take_snapshot(b);
    run_split(b, n, cuts, 0);
    expect_identical(b, &first, label); /* deterministic for a given split */
    free_snapshot(&first);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Far-field skipping: every case again through posattn_attention_far_field                                       */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct far_state {
    posattn_kv_summary summary;
    void *summary_buffer, *scratch;
    size_t scratch_bytes;
} far_state;

/* Summaries of the case's keys, as an engine keeps them: appended in a few uneven batches (the last block
 * extended each time). Per-head key positions, which a summary cannot hold, leave the default ones: those rows
 * are not bounded by the call and read every key. */
static far_state far_prepare(const attn_buffers *b, rng *g) {
    const attn_case *c = &b->c;
    far_state f;
    size_t bytes;
    ck_assert_int_eq(posattn_kv_summary_size(c->Hkv, c->nk, &bytes), POSATTN_OK);
    f.summary_buffer = malloc(bytes);
    ck_assert(f.summary_buffer);
    ck_assert_int_eq(posattn_kv_summary_init(&f.summary, c->Hkv, c->nk, f.summary_buffer, bytes), POSATTN_OK);
    const posattn_positions *p = b->pos_arg;
    const int summarisable = !p || p->k_head_stride == 0;
    posattn_attention_tensors t = b->t;
    for (int64_t done = 0; done < c->nk;) {
        const int64_t next = done + 1 + (int64_t)rng_below(g, (uint64_t)(c->nk - done));
        t.nk = next;
        ck_assert_int_eq(posattn_kv_summary_update(&f.summary, &t, summarisable ? p : NULL, done), POSATTN_OK);
        done = next;
    }
    ck_assert_int_eq(posattn_far_field_scratch_size(c->nk, c->dv, &f.scratch_bytes), POSATTN_OK);
    f.scratch = malloc(f.scratch_bytes);
    ck_assert(f.scratch);
    return f;
}

static void far_free(far_state *f) {
    free(f->summary_buffer), free(f->scratch);
}

/* The call with skipping, against the oracle within posattn_attention's bound plus 2 eps max|v| and the merge's
 * 2 u per range merged (at most one range per block). */
static void check_far_field(attn_buffers *b, const expected *e, far_state *f, float eps, const char *what) {
    reset_outputs(b);
    posattn_far_field far = {.summary = &f->summary, .eps = eps, .scratch = f->scratch,
                             .scratch_bytes = f->scratch_bytes, .keys_read = -1};
    const posattn_status st = posattn_attention_far_field(&b->t, b->scale, slopes_of(b), b->pos_arg, options_of(b),
                                                          &far, 0, b->c.H * b->c.nq);
    CHECK(st == POSATTN_OK, "%s, isa %s: posattn_attention_far_field returned %s", what,
          posattn_isa_name(posattn_active_isa()), posattn_status_string(st));
    CHECK(far.keys_read >= 0 && far.keys_read <= b->c.H * b->c.nq * b->c.nk, "%s: keys_read %" PRId64, what,
          far.keys_read);
    const double ranges = (double)((b->c.nk + POSATTN_KV_SUMMARY_BLOCK - 1) / POSATTN_KV_SUMMARY_BLOCK);
    char label[240];
    snprintf(label, sizeof label, "%s, far-field skipping", what);
    check_against_oracle(b, e, 0, b->c.H * b->c.nq, 2.0 * ranges, eps > 0.0f ? (double)eps : 0x1p-24, label);
}

/* Split-KV with skipping inside each range (posattn_attention_far_field_partial), merged: the same bound with the
 * merge's 2 u per range added. */
static void check_far_field_split(attn_buffers *b, const expected *e, far_state *f, rng *g, const char *what) {
    const attn_case *c = &b->c;
    const int n = 1 + (int)rng_below(g, 4);
    int64_t cuts[5];
    random_cuts(g, c->nk, n, cuts);
    size_t bytes = 0;
    ck_assert_int_eq(posattn_attention_partials_size(c->H, c->nq, c->dv, &bytes), POSATTN_OK);
    guarded parts[4];
    const double *ptrs[4];
    int64_t read = 0;
    for (int k = 0; k < n; ++k) {
        parts[k] = guarded_output(bytes / sizeof(double), sizeof(double), k % 2);
        memset(parts[k].data, 0xFF, bytes);
        posattn_far_field far = {.summary = &f->summary, .scratch = f->scratch, .scratch_bytes = f->scratch_bytes,
                                 .keys_read = -1};
        const posattn_status st = posattn_attention_far_field_partial(&b->t, b->scale, slopes_of(b), b->pos_arg,
                                                                      options_of(b), &far, cuts[k], cuts[k + 1],
                                                                      parts[k].data, 0, c->H * c->nq);
        CHECK(st == POSATTN_OK, "%s: far-field partial over keys [%" PRId64 ", %" PRId64 ") returned %s", what,
              cuts[k], cuts[k + 1], posattn_status_string(st));
        CHECK(far.keys_read >= 0 && far.keys_read <= c->H * c->nq * (cuts[k + 1] - cuts[k]),
              "%s: keys_read %" PRId64 " over a range of %" PRId64 " keys", what, far.keys_read, cuts[k + 1] - cuts[k]);
        read += far.keys_read;
        guarded_check(&parts[k], "partials");
        ptrs[k] = parts[k].data;
    }
    reset_outputs(b);
    const posattn_status st = posattn_attention_merge(&b->t, options_of(b), ptrs, n, 0, c->H * c->nq);
    CHECK(st == POSATTN_OK, "%s: merge of %d far-field ranges returned %s", what, n, posattn_status_string(st));
    for (int k = 0; k < n; ++k) guarded_free(&parts[k]);
    const double blocks = (double)((c->nk + POSATTN_KV_SUMMARY_BLOCK - 1) / POSATTN_KV_SUMMARY_BLOCK);
    char label[240];
    snprintf(label, sizeof label, "%s, far-field skipping split into %d key ranges (%" PRId64 " keys read)", what, n,
             read);
    check_against_oracle(b, e, 0, c->H * c->nq, 2.0 * (blocks + n), 0x1p-24, label);
}

enum { CHECK_ROWS = 1, CHECK_SPLIT = 2 };

/* Builds the case once, then on every ISA: the whole call against the oracle, and the requested splits. */
static void run_case(const attn_case *c, uint64_t case_number, unsigned checks, const char *what) {
    rng g = rng_seeded(test_case_seed(case_number));
    attn_buffers b;
    build_case(c, &g, &b);
    expected e = oracle_attention(&b);
    char label[200];
    snprintf(label, sizeof label,
             "%s [case %" PRIu64 ": H %" PRId64 "/%" PRId64 " nq %" PRId64 " nk %" PRId64 " dk %" PRId64 " dv %" PRId64
             " kv %d/%d]",
             what, case_number, c->H, c->Hkv, c->nq, c->nk, c->dk, c->dv, (int)c->k_type, (int)c->v_type);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        call_full(&b, label);
        check_against_oracle(&b, &e, 0, c->H * c->nq, 0.0, 0.0, label);
        rng split_rng = rng_seeded(test_case_seed(case_number) ^ 0x5151);
        if (checks & CHECK_ROWS) {
            snapshot whole = take_snapshot(&b);
            check_row_split(&b, &split_rng, &whole, label);
            free_snapshot(&whole);
        }
        if (checks & CHECK_SPLIT) check_key_split(&b, &split_rng, &e, label);
        far_state f = far_prepare(&b, &split_rng);
        check_far_field(&b, &e, &f, 0.0f, label);
        if (checks & CHECK_SPLIT) check_far_field_split(&b, &e, &f, &split_rng, label);
        far_free(&f);
    }
    expected_free(&e);
    free_case(&b);
}

static attn_case base_case(int64_t H, int64_t Hkv, int64_t nq, int64_t nk, int64_t dk, int64_t dv) {
    attn_case c;
    memset(&c, 0, sizeof c);
    c.H = H, c.Hkv = Hkv, c.nq = nq, c.nk = nk, c.dk = dk, c.dv = dv;
    c.k_type = c.v_type = POSATTN_KV_F32;
    c.slopes = SLOPES_ALIBI;
    c.positions = POSITIONS_NULL;
    c.q_mag = c.k_mag = c.v_mag = 1.0f;
    return c;
}

static const posattn_kv_type kv_types[] = {POSATTN_KV_F32, POSATTN_KV_F16, POSATTN_KV_BF16};

/* ------------------------------------------------------------------------------------------------------------ */
/* SPEC 9's test vectors                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_spec_vectors) {
    static const float q[] = {1, 0, 0, 1};                /* nq = 1: [tok][head][d] */
    static const float k[] = {1, 0, 0, 1, 1, 1};          /* Hkv = 1: [key][d] */
    static const float v[] = {1, 2, 3, 4, 5, 6};
    static const float slopes[] = {0.5f, 0.25f}, sinks[] = {1.0f, -1.0f};
    static const double want[2][2][3] = {/* [sinks][head]: O[0], O[1], lse */
                                         {{3.7946156432, 4.7946156432, 1.4643687841},
                                          {3.7761205175, 4.7761205175, 1.6941121864}},
                                         {{2.3300839636, 2.9441340237, 1.9520476072},
                                          {3.5370102310, 4.4736885533, 1.7595275481}}};
    for (int with_sinks = 0; with_sinks < 2; ++with_sinks) {
        /* The oracle reproduces the printed values first. */
        attn_buffers b;
        memset(&b, 0, sizeof b);
        b.c = base_case(2, 1, 1, 3, 2, 2);
        b.c.sinks = with_sinks, b.c.lse = 1;
        b.t = (posattn_attention_tensors){.n_heads = 2, .n_kv_heads = 1, .nq = 1, .nk = 3, .dk = 2, .dv = 2, .q = q,
                                          .k = k, .v = v};
        b.slopes = guarded_input(2, sizeof(float), 0);
        memcpy(b.slopes.data, slopes, sizeof slopes);
        b.scale = 1.0f;
        b.o.sinks = with_sinks ? sinks : NULL;
        expected e = oracle_attention(&b);
        for (int h = 0; h < 2; ++h) {
            for (int d = 0; d < 2; ++d) {
                CHECK(fabs(e.o[h * 2 + d] - want[with_sinks][h][d]) < 1e-9, "oracle O[%d][%d] %.10f", h, d, e.o[h * 2 + d]);
            }
            CHECK(fabs(e.lse[h] - want[with_sinks][h][2]) < 1e-9, "oracle lse[%d] %.10f", h, e.lse[h]);
        }
        FOR_EACH_ISA(isa) {
            if (!enter_isa(isa)) continue;
            guarded out = guarded_output(4, sizeof(float), 0), lse = guarded_output(2, sizeof(float), 0);
            b.t.out = out.data, b.out = out, b.out_extent = 4, b.lse = lse;
            b.o.lse = lse.data;
            fill_untouched(out.data, 4), fill_untouched(lse.data, 2);
            ck_assert_int_eq(posattn_attention(&b.t, 1.0f, slopes, NULL, &b.o, 0, 2), POSATTN_OK);
            for (int h = 0; h < 2; ++h) {
                for (int d = 0; d < 2; ++d) {
                    const double got = ((float *)out.data)[h * 2 + d], w = want[with_sinks][h][d];
                    CHECK(fabs(got - w) <= e.bound[h * 2 + d] + 1e-10 * fabs(w), "isa %s sinks %d: O[%d][%d] = %.10f, SPEC %.10f",
                          posattn_isa_name(isa), with_sinks, h, d, got, w);
                }
                const double got = ((float *)lse.data)[h], w = want[with_sinks][h][2];
                CHECK(fabs(got - w) <= e.lse_bnd[h] + 1e-10 * fabs(w), "isa %s sinks %d: lse[%d] = %.10f, SPEC %.10f",
                      posattn_isa_name(isa), with_sinks, h, got, w);
            }
            check_against_oracle(&b, &e, 0, 2, 0.0, 0.0, "SPEC 9 vector");
            guarded_free(&out), guarded_free(&lse);
        }
        guarded_free(&b.slopes);
        expected_free(&e);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Accuracy over element types, head sizes, key counts and head groupings                                         */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_kv_types) {
    uint64_t n = 100;
    for (size_t kt = 0; kt < 3; ++kt) {
        for (size_t vt = 0; vt < 3; ++vt) {
            attn_case c = base_case(4, 2, 3, 70, 64, 64);
            c.k_type = kv_types[kt], c.v_type = kv_types[vt];
            c.q_mag = 2.0f, c.k_mag = 2.0f, c.v_mag = 3.0f;
            c.positions = POSITIONS_SHARED, c.flags = POSATTN_CAUSAL, c.lse = 1;
            run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "kv types");
        }
    }
}
END_TEST

START_TEST(test_head_dims) {
    static const int64_t dims[] = {1, 3, 64, 80, 128, 256, 576};
    uint64_t n = 200;
    for (size_t a = 0; a < 7; ++a) {
        for (size_t t = 0; t < 3; ++t) {
            attn_case c = base_case(2, 1, 2, 33, dims[a], dims[a]);
            c.k_type = c.v_type = kv_types[t];
            c.lse = 1;
            run_case(&c, n++, a % 2 ? CHECK_SPLIT : CHECK_ROWS, "head dims dk = dv");
        }
        /* dk != dv */
        attn_case c = base_case(2, 2, 2, 21, dims[a], dims[(a + 3) % 7]);
        c.k_type = kv_types[a % 3], c.v_type = kv_types[(a + 1) % 3];
        c.flags = POSATTN_CAUSAL, c.sinks = 1, c.lse = 1;
        run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "head dims dk != dv");
    }
}
END_TEST

START_TEST(test_key_counts) {
    static const int64_t nks[] = {1, 15, 16, 17, 4097, 65537};
    uint64_t n = 300;
    for (size_t a = 0; a < 6; ++a) {
        const int big = nks[a] > 1000;
        for (size_t t = 0; t < 3; ++t) {
            /* The big counts with few heads and queries, so the file runs in seconds (and under qemu). */
            attn_case c = base_case(big ? 2 : 4, big ? 1 : 2, big ? (nks[a] > 10000 ? 1 : 3) : 5, nks[a], 64, 64);
            c.k_type = c.v_type = kv_types[t];
            c.positions = POSITIONS_SHARED, c.lse = 1;
            c.flags = a % 2 ? POSATTN_CAUSAL : 0;
            c.sinks = t == 1;
            run_case(&c, n++, big ? CHECK_SPLIT : CHECK_ROWS | CHECK_SPLIT, "key counts");
        }
    }
    /* A long row whose logits spread far past the flush threshold: most weights below e^-44 are dropped. */
    attn_case c = base_case(1, 1, 1, 4097, 16, 16);
    c.q_mag = 8.0f, c.k_mag = 8.0f, c.positions = POSITIONS_SHARED, c.lse = 1;
    run_case(&c, n++, CHECK_SPLIT, "key counts, flushed weights");
}
END_TEST

START_TEST(test_head_groups) {
    static const int64_t groups[][2] = {{1, 1}, {4, 4}, {8, 8}, {4, 1}, {8, 1}, {8, 2}, {16, 4}, {32, 4}, {16, 2}};
    uint64_t n = 400;
    for (size_t a = 0; a < sizeof groups / sizeof groups[0]; ++a) {
        attn_case c = base_case(groups[a][0], groups[a][1], 3, 40, 32, 24);
        c.k_type = kv_types[a % 3], c.v_type = kv_types[(a + 2) % 3];
        c.positions = a % 2 ? POSITIONS_PER_HEAD : POSITIONS_SHARED;
        c.mask = a % 3 == 0 ? MASK_F32_HEADS : MASK_NONE;
        c.sinks = a % 2, c.lse = 1;
        c.flags = POSATTN_CAUSAL;
        run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "head groups");
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Options and their combinations                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_options) {
    static const positions_kind kinds[] = {POSITIONS_NULL,      POSITIONS_ZEROED,     POSITIONS_SHARED,
                                           POSITIONS_PER_HEAD,  POSITIONS_KEYS_ONLY,  POSITIONS_QUERIES_ONLY,
                                           POSITIONS_STRIDED,   POSITIONS_WEIGHTED,   POSITIONS_WEIGHTED_L2};
    uint64_t n = 500;
    /* Each option alone, then in combinations drawn from a fixed sequence (every bit pattern of 7 switches). */
    for (unsigned bits = 0; bits < 128; ++bits) {
        rng g = rng_seeded(test_case_seed(n));
        attn_case c = base_case(4, 2, 1 + rng_below(&g, 6), 1 + rng_below(&g, 90), 1 + rng_below(&g, 40), 1 + rng_below(&g, 40));
        c.k_type = kv_types[bits % 3], c.v_type = kv_types[(bits / 3) % 3];
        c.q_mag = 2.0f, c.k_mag = 2.0f;
        if (bits & 1) c.softcap = rng_unit(&g) < 0.5 ? 1.5f : 30.0f;
        if (bits & 2) c.flags |= POSATTN_CAUSAL;
        if (bits & 4) c.window = 1 + rng_below(&g, 12);
        if (bits & 8) c.mask = 1 + (int)rng_below(&g, 4);
        if (bits & 16) c.sinks = 1;
        if (bits & 32) c.lse = 1;
        c.slopes = (int)rng_below(&g, 3);
        if (bits & 64) {
            if (c.mask != MASK_NONE && c.slopes != SLOPES_NONE && rng_unit(&g) < 0.5) {
                c.flags |= POSATTN_MASK_TIMES_SLOPE; /* ggml mode: no positions */
            } else if (rng_unit(&g) < 0.5) {
                c.nd_axes = 2 + rng_below(&g, 3);
                c.nd_metric = rng_unit(&g) < 0.5 ? POSATTN_METRIC_L1 : POSATTN_METRIC_L2;
            } else {
                c.positions = kinds[rng_below(&g, 9)];
            }
        } else {
            c.positions = kinds[bits % 9];
        }
        run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "options");
    }
}
END_TEST

START_TEST(test_causal_shapes) {
    static const int64_t shapes[][2] = {{1, 1}, {3, 17}, {17, 17}, {20, 17}, {40, 5}, {5, 40}, {64, 64}, {65, 64}};
    uint64_t n = 700;
    for (size_t a = 0; a < sizeof shapes / sizeof shapes[0]; ++a) {
        for (int window = 0; window < 2; ++window) {
            attn_case c = base_case(2, 1, shapes[a][0], shapes[a][1], 8, 8);
            c.flags = POSATTN_CAUSAL, c.window = window ? 4 : 0, c.lse = 1;
            c.k_type = kv_types[a % 3];
            run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "causal nq vs nk");
        }
        /* Window without causal: keys on both sides of the diagonal. */
        attn_case c = base_case(2, 2, shapes[a][0], shapes[a][1], 5, 7);
        c.window = 3, c.sinks = 1, c.lse = 1;
        run_case(&c, n++, CHECK_ROWS, "window");
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Layouts, strides, misalignment                                                                                 */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_layouts) {
    uint64_t n = 800;
    for (int ql = 0; ql < 3; ++ql) {
        for (int kvl = 0; kvl < 3; ++kvl) {
            for (int padded = 0; padded < 2; ++padded) {
                attn_case c = base_case(8, 2, 3, 50, 64, 80);
                c.q_layout = ql, c.kv_layout = kvl, c.out_padded = padded;
                c.k_type = kv_types[(ql + kvl) % 3], c.v_type = kv_types[(ql + 2 * kvl + padded) % 3];
                c.flags = POSATTN_CAUSAL, c.positions = POSITIONS_STRIDED, c.mask = MASK_F16;
                c.lse = 1;
                run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "layouts");
            }
        }
    }
}
END_TEST

START_TEST(test_misaligned) {
    static const unsigned each[] = {0, MIS_Q, MIS_K, MIS_V, MIS_OUT, MIS_MASK, MIS_POS, MIS_LSE, MIS_SINKS, 0xFFu};
    uint64_t n = 900;
    for (size_t a = 0; a < sizeof each / sizeof each[0]; ++a) {
        for (size_t t = 0; t < 3; ++t) {
            attn_case c = base_case(4, 1, 2, 37, 80, 64);
            c.misalign = each[a];
            c.k_type = c.v_type = kv_types[t];
            c.positions = POSITIONS_PER_HEAD, c.mask = a % 2 ? MASK_F16_HEADS : MASK_F32;
            c.sinks = 1, c.lse = 1, c.flags = POSATTN_CAUSAL;
            run_case(&c, n++, CHECK_SPLIT, "misaligned");
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Rows with no key, NaN inputs                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_empty_rows) {
    uint64_t n = 1000;
    /* nq > nk with causal: the first nq - nk queries have no key. The oracle says O = +0 and lse = -inf. */
    attn_case c = base_case(3, 1, 9, 4, 16, 16);
    c.flags = POSATTN_CAUSAL, c.lse = 1;
    run_case(&c, n++, CHECK_ROWS | CHECK_SPLIT, "empty rows, causal");
    /* A mask of -inf everywhere (f16 and f32): every row empty; with sinks the sink is the whole mass, O = 0; with
     * sinks of -inf (sinks == 2) the rows stay empty, as in posattn_alibi_softmax: O = 0 and lse = -inf. */
    for (int m = MASK_F32; m <= MASK_F16_HEADS; ++m) {
        for (int sinks = 0; sinks < 3; ++sinks) {
            rng g = rng_seeded(test_case_seed(n));
            attn_buffers b;
            c = base_case(2, 2, 2, 20, 8, 8);
            c.mask = m, c.lse = 1, c.sinks = sinks != 0;
            build_case(&c, &g, &b);
            if (sinks == 2) ((float *)b.sinks.data)[0] = ((float *)b.sinks.data)[1] = -INFINITY;
            const int f16 = m >= MASK_F16;
            const int64_t ext = (int64_t)(b.mask.size / (f16 ? 2 : 4));
            for (int64_t e = 0; e < ext; ++e) {
                if (f16) ((uint16_t *)b.mask.data)[e] = 0xFC00u;
                else ((float *)b.mask.data)[e] = -INFINITY;
            }
            expected e = oracle_attention(&b);
            FOR_EACH_ISA(isa) {
                if (!enter_isa(isa)) continue;
                call_full(&b, "all keys masked");
                check_against_oracle(&b, &e, 0, 4, 0.0, 0.0, "all keys masked");
                for (int64_t r = 0; r < 4; ++r) {
                    const float *row = out_row(&b, b.out.data, r / 2, r % 2);
                    for (int d = 0; d < 8; ++d) CHECK(row[d] == 0.0f, "masked row %" PRId64 " not zero", r);
                    const float l = ((float *)b.lse.data)[r];
                    if (sinks == 1) CHECK(l == ((float *)b.sinks.data)[r / 2], "lse %g is not the sink", (double)l);
                    else CHECK(l == -INFINITY, "lse %g, expected -inf", (double)l);
                }
                rng sg = rng_seeded(n);
                check_key_split(&b, &sg, &e, "all keys masked");
            }
            expected_free(&e);
            free_case(&b);
            ++n;
        }
    }
}
END_TEST

START_TEST(test_nan_inputs) {
    uint64_t n = 1100;
    for (size_t t = 0; t < 3; ++t) {
        rng g = rng_seeded(test_case_seed(n));
        attn_buffers b;
        attn_case c = base_case(4, 2, 3, 30, 16, 8);
        c.k_type = c.v_type = kv_types[t];
        c.flags = POSATTN_CAUSAL, c.lse = 1;
        build_case(&c, &g, &b);
        /* NaN in q of head 1, query 2: that row only. NaN in key 20 of KV head 1: every row of heads 2 and 3 (their
         * last causal keys are 27, 28, 29), none of KV head 0's. The oracle marks the rows whose logits are NaN. */
        ((float *)b.q.data)[2 * (4 * 16) + 1 * 16 + 5] = NAN;
        kv_put(b.k.data, c.k_type, 20 * (2 * 16) + 1 * 16 + 3, NAN);
        expected e = oracle_attention(&b);
        int nan_rows = 0;
        for (int64_t r = 0; r < 12; ++r) nan_rows += e.nan_row[r];
        ck_assert_int_eq(nan_rows, 1 + 6); /* row (h 1, i 2), and heads 2-3 times 3 queries */
        FOR_EACH_ISA(isa) {
            if (!enter_isa(isa)) continue;
            call_full(&b, "NaN inputs");
            check_against_oracle(&b, &e, 0, 12, 0.0, 0.0, "NaN inputs");
            rng sg = rng_seeded(n);
            check_key_split(&b, &sg, &e, "NaN inputs");
        }
        expected_free(&e);
        free_case(&b);
        ++n;
    }
    /* A NaN key outside a row's causal reach leaves that row finite. */
    rng g = rng_seeded(test_case_seed(n));
    attn_buffers b;
    attn_case c = base_case(1, 1, 4, 4, 4, 4);
    c.flags = POSATTN_CAUSAL, c.lse = 1;
    build_case(&c, &g, &b);
    ((float *)b.k.data)[3 * 4 + 1] = NAN; /* key 3: only query 3 sees it */
    expected e = oracle_attention(&b);
    ck_assert(!e.nan_row[0] && !e.nan_row[1] && !e.nan_row[2] && e.nan_row[3]);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        call_full(&b, "NaN key out of reach");
        check_against_oracle(&b, &e, 0, 4, 0.0, 0.0, "NaN key out of reach");
    }
    expected_free(&e);
    free_case(&b);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Bad input: every class with its own status, nothing written                                                    */
/* ------------------------------------------------------------------------------------------------------------ */

/* The baseline's buffers inside one arena (offsets in floats): H 2 over Hkv 1, nq 2, nk 3, dk 2, dv 2. */
enum {
    AT_Q = 0,         /* 8: [tok][head][d] */
    AT_K = 16,        /* 6: [key][d] */
    AT_V = 24,        /* 6 */
    AT_OUT = 32,      /* 8 */
    AT_LSE = 48,      /* 4 */
    AT_MASK = 56,     /* 6: broadcast [nq][nk] */
    AT_MASK16 = 64,   /* 6 binary16 */
    AT_SLOPES = 72,   /* 2 */
    AT_SINKS = 76,    /* 2 */
    AT_POS_Q = 80,    /* 2 */
    AT_POS_K = 84,    /* 3 */
    AT_WEIGHTS = 88,  /* 2 */
    AT_PART0 = 96,    /* 4 rows * 4 doubles = 32 floats */
    AT_PART1 = 128,   /* 32 */
    AT_ALL = 160
};

typedef struct attn_call {
    posattn_attention_tensors t;
    int use_t;
    float scale;
    const float *slopes;
    posattn_positions positions;
    int use_positions;
    posattn_softmax_options options;
    int use_options;
    int64_t key_begin, key_end;
    double *partials;
    const double *parts[2]; /* the merge's buffers */
    int parts_null;         /* pass NULL instead of parts */
    int64_t n_ranges;
    int64_t row_begin, row_end;
} attn_call;

static void attn_arena_reset(arena *ar) {
    arena_fill(ar);
    uint16_t *mask16 = (uint16_t *)(ar->a + AT_MASK16);
    for (int k = 0; k < 6; ++k) mask16[k] = 0x3800u; /* 0.5 */
    arena_snapshot(ar);
}

static attn_call attn_baseline(float *a) {
    attn_call c;
    memset(&c, 0, sizeof c);
    c.t = (posattn_attention_tensors){.n_heads = 2, .n_kv_heads = 1, .nq = 2, .nk = 3, .dk = 2, .dv = 2,
                                      .q = a + AT_Q, .k = a + AT_K, .v = a + AT_V, .out = a + AT_OUT};
    c.use_t = 1;
    c.scale = 0.5f;
    c.slopes = a + AT_SLOPES;
    c.use_positions = 1;
    c.positions.q = a + AT_POS_Q, c.positions.k = a + AT_POS_K, c.positions.weights = a + AT_WEIGHTS;
    c.use_options = 1;
    c.options.flags = POSATTN_CAUSAL;
    c.options.mask = a + AT_MASK, c.options.mask_type = POSATTN_MASK_F32;
    c.options.sinks = a + AT_SINKS, c.options.lse = a + AT_LSE;
    c.key_begin = 0, c.key_end = 3;
    c.partials = (double *)(void *)(a + AT_PART0);
    c.parts[0] = (const double *)(void *)(a + AT_PART0), c.parts[1] = (const double *)(void *)(a + AT_PART1);
    c.n_ranges = 2;
    c.row_begin = 0, c.row_end = 4;
    return c;
}

typedef enum { FN_ATTENTION, FN_PARTIAL, FN_MERGE } attn_fn;
static const char *const fn_names[] = {"posattn_attention", "posattn_attention_partial", "posattn_attention_merge"};

static posattn_status attn_invoke(const attn_call *c, attn_fn fn) {
    const posattn_attention_tensors *t = c->use_t ? &c->t : NULL;
    const posattn_positions *p = c->use_positions ? &c->positions : NULL;
    const posattn_softmax_options *o = c->use_options ? &c->options : NULL;
    switch (fn) {
    case FN_ATTENTION: return posattn_attention(t, c->scale, c->slopes, p, o, c->row_begin, c->row_end);
    case FN_PARTIAL:
        return posattn_attention_partial(t, c->scale, c->slopes, p, o, c->key_begin, c->key_end, c->partials,
                                         c->row_begin, c->row_end);
    default: return posattn_attention_merge(t, o, c->parts_null ? NULL : c->parts, c->n_ranges, c->row_begin, c->row_end);
    }
}

/* One case: the baseline with one change, and the status each listed entry point must give. */
#define ATTN_CASE(fn, expected, ...)                                                                              \
    do {                                                                                                           \
        attn_call c = attn_baseline(ar.a);                                                                         \
        float *a = ar.a;                                                                                           \
        (void)a;                                                                                                   \
        __VA_ARGS__;                                                                                               \
        attn_arena_reset(&ar);                                                                                     \
        arena_expect(&ar, attn_invoke(&c, fn), expected, fn_names[fn], #__VA_ARGS__, __LINE__);                    \
    } while (0)
/* The same change for posattn_attention and posattn_attention_partial (the checks they share). */
#define BOTH_CASE(expected, ...)                                                                                   \
    do {                                                                                                           \
        ATTN_CASE(FN_ATTENTION, expected, __VA_ARGS__);                                                            \
        ATTN_CASE(FN_PARTIAL, expected, __VA_ARGS__);                                                              \
    } while (0)

static const int64_t BIG = INT64_C(1) << 62;

START_TEST(test_errors) {
    arena ar;
    arena_open(&ar, AT_ALL);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        /* The baseline and valid neighbours of the refused values below. */
        BOTH_CASE(POSATTN_OK, (void)0);
        ATTN_CASE(FN_MERGE, POSATTN_OK, (void)0);
        BOTH_CASE(POSATTN_OK, c.use_options = 0);
        BOTH_CASE(POSATTN_OK, c.use_positions = 0);
        BOTH_CASE(POSATTN_OK, c.slopes = NULL);
        BOTH_CASE(POSATTN_OK, c.row_begin = 4, c.row_end = 4);
        BOTH_CASE(POSATTN_OK, c.row_begin = 1, c.row_end = 3);
        BOTH_CASE(POSATTN_OK, c.scale = 0.0f);
        BOTH_CASE(POSATTN_OK, c.options.softcap = 1e30f);
        BOTH_CASE(POSATTN_OK, c.options.window = INT64_MAX);
        BOTH_CASE(POSATTN_OK, c.t.dk = 1, c.t.dv = 1);
        BOTH_CASE(POSATTN_OK, c.t.k_type = POSATTN_KV_BF16, c.t.v_type = POSATTN_KV_F16);
        BOTH_CASE(POSATTN_OK, c.options.mask = a + AT_MASK16, c.options.mask_type = POSATTN_MASK_F16);
        BOTH_CASE(POSATTN_OK, c.options.flags = POSATTN_MASK_TIMES_SLOPE, c.use_positions = 0);
        BOTH_CASE(POSATTN_OK, c.t.n_kv_heads = 2, c.t.k_tok_stride = 4, c.t.v_tok_stride = 4, c.t.nk = 2,
                  c.options.mask_row_stride = 3, c.key_end = 2);
        BOTH_CASE(POSATTN_OK, c.t.q_tok_stride = 2, c.t.q_head_stride = 4);                   /* head-major q */
        BOTH_CASE(POSATTN_OK, c.t.k_tok_stride = 2, c.t.k_head_stride = 6);                   /* head-major k */
        ATTN_CASE(FN_ATTENTION, POSATTN_OK, c.t.out = a + AT_Q + 8);                          /* adjacent to q */
        ATTN_CASE(FN_ATTENTION, POSATTN_OK, c.options.lse = a + AT_OUT + 8);                  /* adjacent to out */
        ATTN_CASE(FN_ATTENTION, POSATTN_OK, c.t.o_tok_stride = 2, c.t.o_head_stride = 4);     /* head-major out */
        ATTN_CASE(FN_PARTIAL, POSATTN_OK, c.key_begin = 1, c.key_end = 1);                    /* an empty range */
        ATTN_CASE(FN_PARTIAL, POSATTN_OK, c.key_begin = 3, c.key_end = 3);
        ATTN_CASE(FN_MERGE, POSATTN_OK, c.t.q = NULL, c.t.k = NULL, c.t.v = NULL, c.t.dk = 0); /* not read */
        ATTN_CASE(FN_MERGE, POSATTN_OK, c.n_ranges = 1);
        ATTN_CASE(FN_MERGE, POSATTN_OK, c.use_options = 0);

        /* NULL */
        BOTH_CASE(POSATTN_ERR_NULL, c.use_t = 0);
        BOTH_CASE(POSATTN_ERR_NULL, c.t.q = NULL);
        BOTH_CASE(POSATTN_ERR_NULL, c.t.k = NULL);
        BOTH_CASE(POSATTN_ERR_NULL, c.t.v = NULL);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_NULL, c.t.out = NULL);
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_NULL, c.partials = NULL);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_NULL, c.use_t = 0);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_NULL, c.t.out = NULL);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_NULL, c.parts_null = 1);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_NULL, c.parts[1] = NULL);

        /* SIZE, HEAD_DIM, KV_TYPE */
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.n_heads = 0, c.row_end = 0);
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.nq = 0, c.row_end = 0);
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.nk = 0, c.key_end = 0);
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.nk = -1);
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.n_kv_heads = 0);
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.n_kv_heads = -1);
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.n_kv_heads = 3);  /* H % Hkv != 0 */
        BOTH_CASE(POSATTN_ERR_SIZE, c.t.n_kv_heads = 4);  /* more KV heads than query heads */
        ATTN_CASE(FN_MERGE, POSATTN_ERR_SIZE, c.n_ranges = 0);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_SIZE, c.n_ranges = -1);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_SIZE, c.t.n_heads = 0, c.row_end = 0);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_SIZE, c.t.nq = -2, c.row_end = 0);
        BOTH_CASE(POSATTN_ERR_HEAD_DIM, c.t.dk = 0);
        BOTH_CASE(POSATTN_ERR_HEAD_DIM, c.t.dv = 0);
        BOTH_CASE(POSATTN_ERR_HEAD_DIM, c.t.dk = 577);
        BOTH_CASE(POSATTN_ERR_HEAD_DIM, c.t.dv = 577);
        BOTH_CASE(POSATTN_ERR_HEAD_DIM, c.t.dk = -1);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_HEAD_DIM, c.t.dv = 0);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_HEAD_DIM, c.t.dv = 577);
        BOTH_CASE(POSATTN_ERR_KV_TYPE, c.t.k_type = (posattn_kv_type)3);
        BOTH_CASE(POSATTN_ERR_KV_TYPE, c.t.v_type = (posattn_kv_type)3);
        BOTH_CASE(POSATTN_ERR_KV_TYPE, c.t.k_type = (posattn_kv_type)-1);

        /* ROW_RANGE, KEY_RANGE */
        BOTH_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = -1);
        BOTH_CASE(POSATTN_ERR_ROW_RANGE, c.row_end = 5);
        BOTH_CASE(POSATTN_ERR_ROW_RANGE, c.row_begin = 3, c.row_end = 2);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_ROW_RANGE, c.row_end = 5);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_ROW_RANGE, c.row_begin = -1);
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_KEY_RANGE, c.key_begin = -1);
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_KEY_RANGE, c.key_end = 4);
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_KEY_RANGE, c.key_begin = 2, c.key_end = 1);
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_KEY_RANGE, c.key_begin = 4, c.key_end = 4);

        /* STRIDE: negative strides, and output rows that overlap */
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.q_tok_stride = -1);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.q_head_stride = -1);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.q_dim_stride = -1);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.k_tok_stride = -2);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.k_head_stride = -2);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.v_tok_stride = -2);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.t.v_head_stride = -2);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_STRIDE, c.t.o_tok_stride = -4);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_STRIDE, c.t.o_head_stride = -2);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_STRIDE, c.t.o_head_stride = 1);                   /* heads share a float */
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_STRIDE, c.t.o_tok_stride = 2);                    /* token 1 = head 1 */
        ATTN_CASE(FN_MERGE, POSATTN_ERR_STRIDE, c.t.o_head_stride = 1);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_STRIDE, c.t.o_tok_stride = -1);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.options.mask_row_stride = 2);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.options.mask_row_stride = -3);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.options.mask_head_stride = -1);
        BOTH_CASE(POSATTN_ERR_STRIDE, c.positions.k_stride = -1);

        /* OVERFLOW */
        BOTH_CASE(POSATTN_ERR_OVERFLOW, c.t.k_tok_stride = BIG);
        BOTH_CASE(POSATTN_ERR_OVERFLOW, c.t.v_head_stride = BIG, c.t.n_kv_heads = 2);
        BOTH_CASE(POSATTN_ERR_OVERFLOW, c.t.q_head_stride = BIG);
        BOTH_CASE(POSATTN_ERR_OVERFLOW, c.t.q_dim_stride = BIG);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERFLOW, c.t.o_tok_stride = BIG);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_OVERFLOW, c.t.o_tok_stride = BIG);
        BOTH_CASE(POSATTN_ERR_OVERFLOW, c.options.mask_row_stride = BIG);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_OVERFLOW, c.t.n_heads = INT64_C(1) << 40, c.t.nq = INT64_C(1) << 30,
                  c.row_end = 0);

        /* OVERLAP: out with each input, lse with out and the inputs, partials with inputs, merge's out with them */
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_Q + 4);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_Q);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_K + 5);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_V - 7);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_MASK - 2);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_POS_Q - 4);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_POS_K - 6);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_SLOPES - 1);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_SINKS - 7);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.t.out = a + AT_WEIGHTS);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.options.lse = a + AT_OUT + 7);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.options.lse = a + AT_Q + 5);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.options.lse = a + AT_MASK);
        ATTN_CASE(FN_ATTENTION, POSATTN_ERR_OVERLAP, c.options.lse = a + AT_SINKS - 3);
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_OVERLAP, c.partials = (double *)(void *)(a + AT_Q + 6));
        ATTN_CASE(FN_PARTIAL, POSATTN_ERR_OVERLAP, c.partials = (double *)(void *)(a + AT_POS_K - 30));
        ATTN_CASE(FN_MERGE, POSATTN_ERR_OVERLAP, c.t.out = a + AT_PART1 + 24);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_OVERLAP, c.options.lse = a + AT_PART0 + 10);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_OVERLAP, c.options.lse = a + AT_OUT + 6);
        ATTN_CASE(FN_MERGE, POSATTN_ERR_OVERLAP, c.options.sinks = a + AT_OUT + 7);

        /* SCALE, SOFTCAP, WINDOW, FLAGS */
        BOTH_CASE(POSATTN_ERR_SCALE, c.scale = NAN);
        BOTH_CASE(POSATTN_ERR_SCALE, c.scale = INFINITY);
        BOTH_CASE(POSATTN_ERR_SCALE, c.scale = -INFINITY);
        BOTH_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = -1.0f);
        BOTH_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = NAN);
        BOTH_CASE(POSATTN_ERR_SOFTCAP, c.options.softcap = INFINITY);
        BOTH_CASE(POSATTN_ERR_WINDOW, c.options.window = -1);
        BOTH_CASE(POSATTN_ERR_WINDOW, c.options.window = INT64_MIN);
        BOTH_CASE(POSATTN_ERR_FLAGS, c.options.flags = 1u << 2);
        BOTH_CASE(POSATTN_ERR_FLAGS, c.options.flags = POSATTN_CAUSAL | (1u << 31));
        BOTH_CASE(POSATTN_ERR_FLAGS, c.options.flags = POSATTN_MASK_TIMES_SLOPE);            /* with positions */
        BOTH_CASE(POSATTN_ERR_FLAGS, c.options.flags = POSATTN_MASK_TIMES_SLOPE, c.use_positions = 0, c.slopes = NULL);

        /* AXES, METRIC, WEIGHTS, MASK_TYPE */
        BOTH_CASE(POSATTN_ERR_AXES, c.positions.axes = 5);
        BOTH_CASE(POSATTN_ERR_AXES, c.positions.axes = 2, c.positions.q = NULL);
        BOTH_CASE(POSATTN_ERR_METRIC, c.positions.metric = (posattn_metric)2);
        BOTH_CASE(POSATTN_ERR_MASK_TYPE, c.options.mask_type = (posattn_mask_type)2);

        /* posattn_attention_partials_size */
        size_t bytes = 7;
        ck_assert_int_eq(posattn_attention_partials_size(2, 2, 2, NULL), POSATTN_ERR_NULL);
        ck_assert_int_eq(posattn_attention_partials_size(0, 2, 2, &bytes), POSATTN_ERR_SIZE);
        ck_assert_int_eq(posattn_attention_partials_size(2, -1, 2, &bytes), POSATTN_ERR_SIZE);
        ck_assert_int_eq(posattn_attention_partials_size(2, 2, 0, &bytes), POSATTN_ERR_HEAD_DIM);
        ck_assert_int_eq(posattn_attention_partials_size(2, 2, 577, &bytes), POSATTN_ERR_HEAD_DIM);
        ck_assert_int_eq(posattn_attention_partials_size(INT64_C(1) << 40, INT64_C(1) << 20, 2, &bytes),
                         POSATTN_ERR_OVERFLOW);
        ck_assert_int_eq(posattn_attention_partials_size(INT64_C(1) << 32, INT64_C(1) << 20, 576, &bytes),
                         POSATTN_ERR_OVERFLOW);
        ck_assert_uint_eq(bytes, 7); /* untouched on every error */
        ck_assert_int_eq(posattn_attention_partials_size(2, 2, 2, &bytes), POSATTN_OK);
        ck_assert_uint_eq(bytes, 2 * 2 * 4 * sizeof(double));
    }
    arena_close(&ar);
}
END_TEST

/* WEIGHTS: the weights live in the arena, which ATTN_CASE refills after its change, so these cases write the bad
 * values after the fill and before the snapshot. */
START_TEST(test_errors_values) {
    arena ar;
    arena_open(&ar, AT_ALL);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        static const float bad_weights[][2] = {{NAN, 1.0f}, {-1.0f, 1.0f}, {1.0f, INFINITY}};
        for (int k = 0; k < 3; ++k) {
            for (int fn = FN_ATTENTION; fn <= FN_PARTIAL; ++fn) {
                attn_call c = attn_baseline(ar.a);
                arena_fill(&ar);
                ar.a[AT_WEIGHTS] = bad_weights[k][0], ar.a[AT_WEIGHTS + 1] = bad_weights[k][1];
                arena_snapshot(&ar);
                arena_expect(&ar, attn_invoke(&c, (attn_fn)fn), POSATTN_ERR_WEIGHTS, fn_names[fn], "bad weights",
                             __LINE__);
            }
        }
    }
    arena_close(&ar);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* Far-field skipping                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

static void set_key(attn_buffers *b, int64_t g, int64_t j, int64_t d, float value) {
    posattn_attention_tensors *t = &b->t;
    const int64_t head = stride_or(t->k_head_stride, t->dk), tok = stride_or(t->k_tok_stride, t->n_kv_heads * head);
    kv_put((void *)(uintptr_t)t->k, t->k_type, j * tok + g * head + d, value);
}

enum { FAR_PLAIN, FAR_OUTLIER, FAR_GAPS, FAR_ONE_POSITION, FAR_TIGHT, FAR_GRID_L2, FAR_VOLUME_L1 };

/* Key j of an N-D cache: a point of a grid with pitch 64, axis 0 fastest (2-D: rows of 64 along axis 0; 3-D:
 * slices of 16 x 16 along axes 0 and 1), in raster order but out of order locally (neighbours swapped) and with
 * every 997th key taken from the far end, so that some blocks' boxes span the whole grid; the query one pitch past
 * the last row or slice. Head 0 ignores axis 0 (2-D: its rows are 1-D on axis 1), head 1 weighs the axes by 0.5,
 * the others by 1. */
static void set_grid_positions(attn_buffers *b, int64_t nk, int64_t axes) {
    float *k_pos = (float *)(uintptr_t)b->pos.k, *q_pos = (float *)(uintptr_t)b->pos.q;
    float *w = (float *)(uintptr_t)b->pos.weights;
    const int64_t row = axes == 2 ? 64 : 256; /* keys per row (2-D) or slice (3-D) */
    for (int64_t j = 0; j < nk; ++j) {
        const int64_t at = j % 997 == 500 ? nk - 1 - j : (j ^ 1) < nk ? j ^ 1 : j;
        const int64_t cell[3] = {at % (axes == 2 ? 64 : 16), axes == 2 ? at / 64 : (at / 16) % 16, at / 256};
        for (int64_t a = 0; a < axes; ++a) k_pos[j * axes + a] = 64.0f * (float)cell[a];
    }
    for (int64_t a = 0; a < axes; ++a) q_pos[a] = a == axes - 1 ? 64.0f * (float)(nk / row + 1) : 160.0f;
    for (int64_t h = 0; h < b->c.H; ++h) {
        for (int64_t a = 0; a < axes; ++a) w[h * axes + a] = h == 0 && a == 0 ? 0.0f : h == 1 ? 0.5f : 1.0f;
    }
}

static void run_far_case(int variant, posattn_kv_type type, int64_t nk, uint64_t case_number, const char *what) {
    attn_case c = base_case(8, variant == FAR_PLAIN ? 2 : 8, 1, nk, 64, 64);
    c.k_type = c.v_type = type;
    c.positions = variant == FAR_GAPS || variant == FAR_ONE_POSITION ? POSITIONS_SHARED : POSITIONS_NULL;
    if (variant == FAR_GRID_L2) c.nd_axes = 2, c.nd_metric = POSATTN_METRIC_L2;
    if (variant == FAR_VOLUME_L1) c.nd_axes = 3, c.nd_metric = POSATTN_METRIC_L1;
    rng g = rng_seeded(test_case_seed(case_number));
    attn_buffers b;
    build_case(&c, &g, &b);
    if (c.nd_axes) set_grid_positions(&b, nk, c.nd_axes);
    if (variant == FAR_GAPS || variant == FAR_ONE_POSITION) {
        float *k_pos = (float *)(uintptr_t)b.pos.k, *q_pos = (float *)(uintptr_t)b.pos.q;
        for (int64_t j = 0; j < nk; ++j) {
            /* Out of order (neighbours swapped, and every 97th key from the far end), with a gap of 1000 every
             * 500 keys. */
            const int64_t at = j % 97 == 50 ? nk - 1 - j : j ^ 1;
            k_pos[j] = variant == FAR_ONE_POSITION ? 5.0f : (float)(at + 1000 * (at / 500));
        }
        q_pos[0] = variant == FAR_ONE_POSITION ? 5.0f : (float)(nk + 1000 * (nk / 500));
    }
    if (variant == FAR_TIGHT) {
        /* Every key 3 q / |q| of its first query head: the summary's bound is then the real logit (up to the
         * roundings' margin), so the weight left unread is as large as the criterion allows. */
        for (int64_t g = 0; g < c.Hkv; ++g) {
            const int64_t h = g * (c.H / c.Hkv);
            double norm = 0.0;
            for (int64_t d = 0; d < c.dk; ++d) norm += q_value(&b, h, 0, d) * q_value(&b, h, 0, d);
            norm = sqrt(norm);
            for (int64_t j = 0; j < nk; ++j) {
                for (int64_t d = 0; d < c.dk; ++d) set_key(&b, g, j, d, (float)(3.0 * q_value(&b, h, 0, d) / norm));
            }
        }
    }
    if (variant == FAR_OUTLIER || variant == FAR_VOLUME_L1) {
        /* Key 3 of every KV head: 40 times q of its first query head, far from the query (slope 1/256 times
         * nk - 4 keys of distance is much less than scale * 40 |q|^2). */
        for (int64_t h = 0; h < c.H; ++h) {
            for (int64_t d = 0; d < c.dk; ++d) set_key(&b, h, 3, d, (float)(40.0 * q_value(&b, h, 0, d)));
        }
    }
    expected e = oracle_attention(&b);
    rng sr = rng_seeded(test_case_seed(case_number) ^ 0xfa7);
    char label[200];
    snprintf(label, sizeof label, "%s [nk %" PRId64 ", kv type %d]", what, nk, (int)type);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        far_state f = far_prepare(&b, &sr);
        check_far_field(&b, &e, &f, 0.0f, label);
        check_far_field_split(&b, &e, &f, &sr, label);
        if (variant == FAR_TIGHT) check_far_field(&b, &e, &f, 0x1p-10f, label); /* the largest eps allowed */
        /* keys_read of this call, again (the check resets outputs and calls once). */
        posattn_far_field far = {.summary = &f.summary, .scratch = f.scratch, .scratch_bytes = f.scratch_bytes};
        ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, options_of(&b), &far, 0,
                                                     c.H),
                         POSATTN_OK);
        const int64_t all = c.H * nk;
        if (variant != FAR_OUTLIER && variant != FAR_ONE_POSITION && nk >= 1000) {
            CHECK(far.keys_read < all / 2, "%s: read %" PRId64 " of %" PRId64 " keys: nothing skipped", label,
                  far.keys_read, all);
        }
        if (variant == FAR_ONE_POSITION) CHECK(far.keys_read == all, "%s: skipped keys at the query's position", label);
        far_free(&f);
    }
    expected_free(&e);
    free_case(&b);
}

START_TEST(test_far_field) {
    uint64_t n = 9000;
    for (size_t t = 0; t < sizeof kv_types / sizeof kv_types[0]; ++t) {
        run_far_case(FAR_PLAIN, kv_types[t], 6000, n++, "far field, steep slopes");
    }
    run_far_case(FAR_PLAIN, POSATTN_KV_F16, 65, n++, "far field, two blocks");
    run_far_case(FAR_OUTLIER, POSATTN_KV_F32, 5000, n++, "far field, a huge far key");
    run_far_case(FAR_OUTLIER, POSATTN_KV_F16, 5000, n++, "far field, a huge far key");
    run_far_case(FAR_GAPS, POSATTN_KV_F32, 4000, n++, "far field, unsorted positions with gaps");
    run_far_case(FAR_ONE_POSITION, POSATTN_KV_BF16, 3000, n++, "far field, every key at one position");
    run_far_case(FAR_TIGHT, POSATTN_KV_F32, 6000, n++, "far field, tight bounds");
    run_far_case(FAR_GRID_L2, POSATTN_KV_F16, 4096, n++, "far field, shuffled 2-D grid, L2");
    run_far_case(FAR_VOLUME_L1, POSATTN_KV_F32, 4000, n++, "far field, shuffled 3-D volume, L1, a huge far key");
}
END_TEST

/* Summaries appended token by token equal summaries made at once, bit for bit; errors leave them unchanged. */
START_TEST(test_far_field_summaries) {
    attn_case c = base_case(4, 2, 1, 300, 48, 48);
    c.k_type = c.v_type = POSATTN_KV_F16;
    c.positions = POSITIONS_SHARED;
    rng g = rng_seeded(test_case_seed(9100));
    attn_buffers b;
    build_case(&c, &g, &b);
    size_t bytes;
    ck_assert_int_eq(posattn_kv_summary_size(2, 300, &bytes), POSATTN_OK);
    float *once = malloc(bytes), *stepwise = malloc(bytes);
    ck_assert(once && stepwise);
    posattn_kv_summary a, s;
    ck_assert_int_eq(posattn_kv_summary_init(&a, 2, 300, once, bytes), POSATTN_OK);
    ck_assert_int_eq(posattn_kv_summary_init(&s, 2, 300, stepwise, bytes), POSATTN_OK);
    ck_assert_int_eq(posattn_kv_summary_update(&a, &b.t, b.pos_arg, 0), POSATTN_OK);
    posattn_attention_tensors t = b.t;
    for (t.nk = 1; t.nk <= 300; ++t.nk) {
        ck_assert_int_eq(posattn_kv_summary_update(&s, &t, b.pos_arg, t.nk - 1), POSATTN_OK);
    }
    ck_assert_int_eq(a.n_keys, 300);
    ck_assert_int_eq(a.axes, 1);
    ck_assert_int_eq(s.n_keys, 300);
    ck_assert_int_eq(memcmp(once, stepwise, bytes), 0);
    /* Every bound holds: |k_j| <= key_norm of its block, positions inside the block's interval. */
    for (int64_t j = 0; j < 300; ++j) {
        for (int64_t gg = 0; gg < 2; ++gg) {
            double sq = 0.0;
            for (int64_t d = 0; d < 48; ++d) sq += k_value(&b, gg, j, d) * k_value(&b, gg, j, d);
            ck_assert(sqrt(sq) <= (double)a.key_norm[gg * 5 + j / 64]);
        }
        ck_assert(b.pos.k[j] >= a.pos_min[j / 64] && b.pos.k[j] <= a.pos_max[j / 64]);
    }
    /* Errors: distinct codes, the summary unchanged. */
    memcpy(stepwise, once, bytes);
    t = b.t;
    ck_assert_int_eq(posattn_kv_summary_update(NULL, &t, NULL, 0), POSATTN_ERR_NULL);
    t.nk = 301;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, 0), POSATTN_ERR_SIZE);
    t = b.t;
    t.n_kv_heads = 4, t.n_heads = 4;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, 0), POSATTN_ERR_SIZE);
    t = b.t;
    t.k_type = (posattn_kv_type)7;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, 0), POSATTN_ERR_KV_TYPE);
    t = b.t;
    t.dk = 577;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, 0), POSATTN_ERR_HEAD_DIM);
    t = b.t;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, 301), POSATTN_ERR_KEY_RANGE);
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, -1), POSATTN_ERR_KEY_RANGE);
    posattn_positions nd = b.pos;
    nd.axes = POSATTN_KV_SUMMARY_AXES + 1;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, &nd, 0), POSATTN_ERR_AXES);
    nd = b.pos;
    nd.axes = 2, nd.k = NULL; /* N-D positions need keys */
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, &nd, 0), POSATTN_ERR_AXES);
    nd = b.pos;
    nd.axes = 2, t.nk = 150; /* appending 2-D keys to 1-D blocks (b.pos.k holds 300 floats: 150 2-D keys) */
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, &nd, 100), POSATTN_ERR_AXES);
    t = b.t;
    nd = b.pos;
    nd.k_stride = -2;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, &nd, 0), POSATTN_ERR_STRIDE);
    nd = b.pos;
    nd.k_head_stride = 300;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, &nd, 0), POSATTN_ERR_AXES);
    t.k_tok_stride = -1;
    ck_assert_int_eq(posattn_kv_summary_update(&a, &t, NULL, 0), POSATTN_ERR_STRIDE);
    ck_assert_int_eq(memcmp(once, stepwise, bytes), 0);
    ck_assert_int_eq(posattn_kv_summary_size(0, 10, &bytes), POSATTN_ERR_SIZE);
    ck_assert_int_eq(posattn_kv_summary_size(INT64_MAX / 4, INT64_MAX, &bytes), POSATTN_ERR_OVERFLOW);
    ck_assert_int_eq(posattn_kv_summary_size(1, INT64_MAX, &bytes), POSATTN_OK); /* 3 floats per 64 keys */
    ck_assert_int_eq(posattn_kv_summary_init(&s, 2, 300, stepwise, 8), POSATTN_ERR_SIZE);

    /* The call's own errors, outputs untouched: a summary of fewer keys, other heads, scratch too small, bad eps. */
    size_t scratch_bytes;
    ck_assert_int_eq(posattn_far_field_scratch_size(300, 48, &scratch_bytes), POSATTN_OK);
    double *scratch = malloc(scratch_bytes);
    ck_assert(scratch);
    reset_outputs(&b);
    posattn_kv_summary short_summary = a;
    short_summary.n_keys = 299;
    posattn_far_field far = {.summary = &short_summary, .scratch = scratch, .scratch_bytes = scratch_bytes};
    ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 4),
                     POSATTN_ERR_KEY_RANGE);
    far.summary = &a, far.scratch_bytes = scratch_bytes - 1;
    ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 4),
                     POSATTN_ERR_SIZE);
    far.scratch_bytes = scratch_bytes, far.eps = 0.5f;
    ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 4),
                     POSATTN_ERR_SCALE);
    far.eps = 0.0f, far.scratch = NULL;
    ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 4),
                     POSATTN_ERR_NULL);
    ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, NULL, 0, 4),
                     POSATTN_ERR_NULL);
    posattn_positions two_axes = b.pos; /* positions of other axes than the summary's */
    two_axes.axes = 2, two_axes.q = b.pos.k, two_axes.k = b.pos.k;
    posattn_attention_tensors half = b.t;
    half.nk = 150;
    far.scratch = scratch;
    ck_assert_int_eq(posattn_attention_far_field(&half, b.scale, slopes_of(&b), &two_axes, NULL, &far, 0, 4),
                     POSATTN_ERR_AXES);
    far.scratch = (void *)(uintptr_t)b.t.q; /* on an input */
    ck_assert_int_eq(posattn_attention_far_field(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 4),
                     POSATTN_ERR_OVERLAP);
    const float *out = b.out.data;
    for (int64_t k = 0; k < b.out_extent; ++k) ck_assert(same_bits(out[k], untouched_pattern()));

    /* The partial call's own errors, partials and keys_read untouched. */
    size_t part_bytes;
    ck_assert_int_eq(posattn_attention_partials_size(4, 1, 48, &part_bytes), POSATTN_OK);
    double *parts = malloc(part_bytes + scratch_bytes);
    ck_assert(parts);
    memset(parts, 0xA5, part_bytes);
    far = (posattn_far_field){.summary = &a, .scratch = scratch, .scratch_bytes = scratch_bytes, .keys_read = -7};
    ck_assert_int_eq(posattn_attention_far_field_partial(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 300,
                                                         NULL, 0, 4),
                     POSATTN_ERR_NULL);
    ck_assert_int_eq(posattn_attention_far_field_partial(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 10, 301,
                                                         parts, 0, 4),
                     POSATTN_ERR_KEY_RANGE);
    ck_assert_int_eq(posattn_attention_far_field_partial(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 20, 10,
                                                         parts, 0, 4),
                     POSATTN_ERR_KEY_RANGE);
    far.scratch = (char *)parts + part_bytes / 2; /* on the partials */
    ck_assert_int_eq(posattn_attention_far_field_partial(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 300,
                                                         parts, 0, 4),
                     POSATTN_ERR_OVERLAP);
    far.scratch = scratch, far.summary = &short_summary;
    ck_assert_int_eq(posattn_attention_far_field_partial(&b.t, b.scale, slopes_of(&b), b.pos_arg, NULL, &far, 0, 300,
                                                         parts, 0, 4),
                     POSATTN_ERR_KEY_RANGE);
    ck_assert_int_eq(far.keys_read, -7);
    for (size_t k = 0; k < part_bytes; ++k) ck_assert_uint_eq(((unsigned char *)parts)[k], 0xA5u);
    free(parts);
    free(scratch), free(once), free(stepwise);
    free_case(&b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("attention");
    TCase *tc = make_tcase("attention");
    tcase_add_test(tc, test_spec_vectors);
    tcase_add_test(tc, test_kv_types);
    tcase_add_test(tc, test_head_dims);
    tcase_add_test(tc, test_key_counts);
    tcase_add_test(tc, test_head_groups);
    tcase_add_test(tc, test_options);
    tcase_add_test(tc, test_causal_shapes);
    tcase_add_test(tc, test_layouts);
    tcase_add_test(tc, test_misaligned);
    tcase_add_test(tc, test_empty_rows);
    tcase_add_test(tc, test_nan_inputs);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_errors_values);
    tcase_add_test(tc, test_far_field);
    tcase_add_test(tc, test_far_field_summaries);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
