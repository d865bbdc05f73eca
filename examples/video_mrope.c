/*
 * Multi-section rotary embeddings (Qwen2-VL M-RoPE) for video tokens: every token of a clip of 3 frames of 4 x 4
 * patches has a position (t, y, x), and the 64 rotated pairs of a head_dim-128 head are split into sections of
 * [16, 24, 24] pairs that follow t, y and x. q and k are rotated in place, then the example checks the property
 * that makes this useful: the score q_i . k_j depends only on the offset (dt, dy, dx) between the tokens, so the
 * same offset at two places of the clip gives the same score.
 */
#include <math.h>
#include <posattn.h>
#include <stdio.h>

enum { FRAMES = 3, ROWS = 4, COLS = 4, TOKENS = FRAMES * ROWS * COLS, HEADS = 2, HEAD_DIM = 128, AXES = 3 };

static float q[TOKENS][HEADS][HEAD_DIM], k[TOKENS][HEADS][HEAD_DIM];

static int token_at(int t, int y, int x) { return (t * ROWS + y) * COLS + x; }

static double score(int i, int j, int h) {
    double s = 0.0;
    for (int d = 0; d < HEAD_DIM; ++d) s += (double)q[i][h][d] * k[j][h][d];
    return s;
}

int main(void) {
    /* The same content everywhere, so that only the positions distinguish the tokens. */
    for (int i = 0; i < TOKENS; ++i) {
        for (int h = 0; h < HEADS; ++h) {
            for (int d = 0; d < HEAD_DIM; ++d) {
                q[i][h][d] = (float)sin(0.37 * d + h), k[i][h][d] = (float)cos(0.21 * d - h);
            }
        }
    }
    float pos[TOKENS][AXES]; /* (t, y, x) of every token, as floats */
    for (int t = 0; t < FRAMES; ++t) {
        for (int y = 0; y < ROWS; ++y) {
            for (int x = 0; x < COLS; ++x) {
                float *p = pos[token_at(t, y, x)];
                p[0] = (float)t, p[1] = (float)y, p[2] = (float)x;
            }
        }
    }

    /* Qwen2-VL: half-split (rotate_half) layout, base 1e6, sections (t, y, x) = [16, 24, 24] pairs. */
    const int64_t sections[AXES] = {16, 24, 24};
    float freqs[AXES * HEAD_DIM / 2];
    posattn_status st = posattn_rope_freqs_sections(HEAD_DIM, 1e6f, AXES, sections, freqs);
    if (st != POSATTN_OK) return fprintf(stderr, "freqs: %s\n", posattn_status_string(st)), 1;

    /* q and k: same positions, same table; every token, every head, all 128 dimensions rotated. */
    st = posattn_rope_apply(TOKENS, HEADS, HEAD_DIM, &q[0][0][0], 0, 0, 0, HEAD_DIM, POSATTN_ROPE_HALF_SPLIT, AXES,
                            &pos[0][0], 0, freqs, 0 /* shared by all heads */, NULL, 0, TOKENS);
    if (st == POSATTN_OK) {
        st = posattn_rope_apply(TOKENS, HEADS, HEAD_DIM, &k[0][0][0], 0, 0, 0, HEAD_DIM, POSATTN_ROPE_HALF_SPLIT, AXES,
                                &pos[0][0], 0, freqs, 0, NULL, 0, TOKENS);
    }
    if (st != POSATTN_OK) return fprintf(stderr, "apply: %s\n", posattn_status_string(st)), 1;

    printf("ISA %s\n", posattn_isa_name(posattn_active_isa()));
    /* Offset (dt, dy, dx) = (1, 2, -1) seen from two different query tokens. */
    const int a_q = token_at(1, 2, 1), a_k = token_at(0, 0, 2);
    const int b_q = token_at(2, 3, 2), b_k = token_at(1, 1, 3);
    int failures = 0;
    for (int h = 0; h < HEADS; ++h) {
        const double sa = score(a_q, a_k, h), sb = score(b_q, b_k, h), other = score(a_q, token_at(0, 0, 0), h);
        printf("head %d: score at offset (1,2,-1): %.6f and %.6f; at offset (1,2,1): %.6f\n", h, sa, sb, other);
        if (fabs(sa - sb) > 1e-4 * (1.0 + fabs(sa))) ++failures;
    }
    return failures ? 1 : 0;
}
