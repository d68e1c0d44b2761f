/* firn -- the continuous-profiling server: reads a scrape config, pulls
 * profiles from targets, stores them, and serves its HTTP endpoints.
 * Wiring only: flags, signals and the order things start and stop in. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "config/web_config.h"
#include "ingest/ingest.h"
#include "model/model.h"
#include "pyroscope/pyroscope.h"
#include "forward/forward.h"
#include "scrape/scrape.h"
#include "tsdb/tsdb.h"
#include "web/web.h"

typedef struct flags {
    const char *config_file;        /* NULL: the embedded default */
    const char *listen_address;
    const char *web_config_file;    /* NULL: plain HTTP, no credentials */
    const char *storage_path;
    int64_t retention_ms;
    bool no_rollups;                /* --storage.tsdb.no-rollups */
    bool enable_lifecycle;
    const char *log_level;
    const char *dns_server;         /* --discovery.dns.server: NULL for resolv.conf */
    const char *max_series;         /* --storage.tsdb.max-series, as given */
    uint64_t max_series_n;
    const char *max_connections;    /* --web.max-connections, as given (for status/flags) */
    size_t max_connections_n;
    const char *body_in_flight;     /* --web.max-body-bytes-in-flight, as given */
    size_t body_in_flight_n;
    const char *ingest_bytes;       /* --ingest.max-bytes-in-flight, as given */
    size_t ingest_bytes_n;
    const char *query_samples;      /* --query.max-samples, as given */
    size_t query_samples_n;
    const char *query_concurrency;  /* --query.max-concurrency, as given */
    size_t query_concurrency_n;
    const char *ui_assets;          /* --web.ui-assets: NULL for the embedded UI */
    const char *external_url;       /* --web.external-url: NULL for http://self */
    int64_t resend_delay_ms, outage_tolerance_ms, grace_period_ms;
    int64_t queue_capacity, batch_size;
} flags;

typedef struct server {
    flags f;
    char *self_address;             /* where firn scrapes itself */
    tsdb *db;
    scrape_manager *scrape;
    rules_manager *rules;
    char *external_url;
    disc_manager *disc;
    http_server *web;
    config_web *web_config;         /* --web.config.file, read once at startup */
    pql_limits limits;              /* --query.max-samples, --query.max-concurrency */
    web_api api;
    pyroscope_api pyroscope;        /* Pyroscope's Connect API (Grafana, Alloy) */
    forward *forward;               /* profile_remote_write */
    char *settings_path;            /* its settings file, in the store's directory */
    pthread_mutex_t reload_mu;
    _Atomic bool last_reload_ok;
    _Atomic int64_t last_reload_success_s;
    _Atomic uint64_t reloads_total, reload_failures_total;
    pthread_mutex_t config_mu;
    char *config_yaml;              /* the running configuration's text */
} server;

