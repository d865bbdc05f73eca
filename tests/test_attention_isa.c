/*
 * Differential test of the fused attention (SPEC 9) across ISAs: random problems (f32/f16/bf16 K and V, GQA,
 * head sizes from 1 to 576 with the specialised ones, 1 to 4097 keys, masks, causal, window, softcap, sinks, 1-D and
 * N-D positions, strided queries, head-major caches, split-KV ranges) run through the public API on the scalar
 * reference and on every other supported ISA, whose outputs must agree within twice the bound of include/posattn.h
 * (each is within the bound of the exact result). The bound's magnitudes (A_j, L, P*_j, V_d) come from a float64
 * oracle of this file, on the same widened inputs; expected values never come from the library.
 *
 * A fully masked key holds a NaN key and infinite values: it must not reach any output (as in the reference).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

enum { KV_F32, KV_F16, KV_BF16 };

static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* A K or V tensor in its storage type, and its values widened (what the result is defined on). */
typedef struct kv_tensor {
    guarded store;
    double *wide;
    posattn_kv_type type;
} kv_tensor;

static void kv_set(kv_tensor *t, int64_t at, float value) {
    if (t->type == POSATTN_KV_F32) {
        ((float *)t->store.data)[at] = value;
        t->wide[at] = value;
    } else if (t->type == POSATTN_KV_F16) {
        uint16_t h = f32_to_f16(value);
        ((uint16_t *)t->store.data)[at] = h;
        t->wide[at] = f16_to_f64(h);
    } else {
        float b = isnan(value) || isinf(value) ? value : bf16_round(value);
        uint32_t u;
        memcpy(&u, &b, 4);
        ((uint16_t *)t->store.data)[at] = (uint16_t)(u >> 16);
        t->wide[at] = b;
    }
}

typedef struct problem {
    int64_t H, Hkv, nq, nk, dk, dv;
    int head_major, q_dim_stride, softcap_on, window, causal, mask_kind, sinks_on, times_slope, axes, l2,
        slopes_on, n_ranges;
    float scale, softcap;
} problem;

typedef struct buffers {
    posattn_attention_tensors t;
    guarded q, out, lse, mask, slopes, sinks, qpos, kpos, weights;
    kv_tensor k, v;
    posattn_positions pos;
    posattn_softmax_options o;
    int use_positions;
} buffers;

static double oracle_dist(const problem *p, const buffers *b, int64_t h, int64_t i, int64_t j) {
    const posattn_positions *pos = &b->pos;
    if (!b->use_positions) return fabs((double)(p->nk - p->nq + i) - (double)j);
    double acc = 0.0;
    for (int a = 0; a < p->axes; ++a) {
        double w = pos->weights ? pos->weights[h * p->axes + a] : 1.0;
        double t = (double)pos->q[i * p->axes + a] - (double)pos->k[j * p->axes + a];
        acc += p->l2 ? (w * t) * (w * t) : fabs(w) * fabs(t);
    }
    return p->l2 ? sqrt(acc) : acc;
}

/* The bound on |O_d - O*_d| of every element of row r, twice (two paths each within it), into bound[0..dv); also
 * the lse bound. Returns 0 when the row's exact result is not finite (NaN inputs reach it). */
