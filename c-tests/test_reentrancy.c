/*
 * Callbacks that call back into the library (docs/CONTRACT.md, "Event delivery"): a callback
 * ends its own registration or a later one, releases the session it was given (also the one
 * lent to OnInvitation, and from OnTermination), releases the manager that fired it, destroys
 * its client (manual and thread mode), registers a new callback, and dispatches again
 * (nested). Nothing deadlocks, nothing is delivered to an object that is gone, queued events
 * for it are dropped, and every destroy callback runs exactly once (tu_finish() counts them),
 * after the callback that ended its registration has returned.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

/* ---- ending registrations from inside ---- */

static void unadvise_self(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    (void)data;
    tu_called(u);
    CHECK_OK(msgr_session_unadvise(s, u->cookie));
    /* The destroy callback runs after this callback returns. */
    CHECK_INT(tu_destroyed(u), 0);
    CHECK_HR(E_INVALIDARG, msgr_session_unadvise(s, u->cookie));
    CHECK_INT(tu_destroyed(u), 0);
    u->ival++; /* the user data is still ours */
}

static void mgr_unadvise_self(void *ud, msgr_session_manager *m, const char *guid) {
    tu_ud *u = (tu_ud *)ud;
    (void)guid;
    tu_called(u);
    CHECK_OK(msgr_session_manager_unadvise(m, u->cookie));
    CHECK_INT(tu_destroyed(u), 0);
}

static void test_unadvise_own_registration(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_ud *u, *mu;
    tu_world_init(&w, TU_NO_APP);
    mu = tu_ud_new(&w.log, "mgr-self");
    CHECK_OK(msgr_session_manager_on_app_registered(w.ma, mgr_unadvise_self, mu, tu_destroy, &mu->cookie));
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, TU_APP_NAME, TU_APP_URL, "", 0));
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP2, "Two", "", "", 0));
    tu_pump(&w);
    CHECK_INT(tu_calls(mu), 1);
    CHECK_INT(tu_destroyed(mu), 1);
    CHECK_INT(tu_log_count(&w.log, "MA", "AppRegistered"), 2);

    tu_connected(&w, &a, &b);
    u = tu_ud_new(&w.log, "self");
    CHECK_OK(msgr_session_on_context_data(a, unadvise_self, u, tu_destroy, &u->cookie));
    CHECK_OK(msgr_session_send_context_data(b, "1"));
    CHECK_OK(msgr_session_send_context_data(b, "2"));
    tu_pump(&w);
    CHECK_INT(tu_calls(u), 1);
    CHECK_INT(u->ival, 1);
    CHECK_INT(tu_destroyed(u), 1);
    /* The recorder registered earlier saw both. */
    CHECK_INT(tu_log_count(&w.log, "A", "ContextData"), 2);
    CHECK_HR(E_INVALIDARG, msgr_session_unadvise(a, u->cookie));
    tu_world_cleanup(&w);
}

/* The first callback ends the second one's registration (same event). */
static void unadvise_other(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    tu_ud *other = (tu_ud *)u->extra;
    (void)data;
    tu_called(u);
    if (tu_calls(u) == 1) {
        CHECK_OK(msgr_session_unadvise(s, other->cookie));
    }
}

static void count_context(void *ud, msgr_session *s, const char *data) {
    (void)s;
    (void)data;
    tu_called((tu_ud *)ud);
}

static void test_unadvise_a_later_registration(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_ud *first, *second;
    tu_world_init(&w, 0);
    tu_connected(&w, &a, &b);
    first = tu_ud_new(&w.log, "first");
    second = tu_ud_new(&w.log, "second");
    first->extra = second;
    CHECK_OK(msgr_session_on_context_data(a, unadvise_other, first, tu_destroy, &first->cookie));
    CHECK_OK(msgr_session_on_context_data(a, count_context, second, tu_destroy, &second->cookie));
    CHECK_OK(msgr_session_send_context_data(b, "x"));
    CHECK_OK(msgr_session_send_context_data(b, "y"));
    tu_pump(&w);
    CHECK_INT(tu_calls(first), 2);
    CHECK_INT(tu_calls(second), 0);
    CHECK_INT(tu_destroyed(second), 1);
    CHECK_INT(tu_destroyed(first), 0);
    tu_world_cleanup(&w);
    CHECK_INT(tu_destroyed(first), 1);
}

