/*
 * AVX-512 rotary embeddings (SPEC 4): one token per call, every head of it.
 *
 * ISA: AVX-512 F (arithmetic, masked loads and stores, permutes); SLEEF's Sleef_sincosf16_u10avx512f. The caller
 * has checked the CPU.
 *
 * Tails: pair counts that are not a multiple of 16 end with one masked vector (_mm512_maskz_loadu_ps /
 * _mm512_mask_storeu_ps), so no byte outside the rotated dimensions of a head is read or written; the dimensions
 * outside [rot_offset, rot_offset + D_rot) are never touched.
 *
 * Angles: products and sums in float32 in axis order with separate multiplies and adds (no FMA), bit-identical to
 * the scalar reference. cos and sin: SLEEF's 1-ulp sincos, whose range reduction is exact for every finite float
 * (Payne-Hanek beyond the Cody-Waite range), so angles of 1e6 radians and far beyond keep their accuracy: an inline
 * polynomial with a short reduction would lose it there.
 *
 * Sharing: with one table for every head, cos and sin of a block of up to POSATTN_ROPE_BLOCK_PAIRS pairs are
 * computed once per token into stack buffers, already in the layout the rotation reads (duplicated per pair, with
 * the sign of sin folded in, for the interleaved layout), then every head streams through the same buffers.
 *
 * Rotation: interleaved x' = x*c2 + swap(x)*s2 (one multiply, one FMA, c2 = [c0 c0 c1 c1 ..], s2 = [-s0 s0 ..]);
 * half-split a' = a*c - b*s and b' = b*c + a*s, each one multiply and one FMA. Error: within 5 u |f| |(a, b)| of
 * the exact rotation of the float32 angle (1 ulp sin/cos, 1 u factor, 2 u products and sum), inside posattn.h's 6 u.
 */
#include <immintrin.h>
#include <sleef.h>
#include <stdint.h>

#include "../kernels.h"

#define POSATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

static inline __mmask16 tail_mask(int64_t remaining) {
    return remaining >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << remaining) - 1u);
}

/* theta for pairs k..k+15 (inactive lanes 0). */
POSATTN_ALWAYS_INLINE __m512 angles_f32x16(const posattn_rope_token *t, const float *F, int64_t k, __mmask16 m) {
    __m512 theta_f32x16 = _mm512_mul_ps(_mm512_set1_ps(t->pos[0]), _mm512_maskz_loadu_ps(m, F + k));
    for (int64_t a = 1; a < t->n_axes; ++a) {
        __m512 term_f32x16 = _mm512_mul_ps(_mm512_set1_ps(t->pos[a]), _mm512_maskz_loadu_ps(m, F + a * t->n_pairs + k));
        theta_f32x16 = _mm512_add_ps(theta_f32x16, term_f32x16);
    }
    return theta_f32x16;
}

/* cos and sin of block pairs [k0, k0 + nb), factor and direction applied. Half-split: c[j], s[j]. Interleaved:
 * c[2j] = c[2j+1] = c_j, s[2j] = -s_j, s[2j+1] = s_j. Buffers hold POSATTN_ROPE_BLOCK_PAIRS (x2) floats and are
 * written in whole vectors. */
static void cos_sin_block(const posattn_rope_token *t, const float *F, int64_t k0, int64_t nb, float *c, float *s) {
    const __m512i lo_i32x16 = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi_i32x16 = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m512i even_sign_i32x16 =
        _mm512_setr_epi32((int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0,
                          (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0);
    const __m512i sign_i32x16 = _mm512_set1_epi32((int)0x80000000u);
    const __m512 attn_f32x16 = _mm512_set1_ps(t->attn_factor);
    const int scaled = t->pair_factors != NULL || t->attn_factor != 1.0f;
    for (int64_t j = 0; j < nb; j += 16) {
        const int64_t k = k0 + j;
        const __mmask16 m = tail_mask(nb - j);
        Sleef___m512_2 sc = Sleef_sincosf16_u10avx512f(angles_f32x16(t, F, k, m));
        __m512 sin_f32x16 = sc.x, cos_f32x16 = sc.y;
        if (t->backward)
            sin_f32x16 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sin_f32x16), sign_i32x16));
        if (scaled) {
            __m512 f_f32x16 = t->pair_factors
                                  ? _mm512_mul_ps(attn_f32x16, _mm512_maskz_loadu_ps(m, t->pair_factors + k))
                                  : attn_f32x16;
            cos_f32x16 = _mm512_mul_ps(cos_f32x16, f_f32x16);
            sin_f32x16 = _mm512_mul_ps(sin_f32x16, f_f32x16);
        }
        if (t->half_split) {
            _mm512_store_ps(c + j, cos_f32x16);
            _mm512_store_ps(s + j, sin_f32x16);
        } else {
            __m512i s_lo_i32x16 = _mm512_castps_si512(_mm512_permutexvar_ps(lo_i32x16, sin_f32x16));
            __m512i s_hi_i32x16 = _mm512_castps_si512(_mm512_permutexvar_ps(hi_i32x16, sin_f32x16));
            _mm512_store_ps(c + 2 * j, _mm512_permutexvar_ps(lo_i32x16, cos_f32x16));
            _mm512_store_ps(c + 2 * j + 16, _mm512_permutexvar_ps(hi_i32x16, cos_f32x16));
            _mm512_store_ps(s + 2 * j, _mm512_castsi512_ps(_mm512_xor_si512(s_lo_i32x16, even_sign_i32x16)));
            _mm512_store_ps(s + 2 * j + 16, _mm512_castsi512_ps(_mm512_xor_si512(s_hi_i32x16, even_sign_i32x16)));
        }
    }
}

