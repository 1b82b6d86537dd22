/*
 * Many threads at once, with thread-mode clients: one worker thread per client creates
 * sessions, invites random other users, cancels some, sends context data to others, reads
 * every getter and registers and unadvises extra callbacks; the invitees accept, decline or
 * ignore from their clients' own threads; a reader thread calls the getters of every session
 * meanwhile; another thread registers and unregisters applications.
 *
 * Exact accounting afterwards: every session gets exactly one OnTermination per side, as its
 * last event; the inviter's first event is OnStateChanged(SS_READY); every manager got each
 * OnAppRegistered/OnAppUnRegistered exactly once; every destroy callback ran exactly once.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#define CLIENTS 4
#define PER_WORKER 100
#define APP_CHURN 30
#define MAX_RECS (CLIENTS * PER_WORKER)

typedef struct {
    char id[64];
    msgr_session *handle[2]; /* 0: inviter, 1: invitee (one reference each) */
    int events[2];
    int terms[2];
    int after_term[2];
    char first[2][64];
    int accept_hr_bad;
} rec;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static rec recs[MAX_RECS];
static int nrecs;
static uint64_t seed = 88172645463325252ull;
static int mgr_registered[CLIENTS], mgr_unregistered[CLIENTS];
static msgr_session_manager *managers[CLIENTS];
static int readers_stop; /* under mu */

static unsigned rnd(void) {
    uint64_t x;
    pthread_mutex_lock(&mu);
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    x = seed;
    pthread_mutex_unlock(&mu);
    return (unsigned)(x >> 16);
}

/* ---- session recorders: every event counts; OnTermination must be the last ---- */

static void note(void *ud, const char *what, bool term) {
    tu_ud *u = (tu_ud *)ud;
    rec *r = (rec *)u->extra;
    int side = u->ival;
    pthread_mutex_lock(&mu);
    if (r->events[side] == 0) {
        snprintf(r->first[side], sizeof r->first[side], "%s", what);
    }
    r->events[side]++;
    if (r->terms[side] > 0) {
        r->after_term[side]++;
    }
    if (term) {
        r->terms[side]++;
    }
    pthread_mutex_unlock(&mu);
}

static void ev_before(void *ud, msgr_session *s, bool *e) { (void)s; (void)e; note(ud, "BeforeAppLaunch", false); }
static void ev_accepted(void *ud, msgr_session *s, const char *d) { (void)s; (void)d; note(ud, "Accepted", false); }
static void ev_not_present(void *ud, msgr_session *s, const char *n, const char *u) { (void)s; (void)n; (void)u; note(ud, "AppNotPresent", false); }
static void ev_cancelled(void *ud, msgr_session *s, const char *d) { (void)s; (void)d; note(ud, "Cancelled", false); }
static void ev_context(void *ud, msgr_session *s, const char *d) { (void)s; (void)d; note(ud, "ContextData", false); }
static void ev_declined(void *ud, msgr_session *s, const char *d) { (void)s; (void)d; note(ud, "Declined", false); }
static void ev_ready(void *ud, msgr_session *s) { (void)s; note(ud, "ReadyToLaunch", false); }
static void ev_send_error(void *ud, msgr_session *s, MSGR_HRESULT hr) { (void)s; (void)hr; note(ud, "SendError", false); }
static void ev_state(void *ud, msgr_session *s, SESSION_STATE prev) {
    char w[64];
    (void)s;
    snprintf(w, sizeof w, "StateChanged(%s)", tu_state_name((int)prev));
    note(ud, w, false);
}
static void ev_term(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *d) { (void)s; (void)hr; (void)d; note(ud, "Termination", true); }

