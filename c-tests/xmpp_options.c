/*
 * msgr_service_options for the XMPP transport, without a server: every refusal with its
 * documented code and nothing created (TLS policy, CA file, XMPP domain included); the
 * first, second and third versions' struct sizes still accepted; the embedded service's test
 * hooks refused on an XMPP service; msgr_client_get_connection_state() on a client that signs
 * in and out.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

static bool no_password(void *ud, const char *name, char *password, size_t size) {
    (void)ud;
    (void)name;
    (void)password;
    (void)size;
    return false;
}

static int g_destroyed;
static void count_destroy(void *ud) {
    CHECK(ud == &g_destroyed);
    g_destroyed++;
}

static void xmpp_options(msgr_service_options *o) {
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    o->transport = MSGR_TRANSPORT_XMPP;
    o->server_host = "127.0.0.1";
    o->server_port = 1; /* nothing listens there: nothing connects until a sign-in */
    o->credentials = no_password;
    o->tls = MSGR_TLS_PLAIN;
}

/* Creates a service from `o` and destroys it; returns the creation's code. */
static MSGR_HRESULT create_code(const msgr_service_options *o) {
    msgr_service *svc = NULL;
    MSGR_HRESULT hr = msgr_service_create(o, &svc);
    if (hr == S_OK) {
        CHECK_OK(msgr_service_destroy(svc));
    } else {
        CHECK(svc == NULL);
    }
    return hr;
}

static void test_refusals(void) {
    msgr_service_options o;
    msgr_service *svc = NULL;
    xmpp_options(&o);
    o.transport = 2;
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    xmpp_options(&o);
    o.credentials = NULL;
    CHECK_HR(E_POINTER, msgr_service_create(&o, &svc));
    xmpp_options(&o);
    o.server_host = NULL;
    CHECK_HR(E_POINTER, msgr_service_create(&o, &svc));
    o.server_host = "192.0.2.1"; /* plain TCP: loopback only */
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    o.server_host = "localhost"; /* plain TCP: an IP literal */
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    o.server_host = "";
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    o.server_host = "\xff";
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    xmpp_options(&o);
    o.server_port = 70000;
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    xmpp_options(&o);
    o.xmpp_resource = "";
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    CHECK(svc == NULL);
}

static void test_tls_policy(void) {
    msgr_service_options o;
    xmpp_options(&o);
    o.tls = 3;
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.tls = -1;
    CHECK_HR(E_INVALIDARG, create_code(&o));
    /* STARTTLS (the default) and direct TLS go to any host, IP literal or name; nothing
     * connects until a sign-in. */
    xmpp_options(&o);
    o.tls = MSGR_TLS_STARTTLS;
    CHECK_INT(MSGR_TLS_STARTTLS, 0);
    o.server_host = "192.0.2.1";
    CHECK_OK(create_code(&o));
    o.server_host = "xmpp.example.com";
    CHECK_OK(create_code(&o));
    o.tls = MSGR_TLS_DIRECT;
    CHECK_OK(create_code(&o));
    o.server_host = "";
    CHECK_HR(E_INVALIDARG, create_code(&o));
    /* Plain TCP: loopback IP literals only. */
    o.tls = MSGR_TLS_PLAIN;
    o.server_host = "::1";
    CHECK_OK(create_code(&o));
    o.server_host = "2001:db8::1";
    CHECK_HR(E_INVALIDARG, create_code(&o));
}

static void test_ca_file(void) {
    msgr_service_options o;
    char path[64];
    FILE *f;
    snprintf(path, sizeof path, "/tmp/msgrpriv-xmpp-options-%ld.pem", (long)getpid());
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("no certificate in here\n", f);
    fclose(f);
    xmpp_options(&o);
    o.tls = MSGR_TLS_STARTTLS;
    o.ca_file = "/nonexistent/msgrpriv-ca.pem";
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.ca_file = path; /* readable, but holds no certificate */
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.ca_file = "/tmp"; /* a directory */
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.ca_file = "\xff";
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.tls = MSGR_TLS_PLAIN; /* checked whatever the policy */
    o.ca_file = path;
    CHECK_HR(E_INVALIDARG, create_code(&o));
    unlink(path);
}

