/* firn-agent -- the eBPF whole-system CPU profiler that pushes to firn.
 * Wiring only: flags, the agent config file, the /metrics server, signals
 * and the order things start and stop in (agent/agent.h has the rest). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "config/agent_config.h"
#include "model/model.h"
#include "http/http.h"

#define DEFAULT_HTTP_ADDRESS ":7071"
#define MAX_EXTERNAL_LABELS 64

typedef struct flags {
    agent_options agent;
    const char *http_address;
    const char *config_path;
    const char *log_level;
    firn_label external[MAX_EXTERNAL_LABELS];
    size_t n_external;
} flags;

static void usage(FILE *f)
{
    fputs("usage: firn-agent [flags]\n"
          "\n"
          "Samples the CPU of every process on this machine with a BPF program (kernel and\n"
          "user stacks), symbolizes the stacks, and pushes one pprof profile per process\n"
          "per interval to firn.  Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)\n"
          "and a kernel with BTF (/sys/kernel/btf/vmlinux).\n"
          "\n"
          "flags:\n"
          "  --remote-store-address=URL      firn to push to (default http://localhost:7070)\n"
          "  --sampling-frequency=HZ         samples per second per CPU (default 19)\n"
          "  --profiling-duration=D          how often profiles are drained and pushed\n"
          "                                  (default 10s)\n"
          "  --stack-map-size=N              stacks kept per interval (default 16384)\n"
          "  --dwarf-unwinding=BOOL          walk user stacks with unwind tables compiled from\n"
          "                                  each file's .eh_frame/.debug_frame, frame pointers\n"
          "                                  where there is none (default true); false: frame\n"
          "                                  pointers only\n"
          "  --off-cpu                       also profile the time threads spend blocked\n"
          "                                  (off_cpu:wait:nanoseconds:wait:nanoseconds:delta)\n"
          "  --off-cpu-min-block=D           blocks shorter than D are not counted (default\n"
          "                                  1ms)\n"
          "  --unwind-table-shards=N         BPF memory for unwind tables, in shards of 1024\n"
          "                                  rows (12 KiB; default 1024: 12 MiB)\n"
          "  --external-label=K=V            a label for every profile (repeatable); job=...\n"
          "                                  overrides job=\"firn-agent\"\n"
          "  --node=NAME                     the node label (default: the host name)\n"
          "  --kubernetes                    label profiles with namespace, pod, container\n"
          "                                  and the pod's labels (for relabel_configs:\n"
          "                                  __meta_kubernetes_pod_label_NAME), watching this\n"
          "                                  node's pods (spec.nodeName = --node) through the\n"
          "                                  API server with the in-cluster service account\n"
          "  --kubeconfig=FILE               the same through the server and credentials of\n"
          "                                  a kubeconfig file (implies --kubernetes)\n"
          "  --config-path=FILE              agent config: relabel_configs for the labels of\n"
          "                                  every profile (Prometheus's relabel_config)\n"
          "  --push-buffer-profiles=N        profiles kept while firn is unreachable; the\n"
          "                                  oldest are dropped past it (default 4096)\n"
          "  --push-buffer-bytes=N           the same bound in bytes (default 33554432)\n"
          "  --http-address=ADDR             serve /metrics on ADDR (default :7071)\n"
          "  --log.level=LEVEL               debug, info, warn or error (default info)\n"
          "  --version                       print the version\n"
          "  -h, --help                      this text\n"
          "\n"
          "Labels of each profile: job, pid, comm, executable, node, cgroup, and where the\n"
          "cgroup tells: container_id, pod_uid, systemd_unit (with --kubernetes also\n"
          "namespace, pod, container).  Profile types are Go's CPU\n"
          "profile's: process_cpu:samples:count:cpu:nanoseconds:delta and\n"
          "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta; with --off-cpu also\n"
          "off_cpu:switches:count:wait:nanoseconds:delta and\n"
          "off_cpu:wait:nanoseconds:wait:nanoseconds:delta.  Each interval's profiles go to\n"
          "firn in one request.\n"
          "SIGTERM and SIGINT stop the agent (what is queued gets 5 s to be pushed).\n",
          f);
}

enum {
    OPT_REMOTE = 256, OPT_FREQ, OPT_DURATION, OPT_STACKS, OPT_LABEL, OPT_NODE, OPT_CONFIG,
    OPT_BUF_PROFILES, OPT_BUF_BYTES, OPT_HTTP, OPT_LOG, OPT_VERSION, OPT_DWARF, OPT_SHARDS,
    OPT_OFF_CPU, OPT_OFF_CPU_MIN, OPT_KUBERNETES, OPT_KUBECONFIG
};

/* A positive integer flag up to max; -1 after a message when it is not. */
static long long positive(const char *flag, const char *s, long long max)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "firn-agent: --%s: \"%s\" is not a whole number from 1 to %lld\n", flag,
                s, max);
        return -1;
    }
    return v;
}

