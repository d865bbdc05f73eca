/*
 * Bad input to the LieRE entry points (SPEC 5, header "Errors") and to posattn_alibi_split_heads: every invalid
 * argument gets its documented status and leaves every output untouched.
 *
 * As in test_errors.c, posattn_liere_apply and posattn_liere_rotations work inside one exact-size arena that holds
 * all the buffers of a small valid call (3 tokens; q with 2 heads and k with 1 head of 8 dims, dims 2..5 rotated
 * in blocks of 2; 2 position axes). The arena is filled with a pattern, each case changes one argument of the valid
 * baseline and expects one status, and the arena must be byte-for-byte unchanged afterwards: neither q, k nor rot
 * was written. The scratch (needed backward and for blocks >= 4) is an exact-size buffer of its own, which a
 * refused call must leave untouched too. Valid neighbours of the refused values must still succeed.
 * posattn_liere_rotation_size, posattn_liere_scratch_size and posattn_alibi_split_heads have small tables of their
 * own (as the slopes in test_errors.c). Everything runs under every ISA.
 *
 * Rows marked "Regression" expect what include/posattn.h documents where the library once did something else.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

enum {
    ARENA_FLOATS = 320,
    /* Offsets (in floats) of the baseline's buffers inside the arena, with room for the larger valid neighbours. */
    AT_Q = 0,         /* 48 = 3 tokens * 2 heads * 8 dims */
    AT_K = 64,        /* 24 = 3 tokens * 1 head * 8 dims (48 with 2 heads) */
    AT_ROT = 128,     /* 24 = 3 tokens * (1 set * block 2 * 4 dims) (48 with 2 sets or block 4) */
    AT_POS = 192,     /* 6 = 3 tokens * 2 axes */
    AT_GENS = 208,    /* 4 = 1 set * 2 axes * 2 blocks * 1 entry (up to 12) */
    AT_OUT_ROT = 224, /* posattn_liere_rotations' output, 24 (up to 48) */
    AT_END = 272
};

/* The scratch of both functions does not fit an arena: its own exact-size allocation (AddressSanitizer sees an
 * access past it), filled with the untouched pattern before each call and checked after each refused one. Its
 * size is posattn_liere_scratch_size for every block below (2, 4, 8), which test_scratch_size_errors checks. */
enum { SCRATCH_FLOATS = 4096 };
static float *scratch_buf;

static void scratch_open(void) {
    scratch_buf = malloc(SCRATCH_FLOATS * sizeof(float));
    ck_assert_ptr_nonnull(scratch_buf);
}

static void scratch_close(void) {
    free(scratch_buf);
    scratch_buf = NULL;
}

static void scratch_expect_untouched(posattn_status expected, const char *fn, const char *change, int line) {
    if (expected == POSATTN_OK) return;
    for (int64_t i = 0; i < SCRATCH_FLOATS; ++i) {
        if (!same_bits(scratch_buf[i], untouched_pattern())) {
            CHECK(0, "isa %s, line %d, %s with `%s`: refused but wrote scratch[%lld]",
                  posattn_isa_name(posattn_active_isa()), line, fn, change, (long long)i);
            return;
        }
    }
}

static const int64_t BIG = INT64_C(1) << 62;

