/*
 * posattn: SIMD CPU kernels for position-dependent attention.
 *
 * This version provides ALiBi for arbitrary float positions with 1 to 4 axes (L1 or Euclidean distance): the
 * slopes, the position bias on its own, and the fused bias-add-softmax, each with a scalar reference and AVX2,
 * AVX-512 and NEON implementations chosen at run time. The mathematics is that of the project's SPEC (sections
 * 1-3). Rotary embeddings for positions with 1 to 4 float axes (axial, multi-section, vision, mixed; SPEC 4)
 * follow the same conventions: posattn_rope_apply and the table builders posattn_rope_freqs_*. So do the LieRE
 * rotations (b x b rotations from learned generators, SPEC 5): posattn_liere_rotations and posattn_liere_apply.
 *
 * Conventions shared by every entry point
 * - Every function that can fail returns posattn_status; 0 (POSATTN_OK) is success. On any error nothing is
 *   written to any output.
 * - Sizes and strides are int64_t, strides are in elements (not bytes), and a stride of 0 means "contiguous".
 *   Products of sizes and strides are checked for overflow.
 * - Option structs mean "everything off" when zero-initialised; fields may be appended in later versions, so
 *   always zero-initialise them (`posattn_softmax_options o = {0};`).
 * - Work is split by the caller: kernels take a range [row_begin, row_end) of the H*nq rows, row r being head
 *   r / nq and query r % nq, so an engine's own thread pool can call them concurrently on disjoint ranges (the
 *   rotary embeddings take a range [tok_begin, tok_end) of tokens).
 * - No function allocates, prints, aborts, or keeps state between calls. The only global state is the one-time,
 *   thread-safe CPU detection and the ISA a caller may force (see "Instruction sets").
 * - Values are not scanned: a NaN or infinity in scores or positions propagates as IEEE arithmetic says (a NaN
 *   score makes its row NaN). Which NaN comes out (sign and payload) is not specified: where a kernel is said
 *   to be bit-identical on every ISA, that holds for every non-NaN result, and a NaN result is NaN everywhere.
 */
#ifndef POSATTN_H
#define POSATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(POSATTN_SHARED_BUILD)
#define POSATTN_API __declspec(dllexport)
#elif defined(__GNUC__)
#define POSATTN_API __attribute__((visibility("default")))
#else
#define POSATTN_API
#endif

/* ------------------------------------------------------------------------------------------------------------ */
/* Status codes                                                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum posattn_status {
    POSATTN_OK = 0,
    POSATTN_ERR_NULL = 1,             /* a required pointer is NULL */
    POSATTN_ERR_SIZE = 2,             /* a size (heads, nq, nk) is zero or negative */
    POSATTN_ERR_ROW_RANGE = 3,        /* row range not within [0, H*nq] or begin > end */
    POSATTN_ERR_STRIDE = 4,           /* negative stride, row stride shorter than a row, or output rows that overlap */
    POSATTN_ERR_OVERFLOW = 5,         /* a product of sizes and strides does not fit in 64 bits / the address space */
    POSATTN_ERR_OVERLAP = 6,          /* an output overlaps an input or another output (exact in-place is allowed) */
    POSATTN_ERR_SCALE = 7,            /* scale is NaN or infinite */
    POSATTN_ERR_SOFTCAP = 8,          /* softcap is negative, NaN or infinite */
    POSATTN_ERR_WINDOW = 9,           /* window is negative */
    POSATTN_ERR_MAX_BIAS = 10,        /* max_bias is negative, NaN or infinite */
    POSATTN_ERR_AXES = 11,            /* number of position axes outside 1..4, or N-D positions without both arrays */
    POSATTN_ERR_METRIC = 12,          /* unknown distance metric */
    POSATTN_ERR_MASK_TYPE = 13,       /* unknown mask element type */
    POSATTN_ERR_FLAGS = 14,           /* unknown flag bits, or flags that contradict the other arguments */
    POSATTN_ERR_ISA_UNKNOWN = 15,     /* an ISA name or value this library does not know */
    POSATTN_ERR_ISA_UNSUPPORTED = 16, /* a known ISA that is not compiled in or that this CPU (or OS) lacks */
    POSATTN_ERR_LAYOUT = 17,          /* rotary: unknown pair layout, odd or out-of-head rotated dimensions */
    POSATTN_ERR_SECTIONS = 18,        /* rotary: sections that do not cover D_rot/2 pairs, or an axis out of range */
    POSATTN_ERR_BASE = 19,            /* rotary: frequency base not positive and finite */
    POSATTN_ERR_BLOCK = 20,           /* LieRE: block size outside 2..64 or not dividing the rotated dimensions */
    POSATTN_ERR_WEIGHTS = 21,         /* ALiBi axis weights: NaN or infinite, or negative with metric L1 */
    POSATTN_ERR_KV_TYPE = 22,         /* attention: unknown K or V element type */
    POSATTN_ERR_HEAD_DIM = 23,        /* attention: dk or dv outside 1..576 */
    POSATTN_ERR_KEY_RANGE = 24        /* attention: key range not within [0, nk] or begin > end */
} posattn_status;

/* A short, static, human-readable name for a status ("ok", "null pointer", ...). Never NULL. */
POSATTN_API const char *posattn_status_string(posattn_status status);

/* ------------------------------------------------------------------------------------------------------------ */
/* Instruction sets                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * Implementations, best first: AVX-512 (F+BW+DQ+VL, with AVX2+FMA+F16C) > AVX2 (with FMA and F16C) > scalar on
 * x86-64; SVE > NEON > scalar on aarch64. The active ISA is resolved lazily, on the first call that needs it, and
 * is thread-safe without global constructors. Detection on x86 checks cpuid, OSXSAVE and XGETBV (the OS must save
 * the YMM / ZMM state), then the feature bits; on aarch64 NEON is baseline and SVE comes from getauxval(AT_HWCAP).
 *
 * An ISA need not implement every operation (posattn_op): with an ISA active, each operation runs that ISA's own
 * kernel when it has one, else the next ISA in priority order that has one (scalar always has all). SVE, for
 * instance, implements the ALiBi bias, the fused softmax and the fused attention and leaves rotary and LieRE to
 * NEON.
 * posattn_op_isa says which ISA serves an operation.
 *
 * The environment variable POSATTN_ISA=<name> (a name from posattn_isa_name, case-insensitive) forces an ISA at
 * that first resolution; an unknown or unsupported name is ignored (the best ISA is used) and reported by
 * posattn_init. posattn_force_isa forces one at any time.
 *
 * A build in compile-time selection mode (meson -Ddispatch=compile-time, CMake -DPOSATTN_DISPATCH=compile-time)
 * contains only the scalar reference and the best ISA that the build's own compiler flags guarantee (for instance
 * AVX-512 under -march=x86-64-v4; SVE with NEON under -march=armv8.2-a+sve), and detects nothing: the CPU is
 * assumed to have what the flags promised. The functions below behave as documented over those ISAs: the list,
 * names, forcing (scalar or the compiled one) and posattn_op_isa.
 */
typedef enum posattn_isa {
    POSATTN_ISA_AUTO = 0,   /* "best supported"; only meaningful for posattn_force_isa */
    POSATTN_ISA_SCALAR = 1, /* "scalar": portable C, the reference */
    POSATTN_ISA_AVX2 = 2,   /* "avx2" */
    POSATTN_ISA_AVX512 = 3, /* "avx512" */
    POSATTN_ISA_NEON = 4,   /* "neon" */
    POSATTN_ISA_SVE = 5,    /* "sve": Arm SVE, any vector length (vector-length agnostic code) */
    POSATTN_ISA_COUNT = 6
} posattn_isa;

/* The operations an ISA may implement, one registry row per (operation, ISA); the names are those of
 * posattn_op_name. */
typedef enum posattn_op {
    POSATTN_OP_ALIBI_SLOPES = 0,     /* "alibi_slopes": posattn_alibi_slopes */
    POSATTN_OP_ALIBI_BIAS = 1,       /* "alibi_bias": posattn_alibi_bias (1-D and N-D positions) */
    POSATTN_OP_ALIBI_SOFTMAX = 2,    /* "alibi_softmax": posattn_alibi_softmax (1-D and N-D positions) */
    POSATTN_OP_ROPE = 3,             /* "rope": posattn_rope_apply */
    POSATTN_OP_LIERE_ROTATIONS = 4,  /* "liere_rotations": posattn_liere_rotations */
    POSATTN_OP_LIERE_APPLY = 5,      /* "liere_apply": posattn_liere_apply */
    POSATTN_OP_ATTENTION = 6,        /* "attention": posattn_attention, posattn_attention_partial */
    POSATTN_OP_COUNT = 7
} posattn_op;

