/*
 * Instruction-set selection through the public API: forcing each ISA (and that the forced one is then active),
 * refusing unknown and unsupported ones without changing the active ISA, names, parsing, and (on x86-64) agreement
 * of posattn_isa_supported with the compiler's own CPU detection. The POSATTN_ISA environment variable is tested by
 * test_env.c, one process per setting.
 */
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "support.h"

/* Every ISA this CPU supports can be forced, is then reported active, and stays active across kernel calls;
 * every other known ISA (compiled or not) is refused with ISA_UNSUPPORTED and the active ISA is unchanged. The loop
 * is over the enum on purpose: this test is about every value, compiled or not. */
START_TEST(test_force_each_isa) {
    int tested = 0;
    for (posattn_isa isa = POSATTN_ISA_SCALAR; isa < POSATTN_ISA_COUNT; ++isa) {
        if (posattn_isa_supported(isa)) {
            ck_assert_int_eq(posattn_force_isa(isa), POSATTN_OK);
            ck_assert_int_eq(posattn_active_isa(), isa);
            float slopes[3];
            ck_assert_int_eq(posattn_alibi_slopes(3, 8.0f, slopes), POSATTN_OK);
            ck_assert_int_eq(posattn_active_isa(), isa);
            ck_assert_msg(posattn_isa_compiled(isa), "%s is supported but not compiled", posattn_isa_name(isa));
            ++tested;
        } else {
            ck_assert_int_eq(posattn_force_isa(POSATTN_ISA_SCALAR), POSATTN_OK);
            ck_assert_int_eq(posattn_force_isa(isa), POSATTN_ERR_ISA_UNSUPPORTED);
            ck_assert_int_eq(posattn_active_isa(), POSATTN_ISA_SCALAR);
        }
    }
    ck_assert_int_ge(tested, 1);
    ck_assert(posattn_isa_supported(POSATTN_ISA_SCALAR));
    ck_assert(posattn_isa_compiled(POSATTN_ISA_SCALAR));
}
END_TEST

/* Values outside the enum are ISA_UNKNOWN, and the active ISA is unchanged, from every supported starting point. */
START_TEST(test_force_unknown_value) {
    static const int unknown[] = {99, POSATTN_ISA_COUNT, -1, 1000000};
    FOR_EACH_ISA(from) {
        if (!enter_isa(from)) continue;
        for (size_t k = 0; k < sizeof unknown / sizeof unknown[0]; ++k) {
            ck_assert_int_eq(posattn_force_isa((posattn_isa)unknown[k]), POSATTN_ERR_ISA_UNKNOWN);
            ck_assert_int_eq(posattn_active_isa(), from);
            ck_assert(!posattn_isa_supported((posattn_isa)unknown[k]));
            ck_assert(!posattn_isa_compiled((posattn_isa)unknown[k]));
        }
    }
}
END_TEST

/* A known ISA of the other architecture: NEON and SVE on x86-64, AVX2 and AVX-512 on AArch64. */
START_TEST(test_force_other_architecture) {
#if defined(__x86_64__)
    static const posattn_isa foreign[] = {POSATTN_ISA_NEON, POSATTN_ISA_SVE};
#elif defined(__aarch64__)
    static const posattn_isa foreign[] = {POSATTN_ISA_AVX2, POSATTN_ISA_AVX512};
#else
    static const posattn_isa foreign[] = {POSATTN_ISA_AVX2, POSATTN_ISA_AVX512, POSATTN_ISA_NEON, POSATTN_ISA_SVE};
#endif
    FOR_EACH_ISA(from) {
        if (!enter_isa(from)) continue;
        for (size_t k = 0; k < sizeof foreign / sizeof foreign[0]; ++k) {
            ck_assert(!posattn_isa_supported(foreign[k]));
            ck_assert(!posattn_isa_compiled(foreign[k]));
            ck_assert_int_eq(posattn_force_isa(foreign[k]), POSATTN_ERR_ISA_UNSUPPORTED);
            ck_assert_int_eq(posattn_active_isa(), from);
        }
    }
}
END_TEST

