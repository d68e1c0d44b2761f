/* ui_embed.c -- build tool: turns the web UI's files into a C source that
 * embeds them in the firn binary (web_ui_assets, ui_asset.h), so one binary
 * serves its UI anywhere and building firn needs no Node.
 *
 *   firn_ui_embed OUTPUT.c DIR FILE...
 *
 * FILEs are paths relative to DIR (web/ui/); those web_ui_servable refuses
 * are skipped, so the build may pass every file it finds.  For each file it
 * computes, once at build time, what serving would otherwise compute per
 * request: the gzip -9 body (kept only when smaller), an ETag per
 * representation, and for pages the placeholder replaced by
 * "/static/HASH", HASH covering every embedded file's path and bytes, so
 * any change to any file moves every asset URL and the year-long cache
 * lifetime of /static/ never serves a stale file.  The output is written
 * through a temporary file and a rename: a failed run leaves no half file.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zlib.h>

#include "model/model.h"
#include "web/ui_asset.h"

typedef struct file {
    const char *path;
    unsigned char *raw;   /* as on disk */
    size_t raw_len;
    unsigned char *data;  /* as served */
    size_t len;
    unsigned char *gz;
    size_t gz_len;
} file;

static int by_path(const void *a, const void *b)
{
    return strcmp(((const file *)a)->path, ((const file *)b)->path);
}

static bool is_page(const char *path)
{
    return strcmp(strrchr(path, '.'), ".html") == 0;
}

/* gzip -9 of in (zlib's deflate with a gzip wrapper, modification time 0
 * so the output only depends on the input); NULL when not smaller. */
static unsigned char *gzip9(const unsigned char *in, size_t len, size_t *out_len)
{
    z_stream z = {0};
    int zrc = deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
    if (zrc == Z_MEM_ERROR)
        firn_oom(sizeof z);
    if (zrc != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    unsigned char *out = firn_xmalloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || *out_len >= len) {
        free(out);
        return NULL;
    }
    return out;
}

static void emit_bytes(FILE *o, const char *name, const unsigned char *p, size_t len)
{
    fprintf(o, "static const unsigned char %s[%zu] = {", name, len ? len : 1);
    for (size_t i = 0; i < len; i++)
        fprintf(o, "%s0x%02x,", i % 16 ? "" : "\n", p[i]);
    fputs(len ? "\n};\n" : "0};\n", o);
}

/* A C string literal of s (paths may hold any byte but NUL). */
static void emit_string(firn_buf *b, const char *s)
{
    firn_buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '?')
            firn_buf_printf(b, "\\%03o", c);
        else
            firn_buf_append(b, s, 1);
    }
    firn_buf_puts(b, "\"");
}

/* Say why the tool stops (a message naming what and where); 1. */
static int failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("firn_ui_embed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fputs("usage: firn_ui_embed OUTPUT.c DIR FILE...\n", stderr);
        return 2;
    }
    const char *output = argv[1], *dir = argv[2];
    int rc = 1;
    size_t n = 0;
    firn_err err = {0};
    firn_buf table = {0};
    char *text = NULL;
    size_t text_len = 0;
    FILE *o = NULL;
    XXH3_state_t *st = NULL;
    file *files = firn_xcalloc((size_t)argc, sizeof *files);
    for (int i = 3; i < argc; i++) {
        if (!web_ui_servable(argv[i]))
            continue;
        char full[4096];
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, argv[i]) >= sizeof full) {
            rc = failed("%s/%s: path too long", dir, argv[i]);
            goto out;
        }
        file *f = &files[n++];
        f->path = argv[i];
        if (firn_read_file(full, WEB_UI_FILE_MAX, &f->raw, &f->raw_len, &err) < 0) {
            rc = failed("%s", err.msg);
            goto out;
        }
    }
    firn_sort(files, n, sizeof *files, by_path);

    /* The version: every file's path, length and bytes, in path order. */
    st = XXH3_createState();
    if (!st)
        firn_oom(0);   /* xxhash's own malloc */
    XXH3_64bits_reset(st);   /* fails only for a NULL state */
    for (size_t i = 0; i < n; i++) {
        unsigned long long len = files[i].raw_len;
        XXH3_64bits_update(st, files[i].path, strlen(files[i].path) + 1);
        XXH3_64bits_update(st, &len, sizeof len);
        XXH3_64bits_update(st, files[i].raw, files[i].raw_len);
    }
    char hash[17], prefix[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)XXH3_64bits_digest(st));
    snprintf(prefix, sizeof prefix, "/static/%s", hash);

    o = open_memstream(&text, &text_len);
    if (!o)
        firn_oom(0);   /* fails only for want of memory */
    fputs("/* Generated by web/ui_embed.c from web/ui/ at build time: do not edit. */\n"
          "#include \"web/ui_asset.h\"\n\n",
          o);
    for (size_t i = 0; i < n; i++) {
        file *f = &files[i];
        if (is_page(f->path)) {
            firn_buf page = {0};
            web_ui_substitute(&page, f->raw, f->raw_len, prefix);
            f->data = (unsigned char *)firn_buf_take(&page, &f->len);   /* no cap */
        } else {
            f->data = f->raw;
            f->len = f->raw_len;
        }
        f->gz = gzip9(f->data, f->len, &f->gz_len);
        char name[32];
        snprintf(name, sizeof name, "data_%zu", i);
        emit_bytes(o, name, f->data, f->len);
        if (f->gz) {
            snprintf(name, sizeof name, "gz_%zu", i);
            emit_bytes(o, name, f->gz, f->gz_len);
        }
        unsigned long long etag = XXH3_64bits(f->data, f->len);
        firn_buf_puts(&table, "    {");
        emit_string(&table, f->path);
        firn_buf_printf(&table, ", data_%zu, %zu, ", i, f->len);
        if (f->gz)
            firn_buf_printf(&table, "gz_%zu, %zu, ", i, f->gz_len);
        else
            firn_buf_puts(&table, "NULL, 0, ");
        firn_buf_printf(&table, "\"\\\"%016llx\\\"\", \"\\\"%016llx-gz\\\"\"},\n", etag, etag);
    }
    assert(!table.failed);   /* no cap, and these formats cannot fail */
    fprintf(o, "\nconst web_ui_asset web_ui_assets[%zu] = {\n%s};\n", n ? n : 1,
            table.data ? table.data : "    {0},\n");
    fprintf(o, "const size_t web_ui_n_assets = %zu;\n", n);
    fprintf(o, "const char web_ui_hash[] = \"%s\";\n", hash);
    int bad = ferror(o);
    bad = fclose(o) != 0 || bad;
    o = NULL;
    if (bad)
        firn_oom(text_len);   /* a memory stream fails only for want of memory */
    if (firn_write_file_atomic(output, text, text_len, &err) < 0) {
        rc = failed("%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    if (o)
        fclose(o);
    for (size_t i = 0; i < n; i++) {
        if (files[i].data != files[i].raw)
            free(files[i].data);
        free(files[i].raw);
        free(files[i].gz);
    }
    XXH3_freeState(st);
    firn_buf_free(&table);
    free(text);
    free(files);
    return rc;
}
