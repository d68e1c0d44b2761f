/* api.c -- the endpoints of the running server: lifecycle, /metrics, the
 * targets API and firn's own profiles (contract in web.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "selfprof/selfprof.h"
#include "web/internal.h"
#include "web/web.h"

#define JSON_TYPE "application/json"
#define PPROF_TYPE "application/octet-stream"

static double process_start_time;

/* ---- lifecycle ---------------------------------------------------------------- */

static void handle_healthy(void *ctx, const http_request *req, http_response *resp)
{
    (void)ctx, (void)req;
    http_respond_text(resp, 200, "firn is Healthy.");
}

static void handle_ready(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    (void)req;
    if (atomic_load(&api->ready))
        http_respond_text(resp, 200, "firn is Ready.");
    else
        http_respond_text(resp, 503, "Service Unavailable");
}

static void handle_reload(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    (void)req;
    if (!api->enable_lifecycle) {
        http_respond_text(resp, 403, "Lifecycle API is not enabled.");
        return;
    }
    firn_err err = {0};
    if (api->reload(api->reload_ctx, &err) < 0)
        http_respond_text(resp, 500, "failed to reload config: %s", err.msg);
    else
        resp->status = 200;  /* Prometheus answers a reload with an empty body */
}

/* ---- /metrics ----------------------------------------------------------------- */

static void write_process_metrics(firn_buf *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    firn_metrics_single(b, "process_cpu_seconds_total", "counter",
                        "Total user and system CPU time spent in seconds.",
                        cpu);
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            pages = resident = 0;
        fclose(f);
    }
    long page = sysconf(_SC_PAGESIZE);
    firn_metrics_single(b, "process_resident_memory_bytes", "gauge",
                        "Resident memory size in bytes.",
                        (double)resident * page);
    firn_metrics_single(b, "process_virtual_memory_bytes", "gauge",
                        "Virtual memory size in bytes.",
                        (double)pages * page);
    firn_metrics_single(b, "process_start_time_seconds", "gauge",
                        "Start time of the process since unix epoch in seconds.",
                        process_start_time);
}

static void write_tsdb_metrics(firn_buf *b, tsdb *db)
{
    tsdb_stats st;
    firn_err err = {0};
    if (tsdb_stats_get(db, &st, &err) < 0) {
        firn_log(FIRN_LOG_WARN, "web", "reading store statistics failed", "err=\"%s\"",
                 err.msg);
        return;
    }
    static const struct {
        const char *name, *type, *help;
        size_t offset;
    } F[] = {
        {"firn_tsdb_series", "gauge", "Series in the store.", offsetof(tsdb_stats, series)},
        {"firn_tsdb_profiles", "gauge", "Profiles in the store (one per series and timestamp).",
         offsetof(tsdb_stats, blocks)},
        {"firn_tsdb_disk_bytes", "gauge", "Size of the store's data file.",
         offsetof(tsdb_stats, disk_bytes)},
        {"firn_tsdb_map_bytes", "gauge", "Current LMDB map size.", offsetof(tsdb_stats, map_bytes)},
        {"firn_tsdb_appends_total", "counter", "Profiles stored.",
         offsetof(tsdb_stats, appends_total)},
        {"firn_tsdb_append_failures_total", "counter", "Profiles refused or failed.",
         offsetof(tsdb_stats, append_failures_total)},
        {"firn_tsdb_samples_total", "counter", "Samples stored.",
         offsetof(tsdb_stats, samples_total)},
        {"firn_tsdb_commits_total", "counter", "Write transactions committed.",
         offsetof(tsdb_stats, commits_total)},
        {"firn_tsdb_queue_full_total", "counter", "Appends refused because the queue was full.",
         offsetof(tsdb_stats, queue_full_total)},
        {"firn_tsdb_map_resizes_total", "counter", "Times the LMDB map grew.",
         offsetof(tsdb_stats, map_resizes_total)},
        {"firn_tsdb_retention_deleted_profiles_total", "counter",
         "Profiles deleted by retention.", offsetof(tsdb_stats, retention_deleted_blocks_total)},
        {"firn_tsdb_retention_deleted_series_total", "counter", "Series deleted by retention.",
         offsetof(tsdb_stats, retention_deleted_series_total)},
        {"firn_tsdb_retention_runs_total", "counter", "Retention passes run.",
         offsetof(tsdb_stats, retention_runs_total)},
        {"firn_tsdb_retention_failures_total", "counter",
         "Retention passes that failed (each is logged).",
         offsetof(tsdb_stats, retention_failures_total)},
        {"firn_tsdb_append_queue_length", "gauge", "Appends waiting for the writer.",
         offsetof(tsdb_stats, queue_length)},
        {"firn_tsdb_float_samples_total", "counter",
         "Float samples stored (recording rules, ALERTS).", offsetof(tsdb_stats, float_samples_total)},
        {"firn_tsdb_float_samples_dropped_total", "counter",
         "Float samples dropped: older than the retention, or a conflicting duplicate.",
         offsetof(tsdb_stats, float_samples_dropped_total)},
        {"firn_tsdb_rollups", "gauge", "Rollups stored (hour and day buckets).",
         offsetof(tsdb_stats, rollups)},
        {"firn_tsdb_rollups_written_total", "counter", "Rollups written by compaction.",
         offsetof(tsdb_stats, rollups_written_total)},
        {"firn_tsdb_rollups_invalidated_total", "counter",
         "Rolled-up hours a late profile landed in (their rollups are redone).",
         offsetof(tsdb_stats, rollups_invalidated_total)},
        {"firn_tsdb_rollup_buckets_total", "counter",
         "Hour buckets holding profiles that compaction rolled up or found too small.",
         offsetof(tsdb_stats, rollup_buckets_total)},
        {"firn_tsdb_compaction_runs_total", "counter", "Compaction passes committed.",
         offsetof(tsdb_stats, compaction_runs_total)},
        {"firn_tsdb_compaction_failures_total", "counter",
         "Compaction passes that failed (each is logged).",
         offsetof(tsdb_stats, compaction_failures_total)},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + F[i].offset, sizeof v);
        firn_metrics_single(b, F[i].name, F[i].type,
                            F[i].help,
                            (double)v);
    }
    firn_metrics_single(b, "firn_tsdb_compaction_seconds_total", "counter",
                        "Time spent in compaction passes.", st.compaction_seconds_total);
}

