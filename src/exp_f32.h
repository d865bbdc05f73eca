/*
 * Constants of the inline float32 exponential of the SIMD softmax kernels. exp(x) = 2^n * exp(r),
 * n = round(x * log2(e)), r = x - n*ln2 in two steps (Cody-Waite: LN2_HI has few mantissa bits so n*LN2_HI is
 * exact for |n| <= 2^8), then exp(r) = 1 + r + r^2 * P(r) on |r| <= ln2/2 with the degree-5 minimax P of Cephes'
 * expf. With FMA the relative error is below 2 ulp on [-87, 0], the only range the softmax uses (x - max <= 0,
 * results below e^-87 flushed to 0 by POSATTN_EXP_FLUSH_BELOW). n is rounded by adding POSATTN_EXP_SHIFTER =
 * 1.5 * 2^23 + 127 to x * log2(e) in one FMA: the sum's ulp is 1, so it rounds to the nearest integer, and its low
 * mantissa bits then hold n + 127, the biased exponent of 2^n. The evaluation is written once, over each ISA's
 * vector layer, in alibi_generic_softmax.h.
 */
#ifndef POSATTN_EXP_F32_H
#define POSATTN_EXP_F32_H

#define POSATTN_EXP_LOG2E 1.44269504088896341f
#define POSATTN_EXP_SHIFTER 12583039.0f /* 1.5 * 2^23 + 127 */
#define POSATTN_EXP_LN2_HI 0.693359375f
#define POSATTN_EXP_LN2_LO (-2.12194440e-4f)
#define POSATTN_EXP_P0 1.9875691500e-4f
#define POSATTN_EXP_P1 1.3981999507e-3f
#define POSATTN_EXP_P2 8.3334519073e-3f
#define POSATTN_EXP_P3 4.1665795894e-2f
#define POSATTN_EXP_P4 1.6666665459e-1f
#define POSATTN_EXP_P5 5.0000001201e-1f

#endif /* POSATTN_EXP_F32_H */
