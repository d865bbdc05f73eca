/* ggml's soft_max_ext and flash_attn_ext routed through posattn_alibi_softmax and posattn_attention; see adapter.h. */
#include "adapter.h"
#include "ggml_slopes.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "posattn.h"


int posattn_ggml_soft_max_f32(int ith, int nth, struct lm_ggml_tensor *dst)
{
    const struct lm_ggml_tensor *src0 = dst->src[0];
    const struct lm_ggml_tensor *mask = dst->src[1];
    const struct lm_ggml_tensor *sinks = dst->src[2];
    if (src0->type != LM_GGML_TYPE_F32 || dst->type != LM_GGML_TYPE_F32 || src0->nb[0] != sizeof(float) ||
        dst->nb[0] != sizeof(float) || src0->nb[1] % sizeof(float) || dst->nb[1] % sizeof(float)) {
        return 0;
    }
    if (mask && !((mask->type == LM_GGML_TYPE_F32 || mask->type == LM_GGML_TYPE_F16) &&
                  mask->nb[0] == lm_ggml_type_size(mask->type) && mask->nb[1] % mask->nb[0] == 0)) {
        return 0;
    }
    if (sinks && (sinks->type != LM_GGML_TYPE_F32 || !lm_ggml_is_contiguous(sinks))) {
        return 0;
    }
    float scale, max_bias;
    memcpy(&scale, (const float *)dst->op_params + 0, sizeof(float));
    memcpy(&max_bias, (const float *)dst->op_params + 1, sizeof(float));
    const int64_t nk = src0->ne[0], nq = src0->ne[1], n_head = src0->ne[2];
    /* Each thread takes a contiguous block of all n3*H*nq rows (ggml strides only the nq rows of every head over
     * threads, which leaves all but one thread idle on decode, nq = 1); the blocks cover every row once. */
    const int64_t n_rows = src0->ne[3] * n_head * nq;
    const int64_t first = n_rows * ith / nth, last = n_rows * (ith + 1) / nth;
    for (int64_t i3 = 0; i3 < src0->ne[3]; i3++) {
        for (int64_t h = 0; h < n_head; h++) {
            const int64_t plane = (i3 * n_head + h) * nq;
            const int64_t row_begin = first > plane ? first - plane : 0;
            const int64_t row_end = last - plane < nq ? last - plane : nq;
            if (row_begin >= row_end) {
                continue;
            }
            const float slope = ggml_alibi_slope(max_bias, (uint32_t)n_head, (uint32_t)h);
            posattn_softmax_options opt = {0};
            opt.flags = POSATTN_MASK_TIMES_SLOPE;
            if (mask) {
                const int64_t m2 = h % mask->ne[2], m3 = i3 % mask->ne[3];
                opt.mask = (const char *)mask->data + m2 * mask->nb[2] + m3 * mask->nb[3];
                opt.mask_type = mask->type == LM_GGML_TYPE_F16 ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
                opt.mask_row_stride = (int64_t)(mask->nb[1] / mask->nb[0]);
            }
            if (sinks) {
                opt.sinks = (const float *)sinks->data + h;
            }
            const float *s = (const float *)((const char *)src0->data + h * src0->nb[2] + i3 * src0->nb[3]);
            float *p = (float *)((char *)dst->data + h * dst->nb[2] + i3 * dst->nb[3]);
            if (posattn_alibi_softmax(1, nq, nk, s, (int64_t)(src0->nb[1] / sizeof(float)), 0, p,
                                      (int64_t)(dst->nb[1] / sizeof(float)), 0, scale, &slope, NULL, &opt,
                                      row_begin, row_end) != POSATTN_OK) {
                /* Same shapes and strides for every plane: only a thread's first call can fail, before it wrote
                 * anything; ggml's fallback then recomputes every row of that thread's ith, which is harmless. */
                return 0;
            }
        }
    }
    return 1;
}

static int ggml_kv_type(const struct lm_ggml_tensor *t, posattn_kv_type *type)
{
    switch (t->type) {
    case LM_GGML_TYPE_F32: *type = POSATTN_KV_F32; break;
    case LM_GGML_TYPE_F16: *type = POSATTN_KV_F16; break;
    case LM_GGML_TYPE_BF16: *type = POSATTN_KV_BF16; break;
    default: return 0;
    }
    const size_t size = lm_ggml_type_size(t->type);
    return t->nb[0] == size && t->nb[1] % size == 0 && t->nb[2] % size == 0 && t->nb[3] % size == 0;
}

