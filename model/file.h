/* file.h -- whole files: capped reads, and atomic, durable writes. */
#ifndef FIRN_MODEL_FILE_H
#define FIRN_MODEL_FILE_H

#include <stddef.h>

#include "model/err.h"

/* Read a whole file (or standard input for "-") into a malloc'd buffer;
 * FIRN_ETOOBIG when it is larger than max bytes (reading stops there: the
 * buffer never grows past twice max). */
int firn_read_file(const char *path, size_t max, unsigned char **out, size_t *out_len,
                   firn_err *err);

/* Write len bytes to path through a temporary file and rename(2), so a
 * reader never sees a half-written file; the file and then its directory
 * are synced, so once it returns 0 the new file survives a crash.  An error
 * after the rename (the directory sync failed) leaves the new file in place
 * but not known to be durable.  A path that exists and is no regular file
 * (a device such as /dev/null, a FIFO) is opened and written in place. */
int firn_write_file_atomic(const char *path, const void *data, size_t len, firn_err *err);

#endif