static int parse_flags(int argc, char **argv, flags *f)
{
    static const struct option opts[] = {
        {"remote-store-address", required_argument, NULL, OPT_REMOTE},
        {"sampling-frequency", required_argument, NULL, OPT_FREQ},
        {"profiling-duration", required_argument, NULL, OPT_DURATION},
        {"stack-map-size", required_argument, NULL, OPT_STACKS},
        {"dwarf-unwinding", required_argument, NULL, OPT_DWARF},
        {"unwind-table-shards", required_argument, NULL, OPT_SHARDS},
        {"off-cpu", no_argument, NULL, OPT_OFF_CPU},
        {"off-cpu-min-block", required_argument, NULL, OPT_OFF_CPU_MIN},
        {"external-label", required_argument, NULL, OPT_LABEL},
        {"node", required_argument, NULL, OPT_NODE},
        {"kubernetes", no_argument, NULL, OPT_KUBERNETES},
        {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
        {"config-path", required_argument, NULL, OPT_CONFIG},
        {"push-buffer-profiles", required_argument, NULL, OPT_BUF_PROFILES},
        {"push-buffer-bytes", required_argument, NULL, OPT_BUF_BYTES},
        {"http-address", required_argument, NULL, OPT_HTTP},
        {"log.level", required_argument, NULL, OPT_LOG},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    agent_options_default(&f->agent);
    f->http_address = DEFAULT_HTTP_ADDRESS;
    f->log_level = "info";
    firn_err err = {0};
    long long v;
    int c;
    bool dwarf = true, off_cpu = false;
    int64_t off_cpu_min_ms = -1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_REMOTE:
            f->agent.remote = optarg;
            break;
        case OPT_FREQ:
            if ((v = positive("sampling-frequency", optarg, 10000)) < 0)
                return 2;
            f->agent.frequency_hz = (int)v;
            break;
        case OPT_DURATION:
            if (firn_duration_parse(optarg, &f->agent.duration_ms, &err) < 0 ||
                f->agent.duration_ms < 100) {
                fprintf(stderr, "firn-agent: --profiling-duration: %s\n",
                        err.code ? err.msg : "want at least 100ms");
                return 2;
            }
            break;
        case OPT_STACKS:
            if ((v = positive("stack-map-size", optarg, 1 << 22)) < 0)
                return 2;
            f->agent.stack_map_size = (uint32_t)v;
            break;
        case OPT_DWARF:
            if (strcmp(optarg, "true") != 0 && strcmp(optarg, "false") != 0) {
                fprintf(stderr, "firn-agent: --dwarf-unwinding: \"%s\" is not true or false\n",
                        optarg);
                return 2;
            }
            dwarf = strcmp(optarg, "true") == 0;
            break;
        case OPT_OFF_CPU:
            off_cpu = true;
            break;
        case OPT_OFF_CPU_MIN:
            if (firn_duration_parse(optarg, &off_cpu_min_ms, &err) < 0 || off_cpu_min_ms < 0) {
                fprintf(stderr, "firn-agent: --off-cpu-min-block: %s\n",
                        err.code ? err.msg : "want a duration");
                return 2;
            }
            break;
        case OPT_SHARDS:
            if ((v = positive("unwind-table-shards", optarg, 65536)) < 0)
                return 2;
            f->agent.unwind_shards = (uint32_t)v;
            break;
        case OPT_LABEL: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "firn-agent: --external-label: \"%s\": want NAME=VALUE\n",
                        optarg);
                return 2;
            }
            *eq = '\0';
            if (!firn_label_name_valid(optarg)) {
                fprintf(stderr, "firn-agent: --external-label: \"%s\" is not a valid label "
                        "name\n", optarg);
                return 2;
            }
            if (f->n_external == MAX_EXTERNAL_LABELS) {
                fprintf(stderr, "firn-agent: --external-label: more than %d\n",
                        MAX_EXTERNAL_LABELS);
                return 2;
            }
            f->external[f->n_external++] = (firn_label){optarg, eq + 1};
            break;
        }
        case OPT_NODE:
            f->agent.node = optarg;
            break;
        case OPT_KUBERNETES:
            f->agent.kubernetes = true;
            break;
        case OPT_KUBECONFIG:
            f->agent.kubernetes = true;
            f->agent.kubeconfig = optarg;
            break;
        case OPT_CONFIG:
            f->config_path = optarg;
            break;
        case OPT_BUF_PROFILES:
            if ((v = positive("push-buffer-profiles", optarg, AGENT_MAX_BUFFER_PROFILES)) < 0)
                return 2;
            f->agent.buffer_profiles = (size_t)v;
            break;
        case OPT_BUF_BYTES:
            if ((v = positive("push-buffer-bytes", optarg, 1LL << 34)) < 0)
                return 2;
            f->agent.buffer_bytes = (size_t)v;
            break;
        case OPT_HTTP:
            f->http_address = optarg;
            break;
        case OPT_LOG:
            if (firn_log_level_parse(optarg) < 0) {
                fprintf(stderr, "firn-agent: --log.level: %s is not one of debug, info, warn, "
                        "error\n", optarg);
                return 2;
            }
            f->log_level = optarg;
            break;
        case OPT_VERSION:
            printf("firn-agent %s\n", FIRN_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "firn-agent: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (!dwarf)
        f->agent.unwind_shards = 0;
    if (off_cpu)
        f->agent.off_cpu_min_ns = off_cpu_min_ms >= 0 ? off_cpu_min_ms * 1000000
                                                      : AGENT_DEFAULT_OFF_CPU_MIN_NS;
    f->agent.external_labels = f->external;
    f->agent.n_external_labels = f->n_external;
    return 0;
}

