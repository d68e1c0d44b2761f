/* check.c -- reading every page of a store before it is opened, in a child
 * process, so that a damaged page is refused with a message instead of
 * crashing firn later.
 *
 * LMDB 0.9 (Debian's) does not check its pages: a bit flipped in a page
 * number, a node offset or an overflow count makes a reader follow it out
 * of the file (SIGBUS) or out of the map (SIGSEGV).  Values firn wrote are
 * checked by firn's own decoders, but the pages around them can only be
 * checked by following them.  The child walks every named database with a
 * cursor and touches every page of every value; when that crashes, the
 * parent sees the signal and refuses the store.  A store that passes can
 * still hold damage that stays in bounds (a wrong byte in a value): that
 * is for the decoders, which refuse what they cannot read. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* The walk's own failures (not crashes), written to the parent. */
_Noreturn static void child_fail(int fd, const char *what, int rc)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "%s: %s", what, mdb_strerror(rc));
    if (n > 0 && write(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
        _exit(3);
    _exit(1);
}

static volatile unsigned char sink;

/* Touches a byte of every page v spans, and its last byte. */
static void touch(const MDB_val *v, size_t page)
{
    const unsigned char *p = v->mv_data;
    unsigned char x = 0;
    for (size_t i = 0; i < v->mv_size; i += page)
        x ^= p[i];
    if (v->mv_size)
        x ^= p[v->mv_size - 1];
    sink ^= x;
}

static int walk_db(MDB_txn *txn, MDB_dbi dbi, size_t page)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        touch(&k, page);
        touch(&v, page);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

_Noreturn static void child_walk(const char *path, int fd)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc)
        child_fail(fd, "lmdb", rc);
    /* No lock file: the parent holds the store's lock, so no writer runs. */
    if ((rc = mdb_env_set_maxdbs(env, 64)) ||
        (rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0644)))
        child_fail(fd, "opening", rc);
    MDB_stat st;
    mdb_env_stat(env, &st);
    MDB_txn *txn;
    MDB_dbi main;
    MDB_cursor *c;
    if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &main)) ||
        (rc = mdb_cursor_open(txn, main, &c)))
        child_fail(fd, "the main database", rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char name[64];
        if (k.mv_size == 0 || k.mv_size >= sizeof name || memchr(k.mv_data, 0, k.mv_size))
            child_fail(fd, "the main database: a key that names no database", MDB_CORRUPTED);
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        MDB_dbi dbi;
        int r2 = mdb_dbi_open(txn, name, 0, &dbi);
        if (r2)
            child_fail(fd, name, r2);
        if ((r2 = walk_db(txn, dbi, st.ms_psize)))
            child_fail(fd, name, r2);
    }
    if (rc != MDB_NOTFOUND)
        child_fail(fd, "the main database", rc);
    _exit(0);
}

int tsdb_check_pages(const char *path, firn_err *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return firn_errf(err, FIRN_EIO, "%s: checking its pages: pipe: %s", path, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return firn_errf(err, FIRN_EIO, "%s: checking its pages: fork: %s", path, strerror(e));
    }
    if (pid == 0) {
        close(p[0]);
        /* a damaged page is a signal here, not a core file */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
        child_walk(path, p[1]);
    }
    close(p[1]);
    char msg[256];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(p[0], msg + n, sizeof msg - 1 - n);
        if (r > 0 && (n += (size_t)r) < sizeof msg - 1)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    msg[n] = 0;
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return firn_errf(err, FIRN_EIO, "%s: checking its pages: waitpid: %s", path,
                             strerror(errno));
    if (WIFSIGNALED(status))
        return firn_errf(err, FIRN_EINVAL,
                         "%s/data.mdb: damaged: following its pages crashed the check that reads "
                         "them (%s); firn does not open it: restore it from a backup, or move it "
                         "away to start a new store", path, strsignal(WTERMSIG(status)));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return firn_errf(err, FIRN_EINVAL, "%s/data.mdb: damaged: %s", path,
                         n ? msg : "the check that reads its pages failed");
    return 0;
}
