/*
 * invite_demo.c: the whole Session Invite flow of Msgrpriv.h, with Lock and Key, between two
 * users on the embedded service.
 *
 *   1. The service holds an application ID/key pair, so Lock and Key is in force: each
 *      session manager starts locked (OnLockEnable(true), OnLockStatusChanged(INITIALIZED)).
 *   2. Each manager unlocks itself: RequestChallenge(cookie) -> OnLockChallenge(cookie,
 *      challenge) -> msgr_lock_compute_response() -> SendResponse() -> OnLockResult(true).
 *   3. Alice registers the application (every manager hears OnAppRegistered), creates a
 *      session, sets the application and invites bob.
 *   4. Bob's manager gets OnInvitation: bob keeps the session (msgr_session_add_ref),
 *      listens to its events and accepts.
 *   5. They exchange context data both ways, then alice cancels.
 *
 * Every event is printed as it fires. The program exits with 0 only if each side saw exactly
 * the documented sequence of events (docs/CONTRACT.md, "Event order" and "Lock and Key"), and
 * releases everything it created.
 *
 * Build: cc -std=c99 invite_demo.c -I include -L <dir of libmsgrpriv> -lmsgrpriv
 */
#include <msgrpriv.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APP_GUID "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F01}"
#define APP_NAME "Invite Demo"
#define APP_URL "https://example.com/invite-demo"
#define APP_ID "invite-demo"
#define APP_KEY "demo-secret-key"

/* One user of the demo. */
typedef struct party {
    const char *name;
    msgr_client *client;
    msgr_session_manager *manager;
    msgr_session *session; /* one reference, released at the end */
    int32_t cookie;        /* the Lock and Key cookie this party chose */
    char trace[2048];      /* the events seen, for the final check */
} party;

static int failures;

/* Reports a failed call and counts it. */
static bool ok(MSGR_HRESULT hr, const char *what) {
    if (hr != S_OK) {
        fprintf(stderr, "FAILED: %s returned 0x%08lX (%s)\n", what, (unsigned long)(uint32_t)hr,
                msgr_result_text(hr));
        failures++;
        return false;
    }
    return true;
}
#define OK(call) ok((call), #call)

static const char *state_name(SESSION_STATE s) {
    static const char *const names[] = {"SS_UNKNOWN", "SS_READY", "SS_INVITATION", "SS_ACCEPTED",
                                        "SS_CONNECTED", "SS_CANCELLED", "SS_DECLINED", "SS_TERMINATED"};
    return (s >= SS_UNKNOWN && s <= SS_TERMINATED) ? names[s] : "?";
}

static const char *lock_name(LockStatus s) {
    static const char *const names[] = {"?", "LOCK_NOTINITIALIZED", "LOCK_INITIALIZED",
                                        "LOCK_PENDINGRESULT", "LOCK_UNLOCKED", "LOCK_UNLOCKFAILED",
                                        "LOCK_DISABLED"};
    return (s >= LOCK_NOTINITIALIZED && s <= LOCK_DISABLED) ? names[s] : "?";
}

/* Adds an entry to the party's trace. */
static void trace(party *p, const char *entry) {
    size_t used = strlen(p->trace);
    snprintf(p->trace + used, sizeof p->trace - used, "%s%s", used ? "; " : "", entry);
}

/* The session's state, as the event handlers see it. */
static const char *state_of(msgr_session *s) {
    SESSION_STATE st = SS_UNKNOWN;
    if (msgr_session_get_state(s, &st) != S_OK) {
        return "?";
    }
    return state_name(st);
}

/* ---- session events ---- */

static void on_before_app_launch(void *ud, msgr_session *s, bool *enable) {
    party *p = (party *)ud;
    printf("[%s] BeforeAppLaunch(enable=%s) state=%s\n", p->name, *enable ? "true" : "false",
           state_of(s));
    trace(p, "BeforeAppLaunch");
}

static void on_accepted(void *ud, msgr_session *s, const char *app_data) {
    party *p = (party *)ud;
    printf("[%s] OnAccepted(app_data=\"%s\") state=%s\n", p->name, app_data ? app_data : "",
           state_of(s));
    trace(p, "OnAccepted");
}

