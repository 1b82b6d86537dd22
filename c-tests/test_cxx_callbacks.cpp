// test_cxx_callbacks.cpp: callbacks of include/msgrpriv.hpp take any callable (lambdas with
// and without the leading object, mutable and move-only lambdas, function pointers, function
// objects, std::function, generic lambdas); the callable is destroyed exactly once when its
// registration ends (unadvise, last release of its object, failed registration); callbacks
// run in registration order; the whole invitation flow as the C demo sees it.
#include "cxx_check.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

using msgrpriv::Session;
using msgrpriv::SessionManagerRef;
using msgrpriv::SessionRef;

static const char *const GUID = "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F01}";

// A callable that counts its live instances, so that the test sees when it is destroyed.
struct Counted {
    static int live;
    std::string *trace;
    std::string tag;
    Counted(std::string *t, std::string g) : trace(t), tag(std::move(g)) { live++; }
    Counted(const Counted &o) : trace(o.trace), tag(o.tag) { live++; }
    Counted(Counted &&o) noexcept : trace(o.trace), tag(std::move(o.tag)) { live++; }
    Counted &operator=(const Counted &) = delete;
    ~Counted() { live--; }
    void operator()(SESSION_STATE previous) { *trace += tag + ":" + std::to_string(previous) + ";"; }
};
int Counted::live = 0;

static std::string *free_trace;
static void free_function(SessionRef s, MSGR_HRESULT hr, std::string_view data) {
    *free_trace += "free(" + std::to_string(s.state()) + "," + std::to_string(hr == SR_SESSION_CANCELLED_LOCAL) +
                   "," + std::string(data) + ");";
}

struct World {
    msgrpriv::Service service;
    msgrpriv::Client alice{service, "alice@example.com"};
    msgrpriv::Client bob{service, "bob@example.com"};
    msgrpriv::SessionManager ma{alice};
    msgrpriv::SessionManager mb{bob};
    World() {
        ma.register_application(GUID, "App", "https://example.com");
        pump(alice, bob);
    }
};

static void test_callable_kinds() {
    World w;
    std::string trace;
    free_trace = &trace;
    Session kept;
    // OnInvitation from a lambda taking the manager first; keeps the lent session.
    w.mb.on_invitation([&](SessionManagerRef m, SessionRef s, std::string_view data, bool &handled) {
        CHECK(m == w.mb);
        trace += "invitation(" + std::string(data) + ");";
        kept = s.keep();
        handled = true;
    });
    // A second one without the manager, which sees handled already true.
    w.mb.on_invitation([&](SessionRef, std::string_view, bool &handled) {
        trace += handled ? "handled;" : "unhandled;";
    });

    Session s = w.ma.create_session();
    s.set_application(GUID);
    {
        // Function object, copied into the registration.
        Counted c(&trace, "functor");
        s.on_state_changed(c);
    }
    CHECK_EQ(Counted::live, 1);
    // std::function.
    std::function<void(SessionRef, std::string_view)> f = [&](SessionRef r, std::string_view d) {
        CHECK(r == s);
        trace += "accepted(" + std::string(d) + ");";
    };
    s.on_accepted(f);
    // Mutable lambda with its own state; move-only lambda.
    s.on_ready_to_launch([&trace, n = 0]() mutable { trace += "ready" + std::to_string(++n) + ";"; });
    auto owned = std::make_unique<std::string>("ctx");
    s.on_context_data([&trace, owned = std::move(owned)](std::string_view d) {
        trace += *owned + "(" + std::string(d) + ");";
    });
    // Generic lambda: takes the object too.
    s.on_cancelled([&trace](auto &&...args) { trace += "cancelled/" + std::to_string(sizeof...(args)) + ";"; });
    // Function pointer.
    s.on_termination(&free_function);

    s.invite("bob@example.com", "hi");
    pump(w.alice, w.bob);
    CHECK_EQ(trace, std::string("functor:1;invitation(hi);handled;"));
    trace.clear();
    CHECK(kept);
    if (!kept) return;
    kept.accept("yes");
    pump(w.alice, w.bob);
    CHECK_EQ(trace, std::string("functor:2;accepted(yes);ready1;functor:3;"));
    trace.clear();
    kept.send_context_data("port 1");
    pump(w.alice, w.bob);
    kept.cancel(SR_SESSION_CANCELLED_REMOTE, "done");
    pump(w.alice, w.bob);
    CHECK_EQ(trace, std::string("ctx(port 1);functor:4;cancelled/2;free(5,0,done);"));

    // The registrations end with the last reference: every callable is destroyed once.
    CHECK_EQ(Counted::live, 1);
    s.reset();
    CHECK_EQ(Counted::live, 0);
}

