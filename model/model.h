/* model.h -- the vocabulary every firn layer shares, one header per concept;
 * this umbrella includes them all.
 *
 * model/ sits below every other module (pprof/ included): it knows nothing
 * of profiles' contents, storage, HTTP serving or the query language.
 *
 *   model/err.h           errors: firn_status codes and firn_err
 *   model/alloc.h         the out-of-memory policy, x-allocators, firn_grow,
 *                         arenas, malloc settings
 *   model/buf.h           firn_buf, the one growable (capped) byte buffer
 *   model/text.h          UTF-8, Go quoting, JSON strings, HTTP reason phrases
 *   model/table.h         the u64 -> u32 hash map, sorted-array search
 *   model/clock.h         clocks, deadlines, Prometheus durations
 *   model/file.h          capped whole-file reads, atomic writes
 *   model/log.h           structured logs (logfmt)
 *   model/regex.h         PCRE2 regexes with Prometheus's anchoring
 *   model/labels.h        labels and label matchers
 *   model/relabel.h       Prometheus's relabel_config
 *   model/profile_type.h  the profile-type names of series
 *   model/exposition.h    Prometheus's text exposition format, histograms
 *
 * A file inside model/ includes the headers it needs, not this one.
 */
#ifndef FIRN_MODEL_H
#define FIRN_MODEL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "model/err.h"
#include "model/alloc.h"
#include "model/buf.h"
#include "model/text.h"
#include "model/table.h"
#include "model/clock.h"
#include "model/file.h"
#include "model/log.h"
#include "model/regex.h"
#include "model/labels.h"
#include "model/relabel.h"
#include "model/profile_type.h"
#include "model/exposition.h"

#endif
