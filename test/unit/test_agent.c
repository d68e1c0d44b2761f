/* test_agent.c -- the pure parts of firn-agent (agent/procfs.c, pushbuf.c,
 * profile.c) and its config file (config/agent_config.c): kallsyms parsing
 * and lookup, /proc/PID/maps, /proc/PID/stat, perf maps, cgroup files and
 * what cgroup paths say of containers and pods (real shapes of docker, containerd,
 * cri-o, podman and systemd kubepods slices, cgroup v1 and v2), the bounded
 * push buffer, and profiles built from samples read back with the pprof
 * decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "config/agent_config.h"

/* ---- kallsyms ------------------------------------------------------------------ */

static void test_kallsyms(void **state)
{
    (void)state;
    static const char text[] =
        "ffffffff81000000 T _stext\n"
        "ffffffff81001000 t do_one_initcall\n"
        "ffffffff81002000 D some_data\n"
        "ffffffff81003000 W weak_fn\n"
        "ffffffffc0a00000 t ext4_read\t[ext4]\n"
        "ffffffff81000800 T entry_SYSCALL_64\n";
    agent_kallsyms k;
    firn_err err = {0};
    assert_int_equal(agent_kallsyms_parse(text, sizeof text - 1, &k, &err), 0);
    assert_int_equal(k.n, 5);   /* the D symbol is left out */
    assert_string_equal(agent_kallsyms_lookup(&k, 0xffffffff81000010)->name, "_stext");
    assert_string_equal(agent_kallsyms_lookup(&k, 0xffffffff81000800)->name,
                        "entry_SYSCALL_64");
    assert_string_equal(agent_kallsyms_lookup(&k, 0xffffffff81002500)->name, "do_one_initcall");
    assert_string_equal(agent_kallsyms_lookup(&k, 0xffffffffc0a00040)->name, "ext4_read [ext4]");
    assert_null(agent_kallsyms_lookup(&k, 0x1000));
    agent_kallsyms_free(&k);

    /* Empty text: no symbols, nothing to sort (fuzz.agent found qsort
     * handed NULL here, undefined behaviour that UBSan stops on). */
    assert_int_equal(agent_kallsyms_parse("", 0, &k, &err), 0);
    assert_int_equal(k.n, 0);
    assert_null(agent_kallsyms_lookup(&k, 0xffffffff81000000));
    agent_kallsyms_free(&k);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"ffffffff81000000 T _stext\nzzzz T x\n", "kallsyms:2:"},
        {"ffffffff81000000 _stext\n", "kallsyms:1: bad symbol type"},
        {"ffffffff81000000 T\n", "kallsyms:1:"},
        {"ffffffff81000000T x\n", "kallsyms:1:"},
        {"11111111111111111111 T x\n", "kallsyms:1:"},
        {"0000000000000000 T a\n0000000000000000 T b\n", "kptr_restrict"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        firn_err e = {0};
        assert_true(agent_kallsyms_parse(bad[i].text, strlen(bad[i].text), &k, &e) < 0);
        if (!strstr(e.msg, bad[i].want))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, e.msg, bad[i].want);
        assert_null(k.syms);
    }
}

/* ---- /proc/PID/maps ------------------------------------------------------------ */

