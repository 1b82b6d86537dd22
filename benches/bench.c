/*
 * bench.c: the msgrpriv benchmark suite (issue 5), through the C ABI, against what a C
 * programmer would use instead, in the same binary and the same run.
 *
 *   bench_msgrpriv [--quick] [--reps N] GROUP...
 *
 * GROUP is one of: delivery (or one part: delivery-lock, delivery-app, delivery-ctx), thread,
 * refs, invite (or invite-manual, invite-thread), getter, lock, scale [N], clients [N], all
 * (all = everything but scale and clients, which want a fresh process each because they
 * read the resident set size). --quick uses tiny iteration counts (for callgrind).
 *
 * Output, on stdout, one record per line, tab-separated (scripts/bench.sh and
 * benches/report.py turn it into BENCHMARKS.md):
 *
 *   R  <key>  <unit>  <median>  <min>  <max>  <reps>   a figure: median and spread over reps
 *   S  <series>  <x>  <y>                               a point of a scaling curve
 *   I  <key>  <value>                                   information (parameters, counts)
 *
 * Human-readable progress goes to stderr. Nothing here is a pass/fail timing test: the
 * program fails only when the library returns an unexpected code or loses an event.
 */
#define _GNU_SOURCE
#include <msgrpriv.h>

#include <glib-object.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Basics                                                                                     */
/* ------------------------------------------------------------------------------------------ */

#define OK(call)                                                                              \
    do {                                                                                      \
        MSGR_HRESULT hr_ = (call);                                                            \
        if (hr_ != S_OK) {                                                                    \
            fprintf(stderr, "%s:%d: %s = 0x%08X (%s)\n", __FILE__, __LINE__, #call,           \
                    (unsigned)hr_, msgr_result_text(hr_));                                    \
            exit(2);                                                                          \
        }                                                                                     \
    } while (0)

#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #cond);    \
            exit(2);                                                                          \
        }                                                                                     \
    } while (0)

static int g_reps = 9;
static bool g_quick = false;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    REQUIRE(p != NULL);
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile of a sample (sorted in place), nearest-rank. */
static double percentile(double *v, size_t n, double p) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(p / 100.0 * (double)n);
    if (k >= n) k = n - 1;
    return v[k];
}

/* Prints a figure: median, min and max of `reps` values. */
static void report(const char *key, const char *unit, double *v, int reps) {
    double *c = xmalloc(sizeof(double) * (size_t)reps);
    memcpy(c, v, sizeof(double) * (size_t)reps);
    qsort(c, (size_t)reps, sizeof *c, cmp_double);
    double med = reps % 2 ? c[reps / 2] : (c[reps / 2 - 1] + c[reps / 2]) / 2;
    printf("R\t%s\t%s\t%.4g\t%.4g\t%.4g\t%d\n", key, unit, med, c[0], c[reps - 1], reps);
    fflush(stdout);
    fprintf(stderr, "  %-44s %12.4g %-8s [%.4g .. %.4g] (%d reps)\n", key, med, unit, c[0],
            c[reps - 1], reps);
    free(c);
}

static void info(const char *key, double value) {
    printf("I\t%s\t%.6g\n", key, value);
    fflush(stdout);
}

static void series(const char *name, double x, double y) {
    printf("S\t%s\t%.6g\t%.6g\n", name, x, y);
    fflush(stdout);
}

/* Resident set size in bytes, from /proc/self/statm. */
static double rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* The median cost of one now_ns() call, subtracted from per-call timings. */
static double g_timer_ns;

static void measure_timer(void) {
    enum { N = 20001 };
    static double d[N];
    for (int i = 0; i < N; i++) {
        uint64_t a = now_ns();
        uint64_t b = now_ns();
        d[i] = (double)(b - a);
    }
    g_timer_ns = percentile(d, N, 50);
    info("timer.ns_per_read", g_timer_ns);
}

/* The 64-byte context data of the realistic event. */
static const char CTX64[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
_Static_assert(sizeof CTX64 == 65, "64 characters");
#define APP_GUID "{6A8B1C2D-3E4F-4A5B-8C9D-0E1F2A3B4C5D}"
#define APP_GUID2 "{7B9C2D3E-4F50-4B6C-9DAE-1F203B4C5D6E}"

/* ------------------------------------------------------------------------------------------ */
/* The callback every method delivers to: the same body for msgrpriv, the direct call, GLib   */
/* and the hand-rolled queue.                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    _Atomic uint64_t count;
    uint64_t bytes; /* touched by the callback, so the string is really read */
    /* latency: the raiser stores t0, the callback stores now - t0 */
    _Atomic uint64_t t0;
    _Atomic uint64_t last_latency;
    _Atomic int flag;
} sink_t;

