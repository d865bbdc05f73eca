/*
 * Roofline: the FMA peak of one core with AVX2+FMA, compiled with those flags only here; called only when
 * posattn_isa_supported(POSATTN_ISA_AVX2). 12 independent chains of vfmadd in ymm registers (named variables,
 * enough to cover a 4-5-cycle latency on two FMA ports), nothing loaded or stored inside the loop. Each FMA counts
 * 2 flops per lane.
 */
#include <immintrin.h>
#include <stdint.h>

double pab_fma_chains_avx2(int64_t iters, float *sink) {
    const __m256 mul = _mm256_set1_ps(0.999999f), addend = _mm256_set1_ps(1e-3f);
    __m256 a0 = _mm256_set1_ps(0.0f);
    __m256 a1 = _mm256_set1_ps(1.0f);
    __m256 a2 = _mm256_set1_ps(2.0f);
    __m256 a3 = _mm256_set1_ps(3.0f);
    __m256 a4 = _mm256_set1_ps(4.0f);
    __m256 a5 = _mm256_set1_ps(5.0f);
    __m256 a6 = _mm256_set1_ps(6.0f);
    __m256 a7 = _mm256_set1_ps(7.0f);
    __m256 a8 = _mm256_set1_ps(8.0f);
    __m256 a9 = _mm256_set1_ps(9.0f);
    __m256 a10 = _mm256_set1_ps(10.0f);
    __m256 a11 = _mm256_set1_ps(11.0f);
    for (int64_t it = 0; it < iters; ++it) {
        a0 = _mm256_fmadd_ps(a0, mul, addend);
        a1 = _mm256_fmadd_ps(a1, mul, addend);
        a2 = _mm256_fmadd_ps(a2, mul, addend);
        a3 = _mm256_fmadd_ps(a3, mul, addend);
        a4 = _mm256_fmadd_ps(a4, mul, addend);
        a5 = _mm256_fmadd_ps(a5, mul, addend);
        a6 = _mm256_fmadd_ps(a6, mul, addend);
        a7 = _mm256_fmadd_ps(a7, mul, addend);
        a8 = _mm256_fmadd_ps(a8, mul, addend);
        a9 = _mm256_fmadd_ps(a9, mul, addend);
        a10 = _mm256_fmadd_ps(a10, mul, addend);
        a11 = _mm256_fmadd_ps(a11, mul, addend);
    }
    a0 = _mm256_add_ps(a0, a1);
    a0 = _mm256_add_ps(a0, a2);
    a0 = _mm256_add_ps(a0, a3);
    a0 = _mm256_add_ps(a0, a4);
    a0 = _mm256_add_ps(a0, a5);
    a0 = _mm256_add_ps(a0, a6);
    a0 = _mm256_add_ps(a0, a7);
    a0 = _mm256_add_ps(a0, a8);
    a0 = _mm256_add_ps(a0, a9);
    a0 = _mm256_add_ps(a0, a10);
    a0 = _mm256_add_ps(a0, a11);
    float lanes[8];
    _mm256_storeu_ps(lanes, a0);
    *sink = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
    return (double)iters * 12.0 * 8.0 * 2.0;
}