static void usage(FILE *f)
{
    fputs("usage: firn [flags]\n"
          "\n"
          "The firn continuous-profiling server: scrapes pprof profiles from the targets\n"
          "of its configuration, stores them, and serves them over HTTP.\n"
          "\n"
          "flags:\n"
          "  --config.file=FILE              scrape configuration (Prometheus/Parca YAML);\n"
          "                                  without it firn runs its embedded configuration,\n"
          "                                  which scrapes firn itself\n"
          "  --web.listen-address=ADDR       address to serve HTTP on (default :7070)\n"
          "  --web.config.file=FILE          TLS and authentication (Prometheus's web config:\n"
          "                                  tls_server_config, basic_auth_users...), read at\n"
          "                                  startup; with it the embedded configuration cannot\n"
          "                                  scrape firn (give --config.file)\n"
          "  --storage.tsdb.path=DIR         where profiles are stored (default ./data)\n"
          "  --storage.tsdb.retention.time=D how long profiles are kept (default 15d; 0 = forever)\n"
          "  --storage.tsdb.no-rollups       no background compaction into hour and day\n"
          "                                  rollups (long-range merges then read every profile)\n"
          "  --web.enable-lifecycle          allow POST /-/reload\n"
          "  --storage.tsdb.max-series=N     series the store may hold (default 1000000;\n"
          "                                  0 = no limit); a profile that needs more is refused\n"
          "  --web.max-connections=N         open connections at most (default 512); more\n"
          "                                  wait in the listen backlog\n"
          "  --web.max-body-bytes-in-flight=SIZE\n"
          "                                  request bytes held at once (default 256MiB):\n"
          "                                  past it a request with a body gets 503\n"
          "  --ingest.max-bytes-in-flight=SIZE\n"
          "                                  memory scraped bodies and decoding hold at\n"
          "                                  once (default 512MiB): past it scrapes are\n"
          "                                  skipped and pushes get 503\n"
          "  --query.max-samples=N           samples one query may hold in memory (default\n"
          "                                  50000000): points loaded or answered, stack\n"
          "                                  values read and flame-graph nodes; past it the\n"
          "                                  query fails (422)\n"
          "  --query.max-concurrency=N       queries evaluated at once (default 20); more\n"
          "                                  wait for a slot\n"
          "  --web.ui-assets=DIR             serve the web UI from DIR (a copy of web/ui/),\n"
          "                                  read at each request, instead of the files\n"
          "                                  embedded in firn: for working on the UI\n"
          "  --log.level=LEVEL               debug, info, warn or error (default info)\n"
          "  --discovery.dns.server=HOST:PORT\n"
          "                                  the DNS server dns_sd_configs ask (default: the\n"
          "                                  servers and search list of /etc/resolv.conf)\n"
          "  --web.external-url=URL          the URL firn is reached at: alerts' generatorURL\n"
          "                                  and templates' $externalURL (default\n"
          "                                  http://HOST:PORT of the listen address)\n"
          "  --rules.alert.resend-delay=D    least time between two sends of an alert (1m)\n"
          "  --rules.alert.for-outage-tolerance=D\n"
          "                                  how far back `for` state is restored from (1h)\n"
          "  --rules.alert.for-grace-period=D\n"
          "                                  least time between a restore and firing (10m)\n"
          "  --alertmanager.notification-queue-capacity=N   alerts queued (10000)\n"
          "  --alertmanager.notification-batch-size=N       alerts per request (64)\n"
          "  --version                       print the version\n"
          "  -h, --help                      this text\n"
          "\n"
          "Signals: SIGHUP reloads the configuration file and its rule files (a bad file is\n"
          "rejected whole and the running configuration stays); SIGTERM and SIGINT stop\n"
          "the server.\n",
          f);
}

enum {
    OPT_CONFIG = 256, OPT_LISTEN, OPT_WEB_CONFIG, OPT_PATH, OPT_RETENTION, OPT_LIFECYCLE,
    OPT_LOG, OPT_DNS_SERVER, OPT_UI_ASSETS, OPT_VERSION, OPT_EXTERNAL_URL, OPT_RESEND,
    OPT_OUTAGE, OPT_GRACE, OPT_QUEUE, OPT_BATCH, OPT_MAX_CONNECTIONS, OPT_MAX_SERIES,
    OPT_NO_ROLLUPS, OPT_BODY_IN_FLIGHT, OPT_INGEST_BYTES, OPT_QUERY_SAMPLES,
    OPT_QUERY_CONCURRENCY
};

/* A size as Prometheus's byte flags take it (kingpin's Base2Bytes): a
 * whole number and a unit, B, KB/KiB, MB/MiB, GB/GiB, each a power of 1024. */
static int parse_bytes(const char *s, size_t *out)
{
    static const struct { const char *unit; unsigned shift; } units[] = {
        {"B", 0}, {"KB", 10}, {"KiB", 10}, {"MB", 20}, {"MiB", 20}, {"GB", 30}, {"GiB", 30},
    };
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || errno)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > (SIZE_MAX >> units[i].shift))
                return -1;
            *out = (size_t)v << units[i].shift;
            return 0;
        }
    }
    return -1;
}

