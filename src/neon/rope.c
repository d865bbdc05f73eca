/*
 * NEON (AArch64 Advanced SIMD) rotary embeddings (SPEC 4): one token per call, every head of it.
 *
 * ISA: AArch64 Advanced SIMD, baseline on every AArch64 CPU; SLEEF's Sleef_sincosf4_u10advsimd.
 *
 * Tails: NEON has no masked loads. Reads of the frequency table and the factors go through a zero-padded
 * 4-float copy of the last partial vector; rotated data ends with a 2-float vector (interleaved: a whole pair) or
 * scalar pairs (half-split) computed with fmaf, which rounds as the vector FMA does. No byte outside the rotated
 * dimensions of a head is read or written.
 *
 * Angles: products and sums in float32 in axis order with separate multiplies and adds (no FMA), bit-identical to
 * the scalar reference. cos and sin: SLEEF's 1-ulp sincos, exact range reduction for every finite float.
 *
 * Sharing: with one table for every head, cos and sin of a block of pairs are computed once per token into stack
 * buffers, in the layout the rotation reads, then every head streams through them.
 *
 * Rotation: interleaved x' = x*c2 + swap(x)*s2 (c2 = [c0 c0 c1 c1], s2 = [-s0 s0 -s1 s1]); half-split
 * a' = a*c - b*s, b' = b*c + a*s; each one multiply and one FMA. Error: within 5 u |f| |(a, b)| of the exact
 * rotation of the float32 angle, inside posattn.h's 6 u.
 */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../kernels.h"

#define POSATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

/* Four floats from p, or the first `remaining` of them and zeros when fewer than four are left. */
POSATTN_ALWAYS_INLINE float32x4_t load_partial_f32x4(const float *p, int64_t remaining) {
    if (remaining >= 4) return vld1q_f32(p);
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(tmp, p, (size_t)remaining * sizeof(float));
    return vld1q_f32(tmp);
}

POSATTN_ALWAYS_INLINE float32x4_t angles_f32x4(const posattn_rope_token *t, const float *F, int64_t k,
                                               int64_t remaining) {
    float32x4_t theta_f32x4 = vmulq_n_f32(load_partial_f32x4(F + k, remaining), t->pos[0]);
    for (int64_t a = 1; a < t->n_axes; ++a) {
        float32x4_t term_f32x4 = vmulq_n_f32(load_partial_f32x4(F + a * t->n_pairs + k, remaining), t->pos[a]);
        theta_f32x4 = vaddq_f32(theta_f32x4, term_f32x4);
    }
    return theta_f32x4;
}

/* Half-split: c[j], s[j]; interleaved: c[2j] = c[2j+1] = c_j, s[2j] = -s_j, s[2j+1] = s_j (whole vectors). */
static void cos_sin_block(const posattn_rope_token *t, const float *F, int64_t k0, int64_t nb, float *c, float *s) {
    static const uint32_t even_sign[4] = {0x80000000u, 0u, 0x80000000u, 0u};
    const uint32x4_t even_sign_u32x4 = vld1q_u32(even_sign);
    const int scaled = t->pair_factors != NULL || t->attn_factor != 1.0f;
    for (int64_t j = 0; j < nb; j += 4) {
        const int64_t k = k0 + j;
        Sleef_float32x4_t_2 sc = Sleef_sincosf4_u10advsimd(angles_f32x4(t, F, k, nb - j));
        float32x4_t sin_f32x4 = sc.x, cos_f32x4 = sc.y;
        if (t->backward) sin_f32x4 = vnegq_f32(sin_f32x4);
        if (scaled) {
            float32x4_t f_f32x4 = vdupq_n_f32(t->attn_factor);
            if (t->pair_factors) f_f32x4 = vmulq_f32(f_f32x4, load_partial_f32x4(t->pair_factors + k, nb - j));
            cos_f32x4 = vmulq_f32(cos_f32x4, f_f32x4);
            sin_f32x4 = vmulq_f32(sin_f32x4, f_f32x4);
        }
        if (t->half_split) {
            vst1q_f32(c + j, cos_f32x4);
            vst1q_f32(s + j, sin_f32x4);
        } else {
            vst1q_f32(c + 2 * j, vzip1q_f32(cos_f32x4, cos_f32x4));
            vst1q_f32(c + 2 * j + 4, vzip2q_f32(cos_f32x4, cos_f32x4));
            uint32x4_t s_lo_u32x4 = vreinterpretq_u32_f32(vzip1q_f32(sin_f32x4, sin_f32x4));
            uint32x4_t s_hi_u32x4 = vreinterpretq_u32_f32(vzip2q_f32(sin_f32x4, sin_f32x4));
            vst1q_f32(s + 2 * j, vreinterpretq_f32_u32(veorq_u32(s_lo_u32x4, even_sign_u32x4)));
            vst1q_f32(s + 2 * j + 4, vreinterpretq_f32_u32(veorq_u32(s_hi_u32x4, even_sign_u32x4)));
        }
    }
}

