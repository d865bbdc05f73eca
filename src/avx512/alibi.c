/*
 * AVX-512 ALiBi kernels: the vector layer under the external bias row and the fused bias-add-softmax
 * row of src/alibi_generic.h (the algorithm, the rounding policy and the variants are written there once).
 *
 * ISA: AVX-512 F (arithmetic, masks, scalef), BW+VL (masked 16-bit loads of f16 masks), DQ (64-bit integer to
 * float for very long rows, 256-bit halves); F16C for the f16 mask conversion. The caller has checked the CPU.
 *
 * Tails: every loop ends with one masked vector (_mm512_maskz_loadu_ps / _mm512_mask_storeu_ps and masked
 * gathers), so no byte outside [0, nk) of any caller buffer is read or written, whatever the alignment.
 *
 * Sums: each lane of a float32 accumulator adds at most 16 exponentials, each in [0, 1], before it is widened and
 * added to float64 accumulators. A float32 partial sum of 16 non-negative terms is within 15 u of exact and the
 * float64 stage adds nothing visible at 2^-24, so the denominator is within 16 u for any row length (2^20 keys
 * and far beyond), which is the budget of the Accuracy paragraph of posattn_alibi_softmax in posattn.h.
 *
 * Logits: formed with the scalar reference's roundings (no FMA), as on every ISA, so without a softcap every path
 * holds the same logits bit for bit and agrees on the maximum and on every flush decision.
 *
 * Exponential: the polynomial of exp_f32.h kept in registers (below 2 ulp on [-87, 0]), 2^n applied with scalef
 * under the write mask of the lanes that are not flushed, so zeroed lanes cost nothing. The same flush, applied to
 * whole groups of vectors, lets the exp pass skip the polynomial where ALiBi has pushed every lane far below the
 * maximum, which is most of a long row.
 *
 * Output flush: pass 3 decides it through the write mask of the multiply (vf_mulz), so a subnormal product is
 * never formed (a microcode assist of about 100 cycles per vector on Intel).
 *
 * N-D positions (2..4 axes): packed positions (stride <= 4 floats) are loaded as whole vectors (masked at the end
 * of the key array) and de-interleaved by two-source permutes, or for (t, z, y, x) by a 4 x 4 transpose per
 * 128-bit lane; wider strides gather per axis. The distance is formed by the generic code, posattn_alibi_dist_nd
 * operation for operation (vsqrtps is correctly rounded), so N-D biases are the scalar reference's bit for bit.
 */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <stdint.h>

#include "../kernels.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* The vector layer (contract in alibi_generic.h)                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

#define ALIBI_ISA avx512
#define ALIBI_LANES INT64_C(16)

typedef __m512 vf;
typedef __m512d vd;
typedef __mmask16 vm;

static inline vm vm_first(int64_t n) { return n >= 16 ? (vm)0xffff : (vm)((1u << n) - 1u); }

static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vf vf_load_part(const float *p, int64_t n) { return _mm512_maskz_loadu_ps(vm_first(n), p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void vf_store_part(float *p, vf v, int64_t n) { _mm512_mask_storeu_ps(p, vm_first(n), v); }
static inline vf vf_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline vf vf_load_f16_part(const uint16_t *p, int64_t n) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(vm_first(n), p));
}

static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_iota(void) { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf vf_absdiff(vf a, vf b) { return _mm512_abs_ps(_mm512_sub_ps(a, b)); }
static inline vf vf_sub_mul(vf x, vf a, vf b) { return _mm512_sub_ps(x, _mm512_mul_ps(a, b)); }
static inline vf vf_add_mul(vf x, vf a, vf b) { return _mm512_add_ps(x, _mm512_mul_ps(a, b)); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
/* vmaxps returns its second operand when either is NaN. */
static inline vf vf_max_ign(vf acc, vf x) { return _mm512_max_ps(x, acc); }
static inline vf vf_max_nan(vf c, vf x) { return _mm512_max_ps(c, x); }
static inline vf vf_tanh(vf x) { return Sleef_tanhf16_u10avx512f(x); }

static inline vm vm_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vm_nlt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NLT_UQ); }
static inline vm vm_isnan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline int vm_any(vm m) { return m != 0; }
static inline vf vf_select(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
static inline vf vf_mulz(vm m, vf a, vf b) { return _mm512_maskz_mul_ps(m, a, b); }
/* scalef forms p 2^n in the lanes of m only. */
static inline vf vf_pow2_mulz(vm m, vf p, vf n, vf t) {
    (void)t;
    return _mm512_maskz_scalef_ps(m, p, n);
}

static inline float vf_reduce_max(vf v) { return _mm512_reduce_max_ps(v); }
static inline vd vd_zero(void) { return _mm512_setzero_pd(); }
static inline vd vd_widen_add(vd s, vf v) {
    s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    return _mm512_add_pd(s, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
}
static inline vd vd_add(vd a, vd b) { return _mm512_add_pd(a, b); }
static inline double vd_reduce_add(vd s) { return _mm512_reduce_add_pd(s); }

/* Key positions --------------------------------------------------------------------------------------------- */

typedef struct vkeys {
    const float *k_pos;
    int64_t k_stride;
    __m512i offsets_lo_i64x8, offsets_hi_i64x8; /* lane * k_stride, for the gathers */
} vkeys;

static inline void vkeys_init(vkeys *k, const posattn_key_positions *keys) {
    k->k_pos = keys->k_pos;
    k->k_stride = keys->k_pos_stride;
    const __m512i stride_i64x8 = _mm512_set1_epi64(keys->k_pos_stride);
    k->offsets_lo_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), stride_i64x8);
    k->offsets_hi_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15), stride_i64x8);
}

