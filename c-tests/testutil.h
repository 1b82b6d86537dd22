/*
 * testutil.h: what the C tests of the object-level API share.
 *
 *  - checks that count failures and keep going (CHECK, CHECK_HR, CHECK_INT, CHECK_STR, ...),
 *    and tu_finish(), which returns the exit status. Same names and argument order as
 *    check.h (CHECK_HR(expected, call), CHECK_STR(got, expected)), but a failure is reported
 *    and the test goes on, so that one run shows every discrepancy; REQUIRE/REQUIRE_OK stop;
 *  - an event recorder: a thread-safe, growable list of lines such as
 *    "A:StateChanged(SS_READY)@SS_INVITATION" (tag, event with its arguments, and the
 *    session's State as the callback saw it) compared with EXPECT_LOG / EXPECT_SIDE;
 *  - user data for every registration, tracked so that tu_finish() can check that each
 *    destroy callback ran exactly once;
 *  - a fixture, tu_world: one embedded service, alice and bob signed in, one session
 *    manager each (recorded as "MA" and "MB"), invitations received by bob captured and
 *    recorded as "B", sessions created by alice recorded as "A".
 *
 * Every test file starts with `#define _POSIX_C_SOURCE 200809L` and includes this header
 * first. Everything here is `static inline`, so that unused helpers cost no warnings.
 */
#ifndef MSGRPRIV_TESTUTIL_H
#define MSGRPRIV_TESTUTIL_H

#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200809L
#error "define _POSIX_C_SOURCE 200809L before including testutil.h"
#endif

#include <msgrpriv.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    MSGR_HRESULT code;
    const char *name;
} tu_code_name;

static inline const char *tu_hr_name(MSGR_HRESULT hr) {
    static const tu_code_name names[] = {
        {S_OK, "S_OK"},
        {S_FALSE, "S_FALSE"},
        {E_NOTIMPL, "E_NOTIMPL"},
        {E_POINTER, "E_POINTER"},
        {E_FAIL, "E_FAIL"},
        {E_ILLEGAL_METHOD_CALL, "E_ILLEGAL_METHOD_CALL"},
        {E_UNEXPECTED, "E_UNEXPECTED"},
        {E_HANDLE, "E_HANDLE"},
        {E_OUTOFMEMORY, "E_OUTOFMEMORY"},
        {E_INVALIDARG, "E_INVALIDARG"},
        {E_INSUFFICIENT_BUFFER, "E_INSUFFICIENT_BUFFER"},
        {REGDB_E_WRITEREGDB, "REGDB_E_WRITEREGDB"},
        {MSGR_E_API_NOTINITIALIZED, "MSGR_E_API_NOTINITIALIZED"},
        {MSGR_E_API_LOCKED, "MSGR_E_API_LOCKED"},
        {MSGR_E_API_UNLOCK_FAILED, "MSGR_E_API_UNLOCK_FAILED"},
        {MSGR_E_API_ALREADY_UNLOCKED, "MSGR_E_API_ALREADY_UNLOCKED"},
        {MSGR_E_API_PENDING_UNLOCK, "MSGR_E_API_PENDING_UNLOCK"},
        {MSGR_E_API_DISABLED, "MSGR_E_API_DISABLED"},
        {SR_APPLICATION_LAUNCH_FAILED, "SR_APPLICATION_LAUNCH_FAILED"},
        {SR_INVITATION_DECLINED, "SR_INVITATION_DECLINED"},
        {SR_CONNECTION_FAILURE, "SR_CONNECTION_FAILURE"},
        {SR_AUTHENTICATION_FAILED, "SR_AUTHENTICATION_FAILED"},
        {SR_SESSION_NOT_READY, "SR_SESSION_NOT_READY"},
        {SR_SESSION_CANCELLED_LOCAL, "SR_SESSION_CANCELLED_LOCAL"},
        {SR_SESSION_CANCELLED_REMOTE, "SR_SESSION_CANCELLED_REMOTE"},
        {SR_SESSION_PROTOCOL_ERROR, "SR_SESSION_PROTOCOL_ERROR"},
        {SR_SESSION_TIMEOUT, "SR_SESSION_TIMEOUT"},
        {SR_CANCEL_BEFORE_CONNECT, "SR_CANCEL_BEFORE_CONNECT"},
        {SR_NOT_INVITEE, "SR_NOT_INVITEE"},
        {SR_NOT_INVITER, "SR_NOT_INVITER"},
        {SR_APP_ALREADY_REGISTERED, "SR_APP_ALREADY_REGISTERED"},
        {SR_APP_NOT_REGISTERED, "SR_APP_NOT_REGISTERED"},
        {SR_NOT_VALID_FOR_APP_INVITE, "SR_NOT_VALID_FOR_APP_INVITE"},
        {SR_APP_NOT_SPECIFIED, "SR_APP_NOT_SPECIFIED"},
        {SR_CONTEXT_DATA_OVER_LIMIT, "SR_CONTEXT_DATA_OVER_LIMIT"},
        {SR_NO_USER_INVITED, "SR_NO_USER_INVITED"},
        {SR_INVITED_SELF, "SR_INVITED_SELF"},
        {SR_SESSION_STATE_INVALID, "SR_SESSION_STATE_INVALID"},
        {SR_INVITATION_SEND_FAILURE, "SR_INVITATION_SEND_FAILURE"},
        {SR_CANCEL_SEND_FAILURE, "SR_CANCEL_SEND_FAILURE"},
        {SR_DECLINE_SEND_FAILURE, "SR_DECLINE_SEND_FAILURE"},
        {SR_ACCEPT_SEND_FAILURE, "SR_ACCEPT_SEND_FAILURE"},
        {SR_CONTEXT_DATA_SEND_FAILURE, "SR_CONTEXT_DATA_SEND_FAILURE"},
        {SR_NETWORK_CONFIG_FAILURE, "SR_NETWORK_CONFIG_FAILURE"},
        {SR_NET_NOT_SUPPORTED, "SR_NET_NOT_SUPPORTED"},
        {SR_REMOTE_NET_NOT_SUPPORTED, "SR_REMOTE_NET_NOT_SUPPORTED"},
        {SR_FIREWALL_NOT_SUPPORTED, "SR_FIREWALL_NOT_SUPPORTED"},
        {SR_OLD_SIP_STACK, "SR_OLD_SIP_STACK"},
        {MSGR_E_ALREADY_LOGGED_ON, "MSGR_E_ALREADY_LOGGED_ON"},
        {MSGR_E_USER_NOT_FOUND, "MSGR_E_USER_NOT_FOUND"},
        {MSGR_E_DISCONNECTED, "MSGR_E_DISCONNECTED"},
        {MSGR_E_NOT_LOGGED_ON, "MSGR_E_NOT_LOGGED_ON"},
        {MSGR_E_SESSION_TIMEOUT, "MSGR_E_SESSION_TIMEOUT"},
        {MSGR_E_SERVER_SHUTDOWN, "MSGR_E_SERVER_SHUTDOWN"},
    };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].code == hr) {
            return names[i].name;
        }
    }
    return NULL;
}

