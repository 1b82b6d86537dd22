/*
 * The same C API in two processes, through a real XMPP server: alice (this process) invites
 * bob (a child process with its own service, client and registry); bob accepts; context
 * data both ways; alice cancels. Each side checks its own events, in order, and the parent
 * checks the child's exit status. Both clients run in thread mode.
 *
 * Run by scripts/with-prosody.sh, which starts a Prosody on a free port of two loopback
 * addresses with the users alice/alicepw and bob/bobpw in one shared group and sets
 * MSGRPRIV_XMPP_SERVER and MSGRPRIV_XMPP_SERVER2 ("127.0.0.1:<port>", "127.0.0.2:<port>"):
 * alice connects through the first address, bob through the second, as from two hosts.
 * Without it the test fails. With `with-prosody.sh --tls` (MSGRPRIV_XMPP_CA_FILE set) both
 * sign in over STARTTLS, trusting the server's certificate through `ca_file`; otherwise over
 * plain TCP (MSGR_TLS_PLAIN, loopback).
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define APP "{11111111-2222-3333-4444-555555555555}"
#define WAIT_MS 10000u

static char g_host[64];
static uint16_t g_port;
static tu_log g_log;
static msgr_session *g_received;
/* Bob writes a byte here once he listens for invitations (an invitation that arrives before
 * any manager listens is announced to nobody). */
static int g_ready[2];

static bool give_password(void *ud, const char *name, char *password, size_t size) {
    const char *p = NULL;
    (void)ud;
    if (strncmp(name, "alice@", 6) == 0) {
        p = "alicepw";
    } else if (strncmp(name, "bob@", 4) == 0) {
        p = "bobpw";
    }
    if (p == NULL || strlen(p) + 1 > size) {
        return false;
    }
    memcpy(password, p, strlen(p) + 1);
    return true;
}

static msgr_service *xmpp_service(void) {
    msgr_service_options o;
    msgr_service *svc = NULL;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.transport = MSGR_TRANSPORT_XMPP;
    o.server_host = g_host;
    o.server_port = g_port;
    o.credentials = give_password;
    o.ca_file = getenv("MSGRPRIV_XMPP_CA_FILE");
    o.tls = o.ca_file != NULL ? MSGR_TLS_STARTTLS : MSGR_TLS_PLAIN;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    return svc;
}

static void on_invitation(void *ud, msgr_session_manager *m, msgr_session *s, const char *data,
                          bool *handled) {
    (void)ud;
    (void)m;
    *handled = true;
    CHECK_OK(msgr_session_add_ref(s));
    g_received = s;
    /* Last: the main thread waits for this line (under the log's mutex) to use g_received. */
    tu_log_add(&g_log, "B:Invitation(%s%s%s)", TU_Q(data));
    tu_watch_session(&g_log, s, "B");
}

/* Reads "host:port" from the environment variable `name` into g_host and g_port. */
static bool server_from(const char *name) {
    const char *server = getenv(name);
    const char *colon = server ? strrchr(server, ':') : NULL;
    if (colon == NULL || (size_t)(colon - server) >= sizeof g_host) {
        return false;
    }
    memset(g_host, 0, sizeof g_host);
    memcpy(g_host, server, (size_t)(colon - server));
    g_port = (uint16_t)atoi(colon + 1);
    return true;
}

/* The invitee, in the child process, through the server's second address. */
static int bob(void) {
    msgr_service *svc;
    if (!server_from("MSGRPRIV_XMPP_SERVER2")) {
        fprintf(stderr, "FAIL: MSGRPRIV_XMPP_SERVER2 is not set\n");
        return 1;
    }
    svc = xmpp_service();
    msgr_client *c = NULL;
    msgr_session_manager *m = NULL;
    uint32_t cookie;
    REQUIRE_OK(msgr_client_create(svc, "bob@localhost", MSGR_DISPATCH_THREAD, &c));
    REQUIRE_OK(msgr_session_manager_create(c, &m));
    REQUIRE_OK(msgr_session_manager_register_application(m, APP, "Chess", "http://x/", "", 0));
    REQUIRE_OK(msgr_session_manager_on_invitation(m, on_invitation, NULL, NULL, &cookie));
    REQUIRE(write(g_ready[1], "r", 1) == 1);
    REQUIRE(tu_log_wait(&g_log, "B", "Invitation(", 1, WAIT_MS));
    CHECK_OK(msgr_session_accept(g_received, "yes"));
    REQUIRE(tu_log_wait(&g_log, "B", "ContextData(\"ping\")", 1, WAIT_MS));
    CHECK_OK(msgr_session_send_context_data(g_received, "pong"));
    REQUIRE(tu_log_wait(&g_log, "B", "Termination(", 1, WAIT_MS));
    EXPECT_SIDE_NOSTATE(&g_log, "B", "B:Invitation(\"hello\")", "B:StateChanged(SS_INVITATION)",
                        "B:BeforeAppLaunch(true)", "B:ReadyToLaunch",
                        "B:StateChanged(SS_ACCEPTED)", "B:ContextData(\"ping\")",
                        "B:StateChanged(SS_CONNECTED)", "B:Cancelled(\"bye\")",
                        "B:Termination(E_FAIL,\"bye\")");
    CHECK_OK(msgr_session_release(g_received));
    CHECK_OK(msgr_session_manager_release(m));
    CHECK_OK(msgr_client_destroy(c));
    CHECK_OK(msgr_service_destroy(svc));
    return tu_finish();
}

