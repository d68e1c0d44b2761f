/* pyroscope.h -- Pyroscope's API on firn's port, over the Connect protocol:
 * what Grafana's Pyroscope data source, the Profiles Drilldown app, Grafana
 * Alloy's pyroscope.write and the newer Pyroscope SDKs speak.
 *
 * Connect unary (connectrpc.com/docs/protocol): POST /<package>.<Service>/
 * <Method> (also under any path prefix: a data source URL may carry a
 * path), the bare message in the body, binary (Content-Type
 * application/proto) or protobuf's JSON mapping (application/json),
 * optionally gzipped (Content-Encoding: gzip); the answer is 200 with the
 * same Content-Type, exactly, gzipped when the request's Accept-Encoding
 * takes gzip and the body is at least 1 KiB; an error is its Connect code's
 * HTTP status with Content-Type application/json and {"code","message"}:
 * also a 415 (with Accept-Post) and a body over the server's cap
 * (resource_exhausted, 429, where h2o would say a plain 413).
 * Connect-Protocol-Version may be absent; when present it must be 1.
 *
 * Services (the messages are Pyroscope's own, vendored in pyroscope/api/):
 *   querier.v1.QuerierService   ProfileTypes, LabelNames, LabelValues,
 *       Series, GetProfileStats, SelectMergeStacktraces, SelectSeries,
 *       SelectMergeProfile; SelectMergeSpanProfile answers an empty flame
 *       graph (firn has no span IDs); SelectHeatmap, AnalyzeQuery and any
 *       other method answer unimplemented.
 *   push.v1.PusherService       Push: every raw pprof stored through the
 *       store's append, as /ingest stores a pprof upload.
 *   settings.v1.SettingsService Get, Set, Delete: named strings kept in a
 *       JSON file in the store's directory.
 * The label model that maps firn's series onto Pyroscope's is in view.c
 * and README "Grafana".
 *
 * Threads: every route runs on the server's worker threads; each call opens
 * its own store reader and holds no other.
 */
#ifndef FIRN_PYROSCOPE_H
#define FIRN_PYROSCOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"
#include "tsdb/tsdb.h"
#include "http/http.h"

typedef struct pyroscope_deltas pyroscope_deltas;
struct pql_limits;

typedef struct pyroscope_api {
    tsdb *db;                  /* NULL: every call that needs the store is unavailable */
    struct pql_limits *limits; /* --query.max-samples and --query.max-concurrency for
                                * the queries that read profiles (SelectMergeStacktraces,
                                * SelectMergeProfile, SelectSeries, diffs, /pyroscope/render);
                                * NULL: Prometheus's defaults, no gate */
    const char *settings_path; /* the settings file; NULL: Settings answers unavailable */
    pyroscope_deltas *deltas;  /* set by pyroscope_register: pushed series' previous
                                * cumulative profiles */
} pyroscope_api;

/* Registers the Connect services' routes.  api must outlive the server;
 * pyroscope_free(api) once the server is stopped. */
int pyroscope_register(http_server *s, pyroscope_api *api, firn_err *err);
void pyroscope_free(pyroscope_api *api);

/* The table of pushed series' previous cumulative profiles (push.c). */
pyroscope_deltas *pyroscope_deltas_new(void);
void pyroscope_deltas_free(pyroscope_deltas *d);

/* One Connect request as the route hands it over (headers NULL when
 * absent), answered into resp: the whole request path without a socket,
 * for the routes and for the fuzz target. */
typedef struct pyroscope_request {
    const char *path;
    const char *content_type;
    const char *content_encoding;
    const char *accept_encoding;
    const char *protocol_version;   /* Connect-Protocol-Version */
    const void *body;
    size_t body_len;
} pyroscope_request;

void pyroscope_serve(pyroscope_api *api, const pyroscope_request *req, http_response *resp);

#endif
