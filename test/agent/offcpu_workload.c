/* offcpu_workload.c -- a process that is off the CPU for a known share of
 * its time, in a known function, for firn-agent's off-CPU test:
 *
 *   offcpu_workload SECONDS
 *   offcpu_workload paced SECONDS RATE
 *   offcpu_workload syscalls SECONDS
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
 * paced: two threads pass a byte back and forth through two pipes, each
 * blocking in read() between turns, at a fixed RATE of blocking switches
 * a second, whatever the machine and whatever the profiler costs (what
 * the off-CPU programs' cost is measured against; a ping-pong as fast as
 * it can go measured cross-CPU wake-up latency more than the programs):
 * every tick (an absolute clock_nanosleep, shorter than the agent's
 * default minimum block) the main thread makes PACED_TRIPS round trips,
 * a tick being (1 + 2 * PACED_TRIPS) blocks (its sleep, its and the other
 * thread's read per trip).  The CPU the process took for
 * them (user + system, getrusage) is what a profiler's switch and
 * system-call hooks add to.  Prints "switches N" (voluntary and
 * involuntary), "syscalls N" (the ones it made) and "cpu_ns N".
 *
 * syscalls: getppid() in a tight loop for SECONDS (a system call that
 * never blocks, so that what is measured is the kernel's entry and exit
 * path, which a sys_exit tracepoint slows for every process); prints
 * "syscalls N" and "ns_per_syscall N" (its CPU time per call).
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

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

#define PACED_TRIPS 2

static int paced(double seconds, double rate)
{
    pthread_t t;
    if (pipe(ping) != 0 || pipe(pong) != 0 || pthread_create(&t, NULL, ponger, NULL) != 0) {
        perror("offcpu_workload: paced");
        return 1;
    }
    int64_t period = (int64_t)((1 + 2 * PACED_TRIPS) * 1e9 / rate);
    int64_t ticks = (int64_t)(seconds * 1e9) / period;
    int64_t cpu0 = cpu_ns();
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    uint64_t calls = 0;
    char c = 'p';
    for (int64_t i = 0; i < ticks; i++) {
        next.tv_nsec += period;
        while (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        /* late (a busy machine): the next tick starts at once, the rate
         * holds on average */
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        for (int j = 0; j < PACED_TRIPS; j++)
            if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1) {
                perror("offcpu_workload: paced");
                return 1;
            }
        calls += 1 + 4 * PACED_TRIPS;   /* its sleep; per trip two calls here, two in ponger */
    }
    c = 'q';
    if (write(ping[1], &c, 1) != 1)
        return 1;
    pthread_join(t, NULL);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("switches %ld\nsyscalls %llu\ncpu_ns %lld\n",
           (ru.ru_nvcsw - ru0.ru_nvcsw) + (ru.ru_nivcsw - ru0.ru_nivcsw), (unsigned long long)calls,
           (long long)(cpu_ns() - cpu0));
    return 0;
}

static int syscalls(double seconds)
{
    int64_t end = now_ns() + (int64_t)(seconds * 1e9);
    int64_t cpu0 = cpu_ns();
    uint64_t calls = 0;
    while (now_ns() < end) {   /* clock_gettime is the vDSO's: no system call */
        for (int i = 0; i < 1000; i++)
            sink += (uint64_t)getppid();
        calls += 1000;
    }
    printf("syscalls %llu\nns_per_syscall %.1f\n", (unsigned long long)calls,
           (double)(cpu_ns() - cpu0) / (double)calls);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "paced") == 0 && atof(argv[2]) > 0 && atof(argv[3]) > 0)
        return paced(atof(argv[2]), atof(argv[3]));
    if (argc == 3 && strcmp(argv[1], "syscalls") == 0 && atof(argv[2]) > 0)
        return syscalls(atof(argv[2]));
    if (argc != 2 || atof(argv[1]) <= 0) {
        fprintf(stderr, "usage: offcpu_workload SECONDS | offcpu_workload paced SECONDS RATE |"
                        " offcpu_workload syscalls SECONDS\n");
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
