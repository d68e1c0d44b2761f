/* firnctl.h -- subcommands of firnctl, one function each; main.c dispatches. */
#ifndef FIRN_FIRNCTL_H
#define FIRN_FIRNCTL_H

int cmd_pprof(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
