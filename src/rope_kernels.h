/* The row contract of the rotary embeddings (SPEC 4) kernels: argument structs and the kernel type that
 * src/kernels.h lists as the operation rope_token.
 *
 * The public entry point (src/rope_api.c) validates everything, then calls the token kernel once per token of the
 * caller's range. A token kernel rotates, for every head of that token, the D_rot = 2 * n_pairs dimensions that
 * start at x + h * head_stride, in place:
 *     theta_k = pos[0]*F[0][k] + pos[1]*F[1][k] + ...      float32, products then sums in axis order, no FMA
 *     c_k = cos(theta_k) * f_k,  s_k = sin(theta_k) * f_k   (s_k negated when backward; f_k = 1: no multiply)
 *     x'[a_k] = x[a_k]*c_k - x[b_k]*s_k,   x'[b_k] = x[a_k]*s_k + x[b_k]*c_k
 * with (a_k, b_k) = (2k, 2k+1) (interleaved) or (k, k + n_pairs) (half-split) and F = freqs + h*freq_head_stride.
 * Angles are bit-identical on every ISA (same roundings, no contraction); cos and sin and the rotation follow
 * each ISA's own rounding, within the bound stated in posattn.h. When freq_head_stride is 0 (one table for all
 * heads) a kernel computes c_k and s_k once per (token, pair) and applies them to every head. Kernels work on
 * blocks of at most POSATTN_ROPE_BLOCK_PAIRS pairs, whose cos/sin live in stack buffers: nothing is allocated.
 */
#ifndef POSATTN_ROPE_KERNELS_H
#define POSATTN_ROPE_KERNELS_H

#include <stdint.h>

/* Pairs per block of cos/sin kept on the stack (a multiple of every vector width). */
#define POSATTN_ROPE_BLOCK_PAIRS 128

/* From how many rotated bytes in one call the SIMD kernels prefetch the heads ahead (src/rope_generic.h says why).
 * Below it the rows are likely still in the caches from whatever wrote them, where the prefetches only cost
 * instructions: on AMD Zen 5, 4 to 14 MiB of q in place ran 3-5% (AVX-512) and 15-22% (AVX2) slower with them,
 * 16 MiB broke even (AVX2) or gained 25% (AVX-512), 32 and 64 MiB gained 10-15% (AVX2) and 50% (AVX-512). */
#define POSATTN_ROPE_PREFETCH_MIN_BYTES ((int64_t)16 << 20)

typedef struct posattn_rope_token {
    float *x;                  /* the token's head 0, at its first rotated dimension */
    int64_t n_heads;           /* >= 1 */
    int64_t head_stride;       /* elements between heads */
    int64_t n_pairs;           /* D_rot / 2 >= 1 */
    int half_split;            /* 0: interleaved pairs (2k, 2k+1); 1: half-split (k, k + n_pairs) */
    int backward;              /* rotate by -theta */
    const float *pos;          /* the token's n_axes coordinates */
    int64_t n_axes;            /* 1..4 */
    const float *freqs;        /* F[h][a][k] at freqs[h*freq_head_stride + a*n_pairs + k] */
    int64_t freq_head_stride;  /* 0: one table shared by every head */
    float attn_factor;         /* multiplies cos and sin; exactly 1 when off */
    const float *pair_factors; /* NULL, or [n_pairs]: f_k = attn_factor * pair_factors[k], rounded once */
    int prefetch;              /* 1: prefetch the heads ahead (the call rotates >= POSATTN_ROPE_PREFETCH_MIN_BYTES) */
    float *next_x;             /* with prefetch: x of the token rotated next, or NULL; never read, only prefetched */
} posattn_rope_token;

typedef void posattn_rope_token_kernel(const posattn_rope_token *token);

#endif /* POSATTN_ROPE_KERNELS_H */