static void on_ctx(void *ud, msgr_session *session, const char *data) {
    sink_t *s = ud;
    (void)session;
    s->bytes += (unsigned char)data[0] + (unsigned char)data[63];
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

/* Thread-mode variant: records the one-way latency and raises the flag. */
static void on_ctx_latency(void *ud, msgr_session *session, const char *data) {
    sink_t *s = ud;
    uint64_t t = now_ns();
    on_ctx(ud, session, data);
    atomic_store_explicit(&s->last_latency, t - atomic_load(&s->t0), memory_order_relaxed);
    atomic_store_explicit(&s->flag, 1, memory_order_release);
}

static void on_status(void *ud, msgr_session_manager *m, LockStatus status) {
    sink_t *s = ud;
    (void)m;
    s->bytes += (uint64_t)status;
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static void on_enable(void *ud, msgr_session_manager *m, bool enabled) {
    sink_t *s = ud;
    (void)m;
    s->bytes += enabled;
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static void on_app(void *ud, msgr_session_manager *m, const char *guid) {
    sink_t *s = ud;
    (void)m;
    s->bytes += (unsigned char)guid[1];
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static void on_app_latency(void *ud, msgr_session_manager *m, const char *guid) {
    sink_t *s = ud;
    uint64_t t = now_ns();
    on_app(ud, m, guid);
    atomic_store_explicit(&s->last_latency, t - atomic_load(&s->t0), memory_order_relaxed);
    atomic_store_explicit(&s->flag, 1, memory_order_release);
}

static void wait_count(sink_t *s, uint64_t target) {
    uint64_t spins = 0;
    while (atomic_load_explicit(&s->count, memory_order_acquire) < target) {
        if (++spins % 64 == 0) sched_yield();
    }
}

static void wait_flag(_Atomic int *flag) {
    uint64_t spins = 0;
    while (!atomic_load_explicit(flag, memory_order_acquire)) {
        if (++spins % 256 == 0) sched_yield();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* A world: one service, users with one manager each                                          */
/* ------------------------------------------------------------------------------------------ */

static msgr_service *new_service(void) {
    msgr_service *svc = NULL;
    OK(msgr_service_create(NULL, &svc));
    return svc;
}

static msgr_client *new_client(msgr_service *svc, const char *name, int mode) {
    msgr_client *c = NULL;
    OK(msgr_client_create(svc, name, mode, &c));
    return c;
}

static msgr_session_manager *new_manager(msgr_client *c) {
    msgr_session_manager *m = NULL;
    OK(msgr_session_manager_create(c, &m));
    return m;
}

static void drain(msgr_client *c) {
    uint32_t n;
    do {
        OK(msgr_client_dispatch(c, 0, &n));
    } while (n > 0);
}

/* Invitations received by the invitee: kept (add_ref) and registered for OnContextData,
 * then accepted, from inside OnInvitation. */
typedef struct {
    msgr_session **sessions;
    _Atomic size_t count;    /* invitations received */
    _Atomic size_t kept;     /* of which kept in sessions[] */
    _Atomic size_t accepted; /* of which accepted (Accept returned) */
    size_t cap;
    msgr_on_context_data_callback ctx_cb;
    sink_t *ctx_sink;
    bool keep;
} inbox_t;

static void on_invitation_keep(void *ud, msgr_session_manager *m, msgr_session *s,
                               const char *app_data, bool *handled) {
    inbox_t *in = ud;
    uint32_t cookie;
    (void)m;
    (void)app_data;
    *handled = true;
    if (in->keep) {
        size_t i = atomic_load(&in->kept);
        REQUIRE(i < in->cap);
        OK(msgr_session_add_ref(s));
        OK(msgr_session_on_context_data(s, in->ctx_cb, in->ctx_sink, NULL, &cookie));
        in->sessions[i] = s;
        atomic_store(&in->kept, i + 1);
    }
    /* counted before Accept: the inviter's OnAccepted may run (on its thread) before Accept
     * returns here */
    atomic_fetch_add(&in->count, 1);
    OK(msgr_session_accept(s, NULL));
    atomic_fetch_add(&in->accepted, 1);
}

typedef struct {
    msgr_service *svc;
    msgr_client *a, *b;
    msgr_session_manager *ma, *mb;
    inbox_t inbox;
    uint32_t inv_cookie;
} world_t;

static void world_init(world_t *w, int mode_b, size_t cap) {
    memset(w, 0, sizeof *w);
    w->svc = new_service();
    w->a = new_client(w->svc, "alice@bench.example", MSGR_DISPATCH_MANUAL);
    w->b = new_client(w->svc, "bob@bench.example", mode_b);
    w->ma = new_manager(w->a);
    w->mb = new_manager(w->b);
    w->inbox.cap = cap;
    w->inbox.sessions = xmalloc(sizeof(msgr_session *) * (cap ? cap : 1));
    OK(msgr_session_manager_on_invitation(w->mb, on_invitation_keep, &w->inbox, NULL,
                                          &w->inv_cookie));
    OK(msgr_session_manager_register_application(w->ma, APP_GUID, "Bench", "http://bench.example/",
                                                 NULL, 0));
    drain(w->a);
    if (mode_b == MSGR_DISPATCH_MANUAL) drain(w->b);
}

static void world_free(world_t *w) {
    OK(msgr_session_manager_release(w->ma));
    OK(msgr_session_manager_release(w->mb));
    OK(msgr_client_destroy(w->a));
    OK(msgr_client_destroy(w->b));
    OK(msgr_service_destroy(w->svc));
    free(w->inbox.sessions);
}

/* Creates k connected sessions alice -> bob; bob's sides (kept in w->inbox) deliver
 * OnContextData to (cb, sink). */
static void connect_sessions(world_t *w, size_t k, msgr_session **a_sides, bool b_thread,
                             msgr_on_context_data_callback cb, sink_t *sink) {
    w->inbox.keep = true;
    w->inbox.ctx_cb = cb;
    w->inbox.ctx_sink = sink;
    atomic_store(&w->inbox.kept, 0);
    atomic_store(&w->inbox.accepted, 0);
    REQUIRE(k <= w->inbox.cap);
    for (size_t i = 0; i < k; i++) {
        OK(msgr_session_manager_create_session(w->ma, &a_sides[i]));
        OK(msgr_session_set_application(a_sides[i], APP_GUID));
        OK(msgr_session_invite(a_sides[i], "bob@bench.example", NULL));
        if (!b_thread) drain(w->b);
    }
    while (atomic_load(&w->inbox.accepted) < k) sched_yield();
    drain(w->a);
    if (!b_thread) drain(w->b);
}

static void end_sessions(world_t *w, size_t k, msgr_session **a_sides, bool b_thread) {
    for (size_t i = 0; i < k; i++) {
        OK(msgr_session_cancel(a_sides[i], S_OK, NULL));
        OK(msgr_session_release(a_sides[i]));
        OK(msgr_session_release(w->inbox.sessions[i]));
    }
    drain(w->a);
    if (!b_thread) drain(w->b);
}

/* ------------------------------------------------------------------------------------------ */
/* 1. Delivery in manual mode                                                                 */
/* ------------------------------------------------------------------------------------------ */

static void bench_manual_context_data(void) {
    size_t k = g_quick ? 20 : 2000; /* sessions per rep; 5 sends each */
    size_t events = 5 * k;
    double *raise = xmalloc(sizeof(double) * (size_t)g_reps);
    double *batch = xmalloc(sizeof(double) * (size_t)g_reps);
    double *one = xmalloc(sizeof(double) * (size_t)g_reps);
    double *e2e = xmalloc(sizeof(double) * (size_t)g_reps);
    msgr_session **a_sides = xmalloc(sizeof(msgr_session *) * k);
    double *samples = xmalloc(sizeof(double) * events);
    world_t w;
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    world_init(&w, MSGR_DISPATCH_MANUAL, k);
    fprintf(stderr, "manual mode, OnContextData (64-byte string), %zu events per rep\n", events);
    info("manual.ctx.events_per_rep", (double)events);
    for (int r = 0; r < g_reps; r++) {
        /* batch: raise every event (send_context_data x5 on k sessions), then one dispatch */
        connect_sessions(&w, k, a_sides, false, on_ctx, &sink);
        uint64_t before = atomic_load(&sink.count);
        uint64_t t0 = now_ns();
        for (int j = 0; j < 5; j++)
            for (size_t i = 0; i < k; i++) OK(msgr_session_send_context_data(a_sides[i], CTX64));
        uint64_t t1 = now_ns();
        uint32_t n = 0;
        OK(msgr_client_dispatch(w.b, 0, &n));
        uint64_t t2 = now_ns();
        REQUIRE(n == events && atomic_load(&sink.count) - before == events);
        raise[r] = (double)(t1 - t0) / (double)events;
        batch[r] = (double)(t2 - t1) / (double)events;
        end_sessions(&w, k, a_sides, false);

        /* one at a time: raise one, dispatch it (the dispatch call alone is timed) */
        connect_sessions(&w, k, a_sides, false, on_ctx, &sink);
        size_t m = 0;
        uint64_t e0 = now_ns();
        for (int j = 0; j < 5; j++)
            for (size_t i = 0; i < k; i++) {
                OK(msgr_session_send_context_data(a_sides[i], CTX64));
                uint64_t d0 = now_ns();
                OK(msgr_client_dispatch(w.b, 0, &n));
                uint64_t d1 = now_ns();
                REQUIRE(n == 1);
                samples[m++] = (double)(d1 - d0) - g_timer_ns;
            }
        uint64_t e1 = now_ns();
        one[r] = percentile(samples, m, 50);
        e2e[r] = (double)(e1 - e0) / (double)m;
        end_sessions(&w, k, a_sides, false);
    }
    report("manual.ctx.raise_queue_ns", "ns/event", raise, g_reps);
    report("manual.ctx.batch_dispatch_ns", "ns/event", batch, g_reps);
    for (int r = 0; r < g_reps; r++) batch[r] = 1e9 / batch[r];
    report("manual.ctx.batch_dispatch_eps", "events/s", batch, g_reps);
    report("manual.ctx.one_dispatch_ns", "ns/event", one, g_reps);
    report("manual.ctx.one_send_and_dispatch_ns", "ns/event", e2e, g_reps);
    world_free(&w);
    free(raise), free(batch), free(one), free(e2e), free(a_sides), free(samples);
}

/* Trivial events: OnLockStatusChanged / OnLockEnable on N managers of one client, raised by
 * sign-out (N events) and sign-in (2N events). */
static void bench_manual_lock_events(void) {
    int nm = g_quick ? 20 : 1000;
    int cycles = g_quick ? 2 : 20;
    double *raise = xmalloc(sizeof(double) * (size_t)g_reps);
    double *batch = xmalloc(sizeof(double) * (size_t)g_reps);
    double *one = xmalloc(sizeof(double) * (size_t)g_reps);
    msgr_session_manager **ms = xmalloc(sizeof(*ms) * (size_t)nm);
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    msgr_service *svc = new_service();
    msgr_client *c = new_client(svc, "carol@bench.example", MSGR_DISPATCH_MANUAL);
    for (int i = 0; i < nm; i++) {
        uint32_t ck;
        ms[i] = new_manager(c);
        OK(msgr_session_manager_on_lock_status_changed(ms[i], on_status, &sink, NULL, &ck));
        OK(msgr_session_manager_on_lock_enable(ms[i], on_enable, &sink, NULL, &ck));
    }
    drain(c);
    fprintf(stderr, "manual mode, OnLockStatusChanged/OnLockEnable, %d managers, %d cycles\n", nm,
            cycles);
    info("manual.lock.managers", nm);
    for (int r = 0; r < g_reps; r++) {
        uint64_t traise = 0, tdisp = 0, events = 0;
        for (int cy = 0; cy < cycles; cy++) {
            uint32_t n1 = 0, n2 = 0;
            uint64_t t0 = now_ns();
            OK(msgr_client_sign_out(c));
            uint64_t t1 = now_ns();
            OK(msgr_client_dispatch(c, 0, &n1));
            uint64_t t2 = now_ns();
            OK(msgr_client_sign_in(c));
            uint64_t t3 = now_ns();
            OK(msgr_client_dispatch(c, 0, &n2));
            uint64_t t4 = now_ns();
            REQUIRE(n1 == (uint32_t)nm && n2 == 2u * (uint32_t)nm);
            traise += (t1 - t0) + (t3 - t2);
            tdisp += (t2 - t1) + (t4 - t3);
            events += n1 + n2;
        }
        raise[r] = (double)traise / (double)events;
        batch[r] = (double)tdisp / (double)events;
    }
    report("manual.lock.raise_queue_ns", "ns/event", raise, g_reps);
    report("manual.lock.batch_dispatch_ns", "ns/event", batch, g_reps);
    for (int r = 0; r < g_reps; r++) raise[r] += batch[r];
    report("manual.lock.delivery_ns", "ns/event", raise, g_reps);
    for (int r = 0; r < g_reps; r++) batch[r] = 1e9 / batch[r];
    report("manual.lock.batch_dispatch_eps", "events/s", batch, g_reps);
    for (int i = 0; i < nm; i++) OK(msgr_session_manager_release(ms[i]));

    /* one at a time: one manager; sign-out raises one OnLockStatusChanged */
    msgr_session_manager *m1 = new_manager(c);
    uint32_t ck;
    OK(msgr_session_manager_on_lock_status_changed(m1, on_status, &sink, NULL, &ck));
    OK(msgr_session_manager_on_lock_enable(m1, on_enable, &sink, NULL, &ck));
    drain(c);
    int iters = g_quick ? 50 : 5000;
    double *samples = xmalloc(sizeof(double) * (size_t)iters);
    for (int r = 0; r < g_reps; r++) {
        for (int i = 0; i < iters; i++) {
            uint32_t n = 0;
            OK(msgr_client_sign_out(c));
            uint64_t d0 = now_ns();
            OK(msgr_client_dispatch(c, 0, &n));
            uint64_t d1 = now_ns();
            REQUIRE(n == 1);
            samples[i] = (double)(d1 - d0) - g_timer_ns;
            OK(msgr_client_sign_in(c));
            drain(c);
        }
        one[r] = percentile(samples, (size_t)iters, 50);
    }
    report("manual.lock.one_dispatch_ns", "ns/event", one, g_reps);
    OK(msgr_session_manager_release(m1));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
    free(raise), free(batch), free(one), free(ms), free(samples);
}

/* OnAppRegistered / OnAppUnRegistered: N managers, register+unregister. */
static void bench_manual_registry_events(void) {
    int nm = g_quick ? 20 : 1000;
    int cycles = g_quick ? 2 : 20;
    double *raise = xmalloc(sizeof(double) * (size_t)g_reps);
    double *batch = xmalloc(sizeof(double) * (size_t)g_reps);
    msgr_session_manager **ms = xmalloc(sizeof(*ms) * (size_t)nm);
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    msgr_service *svc = new_service();
    msgr_client *c = new_client(svc, "dave@bench.example", MSGR_DISPATCH_MANUAL);
    for (int i = 0; i < nm; i++) {
        uint32_t ck;
        ms[i] = new_manager(c);
        OK(msgr_session_manager_on_app_registered(ms[i], on_app, &sink, NULL, &ck));
        OK(msgr_session_manager_on_app_unregistered(ms[i], on_app, &sink, NULL, &ck));
    }
    drain(c);
    fprintf(stderr, "manual mode, OnAppRegistered/OnAppUnRegistered, %d managers\n", nm);
    for (int r = 0; r < g_reps; r++) {
        uint64_t traise = 0, tdisp = 0, events = 0;
        for (int cy = 0; cy < cycles; cy++) {
            uint32_t n1 = 0, n2 = 0;
            uint64_t t0 = now_ns();
            OK(msgr_session_manager_register_application(ms[0], APP_GUID2, "B", "u", NULL, 0));
            uint64_t t1 = now_ns();
            OK(msgr_client_dispatch(c, 0, &n1));
            uint64_t t2 = now_ns();
            OK(msgr_session_manager_unregister_application(ms[0], APP_GUID2));
            uint64_t t3 = now_ns();
            OK(msgr_client_dispatch(c, 0, &n2));
            uint64_t t4 = now_ns();
            REQUIRE(n1 == (uint32_t)nm && n2 == (uint32_t)nm);
            traise += (t1 - t0) + (t3 - t2);
            tdisp += (t2 - t1) + (t4 - t3);
            events += n1 + n2;
        }
        raise[r] = (double)traise / (double)events;
        batch[r] = (double)tdisp / (double)events;
    }
    report("manual.app.raise_queue_ns", "ns/event", raise, g_reps);
    report("manual.app.batch_dispatch_ns", "ns/event", batch, g_reps);
    for (int i = 0; i < nm; i++) OK(msgr_session_manager_release(ms[i]));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
    free(raise), free(batch), free(ms);
}

/* ------------------------------------------------------------------------------------------ */
/* 1b. Thread mode                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void bench_thread_mode(void) {
    /* throughput, trivial events: N managers on a thread-mode client, sign-out/in cycles */
    int nm = g_quick ? 20 : 1000;
    int cycles = g_quick ? 2 : 20;
    double *tp = xmalloc(sizeof(double) * (size_t)g_reps);
    double *p50 = xmalloc(sizeof(double) * (size_t)g_reps);
    double *p99 = xmalloc(sizeof(double) * (size_t)g_reps);
    msgr_session_manager **ms = xmalloc(sizeof(*ms) * (size_t)nm);
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    msgr_service *svc = new_service();
    msgr_client *c = new_client(svc, "erin@bench.example", MSGR_DISPATCH_THREAD);
    for (int i = 0; i < nm; i++) {
        uint32_t ck;
        ms[i] = new_manager(c);
        OK(msgr_session_manager_on_lock_status_changed(ms[i], on_status, &sink, NULL, &ck));
        OK(msgr_session_manager_on_lock_enable(ms[i], on_enable, &sink, NULL, &ck));
    }
    fprintf(stderr, "thread mode, OnLockStatusChanged/OnLockEnable, %d managers\n", nm);
    /* the events of the managers' creation may already have gone or not: settle */
    usleep(100000);
    for (int r = 0; r < g_reps; r++) {
        uint64_t start = atomic_load(&sink.count);
        uint64_t t0 = now_ns();
        for (int cy = 0; cy < cycles; cy++) {
            OK(msgr_client_sign_out(c));
            OK(msgr_client_sign_in(c));
        }
        wait_count(&sink, start + (uint64_t)cycles * 3u * (uint64_t)nm);
        uint64_t t1 = now_ns();
        tp[r] = (double)cycles * 3.0 * nm / ((double)(t1 - t0) / 1e9);
    }
    report("thread.lock.throughput_eps", "events/s", tp, g_reps);
    for (int i = 0; i < nm; i++) OK(msgr_session_manager_release(ms[i]));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));

    /* throughput and latency, OnContextData: alice (manual) -> bob (thread mode) */
    size_t k = g_quick ? 20 : 1000;
    size_t events = 5 * k;
    msgr_session **a_sides = xmalloc(sizeof(msgr_session *) * k);
    double *samples = xmalloc(sizeof(double) * events);
    world_t w;
    world_init(&w, MSGR_DISPATCH_THREAD, k);
    fprintf(stderr, "thread mode, OnContextData, %zu events per rep\n", events);
    for (int r = 0; r < g_reps; r++) {
        connect_sessions(&w, k, a_sides, true, on_ctx, &sink);
        uint64_t start = atomic_load(&sink.count);
        uint64_t t0 = now_ns();
        for (int j = 0; j < 5; j++)
            for (size_t i = 0; i < k; i++) OK(msgr_session_send_context_data(a_sides[i], CTX64));
        wait_count(&sink, start + events);
        uint64_t t1 = now_ns();
        tp[r] = (double)events / ((double)(t1 - t0) / 1e9);
        end_sessions(&w, k, a_sides, true);

        connect_sessions(&w, k, a_sides, true, on_ctx_latency, &sink);
        size_t m = 0;
        for (int j = 0; j < 5; j++)
            for (size_t i = 0; i < k; i++) {
                atomic_store(&sink.flag, 0);
                atomic_store(&sink.t0, now_ns());
                OK(msgr_session_send_context_data(a_sides[i], CTX64));
                wait_flag(&sink.flag);
                samples[m++] = (double)atomic_load(&sink.last_latency) / 1000.0;
            }
        p50[r] = percentile(samples, m, 50);
        p99[r] = percentile(samples, m, 99);
        end_sessions(&w, k, a_sides, true);
    }
    report("thread.ctx.throughput_eps", "events/s", tp, g_reps);
    report("thread.ctx.latency_p50_us", "us", p50, g_reps);
    report("thread.ctx.latency_p99_us", "us", p99, g_reps);
    world_free(&w);

    /* latency, trivial-argument event: OnAppRegistered, one manager, thread mode */
    svc = new_service();
    c = new_client(svc, "frank@bench.example", MSGR_DISPATCH_THREAD);
    msgr_session_manager *m1 = new_manager(c);
    uint32_t ck;
    OK(msgr_session_manager_on_app_registered(m1, on_app_latency, &sink, NULL, &ck));
    OK(msgr_session_manager_on_app_unregistered(m1, on_app, &sink, NULL, &ck));
    int iters = g_quick ? 50 : 3000;
    double *s2 = xmalloc(sizeof(double) * (size_t)iters);
    usleep(50000);
    for (int r = 0; r < g_reps; r++) {
        for (int i = 0; i < iters; i++) {
            atomic_store(&sink.flag, 0);
            atomic_store(&sink.t0, now_ns());
            OK(msgr_session_manager_register_application(m1, APP_GUID2, "B", "u", NULL, 0));
            wait_flag(&sink.flag);
            s2[i] = (double)atomic_load(&sink.last_latency) / 1000.0;
            OK(msgr_session_manager_unregister_application(m1, APP_GUID2));
        }
        p50[r] = percentile(s2, (size_t)iters, 50);
        p99[r] = percentile(s2, (size_t)iters, 99);
    }
    report("thread.app.latency_p50_us", "us", p50, g_reps);
    report("thread.app.latency_p99_us", "us", p99, g_reps);
    OK(msgr_session_manager_release(m1));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
    free(tp), free(p50), free(p99), free(ms), free(a_sides), free(samples), free(s2);
}

/* ------------------------------------------------------------------------------------------ */
/* 2. References                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* GLib: an object with two signals, one handler each. */
typedef struct {
    GObject parent;
} BenchEmitter;
typedef struct {
    GObjectClass parent_class;
} BenchEmitterClass;
static GType bench_emitter_get_type(void);
G_DEFINE_TYPE(BenchEmitter, bench_emitter, G_TYPE_OBJECT)
static guint sig_ctx, sig_status;
static void bench_emitter_class_init(BenchEmitterClass *k) {
    /* As a C programmer writes it: no hand-written marshaller (GLib picks its own). */
    sig_ctx = g_signal_new("context-data", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                           NULL, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_STRING);
    sig_status = g_signal_new("lock-status-changed", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0,
                              NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}
static void bench_emitter_init(BenchEmitter *e) {
    (void)e;
}
static void g_on_ctx(gpointer instance, gpointer session, const char *data, gpointer ud) {
    (void)instance;
    on_ctx(ud, session, data);
}
static void g_on_status(gpointer instance, gint status, gpointer ud) {
    (void)instance;
    on_status(ud, NULL, (LockStatus)status);
}

/* The hand-rolled queue: a growable ring under a mutex, a condition variable. */
typedef struct {
    void *session;
    const char *data;
} qevent_t;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qevent_t *ring;
    size_t cap, head, len;
    bool waiting, stop;
    void (*cb)(void *, msgr_session *, const char *);
    void *ud;
} cvq_t;

static void cvq_init(cvq_t *q, size_t cap, void (*cb)(void *, msgr_session *, const char *),
                     void *ud) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->ring = xmalloc(sizeof(qevent_t) * cap);
    q->cap = cap;
    q->cb = cb;
    q->ud = ud;
}

static void cvq_push(cvq_t *q, void *session, const char *data) {
    pthread_mutex_lock(&q->mu);
    REQUIRE(q->len < q->cap);
    q->ring[(q->head + q->len++) % q->cap] = (qevent_t){session, data};
    if (q->waiting) pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Pops one event (false when stopped and empty). */
static bool cvq_pop(cvq_t *q, qevent_t *e, bool block) {
    pthread_mutex_lock(&q->mu);
    while (q->len == 0) {
        if (q->stop || !block) {
            pthread_mutex_unlock(&q->mu);
            return false;
        }
        q->waiting = true;
        pthread_cond_wait(&q->cv, &q->mu);
        q->waiting = false;
    }
    *e = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    pthread_mutex_unlock(&q->mu);
    return true;
}

static void *cvq_consumer(void *arg) {
    cvq_t *q = arg;
    qevent_t e;
    while (cvq_pop(q, &e, true)) q->cb(q->ud, e.session, e.data);
    return NULL;
}

static void cvq_stop(cvq_t *q) {
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

static void bench_refs(void) {
    long n = g_quick ? 1000 : 10000000;
    double *v = xmalloc(sizeof(double) * (size_t)g_reps);
    sink_t sink;
    memset(&sink, 0, sizeof sink);
    msgr_session *fake = (msgr_session *)(uintptr_t)0x1234;
    fprintf(stderr, "references\n");

    /* direct call through a function pointer, same arguments */
    void (*volatile fp)(void *, msgr_session *, const char *) = on_ctx;
    void (*volatile fps)(void *, msgr_session_manager *, LockStatus) = on_status;
    for (int r = 0; r < g_reps; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++) fp(&sink, fake, CTX64);
        v[r] = (double)(now_ns() - t0) / (double)n;
    }
    report("ref.direct_call.ctx_ns", "ns/call", v, g_reps);
    for (int r = 0; r < g_reps; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++) fps(&sink, NULL, LOCK_UNLOCKED);
        v[r] = (double)(now_ns() - t0) / (double)n;
    }
    report("ref.direct_call.status_ns", "ns/call", v, g_reps);

    /* one uncontended atomic read-modify-write (lock xadd on x86), the unit the library's
       locks and reference counts are paid in */
    static _Atomic uint64_t rmw_word;
    for (int r = 0; r < g_reps; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++) atomic_fetch_add_explicit(&rmw_word, 1, memory_order_acq_rel);
        v[r] = (double)(now_ns() - t0) / (double)n;
    }
    REQUIRE(atomic_load(&rmw_word) == (uint64_t)n * (uint64_t)g_reps);
    report("ref.atomic_rmw_ns", "ns/op", v, g_reps);

    /* GLib g_signal_emit, one handler */
    GObject *obj = g_object_new(bench_emitter_get_type(), NULL);
    g_signal_connect(obj, "context-data", G_CALLBACK(g_on_ctx), &sink);
    g_signal_connect(obj, "lock-status-changed", G_CALLBACK(g_on_status), &sink);
    long gn = n / 10;
    for (int r = 0; r < g_reps; r++) {
        uint64_t before = atomic_load(&sink.count);
        uint64_t t0 = now_ns();
        for (long i = 0; i < gn; i++) g_signal_emit(obj, sig_ctx, 0, fake, CTX64);
        v[r] = (double)(now_ns() - t0) / (double)gn;
        REQUIRE(atomic_load(&sink.count) - before == (uint64_t)gn);
    }
    report("ref.g_signal_emit.ctx_ns", "ns/emit", v, g_reps);
    for (int r = 0; r < g_reps; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < gn; i++) g_signal_emit(obj, sig_status, 0, (gint)LOCK_UNLOCKED);
        v[r] = (double)(now_ns() - t0) / (double)gn;
    }
    report("ref.g_signal_emit.status_ns", "ns/emit", v, g_reps);
    g_object_unref(obj);

    /* hand-rolled mutex queue, same thread: push a batch, then pop and call each */
    size_t qn = g_quick ? 1000 : 10000;
    cvq_t q;
    cvq_init(&q, qn, on_ctx, &sink);
    for (int r = 0; r < g_reps; r++) {
        uint64_t total = 0;
        for (int rounds = 0; rounds < 100; rounds++) {
            uint64_t t0 = now_ns();
            for (size_t i = 0; i < qn; i++) cvq_push(&q, fake, CTX64);
            qevent_t e;
            while (cvq_pop(&q, &e, false)) q.cb(q.ud, e.session, e.data);
            total += now_ns() - t0;
        }
        v[r] = (double)total / (double)(100 * qn);
    }
    report("ref.mutex_queue_same_thread_ns", "ns/event", v, g_reps);

    /* hand-rolled mutex+condvar queue to another thread: throughput */
    size_t tn = g_quick ? 1000 : 200000;
    free(q.ring);
    cvq_init(&q, tn, on_ctx, &sink);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, cvq_consumer, &q) == 0);
    for (int r = 0; r < g_reps; r++) {
        uint64_t start = atomic_load(&sink.count);
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < tn; i++) cvq_push(&q, fake, CTX64);
        wait_count(&sink, start + tn);
        v[r] = (double)tn / ((double)(now_ns() - t0) / 1e9);
    }
    report("ref.condvar_queue.throughput_eps", "events/s", v, g_reps);
    cvq_stop(&q);
    pthread_join(th, NULL);
    free(q.ring);

    /* latency, one at a time */
    cvq_init(&q, 16, on_ctx_latency, &sink);
    REQUIRE(pthread_create(&th, NULL, cvq_consumer, &q) == 0);
    int iters = g_quick ? 50 : 5000;
    double *s = xmalloc(sizeof(double) * (size_t)iters);
    double *p99 = xmalloc(sizeof(double) * (size_t)g_reps);
    usleep(10000);
    for (int r = 0; r < g_reps; r++) {
        for (int i = 0; i < iters; i++) {
            atomic_store(&sink.flag, 0);
            atomic_store(&sink.t0, now_ns());
            cvq_push(&q, fake, CTX64);
            wait_flag(&sink.flag);
            s[i] = (double)atomic_load(&sink.last_latency) / 1000.0;
        }
        v[r] = percentile(s, (size_t)iters, 50);
        p99[r] = percentile(s, (size_t)iters, 99);
    }
    report("ref.condvar_queue.latency_p50_us", "us", v, g_reps);
    report("ref.condvar_queue.latency_p99_us", "us", p99, g_reps);
    cvq_stop(&q);
    pthread_join(th, NULL);
    free(q.ring);
    free(v), free(s), free(p99);
}

