// test_cxx_objects.cpp: the object side of include/msgrpriv.hpp: errors as exceptions, RAII
// and reference counting of every handle type, string getters over the caller-buffer
// protocol, Lock and Key, the whole invitation through the C++ types.
#include "cxx_check.hpp"

#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using msgrpriv::Session;
using msgrpriv::SessionRef;

static const char *const GUID = "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F01}";
static const char *const GUID2 = "{00000000-0000-0000-0000-0000000000AB}";

static void test_library() {
    CHECK_EQ(std::string(msgrpriv::version()), std::string(MSGR_VERSION_STRING));
    CHECK_EQ(std::string(msgrpriv::version()), std::string(MSGRPRIV_CARGO_VERSION));
    CHECK_EQ(std::string(msgrpriv::result_text(E_HANDLE)), std::string(msgr_result_text(E_HANDLE)));
    CHECK_EQ(msgrpriv::compute_lock_response("ab", "c"), std::string("900150983cd24fb0d6963f7d28e17f72"));
    EXPECT_THROW_CODE(E_POINTER, msgrpriv::compute_lock_response(nullptr, "k"));
    EXPECT_THROW_CODE(E_INVALIDARG, msgrpriv::compute_lock_response(std::string(257, 'x'), "k"));

    msgrpriv::error e(SR_INVITED_SELF, "msgr_session_invite");
    CHECK_EQ(e.code(), SR_INVITED_SELF);
    CHECK_EQ(std::string(e.function()), std::string("msgr_session_invite"));
    CHECK_EQ(std::string(e.text()), std::string(msgr_result_text(SR_INVITED_SELF)));
    CHECK_EQ(std::string(e.what()),
             std::string("msgr_session_invite: 0x81000613 ") + msgr_result_text(SR_INVITED_SELF));
    // An error thrown for a failed call says what the library said of it.
    try {
        msgrpriv::compute_lock_response(std::string(257, 'x'), "k");
        CHECK(false);
    } catch (const msgrpriv::error &x) {
        CHECK_EQ(std::string(x.what()),
                 std::string("msgr_lock_compute_response: challenge: 257 characters, over the limit of 256 "
                             "(E_INVALIDARG)"));
    }
    CHECK_EQ(msgrpriv::check(S_FALSE, "x"), S_FALSE);
    // The trace, to a std::function; off again.
    {
        std::vector<std::string> lines;
        msgrpriv::set_trace(MSGR_TRACE_INFO, [&lines](int level, std::string_view m) {
            CHECK(level == MSGR_TRACE_INFO || level == MSGR_TRACE_WARNING);
            lines.emplace_back(m);
        });
        {
            msgrpriv::Service svc;
            msgrpriv::Client c(svc, "trace@example.com");
        }
        msgrpriv::set_trace(MSGR_TRACE_OFF);
        CHECK(!lines.empty() && lines[0] == "trace@example.com: signed in");
    }
    EXPECT_THROW_CODE(E_FAIL, msgrpriv::check(E_FAIL, "x"));
}

