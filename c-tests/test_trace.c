/*
 * The trace (msgr_set_trace): sign-ins, every message sent and received, events queued and
 * delivered, an invitation no manager was told of and why, events left waiting while nobody
 * dispatches; off by default; the callback's destroy runs once.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

static tu_log g_trace;
static int g_destroyed;

static const char *level_name(int32_t level) {
    switch (level) {
    case MSGR_TRACE_WARNING: return "W";
    case MSGR_TRACE_INFO: return "I";
    case MSGR_TRACE_DEBUG: return "D";
    default: return "?";
    }
}

static void on_trace(void *ud, int32_t level, const char *message) {
    CHECK(ud == &g_trace);
    tu_log_add(&g_trace, "%s:%s", level_name(level), message);
}

static void on_destroy(void *ud) {
    CHECK(ud == &g_trace);
    g_destroyed++;
}

/* True when some line of the trace contains `needle`. */
static bool traced(const char *needle) {
    return tu_log_count(&g_trace, NULL, needle) > 0;
}

static void test_bad_level(void) {
    g_destroyed = 0;
    CHECK_HR(E_INVALIDARG, msgr_set_trace(4, on_trace, &g_trace, on_destroy));
    CHECK_INT(g_destroyed, 1);
    CHECK_HR(E_INVALIDARG, msgr_set_trace(-1, on_trace, &g_trace, on_destroy));
    CHECK_INT(g_destroyed, 2);
    CHECK(strstr(msgr_last_error(), "level: -1") != NULL);
}

static void test_an_invitation_traced(void) {
    tu_world w;
    msgr_session *s;
    char *want;
    char id[64];
    size_t needed = 0;
    g_destroyed = 0;
    REQUIRE_OK(msgr_set_trace(MSGR_TRACE_DEBUG, on_trace, &g_trace, on_destroy));
    tu_world_init(&w, 0);
    CHECK(traced("I:" TU_ALICE ": signed in"));
    CHECK(traced("I:" TU_BOB ": signed in"));
    tu_log_clear(&g_trace);
    s = tu_session(&w);
    CHECK_OK(msgr_session_invite(s, TU_BOB, "hi"));
    CHECK_OK(msgr_session_get_session_id(s, id, sizeof id, &needed));
    want = tu_strf("I:" TU_ALICE ": sends Invite of session %s to " TU_BOB, id);
    CHECK(traced(want));
    free(want);
    want = tu_strf("I:" TU_BOB ": received Invite of session %s from " TU_ALICE, id);
    CHECK(traced(want));
    free(want);
    CHECK(traced("D:" TU_BOB ": queued OnInvitation"));
    CHECK(!traced("delivering OnInvitation"));
    tu_pump(&w);
    CHECK(traced("D:" TU_BOB ": delivering OnInvitation"));
    CHECK(traced("D:" TU_ALICE ": delivering OnStateChanged"));
    /* Off: nothing more, and the callback's destroy runs once. */
    CHECK_OK(msgr_set_trace(MSGR_TRACE_OFF, NULL, NULL, NULL));
    CHECK_INT(g_destroyed, 1);
    tu_log_clear(&g_trace);
    CHECK_OK(msgr_session_cancel(s, SR_SESSION_CANCELLED_REMOTE, NULL));
    tu_pump(&w);
    CHECK_INT(tu_log_count(&g_trace, NULL, NULL), 0);
    tu_world_cleanup(&w);
}

/* Bob's only manager is locked: nobody is told of the invitation, and the trace says so.
 * Then bob's events wait while nobody dispatches: the trace says that too. */
static void test_warnings(void) {
    tu_world w;
    msgr_service_options o;
    msgr_session *s;
    uint64_t start;
    memset(&o, 0, sizeof o);
    o.struct_size = (uint32_t)sizeof o;
    o.manual_clock = true;
    tu_world_init_opts(&w, TU_LOCK_AND_KEY, &o);
    REQUIRE_OK(msgr_set_trace(MSGR_TRACE_WARNING, on_trace, &g_trace, NULL));
    tu_log_clear(&g_trace);
    /* Sign bob out and in: his manager is locked again. */
    CHECK_OK(msgr_client_sign_out(w.b));
    CHECK_OK(msgr_client_sign_in(w.b));
    CHECK_LOCK(w.mb, LOCK_INITIALIZED);
    s = tu_session(&w);
    CHECK_OK(msgr_session_invite(s, TU_BOB, NULL));
    CHECK(traced("W:" TU_BOB ": invitation {"));
    CHECK(traced("every session manager (1) is locked (Lock and Key), so none is told"));
    CHECK(!traced("I:"));
    /* Bob's events (OnLockEnable, OnLockStatusChanged, ...) wait: nobody dispatches. */
    start = tu_now_ms();
    while (!traced(TU_BOB ": ") || !traced("nobody called msgr_client_dispatch()")) {
        if (tu_now_ms() - start > 5000) {
            break;
        }
        tu_sleep_ms(20);
    }
    CHECK(traced("W:" TU_BOB ": "));
    CHECK(traced("to be delivered: nobody called msgr_client_dispatch() (manual mode)"));
    /* Once per backlog. */
    tu_sleep_ms(600);
    CHECK_INT(tu_log_count(&g_trace, NULL, TU_BOB ": "), 2);
    CHECK_OK(msgr_set_trace(MSGR_TRACE_OFF, NULL, NULL, NULL));
    tu_world_cleanup(&w);
}

int main(void) {
    tu_log_init(&g_trace);
    RUN(test_bad_level);
    RUN(test_an_invitation_traced);
    RUN(test_warnings);
    tu_log_free(&g_trace);
    return tu_finish();
}
