/* file.c -- file_sd_configs: target groups read from JSON and YAML files,
 * as Prometheus's discovery/file.
 *
 * One thread per provider.  It watches the parent directory of every
 * pattern with inotify and refreshes on any event about a name a pattern
 * could match (atomic renames arrive as IN_MOVED_TO), on the directory's
 * own events, on a queue overflow, and every refresh_interval.  A refresh
 * globs every pattern again and reads every file that matches.
 *
 * The invariant across refreshes is `last`: for each file the number of
 * groups the sink holds for it (sources PATH:0 .. PATH:n-1).  A file that
 * fails keeps its count, so its old groups stay; a file that vanished or
 * shrank gets empty groups for the sources past its new count, exactly as
 * Prometheus's Discovery.refresh.
 *
 * Stopping: disc_file_stop writes to an eventfd the thread polls beside
 * the inotify fd, then joins it.
 */
#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "config/config.h"
#include "discovery/discovery.h"

#define FILE_SD_MAX_BYTES CONFIG_MAX_BYTES     /* 16 MiB, as a config file */
#define FILE_SD_DEFAULT_REFRESH_MS (5 * 60 * 1000)
#define FILE_SD_META_FILEPATH "__meta_filepath"
#define FILE_SD_WATCH_MASK                                                                   \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |    \
     IN_DELETE_SELF | IN_MOVE_SELF)

/* ---- parsing ----------------------------------------------------------------- */

/* One entry of a file as decoded, its strings in the result's arena. */
typedef struct entry {
    const char **targets;
    size_t n_targets;
    firn_label *labels;   /* room for one more: __meta_filepath */
    size_t n_labels;
} entry;

static int build_groups(const char *path, entry *entries, size_t n, disc_groups *out,
                        firn_err *err)
{
    size_t pl = strlen(path);
    char *filepath = firn_arena_strndup(out->arena, path, pl);
    /* Counts from a file within FILE_SD_MAX_BYTES: the arena's sizes cannot
     * overflow, so it does not return NULL (model/alloc.h). */
    out->v = firn_arena_calloc(out->arena, n + 1, sizeof *out->v);
    for (size_t i = 0; i < n; i++) {
        entry *e = &entries[i];
        disc_group *g = &out->v[i];
        char index[32];
        int il = snprintf(index, sizeof index, ":%zu", i);
        char *src = firn_arena_alloc(out->arena, pl + (size_t)il + 1);
        g->targets = firn_arena_calloc(out->arena, e->n_targets + 1, sizeof *g->targets);
        firn_label *addr = firn_arena_calloc(out->arena, e->n_targets + 1, sizeof *addr);
        memcpy(src, path, pl);
        memcpy(src + pl, index, (size_t)il + 1);
        g->source = src;
        for (size_t t = 0; t < e->n_targets; t++) {
            addr[t] = (firn_label){"__address__", e->targets[t]};
            g->targets[t] = (disc_target){&addr[t], 1};
        }
        g->n_targets = e->n_targets;
        /* The file's path wins over a label of the same name, as in Prometheus. */
        size_t k = 0;
        for (size_t l = 0; l < e->n_labels; l++)
            if (strcmp(e->labels[l].name, FILE_SD_META_FILEPATH) != 0)
                e->labels[k++] = e->labels[l];
        e->labels[k++] = (firn_label){FILE_SD_META_FILEPATH, filepath};
        firn_err lerr = {0};
        if (firn_labels_normalize(e->labels, &k, &lerr) < 0)
            return firn_errf(err, FIRN_EINVAL, "%s: entry %zu: labels: %s", path, i, lerr.msg);
        g->labels = e->labels;
        g->n_labels = k;
        out->n++;
    }
    return 0;
}

