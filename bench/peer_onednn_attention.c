/*
 * Peer: the two products of an unfused attention with oneDNN's matmul primitive (C API, oneDNN 2.x:
 * dnnl_matmul_desc_init), float32, one thread. S = Q K^T batched over the KV heads, each batch an
 * (H/Hkv * nq) x dk by dk x nk product (K read transposed through its strides, as a gemm with transposed B), and
 * O = P V the same way. The softmax between them is the caller's (bench/attention.c: posattn_alibi_softmax).
 * Layouts in peers.h. oneDNN picks its own JIT kernel for this CPU.
 */
#include <stdlib.h>

#include <dnnl.h>

#include "peers.h"

struct pab_onednn_attention {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_desc_t qk_pd, pv_pd;
    dnnl_primitive_t qk, pv;
    dnnl_memory_t q, k, s, p, v, o;
};

void pab_onednn_attention_destroy(pab_onednn_attention *a) {
    if (!a) return;
    dnnl_memory_t mems[] = {a->q, a->k, a->s, a->p, a->v, a->o};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; ++i) {
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    }
    if (a->qk) dnnl_primitive_destroy(a->qk);
    if (a->pv) dnnl_primitive_destroy(a->pv);
    if (a->qk_pd) dnnl_primitive_desc_destroy(a->qk_pd);
    if (a->pv_pd) dnnl_primitive_desc_destroy(a->pv_pd);
    if (a->stream) dnnl_stream_destroy(a->stream);
    if (a->engine) dnnl_engine_destroy(a->engine);
    free(a);
}

/* One batched product src [b][m][kd] x weights [b][kd][n] -> dst [b][m][n]; weights_strides says where element
 * (batch, row of kd, column of n) is. */
static int make_matmul(pab_onednn_attention *a, int64_t b, int64_t m, int64_t kd, int64_t n,
                       const dnnl_dims_t weights_strides, dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim,
                       dnnl_memory_t *src, dnnl_memory_t *weights, dnnl_memory_t *dst) {
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_matmul_desc_t desc;
    const dnnl_dims_t src_dims = {b, m, kd}, w_dims = {b, kd, n}, dst_dims = {b, m, n};
    return dnnl_memory_desc_init_by_tag(&src_md, 3, src_dims, dnnl_f32, dnnl_abc) == dnnl_success &&
           dnnl_memory_desc_init_by_strides(&w_md, 3, w_dims, dnnl_f32, weights_strides) == dnnl_success &&
           dnnl_memory_desc_init_by_tag(&dst_md, 3, dst_dims, dnnl_f32, dnnl_abc) == dnnl_success &&
           dnnl_matmul_desc_init(&desc, &src_md, &w_md, NULL, &dst_md) == dnnl_success &&
           dnnl_primitive_desc_create(pd, &desc, NULL, a->engine, NULL) == dnnl_success &&
           dnnl_primitive_create(prim, *pd) == dnnl_success &&
           dnnl_memory_create(src, &src_md, a->engine, DNNL_MEMORY_NONE) == dnnl_success &&
           dnnl_memory_create(weights, &w_md, a->engine, DNNL_MEMORY_NONE) == dnnl_success &&
           dnnl_memory_create(dst, &dst_md, a->engine, DNNL_MEMORY_NONE) == dnnl_success;
}

const char *pab_onednn_attention_create(int64_t heads, int64_t kv_heads, int64_t nq, int64_t nk, int64_t dk,
                                        int64_t dv, pab_onednn_attention **out) {
    pab_onednn_one_thread();
    pab_onednn_attention *a = calloc(1, sizeof *a);
    if (!a) return "out of memory";
    const int64_t rows = heads / kv_heads * nq;
    const dnnl_dims_t k_transposed = {nk * dk, 1, dk}; /* element (g, d, j) of K^T is k[g][j][d] */
    const dnnl_dims_t v_plain = {nk * dv, dv, 1};
    if (dnnl_engine_create(&a->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&a->stream, a->engine, dnnl_stream_default_flags) != dnnl_success ||
        !make_matmul(a, kv_heads, rows, dk, nk, k_transposed, &a->qk_pd, &a->qk, &a->q, &a->k, &a->s) ||
        !make_matmul(a, kv_heads, rows, nk, dv, v_plain, &a->pv_pd, &a->pv, &a->p, &a->v, &a->o)) {
        pab_onednn_attention_destroy(a);
        return "oneDNN could not create the matmul primitives";
    }
    *out = a;
    return NULL;
}

static void run(pab_onednn_attention *a, dnnl_primitive_t prim, dnnl_memory_t src, const float *src_data,
                dnnl_memory_t weights, const float *weights_data, dnnl_memory_t dst, float *dst_data) {
    dnnl_memory_set_data_handle(src, (void *)src_data);
    dnnl_memory_set_data_handle(weights, (void *)weights_data);
    dnnl_memory_set_data_handle(dst, dst_data);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    dnnl_primitive_execute(prim, a->stream, 3, args);
    dnnl_stream_wait(a->stream);
}

void pab_onednn_attention_qk(pab_onednn_attention *a, const float *q, const float *k, float *s) {
    run(a, a->qk, a->q, q, a->k, k, a->s, s);
}

void pab_onednn_attention_pv(pab_onednn_attention *a, const float *prob, const float *v, float *o) {
    run(a, a->pv, a->p, prob, a->v, v, a->o, o);
}