/* AUTO goes back to the best supported ISA, and is never itself reported active. */
START_TEST(test_force_auto) {
    ck_assert(posattn_isa_supported(POSATTN_ISA_AUTO));
    ck_assert_int_eq(posattn_force_isa(POSATTN_ISA_SCALAR), POSATTN_OK);
    ck_assert_int_eq(posattn_force_isa(POSATTN_ISA_AUTO), POSATTN_OK);
    ck_assert_int_eq(posattn_active_isa(), best_supported_isa());
    ck_assert_int_ne(posattn_active_isa(), POSATTN_ISA_AUTO);
}
END_TEST

/* posattn_init after a forced ISA does not undo it (it only resolves what is unresolved); without POSATTN_ISA in
 * the environment it reports OK. */
START_TEST(test_init_keeps_forced_isa) {
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        posattn_status st = posattn_init();
        if (!getenv("POSATTN_ISA")) ck_assert_int_eq(st, POSATTN_OK);
        ck_assert_int_eq(posattn_active_isa(), isa);
    }
}
END_TEST

START_TEST(test_isa_names) {
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_AUTO), "auto");
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_SCALAR), "scalar");
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_AVX2), "avx2");
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_AVX512), "avx512");
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_NEON), "neon");
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_SVE), "sve");
    ck_assert_str_eq(posattn_isa_name((posattn_isa)99), "unknown");
    ck_assert_str_eq(posattn_isa_name((posattn_isa)-1), "unknown");
    ck_assert_str_eq(posattn_isa_name(POSATTN_ISA_COUNT), "unknown");
}
END_TEST

/* Parsing is case-insensitive and exact: every spelling of every name, and near misses refused. */
START_TEST(test_isa_from_name) {
    static const struct {
        const char *name;
        posattn_isa isa;
    } good[] = {
        {"auto", POSATTN_ISA_AUTO},     {"AUTO", POSATTN_ISA_AUTO},       {"scalar", POSATTN_ISA_SCALAR},
        {"SCALAR", POSATTN_ISA_SCALAR}, {"ScAlAr", POSATTN_ISA_SCALAR},   {"avx2", POSATTN_ISA_AVX2},
        {"AVX2", POSATTN_ISA_AVX2},     {"Avx2", POSATTN_ISA_AVX2},       {"avx512", POSATTN_ISA_AVX512},
        {"AVX512", POSATTN_ISA_AVX512}, {"aVx512", POSATTN_ISA_AVX512},   {"neon", POSATTN_ISA_NEON},
        {"NEON", POSATTN_ISA_NEON},     {"Neon", POSATTN_ISA_NEON},       {"sve", POSATTN_ISA_SVE},
        {"SVE", POSATTN_ISA_SVE},       {"sVe", POSATTN_ISA_SVE},
    };
    static const char *const bad[] = {"", "bogus", "avx", "avx51", "avx5120", "avx-512", "scalar ", " scalar",
                                      "neon\n", "unknown", "sse2", "scalarx", "a", "AVX2\t", "auto0", "sve2", "sv"};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; ++k) {
        posattn_isa isa = (posattn_isa)77;
        ck_assert_msg(posattn_isa_from_name(good[k].name, &isa) == POSATTN_OK, "\"%s\" refused", good[k].name);
        ck_assert_msg(isa == good[k].isa, "\"%s\" parsed as %d", good[k].name, (int)isa);
    }
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; ++k) {
        posattn_isa isa = POSATTN_ISA_SCALAR;
        ck_assert_msg(posattn_isa_from_name(bad[k], &isa) == POSATTN_ERR_ISA_UNKNOWN, "\"%s\" accepted", bad[k]);
    }
    posattn_isa isa;
    ck_assert_int_eq(posattn_isa_from_name(NULL, &isa), POSATTN_ERR_NULL);
    ck_assert_int_eq(posattn_isa_from_name("scalar", NULL), POSATTN_ERR_NULL);
    /* Round trip of every name. */
    for (int k = POSATTN_ISA_AUTO; k < POSATTN_ISA_COUNT; ++k) {
        ck_assert_int_eq(posattn_isa_from_name(posattn_isa_name((posattn_isa)k), &isa), POSATTN_OK);
        ck_assert_int_eq(isa, k);
    }
}
END_TEST

