/*
 * Shared helpers of the posattn Check suite: the ISA loop, a seeded PRNG, guarded allocations, a float16 codec,
 * the float64 oracles of SPEC sections 1-3 and the error bounds of include/posattn.h.
 *
 * Everything here uses the public API only. Expected values come from the oracles below (double precision, from the
 * same float32 inputs) or from the SPEC's printed test vectors, never from the library itself.
 *
 * The suite must pass with CK_FORK=no (Check under qemu-user): no test relies on fork isolation, every test forces
 * the ISA it needs, and per-element checks use CHECK (a plain `if`), not ck_assert, because Check records a mark
 * point for every passing ck_assert, which costs a pipe write per element in fork mode.
 */
#ifndef POSATTN_TEST_SUPPORT_H
#define POSATTN_TEST_SUPPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "posattn.h"

/* Fails the running test with a formatted message when cond is false. Cheap when it passes. */
#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                                    \
    } while (0)

/* ------------------------------------------------------------------------------------------------------------ */
/* Running a suite                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/* The base seed of this process: POSATTN_TEST_SEED from the environment (decimal or 0x hex) or a fixed default.
 * Printed once by run_suite, so that a failure can be replayed. */
uint64_t test_base_seed(void);

/* A seed for one case, derived from the base seed and a case number (printed in failure messages). */
uint64_t test_case_seed(uint64_t case_number);

/* Runs every test of the suite (CK_VERBOSITY, CK_FORK honoured) and returns the process exit status. */
int run_suite(Suite *suite);

/* A test case with a generous timeout (only enforced in fork mode; CK_TIMEOUT_MULTIPLIER scales it). */
TCase *make_tcase(const char *name);

/* ------------------------------------------------------------------------------------------------------------ */
/* Instruction sets                                                                                               */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * The ISA loop of every kernel test:
 *     FOR_EACH_ISA(isa) {
 *         if (!enter_isa(isa)) continue;
 *         ...
 *     }
 * visits every ISA the library lists as compiled (posattn_isa_list: the registry decides, never a range of enum
 * values), the scalar reference first, then from the least to the most capable. enter_isa returns 0 (and logs
 * once per process) when this CPU lacks the ISA; otherwise it forces the ISA and asserts that posattn_active_isa()
 * reports it, then returns 1. With an ISA forced, every operation it implements runs its own kernel and the others
 * run the next ISA's (posattn_op_isa), so every line of the registry is reached by some iteration.
 */
#define FIRST_ISA POSATTN_ISA_SCALAR
#define FOR_EACH_ISA(isa) for (posattn_isa isa = test_isa_first(); isa != POSATTN_ISA_AUTO; isa = test_isa_next(isa))
posattn_isa test_isa_first(void);
/* The ISA after isa in the loop's order, POSATTN_ISA_AUTO after the last. */
posattn_isa test_isa_next(posattn_isa isa);
int enter_isa(posattn_isa isa);

/* The best supported ISA by the library's priority list (the first supported entry of posattn_isa_list). */
posattn_isa best_supported_isa(void);

/* ------------------------------------------------------------------------------------------------------------ */
/* Random numbers: xorshift64*, fixed seeds                                                                       */
/* ------------------------------------------------------------------------------------------------------------ */

typedef struct rng {
    uint64_t state;
} rng;

rng rng_seeded(uint64_t seed);
uint64_t rng_next(rng *r);
/* Uniform in [0, 1) with 24 random bits (exact in float). */
double rng_unit(rng *r);
/* Uniform float in [lo, hi]. */
float rng_float(rng *r, double lo, double hi);
/* Uniform integer in [0, n). */
int64_t rng_below(rng *r, int64_t n);

/* ------------------------------------------------------------------------------------------------------------ */
/* Guarded allocations                                                                                            */
/* ------------------------------------------------------------------------------------------------------------ */

/*
 * A buffer of n elements of elem_size bytes. Inputs are allocated with no slack at the end (so AddressSanitizer
 * reports any over-read); outputs get GUARD_BYTES of canary after the data. With misalign set, the data starts one
 * element after a 64-byte aligned block (the element before it is a canary too); otherwise it is 64-byte aligned.
 */
#define GUARD_BYTES 64
typedef struct guarded {
    unsigned char *block;
    size_t lead;  /* bytes before data: 0 or one element */
    size_t size;  /* bytes of data */
    size_t trail; /* canary bytes after data: 0 for inputs */
    void *data;
} guarded;

guarded guarded_input(size_t n, size_t elem_size, int misalign);
guarded guarded_output(size_t n, size_t elem_size, int misalign);
void guarded_free(guarded *g);
/* Fails the test when a canary byte before or after the data changed. */
void guarded_check(const guarded *g, const char *what);

/*
 * Argument tables: every buffer of a call (inputs and outputs) lives in one arena of floats, filled and snapshotted
 * before each call, so that a refused call can be shown to have written no byte anywhere. Inputs-style allocation
 * (no slack): AddressSanitizer reports any access past the arena.
 */
#define ARENA_MAX_FLOATS 512
typedef struct arena {
    guarded buf;
    float *a;
    int64_t n;
    unsigned char before[ARENA_MAX_FLOATS * sizeof(float)];
} arena;

void arena_open(arena *ar, int64_t n_floats);
void arena_close(arena *ar);
/* Fills every float with a finite pattern (0.25 + (k % 7) / 8); callers then place their integer tables. */
void arena_fill(arena *ar);
/* Records the arena's bytes as "before the call". */
void arena_snapshot(arena *ar);
/* Whether every byte equals the snapshot. */
int arena_unchanged(const arena *ar);
/* Fails the test unless st == expected and, when expected is an error, the arena is byte for byte as snapshotted.
 * fn names the entry point, change the argument change of the row (its source text), line its line. */
