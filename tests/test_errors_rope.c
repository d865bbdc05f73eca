/*
 * Bad input to the rotary entry points (SPEC 4, header "Errors"): posattn_rope_apply and the four table builders
 * give every invalid argument its documented status and leave every output untouched.
 *
 * As in test_errors.c, every call works inside one exact-size arena that holds all the buffers of a small valid call
 * (3 tokens, 2 heads of 8 dims rotating dims 2..5, 2 position axes, per-head tables, pair factors; builders with
 * D_rot 8 and 2 axes). The arena is filled with a pattern, each case changes one argument of the valid baseline and
 * expects one status, and the arena must be byte-for-byte unchanged afterwards: neither x nor a table was written.
 * Valid neighbours of the refused values must still succeed, so the checks are not too strict either. The whole
 * table runs under every ISA.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

enum {
    ARENA_FLOATS = 256,
    /* Offsets (in floats) of the baseline's buffers inside the arena. */
    AT_X = 0,          /* 48 = 3 tokens * 2 heads * 8 dims */
    AT_POS = 64,       /* 6 = 3 tokens * 2 axes */
    AT_FREQS = 80,     /* 8 = 2 heads * 2 axes * 2 pairs */
    AT_FACTORS = 96,   /* 2 pairs */
    AT_SECTIONS = 128, /* 4 int64 (8 floats) */
    AT_AXIS_MAP = 144, /* 4 int32 */
    AT_TABLE = 160     /* builders' output: up to 4 axes * 4 pairs */
};

static const int64_t BIG = INT64_C(1) << 62;

static void arena_reset(arena *ar) {
    arena_fill(ar);
    /* The builders' baseline: sections (1, 3) pairs, then a valid axis map; entries 2, 3 feed n_axes 4 cases. */
    int64_t sections[4] = {1, 3, 0, 0};
    int32_t axis_map[4] = {0, 1, 1, 0};
    memcpy(ar->a + AT_SECTIONS, sections, sizeof sections);
    memcpy(ar->a + AT_AXIS_MAP, axis_map, sizeof axis_map);
    arena_snapshot(ar);
}