/* Resolves the active ISA now (otherwise the first kernel call does) and reports POSATTN_ISA from the
 * environment: POSATTN_OK when it is unset or was honoured, POSATTN_ERR_ISA_UNKNOWN or
 * POSATTN_ERR_ISA_UNSUPPORTED when it was refused (the best supported ISA is then active). */
POSATTN_API posattn_status posattn_init(void);

/* The lower-case name of an ISA ("auto", "scalar", "avx2", "avx512", "neon", "sve"); "unknown" for other values. */
POSATTN_API const char *posattn_isa_name(posattn_isa isa);

/* Parses a name (case-insensitive) into *isa. POSATTN_ERR_NULL, or POSATTN_ERR_ISA_UNKNOWN. */
POSATTN_API posattn_status posattn_isa_from_name(const char *name, posattn_isa *isa);

/* 1 when the ISA has at least one kernel compiled into this build, else 0. */
POSATTN_API int posattn_isa_compiled(posattn_isa isa);

/* 1 when the ISA is compiled in and this CPU and OS can run it, else 0 (POSATTN_ISA_AUTO: 1). */
POSATTN_API int posattn_isa_supported(posattn_isa isa);

/* The ISAs compiled into this build, best first, scalar last: writes min(count, capacity) of them to isas (which
 * may be NULL when capacity is 0) and returns count, at most POSATTN_ISA_COUNT - 1. Tests and benchmarks iterate
 * this list (and posattn_op_isa) rather than a range of enum values, so no compiled kernel is left out. */
POSATTN_API int posattn_isa_list(posattn_isa *isas, int capacity);

/* The lower-case name of an operation ("alibi_softmax", ...); "unknown" for other values. */
POSATTN_API const char *posattn_op_name(posattn_op op);

/* The ISA whose kernel runs op when isa is active (POSATTN_ISA_AUTO: the active ISA now): isa itself when it has
 * its own kernel for op, else the next ISA in priority order that has one. POSATTN_ISA_AUTO when op or isa is
 * out of range or isa is not compiled in. Does not resolve or change the active ISA when isa is given. */
POSATTN_API posattn_isa posattn_op_isa(posattn_op op, posattn_isa isa);

/* The ISA whose kernels the next call will run (never POSATTN_ISA_AUTO). */
POSATTN_API posattn_isa posattn_active_isa(void);

/* Forces an ISA for all following calls in the process (POSATTN_ISA_AUTO: back to the best supported).
 * POSATTN_ERR_ISA_UNKNOWN for values outside the enum, POSATTN_ERR_ISA_UNSUPPORTED when not compiled in or not
 * runnable here; on error the active ISA is unchanged. Meant for tests, comparisons and engines' settings:
 * calls already running keep the ISA they started with. */
POSATTN_API posattn_status posattn_force_isa(posattn_isa isa);

/* ------------------------------------------------------------------------------------------------------------ */
/* ALiBi slopes (SPEC 1)                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * slopes[h] for h in [0, n_heads), with c = 2^floor(log2 n_heads):
 *     m_h = 2^(-B(h+1)/c)              for h <  c
 *     m_h = 2^(-(B/2)(2(h-c)+1)/c)     for h >= c
 * B = max_bias (8 in the ALiBi paper and ggml's default). For B = 8 these are the paper's slopes for every head
 * count, power of two or not. Results are within 1 ulp of the exact value.
 * Errors: POSATTN_ERR_NULL (slopes), POSATTN_ERR_SIZE (n_heads <= 0), POSATTN_ERR_MAX_BIAS (B < 0, NaN, inf),
 * POSATTN_ERR_OVERFLOW (n_heads floats do not fit in the address space).
 */
POSATTN_API posattn_status posattn_alibi_slopes(int64_t n_heads, float max_bias, float *slopes);

/* ------------------------------------------------------------------------------------------------------------ */
/* Positions (SPEC 2)                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum posattn_metric {
    POSATTN_METRIC_L1 = 0, /* dist = sum_a w_a |dq_a - dk_a| ; for one axis this is plain ALiBi */
    POSATTN_METRIC_L2 = 1  /* dist = sqrt(sum_a (w_a (dq_a - dk_a))^2), Euclidean; equals L1 for one axis */
} posattn_metric;

/*
 * Where queries and keys are, for the bias bias[h][i][j] = -m_h * dist_h(i, j). A NULL posattn_positions pointer,
 * or a zero-initialised struct, means the KV-cache default: pk[j] = j, pq[i] = nk - nq + i (bottom-right aligned),
 * as float32: exact for nk <= 2^24; past 2^24 each index is rounded to the nearest float32, ties to even (positions
 * 2 apart up to 2^25, ..., 256 apart past 2^31), on every ISA.
 *
 * q, k      positions as float32, query i's coordinate a at q[i*q_stride + a] (+ h*q_head_stride), likewise k.
 *           For A = 1 either may be NULL independently (that side then uses the default integer positions); for
 *           A >= 2 both are required (POSATTN_ERR_AXES otherwise: the default positions have one axis).
 * axes      A, the number of coordinates per position, 1..4; 0 means 1 (POSATTN_ERR_AXES otherwise). Images are
 *           (y, x), video and volumes (t, y, x) or (z, y, x), then (t, z, y, x); the order is the caller's.
 * q_stride, k_stride            elements between consecutive positions; 0 means A (contiguous); otherwise >= A.
 * q_head_stride, k_head_stride  elements between the position arrays of consecutive heads, so each head can
 *                               carry its own positions (x-transformers' per-head positions); 0 means one array
 *                               shared by all heads.
 * weights   per-head axis weights w[h][a] at weights[h*A + a]; NULL means all ones. Checked (a small array):
 *           NaN or infinite weights, and negative weights with metric L1, are POSATTN_ERR_WEIGHTS; with L2 the
 *           sign does not matter ((w d)^2). An axis whose weight is 0 is ignored for that head: its coordinates
 *           are not read (an infinite coordinate there does not make NaN), and a head whose weights are all 0 gets
 *           no bias. One-hot weights ("one axis per head group", posattn_alibi_split_heads) therefore compute the
 *           1-D bias of that axis, bit for bit. For A = 1 the effective slope of head h is m_h * |w[h][0]|.
 * metric    POSATTN_METRIC_L1 or _L2 (POSATTN_ERR_METRIC otherwise). With one axis (or one non-zero weight) L2
 *           equals L1.
 *
 * N-D distances (A >= 2 axes of non-zero weight), formed in float32 in axis order, one rounding per operation
 * (no FMA), bit-identical on every ISA (the square root is the correctly rounded hardware instruction):
 *     L1: dist = w_0 |dq_0 - dk_0| + w_1 |dq_1 - dk_1| + ...
 *     L2: dist = sqrt((w_0 (dq_0 - dk_0))^2 + (w_1 (dq_1 - dk_1))^2 + ...)
 * then bias = -m_h * dist. With u = 2^-24, K the number of axes kept and b* = -m_h dist* computed exactly from the
 * float32 inputs (first order in u): L1 takes K subtractions and K products (2 u per term), K - 1 sums of
 * non-negative terms ((K - 1) u relative to the sum) and the slope product (u), so |bias - b*| <= (K + 2) u |b*|
 * ((K + 1) u without weights, whose products are exact); L2 takes K subtractions and K products (2 u), K squares
 * (doubling that and rounding: 5 u), K - 1 sums, a square root (which halves the relative error and rounds once)
 * and the slope product, so |bias - b*| <= (K/2 + 4) u |b*|. For K = 4 both are 6 u, at most 6 ulp.
 */
typedef struct posattn_positions {
    const float *q;
    const float *k;
    int64_t axes;
    int64_t q_stride;
    int64_t k_stride;
    int64_t q_head_stride;
    int64_t k_head_stride;
    const float *weights;
    posattn_metric metric;
} posattn_positions;

/*
 * One-hot axis weights for "one axis per head group" (SPEC 2): writes weights[h*A + a] = 1 when head h looks along
 * axis a, else 0, for the n_heads x axes array of posattn_positions.weights. Heads are split into contiguous
 * groups in axis order; with g = H / A and r = H % A, axis a gets the heads
 *     [a*g + min(a, r), (a+1)*g + min(a+1, r))
 * so the first r axes get one head more. Examples: H = 12, A = 2: heads 0-5 see axis 0 (y), 6-11 axis 1 (x);
 * H = 16, A = 3: 0-5, 6-10, 11-15; H < A: heads 0..H-1 see axes 0..H-1 and the other axes get none. Each head
 * then gets the 1-D bias of its axis, bit for bit (the other coordinates are not read). Slopes stay per head:
 * to give every group the full ALiBi range, fill each group's slice of slopes with posattn_alibi_slopes of the
 * group size.
 * Errors: NULL (weights), SIZE (n_heads <= 0), AXES (axes outside 1..4), OVERFLOW.
 */
