/*
 * Peer: XNNPACK's softmax operator (the 2022 API of Debian's libxnnpack-dev: xnn_create_softmax_nc_f32(channels,
 * input_stride, output_stride, flags, &op), xnn_setup_softmax_nc_f32(op, batch, in, out, threadpool),
 * xnn_run_operator(op, threadpool)), with no thread pool: one thread. XNNPACK picks its micro-kernels for this CPU
 * through cpuinfo at xnn_initialize.
 */
#include <stdlib.h>

#include <xnnpack.h>

#include "peers.h"

struct pab_xnnpack {
    xnn_operator_t op;
    size_t rows;
    const float *in;
    float *out;
};

const char *pab_xnnpack_create(int64_t rows, int64_t nk, pab_xnnpack **out) {
    if (xnn_initialize(NULL) != xnn_status_success) return "XNNPACK could not initialise on this CPU";
    pab_xnnpack *p = calloc(1, sizeof *p);
    if (!p) return "out of memory";
    p->rows = (size_t)rows;
    if (xnn_create_softmax_nc_f32((size_t)nk, (size_t)nk, (size_t)nk, 0, &p->op) != xnn_status_success) {
        free(p);
        return "XNNPACK could not create the softmax operator";
    }
    *out = p;
    return NULL;
}

void pab_xnnpack_softmax(pab_xnnpack *p, const float *in, float *out) {
    /* Setup only stores the pointers and the batch; redo it only when they change (rotating buffers). */
    if (in != p->in || out != p->out) {
        xnn_setup_softmax_nc_f32(p->op, p->rows, in, out, NULL);
        p->in = in;
        p->out = out;
    }
    xnn_run_operator(p->op, NULL);
}

void pab_xnnpack_destroy(pab_xnnpack *p) {
    if (!p) return;
    xnn_delete_operator(p->op);
    free(p);
}
