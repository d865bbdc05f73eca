/*
 * Runtime ISA selection: CPU detection, the priority list, forcing, and the table of the active ISA.
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

#if defined(__x86_64__) || defined(_M_X64)
#define POSATTN_X86 1
#include <cpuid.h>
#endif

static const posattn_kernel_table kernel_tables[POSATTN_ISA_COUNT] = {
    [POSATTN_ISA_SCALAR] = POSATTN_KERNEL_TABLE(scalar),
#if POSATTN_HAVE_AVX2
    [POSATTN_ISA_AVX2] = POSATTN_KERNEL_TABLE(avx2),
#endif
#if POSATTN_HAVE_AVX512
    [POSATTN_ISA_AVX512] = POSATTN_KERNEL_TABLE(avx512),
#endif
#if POSATTN_HAVE_NEON
    [POSATTN_ISA_NEON] = POSATTN_KERNEL_TABLE(neon),
#endif
};

/* Best first; the first one supported wins. */
static const posattn_isa isa_priority[] = {POSATTN_ISA_AVX512, POSATTN_ISA_NEON, POSATTN_ISA_AVX2,
                                           POSATTN_ISA_SCALAR};

static const char *const isa_names[POSATTN_ISA_COUNT] = {"auto", "scalar", "avx2", "avx512", "neon"};

#if POSATTN_X86
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* cpuid, then OSXSAVE before XGETBV (XGETBV faults without it), then the OS-enabled state, then feature bits. */
static int x86_supports(posattn_isa isa) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned fma = 1u << 12, osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((ecx & (fma | osxsave | avx | f16c)) != (fma | osxsave | avx | f16c)) return 0;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6u) != 0x6u) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned avx2 = 1u << 5;
    if (!(ebx & avx2)) return 0;
    if (isa == POSATTN_ISA_AVX2) return 1;
    if (isa != POSATTN_ISA_AVX512) return 0;
    const unsigned f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
    if ((ebx & (f | dq | bw | vl)) != (f | dq | bw | vl)) return 0;
    return (xcr0 & 0xe6u) == 0xe6u; /* opmask, upper ZMM0-15 and ZMM16-31 state */
}
#endif

static int cpu_supports_now(posattn_isa isa) {
    switch (isa) {
    case POSATTN_ISA_SCALAR: return 1;
#if POSATTN_X86
    case POSATTN_ISA_AVX2:
    case POSATTN_ISA_AVX512: return x86_supports(isa);
#endif
#if defined(__aarch64__)
    case POSATTN_ISA_NEON: return 1; /* baseline on AArch64 */
#endif
    default: return 0;
    }
}

/* Bit isa set when this CPU and OS can run it, bit 0 once detection ran: part of the one-time detection, since
 * cpuid traps to the hypervisor in a VM and posattn_force_isa and posattn_isa_supported may be called often.
 * Threads racing the first call compute the same bits, so the race only repeats the work. */
static atomic_int cpu_isa_bits = 0;

static int cpu_supports(posattn_isa isa) {
    int bits = atomic_load_explicit(&cpu_isa_bits, memory_order_relaxed);
    if (bits == 0) {
        bits = 1;
        for (int i = POSATTN_ISA_SCALAR; i < POSATTN_ISA_COUNT; ++i) {
            if (cpu_supports_now((posattn_isa)i)) bits |= 1 << i;
        }
        atomic_store_explicit(&cpu_isa_bits, bits, memory_order_relaxed);
    }
    return (bits >> isa) & 1;
}

int posattn_isa_compiled(posattn_isa isa) {
    return isa > POSATTN_ISA_AUTO && isa < POSATTN_ISA_COUNT && kernel_tables[isa].alibi_slopes != NULL;
}

int posattn_isa_supported(posattn_isa isa) {
    if (isa == POSATTN_ISA_AUTO) return 1;
    return posattn_isa_compiled(isa) && cpu_supports(isa);
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

const posattn_kernel_table *posattn_active_kernels(void) {
    return &kernel_tables[posattn_active_isa()];
}