/* A callback that registers another one for the same event: it hears the next event. */
static void register_more(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    tu_ud *added = (tu_ud *)u->extra;
    uint32_t cookie;
    (void)data;
    tu_called(u);
    if (tu_calls(u) == 1) {
        CHECK_OK(msgr_session_on_context_data(s, count_context, added, tu_destroy, &cookie));
    }
}

static void test_register_from_a_callback(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_ud *u, *added;
    tu_world_init(&w, 0);
    tu_connected(&w, &a, &b);
    u = tu_ud_new(&w.log, "registrar");
    added = tu_ud_new(&w.log, "added");
    u->extra = added;
    CHECK_OK(msgr_session_on_context_data(a, register_more, u, tu_destroy, &u->cookie));
    CHECK_OK(msgr_session_send_context_data(b, "1"));
    tu_pump(&w);
    CHECK_OK(msgr_session_send_context_data(b, "2"));
    tu_pump(&w);
    CHECK_INT(tu_calls(u), 2);
    CHECK_INT(tu_calls(added), 1);
    tu_world_cleanup(&w);
}

/* ---- releasing the session ---- */

static void release_session(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    (void)data;
    tu_called(u);
    CHECK_OK(msgr_session_release(s));
    /* Deferred: this registration's destroy callback has not run yet. */
    CHECK_INT(tu_destroyed(u), 0);
}

static void test_release_session_inside_its_callback(void) {
    tu_world w;
    msgr_session *s = NULL, *b;
    tu_ud *u[3];
    SESSION_STATE st;
    int i;
    tu_world_init(&w, 0);
    /* Alice's session, not owned by the fixture. */
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &s));
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    CHECK_OK(msgr_session_invite(s, TU_BOB, NULL));
    tu_pump(&w);
    b = tu_world_last_received(&w);
    REQUIRE(b != NULL);
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    tu_log_clear(&w.log);
    for (i = 0; i < 3; i++) {
        u[i] = tu_ud_new(&w.log, "release");
        CHECK_OK(msgr_session_on_context_data(s, release_session, u[i], tu_destroy, &u[i]->cookie));
    }
    CHECK_OK(msgr_session_send_context_data(b, "1"));
    CHECK_OK(msgr_session_send_context_data(b, "2"));
    tu_pump(&w);
    /* The first callback released the last reference: the other registrations ended before
     * running, the second event was dropped. */
    CHECK_INT(tu_calls(u[0]) + tu_calls(u[1]) + tu_calls(u[2]), 1);
    for (i = 0; i < 3; i++) {
        CHECK_INT(tu_destroyed(u[i]), 1);
    }
    CHECK_HR(E_HANDLE, msgr_session_get_state(s, &st));
    CHECK_HR(E_HANDLE, msgr_session_release(s));
    /* The session goes on: bob can still end it, and alice's side ends without callbacks. */
    CHECK_STATE(b, SS_CONNECTED);
    CHECK_OK(msgr_session_cancel(b, E_FAIL, NULL));
    tu_pump(&w);
    EXPECT_LOG(&w.log, "B:StateChanged(SS_CONNECTED)@SS_CANCELLED",
               "B:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@SS_CANCELLED");
    tu_world_cleanup(&w);
}

/* The common pattern: release the session in its OnTermination. */
static void release_on_termination(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *d) {
    (void)hr;
    (void)d;
    tu_called((tu_ud *)ud);
    CHECK_OK(msgr_session_release(s));
}

