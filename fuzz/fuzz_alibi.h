/*
 * Positions and the float64 bias oracle shared by the ALiBi fuzz targets (SPEC 2; include/posattn.h,
 * posattn_positions). Axes are drawn from 1..4: a build without N-D positions answers POSATTN_ERR_AXES for A > 1,
 * which the targets accept; once N-D positions exist the same inputs exercise them.
 */
#ifndef POSATTN_FUZZ_ALIBI_H
#define POSATTN_FUZZ_ALIBI_H

#include "fuzz_support.h"

typedef struct fz_positions {
    int use;             /* 0: NULL pointer to the API */
    posattn_positions p; /* as passed */
    int64_t axes;        /* A resolved (1..4), or the hostile value */
    int weights_invalid; /* NaN / inf, or negative with L1: POSATTN_ERR_WEIGHTS (or OK before the check exists) */
    float *q, *k, *w;    /* owned */
} fz_positions;

static inline void fz_positions_free(fz_positions *fp) {
    free(fp->q), free(fp->k), free(fp->w);
    fp->q = fp->k = fp->w = NULL;
}

/* Draws positions for H heads, nq queries and nk keys (all >= 1), with exact-size arrays. */
static inline void fz_positions_draw(fz_bytes *b, int64_t H, int64_t nq, int64_t nk, fz_positions *fp) {
    memset(fp, 0, sizeof *fp);
    uint8_t mode = fz_u8(b);
    fp->use = (mode & 3) != 0;
    fp->axes = 1;
    if (!fp->use || (mode & 3) == 1) return; /* NULL, or a zeroed struct: the KV-cache default */
    posattn_positions *p = &fp->p;
    int64_t A = fz_range(b, 1, 4);
    if (fz_u8(b) < 128) A = 1; /* 1-D half of the time */
    fp->axes = A;
    p->axes = (A == 1 && fz_bool(b)) ? 0 : A;
    p->metric = fz_bool(b) ? POSATTN_METRIC_L2 : POSATTN_METRIC_L1;
    int have_q = A > 1 || (mode & 4), have_k = A > 1 || (mode & 8);
    if (A > 1 && (mode & 0x30) == 0x30) have_q = 0; /* N-D without query positions: POSATTN_ERR_AXES */
    int64_t qs = fz_bool(b) ? 0 : A + fz_range(b, 0, 2), ks = fz_bool(b) ? 0 : A + fz_range(b, 0, 2);
    int64_t qst = qs ? qs : A, kst = ks ? ks : A;
    int64_t qhs = 0, khs = 0;
    if (fz_bool(b)) qhs = (nq - 1) * qst + A + fz_range(b, -1, 2);
    if (fz_bool(b)) khs = (nk - 1) * kst + A + fz_range(b, -1, 2);
    if (qhs < 0) qhs = 0;
    if (khs < 0) khs = 0;
    float mag = (float)fz_range(b, 1, 4096);
    int special = fz_u8(b) < 64;
    if (have_q) {
        int64_t n = (H - 1) * qhs + (nq - 1) * qst + A;
        fp->q = fz_floats(n);
        for (int64_t e = 0; e < n; ++e) fp->q[e] = fz_float(b, mag, special);
        p->q = fp->q, p->q_stride = qs, p->q_head_stride = qhs;
    }
    if (have_k) {
        int64_t n = (H - 1) * khs + (nk - 1) * kst + A;
        fp->k = fz_floats(n);
        for (int64_t e = 0; e < n; ++e) fp->k[e] = fz_float(b, mag, special);
        p->k = fp->k, p->k_stride = ks, p->k_head_stride = khs;
    }
    uint8_t wmode = fz_u8(b) % 4;
    if (wmode) {
        fp->w = fz_floats(H * A);
        for (int64_t e = 0; e < H * A; ++e) {
            float w = wmode == 1 ? (float)fz_range(b, 0, 1)          /* one-hot and zero heads */
                                 : wmode == 2 ? fz_float(b, 2.0f, 0) /* signed, ordinary */
                                              : fz_float(b, 2.0f, 1);
            fp->w[e] = w;
            if (!isfinite(w) || (p->metric == POSATTN_METRIC_L1 && w < 0.0f)) fp->weights_invalid = 1;
        }
        p->weights = fp->w;
    }
}

/* Extra absolute slack of the last fz_oracle_bias call (float32 underflow the first-order bounds leave out). */
static double fz_bias_slack;