void arena_expect(const arena *ar, posattn_status st, posattn_status expected, const char *fn, const char *change,
                  int line);

/* A float whose bits mark "never written" (a NaN nobody computes). */
float untouched_pattern(void);
void fill_untouched(float *x, size_t n);
void fill_nan(float *x, size_t n);
int same_bits(float a, float b);

/* ------------------------------------------------------------------------------------------------------------ */
/* Positions                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

typedef enum positions_kind {
    POSITIONS_NULL,         /* positions pointer NULL: KV-cache default pk = j, pq = nk - nq + i */
    POSITIONS_ZEROED,       /* pointer to a zero-initialised struct: the same default */
    POSITIONS_SHARED,       /* irregular float q[nq] and k[nk] shared by all heads */
    POSITIONS_PER_HEAD,     /* each head its own q and k arrays (q_head_stride nq, k_head_stride nk) */
    POSITIONS_KEYS_ONLY,    /* k given, q NULL (default) */
    POSITIONS_QUERIES_ONLY, /* q given, k NULL (default) */
    POSITIONS_STRIDED,      /* q_stride 2 shared; k_stride 3 with per-head arrays (k_head_stride 3 nk + 1) */
    POSITIONS_WEIGHTED,     /* shared arrays with per-head weights in [0, 2] (head 0: weight 0), metric L1 */
    POSITIONS_WEIGHTED_L2,  /* shared arrays with per-head weights in [-2, 2], metric L2 (uses |w|) */
    POSITIONS_KIND_COUNT
} positions_kind;

extern const char *const positions_kind_names[POSITIONS_KIND_COUNT];

typedef struct positions_spec {
    positions_kind kind;
    int64_t n_heads, nq, nk;
    double span;       /* irregular key positions (cumulative sums of random gaps) cover about [0, span] */
    int infinite_keys; /* key positions j = 3, 10, 17, ... are +inf */
    int misalign_q, misalign_k, misalign_weights;
} positions_spec;

typedef struct position_buffers {
    guarded q, k, weights;
} position_buffers;

/* Fills *p (and allocates exact-size arrays, NaN in every element between strided positions) for the spec. The
 * caller passes NULL instead of p to the API for POSITIONS_NULL. */
void build_positions(const positions_spec *spec, rng *g, posattn_positions *p, position_buffers *b);
void free_positions(position_buffers *b);

/* ------------------------------------------------------------------------------------------------------------ */
/* IEEE binary16                                                                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

/* float32 -> binary16, round to nearest even, with overflow to infinity, subnormals, infinities and NaN. */
uint16_t f32_to_f16(float f);
/* binary16 -> double, exact. */
double f16_to_f64(uint16_t h);

/* ------------------------------------------------------------------------------------------------------------ */
/* Error bounds, as stated in include/posattn.h                                                                   */
/* ------------------------------------------------------------------------------------------------------------ */

#define UNIT_ROUNDOFF 0x1p-24 /* u */
/* The absolute term of the softmax bound: outputs below 2^-125 are flushed to 0. */
#define SOFTMAX_ABS_BOUND 2.4e-38

/* |P_j - P*_j| <= softmax_rel_bound(L, d_j) * P*_j + SOFTMAX_ABS_BOUND */
double softmax_rel_bound(double L, double d);
/* |lse - lse*| <= lse_bound(L, lse*) */
double lse_bound(double L, double lse_exact);
/* The size of one unit in the last place of a float32 near |x| (the binade of x; 2^-149 below FLT_MIN). */
double f32_ulp(double x);

/* ------------------------------------------------------------------------------------------------------------ */
/* Oracles (float64, from the same float32 inputs)                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/* SPEC 1: the slope of head h of n_heads for max_bias, in double. */
double oracle_slope(int64_t h, int64_t n_heads, double max_bias);

/* Position of query i / key j of head h as the header describes it (default integer positions when absent). */
double query_position(const posattn_positions *p, int64_t nq, int64_t nk, int64_t h, int64_t i);
double key_position(const posattn_positions *p, int64_t h, int64_t j);

/* SPEC 2, one axis: bias = -m_h * dist, dist = w|dq - dk| (L1) or |w (dq - dk)| (L2); exactly 0 when the effective
 * slope m_h * w is 0 (a zero slope turns ALiBi off, even for infinite positions). */
double oracle_bias(const float *slopes, const posattn_positions *p, int64_t nq, int64_t nk, int64_t h, int64_t i,
                   int64_t j);

/* Everything the fused softmax reads, with the strides as passed to the API (0 meaning the documented default). */
typedef struct softmax_problem {
    int64_t n_heads, nq, nk;
    const float *scores;
    int64_t s_row_stride, s_head_stride;
    float scale;
    const float *slopes;
    const posattn_positions *positions;
    const posattn_softmax_options *options;
} softmax_problem;

/* The exact result of one row r = h*nq + i (SPEC 3). */
typedef struct oracle_row {
    double *p;              /* [nk] probabilities; 0 for excluded keys */
    double *d;              /* [nk] mx - x_j for valid keys */
    unsigned char *valid;   /* [nk] 1 when the key takes part */
    int any_valid;          /* a valid key exists */
    double lse;             /* mx + log(denominator); -inf when nothing is valid and there is no sink */
    double L;               /* max over valid keys of |softcapped scale*S| + |bias| + |mask term|, and |sink| */
} oracle_row;

oracle_row oracle_row_alloc(int64_t nk);
void oracle_row_free(oracle_row *o);
void oracle_softmax_row(const softmax_problem *pr, int64_t r, oracle_row *out);

#endif /* POSATTN_TEST_SUPPORT_H */
