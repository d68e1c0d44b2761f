/* dns.c -- dns_sd_configs: targets from DNS records, resolved with c-ares.
 *
 * One thread per provider.  Each refresh makes a fresh c-ares channel (so a
 * changed resolv.conf is read, as Prometheus reads it on every lookup),
 * starts a lookup for every name at once and runs the channel's sockets in
 * a poll() loop until all are done.  The loop also polls an eventfd that
 * disc_dns_stop writes, so stopping never waits for a DNS timeout.
 *
 * A lookup walks the name's search-list expansions one by one, as
 * Prometheus's lookupWithSearchPath does: the first NOERROR answer wins
 * (even with no records); NXDOMAIN goes on to the next expansion; when
 * every expansion was NXDOMAIN the name's group is sent empty; when any
 * expansion failed (timeout, SERVFAIL, refused, bad reply) and none
 * answered, nothing is sent for the name, so its old targets stay, and the
 * refresh counts as failed.
 *
 * Each refresh's groups and labels live in one arena, freed once the sink
 * has copied them.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "discovery/discovery.h"

#define DNS_COMPONENT "discovery"
#define DNS_DEFAULT_REFRESH_MS 30000
#define DNS_TIMEOUT_MS 2000   /* per try, as miekg/dns's client (Prometheus) */
#define DNS_TRIES 2
#define DNS_EDNS_SIZE 1232    /* the DNS flag day's safe UDP size */
#define DNS_NAMES_MAX 4096    /* search-list expansions are few; names are capped by config */

struct disc_dns {
    char **names;
    size_t n_names;
    int qtype;                /* ns_t_srv, ... */
    const char *type_name;    /* "SRV", ... (static) */
    uint16_t port;
    int64_t refresh_ms;
    char *server;             /* "HOST:PORT" or NULL */
    disc_sink *sink;
    int wake_fd;              /* eventfd: written by disc_dns_stop */
    pthread_t thread;
};

enum lookup_result { LOOKUP_PENDING, LOOKUP_FOUND, LOOKUP_EMPTY, LOOKUP_FAILED };

/* One name's lookup within a refresh. */
typedef struct dns_lookup {
    disc_dns *d;
    ares_channel channel;
    firn_arena *arena;
    const char *name;         /* as configured */
    char **candidates;        /* search-list expansions, in order */
    size_t n_candidates, next;
    bool all_valid;           /* no expansion failed so far */
    bool stopping;            /* channel being destroyed: start nothing new */
    int last_error;           /* c-ares status of the last failed expansion */
    enum lookup_result result;
    disc_group group;
    size_t *pending;
} dns_lookup;

static pthread_once_t dns_lib_once = PTHREAD_ONCE_INIT;
static int dns_lib_status = ARES_SUCCESS;

/* ares_library_init is not thread-safe in c-ares 1.18: do it once. */
static void dns_lib_init(void)
{
    dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static const struct {
    const char *name;
    int qtype;
} dns_types[] = {
    {"SRV", 33}, {"A", 1}, {"AAAA", 28}, {"MX", 15}, {"NS", 2},
};

/* A channel for one refresh: EDNS0 (c-ares retries a truncated answer over
 * TCP), short tries, and the one server of the options when given. */
static int dns_channel_new(const disc_dns *d, ares_channel *out, firn_err *err)
{
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.flags = ARES_FLAG_EDNS;
    opts.ednspsz = DNS_EDNS_SIZE;
    opts.timeout = DNS_TIMEOUT_MS;
    opts.tries = DNS_TRIES;
    int mask = ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int rc = ares_init_options(out, &opts, mask);
    if (rc == ARES_ENOMEM)
        firn_oom(sizeof opts);
    if (rc != ARES_SUCCESS)
        return firn_errf(err, FIRN_EIO, "dns_sd: c-ares init: %s", ares_strerror(rc));
    if (d->server) {
        rc = ares_set_servers_ports_csv(*out, d->server);
        if (rc != ARES_SUCCESS) {
            ares_destroy(*out);
            return firn_errf(err, FIRN_EINVAL, "dns_sd: DNS server \"%s\": %s", d->server,
                             ares_strerror(rc));
        }
    }
    return 0;
}

static size_t dns_count_labels(const char *name)
{
    size_t n = 0;
    bool in_label = false;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            in_label = false;
        } else if (!in_label) {
            in_label = true;
            n++;
        }
    }
    return n;
}

