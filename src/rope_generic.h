/*
 * The rotary embeddings' token kernel (SPEC 4, contract in src/rope_kernels.h), written once and compiled once per
 * SIMD ISA (the pattern of src/liere_generic.h): each src/<isa>/rope.c defines a thin vector vocabulary, then
 * includes this file, which defines posattn_rope_token_f32_<isa>.
 *
 * Written here, once: the loop over blocks of POSATTN_ROPE_BLOCK_PAIRS pairs; the angles, products and sums in
 * float32 in axis order with separate multiplies and adds (the library is compiled with -ffp-contract=off), so
 * they are bit-identical on every ISA and to the scalar reference; the factor f_k = attn_factor * pair_factors[k]
 * rounded once, or attn_factor alone, or no multiply at all when it is exactly 1; the sign of sin for the
 * backward direction; the loop over heads, where a table shared by every head (freq_head_stride 0) has its cos and
 * sin computed once per block and token and every head streams through them; the choice of layout; the software
 * prefetch of the rotated lines ROPE_PREFETCH_BYTES ahead in the order the loops visit them (why: see there).
 * Left to each ISA: loads with tails, its sincos, and the rotation of a block of pairs with its own shuffles,
 * because that is where the ISAs differ (masked loads or none, lane swaps, split-line accesses).
 *
 * The cos/sin buffers are written in whole vectors (the block size is a multiple of every vector width) in the
 * layout the rotation reads: half-split c[j], s[j]; interleaved c[2j] = c[2j+1] = c_j, s[2j] = -s_j,
 * s[2j+1] = s_j, so that x' = x*c + swap(x)*s with one multiply and one FMA per vector.
 *
 * The scalar reference (src/scalar/rope.c) does not include this file: it keeps its own plain loops, which read
 * as the formulas of the contract, so that the differential tests and fuzzing also check this driver's blocking,
 * head loop and table sharing against code that does not share them.
 *
 * Vocabulary the includer defines before including (functions static inline):
 *   ROPE_ISA                      suffix of the entry point (avx2, avx512, neon)
 *   ROPE_W                        float32 lanes per vector
 *   ROPE_ALIGN                    alignment in bytes of the cos/sin buffers (the rotations load them aligned)
 *   vf, rope_tail_t               the vector type; which lanes of a vector are in range
 *   rope_tail(remaining)          the lanes below `remaining` (every lane when remaining >= ROPE_W)
 *   vf_load_tail(p, m)            the lanes of m from p, zeros elsewhere, reading nothing outside m
 *   vf_set1, vf_mul, vf_add       broadcast, product, sum (each rounded)
 *   vf_neg(v)                     v with its sign bits flipped
 *   vf_store_aligned(p, v)        a whole vector to p, aligned to ROPE_ALIGN
 *   rope_sincos(theta, &s, &c)    sin and cos of every lane, for every finite float (full range reduction)
 *   rope_store_interleaved(c, s, cv, sv)   2 * ROPE_W floats of each buffer in the interleaved layout above
 *   rope_rotate_interleaved(x, n, c, s)    rotates the n floats (n / 2 pairs) of one head block
 *   rope_rotate_half_split(a, b, nb, c, s) rotates pairs (a[j], b[j]) for j < nb
 * and may define (with the macro ROPE_ROTATE_HALF_SPLIT_PER_HEAD):
 *   rope_rotate_half_split_per_head(...)   the same, used when every head has its own table (compute-bound)
 */
#include <stdint.h>

#include "kernels.h"

#ifndef ROPE_ISA
#error "define the vector vocabulary before including rope_generic.h"
#endif

_Static_assert(POSATTN_ROPE_BLOCK_PAIRS % ROPE_W == 0, "a block of pairs is whole vectors");

#define ROPE_CAT_(a, b) a##b
#define ROPE_CAT(a, b) ROPE_CAT_(a, b)
#define ROPE_FN(name) ROPE_CAT(name, ROPE_ISA)