static void test_destroy_exactly_once() {
    World w;
    std::string trace;
    Session s = w.ma.create_session();
    // unadvise destroys the callable at once.
    std::uint32_t cookie = s.on_state_changed(Counted(&trace, "a"));
    CHECK_EQ(Counted::live, 1);
    s.unadvise(cookie);
    CHECK_EQ(Counted::live, 0);
    EXPECT_THROW_CODE(E_INVALIDARG, s.unadvise(cookie));
    // A failed registration destroys it too (the destroy callback runs for failures).
    SessionRef stale(s.get());
    Session copy = s;
    s.reset();
    copy.reset();
    EXPECT_THROW_CODE(E_HANDLE, stale.on_state_changed(Counted(&trace, "b")));
    CHECK_EQ(Counted::live, 0);
    // A manager's registrations end with the manager.
    {
        msgrpriv::SessionManager m(w.alice);
        m.on_app_registered([c = Counted(&trace, "m")](std::string_view) {});
        m.on_app_registered([c = Counted(&trace, "m2")](SessionManagerRef, std::string_view) {});
        CHECK_EQ(Counted::live, 2);
    }
    CHECK_EQ(Counted::live, 0);
    // ... and with a manager released from its own callback.
    {
        msgrpriv::SessionManager m(w.alice);
        m.on_app_unregistered([&m, c = Counted(&trace, "self")](std::string_view) { m.reset(); });
        w.mb.unregister_application(GUID);
        CHECK_EQ(Counted::live, 1);
        pump(w.alice, w.bob);
        CHECK(!m);
        CHECK_EQ(Counted::live, 0);
    }
    CHECK(trace.empty());
}

static void test_registration_order() {
    World w;
    std::string trace;
    std::vector<std::uint32_t> cookies;
    for (int i = 0; i < 5; i++) {
        cookies.push_back(w.mb.on_app_unregistered([&trace, i](std::string_view guid) {
            CHECK_EQ(guid, std::string_view(GUID));
            trace += std::to_string(i);
        }));
    }
    w.mb.unadvise(cookies[2]);
    w.ma.unregister_application(GUID);
    pump(w.alice, w.bob);
    CHECK_EQ(trace, std::string("0134"));
}

// on_state_transition: both ends of each transition, with or without the session first.
static void test_state_transitions() {
    World w;
    std::string changed, transitions;
    w.mb.on_invitation([&](SessionRef s, std::string_view, bool &handled) {
        handled = true;
        s.accept();
    });
    Session s = w.ma.create_session();
    s.set_application(GUID);
    s.on_state_changed([&](SessionRef r, SESSION_STATE previous) {
        changed += std::to_string(previous) + ">" + std::to_string(r.state()) + ";";
    });
    s.on_state_transition([&](SESSION_STATE previous, SESSION_STATE current) {
        transitions += std::to_string(previous) + ">" + std::to_string(current) + ";";
    });
    s.on_state_transition([&](SessionRef r, SESSION_STATE, SESSION_STATE) { CHECK(r == s); });
    s.invite("bob@example.com");
    pump(w.alice, w.bob);
    const std::string connected = std::to_string(SS_CONNECTED);
    // The plain callback sees SS_CONNECTED twice; the transitions say where each one led.
    CHECK_EQ(changed, std::to_string(SS_READY) + ">" + std::to_string(SS_INVITATION) + ";" +
                          std::to_string(SS_INVITATION) + ">" + connected + ";" +
                          std::to_string(SS_ACCEPTED) + ">" + connected + ";");
    CHECK_EQ(transitions, std::to_string(SS_READY) + ">" + std::to_string(SS_INVITATION) + ";" +
                              std::to_string(SS_INVITATION) + ">" + std::to_string(SS_ACCEPTED) + ";" +
                              std::to_string(SS_ACCEPTED) + ">" + connected + ";");
}

int main() {
    test_callable_kinds();
    test_state_transitions();
    CHECK_EQ(Counted::live, 0);
    test_destroy_exactly_once();
    test_registration_order();
    return cxx_finish("test_cxx_callbacks");
}
