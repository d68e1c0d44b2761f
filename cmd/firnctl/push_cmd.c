/* push_cmd.c -- `firnctl push`: upload pprof files to a running firn
 * through POST /api/v1/ingest (libcurl), one request per file.
 *
 * Each file is sent as it is (raw or gzipped); the server decodes it,
 * checks it and answers once it is stored.  Labels go as query parameters,
 * except those named like the endpoint's own parameters (name, delta,
 * time), which go in the X-Firn-Labels header.  Without --name the profile
 * name is told from the sample types by Pyroscope's rule (process_cpu,
 * memory, mutex, block, wall...), or the file is refused.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firnctl.h"
#include "http/http.h"
#include "ingest/ingest.h"

#define MAX_LABELS 64
/* firn answers a push with a line of JSON: a megabyte is far beyond any. */
#define PUSH_ANSWER_MAX (1 << 20)
#define DEFAULT_SERVER "http://localhost:7070"
/* The server's default body cap: a larger file would be refused anyway. */
#define PUSH_MAX_BYTES HTTP_DEFAULT_MAX_BODY

struct push_opts {
    const char *server;
    const char *name;
    bool delta;
    bool have_timestamp;
    int64_t timestamp_ms;
    firn_label labels[MAX_LABELS];
    size_t n_labels;
};

static void usage(FILE *f)
{
    fputs("usage: firnctl push [--server URL] [--name NAME] [--delta] [--label k=v]...\n"
          "                    [--timestamp MS] FILE...\n"
          "\n"
          "Upload pprof files (raw or gzipped) to a running firn (POST /api/v1/ingest);\n"
          "each is stored once the server answers, as a scraped profile would be.\n"
          "\n"
          "  --server URL       firn's address (default " DEFAULT_SERVER ")\n"
          "  --name NAME        profile name, the first field of the profile type\n"
          "                     (default: told from the sample types: process_cpu,\n"
          "                     memory, mutex, block, wall, goroutines)\n"
          "  --delta            the values are deltas (CPU profiles); default: when the\n"
          "                     profile has a duration\n"
          "  --label k=v        a label of the series (repeatable)\n"
          "  --timestamp MS     when the profile was taken (default: its time, or now)\n"
          "\n"
          "Prints one line per stored file; a refused file prints the server's error,\n"
          "and firnctl exits 1.\n",
          f);
}

static int parse_args(int argc, char **argv, struct push_opts *o, const char ***files,
                      size_t *n_files)
{
    *o = (struct push_opts){.server = DEFAULT_SERVER};
    *files = firn_xcalloc((size_t)argc + 1, sizeof **files);
    *n_files = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--delta") == 0) {
            o->delta = true;
            continue;
        } else if (strcmp(a, "-") != 0 && a[0] == '-' && !v) {
            fprintf(stderr, "firnctl: push: %s needs a value\n", a);
            return -1;
        } else if (strcmp(a, "--server") == 0) {
            o->server = v;
        } else if (strcmp(a, "--name") == 0) {
            o->name = v;
        } else if (strcmp(a, "--label") == 0) {
            char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "firnctl: push: --label \"%s\": want k=v\n", v);
                return -1;
            }
            if (o->n_labels == MAX_LABELS) {
                fprintf(stderr, "firnctl: push: at most %d labels\n", MAX_LABELS);
                return -1;
            }
            *eq = '\0';
            o->labels[o->n_labels++] = (firn_label){v, eq + 1};
        } else if (strcmp(a, "--timestamp") == 0) {
            char *end;
            long long ms = strtoll(v, &end, 10);
            if (!*v || *end || ms <= 0) {
                fprintf(stderr, "firnctl: push: --timestamp \"%s\": want milliseconds since "
                        "1970\n", v);
                return -1;
            }
            o->have_timestamp = true;
            o->timestamp_ms = ms;
        } else if (strcmp(a, "-") != 0 && a[0] == '-') {
            fprintf(stderr, "firnctl: push: unknown flag %s\n", a);
            usage(stderr);
            return -1;
        } else {
            (*files)[(*n_files)++] = a;
            continue;
        }
        i++;  /* the flag's value */
    }
    if (*n_files == 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static bool reserved_label(const char *name)
{
    return strcmp(name, "name") == 0 || strcmp(name, "delta") == 0 ||
           strcmp(name, "time") == 0;
}

static void url_param(firn_buf *b, CURL *c, const char *name, const char *value)
{
    char *n = curl_easy_escape(c, name, 0), *v = curl_easy_escape(c, value, 0);
    if (!n || !v)   /* libcurl's allocation: the policy of model/alloc.h */
        firn_oom(strlen(name) + strlen(value));
    firn_buf_printf(b, "&%s=%s", n, v);
    curl_free(n);
    curl_free(v);
}

/* The server's answer, up to its cap: past it libcurl stops the transfer. */
static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    firn_buf *b = ctx;
    firn_buf_append(b, data, size * n);
    return b->failed ? 0 : size * n;
}

/* The profile name told from the file, as the server would tell it for a
 * Pyroscope upload; NULL (and a message) when the file cannot say. */
