/* manager.c -- the rule groups of the running configuration: loading them
 * whole or not at all, one thread per group on fixed slots, state carried
 * across reloads, the notifier, the remote_write queues, the API's JSON
 * and the self-metrics.
 *
 * Locks: m->mu guards the group list and the threads' stop flags (and is
 * what they sleep on); m->cfg_lock is held shared by an evaluation and
 * exclusively while a reload swaps the configuration the groups' options
 * point into (external labels), so none reads a freed one.  A group's
 * own mutex guards its rules' state (API readers take it).
 */
#include "rules/rules.h"

#include <assert.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

struct mgroup {
    rules_manager *m;
    rules_group_rt *rt;
    pthread_t thread;
    bool started, stop, should_restore;
};

struct rules_manager {
    rules_manager_options opts;
    rules_notifier *notifier;
    rules_remote *remote;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_rwlock_t cfg_lock;
    firn_config *cfg;
    rules_file **files;
    size_t n_files;
    struct mgroup **groups;
    size_t n_groups;
    bool loaded_once;
};

static void send_to_notifier(void *ctx, const rules_notification *a, size_t n)
{
    rules_notifier_send(ctx, a, n);
}

static void send_to_remote(void *ctx, const tsdb_float_sample *s, size_t n)
{
    rules_remote_append(ctx, s, n);
}

rules_manager *rules_manager_new(const rules_manager_options *o, firn_err *err)
{
    rules_manager *m = firn_xcalloc(1, sizeof *m);
    m->opts = *o;
    m->notifier = rules_notifier_new(o->queue_capacity ? o->queue_capacity : 10000,
                                     o->batch_size ? o->batch_size : 64, o->dns_server, err);
    if (!m->notifier) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cond, NULL);
    pthread_rwlock_init(&m->cfg_lock, NULL);
    char ua[64];
    snprintf(ua, sizeof ua, "firn/%s", FIRN_VERSION);
    if (rules_notifier_start(m->notifier, ua, err) < 0 ||
        !(m->remote = rules_remote_new(ua, err))) {
        rules_notifier_free(m->notifier);
        free(m);
        return NULL;
    }
    return m;
}

/* ---- group threads ----------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Sleeps until t (wall clock, ms) or a stop; false when stopped. */
static bool sleep_until(struct mgroup *mg, int64_t t)
{
    rules_manager *m = mg->m;
    pthread_mutex_lock(&m->mu);
    int64_t now;
    while (!mg->stop && (now = firn_now_ms()) < t) {
        struct timespec until = firn_deadline_ms(t - now);
        pthread_cond_timedwait(&m->cond, &m->mu, &until);
    }
    bool go = !mg->stop;
    pthread_mutex_unlock(&m->mu);
    return go;
}

static void *group_main(void *arg)
{
    struct mgroup *mg = arg;
    rules_group_rt *g = mg->rt;
    rules_manager *m = mg->m;
    int64_t iv = g->interval_ms, off = rules_group_rt_offset(g);
    assert(iv > 0 && off >= 0 && off < iv);
    /* the first slot strictly after the current one */
    int64_t now = firn_now_ms();
    int64_t ts = floor_div(now - off, iv) * iv + off + iv;
    int evals = 0;
    while (sleep_until(mg, ts)) {
        pthread_rwlock_rdlock(&m->cfg_lock);
        rules_group_rt_eval(g, ts);
        if (mg->should_restore && ++evals == 2)
            rules_group_rt_restore(g, firn_now_ms());
        pthread_rwlock_unlock(&m->cfg_lock);
        /* a slow evaluation skips slots: they are counted, never caught up */
        now = firn_now_ms();
        int64_t next = ts + iv;
        if (now >= next + iv) {
            int64_t missed = (now - next) / iv;
            pthread_mutex_lock(&g->mu);
            g->iterations_missed_total += (uint64_t)missed;
            g->iterations_total += (uint64_t)missed;
            pthread_mutex_unlock(&g->mu);
            next += missed * iv;
        }
        ts = next;
    }
    return NULL;
}

