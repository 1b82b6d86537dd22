/*
 * Lock and Key (docs/CONTRACT.md, "Lock and Key") through the C API: the exchange and its events, a
 * wrong key, a wrong cookie, an unknown application ID, a second request, the status codes
 * of RequestChallenge and SendResponse, re-locking after sign-out and sign-in, each manager
 * locked on its own, msgr_lock_compute_response, and MSGR_E_API_LOCKED from every gated call
 * of a locked manager and of the sessions that follow its lock, also once the manager was
 * released and the client signed out and in again.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

typedef struct {
    msgr_service *svc;
    msgr_client *c;
    msgr_session_manager *m;
    tu_manager_watch watch;
    tu_log log;
} locked;

static void lk_init(locked *l, bool with_key) {
    msgr_service_options o;
    memset(l, 0, sizeof *l);
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = true;
    tu_log_init(&l->log);
    REQUIRE_OK(msgr_service_create(&o, &l->svc));
    if (with_key) {
        REQUIRE_OK(msgr_service_add_app_key(l->svc, TU_APP_ID, TU_APP_KEY));
    }
    REQUIRE_OK(msgr_client_create(l->svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &l->c));
    REQUIRE_OK(msgr_session_manager_create(l->c, &l->m));
    l->watch = tu_watch_manager(&l->log, l->m, "M");
    tu_pump1(l->c);
    if (with_key) {
        EXPECT_LOG(&l->log, "M:LockEnable(true)", "M:LockStatusChanged(LOCK_INITIALIZED)");
        CHECK_LOCK(l->m, LOCK_INITIALIZED);
    } else {
        EXPECT_LOG(&l->log, "M:LockEnable(false)", "M:LockStatusChanged(LOCK_DISABLED)");
        CHECK_LOCK(l->m, LOCK_DISABLED);
    }
}

static void lk_cleanup(locked *l) {
    CHECK_OK(msgr_session_manager_release(l->m));
    CHECK_OK(msgr_client_destroy(l->c));
    CHECK_OK(msgr_service_destroy(l->svc));
    tu_log_free(&l->log);
}

/* RequestChallenge(cookie) and its two events; returns the challenge (in the watch). */
static const char *lk_challenge(locked *l, int32_t cookie) {
    char want[64];
    CHECK_OK(msgr_session_manager_request_challenge(l->m, cookie));
    CHECK_LOCK(l->m, LOCK_PENDINGRESULT);
    tu_pump1(l->c);
    snprintf(want, sizeof want, "M:LockChallenge(%ld)", (long)cookie);
    EXPECT_LOG(&l->log, "M:LockStatusChanged(LOCK_PENDINGRESULT)", want);
    return l->watch.challenge->text;
}

static void lk_respond(locked *l, const char *challenge, const char *key, int32_t cookie) {
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    REQUIRE_OK(msgr_lock_compute_response(challenge, key, resp));
    CHECK_OK(msgr_session_manager_send_response(l->m, TU_APP_ID, resp, cookie));
}

static void test_compute_response(void) {
    char out[MSGR_LOCK_RESPONSE_SIZE + 8];
    char *s256, *s257, *e256, *e257;
    /* RFC 1321 vectors, split between challenge and key. */
    CHECK_OK(msgr_lock_compute_response("ab", "c", out));
    CHECK_STR(out, "900150983cd24fb0d6963f7d28e17f72");
    CHECK_OK(msgr_lock_compute_response("", "", out));
    CHECK_STR(out, "d41d8cd98f00b204e9800998ecf8427e");
    CHECK_OK(msgr_lock_compute_response("message ", "digest", out));
    CHECK_STR(out, "f96b697d7cb7938d525a2f31aaf161d0");
    CHECK_OK(msgr_lock_compute_response("", "abc", out));
    CHECK_STR(out, "900150983cd24fb0d6963f7d28e17f72");
    /* Exactly 33 bytes written. */
    memset(out, 'Z', sizeof out);
    CHECK_OK(msgr_lock_compute_response("ab", "c", out));
    CHECK(out[32] == '\0' && out[33] == 'Z');
    /* Refusals leave the buffer alone. */
    memset(out, 'Z', sizeof out);
    CHECK_HR(E_POINTER, msgr_lock_compute_response(NULL, "k", out));
    CHECK_HR(E_POINTER, msgr_lock_compute_response("c", NULL, out));
    CHECK_HR(E_POINTER, msgr_lock_compute_response("c", "k", NULL));
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("\xff\xfe", "k", out));
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("c", "\xc3", out));
    s256 = tu_repeat("c", 256);
    s257 = tu_repeat("c", 257);
    e256 = tu_repeat("\xc3\xa9", 256);
    e257 = tu_repeat("\xc3\xa9", 257);
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response(s257, "k", out));
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("c", s257, out));
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response(e257, "k", out));
    CHECK(out[0] == 'Z');
    CHECK_OK(msgr_lock_compute_response(s256, s256, out));
    CHECK(strlen(out) == 32);
    CHECK_OK(msgr_lock_compute_response(e256, "k", out));
    free(s256);
    free(s257);
    free(e256);
    free(e257);
}

