/* fuzz_agent_cfi.c -- firn-agent's unwind table builder (agent/cfi.c) on
 * any bytes read as an ELF file: an error or a table, never a crash; a
 * table's rows are sorted and each is found at its own pc.  Seeded with a
 * small real executable (the unwind workload, built for the purpose). */
#include <gelf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    elf_version(EV_CURRENT);
    char *image = malloc(size ? size : 1);   /* libelf wants a writable image */
    if (!image)
        return 0;
    memcpy(image, data, size);
    Elf *elf = elf_memory(image, size);
    agent_unwind_table t;
    firn_err err = {0};
    if (elf && agent_cfi_compile(elf, &t, &err) == 0) {
        for (size_t i = 0; i < t.n; i++) {
            if ((i > 0 && t.rows[i - 1].pc >= t.rows[i].pc) ||
                agent_unwind_lookup(&t, t.rows[i].pc) != &t.rows[i])
                abort();
        }
        agent_unwind_table_free(&t);
    }
    elf_end(elf);
    free(image);
    return 0;
}
