/*
 * Roofline: SLEEF's 1-ulp vector expf for AArch64 Advanced SIMD (Sleef_expf4_u10advsimd); NEON is baseline on
 * AArch64, so no extra flags. Called only when posattn_isa_supported(POSATTN_ISA_NEON). Tail: a stack copy.
 */
#include <arm_neon.h>
#include <sleef.h>
#include <string.h>

#include "peers.h"

void pab_sleef_expf_advsimd(const float *in, float *out, size_t n, float scale) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t x_f32x4 = vmulq_n_f32(vld1q_f32(in + i), scale);
        vst1q_f32(out + i, Sleef_expf4_u10advsimd(x_f32x4));
    }
    if (i < n) {
        float tail[4] = {0};
        memcpy(tail, in + i, (n - i) * sizeof(float));
        vst1q_f32(tail, Sleef_expf4_u10advsimd(vmulq_n_f32(vld1q_f32(tail), scale)));
        memcpy(out + i, tail, (n - i) * sizeof(float));
    }
}
