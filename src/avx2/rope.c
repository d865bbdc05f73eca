/*
 * AVX2 rotary embeddings (SPEC 4): one token per call, every head of it. The driver (blocks, angles, factors,
 * heads, shared tables) is src/rope_generic.h; this file gives it 8-lane vectors and the AVX2 rotations.
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

#define ROPE_ISA avx2
#define ROPE_W 8
#define ROPE_ALIGN 32

typedef __m256 vf;
typedef __m256i rope_tail_t;

/* All-ones in the lanes below `remaining` (clamped to 8). */
static inline rope_tail_t rope_tail(int64_t remaining) {
    const int n = remaining >= 8 ? 8 : (int)remaining;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

POSATTN_ALWAYS_INLINE vf vf_load_tail(const float *p, rope_tail_t m) { return _mm256_maskload_ps(p, m); }
POSATTN_ALWAYS_INLINE vf vf_set1(float x) { return _mm256_set1_ps(x); }
POSATTN_ALWAYS_INLINE vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
POSATTN_ALWAYS_INLINE vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
POSATTN_ALWAYS_INLINE vf vf_neg(vf v) {
    return _mm256_xor_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
}
POSATTN_ALWAYS_INLINE void vf_store_aligned(float *p, vf v) { _mm256_store_ps(p, v); }

POSATTN_ALWAYS_INLINE void rope_sincos(vf theta_f32x8, vf *sin_f32x8, vf *cos_f32x8) {
    Sleef___m256_2 sc = Sleef_sincosf8_u10avx2(theta_f32x8);
    *sin_f32x8 = sc.x, *cos_f32x8 = sc.y;
}

/* Pairs 0..3 from lanes 0..3 into c[0..7], pairs 4..7 into c[8..15]; the sign of sin folded into even lanes. */
POSATTN_ALWAYS_INLINE void rope_store_interleaved(float *c, float *s, vf cos_f32x8, vf sin_f32x8) {
    const __m256i lo_i32x8 = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256i hi_i32x8 = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    const __m256 even_sign_f32x8 = _mm256_castsi256_ps(
        _mm256_setr_epi32((int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0));
    _mm256_store_ps(c, _mm256_permutevar8x32_ps(cos_f32x8, lo_i32x8));
    _mm256_store_ps(c + 8, _mm256_permutevar8x32_ps(cos_f32x8, hi_i32x8));
    _mm256_store_ps(s, _mm256_xor_ps(_mm256_permutevar8x32_ps(sin_f32x8, lo_i32x8), even_sign_f32x8));
    _mm256_store_ps(s + 8, _mm256_xor_ps(_mm256_permutevar8x32_ps(sin_f32x8, hi_i32x8), even_sign_f32x8));
}

POSATTN_ALWAYS_INLINE __m256 rotate_interleaved_f32x8(__m256 x_f32x8, const float *c, const float *s) {
    __m256 swapped_f32x8 = _mm256_permute_ps(x_f32x8, 0xB1);
    return _mm256_fmadd_ps(x_f32x8, _mm256_load_ps(c), _mm256_mul_ps(swapped_f32x8, _mm256_load_ps(s)));
}

static void rope_rotate_interleaved(float *x, int64_t n, const float *c, const float *s) {
    int64_t e = 0;
    for (; e + 8 <= n; e += 8) _mm256_storeu_ps(x + e, rotate_interleaved_f32x8(_mm256_loadu_ps(x + e), c + e, s + e));
    if (e < n) {
        const __m256i m = rope_tail(n - e);
        _mm256_maskstore_ps(x + e, m, rotate_interleaved_f32x8(_mm256_maskload_ps(x + e, m), c + e, s + e));
    }
}

POSATTN_ALWAYS_INLINE void rotate_half_full(float *a, float *b, const float *c, const float *s) {
    __m256 a_f32x8 = _mm256_loadu_ps(a), b_f32x8 = _mm256_loadu_ps(b);
    __m256 c_f32x8 = _mm256_load_ps(c), s_f32x8 = _mm256_load_ps(s);
    _mm256_storeu_ps(a, _mm256_fmsub_ps(a_f32x8, c_f32x8, _mm256_mul_ps(b_f32x8, s_f32x8)));
    _mm256_storeu_ps(b, _mm256_fmadd_ps(b_f32x8, c_f32x8, _mm256_mul_ps(a_f32x8, s_f32x8)));
}

static void rope_rotate_half_split(float *a, float *b, int64_t nb, const float *c, const float *s) {
    int64_t j = 0;
    for (; j + 8 <= nb; j += 8) rotate_half_full(a + j, b + j, c + j, s + j);
    if (j < nb) {
        const __m256i m = rope_tail(nb - j);
        __m256 a_f32x8 = _mm256_maskload_ps(a + j, m), b_f32x8 = _mm256_maskload_ps(b + j, m);
        __m256 c_f32x8 = _mm256_load_ps(c + j), s_f32x8 = _mm256_load_ps(s + j);
        _mm256_maskstore_ps(a + j, m, _mm256_fmsub_ps(a_f32x8, c_f32x8, _mm256_mul_ps(b_f32x8, s_f32x8)));
        _mm256_maskstore_ps(b + j, m, _mm256_fmadd_ps(b_f32x8, c_f32x8, _mm256_mul_ps(a_f32x8, s_f32x8)));
    }
}

#include "../rope_generic.h"