/* The largest head count the adapter takes: its slopes live on the stack. */
#define GGML_FA_MAX_HEADS 1024

/* Decode (few query rows) over a long token-major cache is computed in key chunks that each sweep all of the
 * thread's heads, merged at the end (posattn_attention_partial/merge): a sweep reads every head's slice of the
 * same tokens, where one head at a time over the whole cache strides 8 KiB per key (Hkv*D*2 bytes) and stalls
 * the prefetchers. 4096 keys per chunk: at nk = 32768, f16, H = 32, D = 128 this took one call from 50-60 ms to
 * 30 ms on AMD EPYC (Zen 5); 1024 gave 37 ms, 8192 31 ms. Chunk boundaries do not depend on the threads, so the
 * bits do not either. */
#define GGML_FA_KEY_CHUNK 4096
#define GGML_FA_CHUNKED_MAX_NQ 4

/* posattn_attention over rows [row_begin, row_end) in key chunks (see GGML_FA_KEY_CHUNK); partials: n_chunks
 * buffers of posattn_attention_partials_size bytes each. */
static posattn_status attention_in_key_chunks(const posattn_attention_tensors *t, float scale, const float *slopes,
                                              const posattn_softmax_options *opt, double **partials,
                                              int64_t n_chunks, int64_t row_begin, int64_t row_end)
{
    for (int64_t c = 0; c < n_chunks; c++) {
        const int64_t key_end = (c + 1) * GGML_FA_KEY_CHUNK < t->nk ? (c + 1) * GGML_FA_KEY_CHUNK : t->nk;
        const posattn_status st = posattn_attention_partial(t, scale, slopes, NULL, opt, c * GGML_FA_KEY_CHUNK,
                                                            key_end, partials[c], row_begin, row_end);
        if (st != POSATTN_OK) {
            return st;
        }
    }
    return posattn_attention_merge(t, opt, (const double *const *)partials, n_chunks, row_begin, row_end);
}

