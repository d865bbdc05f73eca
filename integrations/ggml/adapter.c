/* ggml's soft_max_ext routed through posattn_alibi_softmax; see adapter.h. */
#include "adapter.h"
#include "ggml_slopes.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ggml.h"
#include "posattn.h"


int posattn_ggml_soft_max_f32(int ith, int nth, struct lm_ggml_tensor *dst)
{
    const struct lm_ggml_tensor *src0 = dst->src[0];
    const struct lm_ggml_tensor *mask = dst->src[1];
    const struct lm_ggml_tensor *sinks = dst->src[2];
    if (src0->type != LM_GGML_TYPE_F32 || dst->type != LM_GGML_TYPE_F32 || src0->nb[0] != sizeof(float) ||
        dst->nb[0] != sizeof(float) || src0->nb[1] % sizeof(float) || dst->nb[1] % sizeof(float)) {
        return 0;
    }
    if (mask && !((mask->type == LM_GGML_TYPE_F32 || mask->type == LM_GGML_TYPE_F16) &&
                  mask->nb[0] == lm_ggml_type_size(mask->type) && mask->nb[1] % mask->nb[0] == 0)) {
        return 0;
    }
    if (sinks && (sinks->type != LM_GGML_TYPE_F32 || !lm_ggml_is_contiguous(sinks))) {
        return 0;
    }
    float scale, max_bias;
    memcpy(&scale, (const float *)dst->op_params + 0, sizeof(float));
    memcpy(&max_bias, (const float *)dst->op_params + 1, sizeof(float));
    const int64_t nk = src0->ne[0], nq = src0->ne[1], n_head = src0->ne[2];
    /* Each thread takes a contiguous block of all n3*H*nq rows (ggml strides only the nq rows of every head over
     * threads, which leaves all but one thread idle on decode, nq = 1); the blocks cover every row once. */
    const int64_t n_rows = src0->ne[3] * n_head * nq;
    const int64_t first = n_rows * ith / nth, last = n_rows * (ith + 1) / nth;
    for (int64_t i3 = 0; i3 < src0->ne[3]; i3++) {
        for (int64_t h = 0; h < n_head; h++) {
            const int64_t plane = (i3 * n_head + h) * nq;
            const int64_t row_begin = first > plane ? first - plane : 0;
            const int64_t row_end = last - plane < nq ? last - plane : nq;
            if (row_begin >= row_end) {
                continue;
            }
            const float slope = ggml_alibi_slope(max_bias, (uint32_t)n_head, (uint32_t)h);
            posattn_softmax_options opt = {0};
            opt.flags = POSATTN_MASK_TIMES_SLOPE;
            if (mask) {
                const int64_t m2 = h % mask->ne[2], m3 = i3 % mask->ne[3];
                opt.mask = (const char *)mask->data + m2 * mask->nb[2] + m3 * mask->nb[3];
                opt.mask_type = mask->type == LM_GGML_TYPE_F16 ? POSATTN_MASK_F16 : POSATTN_MASK_F32;
                opt.mask_row_stride = (int64_t)(mask->nb[1] / mask->nb[0]);
            }
            if (sinks) {
                opt.sinks = (const float *)sinks->data + h;
            }
            const float *s = (const float *)((const char *)src0->data + h * src0->nb[2] + i3 * src0->nb[3]);
            float *p = (float *)((char *)dst->data + h * dst->nb[2] + i3 * dst->nb[3]);
            if (posattn_alibi_softmax(1, nq, nk, s, (int64_t)(src0->nb[1] / sizeof(float)), 0, p,
                                      (int64_t)(dst->nb[1] / sizeof(float)), 0, scale, &slope, NULL, &opt,
                                      row_begin, row_end) != POSATTN_OK) {
                /* Same shapes and strides for every plane: only a thread's first call can fail, before it wrote
                 * anything; ggml's fallback then recomputes every row of that thread's ith, which is harmless. */
                return 0;
            }
        }
    }
    return 1;
}