static void test_release_in_on_termination(void) {
    tu_world w;
    msgr_session *s = NULL, *b;
    tu_ud *u;
    uint32_t cookie;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &s));
    tu_watch_session(&w.log, s, "A");
    u = tu_ud_new(&w.log, "release-on-termination");
    CHECK_OK(msgr_session_on_termination(s, release_on_termination, u, tu_destroy, &cookie));
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    CHECK_OK(msgr_session_invite(s, TU_BOB, NULL));
    tu_pump(&w);
    b = tu_world_last_received(&w);
    REQUIRE(b != NULL);
    CHECK_OK(msgr_session_decline(b, NULL));
    tu_pump(&w);
    CHECK_INT(tu_calls(u), 1);
    CHECK_INT(tu_destroyed(u), 1);
    EXPECT_SIDE(&w.log, "A", "A:StateChanged(SS_READY)@SS_INVITATION",
                "A:StateChanged(SS_INVITATION)@SS_DECLINED", "A:Declined(NULL)@SS_DECLINED",
                "A:Termination(SR_INVITATION_DECLINED,NULL)@SS_DECLINED");
    tu_world_cleanup(&w);
}

/* OnInvitation registers on the lent session without keeping it: the registration ends when
 * the loan does, after the callback. */
static void register_without_keeping(void *ud, msgr_session_manager *m, msgr_session *s,
                                     const char *d, bool *handled) {
    tu_ud *u = (tu_ud *)ud;
    tu_ud *reg = (tu_ud *)u->extra;
    uint32_t cookie;
    (void)m;
    (void)d;
    (void)handled;
    tu_called(u);
    CHECK_OK(msgr_session_on_context_data(s, count_context, reg, tu_destroy, &cookie));
    /* Taking and dropping a reference inside the callback changes nothing. */
    CHECK_OK(msgr_session_add_ref(s));
    CHECK_OK(msgr_session_release(s));
    CHECK_INT(tu_destroyed(reg), 0);
    u->obj = s;
}

static void test_lent_invitation_session(void) {
    tu_world w;
    msgr_client *carol = NULL;
    msgr_session_manager *mc = NULL;
    msgr_session *a;
    tu_ud *u, *reg;
    uint32_t cookie;
    SESSION_STATE st;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_client_create(w.svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &carol));
    REQUIRE_OK(msgr_session_manager_create(carol, &mc));
    u = tu_ud_new(&w.log, "invitation");
    reg = tu_ud_new(&w.log, "lent-registration");
    u->extra = reg;
    CHECK_OK(msgr_session_manager_on_invitation(mc, register_without_keeping, u, tu_destroy, &cookie));
    tu_pump1(carol);
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, "carol@example.com", NULL));
    tu_pump1(carol);
    CHECK_INT(tu_calls(u), 1);
    CHECK_INT(tu_destroyed(reg), 1);
    CHECK_INT(tu_calls(reg), 0);
    /* The lent handle is stale once the callback returned. */
    CHECK_HR(E_HANDLE, msgr_session_get_state((msgr_session *)u->obj, &st));
    CHECK_OK(msgr_session_manager_release(mc));
    CHECK_OK(msgr_client_destroy(carol));
    tu_pump(&w);
    tu_world_cleanup(&w);
}

/* ---- releasing the manager ---- */

static void release_manager_enable(void *ud, msgr_session_manager *m, bool enabled) {
    tu_ud *u = (tu_ud *)ud;
    (void)enabled;
    tu_called(u);
    CHECK_OK(msgr_session_manager_release(m));
    CHECK_INT(tu_destroyed(u), 0);
}

static void release_manager_status(void *ud, msgr_session_manager *m, LockStatus st) {
    tu_ud *u = (tu_ud *)ud;
    (void)st;
    tu_called(u);
    CHECK_OK(msgr_session_manager_release(m));
}

static void release_manager_shutdown(void *ud, msgr_session_manager *m) {
    tu_called((tu_ud *)ud);
    CHECK_OK(msgr_session_manager_release(m));
}

