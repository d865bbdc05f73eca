/*
 * Peer: oneDNN's softmax primitive (C API, oneDNN 2.x: dnnl_softmax_forward_desc_init), forward inference on a
 * plain [rows][nk] f32 tensor, axis 1. oneDNN picks its own JIT kernel for this CPU (reported in the benchmark
 * context). Debian's build threads with OpenMP: the thread count is set to 1 through omp_set_num_threads, found
 * at run time in the libgomp that libdnnl loads (the report script also exports OMP_NUM_THREADS=1).
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "peers.h"

struct pab_onednn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
};

void pab_onednn_one_thread(void) {
    void *symbol = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    void (*set_threads)(int);
    memcpy(&set_threads, &symbol, sizeof set_threads); /* POSIX guarantees this works; ISO C has no cast for it */
    if (symbol) set_threads(1);
}

void pab_onednn_destroy(pab_onednn *p) {
    if (!p) return;
    if (p->src) dnnl_memory_destroy(p->src);
    if (p->dst) dnnl_memory_destroy(p->dst);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    if (p->stream) dnnl_stream_destroy(p->stream);
    if (p->engine) dnnl_engine_destroy(p->engine);
    free(p);
}

const char *pab_onednn_create(int64_t rows, int64_t nk, pab_onednn **out) {
    pab_onednn_one_thread();
    pab_onednn *p = calloc(1, sizeof *p);
    if (!p) return "out of memory";
    dnnl_memory_desc_t md;
    dnnl_softmax_desc_t sd;
    const dnnl_dims_t dims = {rows, nk};
    if (dnnl_engine_create(&p->engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&p->stream, p->engine, dnnl_stream_default_flags) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_softmax_forward_desc_init(&sd, dnnl_forward_inference, &md, 1) != dnnl_success ||
        dnnl_primitive_desc_create(&p->pd, &sd, NULL, p->engine, NULL) != dnnl_success ||
        dnnl_primitive_create(&p->prim, p->pd) != dnnl_success ||
        dnnl_memory_create(&p->src, &md, p->engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&p->dst, &md, p->engine, DNNL_MEMORY_NONE) != dnnl_success) {
        pab_onednn_destroy(p);
        return "oneDNN could not create the softmax primitive";
    }
    *out = p;
    return NULL;
}

void pab_onednn_softmax(pab_onednn *p, const float *in, float *out) {
    dnnl_memory_set_data_handle(p->src, (void *)in);
    dnnl_memory_set_data_handle(p->dst, out);
    /* In place: the same memory object for both arguments, as oneDNN documents it. */
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DST, in == out ? p->src : p->dst}};
    dnnl_primitive_execute(p->prim, p->stream, 2, args);
    dnnl_stream_wait(p->stream);
}

void pab_onednn_describe(char *buf, size_t size) {
    const dnnl_version_t *v = dnnl_version();
    pab_onednn *p = NULL;
    const char *impl = "?";
    if (!pab_onednn_create(32, 4096, &p)) {
        const char *s = NULL;
        if (dnnl_primitive_desc_query(p->pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s) impl = s;
    }
    snprintf(buf, size, "%d.%d.%d %s", v->major, v->minor, v->patch, impl);
    pab_onednn_destroy(p);
}
