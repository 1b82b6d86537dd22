/*
 * The eight session manager events (DMsgrSessionManagerEvents) through the C API
 * (docs/CONTRACT.md, "The session manager" and "Event delivery"):
 *  - OnLockEnable then OnLockStatusChanged when a manager is created on a signed-in client;
 *  - OnAppRegistered / OnAppUnRegistered reach every manager sharing the registry, the
 *    caller's own included, and only for changes that happened;
 *  - callbacks run in registration order; unadvise ends a registration;
 *  - OnInvitation reaches every unlocked manager of the invited client, with handled = false;
 *  - the four Lock and Key events in their documented order;
 *  - OnAppShutdown is the last event a manager receives.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

static msgr_service *new_service(bool with_key) {
    msgr_service *svc = NULL;
    msgr_service_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = true;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    if (with_key) {
        REQUIRE_OK(msgr_service_add_app_key(svc, TU_APP_ID, TU_APP_KEY));
    }
    return svc;
}

static void test_creation_events(void) {
    int with_key;
    for (with_key = 0; with_key < 2; with_key++) {
        tu_log log;
        msgr_service *svc = new_service(with_key != 0);
        msgr_client *c = NULL;
        msgr_session_manager *m = NULL;
        uint32_t n = 99;
        tu_log_init(&log);
        REQUIRE_OK(msgr_client_create(svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &c));
        REQUIRE_OK(msgr_session_manager_create(c, &m));
        /* The status is set at creation; the events are queued for the next dispatch. */
        CHECK_LOCK(m, with_key ? LOCK_INITIALIZED : LOCK_DISABLED);
        tu_watch_manager(&log, m, "M");
        EXPECT_EMPTY(&log);
        CHECK_OK(msgr_client_dispatch(c, 0, &n));
        CHECK_INT(n, 2);
        if (with_key) {
            EXPECT_LOG(&log, "M:LockEnable(true)", "M:LockStatusChanged(LOCK_INITIALIZED)");
        } else {
            EXPECT_LOG(&log, "M:LockEnable(false)", "M:LockStatusChanged(LOCK_DISABLED)");
        }
        CHECK_OK(msgr_client_dispatch(c, 0, &n));
        CHECK_INT(n, 0);
        CHECK_OK(msgr_session_manager_release(m));
        CHECK_OK(msgr_client_destroy(c));
        CHECK_OK(msgr_service_destroy(svc));
        tu_log_free(&log);
    }
}

static void test_registry_events_reach_every_manager(void) {
    tu_world w;
    msgr_session_manager *ma2 = NULL;
    msgr_client *carol = NULL;
    msgr_session_manager *mc = NULL;
    tu_world_init(&w, TU_NO_APP);
    REQUIRE_OK(msgr_session_manager_create(w.a, &ma2));
    tu_watch_manager(&w.log, ma2, "MA2");
    REQUIRE_OK(msgr_client_create(w.svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &carol));
    REQUIRE_OK(msgr_session_manager_create(carol, &mc));
    tu_watch_manager(&w.log, mc, "MC");
    tu_pump(&w);
    tu_pump1(carol);
    tu_log_clear(&w.log);

    /* Registered through alice's first manager, in lowercase: stored (and reported) in
     * uppercase, to every manager including the caller's own. */
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP2_LOWER, "Two", "u", "", 0));
    tu_pump(&w);
    tu_pump1(carol);
    EXPECT_SIDE(&w.log, "MA", "MA:AppRegistered(" TU_APP2 ")");
    EXPECT_SIDE(&w.log, "MA2", "MA2:AppRegistered(" TU_APP2 ")");
    EXPECT_SIDE(&w.log, "MB", "MB:AppRegistered(" TU_APP2 ")");
    EXPECT_SIDE(&w.log, "MC", "MC:AppRegistered(" TU_APP2 ")");
    CHECK_INT(tu_log_count(&w.log, NULL, NULL), 4);
    tu_log_clear(&w.log);

    /* Refused changes raise nothing. */
    CHECK_HR(SR_APP_ALREADY_REGISTERED, msgr_session_manager_register_application(w.mb, TU_APP2, "Again", "u", "", 0));
    CHECK_HR(SR_APP_NOT_REGISTERED, msgr_session_manager_unregister_application(w.mb, TU_APP));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.mb, TU_APP, "n", "u", "", 1));
    tu_pump(&w);
    tu_pump1(carol);
    EXPECT_EMPTY(&w.log);

    /* Unregistered through bob's manager. */
    CHECK_OK(msgr_session_manager_unregister_application(w.mb, TU_APP2));
    tu_pump(&w);
    tu_pump1(carol);
    EXPECT_SIDE(&w.log, "MA", "MA:AppUnregistered(" TU_APP2 ")");
    EXPECT_SIDE(&w.log, "MA2", "MA2:AppUnregistered(" TU_APP2 ")");
    EXPECT_SIDE(&w.log, "MB", "MB:AppUnregistered(" TU_APP2 ")");
    EXPECT_SIDE(&w.log, "MC", "MC:AppUnregistered(" TU_APP2 ")");
    CHECK_INT(tu_log_count(&w.log, NULL, NULL), 4);
    tu_log_clear(&w.log);

    /* A released manager hears nothing more. */
    CHECK_OK(msgr_session_manager_release(ma2));
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0));
    tu_pump(&w);
    tu_pump1(carol);
    CHECK_INT(tu_log_count(&w.log, "MA2", NULL), 0);
    CHECK_INT(tu_log_count(&w.log, NULL, "AppRegistered(" TU_APP ")"), 3);

    CHECK_OK(msgr_session_manager_release(mc));
    CHECK_OK(msgr_client_destroy(carol));
    tu_world_cleanup(&w);
}

