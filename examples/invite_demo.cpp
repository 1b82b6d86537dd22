// invite_demo.cpp: the whole Session Invite flow of Msgrpriv.h, with Lock and Key, between two
// users on the embedded service, through the C++17 layer (include/msgrpriv.hpp). The same
// flow as invite_demo.c:
//
//   1. The service holds an application ID/key pair, so Lock and Key is in force: each
//      session manager starts locked.
//   2. Each manager unlocks itself: request_challenge(cookie) -> OnLockChallenge ->
//      compute_lock_response() -> send_response() -> OnLockResult(true).
//   3. Alice registers the application, creates a session, sets the application and invites
//      bob.
//   4. Bob's manager gets OnInvitation: bob keeps the session (SessionRef::keep()), listens to
//      its events and accepts.
//   5. They exchange context data both ways, then alice cancels.
//
// Every event is printed as it fires. The program exits with 0 only if each side saw exactly
// the documented sequence of events; the RAII objects release everything. Errors are
// msgrpriv::error exceptions.
//
// Build: c++ -std=c++17 invite_demo.cpp -I include -L <dir of libmsgrpriv> -lmsgrpriv
#include <msgrpriv.hpp>

#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <string_view>

namespace {

const char *const APP_GUID = "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F01}";
const char *const APP_NAME = "Invite Demo";
const char *const APP_URL = "https://example.com/invite-demo";
const char *const APP_ID = "invite-demo";
const char *const APP_KEY = "demo-secret-key";

const char *state_name(SESSION_STATE s) {
    static const char *const names[] = {"SS_UNKNOWN",   "SS_READY",     "SS_INVITATION",
                                        "SS_ACCEPTED",  "SS_CONNECTED", "SS_CANCELLED",
                                        "SS_DECLINED",  "SS_TERMINATED"};
    return (s >= SS_UNKNOWN && s <= SS_TERMINATED) ? names[s] : "?";
}

const char *lock_name(LockStatus s) {
    static const char *const names[] = {"?", "LOCK_NOTINITIALIZED", "LOCK_INITIALIZED",
                                        "LOCK_PENDINGRESULT", "LOCK_UNLOCKED",
                                        "LOCK_UNLOCKFAILED", "LOCK_DISABLED"};
    return (s >= LOCK_NOTINITIALIZED && s <= LOCK_DISABLED) ? names[s] : "?";
}

// One user of the demo: a client, its manager, its session, and the events it saw.
struct Party {
    std::string name;
    msgrpriv::Client client;
    msgrpriv::SessionManager manager;
    msgrpriv::Session session;
    std::int32_t cookie;
    std::string trace;

    Party(const msgrpriv::Service &service, std::string who, std::int32_t lock_cookie)
        : name(who), client(service, who + "@example.com"), manager(client), cookie(lock_cookie) {}

    void log(const std::string &entry) { trace += (trace.empty() ? "" : "; ") + entry; }
    std::ostream &out() { return std::cout << "[" << name << "] "; }

    // The ten session events (the callbacks get the session as a SessionRef).
    void listen_to_session(msgrpriv::SessionRef s) {
        s.before_app_launch([this](msgrpriv::SessionRef r, bool &enable) {
            out() << "BeforeAppLaunch(enable=" << std::boolalpha << enable << ") state=" << state_name(r.state()) << "\n";
            log("BeforeAppLaunch");
        });
        s.on_accepted([this](msgrpriv::SessionRef r, std::string_view data) {
            out() << "OnAccepted(app_data=\"" << data << "\") state=" << state_name(r.state()) << "\n";
            log("OnAccepted");
        });
        s.on_app_not_present([this](std::string_view app, std::string_view url) {
            out() << "OnAppNotPresent(name=\"" << app << "\", url=\"" << url << "\")\n";
            log("OnAppNotPresent");
        });
        s.on_cancelled([this](msgrpriv::SessionRef r, std::string_view data) {
            out() << "OnCancelled(app_data=\"" << data << "\") state=" << state_name(r.state()) << "\n";
            log("OnCancelled");
        });
        s.on_context_data([this](msgrpriv::SessionRef r, std::string_view data) {
            out() << "OnContextData(data=\"" << data << "\") state=" << state_name(r.state()) << "\n";
            log("OnContextData(" + std::string(data) + ")");
        });
        s.on_declined([this](std::string_view data) {
            out() << "OnDeclined(app_data=\"" << data << "\")\n";
            log("OnDeclined");
        });
        s.on_ready_to_launch([this](msgrpriv::SessionRef r) {
            out() << "OnReadyToLaunch() state=" << state_name(r.state()) << "\n";
            log("OnReadyToLaunch");
        });
        s.on_send_error([this](MSGR_HRESULT hr) {
            out() << "OnSendError(hr=" << msgrpriv::result_text(hr) << ")\n";
            log("OnSendError");
        });
        s.on_state_changed([this](msgrpriv::SessionRef r, SESSION_STATE previous) {
            out() << "OnStateChanged(previous=" << state_name(previous) << ") state=" << state_name(r.state()) << "\n";
            log(std::string("OnStateChanged(") + state_name(previous) + "->" + state_name(r.state()) + ")");
        });
        s.on_termination([this](msgrpriv::SessionRef r, MSGR_HRESULT hr, std::string_view data) {
            out() << "OnTermination(hr=\"" << msgrpriv::result_text(hr) << "\", app_data=\"" << data
                  << "\") state=" << state_name(r.state()) << "\n";
            log(std::string("OnTermination(") +
                (hr == SR_SESSION_CANCELLED_LOCAL    ? "SR_SESSION_CANCELLED_LOCAL"
                 : hr == SR_SESSION_CANCELLED_REMOTE ? "SR_SESSION_CANCELLED_REMOTE"
                                                     : "other") +
                ")");
        });
    }