static void arena_reset(arena *ar) {
    arena_fill(ar);
    arena_snapshot(ar);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_apply                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct apply_call {
    int64_t n_tok, head_dim, rot_offset, rot_dims, block;
    float *q;
    int64_t q_heads, q_tok_stride, q_head_stride;
    float *k;
    int64_t k_heads, k_tok_stride, k_head_stride;
    const float *rot;
    int64_t rot_tok_stride, n_gen_heads;
    float *scratch;
    int64_t scratch_floats;
    posattn_liere_options options;
    int use_options;
    int64_t tok_begin, tok_end;
} apply_call;

static apply_call apply_baseline(float *a) {
    apply_call c;
    memset(&c, 0, sizeof c);
    c.n_tok = 3, c.head_dim = 8, c.rot_offset = 2, c.rot_dims = 4, c.block = 2;
    c.q = a + AT_Q, c.q_heads = 2;
    c.k = a + AT_K, c.k_heads = 1;
    c.rot = a + AT_ROT, c.n_gen_heads = 1;
    c.scratch = scratch_buf, c.scratch_floats = SCRATCH_FLOATS;
    c.use_options = 1, c.options.flags = POSATTN_LIERE_BACKWARD;
    c.tok_begin = 0, c.tok_end = 3;
    return c;
}

static void expect_apply(arena *ar, const apply_call *c, posattn_status expected, const char *change, int line) {
    arena_reset(ar);
    fill_untouched(scratch_buf, SCRATCH_FLOATS);
    posattn_status st = posattn_liere_apply(
        c->n_tok, c->head_dim, c->rot_offset, c->rot_dims, c->block, c->q, c->q_heads, c->q_tok_stride,
        c->q_head_stride, c->k, c->k_heads, c->k_tok_stride, c->k_head_stride, c->rot, c->rot_tok_stride,
        c->n_gen_heads, c->scratch, c->scratch_floats, c->use_options ? &c->options : NULL, c->tok_begin, c->tok_end);
    arena_expect(ar, st, expected, "liere_apply", change, line);
    scratch_expect_untouched(expected, "liere_apply", change, line);
}

#define APPLY_CASE(expected, ...)                                                                                  \
    do {                                                                                                           \
        apply_call c = apply_baseline(ar.a);                                                                       \
        float *a = ar.a;                                                                                           \
        (void)a;                                                                                                   \
        __VA_ARGS__;                                                                                               \
        expect_apply(&ar, &c, expected, #__VA_ARGS__, __LINE__);                                                   \
    } while (0)

START_TEST(test_apply_errors) {
    arena ar;
    arena_open(&ar, ARENA_FLOATS);
    scratch_open();
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        /* The baseline and valid neighbours of the refused values below. */
        APPLY_CASE(POSATTN_OK, (void)0);
        APPLY_CASE(POSATTN_OK, c.use_options = 0);
        APPLY_CASE(POSATTN_OK, c.k = NULL, c.k_heads = -1, c.k_tok_stride = -1); /* k's arguments are ignored */
        APPLY_CASE(POSATTN_OK, c.block = 4);
        APPLY_CASE(POSATTN_OK, c.n_gen_heads = 2, c.k_heads = 2);
        APPLY_CASE(POSATTN_OK, c.q_tok_stride = 16, c.q_head_stride = 8, c.k_tok_stride = 8, c.k_head_stride = 8,
                   c.rot_tok_stride = 8);
        APPLY_CASE(POSATTN_OK, c.n_tok = 2, c.tok_end = 2, c.q_tok_stride = 8, c.q_head_stride = 16); /* interleaved */
        APPLY_CASE(POSATTN_OK, c.tok_begin = 3, c.tok_end = 3);
        APPLY_CASE(POSATTN_OK, c.tok_begin = 1, c.tok_end = 2);
        APPLY_CASE(POSATTN_OK, c.rot_offset = 4); /* rotated dims end with the head */
        APPLY_CASE(POSATTN_OK, c.rot_offset = 0, c.rot_dims = 8, c.block = 8);
        APPLY_CASE(POSATTN_OK, c.rot = a + AT_K + 24); /* starts where k ends */
        APPLY_CASE(POSATTN_OK, c.rot = a + AT_Q + 48, c.k = NULL);
        /* A packed qkv buffer: q and k interleave token by token with equal token strides, sharing no byte. */
        APPLY_CASE(POSATTN_OK, c.k = a + AT_Q + 16, c.q_tok_stride = 24, c.k_tok_stride = 24);
        /* A dimension of extent 1 imposes nothing on its stride: one token, any token strides. */
        APPLY_CASE(POSATTN_OK, c.n_tok = 1, c.tok_end = 1, c.q_tok_stride = BIG, c.k_tok_stride = BIG,
                   c.rot_tok_stride = BIG);

        /* NULL (k NULL is valid: q only) */
        APPLY_CASE(POSATTN_ERR_NULL, c.q = NULL);
        APPLY_CASE(POSATTN_ERR_NULL, c.rot = NULL);

        /* SIZE: zero and negative, each size; head counts that are not multiples of n_gen_heads. rot_dims <= 0 is
         * SIZE as in the error list and every other entry point (the head_dim paragraph names rot_dims > 0 next
         * to LAYOUT's conditions). */
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_tok = 0, c.tok_end = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_tok = -3, c.tok_end = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.head_dim = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.head_dim = -8);
        APPLY_CASE(POSATTN_ERR_SIZE, c.rot_dims = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.rot_dims = -4);
        APPLY_CASE(POSATTN_ERR_SIZE, c.q_heads = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.q_heads = -2);
        APPLY_CASE(POSATTN_ERR_SIZE, c.k_heads = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.k_heads = -1);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = -1);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = 2);                 /* k_heads 1 */
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = 2, c.k = NULL, c.q_heads = 3);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = 3, c.k_heads = 3); /* q_heads 2 */

        /* LAYOUT: rotated dims outside the head */
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = -1);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = 5);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = 9);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = 0, c.rot_dims = 10);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = INT64_MAX); /* rot_offset + rot_dims must not wrap */
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = INT64_MIN);

        /* BLOCK: outside 2..64 or not dividing rot_dims */
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = 0);
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = 1);
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = -2);
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = 3);
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = 8);
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = 65);
        APPLY_CASE(POSATTN_ERR_BLOCK, c.block = INT64_MIN);

        /* ROW_RANGE */
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = -1);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_end = 4);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = 2, c.tok_end = 1);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = 4, c.tok_end = 4);

        /* FLAGS: unknown bits */
        APPLY_CASE(POSATTN_ERR_FLAGS, c.options.flags |= 1u << 1);
        APPLY_CASE(POSATTN_ERR_FLAGS, c.options.flags = 1u << 31);

        /* STRIDE: negative, shorter than a row, overlapping output rows */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_tok_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_head_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.k_tok_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.k_head_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.rot_tok_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_tok_stride = INT64_MIN);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_head_stride = 7);                      /* shorter than a head */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.k_heads = 2, c.k_head_stride = 7);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.k_heads = 1, c.k_head_stride = 7); /* one head: refused as rope does */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_tok_stride = 15);                      /* shorter than a token's heads */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.k_tok_stride = 7);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_tok_stride = 8, c.q_head_stride = 8);  /* token 1 = head 1 of token 0 */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.q_tok_stride = 8, c.q_head_stride = 16); /* token 2 = head 1 of token 0 */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.rot_tok_stride = 7);                     /* shorter than a token's 8 */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.block = 4, c.rot_tok_stride = 15);       /* shorter than 16 */

        /* OVERFLOW: refused before any access (the buffers are small) */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.q_tok_stride = BIG);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.q_tok_stride = INT64_MAX);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.k_tok_stride = BIG);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.rot_tok_stride = BIG);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.q_head_stride = BIG); /* heads * head_stride */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.q_head_stride = BIG, c.q_tok_stride = INT64_MAX);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.k_heads = 2, c.k_head_stride = BIG);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_C(1) << 40, c.q_tok_stride = INT64_C(1) << 30); /* n*stride */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_MAX, c.q_tok_stride = 16);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_C(1) << 62, c.k = NULL, c.q_tok_stride = 16,
                   c.rot_tok_stride = 8); /* the rotations: 2^62 tokens of 32 bytes */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_gen_heads = BIG);                 /* n_gen * block * rot_dims */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_gen_heads = INT64_MAX, c.block = 4);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_gen_heads = INT64_C(1) << 59, c.q_heads = INT64_C(1) << 59, c.k = NULL);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.q_heads = INT64_C(1) << 61);        /* heads * head_dim */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.head_dim = BIG, c.rot_offset = 0);


        /* OVERLAP: q or k against rot, and q against k */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_Q + 40);  /* reaches q[42..45] (token 2, head 1) */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_K + 20);  /* reaches k[20..21] (token 2) */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.k = a + AT_ROT - 6);   /* k's token 1 is rot[2..5] */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.q = a + AT_ROT - 34, c.k = NULL); /* q[42..45] = rot[8..11] */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_Q + 40, c.k = NULL, c.use_options = 0);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.k = a + AT_Q + 40);    /* k's token 0 is q's token 2, head 1 */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.k = a + AT_Q);         /* k = q */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.k = a + AT_Q, c.k_heads = 2);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.k = a + AT_Q + 1, c.k_tok_stride = 16); /* equal strides, shifted */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.k = a + AT_Q + 11, c.q_tok_stride = 24, c.k_tok_stride = 24); /* packed */

        /* Scratch: needed backward only (the baseline); forward ignores both scratch arguments. */
        APPLY_CASE(POSATTN_OK, c.use_options = 0, c.scratch = NULL, c.scratch_floats = -1);
        APPLY_CASE(POSATTN_OK, c.options.flags = 0, c.scratch = a + AT_Q, c.scratch_floats = 0);
        APPLY_CASE(POSATTN_OK, c.scratch_floats = INT64_MAX);
        APPLY_CASE(POSATTN_ERR_NULL, c.scratch = NULL);
        APPLY_CASE(POSATTN_ERR_SIZE, c.scratch_floats = SCRATCH_FLOATS - 1);
        APPLY_CASE(POSATTN_ERR_SIZE, c.scratch_floats = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.scratch_floats = INT64_MIN);
        APPLY_CASE(POSATTN_ERR_SIZE, c.block = 8, c.rot_offset = 0, c.rot_dims = 8, c.scratch_floats = 64);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.scratch = a + AT_Q + 45);   /* q's last rotated float */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.scratch = a + AT_K + 20);   /* k */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.scratch = a + AT_ROT + 23); /* rot's last float */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.scratch = a + AT_ROT + 23, c.k = NULL);
    }
    arena_close(&ar);
    scratch_close();
}
END_TEST

