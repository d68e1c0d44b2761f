/* sync_fault.c -- a real fault for tests: fsync, fdatasync and msync fail
 * with EIO, as they do when a disk reports a write error.
 *
 * Loaded with LD_PRELOAD (libfirn_sync_fault.so) into a firn under test, or
 * linked into a unit test.  The fault is on while the file named by
 * FIRN_FAULT_SYNC exists, so a test turns it on and off from outside
 * (creating and removing that file) and watches firn recover.  With
 * FIRN_FAULT_SYNC_WHAT=dir only the syncs of directories fail (a rename
 * made durable).  Each injected failure is counted in the file itself (one
 * byte appended), so a test can check that the fault was really hit.
 * Off (FIRN_FAULT_SYNC unset), every call goes to the C library unchanged.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static bool fault_on(int fd)
{
    const char *flag = getenv("FIRN_FAULT_SYNC");
    if (!flag || !*flag)
        return false;
    int saved = errno;
    int f = open(flag, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (f < 0) {
        errno = saved;
        return false;
    }
    const char *what = getenv("FIRN_FAULT_SYNC_WHAT");
    bool hit = true;
    if (what && strcmp(what, "dir") == 0) {
        struct stat st;
        hit = fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (hit && write(f, "x", 1) != 1)
        hit = true;   /* counting is best effort; the fault is not */
    close(f);
    errno = saved;
    return hit;
}

static void *real(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);
    if (!fn)
        abort();   /* a test program without a C library: nothing to fall back to */
    return fn;
}

int fsync(int fd)
{
    if (fault_on(fd)) {
        errno = EIO;
        return -1;
    }
    return ((int (*)(int))real("fsync"))(fd);
}

int fdatasync(int fd)
{
    if (fault_on(fd)) {
        errno = EIO;
        return -1;
    }
    return ((int (*)(int))real("fdatasync"))(fd);
}

int msync(void *addr, size_t len, int flags)
{
    if (fault_on(-1)) {
        errno = EIO;
        return -1;
    }
    return ((int (*)(void *, size_t, int))real("msync"))(addr, len, flags);
}
