/*
 * msgr_last_error(): the detail of the last failed call on this thread. It names the
 * function, the argument (as the header names the parameter) and the form expected, or the
 * step to take next (Lock and Key); a call that succeeds leaves it; each thread has its own.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <pthread.h>

#define REG "msgr_session_manager_register_application: "

static void test_register_application_says_which_argument(void) {
    tu_world w;
    tu_world_init(&w, TU_NO_APP);
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, "abc", "n", "u", "", 0));
    CHECK_STR(msgr_last_error(),
              REG "guid: \"abc\" is not a GUID: expected {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}, "
                  "hex digits in braces (E_INVALIDARG)");
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "bin/app", 0));
    CHECK_STR(msgr_last_error(),
              REG "path: \"bin/app\" is relative: an absolute path is required (E_INVALIDARG)");
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 1));
    CHECK_STR(msgr_last_error(), REG "flags: 1, must be 0 (E_INVALIDARG)");
    CHECK_HR(E_FILE_NOT_FOUND,
             msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "/no/such/msgrpriv/app", 0));
    CHECK_STR(msgr_last_error(), REG "path: \"/no/such/msgrpriv/app\" does not exist (E_FILE_NOT_FOUND)");
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP, "\xff", "u", "", 0));
    CHECK_STR(msgr_last_error(), REG "name: not valid UTF-8 (byte 0 is not) (E_INVALIDARG)");
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(w.ma, TU_APP, "n", NULL, "", 0));
    CHECK_STR(msgr_last_error(), REG "url: NULL, where a string is required (E_POINTER)");
    /* A success leaves the last error as it was. */
    CHECK_OK(msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0));
    CHECK_STR(msgr_last_error(), REG "url: NULL, where a string is required (E_POINTER)");
    CHECK_HR(SR_APP_ALREADY_REGISTERED, msgr_session_manager_register_application(w.ma, TU_APP, "n", "u", "", 0));
    CHECK_STR(msgr_last_error(),
              REG "guid: " TU_APP " is registered already: unregister it first to change its name, "
                  "URL or path (SR_APP_ALREADY_REGISTERED)");
    tu_world_cleanup(&w);
}

static void test_handles_outputs_and_buffers(void) {
    tu_world w;
    msgr_session *s = NULL;
    size_t needed = 0;
    char buf[4];
    SESSION_STATE st;
    tu_world_init(&w, 0);
    CHECK_HR(E_POINTER, msgr_session_manager_create_session(w.ma, NULL));
    CHECK_STR(msgr_last_error(), "msgr_session_manager_create_session: out_session: NULL, where the "
                                 "result is to be written (E_POINTER)");
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &s));
    CHECK_OK(msgr_session_release(s));
    CHECK_HR(E_HANDLE, msgr_session_get_state(s, &st));
    CHECK_STR(msgr_last_error(), "msgr_session_get_state: not a live msgr_session handle: released, "
                                 "destroyed, forged or of another kind (E_HANDLE)");
    CHECK_HR(E_POINTER, msgr_session_get_state(NULL, &st));
    CHECK_STR(msgr_last_error(), "msgr_session_get_state: the msgr_session handle is NULL (E_POINTER)");
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_manager_get_applications(w.ma, buf, sizeof buf, &needed));
    {
        char *want = tu_strf("msgr_session_manager_get_applications: buf: 4 bytes, %lu needed (*needed "
                             "holds it) (E_INSUFFICIENT_BUFFER)",
                             (unsigned long)needed);
        CHECK_STR(msgr_last_error(), want);
        free(want);
    }
    tu_world_cleanup(&w);
}

/* Lock and Key: the text names the step to take next. */
static void test_lock_and_key_says_what_to_do(void) {
    msgr_service_options o;
    msgr_service *svc;
    msgr_client *c;
    msgr_session_manager *m;
    msgr_session *s = NULL;
    uint32_t n = 0;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    REQUIRE_OK(msgr_service_add_app_key(svc, TU_APP_ID, TU_APP_KEY));
    REQUIRE_OK(msgr_client_create(svc, "carol@example.com", MSGR_DISPATCH_MANUAL, &c));
    REQUIRE_OK(msgr_session_manager_create(c, &m));
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(m, &s));
    CHECK_STR(msgr_last_error(),
              "msgr_session_manager_create_session: the manager is locked: unlock it first "
              "(msgr_session_manager_request_challenge(), then msgr_session_manager_send_response() "
              "with the response to OnLockChallenge's challenge) (MSGR_E_API_LOCKED)");
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_send_response(m, TU_APP_ID, "00", 1));
    CHECK_OK(msgr_session_manager_request_challenge(m, 1));
    CHECK_OK(msgr_client_dispatch(c, 0, &n));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(m, TU_APP_ID, "00", 2));
    CHECK_STR(msgr_last_error(), "msgr_session_manager_send_response: cookie: 2, but the pending "
                                 "challenge's cookie is 1 (from OnLockChallenge) (E_INVALIDARG)");
    CHECK_OK(msgr_session_manager_send_response(m, TU_APP_ID, "00", 1));
    CHECK_OK(msgr_client_dispatch(c, 0, &n));
    CHECK_LOCK(m, LOCK_UNLOCKFAILED);
    CHECK_HR(MSGR_E_API_LOCKED, msgr_session_manager_create_session(m, &s));
    CHECK(strstr(msgr_last_error(), "sign out and in again (msgr_client_sign_out(), msgr_client_sign_in())") != NULL);
    CHECK_HR(MSGR_E_API_UNLOCK_FAILED, msgr_session_manager_request_challenge(m, 3));
    CHECK(strstr(msgr_last_error(), "msgr_session_manager_request_challenge: the unlock failed") == msgr_last_error());
    CHECK_OK(msgr_client_sign_out(c));
    CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_create_session(m, &s));
    CHECK_STR(msgr_last_error(), "msgr_session_manager_create_session: the client is signed out: "
                                 "msgr_client_sign_in() first (MSGR_E_NOT_LOGGED_ON)");
    CHECK_OK(msgr_session_manager_release(m));
    CHECK_OK(msgr_client_destroy(c));
    CHECK_OK(msgr_service_destroy(svc));
}

static void *other_thread(void *arg) {
    (void)arg;
    CHECK_STR(msgr_last_error(), "");
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("\xff", "k", (char[33]){0}));
    CHECK_STR(msgr_last_error(), "msgr_lock_compute_response: challenge: not valid UTF-8 (byte 0 is "
                                 "not) (E_INVALIDARG)");
    return NULL;
}

static void test_each_thread_has_its_own(void) {
    pthread_t t;
    char out[33];
    CHECK_HR(E_POINTER, msgr_lock_compute_response(NULL, "k", out));
    REQUIRE(pthread_create(&t, NULL, other_thread, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    CHECK_STR(msgr_last_error(), "msgr_lock_compute_response: challenge: NULL, where a string is "
                                 "required (E_POINTER)");
}

int main(void) {
    /* Nothing has failed on this thread yet. */
    CHECK_STR(msgr_last_error(), "");
    RUN(test_register_application_says_which_argument);
    RUN(test_handles_outputs_and_buffers);
    RUN(test_lock_and_key_says_what_to_do);
    RUN(test_each_thread_has_its_own);
    return tu_finish();
}