static int parse_flags(int argc, char **argv, flags *f)
{
    static const struct option opts[] = {
        {"config.file", required_argument, NULL, OPT_CONFIG},
        {"web.listen-address", required_argument, NULL, OPT_LISTEN},
        {"web.config.file", required_argument, NULL, OPT_WEB_CONFIG},
        {"storage.tsdb.path", required_argument, NULL, OPT_PATH},
        {"storage.tsdb.retention.time", required_argument, NULL, OPT_RETENTION},
        {"web.enable-lifecycle", no_argument, NULL, OPT_LIFECYCLE},
        {"web.max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"web.max-body-bytes-in-flight", required_argument, NULL, OPT_BODY_IN_FLIGHT},
        {"ingest.max-bytes-in-flight", required_argument, NULL, OPT_INGEST_BYTES},
        {"storage.tsdb.max-series", required_argument, NULL, OPT_MAX_SERIES},
        {"query.max-samples", required_argument, NULL, OPT_QUERY_SAMPLES},
        {"query.max-concurrency", required_argument, NULL, OPT_QUERY_CONCURRENCY},
        {"storage.tsdb.no-rollups", no_argument, NULL, OPT_NO_ROLLUPS},
        {"web.ui-assets", required_argument, NULL, OPT_UI_ASSETS},
        {"log.level", required_argument, NULL, OPT_LOG},
        {"discovery.dns.server", required_argument, NULL, OPT_DNS_SERVER},
        {"version", no_argument, NULL, OPT_VERSION},
        {"web.external-url", required_argument, NULL, OPT_EXTERNAL_URL},
        {"rules.alert.resend-delay", required_argument, NULL, OPT_RESEND},
        {"rules.alert.for-outage-tolerance", required_argument, NULL, OPT_OUTAGE},
        {"rules.alert.for-grace-period", required_argument, NULL, OPT_GRACE},
        {"alertmanager.notification-queue-capacity", required_argument, NULL, OPT_QUEUE},
        {"alertmanager.notification-batch-size", required_argument, NULL, OPT_BATCH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *f = (flags){
        .listen_address = HTTP_DEFAULT_LISTEN,
        .storage_path = "data",
        .retention_ms = TSDB_DEFAULT_RETENTION_MS,
        .log_level = "info",
        .resend_delay_ms = 60 * 1000,
        .outage_tolerance_ms = 3600 * 1000,
        .grace_period_ms = 600 * 1000,
        .queue_capacity = 10000,
        .batch_size = 64,
        .max_series = "1000000",
        .max_series_n = 1000000,
        .max_connections = "512",
        .max_connections_n = HTTP_DEFAULT_MAX_CONNECTIONS,
        .body_in_flight = "256MiB",
        .body_in_flight_n = HTTP_DEFAULT_BODY_BYTES_IN_FLIGHT,
        .ingest_bytes = "512MiB",
        .ingest_bytes_n = INGEST_DEFAULT_BUDGET,
        .query_samples = "50000000",
        .query_samples_n = PQL_MAX_SAMPLES_DEFAULT,
        .query_concurrency = "20",
        .query_concurrency_n = PQL_MAX_CONCURRENCY_DEFAULT,
    };
    int c;
    firn_err err = {0};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            f->config_file = optarg;
            break;
        case OPT_LISTEN:
            f->listen_address = optarg;
            break;
        case OPT_WEB_CONFIG:
            f->web_config_file = optarg;
            break;
        case OPT_PATH:
            f->storage_path = optarg;
            break;
        case OPT_RETENTION:
            if (strcmp(optarg, "0") == 0) {
                f->retention_ms = 0;
            } else if (firn_duration_parse(optarg, &f->retention_ms, &err) < 0) {
                fprintf(stderr, "firn: --storage.tsdb.retention.time: %s\n", err.msg);
                return 2;
            }
            break;
        case OPT_LIFECYCLE:
            f->enable_lifecycle = true;
            break;
        case OPT_NO_ROLLUPS:
            f->no_rollups = true;
            break;
        case OPT_MAX_SERIES: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end || errno) {
                fprintf(stderr, "firn: --storage.tsdb.max-series: %s is not a number of "
                        "series\n", optarg);
                return 2;
            }
            f->max_series = optarg;
            f->max_series_n = v;
            break;
        }
        case OPT_MAX_CONNECTIONS: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg < '1' || *optarg > '9' || *end || errno || v > 1000000) {
                fprintf(stderr, "firn: --web.max-connections: %s is not a number of "
                        "connections from 1 to 1000000\n", optarg);
                return 2;
            }
            f->max_connections = optarg;
            f->max_connections_n = (size_t)v;
            break;
        }
        case OPT_BODY_IN_FLIGHT:
            if (parse_bytes(optarg, &f->body_in_flight_n) < 0 || f->body_in_flight_n < (1u << 20)) {
                fprintf(stderr, "firn: --web.max-body-bytes-in-flight: %s is not a size of at "
                        "least 1MiB (such as 256MiB)\n", optarg);
                return 2;
            }
            f->body_in_flight = optarg;
            break;
        case OPT_INGEST_BYTES:
            if (parse_bytes(optarg, &f->ingest_bytes_n) < 0 || f->ingest_bytes_n < (4u << 20)) {
                fprintf(stderr, "firn: --ingest.max-bytes-in-flight: %s is not a size of at "
                        "least 4MiB (such as 512MiB)\n", optarg);
                return 2;
            }
            f->ingest_bytes = optarg;
            break;
        case OPT_QUERY_SAMPLES: case OPT_QUERY_CONCURRENCY: {
            bool samples = c == OPT_QUERY_SAMPLES;
            unsigned long long most = samples ? SIZE_MAX / 2 : 10000;
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg < '1' || *optarg > '9' || *end || errno || v > most) {
                fprintf(stderr, "firn: --query.%s: %s is not a number from 1 to %llu\n",
                        samples ? "max-samples" : "max-concurrency", optarg, most);
                return 2;
            }
            *(samples ? &f->query_samples : &f->query_concurrency) = optarg;
            *(samples ? &f->query_samples_n : &f->query_concurrency_n) = (size_t)v;
            break;
        }
        case OPT_UI_ASSETS:
            f->ui_assets = optarg;
            break;
        case OPT_DNS_SERVER:
            f->dns_server = optarg;
            break;
        case OPT_EXTERNAL_URL:
            f->external_url = optarg;
            break;
        case OPT_RESEND: case OPT_OUTAGE: case OPT_GRACE: {
            int64_t *to = c == OPT_RESEND ? &f->resend_delay_ms
                          : c == OPT_OUTAGE ? &f->outage_tolerance_ms : &f->grace_period_ms;
            if (firn_duration_parse(optarg, to, &err) < 0 || *to <= 0) {
                fprintf(stderr, "firn: --rules.alert.%s: %s\n",
                        c == OPT_RESEND ? "resend-delay" : c == OPT_OUTAGE
                                                               ? "for-outage-tolerance"
                                                               : "for-grace-period",
                        err.code ? err.msg : "must be more than 0");
                return 2;
            }
            break;
        }
        case OPT_QUEUE: case OPT_BATCH: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 10000000) {
                fprintf(stderr, "firn: --alertmanager.notification-%s: \"%s\" is not a number "
                        "from 1 to 10000000\n", c == OPT_QUEUE ? "queue-capacity" : "batch-size",
                        optarg);
                return 2;
            }
            *(c == OPT_QUEUE ? &f->queue_capacity : &f->batch_size) = v;
            break;
        }
        case OPT_LOG:
            if (firn_log_level_parse(optarg) < 0) {
                fprintf(stderr, "firn: --log.level: %s is not one of debug, info, warn, error\n",
                        optarg);
                return 2;
            }
            f->log_level = optarg;
            break;
        case OPT_VERSION:
            printf("firn %s\n", FIRN_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firn: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* The address firn scrapes itself at: the listen host, or localhost when
 * it listens on every address. */
static char *self_address(const char *listen, int port)
{
    const char *colon = strrchr(listen, ':');
    size_t host_len = colon ? (size_t)(colon - listen) : 0;
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)host_len, listen);
    if (host_len == 0 || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0)
        snprintf(host, sizeof host, "localhost");
    return firn_xasprintf("%s:%d", host, port);
}