/* The registry's list: the compiled ISAs exactly, each once, best first in the documented order, scalar last. */
START_TEST(test_isa_list) {
    posattn_isa listed[POSATTN_ISA_COUNT];
    const int n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    ck_assert_int_ge(n, 1);
    ck_assert_int_lt(n, POSATTN_ISA_COUNT);
    ck_assert_int_eq(posattn_isa_list(NULL, 0), n);
    ck_assert_int_eq(listed[n - 1], POSATTN_ISA_SCALAR);
    posattn_isa first = POSATTN_ISA_AUTO;
    ck_assert_int_eq(posattn_isa_list(&first, 1), n);
    ck_assert_int_eq(first, listed[0]);
    int seen[POSATTN_ISA_COUNT] = {0};
    for (int k = 0; k < n; ++k) {
        ck_assert_msg(posattn_isa_compiled(listed[k]), "%s listed, not compiled", posattn_isa_name(listed[k]));
        ck_assert_msg(!seen[listed[k]], "%s listed twice", posattn_isa_name(listed[k]));
        seen[listed[k]] = 1;
    }
    for (int isa = POSATTN_ISA_SCALAR; isa < POSATTN_ISA_COUNT; ++isa) {
        ck_assert_msg(seen[isa] == posattn_isa_compiled((posattn_isa)isa), "%s: listed %d, compiled %d",
                      posattn_isa_name((posattn_isa)isa), seen[isa], posattn_isa_compiled((posattn_isa)isa));
    }
    /* The header's priority order: AVX-512 > AVX2 > scalar, SVE > NEON > scalar. */
    static const posattn_isa better[][2] = {{POSATTN_ISA_AVX512, POSATTN_ISA_AVX2}, {POSATTN_ISA_SVE, POSATTN_ISA_NEON}};
    for (size_t p = 0; p < sizeof better / sizeof better[0]; ++p) {
        int at_hi = -1, at_lo = -1;
        for (int k = 0; k < n; ++k) {
            if (listed[k] == better[p][0]) at_hi = k;
            if (listed[k] == better[p][1]) at_lo = k;
        }
        if (at_hi >= 0 && at_lo >= 0) ck_assert_int_lt(at_hi, at_lo);
    }
    ck_assert_int_eq(best_supported_isa(), posattn_force_isa(POSATTN_ISA_AUTO) == POSATTN_OK ? posattn_active_isa()
                                                                                               : POSATTN_ISA_AUTO);
}
END_TEST

/* Every operation, under every compiled ISA, is served by that ISA or by one after it in the list, and the scalar
 * reference serves every operation itself. A compiled ISA implements at least one operation. Forcing an ISA makes
 * posattn_op_isa(op, AUTO) answer as posattn_op_isa(op, isa). Names of the operations. */
