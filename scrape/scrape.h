/* scrape.h -- scraping: for now, building targets from discovered target groups.
 *
 * What this module owns today: turning one discovered target (its labels
 * and its group's labels) into a scrape target under a scrape config, as
 * Prometheus's scrape/target.go PopulateDiscoveredLabels + PopulateLabels
 * do; the URL of each profile type of a target, as Parca builds it; and the
 * spreading of scrapes over the interval (a stable per-target offset).
 *
 * Label population (PROMETHEUS.md 1.2), with firn's choices:
 * - Discovered labels: the target's labels, then each group label the
 *   target lacks, then, where still empty: job, __scrape_interval__,
 *   __scrape_timeout__ (durations printed as Prometheus prints them),
 *   __metrics_path__ and __scheme__; then __param_<k> = the first value of
 *   each params key k.  An empty value is an absent label.
 * - __metrics_path__ is the job's profiling_config.path_prefix ("" unless
 *   given, so absent by default).  firn scrapes several pprof paths per
 *   target, so there is no single metrics path; the prefix is the part
 *   relabeling may want to change per target (a Kubernetes annotation, say),
 *   and each profile type's own path is appended to it (see the URL below).
 * - The histogram labels of Prometheus are not set: firn scrapes no
 *   metrics.
 * - Relabeling (relabel_configs) then runs.  A dropped target is not an
 *   error: out->dropped is set and only the discovered labels are filled
 *   (for the targets API's droppedTargets).
 * - Checks, with Prometheus's messages: "no address"; "%q is not a valid
 *   hostname" for an __address__ holding '/'; "error parsing scrape
 *   interval: ...", "scrape interval cannot be 0", and the same for the
 *   timeout.  A timeout above the interval is accepted, as the config
 *   accepts it per job (Parca needs timeout > interval for CPU profiles).
 * - Then __meta_* labels are deleted, instance defaults to __address__
 *   (no default port is added, as Prometheus v3), and every value must be
 *   valid UTF-8 ("invalid label value for \"custom\": \"\xbd\"").
 *
 * URL: __scheme__://__address__ + __metrics_path__ + the profile type's
 * path (without the job's path_prefix), and a query encoded as Go's
 * url.Values.Encode (keys sorted, query-escaped): the config's params, the
 * first value of each key replaced or added by __param_<key>; for a delta
 * profile type (process_cpu) seconds=N, replacing any other seconds value,
 * since the profile type's timeout is derived from N.
 *
 * Memory: a scrape_target's arrays and strings come from the caller's
 * arena and live as long as it; the labels passed in and the config must
 * outlive the target (values may be shared, not copied).  URLs are
 * malloc'd: the caller frees them.
 * Threads: no global state; any thread may call any function here, the
 * config being read-only once loaded.
 */
#ifndef FIRN_SCRAPE_H
#define FIRN_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "model/model.h"

#define SCRAPE_LABEL_ADDRESS "__address__"
#define SCRAPE_LABEL_SCHEME "__scheme__"
#define SCRAPE_LABEL_METRICS_PATH "__metrics_path__"
#define SCRAPE_LABEL_INTERVAL "__scrape_interval__"
#define SCRAPE_LABEL_TIMEOUT "__scrape_timeout__"
#define SCRAPE_LABEL_PARAM_PREFIX "__param_"
#define SCRAPE_LABEL_META_PREFIX "__meta_"

/* A target after label population and relabeling.  Every label set is
 * sorted by name with unique names and no empty values. */
typedef struct scrape_target {
    firn_label *discovered;  /* before relabeling: /api/v1/targets discoveredLabels */
    size_t n_discovered;
    firn_label *labels;      /* after: every label but __meta_*; builds the URL */
    size_t n_labels;
    firn_label *public_labels;  /* the labels not starting with "__": attached to
                                 * every profile, the targets API's labels */
    size_t n_public;
    int64_t interval_ms;     /* from __scrape_interval__ */
    int64_t timeout_ms;      /* from __scrape_timeout__ */
    bool dropped;            /* relabeling dropped it: only discovered is set */
} scrape_target;

/* ---- targets --------------------------------------------------------------- */

/* Build *out from one target's labels and its group's labels (either may
 * be NULL when its count is 0; names unique within each) under cfg.
 * Returns 0 (out->dropped tells whether relabeling dropped it) or a
 * negative firn_status with err set: FIRN_EINVAL for the checks above,
 * FIRN_ETOOBIG past FIRN_RELABEL_LABELS_MAX labels, FIRN_ENOMEM. */
int scrape_target_labels(const config_scrape *cfg, const firn_label *target, size_t n_target,
                         const firn_label *group, size_t n_group, firn_arena *arena,
                         scrape_target *out, firn_err *err);

/* The URL that scrapes profile type pt (one of cfg's) of the kept target t,
 * malloc'd; NULL when out of memory. */
char *scrape_target_url(const scrape_target *t, const config_scrape *cfg,
                        const config_profile_type *pt);

/* ---- spreading --------------------------------------------------------------- */

/* The phase of t's scrapes within interval_ms, in [0, interval_ms): a
 * stable 64-bit hash of t's labels and url, xor seed, modulo the interval
 * (PROMETHEUS.md 1.3).  The same labels and URL give the same offset across
 * restarts; seed (from hostname and external labels) sets HA replicas
 * apart.  0 when interval_ms <= 0. */
uint64_t scrape_target_offset_ms(const scrape_target *t, const char *url, uint64_t seed,
                                 int64_t interval_ms);

/* How long to wait at now_ms (wall clock) before the first scrape of a
 * target with that offset, so that it is scraped at times congruent to
 * offset_ms modulo interval_ms: in (0, interval_ms].  interval_ms > 0 and
 * offset_ms < interval_ms. */
int64_t scrape_next_delay_ms(int64_t now_ms, int64_t interval_ms, uint64_t offset_ms);

#endif
