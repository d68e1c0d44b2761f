/* test_web_ui.c -- the web UI's serving rules (web/ui.c, web/ui_asset.h)
 * that the end-to-end test (test/e2e/web_ui.sh) does not reach one by one:
 * which paths are served, the placeholder replacement, and content
 * negotiation (Accept-Encoding with q-values, If-None-Match lists) on a
 * server on loopback with the embedded files, libcurl as the client.  The
 * expected answers are RFC 9110's (12.5.3 Accept-Encoding, 13.1.2
 * If-None-Match), worked out by hand per row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "http_reply.h"
#include "web/ui_asset.h"
#include "web/web.h"

#include "h2o_lsan.h"

/* ---- what is served ----------------------------------------------------------- */

static void test_servable(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        bool served;
    } rows[] = {
        {"index.html", true},
        {"targets.html", true},
        {"js/main.js", true},
        {"js/lib/flame.mjs", true},
        {"css/firn.css", true},
        {"vendor/uplot/uPlot.esm.js", true},
        {"img/logo.svg", true},
        {"img/a.png", true},
        {"favicon.ico", true},
        {"data/types.json", true},
        {"fonts/x.woff2", true},
        {"vendor/uplot/LICENSE.txt", true},
        {"vendor/uplot/LICENSE", false},   /* no extension: not a served type */
        {"README.md", false},
        {"js/main.ts", false},
        {"js/main.js.map", false},
        {"help/page.html", false},         /* pages only at the top */
        {"test/flame.test.mjs", false},    /* the UI's unit tests */
        {"test/fixtures/a.json", false},
        {"js/test/x.js", true},            /* only the top test/ is the tests' */
        {"node_modules/uplot/dist/uPlot.esm.js", false},
        {"vendor/node_modules/x.js", false},
        {".hidden.js", false},
        {"js/.x.js", false},
        {".git/x.js", false},
        {"js/../x.js", false},
        {"js//x.js", false},
        {"/js/x.js", false},
        {"js/", false},
        {"", false},
        {".js", false},
        {"a.JS", false},                   /* extensions are case-sensitive, as on disk */
        {"dir.js/file", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (web_ui_servable(rows[i].path) != rows[i].served)
            fail_msg("web_ui_servable(\"%s\") should be %s", rows[i].path,
                     rows[i].served ? "true" : "false");
    }
    assert_string_equal(web_ui_mime_type("a/b.js"), "text/javascript; charset=utf-8");
    assert_string_equal(web_ui_mime_type("a.mjs"), "text/javascript; charset=utf-8");
    assert_string_equal(web_ui_mime_type("a.css"), "text/css; charset=utf-8");
    assert_string_equal(web_ui_mime_type("x.woff2"), "font/woff2");
    assert_null(web_ui_mime_type("x.woff"));
}

static void test_substitute(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"", ""},
        {"no placeholder", "no placeholder"},
        {"__FIRN_ASSETS__", "/P"},
        {"<a href=\"__FIRN_ASSETS__/x.js\">", "<a href=\"/P/x.js\">"},
        {"__FIRN_ASSETS____FIRN_ASSETS__", "/P/P"},
        {"a__FIRN_ASSETS__b__FIRN_ASSETS__", "a/Pb/P"},
        {"__FIRN_ASSETS_", "__FIRN_ASSETS_"},          /* cut short at the end */
        {"___FIRN_ASSETS__", "_/P"},
        {"__firn_assets__", "__firn_assets__"},        /* case matters */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        firn_buf b = {0};
        web_ui_substitute(&b, (const unsigned char *)rows[i].in, strlen(rows[i].in), "/P");
        size_t len;
        char *out = firn_buf_take(&b, &len);
        assert_non_null(out);
        assert_string_equal(out, rows[i].out);
        assert_int_equal(len, strlen(rows[i].out));
        free(out);
    }
    /* A NUL inside a page is a byte like any other. */
    static const unsigned char with_nul[] = {'a', 0, '_', '_', 'F', 'I', 'R', 'N', '_', 'A', 'S',
                                             'S', 'E', 'T', 'S', '_', '_', 0};
    firn_buf b = {0};
    web_ui_substitute(&b, with_nul, sizeof with_nul, "/P");
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "a\0/P\0", 5);
    firn_buf_free(&b);
}

/* ---- negotiation on a live server -------------------------------------------- */

static http_server *server;

static int setup(void **state)
{
    (void)state;
    http_options o;
    http_options_default(&o);
    o.listen_address = "127.0.0.1:0";
    o.workers = 1;
    firn_err err = {0};
    server = http_new(&o, &err);
    if (!server || web_ui_register(server, NULL, &err) < 0 || http_start(server, &err) < 0) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_stop(server);
    return 0;
}

