/*
 * NEON (AArch64 Advanced SIMD) ALiBi kernels, 4 float32 lanes.
 *
 * ISA: Advanced SIMD is architectural on every ARMv8-A AArch64 core, so this file needs no compile flag and no
 * run-time check; everything it uses (FMA, FABD, FRINTN, FMAXNM, FCVTL from binary16) is baseline. The softcap
 * calls SLEEF's AdvSIMD tanh (out of line in SLEEF 3.5); the exponential is inline (constants in exp_f32.h) so it
 * stays in registers, and groups of 16 keys that all lie more than 87 below the row maximum skip it.
 *
 * Tails: rows are walked from `lo` in whole vectors. The last 1-3 keys of the softmax are copied into a zero-padded
 * 4-lane buffer and go through the same vector code, so their logits are bit-identical to a full vector's and
 * nothing outside [0, nk) is read or written (a vendored library cannot assume padding). The bias row ends with
 * scalar code that performs the same two roundings as its vector code.
 *
 * Sums: exponentials are accumulated in float32 lanes for at most 16 terms per lane, then widened and added in
 * float64. A float32 partial of k <= 16 non-negative terms is within (k-1)u of its exact value and float64 adds
 * only 2^-53 per step, so the denominator is within 16u for any row length, 2^20 keys and beyond (the bound the
 * public header states); a plain float32 running sum could drift by up to nk*u instead.
 *
 * Subnormals: exponentials below e^-87 and outputs below 2^-125 become exactly 0, each decided by a compare before
 * the value is formed, so none is ever produced (they are slow on several cores, and every ISA must agree on
 * the zeros). "Less than" is false for NaN, which therefore propagates.
 *
 * Logits are formed with exactly the roundings of the scalar reference (separate multiply and add for the bias and
 * the mask, no contraction). The paths then agree on which keys are excluded and which exponentials flush to
 * exactly 0, and differ only through the exp and tanh polynomials, the summation order and the final scaling.
 *
 * N-D positions (2..4 axes): the logits of the row are formed once into probs (vld2q/vld3q/vld4q de-interleave
 * packed positions), then the 1-D softmax runs on them in place with scale 1 and nothing to add, which is exact.
 * The distance follows posattn_alibi_dist_nd operation for operation (FSQRT is correctly rounded), so N-D biases
 * are the scalar reference's bit for bit.
 */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../exp_f32.h"
#include "../kernels.h"

/* Four vectors in flight hide the latency of the exp polynomial's FMA chain. */
#define KEYS_PER_GROUP 16
/* Groups summed in float32 before widening: one term per lane per group, so 16 terms per lane at most. */
#define GROUPS_PER_PARTIAL 16

static const int32_t lane_index_s32[4] = {0, 1, 2, 3};

static inline float key_position(const posattn_key_positions *keys, int64_t j) {
    return keys->k_pos ? keys->k_pos[j * keys->k_pos_stride] : (float)j;
}

/* Keys j..j+3. The implicit positions (float)j come from an int32 iota, exactly as the int64 conversion would
 * round them; past 2^31 keys the lanes are converted one by one like the scalar reference does. */
static inline float32x4_t key_positions_f32x4(const posattn_key_positions *keys, int64_t j) {
    if (keys->k_pos) {
        if (keys->k_pos_stride == 1) return vld1q_f32(keys->k_pos + j);
        const int64_t stride = keys->k_pos_stride;
        const float *k_pos = keys->k_pos + j * stride;
        float32x4_t k_f32x4 = vld1q_dup_f32(k_pos);
        k_f32x4 = vld1q_lane_f32(k_pos + stride, k_f32x4, 1);
        k_f32x4 = vld1q_lane_f32(k_pos + 2 * stride, k_f32x4, 2);
        return vld1q_lane_f32(k_pos + 3 * stride, k_f32x4, 3);
    }
    if (j <= INT32_MAX - 3) {
        return vcvtq_f32_s32(vaddq_s32(vdupq_n_s32((int32_t)j), vld1q_s32(lane_index_s32)));
    }
    const float lanes[4] = {(float)j, (float)(j + 1), (float)(j + 2), (float)(j + 3)};
    return vld1q_f32(lanes);
}

