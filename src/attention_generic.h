/*
 * The fused attention tile (SPEC 9, contract in attention_kernels.h), written once and compiled once per ISA (the
 * pattern of liere_generic.h): each src/<isa>/attention.c defines a small vector vocabulary, then includes this
 * file, which defines posattn_attention_tile_f32_<isa>.
 *
 * Vocabulary the includer defines before including (all static inline; W = ATT_W float32 lanes):
 *   ATT_ISA                    suffix of the entry point
 *   ATT_W                      lanes per vector
 *   ATT_QK_ROWS                rows per register tile of the dot products (each tile: ATT_QK_ROWS x 4 keys)
 *   ATT_PV_ROWS, ATT_PV_VECS   rows and vectors of dv per register tile of the weighted sums of v
 *   vf                         the vector type (values appear here only as locals, parameters and small
 *                              fixed-size arrays indexed by compile-time constants once unrolled)
 *   vf_zero, vf_set1, vf_add, vf_sub, vf_mul, vf_div, vf_abs, vf_fma(a, b, c) = a*b + c (fused)
 *   vf_max_num(acc, x)         max that keeps acc where x is NaN
 *   vf_reduce_add, vf_reduce_max    lanes to a float
 *   vf_hsum4(a, b, c, d, out)  out[0..3] = the lane sums of a, b, c, d
 *   vf_load_f32/f16/bf16(p, n) n lanes (1..W) from p, widened exactly; lanes >= n are 0 and never read from memory
 *   vf_store_n(p, v, n)        the first n lanes of v
 *   vf_add_to_f64(dst, v, n)   dst[i] += (double)v[i] for i < n
 *   vf_key_index(j)            (float)(j + i) in lane i, for 0 <= j and j + W <= 2^31
 *   vf_keep_lanes(v, b, e)     lanes i with b <= i < e keep v, the others become -inf (b, e any int64)
 *   vf_apply_mask(x, m, s)     m == -inf ? -inf : x + s*m, a multiply and an add each rounded
 *   vf_weight(gap)             exp(gap), exactly 0 where gap < POSATTN_ATTENTION_FLUSH (compared before any exp);
 *                              NaN stays NaN
 *   vf_tanh(x)                 the ISA's SLEEF tanhf
 *
 * Per tile, rows go in passes (one pass unless the float64 sums of final mode need splitting, below). A pass walks
 * the keys [min lo, max hi) of its rows in blocks of POSATTN_ATTENTION_BLOCK:
 *   1. scores: each register tile of ATT_QK_ROWS rows x 4 keys accumulates q . k over dk (FMA), the four keys'
 *      rows loaded once per d-vector and shared by the rows; vf_hsum4 reduces them;
 *   2. logits, per row, vector over keys: the roundings of the scalar reference (scale * s; softcap; x - slope *
 *      dist with product and difference rounded; the mask), then keys outside the row's [lo, hi) set to -inf;
 *      the block maximum (NaN-ignoring, NaN checked separately), the running-maximum update with the float64
 *      rescale of l and a, then weights p = vf_weight(x - m) in place, and their float32 block sum into l;
 *   3. weighted sums: each register tile of ATT_PV_ROWS rows x ATT_PV_VECS vectors of dv accumulates p v over the
 *      block in float32, each v vector loaded once per tile and shared by its rows, then joins the float64 sums.
 *      A weight of exactly 0 (excluded or flushed key) skips its row's products, so an excluded key's v never
 *      reaches the sums, as in the scalar reference (0 * inf would be NaN).
 * Blocks start at the pass's first key, not at each row's lo: the contract allows any block of at most
 * POSATTN_ATTENTION_BLOCK keys, and the roundings of the sums depend on the blocking only within the bound.
 * K and V blocks (64 keys x dk, dv) stay in L1 while the register tiles re-read them, so each byte of K and V
 * comes from memory once per pass.
 *
 * Stack: the block's logits (8 x 64 floats, 2 KiB) and, in final mode, the rows' float64 sums a in a buffer of
 * POSATTN_ATTENTION_SUM_DOUBLES (8 KiB); a pass takes as many rows as fit (posattn_attention_rows_per_pass),
 * splitting the tile evenly. In partial mode a lives in row.partial itself: one pass. With the
 * entry point's frame, under 16 KiB in all (scripts/stack-usage.sh checks it).
 *
 * Specialised variants: K and V of one type (f32, f16, bf16) with dk = dv in {64, 80, 96, 128, 256} get the
 * dimensions as compile-time constants (no tail code); any other shape takes the generic variant, runtime types
 * and dims with masked tails.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#ifndef ATT_ISA
#error "define the vector vocabulary before including attention_generic.h"
#endif
#if ATT_PV_VECS != 4
#error "att_values handles the last group of dims for ATT_PV_VECS == 4"
#endif

#define ATT_CAT_(a, b) a##b
#define ATT_CAT(a, b) ATT_CAT_(a, b)
#define ATT_INLINE static inline __attribute__((always_inline))
/* Loops over register tiles are unrolled whole, so that their arrays of vectors stay in registers. */
#define ATT_UNROLL _Pragma("GCC unroll 16")
#define ATT_ROWS POSATTN_ATTENTION_TILE_ROWS
#define ATT_BLOCK POSATTN_ATTENTION_BLOCK
/* Passes of at most this many rows request the next block of K and V ahead (see att_pass). */
#define ATT_PREFETCH_MAX_ROWS 8
/* A generic type or dimension: read from the tile at run time. */
#define ATT_ANY (-1)

