/*
 * What the entry points of the fused attention share between src/attention_api.c (plain and split-KV calls) and
 * src/attention_far_field.c (far-field skipping): a validated call, each row's fields for the tile kernel, and
 * one row run over a key range in partial mode.
 */
#ifndef POSATTN_ATTENTION_CALL_H
#define POSATTN_ATTENTION_CALL_H

#include "kernels.h"
#include "rows.h"
#include "validate.h"

/* Everything a call needs once validated: the tensors with resolved strides, and the spans of every input. */
typedef struct attention_call {
    posattn_attention_tensors t; /* strides resolved */
    posattn_shape shape;         /* H, nq, nk */
    int64_t group;               /* query heads per KV head */
    float scale;
    const float *slopes;
    posattn_positions_layout pos;
    const posattn_softmax_options *o;
    int64_t mask_row_stride;
    span inputs[9]; /* q, k, v, slopes, sinks, mask, positions q, k, weights */
    span out, lse;
} attention_call;

/* Bytes of one K or V element; whether a posattn_kv_type is known. */
POSATTN_HIDDEN size_t posattn_kv_elem_size(posattn_kv_type type);
POSATTN_HIDDEN int posattn_kv_type_known(posattn_kv_type type);
/* POSATTN_ERR_HEAD_DIM unless 1 <= dk, dv <= POSATTN_ATTENTION_MAX_DIM. */
POSATTN_HIDDEN posattn_status posattn_attention_check_dims(int64_t dk, int64_t dv);

/* Every check of posattn_attention (need_out 1) or posattn_attention_partial (need_out 0), then *c filled in. */
POSATTN_HIDDEN posattn_status posattn_attention_prepare(attention_call *c, const posattn_attention_tensors *t,
                                                        float scale, const float *slopes,
                                                        const posattn_positions *positions,
                                                        const posattn_softmax_options *options, int64_t row_begin,
                                                        int64_t row_end, int need_out);

/* The checks of a partial call's own arguments (NULL, KEY_RANGE, OVERFLOW, OVERLAP with an input); *partial_bytes
 * receives the buffer's span. */
POSATTN_HIDDEN posattn_status posattn_attention_check_partials(const attention_call *c, const double *partials,
                                                               int64_t key_begin, int64_t key_end,
                                                               span *partial_bytes);

/* One row's fields for the kernel (head h, query i), its valid keys clipped to [key_begin, key_end). */
POSATTN_HIDDEN posattn_attention_row posattn_attention_row_of(const attention_call *c, int64_t h, int64_t i,
                                                              int64_t key_begin, int64_t key_end);

/* The partials (m, l, a[dv]) of row (h, i) over its valid keys in [key_begin, key_end), by the active ISA. */
POSATTN_HIDDEN void posattn_attention_row_partial(const attention_call *c, int64_t h, int64_t i, int64_t key_begin,
                                                  int64_t key_end, double *partial);

#endif /* POSATTN_ATTENTION_CALL_H */