/* ------------------------------------------------------------------------------------------------------------ */
/* posattn_rope_apply                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct apply_call {
    int64_t n_tok, n_heads, head_dim;
    float *x;
    int64_t tok_stride, head_stride, rot_offset, rot_dims;
    posattn_rope_layout layout;
    int64_t n_axes;
    const float *pos;
    int64_t pos_stride;
    const float *freqs;
    int64_t freq_head_stride;
    posattn_rope_options options;
    int use_options;
    int64_t tok_begin, tok_end;
} apply_call;

static apply_call apply_baseline(float *a) {
    apply_call c;
    memset(&c, 0, sizeof c);
    c.n_tok = 3, c.n_heads = 2, c.head_dim = 8, c.x = a + AT_X;
    c.rot_offset = 2, c.rot_dims = 4, c.layout = POSATTN_ROPE_INTERLEAVED;
    c.n_axes = 2, c.pos = a + AT_POS, c.freqs = a + AT_FREQS, c.freq_head_stride = 4;
    c.use_options = 1;
    c.options.flags = POSATTN_ROPE_BACKWARD, c.options.attn_factor = 1.5f, c.options.pair_factors = a + AT_FACTORS;
    c.tok_begin = 0, c.tok_end = 3;
    return c;
}

static void expect_apply(arena *ar, const apply_call *c, posattn_status expected, const char *change, int line) {
    arena_reset(ar);
    posattn_status st = posattn_rope_apply(c->n_tok, c->n_heads, c->head_dim, c->x, c->tok_stride, c->head_stride,
                                           c->rot_offset, c->rot_dims, c->layout, c->n_axes, c->pos, c->pos_stride,
                                           c->freqs, c->freq_head_stride, c->use_options ? &c->options : NULL,
                                           c->tok_begin, c->tok_end);
    arena_expect(ar, st, expected, "rope_apply", change, line);
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
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        /* The baseline and valid neighbours of the refused values below. */
        APPLY_CASE(POSATTN_OK, (void)0);
        APPLY_CASE(POSATTN_OK, c.use_options = 0);
        APPLY_CASE(POSATTN_OK, c.layout = POSATTN_ROPE_HALF_SPLIT);
        APPLY_CASE(POSATTN_OK, c.freq_head_stride = 0);
        APPLY_CASE(POSATTN_OK, c.tok_stride = 16, c.head_stride = 8, c.pos_stride = 2);
        APPLY_CASE(POSATTN_OK, c.n_tok = 2, c.tok_end = 2, c.tok_stride = 8, c.head_stride = 16); /* interleaved */
        APPLY_CASE(POSATTN_OK, c.rot_offset = 4);  /* rotated dims end with the head */
        APPLY_CASE(POSATTN_OK, c.rot_offset = 0, c.rot_dims = 8);
        APPLY_CASE(POSATTN_OK, c.tok_begin = 3, c.tok_end = 3);
        APPLY_CASE(POSATTN_OK, c.tok_begin = 0, c.tok_end = 0);
        APPLY_CASE(POSATTN_OK, c.n_axes = 1, c.freqs = a + AT_POS); /* the table is only read: it may overlap pos */
        APPLY_CASE(POSATTN_OK, c.pos = a + AT_X + 48);              /* starts where x ends */
        APPLY_CASE(POSATTN_OK, c.x = a + AT_X + 8, c.freqs = a + AT_X + 4, c.freq_head_stride = 0); /* ends at x */
        APPLY_CASE(POSATTN_OK, c.options.pair_factors = a + AT_X + 48);
        APPLY_CASE(POSATTN_OK, c.options.attn_factor = -3.0e38f);
        /* A dimension of extent 1 imposes nothing on its stride: one token, any token stride. */
        APPLY_CASE(POSATTN_OK, c.n_tok = 1, c.tok_end = 1, c.tok_stride = BIG, c.pos_stride = BIG);

        /* NULL */
        APPLY_CASE(POSATTN_ERR_NULL, c.x = NULL);
        APPLY_CASE(POSATTN_ERR_NULL, c.pos = NULL);
        APPLY_CASE(POSATTN_ERR_NULL, c.freqs = NULL);

        /* SIZE: zero and negative, each size */
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_tok = 0, c.tok_end = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_tok = -3, c.tok_end = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_heads = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.n_heads = -2);
        APPLY_CASE(POSATTN_ERR_SIZE, c.head_dim = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.head_dim = -8);
        APPLY_CASE(POSATTN_ERR_SIZE, c.rot_dims = 0);
        APPLY_CASE(POSATTN_ERR_SIZE, c.rot_dims = -4);

        /* LAYOUT: unknown enum values, odd rot_dims, rotated dims outside the head */
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.layout = (posattn_rope_layout)2);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.layout = (posattn_rope_layout)7);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.layout = (posattn_rope_layout)-1);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_dims = 3);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = -1);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = 5);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = 0, c.rot_dims = 10);
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = INT64_MAX); /* rot_offset + rot_dims must not wrap */
        APPLY_CASE(POSATTN_ERR_LAYOUT, c.rot_offset = INT64_MIN);

        /* AXES */
        APPLY_CASE(POSATTN_ERR_AXES, c.n_axes = 0);
        APPLY_CASE(POSATTN_ERR_AXES, c.n_axes = 5);
        APPLY_CASE(POSATTN_ERR_AXES, c.n_axes = -1);

        /* ROW_RANGE */
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = -1);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_end = 4);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = 2, c.tok_end = 1);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = 4, c.tok_end = 4);
        APPLY_CASE(POSATTN_ERR_ROW_RANGE, c.tok_begin = INT64_MIN, c.tok_end = 1);

        /* FLAGS: unknown bits */
        APPLY_CASE(POSATTN_ERR_FLAGS, c.options.flags |= 1u << 1);
        APPLY_CASE(POSATTN_ERR_FLAGS, c.options.flags = 1u << 31);

        /* SCALE: attn_factor not finite */
        APPLY_CASE(POSATTN_ERR_SCALE, c.options.attn_factor = NAN);
        APPLY_CASE(POSATTN_ERR_SCALE, c.options.attn_factor = INFINITY);
        APPLY_CASE(POSATTN_ERR_SCALE, c.options.attn_factor = -INFINITY);

        /* STRIDE: negative, shorter than a row, overlapping output rows */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.tok_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.head_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.pos_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.freq_head_stride = -1);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.tok_stride = INT64_MIN);
        APPLY_CASE(POSATTN_ERR_STRIDE, c.head_stride = 7);                    /* shorter than a head */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.tok_stride = 15);                    /* shorter than a token's heads */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.tok_stride = 8, c.head_stride = 8);  /* token 1 = head 1 of token 0 */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.tok_stride = 8, c.head_stride = 16); /* token 2 = head 1 of token 0 */
        APPLY_CASE(POSATTN_ERR_STRIDE, c.pos_stride = 1);                     /* shorter than n_axes */

        /* OVERFLOW: refused before any access (the buffers are small) */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.tok_stride = BIG);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.tok_stride = INT64_MAX);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.head_stride = BIG);                /* heads * head_stride */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.head_stride = BIG, c.tok_stride = INT64_MAX);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_C(1) << 40, c.tok_stride = INT64_C(1) << 30); /* n*stride */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_MAX, c.tok_stride = 16);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.pos_stride = INT64_C(1) << 61);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = INT64_C(1) << 62, c.tok_stride = 16, c.pos_stride = 2);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.freq_head_stride = BIG);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.freq_head_stride = INT64_MAX);
        /* One token of one head larger than the address space: the head's bytes, not only its rotated dims. */
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = 1, c.tok_end = 1, c.n_heads = 1, c.head_dim = INT64_C(1) << 62,
                   c.rot_offset = (INT64_C(1) << 62) - 4, c.freq_head_stride = 0);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_tok = 1, c.tok_end = 1, c.n_heads = 1,
                   c.head_dim = (INT64_C(1) << 61) + 8, c.freq_head_stride = 0);
        APPLY_CASE(POSATTN_ERR_OVERFLOW, c.n_heads = INT64_C(1) << 61, c.freq_head_stride = 0); /* heads * D */

        /* OVERLAP: x (rotated dims 2..5 of each head) against every input */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.pos = a + AT_X + 40);             /* reaches x[45] (token 2, head 1) */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.x = a + AT_X + 8, c.pos = a + AT_X + 5); /* reaches x[2] */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.x = a + AT_POS - 42);             /* x[44] = pos[2] */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.freqs = a + AT_X + 10);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.x = a + AT_X + 8, c.freqs = a + AT_X + 6); /* head 1's table: x[2..5] */
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.freqs = a + AT_X + 42, c.freq_head_stride = 0);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.freqs = a + AT_X + 2, c.x = a + AT_X, c.use_options = 0);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.options.pair_factors = a + AT_X + 44);
        APPLY_CASE(POSATTN_ERR_OVERLAP, c.options.pair_factors = a + AT_X + 1);
    }
    arena_close(&ar);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* The table builders                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum builder_kind { BUILD_1D, BUILD_SECTIONS, BUILD_AXIS_MAP, BUILD_VISION, BUILD_KIND_COUNT } builder_kind;