/* n lanes of element `index` on of a K or V row of the given type (a compile-time constant in the variants). */
ATT_INLINE vf att_load_kv(const void *base, int type, int64_t index, int64_t n) {
    switch (type) {
    case POSATTN_KV_TYPE_F16: return vf_load_f16((const uint16_t *)base + index, n);
    case POSATTN_KV_TYPE_BF16: return vf_load_bf16((const uint16_t *)base + index, n);
    default: return vf_load_f32((const float *)base + index, n);
    }
}

ATT_INLINE const void *att_kv_row(const void *base, int type, int64_t stride, int64_t j) {
    return (const char *)base + (size_t)(j * stride) * (type == POSATTN_KV_TYPE_F32 ? 4u : 2u);
}

/* n lanes of q from element d (q_dim_stride apart; contiguous: a compile-time 1). */
ATT_INLINE vf att_load_q(const float *q, int64_t stride, const int contiguous, int64_t d, int64_t n) {
    if (contiguous) return vf_load_f32(q + d, n);
    float lanes[ATT_W] = {0};
    for (int64_t i = 0; i < n; ++i) lanes[i] = q[(d + i) * stride];
    return vf_load_f32(lanes, ATT_W);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* 1. Scores                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

/* s[r][b + c] = q_r . k_{j0 + b + c} for R rows and the 4 keys b..b+3 (those past nb repeat the last key: their
 * slots are overwritten by the logit stage, which marks every key past the block as excluded). */
ATT_INLINE void att_scores_tile(const posattn_attention_tile *t, const posattn_attention_row *rows, const int R,
                                int64_t j, int64_t nb, float *const *s, const int64_t dk, const int kt,
                                const int q_contiguous) {
    const void *k[4];
    ATT_UNROLL for (int c = 0; c < 4; ++c) k[c] = att_kv_row(t->k, kt, t->k_tok_stride, j + (c < nb ? c : nb - 1));
    vf acc[ATT_QK_ROWS][4];
    ATT_UNROLL for (int r = 0; r < R; ++r) {
        ATT_UNROLL for (int c = 0; c < 4; ++c) acc[r][c] = vf_zero();
    }
    for (int64_t d = 0; d < dk; d += ATT_W) {
        const int64_t n = dk - d < ATT_W ? dk - d : ATT_W;
        vf kv[4];
        ATT_UNROLL for (int c = 0; c < 4; ++c) kv[c] = att_load_kv(k[c], kt, d, n);
        ATT_UNROLL for (int r = 0; r < R; ++r) {
            const vf qv = att_load_q(rows[r].q, t->q_dim_stride, q_contiguous, d, n);
            ATT_UNROLL for (int c = 0; c < 4; ++c) acc[r][c] = vf_fma(qv, kv[c], acc[r][c]);
        }
    }
    ATT_UNROLL for (int r = 0; r < R; ++r) vf_hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3], s[r]);
}

