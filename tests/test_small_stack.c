/*
 * The stack bound at run time: LieRE with b = 64 (the largest working set: rotations by scaling and squaring, then
 * the backward apply) on a thread whose stack is 64 KiB (or the system's minimum when larger: 128 KiB on aarch64
 * glibc, which allows 64 KiB pages), on every ISA this CPU supports. The library promises at
 * most 16 KiB per call (checked statically by scripts/stack-usage.sh); the version that kept its matrices on the
 * stack needed about 115 KiB and dies here with a segmentation fault. Results must equal the same calls made on
 * the main thread, bit for bit. Plain C and pthreads, no Check (a crash is the failure this test looks for).
 */
/* pthread_attr_setstacksize is POSIX 2001, hidden by strict C11. */
#define _POSIX_C_SOURCE 200112L

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posattn.h"

/* 64 KiB: four times the promised bound, half of musl's default thread stack, and room for sanitizer frames. */
enum { STACK_BYTES = 64 * 1024, B = 64, D = 128, N_TOK = 3, AXES = 2, HEADS = 2, TRI = B * (B - 1) / 2 };

typedef struct run {
    const float *pos, *gens, *x_in;
    float *rot, *x, *scratch;
    int64_t scratch_floats;
    posattn_status status;
} run;

static void *liere_calls(void *arg) {
    run *r = arg;
    r->status = posattn_liere_rotations(N_TOK, AXES, r->pos, 0, 1, B, D, r->gens, r->rot, 0, r->scratch,
                                        r->scratch_floats, NULL, 0, N_TOK);
    if (r->status != POSATTN_OK) return NULL;
    memcpy(r->x, r->x_in, sizeof(float) * N_TOK * HEADS * D);
    posattn_liere_options back = {0};
    back.flags = POSATTN_LIERE_BACKWARD;
    r->status = posattn_liere_apply(N_TOK, D, 0, D, B, r->x, HEADS, 0, 0, NULL, 0, 0, 0, r->rot, 0, 1, r->scratch,
                                    r->scratch_floats, &back, 0, N_TOK);
    return NULL;
}

static run run_new(const float *pos, const float *gens, const float *x_in, int64_t scratch_floats) {
    run r = {pos, gens, x_in, malloc(sizeof(float) * N_TOK * B * D), malloc(sizeof(float) * N_TOK * HEADS * D),
             malloc(sizeof(float) * (size_t)scratch_floats), scratch_floats, POSATTN_ERR_NULL};
    if (!r.rot || !r.x || !r.scratch) exit(2);
    return r;
}

static void run_free(run *r) {
    free(r->rot), free(r->x), free(r->scratch);
}

int main(void) {
    static float pos[N_TOK * AXES], gens[AXES * (D / B) * TRI], x_in[N_TOK * HEADS * D];
    uint32_t state = 12345u;
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; ++i) pos[i] = (float)(i * 7 % 11) - 5.0f; /* |S|_1 ~ 10 */
    for (size_t i = 0; i < sizeof gens / sizeof gens[0]; ++i) {
        state = state * 1664525u + 1013904223u;
        gens[i] = (float)(state >> 8) / (float)(1u << 24) * 0.2f - 0.1f;
    }
    for (size_t i = 0; i < sizeof x_in / sizeof x_in[0]; ++i) {
        state = state * 1664525u + 1013904223u;
        x_in[i] = (float)(state >> 8) / (float)(1u << 24) - 0.5f;
    }
    int64_t scratch_floats = 0;
    if (posattn_liere_scratch_size(B, &scratch_floats) != POSATTN_OK) return 2;

    size_t stack_bytes = STACK_BYTES;
#ifdef PTHREAD_STACK_MIN
    if (stack_bytes < (size_t)PTHREAD_STACK_MIN) stack_bytes = (size_t)PTHREAD_STACK_MIN;
#endif
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, stack_bytes)) {
        fprintf(stderr, "cannot make a thread stack of %zu bytes\n", stack_bytes);
        return 2;
    }
    int failures = 0, tested = 0;
    posattn_isa listed[POSATTN_ISA_COUNT];
    const int n_listed = posattn_isa_list(listed, POSATTN_ISA_COUNT);
    for (int k = 0; k < n_listed; ++k) {
        const posattn_isa isa = listed[k];
        if (posattn_force_isa(isa) != POSATTN_OK) continue; /* not supported on this CPU */
        ++tested;
        run here = run_new(pos, gens, x_in, scratch_floats), small = run_new(pos, gens, x_in, scratch_floats);
        liere_calls(&here);
        pthread_t thread;
        if (pthread_create(&thread, &attr, liere_calls, &small) || pthread_join(thread, NULL)) return 2;
        const char *name = posattn_isa_name(isa);
        if (here.status != POSATTN_OK || small.status != POSATTN_OK) {
            fprintf(stderr, "isa %s: status %s on the main thread, %s on the small stack\n", name,
                    posattn_status_string(here.status), posattn_status_string(small.status));
            ++failures;
        } else if (memcmp(here.rot, small.rot, sizeof(float) * N_TOK * B * D) ||
                   memcmp(here.x, small.x, sizeof(float) * N_TOK * HEADS * D)) {
            fprintf(stderr, "isa %s: results on the small stack differ from the main thread's\n", name);
            ++failures;
        }
        run_free(&here), run_free(&small);
    }
    pthread_attr_destroy(&attr);
    printf("small stack (%zu KiB): LieRE b = %d on %d ISAs, %d failures\n", stack_bytes / 1024, B, tested, failures);
    return failures ? 1 : 0;
}