static const char *const builder_names[BUILD_KIND_COUNT] = {"rope_freqs_1d", "rope_freqs_sections",
                                                            "rope_freqs_axis_map", "rope_freqs_vision"};

typedef struct builder_call {
    int64_t rot_dims;
    float base;
    int64_t n_axes;
    const int64_t *sections;
    const int32_t *axis_map;
    float *freqs;
} builder_call;

static builder_call builder_baseline(float *a) {
    builder_call c;
    memset(&c, 0, sizeof c);
    c.rot_dims = 8, c.base = 10000.0f, c.n_axes = 2;
    c.sections = (const int64_t *)(void *)(a + AT_SECTIONS);
    c.axis_map = (const int32_t *)(void *)(a + AT_AXIS_MAP);
    c.freqs = a + AT_TABLE;
    return c;
}

static void expect_builder(arena *ar, builder_kind kind, const builder_call *c, posattn_status expected,
                           const char *change, int line) {
    arena_reset(ar);
    posattn_status st = POSATTN_OK;
    switch (kind) {
    case BUILD_1D: st = posattn_rope_freqs_1d(c->rot_dims, c->base, c->freqs); break;
    case BUILD_SECTIONS:
        st = posattn_rope_freqs_sections(c->rot_dims, c->base, c->n_axes, c->sections, c->freqs);
        break;
    case BUILD_AXIS_MAP:
        st = posattn_rope_freqs_axis_map(c->rot_dims, c->base, c->n_axes, c->axis_map, c->freqs);
        break;
    case BUILD_VISION: st = posattn_rope_freqs_vision(c->rot_dims, c->base, c->n_axes, c->sections, c->freqs); break;
    case BUILD_KIND_COUNT: break;
    }
    arena_expect(ar, st, expected, builder_names[kind], change, line);
}