/* Rows the argument table found wrong in src/liere_api.c, kept apart as regressions. */
START_TEST(test_apply_regressions) {
    arena ar;
    arena_open(&ar, ARENA_FLOATS);
    scratch_open();
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        /* Regression (UBSan): one token with huge equal token strides and q sharing bytes with k. The packed-qkv
         * test formed q_tok_stride * sizeof(float) in int64 (2^64 here: signed overflow) although only
         * (n_tok - 1) * stride had been checked, which is 0 for one token. */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.n_tok = 1, c.tok_end = 1, c.k = a + AT_Q + 1, c.q_tok_stride = BIG,
                   c.k_tok_stride = BIG);
        /* Regression: one token of one head of 2^62 + 2 floats (2^64 + 8 bytes) does not fit the address space, so
         * the header's OVERFLOW applies; only the rotated dims used to be spanned, from q + rot_offset, a pointer
         * that wrapped to q itself: the call returned OK and rotated q[0..1]. */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = 1, c.tok_end = 1, c.q_heads = 1, c.k = NULL,
                   c.head_dim = BIG + 2, c.rot_offset = BIG, c.rot_dims = 2);
    }
    arena_close(&ar);
    scratch_close();
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_rotations                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct rotations_call {
    int64_t n_tok, n_axes;
    const float *pos;
    int64_t pos_stride, n_gen_heads, block, rot_dims;
    const float *gens;
    float *rot;
    int64_t rot_tok_stride;
    float *scratch;
    int64_t scratch_floats;
    posattn_liere_options options;
    int use_options;
    int64_t tok_begin, tok_end;
} rotations_call;

