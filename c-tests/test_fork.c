/*
 * fork() while the library is busy: the header's rule for a child process (see "Threads" at
 * the top of msgrpriv.h).
 *
 * The parent runs two thread-mode clients, alice and bob, on a service whose registry is a
 * file. Two pump threads keep them busy: one invites bob over and over (bob's thread declines
 * from OnInvitation, handles are created and released all the time), the other registers and
 * unregisters an application (the registry file's lock, OnAppRegistered/OnAppUnRegistered
 * delivered by both clients' threads). Meanwhile the main thread forks CHILDREN children, a
 * few milliseconds apart. Each child, with its stderr sent to a file:
 *
 *  - gets MSGR_E_SERVER_SHUTDOWN from calls on every object it inherited (service, clients,
 *    managers, a session), while handles released before the fork still give E_HANDLE;
 *  - releases and destroys every inherited handle: S_OK, and no panic message on stderr;
 *  - creates a new service on the same registry file, two thread-mode clients and a manual
 *    one, registers an application, invites, accepts from the invitee's thread and sees the
 *    events delivered (OnAppRegistered, OnAccepted; the manual client's event descriptor
 *    becomes readable and msgr_client_dispatch() delivers), then destroys everything;
 *  - exits with 0 when every check passed.
 *
 * The parent waits for each child with a deadline (children that are still running then are
 * killed and reported as hung), checks the exit statuses and the children's stderr, then
 * checks that its own objects still work (the registry is not left locked by a child).
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under valgrind, memcheck's leak check at a child's exit reports as definitely lost what only
 * the parent's other threads pointed to (their stacks are gone in the child): the inherited
 * memory the rule leaks. So under valgrind (tu_under_valgrind(), MSGRPRIV_TEST_UNDER) the
 * parent accepts a child's exit status 99 (--error-exitcode), which only the leak check can
 * give: a child counts memcheck's other errors itself before exiting and fails with 1. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CHILD_MEMCHECK_ERRORS() (RUNNING_ON_VALGRIND ? (int)VALGRIND_COUNT_ERRORS : 0)
#endif
#endif
#if !defined(CHILD_MEMCHECK_ERRORS)
#define CHILD_MEMCHECK_ERRORS() 0
#endif
#define VALGRIND_ERROR_EXITCODE 99

#define CHILDREN 10
#define APP_STABLE "{F0F0F0F0-0000-4000-8000-000000000001}"
#define APP_CHURN "{F0F0F0F0-0000-4000-8000-000000000002}"

static msgr_service *svc;
static msgr_client *alice, *bob;
static msgr_session_manager *ma, *mb;
static msgr_session *kept;      /* a session the parent keeps (inherited by the children) */
static msgr_session *released;  /* a handle released before the forks: stale everywhere */
static char registry[512];

static atomic_int stop;
static atomic_long invitations, app_events, pump_errors;

/* ---- the parent's load ---------------------------------------------------------------- */

static void parent_on_invitation(void *ud, msgr_session_manager *m, msgr_session *s,
                                 const char *data, bool *handled) {
    (void)ud, (void)m, (void)data;
    *handled = true;
    atomic_fetch_add(&invitations, 1);
    if (msgr_session_decline(s, NULL) != S_OK) {
        atomic_fetch_add(&pump_errors, 1);
    }
}

static void parent_on_app(void *ud, msgr_session_manager *m, const char *guid) {
    (void)ud, (void)m, (void)guid;
    atomic_fetch_add(&app_events, 1);
}

static void *invite_pump(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        msgr_session *s = NULL;
        if (msgr_session_manager_create_session(ma, &s) != S_OK ||
            msgr_session_set_application(s, APP_STABLE) != S_OK ||
            msgr_session_invite(s, "bob@example.com", "hi") != S_OK) {
            atomic_fetch_add(&pump_errors, 1);
        }
        msgr_session_release(s);
    }
    return NULL;
}

static void *registry_pump(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        if (msgr_session_manager_register_application(mb, APP_CHURN, "churn", "", "", 0) != S_OK ||
            msgr_session_manager_unregister_application(mb, APP_CHURN) != S_OK) {
            atomic_fetch_add(&pump_errors, 1);
        }
    }
    return NULL;
}

