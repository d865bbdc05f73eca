/*
 * AVX2 rotary embeddings (SPEC 4): one token per call, every head of it.
 *
 * ISA: AVX2 and FMA (arithmetic, permutes, masked loads and stores of AVX); SLEEF's Sleef_sincosf8_u10avx2. The
 * caller has checked the CPU.
 *
 * Tails: pair counts that are not a multiple of 8 end with one masked vector (_mm256_maskload_ps /
 * _mm256_maskstore_ps, which neither read nor fault on inactive lanes), so no byte outside the rotated dimensions
 * of a head is read or written.
 *
 * Angles: products and sums in float32 in axis order with separate multiplies and adds (no FMA), bit-identical to
 * the scalar reference. cos and sin: SLEEF's 1-ulp sincos, exact range reduction for every finite float (angles of
 * 1e6 radians and beyond keep their accuracy).
 *
 * Sharing: with one table for every head, cos and sin of a block of pairs are computed once per token into stack
 * buffers, in the layout the rotation reads, then every head streams through them.
 *
 * Rotation: interleaved x' = x*c2 + swap(x)*s2 (c2 = [c0 c0 c1 c1 ..], s2 = [-s0 s0 ..]); half-split
 * a' = a*c - b*s, b' = b*c + a*s; each one multiply and one FMA. Error: within 5 u |f| |(a, b)| of the exact
 * rotation of the float32 angle, inside posattn.h's 6 u.
 */
#include <immintrin.h>
#include <sleef.h>

#include "../kernels.h"

#define POSATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

/* All-ones in the lanes below `remaining` (clamped to 8). */
static inline __m256i tail_mask(int64_t remaining) {
    const int n = remaining >= 8 ? 8 : (int)remaining;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

POSATTN_ALWAYS_INLINE __m256 angles_f32x8(const posattn_rope_token *t, const float *F, int64_t k, __m256i m) {
    __m256 theta_f32x8 = _mm256_mul_ps(_mm256_set1_ps(t->pos[0]), _mm256_maskload_ps(F + k, m));
    for (int64_t a = 1; a < t->n_axes; ++a) {
        __m256 term_f32x8 = _mm256_mul_ps(_mm256_set1_ps(t->pos[a]), _mm256_maskload_ps(F + a * t->n_pairs + k, m));
        theta_f32x8 = _mm256_add_ps(theta_f32x8, term_f32x8);
    }
    return theta_f32x8;
}

/* See the AVX-512 file: half-split c[j], s[j]; interleaved c[2j] = c[2j+1] = c_j, s[2j] = -s_j, s[2j+1] = s_j. */
static void cos_sin_block(const posattn_rope_token *t, const float *F, int64_t k0, int64_t nb, float *c, float *s) {
    const __m256i lo_i32x8 = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256i hi_i32x8 = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    const __m256 even_sign_f32x8 = _mm256_castsi256_ps(
        _mm256_setr_epi32((int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0));
    const __m256 sign_f32x8 = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 attn_f32x8 = _mm256_set1_ps(t->attn_factor);
    const int scaled = t->pair_factors != NULL || t->attn_factor != 1.0f;
    for (int64_t j = 0; j < nb; j += 8) {
        const int64_t k = k0 + j;
        const __m256i m = tail_mask(nb - j);
        Sleef___m256_2 sc = Sleef_sincosf8_u10avx2(angles_f32x8(t, F, k, m));
        __m256 sin_f32x8 = sc.x, cos_f32x8 = sc.y;
        if (t->backward) sin_f32x8 = _mm256_xor_ps(sin_f32x8, sign_f32x8);
        if (scaled) {
            __m256 f_f32x8 =
                t->pair_factors ? _mm256_mul_ps(attn_f32x8, _mm256_maskload_ps(t->pair_factors + k, m)) : attn_f32x8;
            cos_f32x8 = _mm256_mul_ps(cos_f32x8, f_f32x8);
            sin_f32x8 = _mm256_mul_ps(sin_f32x8, f_f32x8);
        }
        if (t->half_split) {
            _mm256_store_ps(c + j, cos_f32x8);
            _mm256_store_ps(s + j, sin_f32x8);
        } else {
            _mm256_store_ps(c + 2 * j, _mm256_permutevar8x32_ps(cos_f32x8, lo_i32x8));
            _mm256_store_ps(c + 2 * j + 8, _mm256_permutevar8x32_ps(cos_f32x8, hi_i32x8));
            _mm256_store_ps(s + 2 * j, _mm256_xor_ps(_mm256_permutevar8x32_ps(sin_f32x8, lo_i32x8), even_sign_f32x8));
            _mm256_store_ps(s + 2 * j + 8,
                            _mm256_xor_ps(_mm256_permutevar8x32_ps(sin_f32x8, hi_i32x8), even_sign_f32x8));
        }
    }
}

POSATTN_ALWAYS_INLINE __m256 rotate_interleaved_f32x8(__m256 x_f32x8, const float *c, const float *s) {
    __m256 swapped_f32x8 = _mm256_permute_ps(x_f32x8, 0xB1);
    return _mm256_fmadd_ps(x_f32x8, _mm256_load_ps(c), _mm256_mul_ps(swapped_f32x8, _mm256_load_ps(s)));
}

static void rotate_interleaved(float *x, int64_t n, const float *c, const float *s) {
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) _mm256_storeu_ps(x + e, rotate_interleaved_f32x8(_mm256_loadu_ps(x + e), c + e, s + e));
    if (e < n) {
        const __m256i m = tail_mask(n - e);
        _mm256_maskstore_ps(x + e, m, rotate_interleaved_f32x8(_mm256_maskload_ps(x + e, m), c + e, s + e));
    }
}

POSATTN_ALWAYS_INLINE void rotate_half_full(float *a, float *b, const float *c, const float *s) {
    __m256 a_f32x8 = _mm256_loadu_ps(a), b_f32x8 = _mm256_loadu_ps(b);
    __m256 c_f32x8 = _mm256_load_ps(c), s_f32x8 = _mm256_load_ps(s);
    _mm256_storeu_ps(a, _mm256_fmsub_ps(a_f32x8, c_f32x8, _mm256_mul_ps(b_f32x8, s_f32x8)));
    _mm256_storeu_ps(b, _mm256_fmadd_ps(b_f32x8, c_f32x8, _mm256_mul_ps(a_f32x8, s_f32x8)));
}

static void rotate_half_split(float *a, float *b, int64_t nb, const float *c, const float *s) {
    int64_t j = 0;
    for (; j + 8 <= nb; j += 8) rotate_half_full(a + j, b + j, c + j, s + j);
    if (j < nb) {
        const __m256i m = tail_mask(nb - j);
        __m256 a_f32x8 = _mm256_maskload_ps(a + j, m), b_f32x8 = _mm256_maskload_ps(b + j, m);
        __m256 c_f32x8 = _mm256_load_ps(c + j), s_f32x8 = _mm256_load_ps(s + j);
        _mm256_maskstore_ps(a + j, m, _mm256_fmsub_ps(a_f32x8, c_f32x8, _mm256_mul_ps(b_f32x8, s_f32x8)));
        _mm256_maskstore_ps(b + j, m, _mm256_fmadd_ps(b_f32x8, c_f32x8, _mm256_mul_ps(a_f32x8, s_f32x8)));
    }
}

void posattn_rope_token_f32_avx2(const posattn_rope_token *t) {
    _Alignas(32) float c[2 * POSATTN_ROPE_BLOCK_PAIRS];
    _Alignas(32) float s[2 * POSATTN_ROPE_BLOCK_PAIRS];
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