/* The names to try for name, as Go's miekg/dns ClientConfig.NameList: a
 * rooted name as is; otherwise with more than ndots labels the name
 * first, then each search domain appended, else the name last. */
static void dns_candidates(dns_lookup *l, const struct ares_options *opts)
{
    const char *name = l->name;
    size_t len = strlen(name);
    size_t nd = opts->ndomains > 0 ? (size_t)opts->ndomains : 0;
    if (nd > DNS_NAMES_MAX)
        nd = DNS_NAMES_MAX;
    /* Sizes of names and at most DNS_NAMES_MAX domains: no overflow, so
     * the arena does not return NULL. */
    l->candidates = firn_arena_calloc(l->arena, nd + 1, sizeof *l->candidates);
    if (len > 0 && name[len - 1] == '.') {
        l->candidates[l->n_candidates++] = (char *)name;
        return;
    }
    bool has_ndots = dns_count_labels(name) > (size_t)(opts->ndots > 0 ? opts->ndots : 0);
    char *fqdn = firn_arena_alloc(l->arena, len + 2);
    memcpy(fqdn, name, len);
    memcpy(fqdn + len, ".", 2);
    if (has_ndots)
        l->candidates[l->n_candidates++] = fqdn;
    for (size_t i = 0; i < nd; i++) {
        const char *dom = opts->domains[i];
        size_t dlen = strlen(dom);
        char *c = firn_arena_alloc(l->arena, len + dlen + 3);
        bool rooted = dlen > 0 && dom[dlen - 1] == '.';
        snprintf(c, len + dlen + 3, "%s.%s%s", name, dom, rooted ? "" : ".");
        l->candidates[l->n_candidates++] = c;
    }
    if (!has_ndots)
        l->candidates[l->n_candidates++] = fqdn;
}

/* ---- building targets ------------------------------------------------------ */

typedef struct target_list {
    disc_target *v;
    size_t n, cap;
} target_list;

/* host (no trailing dot) and port as net.JoinHostPort joins them. */
static char *dns_join_host_port(firn_arena *a, const char *host, unsigned port)
{
    size_t len = strlen(host);
    while (len > 0 && host[len - 1] == '.')
        len--;
    bool v6 = memchr(host, ':', len) != NULL;
    size_t size = len + 16;
    char *s = firn_arena_alloc(a, size);
    snprintf(s, size, v6 ? "[%.*s]:%u" : "%.*s:%u", (int)len, host, port);
    return s;
}

/* name with a trailing dot, as miekg/dns gives record targets. */
static char *dns_rooted(firn_arena *a, const char *name)
{
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        return firn_arena_strdup(a, name);
    char *s = firn_arena_alloc(a, len + 2);
    memcpy(s, name, len);
    memcpy(s + len, ".", 2);
    return s;
}

/* Add a target with __address__, __meta_dns_name and the record label
 * (meta may be NULL).  The records of one reply (at most DNS_EDNS_SIZE
 * bytes) are few: the arena's sizes cannot overflow. */
static void dns_add_target(dns_lookup *l, target_list *t, const char *address,
                           const char *meta_name, const char *meta_value,
                           const char *port_value)
{
    /* the list lives in the lookup's arena, as its group */
    t->v = firn_arena_grow(l->arena, t->v, t->n, &t->cap, sizeof *t->v, 8);
    firn_label *labels = firn_arena_calloc(l->arena, 4, sizeof *labels);
    size_t n = 0;
    labels[n++] = (firn_label){"__address__", address};
    labels[n++] = (firn_label){"__meta_dns_name", l->name};
    if (meta_name)
        labels[n++] = (firn_label){meta_name, meta_value};
    if (port_value)
        labels[n++] = (firn_label){"__meta_dns_srv_record_port", port_value};
    firn_err err;
    firn_err_clear(&err);
    if (firn_labels_normalize(labels, &n, &err) < 0) {
        char q[256];
        firn_log(FIRN_LOG_WARN, DNS_COMPONENT, "skipping DNS record", "name=%s err=%s",
                 firn_log_quote(q, sizeof q, l->name), err.msg);
        return;
    }
    t->v[t->n++] = (disc_target){labels, n};
}

