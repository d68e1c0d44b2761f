/* fuzz_model.c -- libFuzzer target for model/'s parsers of user text:
 * durations, profile types, regexes and label sets.  The first input byte
 * picks the parser; the rest is its text.  Whatever the input, nothing may
 * crash, every refusal must say why, and what parses must round-trip
 * through its formatter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused(const firn_err *err)
{
    if (err->msg[0] == '\0')
        abort();
}

static void fuzz_duration(const char *s)
{
    firn_err err = {0};
    int64_t ms, again;
    if (firn_duration_parse(s, &ms, &err) < 0) {
        refused(&err);
        return;
    }
    char buf[128];
    if (firn_duration_format(buf, sizeof buf, ms) >= (int)sizeof buf ||
        firn_duration_parse(buf, &again, &err) < 0 || again != ms)
        abort();
}

static void fuzz_profile_type(const char *s)
{
    firn_err err = {0};
    firn_profile_type pt;
    if (firn_profile_type_parse(s, &pt, &err) < 0) {
        refused(&err);
        return;
    }
    char f[5][4096];
    for (int i = 0; i < 5; i++) {
        if (pt.len[i] >= sizeof f[i])
            return;
        memcpy(f[i], pt.field[i], pt.len[i]);
        f[i][pt.len[i]] = 0;
    }
    char buf[32768];
    int n = firn_profile_type_format(buf, sizeof buf, f[0], f[1], f[2], f[3], f[4], pt.delta);
    if (n < 0 || (size_t)n >= sizeof buf || strcmp(buf, s) != 0)
        abort();
}

static void fuzz_regex(const char *s)
{
    firn_err err = {0};
    firn_regex *re = firn_regex_compile(s, &err);
    if (!re) {
        refused(&err);
        return;
    }
    firn_regex_match(re, s, strlen(s), &err);
    firn_regex_match(re, "", 0, &err);
    firn_regex_free(re);
}

/* Lines "name=value" form a label set. */
static void fuzz_labels(char *s)
{
    firn_label labels[FIRN_LABELS_MAX + 8];
    size_t n = 0;
    for (char *line = strtok(s, "\n"); line && n < sizeof labels / sizeof *labels;
         line = strtok(NULL, "\n")) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = 0;
        labels[n].name = line;
        labels[n++].value = eq + 1;
    }
    firn_err err = {0};
    if (firn_labels_normalize(labels, &n, &err) < 0) {
        refused(&err);
        return;
    }
    for (size_t i = 1; i < n; i++)
        if (strcmp(labels[i - 1].name, labels[i].name) >= 0)
            abort();   /* sorted, unique */
    free(firn_labels_format(labels, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    switch (data[0] % 4) {
    case 0: fuzz_duration(s); break;
    case 1: fuzz_profile_type(s); break;
    case 2: fuzz_regex(s); break;
    default: fuzz_labels(s); break;
    }
    free(s);
    return 0;
}
