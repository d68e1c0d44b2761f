/* fuzz_rule_file.c -- libFuzzer target for rule files.  The input is a rule
 * file's text.  Whatever it is, nothing may crash or leak; a refused file
 * has at least one error line, each naming the file first ("fuzz.yml: ...",
 * promtool's form); an accepted one counts its rules right and every rule
 * has a name, an expression and a parsed query, and lints without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rules_errors errs = {0};
    firn_err err = {0};
    rules_file *f = rules_file_parse("fuzz.yml", (const char *)data, size, &errs, &err);
    if (!f) {
        if (err.code != FIRN_ENOMEM && errs.n == 0)
            abort();
        for (size_t i = 0; i < errs.n; i++)
            if (strncmp(errs.lines[i], "fuzz.yml: ", 10) != 0)
                abort();
        rules_errors_free(&errs);
        return 0;
    }
    size_t n = 0;
    for (size_t g = 0; g < f->n_groups; g++)
        for (size_t r = 0; r < f->groups[g].n_rules; r++, n++) {
            const rules_rule *rule = &f->groups[g].rules[r];
            if (!rule->name[0] || !rule->expr[0] || !rule->query.root)
                abort();
        }
    if (n != f->n_rules)
        abort();
    free(rules_file_lint_duplicates(f));
    free(rules_file_newer_fields(f));
    rules_file_free(f);
    return 0;
}
