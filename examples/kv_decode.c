/*
 * One decode step of fused attention over a KV cache of irregularly sampled observations, split over two threads.
 *
 * 8 query heads share 2 KV heads (GQA); the cache holds 1000 past observations whose time stamps are uneven (in
 * seconds), in llama.cpp's layout (token-major [nk][Hkv][d], float16). The ALiBi bias -m_h |t_query - t_key| is
 * computed inside the attention kernel from the time stamps. Each thread runs posattn_attention_partial over half
 * of the keys into its own partials buffer; posattn_attention_merge then combines them, in a fixed order, into the
 * outputs. The result is checked against one unsplit posattn_attention call.
 */
#include <math.h>
#include <posattn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { heads = 8, kv_heads = 2, nk = 1000, dim = 64 };

typedef struct range_job {
    const posattn_attention_tensors *t;
    const float *slopes;
    const posattn_positions *times;
    int64_t key_begin, key_end;
    double *partials;
    posattn_status status;
} range_job;

static void *run_range(void *arg) {
    range_job *job = arg;
    job->status = posattn_attention_partial(job->t, 0.125f, job->slopes, job->times, NULL, job->key_begin,
                                            job->key_end, job->partials, 0, heads /* every row: nq = 1 */);
    return NULL;
}

/* float32 to IEEE binary16 (round to nearest even; the values here are normal and small). */
static uint16_t to_f16(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    uint32_t sign = (v.u >> 16) & 0x8000u, exp = (v.u >> 23) & 0xffu, mant = v.u & 0x7fffffu;
    if (exp < 113) return (uint16_t)sign; /* tiny: zero (not reached here) */
    uint32_t h = ((exp - 112) << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return (uint16_t)(sign | h);
}

int main(void) {
    static uint16_t k[nk * kv_heads * dim], v[nk * kv_heads * dim];
    static float key_times[nk];
    float q[heads * dim], query_time[1], out[heads * dim], out_one_call[heads * dim], slopes[heads];
    double t = 0.0;
    for (int j = 0; j < nk; ++j) {
        t += 0.05 + 0.5 * ((j * 37) % 11) / 11.0; /* uneven gaps */
        key_times[j] = (float)t;
        for (int n = 0; n < kv_heads * dim; ++n) {
            k[j * kv_heads * dim + n] = to_f16(sinf(0.01f * (float)(j * 7 + n)));
            v[j * kv_heads * dim + n] = to_f16(cosf(0.02f * (float)(j * 3 + n)));
        }
    }
    query_time[0] = (float)(t + 0.3);
    for (int n = 0; n < heads * dim; ++n) q[n] = sinf(0.3f * (float)n);
    posattn_alibi_slopes(heads, 8.0f, slopes);

    posattn_positions times = {0};
    times.q = query_time; /* [nq] */
    times.k = key_times;  /* [nk] */
    posattn_attention_tensors tensors = {
        .n_heads = heads, .n_kv_heads = kv_heads, .nq = 1, .nk = nk, .dk = dim, .dv = dim,
        .q = q,                                  /* [nq][heads][dim], default strides */
        .k = k, .k_type = POSATTN_KV_F16,        /* [nk][kv_heads][dim]: llama.cpp's cache, default strides */
        .v = v, .v_type = POSATTN_KV_F16,
        .out = out,                              /* [nq][heads][dim] */
    };

    size_t bytes;
    posattn_status st = posattn_attention_partials_size(heads, 1, dim, &bytes);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;
    double *partials[2] = {malloc(bytes), malloc(bytes)};
    if (!partials[0] || !partials[1]) return 1;
    range_job jobs[2] = {{&tensors, slopes, &times, 0, nk / 2, partials[0], POSATTN_OK},
                         {&tensors, slopes, &times, nk / 2, nk, partials[1], POSATTN_OK}};
    pthread_t threads[2];
    for (int n = 0; n < 2; ++n) pthread_create(&threads[n], NULL, run_range, &jobs[n]);
    for (int n = 0; n < 2; ++n) pthread_join(threads[n], NULL);
    for (int n = 0; n < 2; ++n) {
        if (jobs[n].status != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(jobs[n].status)), 1;
    }
    st = posattn_attention_merge(&tensors, NULL, (const double *const *)partials, 2, 0, heads);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;

    tensors.out = out_one_call;
    st = posattn_attention(&tensors, 0.125f, slopes, &times, NULL, 0, heads);
    if (st != POSATTN_OK) return fprintf(stderr, "%s\n", posattn_status_string(st)), 1;

    printf("ISA %s (attention kernel: %s)\n", posattn_isa_name(posattn_active_isa()),
           posattn_isa_name(posattn_op_isa(POSATTN_OP_ATTENTION, POSATTN_ISA_AUTO)));
    double worst = 0.0;
    for (int n = 0; n < heads * dim; ++n) {
        const double difference = fabs((double)out[n] - (double)out_one_call[n]);
        if (difference > worst) worst = difference; /* not fmax: gcc 12's aarch64 vectoriser crashes on it here */
    }
    for (int h = 0; h < heads; ++h) printf("head %d: out[0..3] = %+.5f %+.5f %+.5f %+.5f\n", h, out[h * dim],
                                           out[h * dim + 1], out[h * dim + 2], out[h * dim + 3]);
    printf("split over 2 threads vs one call: max |difference| %.3g\n", worst);
    free(partials[0]);
    free(partials[1]);
    return worst <= 1e-5 ? 0 : 1;
}