POSATTN_API posattn_status posattn_alibi_split_heads(int64_t n_heads, int64_t axes, float *weights);

/* ------------------------------------------------------------------------------------------------------------ */
/* The position bias on its own ("external bias", SPEC 2)                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * Writes bias[h][i][j] = -m_h * dist_h(i, j) (1-D: -m_h * |pq_h[i] - pk_h[j]|, times w[h][0]; N-D: see
 * posattn_positions) for the rows r in [row_begin, row_end) of the
 * H*nq rows (h = r / nq, i = r % nq) and every key j in [0, nk), at bias[h*head_stride + i*row_stride + j].
 * No masking: the bias is symmetric in i and j; causality is a mask of the softmax.
 *
 * slopes      [n_heads] per-head slopes (posattn_alibi_slopes, or learned ones); a slope of 0 gives a zero row.
 * positions   NULL for the KV-cache default, see posattn_positions.
 * row_stride  elements between rows (0: nk; otherwise >= nk); head_stride elements between heads (0: nq*row_stride).
 * Accuracy: |Δ| is formed in float32 (exact when Sterbenz applies, else within 0.5 ulp of |Δ|), then one
 * multiply: each value is within 1.5 ulp of -m|Δ| computed exactly from the float32 inputs (2.5 ulp with axis
 * weights, whose product m_h*w[h][0] is rounded once); N-D: the bound under posattn_positions (at most 6 u for
 * A <= 4). These relative bounds hold while every intermediate stays in the normal float32 range. Below FLT_MIN a
 * value is rounded as a subnormal, within 2^-150 absolute, which adds (K axes kept): a 1-D effective slope
 * m_h*w[h][0]: 2^-150 |Δ|; an N-D L1 term w_a |Δ_a|: 2^-150 |m_h| each; an L2 square: 2^-150 each, so at most
 * sqrt(K) 2^-75 |m_h| after the square root; the bias itself: 2^-150. Above FLT_MAX an intermediate is +-inf:
 * the bias is then -inf or +inf, or NaN where IEEE says so (an infinite slope times a zero distance).
 * Bit-identical on all ISAs.
 * Errors: NULL, SIZE, ROW_RANGE, STRIDE, OVERFLOW, OVERLAP (bias overlapping slopes or positions), AXES, METRIC,
 * WEIGHTS.
 */
POSATTN_API posattn_status posattn_alibi_bias(int64_t n_heads, int64_t nq, int64_t nk, const float *slopes,
                                              const posattn_positions *positions, float *bias, int64_t row_stride,
                                              int64_t head_stride, int64_t row_begin, int64_t row_end);

/* ------------------------------------------------------------------------------------------------------------ */
/* Fused bias-add-softmax (SPEC 3)                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum posattn_mask_type {
    POSATTN_MASK_F32 = 0, /* float32 mask */
    POSATTN_MASK_F16 = 1  /* IEEE binary16 mask (uint16_t storage), as ggml's KQ mask */
} posattn_mask_type;

enum {
    /* Causal masking, bottom-right aligned: key j is excluded when j > i + (nk - nq). Rows with no key left
     * (nq > nk) are fully masked. */
    POSATTN_CAUSAL = 1u << 0,
    /* ggml soft_max_ext compatibility: x = scale*S + m_h*M, the engine having put the -|Δ| into the mask M. The
     * position bias is then not computed (positions must be NULL: POSATTN_ERR_FLAGS otherwise) and a mask entry
     * of -inf still excludes its key (never 0*(-inf) = NaN). */
    POSATTN_MASK_TIMES_SLOPE = 1u << 1
};

/*
 * Optional features of posattn_alibi_softmax; zero-initialise, then set what you use.
 *
 * flags            POSATTN_CAUSAL | POSATTN_MASK_TIMES_SLOPE; other bits: POSATTN_ERR_FLAGS.
 * softcap          0: off; > 0: x = softcap * tanh(scale*S / softcap) before the bias (Gemma-2).
 * window           0: off; W > 0: key j is excluded when |j - (i + nk - nq)| >= W (with causal: the query's last
 *                  W keys, itself included).
 * mask             NULL: off; else an additive mask M[i][j] of mask_type at
 *                  mask[h*mask_head_stride + i*mask_row_stride + j]; an entry of -inf excludes the key.
 * mask_row_stride  elements between mask rows; 0: nk.
 * mask_head_stride elements between the masks of consecutive heads; 0: one mask broadcast over all heads.
 * sinks            NULL: off; else sinks[h], a per-head logit (not scaled, biased or masked) that takes part in the
 *                  max and the denominator only, so the row then sums to less than 1 (gpt-oss).
 * lse              NULL: off; else lse[r] for each computed row r = h*nq + i receives mx + log(denominator), the
 *                  row's log-sum-exp, -inf for a row with no valid key and no sink (to merge chunked softmaxes).
 */
typedef struct posattn_softmax_options {
    uint32_t flags;
    float softcap;
    int64_t window;
    const void *mask;
    posattn_mask_type mask_type;
    int64_t mask_row_stride;
    int64_t mask_head_stride;
    const float *sinks;
    float *lse;
} posattn_softmax_options;

/*
 * For each row r in [row_begin, row_end) of the H*nq rows (h = r / nq, i = r % nq) and every key j in [0, nk):
 *     x_j = scale * S[h][i][j]
 *     x_j = softcap * tanh(x_j / softcap)                   (if softcap > 0)
 *     x_j += -m_h * dist_h(i, j)                            (computed here from positions; never read from memory;
 *                                                            1-D: dist = |pq_h[i] - pk_h[j]|, N-D: posattn_positions)
 *     x_j += M[i][j]   or   m_h * M[i][j] (MASK_TIMES_SLOPE) (if a mask is given)
 *     P[h][i][j] = exp(x_j - mx) / (sum over valid j of exp(x_j - mx) + exp(sink_h - mx))
 * with mx the maximum of the valid x_j and sink_h; masked keys (causal, window, mask = -inf) get exactly 0; a row
 * with no valid key and no sink gets all zeros (never NaN).
 *
 * scores      S at scores[h*s_head_stride + i*s_row_stride + j]; s_row_stride 0: nk (else >= nk); s_head_stride
 *             0: nq * s_row_stride.
 * probs       P at probs[h*p_head_stride + i*p_row_stride + j], with the same stride rules. probs == scores with
 *             equal strides is in place; any other overlap with an input is POSATTN_ERR_OVERLAP. Output rows must
 *             not overlap each other (POSATTN_ERR_STRIDE).
 * scale       multiplies the scores (1/sqrt(head_dim) usually); must be finite.
 * slopes      [n_heads]; a slope of 0 turns the position bias off for that head.
 * positions   NULL for the KV-cache default; see posattn_positions.
 * options     NULL for all features off.
 *
 * Accuracy, on every ISA. Let u = 2^-24, P*_j the exact result computed from the same float32 inputs,
 * L_j = |scale*S_j| (after the softcap, if any) + |bias_j| + |mask term_j|, L = max(max_j L_j, |sink_h|) over the
 * row's valid keys, and d_j = mx* - x*_j >= 0. Then for rows of up to 2^20 keys (and beyond)
 *     |P_j - P*_j| <= (10 L + d_j + 22) u P*_j + 2.4e-38,       |lse - lse*| <= (11 L + 20) u + u |lse*|.
 * With logits in [-100, 100] (L <= 100) every output is within 6.7e-5 relative (plus 2.4e-38 absolute), since
 * outputs with d_j > 87 are below the flush threshold. Derivation: forming x_j takes at most four roundings
 * (scale, |Δ|, slope product, additions), an absolute error of at most 4 u L_j; an error in the row maximum shifts
 * every exponent alike and cancels in the ratio; x_j - mx rounds once more (u d_j); the exponential adds 2 u
 * (inline polynomial on [-87, 0]; libm in the scalar reference); the denominator is a weighted mean of terms with
 * those errors (d <= 2L) plus the summation error, at most 16 u because partial sums hold at most 16 terms in
 * float32 before joining a float64 total (so the bound does not grow with the row length); normalising adds 2 u.
 * Values exp(x_j - mx) below e^-87 (about 1.6e-38) and outputs below 2^-125 (about 2.35e-38) are flushed to
 * exactly 0 by construction, before they are formed, so no path produces subnormals (the absolute term). The
 * bound is worst case (typical errors are a few u) and first order in u: it assumes (10 L + 87) u << 1, i.e.
 * logits well below 1e5 in magnitude; beyond that, float32 logits carry no useful digits of the result.
 * One rounding policy for the logits on every ISA, the scalar reference's: x_j = scale*S rounded; the softcap with
 * the ISA's tanhf; the bias as m_h*dist rounded (dist: |pq - pk| rounded once, or the N-D distance), then subtracted
 * with one more rounding, never as one fused multiply-add; the mask term (M, or m_h*M rounded) added with one
 * rounding, a -inf entry giving -inf. Without a softcap the logits (hence the maximum, every flush decision and the
 * lse of a row whose weight is one key's) are therefore bit-identical on every ISA, which then differ only through
 * the exponential, the order of the sum and the scaling, within the bound above; the external bias
 * (posattn_alibi_bias) is bit-identical too.
 * N-D positions (A >= 2 axes of non-zero weight): the bias itself carries up to 6 u |bias_j| (posattn_positions),
 * so forming x_j takes at most 9 u L_j (scale, bias, two additions) instead of 4 u L_j, and the same derivation
 * gives |P_j - P*_j| <= (20 L + d_j + 22) u P*_j + 2.4e-38 and |lse - lse*| <= (21 L + 20) u + u |lse*| (with
 * L <= 100: 1.3e-4 relative). One-hot weights are 1-D rows and keep the 1-D bound.
 *
 * Errors: NULL (scores, probs, slopes), SIZE, ROW_RANGE, STRIDE, OVERFLOW, OVERLAP, SCALE, SOFTCAP, WINDOW, AXES,
 * METRIC, WEIGHTS, MASK_TYPE, FLAGS. On error nothing is written.
 */
