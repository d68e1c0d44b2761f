/* firnctl.h -- subcommands of firnctl, one function each; main.c dispatches. */
#ifndef FIRN_FIRNCTL_H
#define FIRN_FIRNCTL_H

int cmd_pprof(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tsdb(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_push(int argc, char **argv);

/* Read and decode a pprof file (or - for stdin); prints the error and
 * returns NULL on failure. */
#include <stdbool.h>
#include <stddef.h>
#include "pprof/pprof.h"
pprof_profile *firnctl_load_profile(const char *path, size_t *file_bytes, bool *gzipped);

/* s as a whole number of milliseconds into *out; prints an error naming
 * flag and returns -1 otherwise. */
#include <stdint.h>
int firnctl_parse_ms(const char *flag, const char *s, int64_t *out);

#endif