#define BUILDER_CASE(kind, expected, ...)                                                                          \
    do {                                                                                                           \
        builder_call c = builder_baseline(arp->a);                                                                 \
        float *a = arp->a;                                                                                         \
        (void)a;                                                                                                   \
        __VA_ARGS__;                                                                                               \
        expect_builder(arp, kind, &c, expected, #__VA_ARGS__, __LINE__);                                           \
    } while (0)

/* The common errors of every builder: NULL, SIZE, LAYOUT, AXES (except 1-D), BASE, OVERFLOW. */
static void common_builder_cases(arena *arp, builder_kind kind) {
    BUILDER_CASE(kind, POSATTN_OK, (void)0);
    BUILDER_CASE(kind, POSATTN_OK, c.base = 0x1p-149f); /* positive: allowed */
    BUILDER_CASE(kind, POSATTN_OK, c.freqs = a + AT_TABLE + 8);

    BUILDER_CASE(kind, POSATTN_ERR_NULL, c.freqs = NULL);
    BUILDER_CASE(kind, POSATTN_ERR_SIZE, c.rot_dims = 0);
    BUILDER_CASE(kind, POSATTN_ERR_SIZE, c.rot_dims = -8);
    BUILDER_CASE(kind, POSATTN_ERR_SIZE, c.rot_dims = INT64_MIN);
    BUILDER_CASE(kind, POSATTN_ERR_LAYOUT, c.rot_dims = 7);
    BUILDER_CASE(kind, POSATTN_ERR_LAYOUT, c.rot_dims = INT64_MAX);
    BUILDER_CASE(kind, POSATTN_ERR_BASE, c.base = 0.0f);
    BUILDER_CASE(kind, POSATTN_ERR_BASE, c.base = -0.0f);
    BUILDER_CASE(kind, POSATTN_ERR_BASE, c.base = -10000.0f);
    BUILDER_CASE(kind, POSATTN_ERR_BASE, c.base = NAN);
    BUILDER_CASE(kind, POSATTN_ERR_BASE, c.base = INFINITY);
    BUILDER_CASE(kind, POSATTN_ERR_BASE, c.base = -INFINITY);
    /* A table of more floats than an address space holds: refused before anything is read or written. */
    BUILDER_CASE(kind, POSATTN_ERR_OVERFLOW, c.rot_dims = INT64_MAX - 1);
    BUILDER_CASE(kind, POSATTN_ERR_OVERFLOW, c.rot_dims = INT64_C(1) << 62, c.n_axes = 1); /* 2^63 bytes */
    if (kind != BUILD_1D) {
        BUILDER_CASE(kind, POSATTN_ERR_OVERFLOW, c.rot_dims = INT64_C(1) << 60, c.n_axes = 4); /* axes * pairs */
        BUILDER_CASE(kind, POSATTN_ERR_AXES, c.n_axes = 0);
        BUILDER_CASE(kind, POSATTN_ERR_AXES, c.n_axes = 5);
        BUILDER_CASE(kind, POSATTN_ERR_AXES, c.n_axes = -1);
        BUILDER_CASE(kind, POSATTN_ERR_AXES, c.n_axes = INT64_MIN);
    }
}

START_TEST(test_builder_errors) {
    arena ar, *arp = &ar;
    arena_open(&ar, ARENA_FLOATS);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (int kind = 0; kind < BUILD_KIND_COUNT; ++kind) common_builder_cases(arp, (builder_kind)kind);

        /* Sections (M-RoPE and vision): none negative, summing to D_rot/2 = 4 pairs (the arena holds 1, 3, 0, 0;
         * negative values are in test_builder_value_errors). */
        static const builder_kind with_sections[2] = {BUILD_SECTIONS, BUILD_VISION};
        for (int s = 0; s < 2; ++s) {
            const builder_kind kind = with_sections[s];
            const int64_t *sec = (const int64_t *)(void *)(ar.a + AT_SECTIONS);
            BUILDER_CASE(kind, POSATTN_OK, c.n_axes = 3);                                /* an empty third section */
            BUILDER_CASE(kind, POSATTN_ERR_NULL, c.sections = NULL);
            BUILDER_CASE(kind, POSATTN_ERR_SECTIONS, c.n_axes = 1);                      /* 1 != 4 pairs */
            BUILDER_CASE(kind, POSATTN_ERR_SECTIONS, c.rot_dims = 10);                   /* 4 != 5 pairs */
            BUILDER_CASE(kind, POSATTN_ERR_SECTIONS, c.rot_dims = 6);                    /* 4 != 3 pairs */
            BUILDER_CASE(kind, POSATTN_ERR_SECTIONS, c.sections = sec + 1, c.n_axes = 1); /* 3 != 4 */
        }
        /* The overlap rule of every output ("an output overlaps an input"): the table against the sections or the
         * axis map. The builders' own error list does not name OVERLAP; the status list does. */
        BUILDER_CASE(BUILD_SECTIONS, POSATTN_ERR_OVERLAP, c.freqs = a + AT_SECTIONS - 7);
        BUILDER_CASE(BUILD_VISION, POSATTN_ERR_OVERLAP, c.freqs = a + AT_SECTIONS + 3);
        BUILDER_CASE(BUILD_AXIS_MAP, POSATTN_ERR_OVERLAP, c.freqs = a + AT_AXIS_MAP - 4);
        BUILDER_CASE(BUILD_SECTIONS, POSATTN_OK, c.freqs = a + AT_SECTIONS - 8);   /* ends where sections begin */
        BUILDER_CASE(BUILD_AXIS_MAP, POSATTN_OK, c.freqs = a + AT_AXIS_MAP + 4);   /* starts where the map ends */

        /* Axis map: every entry in [0, n_axes). */
        BUILDER_CASE(BUILD_AXIS_MAP, POSATTN_ERR_NULL, c.axis_map = NULL);
        BUILDER_CASE(BUILD_AXIS_MAP, POSATTN_ERR_SECTIONS, c.n_axes = 1);           /* entries 1 out of range */
        BUILDER_CASE(BUILD_AXIS_MAP, POSATTN_OK, c.n_axes = 4);
        BUILDER_CASE(BUILD_AXIS_MAP, POSATTN_OK, c.n_axes = 3, c.rot_dims = 2);     /* reads entry 0 only */
    }
    arena_close(&ar);
}
END_TEST