static void test_maps(void **state)
{
    (void)state;
    static const char text[] =
        "55c108e45000-55c108e46000 r--p 00000000 fd:01 1234                       /tmp/w\n"
        "55c108e46000-55c108e47000 r-xp 00001000 fd:01 1234                       /tmp/w\n"
        "7fb39e4bc000-7fb39e612000 r-xp 00026000 08:02 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        "7fb39e700000-7fb39e800000 rwxp 00000000 00:00 0 \n"
        "7fb39e900000-7fb39e901000 r-xp 00000000 00:05 77 /memfd:jit (deleted)\n"
        "7ffd1c5f0000-7ffd1c5f2000 r-xp 00000000 00:00 0                          [vdso]\n";
    agent_maps m;
    firn_err err = {0};
    assert_int_equal(agent_maps_parse(text, sizeof text - 1, &m, &err), 0);
    assert_int_equal(m.n, 5);   /* executable ones only */
    const agent_map *w = agent_maps_find(&m, 0x55c108e46434);
    assert_non_null(w);
    assert_string_equal(w->path, "/tmp/w");
    assert_int_equal(w->offset, 0x1000);
    assert_int_equal(w->dev_major, 0xfd);
    assert_int_equal(w->dev_minor, 1);
    assert_int_equal(w->inode, 1234);
    assert_string_equal(agent_maps_find(&m, 0x7fb39e4bd249)->path,
                        "/usr/lib/x86_64-linux-gnu/libc.so.6");
    assert_string_equal(agent_maps_find(&m, 0x7fb39e700010)->path, "");
    const agent_map *memfd = agent_maps_find(&m, 0x7fb39e900000);
    assert_string_equal(memfd->path, "/memfd:jit");
    assert_true(memfd->deleted);
    assert_string_equal(agent_maps_find(&m, 0x7ffd1c5f0001)->path, "[vdso]");
    assert_null(agent_maps_find(&m, 0x55c108e45500));   /* not executable */
    assert_null(agent_maps_find(&m, 0x55c108e47000));   /* limit is exclusive */
    agent_maps_free(&m);

    static const char *const bad[] = {
        "55c108e45000 r-xp 00000000 fd:01 1 /x\n",
        "55c108e45000-55c108e46000 r-x 00000000 fd:01 1 /x\n",
        "55c108e45000-55c108e46000 r-xp 00000000 fd01 1 /x\n",
        "55c108e45000-55c108e46000 r-xp 00000000 fd:01 x /x\n",
        "55c108e46000-55c108e45000 r-xp 00000000 fd:01 1 /x\n",   /* end before start */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        firn_err e = {0};
        assert_true(agent_maps_parse(bad[i], strlen(bad[i]), &m, &e) < 0);
        assert_non_null(strstr(e.msg, "maps:1:"));
    }
}

/* ---- perf maps ------------------------------------------------------------------ */

static void test_perf_map(void **state)
{
    (void)state;
    static const char text[] =
        "3c4a2d00040 1f8 LazyCompile:~main /app/index.js:10\n"
        "0x3c4a2d00300 40 Builtin:ArgumentsAdaptorTrampoline\n"
        "3c4a2d00100 100 Function:hot /app/hot.js:3\n";
    agent_perf_map m;
    firn_err err = {0};
    assert_int_equal(agent_perf_map_parse(text, sizeof text - 1, &m, &err), 0);
    assert_int_equal(m.n, 3);
    assert_string_equal(agent_perf_map_lookup(&m, 0x3c4a2d00040)->name,
                        "LazyCompile:~main /app/index.js:10");
    assert_string_equal(agent_perf_map_lookup(&m, 0x3c4a2d001ff)->name,
                        "Function:hot /app/hot.js:3");
    assert_string_equal(agent_perf_map_lookup(&m, 0x3c4a2d0033f)->name,
                        "Builtin:ArgumentsAdaptorTrampoline");
    assert_null(agent_perf_map_lookup(&m, 0x3c4a2d00340));   /* past its size */
    assert_null(agent_perf_map_lookup(&m, 0x10));
    agent_perf_map_free(&m);

    static const char *const bad[] = {"abc\n", "abc 10\n", "abc 10 \n", "xyz 10 f\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        firn_err e = {0};
        assert_true(agent_perf_map_parse(bad[i], strlen(bad[i]), &m, &e) < 0);
        assert_non_null(strstr(e.msg, "perf map:1:"));
    }
}

