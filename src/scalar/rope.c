/*
 * Scalar reference for the rotary embeddings (SPEC 4): portable C11, no intrinsics.
 *
 * Its own plain loops, not src/rope_generic.h (the SIMD driver): they read as the formulas of src/rope_kernels.h
 * (pair k rotated by c[k], s[k], no duplicated tables), and the differential tests and fuzzing then check the
 * generic driver's blocking, head loop and table sharing against code that does not share them.
 *
 * Angles: theta_k = pos[0]*F[0][k] (+ pos[a]*F[a][k] in axis order), every product and sum rounded to float32 as
 * written (the library is compiled with -ffp-contract=off), which is what every SIMD path reproduces bit for bit.
 *
 * cos and sin: libm's cos and sin in float64 of the float32 angle, rounded once to float32. The float64 functions
 * reduce the argument exactly (glibc uses Payne-Hanek for large arguments), so the results are within 0.5 ulp
 * (plus 2^-29 relative) of the exact cos and sin of the float32 angle, for every finite angle.
 *
 * Rotation: x'a = a*c - b*s and x'b = a*s + b*c with each product and the sum rounded (no FMA). With the cos/sin
 * error above the result is within 4 u |f| |(a, b)| of the exact rotation, inside the 6 u of posattn.h.
 */
#include <math.h>

#include "../kernels.h"

/* cos and sin of block pairs [k0, k0 + nb) for the table F, with the factor and the direction applied. */
static void cos_sin_block(const posattn_rope_token *t, const float *F, int64_t k0, int64_t nb, float *c, float *s) {
    for (int64_t j = 0; j < nb; ++j) {
        const int64_t k = k0 + j;
        float theta = t->pos[0] * F[k];
        for (int64_t a = 1; a < t->n_axes; ++a) theta += t->pos[a] * F[a * t->n_pairs + k];
        float cv = (float)cos((double)theta), sv = (float)sin((double)theta);
        if (t->backward) sv = -sv;
        if (t->pair_factors) {
            const float f = t->attn_factor * t->pair_factors[k];
            cv *= f, sv *= f;
        } else if (t->attn_factor != 1.0f) {
            cv *= t->attn_factor, sv *= t->attn_factor;
        }
        c[j] = cv, s[j] = sv;
    }
}

static void rotate_block(const posattn_rope_token *t, float *x, int64_t k0, int64_t nb, const float *c,
                         const float *s) {
    const int64_t step_a = t->half_split ? 1 : 2, offset_b = t->half_split ? t->n_pairs : 1;
    for (int64_t j = 0; j < nb; ++j) {
        float *pa = x + (k0 + j) * step_a, *pb = pa + offset_b;
        const float a = *pa, b = *pb;
        *pa = a * c[j] - b * s[j];
        *pb = a * s[j] + b * c[j];
    }
}

void posattn_rope_token_f32_scalar(const posattn_rope_token *t) {
    float c[POSATTN_ROPE_BLOCK_PAIRS], s[POSATTN_ROPE_BLOCK_PAIRS];
    const int shared = t->freq_head_stride == 0;
    for (int64_t k0 = 0; k0 < t->n_pairs; k0 += POSATTN_ROPE_BLOCK_PAIRS) {
        const int64_t left = t->n_pairs - k0, nb = left < POSATTN_ROPE_BLOCK_PAIRS ? left : POSATTN_ROPE_BLOCK_PAIRS;
        for (int64_t h = 0; h < t->n_heads; ++h) {
            if (h == 0 || !shared) cos_sin_block(t, t->freqs + h * t->freq_head_stride, k0, nb, c, s);
            rotate_block(t, t->x + h * t->head_stride, k0, nb, c, s);
        }
    }
}