static void oracle_bounds(const problem *p, const buffers *b, int64_t r, double *bound, double *lse_bound_out) {
    const int64_t h = r / p->nq, i = r % p->nq, g = h / (p->H / p->Hkv), nk = p->nk;
    const float *q = b->t.q + i * b->t.q_tok_stride + h * b->t.q_head_stride;
    double *x = malloc((size_t)nk * sizeof(double));
    unsigned char *valid = malloc((size_t)nk);
    double mx = p->sinks_on ? ((const float *)b->sinks.data)[h] : -INFINITY, maxA = 0.0;
    double L = p->sinks_on ? fabs(mx) : 0.0;
    const double slope = p->slopes_on ? ((const float *)b->slopes.data)[h] : 0.0;
    int64_t lo = 0, hi = nk;
    const int64_t diag = i + nk - p->nq;
    if (p->causal && diag + 1 < hi) hi = diag + 1;
    if (p->window > 0) {
        if (p->window <= diag) lo = diag - p->window + 1;
        if (!p->causal && p->window < hi - diag) hi = diag + p->window;
    }
    for (int64_t j = 0; j < nk; ++j) {
        valid[j] = j >= lo && j < hi;
        double mask = 0.0;
        if (p->mask_kind) {
            int64_t at = (p->mask_kind == 2 ? h * p->nq * nk : 0) + i * nk + j;
            mask = ((const float *)b->mask.data)[at];
            if (mask == -INFINITY) valid[j] = 0;
        }
        if (!valid[j]) continue;
        double s = 0.0, A = 0.0;
        for (int64_t d = 0; d < p->dk; ++d) {
            double kd = b->k.wide[j * b->t.k_tok_stride + g * b->t.k_head_stride + d];
            s += (double)q[d * p->q_dim_stride] * kd;
            A += fabs((double)q[d * p->q_dim_stride] * kd);
        }
        double xs = p->scale * s;
        A *= fabs(p->scale);
        if (p->softcap_on) xs = p->softcap * tanh(xs / p->softcap);
        double bias = p->times_slope ? 0.0 : -slope * oracle_dist(p, b, h, i, j);
        double mterm = p->times_slope ? slope * mask : mask;
        x[j] = xs + bias + mterm;
        L = fmax(L, fabs(xs) + fabs(bias) + fabs(mterm));
        maxA = fmax(maxA, A);
        mx = fmax(mx, x[j]);
    }
    double den = p->sinks_on ? exp(((const float *)b->sinks.data)[h] - mx) : 0.0, maxv = 0.0;
    for (int64_t j = 0; j < nk; ++j) {
        if (valid[j]) den += exp(x[j] - mx);
    }
    for (int64_t d = 0; d < p->dv; ++d) {
        double V = 0.0;
        for (int64_t j = 0; j < nk; ++j) {
            if (!valid[j]) continue;
            double vd = fabs(b->v.wide[j * b->t.v_tok_stride + g * b->t.v_head_stride + d]);
            V += exp(x[j] - mx) / den * vd;
            maxv = fmax(maxv, vd);
        }
        double one = ((p->dk + 10) * maxA + 10 * L + 2 * 44.0 + POSATTN_ATTENTION_BLOCK + 60 + 2.0 * p->n_ranges) *
                         UNIT_ROUNDOFF * V +
                     nk * 0x1p-62 * maxv;
        bound[d] = 2.0 * one;
    }
    double lse = mx + log(den);
    *lse_bound_out = 2.0 * ((L + (p->dk + 10) * maxA + 20.0) * UNIT_ROUNDOFF + UNIT_ROUNDOFF * fabs(lse));
    free(x);
    free(valid);
}

