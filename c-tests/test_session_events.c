/*
 * The ten session events (DMsgrSessionEvents) on both sides, for every row of the table in
 * docs/CONTRACT.md ("Event order"), through the C API. Each line of the log is
 * "<side>:<event>(<arguments>)@<State seen by the callback>": the State property already
 * holds the new state when any event of a transition fires, OnStateChanged comes first,
 * OnTermination last and exactly once.
 *
 * Also: the session properties and the documented refusals of each method, the launcher
 * (msgr_client_set_launcher, the default launcher, BeforeAppLaunch's veto, a failed
 * launch) and msgr_session_manager_get_launching_session.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* The rows of the table                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_invite(void) {
    tu_world w;
    msgr_session *a, *b;
    char ida[64], idb[64];
    uint32_t flags = 0;
    tu_world_init(&w, 0);
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, TU_BOB, "hello"));
    /* The state changes at once; the event is queued. */
    CHECK_STATE(a, SS_INVITATION);
    EXPECT_EMPTY(&w.log);
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A", "A:StateChanged(SS_READY)@SS_INVITATION");
    EXPECT_SIDE(&w.log, "MB", "MB:Invitation(\"hello\")");
    /* The invitee's session is born in SS_INVITATION: no OnStateChanged for it. */
    EXPECT_SIDE_EMPTY(&w.log, "B");
    EXPECT_SIDE_EMPTY(&w.log, "MA");
    REQUIRE(w.nreceived == 1);
    b = w.received[0];
    CHECK_STR(tu_sid(b, idb, sizeof idb), tu_sid(a, ida, sizeof ida));
    CHECK_STATE(b, SS_INVITATION);
    CHECK_OK(msgr_session_get_flags(b, &flags));
    CHECK_INT(flags, SF_INVITEE);
    CHECK_SSTR(msgr_session_get_application, b, TU_APP);
    CHECK_SSTR(msgr_session_get_context_data, b, "hello");
    CHECK_SSTR(msgr_session_get_user, b, TU_ALICE);
    CHECK_SSTR(msgr_session_get_user, a, TU_BOB);
    tu_world_cleanup(&w);
}

static void test_accept_app_registered(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_world_init(&w, 0);
    a = tu_session(&w);
    CHECK_OK(msgr_session_set_local_address(a, "10.0.0.1:1000"));
    CHECK_OK(msgr_session_invite(a, TU_BOB, "hello"));
    tu_pump(&w);
    REQUIRE(w.nreceived == 1);
    b = w.received[0];
    tu_log_clear(&w.log);
    /* RemoteAddress: S_FALSE and "" before SS_CONNECTED. */
    CHECK_SSTR_HR(msgr_session_get_remote_address, b, S_FALSE, "");
    CHECK_SSTR_HR(msgr_session_get_remote_address, a, S_FALSE, "");
    CHECK_OK(msgr_session_set_local_address(b, "10.0.0.2:5000"));

    CHECK_OK(msgr_session_accept(b, "yes"));
    CHECK_STATE(b, SS_ACCEPTED);
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_CONNECTED",
                "A:Accepted(\"yes\")@SS_CONNECTED",
                "A:ReadyToLaunch@SS_CONNECTED",
                "A:StateChanged(SS_ACCEPTED)@SS_CONNECTED");
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_ACCEPTED",
                "B:BeforeAppLaunch(true)@SS_ACCEPTED",
                "B:ReadyToLaunch@SS_CONNECTED",
                "B:StateChanged(SS_ACCEPTED)@SS_CONNECTED");
    CHECK_INT(tu_log_count(&w.log, NULL, NULL), 8);
    CHECK_STATE(a, SS_CONNECTED);
    CHECK_STATE(b, SS_CONNECTED);
    /* Each side's RemoteAddress is the other's LocalAddress. */
    CHECK_SSTR(msgr_session_get_remote_address, a, "10.0.0.2:5000");
    CHECK_SSTR(msgr_session_get_remote_address, b, "10.0.0.1:1000");
    /* ContextData: the last application data received. */
    CHECK_SSTR(msgr_session_get_context_data, a, "yes");
    CHECK_SSTR(msgr_session_get_context_data, b, "hello");
    /* An answered invitation does not time out. */
    tu_log_clear(&w.log);
    CHECK_OK(msgr_service_advance_clock(w.svc, 10u * 120000u));
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    tu_world_cleanup(&w);
}

static void rec_transition(void *ud, msgr_session *s, SESSION_STATE previous,
                           SESSION_STATE current) {
    char body[96];
    snprintf(body, sizeof body, "Transition(%s,%s)", tu_state_name((int)previous),
             tu_state_name((int)current));
    tu_sline(ud, s, "%s", body);
}

/* msgr_session_on_state_transition(): the same event as OnStateChanged, in the same order,
 * with the state each transition led to; the plain callback sees the state at delivery. */
