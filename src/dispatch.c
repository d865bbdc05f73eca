/*
 * Runtime ISA selection: CPU detection, the priority list, forcing, and the walk of the registry (src/registry.c)
 * that finds the kernel serving each operation under the active ISA.
 *
 * Compiled with baseline flags only. The active ISA lives in one atomic int, resolved on first use: resolution is
 * a pure function of the CPU and the environment, so threads racing on it compute the same value and the last
 * store wins harmlessly. No global constructor runs at load time.
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

/* Runtime detection (the default): cpuid and XGETBV on x86-64, through GCC/Clang's <cpuid.h> or MSVC's
 * intrinsics; getauxval on aarch64 Linux. Compile-time selection (POSATTN_DISPATCH_COMPILE_TIME, meson
 * -Ddispatch=compile-time): the build compiled only the ISA its own flags guarantee, so nothing is detected. */
#if !POSATTN_DISPATCH_COMPILE_TIME && (defined(__x86_64__) || defined(_M_X64))
#define POSATTN_X86 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

/* Best first; the first one supported wins, and an operation an ISA lacks goes to the next one that has it. */
static const posattn_isa isa_priority[] = {POSATTN_ISA_AVX512, POSATTN_ISA_AVX2, POSATTN_ISA_SVE, POSATTN_ISA_NEON,
                                           POSATTN_ISA_SCALAR};
#define ISA_PRIORITY_COUNT ((int)(sizeof isa_priority / sizeof isa_priority[0]))

#define POSATTN_ISA_NAME(id, isa) [id] = #isa,
static const char *const isa_names[POSATTN_ISA_COUNT] = {[POSATTN_ISA_AUTO] = "auto", POSATTN_ISAS(POSATTN_ISA_NAME)};
#undef POSATTN_ISA_NAME

/* The public names of the operations (the kernels' names end in _row or _token). */
static const char *const op_names[POSATTN_OP_COUNT] = {
    [POSATTN_OP_ALIBI_SLOPES] = "alibi_slopes", [POSATTN_OP_ALIBI_BIAS] = "alibi_bias",
    [POSATTN_OP_ALIBI_SOFTMAX] = "alibi_softmax", [POSATTN_OP_ROPE] = "rope",
    [POSATTN_OP_LIERE_ROTATIONS] = "liere_rotations", [POSATTN_OP_LIERE_APPLY] = "liere_apply",
    [POSATTN_OP_ATTENTION] = "attention",
};

#if POSATTN_X86
/* cpuid leaf `leaf`, subleaf `sub`, into r = {eax, ebx, ecx, edx}; 0 when the CPU has no such leaf. */
static int cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#if defined(_MSC_VER) && !defined(__clang__)
    int max[4], out[4];
    __cpuid(max, (int)(leaf & 0x80000000u));
    if ((unsigned)max[0] < leaf) return 0;
    __cpuidex(out, (int)leaf, (int)sub);
    for (int i = 0; i < 4; ++i) r[i] = (unsigned)out[i];
    return 1;
#else
    return __get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]);
#endif
}

/* XCR0: the register state the OS saves. Only called once cpuid said OSXSAVE (XGETBV faults without it). */
static uint64_t read_xcr0(void) {
#if defined(_MSC_VER) && !defined(__clang__)
    return (uint64_t)_xgetbv(0);
#else
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
#endif
}

/* cpuid, then OSXSAVE before XGETBV (XGETBV faults without it), then the OS-enabled state, then feature bits. */
static int x86_supports(posattn_isa isa) {
    unsigned r[4];
    if (!cpuid(1, 0, r)) return 0;
    const unsigned ecx = r[2], fma = 1u << 12, osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((ecx & (fma | osxsave | avx | f16c)) != (fma | osxsave | avx | f16c)) return 0;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6u) != 0x6u) return 0; /* XMM and YMM state */
    if (!cpuid(7, 0, r)) return 0;
    const unsigned ebx = r[1], avx2 = 1u << 5;
    if (!(ebx & avx2)) return 0;
    if (isa == POSATTN_ISA_AVX2) return 1;
    if (isa != POSATTN_ISA_AVX512) return 0;
    const unsigned f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
    if ((ebx & (f | dq | bw | vl)) != (f | dq | bw | vl)) return 0;
    return (xcr0 & 0xe6u) == 0xe6u; /* opmask, upper ZMM0-15 and ZMM16-31 state */
}
#endif