START_TEST(test_op_isa) {
    posattn_isa listed[POSATTN_ISA_COUNT];
    const int n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    for (int k = 0; k < n; ++k) {
        int own = 0;
        for (int op = 0; op < POSATTN_OP_COUNT; ++op) {
            posattn_isa serving = posattn_op_isa((posattn_op)op, listed[k]);
            int at = -1;
            for (int m = k; m < n; ++m) {
                if (listed[m] == serving) at = m;
            }
            ck_assert_msg(at >= k, "%s under %s is served by %s, not %s or a later ISA", posattn_op_name(op),
                          posattn_isa_name(listed[k]), posattn_isa_name(serving), posattn_isa_name(listed[k]));
            own += serving == listed[k];
            if (listed[k] == POSATTN_ISA_SCALAR) ck_assert_int_eq(serving, POSATTN_ISA_SCALAR);
            if (posattn_isa_supported(listed[k])) {
                ck_assert_int_eq(posattn_force_isa(listed[k]), POSATTN_OK);
                ck_assert_int_eq(posattn_op_isa((posattn_op)op, POSATTN_ISA_AUTO), serving);
                ck_assert_msg(posattn_isa_supported(serving), "%s served by unsupported %s", posattn_op_name(op),
                              posattn_isa_name(serving));
            }
        }
        /* On a CPU without the ISA, its operations are served by the ISAs this CPU runs (baseline builds meet
         * that: scripts/baseline-check.sh runs this test on a CPU without AVX). */
        if (posattn_isa_supported(listed[k])) {
            ck_assert_msg(own >= 1, "%s is compiled but implements no operation", posattn_isa_name(listed[k]));
        }
    }
    ck_assert_int_eq(posattn_op_isa(POSATTN_OP_COUNT, POSATTN_ISA_SCALAR), POSATTN_ISA_AUTO);
    ck_assert_int_eq(posattn_op_isa((posattn_op)-1, POSATTN_ISA_SCALAR), POSATTN_ISA_AUTO);
    ck_assert_int_eq(posattn_op_isa(POSATTN_OP_ROPE, POSATTN_ISA_COUNT), POSATTN_ISA_AUTO);
    for (int isa = POSATTN_ISA_SCALAR; isa < POSATTN_ISA_COUNT; ++isa) {
        if (!posattn_isa_compiled((posattn_isa)isa)) {
            ck_assert_int_eq(posattn_op_isa(POSATTN_OP_ALIBI_SOFTMAX, (posattn_isa)isa), POSATTN_ISA_AUTO);
        }
    }
    static const char *const names[POSATTN_OP_COUNT] = {"alibi_slopes", "alibi_bias", "alibi_softmax", "rope",
                                                        "liere_rotations", "liere_apply", "attention"};
    for (int op = 0; op < POSATTN_OP_COUNT; ++op) ck_assert_str_eq(posattn_op_name((posattn_op)op), names[op]);
    ck_assert_str_eq(posattn_op_name(POSATTN_OP_COUNT), "unknown");
    ck_assert_str_eq(posattn_op_name((posattn_op)-1), "unknown");
}
END_TEST

#if defined(__x86_64__)
/* posattn_isa_supported agrees with the compiler's CPU detection (which also checks that the OS saves the YMM and
 * ZMM state): AVX2 needs AVX2 + FMA + F16C; AVX-512 needs those and F + BW + DQ + VL. */
START_TEST(test_x86_detection_matches_cpu) {
    unsigned eax, ebx, ecx, edx;
    __builtin_cpu_init();
    int f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    ck_assert_int_eq(posattn_isa_supported(POSATTN_ISA_AVX2), posattn_isa_compiled(POSATTN_ISA_AVX2) && avx2);
    ck_assert_int_eq(posattn_isa_supported(POSATTN_ISA_AVX512), posattn_isa_compiled(POSATTN_ISA_AVX512) && avx512);
}
END_TEST
#endif

#if defined(__aarch64__)
/* NEON is baseline on AArch64: supported whenever compiled in. */
START_TEST(test_neon_is_baseline) {
    ck_assert_int_eq(posattn_isa_supported(POSATTN_ISA_NEON), posattn_isa_compiled(POSATTN_ISA_NEON));
}
END_TEST
#endif

static Suite *dispatch_suite(void) {
    Suite *s = suite_create("dispatch");
    TCase *tc = make_tcase("dispatch");
    tcase_add_test(tc, test_force_each_isa);
    tcase_add_test(tc, test_force_unknown_value);
    tcase_add_test(tc, test_force_other_architecture);
    tcase_add_test(tc, test_force_auto);
    tcase_add_test(tc, test_init_keeps_forced_isa);
    tcase_add_test(tc, test_isa_names);
    tcase_add_test(tc, test_isa_from_name);
    tcase_add_test(tc, test_isa_list);
    tcase_add_test(tc, test_op_isa);
#if defined(__x86_64__)
    tcase_add_test(tc, test_x86_detection_matches_cpu);
#endif
#if defined(__aarch64__)
    tcase_add_test(tc, test_neon_is_baseline);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(dispatch_suite());
}
