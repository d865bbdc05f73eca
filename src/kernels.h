/*
 * The internal contract between the dispatcher and the per-ISA kernels: the row structs, the operations, the ISAs
 * and the shape of the registry (whose lines are in src/registry.c).
 *
 * The public entry points validate every argument, then cut the work into rows and call one row kernel per row
 * through the registry. Row kernels therefore never see invalid input and never fail.
 */
#ifndef POSATTN_KERNELS_H
#define POSATTN_KERNELS_H

#include <math.h>
#include <stdint.h>

#include "posattn.h"

#if defined(__GNUC__)
#define POSATTN_HIDDEN __attribute__((visibility("hidden")))
#else
#define POSATTN_HIDDEN
#endif

/* Results of exp below this are flushed to 0, so no subnormal is ever produced (e^-87 ~ 1.65e-38 > FLT_MIN). */
#define POSATTN_EXP_FLUSH_BELOW (-87.0f)

/* Normalised outputs below this are 0: dividing an exponential that is itself normal by a large denominator would
 * otherwise produce subnormals (slow on x86, and the library cannot set FTZ for its caller). SIMD paths decide it
 * before the multiply, by comparing e_j with POSATTN_OUTPUT_FLUSH_BELOW * sum, so no subnormal is ever formed. */
#define POSATTN_OUTPUT_FLUSH_BELOW 0x1p-125f

/* Where key j sits: k_pos[j * k_pos_stride], or j itself when k_pos is NULL. */
typedef struct posattn_key_positions {
    const float *k_pos;
    int64_t k_pos_stride;
} posattn_key_positions;

/*
 * N-D positions of a row (A = 2..4 axes with a non-zero weight; axes == 0 means the 1-D fields of the row apply).
 * Key j's coordinate on kept axis a is keys.k_pos[j * keys.k_pos_stride + offset[a]] (k_pos is never NULL here);
 * the last key's position holds k_len floats, so no path reads past keys.k_pos[(nk-1)*stride + k_len). The API has
 * dropped the axes whose weight is 0 (they are never read), kept the order of the others, and folded the metric
 * into w: for L2, w holds |w| (the square makes the sign irrelevant, bit for bit).
 *     L1: dist = w[0]|q[0]-k[0]| + w[1]|q[1]-k[1]| + ...            (left to right)
 *     L2: dist = sqrt((w[0](q[0]-k[0]))^2 + (w[1](q[1]-k[1]))^2 + ...)
 * one rounding per operation, no FMA, the products skipped when weighted == 0 (all kept weights are 1: exact).
 * Every ISA follows posattn_alibi_dist_nd below operation for operation (the hardware square root is correctly
 * rounded, as sqrtf), so N-D biases are bit-identical across ISAs.
 */
typedef struct posattn_nd_positions {
    int axes;     /* 0 (1-D row) or 2..4 */
    int l2;       /* metric L2 */
    int weighted; /* some kept w differs from 1 */
    int k_len;    /* floats in one key position (A, before dropping axes) */
    int offset[4];
    float q[4];
    float w[4];
} posattn_nd_positions;

static inline float posattn_alibi_dist_nd(const posattn_nd_positions *nd, const float *key) {
    float acc = 0.0f;
    for (int a = 0; a < nd->axes; ++a) {
        float t = nd->q[a] - key[nd->offset[a]];
        if (!nd->l2) t = fabsf(t);
        if (nd->weighted) t = nd->w[a] * t;
        if (nd->l2) t = t * t;
        acc = a == 0 ? t : acc + t;
    }
    return nd->l2 ? sqrtf(acc) : acc;
}

/* One row of the external bias: bias[j] = -slope * |q_pos - k_j| for j in [0, nk) (1-D), or -slope * dist_j with
 * the N-D distance of nd when nd.axes >= 2 (q_pos unused). slope != 0. */
typedef struct posattn_bias_row {
    float *bias;
    int64_t nk;
    float slope;
    float q_pos;
    posattn_key_positions keys;
    posattn_nd_positions nd;
} posattn_bias_row;