/* The row's constants, broadcast once; the feature flags branch the same way for every vector of a row. */
typedef struct logit_params {
    const float *scores;
    const void *mask;
    int mask_is_f16;
    int has_softcap;
    int has_bias;
    posattn_key_positions keys;
    float32x4_t scale_f32x4;
    float32x4_t softcap_f32x4;
    float32x4_t slope_f32x4;
    float32x4_t q_pos_f32x4;
    float32x4_t mask_scale_f32x4;
} logit_params;

static inline float32x4_t logits_from_f32x4(const logit_params *p, float32x4_t s_f32x4, float32x4_t k_f32x4,
                                            float32x4_t m_f32x4) {
    float32x4_t x_f32x4 = vmulq_f32(p->scale_f32x4, s_f32x4);
    if (p->has_softcap) {
        /* A true division, as the reference does: x * (1/cap) would round twice. */
        x_f32x4 = vmulq_f32(p->softcap_f32x4, Sleef_tanhf4_u10advsimd(vdivq_f32(x_f32x4, p->softcap_f32x4)));
    }
    if (p->has_bias) {
        /* FABD rounds |q - k| once, as fabsf(q - k) does (rounding to nearest is symmetric). */
        x_f32x4 = vsubq_f32(x_f32x4, vmulq_f32(p->slope_f32x4, vabdq_f32(p->q_pos_f32x4, k_f32x4)));
    }
    if (p->mask) {
        /* Select rather than add, so that a slope of 0 times a -inf entry (ggml mode) still excludes, never NaN. */
        const float32x4_t minus_inf_f32x4 = vdupq_n_f32(-INFINITY);
        uint32x4_t excluded_u32x4 = vceqq_f32(m_f32x4, minus_inf_f32x4);
        x_f32x4 = vbslq_f32(excluded_u32x4, minus_inf_f32x4,
                            vaddq_f32(x_f32x4, vmulq_f32(p->mask_scale_f32x4, m_f32x4)));
    }
    return x_f32x4;
}

static inline float32x4_t mask_f32x4(const logit_params *p, int64_t j) {
    if (p->mask_is_f16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p->mask + j)));
    return vld1q_f32((const float *)p->mask + j);
}

/* Logits of keys j..j+3, all inside the row. */
static inline float32x4_t logits_f32x4(const logit_params *p, int64_t j) {
    const float32x4_t zero_f32x4 = vdupq_n_f32(0.0f);
    return logits_from_f32x4(p, vld1q_f32(p->scores + j), p->has_bias ? key_positions_f32x4(&p->keys, j) : zero_f32x4,
                             p->mask ? mask_f32x4(p, j) : zero_f32x4);
}

/* Logits of the last n (1..3) keys at j; the padding lanes come out as -inf, which neither the max nor the sum
 * can see. */
static inline float32x4_t logits_tail_f32x4(const logit_params *p, int64_t j, int64_t n) {
    float s_buf[4] = {0}, k_buf[4] = {0}, m_buf[4] = {0};
    uint16_t h_buf[4] = {0};
    for (int64_t l = 0; l < n; ++l) {
        s_buf[l] = p->scores[j + l];
        if (p->has_bias) k_buf[l] = key_position(&p->keys, j + l);
        if (p->mask && p->mask_is_f16) h_buf[l] = ((const uint16_t *)p->mask)[j + l];
        if (p->mask && !p->mask_is_f16) m_buf[l] = ((const float *)p->mask)[j + l];
    }
    float32x4_t m_f32x4 = p->mask_is_f16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h_buf))) : vld1q_f32(m_buf);
    float32x4_t x_f32x4 = logits_from_f32x4(p, vld1q_f32(s_buf), vld1q_f32(k_buf), m_f32x4);
    uint32x4_t live_u32x4 = vcltq_s32(vld1q_s32(lane_index_s32), vdupq_n_s32((int32_t)n));
    return vbslq_f32(live_u32x4, x_f32x4, vdupq_n_f32(-INFINITY));
}

/*
 * exp(x) for x in [-87, 0] (exp_f32.h): n = round(x log2 e), r = x - n ln2 in two FMA steps, exp(r) by the Cephes
 * polynomial, then 2^n added to the exponent field. On that range n >= -126, and n = -126 only for x <= -86.99
 * where r >= 0.33 and exp(r) > 1, so the result is normal and the integer add cannot underflow the exponent. Other
 * inputs give garbage that the caller masks; a NaN stays NaN (its n converts to 0).
 */
