/*
 * Scalar LieRE kernels (SPEC 5): the reference. The algorithm of src/liere_generic.h with one-lane "vectors".
 *
 * ISA: none (portable C11, libm). Compiled without contraction (-ffp-contract=off), so every product and sum
 * rounds as written: vf_fma is a multiply then an add.
 * Tails: there are none; every loop runs over whole blocks and whole heads.
 * Accuracy: b = 2 and b = 3 in float64 (libm sin and cos, correctly rounded in practice), rounded once; b >= 4 in
 * float32 as the generic file derives; the bounds are in posattn.h.
 */
#include <math.h>

#include "../kernels.h"

#define LIERE_ISA scalar
#define LIERE_W 1
#define LIERE_TILE_ROWS 4
#define LIERE_D_BATCH 1
#define LIERE_HAVE_BLOCK_BCAST 0

typedef float vf;
static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline vf vf_set1(float x) { return x; }
static inline vf vf_zero(void) { return 0.0f; }
static inline vf vf_fma(vf a, vf b, vf c) { return a * b + c; }

static void liere_sincos_f64(const double *theta, double *s, double *c, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        s[i] = sin(theta[i]);
        c[i] = cos(theta[i]);
    }
}

#include "../liere_generic.h"