/* Requests the bytes [0, bytes) of a K or V row into the caches (a hint: never faults, reads nothing). */
ATT_INLINE void att_prefetch_row(const void *row, int64_t bytes) {
    const uintptr_t begin = (uintptr_t)row, end = begin + (uintptr_t)bytes;
    for (uintptr_t line = begin & ~(uintptr_t)63; line < end; line += 64) __builtin_prefetch((const void *)line, 0, 2);
}

/* Scores of rows [r0, r1) for keys [j0, j0 + n), into x[r][0..n); the keys one block ahead (up to key_end) are
 * requested meanwhile. */
ATT_INLINE void att_scores(const posattn_attention_tile *t, const posattn_attention_row *rows, int r0, int r1,
                           int64_t j0, int64_t n, int64_t key_end, float (*x)[ATT_BLOCK], const int64_t dk,
                           const int kt) {
    const int64_t k_bytes = dk * (kt == POSATTN_KV_TYPE_F32 ? 4 : 2);
    const int q_contiguous = t->q_dim_stride == 1;
    for (int64_t b = 0; b < n; b += 4) {
        const int64_t nb = n - b < 4 ? n - b : 4;
        for (int64_t j = j0 + b + ATT_BLOCK; j < j0 + b + ATT_BLOCK + 4 && j < key_end; ++j) {
            att_prefetch_row(att_kv_row(t->k, kt, t->k_tok_stride, j), k_bytes);
        }
        int r = r0;
        for (; r + ATT_QK_ROWS <= r1; r += ATT_QK_ROWS) {
            float *s[ATT_QK_ROWS];
            for (int i = 0; i < ATT_QK_ROWS; ++i) s[i] = x[r + i] + b;
            if (q_contiguous) att_scores_tile(t, rows + r, ATT_QK_ROWS, j0 + b, nb, s, dk, kt, 1);
            else att_scores_tile(t, rows + r, ATT_QK_ROWS, j0 + b, nb, s, dk, kt, 0);
        }
        for (; r < r1; ++r) {
            float *s[1] = {x[r] + b};
            if (q_contiguous) att_scores_tile(t, rows + r, 1, j0 + b, nb, s, dk, kt, 1);
            else att_scores_tile(t, rows + r, 1, j0 + b, nb, s, dk, kt, 0);
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* 2. Logits, maximum, weights                                                                                  */
/* ---------------------------------------------------------------------------------------------------------- */

/* dist of keys j..j+n-1 (n <= W) of a row with a slope, bit-identical to the scalar reference's. */
ATT_INLINE vf att_distances(const posattn_attention_row *row, int64_t j, int64_t n) {
    const posattn_key_positions *keys = &row->keys;
    if (row->nd.axes < 2) {
        vf k_pos;
        if (!keys->k_pos && j + ATT_W <= INT64_C(1) << 31) {
            k_pos = vf_key_index(j);
        } else if (keys->k_pos && keys->k_pos_stride == 1) {
            k_pos = vf_load_f32(keys->k_pos + j, n);
        } else {
            float lanes[ATT_W] = {0};
            for (int64_t i = 0; i < n; ++i) {
                lanes[i] = keys->k_pos ? keys->k_pos[(j + i) * keys->k_pos_stride] : (float)(j + i);
            }
            k_pos = vf_load_f32(lanes, ATT_W);
        }
        return vf_abs(vf_sub(vf_set1(row->q_pos), k_pos));
    }
    float lanes[ATT_W] = {0};
    for (int64_t i = 0; i < n; ++i) {
        lanes[i] = posattn_alibi_dist_nd(&row->nd, keys->k_pos + (j + i) * keys->k_pos_stride);
    }
    return vf_load_f32(lanes, ATT_W);
}

/* The logits of one row for keys [j0, j0 + n) from its scores x[0..n), in place; keys outside the row's [lo, hi)
 * become -inf. Returns their maximum, NaN-ignoring. */
ATT_INLINE float att_logits(const posattn_attention_tile *t, const posattn_attention_row *row, int64_t j0,
                            int64_t n, float *x) {
    const vf scale = vf_set1(t->scale), cap = vf_set1(t->softcap), slope = vf_set1(row->slope);
    const vf mask_scale = vf_set1(row->mask_scale);
    vf mx = vf_set1(-INFINITY);
    for (int64_t b = 0; b < n; b += ATT_W) {
        const int64_t nl = n - b < ATT_W ? n - b : ATT_W, j = j0 + b;
        vf v = vf_mul(scale, vf_load_f32(x + b, nl));
        if (t->softcap > 0.0f) v = vf_mul(cap, vf_tanh(vf_div(v, cap)));
        if (row->slope != 0.0f) v = vf_sub(v, vf_mul(slope, att_distances(row, j, nl)));
        if (row->mask) {
            const vf m = t->mask_is_f16 ? vf_load_f16((const uint16_t *)row->mask + j, nl)
                                        : vf_load_f32((const float *)row->mask + j, nl);
            v = vf_apply_mask(v, m, mask_scale);
        }
        const int64_t first = row->lo - j, end = (row->hi < j + nl ? row->hi : j + nl) - j;
        v = vf_keep_lanes(v, first, end);
        vf_store_n(x + b, v, nl);
        mx = vf_max_num(mx, v);
    }
    return vf_reduce_max(mx);
}

/* Weights p = exp(x - m) of one row in place (n keys); returns their float32 sum. */
ATT_INLINE float att_weights(float *x, int64_t n, float m) {
    const vf mv = vf_set1(m);
    vf sum = vf_zero();
    for (int64_t b = 0; b < n; b += ATT_W) {
        const int64_t nl = n - b < ATT_W ? n - b : ATT_W;
        /* Lanes past n are -inf, so their weights are 0 in the sum (a loaded 0 - m could be a live exponent). */
        const vf p = vf_weight(vf_sub(vf_keep_lanes(vf_load_f32(x + b, nl), 0, nl), mv));
        vf_store_n(x + b, p, nl);
        sum = vf_add(sum, p);
    }
    return vf_reduce_add(sum);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* 3. Weighted sums of v                                                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

/* sums[r][d0 + ...] += sum over the block of p[r][b] v_b for R rows and nv vectors of dv from d0 (the last one
 * `last` lanes). The same dims of the keys one block ahead, below prefetch_end, are requested meanwhile. */
ATT_INLINE void att_values_tile(const posattn_attention_tile *t, int64_t j0, int64_t n, float (*p)[ATT_BLOCK],
                                double *const *sums, const int R, int64_t d0, int nv, int64_t last,
                                int64_t prefetch_end, const int vt) {
    vf acc[ATT_PV_ROWS][ATT_PV_VECS];
    ATT_UNROLL for (int r = 0; r < R; ++r) {
        ATT_UNROLL for (int c = 0; c < ATT_PV_VECS; ++c) acc[r][c] = vf_zero();
    }
    const int64_t elem = vt == POSATTN_KV_TYPE_F32 ? 4 : 2, v_bytes = ((int64_t)(nv - 1) * ATT_W + last) * elem;
    for (int64_t b = 0; b < n; ++b) {
        if (prefetch_end > j0 + b + ATT_BLOCK) {
            att_prefetch_row((const char *)att_kv_row(t->v, vt, t->v_tok_stride, j0 + b + ATT_BLOCK) + d0 * elem,
                             v_bytes);
        }
        int live = 0;
        ATT_UNROLL for (int r = 0; r < R; ++r) live += p[r][b] != 0.0f;
        if (!live) continue;
        const void *v = att_kv_row(t->v, vt, t->v_tok_stride, j0 + b);
        vf vv[ATT_PV_VECS];
        ATT_UNROLL for (int c = 0; c < ATT_PV_VECS; ++c) {
            vv[c] = c < nv ? att_load_kv(v, vt, d0 + c * ATT_W, c == nv - 1 ? last : ATT_W) : vf_zero();
        }
        /* Rows whose weight is 0 skip the key (tested only when some are, the edges of masks and windows). */
        ATT_UNROLL for (int r = 0; r < R; ++r) {
            if (live < R && p[r][b] == 0.0f) continue;
            const vf pv = vf_set1(p[r][b]);
            ATT_UNROLL for (int c = 0; c < ATT_PV_VECS; ++c) {
                if (c < nv) acc[r][c] = vf_fma(pv, vv[c], acc[r][c]);
            }
        }
    }
    ATT_UNROLL for (int r = 0; r < R; ++r) {
        ATT_UNROLL for (int c = 0; c < ATT_PV_VECS; ++c) {
            if (c < nv) vf_add_to_f64(sums[r] + d0 + c * ATT_W, acc[r][c], c == nv - 1 ? last : ATT_W);
        }
    }
}

/* One group of nv <= ATT_PV_VECS vectors of dims from d0, for rows [0, nr) in register tiles of ATT_PV_ROWS, 4, 2
 * and 1 rows. nv is a compile-time constant here (the callers switch on it), so the accumulators stay in
 * registers. */
ATT_INLINE void att_values_group(const posattn_attention_tile *t, int64_t j0, int64_t n, int64_t key_end,
                                 float (*p)[ATT_BLOCK], double *const *sums, int nr, int64_t d0, const int nv,
                                 int64_t last, const int vt) {
    int r = 0;
    for (; r + ATT_PV_ROWS <= nr; r += ATT_PV_ROWS) {
        att_values_tile(t, j0, n, p + r, sums + r, ATT_PV_ROWS, d0, nv, last, r == 0 ? key_end : INT64_MIN, vt);
    }
#if ATT_PV_ROWS > 4
    for (; r + 4 <= nr; r += 4) {
        att_values_tile(t, j0, n, p + r, sums + r, 4, d0, nv, last, r == 0 ? key_end : INT64_MIN, vt);
    }
#endif
#if ATT_PV_ROWS > 2
    for (; r + 2 <= nr; r += 2) {
        att_values_tile(t, j0, n, p + r, sums + r, 2, d0, nv, last, r == 0 ? key_end : INT64_MIN, vt);
    }
#endif
    for (; r < nr; ++r) att_values_tile(t, j0, n, p + r, sums + r, 1, d0, nv, last, r == 0 ? key_end : INT64_MIN, vt);
}

/* The block's weighted sums for rows [0, nr) (weights p[r], sums sums[r]); the first tile of each group of dims
 * requests the next block's values, up to key_end. */
ATT_INLINE void att_values(const posattn_attention_tile *t, int64_t j0, int64_t n, int64_t key_end,
                           float (*p)[ATT_BLOCK], double *const *sums, int nr, const int64_t dv, const int vt) {
    int64_t d0 = 0;
    for (; d0 + ATT_PV_VECS * ATT_W <= dv; d0 += ATT_PV_VECS * ATT_W) {
        att_values_group(t, j0, n, key_end, p, sums, nr, d0, ATT_PV_VECS, ATT_W, vt);
    }
    if (d0 == dv) return;
    const int nv = (int)((dv - d0 + ATT_W - 1) / ATT_W);
    const int64_t last = dv - d0 - (int64_t)(nv - 1) * ATT_W;
    switch (nv) { /* 1..ATT_PV_VECS = 4: a last group of 4 vectors whose last one is partial, too */
    case 1: att_values_group(t, j0, n, key_end, p, sums, nr, d0, 1, last, vt); break;
    case 2: att_values_group(t, j0, n, key_end, p, sums, nr, d0, 2, last, vt); break;
    case 3: att_values_group(t, j0, n, key_end, p, sums, nr, d0, 3, last, vt); break;
    default: att_values_group(t, j0, n, key_end, p, sums, nr, d0, 4, last, vt); break;
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* The pass and the tile                                                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

static inline void att_scale_sums(double *a, int64_t dv, double f) {
    for (int64_t d = 0; d < dv; ++d) a[d] *= f;
}

/* The result of one row from its running (m, l, a), as attention_kernels.h says. */
static inline void att_finish_row(const posattn_attention_tile *t, const posattn_attention_row *row, float m,
                                  double l, double *a) {
    const int64_t dv = t->dv;
    if (t->partial) {
        row->partial[0] = m;
        row->partial[1] = l;
        return; /* a is row->partial + 2 already */
    }
    posattn_attention_finish(row->out, row->lse, dv, row->has_sink, row->sink, m, l, a);
}

/* Rows [0, nr) of `rows`, with their float64 sums a at sums[r] (dv doubles each). */
ATT_INLINE void att_pass(const posattn_attention_tile *t, const posattn_attention_row *rows, int nr,
                         double *const *sums, const int64_t dk, const int64_t dv, const int kt, const int vt) {
    float x[ATT_ROWS][ATT_BLOCK];
    float m[ATT_ROWS];
    double l[ATT_ROWS];
    int64_t lo, hi;
    posattn_attention_pass_begin(rows, nr, dv, m, l, sums, &lo, &hi);
    /* Few rows per K and V byte (decode): memory-bound, the next block is requested ahead. Many rows (prefill):
     * the tiles re-read K and V from L2, where the requests only cost issue slots. */
    const int64_t prefetch_end = nr <= ATT_PREFETCH_MAX_ROWS ? hi : INT64_MIN;
    /* Blocks at multiples of ATT_BLOCK keys, whatever rows share the pass: a row's result then depends on its own
     * keys only, so any split of the rows (tiles, passes, row ranges, threads) gives the same bits. */
    for (int64_t j0 = lo < hi ? lo - lo % ATT_BLOCK : lo; j0 < hi; j0 += ATT_BLOCK) {
        const int64_t n = hi - j0 < ATT_BLOCK ? hi - j0 : ATT_BLOCK;
        /* Rows [r0, r1) are those with keys in the block (prefill tiles walk a causal triangle). */
        int r0 = 0, r1 = nr;
        while (r0 < r1 && (rows[r0].hi <= j0 || rows[r0].lo >= j0 + n || rows[r0].lo >= rows[r0].hi)) {
            memset(x[r0], 0, sizeof x[r0]);
            ++r0;
        }
        while (r1 > r0 && (rows[r1 - 1].hi <= j0 || rows[r1 - 1].lo >= j0 + n || rows[r1 - 1].lo >= rows[r1 - 1].hi)) {
            --r1;
            memset(x[r1], 0, sizeof x[r1]);
        }
        att_scores(t, rows, r0, r1, j0, n, prefetch_end, x, dk, kt);
        for (int r = r0; r < r1; ++r) {
            const float block_max = att_logits(t, &rows[r], j0, n, x[r]);
            if (block_max == -INFINITY) {
                int nan = 0;
                for (int64_t b = 0; b < n; ++b) nan |= isnan(x[r][b]);
                if (!nan) { /* nothing valid: never -inf - (-inf) */
                    memset(x[r], 0, sizeof x[r]);
                    continue;
                }
            }
            if (block_max > m[r]) {
                const double f = posattn_attention_rescale(m[r], block_max);
                l[r] *= f;
                att_scale_sums(sums[r], dv, f);
                m[r] = block_max;
            }
            l[r] += (double)att_weights(x[r], n, m[r]);
        }
        att_values(t, j0, n, prefetch_end, x + r0, sums + r0, r1 - r0, dv, vt);
    }
    for (int r = 0; r < nr; ++r) att_finish_row(t, &rows[r], m[r], l[r], sums[r]);
}

ATT_INLINE void att_tile(const posattn_attention_tile *t, const int64_t dk_c, const int64_t dv_c, const int kt_c,
                         const int vt_c) {
    const int64_t dk = dk_c == ATT_ANY ? t->dk : dk_c, dv = dv_c == ATT_ANY ? t->dv : dv_c;
    const int kt = kt_c == ATT_ANY ? t->k_type : kt_c, vt = vt_c == ATT_ANY ? t->v_type : vt_c;
    double *sums[ATT_ROWS];
    if (t->partial) {
        for (int r = 0; r < t->n_rows; ++r) sums[r] = t->rows[r].partial + 2;
        att_pass(t, t->rows, t->n_rows, sums, dk, dv, kt, vt);
        return;
    }
    double a[POSATTN_ATTENTION_SUM_DOUBLES];
    const int per_pass = posattn_attention_rows_per_pass(t->n_rows, dv);
    for (int r0 = 0; r0 < t->n_rows; r0 += per_pass) {
        const int nr = t->n_rows - r0 < per_pass ? t->n_rows - r0 : per_pass;
        for (int r = 0; r < nr; ++r) sums[r] = a + r * dv;
        att_pass(t, t->rows + r0, nr, sums, dk, dv, kt, vt);
    }
}

#define ATT_VARIANT(name, dk, dv, kt, vt)                                                                         \
    static __attribute__((noinline)) void name(const posattn_attention_tile *t) { att_tile(t, dk, dv, kt, vt); }
#define ATT_VARIANTS_OF_DIM(dim)                                                                                   \
    ATT_VARIANT(att_tile_f32_##dim, dim, dim, POSATTN_KV_TYPE_F32, POSATTN_KV_TYPE_F32)                            \
    ATT_VARIANT(att_tile_f16_##dim, dim, dim, POSATTN_KV_TYPE_F16, POSATTN_KV_TYPE_F16)                            \
    ATT_VARIANT(att_tile_bf16_##dim, dim, dim, POSATTN_KV_TYPE_BF16, POSATTN_KV_TYPE_BF16)
ATT_VARIANTS_OF_DIM(64)
ATT_VARIANTS_OF_DIM(80)
ATT_VARIANTS_OF_DIM(96)
ATT_VARIANTS_OF_DIM(128)
ATT_VARIANTS_OF_DIM(256)
ATT_VARIANT(att_tile_f32_any, ATT_ANY, ATT_ANY, POSATTN_KV_TYPE_F32, POSATTN_KV_TYPE_F32)
ATT_VARIANT(att_tile_f16_any, ATT_ANY, ATT_ANY, POSATTN_KV_TYPE_F16, POSATTN_KV_TYPE_F16)
ATT_VARIANT(att_tile_bf16_any, ATT_ANY, ATT_ANY, POSATTN_KV_TYPE_BF16, POSATTN_KV_TYPE_BF16)
ATT_VARIANT(att_tile_mixed, ATT_ANY, ATT_ANY, ATT_ANY, ATT_ANY)

#define ATT_DIM_CASE(dim)                                                                                          \
    case dim:                                                                                                      \
        if (t->k_type == POSATTN_KV_TYPE_F32) att_tile_f32_##dim(t);                                               \
        else if (t->k_type == POSATTN_KV_TYPE_F16) att_tile_f16_##dim(t);                                          \
        else att_tile_bf16_##dim(t);                                                                               \
        return;

void ATT_CAT(posattn_attention_tile_f32_, ATT_ISA)(const posattn_attention_tile *t) {
    if (t->k_type != t->v_type) {
        att_tile_mixed(t);
        return;
    }
    if (t->dk == t->dv) {
        switch (t->dk) {
            ATT_DIM_CASE(64)
            ATT_DIM_CASE(80)
            ATT_DIM_CASE(96)
            ATT_DIM_CASE(128)
            ATT_DIM_CASE(256)
        default: break;
        }
    }
    if (t->k_type == POSATTN_KV_TYPE_F32) att_tile_f32_any(t);
    else if (t->k_type == POSATTN_KV_TYPE_F16) att_tile_f16_any(t);
    else att_tile_bf16_any(t);
}

#undef ATT_DIM_CASE
#undef ATT_VARIANTS_OF_DIM
#undef ATT_VARIANT