/* Waits for the child, at most `ms`; kills it past that. Returns its exit status (or -1). */
static int wait_child(pid_t pid, unsigned ms) {
    int status = 0;
    uint64_t deadline = tu_now_ms() + ms;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (tu_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "FAIL: bob's process did not finish in %u ms\n", ms);
            return -1;
        }
        tu_sleep_ms(5);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void) {
    msgr_service *svc;
    msgr_client *c = NULL;
    msgr_session_manager *m = NULL;
    msgr_session *s = NULL;
    MSGR_HRESULT hr;
    uint64_t deadline;
    pid_t pid;
    if (!server_from("MSGRPRIV_XMPP_SERVER")) {
        fprintf(stderr, "FAIL: MSGRPRIV_XMPP_SERVER is not set (run through scripts/with-prosody.sh)\n");
        return 1;
    }
    tu_log_init(&g_log);
    REQUIRE(pipe(g_ready) == 0);
    fflush(NULL);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        _exit(bob());
    }

    /* The inviter. */
    svc = xmpp_service();
    REQUIRE_OK(msgr_client_create(svc, "alice@localhost", MSGR_DISPATCH_THREAD, &c));
    REQUIRE_OK(msgr_session_manager_create(c, &m));
    REQUIRE_OK(msgr_session_manager_register_application(m, APP, "Chess", "http://x/", "", 0));
    REQUIRE_OK(msgr_session_manager_create_session(m, &s));
    tu_watch_session(&g_log, s, "A");
    CHECK_OK(msgr_session_set_application(s, APP));
    {
        char byte;
        REQUIRE(read(g_ready[0], &byte, 1) == 1); /* bob listens for invitations */
    }
    /* Until bob's presence reaches this service he is not signed in here. */
    deadline = tu_now_ms() + WAIT_MS;
    while ((hr = msgr_session_invite(s, "bob@localhost", "hello")) == MSGR_E_NOT_LOGGED_ON &&
           tu_now_ms() < deadline) {
        tu_sleep_ms(5);
    }
    REQUIRE_OK(hr);
    REQUIRE(tu_log_wait(&g_log, "A", "StateChanged(SS_ACCEPTED)", 1, WAIT_MS));
    CHECK_OK(msgr_session_send_context_data(s, "ping"));
    REQUIRE(tu_log_wait(&g_log, "A", "ContextData(\"pong\")", 1, WAIT_MS));
    CHECK_OK(msgr_session_cancel(s, E_FAIL, "bye"));
    REQUIRE(tu_log_wait(&g_log, "A", "Termination(", 1, WAIT_MS));
    EXPECT_SIDE_NOSTATE(&g_log, "A", "A:StateChanged(SS_READY)", "A:StateChanged(SS_INVITATION)",
                        "A:Accepted(\"yes\")", "A:ReadyToLaunch", "A:StateChanged(SS_ACCEPTED)",
                        "A:ContextData(\"pong\")", "A:StateChanged(SS_CONNECTED)",
                        "A:Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")");
    CHECK(wait_child(pid, 2 * WAIT_MS) == 0);
    CHECK_OK(msgr_session_release(s));
    CHECK_OK(msgr_session_manager_release(m));
    CHECK_OK(msgr_client_destroy(c));
    CHECK_OK(msgr_service_destroy(svc));
    tu_log_free(&g_log);
    return tu_finish();
}
