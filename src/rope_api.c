/*
 * The public rotary-embedding entry points (SPEC 4): the frequency-table builders, and posattn_rope_apply, which
 * validates everything, then calls the active ISA's token kernel once per token of the caller's range.
 *
 * Validation happens entirely before the first write, so that an error leaves every output untouched. Extents are
 * byte ranges computed in 64-bit arithmetic with overflow checks (validate.h); x must not share a byte with the
 * positions, the table or the factors.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "validate.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* Builders                                                                                                     */
/* ---------------------------------------------------------------------------------------------------------- */

static posattn_status check_builder(int64_t rot_dims, float base, int64_t n_axes, const float *freqs) {
    if (!freqs) return POSATTN_ERR_NULL;
    if (rot_dims <= 0) return POSATTN_ERR_SIZE;
    if (rot_dims % 2) return POSATTN_ERR_LAYOUT;
    if (n_axes < 1 || n_axes > 4) return POSATTN_ERR_AXES;
    if (!(base > 0.0f) || isinf(base)) return POSATTN_ERR_BASE;
    /* n_axes * rot_dims/2 floats must be addressable. */
    if ((uint64_t)(rot_dims / 2) > (uint64_t)PTRDIFF_MAX / sizeof(float) / (uint64_t)n_axes)
        return POSATTN_ERR_OVERFLOW;
    return POSATTN_OK;
}

/* base^(-2 j / denom), in float64, rounded once. */
static float power_of_base(float base, int64_t j, int64_t denom) {
    return (float)pow((double)base, -2.0 * (double)j / (double)denom);
}

posattn_status posattn_rope_freqs_1d(int64_t rot_dims, float base, float *freqs) {
    posattn_status st = check_builder(rot_dims, base, 1, freqs);
    if (st) return st;
    for (int64_t k = 0; k < rot_dims / 2; ++k) freqs[k] = power_of_base(base, k, rot_dims);
    return POSATTN_OK;
}

/* Sections in pairs: none negative, summing to n_pairs; freqs must not overlap them. */
static posattn_status check_sections(int64_t n_pairs, int64_t n_axes, const int64_t *sections, const float *freqs) {
    if (!sections) return POSATTN_ERR_NULL;
    int64_t sum = 0;
    for (int64_t a = 0; a < n_axes; ++a) {
        if (sections[a] < 0 || __builtin_add_overflow(sum, sections[a], &sum)) return POSATTN_ERR_SECTIONS;
    }
    if (sum != n_pairs) return POSATTN_ERR_SECTIONS;
    if (posattn_spans_overlap(posattn_array_span(freqs, n_axes * n_pairs, sizeof(float)),
                              posattn_array_span(sections, n_axes, sizeof(int64_t)))) {
        return POSATTN_ERR_OVERLAP;
    }
    return POSATTN_OK;
}

/* Sections, with frequencies that either run over all pairs (restart = 0) or restart in each section. */
static posattn_status freqs_from_sections(int64_t rot_dims, float base, int64_t n_axes, const int64_t *sections,
                                          float *freqs, int restart) {
    posattn_status st = check_builder(rot_dims, base, n_axes, freqs);
    if (st) return st;
    const int64_t n_pairs = rot_dims / 2;
    if ((st = check_sections(n_pairs, n_axes, sections, freqs))) return st;
    int64_t k = 0;
    for (int64_t a = 0; a < n_axes; ++a) {
        const int64_t begin = k;
        for (int64_t j = 0; j < sections[a]; ++j, ++k) {
            for (int64_t b = 0; b < n_axes; ++b) freqs[b * n_pairs + k] = 0.0f;
            freqs[a * n_pairs + k] =
                restart ? power_of_base(base, k - begin, n_pairs) : power_of_base(base, k, rot_dims);
        }
    }
    return POSATTN_OK;
}

posattn_status posattn_rope_freqs_sections(int64_t rot_dims, float base, int64_t n_axes, const int64_t *sections,
                                           float *freqs) {
    return freqs_from_sections(rot_dims, base, n_axes, sections, freqs, 0);
}

posattn_status posattn_rope_freqs_vision(int64_t rot_dims, float base, int64_t n_axes, const int64_t *sections,
                                         float *freqs) {
    return freqs_from_sections(rot_dims, base, n_axes, sections, freqs, 1);
}

