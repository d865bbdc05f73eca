/*
 * AVX-512 fused attention tile: the vector vocabulary of attention_generic.h on 16 float32 lanes.
 *
 * ISA: AVX-512 F (arithmetic, masks, scalef, vcvtph2ps on 16 lanes), BW+VL (masked 16-bit loads of f16/bf16 tails),
 * DQ (256-bit halves for the float64 sums). The caller has checked the CPU. The softcap calls SLEEF's tanhf.
 *
 * Tails: every load and store of a partial vector is masked (_mm512_maskz_loadu_*, _mm512_mask_storeu_*), so no
 * byte outside the tensors is read or written whatever the alignment.
 *
 * Register tiles: scores 4 rows x 4 keys (16 accumulators, 4 k vectors, 1 q vector of 32 zmm); weighted sums 4
 * rows x 4 vectors of dv (64 dims: 16 accumulators, 4 v vectors).
 *
 * Exponential: the polynomial of exp_f32.h in registers, 2^n applied by scalef under the keep mask (gap >=
 * POSATTN_ATTENTION_FLUSH or NaN), so it is formed only for normal results (>= e^-44).
 */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../exp_f32.h"
#include "../kernels.h"

#define ATT_ISA avx512
#define ATT_W 16
#define ATT_QK_ROWS 4
#define ATT_PV_ROWS 4
#define ATT_PV_VECS 4

typedef __m512 vf;

static inline __mmask16 lanes_below(int64_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u); }

static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
/* maxps returns its second operand when either is NaN. */
static inline vf vf_max_num(vf acc, vf x) { return _mm512_max_ps(x, acc); }
static inline float vf_reduce_add(vf a) { return _mm512_reduce_add_ps(a); }
static inline float vf_reduce_max(vf a) { return _mm512_reduce_max_ps(a); }

static inline void vf_hsum4(vf a, vf b, vf c, vf d, float *out) {
    /* Per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3], then [a, b, c, d] partial sums, then the four lanes. */
    const vf ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    const vf cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const vf abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1)));
}

static inline vf vf_load_f32(const float *p, int64_t n) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes_below(n), p);
}
static inline vf vf_load_f16(const uint16_t *p, int64_t n) {
    const __m256i h = n >= 16 ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16(lanes_below(n), p);
    return _mm512_cvtph_ps(h);
}
static inline vf vf_load_bf16(const uint16_t *p, int64_t n) {
    const __m256i h = n >= 16 ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16(lanes_below(n), p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
static inline void vf_store_n(float *p, vf v, int64_t n) {
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, lanes_below(n), v);
}
static inline void vf_add_to_f64(double *dst, vf v, int64_t n) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
    if (n >= 16) {
        _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), lo));
        _mm512_storeu_pd(dst + 8, _mm512_add_pd(_mm512_loadu_pd(dst + 8), hi));
        return;
    }
    const __mmask8 m_lo = (__mmask8)(n >= 8 ? 0xff : (1u << n) - 1u);
    const __mmask8 m_hi = (__mmask8)(n > 8 ? (1u << (n - 8)) - 1u : 0u);
    _mm512_mask_storeu_pd(dst, m_lo, _mm512_add_pd(_mm512_maskz_loadu_pd(m_lo, dst), lo));
    _mm512_mask_storeu_pd(dst + 8, m_hi, _mm512_add_pd(_mm512_maskz_loadu_pd(m_hi, dst + 8), hi));
}
static inline vf vf_key_index(int64_t j) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_set1_epi32((int32_t)j), iota));
}
static inline vf vf_keep_lanes(vf v, int64_t begin, int64_t end) {
    if (begin <= 0 && end >= 16) return v;
    begin = begin < 0 ? 0 : begin > 16 ? 16 : begin;
    end = end < 0 ? 0 : end > 16 ? 16 : end;
    const __mmask16 keep = (__mmask16)(lanes_below(end) & ~lanes_below(begin));
    return _mm512_mask_blend_ps(keep, _mm512_set1_ps(-INFINITY), v);
}
static inline vf vf_apply_mask(vf x, vf m, vf s) {
    const __mmask16 excluded = _mm512_cmp_ps_mask(m, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return _mm512_mask_blend_ps(excluded, _mm512_add_ps(x, _mm512_mul_ps(s, m)), _mm512_set1_ps(-INFINITY));
}
static inline vf vf_tanh(vf x) { return Sleef_tanhf16_u10avx512f(x); }

static inline vf vf_weight(vf gap) {
    /* "Not less than" is true for NaN, which therefore reaches the sums. */
    const __mmask16 keep = _mm512_cmp_ps_mask(gap, _mm512_set1_ps(POSATTN_ATTENTION_FLUSH), _CMP_NLT_UQ);
    /* Clamping keeps -inf (excluded keys) from raising "invalid"; max(c, NaN) is NaN. */
    const vf d = _mm512_max_ps(_mm512_set1_ps(POSATTN_EXP_FLUSH_BELOW), gap);
    /* Adding 1.5 * 2^23 rounds d * log2(e) to the nearest integer in the low mantissa bits. */
    const vf magic = _mm512_set1_ps(12582912.0f);
    const vf n = _mm512_sub_ps(_mm512_fmadd_ps(d, _mm512_set1_ps(POSATTN_EXP_LOG2E), magic), magic);
    /* Cody-Waite: n * LN2_HI is exact, so r carries only the rounding of the second step. */
    vf r = _mm512_fnmadd_ps(n, _mm512_set1_ps(POSATTN_EXP_LN2_HI), d);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(POSATTN_EXP_LN2_LO), r);
    vf p = _mm512_fmadd_ps(_mm512_set1_ps(POSATTN_EXP_P0), r, _mm512_set1_ps(POSATTN_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(POSATTN_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(POSATTN_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(POSATTN_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(POSATTN_EXP_P5));
    /* 1 + r + r^2 P(r) as 1 + r (1 + r P(r)). */
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

#include "../attention_generic.h"