static firn_config *load_config(server *s, firn_err *err)
{
    if (!s->f.config_file) {
        char *yaml = config_default_yaml(s->self_address);
        firn_config *cfg = config_load_string(yaml, strlen(yaml), "<embedded default>", err);
        free(yaml);
        return cfg;
    }
    char q[600];
    firn_log(FIRN_LOG_INFO, "main", "Loading configuration file", "filename=%s",
             firn_log_quote(q, sizeof q, s->f.config_file));
    config_errors errs = {0};
    firn_config *cfg = config_load_file_errors(s->f.config_file, &errs, err);
    if (!cfg) {
        for (size_t i = 0; i < errs.n; i++)
            firn_log(FIRN_LOG_ERROR, "main", "configuration error", "err=%s",
                     firn_log_quote(q, sizeof q, errs.lines[i]));
        if (errs.n > 1) {
            char first[FIRN_ERR_MSG_MAX];
            snprintf(first, sizeof first, "%s", errs.lines[0]);
            firn_errf(err, FIRN_EINVAL, "%s (and %zu more errors)", first, errs.n - 1);
        } else if (errs.n == 1) {
            char first[FIRN_ERR_MSG_MAX];
            snprintf(first, sizeof first, "%s", errs.lines[0]);
            firn_errf(err, FIRN_EINVAL, "%s", first);
        }
    }
    config_errors_free(&errs);
    return cfg;
}

