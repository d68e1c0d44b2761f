/* check_cmd.c -- `firnctl check config|web-config FILE...`: load each file
 * as firn would and print "FILE: OK" with a summary, or every error, one
 * per line ("FILE:LINE:COL: field: message"), as promtool check config and
 * check web-config do. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "config/config.h"
#include "config/web_config.h"
#include "firnctl.h"

static void check_usage(FILE *f)
{
    fputs("usage: firnctl check config FILE...\n"
          "       firnctl check web-config FILE...\n"
          "\n"
          "Load each configuration file (--config.file) or web configuration file\n"
          "(--web.config.file) as firn would (strict: unknown or duplicate keys, bad\n"
          "durations, label names, relabel rules, duplicate job names, bad bcrypt hashes,\n"
          "unreadable certificates are errors).  Prints \"FILE: OK\" and a summary, or the\n"
          "errors one per line as FILE:LINE:COL: message.  Exits 1 when any file has an\n"
          "error.\n",
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

/* The error lines of a refused file, or err alone when none were
 * collected (out of memory, an unreadable file). */
static void print_errors(const config_errors *errs, const firn_err *err)
{
    if (errs->n == 0)
        fprintf(stderr, "%s\n", err->msg);
    for (size_t j = 0; j < errs->n; j++)
        fprintf(stderr, "%s\n", errs->lines[j]);
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
            print_errors(&errs, &err);
        }
        config_errors_free(&errs);
    }
    return failed;
}

static int check_web_config(int argc, char **argv)
{
    if (argc < 1) {
        check_usage(stderr);
        return 2;
    }
    int failed = 0;
    for (int i = 0; i < argc; i++) {
        config_errors errs = {0};
        firn_err err = {0};
        config_web *w = config_web_load_file(argv[i], &errs, &err);
        /* The server reads the certificate files at startup: so does the check. */
        const char *files[3][2] = {{"cert_file", w && w->tls ? w->cert_file : NULL},
                                   {"key_file", w && w->tls ? w->key_file : NULL},
                                   {"client_ca_file", w ? w->client_ca_file : NULL}};
        bool unreadable = false;
        for (int k = 0; k < 3; k++) {
            if (!files[k][1] || access(files[k][1], R_OK) == 0)
                continue;
            char why[128];
            snprintf(why, sizeof why, "%s", strerror(errno));
            why[0] = (char)tolower((unsigned char)why[0]);  /* Go's error style */
            fprintf(stderr, "%s: %s %s: %s\n", argv[i], files[k][0], files[k][1], why);
            unreadable = true;
        }
        if (w && unreadable) {
            failed = 1;
            config_web_free(w);
        } else if (w) {
            printf("%s: OK\n  %s, %zu user%s, %zu bearer token%s\n", argv[i],
                   w->tls ? "TLS" : "plain HTTP", w->n_users, w->n_users == 1 ? "" : "s",
                   w->n_tokens, w->n_tokens == 1 ? "" : "s");
            config_web_free(w);
        } else {
            failed = 1;
            print_errors(&errs, &err);
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
    if (strcmp(argv[0], "web-config") == 0)
        return check_web_config(argc - 1, argv + 1);
    fprintf(stderr, "firnctl check: unknown subcommand \"%s\"\n\n", argv[0]);
    check_usage(stderr);
    return 2;
}