/* Writes the name of a code (or its hex value) to buf. */
static inline const char *tu_hr_fmt(char *buf, size_t len, MSGR_HRESULT hr) {
    const char *name = tu_hr_name(hr);
    if (name != NULL) {
        snprintf(buf, len, "%s", name);
    } else {
        snprintf(buf, len, "0x%08lX", (unsigned long)(uint32_t)hr);
    }
    return buf;
}

static inline const char *tu_state_name(int state) {
    switch (state) {
    case SS_UNKNOWN: return "SS_UNKNOWN";
    case SS_READY: return "SS_READY";
    case SS_INVITATION: return "SS_INVITATION";
    case SS_ACCEPTED: return "SS_ACCEPTED";
    case SS_CONNECTED: return "SS_CONNECTED";
    case SS_CANCELLED: return "SS_CANCELLED";
    case SS_DECLINED: return "SS_DECLINED";
    case SS_TERMINATED: return "SS_TERMINATED";
    default: return "SS_<invalid>";
    }
}

static inline const char *tu_lock_name(int status) {
    switch (status) {
    case LOCK_NOTINITIALIZED: return "LOCK_NOTINITIALIZED";
    case LOCK_INITIALIZED: return "LOCK_INITIALIZED";
    case LOCK_PENDINGRESULT: return "LOCK_PENDINGRESULT";
    case LOCK_UNLOCKED: return "LOCK_UNLOCKED";
    case LOCK_UNLOCKFAILED: return "LOCK_UNLOCKFAILED";
    case LOCK_DISABLED: return "LOCK_DISABLED";
    default: return "LOCK_<invalid>";
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Global state: failures and every registration's user data                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct tu_ud tu_ud;

typedef struct {
    pthread_mutex_t mu;
    int failures;
    long checks;
    tu_ud *uds;
    long ud_count;
} tu_state;

static inline tu_state *tu_g(void) {
    static tu_state g = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL, 0};
    return &g;
}

static inline void tu_vfailf(const char *file, int line, const char *fmt, va_list ap) {
    tu_state *g = tu_g();
    pthread_mutex_lock(&g->mu);
    g->failures++;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&g->mu);
}

static inline void tu_failf(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tu_vfailf(file, line, fmt, ap);
    va_end(ap);
}

static inline void tu_count_check(void) {
    tu_state *g = tu_g();
    pthread_mutex_lock(&g->mu);
    g->checks++;
    pthread_mutex_unlock(&g->mu);
}

static inline bool tu_check(bool ok, const char *what, const char *file, int line) {
    tu_count_check();
    if (!ok) {
        tu_failf(file, line, "%s", what);
    }
    return ok;
}

static inline bool tu_check_hr(MSGR_HRESULT got, MSGR_HRESULT want, const char *expr,
                               const char *file, int line) {
    char g[40], w[40];
    tu_count_check();
    if (got == want) {
        return true;
    }
    tu_failf(file, line, "%s\n      returned %s, expected %s", expr,
             tu_hr_fmt(g, sizeof g, got), tu_hr_fmt(w, sizeof w, want));
    return false;
}

static inline bool tu_check_int(long long got, long long want, const char *expr,
                                const char *file, int line) {
    tu_count_check();
    if (got == want) {
        return true;
    }
    tu_failf(file, line, "%s\n      is %lld, expected %lld", expr, got, want);
    return false;
}

static inline bool tu_check_str(const char *got, const char *want, const char *expr,
                                const char *file, int line) {
    tu_count_check();
    if (got != NULL && want != NULL && strcmp(got, want) == 0) {
        return true;
    }
    if (got == NULL && want == NULL) {
        return true;
    }
    tu_failf(file, line, "%s\n      is %s%s%s, expected %s%s%s", expr, got ? "\"" : "",
             got ? got : "NULL", got ? "\"" : "", want ? "\"" : "", want ? want : "NULL",
             want ? "\"" : "");
    return false;
}

