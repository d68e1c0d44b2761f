/* offcpu_workload.c -- a process that is off the CPU for a known share of
 * its time, in a known function, for firn-agent's off-CPU test:
 *
 *   offcpu_workload SECONDS
 *   offcpu_workload pingpong SECONDS
 *
 * One thread alternates offcpu_spin (20 ms of arithmetic: on the CPU, and
 * preempted now and then on a busy machine, which is not blocking) and a
 * nanosleep of 20 ms (blocked): first in warmup_sleep, until SIGUSR1 comes
 * (the agent has seen the process by then and loaded its unwind tables);
 * then for SECONDS in offcpu_sleep, measuring the time it spent there
 * itself (CLOCK_MONOTONIC around each call).  Prints "ready PID" at the
 * start and "slept_ns N" at the end: the figure the agent's off-CPU
 * profile of offcpu_sleep must match.
 *
 * pingpong: two threads pass a byte back and forth through two pipes for
 * SECONDS, each blocking in read() between turns, so that the machine
 * switches contexts as fast as it can (what the off-CPU program's cost is
 * measured against); prints "round_trips N" and "switches N" (voluntary
 * context switches of the process, getrusage).
 */
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

static volatile uint64_t sink;
static volatile sig_atomic_t measuring;

static void on_usr1(int sig)
{
    (void)sig;
    measuring = 1;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

FRAME static void offcpu_spin(int64_t ns)
{
    int64_t end = now_ns() + ns;
    uint64_t x = sink;
    while (now_ns() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ULL + 1;
    sink = x;
}

/* Blocked for ms; returns how long it was, measured here. */
FRAME static int64_t offcpu_sleep(int ms)
{
    struct timespec d = {0, (long)ms * 1000000L};
    int64_t t0 = now_ns();
    nanosleep(&d, NULL);
    return now_ns() - t0;
}

FRAME static void warmup_sleep(int ms)
{
    struct timespec d = {0, (long)ms * 1000000L};
    nanosleep(&d, NULL);
    sink++;
}

static int ping[2], pong[2];

static void *ponger(void *arg)
{
    (void)arg;
    char c;
    while (read(ping[0], &c, 1) == 1 && c == 'p')
        if (write(pong[1], &c, 1) != 1)
            break;
    return NULL;
}

static int pingpong(double seconds)
{
    pthread_t t;
    if (pipe(ping) != 0 || pipe(pong) != 0 || pthread_create(&t, NULL, ponger, NULL) != 0) {
        perror("offcpu_workload: pingpong");
        return 1;
    }
    int64_t end = now_ns() + (int64_t)(seconds * 1e9);
    uint64_t trips = 0;
    char c = 'p';
    while (now_ns() < end) {
        if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) {
            perror("offcpu_workload: pingpong");
            return 1;
        }
        trips++;
    }
    c = 'q';
    if (write(ping[1], &c, 1) != 1)
        return 1;
    pthread_join(t, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("round_trips %llu\nswitches %ld\n", (unsigned long long)trips, ru.ru_nvcsw);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "pingpong") == 0 && atof(argv[2]) > 0)
        return pingpong(atof(argv[2]));
    if (argc != 2 || atof(argv[1]) <= 0) {
        fprintf(stderr, "usage: offcpu_workload SECONDS | offcpu_workload pingpong SECONDS\n");
        return 2;
    }
    signal(SIGUSR1, on_usr1);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (!measuring) {
        offcpu_spin(20000000);
        warmup_sleep(20);
    }
    int64_t end = now_ns() + (int64_t)(atof(argv[1]) * 1e9);
    int64_t slept = 0;
    while (now_ns() < end) {
        offcpu_spin(20000000);
        slept += offcpu_sleep(20);
    }
    printf("slept_ns %lld\n", (long long)slept);
    return 0;
}
