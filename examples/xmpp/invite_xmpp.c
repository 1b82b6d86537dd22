/*
 * invite_xmpp.c: the Session Invite flow between two processes through an XMPP server.
 * Alice (this process) invites bob (a child process with its own service and client); bob
 * accepts; they exchange context data; alice cancels. Each side prints its events as they
 * fire ("[alice] ...", "[bob] ..."), in thread mode.
 *
 * The server's address comes from MSGRPRIV_XMPP_SERVER ("127.0.0.1:5222"); the users are
 * alice@localhost / alicepw and bob@localhost / bobpw, who must see each other's presence
 * (contacts, or one shared group). `bash scripts/demo.sh --xmpp` starts such a Prosody
 * (scripts/with-prosody.sh) and runs this. With MSGRPRIV_XMPP_CA_FILE set (a PEM file that
 * vouches for the server's certificate; `scripts/with-prosody.sh --tls` sets it) the
 * connections use STARTTLS; without it, plain TCP to a loopback address. Exits 0 when both
 * sides saw the whole flow.
 */
#define _POSIX_C_SOURCE 200809L
#include <msgrpriv.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define APP "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F01}"

static const char *g_me;
static char g_host[64];
static unsigned g_port;
static msgr_session *volatile g_session;
static volatile int g_accepted, g_context, g_ended;
/* Bob writes a byte here once he listens for invitations: one that arrives before any
 * session manager listens is announced to nobody. */
static int g_ready[2];

