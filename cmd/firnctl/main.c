/* firnctl -- firn's command-line tool: inspect and convert pprof files,
 * write to and inspect stores, check configuration files, and run benchmarks.
 * Wiring only: the work is done by the modules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firnctl.h"
#include "model/model.h"

int firnctl_parse_ms(const char *flag, const char *s, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "firnctl: %s: \"%s\" is not a number of milliseconds\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: firnctl <command> [args]\n"
          "\n"
          "commands:\n"
          "  pprof info FILE                  JSON summary of a pprof file (raw or gzipped)\n"
          "  pprof convert IN OUT             decode, validate and re-encode (gzipped) IN to OUT\n"
          "  pprof top FILE [--sample-index N|NAME] [--nodes N]\n"
          "                                   flat/cum per function, like `go tool pprof -top`\n"
          "  tsdb append|series|labels|values|dump|export|stats|clean ...\n"
          "                                   write to and inspect a store (firnctl tsdb --help)\n"
          "  query parse|eval|range|profile ...\n"
          "                                   the query language: AST, instant and range queries\n"
          "                                   (Prometheus API JSON), profile queries as collapsed\n"
          "                                   stacks, top, pprof, flame-graph JSON or SVG\n"
          "                                   (firnctl query --help)\n"
          "  push [--server URL] [--name NAME] [--label k=v]... FILE...\n"
          "                                   upload pprof files to a running firn\n"
          "                                   (firnctl push --help)\n"
          "  check config|web-config FILE...  validate configuration or web configuration\n"
          "                                   files: \"FILE: OK\" or FILE:LINE:COL: errors,\n"
          "                                   one per line (exit 1)\n"
          "  check rules FILE...              validate Prometheus rule files as promtool does\n"
          "  test rules FILE...               run rule unit tests (promtool test rules)\n"
          "  bench decode [--seconds S] FILE...\n"
          "                                   decode speed against plain zlib inflate\n"
          "  bench tsdb|query|rules [--targets N] [--profiles N] [--threads N] FILE...\n"
          "                                   store ingest/merge, query and rule evaluation\n"
          "                                   speed on synthetic series made from FILEs\n"
          "  bench rollup [--targets N] [--profiles N] FILE\n"
          "                                   7-day flame graphs with rollups against the raw\n"
          "                                   merge; raw merge speed warm and cold\n"
          "  bench fleet [--quick] [--targets N] [--minutes N] ... [FILE...]\n"
          "                                   the store at fleet scale on big real profiles:\n"
          "                                   ingest, disk, merges, flame graphs over 1 h to\n"
          "                                   7 d, memory (firnctl bench --help)\n"
          "  --version                        print the version\n"
          "\n"
          "FILE may be - for standard input.\n",
          f);
}

int main(int argc, char **argv)
{
    firn_tune_malloc();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("firnctl %s\n", FIRN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "pprof") == 0)
        return cmd_pprof(argc - 2, argv + 2);
    if (strcmp(cmd, "tsdb") == 0)
        return cmd_tsdb(argc - 2, argv + 2);
    if (strcmp(cmd, "query") == 0)
        return cmd_query(argc - 2, argv + 2);
    if (strcmp(cmd, "push") == 0)
        return cmd_push(argc - 2, argv + 2);
    if (strcmp(cmd, "test") == 0)
        return cmd_test(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "firnctl: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
