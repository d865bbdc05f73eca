/* The row contract of the rotary embeddings (SPEC 4) kernels: argument structs, and the registry macros that kernels.h
 * expands into every ISA's table. Empty until the family lands. */
#ifndef POSATTN_ROPE_KERNELS_H
#define POSATTN_ROPE_KERNELS_H

#define POSATTN_ROPE_TABLE_FIELDS
#define POSATTN_ROPE_TABLE_ENTRIES(isa)
#define POSATTN_ROPE_DECLARE(isa)

#endif /* POSATTN_ROPE_KERNELS_H */
