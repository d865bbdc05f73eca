/*
 * The LieRE kernels (SPEC 5), written once and compiled once per ISA (as simdjson's generic/ and Highway's
 * foreach_target do): each src/<isa>/liere.c defines a small vector vocabulary, then includes this file, which
 * defines posattn_liere_rot_token_f32_<isa> and posattn_liere_apply_token_f32_<isa>. The scalar reference is the
 * same algorithm with one-lane "vectors" (plain floats), so SIMD and scalar differ only in rounding (FMA).
 *
 * Vocabulary the includer defines before including (all static inline):
 *   LIERE_ISA                   suffix of the entry points (scalar, avx2, avx512, neon)
 *   LIERE_W                     float32 lanes per vector; LIERE_TILE_ROWS vectors of rows per register tile
 *   vf                          the vector type; vf_load, vf_store (unaligned), vf_set1, vf_zero, vf_fma(a, b, c)
 *                               = a*b + c
 *   vf_block_bcast(x, b, c)     lane d receives lane (d / b) * b + c of x (called only for b < LIERE_W dividing it)
 *   LIERE_HAVE_BLOCK_BCAST      1 when vf_block_bcast and vf_mul exist
 *   liere_sincos_f64(t, s, c, n) s[i] = sin(t[i]), c[i] = cos(t[i]) in float64, n a multiple of LIERE_D_BATCH
 *                               (arrays padded by the caller), for any finite argument (full range reduction)
 *
 * Rotations (rot_token).
 *   The exponent S = sum_a p_a G_a is formed in float64: each product of two float32 is exact, so S is within
 *   2^-53 relative of the exact sum. Then
 *   - b = 2: R = [[cos t, sin t], [-sin t, cos t]] with t = S[0][1], cos and sin in float64, rounded once.
 *   - b = 3: Rodrigues, R = cos(t) I + (sin t / t) S + ((1 - cos t) / t^2) k k^T with t = |k|, k the axial vector
 *     of S, in float64 with half-angle forms (sin t = 2 sh ch, 1 - cos t = 2 sh^2, sh = sin(t/2)), and their
 *     series (to t^4) when t < 2^-10, where the series are exact to float64 precision.
 *   - b >= 4: scaling and squaring in float32. s = the least s >= 0 with ||S||_1 2^-s <= 1/2, A = S 2^-s (exact
 *     scaling, rounded once to float32); T = I + A + A^2/2 + A^3/6 + A^4 (1/24 + A/120 + A^2/720 + A^3/5040 +
 *     A^4/40320) (Taylor degree 8, Paterson-Stockmeyer: 4 products; truncation below 0.1 u for ||A||_1 <= 1/2);
 *     R = T^(2^s) (s products); then Newton-Schulz steps R <- R (3 I - R^T R) / 2 (2 products each; 1 step for
 *     s <= 6, 2 for s <= 10, else 3), each squaring the departure from orthogonality that the squarings doubled
 *     s times, so R^T R = I to a few b u. The 5 matrices live in the caller's scratch (80 KiB for b = 64: the
 *     library keeps each call within 16 KiB of stack), rows padded to a multiple of LIERE_W (padding columns stay
 *     zero, so every product runs on whole vectors). S is not stored (32 KiB in float64 for b = 64): its upper
 *     entries are formed twice, for the norm and for A, in the same order, so with the same values.
 *
 * Apply (apply_token). Coefficient vectors C[c][d] = R_{d/b}[d%b][c] are the stored rotations (forward) or their
 * block-wise transpose, built in the caller's scratch in chunks of at most POSATTN_LIERE_TRANSPOSE_FLOATS floats
 * (backward). Then for every head:
 *     x'[d] = sum_c C[c][d] * x[(d/b)*b + c]
 * - b a multiple of LIERE_W: register tiles of LIERE_HEADS heads x LIERE_TILE_ROWS vectors of rows, each
 *   coefficient vector loaded once per LIERE_HEADS heads and x[j*b + c] broadcast (the b = 64 shared case is a
 *   small GEMM).
 * - b < LIERE_W dividing it: one vector covers whole blocks; x[(d/b)*b + c] is a lane permute of the loaded x.
 * - anything else (and the tail of the last point): plain loops, per block.
 * Results of a block are kept in registers or a stack buffer until the block has been read, then stored: in place.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

#ifndef LIERE_ISA
#error "define the vector vocabulary before including liere_generic.h"
#endif

#define LIERE_CAT_(a, b) a##b
#define LIERE_CAT(a, b) LIERE_CAT_(a, b)
#define LIERE_FN(name) LIERE_CAT(name, LIERE_ISA)
#define LIERE_INLINE static inline __attribute__((always_inline))

/* The scratch (posattn_liere_scratch_floats) pads rows to POSATTN_LIERE_SCRATCH_PAD floats, which must be a
 * multiple of this ISA's lanes for the matrices padded to LIERE_W to fit. */
