/*
 * Event delivery (docs/CONTRACT.md, "Event delivery"): manual mode with msgr_client_dispatch
 * (0 polls, a timeout waits for the first event, MSGR_INFINITE waits for ever, the count of
 * delivered events, callbacks on the dispatching thread, the order events were raised in, one
 * deliverer at a time); msgr_client_event_fd with poll() (readable while events are pending,
 * level-triggered, not after dispatch); thread mode (events arrive without dispatch, on the
 * client's own thread, in order; dispatch and event_fd give E_ILLEGAL_METHOD_CALL).
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <poll.h>

static int readable(int32_t fd, int timeout_ms) {
    struct pollfd p;
    int r;
    p.fd = (int)fd;
    p.events = POLLIN;
    p.revents = 0;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r == 1 && (p.revents & POLLIN) != 0;
}

/* A thread that sends context data from a session after a delay. */
typedef struct {
    msgr_session *s;
    unsigned delay_ms;
    const char *data;
    MSGR_HRESULT hr;
} delayed_send;

static void *delayed_send_main(void *arg) {
    delayed_send *d = (delayed_send *)arg;
    tu_sleep_ms(d->delay_ms);
    d->hr = msgr_session_send_context_data(d->s, d->data);
    return NULL;
}

/* Records the thread each callback runs on. */
typedef struct {
    pthread_mutex_t mu;
    pthread_t threads[64];
    int n;
    int running, max_running;
    unsigned sleep_ms;
} thread_rec;

static void on_context_thread(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    thread_rec *r = (thread_rec *)u->extra;
    (void)s;
    (void)data;
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        r->threads[r->n++] = pthread_self();
    }
    r->running++;
    if (r->running > r->max_running) {
        r->max_running = r->running;
    }
    pthread_mutex_unlock(&r->mu);
    if (r->sleep_ms) {
        tu_sleep_ms(r->sleep_ms);
    }
    pthread_mutex_lock(&r->mu);
    r->running--;
    pthread_mutex_unlock(&r->mu);
}

static void test_manual_dispatch(void) {
    tu_world w;
    msgr_session *a, *b;
    msgr_session_manager *ma2 = NULL;
    uint32_t n = 99;
    uint64_t t0, el;
    pthread_t th;
    delayed_send d;
    int i;
    tu_world_init(&w, TU_NO_APP);

    /* 0 polls. */
    t0 = tu_now_ms();
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 0);
    CHECK(tu_now_ms() - t0 < 1000);
    /* A timeout waits for the first event, then returns 0. */
    t0 = tu_now_ms();
    n = 99;
    CHECK_OK(msgr_client_dispatch(w.a, 60, &n));
    el = tu_now_ms() - t0;
    CHECK_INT(n, 0);
    CHECK(el >= 50);

    /* Events wait for dispatch; the count is what was delivered. */
    REQUIRE_OK(msgr_session_manager_create(w.a, &ma2));
    tu_watch_manager(&w.log, ma2, "MA2");
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 2); /* ma2's LockEnable and LockStatusChanged */
    tu_log_clear(&w.log);
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, TU_APP_NAME, TU_APP_URL, "", 0));
    EXPECT_EMPTY(&w.log);
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 2); /* OnAppRegistered to alice's two managers */
    EXPECT_LOG(&w.log, "MA:AppRegistered(" TU_APP ")", "MA2:AppRegistered(" TU_APP ")");
    CHECK_OK(msgr_client_dispatch(w.b, 0, &n));
    CHECK_INT(n, 1);
    EXPECT_LOG(&w.log, "MB:AppRegistered(" TU_APP ")");
    CHECK_OK(msgr_session_manager_release(ma2));

    /* An event raised by another thread ends a long wait early. */
    tu_connected(&w, &a, &b);
    d.s = b;
    d.delay_ms = 30;
    d.data = "late";
    d.hr = E_FAIL;
    REQUIRE(pthread_create(&th, NULL, delayed_send_main, &d) == 0);
    t0 = tu_now_ms();
    n = 0;
    CHECK_OK(msgr_client_dispatch(w.a, 20000, &n));
    el = tu_now_ms() - t0;
    pthread_join(th, NULL);
    CHECK_OK(d.hr);
    CHECK_INT(n, 1);
    CHECK(el < 15000);
    EXPECT_LOG(&w.log, "A:ContextData(\"late\")@SS_CONNECTED");

    /* MSGR_INFINITE waits for ever, until the first event. */
    d.data = "later";
    REQUIRE(pthread_create(&th, NULL, delayed_send_main, &d) == 0);
    n = 0;
    CHECK_OK(msgr_client_dispatch(w.a, MSGR_INFINITE, &n));
    pthread_join(th, NULL);
    CHECK_INT(n, 1);
    EXPECT_LOG(&w.log, "A:ContextData(\"later\")@SS_CONNECTED");

    /* Delivered in the order raised, on the dispatching thread. */
    {
        thread_rec r;
        tu_ud *u = tu_ud_new(&w.log, "thread");
        uint32_t cookie;
        memset(&r, 0, sizeof r);
        pthread_mutex_init(&r.mu, NULL);
        u->extra = &r;
        CHECK_OK(msgr_session_on_context_data(a, on_context_thread, u, tu_destroy, &cookie));
        CHECK_OK(msgr_session_send_context_data(b, "1"));
        CHECK_OK(msgr_session_send_context_data(b, "2"));
        CHECK_OK(msgr_session_send_context_data(b, "3"));
        CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
        CHECK_INT(n, 3);
        EXPECT_LOG(&w.log, "A:ContextData(\"1\")@SS_CONNECTED", "A:ContextData(\"2\")@SS_CONNECTED",
                   "A:ContextData(\"3\")@SS_CONNECTED");
        CHECK_INT(r.n, 3);
        for (i = 0; i < r.n; i++) {
            CHECK(pthread_equal(r.threads[i], pthread_self()));
        }
        CHECK_OK(msgr_session_unadvise(a, cookie));
        pthread_mutex_destroy(&r.mu);
    }
    tu_world_cleanup(&w);
}