static void stop_groups(rules_manager *m, struct mgroup **gs, size_t n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++)
        gs[i]->stop = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n; i++)
        if (gs[i]->started)
            pthread_join(gs[i]->thread, NULL);
}

/* ---- applying a configuration --------------------------------------------------- */

/* The rule files of cfg: each glob joined to the config file's directory
 * (filepath.Join's result, "./x" as "x"), expanded, in glob's order. */
static int expand_globs(const firn_config *cfg, char ***out, size_t *n, firn_err *err)
{
    *out = NULL;
    *n = 0;
    char *dir = NULL;
    if (cfg->source && cfg->source[0] != '<') {
        char *copy = firn_xstrdup(cfg->source);
        dir = firn_xstrdup(dirname(copy));
        free(copy);
    }
    size_t cap = 0;
    for (size_t i = 0; i < cfg->n_rule_files; i++) {
        const char *pat = cfg->rule_files[i];
        char *full = pat[0] == '/' || !dir || strcmp(dir, ".") == 0
                         ? firn_xstrdup(pat)
                         : firn_xasprintf("%s/%s", dir, pat);
        glob_t gl;
        int rc = glob(full, 0, NULL, &gl);
        if (rc == GLOB_NOSPACE)
            firn_oom(0);   /* glob's own allocation failed */
        if (rc != 0 && rc != GLOB_NOMATCH) {
            free(full);
            free(dir);
            return firn_errf(err, FIRN_EINVAL, "error retrieving rule files for %s: %s",
                             pat, strerror(errno));
        }
        for (size_t k = 0; rc == 0 && k < gl.gl_pathc; k++) {
            *out = firn_grow(*out, *n, &cap, sizeof **out, 8);
            (*out)[(*n)++] = firn_xstrdup(gl.gl_pathv[k]);
        }
        if (rc == 0)
            globfree(&gl);
        free(full);
    }
    free(dir);
    return 0;
}

static int ferr_code(const firn_err *err)
{
    return err && err->code ? err->code : FIRN_EINVAL;
}