#if !POSATTN_DISPATCH_COMPILE_TIME && defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_SVE
#define HWCAP_SVE (1UL << 22) /* the kernel's uapi value, for C libraries whose headers predate SVE */
#endif
#endif

#if POSATTN_DISPATCH_COMPILE_TIME
/* The build flags guarantee every compiled ISA (meson.build and CMakeLists.txt compiled only those). */
static unsigned detect_cpu_features(void) {
    unsigned features = 0;
#if POSATTN_HAVE_AVX2
    features |= POSATTN_CPU_AVX2;
#endif
#if POSATTN_HAVE_AVX512
    features |= POSATTN_CPU_AVX512;
#endif
#if POSATTN_HAVE_NEON
    features |= POSATTN_CPU_NEON;
#endif
#if POSATTN_HAVE_SVE
    features |= POSATTN_CPU_SVE;
#endif
    return features;
}
#else
static unsigned detect_cpu_features(void) {
    unsigned features = 0;
#if POSATTN_X86
    if (x86_supports(POSATTN_ISA_AVX2)) features |= POSATTN_CPU_AVX2;
    if (x86_supports(POSATTN_ISA_AVX512)) features |= POSATTN_CPU_AVX512;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    features |= POSATTN_CPU_NEON; /* baseline on AArch64 */
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_SVE) features |= POSATTN_CPU_SVE;
#endif
#endif
    return features;
}
#endif

/* The POSATTN_CPU_* bits of this CPU and OS, with DETECTED set once detection ran: part of the one-time detection,
 * since cpuid traps to the hypervisor in a VM and posattn_force_isa and posattn_isa_supported may be called often.
 * Threads racing the first call compute the same bits, so the race only repeats the work. */
#define DETECTED (1u << 31)
static atomic_uint cpu_feature_bits = 0;

static unsigned cpu_features(void) {
    unsigned bits = atomic_load_explicit(&cpu_feature_bits, memory_order_relaxed);
    if (bits == 0) {
        bits = detect_cpu_features() | DETECTED;
        atomic_store_explicit(&cpu_feature_bits, bits, memory_order_relaxed);
    }
    return bits;
}

static int row_runs_here(const posattn_registry_row *row, unsigned cpu) {
    return row->kernel.any != NULL && (row->cpu_features & cpu) == row->cpu_features;
}

/* The ISA whose line serves op when isa is active: isa's own, else the next in priority order that runs here. */
static posattn_isa serving_isa(posattn_op op, posattn_isa isa) {
    const unsigned cpu = cpu_features();
    int k = 0;
    while (k < ISA_PRIORITY_COUNT && isa_priority[k] != isa) ++k;
    for (; k < ISA_PRIORITY_COUNT; ++k) {
        if (row_runs_here(&posattn_registry[op][isa_priority[k]], cpu)) return isa_priority[k];
    }
    return POSATTN_ISA_SCALAR;
}

int posattn_isa_compiled(posattn_isa isa) {
    if (isa <= POSATTN_ISA_AUTO || isa >= POSATTN_ISA_COUNT) return 0;
    for (int op = 0; op < POSATTN_OP_COUNT; ++op) {
        if (posattn_registry[op][isa].kernel.any != NULL) return 1;
    }
    return 0;
}

/* An ISA is supported when this CPU runs one of its kernels: the registry's lines say which features they need. */
int posattn_isa_supported(posattn_isa isa) {
    if (isa == POSATTN_ISA_AUTO) return 1;
    if (isa < POSATTN_ISA_SCALAR || isa >= POSATTN_ISA_COUNT) return 0;
    const unsigned cpu = cpu_features();
    for (int op = 0; op < POSATTN_OP_COUNT; ++op) {
        if (row_runs_here(&posattn_registry[op][isa], cpu)) return 1;
    }
    return 0;
}

int posattn_isa_list(posattn_isa *isas, int capacity) {
    int count = 0;
    for (int k = 0; k < ISA_PRIORITY_COUNT; ++k) {
        if (!posattn_isa_compiled(isa_priority[k])) continue;
        if (count < capacity) isas[count] = isa_priority[k];
        ++count;
    }
    return count;
}

