/* agent_config.c -- firn-agent's configuration file (config.h, part 3):
 * relabel_configs, decoded by the same rule decoder as scrape configs. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static void dec_agent(config_dec *d, const config_ynode *root, config_agent *out)
{
    static const char *const names[] = {"relabel_configs"};
    const config_ynode *vals[1];
    if (!config_dec_fields(d, root, NULL, "the agent config", names, 1, vals, NULL))
        return;
    const config_ynode *rl = vals[0];
    if (!rl || config_ynode_is_null(rl))
        return;
    if (rl->kind != CONFIG_YNODE_SEQ) {
        config_dec_err(d, rl, "relabel_configs", "expected a list, got %s", config_dec_kind(rl));
        return;
    }
    out->relabel_configs = config_dec_calloc(d, rl->n, sizeof *out->relabel_configs);
    for (size_t i = 0; out->relabel_configs && i < rl->n; i++)
        if (config_dec_relabel(d, rl->items[i], &out->relabel_configs[out->n_relabel_configs]))
            out->n_relabel_configs++;
}

void config_agent_free(config_agent *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_relabel_configs; i++)
        firn_relabel_config_destroy(&c->relabel_configs[i]);
    firn_arena_free(c->arena);
    free(c);
}

config_agent *config_agent_load_string(const char *text, size_t len, const char *name,
                                       config_errors *errs, firn_err *err)
{
    firn_arena *arena;
    config_agent *out = config_dec_begin(errs, &name, "<agent config>", sizeof *out, &arena);
    out->arena = arena;
    config_dec d = {.name = name, .arena = arena};
    config_ynode *root;
    if (config_dec_parse(&d, text, len, &root))
        dec_agent(&d, root, out);
    if (config_dec_finish(&d, errs, err) == 0)
        return out;
    config_agent_free(out);
    return NULL;
}

config_agent *config_agent_load_file(const char *path, config_errors *errs, firn_err *err)
{
    unsigned char *buf;
    size_t len;
    if (config_dec_read_file(path, &buf, &len, errs, err) < 0)
        return NULL;
    config_agent *c = config_agent_load_string((const char *)buf, len, path, errs, err);
    free(buf);
    return c;
}
