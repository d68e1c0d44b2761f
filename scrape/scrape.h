/* scrape.h -- scraping: targets from discovered groups, and the scrape manager.
 *
 * What this module owns: turning one discovered target (its labels and its
 * group's labels) into a scrape target under a scrape config, as
 * Prometheus's scrape/target.go PopulateDiscoveredLabels + PopulateLabels
 * do; the URL of each profile type of a target, as Parca builds it; the
 * spreading of scrapes over the interval (a stable per-target offset); and
 * the scrape manager that pulls every (target, profile type) on its
 * schedule and stores what it gets (see "the scrape manager" below).
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
#include "discovery/discovery.h"
#include "model/model.h"
#include "tsdb/tsdb.h"

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
 * FIRN_ETOOBIG past FIRN_RELABEL_LABELS_MAX labels. */
int scrape_target_labels(const config_scrape *cfg, const firn_label *target, size_t n_target,
                         const firn_label *group, size_t n_group, firn_arena *arena,
                         scrape_target *out, firn_err *err);

/* The URL that scrapes profile type pt (one of cfg's) of the kept target t,
 * malloc'd; never NULL. */
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

/* ---- the scrape manager ------------------------------------------------------
 *
 * One scrape pool per job; in a pool one scrape loop per (kept target,
 * enabled profile type), as Parca: each loop is a target of its own on
 * /api/v1/targets, its labels the target's plus __name__ = the profile
 * type's name.  A loop scrapes at times congruent to its offset modulo its
 * interval (scrape_target_offset_ms), so scrapes spread over the interval
 * and keep their phase across restarts.  A tick that finds the previous
 * scrape of the loop still running (or still being stored) is skipped.
 *
 * Threads:
 *  - one scrape thread drives every HTTP request through one libcurl multi
 *    handle (connections reused; timeouts, body limits, gzip, TLS and auth
 *    per job).  It never decodes or stores.
 *  - ingest workers take fetched bodies from a bounded queue, decode them
 *    (pprof/ with its caps), turn cumulative columns into deltas per loop
 *    (pprof_delta_apply: the first scrape only sets the baseline), check
 *    sample_limit, keep the configured sample types, and hand the profile to
 *    the store without waiting for its commit (ingest_pprof_async): a
 *    worker goes on to the next body, so the profiles of many targets
 *    share one commit.  The store's answer comes back to the workers,
 *    which then record the scrape (health, lastError) and free the loop
 *    for its next scrape; a scrape counts as stored only once durable.
 *    Memory in flight is bounded by the ingest budget (a decoded profile
 *    keeps its grant until the store answers) and the store's queue
 *    limits, which hold a worker back when full.  A full queue
 *    drops the profile with lastError saying so, never blocks the scrape
 *    thread.
 *  - scrape_manager_apply/update/status/metrics may be called from any
 *    thread; apply and update return once the pools are rebuilt (loops
 *    start scraping on their next tick).
 *
 * Reload: a job whose scrape config is unchanged (config_scrape_equal)
 * keeps its pool as it is: loops, delta baselines and health.  Other jobs
 * are rebuilt; jobs no longer configured stop (an in-flight request is
 * aborted).  Within a pool, a target group update keeps every loop whose
 * labels and URL are unchanged.
 *
 * Health per loop: unknown until its first scrape ends, then up or down
 * with lastError, the wall time the last scrape started and how long
 * fetching and storing took.
 */

typedef struct scrape_manager scrape_manager;

typedef struct scrape_options {
    tsdb *db;                  /* where profiles go; must outlive the manager */
    size_t ingest_workers;     /* default 2 */
    size_t ingest_queue_max;   /* fetched profiles waiting for a worker (default 512) */
    uint64_t offset_seed;      /* sets HA replicas apart (scrape_target_offset_ms) */
    uint64_t default_body_limit;  /* when a job sets no body_size_limit (default:
                                     pprof's max_input_bytes) */
    const char *user_agent;    /* default "firn/<version>" */
} scrape_options;

void scrape_options_default(scrape_options *o);
scrape_manager *scrape_manager_new(const scrape_options *o, firn_err *err);
/* Stops every loop (aborting requests), lets the workers finish what they
 * hold, frees everything including the configs taken. */
void scrape_manager_free(scrape_manager *m);

/* Run cfg: the manager takes it (frees it when no pool uses it any more).
 * Each job's static_configs become its "static" target groups.  Returns 0:
 * nothing here can fail under the out-of-memory policy (err is kept for the
 * callers' one error path). */
int scrape_manager_apply(scrape_manager *m, firn_config *cfg, firn_err *err);

/* Replace the target groups a provider (a name unique within the job, e.g.
 * "file/0") found for a job, by source: each group given replaces the one
 * of the same source (a group without targets empties it).  groups are
 * copied.  FIRN_EINVAL when the job is not configured. */
int scrape_manager_update(scrape_manager *m, const char *job, const char *provider,
                          const disc_group *groups, size_t n, firn_err *err);

typedef enum scrape_health {
    SCRAPE_HEALTH_UNKNOWN,
    SCRAPE_HEALTH_UP,
    SCRAPE_HEALTH_DOWN,
} scrape_health;

const char *scrape_health_name(scrape_health h);   /* "unknown", "up", "down" */

typedef struct scrape_loop_status {
    const char *pool;
    const char *profile_name;       /* the profile type's name, "process_cpu" */
    firn_label *discovered;         /* before relabeling */
    size_t n_discovered;
    firn_label *labels;             /* public labels and __name__ */
    size_t n_labels;
    const char *url;
    scrape_health health;
    const char *last_error;         /* "" when the last scrape succeeded */
    int64_t last_scrape_ms;         /* wall clock; 0 when never scraped */
    double last_duration_s;
    int64_t interval_ms, timeout_ms;
} scrape_loop_status;

typedef struct scrape_dropped_status {
    const char *pool;
    firn_label *discovered;
    size_t n_discovered;
} scrape_dropped_status;

/* A consistent copy of every pool, for /api/v1/targets: pools sorted by
 * name, loops by labels within a pool. */
typedef struct scrape_status {
    const char **pools;
    size_t n_pools;
    scrape_loop_status *active;
    size_t n_active;
    scrape_dropped_status *dropped;
    size_t n_dropped;
    firn_arena *arena;              /* owns all of the above */
} scrape_status;

/* A snapshot of every pool's loops and dropped targets; returns 0 (err is
 * not written).  Free with scrape_status_free. */
int scrape_manager_status(scrape_manager *m, scrape_status *out, firn_err *err);
void scrape_status_free(scrape_status *s);

/* firn_scrape_* and firn_ingest_* families in the text exposition format. */
void scrape_manager_metrics_write(scrape_manager *m, firn_buf *b);

#endif
