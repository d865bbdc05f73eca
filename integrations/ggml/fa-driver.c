/*
 * Differential driver for flash_attn_ext: runs cases through the ggml it is linked with (stock or patched) and
 * prints, per case, the NMSE (ggml's formula: sum (out - ref)^2 / sum ref^2) against a float64 reference computed
 * here from the stored (already rounded) q, K, V and mask values, and how many outputs are NaN; rows with no
 * visible key and no sink are left out of the NMSE and counted by their outputs ("nan" rows, "zero" rows).
 * Cases after the FLASH_ATTN_EXT list of ggml's test-backend-ops (head sizes, nk, nq, mask, max_bias, softcap,
 * sinks, GQA ratio, K/V type), thinned to keep CI short, plus llama.cpp's KV-cache layout (permuted q, K/V views
 * of a token-major cache) and a row with no visible key. Written here, not copied. Same output format as
 * ops-driver.c, so test.sh checks both alike.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml_slopes.h"
#include "ggml.h"

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static double uniform(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Fills a K/V tensor (any type, any row strides) with uniform values, rounded to the type by ggml's reference
 * conversion, and returns them as stored, widened back, [Hkv][nk][d]. */
static double *fill_kv(struct lm_ggml_tensor *t)
{
    const int64_t d = t->ne[0], n = t->ne[1], heads = t->ne[2];
    const struct lm_ggml_type_traits *traits = lm_ggml_get_type_traits(t->type);
    double *stored = malloc(sizeof(double) * (size_t)(d * n * heads));
    float *row_f32 = malloc(sizeof(float) * (size_t)d);
    for (int64_t g = 0; g < heads; g++) {
        for (int64_t j = 0; j < n; j++) {
            void *row = (char *)t->data + j * t->nb[1] + g * t->nb[2];
            for (int64_t e = 0; e < d; e++) {
                row_f32[e] = (float)uniform(-1.0, 1.0);
            }
            if (t->type == LM_GGML_TYPE_F32) {
                memcpy(row, row_f32, sizeof(float) * (size_t)d);
            } else {
                traits->from_float_ref(row_f32, row, d);
                traits->to_float(row, row_f32, d);
            }
            for (int64_t e = 0; e < d; e++) {
                stored[(g * n + j) * d + e] = row_f32[e];
            }
        }
    }
    free(row_f32);
    return stored;
}

struct fa_case {
    int64_t dk, dv, n_kv_head, gqa, nk, nq;
    int mask, sinks;
    float max_bias, softcap;
    enum lm_ggml_type kv_type;
    int cache_layout; /* llama.cpp's: q permuted from [d][H][nq], K/V views of a [nk][Hkv*d] cache */
    int empty_row;    /* one query row whose mask hides every key */
};