static int json_parse(const char *path, const char *data, size_t len, disc_groups *out,
                      firn_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root)
        return firn_errf(err, FIRN_EINVAL, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    int rc = 0;
    entry *entries = NULL;
    size_t n = 0;
    if (json_is_null(root))   /* Go's json.Unmarshal of null into a slice: no groups */
        goto build;
    if (!json_is_array(root)) {
        rc = firn_errf(err, FIRN_EINVAL, "%s: expected a list of target groups", path);
        goto out;
    }
    n = json_array_size(root);
    entries = firn_arena_calloc(out->arena, n + 1, sizeof *entries);
    for (size_t i = 0; i < n; i++) {
        json_t *g = json_array_get(root, i);
        entry *e = &entries[i];
        if (json_is_null(g)) {
            rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: nil target group item found", path,
                           i);
            goto out;
        }
        if (!json_is_object(g)) {
            rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: expected an object", path, i);
            goto out;
        }
        const char *key;
        json_t *v;
        json_object_foreach(g, key, v) {
            if (strcmp(key, "targets") != 0 && strcmp(key, "labels") != 0) {
                rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: json: unknown field \"%.128s\"",
                               path, i, key);
                goto out;
            }
        }
        json_t *targets = json_object_get(g, "targets");
        json_t *labels = json_object_get(g, "labels");
        if (targets && !json_is_null(targets)) {
            if (!json_is_array(targets)) {
                rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: targets: expected a list of "
                               "strings", path, i);
                goto out;
            }
            e->n_targets = json_array_size(targets);
            e->targets = firn_arena_calloc(out->arena, e->n_targets + 1, sizeof *e->targets);
            for (size_t t = 0; t < e->n_targets; t++) {
                json_t *s = json_array_get(targets, t);
                if (!json_is_string(s)) {
                    rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: targets: expected a list "
                                   "of strings", path, i);
                    goto out;
                }
                e->targets[t] = firn_arena_strndup(out->arena, json_string_value(s),
                                                   json_string_length(s));
            }
        }
        size_t nl = labels && json_is_object(labels) ? json_object_size(labels) : 0;
        if (labels && !json_is_null(labels) && !json_is_object(labels)) {
            rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: labels: expected an object of "
                           "label names to values", path, i);
            goto out;
        }
        if (nl > FIRN_LABELS_MAX) {
            rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: labels: more than %d labels", path,
                           i, FIRN_LABELS_MAX);
            goto out;
        }
        e->labels = firn_arena_calloc(out->arena, nl + 1, sizeof *e->labels);
        if (nl) {
            json_object_foreach(labels, key, v) {
                if (!firn_label_name_valid(key)) {
                    rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: labels: \"%.128s\" is not "
                                   "a valid label name", path, i, key);
                    goto out;
                }
                if (!json_is_string(v)) {
                    rc = firn_errf(err, FIRN_EINVAL, "%s: entry %zu: labels: %s: expected a "
                                   "string", path, i, key);
                    goto out;
                }
                firn_label *l = &e->labels[e->n_labels++];
                l->name = firn_arena_strndup(out->arena, key, strlen(key));
                l->value = firn_arena_strndup(out->arena, json_string_value(v),
                                              json_string_length(v));
            }
        }
    }
build:
    rc = build_groups(path, entries, n, out, err);
out:
    json_decref(root);
    return rc;
}

/* A {name: value} mapping of an entry (null: none). */
static void yaml_labels(config_dec *d, const config_ynode *v, entry *e)
{
    if (!v || config_ynode_is_null(v)) {
        e->labels = config_dec_calloc(d, 1, sizeof *e->labels);
        return;
    }
    if (v->kind != CONFIG_YNODE_MAP) {
        config_dec_err(d, v, "labels", "expected a mapping of label names to values, got %s",
                config_dec_kind(v));
        return;
    }
    if (v->n > FIRN_LABELS_MAX) {
        config_dec_err(d, v, "labels", "more than %d labels", FIRN_LABELS_MAX);
        return;
    }
    e->labels = config_dec_calloc(d, v->n + 1, sizeof *e->labels);
    for (size_t p = 0; p < v->n; p++) {
        const config_ynode *key = v->items[2 * p], *val = v->items[2 * p + 1];
        char *name = NULL, *value = NULL;
        if (!config_dec_str(d, key, "labels", &name))
            continue;
        if (!name || !firn_label_name_valid(name)) {
            config_dec_err(d, key, "labels", "\"%.128s\" is not a valid label name", name ? name : "");
            continue;
        }
        if (val->kind != CONFIG_YNODE_SCALAR) {
            config_dec_err(d, val, "labels", "expected a string, got %s", config_dec_kind(val));
            continue;
        }
        if (!config_dec_str(d, val, "labels", &value))
            continue;
        e->labels[e->n_labels++] = (firn_label){name, value ? value : ""};
    }
}