static void test_state_transitions(void) {
    tu_world w;
    msgr_session *a, *b;
    uint32_t cookie = 0, n = 0;
    tu_ud *u;
    tu_world_init(&w, 0);
    a = tu_session(&w);
    u = tu_ud_new(&w.log, "A");
    u->obj = a;
    REQUIRE_OK(msgr_session_on_state_transition(a, rec_transition, u, tu_destroy, &cookie));
    u->cookie = cookie;
    CHECK_HR(E_POINTER, msgr_session_on_state_transition(a, NULL, NULL, NULL, &cookie));
    CHECK_HR(E_POINTER, msgr_session_on_state_transition(a, rec_transition, NULL, NULL, NULL));
    CHECK_HR(E_POINTER, msgr_session_on_state_transition(NULL, rec_transition, NULL, NULL, &cookie));
    CHECK_OK(msgr_session_invite(a, TU_BOB, NULL));
    tu_pump(&w);
    REQUIRE(w.nreceived == 1);
    b = w.received[0];
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_READY)@SS_INVITATION",
                "A:Transition(SS_READY,SS_INVITATION)@SS_INVITATION");
    tu_log_clear(&w.log);
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_CONNECTED",
                "A:Transition(SS_INVITATION,SS_ACCEPTED)@SS_CONNECTED",
                "A:Accepted(NULL)@SS_CONNECTED",
                "A:ReadyToLaunch@SS_CONNECTED",
                "A:StateChanged(SS_ACCEPTED)@SS_CONNECTED",
                "A:Transition(SS_ACCEPTED,SS_CONNECTED)@SS_CONNECTED");
    tu_log_clear(&w.log);
    /* Unregistered like any registration: nothing more reaches it. */
    CHECK_OK(msgr_session_unadvise(a, cookie));
    CHECK_OK(msgr_session_cancel(a, SR_SESSION_CANCELLED_REMOTE, NULL));
    CHECK_OK(msgr_client_dispatch(w.a, 0, &n));
    CHECK_INT(tu_log_count(&w.log, "A", "Transition"), 0);
    CHECK_INT(tu_log_count(&w.log, "A", "StateChanged(SS_CONNECTED)"), 1);
    tu_world_cleanup(&w);
}

static void test_accept_app_not_registered(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_world_init(&w, 0);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_session_manager_unregister_application(w.mb, TU_APP));
    tu_pump(&w);
    tu_log_clear(&w.log);
    /* ApplicationName/URL come from the registry: "" when the application is not there. */
    CHECK_SSTR(msgr_session_get_application_name, a, "");
    CHECK_SSTR(msgr_session_get_application_name, b, "");
    CHECK_SSTR(msgr_session_get_application, b, TU_APP);

    CHECK_OK(msgr_session_accept(b, "yes"));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_DECLINED",
                "A:Declined(NULL)@SS_DECLINED",
                "A:Termination(SR_APP_NOT_REGISTERED,NULL)@SS_DECLINED");
    EXPECT_SIDE(&w.log, "B",
                "B:AppNotPresent(\"" TU_APP_NAME "\",\"" TU_APP_URL "\")@SS_DECLINED",
                "B:StateChanged(SS_INVITATION)@SS_DECLINED",
                "B:Termination(SR_APP_NOT_REGISTERED,NULL)@SS_DECLINED");
    CHECK_STATE(a, SS_DECLINED);
    CHECK_STATE(b, SS_DECLINED);
    tu_world_cleanup(&w);
}

static void test_decline(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_world_init(&w, 0);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_session_decline(b, "busy"));
    CHECK_STATE(b, SS_DECLINED);
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_DECLINED",
                "A:Declined(\"busy\")@SS_DECLINED",
                "A:Termination(SR_INVITATION_DECLINED,\"busy\")@SS_DECLINED");
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_DECLINED",
                "B:Termination(SR_INVITATION_DECLINED,\"busy\")@SS_DECLINED");
    CHECK_SSTR(msgr_session_get_context_data, a, "busy");
    /* Ended: nothing more is accepted, and no timeout comes later. */
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_accept(b, NULL));
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_decline(b, NULL));
    tu_log_clear(&w.log);
    CHECK_OK(msgr_service_advance_clock(w.svc, 1000000));
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    tu_world_cleanup(&w);
}

static void test_cancel_by_inviter_during_invitation(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_world_init(&w, 0);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_session_cancel(a, SR_SESSION_CANCELLED_REMOTE, "bye"));
    CHECK_STATE(a, SS_CANCELLED);
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_CANCELLED",
                "A:Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")@SS_CANCELLED");
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_CANCELLED",
                "B:Cancelled(\"bye\")@SS_CANCELLED",
                "B:Termination(SR_SESSION_CANCELLED_REMOTE,\"bye\")@SS_CANCELLED");
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_accept(b, NULL));
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_cancel(a, E_FAIL, NULL));
    tu_world_cleanup(&w);
}

static void test_cancel_once_connected_by_either_side(void) {
    int invitee_cancels;
    for (invitee_cancels = 0; invitee_cancels < 2; invitee_cancels++) {
        tu_world w;
        msgr_session *a, *b;
        tu_world_init(&w, 0);
        tu_connected(&w, &a, &b);
        CHECK_OK(msgr_session_cancel(invitee_cancels ? b : a, E_FAIL, NULL));
        tu_pump(&w);
        if (invitee_cancels) {
            EXPECT_SIDE(&w.log, "B",
                        "B:StateChanged(SS_CONNECTED)@SS_CANCELLED",
                        "B:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@SS_CANCELLED");
            EXPECT_SIDE(&w.log, "A",
                        "A:StateChanged(SS_CONNECTED)@SS_CANCELLED",
                        "A:Cancelled(NULL)@SS_CANCELLED",
                        "A:Termination(E_FAIL,NULL)@SS_CANCELLED");
        } else {
            EXPECT_SIDE(&w.log, "A",
                        "A:StateChanged(SS_CONNECTED)@SS_CANCELLED",
                        "A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@SS_CANCELLED");
            EXPECT_SIDE(&w.log, "B",
                        "B:StateChanged(SS_CONNECTED)@SS_CANCELLED",
                        "B:Cancelled(NULL)@SS_CANCELLED",
                        "B:Termination(E_FAIL,NULL)@SS_CANCELLED");
        }
        CHECK_STATE(a, SS_CANCELLED);
        CHECK_STATE(b, SS_CANCELLED);
        tu_world_cleanup(&w);
    }
}

