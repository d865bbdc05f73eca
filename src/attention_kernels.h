/*
 * The tile contract of the fused attention kernels (SPEC 9), and the kernel type that src/kernels.h lists as the
 * operation attention_tile.
 *
 * The public entry points (src/attention_api.c) validate everything, resolve each row's positions, mask and valid
 * keys, then hand the kernel tiles: up to POSATTN_ATTENTION_TILE_ROWS (head, query) rows that read the same KV
 * head, so that K and V are streamed once per tile whatever the number of query heads sharing them (GQA) and of
 * queries (prefill). Kernels never see invalid input and never fail.
 *
 * For every row of the tile, over the keys j in [row.lo, row.hi) (already clipped to the call's key range):
 *     s_j = q . k_j                  float32 products and sums over dk (any order, FMA allowed)
 *     x_j = scale * s_j; softcap; x_j = x_j - slope * dist_j; mask       exactly posattn_softmax_row's logit
 *     (-inf mask entries and keys outside [lo, hi) are excluded)
 * online over blocks of at most POSATTN_ATTENTION_BLOCK keys: the block's valid logits and their maximum; the
 * running maximum m grows to it (the running sums are then scaled by exp(m_old - m_new) in float64, 0 below
 * POSATTN_ATTENTION_RESCALE_FLUSH); weights p_j = exp(x_j - m), exactly 0 when x_j - m < POSATTN_ATTENTION_FLUSH
 * (decided by a compare before any exp is formed); l += sum p_j and a += sum p_j v_j, float32 within a block,
 * float64 across blocks. A NaN logit makes the row NaN (the compare is false for NaN, so it reaches the sums);
 * a block whose maximum is -inf adds nothing (never -inf - (-inf)).
 * Then, partial mode: row.partial = (m, l, a[0..dv)) in float64 (m = -inf, l = 0, a = 0 when nothing was valid).
 * Final mode: the sink joins once (m' = max(m, sink), l = l e^(m - m') + e^(sink - m'), a scaled alike; a sink of
 * -inf adds nothing, so a row without valid keys stays empty, as in posattn_softmax_row); out[d] =
 * (float)(a[d] / l) and lse = (float)(m' + log l); l == 0 (no valid key, no sink): out = 0, lse = -inf.
 */
#ifndef POSATTN_ATTENTION_KERNELS_H
#define POSATTN_ATTENTION_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Weights exp(x - m) with x - m below this are 0 (so that p * v stays normal for |v| >= 2^-62). */
#define POSATTN_ATTENTION_FLUSH (-44.0f)
/* Rescale factors exp(m_old - m_new) (float64) with an exponent below this are 0 (no float64 subnormal). */
#define POSATTN_ATTENTION_RESCALE_FLUSH (-700.0)
/* Rows per tile: 8 (head, query) rows share each K and V load, and a tile's logits, float64 sums (dv = 128) and
 * row descriptors stay within the 16 KiB stack budget of an entry point (scripts/stack-usage.sh). */
#define POSATTN_ATTENTION_TILE_ROWS 8
/* Head sizes the kernels accept (the API refuses others with POSATTN_ERR_HEAD_DIM). */
#define POSATTN_ATTENTION_MAX_DIM 576

/* K and V element types (the values of posattn_kv_type). */
enum { POSATTN_KV_TYPE_F32 = 0, POSATTN_KV_TYPE_F16 = 1, POSATTN_KV_TYPE_BF16 = 2 };

/* One (head, query) row of a tile: what its logits need besides the scores, and where its result goes. */
typedef struct posattn_attention_row {
    const float *q;             /* the query: dk floats at q[d * q_dim_stride] */
    float slope;                /* 0: no position bias */
    float q_pos;                /* 1-D query position (nd.axes == 0) */
    posattn_key_positions keys; /* key positions (k_pos NULL: j) */
    posattn_nd_positions nd;    /* nd.axes >= 2: N-D distance (q_pos unused) */
    const void *mask;           /* NULL, or the row's mask M[0..nk) (indexed by the absolute key j) */
    float mask_scale;           /* 1, or m_h in MASK_TIMES_SLOPE mode */
    int64_t lo, hi;             /* the row's valid keys, within the tile's key range; lo == hi: none */
    int has_sink;               /* final mode only */
    float sink;
    float *out;      /* final mode: dv floats, contiguous */
    float *lse;      /* final mode: NULL or the row's log-sum-exp */
    double *partial; /* partial mode: m, l, a[0..dv) */
} posattn_attention_row;

