/*
 * What the benchmark bodies compare posattn against: rooflines (SLEEF's vector expf, one translation unit per ISA)
 * and peers (oneDNN, XNNPACK, a plain multi-pass C softmax). Each optional piece is compiled only when its
 * dependency was found; cases.c learns which through the PAB_HAVE_* macros set by bench/meson.build.
 */
#ifndef PAB_PEERS_H
#define PAB_PEERS_H

#include <stddef.h>
#include <stdint.h>

/* A read-only stream over [buf, buf + bytes): the 32-bit words summed as integers (bench/roofline_read_*.c, one
 * translation unit per ISA). buf 64-byte aligned. The result only keeps the loads alive. */
uint32_t pab_read_sum_plain(const void *buf, size_t bytes);
uint32_t pab_read_sum_avx512(const void *buf, size_t bytes);
uint32_t pab_read_sum_avx2(const void *buf, size_t bytes);
uint32_t pab_read_sum_neon(const void *buf, size_t bytes);

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
/* oneDNN runs on the calling thread only (omp_set_num_threads(1) in the libgomp that libdnnl loads, if any). */
void pab_onednn_one_thread(void);

/* The unfused attention an engine without fused attention runs (peer_onednn_attention.c): S = Q K^T and O = P V with
 * oneDNN's matmul, one thread, float32, batched over the Hkv KV heads with the H/Hkv query heads of a KV head as the
 * rows of one product (how engines do GQA with a matmul). Layouts, all contiguous: q [Hkv][H/Hkv * nq][dk] (query
 * head h = g*(H/Hkv) + hh, query i at row hh*nq + i), k [Hkv][nk][dk] (the product reads it transposed), v
 * [Hkv][nk][dv], s and p [H][nq][nk] (the layout of posattn_alibi_softmax with H heads), o [H][nq][dv]. */
typedef struct pab_onednn_attention pab_onednn_attention;
const char *pab_onednn_attention_create(int64_t heads, int64_t kv_heads, int64_t nq, int64_t nk, int64_t dk,
                                        int64_t dv, pab_onednn_attention **out);
void pab_onednn_attention_qk(pab_onednn_attention *p, const float *q, const float *k, float *s);
void pab_onednn_attention_pv(pab_onednn_attention *p, const float *prob, const float *v, float *o);
void pab_onednn_attention_destroy(pab_onednn_attention *p);

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