static void test_cancel_in_ready(void) {
    tu_world w;
    msgr_session *a;
    tu_world_init(&w, 0);
    a = tu_session(&w);
    CHECK_OK(msgr_session_cancel(a, E_FAIL, "never sent"));
    tu_pump(&w);
    EXPECT_LOG(&w.log,
               "A:StateChanged(SS_READY)@SS_CANCELLED",
               "A:Termination(SR_CANCEL_BEFORE_CONNECT,\"never sent\")@SS_CANCELLED");
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_cancel(a, E_FAIL, NULL));
    CHECK_HR(SR_SESSION_NOT_READY, msgr_session_invite(a, TU_BOB, NULL));
    CHECK_HR(SR_SESSION_NOT_READY, msgr_session_set_application(a, TU_APP));
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    tu_world_cleanup(&w);
}

static void test_timeout(void) {
    tu_world w;
    msgr_session *a, *b;
    msgr_service_options o;
    tu_world_init(&w, 0);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_service_advance_clock(w.svc, 119999));
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    CHECK_OK(msgr_service_advance_clock(w.svc, 1));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_TERMINATED",
                "A:Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED");
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_TERMINATED",
                "B:Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED");
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_accept(b, NULL));
    tu_world_cleanup(&w);

    /* invitation_timeout_ms is honoured. */
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = true;
    o.invitation_timeout_ms = 5000;
    tu_world_init_opts(&w, 0, &o);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_service_advance_clock(w.svc, 4999));
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    CHECK_OK(msgr_service_advance_clock(w.svc, 1));
    tu_pump(&w);
    CHECK_INT(tu_log_count(&w.log, NULL, "Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED"), 2);
    tu_world_cleanup(&w);
}

static void test_real_clock_timeout(void) {
    tu_world w;
    msgr_session *a;
    msgr_service_options o;
    uint64_t deadline;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = false;
    o.invitation_timeout_ms = 50;
    tu_world_init_opts(&w, 0, &o);
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_service_advance_clock(w.svc, 1));
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, TU_BOB, NULL));
    deadline = tu_now_ms() + TU_PATIENCE_MS;
    while (tu_log_count(&w.log, NULL, "Termination") < 2 && tu_now_ms() < deadline) {
        uint32_t n;
        CHECK_OK(msgr_client_dispatch(w.a, 20, &n));
        CHECK_OK(msgr_client_dispatch(w.b, 0, &n));
    }
    /* (Under a slow runner the timeout may fire before the first event is delivered.) */
    EXPECT_SIDE_NOSTATE(&w.log, "A", "A:StateChanged(SS_READY)", "A:StateChanged(SS_INVITATION)",
                        "A:Termination(SR_SESSION_TIMEOUT,NULL)");
    CHECK_INT(tu_log_count(&w.log, "A", "@SS_TERMINATED") >= 2, 1);
    EXPECT_SIDE(&w.log, "MB", "MB:Invitation(NULL)");
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_TERMINATED",
                "B:Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED");
    tu_world_cleanup(&w);
}

/* A timeout that falls due while the invitation is on its way must still end both sides
 * (docs/CONTRACT.md, "Event order": no answer within the invitation timeout ends both sides
 * with SS_TERMINATED and OnTermination(SR_SESSION_TIMEOUT)). With a 1 ms timeout on the real
 * clock the timer races the delivery of the invitation; every round must end on both sides. */
static void test_timeout_racing_the_invitation(void) {
    tu_world w;
    msgr_service_options o;
    int round;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = false;
    o.invitation_timeout_ms = 1;
    tu_world_init_opts(&w, 0, &o);
    for (round = 1; round <= 150; round++) {
        msgr_session *a = tu_session(&w);
        uint64_t deadline = tu_now_ms() + TU_PATIENCE_MS;
        CHECK_OK(msgr_session_invite(a, TU_BOB, NULL));
        while ((tu_log_count(&w.log, "A", "Termination") < (size_t)round ||
                tu_log_count(&w.log, "B", "Termination") < (size_t)round) &&
               tu_now_ms() < deadline) {
            uint32_t n;
            CHECK_OK(msgr_client_dispatch(w.a, 2, &n));
            CHECK_OK(msgr_client_dispatch(w.b, 0, &n));
            if (tu_log_count(&w.log, "A", "Termination") >= (size_t)round &&
                tu_log_count(&w.log, "B", "Termination") < (size_t)round &&
                tu_now_ms() + TU_PATIENCE_MS - 2000 > deadline) {
                /* 2 s after the invitation the inviter has ended and the invitee has not */
                break;
            }
        }
        if (!CHECK_INT(tu_log_count(&w.log, "B", "Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED"), round) ||
            !CHECK_INT(tu_log_count(&w.log, "A", "Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED"), round)) {
            fprintf(stderr, "      round %d: the invitee's session is in %s\n", round,
                    tu_state_name(tu_get_state(tu_world_last_received(&w))));
            break;
        }
    }
    tu_world_cleanup(&w);
}

