/*
 * NEON (AArch64 Advanced SIMD) ALiBi kernels, 4 float32 lanes: the vector layer under the external
 * bias row and the fused bias-add-softmax row of src/alibi_generic.h (the algorithm, the rounding policy and the
 * variants are written there once).
 *
 * ISA: Advanced SIMD is architectural on every ARMv8-A AArch64 core, so this file needs no compile flag and no
 * run-time check; everything it uses (FMA, FABD, FMAXNM, FCVTL from binary16, FSQRT) is baseline. The softcap
 * calls SLEEF's AdvSIMD tanh (out of line in SLEEF 3.5); the exponential is the generic inline polynomial
 * (constants in exp_f32.h), so it stays in registers, and groups of 16 keys that all lie more than 87 below the
 * row maximum skip it.
 *
 * Tails: NEON has no masked loads or stores, so the last 1-3 elements of a row are copied through a zero-padded
 * 4-lane buffer and go through the same vector code, so their logits are bit-identical to a full vector's and
 * nothing outside [0, nk) is read or written (a vendored library cannot assume padding).
 *
 * Sums: exponentials are accumulated in float32 lanes for at most 16 terms per lane, then widened and added in
 * float64. A float32 partial of k <= 16 non-negative terms is within (k-1)u of its exact value and float64 adds
 * only 2^-53 per step, so the denominator is within 16u for any row length, 2^20 keys and beyond (the bound the
 * public header states); a plain float32 running sum could drift by up to nk*u instead.
 *
 * Subnormals: exponentials below e^-87 and outputs below 2^-125 become exactly 0, each decided by a compare before
 * the value is formed, so none is ever produced (they are slow on several cores, and every ISA must agree on
 * the zeros). "Less than" is false for NaN, which therefore propagates: NEON's compares are all ordered, so "not
 * less than" is a compare and a bitwise not.
 *
 * Logits are formed with exactly the roundings of the scalar reference, as on every ISA (separate multiply and add
 * for the bias and the mask, no contraction). The paths then agree on which keys are excluded and which
 * exponentials flush to exactly 0, and differ only through the exp and tanh polynomials, the summation order and
 * the final scaling.
 *
 * N-D positions (2..4 axes): packed positions (stride 2..4) are de-interleaved by one vld2q/vld3q/vld4q when the
 * 4 S floats exist, otherwise read lane by lane. The distance is formed by the generic code, posattn_alibi_dist_nd
 * operation for operation (FABD rounds |q - k| once, as fabsf(q - k) does; FSQRT is correctly rounded), so N-D
 * biases are the scalar reference's bit for bit.
 */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* The vector layer (contract in alibi_generic.h)                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

#define ALIBI_ISA neon
#define ALIBI_LANES INT64_C(4)

typedef float32x4_t vf;
typedef float64x2_t vd;
typedef uint32x4_t vm; /* all-ones lanes */

static const int32_t lane_index_s32[4] = {0, 1, 2, 3};

static inline vm vm_first(int64_t n) {
    return vcltq_s32(vld1q_s32(lane_index_s32), vdupq_n_s32(n < 4 ? (int32_t)n : 4));
}

static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline vf vf_load_part(const float *p, int64_t n) {
    float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(lanes, p, (size_t)n * sizeof(float));
    return vld1q_f32(lanes);
}
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline void vf_store_part(float *p, vf v, int64_t n) {
    float lanes[4];
    vst1q_f32(lanes, v);
    memcpy(p, lanes, (size_t)n * sizeof(float));
}
static inline vf vf_load_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline vf vf_load_f16_part(const uint16_t *p, int64_t n) {
    uint16_t lanes[4] = {0, 0, 0, 0};
    memcpy(lanes, p, (size_t)n * sizeof(uint16_t));
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(lanes)));
}

static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_iota(void) { return vcvtq_f32_s32(vld1q_s32(lane_index_s32)); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
/* FABD rounds |a - b| once, as fabsf(a - b) does (rounding to nearest is symmetric). */
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_absdiff(vf a, vf b) { return vabdq_f32(a, b); }
static inline vf vf_sub_mul(vf x, vf a, vf b) { return vsubq_f32(x, vmulq_f32(a, b)); }
static inline vf vf_add_mul(vf x, vf a, vf b) { return vaddq_f32(x, vmulq_f32(a, b)); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
/* FMAXNM returns the number when one operand is NaN, FMAX returns NaN. */
static inline vf vf_max_ign(vf acc, vf x) { return vmaxnmq_f32(acc, x); }
static inline vf vf_max_nan(vf c, vf x) { return vmaxq_f32(c, x); }
static inline vf vf_tanh(vf x) { return Sleef_tanhf4_u10advsimd(x); }

static inline vm vm_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm vm_nlt(vf a, vf b) { return vmvnq_u32(vcltq_f32(a, b)); }
static inline vm vm_isnan(vf a) { return vmvnq_u32(vceqq_f32(a, a)); }
static inline vm vm_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline int vm_any(vm m) { return vmaxvq_u32(m) != 0; }
static inline vf vf_select(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
/* Zeroed before the multiply: 0 * b is 0, never a subnormal. */
static inline vf vf_mulz(vm m, vf a, vf b) {
    return vmulq_f32(vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a))), b);
}
/* t's low mantissa bits hold n + 127: shifted into the exponent field they make 2^n. A multiply rather than an
 * integer add to the exponent field, so a NaN stays NaN. */
