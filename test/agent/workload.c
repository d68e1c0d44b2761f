/* workload.c -- a process for firn-agent's end-to-end tests and benchmark
 * to profile: it spends its CPU in one recognisable function until killed
 * or for SECONDS.
 *
 *   workload cpu [SECONDS]     user mode: workload_spin_user(), a loop of
 *                              arithmetic
 *   workload kernel [SECONDS]  kernel mode: workload_read_zero(), reading
 *                              /dev/zero (the kernel clears the buffer)
 *
 * Built with -fno-omit-frame-pointer -g, so frame-pointer stacks reach
 * main and DWARF gives file:line.  Prints "ready PID" when it starts
 * working; with SECONDS, prints "iterations N" when done (the benchmark's
 * measure of work).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static uint64_t workload_spin_user(uint64_t rounds)
{
    uint64_t x = sink;
    for (uint64_t i = 0; i < rounds; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;   /* the hot line */
    sink = x;
    return x;
}

__attribute__((noinline)) static void workload_read_zero(int fd, char *buf, size_t len)
{
    if (read(fd, buf, len) < 0) {
        perror("workload: read /dev/zero");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "cpu") != 0 && strcmp(argv[1], "kernel") != 0)) {
        fprintf(stderr, "usage: workload cpu|kernel [SECONDS]\n");
        return 2;
    }
    int kernel = strcmp(argv[1], "kernel") == 0;
    double seconds = argc > 2 ? atof(argv[2]) : 0;
    int fd = kernel ? open("/dev/zero", O_RDONLY) : -1;
    static char buf[1 << 20];
    if (kernel && fd < 0) {
        perror("workload: /dev/zero");
        return 1;
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    double start = now_s();
    uint64_t iterations = 0;
    for (;;) {
        if (kernel)
            workload_read_zero(fd, buf, sizeof buf);
        else
            workload_spin_user(1000000);
        iterations++;
        if (seconds > 0 && (iterations & 15) == 0 && now_s() - start >= seconds)
            break;
    }
    printf("iterations %llu\n", (unsigned long long)iterations);
    return 0;
}