static void build(const problem *p, rng *g, buffers *b) {
    memset(b, 0, sizeof *b);
    const int64_t H = p->H, Hkv = p->Hkv, nq = p->nq, nk = p->nk;
    posattn_attention_tensors *t = &b->t;
    t->n_heads = H, t->n_kv_heads = Hkv, t->nq = nq, t->nk = nk, t->dk = p->dk, t->dv = p->dv;
    t->q_dim_stride = p->q_dim_stride;
    const int64_t q_floats = nq * H * p->dk * p->q_dim_stride;
    b->q = guarded_input((size_t)q_floats, sizeof(float), rng_below(g, 2));
    float *q = b->q.data;
    for (int64_t n = 0; n < q_floats; ++n) q[n] = rng_float(g, -1.0, 1.0);
    kv_tensor *kv[2] = {&b->k, &b->v};
    const int64_t dims[2] = {p->dk, p->dv};
    b->k.type = (posattn_kv_type)rng_below(g, 3);
    b->v.type = rng_below(g, 2) ? b->k.type : (posattn_kv_type)rng_below(g, 3); /* often one type: fast paths */
    for (int w = 0; w < 2; ++w) {
        kv_tensor *x = kv[w];
        const int64_t n = nk * Hkv * dims[w];
        x->store = guarded_input((size_t)n, x->type == POSATTN_KV_F32 ? 4 : 2, rng_below(g, 2));
        x->wide = malloc((size_t)n * sizeof(double));
        for (int64_t e = 0; e < n; ++e) kv_set(x, e, rng_float(g, -2.0, 2.0));
    }
    t->q = q;
    t->k = b->k.store.data, t->k_type = b->k.type;
    t->v = b->v.store.data, t->v_type = b->v.type;
    if (p->head_major) {
        t->k_tok_stride = p->dk, t->k_head_stride = nk * p->dk;
        t->v_tok_stride = p->dv, t->v_head_stride = nk * p->dv;
    } else {
        t->k_tok_stride = Hkv * p->dk, t->k_head_stride = p->dk;
        t->v_tok_stride = Hkv * p->dv, t->v_head_stride = p->dv;
    }
    t->q_head_stride = p->dk * p->q_dim_stride, t->q_tok_stride = H * t->q_head_stride;
    b->out = guarded_output((size_t)(nq * H * p->dv), sizeof(float), 0);
    t->out = b->out.data;
    t->o_head_stride = p->dv, t->o_tok_stride = H * p->dv;
    b->slopes = guarded_input((size_t)H, sizeof(float), 0);
    posattn_alibi_slopes(H, 8.0f, b->slopes.data);
    ((float *)b->slopes.data)[0] = 0.0f; /* head 0: no bias */
    b->o.flags = (p->causal ? POSATTN_CAUSAL : 0) | (p->times_slope ? POSATTN_MASK_TIMES_SLOPE : 0);
    b->o.window = p->window;
    b->o.softcap = p->softcap_on ? p->softcap : 0.0f;
    if (p->mask_kind) {
        const int64_t rows = p->mask_kind == 2 ? H * nq : nq;
        b->mask = guarded_input((size_t)(rows * nk), sizeof(float), 0);
        float *m = b->mask.data;
        for (int64_t n = 0; n < rows * nk; ++n) m[n] = rng_below(g, 5) == 0 ? -INFINITY : rng_float(g, -3.0, 1.0);
        b->o.mask = m;
        b->o.mask_type = POSATTN_MASK_F32;
        b->o.mask_head_stride = p->mask_kind == 2 ? nq * nk : 0;
        /* A key masked in every row: its key is NaN and its values infinite, and none of it may show. */
        const int64_t j = rng_below(g, nk);
        for (int64_t r = 0; r < rows; ++r) m[r * nk + j] = -INFINITY;
        for (int64_t gg = 0; gg < Hkv; ++gg) {
            kv_set(&b->k, j * t->k_tok_stride + gg * t->k_head_stride, NAN);
            kv_set(&b->v, j * t->v_tok_stride + gg * t->v_head_stride + rng_below(g, p->dv), INFINITY);
        }
    }
    if (p->sinks_on) {
        b->sinks = guarded_input((size_t)H, sizeof(float), 0);
        for (int64_t h = 0; h < H; ++h) ((float *)b->sinks.data)[h] = rng_float(g, -2.0, 4.0);
        b->o.sinks = b->sinks.data;
    }
    b->lse = guarded_output((size_t)(H * nq), sizeof(float), 0);
    b->o.lse = b->lse.data;
    if (p->axes > 0 && !p->times_slope) {
        b->use_positions = 1;
        b->qpos = guarded_input((size_t)(nq * p->axes), sizeof(float), 0);
        b->kpos = guarded_input((size_t)(nk * p->axes), sizeof(float), 0);
        float *qp = b->qpos.data, *kp = b->kpos.data;
        for (int64_t n = 0; n < nq * p->axes; ++n) qp[n] = rng_float(g, 0.0, 40.0);
        for (int64_t n = 0; n < nk * p->axes; ++n) kp[n] = rng_float(g, 0.0, 40.0);
        b->pos.q = qp, b->pos.k = kp, b->pos.axes = p->axes;
        b->pos.metric = p->l2 ? POSATTN_METRIC_L2 : POSATTN_METRIC_L1;
        if (p->axes > 1) {
            b->weights = guarded_input((size_t)(H * p->axes), sizeof(float), 0);
            float *w = b->weights.data;
            for (int64_t n = 0; n < H * p->axes; ++n) w[n] = rng_float(g, 0.0, 2.0);
            b->pos.weights = w;
        }
    }
}

