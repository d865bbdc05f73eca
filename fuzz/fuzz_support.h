/*
 * Shared helpers of the differential fuzz targets (libFuzzer, clang, AddressSanitizer + UBSan).
 *
 * Each target decodes the fuzzer's bytes into one call of a public entry point: sizes, strides, options,
 * positions and values (NaN, +-inf, subnormals, +-1e30, huge positions, raw bit patterns). Every buffer is allocated
 * at its exact size (malloc of exactly the elements the call may touch), so AddressSanitizer reports any access
 * beyond it. The call then runs on every ISA this CPU supports, each on a fresh copy of the outputs, and:
 *   - every ISA returns the same status (validation does not depend on the ISA);
 *   - on an error, no output byte changed;
 *   - on success, every ISA's result is within the bound documented in include/posattn.h of a float64 oracle of
 *     the same formula from the same float32 inputs (NaN where the header says NaN);
 *   - arguments the generator built to be invalid are refused, and those built valid are accepted.
 * A failure prints what it saw and aborts, which libFuzzer records as a crash with its input.
 */
#ifndef POSATTN_FUZZ_SUPPORT_H
#define POSATTN_FUZZ_SUPPORT_H

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posattn.h"

#define FZ_U 0x1p-24 /* the unit roundoff u */

/* ------------------------------------------------------------------------------------------------------------ */
/* Failing                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

static inline void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static inline void fz_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "posattn fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

#define FZ_CHECK(cond, ...)                                                                                        \
    do {                                                                                                           \
        if (!(cond)) fz_fail(__VA_ARGS__);                                                                         \
    } while (0)

/* ------------------------------------------------------------------------------------------------------------ */
/* Reading the fuzzer's bytes (zeros once they run out, so every input decodes)                                   */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct fz_bytes {
    const uint8_t *p;
    size_t n;
} fz_bytes;

static uint8_t fz_u8(fz_bytes *b) {
    if (!b->n) return 0;
    --b->n;
    return *b->p++;
}

static uint32_t fz_u32(fz_bytes *b) {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= (uint32_t)fz_u8(b) << (8 * k);
    return v;
}

/* An integer in [lo, hi] (hi - lo < 2^32). */
static inline int64_t fz_range(fz_bytes *b, int64_t lo, int64_t hi) {
    uint64_t span = (uint64_t)(hi - lo) + 1;
    uint64_t v = span <= 256 ? fz_u8(b) : fz_u32(b);
    return lo + (int64_t)(v % span);
}

static inline int fz_bool(fz_bytes *b) {
    return fz_u8(b) & 1;
}

/* Values that break arithmetic: specials, extremes, subnormals, huge positions. */
static const float fz_specials[] = {0.0f,       -0.0f,      1.0f,       -1.0f,       NAN,           INFINITY,
                                    -INFINITY,  0x1p-149f,  -0x1p-140f, FLT_MIN,     1e30f,         -1e30f,
                                    FLT_MAX,    -FLT_MAX,   1e7f,       16777217.0f, 1e5f + 0.5f,   -123456.7f,
                                    0.5f,       100.0f,     -100.0f,    1e-30f,      88.0f,         -88.0f};

/* A float: mostly ordinary in [-mag, mag], sometimes special, sometimes raw bits. mode 0: never special. */
static inline float fz_float(fz_bytes *b, float mag, int allow_special) {
    uint8_t kind = fz_u8(b);
    if (allow_special && kind < 24) return fz_specials[kind % (sizeof fz_specials / sizeof fz_specials[0])];
    if (allow_special && kind < 32) {
        uint32_t bits = fz_u32(b);
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    int32_t v = (int32_t)(fz_u32(b) & 0xffffffu) - 0x800000; /* [-2^23, 2^23) */
    return mag * (float)v * 0x1p-23f;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Exact-size buffers                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/* n floats (at least one allocation byte), exactly n * 4 bytes: any read past the end is an ASan report. */
static float *fz_floats(int64_t n) {
    float *p = malloc(n > 0 ? (size_t)n * sizeof(float) : 1);
    if (!p) fz_fail("out of memory (%lld floats)", (long long)n);
    return p;
}

static float *fz_copy(const float *x, int64_t n) {
    float *p = fz_floats(n);
    if (n > 0) memcpy(p, x, (size_t)n * sizeof(float));
    return p;
}

/* Fills n floats with the pattern the target checks for "never written" (a NaN payload no arithmetic makes). */
static inline void fz_fill_untouched(float *x, int64_t n) {
    const uint32_t bits = 0xFFC5A5A5u;
    for (int64_t k = 0; k < n; ++k) memcpy(x + k, &bits, sizeof bits);
}

static inline int fz_same_bits(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The header's "bit-identical on every ISA": the same bits, or NaN on both sides (which NaN is unspecified). */
static inline int fz_same_result(float a, float b) {
    return fz_same_bits(a, b) || (isnan(a) && isnan(b));
}

/* (n-1) * stride + len with overflow checks; -1 when it overflows or exceeds limit. */
static inline int64_t fz_extent(int64_t n, int64_t stride, int64_t len, int64_t limit) {
    int64_t e;
    if (n <= 0 || len < 0) return 0;
    if (__builtin_mul_overflow(n - 1, stride, &e) || __builtin_add_overflow(e, len, &e) || e > limit || e < 0) {
        return -1;
    }
    return e;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Instruction sets                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

/* The ISAs this CPU supports, scalar (the reference) first: the registry's list (posattn_isa_list), reversed. */
static inline int fz_isas(posattn_isa *out) {
    posattn_isa listed[POSATTN_ISA_COUNT];
    const int listed_n = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    int n = 0;
    for (int k = listed_n - 1; k >= 0; --k) {
        if (posattn_isa_supported(listed[k])) out[n++] = listed[k];
    }
    return n;
}

static inline void fz_force(posattn_isa isa) {
    posattn_status st = posattn_force_isa(isa);
    FZ_CHECK(st == POSATTN_OK && posattn_active_isa() == isa, "cannot force isa %s", posattn_isa_name(isa));
}

/* The unit in the last place of a float32 near |x| (2^-149 below FLT_MIN). */
static inline double fz_ulp(double x) {
    double ax = fabs(x);
    if (ax < FLT_MIN) return 0x1p-149;
    int e;
    frexp(ax, &e);
    return ldexp(1.0, e - 24);
}

#endif /* POSATTN_FUZZ_SUPPORT_H */