int rules_manager_apply(rules_manager *m, firn_config *cfg, firn_err *err)
{
    char **paths = NULL;
    size_t n_paths = 0;
    rules_file **files = NULL;
    size_t n_files = 0;
    struct mgroup **groups = NULL;
    size_t n_groups = 0, cap_groups = 0;
    int rc = expand_globs(cfg, &paths, &n_paths, err);
    if (!rc)
        files = firn_xcalloc(n_paths + 1, sizeof *files);
    /* every file, every error logged; the first one is the reload's */
    bool file_failed = false;
    for (size_t i = 0; !rc && i < n_paths; i++) {
        rules_errors errs = {0};
        firn_err ferr = {0};
        rules_file *f = rules_file_load(paths[i], &errs, &ferr);
        if (!f) {
            for (size_t k = 0; k < errs.n; k++)
                firn_log(FIRN_LOG_ERROR, "rules", "loading groups failed", "err=\"%s\"",
                         errs.lines[k]);
            if (!errs.n)
                firn_log(FIRN_LOG_ERROR, "rules", "loading groups failed", "err=\"%s\"",
                         ferr.msg);
            rules_errors_free(&errs);
            if (err && !file_failed)
                *err = ferr;
            file_failed = true;
            continue;
        }
        files[n_files++] = f;
    }
    if (!rc && file_failed)
        rc = ferr_code(err);
    /* the groups, with their runtimes (threads start below) */
    rules_eval_options eo = {.db = m->opts.db,
                             .external_labels = cfg->external_labels,
                             .n_external_labels = cfg->n_external_labels,
                             .external_url = m->opts.external_url,
                             .resend_delay_ms = m->opts.resend_delay_ms,
                             .outage_tolerance_ms = m->opts.outage_tolerance_ms,
                             .for_grace_period_ms = m->opts.for_grace_period_ms,
                             .send = send_to_notifier,
                             .send_ctx = m->notifier,
                             .written = send_to_remote,
                             .written_ctx = m->remote,
                             .limits = m->opts.limits};
    for (size_t i = 0; !rc && i < n_files; i++)
        for (size_t gi = 0; !rc && gi < files[i]->n_groups; gi++) {
            groups = firn_grow(groups, n_groups, &cap_groups, sizeof *groups, 8);
            struct mgroup *mg = firn_xcalloc(1, sizeof *mg);
            mg->rt = rules_group_rt_new(files[i], gi, cfg->evaluation_interval_ms, &eo, err);
            mg->m = m;
            groups[n_groups++] = mg;
        }
    for (size_t i = 0; i < n_paths; i++)
        free(paths[i]);
    free(paths);
    if (rc) {
        for (size_t i = 0; i < n_groups; i++) {
            rules_group_rt_free(groups[i]->rt);
            free(groups[i]);
        }
        free(groups);
        for (size_t i = 0; i < n_files; i++)
            rules_file_free(files[i]);
        free(files);
        config_free(cfg);
        firn_log(FIRN_LOG_ERROR, "rules", "error loading rules, previous rule set restored",
                 NULL);
        return rc;
    }

    /* Swap: stop the old groups (each finishes its evaluation), carry
     * their state into the new ones with the same key, mark removed ones
     * stale, point everything at the new configuration. */
    pthread_mutex_lock(&m->mu);
    struct mgroup **old = m->groups;
    size_t n_old = m->n_groups;
    rules_file **old_files = m->files;
    size_t n_old_files = m->n_files;
    pthread_mutex_unlock(&m->mu);
    stop_groups(m, old, n_old);
    pthread_rwlock_wrlock(&m->cfg_lock);
    for (size_t i = 0; i < n_groups; i++) {
        groups[i]->should_restore = !m->loaded_once;
        if (!groups[i]->should_restore)
            groups[i]->rt->restored = true;
    }
    int64_t now = firn_now_ms();
    for (size_t j = 0; j < n_old; j++) {
        bool kept = false;
        for (size_t i = 0; i < n_groups && !kept; i++)
            if (strcmp(groups[i]->rt->key, old[j]->rt->key) == 0) {
                rules_group_rt_copy_state(groups[i]->rt, old[j]->rt);
                groups[i]->should_restore = old[j]->should_restore && !old[j]->rt->restored;
                kept = true;
            }
        if (!kept)
            rules_group_rt_mark_all_stale(old[j]->rt, now);
    }
    rules_notifier_set(m->notifier, cfg);
    rules_remote_set(m->remote, cfg);
    firn_config *old_cfg = m->cfg;
    m->cfg = cfg;
    pthread_rwlock_unlock(&m->cfg_lock);
    for (size_t j = 0; j < n_old; j++) {
        rules_group_rt_free(old[j]->rt);
        free(old[j]);
    }
    free(old);
    for (size_t i = 0; i < n_old_files; i++)
        rules_file_free(old_files[i]);
    free(old_files);
    config_free(old_cfg);

    pthread_mutex_lock(&m->mu);
    m->groups = groups;
    m->n_groups = n_groups;
    m->files = files;
    m->n_files = n_files;
    m->loaded_once = true;
    for (size_t i = 0; i < n_groups; i++)
        groups[i]->started = pthread_create(&groups[i]->thread, NULL, group_main,
                                            groups[i]) == 0;
    pthread_mutex_unlock(&m->mu);
    size_t n_rules = 0;
    for (size_t i = 0; i < n_groups; i++)
        n_rules += groups[i]->rt->n_rules;
    firn_log(FIRN_LOG_INFO, "rules", "Rule groups loaded", "files=%zu groups=%zu rules=%zu",
             n_files, n_groups, n_rules);
    return 0;
}