static inline float32x4_t exp_f32x4(float32x4_t x_f32x4) {
    float32x4_t n_f32x4 = vrndnq_f32(vmulq_n_f32(x_f32x4, POSATTN_EXP_LOG2E));
    float32x4_t r_f32x4 = vfmsq_f32(x_f32x4, n_f32x4, vdupq_n_f32(POSATTN_EXP_LN2_HI));
    r_f32x4 = vfmsq_f32(r_f32x4, n_f32x4, vdupq_n_f32(POSATTN_EXP_LN2_LO));
    float32x4_t r2_f32x4 = vmulq_f32(r_f32x4, r_f32x4);
    float32x4_t p_f32x4 = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P1), vdupq_n_f32(POSATTN_EXP_P0), r_f32x4);
    p_f32x4 = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P2), p_f32x4, r_f32x4);
    p_f32x4 = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P3), p_f32x4, r_f32x4);
    p_f32x4 = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P4), p_f32x4, r_f32x4);
    p_f32x4 = vfmaq_f32(vdupq_n_f32(POSATTN_EXP_P5), p_f32x4, r_f32x4);
    float32x4_t y_f32x4 = vaddq_f32(vfmaq_f32(r_f32x4, p_f32x4, r2_f32x4), vdupq_n_f32(1.0f));
    int32x4_t scale_s32x4 = vshlq_n_s32(vcvtq_s32_f32(n_f32x4), 23);
    return vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(y_f32x4), scale_s32x4));
}

/* exp(d) for d = x - mx <= 0, exactly 0 below the flush threshold so that no subnormal is ever formed. "Less than"
 * is false for NaN, so a NaN logit keeps its NaN and poisons the row as IEEE arithmetic says. */
static inline float32x4_t flushed_exp_f32x4(float32x4_t d_f32x4) {
    uint32x4_t below_u32x4 = vcltq_f32(d_f32x4, vdupq_n_f32(POSATTN_EXP_FLUSH_BELOW));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(exp_f32x4(d_f32x4)), below_u32x4));
}

static inline float64x2_t add_widened_f64x2(float64x2_t sum_f64x2, float32x4_t partial_f32x4) {
    sum_f64x2 = vaddq_f64(sum_f64x2, vcvt_f64_f32(vget_low_f32(partial_f32x4)));
    return vaddq_f64(sum_f64x2, vcvt_high_f64_f32(partial_f32x4));
}

/* The maximum of the logits in [lo, hi), -inf when there is none. FMAXNM ignores NaN like fmaxf does, so a NaN
 * logit does not become the row maximum here either (it still poisons the sum). */
static inline float row_max(const logit_params *p, int64_t lo, int64_t hi) {
    float32x4_t max0_f32x4 = vdupq_n_f32(-INFINITY);
    float32x4_t max1_f32x4 = max0_f32x4, max2_f32x4 = max0_f32x4, max3_f32x4 = max0_f32x4;
    int64_t j = lo;
    for (; hi - j >= KEYS_PER_GROUP; j += KEYS_PER_GROUP) {
        max0_f32x4 = vmaxnmq_f32(max0_f32x4, logits_f32x4(p, j));
        max1_f32x4 = vmaxnmq_f32(max1_f32x4, logits_f32x4(p, j + 4));
        max2_f32x4 = vmaxnmq_f32(max2_f32x4, logits_f32x4(p, j + 8));
        max3_f32x4 = vmaxnmq_f32(max3_f32x4, logits_f32x4(p, j + 12));
    }
    for (; hi - j >= 4; j += 4) max0_f32x4 = vmaxnmq_f32(max0_f32x4, logits_f32x4(p, j));
    if (j < hi) max0_f32x4 = vmaxnmq_f32(max0_f32x4, logits_tail_f32x4(p, j, hi - j));
    return vmaxnmvq_f32(vmaxnmq_f32(vmaxnmq_f32(max0_f32x4, max1_f32x4), vmaxnmq_f32(max2_f32x4, max3_f32x4)));
}

/* Whether a logit in [lo, hi) is NaN: the rare check behind an all -inf maximum, which FMAXNM reached by skipping
 * NaN, so that a NaN logit makes its row NaN on every ISA. */