posattn_status posattn_rope_freqs_axis_map(int64_t rot_dims, float base, int64_t n_axes, const int32_t *axis_of_pair,
                                           float *freqs) {
    posattn_status st = check_builder(rot_dims, base, n_axes, freqs);
    if (st) return st;
    if (!axis_of_pair) return POSATTN_ERR_NULL;
    const int64_t n_pairs = rot_dims / 2;
    for (int64_t k = 0; k < n_pairs; ++k) {
        if (axis_of_pair[k] < 0 || axis_of_pair[k] >= n_axes) return POSATTN_ERR_SECTIONS;
    }
    if (posattn_spans_overlap(posattn_array_span(freqs, n_axes * n_pairs, sizeof(float)),
                              posattn_array_span(axis_of_pair, n_pairs, sizeof(int32_t)))) {
        return POSATTN_ERR_OVERLAP;
    }
    for (int64_t k = 0; k < n_pairs; ++k) {
        for (int64_t b = 0; b < n_axes; ++b) freqs[b * n_pairs + k] = 0.0f;
        freqs[axis_of_pair[k] * n_pairs + k] = power_of_base(base, k, rot_dims);
    }
    return POSATTN_OK;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Apply                                                                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

posattn_status posattn_rope_apply(int64_t n_tok, int64_t n_heads, int64_t head_dim, float *x, int64_t tok_stride,
                                  int64_t head_stride, int64_t rot_offset, int64_t rot_dims, posattn_rope_layout layout,
                                  int64_t n_axes, const float *pos, int64_t pos_stride, const float *freqs,
                                  int64_t freq_head_stride, const posattn_rope_options *options, int64_t tok_begin,
                                  int64_t tok_end) {
    static const posattn_rope_options no_options = {0};
    const posattn_rope_options *o = options ? options : &no_options;
    if (!x || !pos || !freqs) return POSATTN_ERR_NULL;
    if (n_tok <= 0 || n_heads <= 0 || head_dim <= 0 || rot_dims <= 0) return POSATTN_ERR_SIZE;
    if (layout != POSATTN_ROPE_INTERLEAVED && layout != POSATTN_ROPE_HALF_SPLIT) return POSATTN_ERR_LAYOUT;
    if (rot_dims % 2 || rot_offset < 0 || rot_offset > head_dim - rot_dims) return POSATTN_ERR_LAYOUT;
    if (n_axes < 1 || n_axes > 4) return POSATTN_ERR_AXES;
    if (tok_begin < 0 || tok_end < tok_begin || tok_end > n_tok) return POSATTN_ERR_ROW_RANGE;
    if (o->flags & ~(uint32_t)POSATTN_ROPE_BACKWARD) return POSATTN_ERR_FLAGS;
    if (!isfinite(o->attn_factor)) return POSATTN_ERR_SCALE;

    if (tok_stride < 0 || head_stride < 0 || pos_stride < 0 || freq_head_stride < 0) return POSATTN_ERR_STRIDE;
    if (!head_stride) head_stride = head_dim;
    if (head_stride < head_dim) return POSATTN_ERR_STRIDE;
    if (!tok_stride && __builtin_mul_overflow(n_heads, head_stride, &tok_stride)) return POSATTN_ERR_OVERFLOW;
    if (!pos_stride) pos_stride = n_axes;
    if (pos_stride < n_axes) return POSATTN_ERR_STRIDE;
    if (!posattn_output_rows_disjoint(n_tok, tok_stride, n_heads, head_stride, head_dim)) return POSATTN_ERR_STRIDE;

    const int64_t n_pairs = rot_dims / 2;
    span x_bytes, pos_bytes, freq_bytes, factor_bytes;
    posattn_status st;
    if ((st = posattn_tensor_span(x, n_tok, tok_stride, n_heads, head_stride, head_dim, sizeof(float), &x_bytes)) ||
        (st = posattn_tensor_span(pos, 1, 0, n_tok, pos_stride, n_axes, sizeof(float), &pos_bytes)) ||
        (st = posattn_tensor_span(freqs, 1, 0, freq_head_stride ? n_heads : 1, freq_head_stride, n_axes * n_pairs,
                                  sizeof(float), &freq_bytes)) ||
        (st = posattn_tensor_span(o->pair_factors, 1, 0, 1, 0, n_pairs, sizeof(float), &factor_bytes))) {
        return st;
    }
    if (posattn_spans_overlap(x_bytes, pos_bytes) || posattn_spans_overlap(x_bytes, freq_bytes) ||
        posattn_spans_overlap(x_bytes, factor_bytes)) {
        return POSATTN_ERR_OVERLAP;
    }

    posattn_rope_token token = {
        .n_heads = n_heads,
        .head_stride = head_stride,
        .n_pairs = n_pairs,
        .half_split = layout == POSATTN_ROPE_HALF_SPLIT,
        .backward = (o->flags & POSATTN_ROPE_BACKWARD) != 0,
        .n_axes = n_axes,
        .freqs = freqs,
        .freq_head_stride = freq_head_stride,
        .attn_factor = o->attn_factor != 0.0f ? o->attn_factor : 1.0f,
        .pair_factors = o->pair_factors,
    };
    /* n_heads * n_pairs * 8 and the token count fit: x's span was computed without overflow. */
    token.prefetch = (tok_end - tok_begin) * n_heads * n_pairs * 8 >= POSATTN_ROPE_PREFETCH_MIN_BYTES;
    posattn_rope_token_kernel *const kernel = posattn_dispatch_rope_token();
    for (int64_t t = tok_begin; t < tok_end; ++t) {
        token.x = x + t * tok_stride + rot_offset;
        token.next_x = token.prefetch && t + 1 < tok_end ? token.x + tok_stride : NULL;
        token.pos = pos + t * pos_stride;
        kernel(&token);
    }
    return POSATTN_OK;
}