static void test_other_party_signs_out_or_shuts_down(void) {
    int how;
    for (how = 0; how < 3; how++) {
        tu_world w;
        msgr_session *a, *b;
        tu_world_init(&w, 0);
        tu_connected(&w, &a, &b);
        if (how == 0) {
            CHECK_OK(msgr_client_sign_out(w.b));
        } else if (how == 1) {
            CHECK_OK(msgr_client_shutdown(w.b));
        } else {
            /* The inviter signs out. */
            CHECK_OK(msgr_client_sign_out(w.a));
        }
        tu_pump(&w);
        EXPECT_SIDE(&w.log, "A",
                    "A:StateChanged(SS_CONNECTED)@SS_TERMINATED",
                    "A:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
        EXPECT_SIDE(&w.log, "B",
                    "B:StateChanged(SS_CONNECTED)@SS_TERMINATED",
                    "B:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
        if (how == 0) {
            EXPECT_SIDE(&w.log, "MB", "MB:LockStatusChanged(LOCK_NOTINITIALIZED)");
        } else if (how == 1) {
            EXPECT_SIDE(&w.log, "MB", "MB:LockStatusChanged(LOCK_NOTINITIALIZED)", "MB:AppShutdown");
        } else {
            EXPECT_SIDE(&w.log, "MA", "MA:LockStatusChanged(LOCK_NOTINITIALIZED)");
        }
        tu_world_cleanup(&w);
    }
}

static void test_sign_out_during_invitation(void) {
    tu_world w;
    msgr_session *a, *b;
    tu_world_init(&w, 0);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_client_sign_out(w.a));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_INVITATION)@SS_TERMINATED",
                "A:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_TERMINATED",
                "B:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
    /* No timeout afterwards. */
    tu_log_clear(&w.log);
    CHECK_OK(msgr_service_advance_clock(w.svc, 1000000));
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    tu_world_cleanup(&w);
}

static void test_other_client_destroyed(void) {
    tu_world w;
    msgr_session *a, *c;
    msgr_client *carol = NULL;
    msgr_session_manager *mc = NULL;
    tu_manager_watch wc;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_client_create(w.svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &carol));
    REQUIRE_OK(msgr_session_manager_create(carol, &mc));
    wc = tu_watch_manager(&w.log, mc, "MC");
    wc.invitation->world = &w;
    wc.invitation->session_tag = "C";
    tu_pump1(carol);
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, "carol@example.com", NULL));
    tu_pump(&w);
    tu_pump1(carol);
    REQUIRE(w.nreceived == 1);
    c = w.received[0];
    CHECK_OK(msgr_session_accept(c, NULL));
    tu_pump1(carol);
    tu_pump(&w);
    CHECK_STATE(a, SS_CONNECTED);
    tu_log_clear(&w.log);
    CHECK_OK(msgr_client_destroy(carol));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A",
                "A:StateChanged(SS_CONNECTED)@SS_TERMINATED",
                "A:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
    /* The destroyed client's queued events are dropped; its handles stay valid. */
    EXPECT_SIDE_EMPTY(&w.log, "C");
    EXPECT_SIDE_EMPTY(&w.log, "MC");
    CHECK_STATE(c, SS_TERMINATED);
    CHECK_HR(E_HANDLE, msgr_client_destroy(carol));
    CHECK_OK(msgr_session_manager_release(mc));
    tu_world_cleanup(&w);
}

static void test_send_failures(void) {
    tu_world w;
    msgr_session *a, *b, *s;
    tu_world_init(&w, 0);
    CHECK_HR(S_FALSE, msgr_service_set_reachable(w.svc, "nobody@example.com", false));

    /* Context data. */
    tu_connected(&w, &a, &b);
    CHECK_OK(msgr_service_set_reachable(w.svc, TU_BOB, false));
    CHECK_OK(msgr_session_send_context_data(a, "lost"));
    tu_pump(&w);
    EXPECT_LOG(&w.log, "A:SendError(SR_CONTEXT_DATA_SEND_FAILURE)@SS_CONNECTED");

    /* The invitation: lost; it then times out on the inviter. */
    s = tu_session(&w);
    CHECK_OK(msgr_session_invite(s, TU_BOB, NULL));
    tu_pump(&w);
    EXPECT_LOG(&w.log,
               "A:StateChanged(SS_READY)@SS_INVITATION",
               "A:SendError(SR_INVITATION_SEND_FAILURE)@SS_INVITATION");
    CHECK_OK(msgr_service_advance_clock(w.svc, 120000));
    tu_pump(&w);
    EXPECT_LOG(&w.log,
               "A:StateChanged(SS_INVITATION)@SS_TERMINATED",
               "A:Termination(SR_SESSION_TIMEOUT,NULL)@SS_TERMINATED");

    /* The cancellation: OnTermination stays the last event of the side. */
    CHECK_OK(msgr_session_cancel(a, E_FAIL, NULL));
    tu_pump(&w);
    EXPECT_LOG(&w.log,
               "A:StateChanged(SS_CONNECTED)@SS_CANCELLED",
               "A:SendError(SR_CANCEL_SEND_FAILURE)@SS_CANCELLED",
               "A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@SS_CANCELLED");
    CHECK_STATE(b, SS_CONNECTED); /* bob never heard of it */
    CHECK_OK(msgr_service_set_reachable(w.svc, TU_BOB, true));
    CHECK_OK(msgr_session_cancel(b, E_FAIL, NULL)); /* ends bob's side */
    tu_pump(&w);
    EXPECT_LOG(&w.log,
               "B:StateChanged(SS_CONNECTED)@SS_CANCELLED",
               "B:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@SS_CANCELLED");

    /* The decline. */
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_service_set_reachable(w.svc, TU_ALICE, false));
    CHECK_OK(msgr_session_decline(b, "no"));
    tu_pump(&w);
    EXPECT_LOG(&w.log,
               "B:StateChanged(SS_INVITATION)@SS_DECLINED",
               "B:SendError(SR_DECLINE_SEND_FAILURE)@SS_DECLINED",
               "B:Termination(SR_INVITATION_DECLINED,\"no\")@SS_DECLINED");
    CHECK_OK(msgr_service_set_reachable(w.svc, TU_ALICE, true));
    CHECK_OK(msgr_session_cancel(a, E_FAIL, NULL));
    tu_pump(&w);
    EXPECT_SIDE_EMPTY(&w.log, "B");
    tu_log_clear(&w.log);

    /* The acceptance. */
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_service_set_reachable(w.svc, TU_ALICE, false));
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    CHECK_INT(tu_log_count(&w.log, "B", "B:SendError(SR_ACCEPT_SEND_FAILURE)"), 1);
    CHECK_INT(tu_log_count(&w.log, "A", NULL), 0);
    CHECK_OK(msgr_service_set_reachable(w.svc, TU_ALICE, true));
    tu_log_clear(&w.log);
    tu_world_cleanup(&w);
}

