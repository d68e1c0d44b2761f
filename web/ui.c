/* ui.c -- serves the web UI (web/ui/): its pages at / and /NAME, its other
 * files at /static/HASH/PATH (contract in web.h, what is served in
 * ui_asset.h).
 *
 * Embedded (the default), every response is precomputed at build time by
 * ui_embed.c: handlers only pick a representation and compare ETags, so
 * they run on the event loop.  A page is revalidated on every load
 * (no-cache) and names its assets under the build's HASH, so the assets
 * themselves can be cached for a year without ever going stale.  From a
 * directory (--web.ui-assets=DIR, for working on the UI) files are read
 * at each request on a worker, nothing is cached by the browser beyond a
 * revalidation, and the version is "dev".
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "web/ui_asset.h"
#include "web/web.h"

#define UI_STATIC "/static/"
#define UI_DEV_HASH "dev"
#define UI_IMMUTABLE "public, max-age=31536000, immutable"
#define UI_NO_CACHE "no-cache"

/* ---- content negotiation ------------------------------------------------------ */


/* Whether If-None-Match (a list of entity tags, or "*") names etag, by
 * the weak comparison RFC 9110 13.1.2 asks for (a W/ prefix ignored). */
static bool etag_matches(const char *header, const char *etag)
{
    if (!header)
        return false;
    size_t etag_len = strlen(etag);
    for (const char *p = header; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (*p != '"')
            return false;  /* malformed: compare nothing rather than guess */
        const char *close = strchr(p + 1, '"');
        if (!close)
            return false;
        if ((size_t)(close + 1 - p) == etag_len && memcmp(p, etag, etag_len) == 0)
            return true;
        p = close + 1;
    }
    return false;
}

/* ---- responses ----------------------------------------------------------------- */

typedef struct representation {
    const char *type;
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;  /* NULL: identity only */
    size_t gz_len;
    const char *etag, *gz_etag;
    const char *cache_control;
} representation;

/* Answer req with r: gzip when it has it and the client takes it, 304
 * when the client's copy is current. */
static void respond(const http_request *req, http_response *resp, const representation *r)
{
    bool gz = r->gz && http_accepts_gzip(http_request_header(req, "accept-encoding"));
    const char *etag = gz ? r->gz_etag : r->etag;
    *resp = (http_response){
        .status = 200,
        .content_type = r->type,
        .cache_control = r->cache_control,
        .vary = r->gz ? "Accept-Encoding" : NULL,
    };
    assert(strlen(etag) < sizeof resp->etag);
    snprintf(resp->etag, sizeof resp->etag, "%s", etag);
    if (etag_matches(http_request_header(req, "if-none-match"), etag)) {
        resp->status = 304;
        return;
    }
    const unsigned char *data = gz ? r->gz : r->data;
    size_t len = gz ? r->gz_len : r->len;
    resp->content_encoding = gz ? "gzip" : NULL;
    resp->body = firn_xmemdup(data, len);
    resp->body_len = len;
}

/* The file a page route serves: "/" is index.html, "/NAME" NAME.html. */
static int page_file(const char *route, char *out, size_t size)
{
    int n = snprintf(out, size, "%s.html", strcmp(route, "/") == 0 ? "index" : route + 1);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The route of a page file: the inverse of page_file. */
static void page_route(const char *file, char *out, size_t size)
{
    size_t stem = strlen(file) - strlen(".html");
    if (stem == strlen("index") && strncmp(file, "index", stem) == 0)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "/%.*s", (int)stem, file);
}

/* The asset part of /static/HASH/PATH when HASH is version and PATH a
 * servable non-page file; else NULL. */
static const char *static_path(const char *path, const char *version)
{
    assert(strncmp(path, UI_STATIC, strlen(UI_STATIC)) == 0);
    const char *h = path + strlen(UI_STATIC);
    size_t vlen = strlen(version);
    if (strncmp(h, version, vlen) != 0 || h[vlen] != '/')
        return NULL;
    const char *rel = h + vlen + 1;
    if (!web_ui_servable(rel) || strcmp(strrchr(rel, '.'), ".html") == 0)
        return NULL;
    return rel;
}

/* ---- embedded ------------------------------------------------------------------ */

static int asset_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const web_ui_asset *)elem)->path);
}

static const web_ui_asset *embedded_find(const char *path)
{
    return bsearch(path, web_ui_assets, web_ui_n_assets, sizeof web_ui_assets[0], asset_cmp);
}

static void respond_embedded(const http_request *req, http_response *resp, const web_ui_asset *a,
                             const char *cache_control)
{
    representation r = {
        .type = web_ui_mime_type(a->path),
        .data = a->data,
        .len = a->len,
        .gz = a->gz,
        .gz_len = a->gz_len,
        .etag = a->etag,
        .gz_etag = a->gz_etag,
        .cache_control = cache_control,
    };
    respond(req, resp, &r);
}