    // The eight manager events.
    void listen_to_manager() {
        manager.on_app_registered([this](std::string_view guid) {
            out() << "OnAppRegistered(guid=" << guid << ")\n";
            log(guid == APP_GUID ? "OnAppRegistered" : "OnAppRegistered(other)");
        });
        manager.on_app_unregistered([this](std::string_view guid) {
            out() << "OnAppUnRegistered(guid=" << guid << ")\n";
            log(guid == APP_GUID ? "OnAppUnRegistered" : "OnAppUnRegistered(other)");
        });
        manager.on_app_shutdown([this] {
            out() << "OnAppShutdown()\n";
            log("OnAppShutdown");
        });
        // Bob's invitation: keep the session, listen to it, take care of it (handled).
        manager.on_invitation([this](msgrpriv::SessionRef s, std::string_view data, bool &handled) {
            out() << "OnInvitation(from=" << s.user() << ", app_data=\"" << data << "\", handled="
                  << std::boolalpha << handled << ") state=" << state_name(s.state()) << "\n";
            log("OnInvitation");
            if (!session) {
                session = s.keep();
                listen_to_session(session);
                session.set_local_address("bob-host:7001");
                handled = true;
            }
        });
        // The service's challenge: answer it at once, from the callback.
        manager.on_lock_challenge([this](msgrpriv::SessionManagerRef m, std::int32_t c, std::string_view challenge) {
            out() << "OnLockChallenge(cookie=" << c << ", challenge=" << challenge << ")\n";
            log(c == cookie ? "OnLockChallenge" : "OnLockChallenge(wrong cookie)");
            std::string response = msgrpriv::compute_lock_response(std::string(challenge), APP_KEY);
            out() << "  SendResponse(" << APP_ID << ", " << response << ", " << c << ")\n";
            m.send_response(APP_ID, response, c);
        });
        manager.on_lock_enable([this](bool enabled) {
            out() << "OnLockEnable(enabled=" << std::boolalpha << enabled << ")\n";
            log(enabled ? "OnLockEnable(true)" : "OnLockEnable(false)");
        });
        manager.on_lock_result([this](std::int32_t c, bool succeeded) {
            out() << "OnLockResult(cookie=" << c << ", succeeded=" << std::boolalpha << succeeded << ")\n";
            log(succeeded && c == cookie ? "OnLockResult(true)" : "OnLockResult(failed)");
        });
        manager.on_lock_status_changed([this](LockStatus status) {
            out() << "OnLockStatusChanged(status=" << lock_name(status) << ")\n";
            log(std::string("OnLockStatusChanged(") + lock_name(status) + ")");
        });
    }

    void show_session() {
        std::string remote = session.remote_address();
        out() << "session " << session.session_id() << " state=" << state_name(session.state())
              << " remote address=\"" << remote << "\"" << (remote.empty() ? " (not connected)" : "") << "\n";
    }
};

// Delivers both clients' events until neither has any left (manual dispatch mode).
void pump(Party &a, Party &b) {
    for (int rounds = 0; rounds < 1000; rounds++) {
        if (a.client.dispatch() + b.client.dispatch() == 0) {
            return;
        }
    }
}

bool check_trace(const Party &p, const std::string &expected) {
    if (p.trace == expected) {
        return true;
    }
    std::cerr << "FAILED: " << p.name << "'s events differ from the documented flow\n  expected: "
              << expected << "\n  got:      " << p.trace << "\n";
    return false;
}

}  // namespace