static void test_handles_and_errors() {
    msgrpriv::Service service;
    msgrpriv::Client alice(service, "alice@example.com");
    EXPECT_THROW_CODE(MSGR_E_ALREADY_LOGGED_ON, msgrpriv::Client(service, "ALICE@example.com"));
    EXPECT_THROW_CODE(E_INVALIDARG, msgrpriv::Client(service, ""));
    EXPECT_THROW_CODE(E_POINTER, msgrpriv::Client(service, nullptr));
    msgrpriv::SessionManager m(alice);
    CHECK_EQ(m.lock_status(), LOCK_DISABLED);

    // Moves leave the source empty; calls on an empty object throw E_POINTER.
    msgrpriv::Client moved(std::move(alice));
    CHECK(alice.get() == nullptr && moved.get() != nullptr);
    EXPECT_THROW_CODE(E_POINTER, alice.dispatch());
    (void)moved.dispatch();
    msgrpriv::SessionManager m2(std::move(m));
    EXPECT_THROW_CODE(E_POINTER, m.create_session());
    m = std::move(m2);
    CHECK(m.get() != nullptr && m2.get() == nullptr);

    // Session: copy = add_ref, destruction = release; the last one makes the handle stale.
    Session a = m.create_session();
    msgr_session *raw = a.get();
    CHECK(raw != nullptr);
    {
        Session b = a;          // add_ref
        Session c(b);           // add_ref
        Session d;
        d = c;                  // add_ref
        d = d;                  // self-assignment keeps the reference
        CHECK(b == a && c.get() == raw && d.get() == raw);
    }
    SESSION_STATE st = SS_UNKNOWN;
    CHECK_EQ(msgr_session_get_state(raw, &st), S_OK); // a still holds its reference
    Session moved_session(std::move(a));
    CHECK(!a && moved_session.get() == raw);
    SessionRef view = moved_session;                   // no reference
    Session kept = view.keep();                        // add_ref
    moved_session.reset();
    CHECK_EQ(kept.state(), SS_READY);
    kept.reset();
    CHECK_EQ(msgr_session_get_state(raw, &st), E_HANDLE);
    EXPECT_THROW_CODE(E_HANDLE, view.state());
    EXPECT_THROW_CODE(E_HANDLE, view.keep());

    // detach/adopt hand the reference over to C and back.
    Session s = m.create_session();
    msgr_session *h = s.detach();
    CHECK(!s);
    Session back = Session::adopt(h);
    CHECK_EQ(back.flags(), static_cast<std::uint32_t>(SF_INVITER));
    CHECK_EQ(back.session_id().size(), 38u);
    CHECK_EQ(back.session_id()[0], '{');
    EXPECT_THROW_CODE(SR_APP_NOT_SPECIFIED, back.application());
    EXPECT_THROW_CODE(SR_NO_USER_INVITED, back.user());
    EXPECT_THROW_CODE(SR_APP_NOT_REGISTERED, back.set_application(GUID));
    EXPECT_THROW_CODE(E_INVALIDARG, back.set_application("not a guid"));
    CHECK_EQ(back.local_address(), std::string());
    back.set_local_address("host:1");
    CHECK_EQ(back.local_address(), std::string("host:1"));
    EXPECT_THROW_CODE(E_INVALIDARG, back.set_local_address(std::string(31, 'a')));
    CHECK_EQ(back.remote_address(), std::string()); // S_FALSE: not connected
    CHECK_EQ(back.context_data(), std::string());

    // Service
    CHECK(!service.set_reachable("nobody@example.com", false));
    EXPECT_THROW_CODE(E_ILLEGAL_METHOD_CALL, service.advance_clock(1ms));
    msgrpriv::Service other;
    msgr_service *sh = other.get();
    msgrpriv::Service other2 = std::move(other);
    CHECK(other.get() == nullptr && other2.get() == sh);
    msgrpriv::Service adopted = msgrpriv::Service::adopt(other2.detach());
    CHECK(adopted.get() == sh);
}

// Long strings: the getters grow their buffer past the first guess.
static void test_strings() {
    msgrpriv::Service service;
    msgrpriv::Client alice(service, "alice@example.com"), bob(service, "bob@example.com");
    msgrpriv::SessionManager ma(alice), mb(bob);
    const std::string name(256, 'n'), url = "https://example.com/" + std::string(200, 'u');
    ma.register_application(GUID, name, url);
    ma.register_application(GUID2, "Second", "https://example.com/2", "");
    std::vector<msgrpriv::Application> apps = ma.application_list();
    CHECK_EQ(apps.size(), 2u);
    if (apps.size() == 2) {
        CHECK_EQ(apps[0].guid, std::string(GUID2));
        CHECK_EQ(apps[0].name, std::string("Second"));
        CHECK_EQ(apps[0].path, std::string());
        CHECK_EQ(apps[1].guid, std::string(GUID));
        CHECK_EQ(apps[1].name, name);
        CHECK_EQ(apps[1].url, url);
    }
    CHECK(ma.applications().find(name) != std::string::npos);
    EXPECT_THROW_CODE(SR_APP_ALREADY_REGISTERED, ma.register_application(GUID, "x", "y"));

    Session s = ma.create_session();
    s.set_application(GUID);
    CHECK_EQ(s.application(), std::string(GUID));
    CHECK_EQ(s.application_name(), name);
    CHECK_EQ(s.application_url(), url);
    EXPECT_THROW_CODE(SR_INVITED_SELF, s.invite("alice@example.com"));
    Session invitee;
    mb.on_invitation([&](SessionRef in, std::string_view data, bool &handled) {
        CHECK_EQ(data, std::string_view("data"));
        invitee = in.keep();
        handled = true;
    });
    s.set_local_address("alice:1");
    s.invite("bob@example.com", "data");
    pump(alice, bob);
    CHECK(invitee);
    if (!invitee) return;
    CHECK_EQ(invitee.state(), SS_INVITATION);
    CHECK_EQ(invitee.context_data(), std::string("data"));
    CHECK_EQ(invitee.user(), std::string("alice@example.com"));
    CHECK_EQ(invitee.session_id(), s.session_id());
    EXPECT_THROW_CODE(SR_NOT_INVITEE, s.accept());
    EXPECT_THROW_CODE(SR_NOT_VALID_FOR_APP_INVITE, s.send_context_data("early"));
    invitee.set_local_address("bob:2");
    invitee.accept();
    pump(alice, bob);
    CHECK_EQ(s.state(), SS_CONNECTED);
    CHECK_EQ(s.remote_address(), std::string("bob:2"));
    CHECK_EQ(invitee.remote_address(), std::string("alice:1"));
    const std::string data(300, 'd');
    s.send_context_data(data);
    EXPECT_THROW_CODE(SR_CONTEXT_DATA_OVER_LIMIT, s.send_context_data(data + "d"));
    pump(alice, bob);
    CHECK_EQ(invitee.context_data(), data);
    invitee.cancel(SR_SESSION_CANCELLED_REMOTE, "bye");
    pump(alice, bob);
    CHECK_EQ(s.state(), SS_CANCELLED);
    CHECK_EQ(s.context_data(), std::string("bye"));
    EXPECT_THROW_CODE(SR_SESSION_STATE_INVALID, s.cancel(SR_SESSION_CANCELLED_REMOTE));
    ma.unregister_application(GUID);
    EXPECT_THROW_CODE(SR_APP_NOT_REGISTERED, ma.unregister_application(GUID));
}