/* Keep the text of the configuration now running (taken). */
static void set_config_yaml(server *s, char *yaml)
{
    pthread_mutex_lock(&s->config_mu);
    free(s->config_yaml);
    s->config_yaml = yaml;
    pthread_mutex_unlock(&s->config_mu);
}

/* A copy for /api/v1/status/config (a web worker). */
static char *config_yaml(void *ctx)
{
    server *s = ctx;
    pthread_mutex_lock(&s->config_mu);
    char *yaml = s->config_yaml ? firn_xstrdup(s->config_yaml) : NULL;
    pthread_mutex_unlock(&s->config_mu);
    return yaml;
}

/* --web.config.file, once, before the server listens: a bad file stops
 * firn with every error logged.  Unlike Prometheus (which re-reads the file
 * on every request), changes need a restart. */
static int load_web_config(server *s, firn_err *err)
{
    if (!s->f.web_config_file)
        return 0;
    char q[600];
    firn_log(FIRN_LOG_INFO, "main", "Loading web configuration file", "filename=%s",
             firn_log_quote(q, sizeof q, s->f.web_config_file));
    config_errors errs = {0};
    s->web_config = config_web_load_file(s->f.web_config_file, &errs, err);
    if (!s->web_config) {
        for (size_t i = 0; i < errs.n; i++)
            firn_log(FIRN_LOG_ERROR, "main", "web configuration error", "err=%s",
                     firn_log_quote(q, sizeof q, errs.lines[i]));
        if (errs.n > 0) {   /* the summary names the first; each was logged above */
            char first[FIRN_ERR_MSG_MAX];
            snprintf(first, sizeof first, "%s", errs.lines[0]);
            if (errs.n > 1)
                firn_errf(err, FIRN_EINVAL, "%s (and %zu more errors)", first, errs.n - 1);
            else
                firn_errf(err, FIRN_EINVAL, "%s", first);
        }
        config_errors_free(&errs);
        return -1;
    }
    config_errors_free(&errs);
    const config_web *w = s->web_config;
    firn_log(FIRN_LOG_INFO, "main", w->tls ? "TLS is enabled." : "TLS is disabled.",
             "http2=false basic_auth_users=%zu bearer_tokens=%zu", w->n_users, w->n_tokens);
    if (!s->f.config_file && (w->tls || config_web_auth_required(w)))
        firn_log(FIRN_LOG_WARN, "main", "The embedded configuration scrapes firn over plain "
                 "HTTP without credentials, which this web configuration refuses: give a "
                 "--config.file whose job for firn sets scheme, tls_config and basic_auth",
                 NULL);
    return 0;
}

/* Target groups from discovery go to the scrape pools. */
static void discovered(void *ctx, const char *job, const char *provider, const disc_group *groups,
                       size_t n)
{
    firn_err err = {0};
    if (scrape_manager_update(ctx, job, provider, groups, n, &err) < 0) {
        char q[600];
        firn_log(FIRN_LOG_WARN, "main", "Applying discovered targets failed", "job=%s err=%s",
                 job, firn_log_quote(q, sizeof q, err.msg));
    }
}

/* Start the providers of cfg (the scrape manager's, applied just before):
 * one that cannot start is logged; the others and scraping go on. */