int main() try {
    std::cout << "msgrpriv " << msgrpriv::version() << "\n\n";
    std::mt19937 random(std::random_device{}());
    std::uniform_int_distribution<std::int32_t> cookies(1, 0x7FFFFFFF);

    // The service, with an application ID/key pair: Lock and Key is in force. Declared first,
    // destroyed last; the parties' destructors release the sessions, managers and clients.
    msgrpriv::Service service;
    service.add_app_key(APP_ID, APP_KEY);
    Party alice(service, "alice", cookies(random));
    Party bob(service, "bob", cookies(random));
    alice.listen_to_manager();
    bob.listen_to_manager();
    std::cout << "-- signed in: each manager is locked\n";
    pump(alice, bob);

    std::cout << "\n-- Lock and Key\n";
    alice.manager.request_challenge(alice.cookie);
    bob.manager.request_challenge(bob.cookie);
    pump(alice, bob);
    if (alice.manager.lock_status() != LOCK_UNLOCKED || bob.manager.lock_status() != LOCK_UNLOCKED) {
        std::cerr << "FAILED: the managers are not unlocked\n";
        return 1;
    }

    std::cout << "\n-- RegisterApplication\n";
    alice.manager.register_application(APP_GUID, APP_NAME, APP_URL);
    pump(alice, bob);

    std::cout << "\n-- alice invites bob\n";
    alice.session = alice.manager.create_session();
    alice.listen_to_session(alice.session);
    alice.session.set_application(APP_GUID);
    alice.session.set_local_address("alice-host:7000");
    alice.session.invite("bob@example.com", "Let's play");
    pump(alice, bob);
    if (!bob.session) {
        std::cerr << "FAILED: bob got no invitation\n";
        return 1;
    }

    std::cout << "\n-- bob accepts\n";
    bob.session.accept("Ready");
    pump(alice, bob);
    alice.show_session();
    bob.show_session();

    std::cout << "\n-- context data, both ways\n";
    alice.session.send_context_data("alice listens on 7000");
    bob.session.send_context_data("bob listens on 7001");
    pump(alice, bob);

    std::cout << "\n-- alice cancels\n";
    alice.session.cancel(SR_SESSION_CANCELLED_REMOTE, "Bye");
    pump(alice, bob);
    alice.show_session();
    bob.show_session();

    std::cout << "\n-- UnRegisterApplication\n";
    bob.manager.unregister_application(APP_GUID);
    pump(alice, bob);

    // The documented sequences (the same as invite_demo.c's).
    bool ok = check_trace(alice,
                          "OnLockEnable(true); OnLockStatusChanged(LOCK_INITIALIZED); "
                          "OnLockStatusChanged(LOCK_PENDINGRESULT); OnLockChallenge; "
                          "OnLockResult(true); OnLockStatusChanged(LOCK_UNLOCKED); "
                          "OnAppRegistered; "
                          "OnStateChanged(SS_READY->SS_INVITATION); "
                          "OnStateChanged(SS_INVITATION->SS_CONNECTED); OnAccepted; OnReadyToLaunch; "
                          "OnStateChanged(SS_ACCEPTED->SS_CONNECTED); "
                          "OnContextData(bob listens on 7001); "
                          "OnStateChanged(SS_CONNECTED->SS_CANCELLED); OnTermination(SR_SESSION_CANCELLED_LOCAL); "
                          "OnAppUnRegistered");
    ok = check_trace(bob,
                     "OnLockEnable(true); OnLockStatusChanged(LOCK_INITIALIZED); "
                     "OnLockStatusChanged(LOCK_PENDINGRESULT); OnLockChallenge; "
                     "OnLockResult(true); OnLockStatusChanged(LOCK_UNLOCKED); "
                     "OnAppRegistered; "
                     "OnInvitation; "
                     "OnStateChanged(SS_INVITATION->SS_ACCEPTED); BeforeAppLaunch; OnReadyToLaunch; "
                     "OnStateChanged(SS_ACCEPTED->SS_CONNECTED); "
                     "OnContextData(alice listens on 7000); "
                     "OnStateChanged(SS_CONNECTED->SS_CANCELLED); OnCancelled; "
                     "OnTermination(SR_SESSION_CANCELLED_REMOTE); "
                     "OnAppUnRegistered") && ok;
    if (!ok) {
        return 1;
    }
    std::cout << "\ninvite_demo (C++): the whole flow happened as documented\n";
    return 0;
} catch (const msgrpriv::error &e) {
    // A failed call, or one made by a callback (rethrown by Client::dispatch()).
    std::cerr << "FAILED: " << e.what() << "\n";
    return 1;
}
