/*
 * AVX-512 rotary embeddings (SPEC 4): one token per call, every head of it. The driver (blocks, angles, factors,
 * heads, shared tables) is src/rope_generic.h; this file gives it 16-lane vectors and the AVX-512 rotations.
 *
 * ISA: AVX-512 F (arithmetic, masked loads and stores, permutes), VL for the 256-bit half-split rotation; SLEEF's
 * Sleef_sincosf16_u10avx512f. The caller has checked the CPU.
 *
 * Tails: pair counts that are not a multiple of 16 (8 in the half-split rotation) end with one masked vector
 * (_mm512_maskz_loadu_ps / _mm512_mask_storeu_ps, or their 256-bit VL forms), so no byte outside the rotated
 * dimensions of a head is read or written; the dimensions
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

#define ROPE_ISA avx512
#define ROPE_W 16
#define ROPE_ALIGN 64

typedef __m512 vf;
typedef __mmask16 rope_tail_t;

static inline rope_tail_t rope_tail(int64_t remaining) {
    return remaining >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << remaining) - 1u);
}

POSATTN_ALWAYS_INLINE vf vf_load_tail(const float *p, rope_tail_t m) { return _mm512_maskz_loadu_ps(m, p); }
POSATTN_ALWAYS_INLINE vf vf_set1(float x) { return _mm512_set1_ps(x); }
POSATTN_ALWAYS_INLINE vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
POSATTN_ALWAYS_INLINE vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
POSATTN_ALWAYS_INLINE vf vf_neg(vf v) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)));
}
POSATTN_ALWAYS_INLINE void vf_store_aligned(float *p, vf v) { _mm512_store_ps(p, v); }

POSATTN_ALWAYS_INLINE void rope_sincos(vf theta_f32x16, vf *sin_f32x16, vf *cos_f32x16) {
    Sleef___m512_2 sc = Sleef_sincosf16_u10avx512f(theta_f32x16);
    *sin_f32x16 = sc.x, *cos_f32x16 = sc.y;
}

/* Pairs 0..7 into c[0..15], pairs 8..15 into c[16..31]; the sign of sin folded into even lanes. */
POSATTN_ALWAYS_INLINE void rope_store_interleaved(float *c, float *s, vf cos_f32x16, vf sin_f32x16) {
    const __m512i lo_i32x16 = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi_i32x16 = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m512i even_sign_i32x16 =
        _mm512_setr_epi32((int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0,
                          (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0, (int)0x80000000u, 0);
    __m512i s_lo_i32x16 = _mm512_castps_si512(_mm512_permutexvar_ps(lo_i32x16, sin_f32x16));
    __m512i s_hi_i32x16 = _mm512_castps_si512(_mm512_permutexvar_ps(hi_i32x16, sin_f32x16));
    _mm512_store_ps(c, _mm512_permutexvar_ps(lo_i32x16, cos_f32x16));
    _mm512_store_ps(c + 16, _mm512_permutexvar_ps(hi_i32x16, cos_f32x16));
    _mm512_store_ps(s, _mm512_castsi512_ps(_mm512_xor_si512(s_lo_i32x16, even_sign_i32x16)));
    _mm512_store_ps(s + 16, _mm512_castsi512_ps(_mm512_xor_si512(s_hi_i32x16, even_sign_i32x16)));
}

POSATTN_ALWAYS_INLINE __m512 rotate_interleaved_f32x16(__m512 x_f32x16, const float *c, const float *s) {
    __m512 swapped_f32x16 = _mm512_permute_ps(x_f32x16, 0xB1);
    return _mm512_fmadd_ps(x_f32x16, _mm512_load_ps(c), _mm512_mul_ps(swapped_f32x16, _mm512_load_ps(s)));
}

static void rope_rotate_interleaved(float *x, int64_t n, const float *c, const float *s) {
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        _mm512_storeu_ps(x + e, rotate_interleaved_f32x16(_mm512_loadu_ps(x + e), c + e, s + e));
    }
    if (e < n) {
        const __mmask16 m = rope_tail(n - e);
        _mm512_mask_storeu_ps(x + e, m, rotate_interleaved_f32x16(_mm512_maskz_loadu_ps(m, x + e), c + e, s + e));
    }
}

/* Eight pairs (a[j], b[j]) in 256-bit registers (AVX-512 VL masks for the tail). */
POSATTN_ALWAYS_INLINE void rotate_half_vec8(float *a, float *b, const float *c, const float *s, __mmask8 m) {
    __m256 a_f32x8 = _mm256_maskz_loadu_ps(m, a), b_f32x8 = _mm256_maskz_loadu_ps(m, b);
    __m256 c_f32x8 = _mm256_load_ps(c), s_f32x8 = _mm256_load_ps(s);
    _mm256_mask_storeu_ps(a, m, _mm256_fmsub_ps(a_f32x8, c_f32x8, _mm256_mul_ps(b_f32x8, s_f32x8)));
    _mm256_mask_storeu_ps(b, m, _mm256_fmadd_ps(b_f32x8, c_f32x8, _mm256_mul_ps(a_f32x8, s_f32x8)));
}

/* Half-split heads rotate in 256-bit halves whatever their alignment: measured on AMD Zen 5 (EPYC), 512-bit
 * accesses were slower in every case, 13-20% with the rows in cache (q of 256-768 tokens x 32 heads x 128 dims)
 * and 20% streaming 64 MiB from memory even with the driver's prefetch; with halves at different offsets in a
 * 64-byte line (head_dim 80) every 512-bit access to one of them split a line (25% slower there). The 16-lane
 * sincos is where AVX-512 gains; the rotation is loads and stores. Same results either way (same operations per
 * lane). The interleaved layout keeps 512-bit vectors: 10-20% faster than 256-bit ones in cache, even in memory. */
POSATTN_ALWAYS_INLINE void rope_rotate_half_split(float *a, float *b, int64_t nb, const float *c, const float *s) {
    int64_t j = 0;
    for (; j + 8 <= nb; j += 8) rotate_half_vec8(a + j, b + j, c + j, s + j, (__mmask8)0xff);
    if (j < nb) rotate_half_vec8(a + j, b + j, c + j, s + j, (__mmask8)((1u << (nb - j)) - 1u));
}

POSATTN_ALWAYS_INLINE void rotate_half_vec16(float *a, float *b, const float *c, const float *s, __mmask16 m) {
    __m512 a_f32x16 = _mm512_maskz_loadu_ps(m, a), b_f32x16 = _mm512_maskz_loadu_ps(m, b);
    __m512 c_f32x16 = _mm512_load_ps(c), s_f32x16 = _mm512_load_ps(s);
    _mm512_mask_storeu_ps(a, m, _mm512_fmsub_ps(a_f32x16, c_f32x16, _mm512_mul_ps(b_f32x16, s_f32x16)));
    _mm512_mask_storeu_ps(b, m, _mm512_fmadd_ps(b_f32x16, c_f32x16, _mm512_mul_ps(a_f32x16, s_f32x16)));
}

/* With a table per head, cos and sin are computed again for every head and the kernel is bound by them, not by
 * memory: there the 512-bit rotation's fewer instructions win (3-4% on the mixed 4096 x 32 x 128 shape, Zen 5),
 * for halves at the same offset in a line (other halves would split lines, see above). */
#define ROPE_ROTATE_HALF_SPLIT_PER_HEAD
static void rope_rotate_half_split_per_head(float *a, float *b, int64_t nb, const float *c, const float *s) {
    if ((((uintptr_t)a ^ (uintptr_t)b) & 63u) != 0) {
        rope_rotate_half_split(a, b, nb, c, s);
        return;
    }
    int64_t j = 0;
    for (; j + 16 <= nb; j += 16) rotate_half_vec16(a + j, b + j, c + j, s + j, (__mmask16)0xffff);
    if (j < nb) rotate_half_vec16(a + j, b + j, c + j, s + j, rope_tail(nb - j));
}

#include "../rope_generic.h"
