/*
 * event_loop.c: two clients in one single-threaded event loop, woken by their event file
 * descriptors (msgr_client_event_fd) through epoll on Linux, poll(2) elsewhere, the way an
 * application with its own main loop (sockets, timers, a GUI toolkit) integrates msgrpriv.
 *
 * Each descriptor is readable while its client has events pending; when the loop sees it
 * readable it calls msgr_client_dispatch(client, 0, ...), which delivers them all. Nothing
 * else drives the program: every step of the conversation is taken by a callback.
 *
 *   alice invites bob -> bob accepts (OnInvitation) -> alice sends context data once
 *   connected (OnStateChanged) -> bob answers (OnContextData) -> alice cancels
 *   (OnContextData) -> both sides end (OnTermination) -> the loop stops.
 *
 * The program exits with 0 when both sides ended as documented within five seconds, and
 * releases everything it created.
 *
 * Build: cc -std=c99 event_loop.c -I include -L <dir of libmsgrpriv> -lmsgrpriv
 */
#define _POSIX_C_SOURCE 200809L

#include <msgrpriv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__linux__)
#include <sys/epoll.h>
#include <unistd.h>
#else
#include <poll.h>
#endif

#define APP_GUID "{2F1E0D3C-4B5A-4697-8877-665544332211}"

typedef struct party {
    const char *name;
    msgr_client *client;
    msgr_session_manager *manager;
    msgr_session *session; /* one reference, released at the end */
    int fd;                /* the client's event descriptor (owned by the client) */
    MSGR_HRESULT ended;    /* the OnTermination code; S_FALSE while the session lives */
} party;

static int failures;

static bool ok(MSGR_HRESULT hr, const char *what) {
    if (MSGR_FAILED(hr)) {
        fprintf(stderr, "FAILED: %s returned 0x%08lX (%s)\n", what, (unsigned long)(uint32_t)hr,
                msgr_result_text(hr));
        failures++;
        return false;
    }
    return true;
}
#define OK(call) ok((call), #call)

/* ---- the conversation, one callback at a time ---- */

static void on_state_changed(void *ud, msgr_session *s, SESSION_STATE previous) {
    party *p = (party *)ud;
    SESSION_STATE now = SS_UNKNOWN;
    OK(msgr_session_get_state(s, &now));
    printf("[%s] state %d -> %d\n", p->name, (int)previous, (int)now);
    if (now == SS_CONNECTED && previous == SS_ACCEPTED && strcmp(p->name, "alice") == 0) {
        OK(msgr_session_send_context_data(s, "alice: tcp 7000"));
    }
}

static void on_context_data(void *ud, msgr_session *s, const char *data) {
    party *p = (party *)ud;
    printf("[%s] context data \"%s\"\n", p->name, data);
    if (strcmp(p->name, "bob") == 0) {
        OK(msgr_session_send_context_data(s, "bob: tcp 7001"));
    } else {
        OK(msgr_session_cancel(s, SR_SESSION_CANCELLED_REMOTE, "done"));
    }
}

static void on_termination(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *app_data) {
    party *p = (party *)ud;
    (void)s;
    printf("[%s] terminated: %s%s%s\n", p->name, msgr_result_text(hr), app_data ? " / " : "",
           app_data ? app_data : "");
    p->ended = hr;
}

static void listen_to_session(party *p, msgr_session *s) {
    uint32_t cookie;
    OK(msgr_session_on_state_changed(s, on_state_changed, p, NULL, &cookie));
    OK(msgr_session_on_context_data(s, on_context_data, p, NULL, &cookie));
    OK(msgr_session_on_termination(s, on_termination, p, NULL, &cookie));
}

static void on_invitation(void *ud, msgr_session_manager *m, msgr_session *s, const char *app_data,
                          bool *handled) {
    party *p = (party *)ud;
    (void)m;
    printf("[%s] invitation \"%s\": accepting\n", p->name, app_data ? app_data : "");
    if (p->session == NULL && OK(msgr_session_add_ref(s))) {
        p->session = s;
        listen_to_session(p, s);
        OK(msgr_session_accept(s, NULL));
        *handled = true;
    }
}

/* ---- the loop ---- */

/* Dispatches the client whose descriptor is `fd`. */
static void dispatch_ready(party *parties, int n, int fd) {
    int i;
    for (i = 0; i < n; i++) {
        if (parties[i].fd == fd) {
            uint32_t delivered = 0;
            OK(msgr_client_dispatch(parties[i].client, 0, &delivered));
            printf("   (%s: %u event(s) dispatched)\n", parties[i].name, (unsigned)delivered);
        }
    }
}

