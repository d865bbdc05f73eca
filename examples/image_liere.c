/*
 * LieRE on a 2-D image: 8 x 8 patches of an image, 4 heads of 32 dims, each head cut into 4 blocks of b = 8 dims
 * rotated by R(y, x) = exp(y G_y + x G_x), with learned skew-symmetric generators G_y, G_x per block (one set
 * shared by all heads here). The rotations are computed once per patch and applied to q and k together; the
 * attention scores q_i . k_j then depend on both positions through R(p_i)^T R(p_j).
 */
#include <math.h>
#include <posattn.h>
#include <stdio.h>
#include <stdlib.h>

enum { side = 8, n_tok = side * side, heads = 4, head_dim = 32, block = 8, axes = 2 };
enum { tri = block * (block - 1) / 2, n_blocks = head_dim / block };

int main(void) {
    /* Positions: (row, column) of each patch, in patch units. */
    float pos[n_tok * axes];
    for (int t = 0; t < n_tok; ++t) pos[t * axes] = (float)(t / side), pos[t * axes + 1] = (float)(t % side);

    /* Generators, as a trained model would hold them: for each axis and block, the 28 strictly upper-triangular
     * entries of an 8 x 8 skew-symmetric matrix, at gens[(a * n_blocks + j) * 28 + e] (see posattn.h). */
    static float gens[axes * n_blocks * tri];
    unsigned seed = 12345u;
    for (int i = 0; i < axes * n_blocks * tri; ++i) {
        seed = seed * 1664525u + 1013904223u;
        gens[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.3f;
    }

    /* Step 1: rotations, once per patch (n_gen_heads = 1: shared by every head, and by q and k). */
    int64_t per_token = 0;
    posattn_status st = posattn_liere_rotation_size(1, block, head_dim, &per_token);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;
    float *rot = malloc(sizeof(float) * (size_t)(n_tok * per_token));
    /* The scaling and squaring of b >= 4 works in a scratch of the caller's (the library keeps to 16 KiB of stack
     * and allocates nothing): one per thread, reused across calls. */
    int64_t scratch_floats = 0;
    st = posattn_liere_scratch_size(block, &scratch_floats);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;
    float *scratch = malloc(sizeof(float) * (size_t)scratch_floats);
    if (!rot || !scratch) return fprintf(stderr, "out of memory\n"), 1;
    st = posattn_liere_rotations(n_tok, axes, pos, 0, 1, block, head_dim, gens, rot, 0, scratch, scratch_floats, NULL,
                                 0, n_tok);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;

    /* q and k from your projections; here every patch has the same content, so any difference in the scores
     * below comes from the positions alone. */
    static float q[n_tok * heads * head_dim], k[n_tok * heads * head_dim];
    for (int i = 0; i < n_tok * heads * head_dim; ++i) q[i] = k[i] = (float)((i % head_dim) % 5) * 0.25f - 0.5f;

    /* Step 2: rotate q and k in place (every patch, every head; the rotations are read once for both). Forward
     * needs no scratch; the backward pass (POSATTN_LIERE_BACKWARD) would take the same one. */
    st = posattn_liere_apply(n_tok, head_dim, 0, head_dim, block, q, heads, 0, 0, k, heads, 0, 0, rot, 0, 1, NULL, 0,
                             NULL, 0, n_tok);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;

    printf("ISA %s\n", posattn_isa_name(posattn_active_isa()));
    printf("head 0 scores q(3,3) . k(y,x), same content everywhere, so the pattern is LieRE's:\n");
    const int query = 3 * side + 3;
    for (int y = 0; y < side; ++y) {
        for (int x = 0; x < side; ++x) {
            const float *qv = q + query * heads * head_dim, *kv = k + (y * side + x) * heads * head_dim;
            double dot = 0.0;
            for (int d = 0; d < head_dim; ++d) dot += (double)qv[d] * kv[d];
            printf("%7.3f", dot);
        }
        printf("\n");
    }
    /* Rotations keep norms: |q| is the same for every patch. */
    double n0 = 0.0, n1 = 0.0;
    const float *last = q + (n_tok - 1) * heads * head_dim;
    for (int d = 0; d < head_dim; ++d) n0 += (double)q[d] * q[d], n1 += (double)last[d] * last[d];
    printf("|q| at (0,0): %.6f, at (7,7): %.6f\n", sqrt(n0), sqrt(n1));
    free(rot), free(scratch);
    return fabs(sqrt(n0) - sqrt(n1)) < 1e-4 ? 0 : 1;
}
