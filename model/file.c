/* file.c -- whole-file reads with a size cap, and atomic whole-file writes. */
#include "model/file.h"

#include "model/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int firn_read_file(const char *path, size_t max, unsigned char **out, size_t *out_len,
                   firn_err *err)
{
    *out = NULL;
    *out_len = 0;
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return firn_errf(err, FIRN_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 64 * 1024, len = 0;
    unsigned char *buf = firn_xmalloc(cap);
    int rc = FIRN_OK;
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                rc = firn_errf(err, FIRN_ETOOBIG, "%s: larger than the cap of %zu bytes", path, max);
                goto out;
            }
            buf = firn_xreallocarray(buf, cap, 2);   /* cap <= max: at most twice the cap */
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = firn_errf(err, FIRN_EIO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max)
        rc = firn_errf(err, FIRN_ETOOBIG, "%s: larger than the cap of %zu bytes", path, max);
out:
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc != FIRN_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len;
    return FIRN_OK;
}

/* The rename is durable only once the directory holding the name is synced
 * (a crash could otherwise bring back the old file, or none). */
static int sync_parent(const char *path, firn_err *err)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return firn_errf(err, FIRN_EINVAL, "%s: the directory name is too long", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return firn_errf(err, FIRN_EIO, "%s: opening the directory to sync it: %s", dir,
                         strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc < 0)
        return firn_errf(err, FIRN_EIO, "%s: syncing the directory after writing %s: %s", dir,
                         path, strerror(e));
    return FIRN_OK;
}

/* Writes all of data to fd; -1 with errno set when a write fails. */
static int write_all(int fd, const unsigned char *p, size_t left)
{
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        left -= (size_t)n;
    }
    return 0;
}

int firn_write_file_atomic(const char *path, const void *data, size_t len, firn_err *err)
{
    /* A path that names no regular file -- /dev/null, /dev/stdout, a FIFO --
     * is written through: renaming over it would replace the device with a
     * file (as root, /dev/null itself). */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return firn_errf(err, FIRN_EIO, "%s: %s", path, strerror(errno));
        int rc = write_all(fd, data, len);
        int saved = errno;
        if (close(fd) < 0 && rc == 0) {
            rc = -1;
            saved = errno;
        }
        return rc < 0 ? firn_errf(err, FIRN_EIO, "%s: write: %s", path, strerror(saved)) : 0;
    }
    size_t plen = strlen(path);
    char *tmp = firn_xmalloc(plen + 16);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = firn_errf(err, FIRN_EIO, "%s: cannot create a temporary file: %s", path,
                           strerror(errno));
        free(tmp);
        return rc;
    }
    if (write_all(fd, data, len) < 0) {
        int rc = firn_errf(err, FIRN_EIO, "%s: write: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    int sync_rc = fsync(fd);
    int close_rc = close(fd);
    if (sync_rc < 0 || close_rc < 0) {
        int rc = firn_errf(err, FIRN_EIO, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    if (chmod(tmp, 0644) < 0 || rename(tmp, path) < 0) {
        int rc = firn_errf(err, FIRN_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return sync_parent(path, err);
}