/* ------------------------------------------------------------------------------------------ */
/* 3. Invitation round trip                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    _Atomic uint64_t t1;
    _Atomic int flag;
} accepted_t;

static void on_accepted(void *ud, msgr_session *s, const char *app_data) {
    accepted_t *a = ud;
    (void)s;
    (void)app_data;
    atomic_store(&a->t1, now_ns());
    atomic_store_explicit(&a->flag, 1, memory_order_release);
}

static void bench_invite_mode(int mode, const char *prefix, bool manual_clock) {
    int iters = g_quick ? 30 : (mode == MSGR_DISPATCH_MANUAL ? 5000 : 3000);
    double *p50 = xmalloc(sizeof(double) * (size_t)g_reps);
    double *p99 = xmalloc(sizeof(double) * (size_t)g_reps);
    double *rate = xmalloc(sizeof(double) * (size_t)g_reps);
    double *s = xmalloc(sizeof(double) * (size_t)iters);
    char key[128];
    msgr_service *svc = NULL;
    if (manual_clock) {
        /* the invitation timeout runs on a manual clock: no timer thread to wake per Invite */
        msgr_service_options o;
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
        o.manual_clock = true;
        OK(msgr_service_create(&o, &svc));
    } else {
        svc = new_service();
    }
    msgr_client *a = new_client(svc, "alice@bench.example", mode);
    msgr_client *b = new_client(svc, "bob@bench.example", mode);
    msgr_session_manager *ma = new_manager(a), *mb = new_manager(b);
    inbox_t inbox;
    memset(&inbox, 0, sizeof inbox);
    uint32_t ck;
    OK(msgr_session_manager_on_invitation(mb, on_invitation_keep, &inbox, NULL, &ck));
    OK(msgr_session_manager_register_application(ma, APP_GUID, "Bench", "http://bench.example/",
                                                 NULL, 0));
    bool manual = mode == MSGR_DISPATCH_MANUAL;
    if (manual) drain(a), drain(b);
    else usleep(50000);
    fprintf(stderr, "invitation round trip, %s mode\n", manual ? "manual" : "thread");
    accepted_t acc;
    for (int r = 0; r < g_reps; r++) {
        uint64_t l0 = now_ns();
        for (int i = 0; i < iters; i++) {
            msgr_session *sa;
            memset(&acc, 0, sizeof acc);
            OK(msgr_session_manager_create_session(ma, &sa));
            OK(msgr_session_set_application(sa, APP_GUID));
            OK(msgr_session_on_accepted(sa, on_accepted, &acc, NULL, &ck));
            size_t before = atomic_load(&inbox.count);
            uint64_t t0 = now_ns();
            OK(msgr_session_invite(sa, "bob@bench.example", NULL));
            if (manual) {
                uint32_t n;
                OK(msgr_client_dispatch(b, 0, &n)); /* OnInvitation -> Accept */
                OK(msgr_client_dispatch(a, 0, &n)); /* ... OnAccepted */
                REQUIRE(atomic_load(&acc.flag));
            } else {
                wait_flag(&acc.flag);
            }
            s[i] = (double)(atomic_load(&acc.t1) - t0) / 1000.0;
            REQUIRE(atomic_load(&inbox.count) == before + 1);
            OK(msgr_session_cancel(sa, S_OK, NULL));
            OK(msgr_session_release(sa));
            if (manual) drain(a), drain(b);
        }
        uint64_t l1 = now_ns();
        rate[r] = (double)iters / ((double)(l1 - l0) / 1e9);
        p50[r] = percentile(s, (size_t)iters, 50);
        p99[r] = percentile(s, (size_t)iters, 99);
    }
    snprintf(key, sizeof key, "%s.latency_p50_us", prefix);
    report(key, "us", p50, g_reps);
    snprintf(key, sizeof key, "%s.latency_p99_us", prefix);
    report(key, "us", p99, g_reps);
    snprintf(key, sizeof key, "%s.invitations_per_s", prefix);
    report(key, "inv/s", rate, g_reps);
    OK(msgr_session_manager_release(ma));
    OK(msgr_session_manager_release(mb));
    OK(msgr_client_destroy(a));
    OK(msgr_client_destroy(b));
    OK(msgr_service_destroy(svc));
    free(p50), free(p99), free(rate), free(s);
}