/* Negative sections, negative or too large axis map entries, and sums that wrap: values inside the arena, so the
 * snapshot is retaken after writing them. */
static void builder_value_case(arena *ar, builder_kind kind, const int64_t sections[4], const int32_t map[4],
                               int64_t n_axes, posattn_status expected, const char *change, int line) {
    arena_reset(ar);
    memcpy(ar->a + AT_SECTIONS, sections, 4 * sizeof(int64_t));
    memcpy(ar->a + AT_AXIS_MAP, map, 4 * sizeof(int32_t));
    arena_snapshot(ar);
    builder_call c = builder_baseline(ar->a);
    c.n_axes = n_axes;
    posattn_status st = POSATTN_OK;
    switch (kind) {
    case BUILD_SECTIONS: st = posattn_rope_freqs_sections(c.rot_dims, c.base, c.n_axes, c.sections, c.freqs); break;
    case BUILD_VISION: st = posattn_rope_freqs_vision(c.rot_dims, c.base, c.n_axes, c.sections, c.freqs); break;
    case BUILD_AXIS_MAP: st = posattn_rope_freqs_axis_map(c.rot_dims, c.base, c.n_axes, c.axis_map, c.freqs); break;
    default: break;
    }
    arena_expect(ar, st, expected, builder_names[kind], change, line);
}