static void test_unlock_succeeds(void) {
    locked l;
    msgr_session *s = NULL;
    const char *ch;
    lk_init(&l, true);
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(l.m, &s));
    ch = lk_challenge(&l, 42);
    CHECK(strlen(ch) > 0);
    /* A second request while one is pending. */
    CHECK_HR(MSGR_E_API_PENDING_UNLOCK, msgr_session_manager_request_challenge(l.m, 43));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(l.m, &s));
    lk_respond(&l, ch, TU_APP_KEY, 42);
    CHECK_LOCK(l.m, LOCK_UNLOCKED);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(42,true)", "M:LockStatusChanged(LOCK_UNLOCKED)");
    CHECK_HR(MSGR_E_API_ALREADY_UNLOCKED, msgr_session_manager_request_challenge(l.m, 44));
    CHECK_HR(MSGR_E_API_ALREADY_UNLOCKED, msgr_session_manager_send_response(l.m, TU_APP_ID, "00", 42));
    CHECK_OK(msgr_session_manager_create_session(l.m, &s));
    CHECK_OK(msgr_session_release(s));
    tu_pump1(l.c);
    EXPECT_EMPTY(&l.log);
    lk_cleanup(&l);
}

static void test_negative_cookie(void) {
    locked l;
    const char *ch;
    lk_init(&l, true);
    ch = lk_challenge(&l, -5);
    lk_respond(&l, ch, TU_APP_KEY, -5);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(-5,true)", "M:LockStatusChanged(LOCK_UNLOCKED)");
    lk_cleanup(&l);
}

static void test_wrong_key(void) {
    locked l;
    msgr_session *s = NULL;
    const char *ch;
    lk_init(&l, true);
    ch = lk_challenge(&l, 1);
    lk_respond(&l, ch, "wrong", 1);
    CHECK_LOCK(l.m, LOCK_UNLOCKFAILED);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(1,false)", "M:LockStatusChanged(LOCK_UNLOCKFAILED)");
    /* Only one challenge per sign-in. */
    CHECK_HR(MSGR_E_API_UNLOCK_FAILED, msgr_session_manager_request_challenge(l.m, 2));
    CHECK_HR(MSGR_E_API_UNLOCK_FAILED, msgr_session_manager_send_response(l.m, TU_APP_ID, "00", 1));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(l.m, &s));
    CHECK(s == NULL);
    tu_pump1(l.c);
    EXPECT_EMPTY(&l.log);
    lk_cleanup(&l);
}

static void test_uppercase_or_truncated_response_fails(void) {
    int k;
    for (k = 0; k < 2; k++) {
        locked l;
        char resp[MSGR_LOCK_RESPONSE_SIZE];
        size_t i;
        const char *ch;
        lk_init(&l, true);
        ch = lk_challenge(&l, 3);
        REQUIRE_OK(msgr_lock_compute_response(ch, TU_APP_KEY, resp));
        if (k == 0) {
            for (i = 0; resp[i]; i++) {
                if (resp[i] >= 'a' && resp[i] <= 'f') {
                    resp[i] = (char)(resp[i] - 'a' + 'A');
                }
            }
        } else {
            resp[31] = '\0';
        }
        CHECK_OK(msgr_session_manager_send_response(l.m, TU_APP_ID, resp, 3));
        tu_pump1(l.c);
        EXPECT_LOG(&l.log, "M:LockResult(3,false)", "M:LockStatusChanged(LOCK_UNLOCKFAILED)");
        lk_cleanup(&l);
    }
}