static int row_has_nan(const logit_params *p, int64_t lo, int64_t hi) {
    uint32x4_t nan_u32x4 = vdupq_n_u32(0);
    int64_t j = lo;
    for (; hi - j >= 4; j += 4) {
        float32x4_t x_f32x4 = logits_f32x4(p, j);
        nan_u32x4 = vorrq_u32(nan_u32x4, vmvnq_u32(vceqq_f32(x_f32x4, x_f32x4)));
    }
    if (j < hi) {
        float32x4_t x_f32x4 = logits_tail_f32x4(p, j, hi - j);
        nan_u32x4 = vorrq_u32(nan_u32x4, vmvnq_u32(vceqq_f32(x_f32x4, x_f32x4)));
    }
    return vmaxvq_u32(nan_u32x4) != 0;
}

/* Writes exp(x_j - mx) (flushed) to probs[lo, hi), recomputing the logits rather than storing and re-reading
 * them, and returns their sum. */
static inline double exp_store_sum(const logit_params *p, float *probs, int64_t lo, int64_t hi, float mx) {
    const float32x4_t mx_f32x4 = vdupq_n_f32(mx);
    const float32x4_t flush_f32x4 = vdupq_n_f32(POSATTN_EXP_FLUSH_BELOW);
    const float32x4_t zero_f32x4 = vdupq_n_f32(0.0f);
    float64x2_t sum_f64x2 = vdupq_n_f64(0.0);
    int64_t j = lo;
    while (hi - j >= KEYS_PER_GROUP) {
        int64_t groups = (hi - j) / KEYS_PER_GROUP;
        if (groups > GROUPS_PER_PARTIAL) groups = GROUPS_PER_PARTIAL;
        float32x4_t sum0_f32x4 = zero_f32x4, sum1_f32x4 = zero_f32x4, sum2_f32x4 = zero_f32x4,
                    sum3_f32x4 = zero_f32x4;
        for (int64_t g = 0; g < groups; ++g, j += KEYS_PER_GROUP) {
            float32x4_t d0_f32x4 = vsubq_f32(logits_f32x4(p, j), mx_f32x4);
            float32x4_t d1_f32x4 = vsubq_f32(logits_f32x4(p, j + 4), mx_f32x4);
            float32x4_t d2_f32x4 = vsubq_f32(logits_f32x4(p, j + 8), mx_f32x4);
            float32x4_t d3_f32x4 = vsubq_f32(logits_f32x4(p, j + 12), mx_f32x4);
            uint32x4_t below01_u32x4 = vandq_u32(vcltq_f32(d0_f32x4, flush_f32x4), vcltq_f32(d1_f32x4, flush_f32x4));
            uint32x4_t below23_u32x4 = vandq_u32(vcltq_f32(d2_f32x4, flush_f32x4), vcltq_f32(d3_f32x4, flush_f32x4));
            uint32x4_t below_u32x4 = vandq_u32(below01_u32x4, below23_u32x4);
            if (vminvq_u32(below_u32x4) != 0) {
                /* Far from the maximum (distant keys under a steep slope, masked spans): all 16 are exactly 0,
                 * and they add nothing to the sum. */
                vst1q_f32(probs + j, zero_f32x4);
                vst1q_f32(probs + j + 4, zero_f32x4);
                vst1q_f32(probs + j + 8, zero_f32x4);
                vst1q_f32(probs + j + 12, zero_f32x4);
                continue;
            }
            float32x4_t e0_f32x4 = flushed_exp_f32x4(d0_f32x4);
            float32x4_t e1_f32x4 = flushed_exp_f32x4(d1_f32x4);
            float32x4_t e2_f32x4 = flushed_exp_f32x4(d2_f32x4);
            float32x4_t e3_f32x4 = flushed_exp_f32x4(d3_f32x4);
            vst1q_f32(probs + j, e0_f32x4);
            vst1q_f32(probs + j + 4, e1_f32x4);
            vst1q_f32(probs + j + 8, e2_f32x4);
            vst1q_f32(probs + j + 12, e3_f32x4);
            sum0_f32x4 = vaddq_f32(sum0_f32x4, e0_f32x4);
            sum1_f32x4 = vaddq_f32(sum1_f32x4, e1_f32x4);
            sum2_f32x4 = vaddq_f32(sum2_f32x4, e2_f32x4);
            sum3_f32x4 = vaddq_f32(sum3_f32x4, e3_f32x4);
        }
        sum_f64x2 = add_widened_f64x2(sum_f64x2, sum0_f32x4);
        sum_f64x2 = add_widened_f64x2(sum_f64x2, sum1_f32x4);
        sum_f64x2 = add_widened_f64x2(sum_f64x2, sum2_f32x4);
        sum_f64x2 = add_widened_f64x2(sum_f64x2, sum3_f32x4);
    }
    /* At most 3 whole vectors and a tail remain: at most 4 terms per lane. */
    float32x4_t rest_f32x4 = zero_f32x4;
    for (; hi - j >= 4; j += 4) {
        float32x4_t e_f32x4 = flushed_exp_f32x4(vsubq_f32(logits_f32x4(p, j), mx_f32x4));
        vst1q_f32(probs + j, e_f32x4);
        rest_f32x4 = vaddq_f32(rest_f32x4, e_f32x4);
    }
    if (j < hi) {
        float e_buf[4];
        float32x4_t e_f32x4 = flushed_exp_f32x4(vsubq_f32(logits_tail_f32x4(p, j, hi - j), mx_f32x4));
        vst1q_f32(e_buf, e_f32x4);
        memcpy(probs + j, e_buf, (size_t)(hi - j) * sizeof(float));
        rest_f32x4 = vaddq_f32(rest_f32x4, e_f32x4); /* padding lanes are -inf - mx: flushed to 0 */
    }
    sum_f64x2 = add_widened_f64x2(sum_f64x2, rest_f32x4);
    return vaddvq_f64(sum_f64x2);
}