/* Parse a NOERROR answer into l->group.  Returns 0 (records found or not),
 * or FIRN_EINVAL for a reply c-ares cannot parse. */
static int dns_parse(dns_lookup *l, const unsigned char *abuf, int alen)
{
    disc_dns *d = l->d;
    firn_arena *a = l->arena;
    target_list t = {0};
    int rc = ARES_SUCCESS;
    char portbuf[8];

    switch (d->qtype) {
    case 33: {
        struct ares_srv_reply *srv = NULL;
        rc = ares_parse_srv_reply(abuf, alen, &srv);
        for (struct ares_srv_reply *r = srv; r; r = r->next) {
            snprintf(portbuf, sizeof portbuf, "%u", (unsigned)r->port);
            dns_add_target(l, &t, dns_join_host_port(a, r->host, r->port),
                                "__meta_dns_srv_record_target", dns_rooted(a, r->host),
                                firn_arena_strdup(a, portbuf));
        }
        ares_free_data(srv);
        break;
    }
    case 15: {
        struct ares_mx_reply *mx = NULL;
        rc = ares_parse_mx_reply(abuf, alen, &mx);
        for (struct ares_mx_reply *r = mx; r; r = r->next)
            dns_add_target(l, &t, dns_join_host_port(a, r->host, d->port),
                                "__meta_dns_mx_record_target", dns_rooted(a, r->host), NULL);
        ares_free_data(mx);
        break;
    }
    case 2: {
        struct hostent *h = NULL;
        rc = ares_parse_ns_reply(abuf, alen, &h);
        for (char **p = h ? h->h_aliases : NULL; p && *p; p++)
            dns_add_target(l, &t, dns_join_host_port(a, *p, d->port),
                                "__meta_dns_ns_record_target", dns_rooted(a, *p), NULL);
        if (h)
            ares_free_hostent(h);
        break;
    }
    case 1:
    case 28: {
        struct hostent *h = NULL;
        rc = d->qtype == 1 ? ares_parse_a_reply(abuf, alen, &h, NULL, NULL)
                           : ares_parse_aaaa_reply(abuf, alen, &h, NULL, NULL);
        for (char **p = h ? h->h_addr_list : NULL; p && *p; p++) {
            char ip[INET6_ADDRSTRLEN];
            if (!inet_ntop(h->h_addrtype, *p, ip, sizeof ip))
                continue;
            dns_add_target(l, &t, dns_join_host_port(a, ip, d->port), NULL, NULL, NULL);
        }
        if (h)
            ares_free_hostent(h);
        break;
    }
    default:
        return FIRN_EINVAL;
    }
    /* ENODATA: an answer without records of the type (say only a CNAME),
     * which Prometheus takes as an empty set. */
    if (rc == ARES_ENOMEM)
        firn_oom(0);   /* c-ares's own allocation */
    if (rc != ARES_SUCCESS && rc != ARES_ENODATA)
        return FIRN_EINVAL;
    l->group.source = l->name;
    l->group.targets = t.v;
    l->group.n_targets = t.n;
    return 0;
}

/* ---- one refresh ----------------------------------------------------------- */

static void dns_query_next(dns_lookup *l);

static void dns_done(dns_lookup *l, enum lookup_result r)
{
    l->result = r;
    (*l->pending)--;
}

static void dns_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    dns_lookup *l = arg;
    const char *qname = l->candidates[l->next - 1];
    char q[256];
    switch (status) {
    case ARES_SUCCESS: {
        int rc = dns_parse(l, abuf, alen);
        if (rc < 0) {
            firn_log(FIRN_LOG_WARN, DNS_COMPONENT, "bad DNS reply",
                     "name=%s type=%s err=\"unparsable answer\"",
                     firn_log_quote(q, sizeof q, qname), l->d->type_name);
            dns_done(l, LOOKUP_FAILED);
        } else {
            dns_done(l, LOOKUP_FOUND);
        }
        return;
    }
    case ARES_ENODATA:   /* NOERROR with no answer: it wins, empty */
        l->group.source = l->name;
        dns_done(l, LOOKUP_EMPTY);
        return;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        dns_done(l, LOOKUP_FAILED);
        return;
    case ARES_ENOTFOUND:   /* NXDOMAIN: try the next expansion */
        break;
    default:
        l->all_valid = false;
        l->last_error = status;
        firn_log(FIRN_LOG_DEBUG, DNS_COMPONENT, "DNS query failed",
                 "name=%s type=%s err=\"%s\"", firn_log_quote(q, sizeof q, qname),
                 l->d->type_name, ares_strerror(status));
        break;
    }
    if (l->stopping) {
        dns_done(l, LOOKUP_FAILED);
        return;
    }
    dns_query_next(l);
}

