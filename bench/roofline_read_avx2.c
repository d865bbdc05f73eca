/*
 * Roofline: how fast one core reads a buffer with AVX2, compiled with AVX2 flags only here; called only when
 * posattn_isa_supported(POSATTN_ISA_AVX2). A read-only stream: the 32-bit words are summed as integers (one vpaddd
 * per 32 bytes, four accumulators so the adds never wait on each other), nothing is written, and the sum is
 * returned so the loads cannot be dropped. Integer adds make the cost independent of the element type (f16 or
 * f32) and of the values (no NaN, no subnormal), so this is the bytes' own cost. The buffer is 64-byte aligned.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

uint32_t pab_read_sum_avx2(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256(), a2 = _mm256_setzero_si256(),
            a3 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a0 = _mm256_add_epi32(a0, _mm256_load_si256((const __m256i *)(const void *)(p + i)));
        a1 = _mm256_add_epi32(a1, _mm256_load_si256((const __m256i *)(const void *)(p + i + 32)));
        a2 = _mm256_add_epi32(a2, _mm256_load_si256((const __m256i *)(const void *)(p + i + 64)));
        a3 = _mm256_add_epi32(a3, _mm256_load_si256((const __m256i *)(const void *)(p + i + 96)));
    }
    a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    uint32_t sum = (uint32_t)_mm_cvtsi128_si32(s);
    for (; i < bytes; ++i) sum += p[i];
    return sum;
}