void rules_manager_free(rules_manager *m)
{
    if (!m)
        return;
    /* no stale markers at shutdown, as Prometheus */
    stop_groups(m, m->groups, m->n_groups);
    for (size_t i = 0; i < m->n_groups; i++) {
        rules_group_rt_free(m->groups[i]->rt);
        free(m->groups[i]);
    }
    free(m->groups);
    for (size_t i = 0; i < m->n_files; i++)
        rules_file_free(m->files[i]);
    free(m->files);
    rules_notifier_free(m->notifier);
    rules_remote_free(m->remote);
    config_free(m->cfg);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cond);
    pthread_rwlock_destroy(&m->cfg_lock);
    free(m);
}

/* ---- API JSON ----------------------------------------------------------------- */

/* Go's time.Time JSON (RFC3339Nano, trailing zeros trimmed), the zero time
 * for never. */
static void json_time(firn_buf *b, int64_t ms, bool never)
{
    if (never) {
        firn_buf_puts(b, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    time_t s = (time_t)floor_div(ms, 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[48];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, ".%03d", frac);
        while (buf[n - 1] == '0')
            buf[--n] = 0;
    }
    firn_buf_printf(b, "\"%sZ\"", buf);
}

void rules_json_labels(firn_buf *b, const firn_label *l, size_t n)
{
    firn_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        firn_buf_puts(b, i ? "," : "");
        firn_json_string(b, l[i].name);
        firn_buf_puts(b, ":");
        firn_json_string(b, l[i].value);
    }
    firn_buf_puts(b, "}");
}

static const char *state_name(rules_alert_state s)
{
    return s == RULES_FIRING ? "firing" : s == RULES_PENDING ? "pending" : "inactive";
}

static void json_alert(firn_buf *b, const rules_alert *a)
{
    char v[48];
    rules_format_float_e(v, sizeof v, a->value);
    firn_buf_puts(b, "{\"labels\":");
    rules_json_labels(b, a->labels, a->n_labels);
    firn_buf_puts(b, ",\"annotations\":");
    rules_json_labels(b, a->annotations, a->n_annotations);
    firn_buf_printf(b, ",\"state\":\"%s\",\"activeAt\":", state_name(a->state));
    json_time(b, a->active_at_ms, false);
    if (a->keep_firing_since_ms) {
        firn_buf_puts(b, ",\"keepFiringSince\":");
        json_time(b, a->keep_firing_since_ms, false);
    }
    firn_buf_printf(b, ",\"value\":\"%s\"}", v);
}

static int cmp_group(const void *x, const void *y)
{
    const rules_group_rt *a = (*(struct mgroup *const *)x)->rt;
    const rules_group_rt *b = (*(struct mgroup *const *)y)->rt;
    int c = strcmp(a->file->path, b->file->path);
    return c ? c : strcmp(a->group->name, b->group->name);
}

/* Trimmed expression text: firn prints the rule's expression as written
 * (Prometheus re-prints its parsed form). */
static void json_query(firn_buf *b, const char *expr)
{
    while (*expr == ' ' || *expr == '\n' || *expr == '\t')
        expr++;
    size_t n = strlen(expr);
    while (n && (expr[n - 1] == ' ' || expr[n - 1] == '\n' || expr[n - 1] == '\t'))
        n--;
    char *t = firn_xstrndup(expr, n);
    firn_json_string(b, t);
    free(t);
}