/* Two extra callbacks that log their own name, to see the order. */
static void named_app_registered(void *ud, msgr_session_manager *m, const char *guid) {
    tu_ud *u = (tu_ud *)ud;
    (void)m;
    tu_called(u);
    tu_log_add(u->log, "%s:%s", u->tag, guid);
}

static void test_registration_order_and_unadvise(void) {
    tu_world w;
    tu_ud *first, *second, *third;
    uint32_t c1 = 0, c2 = 0, c3 = 0;
    tu_world_init(&w, TU_NO_APP);
    first = tu_ud_new(&w.log, "first");
    second = tu_ud_new(&w.log, "second");
    third = tu_ud_new(&w.log, "third");
    CHECK_OK(msgr_session_manager_on_app_registered(w.ma, named_app_registered, first, tu_destroy, &c1));
    CHECK_OK(msgr_session_manager_on_app_registered(w.ma, named_app_registered, second, tu_destroy, &c2));
    CHECK_OK(msgr_session_manager_on_app_registered(w.ma, named_app_registered, third, tu_destroy, &c3));
    CHECK(c1 != c2 && c2 != c3 && c1 != c3);
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0));
    tu_pump(&w);
    /* The fixture's recorder was registered first. */
    EXPECT_SIDE(&w.log, "MA", "MA:AppRegistered(" TU_APP ")");
    CHECK_INT(tu_log_count(&w.log, NULL, NULL), 5);
    if (w.log.n == 5) {
        CHECK_STR(w.log.lines[0], "MA:AppRegistered(" TU_APP ")");
        CHECK_STR(w.log.lines[1], "first:" TU_APP);
        CHECK_STR(w.log.lines[2], "second:" TU_APP);
        CHECK_STR(w.log.lines[3], "third:" TU_APP);
        CHECK_STR(w.log.lines[4], "MB:AppRegistered(" TU_APP ")");
    }
    tu_log_clear(&w.log);

    /* Unadvise the middle one: its destroy callback runs (once), the others go on. */
    CHECK_INT(tu_destroyed(second), 0);
    CHECK_OK(msgr_session_manager_unadvise(w.ma, c2));
    CHECK_INT(tu_destroyed(second), 1);
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.ma, c2));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.ma, 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.ma, 0xFFFFFFFFu));
    /* A cookie of alice's manager means nothing to bob's. */
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.mb, c1));
    CHECK_OK(msgr_session_manager_unregister_application(w.ma, TU_APP));
    tu_pump(&w);
    EXPECT_LOG(&w.log, "MA:AppUnregistered(" TU_APP ")", "MB:AppUnregistered(" TU_APP ")");
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0));
    tu_pump(&w);
    EXPECT_LOG(&w.log, "MA:AppRegistered(" TU_APP ")", "first:" TU_APP, "third:" TU_APP,
               "MB:AppRegistered(" TU_APP ")");
    CHECK_INT(tu_calls(second), 1);
    CHECK_INT(tu_destroyed(first), 0);
    CHECK_INT(tu_destroyed(third), 0);
    /* The others end with the manager. */
    tu_world_cleanup(&w);
    CHECK_INT(tu_destroyed(first), 1);
    CHECK_INT(tu_destroyed(third), 1);
}