static void test_lock_and_key_and_timeout() {
    msgrpriv::ServiceOptions options;
    options.manual_clock = true;
    options.invitation_timeout = 1000ms;
    msgrpriv::Service service(options);
    service.add_app_key("app", "key");
    msgrpriv::Client alice(service, "alice@example.com"), bob(service, "bob@example.com");
    msgrpriv::SessionManager ma(alice), mb(bob);
    std::string trace;
    for (msgrpriv::SessionManagerRef m : {msgrpriv::SessionManagerRef(ma), msgrpriv::SessionManagerRef(mb)}) {
        m.on_lock_challenge([&trace](msgrpriv::SessionManagerRef mgr, std::int32_t cookie, std::string_view challenge) {
            trace += "challenge;";
            mgr.send_response("app", msgrpriv::compute_lock_response(std::string(challenge), "key"), cookie);
        });
        m.on_lock_result([&trace](std::int32_t cookie, bool ok) {
            trace += (cookie == 7 && ok) ? "result;" : "bad-result;";
        });
    }
    EXPECT_THROW_CODE(MSGR_E_API_LOCKED, ma.create_session());
    pump(alice, bob); // OnLockEnable, OnLockStatusChanged
    CHECK_EQ(ma.lock_status(), LOCK_INITIALIZED);
    ma.request_challenge(7);
    mb.request_challenge(7);
    EXPECT_THROW_CODE(MSGR_E_API_PENDING_UNLOCK, ma.request_challenge(8));
    pump(alice, bob);
    CHECK_EQ(trace, std::string("challenge;result;challenge;result;"));
    CHECK_EQ(ma.lock_status(), LOCK_UNLOCKED);
    CHECK_EQ(mb.lock_status(), LOCK_UNLOCKED);

    ma.register_application(GUID, "App", "https://example.com");
    Session s = ma.create_session();
    MSGR_HRESULT ended = S_OK;
    s.on_termination([&ended](MSGR_HRESULT hr, std::string_view) { ended = hr; });
    s.set_application(GUID);
    s.invite("bob@example.com");
    pump(alice, bob);
    service.advance_clock(999ms);
    pump(alice, bob);
    CHECK_EQ(ended, S_OK);
    service.advance_clock(1ms);
    pump(alice, bob);
    CHECK_EQ(ended, SR_SESSION_TIMEOUT);
    CHECK_EQ(s.state(), SS_TERMINATED);

    // Sign-out and shutdown.
    bob.sign_out();
    EXPECT_THROW_CODE(MSGR_E_NOT_LOGGED_ON, bob.sign_out());
    bool shut = false;
    mb.on_app_shutdown([&shut] { shut = true; });
    bob.shutdown();
    pump(alice, bob);
    CHECK(shut);
    EXPECT_THROW_CODE(MSGR_E_SERVER_SHUTDOWN, bob.sign_in());
    EXPECT_THROW_CODE(MSGR_E_SERVER_SHUTDOWN, msgrpriv::SessionManager(bob));
}

int main() {
    test_library();
    test_handles_and_errors();
    test_strings();
    test_lock_and_key_and_timeout();
    return cxx_finish("test_cxx_objects");
}
