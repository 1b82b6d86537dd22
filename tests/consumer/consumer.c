/*
 * consumer.c: a program that uses an installed msgrpriv, as an outside project would (see
 * README.md in this directory). It runs one short invitation (alice invites bob, bob
 * accepts, alice cancels) and exits 0 when it went as documented.
 */
#include <msgrpriv.h>

#include <stdio.h>
#include <string.h>

#define APP_GUID "{0C0FFEE0-1234-5678-9ABC-DEF012345678}"

static int failures;

static void check(MSGR_HRESULT hr, const char *what) {
    if (hr != S_OK) {
        fprintf(stderr, "consumer: %s: 0x%08lX %s\n", what, (unsigned long)(uint32_t)hr,
                msgr_result_text(hr));
        failures++;
    }
}
#define CHECK(call) check((call), #call)

/* Bob accepts every invitation; the session is lent for the call. */
static void on_invitation(void *user_data, msgr_session_manager *manager, msgr_session *session,
                          const char *app_data, bool *handled) {
    int *invitations = (int *)user_data;
    (void)manager;
    (*invitations)++;
    if (app_data == NULL || strcmp(app_data, "hello") != 0) {
        fprintf(stderr, "consumer: unexpected app data\n");
        failures++;
    }
    *handled = true;
    CHECK(msgr_session_accept(session, "ok"));
}

static void pump(msgr_client *a, msgr_client *b) {
    int i;
    for (i = 0; i < 100; i++) {
        uint32_t na = 0, nb = 0;
        CHECK(msgr_client_dispatch(a, 0, &na));
        CHECK(msgr_client_dispatch(b, 0, &nb));
        if (na == 0 && nb == 0) {
            return;
        }
    }
}

int main(void) {
    msgr_service *service = NULL;
    msgr_client *alice = NULL, *bob = NULL;
    msgr_session_manager *ma = NULL, *mb = NULL;
    msgr_session *session = NULL;
    SESSION_STATE state = SS_UNKNOWN;
    uint32_t cookie;
    int invitations = 0;

    if (strcmp(msgr_version(), MSGR_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: header %s, library %s\n", MSGR_VERSION_STRING, msgr_version());
        return 1;
    }
    CHECK(msgr_service_create(NULL, &service));
    CHECK(msgr_client_create(service, "alice@example.com", MSGR_DISPATCH_MANUAL, &alice));
    CHECK(msgr_client_create(service, "bob@example.com", MSGR_DISPATCH_MANUAL, &bob));
    CHECK(msgr_session_manager_create(alice, &ma));
    CHECK(msgr_session_manager_create(bob, &mb));
    CHECK(msgr_session_manager_on_invitation(mb, on_invitation, &invitations, NULL, &cookie));
    CHECK(msgr_session_manager_register_application(ma, APP_GUID, "Consumer", "https://example.com",
                                                    NULL, 0));
    CHECK(msgr_session_manager_create_session(ma, &session));
    CHECK(msgr_session_set_application(session, APP_GUID));
    CHECK(msgr_session_invite(session, "bob@example.com", "hello"));
    pump(alice, bob);
    CHECK(msgr_session_get_state(session, &state));
    if (invitations != 1 || state != SS_CONNECTED) {
        fprintf(stderr, "consumer: %d invitation(s), state %d\n", invitations, (int)state);
        failures++;
    }
    CHECK(msgr_session_cancel(session, SR_SESSION_CANCELLED_REMOTE, NULL));
    pump(alice, bob);
    CHECK(msgr_session_release(session));
    CHECK(msgr_session_manager_release(ma));
    CHECK(msgr_session_manager_release(mb));
    CHECK(msgr_client_destroy(alice));
    CHECK(msgr_client_destroy(bob));
    CHECK(msgr_service_destroy(service));
    if (failures) {
        return 1;
    }
    printf("consumer: msgrpriv %s, invitation accepted and cancelled\n", msgr_version());
    return 0;
}