int posattn_ggml_flash_attn_ext_f32(int ith, int nth, struct lm_ggml_tensor *dst)
{
    const struct lm_ggml_tensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
    const struct lm_ggml_tensor *mask = dst->src[3], *sinks = dst->src[4];
    posattn_kv_type k_type, v_type;
    if (!ggml_kv_type(k, &k_type) || !ggml_kv_type(v, &v_type) || q->type != LM_GGML_TYPE_F32 ||
        dst->type != LM_GGML_TYPE_F32 || q->nb[0] != sizeof(float) || q->nb[1] % sizeof(float) ||
        q->nb[2] % sizeof(float) || q->nb[3] % sizeof(float)) {
        return 0;
    }
    const int64_t dk = k->ne[0], dv = v->ne[0], nq = q->ne[1], n_head = q->ne[2], n_kv_head = k->ne[2];
    const int64_t nk = k->ne[1], n_batch = q->ne[3];
    /* ggml writes row (i3, i, h) at ((i3 * nq + i) * H + h) * nb1 whatever dst's other strides say. */
    if (dst->nb[0] != sizeof(float) || dst->nb[1] != (size_t)dv * sizeof(float) || n_head > GGML_FA_MAX_HEADS ||
        v->ne[2] != n_kv_head || v->ne[1] != nk || k->ne[3] != v->ne[3] || n_head % n_kv_head ||
        n_batch % k->ne[3] || dk > 576 || dv > 576) {
        return 0;
    }
    if (mask && !(mask->type == LM_GGML_TYPE_F16 && mask->nb[0] == sizeof(uint16_t) &&
                  mask->nb[1] % sizeof(uint16_t) == 0 && mask->nb[2] % sizeof(uint16_t) == 0 &&
                  (mask->ne[2] == 1 || mask->ne[2] == n_head) && mask->ne[1] >= nq)) {
        return 0;
    }
    if (sinks && (sinks->type != LM_GGML_TYPE_F32 || !lm_ggml_is_contiguous(sinks))) {
        return 0;
    }
    float scale, max_bias, softcap;
    memcpy(&scale, (const float *)dst->op_params + 0, sizeof(float));
    memcpy(&max_bias, (const float *)dst->op_params + 1, sizeof(float));
    memcpy(&softcap, (const float *)dst->op_params + 2, sizeof(float));
    /* ggml's slopes (1 for every head without max_bias), by its own powf chain, so that the bias matches stock's;
     * they multiply the mask only (ggml has no bias without a mask, so then no slopes are passed). */
    float slopes[GGML_FA_MAX_HEADS];
    for (int64_t h = 0; h < n_head; h++) {
        slopes[h] = ggml_alibi_slope(max_bias, (uint32_t)n_head, (uint32_t)h);
    }
    posattn_softmax_options opt = {0};
    opt.softcap = softcap;
    if (mask) {
        opt.flags = POSATTN_MASK_TIMES_SLOPE;
        opt.mask_type = POSATTN_MASK_F16;
        opt.mask_row_stride = (int64_t)(mask->nb[1] / sizeof(uint16_t));
        opt.mask_head_stride = mask->ne[2] == 1 ? 0 : (int64_t)(mask->nb[2] / sizeof(uint16_t));
    }
    opt.sinks = sinks ? (const float *)sinks->data : NULL;
    /* Threads take contiguous blocks of whole GQA groups (H/Hkv heads x nq rows) over all batches, so a group's
     * K/V is read once; with fewer groups than threads, blocks of rows instead. ggml orders rows as posattn does
     * (h-major, then i), batch outermost. */
    const int64_t group_rows = n_head / n_kv_head * nq, rows_per_batch = n_head * nq;
    const int64_t unit = n_batch * n_kv_head >= nth ? group_rows : 1;
    const int64_t n_units = n_batch * rows_per_batch / unit;
    const int64_t first = n_units * ith / nth * unit, last = n_units * (ith + 1) / nth * unit;
    /* One thread's partials: a buffer per chunk, each sized for all rows (a call writes only its own rows). */
    const int64_t n_chunks = (nk + GGML_FA_KEY_CHUNK - 1) / GGML_FA_KEY_CHUNK;
    double **partials = NULL;
    size_t chunk_bytes = 0;
    if (nq <= GGML_FA_CHUNKED_MAX_NQ && n_chunks >= 2 &&
        posattn_attention_partials_size(n_head, nq, dv, &chunk_bytes) == POSATTN_OK) {
        partials = malloc((size_t)n_chunks * (sizeof(double *) + chunk_bytes));
        for (int64_t c = 0; partials && c < n_chunks; c++) {
            partials[c] = (double *)((char *)(partials + n_chunks) + (size_t)c * chunk_bytes);
        }
    }
    int status = 1;
    for (int64_t b = 0; b < n_batch && status; b++) {
        const int64_t plane = b * rows_per_batch;
        const int64_t row_begin = first > plane ? first - plane : 0;
        const int64_t row_end = last - plane < rows_per_batch ? last - plane : rows_per_batch;
        if (row_begin >= row_end) {
            continue;
        }
        const int64_t kb = b / (n_batch / k->ne[3]);
        const size_t ks = lm_ggml_type_size(k->type), vs = lm_ggml_type_size(v->type);
        posattn_attention_tensors t = {0};
        t.n_heads = n_head;
        t.n_kv_heads = n_kv_head;
        t.nq = nq;
        t.nk = nk;
        t.dk = dk;
        t.dv = dv;
        t.q = (const float *)((const char *)q->data + b * q->nb[3]);
        t.q_tok_stride = (int64_t)(q->nb[1] / sizeof(float));
        t.q_head_stride = (int64_t)(q->nb[2] / sizeof(float));
        t.q_dim_stride = 1;
        t.k = (const char *)k->data + kb * k->nb[3];
        t.k_type = k_type;
        t.k_tok_stride = (int64_t)(k->nb[1] / ks);
        t.k_head_stride = (int64_t)(k->nb[2] / ks);
        t.v = (const char *)v->data + kb * v->nb[3];
        t.v_type = v_type;
        t.v_tok_stride = (int64_t)(v->nb[1] / vs);
        t.v_head_stride = (int64_t)(v->nb[2] / vs);
        t.out = (float *)((char *)dst->data + (size_t)(b * rows_per_batch) * dst->nb[1]);
        t.o_tok_stride = n_head * dv;
        t.o_head_stride = dv;
        if (mask) {
            opt.mask = (const char *)mask->data + (b % mask->ne[3]) * mask->nb[3];
        }
        const float *bias_slopes = mask ? slopes : NULL;
        /* Same shapes and strides for every batch: only a thread's first call can fail, before it wrote anything
         * (the partial calls write only partials); ggml's fallback then recomputes that thread's rows. */
        status = (partials ? attention_in_key_chunks(&t, scale, bias_slopes, &opt, partials, n_chunks, row_begin,
                                                     row_end)
                           : posattn_attention(&t, scale, bias_slopes, NULL, &opt, row_begin, row_end)) == POSATTN_OK;
    }
    free(partials);
    return status;
}