static void run_case(const struct fa_case *c, int n_threads)
{
    const int64_t n_head = c->n_kv_head * c->gqa, nq_pad = (c->nq + 63) / 64 * 64;
    const size_t kv_bytes = (size_t)(c->nk * c->n_kv_head * (c->dk + c->dv)) * 4;
    struct lm_ggml_init_params ip = {kv_bytes + (size_t)(c->nk * nq_pad) * 2 +
                                         (size_t)(n_head * c->nq * (c->dk + c->dv)) * 8 + ((size_t)64 << 20),
                                     NULL, false};
    struct lm_ggml_context *ctx = lm_ggml_init(ip);
    struct lm_ggml_tensor *q, *k, *v;
    if (c->cache_layout) {
        q = lm_ggml_permute(ctx, lm_ggml_new_tensor_3d(ctx, LM_GGML_TYPE_F32, c->dk, n_head, c->nq), 0, 2, 1, 3);
        struct lm_ggml_tensor *kc = lm_ggml_new_tensor_2d(ctx, c->kv_type, c->dk * c->n_kv_head, c->nk);
        struct lm_ggml_tensor *vc = lm_ggml_new_tensor_2d(ctx, c->kv_type, c->dv * c->n_kv_head, c->nk);
        k = lm_ggml_view_3d(ctx, kc, c->dk, c->nk, c->n_kv_head, kc->nb[1], lm_ggml_row_size(c->kv_type, c->dk), 0);
        v = lm_ggml_view_3d(ctx, vc, c->dv, c->nk, c->n_kv_head, vc->nb[1], lm_ggml_row_size(c->kv_type, c->dv), 0);
    } else {
        q = lm_ggml_new_tensor_3d(ctx, LM_GGML_TYPE_F32, c->dk, c->nq, n_head);
        k = lm_ggml_new_tensor_3d(ctx, c->kv_type, c->dk, c->nk, c->n_kv_head);
        v = lm_ggml_new_tensor_3d(ctx, c->kv_type, c->dv, c->nk, c->n_kv_head);
    }
    for (int64_t h = 0; h < n_head; h++) {
        for (int64_t i = 0; i < c->nq; i++) {
            float *row = (float *)((char *)q->data + i * q->nb[1] + h * q->nb[2]);
            for (int64_t e = 0; e < c->dk; e++) {
                row[e] = (float)uniform(-1.0, 1.0);
            }
        }
    }
    double *ks = fill_kv(k), *vs = fill_kv(v);
    struct lm_ggml_tensor *m = NULL;
    if (c->mask) {
        m = lm_ggml_new_tensor_2d(ctx, LM_GGML_TYPE_F16, c->nk, nq_pad);
        for (int64_t i = 0; i < nq_pad; i++) {
            for (int64_t j = 0; j < c->nk; j++) {
                /* ALiBi cases carry llama.cpp's -|distance| causal mask; the others test-backend-ops' random one. */
                const int64_t qpos = i + c->nk - c->nq;
                float x = c->max_bias > 0.0f ? (j > qpos ? -INFINITY : -(float)(qpos - j)) : (float)uniform(-1, 1);
                if (c->empty_row && i == c->nq / 2) {
                    x = -INFINITY;
                }
                ((lm_ggml_fp16_t *)m->data)[i * c->nk + j] = lm_ggml_fp32_to_fp16(x);
            }
        }
    }
    const float scale = 1.0f / sqrtf((float)c->dk);
    struct lm_ggml_tensor *out = lm_ggml_flash_attn_ext(ctx, q, k, v, m, scale, c->max_bias, c->softcap);
    lm_ggml_flash_attn_ext_set_prec(out, LM_GGML_PREC_F32);
    struct lm_ggml_tensor *sk = NULL;
    if (c->sinks) {
        sk = lm_ggml_new_tensor_1d(ctx, LM_GGML_TYPE_F32, n_head);
        for (int64_t h = 0; h < n_head; h++) {
            ((float *)sk->data)[h] = (float)uniform(-2.0, 2.0);
        }
        lm_ggml_flash_attn_ext_add_sinks(out, sk);
    }
    struct lm_ggml_cgraph *gf = lm_ggml_new_graph(ctx);
    lm_ggml_build_forward_expand(gf, out);
    lm_ggml_graph_compute_with_ctx(ctx, gf, n_threads);

    double err = 0.0, norm = 0.0;
    long nan_outputs = 0, empty_rows_nan = 0, empty_rows_zero = 0;
    double *x = malloc(sizeof(double) * (size_t)c->nk), *acc = malloc(sizeof(double) * (size_t)c->dv);
    for (int64_t h = 0; h < n_head; h++) {
        const int64_t g = h / c->gqa;
        const double slope = ggml_alibi_slope(c->max_bias, (uint32_t)n_head, (uint32_t)h);
        for (int64_t i = 0; i < c->nq; i++) {
            const float *qr = (const float *)((const char *)q->data + i * q->nb[1] + h * q->nb[2]);
            /* ggml's permuted output: row (i, h) at (i * H + h) * dv. */
            const float *o = (const float *)out->data + (i * n_head + h) * c->dv;
            double mx = -INFINITY;
            for (int64_t j = 0; j < c->nk; j++) {
                const double mv = m ? lm_ggml_fp16_to_fp32(((const lm_ggml_fp16_t *)m->data)[i * c->nk + j]) : 0.0;
                if (isinf(mv)) {
                    x[j] = -INFINITY;
                    continue;
                }
                double dot = 0.0;
                for (int64_t e = 0; e < c->dk; e++) {
                    dot += (double)qr[e] * ks[(g * c->nk + j) * c->dk + e];
                }
                double s = scale * dot;
                if (c->softcap != 0.0f) {
                    s = c->softcap * tanh(s / c->softcap);
                }
                x[j] = s + slope * mv;
                mx = x[j] > mx ? x[j] : mx;
            }
            const double sink = sk ? ((const float *)sk->data)[h] : -INFINITY;
            mx = sink > mx ? sink : mx;
            for (int64_t e = 0; e < c->dv; e++) {
                nan_outputs += isnan(o[e]) != 0;
            }
            if (isinf(mx)) {
                int all_zero = 1, any_nan = 0;
                for (int64_t e = 0; e < c->dv; e++) {
                    all_zero &= o[e] == 0.0f;
                    any_nan |= isnan(o[e]) != 0;
                }
                empty_rows_nan += any_nan;
                empty_rows_zero += all_zero;
                continue;
            }
            double den = isinf(sink) ? 0.0 : exp(sink - mx);
            memset(acc, 0, sizeof(double) * (size_t)c->dv);
            for (int64_t j = 0; j < c->nk; j++) {
                const double p = exp(x[j] - mx);
                den += p;
                for (int64_t e = 0; e < c->dv; e++) {
                    acc[e] += p * vs[(g * c->nk + j) * c->dv + e];
                }
            }
            for (int64_t e = 0; e < c->dv; e++) {
                const double ref = acc[e] / den;
                err += (o[e] - ref) * (o[e] - ref);
                norm += ref * ref;
            }
        }
    }
    printf("flash_attn_ext:dk=%lld:dv=%lld:hkv=%lld:gqa=%lld:nk=%lld:nq=%lld:mask=%d:sinks=%d:max_bias=%g:"
           "softcap=%g:kv=%s%s%s nmse=%.3e nan=%ld empty_rows_nan=%ld empty_rows_zero=%ld\n",
           (long long)c->dk, (long long)c->dv, (long long)c->n_kv_head, (long long)c->gqa, (long long)c->nk,
           (long long)c->nq, c->mask, c->sinks, c->max_bias, c->softcap, lm_ggml_type_name(c->kv_type),
           c->cache_layout ? ":cache-layout" : "", c->empty_row ? ":empty-row" : "", norm > 0 ? err / norm : err,
           nan_outputs, empty_rows_nan, empty_rows_zero);
    free(x);
    free(acc);
    free(ks);
    free(vs);
    lm_ggml_free(ctx);
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    /* test-backend-ops' FLASH_ATTN_EXT grid, thinned: every head size is crossed with every other option once
     * through a hash of the case number rather than the full product, which would take minutes at float64. */
    static const int64_t head_sizes[] = {40, 64, 72, 80, 96, 128, 192, 256, 576};
    static const int64_t nks[] = {113, 512, 1024}, nqs[] = {1, 3, 32, 35}, gqas[] = {1, 4};
    static const enum lm_ggml_type kv_types[] = {LM_GGML_TYPE_F32, LM_GGML_TYPE_F16, LM_GGML_TYPE_BF16,
                                                 LM_GGML_TYPE_Q8_0};
    int n = 0;
    for (int hs = 0; hs < 9; hs++) {
        for (int mask = 0; mask <= 1; mask++) {
            for (int sinks = 0; sinks <= 1; sinks++) {
                for (int bias = 0; bias <= mask; bias++) {
                    for (int cap = 0; cap <= 1; cap++) {
                        for (int kv = 0; kv < 4; kv++, n++) {
                            /* A hash of the case number picks the rest, uncorrelated with the loops. */
                            const uint32_t pick = (uint32_t)n * 2654435761u;
                            struct fa_case c = {0};
                            c.dk = c.dv = head_sizes[hs];
                            c.n_kv_head = 4 / gqas[(pick >> 16) % 2];
                            c.gqa = gqas[(pick >> 16) % 2];
                            c.nk = nks[(pick >> 18) % 3];
                            c.nq = nqs[(pick >> 21) % 4];
                            c.mask = mask;
                            c.sinks = sinks;
                            c.max_bias = bias ? 8.0f : 0.0f;
                            c.softcap = cap ? 10.0f : 0.0f;
                            c.kv_type = kv_types[kv];
                            if (c.kv_type == LM_GGML_TYPE_Q8_0 && c.dk % 32) {
                                continue; /* rows of whole q8_0 blocks only, as test-backend-ops */
                            }
                            run_case(&c, threads);
                        }
                    }
                }
            }
        }
    }
    /* llama.cpp-style: its cache layout, 32 query heads (GQA 1 and 4), head size 128, f16 K/V, ALiBi distance mask. */
    /* nk > 4096 with nq <= 4 takes the adapter's key-chunked decode path (partials merged), a partial last chunk
     * included. */
    static const int64_t contexts[][2] = {{512, 1}, {512, 32}, {4096, 1}, {4096, 7}, {8292, 1}, {13000, 3}};
    for (int ctx = 0; ctx < 6; ctx++) {
        for (int gqa = 1; gqa <= 4; gqa += 3) {
            struct fa_case c = {128, 128, 32 / gqa, gqa, contexts[ctx][0], contexts[ctx][1], 1, 0, 8.0f, 0.0f,
                                LM_GGML_TYPE_F16, 1, 0};
            run_case(&c, threads);
        }
    }
    struct fa_case empty = {128, 128, 8, 4, 512, 8, 1, 0, 8.0f, 0.0f, LM_GGML_TYPE_F16, 1, 1};
    run_case(&empty, threads);
    empty.sinks = 1;
    run_case(&empty, threads);
    return 0;
}
