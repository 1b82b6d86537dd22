/* Every enum value and result code of msgrpriv.h equals its documented value
 * (docs/CONTRACT.md, "Result codes" and "Enumerations", written out here by hand, not
 * generated), the version macros agree with Cargo.toml and msgr_version(), every code is known
 * to the library's table, and the library functions follow the conventions. Built against the
 * shared and the static library. */
#include "check.h"

/* name, documented value */
#define MSGR_CODES(X)                                                                          \
    X(S_OK, 0x00000000u)                                                                       \
    X(S_FALSE, 0x00000001u)                                                                    \
    X(E_FAIL, 0x80004005u)                                                                     \
    X(E_INVALIDARG, 0x80070057u)                                                               \
    X(E_OUTOFMEMORY, 0x8007000Eu)                                                              \
    X(E_POINTER, 0x80004003u)                                                                  \
    X(E_HANDLE, 0x80070006u)                                                                   \
    X(E_UNEXPECTED, 0x8000FFFFu)                                                               \
    X(E_NOTIMPL, 0x80004001u)                                                                  \
    X(E_ILLEGAL_METHOD_CALL, 0x8000000Eu)                                                      \
    X(E_ACCESSDENIED, 0x80070005u)                                                           \
    X(E_NOT_ENOUGH_QUOTA, 0x80070718u)                                                           \
    X(E_FILE_NOT_FOUND, 0x80070002u)                                                           \
    X(E_INSUFFICIENT_BUFFER, 0x8007007Au)                                                      \
    X(REGDB_E_WRITEREGDB, 0x80040151u)                                                         \
    X(MSGR_E_API_NOTINITIALIZED, 0x81000751u)                                                  \
    X(MSGR_E_API_LOCKED, 0x81000752u)                                                          \
    X(MSGR_E_API_UNLOCK_FAILED, 0x81000753u)                                                   \
    X(MSGR_E_API_ALREADY_UNLOCKED, 0x81000754u)                                                \
    X(MSGR_E_API_PENDING_UNLOCK, 0x81000755u)                                                  \
    X(MSGR_E_API_DISABLED, 0x81000756u)                                                        \
    X(SR_APPLICATION_LAUNCH_FAILED, 0x81000601u)                                               \
    X(SR_INVITATION_DECLINED, 0x81000602u)                                                     \
    X(SR_CONNECTION_FAILURE, 0x81000603u)                                                      \
    X(SR_AUTHENTICATION_FAILED, 0x81000604u)                                                   \
    X(SR_SESSION_NOT_READY, 0x81000605u)                                                       \
    X(SR_SESSION_CANCELLED_LOCAL, 0x81000606u)                                                 \
    X(SR_SESSION_CANCELLED_REMOTE, 0x81000607u)                                                \
    X(SR_SESSION_PROTOCOL_ERROR, 0x81000608u)                                                  \
    X(SR_SESSION_TIMEOUT, 0x81000609u)                                                         \
    X(SR_CANCEL_BEFORE_CONNECT, 0x8100060Au)                                                   \
    X(SR_NOT_INVITEE, 0x8100060Bu)                                                             \
    X(SR_NOT_INVITER, 0x8100060Cu)                                                             \
    X(SR_APP_ALREADY_REGISTERED, 0x8100060Du)                                                  \
    X(SR_APP_NOT_REGISTERED, 0x8100060Eu)                                                      \
    X(SR_NOT_VALID_FOR_APP_INVITE, 0x8100060Fu)                                                \
    X(SR_APP_NOT_SPECIFIED, 0x81000610u)                                                       \
    X(SR_CONTEXT_DATA_OVER_LIMIT, 0x81000611u)                                                 \
    X(SR_NO_USER_INVITED, 0x81000612u)                                                         \
    X(SR_INVITED_SELF, 0x81000613u)                                                            \
    X(SR_SESSION_STATE_INVALID, 0x81000614u)                                                   \
    X(SR_INVITATION_SEND_FAILURE, 0x81000615u)                                                 \
    X(SR_CANCEL_SEND_FAILURE, 0x81000616u)                                                     \
    X(SR_DECLINE_SEND_FAILURE, 0x81000617u)                                                    \
    X(SR_ACCEPT_SEND_FAILURE, 0x81000618u)                                                     \
    X(SR_CONTEXT_DATA_SEND_FAILURE, 0x81000619u)                                               \
    X(SR_NETWORK_CONFIG_FAILURE, 0x81000620u)                                                  \
    X(SR_NET_NOT_SUPPORTED, 0x81000621u)                                                       \
    X(SR_REMOTE_NET_NOT_SUPPORTED, 0x81000622u)                                                \
    X(SR_FIREWALL_NOT_SUPPORTED, 0x81000623u)                                                  \
    X(SR_OLD_SIP_STACK, 0x81000624u)                                                           \
    X(MSGR_E_ALREADY_LOGGED_ON, 0x81000304u)                                                   \
    X(MSGR_E_USER_NOT_FOUND, 0x8100030Au)                                                      \
    X(MSGR_E_DISCONNECTED, 0x8100030Cu)                                                        \
    X(MSGR_E_NOT_LOGGED_ON, 0x8100031Eu)                                                       \
    X(MSGR_E_SESSION_TIMEOUT, 0x81000329u)                                                     \
    X(MSGR_E_SERVER_SHUTDOWN, 0x81000347u)

