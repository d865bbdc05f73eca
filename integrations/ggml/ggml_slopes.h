/*
 * ggml's ALiBi slope for head h, by ggml's own chain of powf calls (not the exact 2^(-8(h+1)/H)): the adapter passes
 * these to posattn so that patched and stock outputs differ only by the softmax itself, and the test's float64
 * reference uses the same slopes. Shared by adapter.c (patched build) and ops-driver.c (both builds).
 */
#ifndef POSATTN_GGML_SLOPES_H
#define POSATTN_GGML_SLOPES_H

#include <math.h>
#include <stdint.h>

static inline float ggml_alibi_slope(float max_bias, uint32_t n_head, uint32_t h)
{
    if (max_bias <= 0.0f) {
        return 1.0f;
    }
    const uint32_t n_head_log2 = 1u << (uint32_t)floor(log2(n_head));
    const float m0 = powf(2.0f, -(max_bias) / n_head_log2);
    const float m1 = powf(2.0f, -(max_bias / 2.0f) / n_head_log2);
    return h < n_head_log2 ? powf(m0, h + 1) : powf(m1, 2 * (h - n_head_log2) + 1);
}

#endif /* POSATTN_GGML_SLOPES_H */