static config_agent *load_config(const char *path)
{
    char q[600];
    config_errors errs = {0};
    firn_err err = {0};
    config_agent *c = config_agent_load_file(path, &errs, &err);
    if (!c) {
        for (size_t i = 0; i < errs.n; i++)
            firn_log(FIRN_LOG_ERROR, "main", "configuration error", "err=%s",
                     firn_log_quote(q, sizeof q, errs.lines[i]));
        if (errs.n == 0)
            firn_log(FIRN_LOG_ERROR, "main", "Error loading config", "err=%s",
                     firn_log_quote(q, sizeof q, err.msg));
    }
    config_errors_free(&errs);
    return c;
}

typedef struct http_ctx {
    agent *a;
    http_server *web;
} http_ctx;

static void handle_metrics(void *ctx, const http_request *req, http_response *resp)
{
    (void)req;
    http_ctx *h = ctx;
    firn_buf b = {0};
    agent_metrics_write(h->a, &b);
    http_metrics_write(h->web, &b);
    resp->body = firn_buf_take(&b, &resp->body_len);
    resp->status = resp->body ? 200 : 500;
    resp->content_type = FIRN_METRICS_CONTENT_TYPE;
}

static void handle_healthy(void *ctx, const http_request *req, http_response *resp)
{
    (void)ctx, (void)req;
    http_respond_text(resp, 200, "firn-agent is Healthy.");
}