/* ---- container files --------------------------------------------------------------- */

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The text of fd (closed), or NULL when fd is an error. */
static char *read_fd(int fd)
{
    static char buf[64];
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

/* A fake container root with a planted absolute link tmp/perf-1.map ->
 * BASE/host-secret, the path of a host file.  A plain open through the root
 * reads the host's file (the hole); agent_root_open resolves the link inside
 * the root (the container's own BASE/host-secret) or, walking, refuses it;
 * ".." never climbs out of the root. */
static void test_root_open(void **state)
{
    (void)state;
    char base[] = "/tmp/firn-test-rootfs-XXXXXX";
    assert_non_null(mkdtemp(base));
    char host[256], root[256], p[512], inside[512];
    snprintf(host, sizeof host, "%s/host-secret", base);
    snprintf(root, sizeof root, "%s/root", base);
    put_file(host, "host\n");
    assert_int_equal(mkdir(root, 0755), 0);
    snprintf(p, sizeof p, "%s/tmp", root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/tmp/perf-1.map", root);
    assert_int_equal(symlink(host, p), 0);
    snprintf(p, sizeof p, "%s/tmp/ok.map", root);
    put_file(p, "ok\n");
    /* the container's own file at the link's target, inside its root */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s%s'", root, base);
    assert_int_equal(system(cmd), 0);
    snprintf(inside, sizeof inside, "%s%s/host-secret", root, base);
    put_file(inside, "container\n");

    snprintf(p, sizeof p, "%s/tmp/perf-1.map", root);
    assert_string_equal(read_fd(open(p, O_RDONLY)), "host\n");   /* what a plain open does */

    firn_err err = {0};
    assert_string_equal(read_fd(agent_root_open(root, "tmp/perf-1.map", false, &err)),
                        "container\n");
    assert_string_equal(read_fd(agent_root_open(root, "/tmp/ok.map", false, &err)), "ok\n");
    assert_null(read_fd(agent_root_open(root, "tmp/../../host-secret", false, &err)));
    assert_non_null(strstr(err.msg, "No such file or directory"));

    /* the walk without openat2: links and ".." refused, plain files read */
    assert_null(read_fd(agent_root_open(root, "tmp/perf-1.map", true, &err)));
    assert_non_null(strstr(err.msg, "tmp/perf-1.map: Too many levels of symbolic links"));
    assert_null(read_fd(agent_root_open(root, "tmp/../../host-secret", true, &err)));
    assert_string_equal(read_fd(agent_root_open(root, "/tmp/ok.map", true, &err)), "ok\n");
    assert_string_equal(read_fd(agent_root_open(root, "tmp//ok.map", true, &err)), "ok\n");

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

/* ---- cgroups --------------------------------------------------------------------- */

static void test_cgroup_path(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"0::/system.slice/ssh.service\n", "/system.slice/ssh.service"},
        /* v1: the cpu controller's line wins */
        {"12:pids:/docker/abc\n5:cpu,cpuacct:/kubepods/besteffort/pod1\n"
         "1:name=systemd:/kubepods/x\n",
         "/kubepods/besteffort/pod1"},
        {"1:name=systemd:/user.slice/user-0.slice/session-1.scope\n3:memory:/m\n",
         "/user.slice/user-0.slice/session-1.scope"},
        /* hybrid: the unified line wins */
        {"1:name=systemd:/init.scope\n0::/init.scope\n", "/init.scope"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256];
        firn_err err = {0};
        assert_int_equal(agent_cgroup_path(cases[i].text, strlen(cases[i].text), out,
                                           sizeof out, &err), 0);
        assert_string_equal(out, cases[i].want);
    }
    char out[256];
    firn_err err = {0};
    assert_true(agent_cgroup_path("0:/x\n", 5, out, sizeof out, &err) < 0);
    assert_non_null(strstr(err.msg, "cgroup:1:"));
    assert_true(agent_cgroup_path("x::/y\n", 6, out, sizeof out, &err) < 0);
    assert_true(agent_cgroup_path("0::y\n", 5, out, sizeof out, &err) < 0);
}

/* /proc/PID/stat: a comm with spaces and parentheses, fields counted after
 * the last ')'; starttime (22), startcode (26), startstack (28). */
static void test_proc_stat(void **state)
{
    (void)state;
    static const struct {
        const char *text, *comm;
        uint64_t start_time, start_code, start_stack;
    } cases[] = {
        {"1234 (gospin.bin) R 1 1234 1234 0 -1 4194304 120 0 0 0 5 1 0 0 20 0 3 0 "
         "987654 1234567 300 18446744073709551615 4194304 4750842 140723456 0 0 0 0 0 0 "
         "0 0 0 17 1 0 0 0 0 0\n",
         "gospin.bin", 987654, 4194304, 140723456},
        {"77 (a (b) c) S 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0 "
         "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0\n",
         "a (b) c", 42, 0, 0},   /* a kernel thread: no text, no stack */
        {"9 (0123456789abcdefXYZ) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 1 2 3 10 20 30",
         "0123456789abcde", 7, 10, 30},   /* comm cut to 15; ends without '\n' */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agent_proc_stat st;
        firn_err err = {0};
        assert_int_equal(agent_proc_stat_parse(cases[i].text, strlen(cases[i].text), &st, &err),
                         0);
        assert_string_equal(st.comm, cases[i].comm);
        assert_true(st.start_time == cases[i].start_time);
        assert_true(st.start_code == cases[i].start_code);
        assert_true(st.start_stack == cases[i].start_stack);
    }
    static const char *bad[] = {
        "",
        "1 comm R 1",                                   /* no parentheses */
        "1 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1 2 3 4 5",   /* 27 fields */
        "1 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 zz 1 2 3 4 5 6 7",
        "1 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 1 2 3 4 5 6 7",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        agent_proc_stat st;
        firn_err err = {0};
        assert_true(agent_proc_stat_parse(bad[i], strlen(bad[i]), &st, &err) < 0);
        assert_non_null(strstr(err.msg, "/proc/PID/stat"));
    }
}

#define CID "3f4b1c2d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c"

static void test_cgroup_containers(void **state)
{
    (void)state;
    static const struct {
        const char *path, *container, *pod, *unit;
    } cases[] = {
        /* docker, cgroupfs driver (v1) and systemd driver (v2) */
        {"/docker/" CID, CID, "", ""},
        {"/system.slice/docker-" CID ".scope", CID, "", ""},
        /* containerd (CRI), kubepods with the cgroupfs driver */
        {"/kubepods/besteffort/pod0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39/" CID, CID,
         "0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39", ""},
        {"/kubepods/pod0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39/" CID, CID,
         "0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39", ""},
        /* containerd, systemd driver: '-' of the uid became '_' */
        {"/kubepods.slice/kubepods-burstable.slice/"
         "kubepods-burstable-pod0c4f4a2e_5b2d_4c1e_9f3a_8d7e6c5b4a39.slice/"
         "cri-containerd-" CID ".scope",
         CID, "0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39", ""},
        /* cri-o, systemd driver, guaranteed QoS */
        {"/kubepods.slice/kubepods-pod0c4f4a2e_5b2d_4c1e_9f3a_8d7e6c5b4a39.slice/crio-" CID
         ".scope",
         CID, "0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39", ""},
        /* cri-o, cgroupfs driver (cgroup v1 or v2) */
        {"/kubepods/burstable/pod0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39/crio-" CID, CID,
         "0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39", ""},
        /* podman */
        {"/machine.slice/libpod-" CID ".scope/container", CID, "", ""},
        /* systemd services and sessions */
        {"/system.slice/nginx.service", "", "", "nginx.service"},
        {"/user.slice/user-1000.slice/session-3.scope", "", "", "session-3.scope"},
        {"/", "", "", ""},
        {"", "", "", ""},
        /* near misses: too short an id, no kubepods for a pod */
        {"/docker/3f4b1c2d9e8a", "", "", ""},
        {"/x/pod0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39", "", "", ""},
        {"/docker/x" CID, "", "", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agent_cgroup_info info;
        agent_cgroup_parse(cases[i].path, &info);
        if (strcmp(info.container_id, cases[i].container) != 0 ||
            strcmp(info.pod_uid, cases[i].pod) != 0 ||
            strcmp(info.systemd_unit, cases[i].unit) != 0)
            fail_msg("case %zu (%s): got container \"%s\" pod \"%s\" unit \"%s\"", i,
                     cases[i].path, info.container_id, info.pod_uid, info.systemd_unit);
    }
}

/* A container status's containerID (Kubernetes API, pod status) names the
 * same container as the id in its processes' cgroup path: the two must
 * meet for the agent to label the process. */
static void test_k8s_container_id(void **state)
{
    (void)state;
    static const struct {
        const char *status_id, *cgroup_path;
    } same[] = {
        {"containerd://" CID, "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-"
                              "pod0c4f4a2e_5b2d_4c1e_9f3a_8d7e6c5b4a39.slice/cri-containerd-" CID
                              ".scope"},
        {"containerd://" CID, "/kubepods/besteffort/pod0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39/" CID},
        {"cri-o://" CID, "/kubepods.slice/kubepods-pod0c4f4a2e_5b2d_4c1e_9f3a_8d7e6c5b4a39.slice/"
                         "crio-" CID ".scope"},
        {"docker://" CID, "/kubepods/burstable/pod0c4f4a2e-5b2d-4c1e-9f3a-8d7e6c5b4a39/" CID},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        char id[AGENT_CONTAINER_ID_LEN + 1];
        agent_cgroup_info info;
        agent_cgroup_parse(same[i].cgroup_path, &info);
        assert_true(agent_k8s_container_id(same[i].status_id, id));
        assert_string_equal(id, CID);
        assert_string_equal(id, info.container_id);
    }
    /* not started (""), not a 64-hex id, a longer one */
    static const char *const bad[] = {"", "containerd://", "containerd://3f4b1c2d9e8a",
                                      "containerd://" CID "0", "containerd://x" CID};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[AGENT_CONTAINER_ID_LEN + 1];
        if (agent_k8s_container_id(bad[i], id))
            fail_msg("\"%s\" taken as container id %s", bad[i], id);
    }
}

/* ---- the push buffer --------------------------------------------------------------- */

static agent_push_item item(const char *query, size_t body_len)
{
    agent_push_item it = {.body = calloc(1, body_len ? body_len : 1), .body_len = body_len,
                          .query = strdup(query)};
    return it;
}

static void test_pushbuf(void **state)
{
    (void)state;
    agent_pushbuf *q = agent_pushbuf_new(3, 1000);
    assert_non_null(q);
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", i);
        agent_push_item it = item(name, 10);
        assert_int_equal(agent_pushbuf_put(q, &it), i < 3 ? 0 : 1);
        assert_null(it.body);   /* taken */
    }
    assert_int_equal(agent_pushbuf_len(q), 3);
    assert_int_equal(agent_pushbuf_dropped(q), 2);
    assert_int_equal(agent_pushbuf_bytes(q), 3 * 12);
    agent_push_item it;
    assert_true(agent_pushbuf_take(q, &it, 0));
    assert_string_equal(it.query, "p2");   /* p0 and p1, the oldest, were dropped */
    /* a failed push goes back first, ahead of newer ones */
    assert_int_equal(agent_pushbuf_requeue(q, &it), 0);
    assert_true(agent_pushbuf_take(q, &it, 0));
    assert_string_equal(it.query, "p2");
    agent_push_item_free(&it);
    /* bytes bound: a 983-byte item pushes the oldest out (p3), then the
     * next small one pushes p4 out */
    agent_push_item big = item("big", 980);
    assert_int_equal(agent_pushbuf_put(q, &big), 1);
    assert_int_equal(agent_pushbuf_len(q), 2);
    agent_push_item one = item("p9", 10);
    assert_int_equal(agent_pushbuf_put(q, &one), 1);
    assert_true(agent_pushbuf_take(q, &it, 0));
    assert_string_equal(it.query, "big");
    /* requeue when newer items left no room: the requeued (oldest) goes */
    agent_push_item filler = item("f", 10);
    assert_int_equal(agent_pushbuf_put(q, &filler), 0);
    assert_int_equal(agent_pushbuf_requeue(q, &it), 1);
    assert_null(it.body);
    /* many at once: as one put each, the oldest dropped for room */
    agent_push_item many[3] = {item("m1", 10), item("m2", 10), item("m3", 10)};
    assert_int_equal(agent_pushbuf_put_many(q, many, 3), 2);
    assert_int_equal(agent_pushbuf_len(q), 3);
    assert_null(many[2].body);
    assert_int_equal(agent_pushbuf_dropped(q), 7);
    /* larger than the whole bound: dropped itself */
    agent_push_item huge = item("huge", 5000);
    assert_int_equal(agent_pushbuf_put(q, &huge), 1);
    assert_int_equal(agent_pushbuf_dropped(q), 8);
    assert_true(agent_pushbuf_bytes(q) <= 1000);
    /* closed: what is left comes out, then nothing, without waiting */
    agent_pushbuf_close(q);
    size_t left = 0;
    while (agent_pushbuf_take(q, &it, 10000)) {
        agent_push_item_free(&it);
        left++;
    }
    assert_int_equal(left, 3);   /* m1, m2, m3 */
    assert_int_equal(agent_pushbuf_bytes(q), 0);
    agent_pushbuf_free(q);
    assert_null(agent_pushbuf_new(0, 10));
}

