/*
 * What the softmax and the attention entry points share per row (head h, query i): the shape check, the positions
 * with their resolved strides, each row's slope and positions for the kernels, the causal and window limits, and
 * the options' checks. Validation only reads; nothing here writes caller memory.
 */
#ifndef POSATTN_ROWS_H
#define POSATTN_ROWS_H

#include <stdint.h>

#include "kernels.h"
#include "validate.h"

/* The posattn_shape shared by the bias and the softmax entry points. */
typedef struct posattn_shape {
    int64_t n_heads, nq, nk;
} posattn_shape;

/* Positions with resolved strides, the spans of everything they point to, and a ready-to-use default. */
typedef struct posattn_positions_layout {
    posattn_positions p;
    span q, k, weights;
} posattn_positions_layout;

/* The slope, query position, key positions and N-D fields of one row (head h, query i). */
typedef struct posattn_row_positions {
    float slope, q_pos;
    posattn_key_positions keys;
    posattn_nd_positions nd;
} posattn_row_positions;

/* SIZE unless every size is >= 1, OVERFLOW when H*nq does not fit, ROW_RANGE unless 0 <= begin <= end <= H*nq. */
POSATTN_HIDDEN posattn_status posattn_check_shape_and_range(posattn_shape s, int64_t row_begin, int64_t row_end);

/* Checks the positions (AXES, METRIC, STRIDE, OVERFLOW, WEIGHTS) and resolves their default strides and spans. */
POSATTN_HIDDEN posattn_status posattn_resolve_positions(const posattn_positions *given, posattn_shape s,
                                                        posattn_positions_layout *out);

/* The slope, query position, key positions and N-D fields of one row (head h, query i); slope 0: no bias. */
POSATTN_HIDDEN posattn_row_positions posattn_row_positions_of(const float *slopes, const posattn_positions *p,
                                                              posattn_shape s, int64_t h, int64_t i);
/* Query i's 1-D position for head h (the default: nk - nq + i), and head h's key positions (k_pos NULL: j). */
POSATTN_HIDDEN float posattn_query_position(const posattn_positions *p, posattn_shape s, int64_t h, int64_t i);
POSATTN_HIDDEN posattn_key_positions posattn_key_positions_of(const posattn_positions *p, int64_t h);

/* The valid keys [lo, hi) of query i under causal and window masking (SPEC 3), clamped to [0, nk]. */
POSATTN_HIDDEN void posattn_valid_keys(posattn_shape s, int64_t i, int causal, int64_t window, int64_t *lo,
                                       int64_t *hi);

/* FLAGS, SOFTCAP, WINDOW, MASK_TYPE of softmax options (positions: whether the caller gave any). */
POSATTN_HIDDEN posattn_status posattn_check_softmax_options(const posattn_softmax_options *o,
                                                            const posattn_positions *positions);

#endif /* POSATTN_ROWS_H */