static void test_release_manager_inside_its_callback(void) {
    tu_world w;
    msgr_session_manager *m = NULL;
    tu_ud *u1, *u2;
    uint32_t cookie;
    LockStatus st;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_session_manager_create(w.a, &m));
    u1 = tu_ud_new(&w.log, "enable");
    u2 = tu_ud_new(&w.log, "status");
    CHECK_OK(msgr_session_manager_on_lock_enable(m, release_manager_enable, u1, tu_destroy, &cookie));
    CHECK_OK(msgr_session_manager_on_lock_status_changed(m, release_manager_status, u2, tu_destroy, &cookie));
    tu_pump(&w);
    CHECK_INT(tu_calls(u1), 1);
    CHECK_INT(tu_calls(u2), 0); /* its event was dropped */
    CHECK_INT(tu_destroyed(u1), 1);
    CHECK_INT(tu_destroyed(u2), 1);
    CHECK_HR(E_HANDLE, msgr_session_manager_get_lock_status(m, &st));
    CHECK_HR(E_HANDLE, msgr_session_manager_release(m));

    /* From OnAppShutdown. */
    REQUIRE_OK(msgr_session_manager_create(w.a, &m));
    u1 = tu_ud_new(&w.log, "shutdown");
    CHECK_OK(msgr_session_manager_on_app_shutdown(m, release_manager_shutdown, u1, tu_destroy, &cookie));
    CHECK_OK(msgr_client_shutdown(w.a));
    tu_pump(&w);
    CHECK_INT(tu_calls(u1), 1);
    CHECK_INT(tu_destroyed(u1), 1);
    CHECK_HR(E_HANDLE, msgr_session_manager_release(m));
    tu_world_cleanup(&w);
}

/* ---- destroying the client ---- */

typedef struct {
    msgr_client *c;
    pthread_mutex_t mu;
    int enable_calls;
    int status_initialized; /* LockStatusChanged(LOCK_INITIALIZED) seen after the destroy */
    int destroyed_in_callback;
    MSGR_HRESULT destroy_hr;
} destroyer;

static void destroy_on_enable(void *ud, msgr_session_manager *m, bool enabled) {
    destroyer *d = (destroyer *)((tu_ud *)ud)->extra;
    (void)m;
    tu_called((tu_ud *)ud);
    if (!enabled) {
        return; /* the creation event (Lock and Key was off then) */
    }
    pthread_mutex_lock(&d->mu);
    d->enable_calls++;
    pthread_mutex_unlock(&d->mu);
    d->destroy_hr = msgr_client_destroy(d->c);
    pthread_mutex_lock(&d->mu);
    d->destroyed_in_callback = 1;
    pthread_mutex_unlock(&d->mu);
}

static void status_after(void *ud, msgr_session_manager *m, LockStatus st) {
    destroyer *d = (destroyer *)((tu_ud *)ud)->extra;
    (void)m;
    pthread_mutex_lock(&d->mu);
    if (st == LOCK_INITIALIZED && d->destroyed_in_callback) {
        d->status_initialized++;
    }
    pthread_mutex_unlock(&d->mu);
}

