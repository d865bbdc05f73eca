/*
 * The ALiBi row kernels (SPEC 2-3): the external bias row and the fused bias-add-softmax row, written once and
 * compiled once per ISA, as liere_generic.h is. Each src/<isa>/alibi.c defines the vector layer described below,
 * then includes this file, which defines posattn_alibi_bias_row_f32_<isa> and posattn_alibi_softmax_row_f32_<isa>
 * (the entries the registry points at) with the specialised variants they choose between. The slopes are not
 * here: each ISA file keeps its own.
 *
 * One file does one thing:
 *   alibi_generic_positions.h   key positions, N-D distances, the external bias row
 *   alibi_generic_softmax.h     the logit, the exponential and the three passes of the softmax row
 *   alibi_generic.h (this)      the layer's contract, the variants and the entry points
 *
 * Rounding policy, on every ISA: that of the scalar reference's logit() (src/scalar/alibi.c).
 *   x = scale * s, rounded; with a softcap x = cap * tanh(x / cap) (a true division, the ISA's SLEEF tanhf);
 *   then x = x - slope * dist with the product and the difference each rounded (no FMA), dist = |q - k| rounded
 *   once or the N-D distance of posattn_alibi_dist_nd; with a mask x = (M == -inf) ? -inf : x + mask_scale * M,
 *   again rounded twice. Without a softcap the logits, hence the row maximum, every flush decision and lse of a
 *   row with one valid key, are the scalar reference's bit for bit on every ISA. The external bias is
 *   -slope * dist (the sign folded into the constant, one more rounding): bit-identical on every ISA as well.
 *   The library is built with -ffp-contract=off, so the compiler fuses nothing behind this code's back: the
 *   only products fused into an addition are the exponential's (vf_fma / vf_fnma), written as such.
 *
 * The vector layer, defined by the includer before including (all static inline). Vector values appear in the
 * generic code only as locals and parameters (never in arrays or struct members), and the lane count may be a
 * run-time value, so that a layer of sizeless vectors (SVE) can instantiate the same bodies.
 *   ALIBI_ISA                  suffix of the entry points (avx2, avx512, neon)
 *   ALIBI_LANES                V, float32 lanes per vector: an int64_t expression, a constant or a run-time value
 *   POSATTN_STORED_LOGITS_MAX_KEYS   optional: the longest row whose logits pass 1 stores (default 4096)
 *   vf, vd, vm                 V float32 lanes; a float64 accumulator for widened lanes; a mask of V lanes
 * Memory, unaligned. The _part forms touch the elements of lanes [0, n) only (1 <= n <= V; no other byte is read
 * or written, whatever the alignment) and load 0 into the other lanes:
 *   vf_load(p)  vf_load_part(p, n)  vf_store(p, v)  vf_store_part(p, v, n)
 *   vf_load_f16(p)  vf_load_f16_part(p, n)      binary16 elements widened to float32 (exact)
 * Arithmetic, IEEE float32, one rounding each:
 *   vf_set1(x)  vf_zero()  vf_iota() (lane l holds l)  vf_add  vf_sub  vf_mul  vf_div  vf_sqrt  vf_abs
 *   vf_absdiff(a, b)           |a - b|: the subtraction's rounding only
 *   vf_sub_mul(x, a, b)        x - a b and vf_add_mul(x, a, b) x + a b: the product rounded, then the sum rounded
 *                              (two roundings, never one fused; a layer may form the sum as an FMA by 1, which
 *                              rounds exactly as the addition does, to balance its execution ports)
 *   vf_fma(a, b, c)            a b + c fused, vf_fnma(a, b, c) c - a b fused (used by the exponential only)
 *   vf_max_ign(acc, x)         the larger; acc when x is NaN (fmaxf's rule: running maxima)
 *   vf_max_nan(c, x)           the larger; NaN when x is NaN (clamping)
 *   vf_tanh(x)                 the ISA's SLEEF tanhf (u10)
 * Lane masks:
 *   vm_first(n)                lanes [0, min(n, V)), n >= 1
 *   vm_eq(a, b)                a == b, false for NaN; vm_nlt(a, b): !(a < b), true for NaN; vm_isnan(a)
 *   vm_or(a, b)  vm_any(m)  vf_select(m, a, b) (m ? a : b)
 *   vf_mulz(m, a, b)           m ? a b : 0; lanes outside m never form the product (no subnormal is formed there)
 *   vf_pow2_mulz(m, p, n, t)   m ? p 2^n : 0, for n an integer in [-126, 0] held as a float and
 *                              t = n + POSATTN_EXP_SHIFTER (so n + 127 sits in t's low mantissa bits); p 2^n is normal
 * Reductions:
 *   vf_reduce_max(v) (no lane NaN)  vd_zero()  vd_widen_add(s, v) (s plus every lane of v, in float64)
 *   vd_add(a, b)  vd_reduce_add(s)
 * Key positions and N-D coordinates, in state types of the layer's own (passed by pointer):
 *   vkeys; vkeys_init(&k, keys)            what strided key positions need (posattn_key_positions *keys)
 *   vf_keys_strided(&k, j, n)              k_pos[(j + l) * stride] in lanes l < n (n <= V; no other position read)
 *   vf_iota_wide(j)                        (float)(j + l), rounded once as the int64 conversion rounds, any j >= 0
 *   vnd; vnd_init(&c, nd, keys, nk)        what N-D coordinates need (posattn_nd_positions *nd of the row)
 *   vnd_coords(&c, axes, j, n, &c0, &c1, &c2, &c3)
 *                                          coordinates on kept axes 0..axes-1 of keys j + l, lanes l < n (n <= V;
 *                                          nothing read past the last key's k_len floats; other lanes anything);
 *                                          the ISA's de-interleaving shuffles live here. Returns an order token
 *                                          for vf_nd_key_order(v, order), which puts a per-key result back in key
 *                                          order (a transposing loader may deliver the keys permuted).
 */
