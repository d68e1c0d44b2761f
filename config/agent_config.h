/* agent_config.h -- firn-agent's configuration file (--config-path), in
 * Parca Agent's format: Prometheus relabel_configs applied to the labels of
 * every profile the agent pushes.
 *
 *   relabel_configs: [relabel_config]   each validated and compiled as in
 *                                       a scrape config (model/ relabel)
 *
 * Strict as config.h: unknown keys, duplicate keys, wrong node kinds and
 * invalid rules are errors "NAME:LINE:COL: field: message", all collected;
 * a file with any error yields no config.  An empty file is an empty
 * configuration.  A config_agent owns what it points to (config_agent_free)
 * and is read-only once loaded.
 */
#ifndef FIRN_CONFIG_AGENT_CONFIG_H
#define FIRN_CONFIG_AGENT_CONFIG_H

#include <stddef.h>

#include "config/config.h"
#include "model/model.h"

typedef struct config_agent {
    firn_relabel_config *relabel_configs;   /* initialized and compiled */
    size_t n_relabel_configs;
    firn_arena *arena;
} config_agent;

/* On error NULL, err holding the first lines and errs (when not NULL)
 * every line; the caller frees errs with config_errors_free either way. */
config_agent *config_agent_load_string(const char *text, size_t len, const char *name,
                                       config_errors *errs, firn_err *err);
config_agent *config_agent_load_file(const char *path, config_errors *errs, firn_err *err);
void config_agent_free(config_agent *c);

#endif
