/* internal.h -- what web/'s files share: JSON responses, API parameters,
 * and the registration of each part of the API.  The HTTP server itself is
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

#endif
