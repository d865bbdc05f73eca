/*
 * The public LieRE entry points (SPEC 5): validate everything, then call the active ISA's token kernels, one call
 * per token of the caller's range.
 *
 * Validation happens entirely before the first write, so that an error leaves every output untouched. Extents are
 * computed in 64-bit arithmetic with overflow checks; overlap is judged on the byte ranges the tensors span, which
 * is conservative for interleaved layouts, with one exact exception: q and k interleaved token by token with the
 * same token stride (a packed qkv buffer) are accepted when their per-token footprints are disjoint.
 */
#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "validate.h"

static posattn_status check_block(int64_t block, int64_t rot_dims) {
    if (block < 2 || block > POSATTN_LIERE_MAX_BLOCK || rot_dims % block != 0) return POSATTN_ERR_BLOCK;
    return POSATTN_OK;
}

posattn_status posattn_liere_rotation_size(int64_t n_gen_heads, int64_t block, int64_t rot_dims,
                                           int64_t *floats_per_token) {
    if (!floats_per_token) return POSATTN_ERR_NULL;
    if (n_gen_heads <= 0 || rot_dims <= 0) return POSATTN_ERR_SIZE;
    posattn_status st = check_block(block, rot_dims);
    if (st != POSATTN_OK) return st;
    int64_t n;
    if (__builtin_mul_overflow(n_gen_heads, block, &n) || __builtin_mul_overflow(n, rot_dims, &n)) {
        return POSATTN_ERR_OVERFLOW;
    }
    *floats_per_token = n;
    return POSATTN_OK;
}

posattn_status posattn_liere_scratch_size(int64_t block, int64_t *floats) {
    if (!floats) return POSATTN_ERR_NULL;
    if (block < 2 || block > POSATTN_LIERE_MAX_BLOCK) return POSATTN_ERR_BLOCK;
    *floats = posattn_liere_scratch_floats(block);
    return POSATTN_OK;
}

/* The scratch of a call that needs one (block validated): present, large enough, and its bytes (those the kernels
 * may write) in *bytes for the overlap checks. */
static posattn_status check_scratch(const float *scratch, int64_t scratch_floats, int64_t block, span *bytes) {
    if (!scratch) return POSATTN_ERR_NULL;
    const int64_t need = posattn_liere_scratch_floats(block);
    if (scratch_floats < need) return POSATTN_ERR_SIZE;
    return posattn_tensor_span(scratch, 1, 0, 1, need, need, sizeof(float), bytes);
}

/* Token range, position array and rotation array shared by both entry points. */
static posattn_status check_tokens(int64_t n_tok, int64_t tok_begin, int64_t tok_end) {
    if (n_tok <= 0) return POSATTN_ERR_SIZE;
    if (tok_begin < 0 || tok_end < tok_begin || tok_end > n_tok) return POSATTN_ERR_ROW_RANGE;
    return POSATTN_OK;
}

static posattn_status resolve_rotations(const float *rot, int64_t n_tok, int64_t per_token, int64_t *rot_tok_stride,
                                        span *bytes) {
    if (*rot_tok_stride < 0) return POSATTN_ERR_STRIDE;
    if (!*rot_tok_stride) *rot_tok_stride = per_token;
    if (*rot_tok_stride < per_token) return POSATTN_ERR_STRIDE;
    return posattn_tensor_span(rot, 1, 0, n_tok, *rot_tok_stride, per_token, sizeof(float), bytes);
}

