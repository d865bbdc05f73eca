/*
 * The SVE vocabulary that the SVE kernel families share (src/sve/alibi.c, src/sve/attention.c): key positions
 * (implicit, strided, gathered past 32-bit indices), the N-D distance of posattn_alibi_dist_nd operation for
 * operation, and the inline exponential of exp_f32.h. Vector-length agnostic, as everything under src/sve/: no
 * constant, buffer or unrolling depends on svcntw(). Included only by translation units compiled for SVE.
 */
#ifndef POSATTN_SVE_VECTOR_SVE_H
#define POSATTN_SVE_VECTOR_SVE_H

#include <arm_sve.h>
#include <stdint.h>

#include "../exp_f32.h"
#include "../kernels.h"

/* The architectural maximum of svcntw() (2048-bit vectors). Index range checks use it rather than svcntw() itself:
 * the same decision at every width, and gcc 12's value-range pass crashes on svcntw() in such a bound. */
#define SVE_MAX_LANES_F32 64

/* p[l * stride] for the active lanes l. LD1W with 32-bit lane indices while any lane's index fits in them;
 * wider strides gather each half of the lanes with 64-bit indices (LD1W into 64-bit containers) and pack them. */
static inline svfloat32_t load_strided_f32(svbool_t pg, const float *p, int64_t stride) {
    if (stride == 1) return svld1_f32(pg, p);
    if (stride <= INT32_MAX / (SVE_MAX_LANES_F32 - 1)) {
        return svld1_gather_s32index_f32(pg, p, svindex_s32(0, (int32_t)stride));
    }
    const int64_t half = (int64_t)svcntd();
    const svuint64_t low_u64 = svld1uw_gather_s64index_u64(svunpklo_b(pg), (const uint32_t *)p, svindex_s64(0, stride));
    const svuint64_t high_u64 =
        svld1uw_gather_s64index_u64(svunpkhi_b(pg), (const uint32_t *)(p + half * stride), svindex_s64(0, stride));
    return svuzp1_f32(svreinterpret_f32_u64(low_u64), svreinterpret_f32_u64(high_u64));
}

/* (float)(j + l) for every lane l, rounded as the C conversion from int64_t rounds it. */
static inline svfloat32_t implicit_positions_f32(int64_t j) {
    if (j <= INT32_MAX - SVE_MAX_LANES_F32) return svcvt_f32_s32_x(svptrue_b32(), svindex_s32((int32_t)j, 1));
    /* SCVTF from 64-bit lanes leaves each float in the low half of its container; UZP1 packs both halves. */
    const svbool_t all_b64 = svptrue_b64();
    const svfloat32_t low_f32 = svcvt_f32_s64_x(all_b64, svindex_s64(j, 1));
    const svfloat32_t high_f32 = svcvt_f32_s64_x(all_b64, svindex_s64(j + (int64_t)svcntd(), 1));
    return svuzp1_f32(low_f32, high_f32);
}

static inline svfloat32_t key_positions_f32(svbool_t pg, const posattn_key_positions *keys, int64_t j) {
    if (!keys->k_pos) return implicit_positions_f32(j);
    return load_strided_f32(pg, keys->k_pos + j * keys->k_pos_stride, keys->k_pos_stride);
}

static inline svfloat32_t tuple_part_f32(svfloat32x4_t v, int part) {
    switch (part) {
    case 0: return svget4_f32(v, 0);
    case 1: return svget4_f32(v, 1);
    case 2: return svget4_f32(v, 2);
    default: return svget4_f32(v, 3);
    }
}

/* Axis a's term of posattn_alibi_dist_nd for the coordinates k: |q - k| (FABD: one rounding, as fabsf(q - k)) or
 * q - k, times the weight, squared for L2. */
static inline svfloat32_t nd_term_f32(svbool_t pg, const posattn_nd_positions *nd, int a, svfloat32_t k_f32) {
    svfloat32_t t_f32 = nd->l2 ? svsubr_n_f32_x(pg, k_f32, nd->q[a]) : svabd_n_f32_x(pg, k_f32, nd->q[a]);
    if (nd->weighted) t_f32 = svmul_n_f32_x(pg, t_f32, nd->w[a]);
    if (nd->l2) t_f32 = svmul_f32_x(pg, t_f32, t_f32);
    return t_f32;
}

/*
 * The N-D distances of keys j .. j+lanes-1 (active lanes), posattn_alibi_dist_nd operation for operation. Packed
 * positions (stride S = 2..4 floats) load as S-float structures; the structure of the last active key is read in
 * full, so only where it exists in full: that key is not the last one of the row, or positions are S floats long.
 */
