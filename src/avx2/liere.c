/*
 * AVX2 LieRE kernels (SPEC 5): the algorithm of src/liere_generic.h on 8-lane float32 vectors.
 *
 * ISA: AVX2 (vpermps for the in-register block broadcast) and FMA; the caller has checked the CPU. SLEEF's
 * Sleef_sincosd4_u10avx2 (float64, 1 ulp, full range reduction) for the b = 2 and b = 3 closed forms, batched
 * across the blocks of a token.
 * Tails: the scaling-and-squaring matrices are padded to 8 columns with zeros, so every product runs on whole
 * vectors; apply uses whole vectors for b a multiple of 8 (register tiles of 6 heads x 16 rows: 12 accumulators
 * of the 16 ymm registers) and for b in {2, 4} (lanes permuted in registers); other b, and the last dims when rot_dims
 * is not a multiple of 8, use plain loops. No byte outside the caller's tensors is read or written.
 * Accuracy: products are fused (one rounding per FMA instead of two), otherwise as the scalar reference; the
 * bounds of posattn.h hold for both.
 */
#include <immintrin.h>
#include <sleef.h>

#include "../kernels.h"

#define LIERE_ISA avx2
#define LIERE_W 8
#define LIERE_TILE_ROWS 2
#define LIERE_HEADS 6 /* tiles of 6 heads x 16 rows: 12 accumulators + 2 coefficient vectors of 16 ymm */
#define LIERE_D_BATCH 4
#define LIERE_HAVE_BLOCK_BCAST 1

typedef __m256 vf;
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }

/* Lane d gets lane (d / b) * b + c (b in {2, 4}). */
static inline vf vf_block_bcast(vf x, int64_t b, int64_t c) {
    const __m256i lane_i32x8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i idx_i32x8 =
        _mm256_add_epi32(_mm256_andnot_si256(_mm256_set1_epi32((int)b - 1), lane_i32x8), _mm256_set1_epi32((int)c));
    return _mm256_permutevar8x32_ps(x, idx_i32x8);
}

static void liere_sincos_f64(const double *theta, double *s, double *c, int64_t n) {
    for (int64_t i = 0; i < n; i += 4) {
        Sleef___m256d_2 sc_f64x4x2 = Sleef_sincosd4_u10avx2(_mm256_loadu_pd(theta + i));
        _mm256_storeu_pd(s + i, sc_f64x4x2.x);
        _mm256_storeu_pd(c + i, sc_f64x4x2.y);
    }
}

#include "../liere_generic.h"