#define CHECK(cond) tu_check((cond) ? true : false, #cond, __FILE__, __LINE__)
#define CHECK_HR(want, expr) tu_check_hr((expr), (want), #expr, __FILE__, __LINE__)
#define CHECK_OK(expr) CHECK_HR(S_OK, expr)
#define CHECK_INT(got, want) \
    tu_check_int((long long)(got), (long long)(want), #got, __FILE__, __LINE__)
#define CHECK_STR(got, want) tu_check_str((got), (want), #got, __FILE__, __LINE__)
/* A check whose failure makes the rest of the test meaningless. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!CHECK(cond)) {                                                   \
            fprintf(stderr, "%s:%d: giving up\n", __FILE__, __LINE__);        \
            exit(1);                                                          \
        }                                                                     \
    } while (0)
#define REQUIRE_OK(expr)                                                      \
    do {                                                                      \
        if (!CHECK_OK(expr)) {                                                \
            fprintf(stderr, "%s:%d: giving up\n", __FILE__, __LINE__);        \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

/* Runs one test function with a banner. */
#define RUN(fn)                                                               \
    do {                                                                      \
        int before_ = tu_g()->failures;                                       \
        fn();                                                                 \
        printf("%s %s\n", tu_g()->failures == before_ ? "ok  " : "FAIL", #fn); \
        fflush(stdout);                                                       \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Time                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static inline uint64_t tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void tu_sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* True under valgrind: CMake sets MSGRPRIV_TEST_UNDER=valgrind; by hand, valgrind's preload
 * library shows in LD_PRELOAD. */
static inline bool tu_under_valgrind(void) {
    const char *under = getenv("MSGRPRIV_TEST_UNDER");
    const char *preload = getenv("LD_PRELOAD");
    return (under != NULL && strcmp(under, "valgrind") == 0) ||
           (preload != NULL && strstr(preload, "vgpreload") != NULL);
}

/* How long tests wait for something that should happen promptly (valgrind is slow). */
#define TU_PATIENCE_MS 30000u

/* ------------------------------------------------------------------------------------------ */
/* Strings                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static inline char *tu_vstrf(const char *fmt, va_list ap) {
    va_list ap2;
    int n;
    char *s;
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        n = 0;
    }
    s = (char *)malloc((size_t)n + 1);
    if (s == NULL) {
        abort();
    }
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static inline char *tu_strf(const char *fmt, ...) {
    va_list ap;
    char *s;
    va_start(ap, fmt);
    s = tu_vstrf(fmt, ap);
    va_end(ap);
    return s;
}

/* A malloc'd string of n copies of the UTF-8 sequence `unit`. */
static inline char *tu_repeat(const char *unit, size_t n) {
    size_t u = strlen(unit), i;
    char *s = (char *)malloc(u * n + 1);
    if (s == NULL) {
        abort();
    }
    for (i = 0; i < n; i++) {
        memcpy(s + i * u, unit, u);
    }
    s[u * n] = '\0';
    return s;
}

/* For "%s%s%s": a quoted string or NULL. */
#define TU_Q(s) ((s) ? "\"" : ""), ((s) ? (s) : "NULL"), ((s) ? "\"" : "")

/* ------------------------------------------------------------------------------------------ */
/* The event log                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct tu_log {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **lines;
    size_t n, cap;
} tu_log;

static inline void tu_log_init(tu_log *log) {
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    log->lines = NULL;
    log->n = log->cap = 0;
}

static inline void tu_log_clear(tu_log *log) {
    size_t i;
    pthread_mutex_lock(&log->mu);
    for (i = 0; i < log->n; i++) {
        free(log->lines[i]);
    }
    log->n = 0;
    pthread_mutex_unlock(&log->mu);
}

static inline void tu_log_free(tu_log *log) {
    tu_log_clear(log);
    free(log->lines);
    log->lines = NULL;
    log->cap = 0;
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
}

static inline void tu_log_add_owned(tu_log *log, char *line) {
    pthread_mutex_lock(&log->mu);
    if (log->n == log->cap) {
        size_t cap = log->cap ? log->cap * 2 : 16;
        char **l = (char **)realloc(log->lines, cap * sizeof *l);
        if (l == NULL) {
            abort();
        }
        log->lines = l;
        log->cap = cap;
    }
    log->lines[log->n++] = line;
    pthread_cond_broadcast(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

static inline void tu_log_add(tu_log *log, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tu_log_add_owned(log, tu_vstrf(fmt, ap));
    va_end(ap);
}

/* True when `line` belongs to side `tag` ("A" matches "A:..."); NULL matches every line. */
static inline bool tu_log_match(const char *line, const char *tag) {
    size_t n;
    if (tag == NULL) {
        return true;
    }
    n = strlen(tag);
    return strncmp(line, tag, n) == 0 && line[n] == ':';
}

/* Number of lines of side `tag` (NULL: all) containing `needle` (NULL: any). */
static inline size_t tu_log_count(tu_log *log, const char *tag, const char *needle) {
    size_t i, c = 0;
    pthread_mutex_lock(&log->mu);
    for (i = 0; i < log->n; i++) {
        if (tu_log_match(log->lines[i], tag) &&
            (needle == NULL || strstr(log->lines[i], needle) != NULL)) {
            c++;
        }
    }
    pthread_mutex_unlock(&log->mu);
    return c;
}

/* Waits until at least `count` lines match (see tu_log_count), at most timeout_ms. */
static inline bool tu_log_wait(tu_log *log, const char *tag, const char *needle, size_t count,
                               unsigned timeout_ms) {
    uint64_t deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        if (tu_log_count(log, tag, needle) >= count) {
            return true;
        }
        if (tu_now_ms() >= deadline) {
            return false;
        }
        tu_sleep_ms(2);
    }
}

/* A copy (to free) of the last line of side `tag` (NULL: any), or NULL when there is none. */
static inline char *tu_log_last(tu_log *log, const char *tag) {
    size_t i;
    char *r = NULL;
    pthread_mutex_lock(&log->mu);
    for (i = log->n; i > 0; i--) {
        if (tu_log_match(log->lines[i - 1], tag)) {
            r = tu_strf("%s", log->lines[i - 1]);
            break;
        }
    }
    pthread_mutex_unlock(&log->mu);
    return r;
}

/* True when the last line of side `tag` starts with `prefix`. */
static inline bool tu_log_last_starts(tu_log *log, const char *tag, const char *prefix) {
    char *l = tu_log_last(log, tag);
    bool r = l != NULL && strncmp(l, prefix, strlen(prefix)) == 0;
    free(l);
    return r;
}

static inline void tu_log_dump(tu_log *log, const char *tag, const char *indent) {
    size_t i;
    for (i = 0; i < log->n; i++) {
        if (tu_log_match(log->lines[i], tag)) {
            fprintf(stderr, "%s%s\n", indent, log->lines[i]);
        }
    }
}

/* Compares the lines of side `tag` (NULL: all) with `want`; clears the log when `clear`. */
static inline bool tu_log_expect_ex(tu_log *log, const char *tag, const char *const *want,
                                    size_t nwant, bool clear, bool nostate, const char *file,
                                    int line) {
    size_t i, k = 0;
    bool ok = true;
    tu_count_check();
    pthread_mutex_lock(&log->mu);
    for (i = 0; i < log->n; i++) {
        const char *l = log->lines[i];
        if (!tu_log_match(l, tag)) {
            continue;
        }
        if (k >= nwant) {
            ok = false;
        } else if (nostate) {
            /* compare without the "@<state>" suffix */
            size_t n = strcspn(l, "@");
            if (strlen(want[k]) != n || strncmp(l, want[k], n) != 0) {
                ok = false;
            }
        } else if (strcmp(l, want[k]) != 0) {
            ok = false;
        }
        k++;
    }
    if (k != nwant) {
        ok = false;
    }
    if (!ok) {
        tu_state *g = tu_g();
        pthread_mutex_lock(&g->mu);
        g->failures++;
        fprintf(stderr, "%s:%d: FAIL: events%s%s differ\n    expected:\n", file, line,
                tag ? " of side " : "", tag ? tag : "");
        for (i = 0; i < nwant; i++) {
            fprintf(stderr, "      %s\n", want[i]);
        }
        fprintf(stderr, "    got:\n");
        tu_log_dump(log, tag, "      ");
        fflush(stderr);
        pthread_mutex_unlock(&g->mu);
    }
    pthread_mutex_unlock(&log->mu);
    if (clear) {
        tu_log_clear(log);
    }
    return ok;
}

static inline bool tu_log_expect(tu_log *log, const char *tag, const char *const *want,
                                 size_t nwant, bool clear, const char *file, int line) {
    return tu_log_expect_ex(log, tag, want, nwant, clear, false, file, line);
}

#define TU_ARR(...) ((const char *const[]){__VA_ARGS__})
#define TU_NARGS(...) (sizeof(TU_ARR(__VA_ARGS__)) / sizeof(const char *))
/* The whole log is exactly these lines, in this order; then the log is cleared. */
#define EXPECT_LOG(log, ...) \
    tu_log_expect((log), NULL, TU_ARR(__VA_ARGS__), TU_NARGS(__VA_ARGS__), true, __FILE__, __LINE__)
/* The lines of one side ("A" for "A:...") are exactly these; the log is kept. */
#define EXPECT_SIDE(log, tag, ...) \
    tu_log_expect((log), (tag), TU_ARR(__VA_ARGS__), TU_NARGS(__VA_ARGS__), false, __FILE__, __LINE__)
/* Like EXPECT_SIDE, but the lines are compared without their "@<state>" suffix (for thread
 * mode, where the state seen by a callback depends on timing). */
#define EXPECT_SIDE_NOSTATE(log, tag, ...) \
    tu_log_expect_ex((log), (tag), TU_ARR(__VA_ARGS__), TU_NARGS(__VA_ARGS__), false, true, __FILE__, __LINE__)
#define EXPECT_SIDE_EMPTY(log, tag) tu_log_expect((log), (tag), NULL, 0, false, __FILE__, __LINE__)
#define EXPECT_EMPTY(log) tu_log_expect((log), NULL, NULL, 0, true, __FILE__, __LINE__)

/* ------------------------------------------------------------------------------------------ */
/* Registration user data                                                                     */
/* ------------------------------------------------------------------------------------------ */

struct tu_world;

struct tu_ud {
    tu_ud *next;
    int destroyed; /* times the destroy callback ran (must end as 1) */
    int calls;     /* times the event callback ran */
    char tag[32];
    tu_log *log;
    /* OnInvitation of the fixture: capture and record the received session */
    struct tu_world *world;
    const char *session_tag;
    bool set_handled;
    /* free use by tests */
    uint32_t cookie;
    void *obj;
    void *extra;
    int ival;
    char text[128];
};

/* User data for one registration; freed by tu_finish(). */
static inline tu_ud *tu_ud_new(tu_log *log, const char *tag) {
    tu_state *g = tu_g();
    tu_ud *u = (tu_ud *)calloc(1, sizeof *u);
    if (u == NULL) {
        abort();
    }
    u->log = log;
    snprintf(u->tag, sizeof u->tag, "%s", tag ? tag : "");
    pthread_mutex_lock(&g->mu);
    u->next = g->uds;
    g->uds = u;
    g->ud_count++;
    pthread_mutex_unlock(&g->mu);
    return u;
}

/* The destroy callback of every registration made by the tests. */
static inline void tu_destroy(void *ud) {
    tu_state *g = tu_g();
    pthread_mutex_lock(&g->mu);
    ((tu_ud *)ud)->destroyed++;
    pthread_mutex_unlock(&g->mu);
}

static inline int tu_destroyed(tu_ud *u) {
    int d;
    tu_state *g = tu_g();
    pthread_mutex_lock(&g->mu);
    d = u->destroyed;
    pthread_mutex_unlock(&g->mu);
    return d;
}

static inline void tu_called(tu_ud *u) {
    tu_state *g = tu_g();
    pthread_mutex_lock(&g->mu);
    u->calls++;
    pthread_mutex_unlock(&g->mu);
}

static inline int tu_calls(tu_ud *u) {
    int d;
    tu_state *g = tu_g();
    pthread_mutex_lock(&g->mu);
    d = u->calls;
    pthread_mutex_unlock(&g->mu);
    return d;
}

/* Checks that every destroy callback ran exactly once, frees all user data, and returns the
 * exit status of the test program. Call it last, after every object is gone. */
static inline int tu_finish(void) {
    tu_state *g = tu_g();
    tu_ud *u, *next;
    long bad = 0, n = 0;
    for (u = g->uds; u != NULL; u = next) {
        next = u->next;
        n++;
        if (u->destroyed != 1) {
            if (bad < 20) {
                fprintf(stderr, "FAIL: destroy callback of a registration tagged \"%s\" ran %d times\n",
                        u->tag, u->destroyed);
            }
            bad++;
        }
        free(u);
    }
    g->uds = NULL;
    if (bad) {
        fprintf(stderr, "FAIL: %ld of %ld destroy callbacks did not run exactly once\n", bad, n);
        g->failures++;
    }
    if (g->failures) {
        fprintf(stderr, "%d check(s) failed (of %ld)\n", g->failures, g->checks);
        return 1;
    }
    printf("all %ld checks passed; %ld destroy callbacks ran once each\n", g->checks, n);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Recording session events                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Adds "<tag>:<event>@<State now>" to the registration's log. */
static inline void tu_sline(void *ud, msgr_session *s, const char *fmt, ...) {
    tu_ud *u = (tu_ud *)ud;
    SESSION_STATE st = SS_UNKNOWN;
    MSGR_HRESULT hr = msgr_session_get_state(s, &st);
    va_list ap;
    char *body;
    tu_called(u);
    /* The callback gets the handle the application registered on. */
    if (u->obj != NULL && (void *)s != u->obj) {
        tu_failf(__FILE__, __LINE__, "a session callback got handle %p, registered on %p",
                 (void *)s, u->obj);
    }
    va_start(ap, fmt);
    body = tu_vstrf(fmt, ap);
    va_end(ap);
    if (hr == S_OK) {
        tu_log_add(u->log, "%s:%s@%s", u->tag, body, tu_state_name((int)st));
    } else {
        char h[40];
        tu_log_add(u->log, "%s:%s@<get_state: %s>", u->tag, body, tu_hr_fmt(h, sizeof h, hr));
    }
    free(body);
}

static inline void tu_rec_before_app_launch(void *ud, msgr_session *s, bool *enable) {
    tu_sline(ud, s, "BeforeAppLaunch(%s)", enable == NULL ? "NULL" : *enable ? "true" : "false");
}
static inline void tu_rec_accepted(void *ud, msgr_session *s, const char *d) {
    tu_sline(ud, s, "Accepted(%s%s%s)", TU_Q(d));
}
static inline void tu_rec_app_not_present(void *ud, msgr_session *s, const char *name,
                                          const char *url) {
    tu_sline(ud, s, "AppNotPresent(%s%s%s,%s%s%s)", TU_Q(name), TU_Q(url));
}
static inline void tu_rec_cancelled(void *ud, msgr_session *s, const char *d) {
    tu_sline(ud, s, "Cancelled(%s%s%s)", TU_Q(d));
}
static inline void tu_rec_context_data(void *ud, msgr_session *s, const char *d) {
    tu_sline(ud, s, "ContextData(%s%s%s)", TU_Q(d));
}
static inline void tu_rec_declined(void *ud, msgr_session *s, const char *d) {
    tu_sline(ud, s, "Declined(%s%s%s)", TU_Q(d));
}
static inline void tu_rec_ready_to_launch(void *ud, msgr_session *s) {
    tu_sline(ud, s, "ReadyToLaunch");
}
static inline void tu_rec_send_error(void *ud, msgr_session *s, MSGR_HRESULT hr) {
    char h[40];
    tu_sline(ud, s, "SendError(%s)", tu_hr_fmt(h, sizeof h, hr));
}
static inline void tu_rec_state_changed(void *ud, msgr_session *s, SESSION_STATE previous) {
    tu_sline(ud, s, "StateChanged(%s)", tu_state_name((int)previous));
}
static inline void tu_rec_termination(void *ud, msgr_session *s, MSGR_HRESULT hr,
                                      const char *d) {
    char h[40];
    tu_sline(ud, s, "Termination(%s,%s%s%s)", tu_hr_fmt(h, sizeof h, hr), TU_Q(d));
}

/* Registers a recorder for each of the ten session events; returns how many succeeded. */
static inline int tu_watch_session(tu_log *log, msgr_session *s, const char *tag) {
    int ok = 0;
    uint32_t c;
#define TU_SREG(fn, cb)                                                                  \
    do {                                                                                 \
        tu_ud *u_ = tu_ud_new(log, tag);                                                 \
        u_->obj = s;                                                                     \
        if (CHECK_OK(fn(s, cb, u_, tu_destroy, &c))) {                                   \
            u_->cookie = c;                                                              \
            ok++;                                                                        \
        }                                                                                \
    } while (0)
    TU_SREG(msgr_session_before_app_launch, tu_rec_before_app_launch);
    TU_SREG(msgr_session_on_accepted, tu_rec_accepted);
    TU_SREG(msgr_session_on_app_not_present, tu_rec_app_not_present);
    TU_SREG(msgr_session_on_cancelled, tu_rec_cancelled);
    TU_SREG(msgr_session_on_context_data, tu_rec_context_data);
    TU_SREG(msgr_session_on_declined, tu_rec_declined);
    TU_SREG(msgr_session_on_ready_to_launch, tu_rec_ready_to_launch);
    TU_SREG(msgr_session_on_send_error, tu_rec_send_error);
    TU_SREG(msgr_session_on_state_changed, tu_rec_state_changed);
    TU_SREG(msgr_session_on_termination, tu_rec_termination);
#undef TU_SREG
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Recording session manager events                                                           */
/* ------------------------------------------------------------------------------------------ */

static inline void tu_mline(void *ud, const char *fmt, ...) {
    tu_ud *u = (tu_ud *)ud;
    va_list ap;
    char *body;
    tu_called(u);
    va_start(ap, fmt);
    body = tu_vstrf(fmt, ap);
    va_end(ap);
    tu_log_add(u->log, "%s:%s", u->tag, body);
    free(body);
}

/* The callback gets the handle the application registered on. */
static inline void tu_check_manager(void *ud, msgr_session_manager *m) {
    tu_ud *u = (tu_ud *)ud;
    if (u->obj != NULL && (void *)m != u->obj) {
        tu_failf(__FILE__, __LINE__, "a manager callback got handle %p, registered on %p",
                 (void *)m, u->obj);
    }
}

static inline void tu_rec_app_registered(void *ud, msgr_session_manager *m, const char *guid) {
    tu_check_manager(ud, m);
    tu_mline(ud, "AppRegistered(%s)", guid ? guid : "NULL");
}
static inline void tu_rec_app_unregistered(void *ud, msgr_session_manager *m, const char *guid) {
    tu_check_manager(ud, m);
    tu_mline(ud, "AppUnregistered(%s)", guid ? guid : "NULL");
}
static inline void tu_rec_app_shutdown(void *ud, msgr_session_manager *m) {
    tu_check_manager(ud, m);
    tu_mline(ud, "AppShutdown");
}
static inline void tu_world_received(struct tu_world *w, msgr_session *s, const char *tag);
static inline void tu_rec_invitation(void *ud, msgr_session_manager *m, msgr_session *s,
                                     const char *app_data, bool *handled) {
    tu_ud *u = (tu_ud *)ud;
    tu_check_manager(ud, m);
    tu_mline(ud, "Invitation(%s%s%s)", TU_Q(app_data));
    if (handled == NULL) {
        tu_failf(__FILE__, __LINE__, "OnInvitation: handled is NULL");
    } else if (*handled) {
        /* Recorders are registered first: they see the documented initial value. */
        tu_failf(__FILE__, __LINE__, "OnInvitation: handled is true on entry");
    }
    if (u->world != NULL) {
        tu_world_received(u->world, s, u->session_tag);
    }
    if (u->set_handled && handled != NULL) {
        *handled = true;
    }
}
static inline void tu_rec_lock_challenge(void *ud, msgr_session_manager *m, int32_t cookie,
                                         const char *challenge) {
    tu_ud *u = (tu_ud *)ud;
    tu_check_manager(ud, m);
    if (challenge != NULL) {
        snprintf(u->text, sizeof u->text, "%s", challenge);
    }
    tu_mline(ud, "LockChallenge(%ld)", (long)cookie);
}
static inline void tu_rec_lock_enable(void *ud, msgr_session_manager *m, bool enabled) {
    tu_check_manager(ud, m);
    tu_mline(ud, "LockEnable(%s)", enabled ? "true" : "false");
}
static inline void tu_rec_lock_result(void *ud, msgr_session_manager *m, int32_t cookie,
                                      bool succeeded) {
    tu_check_manager(ud, m);
    tu_mline(ud, "LockResult(%ld,%s)", (long)cookie, succeeded ? "true" : "false");
}
static inline void tu_rec_lock_status_changed(void *ud, msgr_session_manager *m,
                                              LockStatus status) {
    tu_check_manager(ud, m);
    tu_mline(ud, "LockStatusChanged(%s)", tu_lock_name((int)status));
}

/* The recorders of one manager; `challenge` is where OnLockChallenge left its challenge. */
typedef struct {
    tu_ud *invitation;
    tu_ud *challenge;
} tu_manager_watch;

/* Registers a recorder for each of the eight manager events. */
static inline tu_manager_watch tu_watch_manager(tu_log *log, msgr_session_manager *m,
                                                const char *tag) {
    tu_manager_watch w;
    uint32_t c;
    tu_ud *u;
#define TU_MREG(fn, cb)                                                                  \
    do {                                                                                 \
        u = tu_ud_new(log, tag);                                                         \
        u->obj = m;                                                                      \
        if (CHECK_OK(fn(m, cb, u, tu_destroy, &c))) {                                    \
            u->cookie = c;                                                               \
        }                                                                                \
    } while (0)
    TU_MREG(msgr_session_manager_on_app_registered, tu_rec_app_registered);
    TU_MREG(msgr_session_manager_on_app_unregistered, tu_rec_app_unregistered);
    TU_MREG(msgr_session_manager_on_app_shutdown, tu_rec_app_shutdown);
    TU_MREG(msgr_session_manager_on_invitation, tu_rec_invitation);
    w.invitation = u;
    TU_MREG(msgr_session_manager_on_lock_challenge, tu_rec_lock_challenge);
    w.challenge = u;
    TU_MREG(msgr_session_manager_on_lock_enable, tu_rec_lock_enable);
    TU_MREG(msgr_session_manager_on_lock_result, tu_rec_lock_result);
    TU_MREG(msgr_session_manager_on_lock_status_changed, tu_rec_lock_status_changed);
#undef TU_MREG
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* Getters                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef MSGR_HRESULT (*tu_session_str_getter)(msgr_session *, char *, size_t, size_t *);

/* Calls a string getter with a large buffer; checks the code and, on success, the value and
 * that `needed` is strlen + 1. */
static inline bool tu_check_sstr(tu_session_str_getter get, msgr_session *s, MSGR_HRESULT want_hr,
                                 const char *want, const char *expr, const char *file, int line) {
    char buf[2048];
    size_t needed = 0;
    MSGR_HRESULT hr;
    bool ok;
    memset(buf, 0x5A, sizeof buf);
    hr = get(s, buf, sizeof buf, &needed);
    ok = tu_check_hr(hr, want_hr, expr, file, line);
    if (ok && MSGR_SUCCEEDED(hr) && want != NULL) {
        ok = tu_check_str(buf, want, expr, file, line);
        ok = tu_check_int((long long)needed, (long long)strlen(buf) + 1, "needed", file, line) && ok;
    }
    return ok;
}
/* CHECK_SSTR(msgr_session_get_user, s, "bob@example.com"): S_OK and that value. */
#define CHECK_SSTR(get, s, want) tu_check_sstr((get), (s), S_OK, (want), #get, __FILE__, __LINE__)
/* CHECK_SSTR_HR(msgr_session_get_user, s, SR_NO_USER_INVITED, NULL) */
#define CHECK_SSTR_HR(get, s, hr, want) tu_check_sstr((get), (s), (hr), (want), #get, __FILE__, __LINE__)

static inline int tu_get_state(msgr_session *s) {
    SESSION_STATE st = SS_UNKNOWN;
    if (msgr_session_get_state(s, &st) != S_OK) {
        return -1;
    }
    return (int)st;
}
#define CHECK_STATE(s, want) \
    tu_check_int(tu_get_state(s), (want), "state of " #s, __FILE__, __LINE__)

static inline int tu_lock_status(msgr_session_manager *m) {
    LockStatus st = LOCK_NOTINITIALIZED;
    if (msgr_session_manager_get_lock_status(m, &st) != S_OK) {
        return -1;
    }
    return (int)st;
}
#define CHECK_LOCK(m, want) \
    tu_check_int(tu_lock_status(m), (want), "lock status of " #m, __FILE__, __LINE__)

/* The session's SessionID in buf (39 bytes); "" on failure. */
static inline const char *tu_sid(msgr_session *s, char *buf, size_t len) {
    size_t needed;
    if (msgr_session_get_session_id(s, buf, len, &needed) != S_OK) {
        buf[0] = '\0';
    }
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* The fixture                                                                                */
/* ------------------------------------------------------------------------------------------ */

#define TU_APP "{11111111-2222-3333-4444-555555555555}"
#define TU_APP2 "{ABCDEF01-2345-6789-ABCD-EF0123456789}"
#define TU_APP2_LOWER "{abcdef01-2345-6789-abcd-ef0123456789}"
#define TU_APP_NAME "Test App"
#define TU_APP_URL "http://example.com/app"
#define TU_APP_ID "msgrpriv-test-app"
#define TU_APP_KEY "s3cret-key"
#define TU_ALICE "alice@example.com"
#define TU_BOB "bob@example.com"
#define TU_MAX_SESSIONS 1024

enum {
    TU_LOCK_AND_KEY = 1, /* the service holds an app key; both managers unlocked */
    TU_THREAD = 2,       /* clients in thread dispatch mode */
    TU_NO_APP = 4        /* do not register TU_APP */
};

typedef struct tu_world {
    msgr_service *svc;
    msgr_client *a, *b;
    msgr_session_manager *ma, *mb;
    tu_manager_watch wa, wb;
    tu_log log;
    int flags;
    pthread_mutex_t mu;
    msgr_session *owned[TU_MAX_SESSIONS]; /* one reference each, released at cleanup */
    size_t nowned;
    msgr_session *received[TU_MAX_SESSIONS]; /* invitee sessions (also in owned) */
    size_t nreceived;
} tu_world;

static inline void tu_world_own(tu_world *w, msgr_session *s) {
    pthread_mutex_lock(&w->mu);
    if (w->nowned < TU_MAX_SESSIONS) {
        w->owned[w->nowned++] = s;
    } else {
        tu_failf(__FILE__, __LINE__, "too many sessions in the fixture");
    }
    pthread_mutex_unlock(&w->mu);
}

/* OnInvitation of the fixture: keep a reference and record the session's events. */
static inline void tu_world_received(tu_world *w, msgr_session *s, const char *tag) {
    if (!CHECK_OK(msgr_session_add_ref(s))) {
        return;
    }
    tu_watch_session(&w->log, s, tag ? tag : "B");
    tu_world_own(w, s);
    pthread_mutex_lock(&w->mu);
    if (w->nreceived < TU_MAX_SESSIONS) {
        w->received[w->nreceived++] = s;
    }
    pthread_mutex_unlock(&w->mu);
}

static inline msgr_session *tu_world_last_received(tu_world *w) {
    msgr_session *s = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->nreceived > 0) {
        s = w->received[w->nreceived - 1];
    }
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* Manual mode: dispatches both clients until neither has anything left. */
static inline void tu_pump(tu_world *w) {
    int rounds;
    for (rounds = 0; rounds < 10000; rounds++) {
        uint32_t na = 0, nb = 0;
        CHECK_OK(msgr_client_dispatch(w->a, 0, &na));
        CHECK_OK(msgr_client_dispatch(w->b, 0, &nb));
        if (na == 0 && nb == 0) {
            return;
        }
    }
    tu_failf(__FILE__, __LINE__, "tu_pump: events keep coming");
}

/* Dispatches one manual-mode client until it has nothing left. */
static inline void tu_pump1(msgr_client *c) {
    uint32_t n;
    int rounds;
    for (rounds = 0; rounds < 10000; rounds++) {
        n = 0;
        CHECK_OK(msgr_client_dispatch(c, 0, &n));
        if (n == 0) {
            return;
        }
    }
}

/* Unlocks a manager through Lock and Key; `chal` is the recorder holding the challenge (see
 * tu_watch_manager). In thread mode the events are waited for in `log`. */
static inline void tu_unlock(tu_log *log, msgr_client *c, msgr_session_manager *m,
                             tu_manager_watch *watch, const char *tag, int32_t cookie, bool thread) {
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    char *want = tu_strf("%s:LockChallenge(%ld)", tag, (long)cookie);
    char *want2 = tu_strf("%s:LockStatusChanged(LOCK_UNLOCKED)", tag);
    REQUIRE_OK(msgr_session_manager_request_challenge(m, cookie));
    if (thread) {
        CHECK(tu_log_wait(log, tag, want, 1, TU_PATIENCE_MS));
    } else {
        tu_pump1(c);
    }
    REQUIRE(tu_log_count(log, tag, want) >= 1);
    REQUIRE_OK(msgr_lock_compute_response(watch->challenge->text, TU_APP_KEY, resp));
    REQUIRE_OK(msgr_session_manager_send_response(m, TU_APP_ID, resp, cookie));
    if (thread) {
        CHECK(tu_log_wait(log, tag, want2, 1, TU_PATIENCE_MS));
    } else {
        tu_pump1(c);
    }
    CHECK_LOCK(m, LOCK_UNLOCKED);
    free(want);
    free(want2);
}

/* Sets up the world: service (manual clock unless opts say otherwise), alice and bob, their
 * managers recorded as "MA"/"MB", bob's invitations captured, TU_APP registered (no path)
 * unless TU_NO_APP. The log is empty on return. */
static inline void tu_world_init_opts(tu_world *w, int flags, const msgr_service_options *opts) {
    msgr_service_options o;
    int32_t mode = (flags & TU_THREAD) ? MSGR_DISPATCH_THREAD : MSGR_DISPATCH_MANUAL;
    bool thread = (flags & TU_THREAD) != 0;
    memset(w, 0, sizeof *w);
    w->flags = flags;
    tu_log_init(&w->log);
    pthread_mutex_init(&w->mu, NULL);
    if (opts == NULL) {
        memset(&o, 0, sizeof o);
        o.struct_size = (uint32_t)sizeof o;
        o.manual_clock = true;
        opts = &o;
    }
    REQUIRE_OK(msgr_service_create(opts, &w->svc));
    if (flags & TU_LOCK_AND_KEY) {
        REQUIRE_OK(msgr_service_add_app_key(w->svc, TU_APP_ID, TU_APP_KEY));
    }
    REQUIRE_OK(msgr_client_create(w->svc, TU_ALICE, mode, &w->a));
    REQUIRE_OK(msgr_client_create(w->svc, TU_BOB, mode, &w->b));
    REQUIRE_OK(msgr_session_manager_create(w->a, &w->ma));
    REQUIRE_OK(msgr_session_manager_create(w->b, &w->mb));
    w->wa = tu_watch_manager(&w->log, w->ma, "MA");
    w->wb = tu_watch_manager(&w->log, w->mb, "MB");
    w->wb.invitation->world = w;
    w->wb.invitation->session_tag = "B";
    w->wb.invitation->set_handled = true;
    /* In thread mode the creation events may be delivered before the recorders exist; the
     * status is set at creation already. */
    if (!thread) {
        tu_pump(w);
    }
    if (flags & TU_LOCK_AND_KEY) {
        tu_unlock(&w->log, w->a, w->ma, &w->wa, "MA", 1001, thread);
        tu_unlock(&w->log, w->b, w->mb, &w->wb, "MB", 2002, thread);
    } else {
        CHECK_LOCK(w->ma, LOCK_DISABLED);
        CHECK_LOCK(w->mb, LOCK_DISABLED);
    }
    if (!(flags & TU_NO_APP)) {
        REQUIRE_OK(msgr_session_manager_register_application(w->ma, TU_APP, TU_APP_NAME,
                                                             TU_APP_URL, "", 0));
        if (thread) {
            CHECK(tu_log_wait(&w->log, "MA", "AppRegistered", 1, TU_PATIENCE_MS));
            CHECK(tu_log_wait(&w->log, "MB", "AppRegistered", 1, TU_PATIENCE_MS));
        } else {
            tu_pump(w);
        }
    }
    tu_log_clear(&w->log);
}

static inline void tu_world_init(tu_world *w, int flags) {
    tu_world_init_opts(w, flags, NULL);
}

/* Releases every session the fixture holds, the managers, the clients and the service. */
static inline void tu_world_cleanup(tu_world *w) {
    size_t i;
    for (i = 0; i < w->nowned; i++) {
        CHECK_OK(msgr_session_release(w->owned[i]));
    }
    w->nowned = w->nreceived = 0;
    CHECK_OK(msgr_session_manager_release(w->ma));
    CHECK_OK(msgr_session_manager_release(w->mb));
    CHECK_OK(msgr_client_destroy(w->a));
    CHECK_OK(msgr_client_destroy(w->b));
    CHECK_OK(msgr_service_destroy(w->svc));
    tu_log_free(&w->log);
    pthread_mutex_destroy(&w->mu);
}

/* A session created by alice's manager, recorded as "A", TU_APP set; owned by the fixture. */
static inline msgr_session *tu_session(tu_world *w) {
    msgr_session *s = NULL;
    REQUIRE_OK(msgr_session_manager_create_session(w->ma, &s));
    tu_world_own(w, s);
    tu_watch_session(&w->log, s, "A");
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    return s;
}

/* Alice invites bob ("hello"); returns both sides; the log is emptied (manual mode). */
static inline void tu_invited(tu_world *w, msgr_session **a, msgr_session **b) {
    size_t before = w->nreceived;
    *a = tu_session(w);
    REQUIRE_OK(msgr_session_invite(*a, TU_BOB, "hello"));
    tu_pump(w);
    REQUIRE(w->nreceived == before + 1);
    *b = tu_world_last_received(w);
    tu_log_clear(&w->log);
}

/* Alice invites bob and bob accepts ("yes"); both sides SS_CONNECTED; the log is emptied. */
static inline void tu_connected(tu_world *w, msgr_session **a, msgr_session **b) {
    tu_invited(w, a, b);
    REQUIRE_OK(msgr_session_accept(*b, "yes"));
    tu_pump(w);
    CHECK_STATE(*a, SS_CONNECTED);
    CHECK_STATE(*b, SS_CONNECTED);
    tu_log_clear(&w->log);
}

#endif /* MSGRPRIV_TESTUTIL_H */