/* theta for pairs k .. k + ROPE_W - 1 of table F (inactive lanes 0). */
static inline __attribute__((always_inline)) vf rope_angles(const posattn_rope_token *t, const float *F, int64_t k,
                                                            rope_tail_t m) {
    vf theta = vf_mul(vf_set1(t->pos[0]), vf_load_tail(F + k, m));
    for (int64_t a = 1; a < t->n_axes; ++a) {
        theta = vf_add(theta, vf_mul(vf_set1(t->pos[a]), vf_load_tail(F + a * t->n_pairs + k, m)));
    }
    return theta;
}

/* cos and sin of block pairs [k0, k0 + nb) of table F, factor and direction applied, in the rotation's layout.
 * Inlined into both head loops: an out-of-line call per head cost 3% on the vision mixed shape. */
static inline __attribute__((always_inline)) void rope_cos_sin_block(const posattn_rope_token *t, const float *F,
                                                                     int64_t k0, int64_t nb, float *c, float *s) {
    const int scaled = t->pair_factors != NULL || t->attn_factor != 1.0f;
    for (int64_t j = 0; j < nb; j += ROPE_W) {
        const int64_t k = k0 + j;
        const rope_tail_t m = rope_tail(nb - j);
        vf sin_v, cos_v;
        rope_sincos(rope_angles(t, F, k, m), &sin_v, &cos_v);
        if (t->backward) sin_v = vf_neg(sin_v);
        if (scaled) {
            vf f = vf_set1(t->attn_factor);
            if (t->pair_factors) f = vf_mul(f, vf_load_tail(t->pair_factors + k, m));
            cos_v = vf_mul(cos_v, f);
            sin_v = vf_mul(sin_v, f);
        }
        if (t->half_split) {
            vf_store_aligned(c + j, cos_v);
            vf_store_aligned(s + j, sin_v);
        } else {
            rope_store_interleaved(c + 2 * j, s + 2 * j, cos_v, sin_v);
        }
    }
}

/* Every 64-byte line that holds one of the n floats from p, into every cache level, one prefetch per line. Always
 * inlined: GCC 12 finds a function that only prefetches "pure" and deletes its calls. */
static inline __attribute__((always_inline)) void rope_prefetch_span(const float *p, int64_t n) {
    const uintptr_t first = (uintptr_t)p & ~(uintptr_t)63, last = (uintptr_t)(p + n - 1) & ~(uintptr_t)63;
    for (uintptr_t line = first; line <= last; line += 64) __builtin_prefetch((const void *)line, 0, 3);
}

/* Where the rotated floats of block k0 of a head start (a, and b for the half-split second half) and how many. */
typedef struct rope_block_span {
    int64_t a, b, n;
} rope_block_span;

static inline __attribute__((always_inline)) rope_block_span rope_block_at(const posattn_rope_token *t, int64_t k0) {
    const int64_t left = t->n_pairs - k0, nb = left < POSATTN_ROPE_BLOCK_PAIRS ? left : POSATTN_ROPE_BLOCK_PAIRS;
    rope_block_span sp = {2 * k0, 2 * k0, 2 * nb}; /* interleaved, or half-split in one block: one span */
    if (t->half_split && nb != t->n_pairs) sp = (rope_block_span){k0, t->n_pairs + k0, nb};
    return sp;
}

static inline __attribute__((always_inline)) void rope_prefetch_head(const float *head, rope_block_span sp) {
    rope_prefetch_span(head + sp.a, sp.n);
    if (sp.b != sp.a) rope_prefetch_span(head + sp.b, sp.n);
}