static void test_context_data(void) {
    tu_world w;
    msgr_session *a, *b;
    char *over, *max;
    int i;
    tu_world_init(&w, 0);
    tu_invited(&w, &a, &b);
    /* Not before the invitation was accepted. */
    CHECK_HR(SR_NOT_VALID_FOR_APP_INVITE, msgr_session_send_context_data(a, "early"));
    CHECK_HR(SR_NOT_VALID_FOR_APP_INVITE, msgr_session_send_context_data(b, "early"));
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    tu_log_clear(&w.log);

    CHECK_OK(msgr_session_send_context_data(a, "from a"));
    CHECK_OK(msgr_session_send_context_data(b, "from b"));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "A", "A:ContextData(\"from b\")@SS_CONNECTED");
    EXPECT_SIDE(&w.log, "B", "B:ContextData(\"from a\")@SS_CONNECTED");
    CHECK_SSTR(msgr_session_get_context_data, a, "from b");
    CHECK_SSTR(msgr_session_get_context_data, b, "from a");
    tu_log_clear(&w.log);

    /* 300 characters (here 600 bytes), not 301; at most five sends per side. */
    over = tu_repeat("x", 301);
    max = tu_repeat("\xc3\xa9", 300);
    CHECK_HR(SR_CONTEXT_DATA_OVER_LIMIT, msgr_session_send_context_data(a, over));
    CHECK_OK(msgr_session_send_context_data(a, max));
    for (i = 0; i < 3; i++) {
        CHECK_OK(msgr_session_send_context_data(a, "more"));
    }
    CHECK_HR(SR_CONTEXT_DATA_OVER_LIMIT, msgr_session_send_context_data(a, "sixth"));
    tu_pump(&w);
    CHECK_INT(tu_log_count(&w.log, "B", "ContextData"), 4);
    CHECK_SSTR(msgr_session_get_context_data, b, "more");
    /* The other side still has its own five (one used). */
    for (i = 0; i < 4; i++) {
        CHECK_OK(msgr_session_send_context_data(b, "ok"));
    }
    CHECK_HR(SR_CONTEXT_DATA_OVER_LIMIT, msgr_session_send_context_data(b, "sixth"));
    tu_pump(&w);
    CHECK_INT(tu_log_count(&w.log, "A", "ContextData"), 4);
    CHECK_OK(msgr_session_cancel(a, E_FAIL, NULL));
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_send_context_data(a, "late"));
    free(over);
    free(max);
    tu_world_cleanup(&w);
}

/* ------------------------------------------------------------------------------------------ */
/* Properties and refusals                                                                    */
/* ------------------------------------------------------------------------------------------ */

