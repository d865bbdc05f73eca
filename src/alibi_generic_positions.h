/*
 * Part of alibi_generic.h (included from there, after the vector layer): where keys are, how far they are, and the
 * external bias row built from that.
 */
#ifndef ALIBI_ISA
#error "include alibi_generic.h, not this file"
#endif

/* How key j's distance |q - k_j| is found. Without key positions (k_j = j), KEYS_IOTA carries the vector of q - j
 * from one vector to the next by float subtractions, which are exact while q is an integer and every q - j lies
 * within 2^24 of 0 (the KV-cache default: q = nk - nq + i); the distance is then one absolute value. Other rows
 * without key positions (fractional queries, or more than 2^24 keys) use KEYS_IOTA_WIDE: (float)j converted per
 * vector by the layer, as the scalar reference rounds it, then |q - k| as for positions read from memory. */
enum { KEYS_NONE, KEYS_IOTA, KEYS_IOTA_WIDE, KEYS_CONTIGUOUS, KEYS_STRIDED };
/* N-D rows in the softmax body: KEYS_ND + 2 (A - 2) + l2, for A = 2..4 kept axes. */
enum { KEYS_ND = 8 };
#define KEYS_ND_AXES(keys) (((keys) - KEYS_ND) / 2 + 2)
#define KEYS_ND_L2(keys) (((keys) - KEYS_ND) & 1)

#define POSATTN_IOTA_EXACT_LIMIT (INT64_C(1) << 24) /* integers up to 2^24 are floats */

/* Whether q - j is an exact float for every key j in [0, nk): q an integer, q - j in [-2^24, 2^24]. Checked per row
 * in a handful of integer operations (short rows feel every cycle spent here). */
static inline int iota_distances_exact(float q, int64_t nk) {
    if (!(fabsf(q) <= (float)POSATTN_IOTA_EXACT_LIMIT) || nk > POSATTN_IOTA_EXACT_LIMIT) return 0;
    const int32_t qi = (int32_t)q;
    return (float)qi == q && (int64_t)qi - (nk - 1) >= -POSATTN_IOTA_EXACT_LIMIT;
}

static inline int keys_mode(const posattn_key_positions *keys, float q, int64_t nk) {
    if (!keys->k_pos) return iota_distances_exact(q, nk) ? KEYS_IOTA : KEYS_IOTA_WIDE;
    return keys->k_pos_stride == 1 ? KEYS_CONTIGUOUS : KEYS_STRIDED;
}

/* The vector of q - (j + l) at the first key j = lo of a row, for KEYS_IOTA (exact: see iota_distances_exact). */
ALIBI_INLINE vf iota_distances_at(float q, int64_t lo) {
    return vf_sub(vf_set1(q), vf_add(vf_set1((float)lo), vf_iota()));
}

/* ---------------------------------------------------------------------------------------------------------- */
/* 1-D key distances                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct alibi_keys {
    const float *k_pos;
    vkeys strided; /* the layer's state for KEYS_STRIDED */
} alibi_keys;

static inline void alibi_keys_init(alibi_keys *k, const posattn_key_positions *keys) {
    k->k_pos = keys->k_pos;
    vkeys_init(&k->strided, keys);
}

/* |q - k| of keys j..j+n-1 (full: n == V; the positions of other keys are not read, their lanes hold anything),
 * one rounding: the subtraction's. qk carries q - k for KEYS_IOTA, where the loops keep the vector up to date with
 * one subtraction per vector. */