/* Two masked gathers with 64-bit offsets: j * stride and lane * stride can exceed 2^31 elements. A masked gather
 * merges into its source operand, here a fresh zero. When it knows the mask is full, GCC drops that zero and
 * gathers into whatever register an earlier gather wrote, which chains the gathers of a group one after the other
 * (pass 1 of strided rows 14% slower); the empty asm hides the mask's value from it. */
static inline vf gather_f32x16(const float *base, __m512i offsets_lo_i64x8, __m512i offsets_hi_i64x8, vm active) {
    unsigned m = active;
    __asm__("" : "+r"(m));
    __m256 lo_f32x8 = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)m, offsets_lo_i64x8, base, 4);
    __m256 hi_f32x8 = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)(m >> 8), offsets_hi_i64x8, base, 4);
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo_f32x8), hi_f32x8, 1);
}

static inline vf vf_keys_strided(const vkeys *k, int64_t j, int64_t n) {
    return gather_f32x16(k->k_pos + j * k->k_stride, k->offsets_lo_i64x8, k->offsets_hi_i64x8, vm_first(n));
}

/* (float)(j + lane) for any j: int64 to float rounds once, exactly as the scalar conversion does. */
static inline vf vf_iota_wide(int64_t j) {
    __m512i j_i64x8 = _mm512_set1_epi64(j);
    __m256 lo_f32x8 = _mm512_cvtepi64_ps(_mm512_add_epi64(j_i64x8, _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)));
    __m256 hi_f32x8 = _mm512_cvtepi64_ps(_mm512_add_epi64(j_i64x8, _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15)));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo_f32x8), hi_f32x8, 1);
}

/* N-D coordinates ------------------------------------------------------------------------------------------- */

/* Positions at most 4 floats apart (packed, the common layout) come from S contiguous vectors (masked where the key
 * array ends: no float past the last key's k_len is read) split by two-source permutes; wider strides gather each
 * axis with 64-bit offsets. */
typedef struct vnd {
    const float *k_pos;
    int64_t k_stride, k_len, nk;
    int packed;
    int whole4; /* S = A = 4 kept axes in order: the 128-bit transpose applies */
    __m512i idx_i32x16[4];
    __mmask16 hi[4];
    int offset[4];
    __m512i offsets_lo_i64x8, offsets_hi_i64x8;
} vnd;

static inline void vnd_init(vnd *c, const posattn_nd_positions *nd, const posattn_key_positions *keys, int64_t nk) {
    c->k_pos = keys->k_pos;
    c->k_stride = keys->k_pos_stride;
    c->k_len = nd->k_len;
    c->nk = nk;
    c->packed = c->k_stride <= 4;
    c->whole4 = c->k_stride == 4 && nd->axes == 4;
    for (int a = 0; a < nd->axes; ++a) c->whole4 &= nd->offset[a] == a;
    const __m512i stride_i64x8 = _mm512_set1_epi64(c->k_stride);
    c->offsets_lo_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), stride_i64x8);
    c->offsets_hi_i64x8 = _mm512_mullo_epi64(_mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15), stride_i64x8);
    /* Packed layout: the float of lane l on axis a is element e = S l + offset of the S loaded vectors, taken by
     * permutex2var from (v0, v1) when e < 32 and from (v2, v3) otherwise (index e mod 32 either way). */
    const __m512i lane_i32x16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i e_base_i32x16 = _mm512_mullo_epi32(lane_i32x16, _mm512_set1_epi32(c->packed ? (int)c->k_stride : 0));
    for (int a = 0; a < 4; ++a) {
        const int off = a < nd->axes ? nd->offset[a] : 0;
        const __m512i e_i32x16 = _mm512_add_epi32(e_base_i32x16, _mm512_set1_epi32(off));
        c->idx_i32x16[a] = _mm512_and_si512(e_i32x16, _mm512_set1_epi32(31));
        c->hi[a] = _mm512_cmpge_epi32_mask(e_i32x16, _mm512_set1_epi32(32));
        c->offset[a] = off;
    }
}

