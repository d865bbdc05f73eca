/*
 * Roofline: the FMA peak of one core with AArch64 AdvSIMD. 16 independent chains of fmla in q registers (named
 * variables, enough for a 4-cycle latency on up to four pipes), nothing loaded or stored inside the loop. Each FMA
 * counts 2 flops per lane.
 */
#include <arm_neon.h>
#include <stdint.h>

double pab_fma_chains_neon(int64_t iters, float *sink) {
    const float32x4_t mul = vdupq_n_f32(0.999999f), addend = vdupq_n_f32(1e-3f);
    float32x4_t a0 = vdupq_n_f32(0.0f);
    float32x4_t a1 = vdupq_n_f32(1.0f);
    float32x4_t a2 = vdupq_n_f32(2.0f);
    float32x4_t a3 = vdupq_n_f32(3.0f);
    float32x4_t a4 = vdupq_n_f32(4.0f);
    float32x4_t a5 = vdupq_n_f32(5.0f);
    float32x4_t a6 = vdupq_n_f32(6.0f);
    float32x4_t a7 = vdupq_n_f32(7.0f);
    float32x4_t a8 = vdupq_n_f32(8.0f);
    float32x4_t a9 = vdupq_n_f32(9.0f);
    float32x4_t a10 = vdupq_n_f32(10.0f);
    float32x4_t a11 = vdupq_n_f32(11.0f);
    float32x4_t a12 = vdupq_n_f32(12.0f);
    float32x4_t a13 = vdupq_n_f32(13.0f);
    float32x4_t a14 = vdupq_n_f32(14.0f);
    float32x4_t a15 = vdupq_n_f32(15.0f);
    for (int64_t it = 0; it < iters; ++it) {
        a0 = vfmaq_f32(addend, a0, mul);
        a1 = vfmaq_f32(addend, a1, mul);
        a2 = vfmaq_f32(addend, a2, mul);
        a3 = vfmaq_f32(addend, a3, mul);
        a4 = vfmaq_f32(addend, a4, mul);
        a5 = vfmaq_f32(addend, a5, mul);
        a6 = vfmaq_f32(addend, a6, mul);
        a7 = vfmaq_f32(addend, a7, mul);
        a8 = vfmaq_f32(addend, a8, mul);
        a9 = vfmaq_f32(addend, a9, mul);
        a10 = vfmaq_f32(addend, a10, mul);
        a11 = vfmaq_f32(addend, a11, mul);
        a12 = vfmaq_f32(addend, a12, mul);
        a13 = vfmaq_f32(addend, a13, mul);
        a14 = vfmaq_f32(addend, a14, mul);
        a15 = vfmaq_f32(addend, a15, mul);
    }
    a0 = vaddq_f32(a0, a1);
    a0 = vaddq_f32(a0, a2);
    a0 = vaddq_f32(a0, a3);
    a0 = vaddq_f32(a0, a4);
    a0 = vaddq_f32(a0, a5);
    a0 = vaddq_f32(a0, a6);
    a0 = vaddq_f32(a0, a7);
    a0 = vaddq_f32(a0, a8);
    a0 = vaddq_f32(a0, a9);
    a0 = vaddq_f32(a0, a10);
    a0 = vaddq_f32(a0, a11);
    a0 = vaddq_f32(a0, a12);
    a0 = vaddq_f32(a0, a13);
    a0 = vaddq_f32(a0, a14);
    a0 = vaddq_f32(a0, a15);
    *sink = vaddvq_f32(a0);
    return (double)iters * 16.0 * 4.0 * 2.0;
}