static const char *guess_name(const char *path, const unsigned char *data, size_t len)
{
    firn_err err = {0};
    pprof_profile *p = pprof_decode(data, len, NULL, &err);
    if (!p) {
        fprintf(stderr, "firnctl: push %s: %s\n", path, err.msg);
        return NULL;
    }
    const char *name = ingest_pyroscope_profile_name(p, NULL, false);
    if (!name) {
        fprintf(stderr, "firnctl: push %s: cannot tell the profile name from its sample types "
                "(", path);
        for (size_t i = 0; i < p->n_sample_types; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", pprof_str(p, p->sample_types[i].type));
        fprintf(stderr, "); give --name\n");
    }
    pprof_free(p);
    return name;  /* a static string */
}

/* What the server said: its JSON error, or the text it sent. */
static void print_refusal(const char *path, long code, const char *body)
{
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg) {
        fprintf(stderr, "firnctl: push %s: %s (HTTP %ld)\n", path, msg, code);
    } else {
        size_t n = strlen(body);
        while (n && (body[n - 1] == '\n' || body[n - 1] == '\r'))
            n--;
        fprintf(stderr, "firnctl: push %s: %.*s (HTTP %ld)\n", path, (int)(n > 500 ? 500 : n),
                body, code);
    }
    json_decref(j);
}

static void print_stored(const char *path, const char *body)
{
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    json_t *data = json_object_get(j, "data");
    json_t *types = json_object_get(data, "profileTypes");
    printf("%s: %" JSON_INTEGER_FORMAT " samples stored at %" JSON_INTEGER_FORMAT " as ", path,
           json_integer_value(json_object_get(data, "samples")),
           json_integer_value(json_object_get(data, "timestampMs")));
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) {
        printf("%s%s", i ? ", " : "", json_string_value(t));
    }
    printf("\n");
    json_decref(j);
}

static int push_one(CURL *c, const struct push_opts *o, const char *path)
{
    unsigned char *data;
    size_t len;
    firn_err err = {0};
    if (firn_read_file(path, PUSH_MAX_BYTES, &data, &len, &err) < 0) {
        fprintf(stderr, "firnctl: push: %s\n", err.msg);
        return -1;
    }
    const char *name = o->name ? o->name : guess_name(path, data, len);
    if (!name) {
        free(data);
        return -1;
    }
    firn_buf url = {0}, labels_header = {0}, resp;
    firn_buf_init(&resp, PUSH_ANSWER_MAX);
    size_t slen = strlen(o->server);
    while (slen && o->server[slen - 1] == '/')
        slen--;
    firn_buf_printf(&url, "%.*s/api/v1/ingest?", (int)slen, o->server);
    char *n = curl_easy_escape(c, name, 0);
    if (!n)
        firn_oom(strlen(name));
    firn_buf_printf(&url, "name=%s", n);
    curl_free(n);
    if (o->delta)
        firn_buf_puts(&url, "&delta=true");
    if (o->have_timestamp) {
        char t[32];
        snprintf(t, sizeof t, "%" PRId64 ".%03d", o->timestamp_ms / 1000,
                 (int)(o->timestamp_ms % 1000));
        url_param(&url, c, "time", t);
    }
    for (size_t i = 0; i < o->n_labels; i++) {
        if (reserved_label(o->labels[i].name))
            firn_buf_printf(&labels_header, "%s%s=%s", labels_header.len ? "," : "",
                            o->labels[i].name, o->labels[i].value);
        else
            url_param(&url, c, o->labels[i].name, o->labels[i].value);
    }
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    firn_buf h = {0};
    if (headers && labels_header.len) {
        firn_buf_printf(&h, "X-Firn-Labels: %s", labels_header.data);
        struct curl_slist *more = curl_slist_append(headers, h.data);
        if (!more)
            curl_slist_free_all(headers);
        headers = more;
    }
    if (!headers)
        firn_oom(h.len);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int rc = 0;
    if (resp.failed) {
        fprintf(stderr, "firnctl: push %s: %s: the answer is larger than %d bytes\n", path,
                url.data, PUSH_ANSWER_MAX);
        rc = -1;
    } else if (cc != CURLE_OK) {
        fprintf(stderr, "firnctl: push %s: %s: %s\n", path, url.data, curl_easy_strerror(cc));
        rc = -1;
    } else if (code != 200) {
        print_refusal(path, code, resp.data ? resp.data : "");
        rc = -1;
    } else {
        print_stored(path, resp.data ? resp.data : "{}");
    }
    curl_slist_free_all(headers);
    firn_buf_free(&h);
    firn_buf_free(&url);
    firn_buf_free(&labels_header);
    firn_buf_free(&resp);
    free(data);
    return rc;
}

int cmd_push(int argc, char **argv)
{
    struct push_opts o;
    const char **files;
    size_t n_files;
    if (parse_args(argc, argv, &o, &files, &n_files) < 0) {
        free(files);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "firnctl: push: libcurl failed to initialize\n");
        free(files);
        return 1;
    }
    CURL *c = curl_easy_init();
    if (!c)   /* libcurl's allocation: the policy of model/alloc.h */
        firn_oom(0);
    int failed = 0;
    for (size_t i = 0; i < n_files; i++)
        failed |= push_one(c, &o, files[i]) < 0;
    curl_easy_cleanup(c);
    curl_global_cleanup();
    free(files);
    return failed ? 1 : 0;
}
