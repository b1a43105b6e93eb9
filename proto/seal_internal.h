/*
 * seal_internal.h: what seal.c and seal_key.c share, and nothing outside
 * proto/ sees.
 */
#ifndef TRACK_SEAL_INTERNAL_H
#define TRACK_SEAL_INTERNAL_H

#include "seal.h"

/* Fills err (may be NULL) with code and the formatted message; returns code. */
__attribute__((format(printf, 3, 4))) int seal_i_fail(struct seal_err *err, int code,
                                                      const char *fmt, ...);
/* sodium_init once; SEAL_E_* with a message when libsodium cannot start. */
int seal_i_init_sodium(struct seal_err *err);

#endif