static void watch(msgr_session *s, rec *r, int side) {
    uint32_t c;
#define W(fn, cb)                                                   \
    do {                                                            \
        tu_ud *u_ = tu_ud_new(NULL, side ? "B" : "A");              \
        u_->extra = r;                                              \
        u_->ival = side;                                            \
        CHECK_OK(fn(s, cb, u_, tu_destroy, &c));                    \
    } while (0)
    W(msgr_session_before_app_launch, ev_before);
    W(msgr_session_on_accepted, ev_accepted);
    W(msgr_session_on_app_not_present, ev_not_present);
    W(msgr_session_on_cancelled, ev_cancelled);
    W(msgr_session_on_context_data, ev_context);
    W(msgr_session_on_declined, ev_declined);
    W(msgr_session_on_ready_to_launch, ev_ready);
    W(msgr_session_on_send_error, ev_send_error);
    W(msgr_session_on_state_changed, ev_state);
    W(msgr_session_on_termination, ev_term);
#undef W
}

static rec *find(const char *id) {
    int i;
    rec *r = NULL;
    pthread_mutex_lock(&mu);
    for (i = 0; i < nrecs; i++) {
        if (strcmp(recs[i].id, id) == 0) {
            r = &recs[i];
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return r;
}

/* ---- manager callbacks (on the clients' threads) ---- */

static void on_invitation(void *ud, msgr_session_manager *m, msgr_session *s, const char *data,
                          bool *handled) {
    char id[64];
    rec *r;
    MSGR_HRESULT hr = S_OK;
    unsigned choice = rnd() % 3;
    (void)ud;
    (void)m;
    (void)data;
    *handled = true;
    r = find(tu_sid(s, id, sizeof id));
    if (!CHECK(r != NULL)) {
        return;
    }
    CHECK_OK(msgr_session_add_ref(s));
    watch(s, r, 1);
    if (choice == 0) {
        hr = msgr_session_accept(s, NULL);
    } else if (choice == 1) {
        hr = msgr_session_decline(s, "no");
    }
    pthread_mutex_lock(&mu);
    if (hr != S_OK && hr != SR_SESSION_STATE_INVALID) {
        r->accept_hr_bad++;
    }
    r->handle[1] = s;
    pthread_mutex_unlock(&mu);
}

static void on_registered(void *ud, msgr_session_manager *m, const char *g) {
    (void)m;
    (void)g;
    pthread_mutex_lock(&mu);
    mgr_registered[((tu_ud *)ud)->ival]++;
    pthread_mutex_unlock(&mu);
}

static void on_unregistered(void *ud, msgr_session_manager *m, const char *g) {
    (void)m;
    (void)g;
    pthread_mutex_lock(&mu);
    mgr_unregistered[((tu_ud *)ud)->ival]++;
    pthread_mutex_unlock(&mu);
}

static void noop_context(void *ud, msgr_session *s, const char *d) {
    (void)ud;
    (void)s;
    (void)d;
}

/* ---- threads ---- */

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg, i;
    for (i = 0; i < PER_WORKER; i++) {
        msgr_session *s = NULL;
        rec *r;
        char user[64], id[64], buf[128];
        size_t needed;
        uint32_t flags, cookie;
        SESSION_STATE st;
        MSGR_HRESULT hr;
        int other = (me + 1 + (int)(rnd() % (CLIENTS - 1))) % CLIENTS;
        if (!CHECK_OK(msgr_session_manager_create_session(managers[me], &s))) {
            continue;
        }
        pthread_mutex_lock(&mu);
        r = &recs[nrecs++];
        tu_sid(s, r->id, sizeof r->id);
        r->handle[0] = s;
        pthread_mutex_unlock(&mu);
        watch(s, r, 0);
        CHECK_OK(msgr_session_set_application(s, TU_APP));
        snprintf(user, sizeof user, "user%d@example.com", other);
        CHECK_OK(msgr_session_invite(s, user, "hi"));
        /* Getters while the other side may be answering. */
        CHECK_OK(msgr_session_get_state(s, &st));
        CHECK(st >= SS_INVITATION && st <= SS_TERMINATED);
        CHECK_OK(msgr_session_get_flags(s, &flags));
        CHECK_INT(flags, SF_INVITER);
        CHECK_SSTR(msgr_session_get_user, s, user);
        CHECK_STR(tu_sid(s, id, sizeof id), r->id);
        CHECK_OK(msgr_session_get_context_data(s, buf, sizeof buf, &needed));
        /* A registration made and ended at once. */
        {
            tu_ud *u = tu_ud_new(NULL, "noop");
            CHECK_OK(msgr_session_on_context_data(s, noop_context, u, tu_destroy, &cookie));
            CHECK_OK(msgr_session_unadvise(s, cookie));
        }
        switch (rnd() % 4) {
        case 0:
            hr = msgr_session_cancel(s, E_FAIL, NULL);
            CHECK(hr == S_OK || hr == SR_SESSION_STATE_INVALID);
            break;
        case 1:
            hr = msgr_session_send_context_data(s, "ctx");
            CHECK(hr == S_OK || hr == SR_NOT_VALID_FOR_APP_INVITE || hr == SR_SESSION_STATE_INVALID);
            break;
        default:
            break;
        }
    }
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    for (;;) {
        int i, n, stop;
        pthread_mutex_lock(&mu);
        n = nrecs;
        stop = readers_stop;
        pthread_mutex_unlock(&mu);
        if (stop) {
            break;
        }
        for (i = 0; i < n; i++) {
            msgr_session *s;
            SESSION_STATE st;
            char buf[128];
            size_t needed;
            MSGR_HRESULT hr;
            pthread_mutex_lock(&mu);
            s = recs[i].handle[0];
            pthread_mutex_unlock(&mu);
            CHECK_OK(msgr_session_get_state(s, &st));
            CHECK(st >= SS_READY && st <= SS_TERMINATED);
            CHECK_OK(msgr_session_get_session_id(s, buf, sizeof buf, &needed));
            hr = msgr_session_get_user(s, buf, sizeof buf, &needed);
            CHECK(hr == S_OK || hr == SR_NO_USER_INVITED);
            hr = msgr_session_get_remote_address(s, buf, sizeof buf, &needed);
            CHECK(hr == S_OK || hr == S_FALSE);
        }
        tu_sleep_ms(1);
    }
    return NULL;
}

static void *churner(void *arg) {
    int k;
    (void)arg;
    for (k = 0; k < APP_CHURN; k++) {
        char guid[64];
        snprintf(guid, sizeof guid, "{00000000-0000-0000-0000-%012d}", k);
        CHECK_OK(msgr_session_manager_register_application(managers[k % CLIENTS], guid, "churn", "", "", 0));
        CHECK_OK(msgr_session_manager_unregister_application(managers[(k + 1) % CLIENTS], guid));
    }
    return NULL;
}

static bool all_done(void) {
    int i;
    bool done = true;
    pthread_mutex_lock(&mu);
    for (i = 0; i < nrecs; i++) {
        if (recs[i].terms[0] < 1 || recs[i].terms[1] < 1) {
            done = false;
        }
    }
    for (i = 0; i < CLIENTS; i++) {
        if (mgr_registered[i] < APP_CHURN + 1 || mgr_unregistered[i] < APP_CHURN) {
            done = false;
        }
    }
    pthread_mutex_unlock(&mu);
    return done;
}

static bool all_received(void) {
    int i;
    bool done = true;
    pthread_mutex_lock(&mu);
    for (i = 0; i < nrecs; i++) {
        if (recs[i].handle[1] == NULL) {
            done = false;
        }
    }
    pthread_mutex_unlock(&mu);
    return done;
}

static void test_threads(void) {
    msgr_service *svc = NULL;
    msgr_service_options o;
    msgr_client *clients[CLIENTS];
    pthread_t workers[CLIENTS], rd, ch;
    uint64_t deadline;
    int i, bad = 0;

    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = true;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    for (i = 0; i < CLIENTS; i++) {
        char name[64];
        uint32_t c;
        tu_ud *u;
        snprintf(name, sizeof name, "user%d@example.com", i);
        REQUIRE_OK(msgr_client_create(svc, name, MSGR_DISPATCH_THREAD, &clients[i]));
        REQUIRE_OK(msgr_session_manager_create(clients[i], &managers[i]));
        CHECK_LOCK(managers[i], LOCK_DISABLED);
        u = tu_ud_new(NULL, "invitation");
        CHECK_OK(msgr_session_manager_on_invitation(managers[i], on_invitation, u, tu_destroy, &c));
        u = tu_ud_new(NULL, "registered");
        u->ival = i;
        CHECK_OK(msgr_session_manager_on_app_registered(managers[i], on_registered, u, tu_destroy, &c));
        u = tu_ud_new(NULL, "unregistered");
        u->ival = i;
        CHECK_OK(msgr_session_manager_on_app_unregistered(managers[i], on_unregistered, u, tu_destroy, &c));
    }
    REQUIRE_OK(msgr_session_manager_register_application(managers[0], TU_APP, "Stress", "u", "", 0));

    REQUIRE(pthread_create(&rd, NULL, reader, NULL) == 0);
    REQUIRE(pthread_create(&ch, NULL, churner, NULL) == 0);
    for (i = 0; i < CLIENTS; i++) {
        REQUIRE(pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i) == 0);
    }
    for (i = 0; i < CLIENTS; i++) {
        pthread_join(workers[i], NULL);
    }
    pthread_join(ch, NULL);
    CHECK_INT(nrecs, MAX_RECS);

    /* Every invitation reached its invitee's callback (which answered or not). */
    deadline = tu_now_ms() + 2 * TU_PATIENCE_MS;
    while (!all_received() && tu_now_ms() < deadline) {
        tu_sleep_ms(5);
    }
    CHECK(all_received());
    /* End what is still open: connected sessions are cancelled, invitations time out. */
    for (i = 0; i < nrecs; i++) {
        SESSION_STATE st = SS_UNKNOWN;
        CHECK_OK(msgr_session_get_state(recs[i].handle[0], &st));
        if (st == SS_ACCEPTED || st == SS_CONNECTED) {
            MSGR_HRESULT hr = msgr_session_cancel(recs[i].handle[0], E_FAIL, NULL);
            CHECK(hr == S_OK || hr == SR_SESSION_STATE_INVALID);
        }
    }
    CHECK_OK(msgr_service_advance_clock(svc, 1000000));
    deadline = tu_now_ms() + 2 * TU_PATIENCE_MS;
    while (!all_done() && tu_now_ms() < deadline) {
        tu_sleep_ms(5);
    }
    tu_sleep_ms(50); /* anything late would show up as an event after OnTermination */
    pthread_mutex_lock(&mu);
    readers_stop = 1;
    pthread_mutex_unlock(&mu);
    pthread_join(rd, NULL);

    pthread_mutex_lock(&mu);
    for (i = 0; i < nrecs; i++) {
        rec *r = &recs[i];
        int side;
        for (side = 0; side < 2; side++) {
            if (r->terms[side] != 1 || r->after_term[side] != 0) {
                if (bad++ < 10) {
                    tu_failf(__FILE__, __LINE__,
                             "session %s side %c: %d events, %d OnTermination, %d after it",
                             r->id, side ? 'B' : 'A', r->events[side], r->terms[side],
                             r->after_term[side]);
                }
            }
        }
        if (strcmp(r->first[0], "StateChanged(SS_READY)") != 0) {
            tu_failf(__FILE__, __LINE__, "session %s: the inviter's first event is %s", r->id,
                     r->first[0]);
        }
        if (r->accept_hr_bad) {
            tu_failf(__FILE__, __LINE__, "session %s: Accept/Decline gave an undocumented code", r->id);
        }
    }
    for (i = 0; i < CLIENTS; i++) {
        /* TU_APP plus the churn, each exactly once, to every manager. */
        CHECK_INT(mgr_registered[i], APP_CHURN + 1);
        CHECK_INT(mgr_unregistered[i], APP_CHURN);
    }
    pthread_mutex_unlock(&mu);
    CHECK_INT(bad, 0);

    for (i = 0; i < nrecs; i++) {
        CHECK_OK(msgr_session_release(recs[i].handle[0]));
        if (recs[i].handle[1] != NULL) {
            CHECK_OK(msgr_session_release(recs[i].handle[1]));
        }
    }
    for (i = 0; i < CLIENTS; i++) {
        CHECK_OK(msgr_session_manager_release(managers[i]));
        CHECK_OK(msgr_client_destroy(clients[i]));
    }
    CHECK_OK(msgr_service_destroy(svc));
}