static void handle_metrics(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    (void)req;
    firn_buf b = {0};
    firn_metrics_header(&b, "firn_build_info", "gauge", "A metric with a constant '1' value "
                        "labeled by the version firn was built from.");
    firn_label l[1] = {{"version", FIRN_VERSION}};
    firn_metrics_sample(&b, "firn_build_info", l, 1, 1);
    write_process_metrics(&b);
    firn_metrics_single(&b, "firn_cpu_profile_requests", "gauge",
                        "/debug/pprof/profile requests recording now.",
                        (double)atomic_load(&api->cpu_profile_requests));
    firn_metrics_single(&b, "firn_cpu_profile_requests_refused_total", "counter",
                        "/debug/pprof/profile requests refused: too many at once.",
                        (double)atomic_load(&api->cpu_profile_refused_total));
    http_metrics_write(api->server, &b);
    if (api->scrape)
        scrape_manager_metrics_write(api->scrape, &b);
    if (api->db)
        write_tsdb_metrics(&b, api->db);
    if (api->rules)
        rules_manager_metrics_write(api->rules, &b);
    if (api->metrics)
        api->metrics(api->metrics_ctx, &b);
    resp->status = 200;
    resp->content_type = FIRN_METRICS_CONTENT_TYPE;
    resp->body = firn_buf_take(&b, &resp->body_len);   /* no cap: never NULL */
}

/* ---- /api/v1/rules, /api/v1/alerts ------------------------------------------------ */

static void handle_rules(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    firn_buf b = {0};
    firn_err err = {0};
    if (!api->rules) {
        firn_buf_puts(&b, http_request_path(req)[8] == 'r'
                              ? "{\"status\":\"success\",\"data\":{\"groups\":[]}}"
                              : "{\"status\":\"success\",\"data\":{\"alerts\":[]}}");
    } else if (http_request_path(req)[8] == 'a') {
        rules_manager_json_alerts(api->rules, &b);
    } else if (rules_manager_json_rules(api->rules, http_request_param(req, "type"), &b,
                                        &err) < 0) {
        firn_buf_free(&b);
        web_respond_error(resp, "bad_data", "%s", err.msg);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = firn_buf_take(&b, &resp->body_len);   /* no cap: never NULL */
}

/* ---- /api/v1/targets ------------------------------------------------------------ */

static json_t *labels_json(const firn_label *l, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, l[i].name, json_string(l[i].value));
    return o;
}

/* Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed; the
 * zero time for a target never scraped. */