static bool is_braced_upper_guid(const char *s) {
    size_t i;
    if (strlen(s) != 38 || s[0] != '{' || s[37] != '}') {
        return false;
    }
    for (i = 1; i < 37; i++) {
        bool dash = i == 9 || i == 14 || i == 19 || i == 24;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

static void test_properties(void) {
    tu_world w;
    msgr_session *s = NULL, *t = NULL;
    char id1[64], id2[64], buf[64];
    size_t needed = 0;
    uint32_t flags = 0;
    char *addr;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &s));
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &t));
    CHECK_STATE(s, SS_READY);
    CHECK_OK(msgr_session_get_flags(s, &flags));
    CHECK_INT(flags, SF_INVITER);
    CHECK(is_braced_upper_guid(tu_sid(s, id1, sizeof id1)));
    CHECK(is_braced_upper_guid(tu_sid(t, id2, sizeof id2)));
    CHECK(strcmp(id1, id2) != 0);
    CHECK_SSTR_HR(msgr_session_get_application, s, SR_APP_NOT_SPECIFIED, NULL);
    CHECK_SSTR_HR(msgr_session_get_application_name, s, SR_APP_NOT_SPECIFIED, NULL);
    CHECK_SSTR_HR(msgr_session_get_application_url, s, SR_APP_NOT_SPECIFIED, NULL);
    CHECK_SSTR_HR(msgr_session_get_user, s, SR_NO_USER_INVITED, NULL);
    CHECK_SSTR_HR(msgr_session_get_remote_address, s, S_FALSE, "");
    CHECK_SSTR(msgr_session_get_context_data, s, "");
    CHECK_SSTR(msgr_session_get_local_address, s, "");

    /* The caller-buffer protocol. */
    memset(buf, 'x', sizeof buf);
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_get_session_id(s, NULL, 0, &needed));
    CHECK_INT(needed, 39);
    needed = 0;
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_get_session_id(s, buf, 38, &needed));
    CHECK_INT(needed, 39);
    CHECK(buf[0] == 'x' && buf[37] == 'x');
    CHECK_OK(msgr_session_get_session_id(s, buf, 39, &needed));
    CHECK_STR(buf, id1);
    CHECK(buf[39] == 'x');
    CHECK_HR(E_POINTER, msgr_session_get_session_id(s, buf, sizeof buf, NULL));

    /* Application: a registered GUID, either case, stored uppercase; only in SS_READY. */
    CHECK_HR(E_INVALIDARG, msgr_session_set_application(s, "junk"));
    CHECK_HR(SR_APP_NOT_REGISTERED, msgr_session_set_application(s, TU_APP2));
    CHECK_SSTR_HR(msgr_session_get_application, s, SR_APP_NOT_SPECIFIED, NULL);
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP2, "Two", "http://two", "", 0));
    CHECK_OK(msgr_session_set_application(s, TU_APP2_LOWER));
    CHECK_SSTR(msgr_session_get_application, s, TU_APP2);
    CHECK_SSTR(msgr_session_get_application_name, s, "Two");
    CHECK_SSTR(msgr_session_get_application_url, s, "http://two");
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    CHECK_SSTR(msgr_session_get_application, s, TU_APP);
    CHECK_SSTR(msgr_session_get_application_name, s, TU_APP_NAME);

    /* LocalAddress: at most 30 characters; a refused value changes nothing. */
    addr = tu_repeat("a", 30);
    CHECK_OK(msgr_session_set_local_address(s, addr));
    free(addr);
    addr = tu_repeat("b", 31);
    CHECK_HR(E_INVALIDARG, msgr_session_set_local_address(s, addr));
    free(addr);
    addr = tu_repeat("a", 30);
    CHECK_SSTR(msgr_session_get_local_address, s, addr);
    free(addr);
    addr = tu_repeat("\xc3\xa9", 30);
    CHECK_OK(msgr_session_set_local_address(s, addr));
    CHECK_SSTR(msgr_session_get_local_address, s, addr);
    free(addr);

    /* Invite's refusals change nothing. */
    CHECK_HR(SR_APP_NOT_SPECIFIED, msgr_session_invite(t, TU_BOB, NULL));
    CHECK_OK(msgr_session_set_application(t, TU_APP));
    CHECK_HR(SR_INVITED_SELF, msgr_session_invite(t, TU_ALICE, NULL));
    CHECK_HR(SR_INVITED_SELF, msgr_session_invite(t, "ALICE@Example.COM", NULL));
    CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_invite(t, "nobody@example.com", NULL));
    CHECK_HR(E_INVALIDARG, msgr_session_invite(t, "", NULL));
    addr = tu_repeat("d", 513);
    CHECK_HR(E_INVALIDARG, msgr_session_invite(t, TU_BOB, addr));
    free(addr);
    CHECK_STATE(t, SS_READY);
    CHECK_SSTR_HR(msgr_session_get_user, t, SR_NO_USER_INVITED, NULL);
    tu_pump(&w);
    CHECK_INT(tu_log_count(&w.log, "MB", "Invitation"), 0);
    addr = tu_repeat("d", 512);
    CHECK_OK(msgr_session_invite(t, TU_BOB, addr));
    free(addr);
    CHECK_HR(SR_SESSION_NOT_READY, msgr_session_invite(t, TU_BOB, NULL));
    CHECK_HR(SR_SESSION_NOT_READY, msgr_session_set_application(t, TU_APP2));
    /* Accept and Decline: invitee only. */
    CHECK_HR(SR_NOT_INVITEE, msgr_session_accept(t, NULL));
    CHECK_HR(SR_NOT_INVITEE, msgr_session_decline(t, NULL));
    tu_pump(&w);
    REQUIRE(w.nreceived == 1);
    addr = tu_repeat("d", 512);
    CHECK_SSTR(msgr_session_get_context_data, w.received[0], addr);
    free(addr);
    addr = tu_repeat("x", 513);
    CHECK_HR(E_INVALIDARG, msgr_session_accept(w.received[0], addr));
    CHECK_HR(E_INVALIDARG, msgr_session_decline(w.received[0], addr));
    CHECK_HR(E_INVALIDARG, msgr_session_cancel(w.received[0], E_FAIL, addr));
    free(addr);
    CHECK_STATE(w.received[0], SS_INVITATION);
    CHECK_OK(msgr_session_accept(w.received[0], NULL));
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_accept(w.received[0], NULL));
    CHECK_HR(SR_SESSION_STATE_INVALID, msgr_session_decline(w.received[0], NULL));
    tu_pump(&w);

    /* MSGR_E_NOT_LOGGED_ON when either user is not signed in: here the inviter. */
    CHECK_OK(msgr_client_sign_out(w.b));
    {
        msgr_session *u = tu_session(&w);
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_invite(u, TU_BOB, NULL));
        CHECK_OK(msgr_client_sign_in(w.b));
        tu_pump(&w);
        CHECK_OK(msgr_client_sign_out(w.a));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_invite(u, TU_BOB, NULL));
        CHECK_STATE(u, SS_READY);
    }

    CHECK_OK(msgr_session_release(s));
    CHECK_OK(msgr_session_release(t));
    tu_world_cleanup(&w);
}

