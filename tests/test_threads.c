/*
 * Concurrency: many threads make their first posattn call at the same moment (the lazy, atomic ISA resolution),
 * each on a disjoint row range of the same output; the result must equal a single-threaded call bit for bit.
 * Run in a fresh process (its own executable) so the first calls really race, and under ThreadSanitizer in CI.
 * Plain C and pthreads, no Check: a data race or a mismatch fails the process.
 */
/* pthread barriers are POSIX 2001, hidden by strict C11. */
#define _POSIX_C_SOURCE 200112L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posattn.h"

enum { THREADS = 8, HEADS = 4, NQ = 24, NK = 301 };

typedef struct job {
    pthread_barrier_t *start;
    const float *scores, *slopes;
    float *probs;
    int64_t row_begin, row_end;
    posattn_status status;
    posattn_isa isa_seen;
} job;

static void *run_rows(void *arg) {
    job *j = arg;
    pthread_barrier_wait(j->start);
    posattn_softmax_options opt = {0};
    opt.flags = POSATTN_CAUSAL;
    j->status = posattn_alibi_softmax(HEADS, NQ, NK, j->scores, 0, 0, j->probs, 0, 0, 0.125f, j->slopes, NULL, &opt,
                                      j->row_begin, j->row_end);
    j->isa_seen = posattn_active_isa();
    return NULL;
}

int main(void) {
    const size_t n = (size_t)HEADS * NQ * NK;
    float *scores = malloc(n * sizeof(float)), *parallel = malloc(n * sizeof(float)),
          *serial = malloc(n * sizeof(float));
    float slopes[HEADS] = {0.5f, 0.25f, 0.125f, 0.0f};
    if (!scores || !parallel || !serial) return 2;
    uint32_t state = 12345u;
    for (size_t m = 0; m < n; ++m) {
        state = state * 1664525u + 1013904223u;
        scores[m] = (float)(state >> 8) / (float)(1u << 24) * 40.0f - 20.0f;
    }
    memset(parallel, 0xff, n * sizeof(float));

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t threads[THREADS];
    job jobs[THREADS];
    const int64_t rows = HEADS * NQ;
    for (int t = 0; t < THREADS; ++t) {
        jobs[t] = (job){&start, scores, slopes, parallel, rows * t / THREADS, rows * (t + 1) / THREADS, -1, 0};
        if (pthread_create(&threads[t], NULL, run_rows, &jobs[t])) return 2;
    }
    for (int t = 0; t < THREADS; ++t) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start);

    int failures = 0;
    posattn_isa isa = posattn_active_isa();
    for (int t = 0; t < THREADS; ++t) {
        if (jobs[t].status != POSATTN_OK || jobs[t].isa_seen != isa) {
            fprintf(stderr, "thread %d: status %s, isa %s (expected %s)\n", t, posattn_status_string(jobs[t].status),
                    posattn_isa_name(jobs[t].isa_seen), posattn_isa_name(isa));
            ++failures;
        }
    }
    posattn_softmax_options opt = {0};
    opt.flags = POSATTN_CAUSAL;
    if (posattn_alibi_softmax(HEADS, NQ, NK, scores, 0, 0, serial, 0, 0, 0.125f, slopes, NULL, &opt, 0, rows) !=
        POSATTN_OK) {
        ++failures;
    }
    if (memcmp(parallel, serial, n * sizeof(float)) != 0) {
        fprintf(stderr, "threaded rows differ from the single-threaded call\n");
        ++failures;
    }
    printf("%d threads, first calls racing, isa %s: %s\n", THREADS, posattn_isa_name(isa), failures ? "FAIL" : "ok");
    free(scores), free(parallel), free(serial);
    return failures ? 1 : 0;
}