/*
 * One row of the fused softmax. Keys outside [lo, hi) are written as exactly 0. Inside:
 *   x = scale * s[j]; if softcap > 0: x = softcap * tanh(x / softcap); if slope != 0: x -= slope * |q_pos - k_j|
 *   (or x -= slope * dist_j for N-D rows, nd.axes >= 2);
 *   if mask: x = (M[j] == -inf) ? -inf : x + mask_scale * M[j]
 * then the softmax with an optional sink. probs may equal scores (in place). A NaN logit or sink makes the row's
 * outputs and lse NaN, also when the maximum skipped it (max instructions ignore NaN); a row whose maximum is
 * -inf otherwise gets zeros and lse = -inf.
 */
typedef struct posattn_softmax_row {
    const float *scores;
    float *probs;
    int64_t nk;
    int64_t lo, hi; /* 0 <= lo <= hi <= nk */
    float scale;
    float softcap;
    float slope;
    float q_pos;
    posattn_key_positions keys;
    int keys_sorted;  /* 1: keys.k_pos is contiguous and non-decreasing over [0, nk), no NaN (checked by the caller) */
    const void *mask; /* NULL or the row's mask M[0..nk) */
    int mask_is_f16;
    float mask_scale; /* 1, or m_h in MASK_TIMES_SLOPE mode */
    int has_sink;
    float sink;
    float *lse; /* NULL or where the row's log-sum-exp goes */
    posattn_nd_positions nd; /* nd.axes >= 2: the bias is -slope * (N-D distance), q_pos unused */
    /* The next row of the caller's range, for software prefetch only (no value depends on them): the scores it
     * will read, next_scores[0, next_scores_n), and its probs, next_probs[0, nk) (all written). next_probs is
     * NULL for the last row of the range. */
    const float *next_scores;
    int64_t next_scores_n;
    float *next_probs;
} posattn_softmax_row;

/*
 * Prefetch of the next row while this one is computed. Past the caches, pass 1 reads a row from DRAM, then passes
 * 2 and 3 compute on it in L1/L2 while the memory system idles, and the hardware prefetchers start afresh on every
 * row (they stop at 4 KiB pages, the size of a row of 1024 keys). The pass 2 loop therefore requests the next
 * row's scores and probs, as many cache lines of each per group of vectors as the group covers (what is left, for
 * causal rows, at the end of the row), so the next row's DRAM traffic overlaps this row's arithmetic. Hint T1
 * (into L2), for the probs too: T0 and prefetchw were no faster past the caches and cost more on rows already in
 * cache. Rows longer than POSATTN_PREFETCH_MAX_NK keys stream well with the hardware prefetchers alone, and were
 * slower with the next row requested (it crowds this one out of L2). Every address prefetched lies inside the
 * next row's ranges above: the first is the start of each range, the others are line starts below its end.
 */
#define POSATTN_PREFETCH_MAX_NK 8192

typedef struct posattn_row_prefetch {
    uintptr_t s, s_end, p, p_end; /* the next line to request, and the end of each range */
} posattn_row_prefetch;

static inline posattn_row_prefetch posattn_row_prefetch_of(const posattn_softmax_row *row) {
    posattn_row_prefetch pf = {0, 0, 0, 0};
    if (row->next_probs && row->nk <= POSATTN_PREFETCH_MAX_NK) {
        pf.s = (uintptr_t)row->next_scores;
        pf.s_end = pf.s + (uintptr_t)row->next_scores_n * sizeof(float);
        pf.p = (uintptr_t)row->next_probs;
        pf.p_end = pf.p + (uintptr_t)row->nk * sizeof(float);
        if (pf.s < pf.s_end) __builtin_prefetch((const void *)pf.s, 0, 2), pf.s = (pf.s | 63u) + 1u;
        __builtin_prefetch((const void *)pf.p, 1, 2), pf.p = (pf.p | 63u) + 1u;
    }
    return pf;
}

