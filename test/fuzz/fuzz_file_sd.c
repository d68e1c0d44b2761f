/* fuzz_file_sd.c -- libFuzzer target for the file_sd parser
 * (disc_file_parse, discovery/discovery.h).  The first byte picks the
 * format (even: JSON, odd: YAML), the rest is the file.  Whatever the
 * input, nothing may crash or leak, a refusal must say why, and what is
 * accepted must keep the contract: source "PATH:INDEX", __meta_filepath =
 * PATH, label sets sorted with valid names and no empty values, every
 * target exactly {__address__}. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/discovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *path = data[0] % 2 ? "fuzz/targets.yml" : "fuzz/targets.json";
    disc_groups g;
    firn_err err = {0};
    if (disc_file_parse(path, (const char *)data + 1, size - 1, &g, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    for (size_t i = 0; i < g.n; i++) {
        const disc_group *grp = &g.v[i];
        char source[64];
        snprintf(source, sizeof source, "%s:%zu", path, i);
        if (strcmp(grp->source, source) != 0)
            abort();
        const char *fp = firn_labels_get(grp->labels, grp->n_labels, "__meta_filepath");
        if (!fp || strcmp(fp, path) != 0)
            abort();
        for (size_t l = 0; l < grp->n_labels; l++) {
            if (!firn_label_name_valid(grp->labels[l].name) || !grp->labels[l].value[0])
                abort();
            if (l > 0 && strcmp(grp->labels[l - 1].name, grp->labels[l].name) >= 0)
                abort();
        }
        for (size_t t = 0; t < grp->n_targets; t++)
            if (grp->targets[t].n_labels != 1 ||
                strcmp(grp->targets[t].labels[0].name, "__address__") != 0 ||
                !grp->targets[t].labels[0].value)
                abort();
    }
    disc_groups_free(&g);
    return 0;
}