static void release(buffers *b) {
    guarded *all[] = {&b->q, &b->out, &b->lse, &b->mask, &b->slopes, &b->sinks, &b->qpos, &b->kpos, &b->weights,
                      &b->k.store, &b->v.store};
    for (size_t n = 0; n < sizeof all / sizeof all[0]; ++n) {
        if (all[n]->block) guarded_free(all[n]);
    }
    free(b->k.wide);
    free(b->v.wide);
}

/* Runs the problem on the active ISA into out[H*nq*dv] and lse[H*nq]. */
static void run(const problem *p, buffers *b, float *out, float *lse) {
    const int64_t rows = p->H * p->nq;
    const float *slopes = p->slopes_on ? b->slopes.data : NULL;
    const posattn_positions *pos = b->use_positions ? &b->pos : NULL;
    posattn_status st;
    if (p->n_ranges == 1) {
        st = posattn_attention(&b->t, p->scale, slopes, pos, &b->o, 0, rows);
        ck_assert_int_eq(st, POSATTN_OK);
    } else {
        size_t bytes;
        ck_assert_int_eq(posattn_attention_partials_size(p->H, p->nq, p->dv, &bytes), POSATTN_OK);
        double *parts[3];
        for (int n = 0; n < p->n_ranges; ++n) {
            parts[n] = malloc(bytes);
            const int64_t kb = p->nk * n / p->n_ranges, ke = p->nk * (n + 1) / p->n_ranges;
            st = posattn_attention_partial(&b->t, p->scale, slopes, pos, &b->o, kb, ke, parts[n], 0, rows);
            ck_assert_int_eq(st, POSATTN_OK);
        }
        st = posattn_attention_merge(&b->t, &b->o, (const double *const *)parts, p->n_ranges, 0, rows);
        ck_assert_int_eq(st, POSATTN_OK);
        for (int n = 0; n < p->n_ranges; ++n) free(parts[n]);
    }
    guarded_check(&b->out, "out");
    guarded_check(&b->lse, "lse");
    memcpy(out, b->out.data, (size_t)(rows * p->dv) * sizeof(float));
    memcpy(lse, b->lse.data, (size_t)rows * sizeof(float));
}

static const int64_t dims[] = {1, 3, 64, 80, 96, 128, 256, 576, 17};
static const int64_t key_counts[] = {1, 15, 16, 17, 63, 64, 65, 200, 4097};