static void apply_discovery(server *s, const firn_config *cfg)
{
    firn_err err = {0};
    if (disc_manager_apply(s->disc, cfg, &err) < 0) {
        char q[600];
        firn_log(FIRN_LOG_ERROR, "main", "Starting service discovery failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
    }
}

/* The rule engine's share of a configuration: its own copy of cfg (the
 * scrape manager takes cfg), parsed from the same text (not the served,
 * redacted one: Alertmanager and remote_write credentials are needed). */
static int apply_rules(server *s, const firn_config *cfg, firn_err *err)
{
    firn_config *copy = config_copy(cfg, err);
    if (!copy)
        return -1;
    return rules_manager_apply(s->rules, copy, err) < 0 ? -1 : 0;
}

/* profile_remote_write's share: its own copy of cfg, parsed from the same
 * text as the rules' (the endpoints' credentials are needed). */
static int apply_forward(server *s, const firn_config *cfg, firn_err *err)
{
    firn_config *copy = config_copy(cfg, err);
    if (!copy)
        return -1;
    return forward_apply(s->forward, copy, err) < 0 ? -1 : 0;
}

/* Load and apply the configuration file; the running one stays on any
 * error.  From SIGHUP (main thread) and POST /-/reload (a web worker). */
static int reload(void *ctx, firn_err *err)
{
    server *s = ctx;
    pthread_mutex_lock(&s->reload_mu);
    atomic_fetch_add(&s->reloads_total, 1);
    firn_config *cfg = load_config(s, err);
    /* rules and alerting first: a bad rule file rejects the whole reload */
    int rc = cfg ? apply_rules(s, cfg, err) : -1;
    /* forwarding next, after the rules (a bad rule file, the common
     * mistake, then changes nothing): a new endpoint's queue that cannot
     * open fails the reload, with the rules already applied */
    if (rc == 0)
        rc = apply_forward(s, cfg, err);
    if (rc < 0) {
        config_free(cfg);
        cfg = NULL;
    }
    char *yaml = cfg && cfg->yaml ? firn_xstrdup(cfg->yaml) : NULL;
    rc = cfg ? scrape_manager_apply(s->scrape, cfg, err) : -1;
    char q[600];
    if (rc < 0) {
        free(yaml);
        atomic_store(&s->last_reload_ok, false);
        atomic_fetch_add(&s->reload_failures_total, 1);
        firn_log(FIRN_LOG_ERROR, "main", "Error reloading config; the running configuration "
                 "stays", "err=%s", firn_log_quote(q, sizeof q, err->msg));
    } else {
        set_config_yaml(s, yaml);
        apply_discovery(s, cfg);
        atomic_store(&s->last_reload_ok, true);
        atomic_store(&s->last_reload_success_s, (int64_t)time(NULL));
        firn_log(FIRN_LOG_INFO, "main", "Completed loading of configuration file", "filename=%s",
                 firn_log_quote(q, sizeof q, s->f.config_file ? s->f.config_file
                                                               : "<embedded default>"));
    }
    pthread_mutex_unlock(&s->reload_mu);
    return rc < 0 ? -1 : 0;
}

static void reload_metrics(void *ctx, firn_buf *b)
{
    server *s = ctx;
    pql_limits_metrics_write(&s->limits, b);
    if (s->disc)
        disc_manager_metrics_write(s->disc, b);
    if (s->forward)
        forward_metrics_write(s->forward, b);
    firn_metrics_single(b, "firn_config_last_reload_successful", "gauge",
                        "Whether the last configuration reload attempt was successful.",
                        atomic_load(&s->last_reload_ok) ? 1 : 0);
    firn_metrics_single(b, "firn_config_last_reload_success_timestamp_seconds", "gauge",
                        "Timestamp of the last successful configuration reload.",
                        (double)atomic_load(&s->last_reload_success_s));
    firn_metrics_single(b, "firn_config_reloads_total", "counter",
                        "Configuration reloads attempted (startup included).",
                        (double)atomic_load(&s->reloads_total));
    firn_metrics_single(b, "firn_config_reload_failures_total", "counter",
                        "Configuration reloads that failed.",
                        (double)atomic_load(&s->reload_failures_total));
}

/* A seed from the host name, so that two replicas scraping the same targets
 * scrape them at different moments (Prometheus seeds with it too). */
static uint64_t offset_seed(void)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = host; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return h;
}

