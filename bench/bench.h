/*
 * The benchmark suite's internal interface: benchmark bodies are C (cases.c and the peer and roofline files), the
 * C++ shim (shim.cc) only registers them with Google Benchmark and times pab_run.
 *
 * Names follow one grammar, parsed by scripts/bench_report.py:  <family>/<variant>/<shape>
 *   alibi_softmax/<isa>/<shape>          posattn_alibi_softmax with the ISA forced (one row per ISA of the registry)
 *   alibi_bias/<isa>/<shape>             posattn_alibi_bias (the external bias) with the ISA forced
 *   roofline_memcpy/rows/<shape>         memcpy of each row from S to P: the same bytes as the fused kernel
 *   roofline_sleef_expf/<isa>/<shape>    SLEEF's vector expf over the same elements (S read, P written)
 *   peer_onednn/softmax/<shape>          oneDNN softmax on logits with the bias added beforehand (add not timed)
 *   peer_onednn/bias+softmax/<shape>     the same with scale*S + B (bias materialised beforehand) timed too
 *   peer_xnnpack/softmax|bias+softmax/<shape>
 *   peer_naive/multipass/<shape>         plain C as engines write it: materialise, add, max, exp, sum, scale
 *   mt_alibi_softmax/<isa>/<shape>/threads:<n>   rows split over n threads with the row-range API
 *   attention/<isa>/<shape>, mt_attention/<isa>/<shape>/threads:<n>, roofline_read/<isa|plain>/<kv shape>,
 *   peer_onednn/attention_unfused/<shape>   the fused attention (bench/attention.c says what each one runs)
 * Google Benchmark appends "/real_time" to the multi-core ones, timed in wall-clock time. Every other case runs on
 * the calling thread only (oneDNN with one OpenMP thread, XNNPACK without a thread pool) and is timed in that
 * thread's CPU time, which a busy neighbour on a shared machine does not inflate (the report compares it with the
 * wall-clock time, also recorded, to flag disturbed runs).
 */
#ifndef PAB_BENCH_H
#define PAB_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pab_case {
    char name[160];
    double elements; /* logits processed per call: heads * nq * nk */
    double bytes;    /* bytes the call must move at least (see the family's comment in cases.c) */
    int threads;     /* threads used by one call (the multi-core family: 1..N) */
    int wall_clock;  /* 1: timed in wall-clock time (the multi-core family); 0: CPU time of the calling thread */
    double read_fraction; /* set by prepare where the call reads only part of its inputs (the far-field skip): the
                           * fraction of the K/V bytes its warm-up call read; 0 elsewhere */
    const void *impl; /* private to cases.c */
} pab_case;

/* Builds the list (idempotent). */
size_t pab_case_count(void);
const pab_case *pab_case_at(size_t i);

/* Prepares a case and runs it once untimed (warm-up, page faults). Returns NULL and sets *ctx on success, or a
 * static message saying why the case is skipped ("ISA not supported on this CPU", a peer not built, ...). */
const char *pab_prepare(const pab_case *c, void **ctx);
/* One call of the measured operation. */
void pab_run(void *ctx);
/* Releases what pab_prepare made for this case (shape buffers stay cached for the next case on the same shape). */
void pab_finish(void *ctx);
/* Frees every cached buffer. */
void pab_release_all(void);

/* A kernel family kept in its own file (bench/rope.c) registers its cases through these hooks, with the same
 * meaning as the functions above; the shim appends its cases after those of cases.c. */
typedef struct pab_family_ops {
    size_t (*count)(void);
    const pab_case *(*at)(size_t i);
    const char *(*prepare)(const pab_case *c, void **ctx);
    void (*run)(void *ctx);
    void (*finish)(void *ctx);
    void (*release_all)(void);
} pab_family_ops;

/* rope/<isa>/<shape> and roofline_memcpy/rope/<shape>: the rotary embeddings (bench/rope.c). */
extern const pab_family_ops pab_rope_family;
/* liere_rot/<isa>/<shape>, liere_apply/<isa>/<shape>, roofline_fma/<isa>/chains and
 * roofline_memcpy/liere_apply/<shape>: the LieRE rotations (bench/liere.c). */
extern const pab_family_ops pab_liere_family;
/* alibi_nd_softmax/<isa>/<shape> and alibi_nd_bias/<isa>/<shape>: ALiBi with N-D positions (bench/alibi_nd.c). */
extern const pab_family_ops pab_alibi_nd_family;
/* attention/<isa>/<shape>, mt_attention/<isa>/<shape>/threads:<n>, roofline_read/<isa|plain>/<kv shape> and
 * peer_onednn/attention_unfused/<shape>: the fused attention over a KV cache (bench/attention.c). */
extern const pab_family_ops pab_attention_family;

/* The ISAs with their own kernel of op in this build (posattn_op_isa(op, isa) == isa), scalar first, then from the
 * least to the most capable: one benchmark row per registry line, whether this CPU runs it or not (prepare skips
 * the unsupported ones). Writes at most POSATTN_ISA_COUNT entries; returns their number. */
int pab_op_isas(int op, int *isas);
/* Every compiled ISA but scalar, in the same order (the rooflines: one per ISA). */
int pab_simd_isas(int *isas);

/* Key/value facts for the benchmark context (JSON "context"): index i from 0 until it returns 0. */
int pab_context(size_t i, const char **key, char *value, size_t value_size);

#ifdef __cplusplus
}
#endif

#endif /* PAB_BENCH_H */