static void test_wrong_cookie_changes_nothing(void) {
    locked l;
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    const char *ch;
    lk_init(&l, true);
    ch = lk_challenge(&l, 5);
    REQUIRE_OK(msgr_lock_compute_response(ch, TU_APP_KEY, resp));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(l.m, TU_APP_ID, resp, 6));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(l.m, TU_APP_ID, "junk", -5));
    tu_pump1(l.c);
    EXPECT_EMPTY(&l.log);
    CHECK_LOCK(l.m, LOCK_PENDINGRESULT);
    CHECK_OK(msgr_session_manager_send_response(l.m, TU_APP_ID, resp, 5));
    CHECK_LOCK(l.m, LOCK_UNLOCKED);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(5,true)", "M:LockStatusChanged(LOCK_UNLOCKED)");
    lk_cleanup(&l);
}

static void test_unknown_app_id(void) {
    locked l;
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    const char *ch;
    lk_init(&l, true);
    ch = lk_challenge(&l, 9);
    REQUIRE_OK(msgr_lock_compute_response(ch, TU_APP_KEY, resp));
    CHECK_OK(msgr_session_manager_send_response(l.m, "nobody", resp, 9));
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(9,false)", "M:LockStatusChanged(LOCK_UNLOCKFAILED)");
    lk_cleanup(&l);
}

static void test_response_without_challenge(void) {
    locked l;
    lk_init(&l, true);
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_send_response(l.m, TU_APP_ID, "00", 1));
    CHECK_LOCK(l.m, LOCK_INITIALIZED);
    tu_pump1(l.c);
    EXPECT_EMPTY(&l.log);
    lk_cleanup(&l);
}

static void test_disabled_without_keys(void) {
    locked l;
    msgr_session *s = NULL;
    lk_init(&l, false);
    CHECK_HR(MSGR_E_API_DISABLED, msgr_session_manager_request_challenge(l.m, 1));
    CHECK_HR(MSGR_E_API_DISABLED, msgr_session_manager_send_response(l.m, TU_APP_ID, "00", 1));
    CHECK_OK(msgr_session_manager_create_session(l.m, &s));
    CHECK_OK(msgr_session_release(s));
    /* A key added later puts Lock and Key in force from the next sign-in on. */
    CHECK_OK(msgr_service_add_app_key(l.svc, TU_APP_ID, TU_APP_KEY));
    CHECK_OK(msgr_client_sign_out(l.c));
    CHECK_OK(msgr_client_sign_in(l.c));
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockStatusChanged(LOCK_NOTINITIALIZED)", "M:LockEnable(true)",
               "M:LockStatusChanged(LOCK_INITIALIZED)");
    CHECK_LOCK(l.m, LOCK_INITIALIZED);
    lk_cleanup(&l);
}

static void test_replaced_key(void) {
    locked l;
    const char *ch;
    lk_init(&l, true);
    CHECK_OK(msgr_service_add_app_key(l.svc, TU_APP_ID, "new-key"));
    ch = lk_challenge(&l, 1);
    lk_respond(&l, ch, TU_APP_KEY, 1);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(1,false)", "M:LockStatusChanged(LOCK_UNLOCKFAILED)");
    lk_cleanup(&l);
    lk_init(&l, true);
    CHECK_OK(msgr_service_add_app_key(l.svc, TU_APP_ID, "new-key"));
    ch = lk_challenge(&l, 1);
    lk_respond(&l, ch, "new-key", 1);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockResult(1,true)", "M:LockStatusChanged(LOCK_UNLOCKED)");
    lk_cleanup(&l);
}