POSATTN_API posattn_status posattn_alibi_softmax(int64_t n_heads, int64_t nq, int64_t nk, const float *scores,
                                                 int64_t s_row_stride, int64_t s_head_stride, float *probs,
                                                 int64_t p_row_stride, int64_t p_head_stride, float scale,
                                                 const float *slopes, const posattn_positions *positions,
                                                 const posattn_softmax_options *options, int64_t row_begin,
                                                 int64_t row_end);

/* ------------------------------------------------------------------------------------------------------------ */
/* Rotary embeddings for N-D positions (SPEC 4)                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * Rotate q or k in place by angles that come from positions with 1 to 4 float coordinates (time, row, column,
 * ...), for every token t of [tok_begin, tok_end) and every head h:
 *     theta[t][h][k] = pos[t][0]*F[h][0][k] + ... + pos[t][A-1]*F[h][A-1][k]        0 <= k < D_rot/2
 *     x'[a_k] = x[a_k]*c - x[b_k]*s,    x'[b_k] = x[a_k]*s + x[b_k]*c,    c = f_k cos(theta),  s = f_k sin(theta)
 * The products and the sum are formed in float32, in axis order (as reference implementations form pos * inv_freq),
 * bit-identical on every ISA; backward rotates by -theta (s negated), which undoes the forward rotation.
 *
 * Units: positions in the caller's units (token index, frame, pixel, seconds), frequencies in radians per unit.
 */
typedef enum posattn_rope_layout {
    POSATTN_ROPE_INTERLEAVED = 0, /* GPT-J, ggml NORMAL: pair k is dimensions (2k, 2k+1) of the rotated part */
    POSATTN_ROPE_HALF_SPLIT = 1   /* NeoX, HF Llama/Qwen rotate_half, ggml NEOX: (k, k + D_rot/2) */
} posattn_rope_layout;

enum {
    /* Rotate by -theta (the inverse rotation; the backward pass of the forward rotation). */
    POSATTN_ROPE_BACKWARD = 1u << 0
};

/*
 * Optional features of posattn_rope_apply; zero-initialise, then set what you use.
 *
 * flags          POSATTN_ROPE_BACKWARD; other bits: POSATTN_ERR_FLAGS.
 * attn_factor    0: off (1); otherwise multiplies cos and sin (YaRN's mscale, ggml's attn_factor); must be finite
 *                (POSATTN_ERR_SCALE).
 * pair_factors   NULL: off; else [D_rot/2] per-pair factors on cos and sin: f_k = attn_factor * pair_factors[k],
 *                rounded once to float32 (attn_factor 0 counts as 1). Values are not scanned.
 */
typedef struct posattn_rope_options {
    uint32_t flags;
    float attn_factor;
    const float *pair_factors;
} posattn_rope_options;

/*
 * Applies the rotation in place to x, a [n_tok][n_heads][head_dim] float32 tensor, for the tokens t in
 * [tok_begin, tok_end): the element (t, h, d) is x[t*tok_stride + h*head_stride + d]. Only dimensions
 * [rot_offset, rot_offset + rot_dims) of each head are read and written; the others are left untouched. Call it
 * once for q and once for k (same positions and table; k may have fewer heads, GQA). Disjoint token ranges may run
 * concurrently.
 *
 * head_dim      D, elements of a head; rot_offset >= 0 and rot_dims = D_rot > 0, even, rot_offset + D_rot <= D.
 * tok_stride    elements between tokens; 0: n_heads * head_stride.  head_stride  elements between heads; 0: D.
 *               Heads and tokens must not overlap (POSATTN_ERR_STRIDE).
 * layout        POSATTN_ROPE_INTERLEAVED or POSATTN_ROPE_HALF_SPLIT (POSATTN_ERR_LAYOUT otherwise).
 * n_axes        A in 1..4 (POSATTN_ERR_AXES).
 * pos           float32 positions: token t's coordinate a at pos[t*pos_stride + a]; indexed by the absolute token
 *               t, also when tok_begin > 0.  pos_stride  0: A (else >= A).
 * freqs         the table F: F[h][a][k] at freqs[h*freq_head_stride + a*(D_rot/2) + k], A*D_rot/2 floats per head
 *               (see the builders below, or a learned table).  freq_head_stride  0: one table shared by every head
 *               (cos and sin are then computed once per token and pair, not per head); > 0: elements between the
 *               tables of consecutive heads (RoPE-Mixed, learned per head; usually A*D_rot/2). Negative:
 *               POSATTN_ERR_STRIDE. The table is only read, so tables may overlap each other.
 * options       NULL: all off.
 *
 * Accuracy, on every ISA, for each rotated pair (a, b) with r = sqrt(a^2 + b^2), u = 2^-24 and theta the float32
 * angle as formed above: each output is within 6 u |f_k| r of the exact a cos(theta) - b sin(theta) (resp.
 * a sin + b cos) times f_k, for every finite angle; pair norms are thus kept within 9 u |f_k| r. Derivation: cos
 * and sin are within 1 ulp (2 u relative) of the exact values of the float32 angle, for any magnitude (SLEEF's
 * u10 sincos with its exact Payne-Hanek reduction on the SIMD paths; float64 libm rounded once in the scalar
 * reference); the factor, the products and the sum add 3 u; second-order terms fit in the last u. Where f_k cos,
 * f_k sin or the products fall below FLT_MIN (subnormals, rounded within 2^-150 absolute) add (|a| + |b|) 2^-149
 * + 2^-146 absolute. The error of the angle itself is not included: forming pos*F in float32 rounds theta by half an ulp of theta (about 0.03
 * radians at theta = 1e6), exactly as the reference implementations do; this library reproduces it, it does not
 * add to it. Inputs are not scanned: a NaN value, or a NaN or infinite position or frequency (the angle is then
 * not finite), gives NaN in the affected pairs; an infinite value gives inf or NaN there, as IEEE arithmetic has
 * it (inf * cos(theta) is inf, inf * 0 is NaN).
 *
 * Errors: NULL (x, pos, freqs), SIZE (n_tok, n_heads, head_dim or rot_dims <= 0), LAYOUT (layout, odd rot_dims,
 * rot_offset < 0, rotated dimensions beyond D), AXES, ROW_RANGE (tokens not within [0, n_tok] or reversed), STRIDE,
 * OVERFLOW, OVERLAP (x overlapping pos, freqs or pair_factors), FLAGS, SCALE (attn_factor not finite). On error
 * nothing is written.
 */
POSATTN_API posattn_status posattn_rope_apply(int64_t n_tok, int64_t n_heads, int64_t head_dim, float *x,
                                              int64_t tok_stride, int64_t head_stride, int64_t rot_offset,
                                              int64_t rot_dims, posattn_rope_layout layout, int64_t n_axes,
                                              const float *pos, int64_t pos_stride, const float *freqs,
                                              int64_t freq_head_stride, const posattn_rope_options *options,
                                              int64_t tok_begin, int64_t tok_end);

/*
 * Builders of the frequency table F[a][k] (A*D_rot/2 floats, axis-major, the layout posattn_rope_apply reads with
 * freq_head_stride 0). Each value is base^e computed in float64 and rounded once (within 0.5 ulp). Not hot: call
 * once per model. Common errors: NULL, SIZE (rot_dims <= 0), LAYOUT (rot_dims odd), AXES (n_axes outside 1..4),
 * BASE (base <= 0, NaN or infinite), OVERFLOW, OVERLAP (freqs overlapping sections or axis_of_pair); on error
 * nothing is written.
 */

