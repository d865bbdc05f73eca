/*
 * The row contract of the LieRE rotations (SPEC 5) kernels: argument structs and the kernel types that
 * src/kernels.h lists as the operations liere_rot_token and liere_apply_token.
 *
 * The public entry points (src/liere_api.c) validate everything, then call one token kernel per token of the
 * caller's range. Kernels never see invalid input and never fail.
 *
 * Rotation layout (also the public one, see posattn.h): for one token and one generator set, the rotations of the
 * n_blocks = rot_dims / b blocks are stored "column by column, blocks side by side":
 *     R_j[r][c]  at  rot[c * rot_dims + j * b + r]          0 <= r, c < b,  0 <= j < n_blocks
 * so that R·x is a sum over c of contiguous coefficient vectors times x[j*b + c], for every block at once.
 *
 * rot_token: computes R_j = exp(sum_a pos[a] * G[g][a][j]) for every set g and block j of one token, with
 *     G[g][a][j] upper entries at gens[((g * n_axes + a) * n_blocks + j) * T + e], T = b(b-1)/2, e over the
 *     strictly upper triangle row by row: (0,1), (0,2), ..., (0,b-1), (1,2), ..., (b-2,b-1); G[c][r] = -G[r][c].
 *     The exponent is formed in float64 (exact products of float32 inputs). b = 2: cos/sin in float64; b = 3:
 *     Rodrigues in float64; b >= 4: scaling and squaring in float32 (Taylor degree 8 on norm <= 1/2, squarings,
 *     1 to 3 Newton-Schulz steps towards orthogonality). Its 5 matrices live in the caller's scratch (a b x b matrix
 *     of floats is 16 KiB for b = 64: the stack cannot hold them within the library's 16 KiB per call).
 * apply_token: x' = R x (or R^T x when backward) for every q head and k head of one token; head h of a tensor with
 *     n_heads heads uses set h / (n_heads / n_gen). x pointers are at the first rotated dimension of head 0.
 *     Backward builds the transposed coefficients in the caller's scratch.
 */
#ifndef POSATTN_LIERE_KERNELS_H
#define POSATTN_LIERE_KERNELS_H

#include <stdint.h>

/* Largest block size. */
#define POSATTN_LIERE_MAX_BLOCK 64
/* Rows of the scaling-and-squaring matrices are padded to a multiple of every ISA's float lanes, at most this. */
#define POSATTN_LIERE_SCRATCH_PAD 16
/* The backward apply transposes coefficients in chunks of whole blocks, at most this many floats (one 64 x 64
 * block at most: b^2 <= 4096 always fits). */
#define POSATTN_LIERE_TRANSPOSE_FLOATS 4096

/* Floats of scratch a call with block b needs (posattn_liere_scratch_size): the 5 padded b x b matrices of the
 * scaling and squaring (b >= 4), or one transposition chunk, whichever is larger. */
static inline int64_t posattn_liere_scratch_floats(int64_t b) {
    const int64_t ld = (b + POSATTN_LIERE_SCRATCH_PAD - 1) / POSATTN_LIERE_SCRATCH_PAD * POSATTN_LIERE_SCRATCH_PAD;
    const int64_t squaring = b >= 4 ? 5 * b * ld : 0;
    return squaring > POSATTN_LIERE_TRANSPOSE_FLOATS ? squaring : POSATTN_LIERE_TRANSPOSE_FLOATS;
}

typedef struct posattn_liere_rot_token {
    const float *pos;  /* the token's n_axes coordinates */
    int64_t n_axes;    /* 1..4 */
    const float *gens; /* generator set 0, see above */
    int64_t n_gen;     /* >= 1 generator sets */
    int64_t block;     /* b in 2..64 */
    int64_t rot_dims;  /* multiple of b */
    float *rot;        /* the token's rotations: n_gen * b * rot_dims floats */
    float *scratch;    /* posattn_liere_scratch_floats(block) floats, used when b >= 4 */
} posattn_liere_rot_token;

typedef struct posattn_liere_apply_token {
    float *q;              /* head 0 of the token, at its first rotated dimension */
    int64_t q_heads;       /* >= 1, a multiple of n_gen */
    int64_t q_head_stride; /* elements between heads */
    float *k;              /* NULL, or as q */
    int64_t k_heads;
    int64_t k_head_stride;
    const float *rot; /* the token's rotations, layout above */
    int64_t n_gen;
    int64_t block;
    int64_t rot_dims;
    int backward;   /* apply R^T */
    float *scratch; /* posattn_liere_scratch_floats(block) floats, used when backward */
} posattn_liere_apply_token;

typedef void posattn_liere_rot_token_kernel(const posattn_liere_rot_token *token);
typedef void posattn_liere_apply_token_kernel(const posattn_liere_apply_token *token);

#endif /* POSATTN_LIERE_KERNELS_H */