posattn_status posattn_liere_rotations(int64_t n_tok, int64_t n_axes, const float *pos, int64_t pos_stride,
                                       int64_t n_gen_heads, int64_t block, int64_t rot_dims, const float *gens,
                                       float *rot, int64_t rot_tok_stride, float *scratch, int64_t scratch_floats,
                                       const posattn_liere_options *options, int64_t tok_begin, int64_t tok_end) {
    if (!pos || !gens || !rot) return POSATTN_ERR_NULL;
    int64_t per_token;
    posattn_status st;
    if ((st = check_tokens(n_tok, tok_begin, tok_end)) != POSATTN_OK) return st;
    if (n_axes < 1 || n_axes > 4) return POSATTN_ERR_AXES;
    if ((st = posattn_liere_rotation_size(n_gen_heads, block, rot_dims, &per_token)) != POSATTN_OK) return st;
    if (options && options->flags != 0) return POSATTN_ERR_FLAGS; /* no flag applies to computing rotations */
    if (pos_stride < 0) return POSATTN_ERR_STRIDE;
    if (!pos_stride) pos_stride = n_axes;
    if (pos_stride < n_axes) return POSATTN_ERR_STRIDE;
    span pos_bytes, gen_bytes, rot_bytes;
    int64_t gen_floats = block * (block - 1) / 2; /* <= 2016 */
    if (__builtin_mul_overflow(gen_floats, rot_dims / block, &gen_floats) ||
        __builtin_mul_overflow(gen_floats, n_axes, &gen_floats)) {
        return POSATTN_ERR_OVERFLOW;
    }
    if ((st = posattn_tensor_span(pos, 1, 0, n_tok, pos_stride, n_axes, sizeof(float), &pos_bytes)) ||
        (st = posattn_tensor_span(gens, 1, 0, n_gen_heads, gen_floats, gen_floats, sizeof(float), &gen_bytes)) ||
        (st = resolve_rotations(rot, n_tok, per_token, &rot_tok_stride, &rot_bytes))) {
        return st;
    }
    if (posattn_spans_overlap(rot_bytes, pos_bytes) || posattn_spans_overlap(rot_bytes, gen_bytes)) {
        return POSATTN_ERR_OVERLAP;
    }
    if (block >= 4) { /* the scaling and squaring works in the scratch; the closed forms need none */
        span scratch_bytes;
        if ((st = check_scratch(scratch, scratch_floats, block, &scratch_bytes)) != POSATTN_OK) return st;
        if (posattn_spans_overlap(scratch_bytes, rot_bytes) || posattn_spans_overlap(scratch_bytes, pos_bytes) ||
            posattn_spans_overlap(scratch_bytes, gen_bytes)) {
            return POSATTN_ERR_OVERLAP;
        }
    }
    posattn_liere_rot_token_kernel *const rot_token = posattn_dispatch_liere_rot_token();
    posattn_liere_rot_token tk = {.n_axes = n_axes,
                                  .gens = gens,
                                  .n_gen = n_gen_heads,
                                  .block = block,
                                  .rot_dims = rot_dims,
                                  .scratch = block >= 4 ? scratch : NULL};
    for (int64_t t = tok_begin; t < tok_end; ++t) {
        tk.pos = pos + t * pos_stride;
        tk.rot = rot + t * rot_tok_stride;
        rot_token(&tk);
    }
    return POSATTN_OK;
}

/* A [n_tok][heads][head_dim] tensor with resolved strides; the span covers the rotated dims of every head (the
 * bytes written, which is what overlap is judged on), after the whole heads were checked to be addressable. */
typedef struct heads_layout {
    int64_t tok_stride, head_stride;
    span bytes;
} heads_layout;

static posattn_status resolve_heads(float *x, int64_t n_tok, int64_t heads, int64_t head_dim, int64_t rot_offset,
                                    int64_t rot_dims, int64_t tok_stride, int64_t head_stride, heads_layout *out) {
    if (tok_stride < 0 || head_stride < 0) return POSATTN_ERR_STRIDE;
    out->head_stride = head_stride ? head_stride : head_dim;
    if (out->head_stride < head_dim) return POSATTN_ERR_STRIDE;
    if (tok_stride) {
        out->tok_stride = tok_stride;
    } else if (__builtin_mul_overflow(heads, out->head_stride, &out->tok_stride)) {
        return POSATTN_ERR_OVERFLOW;
    }
    if (!posattn_output_rows_disjoint(n_tok, out->tok_stride, heads, out->head_stride, head_dim)) {
        return POSATTN_ERR_STRIDE;
    }
    /* x + rot_offset is only formed once the whole heads fit: a rot_offset beyond the address space would wrap. */
    span whole;
    posattn_status st = posattn_tensor_span(x, n_tok, out->tok_stride, heads, out->head_stride, head_dim,
                                            sizeof(float), &whole);
    if (st != POSATTN_OK) return st;
    return posattn_tensor_span(x + rot_offset, n_tok, out->tok_stride, heads, out->head_stride, rot_dims,
                               sizeof(float), &out->bytes);
}

/* Whether q and k, both with token stride ts and per-token extents eq and ek bytes, interleave without sharing a
 * byte (a packed [n_tok][q | k | v] buffer): k's footprint starts, modulo the token stride, after q's ends. */
static int interleaved_disjoint(const float *q, int64_t eq, const float *k, int64_t ek, int64_t ts_bytes) {
    if (eq > ts_bytes || ek > ts_bytes || ts_bytes <= 0) return 0;
    const intptr_t delta = (intptr_t)k - (intptr_t)q;
    int64_t m = (int64_t)(delta % ts_bytes);
    if (m < 0) m += ts_bytes;
    return m >= eq && m + ek <= ts_bytes;
}