/* Each code: its documented value, type MSGR_HRESULT, failure exactly when the top bit is set. */
#define STATIC_CHECK_CODE(name, value)                                                         \
    STATIC_CHECK((name) == (MSGR_HRESULT)(value));                                             \
    STATIC_CHECK(_Generic((name), int32_t: 1, default: 0));                                    \
    STATIC_CHECK(MSGR_FAILED(name) == ((value) >= 0x80000000u));
MSGR_CODES(STATIC_CHECK_CODE)

/* SESSION_STATE */
STATIC_CHECK(SS_UNKNOWN == 0);
STATIC_CHECK(SS_READY == 1);
STATIC_CHECK(SS_INVITATION == 2);
STATIC_CHECK(SS_ACCEPTED == 3);
STATIC_CHECK(SS_CONNECTED == 4);
STATIC_CHECK(SS_CANCELLED == 5);
STATIC_CHECK(SS_DECLINED == 6);
STATIC_CHECK(SS_TERMINATED == 7);
STATIC_CHECK(sizeof(SESSION_STATE) == sizeof(int));
/* SESSION_FLAGS */
STATIC_CHECK(SF_NONE == 0);
STATIC_CHECK(SF_INVITER == 0x1);
STATIC_CHECK(SF_INVITEE == 0x2);
STATIC_CHECK(SF_APP_INVITE_COMPATIBLE == 0x4);
/* LockStatus */
STATIC_CHECK(LOCK_NOTINITIALIZED == 1);
STATIC_CHECK(LOCK_INITIALIZED == 2);
STATIC_CHECK(LOCK_PENDINGRESULT == 3);
STATIC_CHECK(LOCK_UNLOCKED == 4);
STATIC_CHECK(LOCK_UNLOCKFAILED == 5);
STATIC_CHECK(LOCK_DISABLED == 6);
STATIC_CHECK(sizeof(LockStatus) == sizeof(int));
/* Version and constants */
STATIC_CHECK(MSGR_VERSION_NUMBER ==
             MSGR_VERSION_MAJOR * 10000 + MSGR_VERSION_MINOR * 100 + MSGR_VERSION_PATCH);
STATIC_CHECK(MSGR_LOCK_RESPONSE_SIZE == 33);
STATIC_CHECK(sizeof(MSGR_HRESULT) == 4);

struct code {
    const char *name;
    MSGR_HRESULT value;
};

#define CODE_ROW(name, value) {#name, name},
static const struct code codes[] = {MSGR_CODES(CODE_ROW)};

static void test_version(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", MSGR_VERSION_MAJOR, MSGR_VERSION_MINOR,
             MSGR_VERSION_PATCH);
    CHECK_STR(MSGR_VERSION_STRING, expected);
    CHECK_STR(MSGR_VERSION_STRING, MSGRPRIV_CARGO_VERSION); /* from Cargo.toml, by CMake */
    CHECK_STR(msgr_version(), MSGR_VERSION_STRING);
    CHECK(msgr_version() == msgr_version()); /* static */
}

static void test_result_text(void) {
    const char *unknown = msgr_result_text(0x12345);
    size_t i, j;
    CHECK_STR(unknown, "Unknown result code.");
    CHECK_STR(msgr_result_text(-1), "Unknown result code.");
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *text = msgr_result_text(codes[i].value);
        if (text == NULL || strcmp(text, unknown) == 0 || text[0] == '\0') {
            fprintf(stderr, "%s has no text in the library's table\n", codes[i].name);
            exit(1);
        }
        for (j = 0; j < i; j++) CHECK(codes[i].value != codes[j].value);
    }
    CHECK_STR(msgr_result_text(S_OK), "The operation succeeded.");
}

static void test_lock_compute_response(void) {
    char out[MSGR_LOCK_RESPONSE_SIZE + 1];
    char long_key[258];
    memset(out, 'x', sizeof out);
    /* RFC 1321: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72, as challenge "ab" + key "c". */
    CHECK_OK(msgr_lock_compute_response("ab", "c", out));
    CHECK_STR(out, "900150983cd24fb0d6963f7d28e17f72");
    CHECK(out[MSGR_LOCK_RESPONSE_SIZE] == 'x');
    CHECK_OK(msgr_lock_compute_response("", "", out));
    CHECK_STR(out, "d41d8cd98f00b204e9800998ecf8427e");

    /* Errors write nothing. */
    memset(out, 'x', sizeof out);
    CHECK_HR(E_POINTER, msgr_lock_compute_response(NULL, "c", out));
    CHECK_HR(E_POINTER, msgr_lock_compute_response("ab", NULL, out));
    CHECK_HR(E_POINTER, msgr_lock_compute_response("ab", "c", NULL));
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("\xc3\x28", "c", out)); /* bad UTF-8 */
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0'; /* 257 characters */
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("ab", long_key, out));
    long_key[256] = '\0'; /* 256: the limit */
    CHECK(out[0] == 'x');
    CHECK_OK(msgr_lock_compute_response("ab", long_key, out));
}

static void test_clsid(void) {
    CHECK_STR(CLSID_MsgrSessionManager, "{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}");
}

int main(void) {
    test_version();
    test_result_text();
    test_lock_compute_response();
    test_clsid();
    printf("test_header: %u codes checked\n", (unsigned)(sizeof codes / sizeof codes[0]));
    return 0;
}