/* ---- the child ------------------------------------------------------------------------ */

/* The child checks without testutil's shared state: a parent thread may have held its mutex
 * (or stdio's lock) at the fork. Messages go to fd 2 with dprintf, which takes no lock. */
static int child_failures;

static bool child_check_hr(MSGR_HRESULT got, MSGR_HRESULT want, const char *expr, int line) {
    char g[40], w[40];
    if (got == want) {
        return true;
    }
    child_failures++;
    dprintf(2, "test_fork.c:%d: FAIL in child %d: %s\n      returned %s, expected %s\n", line,
            (int)getpid(), expr, tu_hr_fmt(g, sizeof g, got), tu_hr_fmt(w, sizeof w, want));
    return false;
}

static bool child_check(bool ok, const char *what, int line) {
    if (!ok) {
        child_failures++;
        dprintf(2, "test_fork.c:%d: FAIL in child %d: %s\n", line, (int)getpid(), what);
    }
    return ok;
}

#define C_HR(want, expr) child_check_hr((expr), (want), #expr, __LINE__)
#define C_OK(expr) C_HR(S_OK, expr)
#define C_CHECK(cond) child_check((cond) ? true : false, #cond, __LINE__)
#define INHERITED MSGR_E_SERVER_SHUTDOWN

typedef struct {
    atomic_int registered, accepted, invited, ready;
    char guid[64];
} child_events;

static void child_on_registered(void *ud, msgr_session_manager *m, const char *guid) {
    child_events *e = (child_events *)ud;
    (void)m;
    if (strcmp(guid, e->guid) == 0) {
        atomic_fetch_add(&e->registered, 1);
    }
}

static void child_on_invitation(void *ud, msgr_session_manager *m, msgr_session *s,
                                const char *data, bool *handled) {
    child_events *e = (child_events *)ud;
    (void)m, (void)data;
    *handled = true;
    atomic_fetch_add(&e->invited, 1);
    C_OK(msgr_session_accept(s, "yes"));
}

static void child_on_accepted(void *ud, msgr_session *s, const char *data) {
    child_events *e = (child_events *)ud;
    (void)s;
    if (data != NULL && strcmp(data, "yes") == 0) {
        atomic_fetch_add(&e->accepted, 1);
    }
}

static bool wait_for(atomic_int *v, int n, unsigned ms) {
    uint64_t deadline = tu_now_ms() + ms;
    while (atomic_load(v) < n) {
        if (tu_now_ms() >= deadline) {
            return false;
        }
        tu_sleep_ms(1);
    }
    return true;
}

static void child_inherited(void) {
    msgr_client *c = NULL;
    msgr_session_manager *m = NULL;
    msgr_session *s = NULL;
    SESSION_STATE st;
    LockStatus ls;
    int32_t fd;
    uint32_t n, cookie;
    char buf[64];
    size_t needed;

    C_HR(INHERITED, msgr_service_add_app_key(svc, "app", "key"));
    C_HR(INHERITED, msgr_service_set_reachable(svc, "bob@example.com", true));
    C_HR(INHERITED, msgr_client_create(svc, "carol@example.com", MSGR_DISPATCH_THREAD, &c));
    C_CHECK(c == NULL);
    C_HR(INHERITED, msgr_client_sign_out(alice));
    C_HR(INHERITED, msgr_client_dispatch(bob, 0, &n));
    C_HR(INHERITED, msgr_client_event_fd(alice, &fd));
    C_HR(INHERITED, msgr_session_manager_create(alice, &m));
    C_CHECK(m == NULL);
    C_HR(INHERITED, msgr_session_manager_get_lock_status(ma, &ls));
    C_HR(INHERITED, msgr_session_manager_create_session(mb, &s));
    C_CHECK(s == NULL);
    C_HR(INHERITED, msgr_session_manager_register_application(ma, "{F0F0F0F0-0000-4000-8000-0000000000FF}",
                                                             "x", "", "", 0));
    C_HR(INHERITED, msgr_session_manager_on_app_registered(ma, child_on_registered, NULL, NULL,
                                                          &cookie));
    C_HR(INHERITED, msgr_session_get_state(kept, &st));
    C_HR(INHERITED, msgr_session_get_session_id(kept, buf, sizeof buf, &needed));
    C_HR(INHERITED, msgr_session_add_ref(kept));
    C_HR(INHERITED, msgr_session_invite(kept, "bob@example.com", NULL));
    /* What was stale in the parent is stale here too. */
    C_HR(E_HANDLE, msgr_session_get_state(released, &st));
    C_HR(E_HANDLE, msgr_session_release(released));

    /* Release and destroy: S_OK, nothing freed, no panic. */
    C_OK(msgr_session_release(kept));
    C_OK(msgr_session_manager_release(ma));
    C_OK(msgr_session_manager_release(mb));
    C_OK(msgr_client_destroy(alice));
    C_OK(msgr_client_destroy(bob));
    C_OK(msgr_service_destroy(svc));
    /* Still inherited: the same code, not a handle of the child. */
    C_HR(INHERITED, msgr_client_sign_in(bob));
}

