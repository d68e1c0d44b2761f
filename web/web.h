/* web.h -- firn's HTTP endpoints, served by the http/ library (http/http.h).
 *
 * Everything here knows firn: the store, the scrape manager, the query
 * engine, the profile renderers.  The server itself (event loop, workers,
 * routing, request parsing, TLS and credentials) is http/, which knows none
 * of them.
 */
#ifndef FIRN_WEB_H
#define FIRN_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "model/model.h"
#include "promql-like/pql.h"
#include "rules/rules.h"
#include "scrape/scrape.h"
#include "tsdb/tsdb.h"

/* ---- firn's endpoints ------------------------------------------------------
 *
 * web_api_register adds the endpoints of the running server:
 *   GET  /-/healthy, /-/ready         (Prometheus's lifecycle texts)
 *   POST /-/reload                    (only with enable_lifecycle; 403 else)
 *   GET  /metrics                     (text exposition: build info, process,
 *                                      HTTP, scrape, store, config reloads)
 *   GET  /api/v1/targets              (Prometheus's shape; state, scrapePool)
 *   GET|POST /api/v1/query, /api/v1/query_range, /api/v1/series,
 *        /api/v1/labels, /api/v1/query_exemplars; GET /api/v1/label/NAME/values,
 *        /api/v1/metadata, /api/v1/status/buildinfo, /config, /flags
 *                                     (Prometheus's query API: api_prom.c)
 *   GET|POST /api/v1/profile_types, /api/v1/profile
 *                                     (profile types; merge, single and diff
 *                                      queries as flamegraph JSON, top, pprof,
 *                                      collapsed, svg: api_profile.c)
 *   GET  /api/v1/rules, /api/v1/alerts (Prometheus's JSON, from rules/; empty
 *                                      lists without a rules manager)
 *   GET  /debug/pprof/, /debug/pprof/profile, /heap, /allocs  (selfprof/)
 * The struct must outlive the server.  reload runs on a worker thread.
 */
/* /debug/pprof/profile: the longest recording a request may ask for, and
 * how many may record at once (each holds a worker for its duration: firn
 * runs 8, so half stay for queries and ingest; firn's scrape of itself
 * takes one). */
#define WEB_MAX_PROFILE_SECONDS 600
#define WEB_MAX_CPU_PROFILE_REQUESTS 4

typedef struct web_api {
    tsdb *db;
    scrape_manager *scrape;
    rules_manager *rules;           /* may be NULL */
    bool enable_lifecycle;
    /* Reload the configuration; 0, or an error whose message says why. */
    int (*reload)(void *ctx, firn_err *err);
    void *reload_ctx;
    /* More families for /metrics (config reload state...); may be NULL. */
    void (*metrics)(void *ctx, firn_buf *b);
    void *metrics_ctx;
    /* /api/v1/status/flags: name, value, name, value, ..., NULL; may be NULL. */
    const char *const *flags;
    /* /api/v1/status/config: the running configuration's YAML, malloc'd (the
     * caller frees it), or NULL (then "").  Called on a worker thread. */
    char *(*config_yaml)(void *ctx);
    void *config_yaml_ctx;
    /* --query.max-samples and --query.max-concurrency for every query
     * (/api/v1/query, query_range, /api/v1/profile); NULL: Prometheus's
     * defaults and no gate. */
    pql_limits *limits;
    _Atomic int cpu_profile_requests;  /* /debug/pprof/profile requests recording */
    _Atomic uint64_t cpu_profile_refused_total;  /* refused: too many at once */
    _Atomic bool ready;             /* /-/ready says 503 until set */
    _Atomic bool stopping;          /* set before http_stop: long handlers end early */
    http_server *server;             /* set by web_api_register */
} web_api;

int web_api_register(http_server *s, web_api *api, firn_err *err);

/* ---- the web UI (ui.c) -----------------------------------------------------
 *
 * web_ui_register serves the browser UI, the files of web/ui/ (ui_asset.h
 * says which are served):
 *   GET /                     index.html; GET /NAME: NAME.html (each page at
 *                             the top of web/ui/ gets its route).  Pages say
 *                             "Cache-Control: no-cache" and carry an ETag; the
 *                             text __FIRN_ASSETS__ in them reads /static/HASH.
 *   GET /static/HASH/PATH     every other file, with its Content-Type, an ETag
 *                             and "Cache-Control: public, max-age=31536000,
 *                             immutable"; another HASH or an unknown PATH 404.
 * Both answer If-None-Match with 304, and send the gzip -9 body made at build
 * time to a client whose Accept-Encoding takes gzip (Vary: Accept-Encoding).
 * HASH is a hash of every embedded file, so a new build moves every asset URL.
 * assets_dir NULL serves the files embedded at build time, on the event loop.
 * Otherwise (--web.ui-assets=DIR, for working on the UI) the same layout is
 * read from assets_dir at each request, on a worker, with HASH "dev",
 * "Cache-Control: no-cache" everywhere and no compression: an edited file is
 * served at the next load.  Pages are the ones in the directory at
 * registration; FIRN_EINVAL when it cannot be read or has no index.html.
 * assets_dir must outlive the server.  Credentials and TLS apply as to
 * every route.
 */
int web_ui_register(http_server *s, const char *assets_dir, firn_err *err);

/* ---- Prometheus query results (json.c; firnctl prints them too) ---------- */

struct pql_result;

/* Prometheus's cap on a range query's points per series. */
#define WEB_QUERY_RANGE_POINTS_MAX 11000
/* Room for any value web_format_value writes, NUL included. */
#define WEB_VALUE_MAX 40
/* POST /api/v1/ingest with this Content-Type: many profiles in one request
 * (api_ingest.c), at most WEB_INGEST_BATCH_MAX of them. */
#define WEB_INGEST_BATCH_TYPE "application/x-firn-batch"
#define WEB_INGEST_BATCH_MAX 100000

/* Milliseconds as seconds with 3 decimals, none when whole (Prometheus's
 * jsonutil.MarshalTimestamp): 1700000000500 -> 1700000000.500. */
void web_json_timestamp(firn_buf *b, int64_t ms);
/* A sample value as Prometheus writes it: Go's strconv.FormatFloat(v, 'f',
 * -1, 64), or 'e' when v != 0 and |v| < 1e-6 or |v| >= 1e21; "NaN",
 * "+Inf", "-Inf".  Returns the length. */
size_t web_format_value(double v, char *buf, size_t size);
/* A label set as a JSON object, in the set's (sorted) order. */
void web_json_labels(firn_buf *b, const firn_label *labels, size_t n);
/* The "data" of a query's success, {"resultType":...,"result":...}. */
void web_json_pql_result(firn_buf *b, const struct pql_result *r);
/* A range query's bounds as Prometheus checks them: FIRN_EINVAL with its
 * message (end before start, step <= 0, more than 11,000 points). */
int web_query_range_check(int64_t start_ms, int64_t end_ms, int64_t step_ms, firn_err *err);

#endif
