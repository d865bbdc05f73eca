/*
 * NEON LieRE kernels (SPEC 5): the algorithm of src/liere_generic.h on 4-lane float32 vectors (AArch64 AdvSIMD).
 *
 * ISA: AArch64 AdvSIMD (baseline), with fused multiply-add (vfmaq_f32) and trn1/trn2 for the in-register block
 * broadcast of b = 2. SLEEF's Sleef_sincosd2_u10advsimd (float64, 1 ulp, full range reduction) for the b = 2 and
 * b = 3 closed forms, batched across the blocks of a token.
 * Tails: the scaling-and-squaring matrices are padded to 4 columns with zeros, so every product runs on whole
 * vectors; apply uses whole vectors for b a multiple of 4 (register tiles of 6 heads x 16 rows, 24 of the 32
 * q registers) and for b = 2; other b, and the last dims when rot_dims is not a multiple of 4, use plain loops.
 * No byte outside the caller's tensors is read or written.
 * Accuracy: products are fused (one rounding per FMA instead of two), otherwise as the scalar reference; the
 * bounds of posattn.h hold for both.
 */
#include <arm_neon.h>
#include <sleef.h>

#include "../kernels.h"

#define LIERE_ISA neon
#define LIERE_W 4
#define LIERE_TILE_ROWS 4
#define LIERE_HEADS 6 /* tiles of 6 heads x 16 rows: 24 accumulators + 4 coefficient vectors of 32 q registers */
#define LIERE_D_BATCH 2
#define LIERE_HAVE_BLOCK_BCAST 1

typedef float32x4_t vf;
static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }

/* Lane d gets lane (d / 2) * 2 + c (b = 2 only: the one b below 4 that divides 4). */
static inline vf vf_block_bcast(vf x, int64_t b, int64_t c) {
    (void)b;
    return c ? vtrn2q_f32(x, x) : vtrn1q_f32(x, x);
}

static void liere_sincos_f64(const double *theta, double *s, double *c, int64_t n) {
    for (int64_t i = 0; i < n; i += 2) {
        Sleef_float64x2_t_2 sc_f64x2x2 = Sleef_sincosd2_u10advsimd(vld1q_f64(theta + i));
        vst1q_f64(s + i, sc_f64x2x2.x);
        vst1q_f64(c + i, sc_f64x2x2.y);
    }
}

#include "../liere_generic.h"