static void on_app_not_present(void *ud, msgr_session *s, const char *name, const char *url) {
    party *p = (party *)ud;
    printf("[%s] OnAppNotPresent(name=\"%s\", url=\"%s\") state=%s\n", p->name, name, url,
           state_of(s));
    trace(p, "OnAppNotPresent");
}

static void on_cancelled(void *ud, msgr_session *s, const char *app_data) {
    party *p = (party *)ud;
    printf("[%s] OnCancelled(app_data=\"%s\") state=%s\n", p->name, app_data ? app_data : "",
           state_of(s));
    trace(p, "OnCancelled");
}

static void on_context_data(void *ud, msgr_session *s, const char *data) {
    party *p = (party *)ud;
    char entry[400];
    printf("[%s] OnContextData(data=\"%s\") state=%s\n", p->name, data, state_of(s));
    snprintf(entry, sizeof entry, "OnContextData(%s)", data);
    trace(p, entry);
}

static void on_declined(void *ud, msgr_session *s, const char *app_data) {
    party *p = (party *)ud;
    printf("[%s] OnDeclined(app_data=\"%s\") state=%s\n", p->name, app_data ? app_data : "",
           state_of(s));
    trace(p, "OnDeclined");
}

static void on_ready_to_launch(void *ud, msgr_session *s) {
    party *p = (party *)ud;
    printf("[%s] OnReadyToLaunch() state=%s\n", p->name, state_of(s));
    trace(p, "OnReadyToLaunch");
}

static void on_send_error(void *ud, msgr_session *s, MSGR_HRESULT hr) {
    party *p = (party *)ud;
    printf("[%s] OnSendError(hr=%s) state=%s\n", p->name, msgr_result_text(hr), state_of(s));
    trace(p, "OnSendError");
}

static void on_state_changed(void *ud, msgr_session *s, SESSION_STATE previous) {
    party *p = (party *)ud;
    char entry[64];
    printf("[%s] OnStateChanged(previous=%s) state=%s\n", p->name, state_name(previous),
           state_of(s));
    snprintf(entry, sizeof entry, "OnStateChanged(%s->%s)", state_name(previous), state_of(s));
    trace(p, entry);
}

static void on_termination(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *app_data) {
    party *p = (party *)ud;
    char entry[80];
    printf("[%s] OnTermination(hr=0x%08lX \"%s\", app_data=\"%s\") state=%s\n", p->name,
           (unsigned long)(uint32_t)hr, msgr_result_text(hr), app_data ? app_data : "",
           state_of(s));
    snprintf(entry, sizeof entry, "OnTermination(%s)",
             hr == SR_SESSION_CANCELLED_LOCAL    ? "SR_SESSION_CANCELLED_LOCAL"
             : hr == SR_SESSION_CANCELLED_REMOTE ? "SR_SESSION_CANCELLED_REMOTE"
                                                 : "other");
    trace(p, entry);
}

/* Listens to the ten session events; the party is the user data (no destroy needed). */
static void listen_to_session(party *p, msgr_session *s) {
    uint32_t cookie;
    OK(msgr_session_before_app_launch(s, on_before_app_launch, p, NULL, &cookie));
    OK(msgr_session_on_accepted(s, on_accepted, p, NULL, &cookie));
    OK(msgr_session_on_app_not_present(s, on_app_not_present, p, NULL, &cookie));
    OK(msgr_session_on_cancelled(s, on_cancelled, p, NULL, &cookie));
    OK(msgr_session_on_context_data(s, on_context_data, p, NULL, &cookie));
    OK(msgr_session_on_declined(s, on_declined, p, NULL, &cookie));
    OK(msgr_session_on_ready_to_launch(s, on_ready_to_launch, p, NULL, &cookie));
    OK(msgr_session_on_send_error(s, on_send_error, p, NULL, &cookie));
    OK(msgr_session_on_state_changed(s, on_state_changed, p, NULL, &cookie));
    OK(msgr_session_on_termination(s, on_termination, p, NULL, &cookie));
}

/* ---- session manager events ---- */

