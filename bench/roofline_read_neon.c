/*
 * Roofline: how fast one core reads a buffer with AArch64 AdvSIMD. A read-only stream: the 32-bit words are summed
 * as integers (one add per 16 bytes, four accumulators so the adds never wait on each other), nothing is written,
 * and the sum is returned so the loads cannot be dropped. Integer adds make the cost independent of the element
 * type (f16 or f32) and of the values, so this is the bytes' own cost.
 */
#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

uint32_t pab_read_sum_neon(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    uint32x4_t a0 = vdupq_n_u32(0), a1 = vdupq_n_u32(0), a2 = vdupq_n_u32(0), a3 = vdupq_n_u32(0);
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        a0 = vaddq_u32(a0, vld1q_u32((const uint32_t *)(const void *)(p + i)));
        a1 = vaddq_u32(a1, vld1q_u32((const uint32_t *)(const void *)(p + i + 16)));
        a2 = vaddq_u32(a2, vld1q_u32((const uint32_t *)(const void *)(p + i + 32)));
        a3 = vaddq_u32(a3, vld1q_u32((const uint32_t *)(const void *)(p + i + 48)));
    }
    uint32_t sum = vaddvq_u32(vaddq_u32(vaddq_u32(a0, a1), vaddq_u32(a2, a3)));
    for (; i < bytes; ++i) sum += p[i];
    return sum;
}