int rules_manager_json_rules(rules_manager *m, const char *type, firn_buf *b, firn_err *err)
{
    bool want_alert = true, want_record = true;
    if (type && *type) {
        if (strcasecmp(type, "alert") == 0)
            want_record = false;
        else if (strcasecmp(type, "record") == 0)
            want_alert = false;
        else
            return firn_errf(err, FIRN_EINVAL, "invalid parameter \"type\": not supported value "
                             "\"%s\"", type);
    }
    pthread_mutex_lock(&m->mu);
    struct mgroup **gs = firn_xreallocarray(NULL, m->n_groups + 1, sizeof *gs);
    memcpy(gs, m->groups, m->n_groups * sizeof *gs);
    size_t n = m->n_groups;
    firn_sort(gs, n, sizeof *gs, cmp_group);
    firn_buf_puts(b, "{\"status\":\"success\",\"data\":{\"groups\":[");
    for (size_t i = 0; i < n; i++) {
        rules_group_rt *g = gs[i]->rt;
        pthread_mutex_lock(&g->mu);
        firn_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        firn_json_string(b, g->group->name);
        firn_buf_puts(b, ",\"file\":");
        firn_json_string(b, g->file->path);
        firn_buf_puts(b, ",\"rules\":[");
        bool first = true;
        for (size_t k = 0; k < g->n_rules; k++) {
            const rules_rule_rt *r = &g->rules[k];
            const rules_rule *rule = r->rule;
            if ((rule->alert && !want_alert) || (!rule->alert && !want_record))
                continue;
            firn_buf_puts(b, first ? "{" : ",{");
            first = false;
            if (rule->alert) {
                rules_alert_state st = RULES_INACTIVE;
                for (size_t a = 0; a < r->n_alerts; a++)
                    if (r->alerts[a].state > st)
                        st = r->alerts[a].state;
                firn_buf_printf(b, "\"state\":\"%s\",", state_name(st));
            }
            firn_buf_puts(b, "\"name\":");
            firn_json_string(b, rule->name);
            firn_buf_puts(b, ",\"query\":");
            json_query(b, rule->expr);
            if (rule->alert) {
                firn_buf_printf(b, ",\"duration\":%g,\"keepFiringFor\":%g",
                                (double)rule->for_ms / 1000.0,
                                (double)rule->keep_firing_for_ms / 1000.0);
                firn_buf_puts(b, ",\"labels\":");
                rules_json_labels(b, rule->labels, rule->n_labels);
                firn_buf_puts(b, ",\"annotations\":");
                rules_json_labels(b, rule->annotations, rule->n_annotations);
                firn_buf_puts(b, ",\"alerts\":[");
                bool fa = true;
                for (size_t a = 0; a < r->n_alerts; a++) {
                    if (r->alerts[a].state == RULES_INACTIVE)
                        continue;
                    firn_buf_puts(b, fa ? "" : ",");
                    fa = false;
                    json_alert(b, &r->alerts[a]);
                }
                firn_buf_puts(b, "]");
            } else if (rule->n_labels) {
                firn_buf_puts(b, ",\"labels\":");
                rules_json_labels(b, rule->labels, rule->n_labels);
            }
            firn_buf_printf(b, ",\"health\":\"%s\"",
                            r->health == RULES_HEALTH_OK    ? "ok"
                            : r->health == RULES_HEALTH_ERR ? "err"
                                                            : "unknown");
            if (r->last_error[0]) {
                firn_buf_puts(b, ",\"lastError\":");
                firn_json_string(b, r->last_error);
            }
            firn_buf_printf(b, ",\"evaluationTime\":%.9f,\"lastEvaluation\":", r->eval_seconds);
            json_time(b, r->last_eval_wall_ms, r->last_eval_wall_ms == 0);
            firn_buf_printf(b, ",\"type\":\"%s\"}", rule->alert ? "alerting" : "recording");
        }
        firn_buf_printf(b, "],\"interval\":%g,\"limit\":%lld,\"evaluationTime\":%.9f,"
                           "\"lastEvaluation\":",
                        (double)g->interval_ms / 1000.0, (long long)g->group->limit,
                        g->eval_seconds);
        json_time(b, g->last_eval_wall_ms, g->last_eval_wall_ms == 0);
        firn_buf_puts(b, "}");
        pthread_mutex_unlock(&g->mu);
    }
    firn_buf_puts(b, "]}}");
    pthread_mutex_unlock(&m->mu);
    free(gs);
    return 0;
}

struct alert_ref {
    const rules_alert *a;
};

static int cmp_alert(const void *x, const void *y)
{
    const rules_alert *a = ((const struct alert_ref *)x)->a, *b = ((const struct alert_ref *)y)->a;
    for (size_t i = 0; i < a->n_labels && i < b->n_labels; i++) {
        int c = strcmp(a->labels[i].name, b->labels[i].name);
        if (!c)
            c = strcmp(a->labels[i].value, b->labels[i].value);
        if (c)
            return c;
    }
    return a->n_labels < b->n_labels ? -1 : a->n_labels > b->n_labels;
}

