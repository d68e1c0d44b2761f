/* err.h -- errors: the firn_status codes and firn_err, one human sentence
 * per failure.
 *
 * A function that can fail returns an int (0 = ok, a negative firn_status on
 * error) or a pointer (NULL on error) and fills the caller's firn_err with
 * one sentence naming what failed and where.  Running out of memory is not
 * one of these failures: see model/alloc.h.
 */
#ifndef FIRN_MODEL_ERR_H
#define FIRN_MODEL_ERR_H

enum firn_status {
    FIRN_OK = 0,
    FIRN_EINVAL = -1,   /* bad input: malformed, out of range, inconsistent */
    FIRN_ENOMEM = -2,   /* allocation failed (libraries' own reports; firn's
                         * allocations abort instead, model/alloc.h) */
    FIRN_EIO = -3,      /* read/write/system call failed */
    FIRN_ETOOBIG = -4,  /* input exceeds a configured cap */
    FIRN_EBUSY = -5,    /* a bounded queue is full: try again later */
    FIRN_EEXIST = -6,   /* the thing to create is already there */
};

#define FIRN_ERR_MSG_MAX 512

typedef struct firn_err {
    int code;                    /* a firn_status, FIRN_OK when unset */
    char msg[FIRN_ERR_MSG_MAX];  /* "what: where: why", NUL-terminated */
} firn_err;

/* Fill err (if not NULL) with code and a printf-style message; returns code so
 * callers can write `return firn_errf(err, FIRN_EINVAL, "...")`. */
int firn_errf(firn_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to an error already set, to add context on the way up
 * ("fixture.pb.gz: " + "sample 3: ..."). */
void firn_err_prefix(firn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void firn_err_clear(firn_err *err);

#endif
