/* Placeholder: forwards to the scalar reference until the neon kernels land. */
#include "../kernels.h"
void posattn_alibi_slopes_f32_neon(int64_t n, float b, float *s) { posattn_alibi_slopes_f32_scalar(n, b, s); }
void posattn_alibi_bias_row_f32_neon(const posattn_bias_row *r) { posattn_alibi_bias_row_f32_scalar(r); }
void posattn_alibi_softmax_row_f32_neon(const posattn_softmax_row *r) { posattn_alibi_softmax_row_f32_scalar(r); }
