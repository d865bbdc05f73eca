/*
 * Roofline: SLEEF's 1-ulp vector expf for AVX-512 (Sleef_expf16_u10avx512f), compiled with AVX-512 flags only
 * here; called only when posattn_isa_supported(POSATTN_ISA_AVX512). SLEEF 3.5 has no inline headers, so every
 * vector is an out-of-line call: this is what a one-pass kernel built on SLEEF could reach at best.
 * Tail: a masked load and store of the last n % 16 elements.
 */
#include <immintrin.h>
#include <sleef.h>

#include "peers.h"

void pab_sleef_expf_avx512(const float *in, float *out, size_t n, float scale) {
    const __m512 scale_f32x16 = _mm512_set1_ps(scale);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x_f32x16 = _mm512_mul_ps(_mm512_loadu_ps(in + i), scale_f32x16);
        _mm512_storeu_ps(out + i, Sleef_expf16_u10avx512f(x_f32x16));
    }
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
        __m512 x_f32x16 = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, in + i), scale_f32x16);
        _mm512_mask_storeu_ps(out + i, tail, Sleef_expf16_u10avx512f(x_f32x16));
    }
}