static inline svfloat32_t nd_dist_f32(svbool_t pg, const posattn_nd_positions *nd, const posattn_key_positions *keys,
                                      int64_t nk, int64_t j) {
    const int64_t S = keys->k_pos_stride;
    const float *base = keys->k_pos + j * S;
    const int structured = S >= 2 && S <= 4 && nd->k_len <= S && (nd->k_len == S || j + (int64_t)svcntw() < nk);
    svfloat32x4_t coords = svundef4_f32();
    if (structured) {
        const svfloat32_t zero_f32 = svdup_n_f32(0.0f);
        if (S == 2) {
            const svfloat32x2_t v = svld2_f32(pg, base);
            coords = svcreate4_f32(svget2_f32(v, 0), svget2_f32(v, 1), zero_f32, zero_f32);
        } else if (S == 3) {
            const svfloat32x3_t v = svld3_f32(pg, base);
            coords = svcreate4_f32(svget3_f32(v, 0), svget3_f32(v, 1), svget3_f32(v, 2), zero_f32);
        } else {
            coords = svld4_f32(pg, base);
        }
    }
    svfloat32_t acc_f32 = svdup_n_f32(0.0f);
    for (int a = 0; a < nd->axes; ++a) {
        const svfloat32_t k_f32 =
            structured ? tuple_part_f32(coords, nd->offset[a]) : load_strided_f32(pg, base + nd->offset[a], S);
        const svfloat32_t t_f32 = nd_term_f32(pg, nd, a, k_f32);
        acc_f32 = a == 0 ? t_f32 : svadd_f32_x(pg, acc_f32, t_f32);
    }
    return nd->l2 ? svsqrt_f32_x(pg, acc_f32) : acc_f32;
}

/*
 * exp(x) for x in [-87, 0] (exp_f32.h): n = round(x log2 e), r = x - n ln2 in two FMA steps, exp(r) by the Cephes
 * polynomial, then 2^n added to the exponent field. On that range n >= -126, and n = -126 only for x <= -86.99
 * where r >= 0.33 and exp(r) > 1, so the result is normal and the integer add cannot underflow the exponent. Other
 * inputs give garbage that the caller discards; a NaN stays NaN (its n converts to 0).
 */
static inline svfloat32_t exp_f32(svbool_t pg, svfloat32_t x_f32) {
    const svfloat32_t n_f32 = svrintn_f32_x(pg, svmul_n_f32_x(pg, x_f32, POSATTN_EXP_LOG2E));
    svfloat32_t r_f32 = svmls_n_f32_x(pg, x_f32, n_f32, POSATTN_EXP_LN2_HI);
    r_f32 = svmls_n_f32_x(pg, r_f32, n_f32, POSATTN_EXP_LN2_LO);
    const svfloat32_t r2_f32 = svmul_f32_x(pg, r_f32, r_f32);
    svfloat32_t p_f32 = svmad_n_f32_x(pg, svdup_n_f32(POSATTN_EXP_P0), r_f32, POSATTN_EXP_P1);
    p_f32 = svmad_n_f32_x(pg, p_f32, r_f32, POSATTN_EXP_P2);
    p_f32 = svmad_n_f32_x(pg, p_f32, r_f32, POSATTN_EXP_P3);
    p_f32 = svmad_n_f32_x(pg, p_f32, r_f32, POSATTN_EXP_P4);
    p_f32 = svmad_n_f32_x(pg, p_f32, r_f32, POSATTN_EXP_P5);
    const svfloat32_t y_f32 = svadd_n_f32_x(pg, svmla_f32_x(pg, r_f32, p_f32, r2_f32), 1.0f);
    const svint32_t scale_s32 = svlsl_n_s32_x(pg, svcvt_s32_f32_x(pg, n_f32), 23);
    return svreinterpret_f32_s32(svadd_s32_x(pg, svreinterpret_s32_f32(y_f32), scale_s32));
}

/* float16 p[l] widened exactly to float32 for the active lanes: LD1H into 32-bit containers, then FCVT of the
 * low half of each. */
static inline svfloat32_t load_f16_as_f32(svbool_t pg, const uint16_t *p) {
    return svcvt_f32_f16_x(pg, svreinterpret_f16_u32(svld1uh_u32(pg, p)));
}

/* exp(d) for d <= 0, exactly 0 where d < flush_below (compared before any exponential is formed, so no subnormal
 * ever is); a NaN d stays NaN. */
static inline svfloat32_t flushed_exp_below_f32(svbool_t pg, svfloat32_t d_f32, float flush_below) {
    const svbool_t below = svcmplt_n_f32(pg, d_f32, flush_below);
    return svsel_f32(below, svdup_n_f32(0.0f), exp_f32(pg, d_f32));
}

#endif /* POSATTN_SVE_VECTOR_SVE_H */
