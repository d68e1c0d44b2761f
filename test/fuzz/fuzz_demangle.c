/* fuzz_demangle.c -- symbolize/'s demangled names (libiberty's demangler)
 * on any string, as firn-agent hands it the symbol names of any file a
 * process maps: a readable name or none, never a crash; the store gives
 * the same answer when asked again.  Seeded with C++ and Rust (legacy and
 * v0) names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "symbolize/symbolize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = firn_xmalloc(size + 1);
    symbolize_names *names = symbolize_names_new();
    memcpy(name, data, size);
    name[size] = '\0';
    const char *readable = symbolize_demangle(names, name);
    if (readable && (!readable[0] || symbolize_demangle(names, name) != readable))
        abort();
    symbolize_names_free(names);
    free(name);
    return 0;
}