/* ------------------------------------------------------------------------------------------ */
/* Launch                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    int calls;
    char path[300];
    char sid[64];
    char guid[64];
    MSGR_HRESULT result;
    uint32_t pid;
} launch_rec;

static MSGR_HRESULT fake_launcher(void *ud, const char *path, const char *session_id,
                                  const char *app_guid, uint32_t *pid) {
    launch_rec *r = (launch_rec *)ud;
    r->calls++;
    snprintf(r->path, sizeof r->path, "%s", path ? path : "NULL");
    snprintf(r->sid, sizeof r->sid, "%s", session_id ? session_id : "NULL");
    snprintf(r->guid, sizeof r->guid, "%s", app_guid ? app_guid : "NULL");
    if (pid == NULL) {
        return E_POINTER;
    }
    if (r->result == S_OK) {
        *pid = r->pid;
    }
    return r->result;
}

static void veto(void *ud, msgr_session *s, bool *enable) {
    (void)s;
    tu_called((tu_ud *)ud);
    *enable = false;
}

/* Alice invites bob to TU_APP2 (registered with `path`); returns both sides. */
static void invited_to_app2(tu_world *w, const char *path, msgr_session **a, msgr_session **b) {
    CHECK_OK(msgr_session_manager_register_application(w->ma, TU_APP2, "Two", "u", path, 0));
    tu_pump(w);
    *a = tu_session(w);
    CHECK_OK(msgr_session_set_application(*a, TU_APP2));
    REQUIRE_OK(msgr_session_invite(*a, TU_BOB, NULL));
    tu_pump(w);
    *b = tu_world_last_received(w);
    REQUIRE(*b != NULL);
    tu_log_clear(&w->log);
}

static void test_custom_launcher(void) {
    tu_world w;
    msgr_session *a, *b, *found = NULL;
    launch_rec rec;
    char idb[64], idf[64];
    memset(&rec, 0, sizeof rec);
    rec.result = S_OK;
    rec.pid = 4242;
    tu_world_init(&w, 0);
    CHECK_OK(msgr_client_set_launcher(w.b, fake_launcher, &rec));
    invited_to_app2(&w, "/bin/sh", &a, &b);
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_ACCEPTED",
                "B:BeforeAppLaunch(true)@SS_ACCEPTED",
                "B:ReadyToLaunch@SS_CONNECTED",
                "B:StateChanged(SS_ACCEPTED)@SS_CONNECTED");
    CHECK_INT(rec.calls, 1);
    CHECK_STR(rec.path, "/bin/sh");
    CHECK_STR(rec.sid, tu_sid(b, idb, sizeof idb));
    CHECK_STR(rec.guid, TU_APP2);
    /* GetLaunchingSession: bob's session, through bob's client only. */
    CHECK_OK(msgr_session_manager_get_launching_session(w.mb, 4242, &found));
    if (found != NULL) {
        CHECK_STR(tu_sid(found, idf, sizeof idf), idb);
        CHECK_STATE(found, SS_CONNECTED);
        CHECK_OK(msgr_session_release(found));
    }
    found = NULL;
    CHECK_HR(E_FAIL, msgr_session_manager_get_launching_session(w.ma, 4242, &found));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_get_launching_session(w.mb, 0, &found));
    CHECK_HR(E_FAIL, msgr_session_manager_get_launching_session(w.mb, 12345, &found));
    CHECK(found == NULL);
    /* The fixture's reference to b is still good. */
    CHECK_STATE(b, SS_CONNECTED);

    /* An application without a path is not launched. */
    tu_log_clear(&w.log);
    {
        msgr_session *a2, *b2;
        tu_connected(&w, &a2, &b2);
        CHECK_INT(rec.calls, 1);
    }
    tu_world_cleanup(&w);
}

static void test_failed_launch(void) {
    tu_world w;
    msgr_session *a, *b;
    launch_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.result = E_FAIL;
    tu_world_init(&w, 0);
    CHECK_OK(msgr_client_set_launcher(w.b, fake_launcher, &rec));
    invited_to_app2(&w, "/bin/sh", &a, &b);
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    CHECK_INT(rec.calls, 1);
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_ACCEPTED",
                "B:BeforeAppLaunch(true)@SS_ACCEPTED",
                "B:StateChanged(SS_ACCEPTED)@SS_TERMINATED",
                "B:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@SS_TERMINATED");
    /* The inviter's side ends too, with one OnTermination as its last event. */
    CHECK_INT(tu_log_count(&w.log, "A", "Termination("), 1);
    CHECK(tu_log_last_starts(&w.log, "A", "A:Termination("));
    CHECK(tu_get_state(a) == SS_TERMINATED || tu_get_state(a) == SS_CANCELLED);
    tu_world_cleanup(&w);
}