_Static_assert(POSATTN_LIERE_SCRATCH_PAD % LIERE_W == 0, "scratch rows too short for this ISA's vectors");
/* Blocks whose closed forms (b = 2, 3) are computed per batch. */
#define LIERE_CF_BATCH 64

/* ---------------------------------------------------------------------------------------------------------- */
/* Small GEMM: C = A B on b x b matrices with row length ld (a multiple of LIERE_W, padding columns zero)        */
/* ---------------------------------------------------------------------------------------------------------- */

/* A tile of NI rows x NJ vectors of columns, accumulated over k in registers. With ta, A is read transposed
 * (C = A^T B). */
LIERE_INLINE void gemm_tile(const float *a, const float *bm, float *c, int64_t n, int64_t ld, int64_t i0,
                            int64_t j0, const int ni, const int nj, const int ta) {
    vf acc[4][4];
    for (int i = 0; i < ni; ++i)
        for (int j = 0; j < nj; ++j) acc[i][j] = vf_zero();
    for (int64_t k = 0; k < n; ++k) {
        vf brow[4];
        for (int j = 0; j < nj; ++j) brow[j] = vf_load(bm + k * ld + j0 + j * LIERE_W);
        for (int i = 0; i < ni; ++i) {
            vf aik = vf_set1(ta ? a[k * ld + i0 + i] : a[(i0 + i) * ld + k]);
            for (int j = 0; j < nj; ++j) acc[i][j] = vf_fma(aik, brow[j], acc[i][j]);
        }
    }
    for (int i = 0; i < ni; ++i)
        for (int j = 0; j < nj; ++j) vf_store(c + (i0 + i) * ld + j0 + j * LIERE_W, acc[i][j]);
}

#define LIERE_GEMM_COLS(NI, TA)                                                                                    \
    do {                                                                                                           \
        int64_t j0 = 0;                                                                                            \
        for (; j0 + 4 * LIERE_W <= ld; j0 += 4 * LIERE_W) gemm_tile(a, bm, c, n, ld, i0, j0, NI, 4, TA);         \
        switch ((ld - j0) / LIERE_W) {                                                                             \
        case 3: gemm_tile(a, bm, c, n, ld, i0, j0, NI, 3, TA); break;                                              \
        case 2: gemm_tile(a, bm, c, n, ld, i0, j0, NI, 2, TA); break;                                              \
        case 1: gemm_tile(a, bm, c, n, ld, i0, j0, NI, 1, TA); break;                                              \
        default: break;                                                                                            \
        }                                                                                                          \
    } while (0)

/* C = A B. */
static void gemm(const float *a, const float *bm, float *c, int64_t n, int64_t ld) {
    int64_t i0 = 0;
    for (; i0 + 4 <= n; i0 += 4) LIERE_GEMM_COLS(4, 0);
    for (; i0 < n; ++i0) LIERE_GEMM_COLS(1, 0);
}

