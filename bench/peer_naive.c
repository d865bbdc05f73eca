/*
 * Peer: the plain multi-pass softmax with a materialised ALiBi bias, as inference engines commonly write it
 * (one full-tensor pass per operation: build the bias, add it to the scaled scores, then per row the max, expf and
 * sum, and the scaling). Compiled with baseline flags only (no -m options): what a portable build gets from the
 * compiler's auto-vectoriser and libm's scalar expf.
 *
 * Also the "add the materialised bias" step timed by the bias+softmax variants of the library peers.
 */
#include <math.h>

#include "peers.h"

void pab_naive_multipass(const pab_naive_args *a) {
    const int64_t nk = a->nk, nq = a->nq, rows = a->heads * a->nq;
    /* Pass 1: materialise bias[h][i][j] = -m_h |pq_i - pk_j|, -inf for keys a causal mask excludes. */
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t h = r / nq, i = r % nq;
        const float slope = a->slopes[h];
        const float qp = a->q_pos ? a->q_pos[i] : (float)(nk - nq + i);
        float *b = a->bias + r * nk;
        for (int64_t j = 0; j < nk; ++j) {
            const float kp = a->k_pos ? a->k_pos[j] : (float)j;
            b[j] = -slope * fabsf(qp - kp);
        }
        if (a->causal) {
            for (int64_t j = i + nk - nq + 1; j < nk; ++j) b[j] = -INFINITY;
        }
    }
    /* Pass 2: logits = scale * S + bias. */
    pab_add_bias(a->scores, a->bias, a->scale, a->probs, (size_t)(rows * nk));
    /* Passes 3-5 per row: max, exp and sum, scale. */
    for (int64_t r = 0; r < rows; ++r) {
        float *p = a->probs + r * nk;
        float mx = -INFINITY;
        for (int64_t j = 0; j < nk; ++j) mx = p[j] > mx ? p[j] : mx;
        if (mx == -INFINITY) {
            for (int64_t j = 0; j < nk; ++j) p[j] = 0.0f;
            continue;
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < nk; ++j) {
            p[j] = expf(p[j] - mx);
            sum += p[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < nk; ++j) p[j] *= inv;
    }
}

void pab_add_bias(const float *scores, const float *bias, float scale, float *out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = scale * scores[i] + bias[i];
}
