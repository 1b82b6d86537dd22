/*
 * msgr_service_options for the XMPP transport, without a server: every refusal with its
 * documented code and nothing created; the first version's struct size still accepted; the
 * embedded service's test hooks refused on an XMPP service.
 */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stddef.h>

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
    o.server_host = "localhost"; /* an IP literal */
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
    RUN(test_first_version_size);
    RUN(test_xmpp_service_without_server);
    return tu_finish();
}