/* Two threads dispatching one client at once: callbacks never overlap. */
typedef struct {
    msgr_client *c;
    uint32_t n;
    MSGR_HRESULT hr;
} dispatcher;

static void *dispatcher_main(void *arg) {
    dispatcher *d = (dispatcher *)arg;
    uint32_t n = 0;
    uint64_t deadline = tu_now_ms() + 3000;
    d->n = 0;
    while (tu_now_ms() < deadline && d->n < 4) {
        d->hr = msgr_client_dispatch(d->c, 200, &n);
        if (d->hr != S_OK) {
            break;
        }
        d->n += n;
        if (n == 0) {
            break;
        }
    }
    return NULL;
}

static void test_one_deliverer_at_a_time(void) {
    tu_world w;
    msgr_session *a, *b;
    thread_rec r;
    tu_ud *u;
    uint32_t cookie;
    dispatcher d1, d2;
    pthread_t t1, t2;
    int i;
    tu_world_init(&w, 0);
    tu_connected(&w, &a, &b);
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    r.sleep_ms = 20;
    u = tu_ud_new(&w.log, "thread");
    u->extra = &r;
    CHECK_OK(msgr_session_on_context_data(a, on_context_thread, u, tu_destroy, &cookie));
    for (i = 0; i < 4; i++) {
        CHECK_OK(msgr_session_send_context_data(b, "x"));
    }
    d1.c = d2.c = w.a;
    d1.hr = d2.hr = S_OK;
    REQUIRE(pthread_create(&t1, NULL, dispatcher_main, &d1) == 0);
    REQUIRE(pthread_create(&t2, NULL, dispatcher_main, &d2) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_OK(d1.hr);
    CHECK_OK(d2.hr);
    CHECK_INT(d1.n + d2.n, 4);
    CHECK_INT(r.max_running, 1);
    CHECK_INT(tu_log_count(&w.log, "A", "ContextData"), 4);
    pthread_mutex_destroy(&r.mu);
    tu_world_cleanup(&w);
}

static void test_event_fd(void) {
    tu_world w;
    msgr_session *a, *b;
    int32_t fd = -1, fd2 = -2, fdb = -1;
    uint32_t n;
    pthread_t th;
    delayed_send d;
    msgr_session_manager *m2 = NULL;
    tu_world_init(&w, 0);
    CHECK_OK(msgr_client_event_fd(w.a, &fd));
    CHECK(fd >= 0);
    CHECK_OK(msgr_client_event_fd(w.a, &fd2));
    CHECK_INT(fd2, fd);
    CHECK_OK(msgr_client_event_fd(w.b, &fdb));
    CHECK(fdb >= 0 && fdb != fd);
    CHECK(!readable(fd, 0));

    /* Readable while pending (level-triggered), not after dispatch. */
    CHECK_OK(msgr_session_manager_unregister_application(w.ma, TU_APP));
    CHECK(readable(fd, 0));
    CHECK(readable(fd, 0));
    CHECK(readable(fdb, 0));
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 1);
    CHECK(!readable(fd, 0));
    CHECK(readable(fdb, 0));
    CHECK_OK(msgr_client_dispatch(w.b, 0, &n));
    CHECK(!readable(fdb, 0));
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, TU_APP_NAME, TU_APP_URL, "", 0));
    tu_pump(&w);
    CHECK(!readable(fd, 0));

    /* poll() wakes up when another thread raises an event. */
    tu_connected(&w, &a, &b);
    CHECK(!readable(fd, 0));
    d.s = b;
    d.delay_ms = 30;
    d.data = "wake";
    d.hr = E_FAIL;
    REQUIRE(pthread_create(&th, NULL, delayed_send_main, &d) == 0);
    CHECK(readable(fd, 20000));
    pthread_join(th, NULL);
    CHECK_OK(d.hr);
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 1);
    CHECK(!readable(fd, 0));
    tu_log_clear(&w.log);

    /* Events pending before the descriptor was first asked for: readable at once. */
    {
        msgr_client *c = NULL;
        int32_t fdc = -1;
        REQUIRE_OK(msgr_client_create(w.svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &c));
        REQUIRE_OK(msgr_session_manager_create(c, &m2));
        CHECK_OK(msgr_client_event_fd(c, &fdc));
        CHECK(readable(fdc, 0));
        CHECK_OK(msgr_client_dispatch(c, 0, &n));
        CHECK_INT(n, 2);
        CHECK(!readable(fdc, 0));
        CHECK_OK(msgr_session_manager_release(m2));
        CHECK_OK(msgr_client_destroy(c));
    }
    tu_world_cleanup(&w);
}

