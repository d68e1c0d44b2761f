/* internal.h -- what the files of promql-like/ share and nobody else uses. */
#ifndef FIRN_PQL_INTERNAL_H
#define FIRN_PQL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"

/* Stack filters (__function__ matchers): whether a function name satisfies
 * the positive form of m (= and != test equality, =~ and !~ the regex),
 * and whether m wants a stack with such a frame (= =~) or without (!= !~).
 * The negation applies per stack, not per frame.  Defined in profile.c. */
bool pql_filter_hit(const firn_matcher *m, const char *name);
bool pql_filter_positive(const firn_matcher *m);

#endif