static void test_destroy_client_inside_a_callback(void) {
    int mode;
    for (mode = 0; mode < 2; mode++) {
        msgr_service *svc = NULL;
        msgr_session_manager *m = NULL;
        destroyer d;
        tu_ud *u1, *u2;
        uint32_t cookie, n;
        LockStatus st;
        uint64_t deadline;
        int done;
        memset(&d, 0, sizeof d);
        pthread_mutex_init(&d.mu, NULL);
        REQUIRE_OK(msgr_service_create(NULL, &svc));
        REQUIRE_OK(msgr_client_create(svc, "eve@example.com", mode, &d.c));
        REQUIRE_OK(msgr_session_manager_create(d.c, &m));
        u1 = tu_ud_new(NULL, "destroy-client");
        u1->extra = &d;
        u2 = tu_ud_new(NULL, "status");
        u2->extra = &d;
        CHECK_OK(msgr_session_manager_on_lock_enable(m, destroy_on_enable, u1, tu_destroy, &cookie));
        CHECK_OK(msgr_session_manager_on_lock_status_changed(m, status_after, u2, tu_destroy, &cookie));
        /* Lock and Key in force from the next sign-in: OnLockEnable(true), then
         * OnLockStatusChanged(LOCK_INITIALIZED), which must never be delivered. */
        CHECK_OK(msgr_service_add_app_key(svc, TU_APP_ID, TU_APP_KEY));
        CHECK_OK(msgr_client_sign_out(d.c));
        CHECK_OK(msgr_client_sign_in(d.c));
        if (mode == MSGR_DISPATCH_MANUAL) {
            CHECK_OK(msgr_client_dispatch(d.c, 1000, &n));
        } else {
            deadline = tu_now_ms() + TU_PATIENCE_MS;
            do {
                pthread_mutex_lock(&d.mu);
                done = d.destroyed_in_callback;
                pthread_mutex_unlock(&d.mu);
                if (!done) {
                    tu_sleep_ms(2);
                }
            } while (!done && tu_now_ms() < deadline);
        }
        tu_sleep_ms(50);
        pthread_mutex_lock(&d.mu);
        CHECK_INT(d.enable_calls, 1);
        CHECK_INT(d.destroyed_in_callback, 1);
        CHECK_INT(d.status_initialized, 0);
        pthread_mutex_unlock(&d.mu);
        CHECK_OK(d.destroy_hr);
        /* The client handle is stale; the manager's stays valid until released, signed out. */
        CHECK_HR(E_HANDLE, msgr_client_sign_in(d.c));
        CHECK_HR(E_HANDLE, msgr_client_dispatch(d.c, 0, &n));
        CHECK_HR(E_HANDLE, msgr_client_destroy(d.c));
        CHECK_OK(msgr_session_manager_get_lock_status(m, &st));
        CHECK_INT(st, LOCK_NOTINITIALIZED);
        CHECK_OK(msgr_session_manager_release(m));
        CHECK_OK(msgr_service_destroy(svc));
        CHECK_INT(tu_destroyed(u1), 1);
        CHECK_INT(tu_destroyed(u2), 1);
        pthread_mutex_destroy(&d.mu);
    }
}

/* Bob's client destroyed from bob's own session callback. */
static void destroy_client_on_context(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    (void)s;
    (void)data;
    tu_called(u);
    CHECK_OK(msgr_client_destroy((msgr_client *)u->obj));
}

static void test_destroy_client_from_a_session_callback(void) {
    tu_world w;
    msgr_client *carol = NULL;
    msgr_session_manager *mc = NULL;
    msgr_session *a, *c;
    tu_manager_watch wc;
    tu_ud *u;
    uint32_t cookie;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_client_create(w.svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &carol));
    REQUIRE_OK(msgr_session_manager_create(carol, &mc));
    wc = tu_watch_manager(&w.log, mc, "MC");
    wc.invitation->world = &w;
    wc.invitation->session_tag = "C";
    tu_pump1(carol);
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, "carol@example.com", NULL));
    tu_pump1(carol);
    c = tu_world_last_received(&w);
    REQUIRE(c != NULL);
    CHECK_OK(msgr_session_accept(c, NULL));
    tu_pump1(carol);
    tu_pump(&w);
    tu_log_clear(&w.log);
    u = tu_ud_new(&w.log, "destroy-carol");
    u->obj = carol;
    CHECK_OK(msgr_session_on_context_data(c, destroy_client_on_context, u, tu_destroy, &cookie));
    CHECK_OK(msgr_session_send_context_data(a, "1"));
    CHECK_OK(msgr_session_send_context_data(a, "2"));
    {
        uint32_t n = 0;
        CHECK_OK(msgr_client_dispatch(carol, 0, &n)); /* destroys carol on the way */
        CHECK_INT(n, 1);
    }
    CHECK_INT(tu_calls(u), 1);
    /* Carol's recorder saw the first only; alice's side ends. */
    EXPECT_SIDE(&w.log, "C", "C:ContextData(\"1\")@SS_CONNECTED");
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A", "A:StateChanged(SS_CONNECTED)@SS_TERMINATED",
                "A:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
    CHECK_HR(E_HANDLE, msgr_client_destroy(carol));
    CHECK_OK(msgr_session_manager_release(mc));
    tu_world_cleanup(&w);
}