/* OnInvitation in thread mode: note the thread, accept at once from the callback. */
static void accept_at_once(void *ud, msgr_session_manager *m, msgr_session *s,
                           const char *app_data, bool *handled) {
    tu_ud *u = (tu_ud *)ud;
    (void)m;
    (void)app_data;
    (void)handled;
    u->obj = (void *)1;
    CHECK_OK(msgr_session_accept(s, "from the callback"));
}

static void on_state_thread(void *ud, msgr_session *s, SESSION_STATE prev) {
    tu_ud *u = (tu_ud *)ud;
    thread_rec *r = (thread_rec *)u->extra;
    (void)s;
    (void)prev;
    pthread_mutex_lock(&r->mu);
    if (r->n < 64) {
        r->threads[r->n++] = pthread_self();
    }
    pthread_mutex_unlock(&r->mu);
}

static void test_thread_mode(void) {
    tu_world w;
    msgr_session *a;
    uint32_t n = 77, cookie;
    int32_t fd = -7;
    tu_ud *u, *t;
    thread_rec r;
    int i;
    tu_world_init(&w, TU_THREAD);
    /* The fixture saw OnAppRegistered arrive without any dispatch. */
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_client_dispatch(w.a, 0, &n));
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_client_dispatch(w.b, 10, &n));
    CHECK_INT(n, 77);
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_client_event_fd(w.a, &fd));
    CHECK_INT(fd, -7);

    /* A whole invitation in thread mode: the invitee accepts from its callback. */
    u = tu_ud_new(&w.log, "accept");
    CHECK_OK(msgr_session_manager_on_invitation(w.mb, accept_at_once, u, tu_destroy, &cookie));
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    a = tu_session(&w);
    t = tu_ud_new(&w.log, "thread");
    t->extra = &r;
    CHECK_OK(msgr_session_on_state_changed(a, on_state_thread, t, tu_destroy, &cookie));
    CHECK_OK(msgr_session_invite(a, TU_BOB, "hi"));
    CHECK(tu_log_wait(&w.log, "A", "StateChanged(SS_ACCEPTED)", 1, TU_PATIENCE_MS));
    CHECK(tu_log_wait(&w.log, "B", "StateChanged(SS_ACCEPTED)", 1, TU_PATIENCE_MS));
    EXPECT_SIDE(&w.log, "MB", "MB:Invitation(\"hi\")");
    /* (When alice's thread delivers StateChanged(SS_READY), bob may have accepted already.) */
    EXPECT_SIDE_NOSTATE(&w.log, "A",
                        "A:StateChanged(SS_READY)",
                        "A:StateChanged(SS_INVITATION)",
                        "A:Accepted(\"from the callback\")",
                        "A:ReadyToLaunch",
                        "A:StateChanged(SS_ACCEPTED)");
    CHECK(tu_log_count(&w.log, "A", "@SS_CONNECTED") >= 4);
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_ACCEPTED",
                "B:BeforeAppLaunch(true)@SS_ACCEPTED",
                "B:ReadyToLaunch@SS_CONNECTED",
                "B:StateChanged(SS_ACCEPTED)@SS_CONNECTED");
    CHECK(u->obj != NULL);
    /* Alice's callbacks ran on one thread, not this one. */
    pthread_mutex_lock(&r.mu);
    CHECK_INT(r.n, 3);
    for (i = 0; i < r.n; i++) {
        CHECK(!pthread_equal(r.threads[i], pthread_self()));
        CHECK(pthread_equal(r.threads[i], r.threads[0]));
    }
    pthread_mutex_unlock(&r.mu);
    tu_log_clear(&w.log);

    /* Context data in order. */
    REQUIRE(w.nreceived == 1);
    CHECK_OK(msgr_session_send_context_data(w.received[0], "1"));
    CHECK_OK(msgr_session_send_context_data(w.received[0], "2"));
    CHECK_OK(msgr_session_send_context_data(w.received[0], "3"));
    CHECK(tu_log_wait(&w.log, "A", "ContextData", 3, TU_PATIENCE_MS));
    EXPECT_LOG(&w.log, "A:ContextData(\"1\")@SS_CONNECTED", "A:ContextData(\"2\")@SS_CONNECTED",
               "A:ContextData(\"3\")@SS_CONNECTED");
    CHECK_OK(msgr_session_cancel(a, E_FAIL, NULL));
    CHECK(tu_log_wait(&w.log, "B", "Termination", 1, TU_PATIENCE_MS));
    CHECK(tu_log_wait(&w.log, "A", "Termination", 1, TU_PATIENCE_MS));
    tu_world_cleanup(&w);
    pthread_mutex_destroy(&r.mu);
}