ALIBI_INLINE vf key_distances(const alibi_keys *k, int mode, float q, int64_t j, int64_t n, int full, vf qk) {
    switch (mode) {
    case KEYS_IOTA: return vf_abs(qk);
    case KEYS_IOTA_WIDE: return vf_absdiff(vf_set1(q), vf_iota_wide(j));
    case KEYS_CONTIGUOUS:
        return vf_absdiff(vf_set1(q), full ? vf_load(k->k_pos + j) : vf_load_part(k->k_pos + j, n));
    default: return vf_absdiff(vf_set1(q), vf_keys_strided(&k->strided, j, full ? ALIBI_LANES : n));
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* N-D distances (2..4 kept axes)                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct alibi_nd {
    posattn_nd_positions nd; /* a copy: the row's own fields could alias the output as far as the compiler knows */
    vnd coords;              /* the layer's state for its coordinate loader */
} alibi_nd;

static inline void alibi_nd_init(alibi_nd *c, const posattn_nd_positions *nd, const posattn_key_positions *keys,
                                 int64_t nk) {
    c->nd = *nd;
    vnd_init(&c->coords, nd, keys, nk);
}

/* Axis a's term of the distance, posattn_alibi_dist_nd's operations: |q - k| (L1) or q - k (L2), times w, squared
 * for L2; one rounding each. */
ALIBI_INLINE vf nd_term(const alibi_nd *c, int a, int l2, vf coord) {
    vf t = l2 ? vf_sub(vf_set1(c->nd.q[a]), coord) : vf_absdiff(vf_set1(c->nd.q[a]), coord);
    if (c->nd.weighted) t = vf_mul(vf_set1(c->nd.w[a]), t);
    return l2 ? vf_mul(t, t) : t;
}

/* Distances of keys j..j+n-1 (n <= V; other lanes hold anything), summed left to right as the scalar reference
 * sums them, then the correctly rounded square root for L2: bit-identical to posattn_alibi_dist_nd. */
ALIBI_INLINE vf nd_distance(const alibi_nd *c, int axes, int l2, int64_t j, int64_t n) {
    vf c0 = vf_zero(), c1 = c0, c2 = c0, c3 = c0;
    const int order = vnd_coords(&c->coords, axes, j, n, &c0, &c1, &c2, &c3);
    vf acc = nd_term(c, 0, l2, c0);
    acc = vf_add(acc, nd_term(c, 1, l2, c1));
    if (axes > 2) acc = vf_add(acc, nd_term(c, 2, l2, c2));
    if (axes > 3) acc = vf_add(acc, nd_term(c, 3, l2, c3));
    if (l2) acc = vf_sqrt(acc);
    return vf_nd_key_order(acc, order);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* External bias rows                                                                                           */
/* ---------------------------------------------------------------------------------------------------------- */

/* bias[j] = -slope * |q - k_j|, with the sign folded into the constant: one rounding for the distance and one for
 * the product, bit-identical to the scalar reference. */
ALIBI_INLINE void bias_row_body(const posattn_bias_row *row, int mode) {
    const int64_t V = ALIBI_LANES, nk = row->nk;
    float *bias = row->bias;
    alibi_keys k;
    alibi_keys_init(&k, &row->keys);
    const float neg_slope = -row->slope, q = row->q_pos;
    vf qk = mode == KEYS_IOTA ? iota_distances_at(q, 0) : vf_zero();
    int64_t j = 0;
    /* Groups of 4 vectors: one subtraction per group on the dependency chain of qk instead of one per vector. */
    for (; j + 4 * V <= nk; j += 4 * V) {
        const vf qk1 = vf_sub(qk, vf_set1((float)V)), qk2 = vf_sub(qk, vf_set1((float)(2 * V)));
        const vf qk3 = vf_sub(qk, vf_set1((float)(3 * V)));
        vf_store(bias + j, vf_mul(vf_set1(neg_slope), key_distances(&k, mode, q, j, V, 1, qk)));
        vf_store(bias + j + V, vf_mul(vf_set1(neg_slope), key_distances(&k, mode, q, j + V, V, 1, qk1)));
        vf_store(bias + j + 2 * V, vf_mul(vf_set1(neg_slope), key_distances(&k, mode, q, j + 2 * V, V, 1, qk2)));
        vf_store(bias + j + 3 * V, vf_mul(vf_set1(neg_slope), key_distances(&k, mode, q, j + 3 * V, V, 1, qk3)));
        qk = vf_sub(qk, vf_set1((float)(4 * V)));
    }
    for (; j + V <= nk; j += V) {
        vf_store(bias + j, vf_mul(vf_set1(neg_slope), key_distances(&k, mode, q, j, V, 1, qk)));
        qk = vf_sub(qk, vf_set1((float)V));
    }
    if (j < nk) {
        vf_store_part(bias + j, vf_mul(vf_set1(neg_slope), key_distances(&k, mode, q, j, nk - j, 0, qk)), nk - j);
    }
}

/* bias[j] = -slope * dist_j with the N-D distance. */
ALIBI_INLINE void nd_bias_row_body(const posattn_bias_row *row, int axes, int l2) {
    const int64_t V = ALIBI_LANES, nk = row->nk;
    float *bias = row->bias;
    alibi_nd c;
    alibi_nd_init(&c, &row->nd, &row->keys, nk);
    const float neg_slope = -row->slope;
    int64_t j = 0;
    for (; j + V <= nk; j += V) vf_store(bias + j, vf_mul(vf_set1(neg_slope), nd_distance(&c, axes, l2, j, V)));
    if (j < nk) {
        vf_store_part(bias + j, vf_mul(vf_set1(neg_slope), nd_distance(&c, axes, l2, j, nk - j)), nk - j);
    }
}