/* C = A^T B. */
static void gemm_tn(const float *a, const float *bm, float *c, int64_t n, int64_t ld) {
    int64_t i0 = 0;
    for (; i0 + 4 <= n; i0 += 4) LIERE_GEMM_COLS(4, 1);
    for (; i0 < n; ++i0) LIERE_GEMM_COLS(1, 1);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Rotations                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

/* Upper entry e of S(p) for one block in float64, summed over axes in axis order (the lower triangle is its
 * negation). The products of two float32 are exact, so S is within 2^-53 relative of the exact sum. */
static inline double exponent_upper(const posattn_liere_rot_token *t, const float *gens_block, int64_t axis_stride,
                                    int64_t e) {
    double v = 0.0;
    for (int64_t a = 0; a < t->n_axes; ++a) v += (double)t->pos[a] * (double)gens_block[a * axis_stride + e];
    return v;
}

/* float64 to float32 with results below FLT_MIN flushed to zero (no subnormal is ever formed downstream). */
static inline float to_f32_flushed(double v) {
    return fabs(v) < 0x1p-126 ? 0.0f : (float)v;
}

/* R = exp(S) of one block (generators at gens_block, axes axis_stride floats apart) for b >= 4 into out (the
 * stored layout: out[c * rot_dims + r]), with 5 matrices of b x ld floats in scratch. */
static void rotation_scaling_squaring(const posattn_liere_rot_token *t, const float *gens_block, int64_t axis_stride,
                                      float *out, float *scratch) {
    const int64_t b = t->block, rot_dims = t->rot_dims;
    const int64_t ld = ((b + LIERE_W - 1) / LIERE_W) * LIERE_W;
    float *m0 = scratch, *m1 = m0 + b * ld, *m2 = m1 + b * ld, *m3 = m2 + b * ld, *m4 = m3 + b * ld;
    const size_t bytes = (size_t)(b * ld) * sizeof(float);

    /* ||S||_1: largest column sum (S is skew, so also the largest row sum). Upper entry (r, c) adds to column c
     * at row r and, as (c, r), to column r at row c: walking the upper triangle row by row, every column receives
     * its rows in increasing order, the order of a column walk, so the sums round as that walk would. */
    double col_sum[POSATTN_LIERE_MAX_BLOCK];
    for (int64_t c = 0; c < b; ++c) col_sum[c] = 0.0;
    for (int64_t r = 0, e = 0; r < b; ++r) {
        for (int64_t c = r + 1; c < b; ++c, ++e) {
            const double v = fabs(exponent_upper(t, gens_block, axis_stride, e));
            col_sum[c] += v;
            col_sum[r] += v;
        }
    }
    double norm = 0.0;
    for (int64_t c = 0; c < b; ++c) {
        if (!(col_sum[c] <= norm)) norm = col_sum[c]; /* NaN wins */
    }
    int sq = 0;
    if (norm > 0.5) {
        int e;
        (void)frexp(norm, &e); /* norm <= 2^e */
        sq = e + 1;
        if (!(sq <= 256)) sq = 256; /* infinite or absurd exponents: the result is NaN or meaningless anyway */
    }
    /* m0 = A, padded with zeros. */
    const double scale = ldexp(1.0, -sq); /* exact: a power of two */
    memset(m0, 0, bytes);
    for (int64_t r = 0, e = 0; r < b; ++r) {
        for (int64_t c = r + 1; c < b; ++c, ++e) {
            const double v = exponent_upper(t, gens_block, axis_stride, e) * scale;
            m0[r * ld + c] = to_f32_flushed(v);
            m0[c * ld + r] = to_f32_flushed(-v);
        }
    }
    gemm(m0, m0, m1, b, ld); /* A^2 */
    gemm(m1, m0, m2, b, ld); /* A^3 */
    gemm(m1, m1, m3, b, ld); /* A^4 */
    /* m4 = I/24 + A/120 + A^2/720 + A^3/5040 + A^4/40320 */
    for (int64_t i = 0; i < b * ld; ++i) {
        m4[i] = m0[i] * (1.0f / 120.0f) + m1[i] * (1.0f / 720.0f) + m2[i] * (1.0f / 5040.0f) +
                m3[i] * (1.0f / 40320.0f);
    }
    for (int64_t r = 0; r < b; ++r) m4[r * ld + r] += 1.0f / 24.0f;
    /* m0 = I + A + A^2/2 + A^3/6 */
    for (int64_t i = 0; i < b * ld; ++i) m0[i] = m0[i] + m1[i] * 0.5f + m2[i] * (1.0f / 6.0f);
    for (int64_t r = 0; r < b; ++r) m0[r * ld + r] += 1.0f;
    gemm(m3, m4, m1, b, ld); /* A^4 * (...) */
    for (int64_t i = 0; i < b * ld; ++i) m0[i] += m1[i];
    /* Squarings, ping-pong between m0 and m1. */
    float *cur = m0, *nxt = m1;
    for (int k = 0; k < sq; ++k) {
        gemm(cur, cur, nxt, b, ld);
        float *tmp = cur;
        cur = nxt, nxt = tmp;
    }
    /* Newton-Schulz: R <- R (3 I - R^T R) / 2 (m3 = R^T R, then nxt = R m3'). Each step squares the
     * departure from orthogonality e, about 2^s b u after the squarings: one step suffices for s <= 6, two for
     * s <= 10, three beyond (up to ||S||_1 near 2^12, where e approaches 1 and the iteration stops converging). */
    const int steps = sq <= 6 ? 1 : (sq <= 10 ? 2 : 3);
    for (int step = 0; step < steps; ++step) {
        gemm_tn(cur, cur, m3, b, ld);
        for (int64_t i = 0; i < b * ld; ++i) m3[i] = m3[i] * -0.5f;
        for (int64_t r = 0; r < b; ++r) m3[r * ld + r] += 1.5f;
        gemm(cur, m3, nxt, b, ld);
        float *tmp = cur;
        cur = nxt, nxt = tmp;
    }
    for (int64_t r = 0; r < b; ++r)
        for (int64_t c = 0; c < b; ++c) out[c * rot_dims + r] = cur[r * ld + c];
}

/* Closed forms for a batch of n <= LIERE_CF_BATCH blocks j0 .. j0+n-1 of one set. */
static void rotations_closed_form(const posattn_liere_rot_token *t, const float *gens_set, int64_t j0, int64_t n,
                                  float *out) {
    const int64_t b = t->block, tri = b * (b - 1) / 2, nb = t->rot_dims / b, d = t->rot_dims;
    _Alignas(64) double theta[LIERE_CF_BATCH], sn[LIERE_CF_BATCH], cs[LIERE_CF_BATCH];
    _Alignas(64) double k1[LIERE_CF_BATCH], k2[LIERE_CF_BATCH], k3[LIERE_CF_BATCH];
    const int64_t padded = (n + LIERE_D_BATCH - 1) / LIERE_D_BATCH * LIERE_D_BATCH;
    for (int64_t i = n; i < padded; ++i) theta[i] = 0.0;
    if (b == 2) {
        for (int64_t i = 0; i < n; ++i) {
            double v = 0.0;
            for (int64_t a = 0; a < t->n_axes; ++a) v += (double)t->pos[a] * (double)gens_set[(a * nb + j0 + i) * tri];
            theta[i] = v;
        }
        liere_sincos_f64(theta, sn, cs, padded);
        for (int64_t i = 0; i < n; ++i) {
            float *o = out + (j0 + i) * 2;
            const float c = (float)cs[i], s = (float)sn[i];
            o[0] = c;      /* R[0][0] */
            o[1] = -s;     /* R[1][0] */
            o[d] = s;      /* R[0][1] */
            o[d + 1] = c;  /* R[1][1] */
        }
        return;
    }
    /* b = 3: S = [[0, s01, s02], [-s01, 0, s12], [-s02, -s12, 0]], axial vector k = (-s12, s02, -s01). */
    for (int64_t i = 0; i < n; ++i) {
        double s01 = 0.0, s02 = 0.0, s12 = 0.0;
        for (int64_t a = 0; a < t->n_axes; ++a) {
            const float *g = gens_set + (a * nb + j0 + i) * tri;
            const double p = (double)t->pos[a];
            s01 += p * (double)g[0];
            s02 += p * (double)g[1];
            s12 += p * (double)g[2];
        }
        k1[i] = -s12, k2[i] = s02, k3[i] = -s01;
        theta[i] = 0.5 * sqrt(s01 * s01 + s02 * s02 + s12 * s12); /* half angle */
    }
    liere_sincos_f64(theta, sn, cs, padded);
    for (int64_t i = 0; i < n; ++i) {
        const double h = theta[i], t2 = 4.0 * h * h; /* full angle squared */
        double f1, f2, cosf_; /* sin t / t, (1 - cos t) / t^2, cos t */
        if (h < 0x1p-11) {
            f1 = 1.0 - t2 / 6.0 + t2 * t2 / 120.0;
            f2 = 0.5 - t2 / 24.0 + t2 * t2 / 720.0;
            cosf_ = 1.0 - t2 * f2;
        } else {
            f1 = sn[i] * cs[i] / h;              /* 2 sh ch / (2 h) */
            f2 = 0.5 * (sn[i] / h) * (sn[i] / h); /* 2 sh^2 / (4 h^2) */
            cosf_ = 1.0 - 2.0 * sn[i] * sn[i];
        }
        const double k[3] = {k1[i], k2[i], k3[i]};
        /* K[r][c] = S[r][c]: S = [[0,-k3,k2],[k3,0,-k1],[-k2,k1,0]] */
        const double kk[3][3] = {{0.0, -k[2], k[1]}, {k[2], 0.0, -k[0]}, {-k[1], k[0], 0.0}};
        float *o = out + (j0 + i) * 3;
        for (int r = 0; r < 3; ++r) {
            for (int c = 0; c < 3; ++c) {
                double v = f1 * kk[r][c] + f2 * k[r] * k[c];
                if (r == c) v += cosf_;
                o[c * d + r] = (float)v;
            }
        }
    }
}

void LIERE_FN(posattn_liere_rot_token_f32_)(const posattn_liere_rot_token *t) {
    const int64_t b = t->block, tri = b * (b - 1) / 2, nb = t->rot_dims / b, d = t->rot_dims;
    for (int64_t g = 0; g < t->n_gen; ++g) {
        const float *gens_set = t->gens + g * t->n_axes * nb * tri;
        float *out = t->rot + g * b * d;
        if (b <= 3) {
            for (int64_t j0 = 0; j0 < nb; j0 += LIERE_CF_BATCH) {
                rotations_closed_form(t, gens_set, j0, nb - j0 < LIERE_CF_BATCH ? nb - j0 : LIERE_CF_BATCH, out);
            }
            continue;
        }
        for (int64_t j = 0; j < nb; ++j) {
            rotation_scaling_squaring(t, gens_set + j * tri, nb * tri, out + j * b, t->scratch);
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Apply                                                                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

/* Heads processed together by a register tile: the SIMD ISAs set 6 (their LIERE_HEADS), the scalar reference
 * keeps 4. */
#ifndef LIERE_HEADS
#define LIERE_HEADS 4
#endif
/* How far ahead apply prefetches coefficients: one 64 x 64 matrix. */
#define LIERE_PREFETCH_FLOATS 4096

/* Block j0..j0+b of NH heads, b a multiple of LIERE_W: tiles of NH heads x NR row vectors. Outputs go to y first
 * (the block's x is read until the last column), then back to x. */
LIERE_INLINE void apply_tile(const float *coef, int64_t ld, int64_t d0, int64_t r0, int64_t b, float *const *x,
                             float (*y)[POSATTN_LIERE_MAX_BLOCK], const int nh, const int nr, int prefetch) {
    vf acc[LIERE_HEADS][LIERE_TILE_ROWS];
    for (int h = 0; h < nh; ++h)
        for (int r = 0; r < nr; ++r) acc[h][r] = vf_zero();
    const float *cp = coef + d0 + r0;
    for (int64_t c = 0; c < b; ++c, cp += ld) {
        vf col[LIERE_TILE_ROWS];
        for (int r = 0; r < nr; ++r) col[r] = vf_load(cp + r * LIERE_W);
        if (prefetch) {
            /* The coefficients of the next set or token, LIERE_PREFETCH_FLOATS ahead: a stream the hardware
             * prefetcher loses at page boundaries. Prefetches never fault, also past the end of the array. */
            for (int r = 0; r < nr; ++r)
                if ((r * LIERE_W) % 16 == 0) __builtin_prefetch(cp + r * LIERE_W + LIERE_PREFETCH_FLOATS, 0, 3);
        }
        for (int h = 0; h < nh; ++h) {
            vf xc = vf_set1(x[h][d0 + c]);
            for (int r = 0; r < nr; ++r) acc[h][r] = vf_fma(col[r], xc, acc[h][r]);
        }
    }
    if (!y) { /* the tile is the whole block, whose x has been read: store in place */
        for (int h = 0; h < nh; ++h)
            for (int r = 0; r < nr; ++r) vf_store(x[h] + d0 + r * LIERE_W, acc[h][r]);
        return;
    }
    for (int h = 0; h < nh; ++h)
        for (int r = 0; r < nr; ++r) vf_store(&y[h][r0 + r * LIERE_W], acc[h][r]);
}

LIERE_INLINE void apply_wide_heads(const float *coef, int64_t ld, int64_t n_dims, int64_t b, float *const *x,
                                   const int nh, int prefetch) {
    float y[LIERE_HEADS][POSATTN_LIERE_MAX_BLOCK];
    if (b == LIERE_TILE_ROWS * LIERE_W) { /* one tile per block (AVX-512, b = 64): no staging buffer */
        for (int64_t d0 = 0; d0 < n_dims; d0 += b) {
            apply_tile(coef, ld, d0, 0, b, x, NULL, nh, LIERE_TILE_ROWS, prefetch);
        }
        return;
    }
    for (int64_t d0 = 0; d0 < n_dims; d0 += b) {
        int64_t r0 = 0;
        for (; r0 + LIERE_TILE_ROWS * LIERE_W <= b; r0 += LIERE_TILE_ROWS * LIERE_W) {
            apply_tile(coef, ld, d0, r0, b, x, y, nh, LIERE_TILE_ROWS, prefetch);
        }
        for (; r0 < b; r0 += LIERE_W) apply_tile(coef, ld, d0, r0, b, x, y, nh, 1, prefetch);
        for (int h = 0; h < nh; ++h)
            for (int64_t r = 0; r < b; r += LIERE_W) vf_store(x[h] + d0 + r, vf_load(&y[h][r]));
    }
}

/* Plain loops for blocks d0 .. n_dims of one head (any b). */
static void apply_plain(const float *coef, int64_t ld, int64_t d0, int64_t n_dims, int64_t b, float *x) {
    float y[POSATTN_LIERE_MAX_BLOCK];
    for (; d0 < n_dims; d0 += b) {
        for (int64_t r = 0; r < b; ++r) y[r] = 0.0f;
        for (int64_t c = 0; c < b; ++c) {
            const float xc = x[d0 + c];
            const float *cp = coef + c * ld + d0;
            for (int64_t r = 0; r < b; ++r) y[r] = y[r] + cp[r] * xc;
        }
        memcpy(x + d0, y, (size_t)b * sizeof(float));
    }
}

/* Applies coefficients coef (C[c][d] at coef[c * ld + d], d < n_dims) to nx head vectors. */
static void apply_heads(const float *coef, int64_t ld, int64_t n_dims, int64_t b, float *const *x, int64_t nx,
                        int prefetch) {
    /* Validated by the API; batches of at most LIERE_HEADS * 4 heads (apply_set). */
    if (b < 2 || b > POSATTN_LIERE_MAX_BLOCK || nx < 0 || nx > LIERE_HEADS * 4) __builtin_unreachable();
    if (b % LIERE_W == 0) {
        for (int h = 0; h < (int)nx;) {
            if ((int)nx - h >= LIERE_HEADS) {
                apply_wide_heads(coef, ld, n_dims, b, &x[h], LIERE_HEADS, prefetch && h == 0);
                h += LIERE_HEADS;
            } else {
                apply_wide_heads(coef, ld, n_dims, b, &x[h], 1, prefetch && h == 0);
                h += 1;
            }
        }
        return;
    }
    int64_t done = 0;
#if LIERE_HAVE_BLOCK_BCAST
    if (b < LIERE_W && LIERE_W % b == 0) {
        const int64_t full = n_dims / LIERE_W * LIERE_W;
        for (int64_t d = 0; d < full; d += LIERE_W) {
            vf col[LIERE_W];
            for (int64_t c = 0; c < b; ++c) col[c] = vf_load(coef + c * ld + d);
            for (int64_t h = 0; h < nx; ++h) {
                const vf xv = vf_load(x[h] + d);
                vf acc = vf_mul(col[0], vf_block_bcast(xv, b, 0));
                for (int64_t c = 1; c < b; ++c) acc = vf_fma(col[c], vf_block_bcast(xv, b, c), acc);
                vf_store(x[h] + d, acc);
            }
        }
        done = full;
    }
#endif
    for (int64_t h = 0; h < nx; ++h) apply_plain(coef, ld, done, n_dims, b, x[h]);
}

/* Collects head pointers into batches for apply_heads. */
typedef struct head_batch {
    float *x[LIERE_HEADS * 4];
    int64_t n;
} head_batch;

static void apply_set(const posattn_liere_apply_token *t, const float *coef, int64_t ld, int64_t off, int64_t n_dims,
                      int64_t g) {
    head_batch hb;
    hb.n = 0;
    int batches = 0; /* the first batch prefetches */
    const int64_t per_q = t->q_heads / t->n_gen;
    for (int64_t h = g * per_q; h < (g + 1) * per_q; ++h) {
        hb.x[hb.n++] = t->q + h * t->q_head_stride + off;
        if (hb.n == LIERE_HEADS * 4) apply_heads(coef, ld, n_dims, t->block, hb.x, hb.n, !batches++), hb.n = 0;
    }
    if (t->k) {
        const int64_t per_k = t->k_heads / t->n_gen;
        for (int64_t h = g * per_k; h < (g + 1) * per_k; ++h) {
            hb.x[hb.n++] = t->k + h * t->k_head_stride + off;
            if (hb.n == LIERE_HEADS * 4) apply_heads(coef, ld, n_dims, t->block, hb.x, hb.n, !batches++), hb.n = 0;
        }
    }
    if (hb.n) apply_heads(coef, ld, n_dims, t->block, hb.x, hb.n, !batches);
}

void LIERE_FN(posattn_liere_apply_token_f32_)(const posattn_liere_apply_token *t) {
    const int64_t b = t->block, d = t->rot_dims;
    for (int64_t g = 0; g < t->n_gen; ++g) {
        const float *coef = t->rot + g * b * d;
        if (!t->backward) {
            apply_set(t, coef, d, 0, d, g);
            continue;
        }
        /* R^T: C'[c][j*b + r] = R_j[c][r] = C[r][j*b + c], in the caller's scratch (16 KiB for b = 64). */
        float *tc = t->scratch;
        int64_t blocks = POSATTN_LIERE_TRANSPOSE_FLOATS / (b * b);
        if (blocks < 1) blocks = 1;
        const int64_t chunk = blocks * b;
        for (int64_t off = 0; off < d; off += chunk) {
            const int64_t n = d - off < chunk ? d - off : chunk;
            /* The hardware prefetcher does not follow the strided reads below: ask for the coefficients that
             * follow this set's (the next set or token when they are contiguous; a prefetch never faults). */
            for (int64_t i = 0; i < b * n; i += 16) __builtin_prefetch(coef + b * d + (off / n) * b * n + i, 0, 3);
            for (int64_t c = 0; c < b; ++c) {
                const float *src = coef + off + c; /* C[r][j0 + c] for every r and block, rows d apart */
                float *dst = tc + c * n;           /* C'[c][j0 + r], contiguous */
                for (int64_t j0 = 0; j0 < n; j0 += b)
                    for (int64_t r = 0; r < b; ++r) dst[j0 + r] = src[r * d + j0];
            }
            apply_set(t, tc, n, off, n, g);
        }
    }
}