static void rfc3339nano(char *buf, size_t size, int64_t ms)
{
    if (ms == 0) {
        snprintf(buf, size, "0001-01-01T00:00:00Z");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int frac = (int)(ms % 1000);
    if (frac) {
        n += (size_t)snprintf(buf + n, size - n, ".%03d", frac);
        while (buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    snprintf(buf + n, size - n, "Z");
}

static void handle_targets(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    const char *state = http_request_param(req, "state");
    const char *only_pool = http_request_param(req, "scrapePool");
    bool active = true, dropped = true;
    if (state && *state) {
        if (strcasecmp(state, "active") == 0)
            dropped = false;
        else if (strcasecmp(state, "dropped") == 0)
            active = false;
        else if (strcasecmp(state, "any") != 0) {
            /* Prometheus treats an unknown state as "any". */
        }
    }
    scrape_status st;
    firn_err err = {0};
    if (scrape_manager_status(api->scrape, &st, &err) < 0) {
        web_respond_error(resp, "internal", "%s", err.msg);
        return;
    }
    json_t *act = json_array(), *drop = json_array(), *counts = json_object();
    for (size_t i = 0; i < st.n_pools; i++) {
        size_t n = 0;
        for (size_t k = 0; k < st.n_dropped; k++)
            n += strcmp(st.dropped[k].pool, st.pools[i]) == 0;
        json_object_set_new(counts, st.pools[i], json_integer((json_int_t)n));
    }
    /* Pools in name order, as Prometheus lists them. */
    for (size_t i = 0; i < st.n_pools; i++) {
        const char *pool = st.pools[i];
        if (only_pool && *only_pool && strcmp(pool, only_pool) != 0)
            continue;
        for (size_t k = 0; active && k < st.n_active; k++) {
            const scrape_loop_status *t = &st.active[k];
            if (strcmp(t->pool, pool) != 0)
                continue;
            char last[64], interval[32], timeout[32];
            rfc3339nano(last, sizeof last, t->last_scrape_ms);
            firn_duration_format(interval, sizeof interval, t->interval_ms);
            firn_duration_format(timeout, sizeof timeout, t->timeout_ms);
            json_t *o = json_object();
            json_object_set_new(o, "discoveredLabels", labels_json(t->discovered, t->n_discovered));
            json_object_set_new(o, "labels", labels_json(t->labels, t->n_labels));
            json_object_set_new(o, "scrapePool", json_string(pool));
            json_object_set_new(o, "scrapeUrl", json_string(t->url));
            json_object_set_new(o, "globalUrl", json_string(t->url));
            json_object_set_new(o, "lastError", json_string(t->last_error));
            json_object_set_new(o, "lastScrape", json_string(last));
            json_object_set_new(o, "lastScrapeDuration", json_real(t->last_duration_s));
            json_object_set_new(o, "health", json_string(scrape_health_name(t->health)));
            json_object_set_new(o, "scrapeInterval", json_string(interval));
            json_object_set_new(o, "scrapeTimeout", json_string(timeout));
            json_array_append_new(act, o);
        }
        for (size_t k = 0; dropped && k < st.n_dropped; k++) {
            const scrape_dropped_status *d = &st.dropped[k];
            if (strcmp(d->pool, pool) != 0)
                continue;
            json_array_append_new(drop, json_pack("{s:o, s:s}", "discoveredLabels",
                                                  labels_json(d->discovered, d->n_discovered),
                                                  "scrapePool", pool));
        }
    }
    scrape_status_free(&st);
    json_t *data = json_pack("{s:o, s:o, s:o}", "activeTargets", act, "droppedTargets", drop,
                             "droppedTargetCounts", counts);
    web_respond_data(resp, data);
}

/* ---- /debug/pprof ------------------------------------------------------------------ */

static void respond_profile(http_response *resp, pprof_profile *p, firn_err *err)
{
    if (!p) {
        int status = err->code == FIRN_EBUSY ? 500 : err->code == FIRN_EINVAL ? 501 : 500;
        http_respond_text(resp, status, "Could not enable profiling: %s", err->msg);
        resp->go_pprof_error = true;
        return;
    }
    unsigned char *out = NULL;
    size_t len = 0;
    int rc = pprof_encode(p, -1, &out, &len, err);
    pprof_free(p);
    if (rc < 0) {
        http_respond_text(resp, 500, "encoding the profile: %s", err->msg);
        return;
    }
    resp->status = 200;
    resp->content_type = PPROF_TYPE;
    resp->body = (char *)out;
    resp->body_len = len;
}

/* seconds: 30 when absent or empty (Go); anything but a positive integer
 * is refused with 400 and the message Go's delta profiles give, and so is a
 * duration over WEB_MAX_PROFILE_SECONDS.  A request holds a worker for its
 * duration, so at most WEB_MAX_CPU_PROFILE_REQUESTS run at once and the
 * others get 503 at once: queries and ingest keep the remaining workers. */
static void handle_cpu_profile(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    const char *s = http_request_param(req, "seconds");
    long seconds = 30;
    if (s && *s) {
        char *end;
        errno = 0;
        seconds = strtol(s, &end, 10);
        /* strtol also takes leading spaces and a minus: Go's ParseInt does not */
        bool digits = (s[0] >= '0' && s[0] <= '9') || s[0] == '+';
        if (!digits || *end != '\0' || errno || seconds <= 0) {
            http_respond_text(resp, 400, "invalid value for \"seconds\": not a positive integer");
            resp->go_pprof_error = true;
            return;
        }
    }
    if (seconds > WEB_MAX_PROFILE_SECONDS) {
        http_respond_text(resp, 400, "profile duration exceeds %d seconds",
                          WEB_MAX_PROFILE_SECONDS);
        resp->go_pprof_error = true;
        return;
    }
    if (atomic_fetch_add(&api->cpu_profile_requests, 1) >= WEB_MAX_CPU_PROFILE_REQUESTS) {
        atomic_fetch_sub(&api->cpu_profile_requests, 1);
        atomic_fetch_add(&api->cpu_profile_refused_total, 1);
        http_respond_text(resp, 503, "too many CPU profiles at once: %d are being recorded",
                          WEB_MAX_CPU_PROFILE_REQUESTS);
        resp->retry_after = "10";
        resp->go_pprof_error = true;
        return;
    }
    firn_err err = {0};
    /* Cut short when the server stops, so shutdown never waits for it. */
    pprof_profile *p = selfprof_cpu((int)seconds, SELFPROF_DEFAULT_HZ, &api->stopping, &err);
    atomic_fetch_sub(&api->cpu_profile_requests, 1);
    respond_profile(resp, p, &err);
    resp->content_disposition = "attachment; filename=\"profile\"";
}

static void handle_heap(void *ctx, const http_request *req, http_response *resp)
{
    bool allocs = ctx != NULL;
    (void)req;
    firn_err err = {0};
    pprof_profile *p = selfprof_heap(&err);
    if (p && allocs) {
        /* /allocs is the same profile with alloc_space shown by default. */
        int i = pprof_sample_type_index(p, "alloc_space");
        if (i >= 0)
            p->default_sample_type = p->sample_types[i].type;
    }
    respond_profile(resp, p, &err);
    resp->content_disposition = allocs ? "attachment; filename=\"allocs\""
                                       : "attachment; filename=\"heap\"";
}

static void handle_pprof_index(void *ctx, const http_request *req, http_response *resp)
{
    (void)ctx, (void)req;
    static const char page[] =
        "<html><head><title>/debug/pprof/</title></head><body>\n"
        "<p>firn's own profiles, in the format of Go's net/http/pprof:</p>\n<ul>\n"
        "<li><a href=\"profile?seconds=10\">profile</a>: CPU, recorded for ?seconds=N (30; at most 600, four at once)</li>\n"
        "<li><a href=\"heap\">heap</a>: sampled allocations, live and total</li>\n"
        "<li><a href=\"allocs\">allocs</a>: the same, showing total allocations</li>\n"
        "</ul></body></html>\n";
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
    resp->body = firn_xstrdup(page);
    resp->body_len = strlen(page);
}

/* ---- registration ------------------------------------------------------------------ */

int web_api_register(http_server *s, web_api *api, firn_err *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (process_start_time == 0)
        process_start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    api->server = s;
    static int allocs_marker;
    const struct {
        const char *methods, *path;
        unsigned flags;
        http_handler_fn fn;
        void *ctx;
    } R[] = {
        {"GET", "/-/healthy", 0, handle_healthy, api},
        {"GET", "/-/ready", 0, handle_ready, api},
        {"POST", "/-/reload", HTTP_ROUTE_WORKER, handle_reload, api},
        {"GET", "/metrics", HTTP_ROUTE_WORKER, handle_metrics, api},
        {"GET", "/api/v1/targets", HTTP_ROUTE_WORKER, handle_targets, api},
        {"GET", "/api/v1/rules", HTTP_ROUTE_WORKER, handle_rules, api},
        {"GET", "/api/v1/alerts", HTTP_ROUTE_WORKER, handle_rules, api},
        {"GET", "/debug/pprof/", 0, handle_pprof_index, NULL},
        {"GET", "/debug/pprof/profile", HTTP_ROUTE_WORKER, handle_cpu_profile, api},
        {"GET", "/debug/pprof/heap", HTTP_ROUTE_WORKER, handle_heap, NULL},
        {"GET", "/debug/pprof/allocs", HTTP_ROUTE_WORKER, handle_heap, &allocs_marker},
    };
    for (size_t i = 0; i < sizeof R / sizeof R[0]; i++)
        if (http_route(s, R[i].methods, R[i].path, R[i].flags, R[i].fn, R[i].ctx, err) < 0)
            return -1;
    if (web_api_prom_register(s, api, err) < 0 || web_api_profile_register(s, api, err) < 0 ||
        web_api_ingest_register(s, api, err) < 0)
        return -1;
    return 0;
}
