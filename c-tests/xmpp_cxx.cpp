// xmpp_cxx.cpp: msgrpriv::Service over XMPP from C++, without a server. Bad options (TLS
// policy, CA file and domain included) throw msgrpriv::error with the documented code; the credentials function is consulted on the
// thread that signs in (a refusal fails at once, before any connection), and the library's
// copy of it is freed (ASan and valgrind would see a leak).
#include "cxx_check.hpp"

#include <optional>
#include <string>

static MSGR_HRESULT code_of(const msgrpriv::XmppOptions &options) {
    try {
        msgrpriv::Service svc(options);
    } catch (const msgrpriv::error &e) {
        return e.code();
    }
    return S_OK;
}

int main() {
    msgrpriv::XmppOptions o;
    CHECK(o.tls == msgrpriv::Tls::starttls);  // the default
    o.tls = msgrpriv::Tls::plain;
    o.server_port = 1;  // nothing listens there
    int asked = 0;
    std::string who;
    o.credentials = [&](std::string_view name) -> std::optional<std::string> {
        asked++;
        who = std::string(name);
        return std::nullopt;
    };
    CHECK_EQ(code_of(o), S_OK);

    msgrpriv::XmppOptions bad = o;
    bad.server_host = "192.0.2.1";  // plain TCP: loopback only
    CHECK_EQ(code_of(bad), E_INVALIDARG);
    bad.tls = msgrpriv::Tls::starttls;  // TLS: any host (nothing connects yet)
    CHECK_EQ(code_of(bad), S_OK);
    bad.tls = msgrpriv::Tls::direct;
    bad.server_host = "xmpp.example.com";
    CHECK_EQ(code_of(bad), S_OK);
    bad.ca_file = "/nonexistent/ca.pem";
    CHECK_EQ(code_of(bad), E_INVALIDARG);
    bad = o;
    bad.domain = "a@b";
    CHECK_EQ(code_of(bad), E_INVALIDARG);
    bad = o;
    bad.credentials = nullptr;  // an empty function refuses every sign-in, it is not NULL
    CHECK_EQ(code_of(bad), S_OK);

    msgrpriv::Service svc(o);
    try {
        msgrpriv::Client alice(svc, "alice@localhost");
        CHECK(false);
    } catch (const msgrpriv::error &e) {
        CHECK_EQ(e.code(), SR_AUTHENTICATION_FAILED);
    }
    CHECK_EQ(asked, 1);
    CHECK_EQ(who, std::string("alice@localhost"));

    // A function that throws refuses the sign-in too.
    o.credentials = [](std::string_view) -> std::optional<std::string> { throw 42; };
    msgrpriv::Service svc2(o);
    try {
        msgrpriv::Client bob(svc2, "bob@localhost");
        CHECK(false);
    } catch (const msgrpriv::error &e) {
        CHECK_EQ(e.code(), SR_AUTHENTICATION_FAILED);
    }
    // The new options reach the C struct; a client on the embedded service is signed in.
    msgrpriv::XmppOptions more = o;
    more.keepalive = std::chrono::seconds(5);
    more.reconnect_max = msgrpriv::infinite;
    more.allow_strangers = true;
    more.invitations_per_minute = MSGR_INFINITE;
    CHECK_EQ(code_of(more), S_OK);
    msgrpriv::Service embedded;
    msgrpriv::Client carol(embedded, "carol");
    auto [state, reason] = carol.connection_state();
    CHECK(state == msgrpriv::ConnectionState::signed_in);
    CHECK_EQ(reason, S_OK);
    carol.sign_out();
    CHECK(carol.connection_state().first == msgrpriv::ConnectionState::signed_out);
    return cxx_finish("xmpp_cxx");
}
