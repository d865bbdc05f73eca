/*
 * What the AVX2 and AVX-512 bias and softmax rows share above their vector code: how key positions are found (the
 * KEYS_* modes), the mask kinds, and the specialised variants with the dispatch between them. Each x86 kernel file
 * defines bias_row_body(row, keys), nd_bias_row_body(row, axes, l2) and softmax_row_body(row, keys, mask, softcap)
 * with the ISA's intrinsics, then expands POSATTN_DEFINE_BIAS_ROW(name) and POSATTN_DEFINE_SOFTMAX_ROW(name) once
 * each to get the entries the registry points at, then #undefs the helper macros (each file expands them once).
 * NEON keeps one generic body per row kind.
 */
#ifndef POSATTN_X86_ROW_VARIANTS_H
#define POSATTN_X86_ROW_VARIANTS_H

#include <stdint.h>

#include "kernels.h"

/* How key j's position is found. KEYS_IOTA builds (float)j by float additions, exact only up to 2^24, so longer
 * rows use KEYS_IOTA_WIDE (64-bit integers converted per lane, as (float)j rounds). */
enum { KEYS_NONE, KEYS_IOTA, KEYS_IOTA_WIDE, KEYS_CONTIGUOUS, KEYS_STRIDED };
/* N-D rows in the softmax body: KEYS_ND + 2 (A - 2) + l2, for A = 2..4 kept axes. */
enum { KEYS_ND = 8 };
#define KEYS_ND_AXES(keys) (((keys) - KEYS_ND) / 2 + 2)
#define KEYS_ND_L2(keys) (((keys) - KEYS_ND) & 1)
enum { MASK_NONE, MASK_F32, MASK_F16 };

#define POSATTN_IOTA_EXACT_LIMIT (INT64_C(1) << 24)

/* Up to this many keys a row's scores and probs (32 KiB) stay in L1, where storing the logits in pass 1 and
 * reloading them in pass 2 costs less than forming them again (11-13% faster at 512 and 4096 keys on AVX-512).
 * Longer rows live in L2 or memory, where the extra write stream costs more than the arithmetic it saves. */
#define POSATTN_STORED_LOGITS_MAX_KEYS 4096

static inline int keys_mode(const posattn_key_positions *keys, int64_t nk) {
    if (!keys->k_pos) return nk <= POSATTN_IOTA_EXACT_LIMIT ? KEYS_IOTA : KEYS_IOTA_WIDE;
    return keys->k_pos_stride == 1 ? KEYS_CONTIGUOUS : KEYS_STRIDED;
}

static inline int mask_mode(const posattn_softmax_row *row) {
    return !row->mask ? MASK_NONE : row->mask_is_f16 ? MASK_F16 : MASK_F32;
}

/* The external bias: the key mode is picked per row (a switch, each case inlining the body for that mode); N-D rows
 * get one noinline variant per kept-axis count and metric. */
#define POSATTN_ND_BIAS_VARIANT(axes, l2)                                                                          \
    static __attribute__((noinline)) void nd_bias_row_##axes##_##l2(const posattn_bias_row *row) {                 \
        nd_bias_row_body(row, axes, l2);                                                                           \
    }

#define POSATTN_DEFINE_BIAS_ROW(entry)                                                                             \
    POSATTN_ND_BIAS_VARIANT(2, 0)                                                                                  \
    POSATTN_ND_BIAS_VARIANT(3, 0)                                                                                  \
    POSATTN_ND_BIAS_VARIANT(4, 0)                                                                                  \
    POSATTN_ND_BIAS_VARIANT(2, 1)                                                                                  \
    POSATTN_ND_BIAS_VARIANT(3, 1)                                                                                  \
    POSATTN_ND_BIAS_VARIANT(4, 1)                                                                                  \
    void entry(const posattn_bias_row *row) {                                                                      \
        if (row->nd.axes >= 2) {                                                                                   \
            switch (row->nd.axes * 2 + row->nd.l2) {                                                               \
            case 4: nd_bias_row_2_0(row); return;                                                                  \
            case 5: nd_bias_row_2_1(row); return;                                                                  \
            case 6: nd_bias_row_3_0(row); return;                                                                  \
            case 7: nd_bias_row_3_1(row); return;                                                                  \
            case 8: nd_bias_row_4_0(row); return;                                                                  \
            default: nd_bias_row_4_1(row); return;                                                                 \
            }                                                                                                      \
        }                                                                                                          \
        switch (keys_mode(&row->keys, row->nk)) {                                                                  \
        case KEYS_IOTA: bias_row_body(row, KEYS_IOTA); break;                                                      \
        case KEYS_CONTIGUOUS: bias_row_body(row, KEYS_CONTIGUOUS); break;                                          \
        case KEYS_IOTA_WIDE: bias_row_body(row, KEYS_IOTA_WIDE); break;                                            \
        default: bias_row_body(row, KEYS_STRIDED); break;                                                          \
        }                                                                                                          \
    }

