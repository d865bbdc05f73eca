/*
 * Speed of soft_max_ext and flash_attn_ext in the ggml it is linked with: prints the best of R timed graph
 * computes (ns) for decode (32 heads, one query, nk keys, f16 ALiBi mask, max_bias 8) and prefill (1024 causal);
 * flash_attn_ext on llama.cpp's layout (q permuted from [128][32][nq], K/V f16 views of a token-major
 * [nk][32*128] cache). bench.sh runs the stock and patched builds alternately and reports ratios within one run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void bench(const char *name, int64_t nk, int64_t nq, int threads, int reps)
{
    struct lm_ggml_init_params ip = {(size_t)(nk * nq * 32) * 8 + (size_t)(nk * nq) * 2 + ((size_t)64 << 20), NULL,
                                     false};
    struct lm_ggml_context *ctx = lm_ggml_init(ip);
    struct lm_ggml_tensor *a = lm_ggml_new_tensor_3d(ctx, LM_GGML_TYPE_F32, nk, nq, 32);
    struct lm_ggml_tensor *m = lm_ggml_new_tensor_2d(ctx, LM_GGML_TYPE_F16, nk, nq);
    for (int64_t i = 0; i < nk * nq * 32; i++) {
        ((float *)a->data)[i] = (float)((i * 2654435761u) % 1000) / 250.0f - 2.0f;
    }
    for (int64_t i = 0; i < nq; i++) {
        for (int64_t j = 0; j < nk; j++) {
            const int64_t q = i + nk - nq;
            ((lm_ggml_fp16_t *)m->data)[i * nk + j] = lm_ggml_fp32_to_fp16(j > q ? -INFINITY : -(float)(q - j));
        }
    }
    struct lm_ggml_tensor *out = lm_ggml_soft_max_ext(ctx, a, m, 0.0883883f, 8.0f);
    struct lm_ggml_cgraph *gf = lm_ggml_new_graph(ctx);
    lm_ggml_build_forward_expand(gf, out);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        const double t0 = now_ns();
        lm_ggml_graph_compute_with_ctx(ctx, gf, threads);
        const double t = now_ns() - t0;
        best = t < best ? t : best;
    }
    printf("%s threads=%d %.0f\n", name, threads, best);
    lm_ggml_free(ctx);
}

static void bench_flash_attn(const char *name, int64_t nk, int64_t nq, int threads, int reps)
{
    const int64_t d = 128, n_head = 32, nq_pad = (nq + 63) / 64 * 64;
    struct lm_ggml_init_params ip = {(size_t)(nk * n_head * d) * 4 + (size_t)(nk * nq_pad) * 2 +
                                         (size_t)(nq * n_head * d) * 8 + ((size_t)64 << 20),
                                     NULL, false};
    struct lm_ggml_context *ctx = lm_ggml_init(ip);
    struct lm_ggml_tensor *q3 = lm_ggml_new_tensor_3d(ctx, LM_GGML_TYPE_F32, d, n_head, nq);
    struct lm_ggml_tensor *kc = lm_ggml_new_tensor_2d(ctx, LM_GGML_TYPE_F16, d * n_head, nk);
    struct lm_ggml_tensor *vc = lm_ggml_new_tensor_2d(ctx, LM_GGML_TYPE_F16, d * n_head, nk);
    struct lm_ggml_tensor *m = lm_ggml_new_tensor_2d(ctx, LM_GGML_TYPE_F16, nk, nq_pad);
    for (int64_t i = 0; i < nq * n_head * d; i++) {
        ((float *)q3->data)[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    }
    for (int64_t i = 0; i < nk * n_head * d; i++) {
        ((lm_ggml_fp16_t *)kc->data)[i] = lm_ggml_fp32_to_fp16((float)((i * 40503u) % 1000) / 500.0f - 1.0f);
        ((lm_ggml_fp16_t *)vc->data)[i] = lm_ggml_fp32_to_fp16((float)((i * 2246822519u) % 1000) / 500.0f - 1.0f);
    }
    for (int64_t i = 0; i < nq_pad; i++) {
        for (int64_t j = 0; j < nk; j++) {
            const int64_t q = i + nk - nq;
            ((lm_ggml_fp16_t *)m->data)[i * nk + j] = lm_ggml_fp32_to_fp16(j > q ? -INFINITY : -(float)(q - j));
        }
    }
    struct lm_ggml_tensor *q = lm_ggml_permute(ctx, q3, 0, 2, 1, 3);
    struct lm_ggml_tensor *k = lm_ggml_view_3d(ctx, kc, d, nk, n_head, kc->nb[1], d * 2, 0);
    struct lm_ggml_tensor *v = lm_ggml_view_3d(ctx, vc, d, nk, n_head, vc->nb[1], d * 2, 0);
    struct lm_ggml_tensor *out = lm_ggml_flash_attn_ext(ctx, q, k, v, m, 0.0883883f, 8.0f, 0.0f);
    lm_ggml_flash_attn_ext_set_prec(out, LM_GGML_PREC_F32);
    struct lm_ggml_cgraph *gf = lm_ggml_new_graph(ctx);
    lm_ggml_build_forward_expand(gf, out);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        const double t0 = now_ns();
        lm_ggml_graph_compute_with_ctx(ctx, gf, threads);
        const double t = now_ns() - t0;
        best = t < best ? t : best;
    }
    printf("%s threads=%d %.0f\n", name, threads, best);
    lm_ggml_free(ctx);
}

int main(void)
{
    for (int threads = 1; threads <= 2; threads++) {
        bench("soft_max:decode:nk=4096", 4096, 1, threads, 200);
        bench("soft_max:decode:nk=32768", 32768, 1, threads, 50);
        bench("soft_max:prefill:1024-causal", 1024, 1024, threads, 5);
        bench_flash_attn("flash_attn_ext:decode:nk=4096", 4096, 1, threads, 20);
        bench_flash_attn("flash_attn_ext:decode:nk=32768", 32768, 1, threads, 5);
        bench_flash_attn("flash_attn_ext:prefill:1024-causal", 1024, 1024, threads, 1);
    }
    return 0;
}
