/*
 * Hostile input (docs/CONTRACT.md, "Conventions of the C interface": no input, however wrong,
 * may crash the process or corrupt memory). Every exported function gets:
 *  - NULL for each pointer argument: E_POINTER (NULL handles included), or the documented
 *    behaviour of optional ones (release/destroy of NULL: S_OK; NULL app data, path,
 *    options, launcher, user data, destroy callback: allowed);
 *  - for each handle argument: a released/destroyed handle, a live handle of every other
 *    kind (cast), forged values (small integers, a stack address, heap addresses aligned and
 *    not, all bits set, a live handle with a high bit flipped): E_HANDLE, outputs untouched,
 *    the real objects unharmed;
 *  - invalid UTF-8 ("\xff\xfe") and over-limit strings: E_INVALIDARG (or the code the spec
 *    names), nothing changed;
 *  - registration calls that fail still run their destroy callback exactly once and leave
 *    the cookie alone.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stddef.h>

#define BAD "\xff\xfe"
#define SENTINEL_U32 0xA5A5A5A5u

/* Live objects of every kind, and stale ones. */
static msgr_service *g_svc, *g_stale_svc;
static msgr_client *g_client, *g_stale_client;
static msgr_session_manager *g_mgr, *g_stale_mgr;
static msgr_session *g_sess, *g_stale_sess;

/* ------------------------------------------------------------------------------------------ */
/* Wrappers: one call of each function, with valid arguments except the handle under test,   */
/* checking that outputs are untouched on failure.                                             */
/* ------------------------------------------------------------------------------------------ */

static void untouched_u32(MSGR_HRESULT hr, uint32_t v, const char *what) {
    if (hr != S_OK && v != SENTINEL_U32) {
        tu_failf(__FILE__, __LINE__, "%s wrote its output on failure", what);
    }
}

static void untouched_ptr(MSGR_HRESULT hr, const void *p, const char *what) {
    if (hr != S_OK && p != (const void *)&g_svc) {
        tu_failf(__FILE__, __LINE__, "%s wrote its output on failure", what);
    }
}

static void noop_destroy(void *ud) {
    tu_destroy(ud);
}

/* Session-kind functions. */
#define SGETTER(fn)                                                                   \
    static MSGR_HRESULT w_##fn(msgr_session *s) {                                     \
        char buf[64];                                                                 \
        size_t needed = SENTINEL_U32;                                                 \
        MSGR_HRESULT hr;                                                              \
        memset(buf, 'Q', sizeof buf);                                                 \
        hr = msgr_session_##fn(s, buf, sizeof buf, &needed);                          \
        if (MSGR_FAILED(hr) && hr != E_INSUFFICIENT_BUFFER &&                         \
            (buf[0] != 'Q' || needed != SENTINEL_U32)) {                              \
            tu_failf(__FILE__, __LINE__, "msgr_session_" #fn " wrote on failure");    \
        }                                                                             \
        return hr;                                                                    \
    }
SGETTER(get_session_id)
SGETTER(get_application)
SGETTER(get_application_name)
SGETTER(get_application_url)
SGETTER(get_context_data)
SGETTER(get_local_address)
SGETTER(get_remote_address)
SGETTER(get_user)

static MSGR_HRESULT w_get_state(msgr_session *s) {
    SESSION_STATE st = SS_DECLINED;
    MSGR_HRESULT hr = msgr_session_get_state(s, &st);
    if (hr != S_OK && st != SS_DECLINED) {
        tu_failf(__FILE__, __LINE__, "msgr_session_get_state wrote on failure");
    }
    return hr;
}
static MSGR_HRESULT w_get_flags(msgr_session *s) {
    uint32_t f = SENTINEL_U32;
    MSGR_HRESULT hr = msgr_session_get_flags(s, &f);
    untouched_u32(hr, f, "msgr_session_get_flags");
    return hr;
}
static MSGR_HRESULT w_add_ref(msgr_session *s) { return msgr_session_add_ref(s); }
static MSGR_HRESULT w_release(msgr_session *s) { return msgr_session_release(s); }
static MSGR_HRESULT w_set_application(msgr_session *s) { return msgr_session_set_application(s, TU_APP); }
static MSGR_HRESULT w_set_local_address(msgr_session *s) { return msgr_session_set_local_address(s, "x"); }
static MSGR_HRESULT w_invite(msgr_session *s) { return msgr_session_invite(s, TU_BOB, "d"); }
static MSGR_HRESULT w_accept(msgr_session *s) { return msgr_session_accept(s, "d"); }
static MSGR_HRESULT w_decline(msgr_session *s) { return msgr_session_decline(s, "d"); }
static MSGR_HRESULT w_cancel(msgr_session *s) { return msgr_session_cancel(s, E_FAIL, "d"); }
static MSGR_HRESULT w_send_context_data(msgr_session *s) { return msgr_session_send_context_data(s, "d"); }
static MSGR_HRESULT w_session_unadvise(msgr_session *s) { return msgr_session_unadvise(s, 1); }

static void cb_before(void *ud, msgr_session *s, bool *e) { (void)ud; (void)s; (void)e; }
static void cb_sdata(void *ud, msgr_session *s, const char *d) { (void)ud; (void)s; (void)d; }
static void cb_not_present(void *ud, msgr_session *s, const char *n, const char *u) { (void)ud; (void)s; (void)n; (void)u; }
static void cb_ready(void *ud, msgr_session *s) { (void)ud; (void)s; }
static void cb_send_error(void *ud, msgr_session *s, MSGR_HRESULT hr) { (void)ud; (void)s; (void)hr; }
static void cb_state(void *ud, msgr_session *s, SESSION_STATE p) { (void)ud; (void)s; (void)p; }
static void cb_term(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *d) { (void)ud; (void)s; (void)hr; (void)d; }

/* A registration with tracked user data: on failure, the destroy callback has run once,
 * the cookie is untouched. */