#include <math.h>
#include <stdint.h>

#include "exp_f32.h"
#include "kernels.h"

#ifndef ALIBI_ISA
#error "define the vector layer before including alibi_generic.h"
#endif

#define ALIBI_CAT_(a, b) a##b
#define ALIBI_CAT(a, b) ALIBI_CAT_(a, b)
#define ALIBI_FN(name) ALIBI_CAT(name, ALIBI_ISA)
#define ALIBI_INLINE static inline __attribute__((always_inline))
/* Each variant is a function with its own register allocation: static and noinline (GCC warns on "inline" with
 * noinline). */
#define ALIBI_VARIANT static __attribute__((noinline))

#include "alibi_generic_positions.h"
#include "alibi_generic_softmax.h"

/* ---------------------------------------------------------------------------------------------------------- */
/* External bias row                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

/* The key mode is picked per row (a switch, each case inlining the body for that mode); N-D rows get one variant
 * per kept-axis count and metric. */
#define ALIBI_ND_BIAS_VARIANT(axes, l2)                                                                            \
    ALIBI_VARIANT void nd_bias_row_##axes##_##l2(const posattn_bias_row *row) {                                    \
        nd_bias_row_body(row, axes, l2);                                                                           \
    }
ALIBI_ND_BIAS_VARIANT(2, 0)
ALIBI_ND_BIAS_VARIANT(3, 0)
ALIBI_ND_BIAS_VARIANT(4, 0)
ALIBI_ND_BIAS_VARIANT(2, 1)
ALIBI_ND_BIAS_VARIANT(3, 1)
ALIBI_ND_BIAS_VARIANT(4, 1)
#undef ALIBI_ND_BIAS_VARIANT

void ALIBI_FN(posattn_alibi_bias_row_f32_)(const posattn_bias_row *row) {
    if (row->nd.axes >= 2) {
        switch (row->nd.axes * 2 + row->nd.l2) {
        case 4: nd_bias_row_2_0(row); return;
        case 5: nd_bias_row_2_1(row); return;
        case 6: nd_bias_row_3_0(row); return;
        case 7: nd_bias_row_3_1(row); return;
        case 8: nd_bias_row_4_0(row); return;
        default: nd_bias_row_4_1(row); return;
        }
    }
    switch (keys_mode(&row->keys, row->q_pos, row->nk)) {
    case KEYS_IOTA: bias_row_body(row, KEYS_IOTA); break;
    case KEYS_CONTIGUOUS: bias_row_body(row, KEYS_CONTIGUOUS); break;
    case KEYS_IOTA_WIDE: bias_row_body(row, KEYS_IOTA_WIDE); break;
    default: bias_row_body(row, KEYS_STRIDED); break;
    }
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Fused softmax row                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

/* Specialised variants for the common shapes: no softcap, keys at their indices, contiguous or strided (one-hot
 * axis weights on N-D positions make strided 1-D rows), or no bias (as in ggml mode), any mask; one per kept-axis
 * count and metric for N-D rows (coordinates and distance unrolled; the mask and the softcap are loop-invariant
 * branches there). Everything else (a softcap, where tanh dominates; fractional queries over default keys, or
 * more than 2^24 of them) takes the generic variant, whose per-vector branches are loop-invariant. */
#define ALIBI_SOFTMAX_VARIANT(keys, mask)                                                                          \
    ALIBI_VARIANT void softmax_row_##keys##_##mask(const posattn_softmax_row *row) {                               \
        softmax_row_body(row, keys, mask, 0);                                                                      \
    }