/* 1-D RoPE: freqs[k] = base^(-2k/D_rot) for k < D_rot/2 (HF inv_freq; base 10000 in the original RoPE). */
POSATTN_API posattn_status posattn_rope_freqs_1d(int64_t rot_dims, float base, float *freqs);

/*
 * Multi-section RoPE (Qwen2-VL / Qwen2.5-VL M-RoPE, ggml MROPE): the D_rot/2 pairs are split into n_axes contiguous
 * sections of sections[a] pairs each, in axis order (Qwen2-VL text model: (t, h, w) = [16, 24, 24] for D = 128);
 * F[a][k] = base^(-2k/D_rot) when pair k lies in section a, else 0 (k counts over all pairs, so frequencies do not
 * restart). A text token has t = h = w = its index, which gives 1-D RoPE.
 * Errors as above, and SECTIONS (a negative section, or a sum other than D_rot/2; no implicit leftover rule).
 */
POSATTN_API posattn_status posattn_rope_freqs_sections(int64_t rot_dims, float base, int64_t n_axes,
                                                       const int64_t *sections, float *freqs);

/*
 * Any assignment of pairs to axes (Qwen3-VL interleaved M-RoPE, ggml IMROPE): pair k follows axis axis_of_pair[k]
 * (in [0, n_axes), else SECTIONS), F[a][k] = base^(-2k/D_rot) for that axis, 0 for the others. For Qwen3-VL with
 * sections (t, h, w) = (s0, s1, s2): axis_of_pair[k] = 1 if k % 3 == 1 and k < 3*s1, 2 if k % 3 == 2 and k < 3*s2,
 * else 0.
 */
POSATTN_API posattn_status posattn_rope_freqs_axis_map(int64_t rot_dims, float base, int64_t n_axes,
                                                       const int32_t *axis_of_pair, float *freqs);

/*
 * Vision RoPE (Qwen2-VL ViT, ggml VISION): contiguous sections as in posattn_rope_freqs_sections, but the
 * frequencies restart in each section: the j-th pair of a section gets base^(-2j/(D_rot/2)) (ggml's VISION mode,
 * theta_scale = base^(-2/n_dims) with n_dims = D_rot/2). For the Qwen2-VL ViT (head_dim 80, half-split, sections
 * (h, w) = [20, 20]) this is HF's VisionRotaryEmbedding(40) applied to the h and the w coordinate.
 * Errors as posattn_rope_freqs_sections.
 */
POSATTN_API posattn_status posattn_rope_freqs_vision(int64_t rot_dims, float base, int64_t n_axes,
                                                     const int64_t *sections, float *freqs);

/* Mixed (RoPE-Mixed, Heo et al. 2024) needs no builder: pass the learned dense F[h][a][k] to posattn_rope_apply
 * with freq_head_stride = A*D_rot/2 (or 0 when it is shared across heads). */

/* ------------------------------------------------------------------------------------------------------------ */
/* LieRE rotations (SPEC 5)                                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * LieRE (Ostmeier et al., arXiv 2406.10322) replaces the 2 x 2 rotations of RoPE by b x b rotations from learned
 * skew-symmetric generators, for positions with 1 to 4 float coordinates:
 *     S(p) = p_0 G_0 + ... + p_{A-1} G_{A-1}          per block of b consecutive rotated dims (and generator set)
 *     R(p) = exp(S(p))                                  an orthogonal b x b matrix (a rotation)
 *     x'   = R(p) x                                     per block, for q and k of the token at p
 * Two steps, both public: posattn_liere_rotations computes R once per token (shared by q and k, by every head of a
 * generator set, and by every layer that shares the generators), posattn_liere_apply applies them (or their
 * transposes, the backward pass) to q and k. Units: positions in the caller's units, generator entries in radians
 * per unit. Dense LieRE is not translation invariant (generators need not commute): R(p)^T R(q) = R(q - p) only
 * for commuting generators (for instance block-diagonal 2 x 2 ones).
 *
 * Generators (the layout of `gens`): the rotated dims D_rot = n_blocks * b are cut into blocks of b consecutive
 * dims (b = 2..64, dividing D_rot). Each generator is given by its b(b-1)/2 strictly upper-triangular entries, row
 * by row: (0,1), (0,2), ..., (0,b-1), (1,2), ..., (b-2,b-1); the lower triangle is their negation and the diagonal
 * is 0. With T = b(b-1)/2, the entry e of the generator of set g, axis a, block j is
 *     gens[((g * A + a) * n_blocks + j) * T + e]                  (set-major, then axis, then block, as the
 *                                                                 rotary table F[h][a][k])
 * n_gen_heads sets: 1 (shared by every head) or one per group of heads; head h of a tensor with H heads uses set
 * h / (H / n_gen_heads) (so n_gen_heads = H gives each head its own generators). For b = 2 the single entry is
 * G[0][1] = g and R = [[cos t, sin t], [-sin t, cos t]] with t = sum_a p_a g_a: this is posattn_rope_apply's
 * interleaved pair rotation with frequency F[a][k] = -g (the sign: RoPE's generator has G[0][1] = -freq).
 *
 * Rotations (the layout of `rot`): per token, per set g, the n_blocks matrices stored "column by column, blocks
 * side by side", so that R x is a sum over c of contiguous coefficient vectors times x[j*b + c]:
 *     R_j[r][c]  at  rot[t * rot_tok_stride + (g * b + c) * D_rot + j * b + r]        0 <= r, c < b
 * That is n_gen_heads * b * D_rot floats per token (posattn_liere_rotation_size); for b = D_rot (one block) each
 * set holds one column-major matrix.
 *
 * Accuracy of the rotations, with u = 2^-24, S the exponent formed exactly from the float32 inputs and R* =
 * exp(S) (entries in [-1, 1]):
 * - b = 2 and b = 3 (closed forms: cos/sin, and Rodrigues' formula with its series near angle 0, evaluated in
 *   float64 and rounded once): every entry within u + 2^-50 (1 + |S|) of R*, for any angle (sin and cos in float64
 *   with full range reduction: SLEEF u10 on the SIMD paths, libm in the scalar reference), so
 *   max |R^T R - I| <= 4 u.
 * - b >= 4 (scaling and squaring in float32: s = the least s >= 0 with ||S||_1 2^-s <= 1/2, a degree-8 Taylor
 *   polynomial, s squarings, then 1 to 3 Newton-Schulz steps R <- R (3 I - R^T R) / 2): every entry within
 *   (1 + 2^s) 4 b u of R*. Derivation: the Taylor stage (truncation below 0.1 u, products of b terms each bounded
 *   by 1) leaves an error of at most about 2 b u, each squaring doubles the error so far and adds at most b u (a
 *   dot product of b terms whose absolute values sum to at most 1, the rows and columns of R having unit norm),
 *   and the Newton-Schulz steps move R only by its departure from orthogonality. The bound grows like ||S||_1, as
 *   the sensitivity of exp(S) to the float32 rounding of S itself does; typical errors are 20 to 1000 times
 *   smaller (random rounding). Example: b = 64, ||S||_1 = 100: s = 8, entries within 0.004 (typically 1e-5).
 *   Orthogonality: max |R^T R - I| <= (2 b + 4) u for ||S||_1 <= 2^10: the squarings double the departure from
 *   orthogonality s times, and each Newton-Schulz step squares it (1 step for s <= 6, 2 for s <= 10, 3 beyond),
 *   then adds the rounding of its two products.
 * Values are not scanned: NaN or infinite positions or generators give NaN in the affected blocks.
 *
 * Cost: b = 2, 3: one float64 sincos per block; b >= 4: 4 + s + 2k products of b x b matrices (2 b^3 flops each,
 * FMA in registers; k = 1, 2 or 3 Newton-Schulz steps) per block, set and token.
 *
 * Scratch (the `scratch` argument of both functions). Every entry point of the library uses at most 16 KiB of
 * stack per call (worker threads may have small stacks: musl's default is 128 KiB), and nothing is allocated, so
 * the working matrices of b >= 4 (5 matrices of b x b floats, rows padded to 16: 80 KiB for b = 64) and the
 * transposed rotations of the backward pass live in a caller-provided buffer of posattn_liere_scratch_size(block)
 * floats. It is needed by posattn_liere_rotations when block >= 4 and by posattn_liere_apply with
 * POSATTN_LIERE_BACKWARD; otherwise scratch may be NULL and both scratch arguments are ignored. Its contents on
 * entry do not matter and are unspecified on return; it must not overlap any other argument's buffer
 * (POSATTN_ERR_OVERLAP), and calls that run concurrently need one scratch each (one per worker thread, reused
 * across calls). Any alignment of float works; 64 bytes is best.
 */