static void test_locked_again_after_sign_out_and_in(void) {
    locked l;
    msgr_session *s = NULL, *t = NULL;
    const char *ch;
    char first[64];
    lk_init(&l, true);
    ch = lk_challenge(&l, 1);
    lk_respond(&l, ch, TU_APP_KEY, 1);
    tu_pump1(l.c);
    tu_log_clear(&l.log);
    CHECK_OK(msgr_session_manager_create_session(l.m, &s));

    CHECK_OK(msgr_client_sign_out(l.c));
    CHECK_LOCK(l.m, LOCK_NOTINITIALIZED);
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockStatusChanged(LOCK_NOTINITIALIZED)");
    CHECK_HR(MSGR_E_API_NOTINITIALIZED, msgr_session_manager_request_challenge(l.m, 2));
    CHECK_HR(MSGR_E_API_NOTINITIALIZED, msgr_session_manager_send_response(l.m, TU_APP_ID, "00", 1));
    CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_client_sign_out(l.c));
    /* Sessions follow their manager: signed out. */
    CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_set_local_address(s, "x"));

    CHECK_OK(msgr_client_sign_in(l.c));
    CHECK_HR(MSGR_E_ALREADY_LOGGED_ON, msgr_client_sign_in(l.c));
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockEnable(true)", "M:LockStatusChanged(LOCK_INITIALIZED)");
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(l.m, &t));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_set_local_address(s, "x"));
    snprintf(first, sizeof first, "%s", ch);
    ch = lk_challenge(&l, 3);
    CHECK(strcmp(first, ch) != 0); /* a fresh challenge */
    lk_respond(&l, ch, TU_APP_KEY, 3);
    CHECK_LOCK(l.m, LOCK_UNLOCKED);
    CHECK_OK(msgr_session_set_local_address(s, "x"));
    CHECK_OK(msgr_session_release(s));
    lk_cleanup(&l);
}

/* A manager created while signed out: LOCK_NOTINITIALIZED, no events until the sign-in. */
static void test_manager_created_while_signed_out(void) {
    locked l;
    msgr_session_manager *m2 = NULL;
    uint32_t n = 99;
    lk_init(&l, true);
    CHECK_OK(msgr_client_sign_out(l.c));
    tu_pump1(l.c);
    tu_log_clear(&l.log);
    REQUIRE_OK(msgr_session_manager_create(l.c, &m2));
    CHECK_LOCK(m2, LOCK_NOTINITIALIZED);
    tu_watch_manager(&l.log, m2, "M2");
    CHECK_OK(msgr_client_dispatch(l.c, 0, &n));
    CHECK_INT(n, 0);
    CHECK_HR(MSGR_E_API_NOTINITIALIZED, msgr_session_manager_request_challenge(m2, 1));
    CHECK_OK(msgr_client_sign_in(l.c));
    tu_pump1(l.c);
    EXPECT_LOG(&l.log, "M:LockEnable(true)", "M:LockStatusChanged(LOCK_INITIALIZED)",
               "M2:LockEnable(true)", "M2:LockStatusChanged(LOCK_INITIALIZED)");
    CHECK_OK(msgr_session_manager_release(m2));
    lk_cleanup(&l);
}

static void test_failed_unlock_forgotten_at_next_sign_in(void) {
    locked l;
    const char *ch;
    lk_init(&l, true);
    ch = lk_challenge(&l, 1);
    CHECK_OK(msgr_session_manager_send_response(l.m, TU_APP_ID, "bad", 1));
    CHECK_LOCK(l.m, LOCK_UNLOCKFAILED);
    CHECK_OK(msgr_client_sign_out(l.c));
    CHECK_OK(msgr_client_sign_in(l.c));
    tu_pump1(l.c);
    tu_log_clear(&l.log);
    CHECK_LOCK(l.m, LOCK_INITIALIZED);
    ch = lk_challenge(&l, 2);
    lk_respond(&l, ch, TU_APP_KEY, 2);
    CHECK_LOCK(l.m, LOCK_UNLOCKED);
    lk_cleanup(&l);
}