static void on_app_registered(void *ud, msgr_session_manager *m, const char *guid) {
    party *p = (party *)ud;
    (void)m;
    printf("[%s] OnAppRegistered(guid=%s)\n", p->name, guid);
    trace(p, strcmp(guid, APP_GUID) == 0 ? "OnAppRegistered" : "OnAppRegistered(other)");
}

static void on_app_unregistered(void *ud, msgr_session_manager *m, const char *guid) {
    party *p = (party *)ud;
    (void)m;
    printf("[%s] OnAppUnRegistered(guid=%s)\n", p->name, guid);
    trace(p, strcmp(guid, APP_GUID) == 0 ? "OnAppUnRegistered" : "OnAppUnRegistered(other)");
}

static void on_app_shutdown(void *ud, msgr_session_manager *m) {
    party *p = (party *)ud;
    (void)m;
    printf("[%s] OnAppShutdown()\n", p->name);
    trace(p, "OnAppShutdown");
}

/* Bob's invitation: keep the session, listen to it, take care of it (handled). */
static void on_invitation(void *ud, msgr_session_manager *m, msgr_session *s,
                          const char *app_data, bool *handled) {
    party *p = (party *)ud;
    char user[300];
    size_t needed;
    (void)m;
    if (msgr_session_get_user(s, user, sizeof user, &needed) != S_OK) {
        user[0] = '\0';
    }
    printf("[%s] OnInvitation(from=%s, app_data=\"%s\", handled=%s) state=%s\n", p->name, user,
           app_data ? app_data : "", *handled ? "true" : "false", state_of(s));
    trace(p, "OnInvitation");
    if (p->session == NULL && OK(msgr_session_add_ref(s))) {
        p->session = s;
        listen_to_session(p, s);
        OK(msgr_session_set_local_address(s, "bob-host:7001"));
        *handled = true;
    }
}

/* The service's challenge: answer it at once, from the callback. */
static void on_lock_challenge(void *ud, msgr_session_manager *m, int32_t cookie,
                              const char *challenge) {
    party *p = (party *)ud;
    char response[MSGR_LOCK_RESPONSE_SIZE];
    printf("[%s] OnLockChallenge(cookie=%ld, challenge=%s)\n", p->name, (long)cookie, challenge);
    trace(p, cookie == p->cookie ? "OnLockChallenge" : "OnLockChallenge(wrong cookie)");
    if (OK(msgr_lock_compute_response(challenge, APP_KEY, response))) {
        printf("[%s]   SendResponse(%s, %s, %ld)\n", p->name, APP_ID, response, (long)cookie);
        OK(msgr_session_manager_send_response(m, APP_ID, response, cookie));
    }
}

static void on_lock_enable(void *ud, msgr_session_manager *m, bool enabled) {
    party *p = (party *)ud;
    (void)m;
    printf("[%s] OnLockEnable(enabled=%s)\n", p->name, enabled ? "true" : "false");
    trace(p, enabled ? "OnLockEnable(true)" : "OnLockEnable(false)");
}

static void on_lock_result(void *ud, msgr_session_manager *m, int32_t cookie, bool succeeded) {
    party *p = (party *)ud;
    (void)m;
    printf("[%s] OnLockResult(cookie=%ld, succeeded=%s)\n", p->name, (long)cookie,
           succeeded ? "true" : "false");
    trace(p, succeeded && cookie == p->cookie ? "OnLockResult(true)" : "OnLockResult(failed)");
}

static void on_lock_status_changed(void *ud, msgr_session_manager *m, LockStatus status) {
    party *p = (party *)ud;
    char entry[64];
    (void)m;
    printf("[%s] OnLockStatusChanged(status=%s)\n", p->name, lock_name(status));
    snprintf(entry, sizeof entry, "OnLockStatusChanged(%s)", lock_name(status));
    trace(p, entry);
}

