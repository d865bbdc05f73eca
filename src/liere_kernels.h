/* The row contract of the LieRE rotations (SPEC 5) kernels: argument structs, and the registry macros that kernels.h
 * expands into every ISA's table. Empty until the family lands. */
#ifndef POSATTN_LIERE_KERNELS_H
#define POSATTN_LIERE_KERNELS_H

#define POSATTN_LIERE_TABLE_FIELDS
#define POSATTN_LIERE_TABLE_ENTRIES(isa)
#define POSATTN_LIERE_DECLARE(isa)

#endif /* POSATTN_LIERE_KERNELS_H */
