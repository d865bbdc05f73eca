/*
 * What an engine's attention op does with posattn: one decode step over its KV cache (f32, token-major
 * [nk][n_kv_heads][dim], as llama.cpp stores it), ALiBi slopes from the library, the bias computed inside the
 * kernel from the default KV-cache positions. The result is checked against a float64 computation of the same
 * softmax(scale q.k - m_h |i - j|) v, so the program fails if the vendored build is wrong.
 */
#include <math.h>
#include <posattn.h>
#include <stdio.h>

enum { heads = 4, kv_heads = 2, nk = 300, dim = 32 };

int main(void) {
    static float k[nk * kv_heads * dim], v[nk * kv_heads * dim];
    float q[heads * dim], out[heads * dim], slopes[heads];
    for (int n = 0; n < nk * kv_heads * dim; ++n) {
        k[n] = sinf(0.013f * (float)n);
        v[n] = cosf(0.007f * (float)n);
    }
    for (int n = 0; n < heads * dim; ++n) q[n] = 0.5f * sinf(0.3f * (float)n);
    posattn_alibi_slopes(heads, 8.0f, slopes);
    const float scale = 1.0f / sqrtf((float)dim);

    posattn_attention_tensors t = {
        .n_heads = heads, .n_kv_heads = kv_heads, .nq = 1, .nk = nk, .dk = dim, .dv = dim,
        .q = q, .k = k, .k_type = POSATTN_KV_F32, .v = v, .v_type = POSATTN_KV_F32, .out = out,
    };
    const posattn_status st = posattn_attention(&t, scale, slopes, NULL, NULL, 0, heads);
    if (st != POSATTN_OK) return fprintf(stderr, "posattn_attention: %s\n", posattn_status_string(st)), 1;

    double worst = 0.0;
    for (int h = 0; h < heads; ++h) {
        const int g = h / (heads / kv_heads);
        double logit[nk], top = -INFINITY, sum = 0.0;
        for (int j = 0; j < nk; ++j) {
            double s = 0.0;
            for (int d = 0; d < dim; ++d) s += (double)q[h * dim + d] * k[(j * kv_heads + g) * dim + d];
            logit[j] = scale * s - slopes[h] * (double)(nk - 1 - j); /* the query sits at position nk - 1 */
            if (logit[j] > top) top = logit[j];
        }
        for (int j = 0; j < nk; ++j) sum += exp(logit[j] - top);
        for (int d = 0; d < dim; ++d) {
            double o = 0.0;
            for (int j = 0; j < nk; ++j) o += exp(logit[j] - top) / sum * v[(j * kv_heads + g) * dim + d];
            const double error = fabs(o - out[h * dim + d]);
            if (error > worst) worst = error;
        }
    }
    printf("attention on %s: max |error| vs float64 %.3g\n",
           posattn_isa_name(posattn_op_isa(POSATTN_OP_ATTENTION, POSATTN_ISA_AUTO)), worst);
    return worst <= 1e-5 ? 0 : 1;
}
