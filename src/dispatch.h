/* The dispatcher's internal interface: the kernel table of the active ISA. */
#ifndef POSATTN_DISPATCH_H
#define POSATTN_DISPATCH_H

#include "kernels.h"

/* The table of the active ISA (resolving it on first use). Every entry is non-NULL. */
POSATTN_HIDDEN const posattn_kernel_table *posattn_active_kernels(void);

#endif /* POSATTN_DISPATCH_H */
