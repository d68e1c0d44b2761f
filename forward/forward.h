/* forward.h -- profile_remote_write: every profile firn stores, forwarded
 * to Pyroscope-compatible Push endpoints (a Grafana Pyroscope cluster,
 * Grafana Cloud Profiles, another firn) through a durable queue per
 * endpoint, as Prometheus's remote_write forwards samples.
 *
 * Contract
 * - forward_profile is ingest's forward hook (ingest_forward_set).  For
 *   each endpoint it relabels the stored profile's labels, with __name__
 *   set to the profile name, by the endpoint's write_relabel_configs (a
 *   drop skips that endpoint), and appends one record to the endpoint's
 *   queue: a Pyroscope RawProfileSeries holding those labels plus
 *   __delta__="false" (the values are as stored, deltas already taken) and
 *   the profile as stored, gzipped, its time_nanos the stored timestamp.
 *   It returns once the record is committed (LMDB, synced; concurrent
 *   appends share one commit): a profile whose push firn has answered, or
 *   whose scrape it has recorded, is in every queue and survives a restart
 *   or kill -9.
 * - The queue is bounded by queue_config.max_bytes: to make room the oldest
 *   records are dropped and counted.  A record that alone is over the
 *   bound, or that cannot be written, is dropped, counted and logged; the
 *   profile stays stored locally either way (forwarding never fails an
 *   ingest).
 * - Each endpoint runs `shards` sender threads; a record goes to the shard
 *   its label set hashes to, so one series' profiles are sent in order.  A
 *   shard sends its oldest records, up to max_samples_per_send, as one
 *   Connect Push (application/proto) to <url>/push.v1.PusherService/Push
 *   once that many are queued or the oldest has waited
 *   batch_send_deadline.
 * - Answers: 200 deletes the batch (sent).  A transport error, 5xx, 429
 *   (with retry_on_http_429) or Connect's aborted is retried after a
 *   back-off doubling from min_backoff to max_backoff, without end; the
 *   batch stays queued meanwhile (retried counts each retry of each
 *   profile).  Any other answer drops the batch (failed) and is logged.
 * - A record is deleted only after its Push was answered: a crash in
 *   between sends it again; a firn receiver answers a profile it already
 *   holds as stored without storing it twice (tsdb_append's duplicate
 *   rule), so nothing is lost and nothing doubled.
 * - forward_apply (startup and reload) is all or nothing.  Endpoints are
 *   known by name, or by URL when unnamed: a kept one keeps its queue and
 *   counters, and its senders restart with the new settings; a removed one
 *   stops, its queue left on disk (it resumes if the endpoint comes back).
 * - Secrets (basic_auth, authorization, headers) go to the endpoint only;
 *   logs name the endpoint by remote_name and URL.
 *
 * Threads: forward_profile from any ingesting thread; forward_apply and
 * forward_free from one thread at a time; forward_metrics_write from any.
 * The queue of an endpoint lives in DIR/<name or hash of the URL>/.
 */
#ifndef FIRN_FORWARD_H
#define FIRN_FORWARD_H

#include "config/config.h"
#include "ingest/ingest.h"
#include "model/model.h"

typedef struct forward forward;

/* dir: where the queues live (created when missing by forward_apply). */
forward *forward_new(const char *dir);
/* Take cfg's profile_remote_write (cfg is taken, also on failure). */
int forward_apply(forward *f, firn_config *cfg, firn_err *err);
/* The ingest hook: ctx is the forward. */
void forward_profile(void *ctx, const ingest_stored *s);
/* The firn_profile_remote_write_* families. */
void forward_metrics_write(forward *f, firn_buf *b);
/* Stops every sender (an in-flight Push is abandoned and stays queued). */
void forward_free(forward *f);

#endif
