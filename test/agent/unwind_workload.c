/* unwind_workload.c -- a program without frame pointers (built with -O2
 * -fomit-frame-pointer, like Debian's libc) whose hot function runs under
 * a libc function: main -> unwind_sort -> qsort (libc) -> ... ->
 * unwind_compare -> unwind_spin.  Frame pointers cannot walk from
 * unwind_spin back to main; unwind tables can.
 *
 *   unwind_workload [SECONDS]   sorts until killed (or for SECONDS)
 *
 * Prints "ready PID" once sorting.  Every function named above is kept out
 * of line and its call is not a tail call (its result is used after it),
 * so each is a frame of its own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define N 64

#include "frame.h"

static volatile uint64_t sink;

/* The hot function: a loop of arithmetic, a few microseconds a call. */
FRAME static uint64_t unwind_spin(uint64_t x)
{
    for (int i = 0; i < 20000; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x;
}

/* The comparator qsort calls back. */
FRAME static int unwind_compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    sink += unwind_spin(x ^ y);
    return x < y ? -1 : x > y;
}

/* One sort of a shuffled array; returns a checksum so that the call is
 * not a tail call. */
FRAME static uint64_t unwind_sort(uint64_t *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1;
        v[i] = seed >> 11;
    }
    qsort(v, n, sizeof *v, unwind_compare);
    return v[0] ^ v[n - 1] ^ sink;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0;
    uint64_t v[N], sum = 0;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    double start = now_s();
    for (uint64_t round = 1;; round++) {
        sum += unwind_sort(v, N, round);
        if (seconds > 0 && now_s() - start >= seconds)
            break;
    }
    printf("checksum %llu\n", (unsigned long long)sum);
    return 0;
}