/* A second OnInvitation callback on another manager that notes the session it was given. */
static void note_invitation(void *ud, msgr_session_manager *m, msgr_session *s,
                            const char *app_data, bool *handled) {
    tu_ud *u = (tu_ud *)ud;
    (void)m;
    (void)app_data;
    tu_called(u);
    CHECK(handled != NULL);
    tu_sid(s, u->text, sizeof u->text);
}

static void test_invitation(void) {
    tu_world w;
    msgr_session_manager *mb2 = NULL;
    msgr_session *a, *b;
    tu_ud *note;
    uint32_t cookie;
    char ida[64], idb[64];
    uint32_t flags = 0;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_session_manager_create(w.b, &mb2));
    tu_watch_manager(&w.log, mb2, "MB2");
    note = tu_ud_new(&w.log, "note");
    CHECK_OK(msgr_session_manager_on_invitation(mb2, note_invitation, note, tu_destroy, &cookie));
    tu_pump(&w);
    tu_log_clear(&w.log);

    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, TU_BOB, "hello"));
    CHECK_STATE(a, SS_INVITATION);
    tu_pump(&w);
    /* Every (unlocked) manager of bob's client, nothing for alice's. */
    EXPECT_SIDE(&w.log, "MB", "MB:Invitation(\"hello\")");
    EXPECT_SIDE(&w.log, "MB2", "MB2:Invitation(\"hello\")");
    EXPECT_SIDE_EMPTY(&w.log, "MA");
    EXPECT_SIDE(&w.log, "A", "A:StateChanged(SS_READY)@SS_INVITATION");
    EXPECT_SIDE_EMPTY(&w.log, "B");
    CHECK_INT(tu_calls(note), 1);
    REQUIRE(w.nreceived == 1);
    b = w.received[0];
    /* The invitee's session: same SessionID and application, SF_INVITEE, SS_INVITATION,
     * ContextData = the app data, User = the inviter. */
    CHECK_STR(tu_sid(b, idb, sizeof idb), tu_sid(a, ida, sizeof ida));
    CHECK_STR(note->text, ida);
    CHECK_STATE(b, SS_INVITATION);
    CHECK_OK(msgr_session_get_flags(b, &flags));
    CHECK_INT(flags, SF_INVITEE);
    CHECK_OK(msgr_session_get_flags(a, &flags));
    CHECK_INT(flags, SF_INVITER);
    CHECK_SSTR(msgr_session_get_application, b, TU_APP);
    CHECK_SSTR(msgr_session_get_application_name, b, TU_APP_NAME);
    CHECK_SSTR(msgr_session_get_application_url, b, TU_APP_URL);
    CHECK_SSTR(msgr_session_get_context_data, b, "hello");
    CHECK_SSTR(msgr_session_get_user, b, TU_ALICE);
    CHECK_SSTR(msgr_session_get_user, a, TU_BOB);
    tu_log_clear(&w.log);

    /* No app data: NULL in the event. */
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, TU_BOB, NULL));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "MB", "MB:Invitation(NULL)");
    EXPECT_SIDE(&w.log, "MB2", "MB2:Invitation(NULL)");
    CHECK_INT(tu_calls(note), 2);

    CHECK_OK(msgr_session_manager_release(mb2));
    tu_world_cleanup(&w);
}

static void test_invitation_skips_locked_managers(void) {
    tu_world w;
    msgr_session_manager *mb2 = NULL;
    msgr_session *a;
    tu_world_init(&w, TU_LOCK_AND_KEY);
    REQUIRE_OK(msgr_session_manager_create(w.b, &mb2));
    tu_watch_manager(&w.log, mb2, "MB2");
    tu_pump(&w);
    EXPECT_LOG(&w.log, "MB2:LockEnable(true)", "MB2:LockStatusChanged(LOCK_INITIALIZED)");
    CHECK_LOCK(mb2, LOCK_INITIALIZED);
    CHECK_LOCK(w.mb, LOCK_UNLOCKED);
    a = tu_session(&w);
    CHECK_OK(msgr_session_invite(a, TU_BOB, "hi"));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "MB", "MB:Invitation(\"hi\")");
    EXPECT_SIDE_EMPTY(&w.log, "MB2");
    CHECK_OK(msgr_session_manager_release(mb2));
    tu_world_cleanup(&w);
}