static void test_before_app_launch_veto(void) {
    tu_world w;
    msgr_session *a, *b, *found = NULL;
    launch_rec rec;
    tu_ud *u;
    uint32_t cookie;
    memset(&rec, 0, sizeof rec);
    rec.result = S_OK;
    rec.pid = 777;
    tu_world_init(&w, 0);
    CHECK_OK(msgr_client_set_launcher(w.b, fake_launcher, &rec));
    invited_to_app2(&w, "/bin/sh", &a, &b);
    u = tu_ud_new(&w.log, "veto");
    CHECK_OK(msgr_session_before_app_launch(b, veto, u, tu_destroy, &cookie));
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    CHECK_INT(tu_calls(u), 1);
    CHECK_INT(rec.calls, 0);
    /* The recorder, registered first, saw enable = true; the session still connects. */
    EXPECT_SIDE(&w.log, "B",
                "B:StateChanged(SS_INVITATION)@SS_ACCEPTED",
                "B:BeforeAppLaunch(true)@SS_ACCEPTED",
                "B:ReadyToLaunch@SS_CONNECTED",
                "B:StateChanged(SS_ACCEPTED)@SS_CONNECTED");
    CHECK_STATE(a, SS_CONNECTED);
    CHECK_HR(E_FAIL, msgr_session_manager_get_launching_session(w.mb, 777, &found));
    tu_world_cleanup(&w);
}

/* The default launcher runs the registered program directly with the SessionID. */
static void test_default_launcher(void) {
    tu_world w;
    msgr_session *a, *b, *found = NULL;
    char dir[] = "/tmp/msgrpriv-launch-XXXXXX";
    char *script, *out, *tmp, line[256], sid[64], idf[64], idb[64];
    FILE *f;
    unsigned long pid = 0;
    uint64_t deadline;
    REQUIRE(mkdtemp(dir) != NULL);
    script = tu_strf("%s/app.sh", dir);
    out = tu_strf("%s/out", dir);
    tmp = tu_strf("%s/out.tmp", dir);
    f = fopen(script, "w");
    REQUIRE(f != NULL);
    fprintf(f, "#!/bin/sh\necho \"$$ $*\" > '%s' && mv '%s' '%s'\n", tmp, tmp, out);
    fclose(f);
    CHECK(chmod(script, 0700) == 0);

    tu_world_init(&w, 0);
    CHECK_OK(msgr_client_set_launcher(w.b, NULL, NULL));
    invited_to_app2(&w, script, &a, &b);
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    CHECK_STATE(b, SS_CONNECTED);
    deadline = tu_now_ms() + TU_PATIENCE_MS;
    while (access(out, F_OK) != 0 && tu_now_ms() < deadline) {
        tu_sleep_ms(10);
    }
    f = fopen(out, "r");
    CHECK(f != NULL);
    if (f != NULL) {
        line[0] = '\0';
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
        sid[0] = '\0';
        CHECK(sscanf(line, "%lu %63s", &pid, sid) == 2);
        CHECK_STR(sid, tu_sid(b, idb, sizeof idb));
        CHECK_OK(msgr_session_manager_get_launching_session(w.mb, (uint32_t)pid, &found));
        if (found != NULL) {
            CHECK_STR(tu_sid(found, idf, sizeof idf), idb);
            CHECK_OK(msgr_session_release(found));
        }
    }
    tu_log_clear(&w.log);

    /* A registered file that cannot be executed: the launch fails, the session ends.
     * (Not under valgrind: there glibc's posix_spawn cannot report the exec failure of the
     * child to the parent, so every spawn looks successful.) */
    if (!tu_under_valgrind()) {
        char *data = tu_strf("%s/data.bin", dir);
        msgr_session *a2, *b2;
        f = fopen(data, "w");
        REQUIRE(f != NULL);
        fputs("not a program\n", f);
        fclose(f);
        CHECK(chmod(data, 0600) == 0);
        CHECK_OK(msgr_session_manager_unregister_application(w.ma, TU_APP2));
        invited_to_app2(&w, data, &a2, &b2);
        CHECK_OK(msgr_session_accept(b2, NULL));
        tu_pump(&w);
        EXPECT_SIDE(&w.log, "B",
                    "B:StateChanged(SS_INVITATION)@SS_ACCEPTED",
                    "B:BeforeAppLaunch(true)@SS_ACCEPTED",
                    "B:StateChanged(SS_ACCEPTED)@SS_TERMINATED",
                    "B:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@SS_TERMINATED");
        CHECK(tu_log_last_starts(&w.log, "A", "A:Termination("));
        unlink(data);
        free(data);
    }
    tu_world_cleanup(&w);
    unlink(out);
    unlink(tmp);
    unlink(script);
    rmdir(dir);
    free(script);
    free(out);
    free(tmp);
}

int main(void) {
    RUN(test_invite);
    RUN(test_accept_app_registered);
    RUN(test_state_transitions);
    RUN(test_accept_app_not_registered);
    RUN(test_decline);
    RUN(test_cancel_by_inviter_during_invitation);
    RUN(test_cancel_once_connected_by_either_side);
    RUN(test_cancel_in_ready);
    RUN(test_timeout);
    RUN(test_real_clock_timeout);
    RUN(test_timeout_racing_the_invitation);
    RUN(test_other_party_signs_out_or_shuts_down);
    RUN(test_sign_out_during_invitation);
    RUN(test_other_client_destroyed);
    RUN(test_send_failures);
    RUN(test_context_data);
    RUN(test_properties);
    RUN(test_custom_launcher);
    RUN(test_failed_launch);
    RUN(test_before_app_launch_veto);
    RUN(test_default_launcher);
    return tu_finish();
}