void rules_manager_json_alerts(rules_manager *m, firn_buf *b)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_groups; i++)
        pthread_mutex_lock(&m->groups[i]->rt->mu);
    size_t n = 0, cap = 0;
    struct alert_ref *refs = NULL;
    for (size_t i = 0; i < m->n_groups; i++) {
        rules_group_rt *g = m->groups[i]->rt;
        for (size_t k = 0; k < g->n_rules; k++)
            for (size_t a = 0; a < g->rules[k].n_alerts; a++) {
                const rules_alert *al = &g->rules[k].alerts[a];
                if (al->state == RULES_INACTIVE)
                    continue;
                struct alert_ref *nr = firn_grow(refs, n, &cap, sizeof *refs, 16);
                if (!nr)
                    continue;
                refs = nr;
                refs[n++].a = al;
            }
    }
    firn_sort(refs, n, sizeof *refs, cmp_alert);
    firn_buf_puts(b, "{\"status\":\"success\",\"data\":{\"alerts\":[");
    for (size_t i = 0; i < n; i++) {
        firn_buf_puts(b, i ? "," : "");
        json_alert(b, refs[i].a);
    }
    firn_buf_puts(b, "]}}");
    free(refs);
    for (size_t i = m->n_groups; i-- > 0;)
        pthread_mutex_unlock(&m->groups[i]->rt->mu);
    pthread_mutex_unlock(&m->mu);
}

/* ---- self-metrics ---------------------------------------------------------------- */

void rules_manager_metrics_write(rules_manager *m, firn_buf *b)
{
    static const struct {
        const char *name, *type, *help;
    } F[] = {
        {"firn_rule_evaluations_total", "counter", "Rule evaluations."},
        {"firn_rule_evaluation_failures_total", "counter", "Rule evaluations that failed."},
        {"firn_rule_group_iterations_total", "counter",
         "Scheduled group evaluations, missed ones included."},
        {"firn_rule_group_iterations_missed_total", "counter",
         "Group evaluations skipped because the previous one was slow."},
        {"firn_rule_group_interval_seconds", "gauge", "The group's evaluation interval."},
        {"firn_rule_group_last_evaluation_timestamp_seconds", "gauge",
         "When the group was last evaluated (wall clock)."},
        {"firn_rule_group_last_duration_seconds", "gauge",
         "How long the group's last evaluation took."},
        {"firn_rule_group_rules", "gauge", "Rules in the group."},
        {"firn_rule_group_last_evaluation_samples", "gauge",
         "Samples the group's last evaluation wrote."},
    };
    pthread_mutex_lock(&m->mu);
    for (size_t f = 0; f < sizeof F / sizeof *F; f++) {
        firn_metrics_header(b, F[f].name, F[f].type, F[f].help);
        for (size_t i = 0; i < m->n_groups; i++) {
            rules_group_rt *g = m->groups[i]->rt;
            pthread_mutex_lock(&g->mu);
            double v = 0;
            switch (f) {
            case 0: case 1:
                for (size_t k = 0; k < g->n_rules; k++)
                    v += (double)(f == 0 ? g->rules[k].evaluations_total
                                         : g->rules[k].failures_total);
                break;
            case 2: v = (double)g->iterations_total; break;
            case 3: v = (double)g->iterations_missed_total; break;
            case 4: v = (double)g->interval_ms / 1000.0; break;
            case 5: v = (double)g->last_eval_wall_ms / 1000.0; break;
            case 6: v = g->eval_seconds; break;
            case 7: v = (double)g->n_rules; break;
            default: v = (double)g->last_samples; break;
            }
            firn_label l = {"rule_group", g->key};
            firn_metrics_sample(b, F[f].name, &l, 1, v);
            pthread_mutex_unlock(&g->mu);
        }
    }
    pthread_mutex_unlock(&m->mu);
    rules_notifier_metrics_write(m->notifier, b);
    rules_remote_metrics_write(m->remote, b);
}