/* Flags of posattn_liere_options. */
enum {
    /* Apply R^T instead of R: the inverse rotation, and the backward pass of x' = R x with respect to x. */
    POSATTN_LIERE_BACKWARD = 1u << 0
};

/*
 * Optional features of the LieRE entry points; zero-initialise, then set what you use.
 *
 * flags   posattn_liere_apply: POSATTN_LIERE_BACKWARD; other bits POSATTN_ERR_FLAGS. posattn_liere_rotations:
 *         no flag is defined (any bit is POSATTN_ERR_FLAGS).
 */
typedef struct posattn_liere_options {
    uint32_t flags;
} posattn_liere_options;

/*
 * The number of floats of one token's rotations: n_gen_heads * block * rot_dims (the minimum rot_tok_stride).
 * Errors: NULL (floats_per_token), SIZE (n_gen_heads or rot_dims <= 0), BLOCK (block outside 2..64 or not dividing
 * rot_dims), OVERFLOW. On error nothing is written.
 */
POSATTN_API posattn_status posattn_liere_rotation_size(int64_t n_gen_heads, int64_t block, int64_t rot_dims,
                                                       int64_t *floats_per_token);

/*
 * The number of floats of scratch a call with this block size needs (see "Scratch" above): 4096 (16 KiB) for
 * b <= 25, 5 * b * (b rounded up to a multiple of 16) above (20480 floats, 80 KiB, for b = 64). It depends only on
 * the block size, and may grow in later versions: always ask.
 * Errors: NULL (floats), BLOCK (block outside 2..64). On error nothing is written.
 */
POSATTN_API posattn_status posattn_liere_scratch_size(int64_t block, int64_t *floats);

/*
 * Computes R_j(p_t) = exp(S) for every token t in [tok_begin, tok_end), every generator set g < n_gen_heads and every
 * block j < rot_dims / block, into rot (layout above). Disjoint token ranges may run concurrently.
 *
 * n_tok        tokens of the sequence (pos and rot are indexed by the absolute token t, also when tok_begin > 0).
 * n_axes       A in 1..4 (POSATTN_ERR_AXES): coordinates per position (t, y, x, ...).
 * pos          float32 positions: token t's coordinate a at pos[t * pos_stride + a].  pos_stride  0: A (else >= A).
 * n_gen_heads  generator sets (>= 1), see "Generators".
 * block        b in 2..64, dividing rot_dims (POSATTN_ERR_BLOCK).   rot_dims  D_rot > 0, the rotated dims of a head.
 * gens         n_gen_heads * A * (D_rot / b) * b(b-1)/2 floats, layout above.
 * rot          the output; rot_tok_stride  elements between tokens, 0: posattn_liere_rotation_size (else >= it).
 * scratch      block >= 4: scratch_floats >= posattn_liere_scratch_size(block) floats of scratch, see "Scratch"
 *              (NULL: POSATTN_ERR_NULL, fewer floats: POSATTN_ERR_SIZE). block 2 or 3: unused, may be NULL.
 * options      NULL: all off (no flag applies here).
 * Accuracy: see above. Bit-identical across calls with different token ranges; the ISAs differ by FMA rounding
 * (b >= 4) and by their float64 sin and cos (b = 2, 3), within the bounds.
 * Errors: NULL (pos, gens, rot; scratch when block >= 4), SIZE (n_tok, n_gen_heads, rot_dims <= 0; scratch_floats
 * too small), AXES, BLOCK, ROW_RANGE, STRIDE, OVERFLOW, OVERLAP (rot overlapping pos or gens, the scratch
 * overlapping any of them), FLAGS. On error nothing is written, scratch included.
 */
POSATTN_API posattn_status posattn_liere_rotations(int64_t n_tok, int64_t n_axes, const float *pos,
                                                   int64_t pos_stride, int64_t n_gen_heads, int64_t block,
                                                   int64_t rot_dims, const float *gens, float *rot,
                                                   int64_t rot_tok_stride, float *scratch, int64_t scratch_floats,
                                                   const posattn_liere_options *options, int64_t tok_begin,
                                                   int64_t tok_end);

/*
 * Applies the rotations in place to q and (optionally) k, [n_tok][heads][head_dim] float32 tensors, for the tokens t
 * in [tok_begin, tok_end): element (t, h, d) of q is q[t * q_tok_stride + h * q_head_stride + d], likewise k. For
 * each head, the dims [rot_offset, rot_offset + rot_dims) are cut into blocks of `block` dims and block j becomes
 * R_j x (or R_j^T x with POSATTN_LIERE_BACKWARD); the other dims are left untouched. Passing q and k together
 * lets each token's rotations be read once for both (and for every head of a set). Disjoint token ranges may run
 * concurrently.
 *
 * head_dim     D > 0; rot_offset >= 0 with rot_offset + rot_dims <= D (POSATTN_ERR_LAYOUT); rot_dims > 0 (SIZE).
 * block        b in 2..64 dividing rot_dims (POSATTN_ERR_BLOCK), as given to posattn_liere_rotations.
 * q, q_heads   the query tensor and its head count (a multiple of n_gen_heads: POSATTN_ERR_SIZE otherwise).
 * q_tok_stride elements between tokens, 0: q_heads * q_head_stride;  q_head_stride  elements between heads, 0: D,
 *              else >= D (also with one head). Heads and tokens must not overlap (POSATTN_ERR_STRIDE).
 * k, k_heads, k_tok_stride, k_head_stride   the same for k; k NULL: q only (the k arguments are then ignored).
 *              k may have fewer heads than q (GQA), also a multiple of n_gen_heads. q and k must not share a byte;
 *              they may interleave token by token with equal token strides (a packed qkv buffer).
 * rot, rot_tok_stride, n_gen_heads   the rotations of posattn_liere_rotations (stride 0: contiguous).
 * scratch      with POSATTN_LIERE_BACKWARD: scratch_floats >= posattn_liere_scratch_size(block) floats of scratch,
 *              see "Scratch" (NULL: POSATTN_ERR_NULL, fewer floats: POSATTN_ERR_SIZE). Forward: unused, may be NULL.
 * options      NULL: forward.
 * Accuracy: each output x'_r = sum_c R[r][c] x_c is within (b + 1) u sum_c |R[r][c] x_c| of the exact sum over
 * the float32 rotations (b products and sums, fused on the SIMD paths); since R is orthogonal that is at most
 * (b + 1) u sqrt(b) ||x_block||; where products or partial sums fall below FLT_MIN (subnormals, rounded within
 * 2^-150 each, up to 2b - 1 of them) add (b + 1) 2^-149 absolute. A norm is kept within the rotations'
 * orthogonality plus that.
 * Errors: NULL (q, rot; scratch when backward), SIZE (also scratch_floats too small when backward), LAYOUT, BLOCK,
 * ROW_RANGE, STRIDE, OVERFLOW, OVERLAP (q or k overlapping rot, or each other; the scratch overlapping any of them
 * when backward), FLAGS. On error nothing is written, scratch included.
 */
POSATTN_API posattn_status posattn_liere_apply(int64_t n_tok, int64_t head_dim, int64_t rot_offset,
                                               int64_t rot_dims, int64_t block, float *q, int64_t q_heads,
                                               int64_t q_tok_stride, int64_t q_head_stride, float *k,
                                               int64_t k_heads, int64_t k_tok_stride, int64_t k_head_stride,
                                               const float *rot, int64_t rot_tok_stride, int64_t n_gen_heads,
                                               float *scratch, int64_t scratch_floats,
                                               const posattn_liere_options *options, int64_t tok_begin,
                                               int64_t tok_end);

/* ------------------------------------------------------------------------------------------------------------ */
/* Fused attention over a KV cache (SPEC 9)                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum posattn_kv_type {
    POSATTN_KV_F32 = 0,  /* float32 */
    POSATTN_KV_F16 = 1,  /* IEEE binary16 (uint16_t storage), as ggml's f16 cache */
    POSATTN_KV_BF16 = 2  /* bfloat16 (uint16_t storage: the high half of a float32) */
} posattn_kv_type;