/* The next `lines` cache lines of each range (fewer at their ends); lines is a compile-time constant. */
static inline __attribute__((always_inline)) void posattn_row_prefetch_next(posattn_row_prefetch *pf, int lines) {
    const uintptr_t last = 64u * (uintptr_t)(lines - 1);
    if (pf->s + last < pf->s_end) {
        for (int n = 0; n < lines; ++n) __builtin_prefetch((const void *)(pf->s + 64u * (uintptr_t)n), 0, 2);
        pf->s += last + 64u;
    } else {
        for (; pf->s < pf->s_end; pf->s += 64u) __builtin_prefetch((const void *)pf->s, 0, 2);
    }
    if (pf->p + last < pf->p_end) {
        for (int n = 0; n < lines; ++n) __builtin_prefetch((const void *)(pf->p + 64u * (uintptr_t)n), 1, 2);
        pf->p += last + 64u;
    } else {
        for (; pf->p < pf->p_end; pf->p += 64u) __builtin_prefetch((const void *)pf->p, 1, 2);
    }
}

/* What is left of the next row, at the end of this one (rows with fewer groups than the next row has lines). */
static inline void posattn_row_prefetch_rest(posattn_row_prefetch *pf) {
    for (; pf->s < pf->s_end; pf->s += 64u) __builtin_prefetch((const void *)pf->s, 0, 2);
    for (; pf->p < pf->p_end; pf->p += 64u) __builtin_prefetch((const void *)pf->p, 1, 2);
}

/* The kernel types of the ALiBi family; each further family keeps its row contract in its own header. */
typedef void posattn_alibi_slopes_kernel(int64_t n_heads, float max_bias, float *slopes);
typedef void posattn_alibi_bias_row_kernel(const posattn_bias_row *row);
typedef void posattn_alibi_softmax_row_kernel(const posattn_softmax_row *row);

#include "rope_kernels.h"
#include "liere_kernels.h"
#include "attention_kernels.h"

/*
 * Every operation the registry (src/registry.c) dispatches: its public id, and the kernel name `op` of its
 * implementations, which are posattn_<op>_f32_<isa> of type posattn_<op>_kernel. The public entry points reach the
 * kernel of the active ISA through posattn_dispatch_<op>() (dispatch.h).
 */
#define POSATTN_OPERATIONS(X)                                                                                      \
    X(POSATTN_OP_ALIBI_SLOPES, alibi_slopes)                                                                       \
    X(POSATTN_OP_ALIBI_BIAS, alibi_bias_row)                                                                       \
    X(POSATTN_OP_ALIBI_SOFTMAX, alibi_softmax_row)                                                                 \
    X(POSATTN_OP_ROPE, rope_token)                                                                                 \
    X(POSATTN_OP_LIERE_ROTATIONS, liere_rot_token)                                                                 \
    X(POSATTN_OP_LIERE_APPLY, liere_apply_token)                                                                   \
    X(POSATTN_OP_ATTENTION, attention_tile)

/* Every ISA a kernel can be written for: its public id and the suffix of its kernels (the folder src/<isa>/). */
#define POSATTN_ISAS(X)                                                                                            \
    X(POSATTN_ISA_SCALAR, scalar)                                                                                  \
    X(POSATTN_ISA_AVX2, avx2)                                                                                      \
    X(POSATTN_ISA_AVX512, avx512)                                                                                  \
    X(POSATTN_ISA_NEON, neon)                                                                                      \
    X(POSATTN_ISA_SVE, sve)

/* The ids by name, for the registry's lines: POSATTN_OP_ID_alibi_bias_row, POSATTN_ISA_ID_avx2, ... */
#define POSATTN_OP_ID_ENUMERATOR(id, op) POSATTN_OP_ID_##op = id,
#define POSATTN_ISA_ID_ENUMERATOR(id, isa) POSATTN_ISA_ID_##isa = id,
enum { POSATTN_OPERATIONS(POSATTN_OP_ID_ENUMERATOR) };
enum { POSATTN_ISAS(POSATTN_ISA_ID_ENUMERATOR) };
#undef POSATTN_OP_ID_ENUMERATOR
#undef POSATTN_ISA_ID_ENUMERATOR