static void handle_page_embedded(void *ctx, const http_request *req, http_response *resp)
{
    respond_embedded(req, resp, ctx, UI_NO_CACHE);
}

static void handle_static_embedded(void *ctx, const http_request *req, http_response *resp)
{
    (void)ctx;
    const char *rel = static_path(http_request_path(req), web_ui_hash);
    const web_ui_asset *a = rel ? embedded_find(rel) : NULL;
    if (!a) {
        http_respond_text(resp, 404, "404 page not found");
        return;
    }
    respond_embedded(req, resp, a, UI_IMMUTABLE);
}

/* ---- from a directory (--web.ui-assets) ---------------------------------------- */

/* Serve DIR/rel as read now, a page with the placeholder replaced. */
static void respond_file(const char *dir, const char *rel, const http_request *req,
                         http_response *resp)
{
    char path[4096];
    struct stat st;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path ||
        stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        http_respond_text(resp, 404, "404 page not found");
        return;
    }
    unsigned char *data;
    size_t len;
    firn_err err = {0};
    if (firn_read_file(path, WEB_UI_FILE_MAX, &data, &len, &err) < 0) {
        http_respond_text(resp, 500, "%s", err.msg);
        return;
    }
    if (strcmp(strrchr(rel, '.'), ".html") == 0) {
        firn_buf page = {0};
        web_ui_substitute(&page, data, len, UI_STATIC UI_DEV_HASH);
        free(data);
        data = (unsigned char *)firn_buf_take(&page, &len);   /* no cap: never NULL */
    }
    char etag[24];
    snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)XXH3_64bits(data, len));
    representation r = {
        .type = web_ui_mime_type(rel),
        .data = data,
        .len = len,
        .etag = etag,
        .cache_control = UI_NO_CACHE,
    };
    respond(req, resp, &r);
    free(data);
}

static void handle_page_dir(void *ctx, const http_request *req, http_response *resp)
{
    char file[256];
    if (page_file(http_request_path(req), file, sizeof file) < 0) {
        http_respond_text(resp, 404, "404 page not found");
        return;
    }
    respond_file(ctx, file, req, resp);
}

static void handle_static_dir(void *ctx, const http_request *req, http_response *resp)
{
    const char *rel = static_path(http_request_path(req), UI_DEV_HASH);
    if (!rel) {
        http_respond_text(resp, 404, "404 page not found");
        return;
    }
    respond_file(ctx, rel, req, resp);
}

/* ---- registration -------------------------------------------------------------- */

static int register_page(http_server *s, const char *file, unsigned flags, http_handler_fn fn,
                         void *ctx, firn_err *err)
{
    char route[256];
    page_route(file, route, sizeof route);
    return http_route(s, "GET", route, flags, fn, ctx, err);
}

static int register_dir(http_server *s, const char *dir, firn_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return firn_errf(err, FIRN_EINVAL, "--web.ui-assets: %s: %s", dir, strerror(errno));
    bool has_index = false;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        const char *dot = strrchr(e->d_name, '.');
        if (!dot || strcmp(dot, ".html") != 0 || !web_ui_servable(e->d_name) ||
            strlen(e->d_name) >= 200)
            continue;
        has_index = has_index || strcmp(e->d_name, "index.html") == 0;
        rc = register_page(s, e->d_name, HTTP_ROUTE_WORKER, handle_page_dir, (void *)dir, err);
    }
    closedir(d);
    if (rc < 0)
        return rc;
    if (!has_index)
        return firn_errf(err, FIRN_EINVAL, "--web.ui-assets: %s has no index.html", dir);
    return http_route(s, "GET", UI_STATIC, HTTP_ROUTE_PREFIX | HTTP_ROUTE_WORKER,
                     handle_static_dir, (void *)dir, err);
}

int web_ui_register(http_server *s, const char *assets_dir, firn_err *err)
{
    if (assets_dir)
        return register_dir(s, assets_dir, err);
    for (size_t i = 0; i < web_ui_n_assets; i++) {
        const web_ui_asset *a = &web_ui_assets[i];
        assert(i == 0 || strcmp(web_ui_assets[i - 1].path, a->path) < 0);
        int rc = 0;
        if (strcmp(strrchr(a->path, '.'), ".html") == 0)
            rc = register_page(s, a->path, 0, handle_page_embedded, (void *)a, err);
        if (rc < 0)
            return rc;
    }
    return http_route(s, "GET", UI_STATIC, HTTP_ROUTE_PREFIX, handle_static_embedded, NULL, err);
}