/*
 * The tensors of an attention call, as an engine holds them. Strides are in elements of the tensor's own type,
 * 64-bit, and 0 means the default given; every given stride must be >= 0.
 *
 * n_heads, n_kv_heads  H query heads over Hkv KV heads, H a multiple of Hkv (POSATTN_ERR_SIZE otherwise): query
 *                      head h reads KV head g = h / (H / Hkv) (GQA; Hkv = 1 is MQA, Hkv = H is MHA).
 * nq, nk               queries and keys, >= 1. The queries are the last nq positions of the cache by default.
 * dk, dv               head sizes of q and k, and of v and out, each in 1..576 (POSATTN_ERR_HEAD_DIM).
 * q                    float32, q[h][i][d] at q[i*q_tok_stride + h*q_head_stride + d*q_dim_stride]. Defaults:
 *                      q_dim_stride 1, q_head_stride dk*q_dim_stride, q_tok_stride H*q_head_stride.
 * k, k_type            k[g][j][d] at k[j*k_tok_stride + g*k_head_stride + d] (elements of k_type, d contiguous).
 *                      Defaults: k_head_stride dk, k_tok_stride Hkv*k_head_stride, i.e. token-major [nk][Hkv][dk]
 *                      as llama.cpp's cache; head-major [Hkv][nk][dk] is k_tok_stride = dk, k_head_stride = nk*dk.
 * v, v_type            the same for v with dv.
 * out                  float32, O[h][i][d] at out[i*o_tok_stride + h*o_head_stride + d]. Defaults: o_head_stride
 *                      dv, o_tok_stride H*o_head_stride. Distinct output rows must not overlap (POSATTN_ERR_STRIDE),
 *                      and out must not overlap q, k, v or any other input (POSATTN_ERR_OVERLAP).
 * K and V values are widened exactly to float32 (f16 and bf16 in registers), and the result is defined on them.
 */
typedef struct posattn_attention_tensors {
    int64_t n_heads, n_kv_heads;
    int64_t nq, nk;
    int64_t dk, dv;
    const float *q;
    int64_t q_tok_stride, q_head_stride, q_dim_stride;
    const void *k;
    posattn_kv_type k_type;
    int64_t k_tok_stride, k_head_stride;
    const void *v;
    posattn_kv_type v_type;
    int64_t v_tok_stride, v_head_stride;
    float *out;
    int64_t o_tok_stride, o_head_stride;
} posattn_attention_tensors;

/*
 * Attention with the position bias computed inside it, for the rows r in [row_begin, row_end) of the H*nq rows
 * (h = r / nq, i = r % nq), over every key j in [0, nk) of KV head g = h / (H / Hkv):
 *     x_j = scale * (q[h][i] . k[g][j])                      dot product over dk in float32
 *     then exactly the logit of posattn_alibi_softmax: softcap, -m_h * dist_h(i, j) from positions, the mask
 *     (f32/f16, broadcast or per head, MASK_TIMES_SLOPE), causal and window exclusions, the sink
 *     P_j = softmax over the valid keys (and the sink),    O[h][i] = sum_j P_j v[g][j]     (over dv)
 * A row with no valid key and no sink gets O = 0 (and lse = -inf). options->lse, if given, receives the row's
 * log-sum-exp at lse[r]. The query heads of one KV head that fall in the row range are computed together, so a
 * call reads each K and V byte of a KV head once from memory however many query heads share it; an engine splits
 * the rows of a prefill over its threads (ranges that hold whole groups of H/Hkv heads keep that sharing).
 *
 * t          the tensors (see posattn_attention_tensors).
 * scale      multiplies q.k (1/sqrt(dk) usually); must be finite.
 * slopes     [n_heads], or NULL for no position bias at all (plain attention); a slope of 0 turns the bias off
 *            for that head.
 * positions  NULL for the KV-cache default; see posattn_positions (1-D and N-D, per-head positions and weights).
 * options    NULL for all features off; as posattn_softmax_options, where a mask row is indexed by key j.
 *
 * Numerics: dot products and the weighted sums of v are accumulated in float32 over blocks of at most
 * POSATTN_ATTENTION_BLOCK keys, whose partial sums join float64 running sums (rescaled when the row maximum
 * grows), so the error does not grow with nk; K/V are never accumulated in f16. Weights exp(x_j - m) with
 * x_j - m < -44 (m the running maximum) are flushed to 0, so p*v is normal for every |v| >= 2^-62 and no
 * accumulation forms a subnormal from ordinary values; this drops at most nk e^-44 (< nk 2^-63) of the row's mass.
 * Accuracy, on every ISA. Let u = 2^-24, starred values be exact on the same (widened) inputs,
 * A_j = |scale| * sum_d |q_d k_jd| (the magnitude of the score), L as in posattn_alibi_softmax with A_j in place of
 * |scale*S_j|, and V_d = sum_j P*_j |v_jd|. Then for every output element
 *     |O_d - O*_d| <= ((dk + 10) max_j A_j + 10 L + 2 max_j d_j + B + 60) u V_d + nk 2^-62 max_j |v_jd|
 *                      + (2 nk + 1) 2^-150
 * with B = POSATTN_ATTENTION_BLOCK and d_j <= 44 the gaps below the largest valid logit (the sink not counted) of
 * the weights kept (the others are flushed);
 * with a softcap L_j takes the capped score |x_j| in place of A_j (the dot product's term keeps A_j: the cap only
 * shrinks its error). lse obeys the bound of posattn_alibi_softmax plus the dot
 * products' term: |lse - lse*| <= ((dk + 10) max_j A_j + 11 L + 20) u + u |lse*|. N-D positions (A >= 2 axes of
 * non-zero weight), whose bias carries up to 6 u |bias_j|: 20 L in place of 10 L, and 21 L in place of 11 L, as in
 * posattn_alibi_softmax. Derivation: the dot product is within dk u A_j (float32, any order); the
 * logit then takes the softmax's roundings (4 u L_j); each weight is within (10 L + d_j + 22) u of its exact value
 * relative (as posattn_alibi_softmax, the running maximum cancelling in the ratio); each product p v and its
 * block sum add (B + 1) u relative to sum p |v|; the float64 stages and the final division add at most 3 u.
 * The last term is underflow: with |v| below 2^-62 a product p v or a block sum may fall below FLT_MIN, and so
 * may O itself, each rounded within 2^-150 absolute (the sums are divided by l >= 1).
 * The bound is worst case and first order in u; typical errors are a few u of V_d.
 * Results depend on a row's own inputs only: any split of the rows (row ranges, threads) gives the same bits, on
 * a given ISA.
 *
 * Errors: NULL (t, q, k, v, out), SIZE, HEAD_DIM, KV_TYPE, ROW_RANGE, STRIDE, OVERFLOW, OVERLAP, SCALE, SOFTCAP,
 * WINDOW, AXES, METRIC, WEIGHTS, MASK_TYPE, FLAGS. On error nothing is written.
 */
#define POSATTN_ATTENTION_BLOCK 64
POSATTN_API posattn_status posattn_attention(const posattn_attention_tensors *t, float scale, const float *slopes,
                                             const posattn_positions *positions,
                                             const posattn_softmax_options *options, int64_t row_begin,
                                             int64_t row_end);

/*
 * Split-KV, for decode on several threads: each thread runs posattn_attention_partial over its own key range
 * [key_begin, key_end) and the same rows, into its own partials buffer; then posattn_attention_merge combines the
 * buffers in their given order into O (and lse). Results are deterministic for a given split and obey the bound
 * of posattn_attention (the partials are float64, and merging adds at most 2 u per range to V_d).
 *
 * Partials of row r (of the H*nq rows) sit at partials[r * (dv + 2) ...]: m (the range's largest valid logit,
 * -inf for none), l (sum of exp(x_j - m) over the range's valid keys), then a[0..dv) (sum of exp(x_j - m) v_j).
 * posattn_attention_partials_size gives the bytes of one buffer (all H*nq rows; a call writes only its rows).
 * In partial calls options->sinks and options->lse are not used (they belong to the merge), nor are t->out and its
 * strides (out may be NULL); everything else is.
 *
 * posattn_attention_partials_size: POSATTN_ERR_NULL, SIZE, HEAD_DIM, OVERFLOW.
 * posattn_attention_partial: as posattn_attention, plus NULL (partials), KEY_RANGE (key range not within
 *     [0, nk] or reversed; an empty range writes m = -inf, l = 0, a = 0), OVERLAP (partials overlapping an input).
 * posattn_attention_merge: reads t->n_heads, nq, dv, out and its strides (q, k, v are not read and may be NULL),
 *     options->sinks and options->lse (other options are not used); partials[n] for n in [0, n_ranges) point to
 *     the buffers; O = a / l, lse = m + log l after adding the sink exp(sink_h - m) once. Rows whose ranges
 *     had no valid key and no sink get O = 0, lse = -inf. Errors: NULL, SIZE, HEAD_DIM, ROW_RANGE, STRIDE,
 *     OVERFLOW, OVERLAP (out or lse overlapping a partials buffer). n_ranges >= 1 (POSATTN_ERR_SIZE).
 */