/* The softmax. Specialised variants for the common shapes: no softcap, keys at their indices or contiguous (or no
 * bias, as in ggml mode), any mask; one per kept-axis count and metric for N-D rows (coordinates and distance
 * unrolled, mask and softcap loop-invariant branches). Everything else (softcap, where tanh dominates; strided or
 * > 2^24 key positions) takes the generic variant, whose per-vector branches are loop-invariant. Each variant is a
 * separate function with its own register allocation: static and noinline (GCC warns on "inline" with noinline). */
#define POSATTN_SOFTMAX_VARIANT(keys, mask)                                                                        \
    static __attribute__((noinline)) void softmax_row_##keys##_##mask(const posattn_softmax_row *row) {            \
        softmax_row_body(row, keys, mask, 0);                                                                      \
    }
#define POSATTN_ND_SOFTMAX_VARIANT(axes, l2)                                                                       \
    static __attribute__((noinline)) void softmax_row_nd_##axes##_##l2(const posattn_softmax_row *row) {           \
        softmax_row_body(row, KEYS_ND + 2 * (axes - 2) + l2, mask_mode(row), row->softcap > 0.0f);                 \
    }
#define POSATTN_SOFTMAX_CASE(row, keys, mask, k, m)                                                                \
    if ((keys) == k && (mask) == m) {                                                                              \
        softmax_row_##k##_##m(row);                                                                                \
        return;                                                                                                    \
    }

#define POSATTN_DEFINE_SOFTMAX_ROW(entry)                                                                          \
    POSATTN_SOFTMAX_VARIANT(KEYS_NONE, MASK_NONE)                                                                  \
    POSATTN_SOFTMAX_VARIANT(KEYS_NONE, MASK_F32)                                                                   \
    POSATTN_SOFTMAX_VARIANT(KEYS_NONE, MASK_F16)                                                                   \
    POSATTN_SOFTMAX_VARIANT(KEYS_IOTA, MASK_NONE)                                                                  \
    POSATTN_SOFTMAX_VARIANT(KEYS_IOTA, MASK_F32)                                                                   \
    POSATTN_SOFTMAX_VARIANT(KEYS_IOTA, MASK_F16)                                                                   \
    POSATTN_SOFTMAX_VARIANT(KEYS_CONTIGUOUS, MASK_NONE)                                                            \
    POSATTN_SOFTMAX_VARIANT(KEYS_CONTIGUOUS, MASK_F32)                                                             \
    POSATTN_SOFTMAX_VARIANT(KEYS_CONTIGUOUS, MASK_F16)                                                             \
    POSATTN_ND_SOFTMAX_VARIANT(2, 0)                                                                               \
    POSATTN_ND_SOFTMAX_VARIANT(3, 0)                                                                               \
    POSATTN_ND_SOFTMAX_VARIANT(4, 0)                                                                               \
    POSATTN_ND_SOFTMAX_VARIANT(2, 1)                                                                               \
    POSATTN_ND_SOFTMAX_VARIANT(3, 1)                                                                               \
    POSATTN_ND_SOFTMAX_VARIANT(4, 1)                                                                               \
    static __attribute__((noinline)) void softmax_row_generic(const posattn_softmax_row *row, int keys, int mask) { \
        softmax_row_body(row, keys, mask, row->softcap > 0.0f);                                                    \
    }                                                                                                              \
    void entry(const posattn_softmax_row *row) {                                                                   \
        if (row->nd.axes >= 2 && row->slope != 0.0f) {                                                             \
            switch (row->nd.axes * 2 + row->nd.l2) {                                                               \
            case 4: softmax_row_nd_2_0(row); return;                                                               \
            case 5: softmax_row_nd_2_1(row); return;                                                               \
            case 6: softmax_row_nd_3_0(row); return;                                                               \
            case 7: softmax_row_nd_3_1(row); return;                                                               \
            case 8: softmax_row_nd_4_0(row); return;                                                               \
            default: softmax_row_nd_4_1(row); return;                                                              \
            }                                                                                                      \
        }                                                                                                          \
        int keys = row->slope != 0.0f ? keys_mode(&row->keys, row->nk) : KEYS_NONE;                               \
        int mask = mask_mode(row);                                                                                 \
        if (row->softcap > 0.0f || keys == KEYS_IOTA_WIDE || keys == KEYS_STRIDED) {                               \
            softmax_row_generic(row, keys, mask);                                                                  \
            return;                                                                                                \
        }                                                                                                          \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_NONE, MASK_NONE)                                                \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_NONE, MASK_F32)                                                 \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_NONE, MASK_F16)                                                 \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_IOTA, MASK_NONE)                                                \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_IOTA, MASK_F32)                                                 \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_IOTA, MASK_F16)                                                 \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_CONTIGUOUS, MASK_NONE)                                          \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_CONTIGUOUS, MASK_F32)                                           \
        POSATTN_SOFTMAX_CASE(row, keys, mask, KEYS_CONTIGUOUS, MASK_F16)                                           \
    }

#endif /* POSATTN_X86_ROW_VARIANTS_H */
