/* disc_k8s_probe.c -- run the kubernetes_sd_configs of a firn config file
 * and print what they report, for test/e2e/disc_kubernetes.sh.
 *
 *   disc_k8s_probe CONFIG JOB WATCH_TIMEOUT_S [SERVICEACCOUNT_DIR]
 *
 * Starts one provider per kubernetes_sd_configs entry of job JOB (index),
 * with watches of WATCH_TIMEOUT_S seconds (0: client-go's 5-10 min) and
 * the in-cluster files in SERVICEACCOUNT_DIR.  Prints what the providers
 * report as disc_probe.h describes; exits 1 with the reason when one cannot
 * start, and stops them on SIGTERM or SIGINT, printing
 *   {"event":"stopped","stop_ms":N}
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/discovery.h"
#include "test/e2e/disc_probe.h"

#define PROBE_MAX 16

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s CONFIG JOB WATCH_TIMEOUT_S [SERVICEACCOUNT_DIR]\n", argv[0]);
        return 2;
    }
    firn_err err;
    firn_err_clear(&err);
    firn_config *cfg = config_load_file(argv[1], &err);
    if (!cfg) {
        fprintf(stderr, "disc_k8s_probe: %s\n", err.msg);
        return 1;
    }
    size_t job = (size_t)atoi(argv[2]);
    if (job >= cfg->n_scrapes || cfg->scrapes[job].n_kubernetes_sd == 0) {
        fprintf(stderr, "disc_k8s_probe: job %zu has no kubernetes_sd_configs\n", job);
        return 1;
    }
    disc_k8s_options opts = {
        .watch_timeout_s = atoll(argv[3]),
        .serviceaccount_dir = argc > 4 ? argv[4] : NULL,
    };
    disc_sink sink = {.send = probe_send, .refreshed = probe_refreshed};

    sigset_t set = probe_block_stop_signals();

    disc_k8s *k[PROBE_MAX];
    size_t n = 0;
    for (size_t i = 0; i < cfg->scrapes[job].n_kubernetes_sd && n < PROBE_MAX; i++) {
        k[n] = disc_k8s_start(&cfg->scrapes[job].kubernetes_sd[i], &opts, &sink, &err);
        if (!k[n]) {
            fprintf(stderr, "disc_k8s_probe: %s\n", err.msg);
            while (n)
                disc_k8s_stop(k[--n]);
            config_free(cfg);
            return 1;
        }
        n++;
    }
    int64_t t0 = probe_wait_stop(&set);
    while (n)
        disc_k8s_stop(k[--n]);
    probe_print_stopped(t0);
    config_free(cfg);
    return 0;
}
