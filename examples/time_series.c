/*
 * ALiBi over irregularly sampled time stamps: one decode step of 4 heads attending to 6 past observations whose
 * times are uneven (in seconds). The bias is -m_h * |t_query - t_key|, computed inside the softmax kernel from
 * the time stamps; a causal mask is not needed because the keys are all in the past.
 */
#include <posattn.h>
#include <stdio.h>

int main(void) {
    enum { heads = 4, nq = 1, nk = 6 };
    const float key_times[nk] = {0.0f, 0.4f, 2.5f, 2.6f, 7.1f, 9.0f};
    const float query_time[nq] = {9.5f};
    float scores[heads * nq * nk]; /* q·k for each head, from your attention */
    for (int n = 0; n < heads * nq * nk; ++n) scores[n] = (float)((n * 7) % 5) - 2.0f;

    float slopes[heads];
    posattn_status status = posattn_alibi_slopes(heads, 8.0f, slopes);
    if (status != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(status)), 1;

    posattn_positions times = {0};
    times.q = query_time;
    times.k = key_times;

    float probs[heads * nq * nk];
    status = posattn_alibi_softmax(heads, nq, nk, scores, 0, 0, probs, 0, 0, 0.125f, slopes, &times,
                                   NULL /* no mask, sinks, softcap */, 0, heads * nq /* every row */);
    if (status != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(status)), 1;

    printf("ISA %s\n", posattn_isa_name(posattn_active_isa()));
    for (int h = 0; h < heads; ++h) {
        double sum = 0.0;
        printf("head %d (slope %.4f):", h, slopes[h]);
        for (int j = 0; j < nk; ++j) printf(" %.4f", probs[h * nk + j]), sum += probs[h * nk + j];
        printf("   sum %.6f\n", sum);
        if (sum < 0.9999 || sum > 1.0001) return 1;
    }
    return 0;
}