static void bench_invite(void) {
    bench_invite_mode(MSGR_DISPATCH_MANUAL, "invite.manual", false);
    bench_invite_mode(MSGR_DISPATCH_MANUAL, "invite.manual_clock", true);
    bench_invite_mode(MSGR_DISPATCH_THREAD, "invite.thread", false);
}

/* ------------------------------------------------------------------------------------------ */
/* 4. Call overhead                                                                           */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    msgr_session *s;
    long n;
    pthread_barrier_t *bar;
    double ns;
} getter_arg_t;

static void *getter_thread(void *p) {
    getter_arg_t *g = p;
    SESSION_STATE st;
    uint64_t acc = 0;
    pthread_barrier_wait(g->bar);
    uint64_t t0 = now_ns();
    for (long i = 0; i < g->n; i++) {
        msgr_session_get_state(g->s, &st);
        acc += (uint64_t)st;
    }
    g->ns = (double)(now_ns() - t0) / (double)g->n;
    REQUIRE(acc == (uint64_t)g->n * SS_READY);
    return NULL;
}

static void bench_getter(void) {
    long n = g_quick ? 1000 : 5000000;
    double *v = xmalloc(sizeof(double) * (size_t)g_reps);
    double *v2 = xmalloc(sizeof(double) * (size_t)g_reps);
    msgr_service *svc = new_service();
    msgr_client *c = new_client(svc, "gina@bench.example", MSGR_DISPATCH_MANUAL);
    msgr_session_manager *m = new_manager(c);
    msgr_session *s1, *s2;
    OK(msgr_session_manager_create_session(m, &s1));
    OK(msgr_session_manager_create_session(m, &s2));
    fprintf(stderr, "msgr_session_get_state\n");
    pthread_barrier_t bar;
    { /* warm-up, untimed: the first pass of a tight loop runs slower on this guest */
        SESSION_STATE st;
        for (long i = 0; i < n; i++) msgr_session_get_state(s1, &st);
    }
    for (int r = 0; r < g_reps; r++) {
        pthread_barrier_init(&bar, NULL, 1);
        getter_arg_t g = {s1, n, &bar, 0};
        getter_thread(&g);
        v[r] = g.ns;
        pthread_barrier_destroy(&bar);
    }
    report("getter.one_thread_ns", "ns/call", v, g_reps);
    for (int same = 1; same >= 0; same--) {
        for (int r = 0; r < g_reps; r++) {
            pthread_barrier_init(&bar, NULL, 2);
            getter_arg_t g1 = {s1, n, &bar, 0}, g2 = {same ? s1 : s2, n, &bar, 0};
            pthread_t t;
            REQUIRE(pthread_create(&t, NULL, getter_thread, &g2) == 0);
            getter_thread(&g1);
            pthread_join(t, NULL);
            v[r] = (g1.ns + g2.ns) / 2;
            v2[r] = 2e9 / v[r] / 1e6;
            pthread_barrier_destroy(&bar);
        }
        report(same ? "getter.two_threads_same_session_ns" : "getter.two_threads_two_sessions_ns",
               "ns/call", v, g_reps);
        report(same ? "getter.two_threads_same_session_mcps"
                    : "getter.two_threads_two_sessions_mcps",
               "Mcalls/s", v2, g_reps);
    }
    /* a stale handle: validation alone, E_HANDLE */
    msgr_session *stale = s2;
    OK(msgr_session_release(s2));
    for (int r = 0; r < g_reps; r++) {
        SESSION_STATE st;
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++) REQUIRE(msgr_session_get_state(stale, &st) == E_HANDLE);
        v[r] = (double)(now_ns() - t0) / (double)n;
    }
    report("getter.stale_handle_ns", "ns/call", v, g_reps);
    OK(msgr_session_release(s1));
    OK(msgr_session_manager_release(m));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
    free(v), free(v2);
}

