/*
 * Roofline: SLEEF's 1-ulp vector expf for AVX2 (Sleef_expf8_u10avx2), compiled with AVX2+FMA flags only here;
 * called only when posattn_isa_supported(POSATTN_ISA_AVX2). Tail: the last n % 8 elements go through a stack
 * copy, so nothing is read or written past the caller's buffers.
 */
#include <immintrin.h>
#include <sleef.h>
#include <string.h>

#include "peers.h"

void pab_sleef_expf_avx2(const float *in, float *out, size_t n, float scale) {
    const __m256 scale_f32x8 = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x_f32x8 = _mm256_mul_ps(_mm256_loadu_ps(in + i), scale_f32x8);
        _mm256_storeu_ps(out + i, Sleef_expf8_u10avx2(x_f32x8));
    }
    if (i < n) {
        float tail[8] = {0};
        memcpy(tail, in + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(tail, Sleef_expf8_u10avx2(_mm256_mul_ps(_mm256_loadu_ps(tail), scale_f32x8)));
        memcpy(out + i, tail, (n - i) * sizeof(float));
    }
}