static problem random_problem(rng *g) {
    problem p;
    memset(&p, 0, sizeof p);
    for (;;) {
        const int64_t groups[] = {1, 4, 8};
        p.Hkv = 1 + rng_below(g, 2);
        p.H = p.Hkv * groups[rng_below(g, 3)];
        p.nq = rng_below(g, 3) == 0 ? 1 + rng_below(g, 20) : 1;
        p.nk = key_counts[rng_below(g, 9)];
        if (p.nq > p.nk) p.nq = p.nk;
        p.dk = dims[rng_below(g, 9)];
        p.dv = rng_below(g, 2) ? p.dk : dims[rng_below(g, 9)];
        if (p.H * p.nq * p.nk * (p.dk + p.dv) <= 20000000) break;
    }
    p.head_major = (int)rng_below(g, 2);
    p.q_dim_stride = rng_below(g, 4) == 0 ? 2 : 1;
    p.scale = (float)(1.0 / sqrt((double)p.dk)) * rng_float(g, 0.5, 3.0);
    p.softcap_on = rng_below(g, 4) == 0;
    p.softcap = rng_float(g, 2.0, 30.0);
    p.causal = (int)rng_below(g, 2);
    p.window = rng_below(g, 4) == 0 ? (int)(1 + rng_below(g, p.nk + 3)) : 0;
    p.mask_kind = (int)rng_below(g, 3);
    p.sinks_on = (int)rng_below(g, 3) == 0;
    p.times_slope = p.mask_kind && rng_below(g, 4) == 0;
    p.slopes_on = p.times_slope || rng_below(g, 4) != 0;
    p.axes = (int)rng_below(g, 4); /* 0: default positions; 1: given 1-D; 2, 3: N-D */
    p.l2 = (int)rng_below(g, 2);
    p.n_ranges = 1 + (int)rng_below(g, 3);
    return p;
}

START_TEST(test_isa_agrees_with_scalar) {
    const int cases = 160;
    for (int c = 0; c < cases; ++c) {
        const uint64_t seed = test_case_seed((uint64_t)c);
        rng g = rng_seeded(seed);
        const problem p = random_problem(&g);
        buffers b;
        build(&p, &g, &b);
        const int64_t rows = p.H * p.nq;
        float *ref = malloc((size_t)(rows * p.dv) * sizeof(float)), *ref_lse = malloc((size_t)rows * sizeof(float));
        float *got = malloc((size_t)(rows * p.dv) * sizeof(float)), *got_lse = malloc((size_t)rows * sizeof(float));
        double *bound = malloc((size_t)p.dv * sizeof(double));
        ck_assert_int_eq(posattn_force_isa(POSATTN_ISA_SCALAR), POSATTN_OK);
        run(&p, &b, ref, ref_lse);
        FOR_EACH_ISA(isa) {
            if (isa == POSATTN_ISA_SCALAR || !enter_isa(isa)) continue;
            run(&p, &b, got, got_lse);
            for (int64_t r = 0; r < rows; ++r) {
                double lse_b;
                oracle_bounds(&p, &b, r, bound, &lse_b);
                const int64_t at = ((r % p.nq) * p.H + r / p.nq) * p.dv; /* out is token-major */
                for (int64_t d = 0; d < p.dv; ++d) {
                    const float e = ref[at + d], a = got[at + d];
                    CHECK(isnan(e) ? isnan(a) : fabs((double)a - e) <= bound[d],
                          "case %d seed %#llx isa %s: H %lld Hkv %lld nq %lld nk %lld dk %lld dv %lld kv %d/%d "
                          "ranges %d row %lld d %lld: %.9g vs scalar %.9g (bound %.3g)",
                          c, (unsigned long long)seed, posattn_isa_name(isa), (long long)p.H, (long long)p.Hkv,
                          (long long)p.nq, (long long)p.nk, (long long)p.dk, (long long)p.dv, (int)b.k.type,
                          (int)b.v.type, p.n_ranges, (long long)r, (long long)d, a, e, bound[d]);
                }
                const float e = ref_lse[r], a = got_lse[r];
                CHECK(isnan(e) ? isnan(a) : isinf(e) ? a == e : fabs((double)a - e) <= lse_b,
                      "case %d seed %#llx isa %s row %lld: lse %.9g vs scalar %.9g", c, (unsigned long long)seed,
                      posattn_isa_name(isa), (long long)r, a, e);
            }
        }
        free(ref), free(ref_lse), free(got), free(got_lse), free(bound);
        release(&b);
    }
    posattn_force_isa(POSATTN_ISA_AUTO);
}
END_TEST

int main(void) {
    Suite *s = suite_create("attention_isa");
    TCase *tc = make_tcase("differential");
    tcase_add_test(tc, test_isa_agrees_with_scalar);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
