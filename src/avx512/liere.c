/*
 * AVX-512 LieRE kernels (SPEC 5): the algorithm of src/liere_generic.h on 16-lane float32 vectors.
 *
 * ISA: AVX-512 F (arithmetic, vpermps for the in-register block broadcast) with FMA; the caller has checked the
 * CPU. SLEEF's Sleef_sincosd8_u10avx512f (float64, 1 ulp, full range reduction) for the b = 2 and b = 3 closed
 * forms, batched across the blocks of a token.
 * Tails: the scaling-and-squaring matrices are padded to 16 columns with zeros, so every product runs on whole
 * vectors; apply uses whole vectors for b in {16, 32, 48, 64} (register tiles of 6 heads x 64 rows, the shared
 * b = 64 case being a 64 x 64 by 64 x heads GEMM) and for b in {2, 4, 8} (one vector holds whole blocks, x lanes
 * permuted in registers); other b, and the last dims when rot_dims is not a multiple of 16, use plain loops.
 * No byte outside the caller's tensors is read or written.
 * Accuracy: products are fused (one rounding per FMA instead of two), otherwise as the scalar reference; the
 * bounds of posattn.h hold for both.
 */
#include <immintrin.h>
#include <sleef.h>

#include "../kernels.h"

#define LIERE_ISA avx512
#define LIERE_W 16
#define LIERE_TILE_ROWS 4
#define LIERE_HEADS 6 /* tiles of 6 heads x 64 rows: 24 accumulators + 4 coefficient vectors of 32 zmm */
#define LIERE_D_BATCH 8
#define LIERE_HAVE_BLOCK_BCAST 1

typedef __m512 vf;
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }

/* Lane d gets lane (d / b) * b + c (b in {2, 4, 8}). */
static inline vf vf_block_bcast(vf x, int64_t b, int64_t c) {
    const __m512i lane_i32x16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i idx_i32x16 = _mm512_add_epi32(_mm512_andnot_si512(_mm512_set1_epi32((int)b - 1), lane_i32x16),
                                                _mm512_set1_epi32((int)c));
    return _mm512_permutexvar_ps(idx_i32x16, x);
}

static void liere_sincos_f64(const double *theta, double *s, double *c, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        Sleef___m512d_2 sc_f64x8x2 = Sleef_sincosd8_u10avx512f(_mm512_loadu_pd(theta + i));
        _mm512_storeu_pd(s + i, sc_f64x8x2.x);
        _mm512_storeu_pd(c + i, sc_f64x8x2.y);
    }
}

#include "../liere_generic.h"