static bool finished(const party *parties, int n) {
    int i;
    for (i = 0; i < n; i++) {
        if (parties[i].ended == S_FALSE) {
            return false;
        }
    }
    return true;
}

/* Waits on both descriptors and dispatches until both sessions have ended. Returns false on a
 * timeout (5 s without any event) or a wait error. */
static bool run_loop(party *parties, int n) {
    int i;
#if defined(__linux__)
    struct epoll_event ev, ready[4];
    bool result = true;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return false;
    }
    for (i = 0; i < n; i++) {
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN; /* level-triggered: readable while events are pending */
        ev.data.fd = parties[i].fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, parties[i].fd, &ev) != 0) {
            perror("epoll_ctl");
            close(ep);
            return false;
        }
    }
    while (!finished(parties, n)) {
        int k, count = epoll_wait(ep, ready, 4, 5000);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count <= 0) {
            fprintf(stderr, "FAILED: %s\n", count == 0 ? "no event for 5 s" : strerror(errno));
            result = false;
            break;
        }
        for (k = 0; k < count; k++) {
            dispatch_ready(parties, n, ready[k].data.fd);
        }
    }
    close(ep);
    return result;
#else
    struct pollfd fds[4];
    for (i = 0; i < n; i++) {
        fds[i].fd = parties[i].fd;
        fds[i].events = POLLIN;
    }
    while (!finished(parties, n)) {
        int count = poll(fds, (nfds_t)n, 5000);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count <= 0) {
            fprintf(stderr, "FAILED: %s\n", count == 0 ? "no event for 5 s" : strerror(errno));
            return false;
        }
        for (i = 0; i < n; i++) {
            if (fds[i].revents & POLLIN) {
                dispatch_ready(parties, n, fds[i].fd);
            }
        }
    }
    return true;
#endif
}

int main(void) {
    msgr_service *service = NULL;
    party parties[2];
    party *alice = &parties[0], *bob = &parties[1];
    uint32_t cookie;
    int i;

    memset(parties, 0, sizeof parties);
    alice->name = "alice";
    bob->name = "bob";
    alice->ended = bob->ended = S_FALSE;

    if (!OK(msgr_service_create(NULL, &service)) ||
        !OK(msgr_client_create(service, "alice@example.com", MSGR_DISPATCH_MANUAL, &alice->client)) ||
        !OK(msgr_client_create(service, "bob@example.com", MSGR_DISPATCH_MANUAL, &bob->client)) ||
        !OK(msgr_session_manager_create(alice->client, &alice->manager)) ||
        !OK(msgr_session_manager_create(bob->client, &bob->manager)) ||
        !OK(msgr_client_event_fd(alice->client, &alice->fd)) ||
        !OK(msgr_client_event_fd(bob->client, &bob->fd)) ||
        !OK(msgr_session_manager_on_invitation(bob->manager, on_invitation, bob, NULL, &cookie)) ||
        !OK(msgr_session_manager_register_application(alice->manager, APP_GUID, "Event Loop",
                                                      "https://example.com/loop", NULL, 0)) ||
        !OK(msgr_session_manager_create_session(alice->manager, &alice->session))) {
        goto cleanup;
    }
    printf("event descriptors: alice %d, bob %d\n", alice->fd, bob->fd);
    listen_to_session(alice, alice->session);
    OK(msgr_session_set_application(alice->session, APP_GUID));
    OK(msgr_session_invite(alice->session, "bob@example.com", "shall we?"));

    if (run_loop(parties, 2)) {
        /* The canceller ends with SR_SESSION_CANCELLED_LOCAL, the other side with the reason
         * given to Cancel. */
        if (alice->ended != SR_SESSION_CANCELLED_LOCAL || bob->ended != SR_SESSION_CANCELLED_REMOTE) {
            fprintf(stderr, "FAILED: the sessions ended with %s / %s\n",
                    msgr_result_text(alice->ended), msgr_result_text(bob->ended));
            failures++;
        }
    } else {
        failures++;
    }

cleanup:
    for (i = 0; i < 2; i++) {
        OK(msgr_session_release(parties[i].session));
        OK(msgr_session_manager_release(parties[i].manager));
        OK(msgr_client_destroy(parties[i].client));
    }
    OK(msgr_service_destroy(service));
    if (failures) {
        fprintf(stderr, "event_loop: %d failure(s)\n", failures);
        return 1;
    }
    printf("event_loop: both sides ended as documented\n");
    return 0;
}
