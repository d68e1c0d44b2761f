/* internal.h -- what web/'s files share: JSON responses, API parameters,
 * the registration of each part of the API, and the Pyroscope ingest
 * helpers (exposed for tests and fuzz targets).  The HTTP server itself is
 * http/ (http/http.h).
 */
#ifndef FIRN_WEB_INTERNAL_H
#define FIRN_WEB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "model/model.h"
#include "web/web.h"

/* ---- JSON responses and API parameters (json.c) --------------------------- */

/* Send j (taken, also on failure) as application/json with status. */
void web_respond_json(http_response *resp, int status, json_t *j);
/* 200 {"status":"success","data":data} (data taken). */
void web_respond_data(http_response *resp, json_t *data);
/* Prometheus's error envelope {"status":"error","errorType":type,"error":msg}
 * with the status Prometheus gives type: bad_data 400, execution 422,
 * canceled 499, timeout 503, internal 500, not_found 404,
 * not_acceptable 406, unavailable 500. */
void web_respond_error(http_response *resp, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A time as Prometheus's API takes it: a float of Unix seconds (rounded to
 * ms) or RFC3339 / RFC3339Nano.  FIRN_EINVAL with a message. */
int web_parse_time(const char *s, int64_t *ms, firn_err *err);
/* A duration: a float of seconds or a Prometheus duration ("15s", "1m"). */
int web_parse_duration(const char *s, int64_t *ms, firn_err *err);

/* ---- the API's parts, each registered by web_api_register ----------------- */

int web_api_prom_register(http_server *s, web_api *api, firn_err *err);     /* api_prom.c */
int web_api_profile_register(http_server *s, web_api *api, firn_err *err);  /* api_profile.c */
int web_api_ingest_register(http_server *s, web_api *api, firn_err *err);   /* api_ingest.c */

/* ---- ingest: uploads as Pyroscope clients send them (multipart.c,
 * api_ingest.c; exposed for tests and fuzz targets) ------------------------ */

/* Pyroscope's "name" parameter, app.name{k=v,k2=v2}: the application name
 * before the braces (Pyroscope's rule: [A-Za-z0-9_.\-/]+, trimmed) and the
 * labels in them (names with '.' turned into '_', then checked as
 * Prometheus names; values trimmed; no __name__), into a.  FIRN_EINVAL
 * saying what is wrong. */
int web_pyroscope_name_parse(const char *s, firn_arena *a, const char **app,
                             firn_label **labels, size_t *n_labels, firn_err *err);

/* How collapsed stacks become a one-column profile. */
typedef struct web_folded_type {
    const char *sample_type, *sample_unit;
    const char *period_type, *period_unit;  /* "" when none */
    int64_t period;
    int64_t scale;   /* every value is multiplied by it (1, or a CPU period) */
    bool lines;      /* Pyroscope's "lines": one stack per line, each counted once */
} web_folded_type;

/* Most frames in one collapsed stack. */
#define WEB_FOLDED_DEPTH_MAX 16384

/* Collapsed stacks ("root;child;leaf 12" per line, flamegraph.pl's and
 * Pyroscope's "folded" format) as a pprof profile with one sample per
 * distinct stack; blank lines and lines without a value are skipped, as
 * Pyroscope skips them.  FIRN_EINVAL naming the line of a bad value. */
pprof_profile *web_folded_parse(const char *body, size_t len, const web_folded_type *t,
                                firn_err *err);

#endif