#define ALIBI_ND_SOFTMAX_VARIANT(axes, l2)                                                                         \
    ALIBI_VARIANT void softmax_row_nd_##axes##_##l2(const posattn_softmax_row *row) {                              \
        softmax_row_body(row, KEYS_ND + 2 * (axes - 2) + l2, mask_mode(row), row->softcap > 0.0f);                 \
    }
ALIBI_SOFTMAX_VARIANT(KEYS_NONE, MASK_NONE)
ALIBI_SOFTMAX_VARIANT(KEYS_NONE, MASK_F32)
ALIBI_SOFTMAX_VARIANT(KEYS_NONE, MASK_F16)
ALIBI_SOFTMAX_VARIANT(KEYS_IOTA, MASK_NONE)
ALIBI_SOFTMAX_VARIANT(KEYS_IOTA, MASK_F32)
ALIBI_SOFTMAX_VARIANT(KEYS_IOTA, MASK_F16)
ALIBI_SOFTMAX_VARIANT(KEYS_CONTIGUOUS, MASK_NONE)
ALIBI_SOFTMAX_VARIANT(KEYS_CONTIGUOUS, MASK_F32)
ALIBI_SOFTMAX_VARIANT(KEYS_CONTIGUOUS, MASK_F16)
ALIBI_SOFTMAX_VARIANT(KEYS_STRIDED, MASK_NONE)
ALIBI_SOFTMAX_VARIANT(KEYS_STRIDED, MASK_F32)
ALIBI_SOFTMAX_VARIANT(KEYS_STRIDED, MASK_F16)
ALIBI_ND_SOFTMAX_VARIANT(2, 0)
ALIBI_ND_SOFTMAX_VARIANT(3, 0)
ALIBI_ND_SOFTMAX_VARIANT(4, 0)
ALIBI_ND_SOFTMAX_VARIANT(2, 1)
ALIBI_ND_SOFTMAX_VARIANT(3, 1)
ALIBI_ND_SOFTMAX_VARIANT(4, 1)
#undef ALIBI_SOFTMAX_VARIANT
#undef ALIBI_ND_SOFTMAX_VARIANT

ALIBI_VARIANT void softmax_row_generic(const posattn_softmax_row *row, int keys, int mask) {
    softmax_row_body(row, keys, mask, row->softcap > 0.0f);
}

void ALIBI_FN(posattn_alibi_softmax_row_f32_)(const posattn_softmax_row *row) {
    if (row->nd.axes >= 2 && row->slope != 0.0f) {
        switch (row->nd.axes * 2 + row->nd.l2) {
        case 4: softmax_row_nd_2_0(row); return;
        case 5: softmax_row_nd_2_1(row); return;
        case 6: softmax_row_nd_3_0(row); return;
        case 7: softmax_row_nd_3_1(row); return;
        case 8: softmax_row_nd_4_0(row); return;
        default: softmax_row_nd_4_1(row); return;
        }
    }
    const int keys = row->slope != 0.0f ? keys_mode(&row->keys, row->q_pos, row->nk) : KEYS_NONE;
    const int mask = mask_mode(row);
    if (row->softcap > 0.0f || keys == KEYS_IOTA_WIDE) {
        softmax_row_generic(row, keys, mask);
        return;
    }
    switch (keys * 4 + mask) {
    case KEYS_NONE * 4 + MASK_NONE: softmax_row_KEYS_NONE_MASK_NONE(row); return;
    case KEYS_NONE * 4 + MASK_F32: softmax_row_KEYS_NONE_MASK_F32(row); return;
    case KEYS_NONE * 4 + MASK_F16: softmax_row_KEYS_NONE_MASK_F16(row); return;
    case KEYS_IOTA * 4 + MASK_NONE: softmax_row_KEYS_IOTA_MASK_NONE(row); return;
    case KEYS_IOTA * 4 + MASK_F32: softmax_row_KEYS_IOTA_MASK_F32(row); return;
    case KEYS_IOTA * 4 + MASK_F16: softmax_row_KEYS_IOTA_MASK_F16(row); return;
    case KEYS_CONTIGUOUS * 4 + MASK_NONE: softmax_row_KEYS_CONTIGUOUS_MASK_NONE(row); return;
    case KEYS_CONTIGUOUS * 4 + MASK_F32: softmax_row_KEYS_CONTIGUOUS_MASK_F32(row); return;
    case KEYS_CONTIGUOUS * 4 + MASK_F16: softmax_row_KEYS_CONTIGUOUS_MASK_F16(row); return;
    case KEYS_STRIDED * 4 + MASK_NONE: softmax_row_KEYS_STRIDED_MASK_NONE(row); return;
    case KEYS_STRIDED * 4 + MASK_F32: softmax_row_KEYS_STRIDED_MASK_F32(row); return;
    default: softmax_row_KEYS_STRIDED_MASK_F16(row); return;
    }
}