/* ---- profiles ----------------------------------------------------------------------- */

static void test_profile(void **state)
{
    (void)state;
    agent_profile p;
    firn_err err = {0};
    agent_profile_init(&p, 19, 1700000000000000000LL, 10000000000LL);
    uint32_t exe = agent_profile_mapping(&p, 0x400000, 0x500000, 0x1000, "/usr/bin/app",
                                         "f58e0af5", true, true);
    uint32_t kern = agent_profile_mapping(&p, 0, UINT64_MAX, 0, "[kernel.kallsyms]", "", true,
                                          false);
    pprof_line hot = {.function = agent_profile_function(&p, "hot", "hot.isra.0", "app.c", 10),
                      .line = 36};
    pprof_line main_line = {.function = agent_profile_function(&p, "main", NULL, "app.c", 50),
                            .line = 60};
    pprof_line read_line = {.function = agent_profile_function(&p, "vfs_read", NULL, NULL, 0)};
    uint32_t l_hot = agent_profile_location(&p, exe, 0x401234, &hot, 1);
    uint32_t l_main = agent_profile_location(&p, exe, 0x401500, &main_line, 1);
    uint32_t l_read = agent_profile_location(&p, kern, 0xffffffff81234567, &read_line, 1);
    uint32_t l_raw = agent_profile_location(&p, PPROF_NONE, 0x7f0000001000, NULL, 0);
    assert_int_equal(agent_profile_location(&p, exe, 0x401234, &hot, 1), l_hot);   /* dedup */
    uint32_t s1[] = {l_hot, l_main}, s2[] = {l_read, l_main}, s3[] = {l_raw};
    assert_int_equal(agent_profile_sample(&p, s1, 2, 5, "worker"), 0);
    assert_int_equal(agent_profile_sample(&p, s1, 2, 2, "worker"), 0);   /* merged */
    assert_int_equal(agent_profile_sample(&p, s2, 2, 3, "main"), 0);
    assert_int_equal(agent_profile_sample(&p, s3, 1, 1, NULL), 0);
    pprof_profile *built = agent_profile_finish(&p, &err);
    assert_non_null(built);
    unsigned char *bytes;
    size_t len;
    assert_int_equal(pprof_encode(built, 1, &bytes, &len, &err), 0);
    pprof_free(built);

    pprof_profile *d = pprof_decode(bytes, len, NULL, &err);
    free(bytes);
    assert_non_null(d);
    assert_int_equal(d->n_sample_types, 2);
    assert_string_equal(pprof_str(d, d->sample_types[0].type), "samples");
    assert_string_equal(pprof_str(d, d->sample_types[0].unit), "count");
    assert_string_equal(pprof_str(d, d->sample_types[1].type), "cpu");
    assert_string_equal(pprof_str(d, d->sample_types[1].unit), "nanoseconds");
    assert_string_equal(pprof_str(d, d->period_type.type), "cpu");
    assert_int_equal(d->period, 1000000000LL / 19);
    assert_int_equal(d->duration_nanos, 10000000000LL);
    assert_int_equal(d->n_samples, 3);
    int64_t totals[2];
    pprof_totals(d, totals);
    assert_int_equal(totals[0], 11);
    assert_int_equal(totals[1], 11 * (1000000000LL / 19));
    assert_int_equal(d->n_mappings, 2);
    assert_string_equal(pprof_str(d, d->mappings[0].filename), "/usr/bin/app");
    assert_string_equal(pprof_str(d, d->mappings[0].build_id), "f58e0af5");
    assert_true(d->mappings[0].has_line_numbers);
    /* the hot stack, leaf first, with file:line */
    const pprof_sample *s = &d->samples[0];
    assert_int_equal(s->values[0], 7);
    assert_int_equal(s->n_locations, 2);
    const pprof_location *leaf = &d->locations[s->locations[0]];
    assert_int_equal(leaf->address, 0x401234);
    assert_int_equal(leaf->lines[0].line, 36);
    const pprof_function *f = &d->functions[leaf->lines[0].function];
    assert_string_equal(pprof_str(d, f->name), "hot");
    assert_string_equal(pprof_str(d, f->system_name), "hot.isra.0");
    assert_string_equal(pprof_str(d, f->filename), "app.c");
    assert_int_equal(s->n_labels, 1);
    assert_string_equal(pprof_str(d, s->labels[0].key), "thread_name");
    assert_string_equal(pprof_str(d, s->labels[0].str), "worker");
    assert_int_equal(d->locations[d->samples[2].locations[0]].mapping, PPROF_NONE);
    assert_int_equal(d->samples[2].n_labels, 0);
    pprof_free(d);
}