/* n is even: whole vectors of two pairs, then at most one pair as a 2-float vector. */
static void rotate_interleaved(float *x, int64_t n, const float *c, const float *s) {
    int64_t e = 0;
    for (; e + 4 <= n; e += 4) {
        float32x4_t x_f32x4 = vld1q_f32(x + e);
        float32x4_t swapped_f32x4 = vrev64q_f32(x_f32x4);
        vst1q_f32(x + e, vfmaq_f32(vmulq_f32(swapped_f32x4, vld1q_f32(s + e)), x_f32x4, vld1q_f32(c + e)));
    }
    if (e < n) {
        float32x2_t x_f32x2 = vld1_f32(x + e);
        float32x2_t swapped_f32x2 = vrev64_f32(x_f32x2);
        vst1_f32(x + e, vfma_f32(vmul_f32(swapped_f32x2, vld1_f32(s + e)), x_f32x2, vld1_f32(c + e)));
    }
}

static void rotate_half_split(float *a, float *b, int64_t nb, const float *c, const float *s) {
    int64_t j = 0;
    for (; j + 4 <= nb; j += 4) {
        float32x4_t a_f32x4 = vld1q_f32(a + j), b_f32x4 = vld1q_f32(b + j);
        float32x4_t c_f32x4 = vld1q_f32(c + j), s_f32x4 = vld1q_f32(s + j);
        vst1q_f32(a + j, vfmaq_f32(vnegq_f32(vmulq_f32(b_f32x4, s_f32x4)), a_f32x4, c_f32x4));
        vst1q_f32(b + j, vfmaq_f32(vmulq_f32(a_f32x4, s_f32x4), b_f32x4, c_f32x4));
    }
    for (; j < nb; ++j) {
        const float av = a[j], bv = b[j];
        const float bs = bv * s[j], as = av * s[j];
        a[j] = fmaf(av, c[j], -bs);
        b[j] = fmaf(bv, c[j], as);
    }
}

void posattn_rope_token_f32_neon(const posattn_rope_token *t) {
    _Alignas(16) float c[2 * POSATTN_ROPE_BLOCK_PAIRS];
    _Alignas(16) float s[2 * POSATTN_ROPE_BLOCK_PAIRS];
    const int shared = t->freq_head_stride == 0;
    for (int64_t k0 = 0; k0 < t->n_pairs; k0 += POSATTN_ROPE_BLOCK_PAIRS) {
        const int64_t left = t->n_pairs - k0, nb = left < POSATTN_ROPE_BLOCK_PAIRS ? left : POSATTN_ROPE_BLOCK_PAIRS;
        for (int64_t h = 0; h < t->n_heads; ++h) {
            if (h == 0 || !shared) cos_sin_block(t, t->freqs + h * t->freq_head_stride, k0, nb, c, s);
            float *x = t->x + h * t->head_stride;
            if (t->half_split) {
                rotate_half_split(x + k0, x + t->n_pairs + k0, nb, c, s);
            } else {
                rotate_interleaved(x + 2 * k0, 2 * nb, c, s);
            }
        }
    }
}