/* The kept axes of head h (non-zero weight) and the effective slope rule of the header. */
static inline double fz_oracle_bias(const float *slopes, const fz_positions *fp, int64_t nq, int64_t nk, int64_t h,
                             int64_t i, int64_t j, int *kept_out, double *max_mid) {
    const posattn_positions *p = &fp->p;
    const int64_t A = fp->axes;
    const int l2 = fp->use && p->metric == POSATTN_METRIC_L2;
    const int64_t qs = p->q_stride ? p->q_stride : A, ks = p->k_stride ? p->k_stride : A;
    double q[4], k[4], w[4];
    int kept = 0;
    for (int64_t a = 0; a < A; ++a) {
        double wa = (fp->use && p->weights) ? (double)p->weights[h * A + a] : 1.0;
        if (wa == 0.0) continue;
        q[kept] = (fp->use && p->q) ? (double)p->q[h * p->q_head_stride + i * qs + a] : (double)(nk - nq + i);
        k[kept] = (fp->use && p->k) ? (double)p->k[h * p->k_head_stride + j * ks + a] : (double)j;
        w[kept] = l2 ? fabs(wa) : wa;
        ++kept;
    }
    *kept_out = kept;
    const double m = (double)slopes[h];
    *max_mid = 0.0;
    fz_bias_slack = 0.0;
    if (kept == 0) return 0.0;
    if (kept == 1) {
        if ((float)slopes[h] * (float)w[0] == 0.0f) return 0.0; /* effective slope 0: no bias, even at inf */
    } else if (m == 0.0) {
        return 0.0;
    }
    double acc = 0.0, mid = fabs(m);
    for (int a = 0; a < kept; ++a) {
        mid = fmax(mid, fabs(m * w[a])); /* the effective slope m_h w, rounded in float32 (may overflow) */
        double d = fabs(q[a] - k[a]);
        double t = w[a] * d;
        mid = fmax(mid, fmax(d, fabs(t)));
        if (l2 && kept > 1) t = t * t, mid = fmax(mid, t);
        acc += t;
    }
    double dist = (l2 && kept > 1) ? sqrt(acc) : acc;
    /* A 1-D effective slope m_h w below FLT_MIN is rounded to a subnormal: up to 2^-150 absolute, times dist. */
    fz_bias_slack = (kept == 1 && fabs(m * w[0]) < FLT_MIN) ? 0x1p-150 * fabs(acc / w[0]) : 0.0;
    *max_mid = fmax(mid, fabs(m * dist));
    return -m * dist;
}

/* The documented bound of one bias value (posattn_alibi_bias; N-D under posattn_positions), plus the absolute
 * slack of float32 underflow (squares of tiny distances, subnormal products) that first-order bounds leave out. */
static inline double fz_bias_bound(double exact, int kept, int weighted, int l2, double slope) {
    if (kept <= 1) return (weighted ? 2.5 : 1.5) * fz_ulp(exact) + 0x1p-150 + fz_bias_slack;
    double k = (double)kept;
    double rel = l2 ? (k / 2.0 + 4.0) : (k + 2.0);
    return rel * FZ_U * fabs(exact) + 0x1p-150 + (l2 ? sqrt(k) * fabs(slope) * 0x1p-75 : k * fabs(slope) * 0x1p-150);
}

/* The invalid arguments the fused softmax and the fused attention share (kinds 0..7: scale, softcap, window,
 * flags, ggml mode with positions, axes, metric, mask type), injected into the call's scale, options or positions.
 * Returns the code the call must give, or POSATTN_OK where the input has nothing to corrupt (no positions, no
 * mask). Each kind draws the same bytes as the targets did before it was shared, so their corpora keep meaning. */
static inline posattn_status fz_inject_common_error(fz_bytes *b, int kind, float *scale, fz_positions *pos,
                                                    posattn_softmax_options *o, int *use_options) {
    switch (kind) {
    case 0: *scale = fz_bool(b) ? NAN : -INFINITY; return POSATTN_ERR_SCALE;
    case 1: *use_options = 1, o->softcap = fz_bool(b) ? -1.0f : NAN; return POSATTN_ERR_SOFTCAP;
    case 2: *use_options = 1, o->window = -1 - fz_range(b, 0, 5); return POSATTN_ERR_WINDOW;
    case 3: *use_options = 1, o->flags |= 1u << fz_range(b, 2, 31); return POSATTN_ERR_FLAGS;
    case 4:
        if (!pos->use) return POSATTN_OK;
        *use_options = 1, o->flags |= POSATTN_MASK_TIMES_SLOPE;
        return POSATTN_ERR_FLAGS;
    case 5:
        if (!pos->use) return POSATTN_OK;
        pos->p.axes = fz_bool(b) ? 5 : -1;
        return POSATTN_ERR_AXES;
    case 6:
        if (!pos->use) return POSATTN_OK;
        pos->p.metric = (posattn_metric)(2 + fz_range(b, 0, 5));
        return POSATTN_ERR_METRIC;
    case 7:
        if (!*use_options || !o->mask) return POSATTN_OK;
        o->mask_type = (posattn_mask_type)(2 + fz_range(b, 0, 9));
        return POSATTN_ERR_MASK_TYPE;
    default: return POSATTN_OK;
    }
}

#endif /* POSATTN_FUZZ_ALIBI_H */
