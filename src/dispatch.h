/* The dispatcher's internal interface: the kernel that serves each operation under the active ISA. */
#ifndef POSATTN_DISPATCH_H
#define POSATTN_DISPATCH_H

#include "kernels.h"

/* The kernel of op under the active ISA (resolving it on first use): the active ISA's own line of the registry,
 * else the next ISA's in priority order whose CPU features are present. Never NULL: scalar has every operation. */
POSATTN_HIDDEN posattn_kernel posattn_kernel_for(posattn_op op);

/* Typed accessors, one per operation: posattn_dispatch_alibi_softmax_row() and so on. */
#define POSATTN_DISPATCH_ACCESSOR(id, op)                                                                          \
    static inline posattn_##op##_kernel *posattn_dispatch_##op(void) { return posattn_kernel_for(id).op; }
POSATTN_OPERATIONS(POSATTN_DISPATCH_ACCESSOR)
#undef POSATTN_DISPATCH_ACCESSOR

#endif /* POSATTN_DISPATCH_H */
