/* fuzz_config.c -- libFuzzer target for the YAML config loader.  Whatever
 * the input, nothing may crash or leak, a refusal must say why (with at
 * least one error line), and what loads must be self-consistent: every job
 * has a name and equals itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_errors errs = {0};
    firn_err err = {0};
    firn_config *cfg = config_load_string_errors((const char *)data, size, "fuzz.yml", &errs, &err);
    if (!cfg) {
        if (errs.n == 0 || err.msg[0] == '\0')
            abort();
        config_errors_free(&errs);
        return 0;
    }
    if (errs.n != 0)
        abort();
    for (size_t i = 0; i < cfg->n_scrapes; i++) {
        const config_scrape *sc = &cfg->scrapes[i];
        if (!sc->job_name || !*sc->job_name || !config_scrape_equal(sc, sc) ||
            config_scrape_find(cfg, sc->job_name) != sc || sc->interval_ms <= 0 ||
            sc->timeout_ms <= 0)
            abort();
        for (size_t j = 0; j < sc->n_profile_types; j++) {
            const config_profile_type *pt = &sc->profile_types[j];
            if (!pt->path || pt->path[0] != '/' || (pt->delta && pt->seconds < 1) ||
                (!pt->delta && pt->seconds != 0) || pt->timeout_ms < sc->timeout_ms)
                abort();
        }
    }
    config_free(cfg);
    return 0;
}
