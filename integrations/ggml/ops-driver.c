/*
 * Differential driver: runs soft_max_ext cases through the ggml it is linked with (stock or patched) and prints,
 * per case, the NMSE (ggml's formula: sum (out - ref)^2 / sum ref^2) against a float64 reference computed here,
 * and how many outputs are NaN. Rows with no visible key and no sink are left out of the NMSE (the reference is
 * undefined there) and reported by their outputs: "nan" rows count NaN outputs, "zero" rows all-zero ones.
 * Cases after the SOFT_MAX list of ggml's test-backend-ops (shapes, masks f32/f16, max_bias, scale, sinks) plus
 * llama.cpp-style ALiBi cases (distance masks, long contexts, fully masked rows). Written here, not copied.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-cpu.h"
#include "ggml_slopes.h"
#include "ggml.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static double uniform(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}


enum mask_kind { MASK_NONE, MASK_RANDOM, MASK_ALIBI_CAUSAL, MASK_ALIBI_WITH_EMPTY_ROW };

static void run_case(const char *name, int64_t nk, int64_t nq, int64_t nh, int64_t n3, enum mask_kind mk,
                     int mask_f16, float scale, float max_bias, int with_sinks, int n_threads)
{
    size_t mem = (size_t)(nk * nq * nh * n3) * 4 * 3 + (size_t)(nk * nq) * 4 + ((size_t)64 << 20);
    struct lm_ggml_init_params ip = {mem, NULL, false};
    struct lm_ggml_context *ctx = lm_ggml_init(ip);
    struct lm_ggml_tensor *a = lm_ggml_new_tensor_4d(ctx, LM_GGML_TYPE_F32, nk, nq, nh, n3);
    struct lm_ggml_tensor *m = NULL, *sk = NULL;
    float *s = (float *)a->data;
    for (int64_t i = 0; i < nk * nq * nh * n3; i++) {
        s[i] = (float)uniform(-1.0, 1.0) * (mk >= MASK_ALIBI_CAUSAL ? 8.0f : 1.0f);
    }
    double *mref = NULL;
    if (mk != MASK_NONE) {
        m = lm_ggml_new_tensor_2d(ctx, mask_f16 ? LM_GGML_TYPE_F16 : LM_GGML_TYPE_F32, nk, nq);
        mref = malloc(sizeof(double) * (size_t)(nk * nq));
        for (int64_t i = 0; i < nq; i++) {
            for (int64_t j = 0; j < nk; j++) {
                float v;
                if (mk == MASK_RANDOM) {
                    v = (float)uniform(-1.0, 1.0);
                } else {
                    const int64_t qpos = i + nk - nq;
                    const int empty = mk == MASK_ALIBI_WITH_EMPTY_ROW && i == nq / 2;
                    v = (j > qpos || empty) ? -INFINITY : -(float)llabs(qpos - j);
                }
                if (mask_f16) {
                    ((lm_ggml_fp16_t *)m->data)[i * nk + j] = lm_ggml_fp32_to_fp16(v);
                    v = lm_ggml_fp16_to_fp32(((lm_ggml_fp16_t *)m->data)[i * nk + j]);
                } else {
                    ((float *)m->data)[i * nk + j] = v;
                }
                mref[i * nk + j] = v;
            }
        }
    }
    struct lm_ggml_tensor *out = lm_ggml_soft_max_ext(ctx, a, m, scale, max_bias);
    if (with_sinks) {
        sk = lm_ggml_new_tensor_1d(ctx, LM_GGML_TYPE_F32, nh);
        for (int64_t h = 0; h < nh; h++) {
            ((float *)sk->data)[h] = (float)uniform(-2.0, 2.0);
        }
        lm_ggml_soft_max_add_sinks(out, sk);
    }
    struct lm_ggml_cgraph *gf = lm_ggml_new_graph(ctx);
    lm_ggml_build_forward_expand(gf, out);
    lm_ggml_graph_compute_with_ctx(ctx, gf, n_threads);
    const float *o = (const float *)out->data;
    double err = 0.0, norm = 0.0;
    long nan_outputs = 0, empty_rows_nan = 0, empty_rows_zero = 0;
    double *x = malloc(sizeof(double) * (size_t)nk);
    for (int64_t r3 = 0; r3 < n3; r3++) {
        for (int64_t h = 0; h < nh; h++) {
            const double slope = ggml_alibi_slope(max_bias, (uint32_t)nh, (uint32_t)h);
            for (int64_t i = 0; i < nq; i++) {
                const int64_t base = ((r3 * nh + h) * nq + i) * nk;
                double mx = -INFINITY;
                for (int64_t j = 0; j < nk; j++) {
                    const double mv = mref ? mref[i * nk + j] : 0.0;
                    x[j] = isinf(mv) ? -INFINITY : (double)scale * s[base + j] + slope * mv;
                    mx = x[j] > mx ? x[j] : mx;
                }
                const double sink = sk ? ((const float *)sk->data)[h] : -INFINITY;
                mx = sink > mx ? sink : mx;
                for (int64_t j = 0; j < nk; j++) {
                    nan_outputs += isnan(o[base + j]) != 0;
                }
                if (isinf(mx)) {
                    int all_zero = 1, any_nan = 0;
                    for (int64_t j = 0; j < nk; j++) {
                        all_zero &= o[base + j] == 0.0f;
                        any_nan |= isnan(o[base + j]) != 0;
                    }
                    empty_rows_nan += any_nan;
                    empty_rows_zero += all_zero;
                    continue;
                }
                double den = isinf(sink) ? 0.0 : exp(sink - mx);
                for (int64_t j = 0; j < nk; j++) {
                    den += exp(x[j] - mx);
                }
                for (int64_t j = 0; j < nk; j++) {
                    const double ref = exp(x[j] - mx) / den;
                    err += (o[base + j] - ref) * (o[base + j] - ref);
                    norm += ref * ref;
                }
            }
        }
    }
    printf("%s nmse=%.3e nan=%ld empty_rows_nan=%ld empty_rows_zero=%ld\n", name, norm > 0 ? err / norm : err,
           nan_outputs, empty_rows_nan, empty_rows_zero);
    free(x);
    free(mref);
    lm_ggml_free(ctx);
}

int main(int argc, char **argv)
{
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    char name[160];
    /* test-backend-ops' SOFT_MAX grid: mask on/off, f32/f16 mask, sinks, widths 16/1024, rows 16/10,
     * heads x batch 1x1 / 3x1 / 3x3, scale 1 / 0.1, max_bias 0 / 8. */
    static const int64_t widths[] = {16, 1024}, rows[] = {16, 10};
    static const int64_t heads[][2] = {{1, 1}, {3, 1}, {3, 3}};
    static const float scales[] = {1.0f, 0.1f}, biases[] = {0.0f, 8.0f};
    for (int mask = 0; mask <= 1; mask++) {
        for (int f16 = 0; f16 <= mask; f16++) {
            for (int sinks = 0; sinks <= 1; sinks++) {
                for (int w = 0; w < 2; w++) {
                    for (int r = 0; r < 2; r++) {
                        for (int hb = 0; hb < 3; hb++) {
                            for (int sc = 0; sc < 2; sc++) {
                                for (int mb = 0; mb < 2; mb++) {
                                    if (biases[mb] > 0.0f && !mask) {
                                        continue; /* ggml asserts a mask with max_bias */
                                    }
                                    snprintf(name, sizeof name,
                                             "soft_max:ne=%lld,%lld,%lld,%lld:mask=%s:sinks=%d:scale=%g:max_bias=%g",
                                             (long long)widths[w], (long long)rows[r], (long long)heads[hb][0],
                                             (long long)heads[hb][1], mask ? (f16 ? "f16" : "f32") : "none", sinks,
                                             scales[sc], biases[mb]);
                                    run_case(name, widths[w], rows[r], heads[hb][0], heads[hb][1],
                                             mask ? MASK_RANDOM : MASK_NONE, f16, scales[sc], biases[mb], sinks,
                                             threads);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    /* llama.cpp-style ALiBi: -|distance| causal mask (f16, as llama.cpp's KQ mask), 32 heads, max_bias 8. */
    static const int64_t contexts[][2] = {{512, 1}, {512, 32}, {4096, 1}, {4096, 16}, {16384, 1}, {32768, 1}};
    for (int c = 0; c < 6; c++) {
        for (int f16 = 0; f16 <= 1; f16++) {
            snprintf(name, sizeof name, "alibi:nk=%lld:nq=%lld:mask=%s", (long long)contexts[c][0],
                     (long long)contexts[c][1], f16 ? "f16" : "f32");
            run_case(name, contexts[c][0], contexts[c][1], 32, 1, MASK_ALIBI_CAUSAL, f16, 0.0883883f, 8.0f, 0,
                     threads);
        }
    }
    run_case("alibi-empty-row:nk=512:nq=8", 512, 8, 32, 1, MASK_ALIBI_WITH_EMPTY_ROW, 1, 0.0883883f, 8.0f, 0,
             threads);
    run_case("alibi-empty-row+sinks:nk=512:nq=8", 512, 8, 32, 1, MASK_ALIBI_WITH_EMPTY_ROW, 1, 0.0883883f, 8.0f,
             1, threads);
    return 0;
}
