/*
 * Two hooks of the SVE ALiBi kernels (src/sve/alibi.c; the row kernels themselves are declared in src/kernels.h)
 * that only tests/test_sve_rows.c calls: the vector length the kernels run at, and the key positions of the 1-D
 * rows as the kernels form them (the implicit positions past 2^31 cannot be reached through a row without a row of
 * 2^31 keys).
 */
#ifndef POSATTN_SVE_ALIBI_SVE_H
#define POSATTN_SVE_ALIBI_SVE_H

#include "../kernels.h"

/* svcntw(): float32 lanes of one vector on this CPU (or under this qemu -cpu). */
POSATTN_HIDDEN int64_t posattn_sve_lanes_f32(void);

/* Positions of keys j .. j+n-1 (1 <= n <= posattn_sve_lanes_f32()) into out[0, n), as the row kernels form them. */
POSATTN_HIDDEN void posattn_sve_key_positions_f32(const posattn_key_positions *keys, int64_t j, int64_t n,
                                                  float *out);

#endif /* POSATTN_SVE_ALIBI_SVE_H */
