/*
 * Roofline: the FMA peak of one core with AVX-512, compiled with AVX-512 flags only here; called only when
 * posattn_isa_supported(POSATTN_ISA_AVX512). 16 independent chains of vfmadd in zmm registers (named variables,
 * so none lives in memory; enough to cover a 4-cycle latency on two FMA ports), nothing loaded or stored inside the
 * loop. Each FMA counts 2 flops per lane.
 */
#include <immintrin.h>
#include <stdint.h>

double pab_fma_chains_avx512(int64_t iters, float *sink) {
    const __m512 mul = _mm512_set1_ps(0.999999f), addend = _mm512_set1_ps(1e-3f);
    __m512 a0 = _mm512_set1_ps(0.0f);
    __m512 a1 = _mm512_set1_ps(1.0f);
    __m512 a2 = _mm512_set1_ps(2.0f);
    __m512 a3 = _mm512_set1_ps(3.0f);
    __m512 a4 = _mm512_set1_ps(4.0f);
    __m512 a5 = _mm512_set1_ps(5.0f);
    __m512 a6 = _mm512_set1_ps(6.0f);
    __m512 a7 = _mm512_set1_ps(7.0f);
    __m512 a8 = _mm512_set1_ps(8.0f);
    __m512 a9 = _mm512_set1_ps(9.0f);
    __m512 a10 = _mm512_set1_ps(10.0f);
    __m512 a11 = _mm512_set1_ps(11.0f);
    __m512 a12 = _mm512_set1_ps(12.0f);
    __m512 a13 = _mm512_set1_ps(13.0f);
    __m512 a14 = _mm512_set1_ps(14.0f);
    __m512 a15 = _mm512_set1_ps(15.0f);
    for (int64_t it = 0; it < iters; ++it) {
        a0 = _mm512_fmadd_ps(a0, mul, addend);
        a1 = _mm512_fmadd_ps(a1, mul, addend);
        a2 = _mm512_fmadd_ps(a2, mul, addend);
        a3 = _mm512_fmadd_ps(a3, mul, addend);
        a4 = _mm512_fmadd_ps(a4, mul, addend);
        a5 = _mm512_fmadd_ps(a5, mul, addend);
        a6 = _mm512_fmadd_ps(a6, mul, addend);
        a7 = _mm512_fmadd_ps(a7, mul, addend);
        a8 = _mm512_fmadd_ps(a8, mul, addend);
        a9 = _mm512_fmadd_ps(a9, mul, addend);
        a10 = _mm512_fmadd_ps(a10, mul, addend);
        a11 = _mm512_fmadd_ps(a11, mul, addend);
        a12 = _mm512_fmadd_ps(a12, mul, addend);
        a13 = _mm512_fmadd_ps(a13, mul, addend);
        a14 = _mm512_fmadd_ps(a14, mul, addend);
        a15 = _mm512_fmadd_ps(a15, mul, addend);
    }
    a0 = _mm512_add_ps(a0, a1);
    a0 = _mm512_add_ps(a0, a2);
    a0 = _mm512_add_ps(a0, a3);
    a0 = _mm512_add_ps(a0, a4);
    a0 = _mm512_add_ps(a0, a5);
    a0 = _mm512_add_ps(a0, a6);
    a0 = _mm512_add_ps(a0, a7);
    a0 = _mm512_add_ps(a0, a8);
    a0 = _mm512_add_ps(a0, a9);
    a0 = _mm512_add_ps(a0, a10);
    a0 = _mm512_add_ps(a0, a11);
    a0 = _mm512_add_ps(a0, a12);
    a0 = _mm512_add_ps(a0, a13);
    a0 = _mm512_add_ps(a0, a14);
    a0 = _mm512_add_ps(a0, a15);
    *sink = _mm512_reduce_add_ps(a0);
    return (double)iters * 16.0 * 16.0 * 2.0;
}