/* ---- the agent config file ---------------------------------------------------------- */

static void test_agent_config(void **state)
{
    (void)state;
    static const char good[] =
        "relabel_configs:\n"
        "  - source_labels: [comm]\n"
        "    regex: 'kworker.*'\n"
        "    action: drop\n"
        "  - source_labels: [container_id]\n"
        "    target_label: container\n";
    firn_err err = {0};
    config_agent *c = config_agent_load_string(good, sizeof good - 1, "agent.yaml", NULL, &err);
    assert_non_null(c);
    assert_int_equal(c->n_relabel_configs, 2);
    assert_int_equal(c->relabel_configs[0].action, FIRN_RELABEL_DROP);
    firn_label in[] = {{"comm", "kworker/0:1"}, {"pid", "7"}};
    firn_arena *a = firn_arena_new(0);
    firn_label *out;
    size_t n_out;
    assert_int_equal(firn_relabel_process(c->relabel_configs, c->n_relabel_configs, in, 2, a,
                                          &out, &n_out, &err), 0);
    config_agent_free(c);
    firn_arena_free(a);

    c = config_agent_load_string("", 0, "empty.yaml", NULL, &err);
    assert_non_null(c);
    assert_int_equal(c->n_relabel_configs, 0);
    config_agent_free(c);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"scrape_configs: []\n", "bad.yaml:1:1: scrape_configs: unknown field"},
        {"relabel_configs: {}\n", "bad.yaml:1:18: relabel_configs: expected a list"},
        {"relabel_configs:\n  - action: nope\n", "bad.yaml:2:13: action: unknown relabel action"},
        {"relabel_configs:\n  - action: replace\n", "requires 'target_label'"},
        {"relabel_configs:\n  - regex: '('\n    target_label: x\n", "bad.yaml:2:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        firn_err e = {0};
        assert_null(config_agent_load_string(bad[i].text, strlen(bad[i].text), "bad.yaml", NULL,
                                             &e));
        if (!strstr(e.msg, bad[i].want))
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, e.msg, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kallsyms),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_perf_map),
        cmocka_unit_test(test_root_open),
        cmocka_unit_test(test_cgroup_path),
        cmocka_unit_test(test_proc_stat),
        cmocka_unit_test(test_cgroup_containers),
        cmocka_unit_test(test_k8s_container_id),
        cmocka_unit_test(test_pushbuf),
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_agent_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
