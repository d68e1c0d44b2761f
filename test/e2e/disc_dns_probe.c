/* disc_dns_probe.c -- run one dns_sd_configs provider and print what it
 * reports, for test/e2e/disc_dns.sh.
 *
 *   disc_dns_probe SERVER TYPE PORT REFRESH_MS NAME...
 *
 * SERVER is HOST:PORT ("-" for resolv.conf's servers), PORT 0 for SRV.
 * Prints one JSON object a line on standard output:
 *   {"event":"send","groups":[{"source":S,"targets":[{label:value,...}]}]}
 *   {"event":"refreshed","ok":true|false}
 * and, on SIGTERM or SIGINT, stops the provider and prints
 *   {"event":"stopped","stop_ms":N}
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void probe_send(disc_sink *self, const disc_group *groups, size_t n)
{
    (void)self;
    json_t *gs = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ts = json_array();
        for (size_t t = 0; t < groups[i].n_targets; t++) {
            json_t *lo = json_object();
            const disc_target *tg = &groups[i].targets[t];
            for (size_t l = 0; l < tg->n_labels; l++)
                json_object_set_new(lo, tg->labels[l].name, json_string(tg->labels[l].value));
            json_array_append_new(ts, lo);
        }
        json_array_append_new(gs, json_pack("{s:s, s:o}", "source", groups[i].source,
                                            "targets", ts));
    }
    print_json(json_pack("{s:s, s:o}", "event", "send", "groups", gs));
}

static void probe_refreshed(disc_sink *self, bool ok)
{
    (void)self;
    print_json(json_pack("{s:s, s:b}", "event", "refreshed", "ok", ok));
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s SERVER TYPE PORT REFRESH_MS NAME...\n", argv[0]);
        return 2;
    }
    config_dns_sd cfg = {
        .names = argv + 5,
        .n_names = (size_t)(argc - 5),
        .type = argv[2],
        .port = (uint16_t)atoi(argv[3]),
        .refresh_interval_ms = atoll(argv[4]),
    };
    disc_dns_options opts = {.server = strcmp(argv[1], "-") == 0 ? NULL : argv[1]};
    disc_sink sink = {.send = probe_send, .refreshed = probe_refreshed};

    /* Blocked before the provider starts, so its thread inherits the mask
     * and only sigwait below sees the signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    firn_err err;
    firn_err_clear(&err);
    disc_dns *d = disc_dns_start(&cfg, &opts, &sink, &err);
    if (!d) {
        fprintf(stderr, "disc_dns_probe: %s\n", err.msg);
        return 1;
    }
    int sig;
    sigwait(&set, &sig);
    int64_t t0 = firn_mono_ms();
    disc_dns_stop(d);
    print_json(json_pack("{s:s, s:I}", "event", "stopped", "stop_ms",
                         (json_int_t)(firn_mono_ms() - t0)));
    return 0;
}