/* Events queued for a released manager or session are dropped: not delivered, not counted,
 * and they do not keep the descriptor readable. */
static void test_dropped_events_are_not_delivered(void) {
    tu_world w;
    msgr_session_manager *m2 = NULL;
    msgr_session *s = NULL, *b;
    uint32_t n = 99;
    int32_t fd = -1;
    tu_world_init(&w, 0);
    CHECK_OK(msgr_client_event_fd(w.a, &fd));
    REQUIRE_OK(msgr_session_manager_create(w.a, &m2));
    CHECK(readable(fd, 0));
    CHECK_OK(msgr_session_manager_release(m2)); /* its two creation events are dropped */
    CHECK(!readable(fd, 0));
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 0);

    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &s));
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    CHECK_OK(msgr_session_invite(s, TU_BOB, NULL));
    tu_pump(&w);
    b = tu_world_last_received(&w);
    REQUIRE(b != NULL);
    CHECK_OK(msgr_session_accept(b, NULL));
    CHECK_OK(msgr_client_dispatch(w.b, 0, &n));
    CHECK_OK(msgr_session_release(s)); /* alice's events about it are dropped */
    CHECK(!readable(fd, 0));
    n = 99;
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(n, 0);
    tu_pump(&w);
    EXPECT_SIDE_EMPTY(&w.log, "A");
    tu_world_cleanup(&w);
}

static void test_bad_modes(void) {
    msgr_service *svc = NULL;
    msgr_client *c = NULL;
    REQUIRE_OK(msgr_service_create(NULL, &svc));
    CHECK_HR(E_INVALIDARG, msgr_client_create(svc, TU_ALICE, 2, &c));
    CHECK_HR(E_INVALIDARG, msgr_client_create(svc, TU_ALICE, -1, &c));
    CHECK(c == NULL);
    /* The name was not taken by the refused calls. */
    CHECK_OK(msgr_client_create(svc, TU_ALICE, MSGR_DISPATCH_THREAD, &c));
    CHECK_OK(msgr_client_destroy(c));
    CHECK_OK(msgr_service_destroy(svc));
}

int main(void) {
    RUN(test_manual_dispatch);
    RUN(test_one_deliverer_at_a_time);
    RUN(test_event_fd);
    RUN(test_thread_mode);
    RUN(test_dropped_events_are_not_delivered);
    RUN(test_bad_modes);
    return tu_finish();
}
