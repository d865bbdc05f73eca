/*
 * ggml's CPU ops on posattn, for the patched build of the packaged llama.cpp (integrations/ggml/ggml-cpu.patch).
 * Each entry point computes the op's share of rows for thread ith of nth and returns 1, or returns 0 without
 * writing anything when posattn cannot express the case, so the caller falls back to ggml's own code.
 */
#ifndef POSATTN_GGML_ADAPTER_H
#define POSATTN_GGML_ADAPTER_H
#ifdef __cplusplus
extern "C" {
#endif
struct lm_ggml_tensor;

/* soft_max_ext (scale, f32/f16 mask broadcast over heads, max_bias ALiBi with ggml's own slopes, sinks). Falls
 * back (returns 0) for: non-f32 input or output, non-contiguous rows, masks of another type. */
int posattn_ggml_soft_max_f32(int ith, int nth, struct lm_ggml_tensor *dst);

/* flash_attn_ext (f32 q; f32, f16 or bf16 K/V with ggml's byte strides, GQA and batch broadcast; f16 mask
 * broadcast or per head; max_bias ALiBi with ggml's own slopes; softcap; sinks) on posattn_attention, writing
 * ggml's permuted output [DV, H, nq, batch]. Thread ith takes a contiguous block of whole GQA groups of rows, so
 * one decode token is split over heads; decode (nq <= 4) past 4096 keys runs in key chunks merged at the end,
 * whose float64 partials it mallocs per call (one plain call instead if that fails). Falls back (returns 0) for:
 * quantized K/V, a q or dst that is not f32, strides that are not whole elements, head sizes above 576, more than
 * 1024 heads, masks broadcast over some but not all heads, a dst laid out otherwise than ggml's own. */
int posattn_ggml_flash_attn_ext_f32(int ith, int nth, struct lm_ggml_tensor *dst);

#ifdef __cplusplus
}
#endif
#endif
