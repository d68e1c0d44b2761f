/* check_cmd.c -- `firnctl check config FILE...`: load each file as firn
 * would and print "FILE: OK" with a summary, or every error, one per line
 * ("FILE:LINE:COL: field: message"), as promtool check config does. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "firnctl.h"

static void check_usage(FILE *f)
{
    fputs("usage: firnctl check config FILE...\n"
          "\n"
          "Load each configuration file as firn would (strict: unknown or duplicate keys,\n"
          "bad durations, label names, relabel rules and duplicate job names are errors).\n"
          "Prints \"FILE: OK\" and a summary, or the errors one per line as\n"
          "FILE:LINE:COL: message.  Exits 1 when any file has an error.\n",
          f);
}

/* One line: the jobs and the profile types each scrapes. */
static void print_summary(const firn_config *cfg)
{
    printf("  %zu scrape config%s", cfg->n_scrapes, cfg->n_scrapes == 1 ? "" : "s");
    for (size_t i = 0; i < cfg->n_scrapes; i++) {
        const config_scrape *sc = &cfg->scrapes[i];
        printf("%s %s (", i ? ";" : ":", sc->job_name);
        size_t shown = 0;
        for (size_t j = 0; j < sc->n_profile_types; j++)
            if (sc->profile_types[j].enabled)
                printf("%s%s", shown++ ? " " : "", sc->profile_types[j].name);
        if (!shown)
            fputs("no profile types enabled", stdout);
        putchar(')');
    }
    putchar('\n');
    if (cfg->has_object_storage)
        printf("  object_storage%s%s is accepted and not used: firn stores locally\n",
               cfg->object_storage_type ? " of type " : "",
               cfg->object_storage_type ? cfg->object_storage_type : "");
}

static int check_config(int argc, char **argv)
{
    if (argc < 1) {
        check_usage(stderr);
        return 2;
    }
    int failed = 0;
    for (int i = 0; i < argc; i++) {
        config_errors errs = {0};
        firn_err err = {0};
        firn_config *cfg = config_load_file_errors(argv[i], &errs, &err);
        if (cfg) {
            printf("%s: OK\n", argv[i]);
            print_summary(cfg);
            config_free(cfg);
        } else {
            failed = 1;
            if (errs.n == 0)   /* out of memory while collecting */
                fprintf(stderr, "%s\n", err.msg);
            for (size_t j = 0; j < errs.n; j++)
                fprintf(stderr, "%s\n", errs.lines[j]);
        }
        config_errors_free(&errs);
    }
    return failed;
}

int cmd_check(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0) {
        check_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "config") == 0)
        return check_config(argc - 1, argv + 1);
    fprintf(stderr, "firnctl check: unknown subcommand \"%s\"\n\n", argv[0]);
    check_usage(stderr);
    return 2;
}