static void listen_to_manager(party *p) {
    uint32_t cookie;
    OK(msgr_session_manager_on_app_registered(p->manager, on_app_registered, p, NULL, &cookie));
    OK(msgr_session_manager_on_app_unregistered(p->manager, on_app_unregistered, p, NULL, &cookie));
    OK(msgr_session_manager_on_app_shutdown(p->manager, on_app_shutdown, p, NULL, &cookie));
    OK(msgr_session_manager_on_invitation(p->manager, on_invitation, p, NULL, &cookie));
    OK(msgr_session_manager_on_lock_challenge(p->manager, on_lock_challenge, p, NULL, &cookie));
    OK(msgr_session_manager_on_lock_enable(p->manager, on_lock_enable, p, NULL, &cookie));
    OK(msgr_session_manager_on_lock_result(p->manager, on_lock_result, p, NULL, &cookie));
    OK(msgr_session_manager_on_lock_status_changed(p->manager, on_lock_status_changed, p, NULL, &cookie));
}

/* Delivers both clients' events until neither has any left (manual dispatch mode). */
static void pump(party *a, party *b) {
    int rounds;
    for (rounds = 0; rounds < 1000; rounds++) {
        uint32_t na = 0, nb = 0;
        OK(msgr_client_dispatch(a->client, 0, &na));
        OK(msgr_client_dispatch(b->client, 0, &nb));
        if (na == 0 && nb == 0) {
            return;
        }
    }
}

static void show_session(party *p) {
    char id[64], remote[64];
    size_t needed;
    MSGR_HRESULT hr;
    OK(msgr_session_get_session_id(p->session, id, sizeof id, &needed));
    hr = msgr_session_get_remote_address(p->session, remote, sizeof remote, &needed);
    printf("[%s] session %s state=%s remote address=\"%s\"%s\n", p->name, id,
           state_of(p->session), hr == S_OK ? remote : "", hr == S_FALSE ? " (not connected)" : "");
}

static bool check_trace(const party *p, const char *expected) {
    if (strcmp(p->trace, expected) == 0) {
        return true;
    }
    fprintf(stderr, "FAILED: %s's events differ from the documented flow\n  expected: %s\n  got:      %s\n",
            p->name, expected, p->trace);
    failures++;
    return false;
}