const char *posattn_op_name(posattn_op op) {
    return (op >= 0 && op < POSATTN_OP_COUNT) ? op_names[op] : "unknown";
}

posattn_isa posattn_op_isa(posattn_op op, posattn_isa isa) {
    if (op < 0 || op >= POSATTN_OP_COUNT) return POSATTN_ISA_AUTO;
    if (isa == POSATTN_ISA_AUTO) isa = posattn_active_isa();
    if (!posattn_isa_compiled(isa)) return POSATTN_ISA_AUTO;
    return serving_isa(op, isa);
}

const char *posattn_isa_name(posattn_isa isa) {
    return (isa >= POSATTN_ISA_AUTO && isa < POSATTN_ISA_COUNT) ? isa_names[isa] : "unknown";
}

posattn_status posattn_isa_from_name(const char *name, posattn_isa *isa) {
    if (!name || !isa) return POSATTN_ERR_NULL;
    for (int i = 0; i < POSATTN_ISA_COUNT; ++i) {
        const char *a = name, *b = isa_names[i];
        while (*a && *b && tolower((unsigned char)*a) == *b) ++a, ++b;
        if (*a == '\0' && *b == '\0') {
            *isa = (posattn_isa)i;
            return POSATTN_OK;
        }
    }
    return POSATTN_ERR_ISA_UNKNOWN;
}

static posattn_isa best_supported(void) {
    for (size_t i = 0; i < sizeof isa_priority / sizeof isa_priority[0]; ++i) {
        if (posattn_isa_supported(isa_priority[i])) return isa_priority[i];
    }
    return POSATTN_ISA_SCALAR;
}

static posattn_status validate_forced(posattn_isa isa) {
    if (isa < POSATTN_ISA_AUTO || isa >= POSATTN_ISA_COUNT) return POSATTN_ERR_ISA_UNKNOWN;
    return posattn_isa_supported(isa) ? POSATTN_OK : POSATTN_ERR_ISA_UNSUPPORTED;
}

/* The environment's choice and why it was refused, if it was. */
static posattn_isa isa_from_environment(posattn_status *status) {
    const char *name = getenv("POSATTN_ISA");
    posattn_isa isa = POSATTN_ISA_AUTO;
    *status = POSATTN_OK;
    if (!name || !*name) return POSATTN_ISA_AUTO;
    *status = posattn_isa_from_name(name, &isa);
    if (*status == POSATTN_OK) *status = validate_forced(isa);
    return *status == POSATTN_OK ? isa : POSATTN_ISA_AUTO;
}

/* 0: unresolved; otherwise the active ISA. */
static atomic_int active_isa = 0;

static posattn_isa resolve(posattn_status *env_status) {
    posattn_isa isa = isa_from_environment(env_status);
    return isa == POSATTN_ISA_AUTO ? best_supported() : isa;
}

posattn_isa posattn_active_isa(void) {
    int isa = atomic_load_explicit(&active_isa, memory_order_acquire);
    if (isa == 0) {
        posattn_status ignored;
        int resolved = (int)resolve(&ignored);
        /* Only the first resolution stores: a concurrent posattn_force_isa must not be overwritten. */
        if (atomic_compare_exchange_strong(&active_isa, &isa, resolved)) isa = resolved;
    }
    return (posattn_isa)isa;
}

posattn_status posattn_init(void) {
    posattn_status env_status;
    int resolved = (int)resolve(&env_status);
    int expected = 0;
    atomic_compare_exchange_strong(&active_isa, &expected, resolved);
    return env_status;
}

posattn_status posattn_force_isa(posattn_isa isa) {
    posattn_status status = validate_forced(isa);
    if (status != POSATTN_OK) return status;
    if (isa == POSATTN_ISA_AUTO) isa = best_supported();
    atomic_store_explicit(&active_isa, (int)isa, memory_order_release);
    return POSATTN_OK;
}

posattn_kernel posattn_kernel_for(posattn_op op) {
    return posattn_registry[op][serving_isa(op, posattn_active_isa())].kernel;
}