static int yaml_parse(const char *path, const char *data, size_t len, disc_groups *out,
                      firn_err *err)
{
    static const char *const names[] = {"targets", "labels"};
    config_dec d = {.name = path, .arena = out->arena};
    config_ynode *root = NULL;
    entry *entries = NULL;
    size_t n = 0;
    if (!config_dec_parse(&d, data, len, &root) || !root || config_ynode_is_null(root))
        goto finish;
    if (root->kind != CONFIG_YNODE_SEQ) {
        config_dec_err(&d, root, NULL, "expected a list of target groups, got %s", config_dec_kind(root));
        goto finish;
    }
    n = root->n;
    entries = config_dec_calloc(&d, n, sizeof *entries);
    for (size_t i = 0; entries && i < n; i++) {
        const config_ynode *item = root->items[i], *vals[2];
        if (config_ynode_is_null(item)) {
            config_dec_err(&d, item, NULL, "nil target group item found");
            continue;
        }
        if (item->kind != CONFIG_YNODE_MAP) {
            config_dec_err(&d, item, NULL, "expected a target group, got %s", config_dec_kind(item));
            continue;
        }
        if (!config_dec_fields(&d, item, NULL, "target group", names, 2, vals, NULL))
            continue;
        char **targets = NULL;
        config_dec_str_list(&d, vals[0], "targets", &targets, &entries[i].n_targets);
        entries[i].targets = (const char **)targets;
        yaml_labels(&d, vals[1], &entries[i]);
    }
finish:
    if (config_dec_finish(&d, NULL, err) < 0)
        return err && err->code ? err->code : FIRN_EINVAL;
    return build_groups(path, entries, n, out, err);
}

int disc_file_parse(const char *path, const char *data, size_t len, disc_groups *out,
                    firn_err *err)
{
    *out = (disc_groups){0};
    const char *dot = strrchr(path, '.');
    bool json = dot && strcasecmp(dot, ".json") == 0;
    bool yaml = dot && (strcasecmp(dot, ".yml") == 0 || strcasecmp(dot, ".yaml") == 0);
    if (!json && !yaml)
        return firn_errf(err, FIRN_EINVAL, "%s: retrieval target groups: unknown file "
                         "extension (want .json, .yml or .yaml)", path);
    if (len > FILE_SD_MAX_BYTES)
        return firn_errf(err, FIRN_ETOOBIG, "%s: larger than the cap of %u bytes", path,
                         FILE_SD_MAX_BYTES);
    out->arena = firn_arena_new(0);
    int rc = json ? json_parse(path, data, len, out, err) : yaml_parse(path, data, len, out, err);
    if (rc < 0)
        disc_groups_free(out);
    return rc;
}

/* ---- the provider ------------------------------------------------------------- */

typedef struct watch {
    char *dir;
    int wd;        /* -1 while not watched */
    bool warned;   /* the failure to watch it was logged */
} watch;

typedef struct seen {
    char *path;
    size_t n_groups;   /* sources path:0 .. path:n_groups-1 held by the sink */
} seen;