/* GET path with up to two extra request headers (NULL for none). */
static reply get(const char *path, const char *h1, const char *h2)
{
    reply r = {0};
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port(server), path);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *hs = NULL;
    if (h1)
        hs = curl_slist_append(hs, h1);
    if (h2)
        hs = curl_slist_append(hs, h2);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    r.rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hs);
    assert_int_equal(r.rc, CURLE_OK);
    return r;
}

/* The embedded page every build has, with a gzip body to negotiate. */
static const web_ui_asset *index_page(void)
{
    for (size_t i = 0; i < web_ui_n_assets; i++)
        if (strcmp(web_ui_assets[i].path, "index.html") == 0) {
            assert_non_null(web_ui_assets[i].gz);
            return &web_ui_assets[i];
        }
    fail_msg("no index.html embedded");
    return NULL;
}

static void test_accept_encoding(void **state)
{
    (void)state;
    index_page();
    static const struct {
        const char *accept;  /* NULL: no header */
        bool gzip;
    } rows[] = {
        {NULL, false},
        {"Accept-Encoding: gzip", true},
        {"Accept-Encoding: GZIP", true},
        {"Accept-Encoding: x-gzip", true},
        {"Accept-Encoding: deflate, gzip, br", true},
        {"Accept-Encoding: br;q=1.0, gzip;q=0.8, *;q=0.1", true},
        {"Accept-Encoding: gzip;q=0", false},
        {"Accept-Encoding: gzip; q=0", false},
        {"Accept-Encoding: gzip;q=0.000", false},
        {"Accept-Encoding: gzip;q=0.001", true},
        {"Accept-Encoding: identity", false},
        {"Accept-Encoding: br", false},
        {"Accept-Encoding: gzipx", false},
        {"Accept-Encoding: *", true},
        {"Accept-Encoding: *;q=0", false},
        {"Accept-Encoding: *;q=0, gzip", true},       /* the named coding wins over * */
        {"Accept-Encoding: gzip;q=0, *", false},
        {"Accept-Encoding: ", false},
        {"Accept-Encoding: ,,, gzip ,", true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        reply r = get("/", rows[i].accept, NULL);
        assert_int_equal(r.status, 200);
        const char *ce = header_of(&r, "content-encoding");
        bool gzip = ce && strcmp(ce, "gzip") == 0;
        if (gzip != rows[i].gzip)
            fail_msg("%s: gzip %s, want %s", rows[i].accept ? rows[i].accept : "(none)",
                     gzip ? "yes" : "no", rows[i].gzip ? "yes" : "no");
        assert_string_equal(header_of(&r, "vary"), "Accept-Encoding");
        reply_free(&r);
    }
}

static void test_if_none_match(void **state)
{
    (void)state;
    const web_ui_asset *a = index_page();
    char h[256];
    static const struct {
        const char *fmt;  /* %s: the identity ETag */
        long status;
    } rows[] = {
        {"If-None-Match: %s", 304},
        {"If-None-Match: W/%s", 304},               /* weak comparison */
        {"If-None-Match: \"x\", %s", 304},
        {"If-None-Match: \"x\",%s,\"y\"", 304},
        {"If-None-Match: *", 304},
        {"If-None-Match: \"x\"", 200},
        {"If-None-Match: \"x\" %s", 304},           /* a missing comma is forgiven */
        {"If-None-Match: x%s", 200},                /* malformed: no match */
        {"If-None-Match: \"unterminated", 200},
        {"If-None-Match: ", 200},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(h, sizeof h, rows[i].fmt, a->etag);
        reply r = get("/", h, NULL);
        if (r.status != rows[i].status)
            fail_msg("%s: %ld, want %ld", h, r.status, rows[i].status);
        assert_string_equal(header_of(&r, "etag"), a->etag);
        if (r.status == 304) {
            assert_int_equal(r.body.len, 0);
            assert_null(header_of(&r, "content-length"));
            assert_string_equal(header_of(&r, "cache-control"), "no-cache");
        }
        reply_free(&r);
    }
    /* The gzip body has its own tag: the identity's does not validate it. */
    snprintf(h, sizeof h, "If-None-Match: %s", a->etag);
    reply r = get("/", h, "Accept-Encoding: gzip");
    assert_int_equal(r.status, 200);
    assert_string_equal(header_of(&r, "etag"), a->gz_etag);
    reply_free(&r);
    snprintf(h, sizeof h, "If-None-Match: %s", a->gz_etag);
    r = get("/", h, "Accept-Encoding: gzip");
    assert_int_equal(r.status, 304);
    reply_free(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_servable),
        cmocka_unit_test(test_substitute),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_accept_encoding),
        cmocka_unit_test(test_if_none_match),
    };
    int failed = cmocka_run_group_tests_name("web_ui", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("web_ui_server", live, setup, teardown);
    curl_global_cleanup();
    return failed;
}
