/*
 * AVX2 ALiBi kernels: the vector layer under the external bias row and the fused bias-add-softmax row
 * of src/alibi_generic.h (the algorithm, the rounding policy and the variants are written there once).
 *
 * ISA: AVX2 (256-bit integer lanes for tail masks, gathers for strided key positions), FMA (the exponential; and
 * the logit's additions as FMAs by 1, which round as additions do), F16C (_mm256_cvtph_ps for f16 masks). The
 * dispatcher has checked the CPU and the OS (YMM state) before any of this runs.
 *
 * Tails: AVX2 has no write masks, so every loop ends with one vector whose lanes past the end are switched off by
 * a lane mask: _mm256_maskload_ps / _mm256_maskstore_ps (which neither fault nor touch masked-out lanes) and
 * masked gathers for float data; an f16 mask tail is copied into a local buffer, as there is no 16-bit masked
 * load. So no byte outside [0, nk) of any caller buffer is read or written, whatever the alignment (all accesses
 * are unaligned loads and stores), and in place (probs == scores) works because each vector is read before the
 * same vector is written.
 *
 * Sums: each lane of a float32 accumulator adds at most 16 exponentials, each in [0, 1], before it is widened and
 * added to float64 accumulators. A float32 partial sum of 16 non-negative terms is within 15 u of exact and the
 * float64 stage adds nothing visible at 2^-24, so the denominator is within 16 u for any row length (2^20 keys
 * and far beyond), the budget of the Accuracy paragraph of posattn_alibi_softmax in posattn.h.
 *
 * Logits: formed with the scalar reference's roundings, as on every ISA: the bias and the mask term are a
 * rounded product and a rounded sum each, never one FMA, so without a softcap the logits are bit-identical to
 * every other path. That costs AVX2 one operation per vector over its former FMA: the sums run on the multiply
 * pipes (vf_sub_mul) to spread the load, and pass 1 stores the logits of rows of any length.
 *
 * Exponential: the polynomial of exp_f32.h kept in registers (below 2 ulp on [-87, 0]). The argument is clamped
 * to POSATTN_EXP_FLUSH_BELOW first, so 2^n is built (by shifting the shifter's sum into the exponent field) only
 * for n in [-126, 0] and every product is at least e^-87 > FLT_MIN: no lane, live or flushed, ever forms a
 * subnormal (each one would cost a microcode assist). Lanes below the threshold are then zeroed, and whole groups
 * of them skip the polynomial: under ALiBi most of a long row sits far below the maximum. A multiply rather than
 * an integer add to the exponent field, so a NaN stays NaN.
 *
 * N-D positions (2..4 axes): packed positions (stride <= 4 floats) are loaded as whole vectors (masked at the end
 * of the key array) and de-interleaved by shuffles (dedicated ones for (y, x), (t, y, x) and (t, z, y, x)), wider
 * strides gathered per axis. The distance is formed by the generic code, posattn_alibi_dist_nd operation for
 * operation (no FMA; vsqrtps is correctly rounded), so N-D biases are the scalar reference's bit for bit.
 */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* The vector layer (contract in alibi_generic.h)                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

#define ALIBI_ISA avx2
#define ALIBI_LANES INT64_C(8)
/* Rows of every length store their logits in pass 1 (see POSATTN_STORED_LOGITS_MAX_KEYS): forming a logit again
 * costs AVX2 more than the traffic, also past L2 (decode, 32768 keys: 15% faster; 131072 keys: 7%). */
#define POSATTN_STORED_LOGITS_MAX_KEYS INT64_MAX

typedef __m256 vf;
typedef __m256d vd;
typedef __m256 vm; /* all-ones lanes */

/* Lanes [0, min(n, 8)) set; n >= 1. */
static inline vm vm_first(int64_t n) {
    const int m = n < 8 ? (int)n : 8;
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}

static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vf vf_load_part(const float *p, int64_t n) {
    return _mm256_maskload_ps(p, _mm256_castps_si256(vm_first(n)));
}
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void vf_store_part(float *p, vf v, int64_t n) {
    _mm256_maskstore_ps(p, _mm256_castps_si256(vm_first(n)), v);
}
static inline vf vf_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline vf vf_load_f16_part(const uint16_t *p, int64_t n) {
    uint16_t tail[8] = {0};
    memcpy(tail, p, (size_t)(n < 8 ? n : 8) * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tail));
}