posattn_status posattn_liere_apply(int64_t n_tok, int64_t head_dim, int64_t rot_offset, int64_t rot_dims, int64_t block,
                                   float *q, int64_t q_heads, int64_t q_tok_stride, int64_t q_head_stride, float *k,
                                   int64_t k_heads, int64_t k_tok_stride, int64_t k_head_stride, const float *rot,
                                   int64_t rot_tok_stride, int64_t n_gen_heads, float *scratch, int64_t scratch_floats,
                                   const posattn_liere_options *options, int64_t tok_begin, int64_t tok_end) {
    if (!q || !rot) return POSATTN_ERR_NULL;
    posattn_status st;
    if ((st = check_tokens(n_tok, tok_begin, tok_end)) != POSATTN_OK) return st;
    if (head_dim <= 0 || rot_dims <= 0 || q_heads <= 0 || n_gen_heads <= 0 || (k && k_heads <= 0)) {
        return POSATTN_ERR_SIZE;
    }
    if (rot_offset < 0 || rot_offset > head_dim || rot_dims > head_dim - rot_offset) return POSATTN_ERR_LAYOUT;
    int64_t per_token;
    if ((st = posattn_liere_rotation_size(n_gen_heads, block, rot_dims, &per_token)) != POSATTN_OK) return st;
    if (q_heads % n_gen_heads != 0 || (k && k_heads % n_gen_heads != 0)) return POSATTN_ERR_SIZE;
    const uint32_t flags = options ? options->flags : 0;
    if (flags & ~(uint32_t)POSATTN_LIERE_BACKWARD) return POSATTN_ERR_FLAGS;
    heads_layout ql, kl = {0};
    span rot_bytes;
    if ((st = resolve_heads(q, n_tok, q_heads, head_dim, rot_offset, rot_dims, q_tok_stride, q_head_stride, &ql)) ||
        (k && (st = resolve_heads(k, n_tok, k_heads, head_dim, rot_offset, rot_dims, k_tok_stride, k_head_stride,
                                  &kl))) ||
        (st = resolve_rotations(rot, n_tok, per_token, &rot_tok_stride, &rot_bytes))) {
        return st;
    }
    if (posattn_spans_overlap(ql.bytes, rot_bytes) || posattn_spans_overlap(kl.bytes, rot_bytes)) {
        return POSATTN_ERR_OVERLAP;
    }
    if (k && posattn_spans_overlap(ql.bytes, kl.bytes)) {
        /* Per-token footprints in bytes, from the first rotated float of head 0. */
        const int64_t eq = (int64_t)(((q_heads - 1) * ql.head_stride + rot_dims) * (int64_t)sizeof(float));
        const int64_t ek = (int64_t)(((k_heads - 1) * kl.head_stride + rot_dims) * (int64_t)sizeof(float));
        /* The token stride in bytes may not fit when there is one token (no product with n_tok bounded it);
         * buffers whose spans overlap are then not an interleaving either. */
        int64_t ts_bytes;
        if (ql.tok_stride != kl.tok_stride ||
            __builtin_mul_overflow(ql.tok_stride, (int64_t)sizeof(float), &ts_bytes) ||
            !interleaved_disjoint(q + rot_offset, eq, k + rot_offset, ek, ts_bytes)) {
            return POSATTN_ERR_OVERLAP;
        }
    }
    const int backward = (flags & POSATTN_LIERE_BACKWARD) != 0;
    if (backward) { /* the transposed coefficients are built in the scratch; forward reads rot directly */
        span scratch_bytes;
        if ((st = check_scratch(scratch, scratch_floats, block, &scratch_bytes)) != POSATTN_OK) return st;
        if (posattn_spans_overlap(scratch_bytes, ql.bytes) || (k && posattn_spans_overlap(scratch_bytes, kl.bytes)) ||
            posattn_spans_overlap(scratch_bytes, rot_bytes)) {
            return POSATTN_ERR_OVERLAP;
        }
    }
    posattn_liere_apply_token_kernel *const apply_token = posattn_dispatch_liere_apply_token();
    posattn_liere_apply_token tk = {.q_heads = q_heads,
                                    .q_head_stride = ql.head_stride,
                                    .k_heads = k ? k_heads : 0,
                                    .k_head_stride = kl.head_stride,
                                    .n_gen = n_gen_heads,
                                    .block = block,
                                    .rot_dims = rot_dims,
                                    .backward = backward,
                                    .scratch = backward ? scratch : NULL};
    for (int64_t t = tok_begin; t < tok_end; ++t) {
        tk.q = q + t * ql.tok_stride + rot_offset;
        tk.k = k ? k + t * kl.tok_stride + rot_offset : NULL;
        tk.rot = rot + t * rot_tok_stride;
        apply_token(&tk);
    }
    return POSATTN_OK;
}