POSATTN_API posattn_status posattn_attention_partials_size(int64_t n_heads, int64_t nq, int64_t dv, size_t *bytes);
POSATTN_API posattn_status posattn_attention_partial(const posattn_attention_tensors *t, float scale,
                                                     const float *slopes, const posattn_positions *positions,
                                                     const posattn_softmax_options *options, int64_t key_begin,
                                                     int64_t key_end, double *partials, int64_t row_begin,
                                                     int64_t row_end);
POSATTN_API posattn_status posattn_attention_merge(const posattn_attention_tensors *t,
                                                   const posattn_softmax_options *options,
                                                   const double *const *partials, int64_t n_ranges,
                                                   int64_t row_begin, int64_t row_end);

/* ------------------------------------------------------------------------------------------------------------ */
/* Far-field skipping: ALiBi decode that never reads the keys the bias makes negligible                          */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * Key-block summaries an engine keeps beside its KV cache, for posattn_attention_far_field. Per block of
 * POSATTN_KV_SUMMARY_BLOCK consecutive keys: for every KV head an upper bound on the keys' Euclidean norms
 * (computed in float64 from the widened keys, rounded up to float32; NaN when a key has a NaN, +inf when a norm
 * overflows), and the block's position box: the smallest and largest key coordinate on every axis (1 to
 * POSATTN_KV_SUMMARY_AXES; NaN when a coordinate is NaN). Any key order is valid (a KV cache need not be sorted),
 * and N-D positions get a box whose L1 or L2 distance to the query bounds every key's distance from below.
 *
 * posattn_kv_summary_size: the bytes of the summary's arrays for n_kv_heads heads and up to max_keys keys
 *     ((n_kv_heads + 2 POSATTN_KV_SUMMARY_AXES) floats per block, whatever the axes).
 * posattn_kv_summary_init: lays the arrays out in buffer (bytes >= the size, any alignment of float), zeroes them
 *     and sets n_keys = 0, axes = 0. The summary then points into buffer; the caller owns both.
 * posattn_kv_summary_update: summarises the keys [key_begin, t->nk) of the cache, t->nk <= max_keys, recomputing
 *     every block they touch (so a partly filled last block is extended: an engine calls it once per appended token
 *     or batch, with key_begin = the first new key, and pays for one block of keys per call); then n_keys = t->nk
 *     and axes = the positions' axes (1 for the default positions). Reads t->n_kv_heads (== the summary's), nk, dk,
 *     k, k_type and k's strides (q, v, out are not read and may be NULL). positions: NULL or zeroed (key j at j),
 *     or key positions shared by all heads (k_head_stride 0) with 1 to POSATTN_KV_SUMMARY_AXES axes; positions->q,
 *     weights and metric are not read (a box serves every head's weights and either metric).
 * Errors: NULL, SIZE (n_kv_heads or max_keys <= 0, nk > max_keys or <= 0, or heads that differ from the summary's),
 *     HEAD_DIM, KV_TYPE, STRIDE, OVERFLOW, KEY_RANGE (key_begin outside [0, nk] or past n_keys: the summary
 *     must stay contiguous), AXES (per-head key positions, which are not summarised; more than
 *     POSATTN_KV_SUMMARY_AXES axes; N-D positions without k; or other axes than the blocks kept before key_begin).
 *     On error the summary is unchanged.
 */
#define POSATTN_KV_SUMMARY_BLOCK 64
#define POSATTN_KV_SUMMARY_AXES 4
typedef struct posattn_kv_summary {
    int64_t n_kv_heads, max_keys;
    int64_t n_keys;  /* keys summarised so far */
    int64_t axes;    /* axes of the summarised positions (0 before the first update) */
    float *key_norm; /* [n_kv_heads][blocks]: bound on |k_j| over block b at key_norm[g * blocks + b] */
    float *pos_min;  /* [POSATTN_KV_SUMMARY_AXES][blocks]: axis a of block b at pos_min[a * blocks + b] */
    float *pos_max;  /* [POSATTN_KV_SUMMARY_AXES][blocks] */
} posattn_kv_summary;
POSATTN_API posattn_status posattn_kv_summary_size(int64_t n_kv_heads, int64_t max_keys, size_t *bytes);
POSATTN_API posattn_status posattn_kv_summary_init(posattn_kv_summary *summary, int64_t n_kv_heads, int64_t max_keys,
                                                   void *buffer, size_t bytes);
POSATTN_API posattn_status posattn_kv_summary_update(posattn_kv_summary *summary, const posattn_attention_tensors *t,
                                                     const posattn_positions *positions, int64_t key_begin);

/*
 * posattn_attention over rows [row_begin, row_end), reading only the key blocks whose weight can matter. For each
 * row with a position bias (slope m > 0, positions shared by all heads, 1-D or N-D, no mask) the call bounds every
 * logit of block B from the summary (the same positions must have been summarised):
 *     x_j <= U_B = a_B - m dmin_B + (dk + 16) 2^-23 (a_B + m dmin_B),   a_B = |scale| |q| max_{j in B} |k_j|
 * (a_B capped at the softcap when there is one; dmin_B the distance from the query position to the block's
 * position box, in the row's metric and axis weights, which no key of the block is nearer than; the last term
 * covers the float32 roundings of the kernel's logit and of its N-D distance), visits blocks in rounds of
 * decreasing U_B (every block whose bound is NaN or infinite is visited), keeping the running maximum m_run and sum
 * l_run, and stops when the bound of everything left,
 *     W = sum over unvisited blocks of n_B exp(U_B - m_run),   n_B the block's valid keys,
 * is at most eps l_run. Then the skipped keys weigh at most eps of the row's softmax mass (sinks only add to
 * it), and every output obeys posattn_attention's bound plus 2 eps max_j |v_jd| (the relative change of the
 * denominator and of the numerator, each at most eps), plus the split-KV merge's 2 u per visited round. Rows
 * without a bias to bound (slope <= 0 or NULL slopes, a mask, MASK_TIMES_SLOPE, per-head key positions) read all
 * their keys, with the same bound. Masks, causal limits, windows, sinks, softcap and GQA work as in
 * posattn_attention (each row of a GQA group bounds its own blocks, so K and V of a group are read per row).
 *
 * far->summary  summaries of at least t->nk keys of t's KV heads (posattn_kv_summary_update).
 * far->eps      the mass a row may leave unread, relative: 0 means 2^-24; otherwise in (0, 2^-10].
 * far->scratch, far->scratch_bytes   at least posattn_far_field_scratch_size(nk, dv) bytes, aligned for double.
 * far->keys_read  out: keys whose K and V rows the call read, summed over its rows (a row reading all its valid
 *               keys counts them all): the K/V bytes read are keys_read * (dk + dv) * element size.
 * Errors: those of posattn_attention, plus NULL (far, summary, scratch), SIZE (scratch too small, or a summary of
 * other heads), KEY_RANGE (the summary covers fewer than nk keys), AXES (positions shared by all heads whose axes
 * are not the summary's), SCALE (eps outside its range). Nothing is written on error (keys_read included).
 */
typedef struct posattn_far_field {
    const posattn_kv_summary *summary;
    float eps;
    void *scratch;
    size_t scratch_bytes;
    int64_t keys_read;
} posattn_far_field;
POSATTN_API posattn_status posattn_far_field_scratch_size(int64_t nk, int64_t dv, size_t *bytes);
POSATTN_API posattn_status posattn_attention_far_field(const posattn_attention_tensors *t, float scale,
                                                       const float *slopes, const posattn_positions *positions,
                                                       const posattn_softmax_options *options,
                                                       posattn_far_field *far, int64_t row_begin, int64_t row_end);

/*
 * Split-KV with far-field skipping: posattn_attention_partial's contract (partials of rows [row_begin, row_end) over
 * the keys [key_begin, key_end), merged by posattn_attention_merge) with posattn_attention_far_field's walk inside
 * the range. A range stops when what it leaves unread weighs at most eps of its own sum, which is at most eps of
 * the row's: the merged outputs obey posattn_attention_far_field's bound, with the merge's 2 u per range added.
 * far->summary must cover all t->nk keys; the scratch is per call (one per thread). far->keys_read counts the
 * range's keys read. Errors: those of posattn_attention_partial and of posattn_attention_far_field (OVERLAP also
 * for a scratch overlapping the partials).
 */
POSATTN_API posattn_status posattn_attention_far_field_partial(const posattn_attention_tensors *t, float scale,
                                                               const float *slopes,
                                                               const posattn_positions *positions,
                                                               const posattn_softmax_options *options,
                                                               posattn_far_field *far, int64_t key_begin,
                                                               int64_t key_end, double *partials,
                                                               int64_t row_begin, int64_t row_end);

#ifdef __cplusplus
}
#endif

#endif /* POSATTN_H */