/* Declarations of every (operation, ISA) kernel a registry line may name; only the compiled ones are defined. */
#define POSATTN_DECLARE_KERNELS_OF(isa)                                                                            \
    POSATTN_HIDDEN posattn_alibi_slopes_kernel posattn_alibi_slopes_f32_##isa;                                     \
    POSATTN_HIDDEN posattn_alibi_bias_row_kernel posattn_alibi_bias_row_f32_##isa;                                 \
    POSATTN_HIDDEN posattn_alibi_softmax_row_kernel posattn_alibi_softmax_row_f32_##isa;                           \
    POSATTN_HIDDEN posattn_rope_token_kernel posattn_rope_token_f32_##isa;                                         \
    POSATTN_HIDDEN posattn_liere_rot_token_kernel posattn_liere_rot_token_f32_##isa;                               \
    POSATTN_HIDDEN posattn_liere_apply_token_kernel posattn_liere_apply_token_f32_##isa;                           \
    POSATTN_HIDDEN posattn_attention_tile_kernel posattn_attention_tile_f32_##isa;
#define POSATTN_DECLARE_KERNELS(id, isa) POSATTN_DECLARE_KERNELS_OF(isa)
POSATTN_ISAS(POSATTN_DECLARE_KERNELS)
#undef POSATTN_DECLARE_KERNELS

/* One kernel of any operation; the member is named after the operation. */
#define POSATTN_KERNEL_MEMBER(id, op) posattn_##op##_kernel *op;
typedef union posattn_kernel {
    void (*any)(void); /* for the NULL test only */
    POSATTN_OPERATIONS(POSATTN_KERNEL_MEMBER)
} posattn_kernel;
#undef POSATTN_KERNEL_MEMBER

/* CPU features a kernel may need, detected once (src/dispatch.c). An ISA's own features are those of its name;
 * a registry line may ask for more (a variant using AVX512-FP16, say), and is skipped where they are missing. */
enum {
    POSATTN_CPU_AVX2 = 1u << 0,   /* AVX2 + FMA + F16C, OS saves YMM */
    POSATTN_CPU_AVX512 = 1u << 1, /* AVX-512 F+BW+DQ+VL (with the above), OS saves ZMM and opmasks */
    POSATTN_CPU_NEON = 1u << 2,   /* AArch64 Advanced SIMD (baseline) */
    POSATTN_CPU_SVE = 1u << 3     /* AArch64 SVE (getauxval(AT_HWCAP) & HWCAP_SVE) */
};

/* One line of the registry: the kernel of (operation, ISA) and the CPU features it needs. */
typedef struct posattn_registry_row {
    unsigned cpu_features; /* POSATTN_CPU_* bits; 0 for portable C */
    posattn_kernel kernel; /* NULL where the ISA has no kernel for the operation */
} posattn_registry_row;

/* The registry, indexed by operation and ISA (src/registry.c). Scalar has every operation. */
POSATTN_HIDDEN extern const posattn_registry_row posattn_registry[POSATTN_OP_COUNT][POSATTN_ISA_COUNT];

/* Shared by every ISA's slopes kernel: the exponent of 2 for head h (SPEC 1), exact in float64. */
static inline double posattn_alibi_slope_exponent(int64_t h, int64_t n_heads, double max_bias) {
    int64_t c = 1;
    while (c * 2 <= n_heads) c *= 2;
    if (h < c) return -max_bias * (double)(h + 1) / (double)c;
    return -(max_bias / 2.0) * (double)(2 * (h - c) + 1) / (double)c;
}

/* IEEE binary16 to float32 for the scalar path (the SIMD paths convert in hardware). */
static inline float posattn_f16_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v;
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) {
        v.u = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        v.u = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        v.u = sign;
    } else {
        /* A binary16 subnormal is a normal float32: scale the integer mantissa by 2^-24 exactly. */
        v.f = (float)mant * 5.9604644775390625e-8f;
        v.u |= sign;
    }
    return v.f;
}

/* Element `index` of a K or V row of type `type` (POSATTN_KV_TYPE_*), widened exactly to float32: the scalar
 * reference's loads, and the far-field summaries' (which must bound what the kernels read). */
static inline float posattn_attention_kv_element(const void *row, int type, int64_t index) {
    switch (type) {
    case POSATTN_KV_TYPE_F16: return posattn_f16_to_f32(((const uint16_t *)row)[index]);
    case POSATTN_KV_TYPE_BF16: {
        union {
            uint32_t u;
            float f;
        } v = {(uint32_t)((const uint16_t *)row)[index] << 16};
        return v.f;
    }
    default: return ((const float *)row)[index];
    }
}

#endif /* POSATTN_KERNELS_H */