/*
 * probs[lo, hi) = e_j / sum as e_j * inv, inv = 1/sum rounded to float32: within 1 ulp of the quotient. Outputs
 * that would be below 2^-125 are 0, decided on e_j before the multiply so that no subnormal is ever formed:
 * `below` is 2^-125 * sum rounded up to float32, and for a float32 e_j, e_j < below exactly when
 * e_j / sum < 2^-125, the reference's rule. A NaN e_j or sum compares false and stays NaN.
 */
static inline void scale_row(float *probs, int64_t lo, int64_t hi, double sum) {
    const float inv = (float)(1.0 / sum);
    const double below_f64 = sum * (double)POSATTN_OUTPUT_FLUSH_BELOW; /* a power of 2: exact */
    float below = (float)below_f64;
    if ((double)below < below_f64) below = nextafterf(below, INFINITY);
    const float32x4_t inv_f32x4 = vdupq_n_f32(inv);
    const float32x4_t below_f32x4 = vdupq_n_f32(below);
    int64_t j = lo;
    for (; hi - j >= 4; j += 4) {
        float32x4_t e_f32x4 = vld1q_f32(probs + j);
        uint32x4_t flush_u32x4 = vcltq_f32(e_f32x4, below_f32x4);
        e_f32x4 = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e_f32x4), flush_u32x4));
        vst1q_f32(probs + j, vmulq_f32(e_f32x4, inv_f32x4));
    }
    for (; j < hi; ++j) probs[j] = probs[j] < below ? 0.0f : probs[j] * inv;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* N-D positions (2..4 axes)                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

/* Coordinates of keys j..j+3 along the kept axes: packed positions (stride 2..4) through one de-interleaving
 * vld2q/vld3q/vld4q when the 4 S floats exist, otherwise lane by lane (n < 4 keys: the padding lanes are 0). */
static inline void nd_coords_f32x4(const posattn_nd_positions *nd, const posattn_key_positions *keys, int64_t nk,
                                   int64_t j, int64_t n, float32x4_t coord_f32x4[4]) {
    const int64_t S = keys->k_pos_stride;
    const float *base = keys->k_pos + j * S;
    if (n == 4 && S >= 2 && S <= 4 && (nk - 1 - j) * S + nd->k_len >= 4 * S) {
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
        for (int a = 0; a < nd->axes; ++a) coord_f32x4[a] = v_f32x4[nd->offset[a]];
        return;
    }
    for (int a = 0; a < nd->axes; ++a) {
        float lanes[4] = {0, 0, 0, 0};
        for (int64_t l = 0; l < n; ++l) lanes[l] = base[l * S + nd->offset[a]];
        coord_f32x4[a] = vld1q_f32(lanes);
    }
}

