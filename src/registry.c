/*
 * The registry: one line per (operation, ISA), naming the kernel and the CPU features it needs. The dispatcher
 * walks it per operation from the active ISA down the priority order (src/dispatch.c), so an ISA may implement
 * some operations and leave the others to the next ISA; the tests, fuzz targets and benchmarks reach every line
 * through posattn_isa_list and posattn_op_isa, never through a hand-written list of ISAs.
 *
 * Adding a variant: its source file src/<isa>/<family>.c, its line in the build (meson.build, kernel_sources) and
 * its line here. Adding an ISA also takes its enum value (posattn.h), its name (POSATTN_ISAS in kernels.h), its
 * CPU feature bit, its place in the priority order and its detection (dispatch.c), and its compile flags and probe
 * (meson.build). An ISA is supported where the CPU has the features of one of its lines. Nothing is silent when
 * forgotten: a kernel without its line fails scripts/check-registry.sh, a missing file fails the build, an ISA
 * left out of the priority order fails tests/test_dispatch.c (test_isa_list).
 *
 * A line listed twice is a compile error (meson.build builds this file with -Werror=override-init).
 */
#include "kernels.h"

#define POSATTN_ROW(op, isa, features)                                                                             \
    [POSATTN_OP_ID_##op][POSATTN_ISA_ID_##isa] = {(features), {.op = posattn_##op##_f32_##isa}}

const posattn_registry_row posattn_registry[POSATTN_OP_COUNT][POSATTN_ISA_COUNT] = {
    /* The reference: every operation, portable C, the last resort of every walk. */
    POSATTN_ROW(alibi_slopes, scalar, 0),
    POSATTN_ROW(alibi_bias_row, scalar, 0),
    POSATTN_ROW(alibi_softmax_row, scalar, 0),
    POSATTN_ROW(rope_token, scalar, 0),
    POSATTN_ROW(liere_rot_token, scalar, 0),
    POSATTN_ROW(liere_apply_token, scalar, 0),
    POSATTN_ROW(attention_tile, scalar, 0),
    /* The slopes are one exact float64 exp2 per head, once per model: the scalar kernel serves every ISA. */
#if POSATTN_HAVE_AVX2
    POSATTN_ROW(alibi_bias_row, avx2, POSATTN_CPU_AVX2),
    POSATTN_ROW(alibi_softmax_row, avx2, POSATTN_CPU_AVX2),
    POSATTN_ROW(rope_token, avx2, POSATTN_CPU_AVX2),
    POSATTN_ROW(liere_rot_token, avx2, POSATTN_CPU_AVX2),
    POSATTN_ROW(liere_apply_token, avx2, POSATTN_CPU_AVX2),
    POSATTN_ROW(attention_tile, avx2, POSATTN_CPU_AVX2),
#endif
#if POSATTN_HAVE_AVX512
    POSATTN_ROW(alibi_bias_row, avx512, POSATTN_CPU_AVX512),
    POSATTN_ROW(alibi_softmax_row, avx512, POSATTN_CPU_AVX512),
    POSATTN_ROW(rope_token, avx512, POSATTN_CPU_AVX512),
    POSATTN_ROW(liere_rot_token, avx512, POSATTN_CPU_AVX512),
    POSATTN_ROW(liere_apply_token, avx512, POSATTN_CPU_AVX512),
    POSATTN_ROW(attention_tile, avx512, POSATTN_CPU_AVX512),
#endif
#if POSATTN_HAVE_NEON
    POSATTN_ROW(alibi_bias_row, neon, POSATTN_CPU_NEON),
    POSATTN_ROW(alibi_softmax_row, neon, POSATTN_CPU_NEON),
    POSATTN_ROW(rope_token, neon, POSATTN_CPU_NEON),
    POSATTN_ROW(liere_rot_token, neon, POSATTN_CPU_NEON),
    POSATTN_ROW(liere_apply_token, neon, POSATTN_CPU_NEON),
    POSATTN_ROW(attention_tile, neon, POSATTN_CPU_NEON),
#endif
#if POSATTN_HAVE_SVE
    POSATTN_ROW(alibi_bias_row, sve, POSATTN_CPU_SVE),
    POSATTN_ROW(alibi_softmax_row, sve, POSATTN_CPU_SVE),
    POSATTN_ROW(attention_tile, sve, POSATTN_CPU_SVE),
#endif
};