/* Query the next expansion, or conclude: all NXDOMAIN is an empty group,
 * any failure keeps the old one. */
static void dns_query_next(dns_lookup *l)
{
    if (l->next == l->n_candidates) {
        if (l->all_valid) {
            l->group.source = l->name;
            dns_done(l, LOOKUP_EMPTY);
        } else {
            char q[256];
            firn_log(FIRN_LOG_WARN, DNS_COMPONENT,
                     "could not resolve: all servers responded with errors to at least one "
                     "search domain",
                     "name=%s type=%s err=\"%s\"", firn_log_quote(q, sizeof q, l->name),
                     l->d->type_name, ares_strerror(l->last_error));
            dns_done(l, LOOKUP_FAILED);
        }
        return;
    }
    const char *qname = l->candidates[l->next++];
    /* c-ares may call back before returning (an immediate send error). */
    ares_query(l->channel, qname, 1 /* C_IN */, l->d->qtype, dns_callback, l);
}

/* Run the channel until no lookup is pending.  Returns false when told to
 * stop. */
static bool dns_run(disc_dns *d, ares_channel ch, const size_t *pending)
{
    while (*pending > 0) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM + 1];
        /* ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit: test
         * the bits unsigned. */
        unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){.fd = d->wake_fd, .events = POLLIN};
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            if (bits & (1u << i))
                ev |= POLLIN;
            if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
                ev |= POLLOUT;
            if (ev)
                pfd[n++] = (struct pollfd){.fd = socks[i], .events = ev};
        }
        struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
        int ms = tvp ? (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000) : 1000;
        int rc = poll(pfd, n, ms);
        if (rc < 0 && errno != EINTR) {
            firn_log(FIRN_LOG_ERROR, DNS_COMPONENT, "poll failed", "err=\"%s\"",
                     strerror(errno));
            return false;
        }
        if (rc > 0 && pfd[0].revents)
            return false;
        bool any = false;
        for (nfds_t i = 1; rc > 0 && i < n; i++) {
            if (!pfd[i].revents)
                continue;
            any = true;
            short r = pfd[i].revents;
            ares_process_fd(ch, (r & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD,
                            (r & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD);
        }
        if (!any)   /* timeouts */
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    return true;
}

/* One refresh: look every name up at once, send the groups of the names
 * that resolved, report.  Returns false when told to stop. */
static bool dns_refresh(disc_dns *d)
{
    firn_err err;
    firn_err_clear(&err);
    ares_channel ch;
    if (dns_channel_new(d, &ch, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, DNS_COMPONENT, "DNS refresh failed", "err=\"%s\"", err.msg);
        d->sink->refreshed(d->sink, false);
        return true;
    }
    firn_arena *arena = firn_arena_new(0);
    dns_lookup *lookups = firn_arena_calloc(arena, d->n_names, sizeof *lookups);
    struct ares_options opts;
    int mask = 0;
    memset(&opts, 0, sizeof opts);
    if (ares_save_options(ch, &opts, &mask) != ARES_SUCCESS)   /* only ARES_ENOMEM */
        firn_oom(sizeof opts);
    size_t pending = 0;
    for (size_t i = 0; i < d->n_names; i++) {
        dns_lookup *l = &lookups[i];
        *l = (dns_lookup){.d = d, .channel = ch, .arena = arena, .name = d->names[i],
                          .all_valid = true, .pending = &pending};
        dns_candidates(l, &opts);
    }
    ares_destroy_options(&opts);
    pending = d->n_names;
    for (size_t i = 0; i < d->n_names; i++)
        dns_query_next(&lookups[i]);
    bool running = dns_run(d, ch, &pending);
    for (size_t i = 0; i < d->n_names; i++)
        lookups[i].stopping = true;
    ares_destroy(ch);   /* calls back what is still pending with ARES_EDESTRUCTION */
    if (running) {
        disc_group *groups = firn_arena_calloc(arena, d->n_names, sizeof *groups);
        size_t n = 0;
        bool ok = true;
        for (size_t i = 0; ok && i < d->n_names; i++) {
            if (lookups[i].result == LOOKUP_FOUND || lookups[i].result == LOOKUP_EMPTY)
                groups[n++] = lookups[i].group;
            else
                ok = false;
        }
        if (n > 0)
            d->sink->send(d->sink, groups, n);
        d->sink->refreshed(d->sink, ok);
    }
    firn_arena_free(arena);
    return running;
}

/* Refresh now, then every refresh interval (from the start of the last
 * refresh, as a ticker), until woken by disc_dns_stop. */
static void *dns_thread(void *arg)
{
    disc_dns *d = arg;
    for (;;) {
        int64_t started = firn_mono_ms();
        if (!dns_refresh(d))
            return NULL;
        for (;;) {
            int64_t left = started + d->refresh_ms - firn_mono_ms();
            if (left <= 0)
                break;
            struct pollfd p = {.fd = d->wake_fd, .events = POLLIN};
            int rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
            if (rc > 0)
                return NULL;
            if (rc < 0 && errno != EINTR) {
                firn_log(FIRN_LOG_ERROR, DNS_COMPONENT, "poll failed", "err=\"%s\"",
                         strerror(errno));
                return NULL;
            }
        }
    }
}

static void dns_free(disc_dns *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_names; i++)
        free(d->names[i]);
    free(d->names);
    free(d->server);
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    free(d);
}

