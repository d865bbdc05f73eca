/*
 * NEON fused attention tile: the vector vocabulary of attention_generic.h on 4 float32 lanes.
 *
 * ISA: AArch64 Advanced SIMD, baseline (FMA, FMAXNM, FCVTL from binary16, FADDP); no flag, no run-time check. The
 * softcap calls SLEEF's AdvSIMD tanhf.
 *
 * Tails: partial vectors are copied through a zeroed 4-lane buffer, so no byte outside the tensors is read or
 * written.
 *
 * Register tiles (32 vectors): scores 4 rows x 4 keys (16 accumulators, 4 k vectors, 1 q vector); weighted sums 4
 * rows x 4 vectors of dv (16 dims: 16 accumulators, 4 v vectors, 1 weight).
 *
 * Exponential: the polynomial of exp_f32.h in registers, 2^n added to the exponent field (valid for the kept gaps,
 * >= POSATTN_ATTENTION_FLUSH, where the result is normal); lanes with gap < POSATTN_ATTENTION_FLUSH are cleared
 * (a compare that is false for NaN, and a NaN keeps its NaN through the integer add since its n converts to 0).
 */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../exp_f32.h"
#include "../kernels.h"

#define ATT_ISA neon
#define ATT_W 4
#define ATT_QK_ROWS 4
#define ATT_PV_ROWS 4
#define ATT_PV_VECS 4

typedef float32x4_t vf;

static inline int32x4_t lane_index(void) {
    static const int32_t index[4] = {0, 1, 2, 3};
    return vld1q_s32(index);
}

static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
/* FMAXNM returns the number when one operand is NaN. */
static inline vf vf_max_num(vf acc, vf x) { return vmaxnmq_f32(acc, x); }
static inline float vf_reduce_add(vf a) { return vaddvq_f32(a); }
static inline float vf_reduce_max(vf a) { return vmaxvq_f32(a); }
static inline void vf_hsum4(vf a, vf b, vf c, vf d, float *out) {
    vst1q_f32(out, vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d)));
}

static inline vf vf_load_f32(const float *p, int64_t n) {
    if (n >= 4) return vld1q_f32(p);
    float lanes[4] = {0};
    memcpy(lanes, p, (size_t)(n > 0 ? n : 0) * sizeof(float));
    return vld1q_f32(lanes);
}
static inline uint16x4_t load_u16x4(const uint16_t *p, int64_t n) {
    if (n >= 4) return vld1_u16(p);
    uint16_t lanes[4] = {0};
    memcpy(lanes, p, (size_t)(n > 0 ? n : 0) * sizeof(uint16_t));
    return vld1_u16(lanes);
}
static inline vf vf_load_f16(const uint16_t *p, int64_t n) {
    return vcvt_f32_f16(vreinterpret_f16_u16(load_u16x4(p, n)));
}
static inline vf vf_load_bf16(const uint16_t *p, int64_t n) {
    return vreinterpretq_f32_u32(vshll_n_u16(load_u16x4(p, n), 16));
}
static inline void vf_store_n(float *p, vf v, int64_t n) {
    if (n >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float lanes[4];
    vst1q_f32(lanes, v);
    memcpy(p, lanes, (size_t)(n > 0 ? n : 0) * sizeof(float));
}
static inline void vf_add_to_f64(double *dst, vf v, int64_t n) {
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
    if (n >= 4) {
        vst1q_f64(dst, vaddq_f64(vld1q_f64(dst), lo));
        vst1q_f64(dst + 2, vaddq_f64(vld1q_f64(dst + 2), hi));
        return;
    }
    double lanes[4];
    vst1q_f64(lanes, lo);
    vst1q_f64(lanes + 2, hi);
    for (int64_t i = 0; i < n; ++i) dst[i] += lanes[i];
}
static inline vf vf_key_index(int64_t j) { return vcvtq_f32_s32(vaddq_s32(vdupq_n_s32((int32_t)j), lane_index())); }
static inline vf vf_keep_lanes(vf v, int64_t begin, int64_t end) {
    if (begin <= 0 && end >= 4) return v;
    begin = begin < 0 ? 0 : begin > 4 ? 4 : begin;
    end = end < 0 ? 0 : end > 4 ? 4 : end;
    const int32x4_t i = lane_index();
    const uint32x4_t keep =
        vandq_u32(vcgeq_s32(i, vdupq_n_s32((int32_t)begin)), vcltq_s32(i, vdupq_n_s32((int32_t)end)));
    return vbslq_f32(keep, v, vdupq_n_f32(-INFINITY));
}
static inline vf vf_apply_mask(vf x, vf m, vf s) {
    const uint32x4_t excluded = vceqq_f32(m, vdupq_n_f32(-INFINITY));
    return vbslq_f32(excluded, vdupq_n_f32(-INFINITY), vaddq_f32(x, vmulq_f32(s, m)));
}
static inline vf vf_tanh(vf x) { return Sleef_tanhf4_u10advsimd(x); }

static inline vf vf_weight(vf gap) {
    const uint32x4_t flush = vcltq_f32(gap, vdupq_n_f32(POSATTN_ATTENTION_FLUSH));
    const vf n = vrndnq_f32(vmulq_n_f32(gap, POSATTN_EXP_LOG2E));
    /* Cody-Waite: n * LN2_HI is exact, so r carries only the rounding of the second step. */
    vf r = vfmsq_f32(gap, n, vdupq_n_f32(POSATTN_EXP_LN2_HI));
    r = vfmsq_f32(r, n, vdupq_n_f32(POSATTN_EXP_LN2_LO));
    vf p = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P1), vdupq_n_f32(POSATTN_EXP_P0), r);
    p = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P2), p, r);
    p = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P3), p, r);
    p = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P4), p, r);
    p = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P5), p, r);
    /* 1 + r + r^2 P(r) as 1 + r (1 + r P(r)). */
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t scale = vshlq_n_s32(vcvtq_s32_f32(n), 23);
    const vf e = vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(p), scale));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), flush));
}

#include "../attention_generic.h"
