/* h2o_lsan.h -- include once in each unit test program that starts a web/
 * server.
 *
 * Under LeakSanitizer: two leaks that are h2o 2.2.5's, not web/'s, and
 * that web/ cannot reach to free.
 *  - h2o_mem_alloc_recycle: h2o keeps freed pool chunks and socket buffers
 *    in per-thread caches (static __thread in libh2o) that are never
 *    emptied, so they are lost when the loop thread exits.
 *  - h2o_multithread_create_queue: h2o_multithread_destroy_queue (called by
 *    h2o_context_dispose) does not free the queue in the evloop build; later
 *    h2o versions do.
 * Neither grows with the number of requests: a few hundred KiB per server
 * started and stopped.  Everything allocated by web/ itself is checked.
 */
#ifndef FIRN_TEST_H2O_LSAN_H
#define FIRN_TEST_H2O_LSAN_H

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n"
           "leak:h2o_multithread_create_queue\n";
}

#endif
