/* fuzz_template.c -- libFuzzer target for the alert template engine.  The
 * input is template text.  Whatever it is, nothing may crash, leak or run
 * away: a refused template has Go's "template: NAME:LINE: ..." message; an
 * accepted one expands (an execution error being text, as in Prometheus) to
 * a string, on labels, external labels and a value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    firn_err err = {0};
    rules_template *t = rules_template_parse("__alert_F", text, &err);
    if (!t) {
        if (err.code != FIRN_ENOMEM && strncmp(err.msg, "template: __alert_F:", 20) != 0)
            abort();
    } else {
        firn_label labels[] = {{"__name__", "up"}, {"instance", "a:1"}, {"job", "api"}};
        firn_label ext[] = {{"region", "eu"}};
        rules_template_data d = {labels, 3, ext, 1, "http://firn:7070", 0.25, NULL, NULL};
        char *out = rules_template_expand(t, &d);
        if (!out)
            abort();
        free(out);
        rules_template_free(t);
    }
    free(text);
    return 0;
}