static void test_each_manager_locked_on_its_own(void) {
    locked l;
    msgr_session_manager *m2 = NULL;
    msgr_session *s = NULL;
    const char *ch;
    lk_init(&l, true);
    REQUIRE_OK(msgr_session_manager_create(l.c, &m2));
    ch = lk_challenge(&l, 1);
    lk_respond(&l, ch, TU_APP_KEY, 1);
    CHECK_LOCK(l.m, LOCK_UNLOCKED);
    CHECK_LOCK(m2, LOCK_INITIALIZED);
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(m2, &s));
    /* A manager created after the unlock starts locked too. */
    {
        msgr_session_manager *m3 = NULL;
        REQUIRE_OK(msgr_session_manager_create(l.c, &m3));
        CHECK_LOCK(m3, LOCK_INITIALIZED);
        CHECK_OK(msgr_session_manager_release(m3));
    }
    CHECK_OK(msgr_session_manager_release(m2));
    lk_cleanup(&l);
}

/* Every gated call of a manager, in each locked status. */
static void check_manager_gated(msgr_session_manager *m, const char *why) {
    msgr_session *s = NULL;
    char buf[256];
    size_t needed = 0;
    printf("  gated calls while %s\n", why);
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(m, &s));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_get_launching_session(m, 1, &s));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_register_application(m, TU_APP2, "n", "u", "", 0));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_unregister_application(m, TU_APP));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_get_applications(m, buf, sizeof buf, &needed));
    CHECK(s == NULL);
}

/* While the client is signed out the gated calls answer MSGR_E_NOT_LOGGED_ON (header), with
 * or without Lock and Key; the exchange itself answers MSGR_E_API_NOTINITIALIZED. */
static void test_gated_calls_while_signed_out(void) {
    int with_key;
    for (with_key = 0; with_key < 2; with_key++) {
        tu_world w;
        msgr_session *ready, *a, *b, *s = NULL;
        char buf[256];
        size_t needed = 0;
        tu_world_init(&w, with_key ? TU_LOCK_AND_KEY : 0);
        ready = tu_session(&w);
        tu_invited(&w, &a, &b);
        CHECK_OK(msgr_client_sign_out(w.a));
        CHECK_OK(msgr_client_sign_out(w.b));
        tu_pump(&w);
        tu_log_clear(&w.log);
        CHECK_LOCK(w.ma, LOCK_NOTINITIALIZED);
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_create_session(w.ma, &s));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_get_launching_session(w.ma, 1, &s));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_register_application(w.ma, TU_APP2, "n", "u", "", 0));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_unregister_application(w.ma, TU_APP));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_get_applications(w.ma, buf, sizeof buf, &needed));
        CHECK(s == NULL);
        CHECK_HR(MSGR_E_API_NOTINITIALIZED, msgr_session_manager_request_challenge(w.ma, 1));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_set_application(ready, TU_APP));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_set_local_address(ready, "x"));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_invite(ready, TU_BOB, NULL));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_send_context_data(ready, "x"));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_cancel(ready, E_FAIL, NULL));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_accept(b, NULL));
        CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_decline(b, NULL));
        CHECK_STATE(ready, SS_READY);
        tu_pump(&w);
        EXPECT_EMPTY(&w.log);
        tu_world_cleanup(&w);
    }
}

static void noop_app_registered(void *ud, msgr_session_manager *m, const char *g) {
    (void)ud;
    (void)m;
    (void)g;
}