/* ------------------------------------------------------------------------------------------ */
/* 6. Lock and Key                                                                            */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    char challenge[300];
    int got_challenge;
    int got_result;
    bool succeeded;
} lock_state_t;

static void on_challenge(void *ud, msgr_session_manager *m, int32_t cookie, const char *ch) {
    lock_state_t *l = ud;
    (void)m;
    (void)cookie;
    snprintf(l->challenge, sizeof l->challenge, "%s", ch);
    l->got_challenge = 1;
}

static void on_result(void *ud, msgr_session_manager *m, int32_t cookie, bool ok) {
    lock_state_t *l = ud;
    (void)m;
    (void)cookie;
    l->succeeded = ok;
    l->got_result = 1;
}

static void bench_lock(void) {
    int iters = g_quick ? 20 : 3000;
    double *rate = xmalloc(sizeof(double) * (size_t)g_reps);
    double *p50 = xmalloc(sizeof(double) * (size_t)g_reps);
    double *s = xmalloc(sizeof(double) * (size_t)iters);
    msgr_service *svc = new_service();
    OK(msgr_service_add_app_key(svc, "bench-app@example", "Q7bench-key-0123"));
    msgr_client *c = new_client(svc, "hank@bench.example", MSGR_DISPATCH_MANUAL);
    fprintf(stderr, "Lock and Key\n");
    for (int r = 0; r < g_reps; r++) {
        uint64_t l0 = now_ns();
        for (int i = 0; i < iters; i++) {
            lock_state_t ls;
            memset(&ls, 0, sizeof ls);
            uint32_t ck;
            msgr_session_manager *m = new_manager(c);
            OK(msgr_session_manager_on_lock_challenge(m, on_challenge, &ls, NULL, &ck));
            OK(msgr_session_manager_on_lock_result(m, on_result, &ls, NULL, &ck));
            drain(c);
            uint64_t t0 = now_ns();
            OK(msgr_session_manager_request_challenge(m, 42 + i));
            drain(c);
            REQUIRE(ls.got_challenge);
            char resp[MSGR_LOCK_RESPONSE_SIZE];
            OK(msgr_lock_compute_response(ls.challenge, "Q7bench-key-0123", resp));
            OK(msgr_session_manager_send_response(m, "bench-app@example", resp, 42 + i));
            drain(c);
            uint64_t t1 = now_ns();
            REQUIRE(ls.got_result && ls.succeeded);
            s[i] = (double)(t1 - t0) / 1000.0;
            OK(msgr_session_manager_release(m));
        }
        uint64_t l1 = now_ns();
        rate[r] = (double)iters / ((double)(l1 - l0) / 1e9);
        p50[r] = percentile(s, (size_t)iters, 50);
    }
    report("lock.exchanges_per_s", "exch/s", rate, g_reps);
    for (int r = 0; r < g_reps; r++) rate[r] = 1e6 / p50[r];
    report("lock.exchange_only_per_s", "exch/s", rate, g_reps);
    report("lock.exchange_p50_us", "us", p50, g_reps);
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
    free(rate), free(p50), free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* 5. Scale (run each in a fresh process: they read the resident set size)                     */
/* ------------------------------------------------------------------------------------------ */

static void bench_scale(long max) {
    long step = max >= 100000 ? 10000 : (max >= 10000 ? 1000 : 100);
    msgr_session **ss = xmalloc(sizeof(msgr_session *) * (size_t)max);
    msgr_service *svc = new_service();
    msgr_client *c = new_client(svc, "ivan@bench.example", MSGR_DISPATCH_MANUAL);
    msgr_session_manager *m = new_manager(c);
    drain(c);
    /* touch the handle array first so its pages do not count as sessions */
    memset(ss, 0, sizeof(msgr_session *) * (size_t)max);
    double base = rss_bytes();
    info("scale.rss_base_bytes", base);
    fprintf(stderr, "scale: up to %ld live sessions (base RSS %.1f MiB)\n", max, base / 1048576);
    uint64_t total0 = now_ns();
    for (long done = 0; done < max;) {
        uint64_t t0 = now_ns();
        long end = done + step;
        for (long i = done; i < end; i++) OK(msgr_session_manager_create_session(m, &ss[i]));
        uint64_t t1 = now_ns();
        done = end;
        double rss = rss_bytes();
        series("sessions.create_ns", (double)done, (double)(t1 - t0) / (double)step);
        series("sessions.rss_per_session", (double)done, (rss - base) / (double)done);
        series("sessions.rss_mib", (double)done, rss / 1048576.0);
        if (done == 10000 || done == 100000 || done == 1000000 || done == max) {
            char key[96];
            snprintf(key, sizeof key, "scale.sessions_%ld.rss_per_session_bytes", done);
            info(key, (rss - base) / (double)done);
            snprintf(key, sizeof key, "scale.sessions_%ld.rss_mib", done);
            info(key, rss / 1048576.0);
        }
    }
    uint64_t total1 = now_ns();
    info("scale.sessions_created_per_s", (double)max / ((double)(total1 - total0) / 1e9));
    SESSION_STATE st;
    uint64_t g0 = now_ns();
    for (long i = 0; i < max; i++) OK(msgr_session_get_state(ss[(i * 7919) % max], &st));
    info("scale.get_state_random_ns", (double)(now_ns() - g0) / (double)max);
    uint64_t r0 = now_ns();
    for (long i = 0; i < max; i++) OK(msgr_session_release(ss[i]));
    info("scale.sessions_released_per_s", (double)max / ((double)(now_ns() - r0) / 1e9));
    OK(msgr_session_manager_release(m));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
    free(ss);
}

static void bench_clients(long max) {
    long step = max >= 1000 ? max / 20 : 10;
    msgr_client **cs = xmalloc(sizeof(*cs) * (size_t)max);
    msgr_session_manager **ms = xmalloc(sizeof(*ms) * (size_t)max);
    memset(cs, 0, sizeof(*cs) * (size_t)max);
    memset(ms, 0, sizeof(*ms) * (size_t)max);
    msgr_service *svc = new_service();
    double base = rss_bytes();
    fprintf(stderr, "clients: up to %ld signed-in clients with one manager each\n", max);
    uint64_t total0 = now_ns();
    char name[64];
    for (long done = 0; done < max;) {
        uint64_t t0 = now_ns();
        long end = done + step;
        for (long i = done; i < end; i++) {
            snprintf(name, sizeof name, "user%06ld@bench.example", i);
            cs[i] = new_client(svc, name, MSGR_DISPATCH_MANUAL);
            ms[i] = new_manager(cs[i]);
            drain(cs[i]);
        }
        uint64_t t1 = now_ns();
        done = end;
        double rss = rss_bytes();
        series("clients.create_us", (double)done, (double)(t1 - t0) / (double)step / 1000.0);
        series("clients.rss_per_client", (double)done, (rss - base) / (double)done);
    }
    uint64_t total1 = now_ns();
    info("clients.count", (double)max);
    info("clients.created_per_s", (double)max / ((double)(total1 - total0) / 1e9));
    info("clients.rss_per_client_bytes", (rss_bytes() - base) / (double)max);
    /* one registry change reaches every client's manager */
    uint64_t e0 = now_ns();
    OK(msgr_session_manager_register_application(ms[0], APP_GUID2, "B", "u", NULL, 0));
    info("clients.register_app_fanout_us", (double)(now_ns() - e0) / 1000.0);
    uint64_t d0 = now_ns();
    for (long i = 0; i < max; i++) {
        OK(msgr_session_manager_release(ms[i]));
        OK(msgr_client_destroy(cs[i]));
    }
    info("clients.destroyed_per_s", (double)max / ((double)(now_ns() - d0) / 1e9));
    OK(msgr_service_destroy(svc));
    free(cs), free(ms);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    bool any = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            g_quick = true;
            g_reps = 3;
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            g_reps = atoi(argv[++i]);
            REQUIRE(g_reps > 0);
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    measure_timer();
    info("library.version_major", MSGR_VERSION_MAJOR);
    for (int i = 1; i < argc; i++) {
        const char *g = argv[i];
        if (g[0] == '-') {
            if (!strcmp(g, "--reps")) i++;
            continue;
        }
        bool all = !strcmp(g, "all");
        any = true;
        bool delivery = all || !strcmp(g, "delivery");
        if (delivery || !strcmp(g, "delivery-lock")) bench_manual_lock_events();
        if (delivery || !strcmp(g, "delivery-app")) bench_manual_registry_events();
        if (delivery || !strcmp(g, "delivery-ctx")) bench_manual_context_data();
        if (all || !strcmp(g, "refs")) bench_refs();
        if (all || !strcmp(g, "thread")) bench_thread_mode();
        if (all || !strcmp(g, "invite")) bench_invite();
        if (!strcmp(g, "invite-manual")) {
            bench_invite_mode(MSGR_DISPATCH_MANUAL, "invite.manual", false);
            bench_invite_mode(MSGR_DISPATCH_MANUAL, "invite.manual_clock", true);
        }
        if (!strcmp(g, "invite-thread")) bench_invite_mode(MSGR_DISPATCH_THREAD, "invite.thread", false);
        if (all || !strcmp(g, "getter")) bench_getter();
        if (all || !strcmp(g, "lock")) bench_lock();
        if (!strcmp(g, "scale"))
            bench_scale(i + 1 < argc && argv[i + 1][0] != '-' && atol(argv[i + 1]) > 0
                            ? atol(argv[++i])
                            : (g_quick ? 10000 : 1000000));
        if (!strcmp(g, "clients"))
            bench_clients(i + 1 < argc && argv[i + 1][0] != '-' && atol(argv[i + 1]) > 0
                              ? atol(argv[++i])
                              : (g_quick ? 200 : 10000));
    }
    if (!any) {
        fprintf(stderr,
                "usage: %s [--quick] [--reps N] all|delivery|refs|thread|invite|getter|lock|"
                "scale [N]|clients [N]...\n",
                argv[0]);
        return 1;
    }
    return 0;
}