typedef struct posattn_attention_tile {
    const void *k;        /* the KV head's key 0 (elements of k_type) */
    const void *v;        /* the KV head's value 0 */
    int64_t k_tok_stride; /* elements between consecutive keys */
    int64_t v_tok_stride;
    int k_type, v_type; /* POSATTN_KV_TYPE_* */
    int64_t dk, dv;     /* 1..POSATTN_ATTENTION_MAX_DIM */
    int64_t q_dim_stride;
    int64_t key_begin, key_end; /* the keys of this call: every row's [lo, hi) lies inside */
    float scale, softcap;
    int mask_is_f16;
    int partial; /* 1: write row.partial; 0: row.out and row.lse */
    int n_rows;  /* 1..POSATTN_ATTENTION_TILE_ROWS */
    const posattn_attention_row *rows;
} posattn_attention_tile;

typedef void posattn_attention_tile_kernel(const posattn_attention_tile *tile);

/* exp(from - to) for running sums moved from maximum `from` to `to` >= from, float64; 0 from an empty range
 * (from = -inf) and below POSATTN_ATTENTION_RESCALE_FLUSH. Shared by every ISA and the split-KV merge. */
static inline double posattn_attention_rescale(double from, double to) {
    if (from == -INFINITY) return 0.0;
    const double e = from - to;
    return e < POSATTN_ATTENTION_RESCALE_FLUSH ? 0.0 : exp(e);
}

/* The float64 sums a of final mode that a tile keeps on the stack (8 KiB: a whole tile of 8 rows up to dv = 128),
 * and how many rows each pass of a tile of n_rows takes so that their sums fit (the tile split evenly: all 8 for
 * dv <= 128, 4 + 4 for dv = 256, 1 per pass for dv = 576). */
#define POSATTN_ATTENTION_SUM_DOUBLES 1024
static inline int posattn_attention_rows_per_pass(int n_rows, int64_t dv) {
    int fit = (int)(POSATTN_ATTENTION_SUM_DOUBLES / dv);
    if (fit > POSATTN_ATTENTION_TILE_ROWS) fit = POSATTN_ATTENTION_TILE_ROWS;
    const int passes = (n_rows + fit - 1) / fit;
    return (n_rows + passes - 1) / passes;
}

/* Starts the running state of a pass over rows [0, nr) (m = -inf, l = 0, a = 0 in sums[r][0, dv)) and returns in
 * [*lo, *hi) the union of their valid keys (*lo >= *hi: none). Shared by every ISA's tile, so the passes agree on
 * which keys they walk. */
static inline void posattn_attention_pass_begin(const posattn_attention_row *rows, int nr, int64_t dv, float *m,
                                                double *l, double *const *sums, int64_t *lo, int64_t *hi) {
    *lo = INT64_MAX;
    *hi = INT64_MIN;
    for (int r = 0; r < nr; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0;
        memset(sums[r], 0, (size_t)dv * sizeof(double));
        if (rows[r].lo < rows[r].hi) {
            *lo = rows[r].lo < *lo ? rows[r].lo : *lo;
            *hi = rows[r].hi > *hi ? rows[r].hi : *hi;
        }
    }
}

/* The final output of a row from its running maximum m, sum l and weighted sums a[0, dv) (float64, a is scaled in
 * place): the sink joins once, then out = a / l and lse = m' + log l; l == 0 gives zeros and -inf. A sink of -inf
 * weighs 0 (never -inf - (-inf)); a NaN sink makes the row NaN. Shared by every ISA and the split-KV merge, so the
 * paths differ only in how they formed (m, l, a). */
static inline void posattn_attention_finish(float *out, float *lse, int64_t dv, int has_sink, float sink, double m,
                                            double l, double *a) {
    if (has_sink && !(sink <= m)) { /* the sink raises the maximum (or is NaN) */
        const double f = posattn_attention_rescale(m, sink);
        l *= f;
        for (int64_t d = 0; d < dv; ++d) a[d] *= f;
        m = sink;
    }
    if (has_sink && sink != -INFINITY) {
        const double gap = (double)sink - m;
        if (!(gap < POSATTN_ATTENTION_FLUSH)) l += exp(gap);
    }
    if (l == 0.0) {
        memset(out, 0, (size_t)dv * sizeof(float));
        if (lse) *lse = -INFINITY;
        return;
    }
    for (int64_t d = 0; d < dv; ++d) out[d] = (float)(a[d] / l);
    if (lse) *lse = (float)(m + log(l));
}

#endif /* POSATTN_ATTENTION_KERNELS_H */
