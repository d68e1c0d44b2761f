/* disc_probe.h -- the sink the discovery probes (disc_*_probe.c) print
 * through: one JSON object a line on standard output,
 *   {"event":"send","groups":[{"source":S,"labels":{...},"targets":[{label:value,...}]}]}
 *   {"event":"refreshed","ok":true|false}
 * ("labels" only when the group has any). */
#ifndef FIRN_E2E_DISC_PROBE_H
#define FIRN_E2E_DISC_PROBE_H

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "discovery/discovery.h"

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

static json_t *labels_json(const firn_label *labels, size_t n)
{
    json_t *o = json_object();
    for (size_t l = 0; l < n; l++)
        json_object_set_new(o, labels[l].name, json_string(labels[l].value));
    return o;
}

static void probe_send(disc_sink *self, const disc_group *groups, size_t n)
{
    (void)self;
    json_t *gs = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ts = json_array();
        for (size_t t = 0; t < groups[i].n_targets; t++)
            json_array_append_new(ts, labels_json(groups[i].targets[t].labels,
                                                  groups[i].targets[t].n_labels));
        json_t *g = json_pack("{s:s, s:o}", "source", groups[i].source, "targets", ts);
        if (groups[i].n_labels)
            json_object_set_new(g, "labels", labels_json(groups[i].labels, groups[i].n_labels));
        json_array_append_new(gs, g);
    }
    print_json(json_pack("{s:s, s:o}", "event", "send", "groups", gs));
}

static void probe_refreshed(disc_sink *self, bool ok)
{
    (void)self;
    print_json(json_pack("{s:s, s:b}", "event", "refreshed", "ok", ok));
}

/* Block SIGTERM and SIGINT in this thread, before the providers start (so
 * their threads inherit the mask and only probe_wait_stop sees them). */
static sigset_t probe_block_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return set;
}

/* Wait for one of set's signals; returns when it came, in ms of the
 * monotonic clock, for the caller's "stopped" line. */
static int64_t probe_wait_stop(const sigset_t *set)
{
    int sig;
    sigwait(set, &sig);
    return firn_mono_ms();
}

static void probe_print_stopped(int64_t since_ms)
{
    print_json(json_pack("{s:s, s:I}", "event", "stopped", "stop_ms",
                         (json_int_t)(firn_mono_ms() - since_ms)));
}

#endif