/* How far ahead the head loop prefetches, in bytes of rotated data (at most one token ahead). Why at all: on AMD
 * Zen 5 (EPYC, 2 vCPUs), rotating 64 MiB of q in place with one shared table, the 512-bit rotation ran at half the
 * speed of the 256-bit one (3.7-4.0 against 2.2 ms; an in-place 512-bit multiply loop over the same bytes: 1.7 ms).
 * The 512-bit kernel touches each line with exactly one load from each of several unrolled load instructions, and
 * the hardware prefetchers then kept too few lines in flight: splitting only the loads into 256-bit halves
 * recovered most of it (2.4 ms), moving cos/sin into registers did not (3.4 ms). With these prefetches both ISAs
 * stream at the in-place loop's speed (1.8-1.9 ms). 16 KiB measured best of 2, 4, 8, 16 KiB (2.4, 2.2, 1.9, 1.8 ms). */
enum { ROPE_PREFETCH_BYTES = 16384 };

/* Head h of block k0 (nb pairs): cos and sin into c, s when its table is its own (or h is 0), then its rotation. */
static inline __attribute__((always_inline)) void rope_head(const posattn_rope_token *t, int64_t k0, int64_t nb,
                                                            int64_t h, int shared, float *c, float *s) {
    if (h == 0 || !shared) rope_cos_sin_block(t, t->freqs + h * t->freq_head_stride, k0, nb, c, s);
    float *x = t->x + h * t->head_stride;
    if (!t->half_split) {
        rope_rotate_interleaved(x + 2 * k0, 2 * nb, c, s);
        return;
    }
#ifdef ROPE_ROTATE_HALF_SPLIT_PER_HEAD
    if (!shared) {
        rope_rotate_half_split_per_head(x + k0, x + t->n_pairs + k0, nb, c, s);
        return;
    }
#endif
    rope_rotate_half_split(x + k0, x + t->n_pairs + k0, nb, c, s);
}

void ROPE_FN(posattn_rope_token_f32_)(const posattn_rope_token *t) {
    _Alignas(ROPE_ALIGN) float c[2 * POSATTN_ROPE_BLOCK_PAIRS];
    _Alignas(ROPE_ALIGN) float s[2 * POSATTN_ROPE_BLOCK_PAIRS];
    const int shared = t->freq_head_stride == 0;
    for (int64_t k0 = 0; k0 < t->n_pairs; k0 += POSATTN_ROPE_BLOCK_PAIRS) {
        const int64_t left = t->n_pairs - k0, nb = left < POSATTN_ROPE_BLOCK_PAIRS ? left : POSATTN_ROPE_BLOCK_PAIRS;
        /* Per-head tables (cos and sin for every head) are bound by the sincos, not by memory: there the prefetches
         * cost 3% (mixed shape, Zen 5). A loop of its own without them costs nothing in the calls that do not. */
        if (!t->prefetch || !shared) {
            for (int64_t h = 0; h < t->n_heads; ++h) rope_head(t, k0, nb, h, shared, c, s);
            continue;
        }
        const int64_t head_bytes = 2 * nb * (int64_t)sizeof(float), want = ROPE_PREFETCH_BYTES / head_bytes + 1;
        const int64_t ahead = want < t->n_heads ? want : t->n_heads;
        /* The heads `ahead` further on in the loops' order: of this block, then of the next block or token. */
        const rope_block_span here = rope_block_at(t, k0);
        const int last_block = k0 + POSATTN_ROPE_BLOCK_PAIRS >= t->n_pairs;
        const float *later = last_block ? t->next_x : t->x;
        const rope_block_span there = rope_block_at(t, last_block ? 0 : k0 + POSATTN_ROPE_BLOCK_PAIRS);
        for (int64_t h = 0; h < t->n_heads; ++h) {
            if (h + ahead < t->n_heads) {
                rope_prefetch_head(t->x + (h + ahead) * t->head_stride, here);
            } else if (later) {
                rope_prefetch_head(later + (h + ahead - t->n_heads) * t->head_stride, there);
            }
            rope_head(t, k0, nb, h, 1, c, s);
        }
    }
}

#undef ROPE_ROTATE_HALF_SPLIT_PER_HEAD
#undef ROPE_FN
#undef ROPE_CAT
#undef ROPE_CAT_