/* The N-D distance of keys j..j+3, posattn_alibi_dist_nd operation for operation (FABD rounds |q - k| once, as
 * fabsf(q - k) does; FSQRT is correctly rounded), so bit-identical to the scalar reference. */
static inline float32x4_t nd_dist_f32x4(const posattn_nd_positions *nd, const posattn_key_positions *keys,
                                        int64_t nk, int64_t j, int64_t n) {
    float32x4_t coord_f32x4[4];
    nd_coords_f32x4(nd, keys, nk, j, n, coord_f32x4);
    float32x4_t acc_f32x4 = vdupq_n_f32(0.0f);
    for (int a = 0; a < nd->axes; ++a) {
        float32x4_t q_f32x4 = vdupq_n_f32(nd->q[a]);
        float32x4_t t_f32x4 = nd->l2 ? vsubq_f32(q_f32x4, coord_f32x4[a]) : vabdq_f32(q_f32x4, coord_f32x4[a]);
        if (nd->weighted) t_f32x4 = vmulq_f32(vdupq_n_f32(nd->w[a]), t_f32x4);
        if (nd->l2) t_f32x4 = vmulq_f32(t_f32x4, t_f32x4);
        acc_f32x4 = a == 0 ? t_f32x4 : vaddq_f32(acc_f32x4, t_f32x4);
    }
    return nd->l2 ? vsqrtq_f32(acc_f32x4) : acc_f32x4;
}

static void nd_bias_row(const posattn_bias_row *row) {
    const float32x4_t neg_slope_f32x4 = vdupq_n_f32(-row->slope);
    for (int64_t j = 0; j < row->nk; j += 4) {
        int64_t n = row->nk - j < 4 ? row->nk - j : 4;
        float32x4_t b_f32x4 = vmulq_f32(neg_slope_f32x4, nd_dist_f32x4(&row->nd, &row->keys, row->nk, j, n));
        if (n == 4) {
            vst1q_f32(row->bias + j, b_f32x4);
        } else {
            float lanes[4];
            vst1q_f32(lanes, b_f32x4);
            for (int64_t l = 0; l < n; ++l) row->bias[j + l] = lanes[l];
        }
    }
}

/* The logits of [lo, hi) into probs, as logits_from_f32x4 forms them with the N-D distance for |q - k|. */
static void nd_logits_row(const posattn_softmax_row *row) {
    const logit_params p = {
        .scores = row->scores,
        .mask = NULL,
        .has_softcap = row->softcap > 0.0f,
        .has_bias = 0,
        .scale_f32x4 = vdupq_n_f32(row->scale),
        .softcap_f32x4 = vdupq_n_f32(row->softcap),
    };
    const float32x4_t slope_f32x4 = vdupq_n_f32(row->slope), mask_scale_f32x4 = vdupq_n_f32(row->mask_scale);
    const float32x4_t zero_f32x4 = vdupq_n_f32(0.0f), minus_inf_f32x4 = vdupq_n_f32(-INFINITY);
    for (int64_t j = row->lo; j < row->hi; j += 4) {
        int64_t n = row->hi - j < 4 ? row->hi - j : 4;
        float s_buf[4] = {0}, m_buf[4] = {0};
        uint16_t h_buf[4] = {0};
        for (int64_t l = 0; l < n; ++l) {
            s_buf[l] = row->scores[j + l];
            if (row->mask && row->mask_is_f16) h_buf[l] = ((const uint16_t *)row->mask)[j + l];
            if (row->mask && !row->mask_is_f16) m_buf[l] = ((const float *)row->mask)[j + l];
        }
        float32x4_t x_f32x4 = logits_from_f32x4(&p, vld1q_f32(s_buf), zero_f32x4, zero_f32x4);
        x_f32x4 = vsubq_f32(x_f32x4, vmulq_f32(slope_f32x4, nd_dist_f32x4(&row->nd, &row->keys, row->nk, j, n)));
        if (row->mask) {
            float32x4_t m_f32x4 =
                row->mask_is_f16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h_buf))) : vld1q_f32(m_buf);
            uint32x4_t excluded_u32x4 = vceqq_f32(m_f32x4, minus_inf_f32x4);
            x_f32x4 = vbslq_f32(excluded_u32x4, minus_inf_f32x4,
                                vaddq_f32(x_f32x4, vmulq_f32(mask_scale_f32x4, m_f32x4)));
        }
        float lanes[4];
        vst1q_f32(lanes, x_f32x4);
        for (int64_t l = 0; l < n; ++l) row->probs[j + l] = lanes[l];
    }
}

