/*
 * Scalar reference of the fused attention tile (SPEC 9): portable C11, no intrinsics, written for clarity.
 *
 * Rows are computed one at a time, in the order of attention_kernels.h: the dot product in float32 in order of d,
 * the logit with posattn_softmax_row's roundings (one rounding per operation, no FMA: the build passes
 * -ffp-contract=off), libm expf for the weights and tanhf for the softcap, and the weighted sums of v accumulated
 * directly in float64 (more exact than the SIMD paths' float32 blocks, which the header's bound covers). The
 * flush rules are the SIMD paths' own, so every path agrees on which weights are exactly 0.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"

static float key_position(const posattn_key_positions *keys, int64_t j) {
    return keys->k_pos ? keys->k_pos[j * keys->k_pos_stride] : (float)j;
}

/* x_j of one row, or -inf when its mask excludes it. */
static float logit(const posattn_attention_tile *t, const posattn_attention_row *row, int64_t j) {
    const char *k = (const char *)t->k + (size_t)(j * t->k_tok_stride) * (t->k_type == POSATTN_KV_TYPE_F32 ? 4 : 2);
    float s = 0.0f;
    for (int64_t d = 0; d < t->dk; ++d) {
        s += row->q[d * t->q_dim_stride] * posattn_attention_kv_element(k, t->k_type, d);
    }
    float x = t->scale * s;
    if (t->softcap > 0.0f) x = t->softcap * tanhf(x / t->softcap);
    if (row->slope != 0.0f) {
        float dist = row->nd.axes >= 2
                         ? posattn_alibi_dist_nd(&row->nd, row->keys.k_pos + j * row->keys.k_pos_stride)
                         : fabsf(row->q_pos - key_position(&row->keys, j));
        x -= row->slope * dist;
    }
    if (row->mask) {
        float m = t->mask_is_f16 ? posattn_f16_to_f32(((const uint16_t *)row->mask)[j]) : ((const float *)row->mask)[j];
        x = (m == -INFINITY) ? -INFINITY : x + row->mask_scale * m;
    }
    return x;
}

static void attention_row(const posattn_attention_tile *t, const posattn_attention_row *row) {
    double a[POSATTN_ATTENTION_MAX_DIM];
    float x[POSATTN_ATTENTION_BLOCK];
    double l = 0.0;
    float m = -INFINITY;
    for (int64_t d = 0; d < t->dv; ++d) a[d] = 0.0;
    for (int64_t j0 = row->lo; j0 < row->hi; j0 += POSATTN_ATTENTION_BLOCK) {
        const int64_t n = row->hi - j0 < POSATTN_ATTENTION_BLOCK ? row->hi - j0 : POSATTN_ATTENTION_BLOCK;
        float block_max = -INFINITY;
        int block_nan = 0;
        for (int64_t b = 0; b < n; ++b) {
            x[b] = logit(t, row, j0 + b);
            block_max = fmaxf(block_max, x[b]);
            block_nan |= isnan(x[b]);
        }
        if (block_max == -INFINITY && !block_nan) continue; /* nothing valid: never -inf - (-inf) */
        if (block_max > m) {
            const double f = posattn_attention_rescale(m, block_max);
            l *= f;
            for (int64_t d = 0; d < t->dv; ++d) a[d] *= f;
            m = block_max;
        }
        for (int64_t b = 0; b < n; ++b) {
            const float gap = x[b] - m;
            if (gap < POSATTN_ATTENTION_FLUSH) continue; /* false for NaN: NaN reaches the sums */
            const float p = expf(gap);
            const char *v = (const char *)t->v +
                            (size_t)((j0 + b) * t->v_tok_stride) * (t->v_type == POSATTN_KV_TYPE_F32 ? 4 : 2);
            l += p;
            for (int64_t d = 0; d < t->dv; ++d) a[d] += (double)p * posattn_attention_kv_element(v, t->v_type, d);
        }
    }
    if (t->partial) {
        row->partial[0] = m;
        row->partial[1] = l;
        memcpy(row->partial + 2, a, (size_t)t->dv * sizeof(double));
        return;
    }
    posattn_attention_finish(row->out, row->lse, t->dv, row->has_sink, row->sink, m, l, a);
}

void posattn_attention_tile_f32_scalar(const posattn_attention_tile *tile) {
    for (int r = 0; r < tile->n_rows; ++r) attention_row(tile, &tile->rows[r]);
}