/* ---- racing destroys and releases: each reference is dropped exactly once ---- */

#define RACERS 8

/* A start gate (pthread barriers are not everywhere). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int waiting, open;
} gate;

static void gate_init(gate *g) {
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->waiting = g->open = 0;
}

static void gate_wait(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}

/* Opens the gate once n threads wait at it. */
static void gate_open(gate *g, int n) {
    pthread_mutex_lock(&g->mu);
    while (g->waiting < n) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g) {
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

typedef struct {
    gate *start;
    msgr_client *client;
    msgr_session *session;
    MSGR_HRESULT hr;
} racer;

static void *destroy_racer(void *arg) {
    racer *r = (racer *)arg;
    gate_wait(r->start);
    r->hr = msgr_client_destroy(r->client);
    return NULL;
}

static void *release_racer(void *arg) {
    racer *r = (racer *)arg;
    gate_wait(r->start);
    r->hr = msgr_session_release(r->session);
    return NULL;
}

static void *dispatch_forever(void *arg) {
    racer *r = (racer *)arg;
    uint32_t n = 0;
    r->hr = msgr_client_dispatch(r->client, MSGR_INFINITE, &n);
    return NULL;
}

static void test_racing_destroy_and_release(void) {
    msgr_service *svc = NULL;
    msgr_session_manager *m = NULL;
    msgr_session *s = NULL;
    gate start;
    pthread_t th[RACERS];
    racer r[RACERS];
    int i, oks, handles, round;
    REQUIRE_OK(msgr_service_create(NULL, &svc));
    for (round = 0; round < 2; round++) {
        msgr_client *c = NULL;
        REQUIRE_OK(msgr_client_create(svc, "racer@example.com", round, &c));
        gate_init(&start);
        for (i = 0; i < RACERS; i++) {
            r[i].start = &start;
            r[i].client = c;
            REQUIRE(pthread_create(&th[i], NULL, destroy_racer, &r[i]) == 0);
        }
        gate_open(&start, RACERS);
        oks = handles = 0;
        for (i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            oks += r[i].hr == S_OK;
            handles += r[i].hr == E_HANDLE;
        }
        CHECK_INT(oks, 1);
        CHECK_INT(handles, RACERS - 1);
        gate_destroy(&start);
    }

    /* RACERS references, RACERS threads releasing at once: all succeed, then it is stale. */
    {
        msgr_client *c = NULL;
        REQUIRE_OK(msgr_client_create(svc, "racer@example.com", MSGR_DISPATCH_MANUAL, &c));
        REQUIRE_OK(msgr_session_manager_create(c, &m));
        REQUIRE_OK(msgr_session_manager_create_session(m, &s));
        for (i = 1; i < RACERS; i++) {
            CHECK_OK(msgr_session_add_ref(s));
        }
        gate_init(&start);
        for (i = 0; i < RACERS; i++) {
            r[i].start = &start;
            r[i].session = s;
            REQUIRE(pthread_create(&th[i], NULL, release_racer, &r[i]) == 0);
        }
        gate_open(&start, RACERS);
        for (i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            CHECK_OK(r[i].hr);
        }
        gate_destroy(&start);
        CHECK_HR(E_HANDLE, msgr_session_release(s));

        /* A thread waiting for ever in dispatch wakes up when the client is destroyed. */
        r[0].client = c;
        r[0].hr = E_UNEXPECTED;
        REQUIRE(pthread_create(&th[0], NULL, dispatch_forever, &r[0]) == 0);
        tu_sleep_ms(50);
        CHECK_OK(msgr_client_destroy(c));
        pthread_join(th[0], NULL);
        CHECK(r[0].hr == S_OK || r[0].hr == E_HANDLE);
        CHECK_OK(msgr_session_manager_release(m));
    }
    CHECK_OK(msgr_service_destroy(svc));
}

int main(void) {
    RUN(test_threads);
    RUN(test_racing_destroy_and_release);
    return tu_finish();
}
