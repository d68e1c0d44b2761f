/* static.c -- static_configs as target groups. */
#include <stdio.h>
#include <string.h>

#include "discovery/discovery.h"

int disc_static_groups(const config_scrape *cfg, disc_groups *out, firn_err *err)
{
    *out = (disc_groups){0};
    (void)err;   /* no failure is left: allocation failures abort (model/alloc.h) */
    out->arena = firn_arena_new(0);
    /* Counts of a loaded config's lists: no overflow, so no NULL. */
    out->v = firn_arena_calloc(out->arena, cfg->n_static_configs + 1, sizeof *out->v);
    for (size_t i = 0; i < cfg->n_static_configs; i++) {
        const config_target_group *tg = &cfg->static_configs[i];
        disc_group *g = &out->v[i];
        char source[32];
        snprintf(source, sizeof source, "%zu", i);
        g->source = firn_arena_strndup(out->arena, source, strlen(source));
        g->targets = firn_arena_calloc(out->arena, tg->n_targets + 1, sizeof *g->targets);
        for (size_t t = 0; t < tg->n_targets; t++) {
            firn_label *l = firn_arena_alloc(out->arena, sizeof *l);
            l->name = "__address__";
            l->value = tg->targets[t];
            g->targets[t] = (disc_target){l, 1};
        }
        g->n_targets = tg->n_targets;
        g->labels = tg->labels;
        g->n_labels = tg->n_labels;
        out->n++;
    }
    return 0;
}

void disc_groups_free(disc_groups *g)
{
    firn_arena_free(g->arena);
    *g = (disc_groups){0};
}
