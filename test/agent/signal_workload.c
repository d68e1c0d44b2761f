/* signal_workload.c -- a program without frame pointers (-O2
 * -fomit-frame-pointer) that spends a good share of its CPU time in a
 * signal handler: a CPU-time timer (ITIMER_PROF, asked for every
 * millisecond, in practice every scheduler tick) interrupts signal_outer,
 * and the handler spins in signal_inner for about a millisecond.  A stack sampled in the handler continues through the
 * kernel's signal frame (libc's __restore_rt, whose CFI reads the
 * interrupted registers from the ucontext) to the interrupted code:
 *   _start; __libc_start_main; ...; main; signal_run; signal_outer;
 *   __restore_rt; signal_handler; signal_inner
 *
 *   signal_workload [SECONDS]   runs until killed (or for SECONDS)
 *
 * Prints "ready PID" once the timer runs.  Each function named above is
 * kept out of line and its call is not a tail call.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

static volatile uint64_t sink;
static volatile sig_atomic_t handled;

/* The handler's hot function: a loop of arithmetic, about a
 * millisecond. */
FRAME static uint64_t signal_inner(uint64_t x)
{
    for (int i = 0; i < 1000000; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

FRAME static void signal_handler(int sig)
{
    sink += signal_inner((uint64_t)sig + sink);
    handled = handled + 1;
}

/* The interrupted code: a loop of arithmetic until the deadline. */
FRAME static uint64_t signal_outer(uint64_t x, uint64_t rounds)
{
    for (uint64_t i = 0; i < rounds; i++)
        x = x * 2862933555777941757ULL + 3037000493ULL;
    return x;
}

FRAME static uint64_t signal_run(double seconds)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t x = 1;
    for (;;) {
        x = signal_outer(x, 10000000) + 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (seconds > 0 && (double)(now.tv_sec - start.tv_sec) +
                                   (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= seconds)
            return x;
    }
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0;
    struct sigaction sa = {.sa_handler = signal_handler, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    struct itimerval every_ms = {.it_interval = {0, 1000}, .it_value = {0, 1000}};
    if (sigaction(SIGPROF, &sa, NULL) != 0 || setitimer(ITIMER_PROF, &every_ms, NULL) != 0) {
        perror("signal_workload: SIGPROF timer");
        return 1;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    uint64_t x = signal_run(seconds);
    printf("checksum %llu handled %d\n", (unsigned long long)(x ^ sink), (int)handled);
    return 0;
}