static rotations_call rotations_baseline(float *a) {
    rotations_call c;
    memset(&c, 0, sizeof c);
    c.n_tok = 3, c.n_axes = 2, c.pos = a + AT_POS;
    c.n_gen_heads = 1, c.block = 2, c.rot_dims = 4, c.gens = a + AT_GENS, c.rot = a + AT_OUT_ROT;
    c.scratch = scratch_buf, c.scratch_floats = SCRATCH_FLOATS;
    c.use_options = 1;
    c.tok_begin = 0, c.tok_end = 3;
    return c;
}

static void expect_rotations(arena *ar, const rotations_call *c, posattn_status expected, const char *change,
                             int line) {
    arena_reset(ar);
    fill_untouched(scratch_buf, SCRATCH_FLOATS);
    posattn_status st =
        posattn_liere_rotations(c->n_tok, c->n_axes, c->pos, c->pos_stride, c->n_gen_heads, c->block, c->rot_dims,
                                c->gens, c->rot, c->rot_tok_stride, c->scratch, c->scratch_floats,
                                c->use_options ? &c->options : NULL, c->tok_begin, c->tok_end);
    arena_expect(ar, st, expected, "liere_rotations", change, line);
    scratch_expect_untouched(expected, "liere_rotations", change, line);
}

#define ROTATIONS_CASE(expected, ...)                                                                              \
    do {                                                                                                           \
        rotations_call c = rotations_baseline(ar.a);                                                               \
        float *a = ar.a;                                                                                           \
        (void)a;                                                                                                   \
        __VA_ARGS__;                                                                                               \
        expect_rotations(&ar, &c, expected, #__VA_ARGS__, __LINE__);                                               \
    } while (0)

START_TEST(test_rotations_errors) {
    arena ar;
    arena_open(&ar, ARENA_FLOATS);
    scratch_open();
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        /* The baseline and valid neighbours of the refused values below. */
        ROTATIONS_CASE(POSATTN_OK, (void)0);
        ROTATIONS_CASE(POSATTN_OK, c.use_options = 0);
        ROTATIONS_CASE(POSATTN_OK, c.n_gen_heads = 2);
        ROTATIONS_CASE(POSATTN_OK, c.block = 4);
        ROTATIONS_CASE(POSATTN_OK, c.n_axes = 1, c.pos_stride = 2);
        ROTATIONS_CASE(POSATTN_OK, c.pos_stride = 2, c.rot_tok_stride = 8);
        ROTATIONS_CASE(POSATTN_OK, c.tok_begin = 1, c.tok_end = 2);
        ROTATIONS_CASE(POSATTN_OK, c.tok_begin = 3, c.tok_end = 3);
        ROTATIONS_CASE(POSATTN_OK, c.rot = a + AT_POS - 24); /* ends where pos begins */
        ROTATIONS_CASE(POSATTN_OK, c.rot = a + AT_GENS + 4); /* starts where gens end */
        ROTATIONS_CASE(POSATTN_OK, c.gens = a + AT_POS);     /* inputs may overlap each other */
        ROTATIONS_CASE(POSATTN_OK, c.n_tok = 1, c.tok_end = 1, c.pos_stride = BIG, c.rot_tok_stride = BIG);

        /* NULL */
        ROTATIONS_CASE(POSATTN_ERR_NULL, c.pos = NULL);
        ROTATIONS_CASE(POSATTN_ERR_NULL, c.gens = NULL);
        ROTATIONS_CASE(POSATTN_ERR_NULL, c.rot = NULL);

        /* SIZE */
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.n_tok = 0, c.tok_end = 0);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.n_tok = -1, c.tok_end = 0);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = 0);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.n_gen_heads = -1);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.rot_dims = 0);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.rot_dims = -4);

        /* AXES */
        ROTATIONS_CASE(POSATTN_ERR_AXES, c.n_axes = 0);
        ROTATIONS_CASE(POSATTN_ERR_AXES, c.n_axes = 5);
        ROTATIONS_CASE(POSATTN_ERR_AXES, c.n_axes = -1);

        /* BLOCK */
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = 0);
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = 1);
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = -2);
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = 3);
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = 8);
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = 65);
        ROTATIONS_CASE(POSATTN_ERR_BLOCK, c.block = 128, c.rot_dims = 128);

        /* ROW_RANGE */
        ROTATIONS_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = -1);
        ROTATIONS_CASE(POSATTN_ERR_ROW_RANGE, c.tok_end = 4);
        ROTATIONS_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = 2, c.tok_end = 1);

        /* FLAGS: no flag is defined here, not even BACKWARD */
        ROTATIONS_CASE(POSATTN_ERR_FLAGS, c.options.flags = POSATTN_LIERE_BACKWARD);
        ROTATIONS_CASE(POSATTN_ERR_FLAGS, c.options.flags = 1u << 5);
        ROTATIONS_CASE(POSATTN_ERR_FLAGS, c.options.flags = 1u << 31);

        /* STRIDE: negative, shorter than a row */
        ROTATIONS_CASE(POSATTN_ERR_STRIDE, c.pos_stride = -1);
        ROTATIONS_CASE(POSATTN_ERR_STRIDE, c.pos_stride = 1); /* shorter than n_axes */
        ROTATIONS_CASE(POSATTN_ERR_STRIDE, c.rot_tok_stride = -1);
        ROTATIONS_CASE(POSATTN_ERR_STRIDE, c.rot_tok_stride = INT64_MIN);
        ROTATIONS_CASE(POSATTN_ERR_STRIDE, c.rot_tok_stride = 7); /* shorter than a token's 8 floats */
        ROTATIONS_CASE(POSATTN_ERR_STRIDE, c.n_gen_heads = 2, c.rot_tok_stride = 8);

        /* OVERFLOW */
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.n_gen_heads = BIG); /* n_gen * block * rot_dims */
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.n_gen_heads = INT64_MAX);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.n_gen_heads = INT64_C(1) << 59); /* 2^62 floats per token */
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.rot_dims = BIG);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.rot_dims = INT64_C(1) << 60, c.block = 64); /* 2^66 per token */
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.rot_tok_stride = BIG);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.rot_tok_stride = INT64_MAX);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.pos_stride = INT64_C(1) << 61);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_C(1) << 40, c.rot_tok_stride = INT64_C(1) << 30);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_MAX);
        ROTATIONS_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = 1, c.tok_end = 1, c.n_gen_heads = INT64_C(1) << 58,
                       c.block = 4); /* one token's rotations: 2^64 bytes */

        /* OVERLAP: rot against pos and gens */
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_POS - 23);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_POS + 5);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_POS, c.use_options = 0);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.rot = a + AT_GENS + 3);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.n_gen_heads = 2, c.rot = a + AT_GENS + 7);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.pos = a + AT_OUT_ROT + 23);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.gens = a + AT_OUT_ROT + 20);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.pos_stride = 3, c.pos = a + AT_OUT_ROT - 7); /* last coordinate */

        /* Scratch: needed for block >= 4 only; the closed forms of block 2 ignore both scratch arguments. */
        ROTATIONS_CASE(POSATTN_OK, c.scratch = NULL, c.scratch_floats = -1);
        ROTATIONS_CASE(POSATTN_OK, c.scratch = a + AT_OUT_ROT, c.scratch_floats = 0);
        ROTATIONS_CASE(POSATTN_OK, c.block = 4, c.scratch_floats = INT64_MAX);
        ROTATIONS_CASE(POSATTN_ERR_NULL, c.block = 4, c.scratch = NULL);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.block = 4, c.scratch_floats = SCRATCH_FLOATS - 1);
        ROTATIONS_CASE(POSATTN_ERR_SIZE, c.block = 4, c.scratch_floats = -1);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.block = 4, c.scratch = a + AT_POS + 5); /* pos's last float */
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.block = 4, c.scratch = a + AT_GENS);
        ROTATIONS_CASE(POSATTN_ERR_OVERLAP, c.block = 4, c.scratch = a + AT_OUT_ROT + 47); /* rot's last float */
    }
    arena_close(&ar);
    scratch_close();
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_rotation_size                                                                                    */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_rotation_size_errors) {
    static const struct {
        int64_t n_gen_heads, block, rot_dims;
        int null_output;
        posattn_status expected;
        int64_t size; /* when OK */
        const char *what;
    } cases[] = {
        {1, 2, 4, 0, POSATTN_OK, 8, "valid"},
        {2, 4, 8, 0, POSATTN_OK, 64, "valid, 2 sets"},
        {3, 64, 64, 0, POSATTN_OK, 12288, "valid, block 64"},
        {1, 2, INT64_C(1) << 61, 0, POSATTN_OK, INT64_C(1) << 62, "valid, 2^62 floats (a size, not a buffer)"},
        {1, 2, 4, 1, POSATTN_ERR_NULL, 0, "floats_per_token NULL"},
        {0, 2, 4, 0, POSATTN_ERR_SIZE, 0, "n_gen_heads 0"},
        {-1, 2, 4, 0, POSATTN_ERR_SIZE, 0, "n_gen_heads -1"},
        {INT64_MIN, 2, 4, 0, POSATTN_ERR_SIZE, 0, "n_gen_heads INT64_MIN"},
        {1, 2, 0, 0, POSATTN_ERR_SIZE, 0, "rot_dims 0"},
        {1, 2, -4, 0, POSATTN_ERR_SIZE, 0, "rot_dims -4"},
        {1, 0, 4, 0, POSATTN_ERR_BLOCK, 0, "block 0"},
        {1, 1, 4, 0, POSATTN_ERR_BLOCK, 0, "block 1"},
        {1, -2, 4, 0, POSATTN_ERR_BLOCK, 0, "block -2"},
        {1, 3, 4, 0, POSATTN_ERR_BLOCK, 0, "block 3 of 4"},
        {1, 8, 4, 0, POSATTN_ERR_BLOCK, 0, "block 8 of 4"},
        {1, 65, 130, 0, POSATTN_ERR_BLOCK, 0, "block 65"},
        {1, 128, 128, 0, POSATTN_ERR_BLOCK, 0, "block 128"},
        {1, INT64_MIN, 4, 0, POSATTN_ERR_BLOCK, 0, "block INT64_MIN"},
        {INT64_C(1) << 62, 2, 4, 0, POSATTN_ERR_OVERFLOW, 0, "2^62 sets"},
        {INT64_MAX, 2, 2, 0, POSATTN_ERR_OVERFLOW, 0, "INT64_MAX sets"},
        {1, 64, INT64_C(1) << 57, 0, POSATTN_ERR_OVERFLOW, 0, "64 * 2^57 * 64"},
        {INT64_C(1) << 31, 64, INT64_C(1) << 32, 0, POSATTN_ERR_OVERFLOW, 0, "2^31 * 64 * 2^32"},
        {1, 2, INT64_C(1) << 62, 0, POSATTN_ERR_OVERFLOW, 0, "2 * 2^62"},
    };
    const int64_t canary = INT64_C(0x5A5A5A5AA5A5A5A5);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
            guarded out = guarded_output(1, sizeof(int64_t), 0);
            memcpy(out.data, &canary, sizeof canary);
            posattn_status st = posattn_liere_rotation_size(cases[k].n_gen_heads, cases[k].block, cases[k].rot_dims,
                                                            cases[k].null_output ? NULL : out.data);
            CHECK(st == cases[k].expected, "isa %s, rotation_size with %s: returned %d (%s), expected %s",
                  posattn_isa_name(isa), cases[k].what, (int)st, posattn_status_string(st),
                  posattn_status_string(cases[k].expected));
            int64_t got;
            memcpy(&got, out.data, sizeof got);
            if (cases[k].expected == POSATTN_OK) {
                CHECK(got == cases[k].size, "isa %s, rotation_size with %s: %" PRId64 ", expected %" PRId64,
                      posattn_isa_name(isa), cases[k].what, got, cases[k].size);
            } else {
                CHECK(got == canary, "isa %s, rotation_size with %s wrote %" PRId64, posattn_isa_name(isa),
                      cases[k].what, got);
            }
            guarded_check(&out, cases[k].what);
            guarded_free(&out);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_liere_scratch_size                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_scratch_size_errors) {
    static const struct {
        int64_t block;
        int null_output;
        posattn_status expected;
        int64_t size; /* when OK: the header's formula, max(4096, 5 b (b rounded up to 16)) for b >= 4 */
    } cases[] = {
        {2, 0, POSATTN_OK, 4096},      {3, 0, POSATTN_OK, 4096},      {4, 0, POSATTN_OK, 4096},
        {8, 0, POSATTN_OK, 4096},      {25, 0, POSATTN_OK, 4096},     {26, 0, POSATTN_OK, 4160},
        {33, 0, POSATTN_OK, 7920},     {48, 0, POSATTN_OK, 11520},    {64, 0, POSATTN_OK, 20480},
        {4, 1, POSATTN_ERR_NULL, 0},   {1, 0, POSATTN_ERR_BLOCK, 0},  {0, 0, POSATTN_ERR_BLOCK, 0},
        {-2, 0, POSATTN_ERR_BLOCK, 0}, {65, 0, POSATTN_ERR_BLOCK, 0}, {INT64_MIN, 0, POSATTN_ERR_BLOCK, 0},
    };
    const int64_t canary = INT64_C(0x5A5A5A5AA5A5A5A5);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
        int64_t got = canary;
        posattn_status st = posattn_liere_scratch_size(cases[k].block, cases[k].null_output ? NULL : &got);
        CHECK(st == cases[k].expected, "scratch_size(%" PRId64 "): returned %s, expected %s", cases[k].block,
              posattn_status_string(st), posattn_status_string(cases[k].expected));
        CHECK(got == (cases[k].expected == POSATTN_OK ? cases[k].size : canary), "scratch_size(%" PRId64 "): %" PRId64,
              cases[k].block, got);
    }
    /* The argument tables above hold one scratch for blocks 2, 4 and 8. */
    for (int64_t b = 2; b <= 8; b *= 2) {
        int64_t floats = 0;
        CHECK(posattn_liere_scratch_size(b, &floats) == POSATTN_OK && floats <= SCRATCH_FLOATS,
              "SCRATCH_FLOATS below posattn_liere_scratch_size(%" PRId64 ")", b);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_alibi_split_heads                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

START_TEST(test_split_heads_errors) {
    enum { OUT_FLOATS = 16 };
    static const struct {
        int64_t n_heads, axes;
        int null_output;
        posattn_status expected;
        const char *what;
    } cases[] = {
        {4, 2, 0, POSATTN_OK, "valid"},
        {3, 4, 0, POSATTN_OK, "valid, fewer heads than axes"},
        {4, 4, 0, POSATTN_OK, "valid, 16 weights"},
        {1, 1, 0, POSATTN_OK, "valid, one weight"},
        {4, 2, 1, POSATTN_ERR_NULL, "weights NULL"},
        {0, 2, 0, POSATTN_ERR_SIZE, "n_heads 0"},
        {-1, 2, 0, POSATTN_ERR_SIZE, "n_heads -1"},
        {INT64_MIN, 2, 0, POSATTN_ERR_SIZE, "n_heads INT64_MIN"},
        {4, 0, 0, POSATTN_ERR_AXES, "axes 0"},
        {4, 5, 0, POSATTN_ERR_AXES, "axes 5"},
        {4, -1, 0, POSATTN_ERR_AXES, "axes -1"},
        {4, INT64_MAX, 0, POSATTN_ERR_AXES, "axes INT64_MAX"},
        /* More weights than an address space holds floats: refused before writing. */
        {INT64_C(1) << 62, 1, 0, POSATTN_ERR_OVERFLOW, "n_heads 2^62"},
        {INT64_C(1) << 59, 4, 0, POSATTN_ERR_OVERFLOW, "2^59 heads * 4 axes (2^63 bytes)"},
        {INT64_MAX, 2, 0, POSATTN_ERR_OVERFLOW, "n_heads INT64_MAX"},
    };
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
            guarded out = guarded_output(OUT_FLOATS, sizeof(float), 0);
            fill_untouched(out.data, OUT_FLOATS);
            posattn_status st = posattn_alibi_split_heads(cases[k].n_heads, cases[k].axes,
                                                          cases[k].null_output ? NULL : out.data);
            CHECK(st == cases[k].expected, "isa %s, split_heads with %s: returned %d (%s), expected %s",
                  posattn_isa_name(isa), cases[k].what, (int)st, posattn_status_string(st),
                  posattn_status_string(cases[k].expected));
            if (cases[k].expected != POSATTN_OK) {
                for (int h = 0; h < OUT_FLOATS; ++h) {
                    CHECK(same_bits(((float *)out.data)[h], untouched_pattern()),
                          "isa %s, split_heads with %s wrote slot %d", posattn_isa_name(isa), cases[k].what, h);
                }
            }
            guarded_check(&out, cases[k].what);
            guarded_free(&out);
        }
    }
}
END_TEST

static Suite *errors_liere_suite(void) {
    Suite *s = suite_create("errors_liere");
    TCase *tc = make_tcase("errors_liere");
    tcase_add_test(tc, test_apply_errors);
    tcase_add_test(tc, test_apply_regressions);
    tcase_add_test(tc, test_rotations_errors);
    tcase_add_test(tc, test_rotation_size_errors);
    tcase_add_test(tc, test_scratch_size_errors);
    tcase_add_test(tc, test_split_heads_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(errors_liere_suite());
}
