// consumer_cxx.cpp: the installed msgrpriv.hpp in an outside C++17 program: one invitation,
// accepted from a lambda, then cancelled. Exits 0 when it went as documented.
#include <msgrpriv.hpp>

#include <cstring>
#include <iostream>

int main() try {
    if (std::strcmp(msgrpriv::version(), MSGR_VERSION_STRING) != 0) {
        std::cerr << "consumer_cxx: header " << MSGR_VERSION_STRING << ", library "
                  << msgrpriv::version() << "\n";
        return 1;
    }
    const char *guid = "{0C0FFEE0-1234-5678-9ABC-DEF012345678}";
    msgrpriv::Service service;
    msgrpriv::Client alice(service, "alice@example.com"), bob(service, "bob@example.com");
    msgrpriv::SessionManager ma(alice), mb(bob);
    int invitations = 0;
    mb.on_invitation([&](msgrpriv::SessionRef s, std::string_view app_data, bool &handled) {
        invitations += app_data == "hello";
        handled = true;
        s.accept("ok");
    });
    ma.register_application(guid, "Consumer", "https://example.com");
    msgrpriv::Session session = ma.create_session();
    session.set_application(guid);
    session.invite("bob@example.com", "hello");
    while (alice.dispatch() + bob.dispatch() > 0) {
    }
    if (invitations != 1 || session.state() != SS_CONNECTED) {
        std::cerr << "consumer_cxx: " << invitations << " invitation(s), state " << session.state() << "\n";
        return 1;
    }
    session.cancel(SR_SESSION_CANCELLED_REMOTE);
    while (alice.dispatch() + bob.dispatch() > 0) {
    }
    std::cout << "consumer_cxx: msgrpriv " << msgrpriv::version() << ", invitation accepted and cancelled\n";
    return 0;
} catch (const msgrpriv::error &e) {
    std::cerr << "consumer_cxx: " << e.what() << "\n";
    return 1;
}
