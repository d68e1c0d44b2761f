/* rootfs.c -- opening a file of a container as the container sees it.
 *
 * firn-agent runs as root and reads files of the processes it samples
 * through /proc/PID/root (their mount namespace's root): ELF files when
 * /proc/PID/map_files is not readable, and JIT perf maps in /tmp.  A plain
 * open() of /proc/PID/root/PATH follows symbolic links the container
 * controls, and an absolute link (tmp/perf-1.map -> /etc/shadow) resolves
 * against the agent's own root: the container could make the agent read
 * any host file.  So the path is resolved inside the root: openat2(2) with
 * RESOLVE_IN_ROOT (Linux 5.6) makes "/" and ".." stop at the root, as the
 * kernel does for the container itself; where openat2 is missing (ENOSYS)
 * or refused (a seccomp filter: EPERM), the path is walked one component at
 * a time with O_NOFOLLOW, refusing every link and "..": safe, at the cost
 * of not finding files reached through a link.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/agent.h"

/* One component at a time, each opened relative to the last, links and
 * ".." refused (ELOOP / EXDEV). */
static int walk(int root_fd, const char *path)
{
    int dir = dup(root_fd);
    if (dir < 0)
        return -1;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        const char *next = p + n;
        while (*next == '/')
            next++;
        bool last = *next == '\0';
        char name[256];
        if (n == 0 || n >= sizeof name) {
            close(dir);
            errno = n ? ENAMETOOLONG : ENOENT;
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (strcmp(name, "..") == 0) {
            close(dir);
            errno = EXDEV;
            return -1;
        }
        int fd = openat(dir, name,
                        O_NOFOLLOW | O_CLOEXEC | (last ? O_RDONLY : O_PATH | O_DIRECTORY));
        int e = errno;
        close(dir);
        if (fd < 0) {
            /* a link where a directory was expected answers ENOTDIR */
            errno = e == ENOTDIR ? ELOOP : e;
            return -1;
        }
        if (last)
            return fd;
        dir = fd;
        p = next;
    }
}

int agent_root_open(const char *root, const char *path, bool walk_only, firn_err *err)
{
    int root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return firn_errf(err, FIRN_EIO, "%s: %s", root, strerror(errno));
    int fd = -1;
    bool done = false;
    if (!walk_only) {
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
                               .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
        fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
        done = fd >= 0 || (errno != ENOSYS && errno != EPERM);
    }
    if (!done)
        fd = walk(root_fd, path);
    int e = errno;
    close(root_fd);
    if (fd < 0)
        return firn_errf(err, FIRN_EIO, "%s/%s: %s", root, path, strerror(e));
    return fd;
}