static void child_new_objects(int index, unsigned patience) {
    msgr_service_options o;
    msgr_service *s2 = NULL;
    msgr_client *c1 = NULL, *c2 = NULL, *c3 = NULL;
    msgr_session_manager *m1 = NULL, *m2 = NULL, *m3 = NULL;
    msgr_session *s = NULL;
    SESSION_STATE st = SS_UNKNOWN;
    child_events *e = (child_events *)calloc(1, sizeof *e);
    int32_t fd = -1;
    uint32_t cookie, n = 0;
    struct pollfd p;

    if (!C_CHECK(e != NULL)) {
        return;
    }
    snprintf(e->guid, sizeof e->guid, "{F0F0F0F0-0000-4000-8000-%012d}", 100 + index);
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.registry_path = registry;
    if (!C_OK(msgr_service_create(&o, &s2)) ||
        !C_OK(msgr_client_create(s2, "alice@example.com", MSGR_DISPATCH_THREAD, &c1)) ||
        !C_OK(msgr_client_create(s2, "bob@example.com", MSGR_DISPATCH_THREAD, &c2)) ||
        !C_OK(msgr_client_create(s2, "carol@example.com", MSGR_DISPATCH_MANUAL, &c3)) ||
        !C_OK(msgr_session_manager_create(c1, &m1)) || !C_OK(msgr_session_manager_create(c2, &m2)) ||
        !C_OK(msgr_session_manager_create(c3, &m3))) {
        goto out;
    }
    C_OK(msgr_session_manager_on_app_registered(m1, child_on_registered, e, NULL, &cookie));
    C_OK(msgr_session_manager_on_app_registered(m3, child_on_registered, e, NULL, &cookie));
    C_OK(msgr_session_manager_on_invitation(m2, child_on_invitation, e, NULL, &cookie));

    /* The registry file the parent is writing to. */
    C_OK(msgr_session_manager_register_application(m1, e->guid, "child", "", "", 0));
    C_CHECK(wait_for(&e->registered, 1, patience)); /* delivered by c1's thread */

    /* An invitation, accepted from bob's thread, OnAccepted delivered by alice's. */
    if (C_OK(msgr_session_manager_create_session(m1, &s))) {
        C_OK(msgr_session_on_accepted(s, child_on_accepted, e, NULL, &cookie));
        C_OK(msgr_session_set_application(s, e->guid));
        C_OK(msgr_session_invite(s, "bob@example.com", "hi"));
        C_CHECK(wait_for(&e->accepted, 1, patience));
        C_OK(msgr_session_get_state(s, &st));
        C_CHECK(st == SS_CONNECTED);
        C_CHECK(atomic_load(&e->invited) == 1);
    }

    /* The manual client's event descriptor: readable with OnAppRegistered pending. */
    if (C_OK(msgr_client_event_fd(c3, &fd))) {
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        C_CHECK(poll(&p, 1, (int)patience) == 1 && (p.revents & POLLIN));
        C_OK(msgr_client_dispatch(c3, 0, &n));
        C_CHECK(n >= 1);
        C_CHECK(atomic_load(&e->registered) == 2);
    }
    C_OK(msgr_session_manager_unregister_application(m1, e->guid));

out:
    C_OK(msgr_session_release(s));
    C_OK(msgr_session_manager_release(m1));
    C_OK(msgr_session_manager_release(m2));
    C_OK(msgr_session_manager_release(m3));
    C_OK(msgr_client_destroy(c1));
    C_OK(msgr_client_destroy(c2));
    C_OK(msgr_client_destroy(c3));
    C_OK(msgr_service_destroy(s2));
    free(e);
}