#define SREG(fn, cb)                                                                      \
    static MSGR_HRESULT w_##fn(msgr_session *s) {                                         \
        tu_ud *u = tu_ud_new(NULL, #fn);                                                  \
        uint32_t cookie = SENTINEL_U32;                                                   \
        MSGR_HRESULT hr = msgr_session_##fn(s, cb, u, noop_destroy, &cookie);             \
        if (hr != S_OK) {                                                                 \
            untouched_u32(hr, cookie, "msgr_session_" #fn);                               \
            if (tu_destroyed(u) != 1) {                                                   \
                tu_failf(__FILE__, __LINE__, "msgr_session_" #fn                          \
                         " failed with %s but its destroy callback ran %d times",         \
                         tu_hr_name(hr) ? tu_hr_name(hr) : "?", tu_destroyed(u));         \
            }                                                                             \
        } else {                                                                          \
            CHECK_OK(msgr_session_unadvise(s, cookie));                                   \
        }                                                                                 \
        return hr;                                                                        \
    }
SREG(before_app_launch, cb_before)
SREG(on_accepted, cb_sdata)
SREG(on_app_not_present, cb_not_present)
SREG(on_cancelled, cb_sdata)
SREG(on_context_data, cb_sdata)
SREG(on_declined, cb_sdata)
SREG(on_ready_to_launch, cb_ready)
SREG(on_send_error, cb_send_error)
SREG(on_state_changed, cb_state)
SREG(on_termination, cb_term)

typedef struct {
    const char *name;
    MSGR_HRESULT (*fn)(msgr_session *);
} session_fn;

static const session_fn session_fns[] = {
#define E(f) {#f, w_##f}
    E(get_session_id), E(get_application), E(get_application_name), E(get_application_url),
    E(get_context_data), E(get_local_address), E(get_remote_address), E(get_user),
    E(get_state), E(get_flags), E(add_ref), E(release), E(set_application),
    E(set_local_address), E(invite), E(accept), E(decline), E(cancel), E(send_context_data),
    E(session_unadvise), E(before_app_launch), E(on_accepted), E(on_app_not_present),
    E(on_cancelled), E(on_context_data), E(on_declined), E(on_ready_to_launch),
    E(on_send_error), E(on_state_changed), E(on_termination),
#undef E
};

/* Manager-kind functions. */
static MSGR_HRESULT w_m_release(msgr_session_manager *m) { return msgr_session_manager_release(m); }
static MSGR_HRESULT w_m_create_session(msgr_session_manager *m) {
    msgr_session *s = (msgr_session *)&g_svc;
    MSGR_HRESULT hr = msgr_session_manager_create_session(m, &s);
    untouched_ptr(hr, s, "msgr_session_manager_create_session");
    if (hr == S_OK) {
        CHECK_OK(msgr_session_release(s));
    }
    return hr;
}
static MSGR_HRESULT w_m_get_launching_session(msgr_session_manager *m) {
    msgr_session *s = (msgr_session *)&g_svc;
    MSGR_HRESULT hr = msgr_session_manager_get_launching_session(m, 1, &s);
    untouched_ptr(hr, s, "msgr_session_manager_get_launching_session");
    return hr;
}
static MSGR_HRESULT w_m_register(msgr_session_manager *m) {
    MSGR_HRESULT hr = msgr_session_manager_register_application(m, TU_APP2, "n", "u", "", 0);
    if (hr == S_OK) {
        CHECK_OK(msgr_session_manager_unregister_application(m, TU_APP2));
    }
    return hr;
}
static MSGR_HRESULT w_m_unregister(msgr_session_manager *m) {
    return msgr_session_manager_unregister_application(m, TU_APP2);
}
static MSGR_HRESULT w_m_get_applications(msgr_session_manager *m) {
    char buf[512];
    size_t needed = SENTINEL_U32;
    MSGR_HRESULT hr;
    memset(buf, 'Q', sizeof buf);
    hr = msgr_session_manager_get_applications(m, buf, sizeof buf, &needed);
    if (MSGR_FAILED(hr) && hr != E_INSUFFICIENT_BUFFER && (buf[0] != 'Q' || needed != SENTINEL_U32)) {
        tu_failf(__FILE__, __LINE__, "msgr_session_manager_get_applications wrote on failure");
    }
    return hr;
}
static MSGR_HRESULT w_m_get_lock_status(msgr_session_manager *m) {
    LockStatus st = LOCK_UNLOCKFAILED;
    MSGR_HRESULT hr = msgr_session_manager_get_lock_status(m, &st);
    if (hr != S_OK && st != LOCK_UNLOCKFAILED) {
        tu_failf(__FILE__, __LINE__, "msgr_session_manager_get_lock_status wrote on failure");
    }
    return hr;
}
static MSGR_HRESULT w_m_request_challenge(msgr_session_manager *m) {
    return msgr_session_manager_request_challenge(m, 1);
}
static MSGR_HRESULT w_m_send_response(msgr_session_manager *m) {
    return msgr_session_manager_send_response(m, TU_APP_ID, "00", 1);
}
static MSGR_HRESULT w_m_unadvise(msgr_session_manager *m) { return msgr_session_manager_unadvise(m, 1); }

static void cb_guid(void *ud, msgr_session_manager *m, const char *g) { (void)ud; (void)m; (void)g; }
static void cb_shutdown(void *ud, msgr_session_manager *m) { (void)ud; (void)m; }
static void cb_invitation(void *ud, msgr_session_manager *m, msgr_session *s, const char *d, bool *h) { (void)ud; (void)m; (void)s; (void)d; (void)h; }
static void cb_challenge(void *ud, msgr_session_manager *m, int32_t c, const char *ch) { (void)ud; (void)m; (void)c; (void)ch; }
static void cb_enable(void *ud, msgr_session_manager *m, bool e) { (void)ud; (void)m; (void)e; }
static void cb_result(void *ud, msgr_session_manager *m, int32_t c, bool ok) { (void)ud; (void)m; (void)c; (void)ok; }
static void cb_status(void *ud, msgr_session_manager *m, LockStatus st) { (void)ud; (void)m; (void)st; }

#define MREG(fn, cb)                                                                      \
    static MSGR_HRESULT w_m_##fn(msgr_session_manager *m) {                               \
        tu_ud *u = tu_ud_new(NULL, #fn);                                                  \
        uint32_t cookie = SENTINEL_U32;                                                   \
        MSGR_HRESULT hr = msgr_session_manager_##fn(m, cb, u, noop_destroy, &cookie);     \
        if (hr != S_OK) {                                                                 \
            untouched_u32(hr, cookie, "msgr_session_manager_" #fn);                       \
            if (tu_destroyed(u) != 1) {                                                   \
                tu_failf(__FILE__, __LINE__, "msgr_session_manager_" #fn                  \
                         " failed but its destroy callback ran %d times", tu_destroyed(u)); \
            }                                                                             \
        } else {                                                                          \
            CHECK_OK(msgr_session_manager_unadvise(m, cookie));                           \
        }                                                                                 \
        return hr;                                                                        \
    }
MREG(on_app_registered, cb_guid)
MREG(on_app_unregistered, cb_guid)
MREG(on_app_shutdown, cb_shutdown)
MREG(on_invitation, cb_invitation)
MREG(on_lock_challenge, cb_challenge)
MREG(on_lock_enable, cb_enable)
MREG(on_lock_result, cb_result)
MREG(on_lock_status_changed, cb_status)

typedef struct {
    const char *name;
    MSGR_HRESULT (*fn)(msgr_session_manager *);
} manager_fn;

static const manager_fn manager_fns[] = {
#define E(f) {#f, w_m_##f}
    E(release), E(create_session), E(get_launching_session), E(register), E(unregister),
    E(get_applications), E(get_lock_status), E(request_challenge), E(send_response),
    E(unadvise), E(on_app_registered), E(on_app_unregistered), E(on_app_shutdown),
    E(on_invitation), E(on_lock_challenge), E(on_lock_enable), E(on_lock_result),
    E(on_lock_status_changed),
#undef E
};

/* Client-kind functions. */
static MSGR_HRESULT w_c_sign_out(msgr_client *c) { return msgr_client_sign_out(c); }
static MSGR_HRESULT w_c_sign_in(msgr_client *c) { return msgr_client_sign_in(c); }
static MSGR_HRESULT w_c_shutdown(msgr_client *c) { return msgr_client_shutdown(c); }
static MSGR_HRESULT w_c_destroy(msgr_client *c) { return msgr_client_destroy(c); }
static MSGR_HRESULT w_c_dispatch(msgr_client *c) {
    uint32_t n = SENTINEL_U32;
    MSGR_HRESULT hr = msgr_client_dispatch(c, 0, &n);
    untouched_u32(hr, n, "msgr_client_dispatch");
    return hr;
}
static MSGR_HRESULT w_c_event_fd(msgr_client *c) {
    int32_t fd = (int32_t)SENTINEL_U32;
    MSGR_HRESULT hr = msgr_client_event_fd(c, &fd);
    untouched_u32(hr, (uint32_t)fd, "msgr_client_event_fd");
    return hr;
}
static MSGR_HRESULT w_c_set_launcher(msgr_client *c) { return msgr_client_set_launcher(c, NULL, NULL); }
static MSGR_HRESULT w_c_manager_create(msgr_client *c) {
    msgr_session_manager *m = (msgr_session_manager *)&g_svc;
    MSGR_HRESULT hr = msgr_session_manager_create(c, &m);
    untouched_ptr(hr, m, "msgr_session_manager_create");
    if (hr == S_OK) {
        CHECK_OK(msgr_session_manager_release(m));
    }
    return hr;
}

typedef struct {
    const char *name;
    MSGR_HRESULT (*fn)(msgr_client *);
} client_fn;

static const client_fn client_fns[] = {
#define E(f) {#f, w_c_##f}
    E(sign_out), E(sign_in), E(shutdown), E(destroy), E(dispatch), E(event_fd),
    E(set_launcher), E(manager_create),
#undef E
};

/* Service-kind functions. */
static MSGR_HRESULT w_v_add_app_key(msgr_service *s) { return msgr_service_add_app_key(s, "id", "key"); }
static MSGR_HRESULT w_v_advance_clock(msgr_service *s) { return msgr_service_advance_clock(s, 1); }
static MSGR_HRESULT w_v_set_reachable(msgr_service *s) { return msgr_service_set_reachable(s, TU_BOB, true); }
static MSGR_HRESULT w_v_destroy(msgr_service *s) { return msgr_service_destroy(s); }
static MSGR_HRESULT w_v_client_create(msgr_service *s) {
    msgr_client *c = (msgr_client *)&g_svc;
    MSGR_HRESULT hr = msgr_client_create(s, "zed@example.com", MSGR_DISPATCH_MANUAL, &c);
    untouched_ptr(hr, c, "msgr_client_create");
    if (hr == S_OK) {
        CHECK_OK(msgr_client_destroy(c));
    }
    return hr;
}

typedef struct {
    const char *name;
    MSGR_HRESULT (*fn)(msgr_service *);
} service_fn;

static const service_fn service_fns[] = {
#define E(f) {#f, w_v_##f}
    E(add_app_key), E(advance_clock), E(set_reachable), E(destroy), E(client_create),
#undef E
};

/* ------------------------------------------------------------------------------------------ */
/* Bad handle values                                                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *what;
    void *value;
} bad_value;

static int g_local;
static unsigned char *g_heap;

static size_t bad_values(bad_value *out, void *stale, void *live_same, void *o1, void *o2, void *o3) {
    size_t n = 0;
    uintptr_t high = (uintptr_t)1 << (sizeof(void *) * 8 - 2);
#define ADD(w, v) (out[n].what = (w), out[n].value = (void *)(v), n++)
    ADD("stale", stale);
    ADD("wrong kind 1", o1);
    ADD("wrong kind 2", o2);
    ADD("wrong kind 3", o3);
    ADD("1", (uintptr_t)1);
    ADD("2", (uintptr_t)2);
    ADD("3", (uintptr_t)3);
    ADD("4", (uintptr_t)4);
    ADD("5", (uintptr_t)5);
    ADD("7", (uintptr_t)7);
    ADD("8", (uintptr_t)8);
    ADD("0x1234", (uintptr_t)0x1234);
    ADD("0xFFFFFFFF", (uintptr_t)0xFFFFFFFFu);
    ADD("all bits", ~(uintptr_t)0);
    ADD("all bits - 7", ~(uintptr_t)0 - 7);
    ADD("&global", &g_local);
    ADD("&global + 1", (unsigned char *)&g_local + 1);
    ADD("heap", g_heap);
    ADD("heap + 1", g_heap + 1);
    ADD("heap + 4", g_heap + 4);
    ADD("heap + 12", g_heap + 12);
    ADD("live ^ high bit", (uintptr_t)live_same ^ high);
    ADD("live ^ 1", (uintptr_t)live_same ^ 1u);
    ADD("live ^ 7", (uintptr_t)live_same ^ 7u);
#undef ADD
    return n;
}

static void report_bad(MSGR_HRESULT hr, const char *fn, const char *what) {
    char h[40];
    tu_count_check();
    if (hr != E_HANDLE) {
        tu_failf(__FILE__, __LINE__, "%s(<%s>) returned %s, expected E_HANDLE", fn, what,
                 tu_hr_fmt(h, sizeof h, hr));
    }
}

static void test_bad_handles(void) {
    bad_value bad[64];
    size_t nb, i, k;
    int stack_local = 0;
    LockStatus st;
    uint32_t n;

    /* Session-kind. */
    nb = bad_values(bad, g_stale_sess, g_sess, g_svc, g_client, g_mgr);
    bad[nb].what = "&stack";
    bad[nb++].value = &stack_local;
    for (k = 0; k < sizeof session_fns / sizeof session_fns[0]; k++) {
        for (i = 0; i < nb; i++) {
            report_bad(session_fns[k].fn((msgr_session *)bad[i].value), session_fns[k].name, bad[i].what);
        }
    }
    /* Manager-kind. */
    nb = bad_values(bad, g_stale_mgr, g_mgr, g_svc, g_client, g_sess);
    bad[nb].what = "&stack";
    bad[nb++].value = &stack_local;
    for (k = 0; k < sizeof manager_fns / sizeof manager_fns[0]; k++) {
        for (i = 0; i < nb; i++) {
            report_bad(manager_fns[k].fn((msgr_session_manager *)bad[i].value), manager_fns[k].name,
                       bad[i].what);
        }
    }
    /* Client-kind. */
    nb = bad_values(bad, g_stale_client, g_client, g_svc, g_mgr, g_sess);
    bad[nb].what = "&stack";
    bad[nb++].value = &stack_local;
    for (k = 0; k < sizeof client_fns / sizeof client_fns[0]; k++) {
        for (i = 0; i < nb; i++) {
            report_bad(client_fns[k].fn((msgr_client *)bad[i].value), client_fns[k].name, bad[i].what);
        }
    }
    /* Service-kind. */
    nb = bad_values(bad, g_stale_svc, g_svc, g_client, g_mgr, g_sess);
    bad[nb].what = "&stack";
    bad[nb++].value = &stack_local;
    for (k = 0; k < sizeof service_fns / sizeof service_fns[0]; k++) {
        for (i = 0; i < nb; i++) {
            report_bad(service_fns[k].fn((msgr_service *)bad[i].value), service_fns[k].name, bad[i].what);
        }
    }
    /* The real objects are unharmed by all of that (wrong-kind releases and destroys). */
    CHECK_STATE(g_sess, SS_READY);
    CHECK_OK(msgr_session_manager_get_lock_status(g_mgr, &st));
    CHECK_INT(st, LOCK_DISABLED);
    CHECK_OK(msgr_client_dispatch(g_client, 0, &n));
    CHECK_OK(msgr_service_advance_clock(g_svc, 1));
    CHECK_HR(S_FALSE, msgr_service_set_reachable(g_svc, "nobody@example.com", true));
}

/* Every function with a valid handle but each wrapper once, to show that the wrappers above
 * are not failing for some other reason (non-destructive ones only). */
static void test_wrappers_accept_live_handles(void) {
    size_t k;
    for (k = 0; k < sizeof session_fns / sizeof session_fns[0]; k++) {
        const char *nm = session_fns[k].name;
        MSGR_HRESULT hr;
        if (strcmp(nm, "release") == 0 || strcmp(nm, "cancel") == 0 || strcmp(nm, "invite") == 0 ||
            strcmp(nm, "add_ref") == 0) {
            continue;
        }
        hr = session_fns[k].fn(g_sess);
        if (hr == E_HANDLE || hr == E_POINTER) {
            tu_failf(__FILE__, __LINE__, "%s(live session) returned %s", nm, tu_hr_name(hr));
        }
    }
    for (k = 0; k < sizeof manager_fns / sizeof manager_fns[0]; k++) {
        MSGR_HRESULT hr;
        if (strcmp(manager_fns[k].name, "release") == 0) {
            continue;
        }
        hr = manager_fns[k].fn(g_mgr);
        if (hr == E_HANDLE || hr == E_POINTER) {
            tu_failf(__FILE__, __LINE__, "%s(live manager) returned %s", manager_fns[k].name,
                     tu_hr_name(hr));
        }
    }
    CHECK_OK(w_c_dispatch(g_client));
    CHECK_OK(w_c_set_launcher(g_client));
    CHECK_OK(w_c_manager_create(g_client));
    CHECK_OK(w_c_event_fd(g_client));
    CHECK_OK(w_v_set_reachable(g_svc));
    CHECK_OK(w_v_advance_clock(g_svc));
    CHECK_OK(w_v_client_create(g_svc));
}

/* ------------------------------------------------------------------------------------------ */
/* NULL pointer arguments                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* A registration call that must fail with `want`: destroy once, cookie untouched. */
#define CHECK_REG_FAILS(want, call_with_u_and_cookie)                                   \
    do {                                                                                \
        tu_ud *u = tu_ud_new(NULL, #call_with_u_and_cookie);                            \
        uint32_t cookie = SENTINEL_U32;                                                 \
        uint32_t *cookie_p = &cookie;                                                   \
        (void)cookie_p;                                                                 \
        CHECK_HR(want, call_with_u_and_cookie);                                         \
        CHECK_INT(cookie, SENTINEL_U32);                                                \
        CHECK_INT(tu_destroyed(u), 1);                                                  \
    } while (0)

static void test_null_arguments(void) {
    msgr_service *svc = (msgr_service *)&g_svc;
    msgr_client *c = (msgr_client *)&g_svc;
    msgr_session_manager *m = (msgr_session_manager *)&g_svc;
    msgr_session *s = (msgr_session *)&g_svc;
    char buf[64];
    size_t needed = SENTINEL_U32;
    uint32_t n = SENTINEL_U32, cookie = 0;
    int32_t fd = (int32_t)SENTINEL_U32;
    SESSION_STATE st = SS_DECLINED;
    LockStatus ls = LOCK_UNLOCKFAILED;
    tu_ud *u;

    /* Library. */
    CHECK(msgr_version() != NULL);
    CHECK_STR(msgr_version(), MSGR_VERSION_STRING);
    CHECK_STR(msgr_result_text((MSGR_HRESULT)0x12345678), "Unknown result code.");
    CHECK(msgr_result_text(SR_INVITED_SELF) != NULL && strcmp(msgr_result_text(SR_INVITED_SELF), "Unknown result code.") != 0);
    CHECK_HR(E_POINTER, msgr_lock_compute_response(NULL, "k", buf));
    CHECK_HR(E_POINTER, msgr_lock_compute_response("c", NULL, buf));
    CHECK_HR(E_POINTER, msgr_lock_compute_response("c", "k", NULL));

    /* Service. */
    CHECK_HR(E_POINTER, msgr_service_create(NULL, NULL));
    CHECK_OK(msgr_service_destroy(NULL));
    CHECK_HR(E_POINTER, msgr_service_add_app_key(NULL, "id", "key"));
    CHECK_HR(E_POINTER, msgr_service_add_app_key(g_svc, NULL, "key"));
    CHECK_HR(E_POINTER, msgr_service_add_app_key(g_svc, "id", NULL));
    CHECK_HR(E_POINTER, msgr_service_advance_clock(NULL, 1));
    CHECK_HR(E_POINTER, msgr_service_set_reachable(NULL, TU_BOB, false));
    CHECK_HR(E_POINTER, msgr_service_set_reachable(g_svc, NULL, false));
    CHECK(svc == (msgr_service *)&g_svc);

    /* Client. */
    CHECK_HR(E_POINTER, msgr_client_create(NULL, "x@example.com", MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(E_POINTER, msgr_client_create(g_svc, NULL, MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(E_POINTER, msgr_client_create(g_svc, "x@example.com", MSGR_DISPATCH_MANUAL, NULL));
    CHECK(c == (msgr_client *)&g_svc);
    /* ...and the name was not signed in by the failed call. */
    CHECK_OK(msgr_client_create(g_svc, "x@example.com", MSGR_DISPATCH_MANUAL, &c));
    CHECK_OK(msgr_client_destroy(c));
    CHECK_HR(E_POINTER, msgr_client_sign_out(NULL));
    CHECK_HR(E_POINTER, msgr_client_sign_in(NULL));
    CHECK_HR(E_POINTER, msgr_client_shutdown(NULL));
    CHECK_OK(msgr_client_destroy(NULL));
    CHECK_HR(E_POINTER, msgr_client_dispatch(NULL, 0, &n));
    CHECK_HR(E_POINTER, msgr_client_event_fd(NULL, &fd));
    CHECK_HR(E_POINTER, msgr_client_event_fd(g_client, NULL));
    CHECK_HR(E_POINTER, msgr_client_set_launcher(NULL, NULL, NULL));
    CHECK_INT(n, SENTINEL_U32);
    CHECK_INT((uint32_t)fd, SENTINEL_U32);
    /* dispatch with a NULL count: refused before anything is delivered. */
    CHECK_OK(msgr_client_dispatch(g_client, 0, &n));
    CHECK_OK(msgr_session_manager_register_application(g_mgr, TU_APP2, "n", "", "", 0));
    CHECK_HR(E_POINTER, msgr_client_dispatch(g_client, 0, NULL));
    n = 0;
    CHECK_OK(msgr_client_dispatch(g_client, 0, &n));
    CHECK_INT(n, 1);
    CHECK_OK(msgr_session_manager_unregister_application(g_mgr, TU_APP2));
    CHECK_OK(msgr_client_dispatch(g_client, 0, &n));

    /* Manager. */
    CHECK_HR(E_POINTER, msgr_session_manager_create(NULL, &m));
    CHECK_HR(E_POINTER, msgr_session_manager_create(g_client, NULL));
    CHECK(m == (msgr_session_manager *)&g_svc);
    CHECK_OK(msgr_session_manager_release(NULL));
    CHECK_HR(E_POINTER, msgr_session_manager_create_session(NULL, &s));
    CHECK_HR(E_POINTER, msgr_session_manager_create_session(g_mgr, NULL));
    CHECK_HR(E_POINTER, msgr_session_manager_get_launching_session(NULL, 1, &s));
    CHECK_HR(E_POINTER, msgr_session_manager_get_launching_session(g_mgr, 1, NULL));
    CHECK(s == (msgr_session *)&g_svc);
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(NULL, TU_APP2, "n", "u", "", 0));
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(g_mgr, NULL, "n", "u", "", 0));
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(g_mgr, TU_APP2, NULL, "u", "", 0));
    CHECK_HR(E_POINTER, msgr_session_manager_register_application(g_mgr, TU_APP2, "n", NULL, "", 0));
    CHECK_OK(msgr_session_manager_register_application(g_mgr, TU_APP2, "n", "u", NULL, 0));
    CHECK_HR(E_POINTER, msgr_session_manager_unregister_application(NULL, TU_APP2));
    CHECK_HR(E_POINTER, msgr_session_manager_unregister_application(g_mgr, NULL));
    CHECK_OK(msgr_session_manager_unregister_application(g_mgr, TU_APP2));
    CHECK_HR(E_POINTER, msgr_session_manager_get_applications(NULL, buf, sizeof buf, &needed));
    CHECK_HR(E_POINTER, msgr_session_manager_get_applications(g_mgr, buf, sizeof buf, NULL));
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_manager_get_applications(g_mgr, NULL, 0, &needed));
    CHECK_HR(E_POINTER, msgr_session_manager_get_lock_status(NULL, &ls));
    CHECK_HR(E_POINTER, msgr_session_manager_get_lock_status(g_mgr, NULL));
    CHECK_INT(ls, LOCK_UNLOCKFAILED);
    CHECK_HR(E_POINTER, msgr_session_manager_request_challenge(NULL, 1));
    CHECK_HR(E_POINTER, msgr_session_manager_send_response(NULL, "id", "r", 1));
    CHECK_HR(E_POINTER, msgr_session_manager_send_response(g_mgr, NULL, "r", 1));
    CHECK_HR(E_POINTER, msgr_session_manager_send_response(g_mgr, "id", NULL, 1));
    CHECK_HR(E_POINTER, msgr_session_manager_unadvise(NULL, 1));
    /* Registrations: NULL manager, NULL callback, NULL cookie. */
#define MGR_NULLS(fn, cb)                                                                     \
    CHECK_REG_FAILS(E_POINTER, msgr_session_manager_##fn(NULL, cb, u, tu_destroy, cookie_p)); \
    CHECK_REG_FAILS(E_POINTER, msgr_session_manager_##fn(g_mgr, NULL, u, tu_destroy, cookie_p)); \
    CHECK_REG_FAILS(E_POINTER, msgr_session_manager_##fn(g_mgr, cb, u, tu_destroy, NULL));
    MGR_NULLS(on_app_registered, cb_guid)
    MGR_NULLS(on_app_unregistered, cb_guid)
    MGR_NULLS(on_app_shutdown, cb_shutdown)
    MGR_NULLS(on_invitation, cb_invitation)
    MGR_NULLS(on_lock_challenge, cb_challenge)
    MGR_NULLS(on_lock_enable, cb_enable)
    MGR_NULLS(on_lock_result, cb_result)
    MGR_NULLS(on_lock_status_changed, cb_status)
#undef MGR_NULLS
    /* NULL user data and NULL destroy are fine. */
    CHECK_OK(msgr_session_manager_on_app_registered(g_mgr, cb_guid, NULL, NULL, &cookie));
    CHECK_OK(msgr_session_manager_unadvise(g_mgr, cookie));
    CHECK_HR(E_POINTER, msgr_session_manager_on_app_registered(g_mgr, NULL, NULL, NULL, &cookie));

    /* Session. */
    CHECK_HR(E_POINTER, msgr_session_add_ref(NULL));
    CHECK_OK(msgr_session_release(NULL));
    CHECK_HR(E_POINTER, msgr_session_get_state(NULL, &st));
    CHECK_HR(E_POINTER, msgr_session_get_state(g_sess, NULL));
    CHECK_INT(st, SS_DECLINED);
    CHECK_HR(E_POINTER, msgr_session_get_flags(NULL, &n));
    CHECK_HR(E_POINTER, msgr_session_get_flags(g_sess, NULL));
    needed = SENTINEL_U32;
#define SGET_NULLS(fn)                                                                   \
    CHECK_HR(E_POINTER, msgr_session_##fn(NULL, buf, sizeof buf, &needed));              \
    CHECK_HR(E_POINTER, msgr_session_##fn(g_sess, buf, sizeof buf, NULL));
    SGET_NULLS(get_session_id)
    SGET_NULLS(get_application)
    SGET_NULLS(get_application_name)
    SGET_NULLS(get_application_url)
    SGET_NULLS(get_context_data)
    SGET_NULLS(get_local_address)
    SGET_NULLS(get_remote_address)
    SGET_NULLS(get_user)
#undef SGET_NULLS
    CHECK_INT(needed, SENTINEL_U32);
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_get_session_id(g_sess, NULL, 0, &needed));
    CHECK_INT(needed, 39);
    CHECK_HR(E_INSUFFICIENT_BUFFER, msgr_session_get_context_data(g_sess, NULL, 0, &needed));
    CHECK_INT(needed, 1);
    CHECK_HR(E_POINTER, msgr_session_set_application(NULL, TU_APP));
    CHECK_HR(E_POINTER, msgr_session_set_application(g_sess, NULL));
    CHECK_HR(E_POINTER, msgr_session_set_local_address(NULL, "x"));
    CHECK_HR(E_POINTER, msgr_session_set_local_address(g_sess, NULL));
    CHECK_HR(E_POINTER, msgr_session_invite(NULL, TU_BOB, NULL));
    CHECK_HR(E_POINTER, msgr_session_invite(g_sess, NULL, NULL));
    CHECK_HR(E_POINTER, msgr_session_accept(NULL, NULL));
    CHECK_HR(E_POINTER, msgr_session_decline(NULL, NULL));
    CHECK_HR(E_POINTER, msgr_session_cancel(NULL, E_FAIL, NULL));
    CHECK_HR(E_POINTER, msgr_session_send_context_data(NULL, "x"));
    CHECK_HR(E_POINTER, msgr_session_send_context_data(g_sess, NULL));
    CHECK_HR(E_POINTER, msgr_session_unadvise(NULL, 1));
    CHECK_STATE(g_sess, SS_READY);
#define SESS_NULLS(fn, cb)                                                                \
    CHECK_REG_FAILS(E_POINTER, msgr_session_##fn(NULL, cb, u, tu_destroy, cookie_p));     \
    CHECK_REG_FAILS(E_POINTER, msgr_session_##fn(g_sess, NULL, u, tu_destroy, cookie_p)); \
    CHECK_REG_FAILS(E_POINTER, msgr_session_##fn(g_sess, cb, u, tu_destroy, NULL));
    SESS_NULLS(before_app_launch, cb_before)
    SESS_NULLS(on_accepted, cb_sdata)
    SESS_NULLS(on_app_not_present, cb_not_present)
    SESS_NULLS(on_cancelled, cb_sdata)
    SESS_NULLS(on_context_data, cb_sdata)
    SESS_NULLS(on_declined, cb_sdata)
    SESS_NULLS(on_ready_to_launch, cb_ready)
    SESS_NULLS(on_send_error, cb_send_error)
    SESS_NULLS(on_state_changed, cb_state)
    SESS_NULLS(on_termination, cb_term)
#undef SESS_NULLS
    CHECK_OK(msgr_session_on_termination(g_sess, cb_term, NULL, NULL, &cookie));
    CHECK_OK(msgr_session_unadvise(g_sess, cookie));
    /* A registration whose destroy is NULL still works and ends cleanly. */
    u = tu_ud_new(NULL, "no destroy");
    CHECK_OK(msgr_session_on_cancelled(g_sess, cb_sdata, u, NULL, &cookie));
    CHECK_OK(msgr_session_unadvise(g_sess, cookie));
    tu_destroy(u); /* (nobody else will) */
}

/* ------------------------------------------------------------------------------------------ */
/* Strings: invalid UTF-8 and over the limits                                                  */
/* ------------------------------------------------------------------------------------------ */

static void test_bad_strings(void) {
    tu_world w;
    msgr_session *a, *b, *s;
    msgr_client *c = (msgr_client *)&g_svc;
    msgr_service *svc = (msgr_service *)&g_svc;
    msgr_session_manager *mp = NULL;
    msgr_service_options o;
    char *s257 = tu_repeat("s", 257), *s513 = tu_repeat("d", 513), *s31 = tu_repeat("a", 31);
    char *s301 = tu_repeat("c", 301), *huge = tu_repeat("h", 1 << 20);
    char resp[MSGR_LOCK_RESPONSE_SIZE];
    tu_world_init(&w, TU_LOCK_AND_KEY);

    /* Service and client. */
    CHECK_HR(E_INVALIDARG, msgr_service_add_app_key(w.svc, BAD, "key"));
    CHECK_HR(E_INVALIDARG, msgr_service_add_app_key(w.svc, "id", BAD));
    CHECK_HR(E_INVALIDARG, msgr_service_add_app_key(w.svc, s257, "key"));
    CHECK_HR(E_INVALIDARG, msgr_service_add_app_key(w.svc, "id", s257));
    CHECK_HR(E_INVALIDARG, msgr_service_add_app_key(w.svc, "", "key"));
    CHECK_HR(E_INVALIDARG, msgr_service_add_app_key(w.svc, "id", ""));
    CHECK_HR(E_INVALIDARG, msgr_service_set_reachable(w.svc, BAD, false));
    CHECK_HR(E_INVALIDARG, msgr_client_create(w.svc, BAD, MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(E_INVALIDARG, msgr_client_create(w.svc, s257, MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(E_INVALIDARG, msgr_client_create(w.svc, "", MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(E_INVALIDARG, msgr_client_create(w.svc, huge, MSGR_DISPATCH_MANUAL, &c));
    CHECK(c == (msgr_client *)&g_svc);
    CHECK_HR(MSGR_E_ALREADY_LOGGED_ON, msgr_client_create(w.svc, "ALICE@example.com", MSGR_DISPATCH_MANUAL, &c));
    CHECK(c == (msgr_client *)&g_svc);

    /* Options. */
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.registry_path = BAD;
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    o.registry_path = NULL;
    o.struct_size = 0;
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    o.struct_size = (uint32_t)offsetof(msgr_service_options, registry_path);
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    o.struct_size = (uint32_t)sizeof o - 1;
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    CHECK(svc == (msgr_service *)&g_svc);
    {
        /* A larger struct (a later version of the header): accepted. */
        struct {
            msgr_service_options o;
            unsigned char future[64];
        } big;
        memset(&big, 0, sizeof big);
        big.o.struct_size = (uint32_t)sizeof big;
        big.o.manual_clock = true;
        CHECK_OK(msgr_service_create(&big.o, &svc));
        CHECK_OK(msgr_service_advance_clock(svc, 1));
        CHECK_OK(msgr_service_destroy(svc));
    }
    /* NULL options: the defaults, real clock. */
    CHECK_OK(msgr_service_create(NULL, &svc));
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_service_advance_clock(svc, 1));
    CHECK_OK(msgr_service_destroy(svc));

    /* Lock and Key: a manager with a pending challenge. */
    REQUIRE_OK(msgr_session_manager_create(w.a, &mp));
    CHECK_OK(msgr_session_manager_request_challenge(mp, 8));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(mp, BAD, "r", 8));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(mp, TU_APP_ID, BAD, 8));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(mp, s257, "r", 8));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_send_response(mp, TU_APP_ID, huge, 8));
    CHECK_LOCK(mp, LOCK_PENDINGRESULT);
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response(BAD, "k", resp));
    CHECK_OK(msgr_session_manager_release(mp));

    /* Registry. */
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, BAD, "n", "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP2, BAD, "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP2, "n", BAD, "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP2, "n", "u", BAD, 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_register_application(w.ma, TU_APP2, huge, "u", "", 0));
    CHECK_HR(E_INVALIDARG, msgr_session_manager_unregister_application(w.ma, BAD));

    /* Sessions. */
    s = tu_session(&w);
    CHECK_HR(E_INVALIDARG, msgr_session_set_application(s, BAD));
    CHECK_HR(E_INVALIDARG, msgr_session_set_local_address(s, BAD));
    CHECK_HR(E_INVALIDARG, msgr_session_set_local_address(s, s31));
    CHECK_HR(E_INVALIDARG, msgr_session_set_local_address(s, huge));
    CHECK_SSTR(msgr_session_get_local_address, s, "");
    CHECK_HR(E_INVALIDARG, msgr_session_invite(s, BAD, NULL));
    CHECK_HR(E_INVALIDARG, msgr_session_invite(s, TU_BOB, BAD));
    CHECK_HR(E_INVALIDARG, msgr_session_invite(s, s257, NULL));
    CHECK_HR(E_INVALIDARG, msgr_session_invite(s, TU_BOB, s513));
    CHECK_HR(E_INVALIDARG, msgr_session_invite(s, TU_BOB, huge));
    CHECK_HR(E_INVALIDARG, msgr_session_cancel(s, E_FAIL, BAD));
    CHECK_STATE(s, SS_READY);
    tu_pump(&w);
    EXPECT_EMPTY(&w.log);
    tu_invited(&w, &a, &b);
    CHECK_HR(E_INVALIDARG, msgr_session_accept(b, BAD));
    CHECK_HR(E_INVALIDARG, msgr_session_decline(b, BAD));
    CHECK_HR(E_INVALIDARG, msgr_session_accept(b, s513));
    CHECK_HR(E_INVALIDARG, msgr_session_decline(b, huge));
    CHECK_STATE(b, SS_INVITATION);
    CHECK_OK(msgr_session_accept(b, NULL));
    tu_pump(&w);
    CHECK_HR(E_INVALIDARG, msgr_session_send_context_data(a, BAD));
    CHECK_HR(SR_CONTEXT_DATA_OVER_LIMIT, msgr_session_send_context_data(a, s301));
    CHECK_HR(SR_CONTEXT_DATA_OVER_LIMIT, msgr_session_send_context_data(a, huge));
    CHECK_HR(E_INVALIDARG, msgr_session_cancel(a, E_FAIL, s513));
    tu_pump(&w);
    tu_log_clear(&w.log);
    /* None of the refused sends counted against the five. */
    {
        int i;
        for (i = 0; i < 5; i++) {
            CHECK_OK(msgr_session_send_context_data(a, "ok"));
        }
        CHECK_HR(SR_CONTEXT_DATA_OVER_LIMIT, msgr_session_send_context_data(a, "sixth"));
    }
    CHECK_STATE(a, SS_CONNECTED);
    tu_world_cleanup(&w);
    free(s257);
    free(s513);
    free(s31);
    free(s301);
    free(huge);
}

/* ------------------------------------------------------------------------------------------ */
/* Odd orders of destruction                                                                  */
/* ------------------------------------------------------------------------------------------ */

static void test_odd_destruction_orders(void) {
    msgr_service *svc = NULL;
    msgr_client *c = NULL, *d = NULL;
    msgr_session_manager *m = NULL;
    msgr_session *s = NULL, *extra;
    uint32_t n;
    LockStatus st;
    REQUIRE_OK(msgr_service_create(NULL, &svc));
    REQUIRE_OK(msgr_client_create(svc, "c@example.com", MSGR_DISPATCH_MANUAL, &c));
    REQUIRE_OK(msgr_client_create(svc, "d@example.com", MSGR_DISPATCH_THREAD, &d));
    REQUIRE_OK(msgr_session_manager_create(c, &m));
    REQUIRE_OK(msgr_session_manager_create_session(m, &s));
    /* The service handle first: its clients keep working. */
    CHECK_OK(msgr_service_destroy(svc));
    CHECK_HR(E_HANDLE, msgr_service_destroy(svc));
    CHECK_OK(msgr_client_dispatch(c, 0, &n));
    CHECK_OK(msgr_session_manager_register_application(m, TU_APP, "n", "u", "", 0));
    CHECK_OK(msgr_session_set_application(s, TU_APP));
    CHECK_OK(msgr_session_invite(s, "d@example.com", NULL));
    /* Then the client: its manager and session stay valid handles, signed out. */
    CHECK_OK(msgr_client_destroy(c));
    CHECK_HR(E_HANDLE, msgr_client_destroy(c));
    CHECK_OK(msgr_session_manager_get_lock_status(m, &st));
    CHECK_INT(st, LOCK_NOTINITIALIZED);
    CHECK_STATE(s, SS_TERMINATED);
    extra = s;
    CHECK_OK(msgr_session_add_ref(extra));
    CHECK_HR(MSGR_E_NOT_LOGGED_ON, msgr_session_manager_create_session(m, &extra));
    CHECK(extra == s);
    CHECK_OK(msgr_session_release(s));
    CHECK_OK(msgr_session_release(s));
    CHECK_HR(E_HANDLE, msgr_session_release(s));
    CHECK_OK(msgr_session_manager_release(m));
    CHECK_HR(E_HANDLE, msgr_session_manager_release(m));
    CHECK_OK(msgr_client_destroy(d));
}

int main(void) {
    tu_world w;
    g_heap = (unsigned char *)calloc(1, 64);
    REQUIRE(g_heap != NULL);
    memset(g_heap, 0xFF, 64);

    /* Live objects of each kind (Lock and Key off) and stale ones. */
    tu_world_init(&w, 0);
    g_svc = w.svc;
    g_client = w.a;
    g_mgr = w.ma;
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &g_sess));
    REQUIRE_OK(msgr_service_create(NULL, &g_stale_svc));
    REQUIRE_OK(msgr_client_create(w.svc, "stale@example.com", MSGR_DISPATCH_MANUAL, &g_stale_client));
    REQUIRE_OK(msgr_session_manager_create(w.a, &g_stale_mgr));
    REQUIRE_OK(msgr_session_manager_create_session(w.ma, &g_stale_sess));
    CHECK_OK(msgr_service_destroy(g_stale_svc));
    CHECK_OK(msgr_client_destroy(g_stale_client));
    CHECK_OK(msgr_session_manager_release(g_stale_mgr));
    CHECK_OK(msgr_session_release(g_stale_sess));
    tu_pump(&w);
    tu_log_clear(&w.log);

    RUN(test_bad_handles);
    RUN(test_wrappers_accept_live_handles);
    RUN(test_null_arguments);
    CHECK_OK(msgr_session_release(g_sess));
    tu_world_cleanup(&w);

    RUN(test_bad_strings);
    RUN(test_odd_destruction_orders);
    free(g_heap);
    return tu_finish();
}
