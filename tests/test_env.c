/*
 * The POSATTN_ISA environment variable, read at the first resolution of the active ISA. Each meson test runs this
 * program in a fresh process with one setting (see tests/meson.build):
 *
 *     test_env <expected status> <expected active ISA> [lazy|unset]
 *
 * expected status   ok | isa_unknown | isa_unsupported, or if-supported: OK and the named ISA when this CPU
 *                   supports it, otherwise ISA_UNSUPPORTED and the best supported ISA
 * expected active   an ISA name, or "best" (the best supported ISA by the header's priority list)
 * lazy              a kernel call resolves the ISA before posattn_init is called (no explicit initialisation)
 * unset             POSATTN_ISA is removed from the environment before the first library call: the library must
 *                   not have read it at load time (no global constructors), so the best ISA and OK result
 */
#define _POSIX_C_SOURCE 200112L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static const char *expected_status_arg, *expected_active_arg, *mode_arg = "";

static posattn_isa parse_isa(const char *name) {
    if (strcmp(name, "best") == 0) return best_supported_isa();
    static const char *const names[] = {"auto", "scalar", "avx2", "avx512", "neon"};
    for (int k = 0; k < POSATTN_ISA_COUNT; ++k) {
        if (strcmp(name, names[k]) == 0) return (posattn_isa)k;
    }
    ck_abort_msg("test_env: unknown ISA argument \"%s\"", name);
    return POSATTN_ISA_SCALAR;
}

START_TEST(test_environment_isa) {
    posattn_status expected_status = POSATTN_OK;
    posattn_isa expected_active = parse_isa(expected_active_arg);
    if (strcmp(expected_status_arg, "ok") == 0) {
        expected_status = POSATTN_OK;
    } else if (strcmp(expected_status_arg, "isa_unknown") == 0) {
        expected_status = POSATTN_ERR_ISA_UNKNOWN;
    } else if (strcmp(expected_status_arg, "isa_unsupported") == 0) {
        expected_status = POSATTN_ERR_ISA_UNSUPPORTED;
    } else if (strcmp(expected_status_arg, "if-supported") == 0) {
        int supported = posattn_isa_supported(expected_active);
        expected_status = supported ? POSATTN_OK : POSATTN_ERR_ISA_UNSUPPORTED;
        if (!supported) expected_active = best_supported_isa();
    } else {
        ck_abort_msg("test_env: unknown status argument \"%s\"", expected_status_arg);
    }
    const char *env = getenv("POSATTN_ISA");
    fprintf(stderr, "test_env: POSATTN_ISA=%s, expecting %s and active %s\n", env ? env : "(unset)",
            posattn_status_string(expected_status), posattn_isa_name(expected_active));

    if (strcmp(mode_arg, "lazy") == 0) {
        float slopes[2];
        ck_assert_int_eq(posattn_alibi_slopes(2, 8.0f, slopes), POSATTN_OK); /* resolves the ISA */
        ck_assert_msg(posattn_active_isa() == expected_active, "active %s, expected %s",
                      posattn_isa_name(posattn_active_isa()), posattn_isa_name(expected_active));
    }
    posattn_status st = posattn_init();
    ck_assert_msg(st == expected_status, "posattn_init returned %d (%s), expected %d (%s)", (int)st,
                  posattn_status_string(st), (int)expected_status, posattn_status_string(expected_status));
    ck_assert_msg(posattn_active_isa() == expected_active, "active %s, expected %s",
                  posattn_isa_name(posattn_active_isa()), posattn_isa_name(expected_active));
    ck_assert_int_ne(posattn_active_isa(), POSATTN_ISA_AUTO);
    /* A second init reports the same and changes nothing. */
    ck_assert_int_eq(posattn_init(), expected_status);
    ck_assert_int_eq(posattn_active_isa(), expected_active);
}
END_TEST

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <ok|isa_unknown|isa_unsupported|if-supported> <isa|best> [lazy|unset]\n", argv[0]);
        return 2;
    }
    expected_status_arg = argv[1];
    expected_active_arg = argv[2];
    if (argc > 3) mode_arg = argv[3];
    /* Before any library call, so that the first resolution sees no POSATTN_ISA. */
    if (strcmp(mode_arg, "unset") == 0) unsetenv("POSATTN_ISA");
    Suite *s = suite_create("environment");
    TCase *tc = make_tcase("environment");
    tcase_add_test(tc, test_environment_isa);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