static void child(int index, int err_fd, unsigned patience) {
    dup2(err_fd, 2);
    close(err_fd);
    child_inherited();
    child_new_objects(index, patience);
    if (CHILD_MEMCHECK_ERRORS() > 0) {
        dprintf(2, "FAIL in child %d: %d memcheck errors\n", (int)getpid(), CHILD_MEMCHECK_ERRORS());
        child_failures++;
    }
    _exit(child_failures == 0 ? 0 : 1);
}

/* ---- the parent ----------------------------------------------------------------------- */

/* The child's stderr, read back from its file (to free), or NULL. */
static char *read_all(int fd) {
    char *buf;
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < 0 || lseek(fd, 0, SEEK_SET) != 0 || (buf = (char *)calloc(1, (size_t)len + 1)) == NULL) {
        return NULL;
    }
    if (read(fd, buf, (size_t)len) != (ssize_t)len) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void fork_while_busy(void) {
    msgr_service_options o;
    pthread_t pumps[2];
    pid_t pids[CHILDREN];
    int errs[CHILDREN], status[CHILDREN];
    bool done[CHILDREN];
    bool valgrind = tu_under_valgrind();
    unsigned patience = valgrind ? 60000u : 10000u;
    uint64_t start, deadline;
    uint32_t cookie;
    int i, left;
    long before;

    snprintf(registry, sizeof registry, "/tmp/msgrpriv-test-fork-%d.json", (int)getpid());
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.registry_path = registry;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    REQUIRE_OK(msgr_client_create(svc, "alice@example.com", MSGR_DISPATCH_THREAD, &alice));
    REQUIRE_OK(msgr_client_create(svc, "bob@example.com", MSGR_DISPATCH_THREAD, &bob));
    REQUIRE_OK(msgr_session_manager_create(alice, &ma));
    REQUIRE_OK(msgr_session_manager_create(bob, &mb));
    REQUIRE_OK(msgr_session_manager_on_invitation(mb, parent_on_invitation, NULL, NULL, &cookie));
    REQUIRE_OK(msgr_session_manager_on_app_registered(ma, parent_on_app, NULL, NULL, &cookie));
    REQUIRE_OK(msgr_session_manager_on_app_unregistered(ma, parent_on_app, NULL, NULL, &cookie));
    REQUIRE_OK(msgr_session_manager_on_app_registered(mb, parent_on_app, NULL, NULL, &cookie));
    REQUIRE_OK(msgr_session_manager_register_application(ma, APP_STABLE, "stable", "", "", 0));
    REQUIRE_OK(msgr_session_manager_create_session(ma, &kept));
    REQUIRE_OK(msgr_session_manager_create_session(ma, &released));
    REQUIRE_OK(msgr_session_release(released));

    REQUIRE(pthread_create(&pumps[0], NULL, invite_pump, NULL) == 0);
    REQUIRE(pthread_create(&pumps[1], NULL, registry_pump, NULL) == 0);
    /* Until both clients' threads are delivering. */
    start = tu_now_ms();
    while ((atomic_load(&invitations) < 20 || atomic_load(&app_events) < 4) &&
           tu_now_ms() - start < patience) {
        tu_sleep_ms(1);
    }
    CHECK(atomic_load(&invitations) >= 20 && atomic_load(&app_events) >= 4);

    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < CHILDREN; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s.child%d.err", registry, i);
        errs[i] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        REQUIRE(errs[i] >= 0);
        unlink(path);
        done[i] = false;
        status[i] = 0;
        before = atomic_load(&invitations);
        pids[i] = fork();
        REQUIRE(pids[i] >= 0);
        if (pids[i] == 0) {
            child(i, errs[i], patience);
        }
        /* The next fork lands elsewhere in the pumps' work. */
        while (atomic_load(&invitations) < before + 3 && tu_now_ms() - start < patience) {
            tu_sleep_ms(1);
        }
    }

    /* Wait with a deadline; the pumps go on meanwhile (children and parent share the
     * registry file). */
    deadline = tu_now_ms() + patience;
    left = CHILDREN;
    while (left > 0 && tu_now_ms() < deadline) {
        for (i = 0; i < CHILDREN; i++) {
            if (!done[i] && waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
                done[i] = true;
                left--;
            }
        }
        tu_sleep_ms(2);
    }
    for (i = 0; i < CHILDREN; i++) {
        char *err;
        if (!done[i]) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &status[i], 0);
            tu_failf(__FILE__, __LINE__, "child %d (pid %d) still running after %u ms: hung, killed",
                     i, (int)pids[i], patience);
        } else if (!WIFEXITED(status[i]) ||
                   (WEXITSTATUS(status[i]) != 0 &&
                    !(valgrind && WEXITSTATUS(status[i]) == VALGRIND_ERROR_EXITCODE))) {
            tu_failf(__FILE__, __LINE__, "child %d (pid %d) ended with status 0x%x", i,
                     (int)pids[i], status[i]);
        } else {
            CHECK(true);
        }
        err = read_all(errs[i]);
        if (err != NULL && (strstr(err, "panicked") != NULL || strstr(err, "FAIL") != NULL)) {
            tu_failf(__FILE__, __LINE__, "child %d wrote to stderr:\n%s", i, err);
        } else if (err != NULL && err[0] != '\0') {
            fprintf(stderr, "child %d stderr (not a failure):\n%s", i, err);
        }
        free(err);
        close(errs[i]);
    }

    atomic_store(&stop, 1);
    pthread_join(pumps[0], NULL);
    pthread_join(pumps[1], NULL);
    CHECK_INT(atomic_load(&pump_errors), 0);

    /* The parent is unaffected: its objects work and the registry is not left locked. */
    CHECK_OK(msgr_session_manager_register_application(ma, APP_CHURN, "after", "", "", 0));
    CHECK_OK(msgr_session_manager_unregister_application(ma, APP_CHURN));
    CHECK_OK(msgr_session_release(kept));
    CHECK_OK(msgr_session_manager_release(ma));
    CHECK_OK(msgr_session_manager_release(mb));
    CHECK_OK(msgr_client_destroy(alice));
    CHECK_OK(msgr_client_destroy(bob));
    CHECK_OK(msgr_service_destroy(svc));
    {
        char lock[600];
        snprintf(lock, sizeof lock, "%s.lock", registry);
        unlink(lock);
        unlink(registry);
    }
    printf("%d children, %ld invitations and %ld application events in the parent, %llu ms\n",
           CHILDREN, atomic_load(&invitations), atomic_load(&app_events),
           (unsigned long long)(tu_now_ms() - start));
}

/* AddressSanitizer's allocator (GCC 12's libsanitizer) takes no lock around fork(): a child
 * forked while a parent thread is inside malloc finds that size class's lock held for ever
 * and hangs at its next malloc of that size (seen: a child's delivery thread stuck in
 * SizeClassAllocator64::GetFromAllocator). glibc's malloc locks its arenas around fork(), so
 * the plain and valgrind runs test this; the sanitizer run skips it. */
#if defined(__SANITIZE_ADDRESS__)
#define TU_ALLOCATOR_FORK_SAFE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ALLOCATOR_FORK_SAFE 0
#endif
#endif
#ifndef TU_ALLOCATOR_FORK_SAFE
#define TU_ALLOCATOR_FORK_SAFE 1
#endif

int main(void) {
    if (!TU_ALLOCATOR_FORK_SAFE) {
        printf("skipped: AddressSanitizer's allocator is not fork-safe while other threads allocate\n");
        return 77;
    }
    RUN(fork_while_busy);
    return tu_finish();
}