static void test_every_gated_call_refuses_while_locked(void) {
    tu_world w;
    msgr_session *a, *b, *s, *ready;
    msgr_session_manager *mb2 = NULL;
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    char buf[256];
    size_t needed;
    uint32_t cookie = 0;
    tu_ud *u;
    tu_manager_watch watch2;
    tu_world_init(&w, TU_LOCK_AND_KEY);

    /* A locked manager: INITIALIZED, PENDINGRESULT, UNLOCKFAILED. */
    REQUIRE_OK(msgr_session_manager_create(w.b, &mb2));
    watch2 = tu_watch_manager(&w.log, mb2, "MB2");
    tu_pump(&w);
    check_manager_gated(mb2, "LOCK_INITIALIZED");
    /* Not gated: the status, registrations, unadvise, the exchange itself. */
    CHECK_LOCK(mb2, LOCK_INITIALIZED);
    u = tu_ud_new(NULL, "noop");
    CHECK_OK(msgr_session_manager_on_app_registered(mb2, noop_app_registered, u, tu_destroy, &cookie));
    CHECK_OK(msgr_session_manager_unadvise(mb2, cookie));
    CHECK_OK(msgr_session_manager_request_challenge(mb2, 11));
    tu_pump(&w);
    check_manager_gated(mb2, "LOCK_PENDINGRESULT");
    CHECK_OK(msgr_session_manager_send_response(mb2, TU_APP_ID, "wrong", 11));
    check_manager_gated(mb2, "LOCK_UNLOCKFAILED");
    CHECK_OK(msgr_session_manager_release(mb2));
    (void)watch2;

    /* Sessions follow their manager's lock. An inviter session still in SS_READY, and an
     * invitee session, then both clients sign out and in: locked again. */
    ready = tu_session(&w);
    tu_invited(&w, &a, &b);
    CHECK_OK(msgr_client_sign_out(w.a));
    CHECK_OK(msgr_client_sign_in(w.a));
    CHECK_OK(msgr_client_sign_out(w.b));
    CHECK_OK(msgr_client_sign_in(w.b));
    tu_pump(&w);
    tu_log_clear(&w.log);
    CHECK_LOCK(w.ma, LOCK_INITIALIZED);
    CHECK_LOCK(w.mb, LOCK_INITIALIZED);
    printf("  gated session calls while locked\n");
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_set_application(ready, TU_APP));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_set_local_address(ready, "addr"));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_invite(ready, TU_BOB, NULL));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_send_context_data(ready, "x"));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_cancel(ready, E_FAIL, NULL));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_accept(b, NULL));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_decline(b, NULL));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_cancel(b, E_FAIL, NULL));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_send_context_data(b, "x"));
    CHECK_STATE(ready, SS_READY);
    CHECK_SSTR(msgr_session_get_local_address, ready, "");
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);

    /* Unlocked again: the same calls go through. */
    CHECK_OK(msgr_session_manager_request_challenge(w.ma, 77));
    tu_pump(&w);
    REQUIRE_OK(msgr_lock_compute_response(w.wa.challenge->text, TU_APP_KEY, resp));
    CHECK_OK(msgr_session_manager_send_response(w.ma, TU_APP_ID, resp, 77));
    CHECK_OK(msgr_session_set_local_address(ready, "addr"));
    CHECK_OK(msgr_session_manager_create_session(w.ma, &s));
    CHECK_OK(msgr_session_release(s));
    needed = 0;
    CHECK_OK(msgr_session_manager_get_applications(w.ma, buf, sizeof buf, &needed));
    tu_world_cleanup(&w);
}

/* Every gated session call refused with `hr`, and the session unchanged. */
static void check_session_gated(msgr_session *s, MSGR_HRESULT hr, SESSION_STATE state) {
    CHECK_HR(hr, msgr_session_set_application(s, TU_APP));
    CHECK_HR(hr, msgr_session_set_local_address(s, "addr"));
    CHECK_HR(hr, msgr_session_invite(s, TU_BOB, "hi"));
    CHECK_HR(hr, msgr_session_accept(s, NULL));
    CHECK_HR(hr, msgr_session_decline(s, NULL));
    CHECK_HR(hr, msgr_session_send_context_data(s, "x"));
    CHECK_HR(hr, msgr_session_cancel(s, E_FAIL, NULL));
    CHECK_STATE(s, state);
    CHECK_SSTR(msgr_session_get_local_address, s, "");
}

/* A session whose manager was released keeps that manager's status for the connection it
 * was made in; once the client signs out and in again it is locked (the exchange cannot be
 * repeated without the manager), while a new manager is locked until its own exchange. */