static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_iota(void) { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_absdiff(vf a, vf b) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(a, b)); }
/* x - a b and x + a b with the product rounded, then the sum rounded (never one fused rounding). The sum is an FMA
 * by 1, which rounds exactly as the addition does: it runs on the multiply pipes, next to the logit's compares,
 * maxima and subtractions on the add pipes. */
static inline vf vf_sub_mul(vf x, vf a, vf b) {
    return _mm256_fnmadd_ps(_mm256_mul_ps(a, b), _mm256_set1_ps(1.0f), x);
}
static inline vf vf_add_mul(vf x, vf a, vf b) {
    return _mm256_fmadd_ps(_mm256_mul_ps(a, b), _mm256_set1_ps(1.0f), x);
}
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
/* vmaxps returns its second operand when either is NaN. */
static inline vf vf_max_ign(vf acc, vf x) { return _mm256_max_ps(x, acc); }
static inline vf vf_max_nan(vf c, vf x) { return _mm256_max_ps(c, x); }
static inline vf vf_tanh(vf x) { return Sleef_tanhf8_u10avx2(x); }

static inline vm vm_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vm_nlt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NLT_UQ); }
static inline vm vm_isnan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline int vm_any(vm m) { return _mm256_movemask_ps(m) != 0; }
static inline vf vf_select(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
/* Zeroed before the multiply: 0 * b is 0, never a subnormal. */
static inline vf vf_mulz(vm m, vf a, vf b) { return _mm256_mul_ps(_mm256_and_ps(m, a), b); }
/* t's low mantissa bits hold n + 127: shifted into the exponent field they make 2^n. */
static inline vf vf_pow2_mulz(vm m, vf p, vf n, vf t) {
    (void)n;
    const vf pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_and_ps(m, _mm256_mul_ps(p, pow2n));
}

static inline float vf_reduce_max(vf v) {
    __m128 m_f32x4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m_f32x4 = _mm_max_ps(m_f32x4, _mm_movehl_ps(m_f32x4, m_f32x4));
    m_f32x4 = _mm_max_ss(m_f32x4, _mm_shuffle_ps(m_f32x4, m_f32x4, 1));
    return _mm_cvtss_f32(m_f32x4);
}
static inline vd vd_zero(void) { return _mm256_setzero_pd(); }
static inline vd vd_widen_add(vd s, vf v) {
    s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(s, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
static inline vd vd_add(vd a, vd b) { return _mm256_add_pd(a, b); }
static inline double vd_reduce_add(vd s) {
    __m128d s_f64x2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    s_f64x2 = _mm_add_sd(s_f64x2, _mm_unpackhi_pd(s_f64x2, s_f64x2));
    return _mm_cvtsd_f64(s_f64x2);
}

/* Key positions --------------------------------------------------------------------------------------------- */

typedef struct vkeys {
    const float *k_pos;
    int64_t k_stride;
    __m256i offsets_lo_i64x4, offsets_hi_i64x4; /* lane * k_stride, for the gathers */
} vkeys;

static inline void vkeys_init(vkeys *k, const posattn_key_positions *keys) {
    k->k_pos = keys->k_pos;
    k->k_stride = keys->k_pos_stride;
    /* 64-bit offsets: lane * stride can pass 2^31 elements. Unsigned, because the offsets of lanes past the end of
     * a short row may wrap; those lanes are masked off and never dereferenced. */
    const uint64_t s = (uint64_t)keys->k_pos_stride;
    k->offsets_lo_i64x4 = _mm256_setr_epi64x(0, (int64_t)s, (int64_t)(2 * s), (int64_t)(3 * s));
    k->offsets_hi_i64x4 = _mm256_setr_epi64x((int64_t)(4 * s), (int64_t)(5 * s), (int64_t)(6 * s), (int64_t)(7 * s));
}

/* Two masked gathers with 64-bit offsets. A masked gather merges into its source operand, here a fresh zero. When
 * it knows the mask is full, GCC drops that zero and gathers into whatever register an earlier gather wrote, which
 * chains the gathers of a group one after the other; the empty asm hides the mask's value from it. */
static inline vf gather_f32x8(const float *base, __m256i offsets_lo_i64x4, __m256i offsets_hi_i64x4, vm active) {
    __asm__("" : "+x"(active));
    __m128 lo_f32x4 = _mm256_mask_i64gather_ps(_mm_setzero_ps(), base, offsets_lo_i64x4,
                                               _mm256_castps256_ps128(active), 4);
    __m128 hi_f32x4 = _mm256_mask_i64gather_ps(_mm_setzero_ps(), base, offsets_hi_i64x4,
                                               _mm256_extractf128_ps(active, 1), 4);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo_f32x4), hi_f32x4, 1);
}

static inline vf vf_keys_strided(const vkeys *k, int64_t j, int64_t n) {
    return gather_f32x8(k->k_pos + j * k->k_stride, k->offsets_lo_i64x4, k->offsets_hi_i64x4, vm_first(n));
}

/* (float)(j + lane) for any j, rounded once as the scalar conversion rounds. AVX2 converts only 32-bit integers,
 * so rows past 2^31 keys (never seen in practice) convert lane by lane. */
static inline vf vf_iota_wide(int64_t j) {
    if (j <= INT32_MAX - 8) {
        __m256i j_i32x8 = _mm256_add_epi32(_mm256_set1_epi32((int32_t)j), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        return _mm256_cvtepi32_ps(j_i32x8);
    }
    float lanes[8];
    for (int l = 0; l < 8; ++l) lanes[l] = (float)(j + l);
    return _mm256_loadu_ps(lanes);
}

/* N-D coordinates ------------------------------------------------------------------------------------------- */

/* Positions at most 4 floats apart (packed, the common layout) come from S contiguous vectors (masked loads where
 * the key array ends: no float past the last key's k_len is read), each axis picked from them by lane permutes
 * and blends; wider strides gather each axis with 64-bit offsets. */
typedef struct vnd {
    const float *k_pos;
    int64_t k_stride, k_len, nk;
    int packed;
    int whole; /* S = A = kept axes in order (the usual layout): the dedicated 2-, 3- and 4-axis shuffles apply */
    __m256i idx_i32x8[4];
    __m256 from_f32x8[4][4]; /* lanes of axis a that come from loaded vector i */
    int offset[4];
    __m256i offsets_lo_i64x4, offsets_hi_i64x4;
} vnd;

static inline void vnd_init(vnd *c, const posattn_nd_positions *nd, const posattn_key_positions *keys, int64_t nk) {
    vkeys k;
    vkeys_init(&k, keys);
    c->k_pos = keys->k_pos;
    c->k_stride = keys->k_pos_stride;
    c->k_len = nd->k_len;
    c->nk = nk;
    c->packed = c->k_stride <= 4;
    c->whole = c->k_stride == nd->axes;
    for (int a = 0; a < nd->axes; ++a) c->whole &= nd->offset[a] == a;
    c->offsets_lo_i64x4 = k.offsets_lo_i64x4;
    c->offsets_hi_i64x4 = k.offsets_hi_i64x4;
    /* Packed layout: the float of lane l on axis a is element e = S l + offset of the S loaded vectors: lane
     * e mod 8 of vector e / 8. */
    const __m256i e_base_i32x8 = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                    _mm256_set1_epi32(c->packed ? (int)c->k_stride : 0));
    for (int a = 0; a < 4; ++a) {
        const int off = a < nd->axes ? nd->offset[a] : 0;
        const __m256i e_i32x8 = _mm256_add_epi32(e_base_i32x8, _mm256_set1_epi32(c->packed ? off : 0));
        c->idx_i32x8[a] = _mm256_and_si256(e_i32x8, _mm256_set1_epi32(7));
        const __m256i vec_i32x8 = _mm256_srli_epi32(e_i32x8, 3);
        for (int i = 0; i < 4; ++i) {
            c->from_f32x8[a][i] = _mm256_castsi256_ps(_mm256_cmpeq_epi32(vec_i32x8, _mm256_set1_epi32(i)));
        }
        c->offset[a] = off;
    }
}

static inline vf load_elements_f32x8(const float *p, int64_t avail) {
    if (avail >= 8) return _mm256_loadu_ps(p);
    if (avail <= 0) return _mm256_setzero_ps();
    return vf_load_part(p, avail);
}

/* Coordinates of keys j..j+n-1 on the kept axes, in key order (returns 0). */
static inline __attribute__((always_inline)) int vnd_coords(const vnd *c, int axes, int64_t j, int64_t n, vf *c0,
                                                            vf *c1, vf *c2, vf *c3) {
    const float *base = c->k_pos + j * c->k_stride;
    __m256 coord_f32x8[4];
    if (c->packed) {
        const int64_t S = c->k_stride;
        const int64_t avail = (c->nk - 1 - j) * S + c->k_len; /* floats readable from base */
        if (axes == 4 && c->whole && avail >= 32) {
            /* (t, z, y, x): a 4 x 4 transpose in each 128-bit half, keys l and l + 4 side by side. */
            __m256 r0_f32x8 = _mm256_loadu2_m128(base + 16, base);
            __m256 r1_f32x8 = _mm256_loadu2_m128(base + 20, base + 4);
            __m256 r2_f32x8 = _mm256_loadu2_m128(base + 24, base + 8);
            __m256 r3_f32x8 = _mm256_loadu2_m128(base + 28, base + 12);
            __m256 t0_f32x8 = _mm256_unpacklo_ps(r0_f32x8, r1_f32x8);
            __m256 t1_f32x8 = _mm256_unpackhi_ps(r0_f32x8, r1_f32x8);
            __m256 t2_f32x8 = _mm256_unpacklo_ps(r2_f32x8, r3_f32x8);
            __m256 t3_f32x8 = _mm256_unpackhi_ps(r2_f32x8, r3_f32x8);
            *c0 = _mm256_shuffle_ps(t0_f32x8, t2_f32x8, 0x44);
            *c1 = _mm256_shuffle_ps(t0_f32x8, t2_f32x8, 0xee);
            *c2 = _mm256_shuffle_ps(t1_f32x8, t3_f32x8, 0x44);
            *c3 = _mm256_shuffle_ps(t1_f32x8, t3_f32x8, 0xee);
            return 0;
        }
        if (axes == 2 && c->whole && avail >= 16) {
            /* (y, x): even and odd floats of two vectors, then the 64-bit quarters back in key order. */
            __m256 v0_f32x8 = _mm256_loadu_ps(base), v1_f32x8 = _mm256_loadu_ps(base + 8);
            *c0 = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(v0_f32x8, v1_f32x8, 0x88)), 0xd8));
            *c1 = _mm256_castpd_ps(_mm256_permute4x64_pd(
                _mm256_castps_pd(_mm256_shuffle_ps(v0_f32x8, v1_f32x8, 0xdd)), 0xd8));
            return 0;
        }
        if (axes == 3 && c->whole && avail >= 24) {
            /* (t, y, x): 3 is prime to 8, so each axis sits at 8 distinct lane positions of the 3 vectors; two
             * blends gather them into one vector and one permute puts them in key order. */
            __m256 v0_f32x8 = _mm256_loadu_ps(base), v1_f32x8 = _mm256_loadu_ps(base + 8);
            __m256 v2_f32x8 = _mm256_loadu_ps(base + 16);
            __m256 a0_f32x8 = _mm256_blend_ps(_mm256_blend_ps(v0_f32x8, v1_f32x8, 0x92), v2_f32x8, 0x24);
            __m256 a1_f32x8 = _mm256_blend_ps(_mm256_blend_ps(v0_f32x8, v1_f32x8, 0x24), v2_f32x8, 0x49);
            __m256 a2_f32x8 = _mm256_blend_ps(_mm256_blend_ps(v0_f32x8, v1_f32x8, 0x49), v2_f32x8, 0x92);
            *c0 = _mm256_permutevar8x32_ps(a0_f32x8, _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5));
            *c1 = _mm256_permutevar8x32_ps(a1_f32x8, _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6));
            *c2 = _mm256_permutevar8x32_ps(a2_f32x8, _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7));
            return 0;
        }
        __m256 v_f32x8[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int i = 0; i < 4; ++i) {
            if (i < S) {
                v_f32x8[i] = avail >= 8 * S ? _mm256_loadu_ps(base + 8 * i)
                                            : load_elements_f32x8(base + 8 * i, avail - 8 * i);
            }
        }
        for (int a = 0; a < axes; ++a) {
            __m256 r_f32x8 = _mm256_permutevar8x32_ps(v_f32x8[0], c->idx_i32x8[a]);
            for (int i = 1; i < 4; ++i) {
                if (i < S) {
                    r_f32x8 = _mm256_blendv_ps(r_f32x8, _mm256_permutevar8x32_ps(v_f32x8[i], c->idx_i32x8[a]),
                                               c->from_f32x8[a][i]);
                }
            }
            coord_f32x8[a] = r_f32x8;
        }
    } else {
        for (int a = 0; a < axes; ++a) {
            coord_f32x8[a] = gather_f32x8(base + c->offset[a], c->offsets_lo_i64x4, c->offsets_hi_i64x4,
                                          vm_first(n));
        }
    }
    *c0 = coord_f32x8[0], *c1 = coord_f32x8[1];
    if (axes > 2) *c2 = coord_f32x8[2];
    if (axes > 3) *c3 = coord_f32x8[3];
    return 0;
}

static inline vf vf_nd_key_order(vf v, int order) {
    (void)order;
    return v;
}

#include "../alibi_generic.h"