static void fail(const char *what, MSGR_HRESULT hr) {
    fprintf(stderr, "[%s] FAILED: %s: 0x%08lX %s\n", g_me, what, (unsigned long)(uint32_t)hr,
            msgr_result_text(hr));
    exit(1);
}
#define OK(call)                                                                                   \
    do {                                                                                           \
        MSGR_HRESULT hr_ = (call);                                                                 \
        if (hr_ != S_OK) fail(#call, hr_);                                                         \
    } while (0)

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Waits up to 10 s for *flag. */
static void wait_for(volatile int *flag, const char *what) {
    int i;
    for (i = 0; i < 2000 && !*flag; i++) {
        sleep_ms(5);
    }
    if (!*flag) {
        fprintf(stderr, "[%s] FAILED: no %s within 10 s\n", g_me, what);
        exit(1);
    }
}

static const char *state_name(SESSION_STATE s) {
    static const char *const names[] = {"SS_UNKNOWN", "SS_READY", "SS_INVITATION", "SS_ACCEPTED",
                                        "SS_CONNECTED", "SS_CANCELLED", "SS_DECLINED", "SS_TERMINATED"};
    return (s >= SS_UNKNOWN && s <= SS_TERMINATED) ? names[s] : "?";
}

static bool password(void *ud, const char *jid, char *buf, size_t size) {
    const char *pw = strncmp(jid, "alice@", 6) == 0 ? "alicepw" : "bobpw";
    (void)ud;
    return snprintf(buf, size, "%s", pw) < (int)size;
}

static void on_state_changed(void *ud, msgr_session *s, SESSION_STATE previous) {
    SESSION_STATE now = SS_UNKNOWN;
    (void)ud;
    msgr_session_get_state(s, &now);
    printf("[%s] OnStateChanged(previous=%s) state=%s\n", g_me, state_name(previous), state_name(now));
    fflush(stdout);
}
static void on_accepted(void *ud, msgr_session *s, const char *data) {
    (void)ud;
    (void)s;
    printf("[%s] OnAccepted(\"%s\")\n", g_me, data ? data : "");
    fflush(stdout);
    g_accepted = 1;
}
static void on_ready_to_launch(void *ud, msgr_session *s) {
    (void)ud;
    (void)s;
    printf("[%s] OnReadyToLaunch\n", g_me);
    fflush(stdout);
}
static void on_context_data(void *ud, msgr_session *s, const char *data) {
    (void)ud;
    (void)s;
    printf("[%s] OnContextData(\"%s\")\n", g_me, data);
    fflush(stdout);
    g_context = 1;
}
static void on_cancelled(void *ud, msgr_session *s, const char *data) {
    (void)ud;
    (void)s;
    printf("[%s] OnCancelled(\"%s\")\n", g_me, data ? data : "");
    fflush(stdout);
}
static void on_termination(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *data) {
    (void)ud;
    (void)s;
    printf("[%s] OnTermination(%s, \"%s\")\n", g_me, msgr_result_text(hr), data ? data : "");
    fflush(stdout);
    g_ended = 1;
}

static void listen_to(msgr_session *s) {
    uint32_t c;
    OK(msgr_session_on_state_changed(s, on_state_changed, NULL, NULL, &c));
    OK(msgr_session_on_accepted(s, on_accepted, NULL, NULL, &c));
    OK(msgr_session_on_ready_to_launch(s, on_ready_to_launch, NULL, NULL, &c));
    OK(msgr_session_on_context_data(s, on_context_data, NULL, NULL, &c));
    OK(msgr_session_on_cancelled(s, on_cancelled, NULL, NULL, &c));
    OK(msgr_session_on_termination(s, on_termination, NULL, NULL, &c));
}

static void on_invitation(void *ud, msgr_session_manager *m, msgr_session *s, const char *data,
                          bool *handled) {
    (void)ud;
    (void)m;
    printf("[%s] OnInvitation(\"%s\")\n", g_me, data ? data : "");
    fflush(stdout);
    *handled = true;
    OK(msgr_session_add_ref(s));
    listen_to(s);
    g_session = s;
}

/* One user: service, client, manager, the application registered. */
static void sign_in(const char *jid, msgr_service **svc, msgr_client **c, msgr_session_manager **m) {
    msgr_service_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.transport = MSGR_TRANSPORT_XMPP;
    o.server_host = g_host;
    o.server_port = g_port;
    o.credentials = password;
    /* STARTTLS (the default), trusting the certificate in MSGRPRIV_XMPP_CA_FILE instead of
     * the system's store; without it, plain TCP, which the library allows to loopback only. */
    o.ca_file = getenv("MSGRPRIV_XMPP_CA_FILE");
    o.tls = o.ca_file != NULL ? MSGR_TLS_STARTTLS : MSGR_TLS_PLAIN;
    OK(msgr_service_create(&o, svc));
    OK(msgr_client_create(*svc, jid, MSGR_DISPATCH_THREAD, c));
    printf("[%s] signed in as %s\n", g_me, jid);
    fflush(stdout);
    OK(msgr_session_manager_create(*c, m));
    OK(msgr_session_manager_register_application(*m, APP, "Demo", "https://example.com/demo", "", 0));
}

static void finish(msgr_service *svc, msgr_client *c, msgr_session_manager *m, msgr_session *s) {
    OK(msgr_session_release(s));
    OK(msgr_session_manager_release(m));
    OK(msgr_client_destroy(c));
    OK(msgr_service_destroy(svc));
}

static int bob(void) {
    msgr_service *svc;
    msgr_client *c;
    msgr_session_manager *m;
    uint32_t cookie;
    g_me = "bob";
    sign_in("bob@localhost", &svc, &c, &m);
    OK(msgr_session_manager_on_invitation(m, on_invitation, NULL, NULL, &cookie));
    if (write(g_ready[1], "r", 1) != 1) {
        return 1;
    }
    while (g_session == NULL) {
        sleep_ms(5);
    }
    OK(msgr_session_accept(g_session, "glad to"));
    wait_for(&g_context, "context data");
    OK(msgr_session_send_context_data(g_session, "pong"));
    wait_for(&g_ended, "end");
    finish(svc, c, m, g_session);
    return 0;
}

int main(void) {
    const char *server = getenv("MSGRPRIV_XMPP_SERVER");
    const char *colon = server ? strrchr(server, ':') : NULL;
    msgr_service *svc;
    msgr_client *c;
    msgr_session_manager *m;
    msgr_session *s;
    MSGR_HRESULT hr;
    int i, status = 0;
    pid_t pid;
    if (colon == NULL || (size_t)(colon - server) >= sizeof g_host) {
        fprintf(stderr, "set MSGRPRIV_XMPP_SERVER=host:port (bash scripts/demo.sh --xmpp does)\n");
        return 2;
    }
    memcpy(g_host, server, (size_t)(colon - server));
    g_port = (unsigned)atoi(colon + 1);
    if (pipe(g_ready) != 0) {
        return 1;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(bob());
    }
    g_me = "alice";
    sign_in("alice@localhost", &svc, &c, &m);
    OK(msgr_session_manager_create_session(m, &s));
    listen_to(s);
    OK(msgr_session_set_application(s, APP));
    {
        char byte;
        if (read(g_ready[0], &byte, 1) != 1) { /* bob listens for invitations */
            fprintf(stderr, "[alice] FAILED: bob did not start\n");
            return 1;
        }
    }
    /* Until bob's presence reaches alice's service, he is not signed in there. */
    for (i = 0; (hr = msgr_session_invite(s, "bob@localhost", "let's play")) == MSGR_E_NOT_LOGGED_ON && i < 2000; i++) {
        sleep_ms(5);
    }
    OK(hr);
    wait_for(&g_accepted, "acceptance");
    OK(msgr_session_send_context_data(s, "ping"));
    wait_for(&g_context, "context data");
    OK(msgr_session_cancel(s, SR_SESSION_CANCELLED_REMOTE, "bye"));
    wait_for(&g_ended, "end");
    finish(svc, c, m, s);
    for (i = 0; i < 2000 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        sleep_ms(5);
    }
    if (i == 2000) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "[alice] FAILED: bob did not finish\n");
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "[alice] FAILED: bob's process failed\n");
        return 1;
    }
    printf("both sides saw the whole flow\n");
    return 0;
}