static void test_released_manager_sessions_locked_after_sign_out_and_in(void) {
    tu_world w;
    msgr_session_manager *m2 = NULL, *m3 = NULL;
    msgr_session *ready = NULL, *s = NULL;
    tu_manager_watch watch2, watch3;
    size_t received;
    tu_world_init(&w, TU_LOCK_AND_KEY);
    REQUIRE_OK(msgr_session_manager_create(w.a, &m2));
    watch2 = tu_watch_manager(&w.log, m2, "M2");
    tu_pump(&w);
    tu_unlock(&w.log, w.a, m2, &watch2, "M2", 3003, false);
    REQUIRE_OK(msgr_session_manager_create_session(m2, &ready));
    tu_world_own(&w, ready);
    CHECK_OK(msgr_session_manager_release(m2));
    /* The connection the exchange was made in: the session works. */
    CHECK_OK(msgr_session_set_local_address(ready, ""));
    CHECK_OK(msgr_client_sign_out(w.a));
    check_session_gated(ready, MSGR_E_NOT_LOGGED_ON, SS_READY);
    CHECK_OK(msgr_client_sign_in(w.a));
    tu_pump(&w);
    tu_log_clear(&w.log);
    received = w.nreceived;
    check_session_gated(ready, MSGR_E_API_LOCKED, SS_READY);
    tu_pump(&w);
    CHECK(w.nreceived == received);
    EXPECT_EMPTY(&w.log);
    /* A new manager is locked until its own exchange, which opens only its sessions. */
    REQUIRE_OK(msgr_session_manager_create(w.a, &m3));
    watch3 = tu_watch_manager(&w.log, m3, "M3");
    tu_pump(&w);
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(m3, &s));
    tu_unlock(&w.log, w.a, m3, &watch3, "M3", 4004, false);
    check_session_gated(ready, MSGR_E_API_LOCKED, SS_READY);
    CHECK_OK(msgr_session_manager_create_session(m3, &s));
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    CHECK_OK(msgr_session_release(s));
    CHECK_OK(msgr_session_manager_release(m3));
    tu_world_cleanup(&w);
}

/* Lock and Key off when the manager was released, a key added before the next sign-in: the
 * session is locked like a new manager would be. */
static void test_released_disabled_manager_locked_by_a_new_key(void) {
    tu_world w;
    msgr_session_manager *m2 = NULL;
    msgr_session *ready = NULL;
    tu_world_init(&w, 0);
    REQUIRE_OK(msgr_session_manager_create(w.a, &m2));
    tu_pump(&w);
    CHECK_LOCK(m2, LOCK_DISABLED);
    REQUIRE_OK(msgr_session_manager_create_session(m2, &ready));
    tu_world_own(&w, ready);
    CHECK_OK(msgr_session_manager_release(m2));
    CHECK_OK(msgr_session_set_local_address(ready, ""));
    CHECK_OK(msgr_client_sign_out(w.a));
    CHECK_OK(msgr_service_add_app_key(w.svc, TU_APP_ID, TU_APP_KEY));
    CHECK_OK(msgr_client_sign_in(w.a));
    check_session_gated(ready, MSGR_E_API_LOCKED, SS_READY);
    tu_pump(&w);
    CHECK(w.nreceived == 0);
    tu_world_cleanup(&w);
}

int main(void) {
    RUN(test_compute_response);
    RUN(test_unlock_succeeds);
    RUN(test_negative_cookie);
    RUN(test_wrong_key);
    RUN(test_uppercase_or_truncated_response_fails);
    RUN(test_wrong_cookie_changes_nothing);
    RUN(test_unknown_app_id);
    RUN(test_response_without_challenge);
    RUN(test_disabled_without_keys);
    RUN(test_replaced_key);
    RUN(test_locked_again_after_sign_out_and_in);
    RUN(test_manager_created_while_signed_out);
    RUN(test_failed_unlock_forgotten_at_next_sign_in);
    RUN(test_each_manager_locked_on_its_own);
    RUN(test_every_gated_call_refuses_while_locked);
    RUN(test_gated_calls_while_signed_out);
    RUN(test_released_manager_sessions_locked_after_sign_out_and_in);
    RUN(test_released_disabled_manager_locked_by_a_new_key);
    return tu_finish();
}
