/*
 * Roofline: how fast one core reads a buffer with AVX-512, compiled with AVX-512 flags only here; called only when
 * posattn_isa_supported(POSATTN_ISA_AVX512). A read-only stream: the 32-bit words are summed as integers (one vpaddd
 * per 64 bytes, four accumulators so the adds never wait on each other), nothing is written, and the sum is
 * returned so the loads cannot be dropped. Integer adds make the cost independent of the element type (f16 or
 * f32) and of the values (no NaN, no subnormal), so this is the bytes' own cost. The buffer is 64-byte aligned.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

uint32_t pab_read_sum_avx512(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512(), a2 = _mm512_setzero_si512(),
            a3 = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a0 = _mm512_add_epi32(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_add_epi32(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_add_epi32(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_add_epi32(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
    /* Not _mm512_reduce_add_epi32: gcc's header reduces in signed int, whose wrap-around is undefined. */
    uint32_t lanes[16], sum = 0;
    _mm512_storeu_si512((void *)lanes, a0);
    for (int k = 0; k < 16; ++k) sum += lanes[k];
    for (; i < bytes; ++i) sum += p[i];
    return sum;
}
