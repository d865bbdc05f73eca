/*
 * What the benchmark bodies compare posattn against: rooflines (SLEEF's vector expf, one translation unit per ISA)
 * and peers (oneDNN, XNNPACK, a plain multi-pass C softmax). Each optional piece is compiled only when its
 * dependency was found; cases.c learns which through the PAB_HAVE_* macros set by bench/meson.build.
 */
#ifndef PAB_PEERS_H
#define PAB_PEERS_H

#include <stddef.h>
#include <stdint.h>

/* out[i] = expf(scale * in[i]) for i in [0, n), with SLEEF's 1-ulp vector exp; tails by masking or a copy. */
void pab_sleef_expf_avx512(const float *in, float *out, size_t n, float scale);
void pab_sleef_expf_avx2(const float *in, float *out, size_t n, float scale);
void pab_sleef_expf_advsimd(const float *in, float *out, size_t n, float scale);

/* oneDNN softmax, forward inference, over [rows][nk] on axis 1, one thread. *_create returns NULL on success or
 * a static message. in == out runs in place. */
typedef struct pab_onednn pab_onednn;
const char *pab_onednn_create(int64_t rows, int64_t nk, pab_onednn **out);
void pab_onednn_softmax(pab_onednn *p, const float *in, float *out);
void pab_onednn_destroy(pab_onednn *p);
/* "2.6.3 jit:avx512_core" (version and the implementation chosen for a [32][4096] softmax). */
void pab_onednn_describe(char *buf, size_t size);

/* XNNPACK softmax_nc_f32 over [rows][nk], no thread pool (one thread). Same conventions as oneDNN's. */
typedef struct pab_xnnpack pab_xnnpack;
const char *pab_xnnpack_create(int64_t rows, int64_t nk, pab_xnnpack **out);
void pab_xnnpack_softmax(pab_xnnpack *p, const float *in, float *out);
void pab_xnnpack_destroy(pab_xnnpack *p);

/* The plain multi-pass softmax as engines commonly write it, compiled with baseline flags (peer_naive.c):
 * materialise the bias tensor (with -inf where causal masks), add it to scale*S, then per row max, expf and sum,
 * and scale by 1/sum. q_pos / k_pos NULL: KV-cache default positions. */
typedef struct pab_naive_args {
    int64_t heads, nq, nk;
    const float *scores;
    float *probs;
    float *bias; /* [heads*nq*nk] scratch for the materialised bias */
    float scale;
    const float *slopes;
    const float *q_pos, *k_pos;
    int causal;
} pab_naive_args;
void pab_naive_multipass(const pab_naive_args *a);

/* probs[i] = scale * scores[i] + bias[i]: the "add the materialised bias" step of the bias+softmax peers,
 * baseline flags. */
void pab_add_bias(const float *scores, const float *bias, float scale, float *out, size_t n);

#endif /* PAB_PEERS_H */