void posattn_alibi_bias_row_f32_neon(const posattn_bias_row *row) {
    if (row->nd.axes >= 2) {
        nd_bias_row(row);
        return;
    }
    float *bias = row->bias;
    const int64_t nk = row->nk;
    const float32x4_t neg_slope_f32x4 = vdupq_n_f32(-row->slope);
    const float32x4_t q_pos_f32x4 = vdupq_n_f32(row->q_pos);
    int64_t j = 0;
    for (; nk - j >= KEYS_PER_GROUP; j += KEYS_PER_GROUP) {
        for (int64_t v = 0; v < KEYS_PER_GROUP; v += 4) {
            float32x4_t k_f32x4 = key_positions_f32x4(&row->keys, j + v);
            vst1q_f32(bias + j + v, vmulq_f32(neg_slope_f32x4, vabdq_f32(q_pos_f32x4, k_f32x4)));
        }
    }
    for (; nk - j >= 4; j += 4) {
        vst1q_f32(bias + j, vmulq_f32(neg_slope_f32x4, vabdq_f32(q_pos_f32x4, key_positions_f32x4(&row->keys, j))));
    }
    for (; j < nk; ++j) bias[j] = -row->slope * fabsf(row->q_pos - key_position(&row->keys, j));
}

void posattn_alibi_softmax_row_f32_neon(const posattn_softmax_row *row) {
    if (row->nd.axes >= 2 && row->slope != 0.0f) {
        /* N-D: the logits once into probs (the coordinates cost more than the traffic), then the softmax of those
         * logits in place, with nothing left to add: x = 1 * x is exact, so this is the fused result. */
        nd_logits_row(row);
        posattn_softmax_row rest = *row;
        rest.scores = row->probs;
        rest.scale = 1.0f;
        rest.softcap = 0.0f;
        rest.slope = 0.0f;
        rest.mask = NULL;
        rest.nd.axes = 0;
        posattn_alibi_softmax_row_f32_neon(&rest);
        return;
    }
    float *probs = row->probs;
    const int64_t lo = row->lo, hi = row->hi;
    /* Keys outside [lo, hi) are never read, so zeroing them first is safe in place too. */
    for (int64_t j = 0; j < lo; ++j) probs[j] = 0.0f;
    for (int64_t j = hi; j < row->nk; ++j) probs[j] = 0.0f;

    const logit_params p = {
        .scores = row->scores,
        .mask = row->mask,
        .mask_is_f16 = row->mask_is_f16,
        .has_softcap = row->softcap > 0.0f,
        .has_bias = row->slope != 0.0f,
        .keys = row->keys,
        .scale_f32x4 = vdupq_n_f32(row->scale),
        .softcap_f32x4 = vdupq_n_f32(row->softcap),
        .slope_f32x4 = vdupq_n_f32(row->slope),
        .q_pos_f32x4 = vdupq_n_f32(row->q_pos),
        .mask_scale_f32x4 = vdupq_n_f32(row->mask_scale),
    };
    float mx = row_max(&p, lo, hi);
    if (row->has_sink) mx = fmaxf(mx, row->sink);
    if (mx == -INFINITY) {
        /* No valid key and no sink: zeros, never 0/0, and an empty log-sum-exp; unless the maximum skipped a NaN
         * (of a logit or of the sink), which makes the row NaN as it would anywhere else. */
        int has_nan = (row->has_sink && isnan(row->sink)) || row_has_nan(&p, lo, hi);
        for (int64_t j = lo; j < hi; ++j) probs[j] = has_nan ? NAN : 0.0f;
        if (row->lse) *row->lse = has_nan ? NAN : -INFINITY;
        return;
    }
    double sum = exp_store_sum(&p, probs, lo, hi, mx);
    if (row->has_sink) sum += (double)vgetq_lane_f32(flushed_exp_f32x4(vdupq_n_f32(row->sink - mx)), 0);
    /* sum >= 1 (the maximum contributes e^0), so 1/sum and the threshold are normal floats. */
    scale_row(probs, lo, hi, sum);
    if (row->lse) *row->lse = (float)((double)mx + log(sum));
}
