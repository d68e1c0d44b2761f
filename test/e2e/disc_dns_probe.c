/* disc_dns_probe.c -- run one dns_sd_configs provider and print what it
 * reports, for test/e2e/disc_dns.sh.
 *
 *   disc_dns_probe SERVER TYPE PORT REFRESH_MS NAME...
 *
 * SERVER is HOST:PORT ("-" for resolv.conf's servers), PORT 0 for SRV.
 * Prints what the provider reports as disc_probe.h describes and, on
 * SIGTERM or SIGINT, stops the provider and prints
 *   {"event":"stopped","stop_ms":N}
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/discovery.h"
#include "test/e2e/disc_probe.h"

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

    sigset_t set = probe_block_stop_signals();

    firn_err err;
    firn_err_clear(&err);
    disc_dns *d = disc_dns_start(&cfg, &opts, &sink, &err);
    if (!d) {
        fprintf(stderr, "disc_dns_probe: %s\n", err.msg);
        return 1;
    }
    int64_t t0 = probe_wait_stop(&set);
    disc_dns_stop(d);
    probe_print_stopped(t0);
    return 0;
}