static void test_xmpp_domain(void) {
    msgr_service_options o;
    msgr_service *svc = NULL;
    msgr_client *c = NULL;
    xmpp_options(&o);
    o.xmpp_domain = "";
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.xmpp_domain = "alice@localhost";
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.xmpp_domain = "\xff";
    CHECK_HR(E_INVALIDARG, create_code(&o));
    o.xmpp_domain = "localhost";
    REQUIRE_OK(msgr_service_create(&o, &svc));
    /* A name at another domain: refused before anything connects. A name without '@' is
     * completed ("alice@localhost"), then refused by the password source. */
    CHECK_HR(E_INVALIDARG, msgr_client_create(svc, "bob@example.com", MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(SR_AUTHENTICATION_FAILED, msgr_client_create(svc, "alice", MSGR_DISPATCH_MANUAL, &c));
    CHECK(c == NULL);
    CHECK_OK(msgr_service_destroy(svc));
}

static void test_second_version_size(void) {
    msgr_service_options o;
    xmpp_options(&o);
    /* A caller of the second version: tls, ca_file and xmpp_domain are not read and keep
     * their defaults (STARTTLS, the system's store, each name's domain), so a host that is
     * not loopback is accepted and garbage beyond the struct is ignored. */
    o.struct_size = (uint32_t)(offsetof(msgr_service_options, credentials_destroy) +
                               sizeof(msgr_destroy_callback));
    o.server_host = "192.0.2.1";
    o.tls = 77;
    o.ca_file = "/nonexistent/msgrpriv-ca.pem";
    CHECK_OK(create_code(&o));
    /* One byte more or less than a known version: refused. */
    o.struct_size += 1;
    CHECK_HR(E_INVALIDARG, create_code(&o));
}

static void test_third_version_size(void) {
    msgr_service_options o;
    xmpp_options(&o);
    /* A caller of the third version: the keepalive, reconnection and invitation policy
     * fields are not read and keep their defaults, so garbage there is ignored. */
    o.struct_size = (uint32_t)(offsetof(msgr_service_options, xmpp_domain) + sizeof(char *));
    o.xmpp_keepalive_ms = 1;
    o.xmpp_invitations_per_minute = 5;
    CHECK_OK(create_code(&o));
    o.struct_size += 1;
    CHECK_HR(E_INVALIDARG, create_code(&o));
    /* The whole struct, with every new field set. */
    xmpp_options(&o);
    o.xmpp_keepalive_ms = 5000;
    o.xmpp_reconnect_max_ms = MSGR_INFINITE;
    o.xmpp_allow_strangers = true;
    o.xmpp_invitations_per_minute = MSGR_INFINITE;
    CHECK_OK(create_code(&o));
}

/* On the embedded service, which never loses a connection: signed in or out, and never a
 * reason other than the application's. */
static void test_connection_state(void) {
    msgr_service *svc = NULL;
    msgr_client *c = NULL;
    int32_t state = -1;
    MSGR_HRESULT reason = -1;
    REQUIRE_OK(msgr_service_create(NULL, &svc));
    REQUIRE_OK(msgr_client_create(svc, "alice", MSGR_DISPATCH_MANUAL, &c));
    CHECK_OK(msgr_client_get_connection_state(c, &state, &reason));
    CHECK_INT(state, MSGR_SIGNED_IN);
    CHECK_HR(S_OK, reason);
    CHECK_OK(msgr_client_sign_out(c));
    CHECK_OK(msgr_client_get_connection_state(c, &state, &reason));
    CHECK_INT(state, MSGR_SIGNED_OUT);
    CHECK_HR(S_OK, reason);
    CHECK_HR(E_POINTER, msgr_client_get_connection_state(c, NULL, &reason));
    CHECK_HR(E_POINTER, msgr_client_get_connection_state(c, &state, NULL));
    CHECK_HR(E_POINTER, msgr_client_get_connection_state(NULL, &state, &reason));
    CHECK_HR(E_HANDLE, msgr_client_get_connection_state((msgr_client *)svc, &state, &reason));
    CHECK_OK(msgr_client_destroy(c));
    state = 7;
    CHECK_HR(E_HANDLE, msgr_client_get_connection_state(c, &state, &reason));
    CHECK_INT(state, 7);
    CHECK_OK(msgr_service_destroy(svc));
}

static void test_first_version_size(void) {
    msgr_service_options o;
    msgr_service *svc = NULL;
    xmpp_options(&o);
    /* A caller of the first version: the XMPP fields are not read, so this is embedded. */
    o.struct_size = (uint32_t)(offsetof(msgr_service_options, registry_path) + sizeof(char *));
    REQUIRE_OK(msgr_service_create(&o, &svc));
    CHECK_HR(S_FALSE, msgr_service_set_reachable(svc, "bob@localhost", false));
    CHECK_OK(msgr_service_destroy(svc));
}

static void test_xmpp_service_without_server(void) {
    msgr_service_options o;
    msgr_service *svc = NULL;
    msgr_client *c = NULL;
    xmpp_options(&o);
    o.manual_clock = true;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    /* The embedded service's test hooks. */
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_service_advance_clock(svc, 1));
    CHECK_HR(E_ILLEGAL_METHOD_CALL, msgr_service_set_reachable(svc, "bob@localhost", false));
    /* Lock and Key keys are the service's own. */
    CHECK_OK(msgr_service_add_app_key(svc, "app", "key"));
    /* A sign-in name is a bare JID; the password source refuses; nobody listens. */
    CHECK_HR(E_INVALIDARG, msgr_client_create(svc, "no-at-sign", MSGR_DISPATCH_MANUAL, &c));
    CHECK_HR(SR_AUTHENTICATION_FAILED,
             msgr_client_create(svc, "alice@localhost", MSGR_DISPATCH_MANUAL, &c));
    CHECK(c == NULL);
    CHECK_OK(msgr_service_destroy(svc));
}

/* The credentials' user data is handed to its destroy callback exactly once: when the
 * creation fails, or when the service and its clients are gone. */
static void test_credentials_destroy_runs_once(void) {
    msgr_service_options o;
    msgr_service *svc = NULL;
    xmpp_options(&o);
    o.credentials_user_data = &g_destroyed;
    o.credentials_destroy = count_destroy;
    g_destroyed = 0;
    o.server_host = "192.0.2.1";
    CHECK_HR(E_INVALIDARG, msgr_service_create(&o, &svc));
    CHECK_INT(g_destroyed, 1);
    o.server_host = "127.0.0.1";
    o.credentials = NULL;
    CHECK_HR(E_POINTER, msgr_service_create(&o, &svc));
    CHECK_INT(g_destroyed, 2);
    xmpp_options(&o);
    o.credentials_user_data = &g_destroyed;
    o.credentials_destroy = count_destroy;
    REQUIRE_OK(msgr_service_create(&o, &svc));
    CHECK_INT(g_destroyed, 2);
    CHECK_OK(msgr_service_destroy(svc));
    CHECK_INT(g_destroyed, 3);
}

int main(void) {
    RUN(test_refusals);
    RUN(test_credentials_destroy_runs_once);
    RUN(test_tls_policy);
    RUN(test_ca_file);
    RUN(test_xmpp_domain);
    RUN(test_first_version_size);
    RUN(test_second_version_size);
    RUN(test_third_version_size);
    RUN(test_connection_state);
    RUN(test_xmpp_service_without_server);
    return tu_finish();
}