static void test_lock_events_in_order(void) {
    tu_log log;
    msgr_service *svc = new_service(true);
    msgr_client *c = NULL;
    msgr_session_manager *m = NULL;
    tu_manager_watch watch;
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    tu_log_init(&log);
    REQUIRE_OK(msgr_client_create(svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &c));
    REQUIRE_OK(msgr_session_manager_create(c, &m));
    watch = tu_watch_manager(&log, m, "M");
    tu_pump1(c);
    EXPECT_LOG(&log, "M:LockEnable(true)", "M:LockStatusChanged(LOCK_INITIALIZED)");
    CHECK_OK(msgr_session_manager_request_challenge(m, 7));
    CHECK_LOCK(m, LOCK_PENDINGRESULT);
    tu_pump1(c);
    EXPECT_LOG(&log, "M:LockStatusChanged(LOCK_PENDINGRESULT)", "M:LockChallenge(7)");
    CHECK(strlen(watch.challenge->text) > 0);
    CHECK_OK(msgr_lock_compute_response(watch.challenge->text, TU_APP_KEY, resp));
    CHECK_OK(msgr_session_manager_send_response(m, TU_APP_ID, resp, 7));
    CHECK_LOCK(m, LOCK_UNLOCKED);
    tu_pump1(c);
    EXPECT_LOG(&log, "M:LockResult(7,true)", "M:LockStatusChanged(LOCK_UNLOCKED)");
    /* Sign-out and sign-in: back to NOTINITIALIZED, then locked again. */
    CHECK_OK(msgr_client_sign_out(c));
    tu_pump1(c);
    EXPECT_LOG(&log, "M:LockStatusChanged(LOCK_NOTINITIALIZED)");
    CHECK_OK(msgr_client_sign_in(c));
    tu_pump1(c);
    EXPECT_LOG(&log, "M:LockEnable(true)", "M:LockStatusChanged(LOCK_INITIALIZED)");
    CHECK_OK(msgr_session_manager_release(m));
    CHECK_OK(msgr_client_destroy(c));
    CHECK_OK(msgr_service_destroy(svc));
    tu_log_free(&log);
}

static void test_app_shutdown_is_last(void) {
    tu_world w;
    msgr_session_manager *ma2 = NULL, *extra = (msgr_session_manager *)NULL;
    msgr_session *a, *b;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_session_manager_create(w.a, &ma2));
    tu_watch_manager(&w.log, ma2, "MA2");
    tu_pump(&w);
    tu_connected(&w, &a, &b);

    CHECK_OK(msgr_client_shutdown(w.a));
    tu_pump(&w);
    EXPECT_SIDE(&w.log, "MA", "MA:LockStatusChanged(LOCK_NOTINITIALIZED)", "MA:AppShutdown");
    EXPECT_SIDE(&w.log, "MA2", "MA2:LockStatusChanged(LOCK_NOTINITIALIZED)", "MA2:AppShutdown");
    EXPECT_SIDE(&w.log, "A", "A:StateChanged(SS_CONNECTED)@SS_TERMINATED",
                "A:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
    EXPECT_SIDE(&w.log, "B", "B:StateChanged(SS_CONNECTED)@SS_TERMINATED",
                "B:Termination(SR_CONNECTION_FAILURE,NULL)@SS_TERMINATED");
    EXPECT_SIDE_EMPTY(&w.log, "MB");
    tu_log_clear(&w.log);

    /* Nothing reaches alice's managers any more. */
    CHECK_HR(MSGR_E_SERVER_SHUTDOWN, msgr_client_shutdown(w.a));
    CHECK_HR(MSGR_E_SERVER_SHUTDOWN, msgr_client_sign_in(w.a));
    CHECK_HR(MSGR_E_SERVER_SHUTDOWN, msgr_session_manager_create(w.a, &extra));
    CHECK(extra == NULL);
    CHECK_OK(msgr_session_manager_register_application(w.mb, TU_APP2, "n", "u", "", 0));
    CHECK_OK(msgr_session_manager_unregister_application(w.mb, TU_APP2));
    tu_pump(&w);
    EXPECT_LOG(&w.log, "MB:AppRegistered(" TU_APP2 ")", "MB:AppUnregistered(" TU_APP2 ")");
    CHECK_LOCK(w.ma, LOCK_NOTINITIALIZED);

    CHECK_OK(msgr_session_manager_release(ma2));
    tu_world_cleanup(&w);
}