static void *run_agent(void *arg)
{
    agent_run(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    /* elfutils would fetch debug info over the network; the agent reads
     * only what the mapped files carry. */
    unsetenv("DEBUGINFOD_URLS");
    flags f = {0};
    int rc = parse_flags(argc, argv, &f);
    if (rc)
        return rc;
    firn_log_set_level((enum firn_log_level)firn_log_level_parse(f.log_level));

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char q[600];
    firn_log(FIRN_LOG_INFO, "main", "Starting firn-agent", "version=%s", FIRN_VERSION);
    config_agent *cfg = NULL;
    if (f.config_path) {
        if (!(cfg = load_config(f.config_path)))
            return 1;
        f.agent.relabel_configs = cfg->relabel_configs;
        f.agent.n_relabel_configs = cfg->n_relabel_configs;
    }
    if (geteuid() != 0)
        firn_log(FIRN_LOG_WARN, "main", "not running as root: loading BPF programs and "
                 "system-wide perf events need root or CAP_BPF, CAP_PERFMON and "
                 "CAP_SYS_PTRACE", "uid=%d", (int)geteuid());

    firn_err err = {0};
    http_options wo;
    http_options_default(&wo);
    wo.listen_address = f.http_address;
    wo.workers = 1;
    http_server *web = http_new(&wo, &err);
    if (!web) {
        firn_log(FIRN_LOG_ERROR, "main", "Cannot listen", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        config_agent_free(cfg);
        return 1;
    }
    agent *a = agent_new(&f.agent, &err);
    if (!a) {
        firn_log(FIRN_LOG_ERROR, "main", "Cannot profile this machine", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        http_stop(web);
        config_agent_free(cfg);
        return 1;
    }
    http_ctx hc = {a, web};
    if (http_route(web, "GET", "/metrics", 0, handle_metrics, &hc, &err) < 0 ||
        http_route(web, "GET", "/-/healthy", 0, handle_healthy, &hc, &err) < 0 ||
        http_start(web, &err) < 0) {
        firn_log(FIRN_LOG_ERROR, "main", "Starting the web server failed", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
        agent_free(a, 0);
        http_stop(web);
        config_agent_free(cfg);
        return 1;
    }
    if (agent_remote_check(f.agent.remote, &err) < 0)
        firn_log(FIRN_LOG_WARN, "main", "firn is not reachable; profiles are kept (up to the "
                 "push buffer's bounds) and pushed once it is", "err=%s",
                 firn_log_quote(q, sizeof q, err.msg));
    pthread_t loop;
    if (pthread_create(&loop, NULL, run_agent, a) != 0) {
        firn_log(FIRN_LOG_ERROR, "main", "cannot start the sampling loop", NULL);
        agent_free(a, 0);
        http_stop(web);
        config_agent_free(cfg);
        return 1;
    }
    firn_log(FIRN_LOG_INFO, "main", "Profiling every process; agent is ready.",
             "frequency_hz=%d duration_ms=%lld remote=%s http_port=%d",
             f.agent.frequency_hz, (long long)f.agent.duration_ms,
             firn_log_quote(q, sizeof q, f.agent.remote), http_port(web));

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    firn_log(FIRN_LOG_WARN, "main", "Received a signal, exiting gracefully...", "signal=%s",
             sig == SIGTERM ? "terminated" : "interrupt");
    agent_stop(a);
    pthread_join(loop, NULL);
    http_stop(web);
    agent_free(a, 5000);
    config_agent_free(cfg);
    firn_log(FIRN_LOG_INFO, "main", "See you next time!", NULL);
    return 0;
}
