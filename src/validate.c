/* Argument checks shared by every entry point: 64-bit extents with overflow checks, overlap and stride rules. */
#include <stddef.h>

#include "validate.h"

const char *posattn_status_string(posattn_status status) {

    switch (status) {
    case POSATTN_OK: return "ok";
    case POSATTN_ERR_NULL: return "a required pointer is NULL";
    case POSATTN_ERR_SIZE: return "a size is zero or negative";
    case POSATTN_ERR_ROW_RANGE: return "row range outside [0, heads*nq] or reversed";
    case POSATTN_ERR_STRIDE: return "bad stride (negative, shorter than a row, or overlapping output rows)";
    case POSATTN_ERR_OVERFLOW: return "sizes and strides overflow 64 bits or the address space";
    case POSATTN_ERR_OVERLAP: return "an output overlaps an input or another output";
    case POSATTN_ERR_SCALE: return "scale is not finite";
    case POSATTN_ERR_SOFTCAP: return "softcap is negative or not finite";
    case POSATTN_ERR_WINDOW: return "window is negative";
    case POSATTN_ERR_MAX_BIAS: return "max_bias is negative or not finite";
    case POSATTN_ERR_AXES: return "unsupported number of position axes";
    case POSATTN_ERR_METRIC: return "unknown distance metric";
    case POSATTN_ERR_MASK_TYPE: return "unknown mask type";
    case POSATTN_ERR_FLAGS: return "unknown or contradictory flags";
    case POSATTN_ERR_ISA_UNKNOWN: return "unknown instruction set";
    case POSATTN_ERR_ISA_UNSUPPORTED: return "instruction set not compiled in or not supported by this CPU";
    case POSATTN_ERR_LAYOUT: return "unknown rotary layout, or rotated dimensions odd or outside the head";
    case POSATTN_ERR_SECTIONS: return "rotary sections do not cover D_rot/2 pairs, or an axis is out of range";
    case POSATTN_ERR_BASE: return "frequency base is not positive and finite";
    case POSATTN_ERR_BLOCK: return "LieRE block size outside 2..64 or not dividing the rotated dimensions";
    case POSATTN_ERR_WEIGHTS: return "axis weights NaN or infinite, or negative with metric L1";
    case POSATTN_ERR_KV_TYPE: return "unknown K or V element type";
    case POSATTN_ERR_HEAD_DIM: return "attention head size outside 1..576";
    case POSATTN_ERR_KEY_RANGE: return "key range outside [0, nk] or reversed";
    }
    return "unknown status";
}

int posattn_spans_overlap(span a, span b) {
    return a.begin < a.end && b.begin < b.end && a.begin < b.end && b.begin < a.end;
}

int posattn_mul_add_ok(int64_t a, int64_t b, int64_t *acc) {
    int64_t product;
    if (__builtin_mul_overflow(a, b, &product)) return 0;
    return !__builtin_add_overflow(*acc, product, acc);
}

/*
 * The span of a [n_outer][n_inner][row_len] tensor of elem_size-byte elements with the given strides. Returns
 * POSATTN_ERR_OVERFLOW when the last element's offset or the byte count does not fit, or the range wraps.
 */
posattn_status posattn_tensor_span(const void *base, int64_t n_outer, int64_t outer_stride, int64_t n_inner,
                                  int64_t inner_stride, int64_t row_len, size_t elem_size, span *out) {
    out->begin = out->end = (uintptr_t)base;
    if (!base) return POSATTN_OK;
    int64_t elements = row_len;
    if (!posattn_mul_add_ok(n_outer - 1, outer_stride, &elements) ||
        !posattn_mul_add_ok(n_inner - 1, inner_stride, &elements)) {
        return POSATTN_ERR_OVERFLOW;
    }
    int64_t bytes;
    if (__builtin_mul_overflow(elements, (int64_t)elem_size, &bytes) || bytes > PTRDIFF_MAX) {
        return POSATTN_ERR_OVERFLOW;
    }
    if (__builtin_add_overflow(out->begin, (uintptr_t)bytes, &out->end)) return POSATTN_ERR_OVERFLOW;
    return POSATTN_OK;
}

/* Rows of an output must not overlap: with the two strides sorted, the smaller one must hold a row and the larger
 * one all the rows the smaller one spans. Dimensions of extent 1 impose nothing. */
int posattn_output_rows_disjoint(int64_t n_a, int64_t stride_a, int64_t n_b, int64_t stride_b, int64_t row_len) {
    if (n_a == 1) n_a = 0;
    if (n_b == 1) n_b = 0;
    if (!n_a && !n_b) return 1;
    if (!n_a) return stride_b >= row_len;
    if (!n_b) return stride_a >= row_len;
    if (stride_a > stride_b) {
        int64_t t = stride_a;
        stride_a = stride_b, stride_b = t;
        t = n_a, n_a = n_b, n_b = t;
    }
    if (stride_a < row_len) return 0;
    int64_t spanned = row_len;
    if (!posattn_mul_add_ok(n_a - 1, stride_a, &spanned)) return 0;
    return stride_b >= spanned;
}
