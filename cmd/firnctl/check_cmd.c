/* check_cmd.c -- `firnctl check config|web-config FILE...`: load each file
 * as firn would and print "FILE: OK" with a summary, or every error, one
 * per line ("FILE:LINE:COL: field: message"), as promtool check config and
 * check web-config do.  `firnctl check rules FILE...` prints exactly what
 * promtool 2.42's check rules prints, with its exit codes. */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "config/config.h"
#include "config/web_config.h"
#include "firnctl.h"
#include "rules/rules.h"

static void check_usage(FILE *f)
{
    fputs("usage: firnctl check config FILE...\n"
          "       firnctl check web-config FILE...\n"
          "       firnctl check rules [--lint=duplicate-rules|all|none] [--lint-fatal] FILE...\n"
          "\n"
          "Load each configuration file (--config.file) or web configuration file\n"
          "(--web.config.file) as firn would (strict: unknown or duplicate keys, bad\n"
          "durations, label names, relabel rules, duplicate job names, bad bcrypt hashes,\n"
          "unreadable certificates are errors).  Prints \"FILE: OK\" and a summary, or the\n"
          "errors one per line as FILE:LINE:COL: message.  Exits 1 when any file has an\n"
          "error.\n"
          "\n"
          "check rules reads Prometheus rule files and prints what promtool check rules\n"
          "prints: \"Checking FILE\", then \"  SUCCESS: N rules found\" or \"  FAILED:\" and\n"
          "the errors (Prometheus's texts).  Duplicate rules (same name and labels) are a\n"
          "lint error: reported, exit 0, or 3 with --lint-fatal.  Exit 1 on any error.\n",
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
    for (size_t i = 0; i < cfg->n_profile_remote_writes; i++) {
        const config_profile_remote_write *w = &cfg->profile_remote_writes[i];
        /* the URL holds no secret (the config refuses a password in it) */
        printf("  profile_remote_write%s%s: %s (%llu shard%s)\n", *w->name ? " " : "", w->name,
               w->url, (unsigned long long)w->shards, w->shards == 1 ? "" : "s");
    }
    if (cfg->has_object_storage)
        printf("  object_storage%s%s is accepted and not used: firn stores locally\n",
               cfg->object_storage_type ? " of type " : "",
               cfg->object_storage_type ? cfg->object_storage_type : "");
}

/* The error lines of a refused file, or err alone when none were
 * collected (an unreadable file). */
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

static int check_rules(int argc, char **argv)
{
    bool lint = true, fatal = false;
    int first = 0;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        const char *a = argv[first];
        if (strcmp(a, "--lint-fatal") == 0) {
            fatal = true;
        } else if (strcmp(a, "--lint=duplicate-rules") == 0 || strcmp(a, "--lint=all") == 0) {
            lint = true;
        } else if (strcmp(a, "--lint=none") == 0) {
            lint = false;
        } else if (strcmp(a, "--") == 0) {
            first++;
            break;
        } else {
            fprintf(stderr, "firnctl: error: unknown flag %s, try --help\n", a);
            return 1;
        }
    }
    if (first >= argc) {
        /* promtool 2.42: the file arguments are required */
        fprintf(stderr, "firnctl: error: required argument 'rule-files' not provided, try "
                        "--help\n");
        return 1;
    }
    for (int i = first; i < argc; i++)
        if (access(argv[i], F_OK) != 0) {
            fprintf(stderr, "firnctl: error: path '%s' does not exist, try --help\n", argv[i]);
            return 1;
        }
    bool failed = false, errors = false;
    for (int i = first; i < argc; i++) {
        printf("Checking %s\n", argv[i]);
        fflush(stdout);
        rules_errors errs = {0};
        firn_err err = {0};
        rules_file *f = rules_file_load(argv[i], &errs, &err);
        if (!f) {
            fprintf(stderr, "  FAILED:\n");
            if (errs.n == 0)
                fprintf(stderr, "%s\n", err.msg);
            for (size_t j = 0; j < errs.n; j++)
                fprintf(stderr, "%s\n", errs.lines[j]);
            failed = errors = true;
        } else {
            char *dups = lint ? rules_file_lint_duplicates(f) : NULL;
            char *newer = rules_file_newer_fields(f);
            if (dups) {
                fprintf(stderr, "  FAILED:\n%s\n", dups);
                failed = true;
            } else {
                printf("  SUCCESS: %zu rules found\n", f->n_rules);
            }
            if (newer)
                fprintf(stderr, "  NOTE: %s\n", newer);
            free(dups);
            free(newer);
            rules_file_free(f);
        }
        rules_errors_free(&errs);
        putchar('\n');
        fflush(stdout);
    }
    if (failed && errors)
        return 1;
    if (failed && fatal)
        return 3;
    return 0;
}

int cmd_test(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "rules") != 0 || argc < 2) {
        fputs("usage: firnctl test rules FILE...\n"
              "\n"
              "Run Prometheus rule unit tests (promtool test rules' format: input_series in\n"
              "expanding notation, alert_rule_test, promql_expr_test) with firn's rule engine.\n"
              "Prints what promtool 2.42 prints; exits 1 when any test fails.\n",
              argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)
                  ? stdout
                  : stderr);
        return argc >= 1 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)
                   ? 0
                   : 2;
    }
    for (int i = 1; i < argc; i++)
        if (access(argv[i], F_OK) != 0) {
            fprintf(stderr, "firnctl: error: path '%s' does not exist, try --help\n", argv[i]);
            return 1;
        }
    int failed = 0;
    for (int i = 1; i < argc; i++)
        failed |= rules_unittest_file(argv[i], stdout, stderr);
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
    if (strcmp(argv[0], "rules") == 0)
        return check_rules(argc - 1, argv + 1);
    fprintf(stderr, "firnctl check: unknown subcommand \"%s\"\n\n", argv[0]);
    check_usage(stderr);
    return 2;
}
