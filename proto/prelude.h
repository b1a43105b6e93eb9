/*
 * prelude.h: force-included into every translation unit of ours (CMake's
 * track_warnings). System headers come first so their own inline uses of
 * banned names (glibc's atoi at -O2) still compile, then banned.h.
 */
#ifndef TRACK_PRELUDE_H
#define TRACK_PRELUDE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#endif
