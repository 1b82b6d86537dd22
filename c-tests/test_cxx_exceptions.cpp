// test_cxx_exceptions.cpp: an exception thrown by a callback never crosses into the library:
// the trampoline catches it and Client::dispatch() rethrows it once the C dispatch returned,
// after the other events were delivered; nested dispatch calls keep their exceptions apart; a
// launcher that throws fails the launch; a thread-mode client's exceptions go to the handler
// of set_callback_exception_handler().
#include "cxx_check.hpp"

#include <unistd.h>

#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

using msgrpriv::Session;
using msgrpriv::SessionManagerRef;
using msgrpriv::SessionRef;

static const char *const GUID = "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F01}";
static const char *const GUID2 = "{6D3A5D5C-5F1E-4C38-9A52-3B8B0E6B8F02}";

struct Custom {
    int value;
};

struct World {
    msgrpriv::Service service;
    msgrpriv::Client alice{service, "alice@example.com"};
    msgrpriv::Client bob{service, "bob@example.com"};
    msgrpriv::SessionManager ma{alice};
    msgrpriv::SessionManager mb{bob};
};

// The exception comes out of the dispatch that ran the callback, with its type, after every
// other pending event was delivered.
static void test_rethrown_from_dispatch() {
    World w;
    std::string trace;
    w.mb.on_app_registered([&](std::string_view) {
        trace += "first;";
        throw std::runtime_error("boom");
    });
    w.mb.on_app_registered([&](std::string_view) { trace += "second;"; });
    w.ma.register_application(GUID, "App", "https://example.com");
    w.ma.register_application(GUID2, "App2", "https://example.com");
    try {
        w.bob.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (const std::runtime_error &e) {
        CHECK_EQ(std::string(e.what()), std::string("boom"));
    }
    // Both events were delivered to both callbacks; the second exception was dropped.
    CHECK_EQ(trace, std::string("first;second;first;second;"));
    CHECK_EQ(w.bob.dispatch(), 0u);

    // Any type, and the library stays usable.
    std::uint32_t custom = w.mb.on_app_unregistered([](std::string_view) { throw Custom{42}; });
    w.ma.unregister_application(GUID);
    try {
        w.bob.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (const Custom &c) {
        CHECK_EQ(c.value, 42);
    }
    w.mb.unadvise(custom);
    Session s = w.mb.create_session();
    CHECK_EQ(s.state(), SS_READY);
    // A msgrpriv::error thrown by library calls inside a callback comes out the same way.
    w.mb.on_app_unregistered([&](std::string_view) { s.invite("bob@example.com"); });
    w.ma.unregister_application(GUID2);
    try {
        w.bob.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (const msgrpriv::error &e) {
        CHECK_EQ(e.code(), SR_APP_NOT_SPECIFIED);
        CHECK_EQ(std::string(e.function()), std::string("msgr_session_invite"));
    }
}

// Exceptions in the invitation's out-parameter callbacks, session callbacks and manager
// callbacks: the flow goes on.
static void test_flow_goes_on() {
    World w;
    w.ma.register_application(GUID, "App", "https://example.com");
    Session invitee;
    w.mb.on_invitation([&](SessionRef s, std::string_view, bool &handled) {
        invitee = s.keep();
        handled = true;
        throw std::logic_error("after keeping");
    });
    Session s = w.ma.create_session();
    int changes = 0;
    s.on_state_changed([&](SESSION_STATE) {
        changes++;
        throw std::runtime_error("state");
    });
    s.set_application(GUID);
    s.invite("bob@example.com");
    int thrown = 0;
    for (int i = 0; i < 10; i++) {
        try {
            if (w.alice.dispatch() + w.bob.dispatch() == 0) break;
        } catch (const std::exception &) {
            thrown++;
        }
    }
    CHECK_EQ(thrown, 2);
    CHECK(invitee);
    if (!invitee) return;
    invitee.before_app_launch([](bool &enable) {
        enable = false;
        throw 7;
    });
    invitee.accept();
    try {
        w.bob.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (int v) {
        CHECK_EQ(v, 7);
    }
    try {
        w.alice.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (const std::runtime_error &) {
    }
    CHECK_EQ(s.state(), SS_CONNECTED);
    CHECK_EQ(invitee.state(), SS_CONNECTED);
    CHECK_EQ(changes, 3);
}

// A nested dispatch rethrows only what its own callbacks threw.
static void test_nested_dispatch() {
    World w;
    std::string trace;
    // Bob's callback throws; alice's callback runs bob's dispatch inside hers.
    w.mb.on_app_registered([&](std::string_view) {
        trace += "bob;";
        throw std::runtime_error("inner");
    });
    w.ma.on_app_registered([&](std::string_view) {
        trace += "alice:";
        try {
            w.bob.dispatch();
            trace += "no-throw;";
        } catch (const std::runtime_error &e) {
            trace += std::string("caught ") + e.what() + ";";
        }
    });
    w.ma.register_application(GUID, "App", "https://example.com");
    w.alice.dispatch();
    CHECK_EQ(trace, std::string("alice:bob;caught inner;"));

    // Not caught in the outer callback: the outer dispatch rethrows it.
    trace.clear();
    World w2;
    w2.mb.on_app_registered([&](std::string_view) { throw std::runtime_error("inner2"); });
    w2.ma.on_app_registered([&](std::string_view) { w2.bob.dispatch(); });
    w2.ma.register_application(GUID, "App", "https://example.com");
    try {
        w2.alice.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (const std::runtime_error &e) {
        CHECK_EQ(std::string(e.what()), std::string("inner2"));
    }

    // The outer dispatch's pending exception is not seen by an inner one.
    World w3;
    w3.ma.on_app_registered([&](std::string_view) { throw std::runtime_error("outer"); });
    w3.ma.on_app_registered([&](std::string_view) {
        try {
            w3.bob.dispatch();
            trace += "inner clean;";
        } catch (...) {
            trace += "inner threw;";
        }
    });
    w3.ma.register_application(GUID, "App", "https://example.com");
    try {
        w3.alice.dispatch();
        CHECK(!"dispatch did not rethrow");
    } catch (const std::runtime_error &e) {
        CHECK_EQ(std::string(e.what()), std::string("outer"));
    }
    CHECK_EQ(trace, std::string("inner clean;"));
}

// Launchers: a pid, an empty optional (failed launch), an exception (failed launch, rethrown).
static void test_launcher() {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || n > 250) {
        std::cout << "test_launcher: skipped (no short /proc/self/exe)" << std::endl;
        return;
    }
    self[n] = '\0';
    for (int mode = 0; mode < 3; mode++) {
        World w;
        w.ma.register_application(GUID, "App", "https://example.com", self);
        std::string launched;
        if (mode == 0) {
            w.bob.set_launcher([&](std::string_view path, std::string_view id, std::string_view app) {
                launched = std::string(path) + "|" + std::string(id) + "|" + std::string(app);
                return 4242;
            });
        } else if (mode == 1) {
            w.bob.set_launcher([](std::string_view, std::string_view, std::string_view) -> std::optional<unsigned> {
                return std::nullopt;
            });
        } else {
            w.bob.set_launcher([](std::string_view, std::string_view, std::string_view) -> int {
                throw std::runtime_error("cannot launch");
            });
        }
        Session invitee;
        w.mb.on_invitation([&](SessionRef s, std::string_view, bool &) { invitee = s.keep(); });
        Session s = w.ma.create_session();
        MSGR_HRESULT ended = S_OK;
        s.on_termination([&](MSGR_HRESULT hr, std::string_view) { ended = hr; });
        s.set_application(GUID);
        s.invite("bob@example.com");
        pump(w.alice, w.bob);
        CHECK(invitee);
        if (!invitee) return;
        invitee.accept();
        bool threw = false;
        try {
            pump(w.alice, w.bob);
        } catch (const std::runtime_error &e) {
            threw = true;
            CHECK_EQ(std::string(e.what()), std::string("cannot launch"));
        }
        pump(w.alice, w.bob);
        CHECK_EQ(threw, mode == 2);
        if (mode == 0) {
            CHECK_EQ(launched, std::string(self) + "|" + s.session_id() + "|" + GUID);
            CHECK_EQ(invitee.state(), SS_CONNECTED);
            CHECK_EQ(w.mb.launching_session(4242).session_id(), s.session_id());
            EXPECT_THROW_CODE(E_FAIL, w.mb.launching_session(4243));
            w.bob.reset_launcher();
        } else {
            CHECK_EQ(invitee.state(), SS_TERMINATED);
            CHECK_EQ(ended, SR_APPLICATION_LAUNCH_FAILED);
        }
    }
}

// Thread-mode clients: the exception goes to the handler, on the client's thread.
static std::mutex handler_mutex;
static std::condition_variable handler_cv;
static std::string handled_what;

static void handler(std::exception_ptr e) {
    std::string what;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception &x) {
        what = x.what();
    } catch (...) {
        what = "?";
    }
    std::lock_guard<std::mutex> lock(handler_mutex);
    handled_what += what + ";";
    handler_cv.notify_all();
}

static void test_thread_mode_handler() {
    msgrpriv::callback_exception_handler previous = msgrpriv::set_callback_exception_handler(&handler);
    CHECK(previous == nullptr);
    {
        msgrpriv::Service service;
        msgrpriv::Client carol(service, "carol@example.com", msgrpriv::DispatchMode::thread);
        msgrpriv::Client dave(service, "dave@example.com");
        msgrpriv::SessionManager mc(carol), md(dave);
        EXPECT_THROW_CODE(E_ILLEGAL_METHOD_CALL, carol.dispatch());
        mc.on_app_registered([](std::string_view guid) { throw std::runtime_error(std::string(guid)); });
        md.register_application(GUID, "App", "https://example.com");
        std::unique_lock<std::mutex> lock(handler_mutex);
        bool got = handler_cv.wait_for(lock, std::chrono::seconds(10 * cxx_slowdown()),
                                       [] { return !handled_what.empty(); });
        CHECK(got);
        CHECK_EQ(handled_what, std::string(GUID) + ";");
    }
    CHECK(msgrpriv::set_callback_exception_handler(previous) == &handler);
}

int main() {
    test_rethrown_from_dispatch();
    test_flow_goes_on();
    test_nested_dispatch();
    test_launcher();
    test_thread_mode_handler();
    return cxx_finish("test_cxx_exceptions");
}