static inline __mmask16 elements_mask(int64_t avail, int64_t first) {
    int64_t n = avail - first;
    return n <= 0 ? (__mmask16)0 : vm_first(n);
}

/* Coordinates of keys j..j+n-1 on the kept axes. Returns 1 when they come out of the transpose in the order
 * lane 4L + m = key 4m + L (vf_nd_key_order undoes it on the distance: one permute, no rounding). */
static inline __attribute__((always_inline)) int vnd_coords(const vnd *c, int axes, int64_t j, int64_t n, vf *c0,
                                                            vf *c1, vf *c2, vf *c3) {
    const float *base = c->k_pos + j * c->k_stride;
    if (axes == 4 && c->whole4 && (c->nk - 1 - j) * 4 + 4 >= 64) {
        /* (t, z, y, x), 16 whole positions: a 4 x 4 transpose in each 128-bit lane (8 one-source shuffles instead
         * of 8 two-source permutes and 4 blends). */
        __m512 v0_f32x16 = _mm512_loadu_ps(base), v1_f32x16 = _mm512_loadu_ps(base + 16);
        __m512 v2_f32x16 = _mm512_loadu_ps(base + 32), v3_f32x16 = _mm512_loadu_ps(base + 48);
        __m512 t0_f32x16 = _mm512_unpacklo_ps(v0_f32x16, v1_f32x16);
        __m512 t1_f32x16 = _mm512_unpackhi_ps(v0_f32x16, v1_f32x16);
        __m512 t2_f32x16 = _mm512_unpacklo_ps(v2_f32x16, v3_f32x16);
        __m512 t3_f32x16 = _mm512_unpackhi_ps(v2_f32x16, v3_f32x16);
        *c0 = _mm512_shuffle_ps(t0_f32x16, t2_f32x16, 0x44);
        *c1 = _mm512_shuffle_ps(t0_f32x16, t2_f32x16, 0xee);
        *c2 = _mm512_shuffle_ps(t1_f32x16, t3_f32x16, 0x44);
        *c3 = _mm512_shuffle_ps(t1_f32x16, t3_f32x16, 0xee);
        return 1;
    }
    __m512 coord_f32x16[4];
    if (c->packed) {
        const int64_t S = c->k_stride;
        const int64_t avail = (c->nk - 1 - j) * S + c->k_len; /* floats readable from base */
        __m512 v0_f32x16, v1_f32x16, v2_f32x16, v3_f32x16;
        if (avail >= 16 * S) {
            v0_f32x16 = _mm512_loadu_ps(base);
            v1_f32x16 = _mm512_loadu_ps(base + 16);
            v2_f32x16 = S > 2 ? _mm512_loadu_ps(base + 32) : v1_f32x16;
            v3_f32x16 = S > 3 ? _mm512_loadu_ps(base + 48) : v2_f32x16;
        } else {
            v0_f32x16 = _mm512_maskz_loadu_ps(elements_mask(avail, 0), base);
            v1_f32x16 = _mm512_maskz_loadu_ps(elements_mask(avail, 16), base + 16);
            v2_f32x16 = S > 2 ? _mm512_maskz_loadu_ps(elements_mask(avail, 32), base + 32) : v1_f32x16;
            v3_f32x16 = S > 3 ? _mm512_maskz_loadu_ps(elements_mask(avail, 48), base + 48) : v2_f32x16;
        }
        for (int a = 0; a < axes; ++a) {
            __m512 r_f32x16 = _mm512_permutex2var_ps(v0_f32x16, c->idx_i32x16[a], v1_f32x16);
            if (S > 2) {
                r_f32x16 = _mm512_mask_mov_ps(r_f32x16, c->hi[a],
                                              _mm512_permutex2var_ps(v2_f32x16, c->idx_i32x16[a], v3_f32x16));
            }
            coord_f32x16[a] = r_f32x16;
        }
    } else {
        for (int a = 0; a < axes; ++a) {
            coord_f32x16[a] = gather_f32x16(base + c->offset[a], c->offsets_lo_i64x8, c->offsets_hi_i64x8,
                                            vm_first(n));
        }
    }
    *c0 = coord_f32x16[0], *c1 = coord_f32x16[1];
    if (axes > 2) *c2 = coord_f32x16[2];
    if (axes > 3) *c3 = coord_f32x16[3];
    return 0;
}

static inline vf vf_nd_key_order(vf v, int order) {
    if (!order) return v;
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), v);
}

#include "../alibi_generic.h"