static void named_context_data(void *ud, msgr_session *s, const char *data) {
    tu_ud *u = (tu_ud *)ud;
    (void)s;
    tu_called(u);
    tu_log_add(u->log, "%s:%s", u->tag, data);
}

/* Alice's and bob's managers (and sessions) hold the same number of registrations, so a
 * per-object counter would give them the same cookies: a cookie one object issued must
 * mean nothing to the other, and unadvising with it changes nothing. */
static void test_foreign_cookie_changes_nothing(void) {
    tu_world w;
    tu_ud *ua, *ub, *sa, *sb;
    uint32_t ca = 0, cb = 0, csa = 0, csb = 0;
    msgr_session *a, *b;
    tu_world_init(&w, TU_NO_APP);
    ua = tu_ud_new(&w.log, "ua");
    ub = tu_ud_new(&w.log, "ub");
    CHECK_OK(msgr_session_manager_on_app_registered(w.ma, named_app_registered, ua, tu_destroy, &ca));
    CHECK_OK(msgr_session_manager_on_app_registered(w.mb, named_app_registered, ub, tu_destroy, &cb));
    CHECK(ca != cb);
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.mb, ca));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.ma, cb));
    CHECK_INT(tu_destroyed(ua), 0);
    CHECK_INT(tu_destroyed(ub), 0);
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0));
    tu_pump(&w);
    EXPECT_LOG(&w.log, "MA:AppRegistered(" TU_APP ")", "ua:" TU_APP,
               "MB:AppRegistered(" TU_APP ")", "ub:" TU_APP);

    /* The same for two sessions, one on each side. */
    tu_connected(&w, &a, &b);
    sa = tu_ud_new(&w.log, "sa");
    sb = tu_ud_new(&w.log, "sb");
    CHECK_OK(msgr_session_on_context_data(a, named_context_data, sa, tu_destroy, &csa));
    CHECK_OK(msgr_session_on_context_data(b, named_context_data, sb, tu_destroy, &csb));
    CHECK(csa != csb);
    CHECK_HR(E_INVALIDARG, msgr_session_unadvise(b, csa));
    CHECK_HR(E_INVALIDARG, msgr_session_unadvise(a, csb));
    /* Nor does a session's cookie reach a manager, or the other way round. */
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unadvise(w.ma, csa));
    CHECK_HR(E_INVALIDARG, msgr_session_unadvise(a, ca));
    CHECK_OK(msgr_session_send_context_data(a, "to b"));
    CHECK_OK(msgr_session_send_context_data(b, "to a"));
    tu_pump(&w);
    CHECK_INT(tu_log_count(&w.log, "sb", "sb:to b"), 1);
    CHECK_INT(tu_log_count(&w.log, "sa", "sa:to a"), 1);
    CHECK_OK(msgr_session_unadvise(a, csa));
    CHECK_OK(msgr_session_unadvise(b, csb));
    CHECK_OK(msgr_session_manager_unadvise(w.ma, ca));
    CHECK_OK(msgr_session_manager_unadvise(w.mb, cb));
    CHECK_INT(tu_destroyed(ua), 1);
    CHECK_INT(tu_destroyed(ub), 1);
    CHECK_INT(tu_destroyed(sa), 1);
    CHECK_INT(tu_destroyed(sb), 1);
    tu_world_cleanup(&w);
}

int main(void) {
    RUN(test_creation_events);
    RUN(test_registry_events_reach_every_manager);
    RUN(test_registration_order_and_unadvise);
    RUN(test_foreign_cookie_changes_nothing);
    RUN(test_invitation);
    RUN(test_invitation_skips_locked_managers);
    RUN(test_lock_events_in_order);
    RUN(test_app_shutdown_is_last);
    return tu_finish();
}