disc_dns *disc_dns_start(const config_dns_sd *cfg, const disc_dns_options *o, disc_sink *sink,
                         firn_err *err)
{
    pthread_once(&dns_lib_once, dns_lib_init);
    if (dns_lib_status != ARES_SUCCESS) {
        firn_errf(err, FIRN_EIO, "dns_sd: c-ares: %s", ares_strerror(dns_lib_status));
        return NULL;
    }
    if (cfg->n_names == 0) {
        firn_errf(err, FIRN_EINVAL, "DNS-SD config must contain at least one SRV record name");
        return NULL;
    }
    const char *type = cfg->type ? cfg->type : "SRV";
    int qtype = 0;
    const char *type_name = NULL;
    for (size_t i = 0; i < sizeof dns_types / sizeof dns_types[0]; i++) {
        if (strcasecmp(type, dns_types[i].name) == 0) {
            qtype = dns_types[i].qtype;
            type_name = dns_types[i].name;
        }
    }
    if (!type_name) {
        firn_errf(err, FIRN_EINVAL, "invalid DNS-SD records type %s", type);
        return NULL;
    }
    if (qtype != 33 && cfg->port == 0) {
        firn_errf(err, FIRN_EINVAL,
                  "a port is required in DNS-SD configs for all record types except SRV");
        return NULL;
    }
    disc_dns *d = firn_xcalloc(1, sizeof *d);
    d->wake_fd = -1;
    d->qtype = qtype;
    d->type_name = type_name;
    d->port = cfg->port;
    d->refresh_ms = cfg->refresh_interval_ms > 0 ? cfg->refresh_interval_ms
                                                  : DNS_DEFAULT_REFRESH_MS;
    d->sink = sink;
    d->names = firn_xcalloc(cfg->n_names, sizeof *d->names);
    for (size_t i = 0; i < cfg->n_names; i++)
        d->names[i] = firn_xstrdup(cfg->names[i]);
    d->n_names = cfg->n_names;
    if (o && o->server)
        d->server = firn_xstrdup(o->server);
    /* Check the server now, so a bad flag fails at start, not each refresh. */
    ares_channel ch;
    if (dns_channel_new(d, &ch, err) < 0) {
        dns_free(d);
        return NULL;
    }
    ares_destroy(ch);
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->wake_fd < 0) {
        firn_errf(err, FIRN_EIO, "dns_sd: eventfd: %s", strerror(errno));
        dns_free(d);
        return NULL;
    }
    int rc = pthread_create(&d->thread, NULL, dns_thread, d);
    if (rc != 0) {
        firn_errf(err, FIRN_EIO, "dns_sd: starting thread: %s", strerror(rc));
        dns_free(d);
        return NULL;
    }
    return d;
}

void disc_dns_stop(disc_dns *d)
{
    if (!d)
        return;
    uint64_t one = 1;
    while (write(d->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(d->thread, NULL);
    dns_free(d);
}
