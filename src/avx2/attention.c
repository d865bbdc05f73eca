/*
 * AVX2 fused attention tile: the vector vocabulary of attention_generic.h on 8 float32 lanes.
 *
 * ISA: AVX2 + FMA + F16C (vcvtph2ps); the caller has checked the CPU. The softcap calls SLEEF's tanhf.
 *
 * Tails: f32 tails use vmaskmovps; f16 and bf16 tails (no 16-bit masked load in AVX2) are copied into a zeroed
 * 8-lane buffer first, so no byte outside the tensors is read or written.
 *
 * Register tiles (16 ymm): scores 2 rows x 4 keys (8 accumulators, 4 k vectors, 1 q vector); weighted sums 2 rows
 * x 4 vectors of dv (32 dims: 8 accumulators, 4 v vectors, 1 weight).
 *
 * Exponential: the polynomial of exp_f32.h in registers, clamped at POSATTN_EXP_FLUSH_BELOW so 2^n stays normal,
 * and lanes with gap < POSATTN_ATTENTION_FLUSH zeroed (a compare that is false for NaN).
 */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../exp_f32.h"
#include "../kernels.h"

#define ATT_ISA avx2
#define ATT_W 8
#define ATT_QK_ROWS 2
#define ATT_PV_ROWS 2
#define ATT_PV_VECS 4

typedef __m256 vf;

static inline __m256i lane_index(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
/* All-ones in lanes i < n. */
static inline __m256i lanes_below(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(n > 8 ? 8 : n)), lane_index());
}

static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
/* maxps returns its second operand when either is NaN. */
static inline vf vf_max_num(vf acc, vf x) { return _mm256_max_ps(x, acc); }

static inline float vf_reduce_add(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
static inline float vf_reduce_max(vf a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}
static inline void vf_hsum4(vf a, vf b, vf c, vf d, float *out) {
    /* Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3], then [a, b, c, d] partial sums, then the two lanes. */
    const vf ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const vf cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const vf abcd = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
}

static inline vf vf_load_f32(const float *p, int64_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes_below(n));
}
static inline __m128i load_u16x8(const uint16_t *p, int64_t n) {
    if (n >= 8) return _mm_loadu_si128((const __m128i *)p);
    uint16_t lanes[8] = {0};
    memcpy(lanes, p, (size_t)(n > 0 ? n : 0) * sizeof(uint16_t));
    return _mm_loadu_si128((const __m128i *)lanes);
}
static inline vf vf_load_f16(const uint16_t *p, int64_t n) { return _mm256_cvtph_ps(load_u16x8(p, n)); }
static inline vf vf_load_bf16(const uint16_t *p, int64_t n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load_u16x8(p, n)), 16));
}
static inline void vf_store_n(float *p, vf v, int64_t n) {
    if (n >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, lanes_below(n), v);
}
static inline void vf_add_to_f64(double *dst, vf v, int64_t n) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    if (n >= 8) {
        _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), lo));
        _mm256_storeu_pd(dst + 4, _mm256_add_pd(_mm256_loadu_pd(dst + 4), hi));
        return;
    }
    double lanes[8];
    _mm256_storeu_pd(lanes, lo);
    _mm256_storeu_pd(lanes + 4, hi);
    for (int64_t i = 0; i < n; ++i) dst[i] += lanes[i];
}
static inline vf vf_key_index(int64_t j) {
    return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_set1_epi32((int32_t)j), lane_index()));
}
static inline vf vf_keep_lanes(vf v, int64_t begin, int64_t end) {
    if (begin <= 0 && end >= 8) return v;
    begin = begin < 0 ? 0 : begin > 8 ? 8 : begin;
    end = end < 0 ? 0 : end > 8 ? 8 : end;
    const __m256i keep = _mm256_andnot_si256(lanes_below(begin), lanes_below(end));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(keep));
}
static inline vf vf_apply_mask(vf x, vf m, vf s) {
    const vf excluded = _mm256_cmp_ps(m, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return _mm256_blendv_ps(_mm256_add_ps(x, _mm256_mul_ps(s, m)), _mm256_set1_ps(-INFINITY), excluded);
}
static inline vf vf_tanh(vf x) { return Sleef_tanhf8_u10avx2(x); }

static inline vf vf_weight(vf gap) {
    /* "Less than" is false for NaN, which therefore reaches the sums. */
    const vf flush = _mm256_cmp_ps(gap, _mm256_set1_ps(POSATTN_ATTENTION_FLUSH), _CMP_LT_OQ);
    /* Clamped: n >= -126, so 2^n is normal, and -inf never reaches the reduction; max(c, NaN) is NaN. */
    const vf d = _mm256_max_ps(_mm256_set1_ps(POSATTN_EXP_FLUSH_BELOW), gap);
    /* Adding 1.5 * 2^23 + 127 leaves n + 127, the biased exponent of 2^n, in the low mantissa bits. */
    const vf magic = _mm256_set1_ps(POSATTN_EXP_SHIFTER);
    const vf t = _mm256_fmadd_ps(d, _mm256_set1_ps(POSATTN_EXP_LOG2E), magic);
    const vf n = _mm256_sub_ps(t, magic);
    vf r = _mm256_fnmadd_ps(n, _mm256_set1_ps(POSATTN_EXP_LN2_HI), d);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(POSATTN_EXP_LN2_LO), r);
    vf p = _mm256_fmadd_ps(_mm256_set1_ps(POSATTN_EXP_P0), r, _mm256_set1_ps(POSATTN_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(POSATTN_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(POSATTN_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(POSATTN_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(POSATTN_EXP_P5));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* A multiply rather than an integer add to the exponent field, so a NaN stays NaN. */
    const vf pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_andnot_ps(flush, _mm256_mul_ps(p, pow2n));
}

#include "../attention_generic.h"