START_TEST(test_builder_value_errors) {
    static const struct {
        int64_t sections[4];
        int32_t map[4];
        int64_t n_axes;
        posattn_status sections_status, map_status;
        const char *what;
    } cases[] = {
        {{-1, 5, 0, 0}, {0, 1, 1, 0}, 2, POSATTN_ERR_SECTIONS, POSATTN_OK, "section -1 (sum still 4)"},
        {{5, -1, 0, 0}, {0, 1, 1, 0}, 2, POSATTN_ERR_SECTIONS, POSATTN_OK, "section -1 last (sum still 4)"},
        {{INT64_MAX, INT64_MAX, 2, 0}, {0, 1, 1, 0}, 3, POSATTN_ERR_SECTIONS, POSATTN_OK, "sections wrapping to 0"},
        {{INT64_MIN, 4, 0, 0}, {0, 1, 1, 0}, 2, POSATTN_ERR_SECTIONS, POSATTN_OK, "section INT64_MIN"},
        {{1, 3, 0, 0}, {0, 1, 2, 0}, 2, POSATTN_OK, POSATTN_ERR_SECTIONS, "axis 2 of 2"},
        {{1, 3, 0, 0}, {0, 1, 1, -1}, 2, POSATTN_OK, POSATTN_ERR_SECTIONS, "axis -1"},
        {{1, 3, 0, 0}, {INT32_MAX, 0, 0, 0}, 4, POSATTN_OK, POSATTN_ERR_SECTIONS, "axis INT32_MAX"},
        {{1, 3, 0, 0}, {INT32_MIN, 0, 0, 0}, 2, POSATTN_OK, POSATTN_ERR_SECTIONS, "axis INT32_MIN"},
    };
    arena ar;
    arena_open(&ar, ARENA_FLOATS);
    FOR_EACH_ISA(isa) {
        if (!enter_isa(isa)) continue;
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; ++k) {
            builder_value_case(&ar, BUILD_SECTIONS, cases[k].sections, cases[k].map, cases[k].n_axes,
                               cases[k].sections_status, cases[k].what, __LINE__);
            builder_value_case(&ar, BUILD_VISION, cases[k].sections, cases[k].map, cases[k].n_axes,
                               cases[k].sections_status, cases[k].what, __LINE__);
            builder_value_case(&ar, BUILD_AXIS_MAP, cases[k].sections, cases[k].map, cases[k].n_axes,
                               cases[k].map_status, cases[k].what, __LINE__);
        }
    }
    arena_close(&ar);
}
END_TEST

/* ------------------------------------------------------------------------------------------------------------ */
/* A forced ISA the CPU lacks                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

/* test_dispatch.c checks the status for every ISA and starting point; this is the one end-to-end check that a
 * refused force leaves the entry points running on the ISA that was active, with the same results. */
START_TEST(test_refused_isa_keeps_kernels) {
    posattn_isa lacking = POSATTN_ISA_COUNT;
    for (posattn_isa isa = POSATTN_ISA_SCALAR; isa < POSATTN_ISA_COUNT; ++isa) { /* compiled or not */
        if (!posattn_isa_supported(isa)) lacking = isa;
    }
    if (lacking == POSATTN_ISA_COUNT) {
        fprintf(stderr, "posattn tests: every ISA is supported here, no refused force to test\n");
        return;
    }
    float x0[48], x1[48], pos[6], freqs[8];
    for (int k = 0; k < 48; ++k) x0[k] = x1[k] = 0.5f + (float)k * 0.25f;
    for (int k = 0; k < 6; ++k) pos[k] = 3.0f + (float)k;
    for (int k = 0; k < 8; ++k) freqs[k] = 0.1f * (float)(k + 1);
    const posattn_isa best = best_supported_isa();
    ck_assert_int_eq(posattn_force_isa(best), POSATTN_OK);
    ck_assert_int_eq(posattn_rope_apply(3, 2, 8, x0, 0, 0, 2, 4, POSATTN_ROPE_INTERLEAVED, 2, pos, 0, freqs, 4, NULL,
                                        0, 3),
                     POSATTN_OK);
    ck_assert_int_eq(posattn_force_isa(lacking), POSATTN_ERR_ISA_UNSUPPORTED);
    ck_assert_int_eq(posattn_active_isa(), best);
    ck_assert_int_eq(posattn_rope_apply(3, 2, 8, x1, 0, 0, 2, 4, POSATTN_ROPE_INTERLEAVED, 2, pos, 0, freqs, 4, NULL,
                                        0, 3),
                     POSATTN_OK);
    ck_assert_int_eq(posattn_active_isa(), best);
    ck_assert_msg(memcmp(x0, x1, sizeof x0) == 0, "after refusing %s, %s gave other results",
                  posattn_isa_name(lacking), posattn_isa_name(best));
}
END_TEST

static Suite *errors_rope_suite(void) {
    Suite *s = suite_create("errors_rope");
    TCase *tc = make_tcase("errors_rope");
    tcase_add_test(tc, test_apply_errors);
    tcase_add_test(tc, test_builder_errors);
    tcase_add_test(tc, test_builder_value_errors);
    tcase_add_test(tc, test_refused_isa_keeps_kernels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    return run_suite(errors_rope_suite());
}