struct disc_file {
    char **patterns;
    char **bases;      /* the last path element of each pattern */
    size_t *pattern_watch;   /* the watch of each pattern's directory */
    size_t n_patterns;
    watch *watches;
    size_t n_watches;
    int64_t refresh_ms;
    disc_sink *sink;
    int inotify_fd, stop_fd;
    seen *last;
    size_t n_last;
    pthread_t thread;
};

static void log_quoted(enum firn_log_level level, const char *msg, const char *path,
                       const char *why)
{
    char qp[512], qe[FIRN_ERR_MSG_MAX + 64];
    firn_log(level, "discovery", msg, "mechanism=file path=%s err=%s",
             firn_log_quote(qp, sizeof qp, path), firn_log_quote(qe, sizeof qe, why));
}

/* Watch the directories not yet watched (they may appear later). */
static void add_watches(disc_file *f)
{
    for (size_t i = 0; i < f->n_watches; i++) {
        watch *w = &f->watches[i];
        if (w->wd >= 0)
            continue;
        w->wd = inotify_add_watch(f->inotify_fd, w->dir, FILE_SD_WATCH_MASK);
        if (w->wd < 0 && !w->warned) {
            log_quoted(FIRN_LOG_WARN, "cannot watch directory, relying on refresh_interval",
                       w->dir, strerror(errno));
            w->warned = true;
        } else if (w->wd >= 0) {
            w->warned = false;
        }
    }
}

static const seen *find_seen(const seen *v, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].path, path) == 0)
            return &v[i];
    return NULL;
}

static void seen_free(seen *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].path);
    free(v);
}

/* What one refresh sends: the groups of the files read (each file's
 * disc_groups owns its part) and empty groups for vanished sources. */
typedef struct batch {
    disc_group *v;
    size_t n, cap;
    disc_groups *files;
    size_t n_files, cap_files;
    firn_arena *arena;   /* the empty groups' sources */
} batch;

static void batch_add(batch *b, const disc_group *g)
{
    b->v = firn_grow(b->v, b->n, &b->cap, sizeof *b->v, 16);
    b->v[b->n++] = *g;
}

/* Hand g to the batch. */
static void batch_add_file(batch *b, disc_groups *g)
{
    b->files = firn_grow(b->files, b->n_files, &b->cap_files, sizeof *b->files, 8);
    for (size_t i = 0; i < g->n; i++)
        batch_add(b, &g->v[i]);
    b->files[b->n_files++] = *g;
}

static void batch_free(batch *b)
{
    for (size_t i = 0; i < b->n_files; i++)
        disc_groups_free(&b->files[i]);
    free(b->files);
    free(b->v);
    firn_arena_free(b->arena);
}

/* Read and parse one file; on error log it and return false. */
static bool read_one(const char *path, disc_groups *out)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    firn_err err = {0};
    int rc = firn_read_file(path, FILE_SD_MAX_BYTES, &buf, &len, &err);
    if (rc == 0) {
        rc = disc_file_parse(path, (const char *)buf, len, out, &err);
        free(buf);
    }
    if (rc < 0)
        log_quoted(FIRN_LOG_ERROR, "Error reading file", path, err.msg);
    return rc == 0;
}

/* The files the patterns match now, each once, in pattern then glob order. */
static char **list_files(disc_file *f, size_t *n, bool *ok)
{
    char **files = NULL;
    size_t cap = 0;
    *n = 0;
    for (size_t p = 0; p < f->n_patterns; p++) {
        glob_t g = {0};
        int rc = glob(f->patterns[p], GLOB_PERIOD, NULL, &g);
        if (rc == GLOB_NOSPACE)   /* glob's own allocation failed */
            firn_oom(0);
        if (rc != 0 && rc != GLOB_NOMATCH) {
            log_quoted(FIRN_LOG_ERROR, "Error expanding glob", f->patterns[p], "read error");
            *ok = false;
        }
        for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
            bool dup = false;
            for (size_t j = 0; j < *n && !dup; j++)
                dup = strcmp(files[j], g.gl_pathv[i]) == 0;
            if (dup)
                continue;
            files = firn_grow(files, *n, &cap, sizeof *files, 8);
            files[(*n)++] = firn_xstrdup(g.gl_pathv[i]);
        }
        globfree(&g);
    }
    return files;
}