/* ---- nested dispatch ---- */

static void nested(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    (void)s;
    tu_log_add(u->log, "%s", data);
    if (strcmp(data, "1") == 0) {
        uint32_t n = 0;
        CHECK_OK(msgr_client_dispatch((msgr_client *)u->obj, 0, &n));
        CHECK_INT(n, 2);
        tu_log_add(u->log, "end-of-1");
    }
}

static void test_nested_dispatch(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_log order;
    tu_ud *u;
    uint32_t cookie;
    tu_world_init(&w, 0);
    tu_log_init(&order);
    tu_connected(&w, &a, &b);
    u = tu_ud_new(&order, "nested");
    u->obj = w.a;
    CHECK_OK(msgr_session_on_context_data(a, nested, u, tu_destroy, &cookie));
    CHECK_OK(msgr_session_send_context_data(b, "1"));
    CHECK_OK(msgr_session_send_context_data(b, "2"));
    CHECK_OK(msgr_session_send_context_data(b, "3"));
    tu_pump(&w);
    EXPECT_LOG(&order, "1", "2", "3", "end-of-1");
    /* The fixture's recorder (registered first) saw them in order too. */
    EXPECT_SIDE(&w.log, "A", "A:ContextData(\"1\")@SS_CONNECTED", "A:ContextData(\"2\")@SS_CONNECTED",
                "A:ContextData(\"3\")@SS_CONNECTED");
    tu_world_cleanup(&w);
    tu_log_free(&order);
}

/* ---- destroy callbacks that call the library ---- */

static void destroy_calls_library(void *ud) {
    tu_ud *u = (tu_ud *)ud;
    SESSION_STATE st;
    MSGR_HRESULT hr = msgr_session_get_state((msgr_session *)u->obj, &st);
    u->ival = (hr == S_OK || hr == E_HANDLE) ? 1 : -1;
    CHECK_HR(E_INVALIDARG, msgr_session_unadvise((msgr_session *)u->extra, 0xFFFFFFF0u));
    tu_destroy(ud);
}

static void test_destroy_callback_calls_the_library(void) {
    tu_world w;
    msgr_session *s = NULL, *keep;
    tu_ud *u1, *u2;
    uint32_t c1, c2;
    tu_world_init(&w, 0);
    keep = tu_session(&w);
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &s));
    u1 = tu_ud_new(&w.log, "unadvised");
    u1->obj = s;
    u1->extra = keep;
    u2 = tu_ud_new(&w.log, "released");
    u2->obj = s;
    u2->extra = keep;
    CHECK_OK(msgr_session_on_context_data(s, count_context, u1, destroy_calls_library, &c1));
    CHECK_OK(msgr_session_on_context_data(s, count_context, u2, destroy_calls_library, &c2));
    CHECK_OK(msgr_session_unadvise(s, c1));
    CHECK_INT(tu_destroyed(u1), 1);
    CHECK_INT(u1->ival, 1);
    CHECK_OK(msgr_session_release(s));
    CHECK_INT(tu_destroyed(u2), 1);
    CHECK_INT(u2->ival, 1);
    tu_world_cleanup(&w);
}

int main(void) {
    RUN(test_unadvise_own_registration);
    RUN(test_unadvise_a_later_registration);
    RUN(test_register_from_a_callback);
    RUN(test_release_session_inside_its_callback);
    RUN(test_release_in_on_termination);
    RUN(test_lent_invitation_session);
    RUN(test_release_manager_inside_its_callback);
    RUN(test_destroy_client_inside_a_callback);
    RUN(test_destroy_client_from_a_session_callback);
    RUN(test_nested_dispatch);
    RUN(test_destroy_callback_calls_the_library);
    return tu_finish();
}
