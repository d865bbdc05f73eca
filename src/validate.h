/*
 * Argument checks shared by every entry point. Extents are byte ranges computed in 64-bit arithmetic with overflow
 * checks; overlap is judged on those ranges, which is conservative for interleaved layouts (they are refused
 * rather than risked).
 */
#ifndef POSATTN_VALIDATE_H
#define POSATTN_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

/* A byte range [begin, end) of caller memory; empty when begin == end (absent tensors). */
typedef struct span {
    uintptr_t begin, end;
} span;

/* The span of n contiguous elem_size-byte elements at p (empty for NULL). n * elem_size must already be known to
 * fit (a validated count): no overflow check here. */
static inline span posattn_array_span(const void *p, int64_t n, size_t elem_size) {
    span s = {(uintptr_t)p, (uintptr_t)p};
    if (p) s.end += (uintptr_t)n * elem_size;
    return s;
}

/* Whether two non-empty spans share a byte. */
POSATTN_HIDDEN int posattn_spans_overlap(span a, span b);

/* *acc += a * b, returning 0 on int64 overflow. */
POSATTN_HIDDEN int posattn_mul_add_ok(int64_t a, int64_t b, int64_t *acc);

/* The span of a [n_outer][n_inner][row_len] tensor of elem_size-byte elements with the given strides (an empty span
 * for a NULL base). POSATTN_ERR_OVERFLOW when the last offset or the byte count does not fit, or the range wraps. */
POSATTN_HIDDEN posattn_status posattn_tensor_span(const void *base, int64_t n_outer, int64_t outer_stride,
                                                  int64_t n_inner, int64_t inner_stride, int64_t row_len,
                                                  size_t elem_size, span *out);

/* Whether output rows of length row_len at strides stride_a (n_a of them) and stride_b (n_b) are disjoint. */
POSATTN_HIDDEN int posattn_output_rows_disjoint(int64_t n_a, int64_t stride_a, int64_t n_b, int64_t stride_b,
                                                int64_t row_len);

#endif /* POSATTN_VALIDATE_H */