static void refresh(disc_file *f)
{
    add_watches(f);   /* before globbing, so no change after it goes unseen */
    bool ok = true;
    size_t n_files = 0;
    char **files = list_files(f, &n_files, &ok);
    batch b = {.arena = firn_arena_new(0)};
    seen *ref = firn_xcalloc(n_files + 1, sizeof *ref);
    for (size_t i = 0; i < n_files; i++) {
        const seen *prev = find_seen(f->last, f->n_last, files[i]);
        disc_groups g;
        ref[i].path = files[i];
        if (!read_one(files[i], &g)) {
            ok = false;
            ref[i].n_groups = prev ? prev->n_groups : 0;   /* keep the old groups */
            continue;
        }
        ref[i].n_groups = g.n;
        batch_add_file(&b, &g);
    }
    free(files);   /* the paths now belong to ref */

    /* Empty groups for the sources of files that vanished or shrank. */
    for (size_t i = 0; i < f->n_last; i++) {
        const seen *now = find_seen(ref, n_files, f->last[i].path);
        size_t m = now ? now->n_groups : 0;
        for (size_t k = m; k < f->last[i].n_groups; k++) {
            char source[32];
            int sl = snprintf(source, sizeof source, ":%zu", k);
            size_t pl = strlen(f->last[i].path);
            char *src = firn_arena_alloc(b.arena, pl + (size_t)sl + 1);
            batch_add(&b, &(disc_group){.source = src});
            memcpy(src, f->last[i].path, pl);
            memcpy(src + pl, source, (size_t)sl + 1);
        }
    }
    if (b.n)
        f->sink->send(f->sink, b.v, b.n);
    f->sink->refreshed(f->sink, ok);
    batch_free(&b);
    seen_free(f->last, f->n_last);
    f->last = ref;
    f->n_last = n_files;
}

/* Whether an inotify event may change what the patterns match. */
static bool event_matters(const disc_file *f, const struct inotify_event *ev)
{
    if (ev->mask & IN_Q_OVERFLOW)
        return true;
    if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        /* The directory went: watch it again at the refresh, if it is back.
         * Two names of one directory share a descriptor. */
        for (size_t w = 0; w < f->n_watches; w++)
            if ((ev->mask & IN_IGNORED) && f->watches[w].wd == ev->wd)
                f->watches[w].wd = -1;
        return true;
    }
    if (!ev->len)
        return true;
    for (size_t p = 0; p < f->n_patterns; p++)
        if (f->watches[f->pattern_watch[p]].wd == ev->wd &&
            fnmatch(f->bases[p], ev->name, 0) == 0)
            return true;
    return false;
}

/* Drain the inotify queue; true when some event calls for a refresh. */
static bool read_events(disc_file *f)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t r = read(f->inotify_fd, buf, sizeof buf);
        if (r <= 0)
            return any;   /* EAGAIN: drained */
        for (char *p = buf; p < buf + r;) {
            struct inotify_event *ev = (struct inotify_event *)(void *)p;
            any |= event_matters(f, ev);
            p += sizeof *ev + ev->len;
        }
    }
}

static void *run(void *arg)
{
    disc_file *f = arg;
    refresh(f);
    int64_t next = firn_mono_ms() + f->refresh_ms;
    for (;;) {
        int64_t wait = next - firn_mono_ms();
        if (wait < 0)
            wait = 0;
        struct pollfd fds[2] = {{.fd = f->stop_fd, .events = POLLIN},
                                {.fd = f->inotify_fd, .events = POLLIN}};
        int rc = poll(fds, 2, wait > INT32_MAX ? INT32_MAX : (int)wait);
        if (rc < 0 && errno != EINTR) {
            firn_log(FIRN_LOG_ERROR, "discovery", "poll failed, file discovery stops",
                     "mechanism=file err=%s", strerror(errno));
            return NULL;
        }
        if (fds[0].revents)
            return NULL;
        bool due = firn_mono_ms() >= next;
        if (fds[1].revents && read_events(f))
            due = true;
        if (due) {
            refresh(f);
            next = firn_mono_ms() + f->refresh_ms;
        }
    }
}

