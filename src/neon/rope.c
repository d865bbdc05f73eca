/*
 * NEON (AArch64 Advanced SIMD) rotary embeddings (SPEC 4): one token per call, every head of it. The driver
 * (blocks, angles, factors, heads, shared tables) is src/rope_generic.h; this file gives it 4-lane vectors and the
 * NEON rotations.
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

#define ROPE_ISA neon
#define ROPE_W 4
#define ROPE_ALIGN 16

typedef float32x4_t vf;
typedef int64_t rope_tail_t; /* no masks: how many lanes are left */

static inline rope_tail_t rope_tail(int64_t remaining) { return remaining; }

/* Four floats from p, or the first `remaining` of them and zeros when fewer than four are left. */
POSATTN_ALWAYS_INLINE vf vf_load_tail(const float *p, rope_tail_t remaining) {
    if (remaining >= 4) return vld1q_f32(p);
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(tmp, p, (size_t)remaining * sizeof(float));
    return vld1q_f32(tmp);
}

POSATTN_ALWAYS_INLINE vf vf_set1(float x) { return vdupq_n_f32(x); }
POSATTN_ALWAYS_INLINE vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
POSATTN_ALWAYS_INLINE vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
POSATTN_ALWAYS_INLINE vf vf_neg(vf v) { return vnegq_f32(v); }
POSATTN_ALWAYS_INLINE void vf_store_aligned(float *p, vf v) { vst1q_f32(p, v); }

POSATTN_ALWAYS_INLINE void rope_sincos(vf theta_f32x4, vf *sin_f32x4, vf *cos_f32x4) {
    Sleef_float32x4_t_2 sc = Sleef_sincosf4_u10advsimd(theta_f32x4);
    *sin_f32x4 = sc.x, *cos_f32x4 = sc.y;
}

/* Pairs 0, 1 into c[0..3], pairs 2, 3 into c[4..7]; the sign of sin folded into even lanes. */
POSATTN_ALWAYS_INLINE void rope_store_interleaved(float *c, float *s, vf cos_f32x4, vf sin_f32x4) {
    static const uint32_t even_sign[4] = {0x80000000u, 0u, 0x80000000u, 0u};
    const uint32x4_t even_sign_u32x4 = vld1q_u32(even_sign);
    vst1q_f32(c, vzip1q_f32(cos_f32x4, cos_f32x4));
    vst1q_f32(c + 4, vzip2q_f32(cos_f32x4, cos_f32x4));
    uint32x4_t s_lo_u32x4 = vreinterpretq_u32_f32(vzip1q_f32(sin_f32x4, sin_f32x4));
    uint32x4_t s_hi_u32x4 = vreinterpretq_u32_f32(vzip2q_f32(sin_f32x4, sin_f32x4));
    vst1q_f32(s, vreinterpretq_f32_u32(veorq_u32(s_lo_u32x4, even_sign_u32x4)));
    vst1q_f32(s + 4, vreinterpretq_f32_u32(veorq_u32(s_hi_u32x4, even_sign_u32x4)));
}

/* n is even: whole vectors of two pairs, then at most one pair as a 2-float vector. */
static void rope_rotate_interleaved(float *x, int64_t n, const float *c, const float *s) {
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

static void rope_rotate_half_split(float *a, float *b, int64_t nb, const float *c, const float *s) {
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

#include "../rope_generic.h"