static void rotate_interleaved(float *x, int64_t n, const float *c, const float *s) {
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        __m512 x_f32x16 = _mm512_loadu_ps(x + e);
        __m512 swapped_f32x16 = _mm512_permute_ps(x_f32x16, 0xB1);
        __m512 r_f32x16 =
            _mm512_fmadd_ps(x_f32x16, _mm512_load_ps(c + e), _mm512_mul_ps(swapped_f32x16, _mm512_load_ps(s + e)));
        _mm512_storeu_ps(x + e, r_f32x16);
    }
    if (e < n) {
        const __mmask16 m = tail_mask(n - e);
        __m512 x_f32x16 = _mm512_maskz_loadu_ps(m, x + e);
        __m512 swapped_f32x16 = _mm512_permute_ps(x_f32x16, 0xB1);
        __m512 r_f32x16 =
            _mm512_fmadd_ps(x_f32x16, _mm512_load_ps(c + e), _mm512_mul_ps(swapped_f32x16, _mm512_load_ps(s + e)));
        _mm512_mask_storeu_ps(x + e, m, r_f32x16);
    }
}

POSATTN_ALWAYS_INLINE void rotate_half_vec(float *a, float *b, const float *c, const float *s, __mmask16 m) {
    __m512 a_f32x16 = _mm512_maskz_loadu_ps(m, a), b_f32x16 = _mm512_maskz_loadu_ps(m, b);
    __m512 c_f32x16 = _mm512_load_ps(c), s_f32x16 = _mm512_load_ps(s);
    __m512 a_out_f32x16 = _mm512_fmsub_ps(a_f32x16, c_f32x16, _mm512_mul_ps(b_f32x16, s_f32x16));
    __m512 b_out_f32x16 = _mm512_fmadd_ps(b_f32x16, c_f32x16, _mm512_mul_ps(a_f32x16, s_f32x16));
    _mm512_mask_storeu_ps(a, m, a_out_f32x16);
    _mm512_mask_storeu_ps(b, m, b_out_f32x16);
}

/* The same in 256-bit halves (AVX-512 VL masks), for heads whose halves sit at different offsets in a cache line. */
POSATTN_ALWAYS_INLINE void rotate_half_vec8(float *a, float *b, const float *c, const float *s, __mmask8 m) {
    __m256 a_f32x8 = _mm256_maskz_loadu_ps(m, a), b_f32x8 = _mm256_maskz_loadu_ps(m, b);
    __m256 c_f32x8 = _mm256_load_ps(c), s_f32x8 = _mm256_load_ps(s);
    _mm256_mask_storeu_ps(a, m, _mm256_fmsub_ps(a_f32x8, c_f32x8, _mm256_mul_ps(b_f32x8, s_f32x8)));
    _mm256_mask_storeu_ps(b, m, _mm256_fmadd_ps(b_f32x8, c_f32x8, _mm256_mul_ps(a_f32x8, s_f32x8)));
}

/* When a and b differ in their offset within a 64-byte line (D_rot/2 not a multiple of 16, e.g. head_dim 80),
 * 512-bit accesses to one of them would all split cache lines while 256-bit ones split none or half as many, so
 * that case runs in 256-bit halves (measured: 25% faster on the 80-dim vision shape). Same results either way. */
static void rotate_half_split(float *a, float *b, int64_t nb, const float *c, const float *s) {
    int64_t j = 0;
    if ((((uintptr_t)a ^ (uintptr_t)b) & 63u) == 0) {
        for (; j + 16 <= nb; j += 16) rotate_half_vec(a + j, b + j, c + j, s + j, (__mmask16)0xffff);
        if (j < nb) rotate_half_vec(a + j, b + j, c + j, s + j, tail_mask(nb - j));
    } else {
        for (; j + 8 <= nb; j += 8) rotate_half_vec8(a + j, b + j, c + j, s + j, (__mmask8)0xff);
        if (j < nb) rotate_half_vec8(a + j, b + j, c + j, s + j, (__mmask8)((1u << (nb - j)) - 1u));
    }
}

void posattn_rope_token_f32_avx512(const posattn_rope_token *t) {
    _Alignas(64) float c[2 * POSATTN_ROPE_BLOCK_PAIRS];
    _Alignas(64) float s[2 * POSATTN_ROPE_BLOCK_PAIRS];
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
