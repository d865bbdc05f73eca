/*
 * Scratch for the LieRE entry points in tests: LIERE_SCRATCH(block) expands to the two scratch arguments
 * (pointer, floats) of a buffer of exactly posattn_liere_scratch_size(block) floats, filled with NaN, so that
 * AddressSanitizer sees any access past it and a kernel that read scratch it had not written would show NaN.
 * One buffer at a time: each use frees the previous one (the tests are single-threaded). A block outside 2..64
 * gets (NULL, 0).
 */
#ifndef POSATTN_TESTS_LIERE_SCRATCH_H
#define POSATTN_TESTS_LIERE_SCRATCH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "posattn.h"

static float *liere_scratch_buffer;

/* 0 for a block outside 2..64 (the call under test must then refuse the block before looking at the scratch). */
static inline int64_t liere_scratch_floats(int64_t block) {
    int64_t floats = 0;
    if (posattn_liere_scratch_size(block, &floats) != POSATTN_OK) return 0;
    return floats;
}

/* NULL for a block outside 2..64. */
static inline float *liere_scratch(int64_t block) {
    const int64_t floats = liere_scratch_floats(block);
    free(liere_scratch_buffer);
    liere_scratch_buffer = NULL;
    if (!floats) return NULL;
    liere_scratch_buffer = malloc((size_t)floats * sizeof(float));
    if (!liere_scratch_buffer) abort();
    for (int64_t i = 0; i < floats; ++i) liere_scratch_buffer[i] = NAN;
    return liere_scratch_buffer;
}

#define LIERE_SCRATCH(block) liere_scratch(block), liere_scratch_floats(block)

#endif /* POSATTN_TESTS_LIERE_SCRATCH_H */
