/*
 * Roofline: how fast one core reads a buffer in plain C, compiled with the baseline flags (what the compiler makes
 * of a loop with no ISA of its own: SSE2 on x86-64, AdvSIMD on AArch64). The same read-only integer sum of 32-bit
 * words as the per-ISA rooflines, for a build or a CPU without them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint32_t pab_read_sum_plain(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    uint32_t sum = 0;
    size_t i = 0;
    for (; i + 4 <= bytes; i += 4) {
        uint32_t w;
        memcpy(&w, p + i, sizeof w); /* no aliasing assumption about the buffer's type; one load once compiled */
        sum += w;
    }
    for (; i < bytes; ++i) sum += p[i];
    return sum;
}