static inline vf vf_pow2_mulz(vm m, vf p, vf n, vf t) {
    (void)n;
    const vf pow2n = vreinterpretq_f32_s32(vshlq_n_s32(vreinterpretq_s32_f32(t), 23));
    return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(vmulq_f32(p, pow2n))));
}

static inline float vf_reduce_max(vf v) { return vmaxnmvq_f32(v); }
static inline vd vd_zero(void) { return vdupq_n_f64(0.0); }
static inline vd vd_widen_add(vd s, vf v) {
    s = vaddq_f64(s, vcvt_f64_f32(vget_low_f32(v)));
    return vaddq_f64(s, vcvt_high_f64_f32(v));
}
static inline vd vd_add(vd a, vd b) { return vaddq_f64(a, b); }
static inline double vd_reduce_add(vd s) { return vaddvq_f64(s); }

/* Key positions --------------------------------------------------------------------------------------------- */

typedef struct vkeys {
    const float *k_pos;
    int64_t k_stride;
} vkeys;

static inline void vkeys_init(vkeys *k, const posattn_key_positions *keys) {
    k->k_pos = keys->k_pos;
    k->k_stride = keys->k_pos_stride;
}

static inline vf vf_keys_strided(const vkeys *k, int64_t j, int64_t n) {
    const int64_t stride = k->k_stride;
    const float *k_pos = k->k_pos + j * stride;
    if (n >= 4) {
        float32x4_t k_f32x4 = vld1q_dup_f32(k_pos);
        k_f32x4 = vld1q_lane_f32(k_pos + stride, k_f32x4, 1);
        k_f32x4 = vld1q_lane_f32(k_pos + 2 * stride, k_f32x4, 2);
        return vld1q_lane_f32(k_pos + 3 * stride, k_f32x4, 3);
    }
    float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int64_t l = 0; l < n; ++l) lanes[l] = k_pos[l * stride];
    return vld1q_f32(lanes);
}

/* (float)(j + l) from an int32 iota, exactly as the int64 conversion would round; past 2^31 keys the lanes are
 * converted one by one like the scalar reference does. */
static inline vf vf_iota_wide(int64_t j) {
    if (j <= INT32_MAX - 3) return vcvtq_f32_s32(vaddq_s32(vdupq_n_s32((int32_t)j), vld1q_s32(lane_index_s32)));
    const float lanes[4] = {(float)j, (float)(j + 1), (float)(j + 2), (float)(j + 3)};
    return vld1q_f32(lanes);
}

/* N-D coordinates ------------------------------------------------------------------------------------------- */

typedef struct vnd {
    const float *k_pos;
    int64_t k_stride, k_len, nk;
    int offset[4];
} vnd;

static inline void vnd_init(vnd *c, const posattn_nd_positions *nd, const posattn_key_positions *keys, int64_t nk) {
    c->k_pos = keys->k_pos;
    c->k_stride = keys->k_pos_stride;
    c->k_len = nd->k_len;
    c->nk = nk;
    for (int a = 0; a < 4; ++a) c->offset[a] = a < nd->axes ? nd->offset[a] : 0;
}

/* Coordinates of keys j..j+n-1 along the kept axes, in key order (returns 0): packed positions (stride 2..4)
 * through one de-interleaving vld2q/vld3q/vld4q when the 4 S floats exist, otherwise lane by lane (the padding
 * lanes are 0). */
static inline __attribute__((always_inline)) int vnd_coords(const vnd *c, int axes, int64_t j, int64_t n, vf *c0,
                                                            vf *c1, vf *c2, vf *c3) {
    const int64_t S = c->k_stride;
    const float *base = c->k_pos + j * S;
    float32x4_t coord_f32x4[4];
    if (n >= 4 && S >= 2 && S <= 4 && (c->nk - 1 - j) * S + c->k_len >= 4 * S) {
        float32x4_t v_f32x4[4];
        if (S == 2) {
            float32x4x2_t v = vld2q_f32(base);
            v_f32x4[0] = v.val[0], v_f32x4[1] = v.val[1];
        } else if (S == 3) {
            float32x4x3_t v = vld3q_f32(base);
            v_f32x4[0] = v.val[0], v_f32x4[1] = v.val[1], v_f32x4[2] = v.val[2];
        } else {
            float32x4x4_t v = vld4q_f32(base);
            v_f32x4[0] = v.val[0], v_f32x4[1] = v.val[1], v_f32x4[2] = v.val[2], v_f32x4[3] = v.val[3];
        }
        for (int a = 0; a < axes; ++a) coord_f32x4[a] = v_f32x4[c->offset[a]];
    } else {
        for (int a = 0; a < axes; ++a) {
            float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int64_t l = 0; l < n && l < 4; ++l) lanes[l] = base[l * S + c->offset[a]];
            coord_f32x4[a] = vld1q_f32(lanes);
        }
    }
    *c0 = coord_f32x4[0], *c1 = coord_f32x4[1];
    if (axes > 2) *c2 = coord_f32x4[2];
    if (axes > 3) *c3 = coord_f32x4[3];
    return 0;
}

static inline vf vf_nd_key_order(vf v, int order) {
    (void)order;
    return v;
}

#include "../alibi_generic.h"