static void file_free(disc_file *f)
{
    for (size_t i = 0; i < f->n_patterns; i++)
        free(f->patterns[i]);
    free(f->patterns);
    free(f->bases);
    free(f->pattern_watch);
    for (size_t i = 0; i < f->n_watches; i++)
        free(f->watches[i].dir);
    free(f->watches);
    seen_free(f->last, f->n_last);
    if (f->inotify_fd >= 0)
        close(f->inotify_fd);
    if (f->stop_fd >= 0)
        close(f->stop_fd);
    free(f);
}

disc_file *disc_file_start(const config_file_sd *cfg, disc_sink *sink, firn_err *err)
{
    if (cfg->n_files == 0) {
        firn_errf(err, FIRN_EINVAL,
                  "file service discovery config must contain at least one path name");
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_files; i++)
        if (!config_file_sd_pattern_ok(cfg->files[i])) {
            firn_errf(err, FIRN_EINVAL, "path name \"%.256s\" is not valid for file discovery",
                      cfg->files[i]);
            return NULL;
        }
    disc_file *f = firn_xcalloc(1, sizeof *f);
    f->inotify_fd = f->stop_fd = -1;
    f->sink = sink;
    f->refresh_ms = cfg->refresh_interval_ms > 0 ? cfg->refresh_interval_ms
                                                 : FILE_SD_DEFAULT_REFRESH_MS;
    f->patterns = firn_xcalloc(cfg->n_files, sizeof *f->patterns);
    f->bases = firn_xcalloc(cfg->n_files, sizeof *f->bases);
    f->pattern_watch = firn_xcalloc(cfg->n_files, sizeof *f->pattern_watch);
    f->watches = firn_xcalloc(cfg->n_files, sizeof *f->watches);
    for (size_t i = 0; i < cfg->n_files; i++) {
        f->patterns[i] = firn_xstrdup(cfg->files[i]);
        f->n_patterns++;
        char *slash = strrchr(f->patterns[i], '/');
        f->bases[i] = slash ? slash + 1 : f->patterns[i];
        /* The parent directory, "." when there is none (as Prometheus). */
        const char *dir = f->patterns[i];
        size_t dl = slash ? (size_t)(slash - f->patterns[i]) : 0;
        if (!slash)
            dir = ".", dl = 1;
        else if (dl == 0)
            dir = "/", dl = 1;
        size_t w = 0;
        while (w < f->n_watches &&
               !(strlen(f->watches[w].dir) == dl && strncmp(f->watches[w].dir, dir, dl) == 0))
            w++;
        if (w == f->n_watches) {
            f->watches[w].dir = firn_xstrndup(dir, dl);
            f->watches[w].wd = -1;
            f->n_watches++;
        }
        f->pattern_watch[i] = w;
    }
    f->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    f->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->inotify_fd < 0 || f->stop_fd < 0) {
        firn_errf(err, FIRN_EIO, "file discovery: %s: %s",
                  f->inotify_fd < 0 ? "inotify_init1" : "eventfd", strerror(errno));
        file_free(f);
        return NULL;
    }
    int rc = pthread_create(&f->thread, NULL, run, f);
    if (rc != 0) {
        firn_errf(err, FIRN_EIO, "file discovery: pthread_create: %s", strerror(rc));
        file_free(f);
        return NULL;
    }
    return f;
}

void disc_file_stop(disc_file *f)
{
    if (!f)
        return;
    uint64_t one = 1;
    while (write(f->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(f->thread, NULL);
    file_free(f);
}
