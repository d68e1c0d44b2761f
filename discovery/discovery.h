/* discovery.h -- service discovery: where targets come from.
 *
 * Every mechanism produces target groups, as Prometheus's discovery
 * packages do: a group has a source (unique within its provider: for
 * static_configs the index of the entry, "0", "1", ...), its targets (each
 * a label set holding at least __address__) and labels common to all of
 * them.  A group with no targets tells that the source is now empty.  The
 * scrape manager (scrape/) turns groups into scrape targets; discovery
 * knows nothing of scraping.
 *
 * What is here today: the group type and static_configs.
 *
 * Memory: a disc_groups owns all it points to (one arena); free it with
 * disc_groups_free.  Threads: no global state.
 */
#ifndef FIRN_DISCOVERY_H
#define FIRN_DISCOVERY_H

#include <stddef.h>

#include "config/config.h"
#include "model/model.h"

typedef struct disc_target {
    firn_label *labels;   /* sorted by name */
    size_t n_labels;
} disc_target;

typedef struct disc_group {
    const char *source;
    disc_target *targets;
    size_t n_targets;
    firn_label *labels;   /* sorted by name */
    size_t n_labels;
} disc_group;

typedef struct disc_groups {
    disc_group *v;
    size_t n;
    firn_arena *arena;
} disc_groups;

/* The groups of a job's static_configs: one per entry, source = its index,
 * each target {__address__: target}. */
int disc_static_groups(const config_scrape *cfg, disc_groups *out, firn_err *err);
void disc_groups_free(disc_groups *g);

#endif