int main(int argc, char **argv)
{
    firn_tune_malloc();
    /* elfutils would fetch debug info over the network while firn
     * symbolizes its own profiles on a web worker; firn uses what is on
     * disk only. */
    unsetenv("DEBUGINFOD_URLS");
    server s = {0};
    int rc = parse_flags(argc, argv, &s.f);
    if (rc)
        return rc;
    firn_log_set_level((enum firn_log_level)firn_log_level_parse(s.f.log_level));
    pthread_mutex_init(&s.reload_mu, NULL);
    pthread_mutex_init(&s.config_mu, NULL);

    /* Signals are taken by sigwait in this thread only; every thread
     * started from here on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    firn_err err = {0};
    char q[600];
    firn_log(FIRN_LOG_INFO, "main", "Starting firn", "version=%s", FIRN_VERSION);
    if (load_web_config(&s, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, "main", "Error loading web configuration", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        return 1;
    }
    ingest_budget_set(s.f.ingest_bytes_n);
    if (pql_limits_init(&s.limits, s.f.query_samples_n, s.f.query_concurrency_n, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, "main", "Error setting up query limits", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        config_web_free(s.web_config);
        return 1;
    }
    http_options wo;
    http_options_default(&wo);
    wo.listen_address = s.f.listen_address;
    wo.web_config = s.web_config;
    wo.workers = 8;  /* CPU profile requests hold a worker for their duration */
    wo.max_connections = s.f.max_connections_n;
    wo.max_body_bytes_in_flight = s.f.body_in_flight_n;
    s.web = http_new(&wo, &err);
    if (!s.web) {
        firn_log(FIRN_LOG_ERROR, "main", "Cannot listen", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        config_web_free(s.web_config);
        pql_limits_destroy(&s.limits);
        return 1;
    }
    s.self_address = self_address(s.f.listen_address, http_port(s.web));

    int status = 1;
    firn_config *cfg = load_config(&s, &err);
    if (!cfg) {
        firn_log(FIRN_LOG_ERROR, "main", "Error loading config", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        goto out;
    }

    tsdb_options to;
    tsdb_options_default(&to);
    to.path = s.f.storage_path;
    to.retention_ms = s.f.retention_ms;
    to.max_series = s.f.max_series_n;
    to.no_rollups = s.f.no_rollups;
    to.check_pages = true;   /* firn has one thread here */
    s.db = tsdb_open(&to, &err);
    if (!s.db) {
        firn_log(FIRN_LOG_ERROR, "main", "Opening storage failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        config_free(cfg);
        goto out;
    }
    firn_log(FIRN_LOG_INFO, "main", "Storage opened", "path=%s retention=%lldms",
             firn_log_quote(q, sizeof q, s.f.storage_path), (long long)s.f.retention_ms);

    if (s.f.external_url) {
        s.external_url = firn_xstrdup(s.f.external_url);
    } else if (s.self_address) {
        s.external_url = firn_xasprintf("http://%s", s.self_address);
    }
    rules_manager_options ro = {.db = s.db, .external_url = s.external_url,
                                .resend_delay_ms = s.f.resend_delay_ms,
                                .outage_tolerance_ms = s.f.outage_tolerance_ms,
                                .for_grace_period_ms = s.f.grace_period_ms,
                                .queue_capacity = (size_t)s.f.queue_capacity,
                                .batch_size = (size_t)s.f.batch_size,
                                .dns_server = s.f.dns_server,
                                .limits = &s.limits};
    s.rules = rules_manager_new(&ro, &err);
    if (!s.rules || apply_rules(&s, cfg, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, "main", "Error loading rules", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        config_free(cfg);
        goto out;
    }

    /* forwarding before anything ingests, so every stored profile is queued */
    char fdir[4096];
    snprintf(fdir, sizeof fdir, "%s/profile_remote_write", s.f.storage_path);
    s.forward = forward_new(fdir);
    if (apply_forward(&s, cfg, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, "main", "Starting profile_remote_write failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        config_free(cfg);
        goto out;
    }
    ingest_forward_set(forward_profile, s.forward);

    scrape_options so;
    scrape_options_default(&so);
    so.db = s.db;
    so.offset_seed = offset_seed();
    s.scrape = scrape_manager_new(&so, &err);
    if (!s.scrape)
        config_free(cfg);
    char *yaml = s.scrape && cfg->yaml ? firn_xstrdup(cfg->yaml) : NULL;
    /* apply takes cfg, also when it fails */
    if (!s.scrape || scrape_manager_apply(s.scrape, cfg, &err) < 0) {
        free(yaml);
        firn_log(FIRN_LOG_ERROR, "main", "Starting the scrape manager failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        goto out;
    }
    set_config_yaml(&s, yaml);
    disc_manager_options dopts = {.update = discovered, .ctx = s.scrape};
    dopts.dns.server = s.f.dns_server;
    s.disc = disc_manager_new(&dopts, &err);
    if (!s.disc) {
        firn_log(FIRN_LOG_ERROR, "main", "Starting discovery failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        goto out;
    }
    apply_discovery(&s, cfg);
    atomic_store(&s.last_reload_ok, true);
    atomic_store(&s.last_reload_success_s, (int64_t)time(NULL));
    atomic_store(&s.reloads_total, 1);

    s.api.db = s.db;
    s.api.limits = &s.limits;
    s.api.scrape = s.scrape;
    s.api.rules = s.rules;
    s.api.enable_lifecycle = s.f.enable_lifecycle;
    s.api.reload = reload;
    s.api.reload_ctx = &s;
    s.api.metrics = reload_metrics;
    s.api.metrics_ctx = &s;
    s.api.config_yaml = config_yaml;
    s.api.config_yaml_ctx = &s;
    /* /api/v1/status/flags; main's locals outlive the server */
    char retention[32];
    firn_duration_format(retention, sizeof retention, s.f.retention_ms);
    const char *flag_values[] = {
        "config.file", s.f.config_file ? s.f.config_file : "",
        "web.listen-address", s.f.listen_address,
        "web.config.file", s.f.web_config_file ? s.f.web_config_file : "",
        "storage.tsdb.path", s.f.storage_path,
        "storage.tsdb.retention.time", retention,
        "web.enable-lifecycle", s.f.enable_lifecycle ? "true" : "false",
        "web.max-connections", s.f.max_connections,
        "web.max-body-bytes-in-flight", s.f.body_in_flight,
        "ingest.max-bytes-in-flight", s.f.ingest_bytes,
        "storage.tsdb.max-series", s.f.max_series,
        "query.max-samples", s.f.query_samples,
        "query.max-concurrency", s.f.query_concurrency,
        "storage.tsdb.no-rollups", s.f.no_rollups ? "true" : "false",
        "web.ui-assets", s.f.ui_assets ? s.f.ui_assets : "",
        "log.level", s.f.log_level,
        NULL,
    };
    s.api.flags = flag_values;
    s.settings_path = firn_xasprintf("%s/pyroscope_settings.json", s.f.storage_path);
    s.pyroscope.db = s.db;
    s.pyroscope.limits = &s.limits;
    s.pyroscope.settings_path = s.settings_path;
    if (web_api_register(s.web, &s.api, &err) < 0 ||
        web_ui_register(s.web, s.f.ui_assets, &err) < 0 ||
        pyroscope_register(s.web, &s.pyroscope, &err) < 0 || http_start(s.web, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, "main", "Starting the web server failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        goto out;
    }
    atomic_store(&s.api.ready, true);
    firn_log(FIRN_LOG_INFO, "main", "Server is ready to receive web requests.",
             "address=%s port=%d", firn_log_quote(q, sizeof q, s.f.listen_address),
             http_port(s.web));

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            firn_err rerr = {0};
            reload(&s, &rerr);
            continue;
        }
        firn_log(FIRN_LOG_WARN, "main", "Received a signal, exiting gracefully...",
                 "signal=%s", sig == SIGTERM ? "terminated" : "interrupt");
        break;
    }
    atomic_store(&s.api.ready, false);
    atomic_store(&s.api.stopping, true);
    status = 0;
out:
    /* Stop in reverse order of dependence: nothing serves, then nothing
     * scrapes, then the store closes with every acknowledged write. */
    http_stop(s.web);
    pyroscope_free(&s.pyroscope);
    config_web_free(s.web_config);
    disc_manager_free(s.disc);
    scrape_manager_free(s.scrape);
    rules_manager_free(s.rules);
    /* nothing ingests any more */
    ingest_forward_set(NULL, NULL);
    forward_free(s.forward);
    free(s.external_url);
    tsdb_close(s.db);
    free(s.self_address);
    free(s.settings_path);
    pthread_mutex_destroy(&s.reload_mu);
    free(s.config_yaml);
    pthread_mutex_destroy(&s.config_mu);
    pql_limits_destroy(&s.limits);
    if (status == 0)
        firn_log(FIRN_LOG_INFO, "main", "See you next time!", NULL);
    return status;
}
