/*
 * ALiBi on a 2-D image: the tokens are the patches of an 8 x 8 grid, each at its (y, x) position. Two ways to use
 * the two axes:
 *  1. Euclidean ALiBi (CROMA): every head sees bias -m_h * sqrt(dy^2 + dx^2).
 *  2. Heads split between the axes: posattn_alibi_split_heads gives heads 0-1 the y axis and heads 2-3 the x axis
 *     (one-hot axis weights), so a "y head" ignores horizontal distance and an "x head" vertical distance. Each
 *     group gets the full range of ALiBi slopes (the slopes of a 2-head model, repeated).
 * Both run the fused bias-add-softmax (the bias is computed inside the kernel from the positions) and the external
 * bias, and the example checks what the numbers should show.
 */
#include <math.h>
#include <posattn.h>
#include <stdio.h>

enum { side = 8, tokens = side * side, heads = 4 };

static int fail(posattn_status status) {
    fprintf(stderr, "%s\n", posattn_status_string(status));
    return 1;
}

int main(void) {
    static float pos[tokens][2], scores[heads * tokens * tokens], probs[heads * tokens * tokens];
    static float bias[heads * tokens * tokens];
    for (int t = 0; t < tokens; ++t) pos[t][0] = (float)(t / side), pos[t][1] = (float)(t % side); /* (y, x) */
    for (int n = 0; n < heads * tokens * tokens; ++n) scores[n] = (float)((n * 37) % 11) - 5.0f; /* q·k */

    float slopes[heads];
    posattn_status status = posattn_alibi_slopes(heads, 8.0f, slopes);
    if (status != POSATTN_OK) return fail(status);

    /* 1. Euclidean ALiBi. */
    posattn_positions grid = {0};
    grid.q = &pos[0][0];
    grid.k = &pos[0][0];
    grid.axes = 2;
    grid.metric = POSATTN_METRIC_L2;
    status = posattn_alibi_bias(heads, tokens, tokens, slopes, &grid, bias, 0, 0, 0, heads * tokens);
    if (status != POSATTN_OK) return fail(status);
    /* Patch (0, 0) against patch (3, 4): distance 5. */
    const int far = 3 * side + 4;
    printf("L2: bias of head 0 between (0,0) and (3,4): %.4f (expected %.4f)\n", bias[far], -5.0 * slopes[0]);
    if (fabsf(bias[far] + 5.0f * slopes[0]) > 1e-6f) return 1;
    status = posattn_alibi_softmax(heads, tokens, tokens, scores, 0, 0, probs, 0, 0, 0.125f, slopes, &grid, NULL, 0,
                                   heads * tokens);
    if (status != POSATTN_OK) return fail(status);

    /* 2. Heads split between y and x, slopes repeated per group. */
    float weights[heads * 2], split_slopes[heads];
    status = posattn_alibi_split_heads(heads, 2, weights);
    if (status != POSATTN_OK) return fail(status);
    status = posattn_alibi_slopes(heads / 2, 8.0f, split_slopes);
    if (status != POSATTN_OK) return fail(status);
    for (int h = heads / 2; h < heads; ++h) split_slopes[h] = split_slopes[h - heads / 2];
    posattn_positions split = grid;
    split.metric = POSATTN_METRIC_L1;
    split.weights = weights;
    status = posattn_alibi_bias(heads, tokens, tokens, split_slopes, &split, bias, 0, 0, 0, heads * tokens);
    if (status != POSATTN_OK) return fail(status);
    for (int h = 0; h < heads; ++h) {
        const float *row = bias + (size_t)h * tokens * tokens; /* query (0, 0) */
        printf("split: head %d looks along %s: bias to (0,5) %.4f, to (5,0) %.4f\n", h, weights[h * 2] ? "y" : "x",
               row[5], row[5 * side]);
        /* A y head ignores the horizontal offset, an x head the vertical one. */
        if ((weights[h * 2] ? row[5] : row[5 * side]) != 0.0f) return 1;
    }
    status = posattn_alibi_softmax(heads, tokens, tokens, scores, 0, 0, probs, 0, 0, 0.125f, split_slopes, &split,
                                   NULL, 0, heads * tokens);
    if (status != POSATTN_OK) return fail(status);
    for (int r = 0; r < heads * tokens; ++r) {
        double sum = 0.0;
        for (int j = 0; j < tokens; ++j) sum += probs[r * tokens + j];
        if (fabs(sum - 1.0) > 1e-4) return 1;
    }
    printf("ISA %s: every row sums to 1\n", posattn_isa_name(posattn_active_isa()));
    return 0;
}