int main(void) {
    msgr_service *service = NULL;
    party alice, bob;
    LockStatus status;
    const char *expected_alice, *expected_bob;

    memset(&alice, 0, sizeof alice);
    memset(&bob, 0, sizeof bob);
    alice.name = "alice";
    bob.name = "bob";
    srand((unsigned)time(NULL));
    alice.cookie = (int32_t)(rand() & 0x7FFFFFFF);
    bob.cookie = (int32_t)(rand() & 0x7FFFFFFF) ^ 0x5A5A;

    printf("msgrpriv %s\n\n", msgr_version());

    /* The service, with an application ID/key pair: Lock and Key is in force. */
    if (!OK(msgr_service_create(NULL, &service)) ||
        !OK(msgr_service_add_app_key(service, APP_ID, APP_KEY)) ||
        !OK(msgr_client_create(service, "alice@example.com", MSGR_DISPATCH_MANUAL, &alice.client)) ||
        !OK(msgr_client_create(service, "bob@example.com", MSGR_DISPATCH_MANUAL, &bob.client)) ||
        !OK(msgr_session_manager_create(alice.client, &alice.manager)) ||
        !OK(msgr_session_manager_create(bob.client, &bob.manager))) {
        goto cleanup;
    }
    listen_to_manager(&alice);
    listen_to_manager(&bob);
    printf("-- signed in: each manager is locked\n");
    pump(&alice, &bob);

    /* Lock and Key: each manager unlocks itself (the response is sent from OnLockChallenge). */
    printf("\n-- Lock and Key\n");
    OK(msgr_session_manager_request_challenge(alice.manager, alice.cookie));
    OK(msgr_session_manager_request_challenge(bob.manager, bob.cookie));
    pump(&alice, &bob);
    if (!OK(msgr_session_manager_get_lock_status(alice.manager, &status)) || status != LOCK_UNLOCKED ||
        !OK(msgr_session_manager_get_lock_status(bob.manager, &status)) || status != LOCK_UNLOCKED) {
        fprintf(stderr, "FAILED: the managers are not unlocked\n");
        failures++;
        goto cleanup;
    }

    /* The application, registered once for the machine: both managers hear of it. */
    printf("\n-- RegisterApplication\n");
    OK(msgr_session_manager_register_application(alice.manager, APP_GUID, APP_NAME, APP_URL, NULL, 0));
    pump(&alice, &bob);

    /* Alice invites bob. */
    printf("\n-- alice invites bob\n");
    if (!OK(msgr_session_manager_create_session(alice.manager, &alice.session))) {
        goto cleanup;
    }
    listen_to_session(&alice, alice.session);
    OK(msgr_session_set_application(alice.session, APP_GUID));
    OK(msgr_session_set_local_address(alice.session, "alice-host:7000"));
    OK(msgr_session_invite(alice.session, "bob@example.com", "Let's play"));
    pump(&alice, &bob);
    if (bob.session == NULL) {
        fprintf(stderr, "FAILED: bob got no invitation\n");
        failures++;
        goto cleanup;
    }

    /* Bob accepts: both sides end up connected. */
    printf("\n-- bob accepts\n");
    OK(msgr_session_accept(bob.session, "Ready"));
    pump(&alice, &bob);
    show_session(&alice);
    show_session(&bob);

    /* What the two applications need to connect. */
    printf("\n-- context data, both ways\n");
    OK(msgr_session_send_context_data(alice.session, "alice listens on 7000"));
    OK(msgr_session_send_context_data(bob.session, "bob listens on 7001"));
    pump(&alice, &bob);

    /* Alice ends the session; bob is told why. */
    printf("\n-- alice cancels\n");
    OK(msgr_session_cancel(alice.session, SR_SESSION_CANCELLED_REMOTE, "Bye"));
    pump(&alice, &bob);
    show_session(&alice);
    show_session(&bob);

    printf("\n-- UnRegisterApplication\n");
    OK(msgr_session_manager_unregister_application(bob.manager, APP_GUID));
    pump(&alice, &bob);

    /* The documented sequences (docs/CONTRACT.md, "Event order" and "Lock and Key"). */
    expected_alice =
        "OnLockEnable(true); OnLockStatusChanged(LOCK_INITIALIZED); "
        "OnLockStatusChanged(LOCK_PENDINGRESULT); OnLockChallenge; "
        "OnLockResult(true); OnLockStatusChanged(LOCK_UNLOCKED); "
        "OnAppRegistered; "
        "OnStateChanged(SS_READY->SS_INVITATION); "
        "OnStateChanged(SS_INVITATION->SS_CONNECTED); OnAccepted; OnReadyToLaunch; "
        "OnStateChanged(SS_ACCEPTED->SS_CONNECTED); "
        "OnContextData(bob listens on 7001); "
        "OnStateChanged(SS_CONNECTED->SS_CANCELLED); OnTermination(SR_SESSION_CANCELLED_LOCAL); "
        "OnAppUnRegistered";
    expected_bob =
        "OnLockEnable(true); OnLockStatusChanged(LOCK_INITIALIZED); "
        "OnLockStatusChanged(LOCK_PENDINGRESULT); OnLockChallenge; "
        "OnLockResult(true); OnLockStatusChanged(LOCK_UNLOCKED); "
        "OnAppRegistered; "
        "OnInvitation; "
        "OnStateChanged(SS_INVITATION->SS_ACCEPTED); BeforeAppLaunch; OnReadyToLaunch; "
        "OnStateChanged(SS_ACCEPTED->SS_CONNECTED); "
        "OnContextData(alice listens on 7000); "
        "OnStateChanged(SS_CONNECTED->SS_CANCELLED); OnCancelled; "
        "OnTermination(SR_SESSION_CANCELLED_REMOTE); "
        "OnAppUnRegistered";
    check_trace(&alice, expected_alice);
    check_trace(&bob, expected_bob);

cleanup:
    /* Everything this program created, in reverse order. */
    OK(msgr_session_release(alice.session));
    OK(msgr_session_release(bob.session));
    OK(msgr_session_manager_release(alice.manager));
    OK(msgr_session_manager_release(bob.manager));
    OK(msgr_client_destroy(alice.client));
    OK(msgr_client_destroy(bob.client));
    OK(msgr_service_destroy(service));
    if (failures) {
        fprintf(stderr, "\ninvite_demo: %d failure(s)\n", failures);
        return 1;
    }
    printf("\ninvite_demo: the whole flow happened as documented\n");
    return 0;
}
