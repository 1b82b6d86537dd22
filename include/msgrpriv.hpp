/**
 * @file msgrpriv.hpp
 *
 * msgrpriv.hpp: a header-only C++17 layer over msgrpriv.h (hand-written; msgrpriv.h is
 * generated). Same objects, same rules, same events; what C++ adds:
 *
 *  - RAII handles. Service, Client and SessionManager own their handle and are move-only;
 *    Session is reference counted like IMsgrSession (copy = msgr_session_add_ref, destruction
 *    = msgr_session_release). SessionRef and SessionManagerRef are non-owning views: what a
 *    callback receives (valid during the call; SessionRef::keep() takes a reference).
 *    Every owning type has get() (the C handle), detach() (gives it up) and adopt().
 *  - Errors are exceptions: a failing call throws msgrpriv::error, which carries the code
 *    (code()), its text from msgr_result_text() (text()) and the C function (function()).
 *    Success codes (S_OK, S_FALSE) do not throw; the few calls where S_FALSE means something
 *    say so in their return value.
 *  - Callbacks are any callable: lambdas (also mutable or move-only ones), function pointers,
 *    function objects, std::function. The callable is moved to the heap and is the C
 *    registration's user data; the destroy callback deletes it, exactly once, when the
 *    registration ends (unadvise, last release of its object, or a failed registration).
 *    Each takes the event's arguments, optionally preceded by the object that fired it
 *    (SessionManagerRef or SessionRef): `[](SESSION_STATE prev) {...}` and
 *    `[](msgrpriv::SessionRef s, SESSION_STATE prev) {...}` both fit on_state_changed.
 *    Strings are std::string_view, valid during the call; a NULL string of the C API (the
 *    optional app data) is an empty view whose data() is nullptr.
 *  - Exceptions never cross into the library. A callback that throws is caught by its
 *    trampoline; the exception is stored and rethrown by the Client::dispatch() call that ran
 *    the callback, once the C dispatch has returned (the events after it are still delivered;
 *    when several callbacks throw during one dispatch, the first exception is rethrown and the
 *    others are dropped). A nested dispatch() (from a callback) rethrows only the exceptions of
 *    the callbacks it ran itself. A callback that throws outside a Client::dispatch() call on
 *    its thread (thread-mode clients, or a plain msgr_client_dispatch()) goes to the handler
 *    of set_callback_exception_handler(); without one, std::terminate() is called, as for an
 *    exception leaving a std::thread.
 *  - String getters wrap the caller-buffer protocol (E_INSUFFICIENT_BUFFER and *needed) and
 *    return std::string.
 *
 * Threads: as in msgrpriv.h. The wrapper objects themselves are like std::shared_ptr
 * instances: use one object from one thread at a time (distinct objects, even of the same
 * handle, may be used concurrently).
 *
 * Do not capture an owning Session (or SessionManager) in a callback registered on that same
 * object: the registration would keep its own object alive (a reference cycle). Use the
 * SessionRef the callback receives.
 *
 * The mapping from Msgrpriv.h (COM) to msgr_ functions and to these classes is in
 * docs/PORTING.md.
 */
#ifndef MSGRPRIV_HPP
#define MSGRPRIV_HPP

#pragma once

#if !defined(__cplusplus) || (__cplusplus < 201703L && (!defined(_MSVC_LANG) || _MSVC_LANG < 201703L))
#error "msgrpriv.hpp needs C++17 or later"
#endif

#include "msgrpriv.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

/** The C++17 layer over msgrpriv.h: RAII handles, exceptions, any callable as a callback. */
namespace msgrpriv {

/**
 * The library's version (msgr_version()).
 * @return "MAJOR.MINOR.PATCH": a static string, never nullptr.
 */
inline const char *version() noexcept { return msgr_version(); }

/**
 * The static English text of a result code (msgr_result_text()).
 * @param hr  Any value; codes the library does not define give "Unknown result code.".
 * @return A static string, never nullptr.
 */
inline const char *result_text(MSGR_HRESULT hr) noexcept { return msgr_result_text(hr); }

/**
 * The exception every failing call throws: the result code, its text (msgr_result_text())
 * and the C function that returned it. what() reads "msgr_session_invite: 0x81000613 A user
 * cannot invite themselves."
 */
class error : public std::runtime_error {
public:
    /**
     * An error for `code` returned by the C function named `function`, just now on this
     * thread: what() is that call's msgr_last_error() text, which names the argument and
     * the form expected ("msgr_session_invite: ... (E_INVALIDARG)").
     * @param code      The failure code.
     * @param function  The C function's name: a static string (not copied), or nullptr.
     */
    error(MSGR_HRESULT code, const char *function)
        : std::runtime_error(describe(code, function)), code_(code), function_(function) {}

    /**
     * The result code.
     * @return The failure code (negative).
     */
    MSGR_HRESULT code() const noexcept { return code_; }
    /**
     * The code's text.
     * @return msgr_result_text() of code(): a static string.
     */
    const char *text() const noexcept { return msgr_result_text(code_); }
    /**
     * The C function that returned the code.
     * @return Its name, e.g. "msgr_session_invite" (the static string given to the constructor).
     */
    const char *function() const noexcept { return function_; }

private:
    static std::string describe(MSGR_HRESULT code, const char *function) {
        const std::string name = function ? function : "msgrpriv";
        const std::string last = msgr_last_error();
        if (function && last.compare(0, name.size() + 1, name + ":") == 0) {
            return last;
        }
        char hex[16];
        std::snprintf(hex, sizeof hex, "0x%08lX",
                      static_cast<unsigned long>(static_cast<std::uint32_t>(code)));
        return name + ": " + hex + " " + msgr_result_text(code);
    }

    MSGR_HRESULT code_;
    const char *function_;
};

/**
 * Throws msgrpriv::error when `hr` is a failure code.
 * @param hr        A result code.
 * @param function  The name of the C function that returned it, for the error (a static
 *                  string).
 * @return `hr` when it is a success code (S_OK, S_FALSE).
 */
inline MSGR_HRESULT check(MSGR_HRESULT hr, const char *function) {
    if (hr < 0) {
        throw error(hr, function);
    }
    return hr;
}

/**
 * A string argument: a `const char *` (NUL-terminated UTF-8, or nullptr where the C function
 * accepts NULL) or a `const std::string &`. Holds no copy: it lives for the call only.
 */
class string_arg {
public:
    /**
     * A C string.
     * @param s  NUL-terminated UTF-8; nullptr only where the function allows NULL (E_POINTER
     *           otherwise). Not copied: it must live for the call.
     */
    string_arg(const char *s) noexcept : p_(s) {}
    /**
     * A std::string.
     * @param s  The string (its c_str() is used, not copied): it must live for the call.
     */
    string_arg(const std::string &s) noexcept : p_(s.c_str()) {}
    /** No string (NULL), for the optional app data. */
    string_arg(std::nullptr_t) noexcept : p_(nullptr) {}
    /**
     * The C string.
     * @return The string given, or nullptr.
     */
    const char *c_str() const noexcept { return p_; }

private:
    const char *p_;
};

/** MSGR_INFINITE as a dispatch timeout: wait for ever. */
inline constexpr std::chrono::milliseconds infinite{MSGR_INFINITE};

/** How a client's events reach its callbacks (MSGR_DISPATCH_MODE). */
enum class DispatchMode : std::int32_t {
    /** The application calls Client::dispatch() (and may poll Client::event_fd()). */
    manual = MSGR_DISPATCH_MANUAL,
    /** A thread owned by the client delivers the events. */
    thread = MSGR_DISPATCH_THREAD,
};

/**
 * Receives the exceptions that callbacks throw outside a Client::dispatch() call on their
 * thread (thread-mode clients; manual clients dispatched with the C function). Must not
 * throw. Called on the dispatching thread.
 */
using callback_exception_handler = void (*)(std::exception_ptr);

/** One application of SessionManagerRef::application_list(). */
struct Application {
    std::string guid; /**< `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, uppercase. */
    std::string name; /**< Its name. */
    std::string url;  /**< Its URL. */
    std::string path; /**< Its executable, "" when none. */
};

/** Options for a Service (msgr_service_options). */
struct ServiceOptions {
    /** How long an invitation may go unanswered; 0: the default, two minutes. */
    std::chrono::milliseconds invitation_timeout{0};
    /** true: time moves only through Service::advance_clock() (tests). */
    bool manual_clock = false;
    /** The registry file (JSON, shared between processes); "": the registry is in memory. */
    std::string registry_path;
};

/** How an XMPP service protects its connections (msgr_service_options.tls). */
enum class Tls : std::int32_t {
    /** STARTTLS, required (the default); the server's certificate must verify
     *  (SR_NETWORK_CONFIG_FAILURE at sign-in otherwise). */
    starttls = MSGR_TLS_STARTTLS,
    /** Direct TLS from the first byte (XEP-0368), certificate verified the same way. */
    direct = MSGR_TLS_DIRECT,
    /** Plain TCP: a loopback IP literal `server_host` only (E_INVALIDARG otherwise). */
    plain = MSGR_TLS_PLAIN,
};

/** Options of an XMPP service (MSGR_TRANSPORT_XMPP; docs/xmpp.md). */
struct XmppOptions {
    /** The server's host: an IP literal or a host name (resolved at each sign-in). */
    std::string server_host = "127.0.0.1";
    /** The server's client port. */
    std::uint16_t server_port = 5222;
    /** How the connection is protected; STARTTLS by default. */
    Tls tls = Tls::starttls;
    /** A PEM file of the certificates to trust instead of the system's store; "": the
     *  system's store. Unreadable or holding no certificate: E_INVALIDARG. */
    std::string ca_file;
    /** The XMPP domain: the certificate's name and the stream's `to`; completes sign-in
     *  names without '@' and refuses names at other domains (E_INVALIDARG). "": each sign-in
     *  name's own domain. */
    std::string domain;
    /** Gives the password of a sign-in name (a bare JID), or nothing to refuse the sign-in
     *  (SR_AUTHENTICATION_FAILED). Called on the thread that signs in; must not throw (an
     *  exception refuses the sign-in). */
    std::function<std::optional<std::string>(std::string_view)> credentials;
    /** The resource each client binds; "": "msgrpriv". */
    std::string resource;
    /** How long a sign-in may take; 0: ten seconds. */
    std::chrono::milliseconds connect_timeout{0};
    /** How long a step waits for its acknowledgement; 0: ten seconds. */
    std::chrono::milliseconds request_timeout{0};
    /** How long an invitation may go unanswered; 0: two minutes. */
    std::chrono::milliseconds invitation_timeout{0};
    /** How long the connection may be quiet before the client pings the server; 0: 30 s. */
    std::chrono::milliseconds keepalive{0};
    /** The longest pause between attempts to sign in again after a lost connection; 0: 30 s;
     *  msgrpriv::infinite: never (the client stays signed out). */
    std::chrono::milliseconds reconnect_max{0};
    /** Take invitations from users who are not among the invitee's contacts (refused by
     *  default: the inviter ends declined with E_ACCESSDENIED). */
    bool allow_strangers = false;
    /** Invitations one sender may send to one client in a minute (more end declined with
     *  E_NOT_ENOUGH_QUOTA); 0: 30; MSGR_INFINITE: no limit. */
    std::uint32_t invitations_per_minute = 0;
    /** The registry file; "": in memory. */
    std::string registry_path;
};

/** Whether a client is signed in (Client::connection_state()). */
enum class ConnectionState : std::int32_t {
    /** Signed out: by the application, or by a lost connection that is not restored. */
    signed_out = MSGR_SIGNED_OUT,
    /** Signed in. */
    signed_in = MSGR_SIGNED_IN,
    /** Signed out by a lost connection; the service is signing the client in again. */
    reconnecting = MSGR_RECONNECTING,
};

class Session;
class SessionManager;
class Client;

namespace detail {

// ---- exceptions thrown by callbacks ----

struct thread_state {
    int depth = 0;                // Client::dispatch() calls running on this thread
    std::exception_ptr pending;   // the first exception a callback threw in the innermost one
};

inline thread_state &this_thread_state() noexcept {
    static thread_local thread_state state;
    return state;
}

inline std::atomic<callback_exception_handler> &handler_slot() noexcept {
    static std::atomic<callback_exception_handler> slot{nullptr};
    return slot;
}

// Called from a trampoline's catch block: keeps the exception for the running dispatch(), or
// hands it to the handler.
inline void report(std::exception_ptr e) noexcept {
    thread_state &t = this_thread_state();
    if (t.depth > 0) {
        if (!t.pending) {
            t.pending = std::move(e);
        }
        return;
    }
    if (callback_exception_handler h = handler_slot().load()) {
        try {
            h(std::move(e));
        } catch (...) {
            std::terminate();
        }
        return;
    }
    std::terminate();
}

// Runs user code from a trampoline; nothing escapes.
template <class Body>
inline void guarded(Body &&body) noexcept {
    try {
        body();
    } catch (...) {
        report(std::current_exception());
    }
}

// One Client::dispatch() call: collects the exceptions of the callbacks it runs, apart from
// those of the dispatch() calls around it.
class dispatch_scope {
public:
    dispatch_scope() noexcept : outer_(std::exchange(this_thread_state().pending, nullptr)) {
        ++this_thread_state().depth;
    }
    dispatch_scope(const dispatch_scope &) = delete;
    dispatch_scope &operator=(const dispatch_scope &) = delete;
    ~dispatch_scope() {
        if (active_) {
            (void)leave();
        }
    }
    // Ends the scope; returns the exception its callbacks threw, if any.
    std::exception_ptr leave() noexcept {
        active_ = false;
        thread_state &t = this_thread_state();
        --t.depth;
        return std::exchange(t.pending, std::move(outer_));
    }

private:
    std::exception_ptr outer_;
    bool active_ = true;
};

// ---- callables ----

template <class F>
struct holder {
    F f;
};

template <class F>
inline void destroy_holder(void *p) noexcept {
    delete static_cast<holder<F> *>(p);
}

template <class F>
inline F &callable(void *user_data) noexcept {
    return static_cast<holder<F> *>(user_data)->f;
}

// Calls f(obj, args...) when it accepts that, else f(args...).
template <class F, class Obj, class... Args>
inline void call(F &f, Obj obj, Args &&...args) {
    if constexpr (std::is_invocable_v<F &, Obj, Args &&...>) {
        std::invoke(f, obj, std::forward<Args>(args)...);
    } else {
        static_assert(std::is_invocable_v<F &, Args &&...>,
                      "this callable does not take the event's arguments (see msgrpriv.hpp)");
        std::invoke(f, std::forward<Args>(args)...);
    }
}

inline std::string_view view(const char *s) noexcept {
    return s ? std::string_view(s) : std::string_view();
}

template <class T>
struct nondeduced {
    using type = T;
};

// Registers `f` through the C registration function `reg`: the callable goes to the heap as
// the user data, freed by the destroy callback (which also runs when `reg` fails).
template <class Handle, class CCallback, class F>
inline std::uint32_t advise(MSGR_HRESULT (*reg)(Handle *, CCallback, void *, msgr_destroy_callback,
                                                std::uint32_t *),
                            Handle *h, typename nondeduced<CCallback>::type trampoline, F &&f,
                            const char *name) {
    using FD = std::decay_t<F>;
    auto *p = new holder<FD>{std::forward<F>(f)};
    std::uint32_t cookie = 0;
    check(reg(h, trampoline, p, &destroy_holder<FD>, &cookie), name);
    return cookie;
}

// The caller-buffer protocol: grows the buffer to *needed until the string fits.
template <class Getter>
inline std::string get_string(Getter &&getter, const char *name) {
    std::string s(64, '\0');
    for (;;) {
        std::size_t needed = 0;
        MSGR_HRESULT hr = getter(&s[0], s.size(), &needed);
        if (hr == E_INSUFFICIENT_BUFFER && needed > s.size()) {
            s.assign(needed, '\0');
            continue;
        }
        check(hr, name);
        s.resize(std::char_traits<char>::length(s.c_str()));
        return s;
    }
}

inline std::uint32_t timeout_ms(std::chrono::milliseconds t) noexcept {
    if (t.count() <= 0) {
        return 0;
    }
    if (t.count() >= static_cast<std::chrono::milliseconds::rep>(MSGR_INFINITE)) {
        return static_cast<std::uint32_t>(MSGR_INFINITE);
    }
    return static_cast<std::uint32_t>(t.count());
}

}  // namespace detail

/**
 * Sets the handler for exceptions thrown by callbacks outside a Client::dispatch() call (see
 * the top of this file); nullptr restores the default, std::terminate(). Returns the previous
 * handler. Process-wide; may be called from any thread.
 * @param h  The new handler (must not throw), or nullptr for the default.
 * @return The previous handler (nullptr: the default).
 */
inline callback_exception_handler set_callback_exception_handler(callback_exception_handler h) noexcept {
    return detail::handler_slot().exchange(h);
}

/**
 * The Lock and Key response to a challenge: MD5 of the challenge followed by the key, as 32
 * lowercase hex digits (msgr_lock_compute_response()).
 * @param challenge  The challenge of OnLockChallenge: UTF-8, at most 256 characters.
 * @param key        The application's key: UTF-8, at most 256 characters.
 * @return The response, for SessionManagerRef::send_response().
 */
inline std::string compute_lock_response(string_arg challenge, string_arg key) {
    char out[MSGR_LOCK_RESPONSE_SIZE];
    check(msgr_lock_compute_response(challenge.c_str(), key.c_str(), out),
          "msgr_lock_compute_response");
    return std::string(out);
}

/** What a trace function receives: the message's level (an MSGR_TRACE_LEVEL) and its text. */
using trace_function = std::function<void(int level, std::string_view message)>;

/**
 * Sets the process's trace (msgr_set_trace()): `f` receives every message up to `level`;
 * an empty `f` writes them to stderr; MSGR_TRACE_OFF turns the trace off. `f` runs on the
 * thread that did the work, possibly while the library holds locks of its own: it must not
 * call msgrpriv, and should return quickly; an exception it throws is dropped.
 * @param level  An MSGR_TRACE_LEVEL.
 * @param f      The trace function, kept until the trace is set again.
 */
inline void set_trace(MSGR_TRACE_LEVEL level, trace_function f = {}) {
    if (!f) {
        check(msgr_set_trace(level, nullptr, nullptr, nullptr), "msgr_set_trace");
        return;
    }
    auto *held = new trace_function(std::move(f));
    check(msgr_set_trace(
              level,
              [](void *ud, int32_t l, const char *message) {
                  try {
                      (*static_cast<trace_function *>(ud))(l, message);
                  } catch (...) {
                  }
              },
              held, [](void *ud) { delete static_cast<trace_function *>(ud); }),
          "msgr_set_trace");
}

// ---------------------------------------------------------------------------------------------
// Session (IMsgrSession, DMsgrSessionEvents)
// ---------------------------------------------------------------------------------------------

/**
 * A non-owning view of a session handle: every IMsgrSession member and event registration.
 * Callbacks receive one, valid during the call; keep() makes an owning Session of it.
 * Copying a SessionRef does not add a reference.
 */
class SessionRef {
public:
    /** No session. */
    SessionRef() noexcept = default;
    /**
     * A view of `h` (no reference is taken).
     * @param h  A session handle, or nullptr for an empty view; the view does not keep it alive.
     */
    explicit SessionRef(msgr_session *h) noexcept : h_(h) {}

    /**
     * The C handle.
     * @return The handle, nullptr when empty.
     */
    msgr_session *get() const noexcept { return h_; }
    /** True when not empty. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** Same handle. */
    friend bool operator==(const SessionRef &a, const SessionRef &b) noexcept { return a.h_ == b.h_; }
    /** Different handles. */
    friend bool operator!=(const SessionRef &a, const SessionRef &b) noexcept { return a.h_ != b.h_; }

    /**
     * An owning Session with one more reference (msgr_session_add_ref): keeps a lent session.
     * @return The new owner (empty when this view is empty); throws E_HANDLE for a stale handle.
     */
    Session keep() const;

    /**
     * State (msgr_session_get_state).
     * @return The state.
     */
    SESSION_STATE state() const {
        SESSION_STATE s = SS_UNKNOWN;
        check(msgr_session_get_state(h_, &s), "msgr_session_get_state");
        return s;
    }
    /**
     * Flags: SF_INVITER or SF_INVITEE bits (msgr_session_get_flags).
     * @return SF_INVITER or SF_INVITEE.
     */
    std::uint32_t flags() const {
        std::uint32_t f = 0;
        check(msgr_session_get_flags(h_, &f), "msgr_session_get_flags");
        return f;
    }
    /**
     * SessionID, `{XXXXXXXX-...}`, the same on both sides (msgr_session_get_session_id).
     * @return The SessionID.
     */
    std::string session_id() const {
        return get_string(msgr_session_get_session_id, "msgr_session_get_session_id");
    }
    /**
     * Application: the GUID; throws SR_APP_NOT_SPECIFIED when none is set.
     * @return The GUID, braced.
     */
    std::string application() const {
        return get_string(msgr_session_get_application, "msgr_session_get_application");
    }
    /**
     * Sets Application (msgr_session_set_application), in SS_READY.
     * @param guid  The GUID of an application registered here, braced, hex digits in either case.
     */
    void set_application(string_arg guid) const {
        check(msgr_session_set_application(h_, guid.c_str()), "msgr_session_set_application");
    }
    /**
     * ApplicationName, from this side's registry ("" when not registered here).
     * @return The name ("" when not registered here).
     */
    std::string application_name() const {
        return get_string(msgr_session_get_application_name, "msgr_session_get_application_name");
    }
    /**
     * ApplicationURL, from this side's registry.
     * @return The URL.
     */
    std::string application_url() const {
        return get_string(msgr_session_get_application_url, "msgr_session_get_application_url");
    }
    /**
     * ContextData: the last application data received ("" when none).
     * @return The data ("" when none).
     */
    std::string context_data() const {
        return get_string(msgr_session_get_context_data, "msgr_session_get_context_data");
    }
    /**
     * LocalAddress ("" until set).
     * @return The address ("" until set).
     */
    std::string local_address() const {
        return get_string(msgr_session_get_local_address, "msgr_session_get_local_address");
    }
    /**
     * Sets LocalAddress (msgr_session_set_local_address).
     * @param address  UTF-8, at most 30 characters; handed to the other side with Invite or Accept.
     */
    void set_local_address(string_arg address) const {
        check(msgr_session_set_local_address(h_, address.c_str()), "msgr_session_set_local_address");
    }
    /**
     * RemoteAddress: the other side's LocalAddress; "" before SS_CONNECTED (S_FALSE).
     * @return The other side's address ("" before SS_CONNECTED).
     */
    std::string remote_address() const {
        return get_string(msgr_session_get_remote_address, "msgr_session_get_remote_address");
    }
    /**
     * User: the other party's sign-in name; throws SR_NO_USER_INVITED before Invite.
     * @return The other party's sign-in name.
     */
    std::string user() const { return get_string(msgr_session_get_user, "msgr_session_get_user"); }

    /**
     * Invite(user, app data) (msgr_session_invite).
     * @param user      The sign-in name to invite (not this session's own user).
     * @param app_data  nullptr or at most 512 bytes of UTF-8, handed to the invitee's OnInvitation.
     */
    void invite(string_arg user, string_arg app_data = nullptr) const {
        check(msgr_session_invite(h_, user.c_str(), app_data.c_str()), "msgr_session_invite");
    }
    /**
     * Accept(app data), invitee only (msgr_session_accept).
     * @param app_data  nullptr or at most 512 bytes of UTF-8, handed to the inviter's OnAccepted.
     */
    void accept(string_arg app_data = nullptr) const {
        check(msgr_session_accept(h_, app_data.c_str()), "msgr_session_accept");
    }
    /**
     * Decline(app data), invitee only (msgr_session_decline).
     * @param app_data  nullptr or at most 512 bytes of UTF-8, handed to the inviter's OnDeclined.
     */
    void decline(string_arg app_data = nullptr) const {
        check(msgr_session_decline(h_, app_data.c_str()), "msgr_session_decline");
    }
    /**
     * Cancel(hr, app data), either side (msgr_session_cancel).
     * @param hr        The code the other side's OnTermination receives (any value).
     * @param app_data  nullptr or at most 512 bytes of UTF-8, handed to the other side's
     *                  OnCancelled.
     */
    void cancel(MSGR_HRESULT hr, string_arg app_data = nullptr) const {
        check(msgr_session_cancel(h_, hr, app_data.c_str()), "msgr_session_cancel");
    }
    /**
     * SendContextData(data), five times per side (msgr_session_send_context_data).
     * @param data  UTF-8, at most 300 characters (SR_CONTEXT_DATA_OVER_LIMIT otherwise).
     */
    void send_context_data(string_arg data) const {
        check(msgr_session_send_context_data(h_, data.c_str()), "msgr_session_send_context_data");
    }
    /**
     * Ends a registration made by one of the session's registration functions
     * (msgr_session_unadvise).
     * @param cookie  The cookie the registration function returned.
     */
    void unadvise(std::uint32_t cookie) const {
        check(msgr_session_unadvise(h_, cookie), "msgr_session_unadvise");
    }

    /**
     * BeforeAppLaunch: `f([SessionRef,] bool &enable)`; set enable to false to prevent the
     * launch.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t before_app_launch(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_before_app_launch, h_, &t_before_app_launch<FD>,
                              std::forward<F>(f), "msgr_session_before_app_launch");
    }
    /**
     * OnAccepted: `f([SessionRef,] std::string_view app_data)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_accepted(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_accepted, h_, &t_app_data<FD>, std::forward<F>(f),
                              "msgr_session_on_accepted");
    }
    /**
     * OnAppNotPresent: `f([SessionRef,] std::string_view name, std::string_view url)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_app_not_present(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_app_not_present, h_, &t_app_not_present<FD>,
                              std::forward<F>(f), "msgr_session_on_app_not_present");
    }
    /**
     * OnCancelled: `f([SessionRef,] std::string_view app_data)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_cancelled(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_cancelled, h_, &t_app_data<FD>, std::forward<F>(f),
                              "msgr_session_on_cancelled");
    }
    /**
     * OnContextData: `f([SessionRef,] std::string_view data)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_context_data(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_context_data, h_, &t_app_data<FD>,
                              std::forward<F>(f), "msgr_session_on_context_data");
    }
    /**
     * OnDeclined: `f([SessionRef,] std::string_view app_data)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_declined(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_declined, h_, &t_app_data<FD>, std::forward<F>(f),
                              "msgr_session_on_declined");
    }
    /**
     * OnReadyToLaunch: `f([SessionRef])`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_ready_to_launch(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_ready_to_launch, h_, &t_no_args<FD>,
                              std::forward<F>(f), "msgr_session_on_ready_to_launch");
    }
    /**
     * OnSendError: `f([SessionRef,] MSGR_HRESULT hr)`, hr an SR_*_SEND_FAILURE.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_send_error(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_send_error, h_, &t_send_error<FD>,
                              std::forward<F>(f), "msgr_session_on_send_error");
    }
    /**
     * OnStateChanged: `f([SessionRef,] SESSION_STATE previous)`. state() is the state when
     * `f` runs, possibly several transitions later (an inviter sees SS_INVITATION and
     * then SS_ACCEPTED as `previous`, both with state() SS_CONNECTED): to react once per
     * transition, use on_state_transition().
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_state_changed(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_state_changed, h_, &t_state_changed<FD>,
                              std::forward<F>(f), "msgr_session_on_state_changed");
    }
    /**
     * OnStateChanged with both ends of each transition:
     * `f([SessionRef,] SESSION_STATE previous, SESSION_STATE current)`, `current` the
     * state this one transition led to.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_state_transition(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_state_transition, h_, &t_state_transition<FD>,
                              std::forward<F>(f), "msgr_session_on_state_transition");
    }
    /**
     * OnTermination: `f([SessionRef,] MSGR_HRESULT hr, std::string_view app_data)`; the
     * session's last event on this side.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_termination(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_on_termination, h_, &t_termination<FD>,
                              std::forward<F>(f), "msgr_session_on_termination");
    }

protected:
    /** The handle (nullptr when empty): viewed by SessionRef, one reference owned by Session. */
    msgr_session *h_ = nullptr;

private:
    template <class Getter>
    std::string get_string(Getter getter, const char *name) const {
        msgr_session *h = h_;
        return detail::get_string(
            [h, getter](char *buf, std::size_t len, std::size_t *needed) {
                return getter(h, buf, len, needed);
            },
            name);
    }

    template <class F>
    static void t_before_app_launch(void *ud, msgr_session *s, bool *enable) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionRef(s), *enable); });
    }
    template <class F>
    static void t_app_data(void *ud, msgr_session *s, const char *data) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionRef(s), detail::view(data)); });
    }
    template <class F>
    static void t_app_not_present(void *ud, msgr_session *s, const char *name, const char *url) noexcept {
        detail::guarded([&] {
            detail::call(detail::callable<F>(ud), SessionRef(s), detail::view(name), detail::view(url));
        });
    }
    template <class F>
    static void t_no_args(void *ud, msgr_session *s) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionRef(s)); });
    }
    template <class F>
    static void t_send_error(void *ud, msgr_session *s, MSGR_HRESULT hr) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionRef(s), hr); });
    }
    template <class F>
    static void t_state_changed(void *ud, msgr_session *s, SESSION_STATE previous) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionRef(s), previous); });
    }
    template <class F>
    static void t_state_transition(void *ud, msgr_session *s, SESSION_STATE previous,
                                   SESSION_STATE current) noexcept {
        detail::guarded(
            [&] { detail::call(detail::callable<F>(ud), SessionRef(s), previous, current); });
    }
    template <class F>
    static void t_termination(void *ud, msgr_session *s, MSGR_HRESULT hr, const char *data) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionRef(s), hr, detail::view(data)); });
    }
};

/**
 * A session with one reference of its own (IMsgrSession's AddRef/Release): copying adds a
 * reference, destruction releases it. At the last release the handle becomes stale and its
 * registrations end; the session itself goes on until it ends (msgr_session_release()).
 */
class Session : public SessionRef {
public:
    /** No session. */
    Session() noexcept = default;
    /**
     * Takes over one reference the caller owns (e.g. from msgr_session_manager_create_session).
     * @param h  The handle, or nullptr for an empty Session.
     * @return The Session that owns that reference.
     */
    static Session adopt(msgr_session *h) noexcept {
        Session s;
        s.h_ = h;
        return s;
    }
    /**
     * Adds a reference to `ref`'s session (throws E_HANDLE for a stale handle).
     * @param ref  The session to keep; empty gives an empty Session.
     */
    explicit Session(SessionRef ref) : SessionRef(ref.get()) {
        if (h_) {
            check(msgr_session_add_ref(h_), "msgr_session_add_ref");
        }
    }
    /**
     * Adds a reference.
     * @param other  The session to share.
     */
    Session(const Session &other) : Session(static_cast<const SessionRef &>(other)) {}
    /**
     * Takes other's reference.
     * @param other  Becomes empty.
     */
    Session(Session &&other) noexcept : SessionRef(std::exchange(other.h_, nullptr)) {}
    /**
     * Releases the current reference, adds one to other's session.
     * @param other  The session to share.
     * @return `*this`.
     */
    Session &operator=(const Session &other) {
        Session copy(other);
        swap(copy);
        return *this;
    }
    /**
     * Releases the current reference, takes other's.
     * @param other  Becomes empty.
     * @return `*this`.
     */
    Session &operator=(Session &&other) noexcept {
        Session moved(std::move(other));
        swap(moved);
        return *this;
    }
    /** Releases the reference (msgr_session_release). */
    ~Session() { reset(); }

    /** Releases the reference now; the object becomes empty. */
    void reset() noexcept {
        if (msgr_session *h = std::exchange(h_, nullptr)) {
            (void)msgr_session_release(h);
        }
    }
    /**
     * Gives the reference up to the caller; the object becomes empty.
     * @return The handle, whose reference the caller must release (msgr_session_release); nullptr
     *         when empty.
     */
    msgr_session *detach() noexcept { return std::exchange(h_, nullptr); }
    /**
     * Exchanges the handles.
     * @param other  The session to exchange with.
     */
    void swap(Session &other) noexcept { std::swap(h_, other.h_); }
};

inline Session SessionRef::keep() const { return Session(*this); }

// ---------------------------------------------------------------------------------------------
// Session manager (IMsgrSessionManager, IMsgrLock, DMsgrSessionManagerEvents)
// ---------------------------------------------------------------------------------------------

/**
 * A non-owning view of a session manager handle: every IMsgrSessionManager and IMsgrLock
 * member and event registration. Manager callbacks receive one, valid during the call.
 */
class SessionManagerRef {
public:
    /** No manager. */
    SessionManagerRef() noexcept = default;
    /**
     * A view of `h`.
     * @param h  A manager handle, or nullptr for an empty view; the view does not keep it alive.
     */
    explicit SessionManagerRef(msgr_session_manager *h) noexcept : h_(h) {}

    /**
     * The C handle.
     * @return The handle, nullptr when empty.
     */
    msgr_session_manager *get() const noexcept { return h_; }
    /** True when not empty. */
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /** Same handle. */
    friend bool operator==(const SessionManagerRef &a, const SessionManagerRef &b) noexcept { return a.h_ == b.h_; }
    /** Different handles. */
    friend bool operator!=(const SessionManagerRef &a, const SessionManagerRef &b) noexcept { return a.h_ != b.h_; }

    /**
     * CreateSession: a new session in SS_READY (msgr_session_manager_create_session).
     * @return The new session, with one reference of its own.
     */
    Session create_session() const {
        msgr_session *s = nullptr;
        check(msgr_session_manager_create_session(h_, &s), "msgr_session_manager_create_session");
        return Session::adopt(s);
    }
    /**
     * GetLaunchingSession(pid): the session whose acceptance launched process `pid`.
     * @param pid  The process id a launcher returned (not 0).
     * @return The session, with one more reference; throws E_FAIL when no session launched `pid`.
     */
    Session launching_session(std::uint32_t pid) const {
        msgr_session *s = nullptr;
        check(msgr_session_manager_get_launching_session(h_, pid, &s),
              "msgr_session_manager_get_launching_session");
        return Session::adopt(s);
    }
    /**
     * RegisterApplication(guid, name, url, path, flags)
     * (msgr_session_manager_register_application).
     * @param guid   `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, hex digits in either case.
     * @param name   UTF-8, at most 256 characters.
     * @param url    UTF-8, at most 256 characters.
     * @param path   nullptr or "" for none; else an absolute path of at most 260 characters to an
     *               existing file.
     * @param flags  Must be 0.
     */
    void register_application(string_arg guid, string_arg name, string_arg url,
                              string_arg path = nullptr, std::uint32_t flags = 0) const {
        check(msgr_session_manager_register_application(h_, guid.c_str(), name.c_str(), url.c_str(),
                                                        path.c_str(), flags),
              "msgr_session_manager_register_application");
    }
    /**
     * UnRegisterApplication(guid) (msgr_session_manager_unregister_application).
     * @param guid  The application's GUID, braced, hex digits in either case.
     */
    void unregister_application(string_arg guid) const {
        check(msgr_session_manager_unregister_application(h_, guid.c_str()),
              "msgr_session_manager_unregister_application");
    }
    /**
     * Applications, as the C function gives it: `GUID\tname\turl\tpath\n` per application.
     * @return The listing, sorted by GUID; "" when none.
     */
    std::string applications() const {
        msgr_session_manager *h = h_;
        return detail::get_string(
            [h](char *buf, std::size_t len, std::size_t *needed) {
                return msgr_session_manager_get_applications(h, buf, len, needed);
            },
            "msgr_session_manager_get_applications");
    }
    /**
     * Applications, one entry per registered application, sorted by GUID.
     * @return The applications (empty when none).
     */
    std::vector<Application> application_list() const {
        std::vector<Application> apps;
        const std::string all = applications();
        std::size_t line = 0;
        while (line < all.size()) {
            std::size_t end = all.find('\n', line);
            if (end == std::string::npos) {
                end = all.size();
            }
            Application app;
            std::string *fields[] = {&app.guid, &app.name, &app.url, &app.path};
            std::size_t start = line;
            for (std::size_t i = 0; i < 4; i++) {
                std::size_t tab = i < 3 ? all.find('\t', start) : end;
                if (tab == std::string::npos || tab > end) {
                    tab = end;
                }
                fields[i]->assign(all, start, tab - start);
                start = tab < end ? tab + 1 : end;
            }
            apps.push_back(std::move(app));
            line = end + 1;
        }
        return apps;
    }
    /**
     * Lock and Key status (IMsgrLock::get_Status).
     * @return The status.
     */
    LockStatus lock_status() const {
        LockStatus s = LOCK_NOTINITIALIZED;
        check(msgr_session_manager_get_lock_status(h_, &s), "msgr_session_manager_get_lock_status");
        return s;
    }
    /**
     * RequestChallenge(cookie): OnLockChallenge(cookie, challenge) follows.
     * @param cookie  Any value the application chooses (a fresh random one); give it again to
     *                send_response().
     */
    void request_challenge(std::int32_t cookie) const {
        check(msgr_session_manager_request_challenge(h_, cookie),
              "msgr_session_manager_request_challenge");
    }
    /**
     * SendResponse(application ID, response, cookie): OnLockResult follows.
     * @param app_id    The application ID: UTF-8, at most 256 characters.
     * @param response  compute_lock_response() of the challenge and the key.
     * @param cookie    The cookie given to request_challenge().
     */
    void send_response(string_arg app_id, string_arg response, std::int32_t cookie) const {
        check(msgr_session_manager_send_response(h_, app_id.c_str(), response.c_str(), cookie),
              "msgr_session_manager_send_response");
    }
    /**
     * Ends a registration made by one of the manager's registration functions
     * (msgr_session_manager_unadvise).
     * @param cookie  The cookie the registration function returned.
     */
    void unadvise(std::uint32_t cookie) const {
        check(msgr_session_manager_unadvise(h_, cookie), "msgr_session_manager_unadvise");
    }

    /**
     * OnAppRegistered: `f([SessionManagerRef,] std::string_view guid)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_app_registered(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_app_registered, h_, &t_string<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_app_registered");
    }
    /**
     * OnAppUnRegistered: `f([SessionManagerRef,] std::string_view guid)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_app_unregistered(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_app_unregistered, h_, &t_string<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_app_unregistered");
    }
    /**
     * OnAppShutdown: `f([SessionManagerRef])`, the manager's last event.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_app_shutdown(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_app_shutdown, h_, &t_no_args<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_app_shutdown");
    }
    /**
     * OnInvitation: `f([SessionManagerRef,] SessionRef session, std::string_view app_data,
     * bool &handled)`. The session is lent for the call: session.keep() to keep it.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_invitation(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_invitation, h_, &t_invitation<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_invitation");
    }
    /**
     * OnLockChallenge: `f([SessionManagerRef,] std::int32_t cookie, std::string_view challenge)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_lock_challenge(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_lock_challenge, h_, &t_lock_challenge<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_lock_challenge");
    }
    /**
     * OnLockEnable: `f([SessionManagerRef,] bool enabled)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_lock_enable(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_lock_enable, h_, &t_lock_enable<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_lock_enable");
    }
    /**
     * OnLockResult: `f([SessionManagerRef,] std::int32_t cookie, bool succeeded)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_lock_result(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_lock_result, h_, &t_lock_result<FD>,
                              std::forward<F>(f), "msgr_session_manager_on_lock_result");
    }
    /**
     * OnLockStatusChanged: `f([SessionManagerRef,] LockStatus status)`.
     * @param f  The callback: any callable of that signature (lambda, function pointer, function
     *           object), moved or copied to the heap and deleted once, when the registration ends.
     * @return The registration's cookie, for unadvise().
     */
    template <class F>
    std::uint32_t on_lock_status_changed(F &&f) const {
        using FD = std::decay_t<F>;
        return detail::advise(msgr_session_manager_on_lock_status_changed, h_,
                              &t_lock_status<FD>, std::forward<F>(f),
                              "msgr_session_manager_on_lock_status_changed");
    }

protected:
    /** The handle (nullptr when empty): viewed by SessionManagerRef, owned by SessionManager. */
    msgr_session_manager *h_ = nullptr;

private:
    using M = msgr_session_manager;
    template <class F>
    static void t_string(void *ud, M *m, const char *s) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionManagerRef(m), detail::view(s)); });
    }
    template <class F>
    static void t_no_args(void *ud, M *m) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionManagerRef(m)); });
    }
    template <class F>
    static void t_invitation(void *ud, M *m, msgr_session *s, const char *data, bool *handled) noexcept {
        detail::guarded([&] {
            detail::call(detail::callable<F>(ud), SessionManagerRef(m), SessionRef(s),
                         detail::view(data), *handled);
        });
    }
    template <class F>
    static void t_lock_challenge(void *ud, M *m, std::int32_t cookie, const char *challenge) noexcept {
        detail::guarded([&] {
            detail::call(detail::callable<F>(ud), SessionManagerRef(m), cookie, detail::view(challenge));
        });
    }
    template <class F>
    static void t_lock_enable(void *ud, M *m, bool enabled) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionManagerRef(m), enabled); });
    }
    template <class F>
    static void t_lock_result(void *ud, M *m, std::int32_t cookie, bool succeeded) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionManagerRef(m), cookie, succeeded); });
    }
    template <class F>
    static void t_lock_status(void *ud, M *m, LockStatus status) noexcept {
        detail::guarded([&] { detail::call(detail::callable<F>(ud), SessionManagerRef(m), status); });
    }
};

/**
 * A session manager (CoCreateInstance(CLSID_MsgrSessionManager)), owned: move-only, released
 * on destruction (its registrations end; its sessions go on).
 */
class SessionManager : public SessionManagerRef {
public:
    /** No manager. */
    SessionManager() noexcept = default;
    /**
     * A new manager on `client` (msgr_session_manager_create).
     * @param client  The client to create it on.
     */
    explicit SessionManager(const Client &client);
    /**
     * Takes over a manager handle the caller owns.
     * @param h  The handle, or nullptr for an empty SessionManager.
     * @return The SessionManager that owns it.
     */
    static SessionManager adopt(msgr_session_manager *h) noexcept {
        SessionManager m;
        m.h_ = h;
        return m;
    }
    SessionManager(const SessionManager &) = delete;
    SessionManager &operator=(const SessionManager &) = delete;
    /**
     * Takes other's handle.
     * @param other  Becomes empty.
     */
    SessionManager(SessionManager &&other) noexcept : SessionManagerRef(std::exchange(other.h_, nullptr)) {}
    /**
     * Releases the current manager, takes other's.
     * @param other  Becomes empty.
     * @return `*this`.
     */
    SessionManager &operator=(SessionManager &&other) noexcept {
        SessionManager moved(std::move(other));
        std::swap(h_, moved.h_);
        return *this;
    }
    /** msgr_session_manager_release. */
    ~SessionManager() { reset(); }
    /** Releases the manager now; the object becomes empty. */
    void reset() noexcept {
        if (msgr_session_manager *h = std::exchange(h_, nullptr)) {
            (void)msgr_session_manager_release(h);
        }
    }
    /**
     * Gives the handle up to the caller; the object becomes empty.
     * @return The handle, which the caller must release (msgr_session_manager_release); nullptr
     *         when empty.
     */
    msgr_session_manager *detach() noexcept { return std::exchange(h_, nullptr); }
};

// ---------------------------------------------------------------------------------------------
// Service and client
// ---------------------------------------------------------------------------------------------

/** An embedded Messenger service, owned: move-only, destroyed on destruction (its clients
 *  keep it alive until they are destroyed). */
class Service {
public:
    /** A service with the defaults: two-minute invitation timeout, real clock, registry in
     *  memory. */
    Service() { check(msgr_service_create(nullptr, &h_), "msgr_service_create"); }
    /**
     * A service with `options`.
     * @param options  The options; read during the call only.
     */
    explicit Service(const ServiceOptions &options) {
        msgr_service_options o{};
        o.struct_size = static_cast<std::uint32_t>(sizeof o);
        o.invitation_timeout_ms = detail::timeout_ms(options.invitation_timeout);
        if (o.invitation_timeout_ms == MSGR_INFINITE) {
            o.invitation_timeout_ms -= 1;
        }
        o.manual_clock = options.manual_clock;
        o.registry_path = options.registry_path.empty() ? nullptr : options.registry_path.c_str();
        check(msgr_service_create(&o, &h_), "msgr_service_create");
    }
    /**
     * An XMPP service: clients sign in to the server in `options` (the library built with
     * its xmpp feature; msgrpriv::error E_NOTIMPL otherwise).
     * @param options  The options; `credentials` is copied and kept as long as the service needs
     *                 it, the rest is read during the call only.
     */
    explicit Service(const XmppOptions &options) {
        using Source = std::function<std::optional<std::string>(std::string_view)>;
        msgr_service_options o{};
        o.struct_size = static_cast<std::uint32_t>(sizeof o);
        o.invitation_timeout_ms = detail::timeout_ms(options.invitation_timeout);
        if (o.invitation_timeout_ms == MSGR_INFINITE) {
            o.invitation_timeout_ms -= 1;
        }
        o.registry_path = options.registry_path.empty() ? nullptr : options.registry_path.c_str();
        o.transport = MSGR_TRANSPORT_XMPP;
        o.server_host = options.server_host.c_str();
        o.server_port = options.server_port;
        o.xmpp_resource = options.resource.empty() ? nullptr : options.resource.c_str();
        o.tls = static_cast<std::int32_t>(options.tls);
        o.ca_file = options.ca_file.empty() ? nullptr : options.ca_file.c_str();
        o.xmpp_domain = options.domain.empty() ? nullptr : options.domain.c_str();
        o.connect_timeout_ms = detail::timeout_ms(options.connect_timeout);
        o.request_timeout_ms = detail::timeout_ms(options.request_timeout);
        o.xmpp_keepalive_ms = detail::timeout_ms(options.keepalive);
        o.xmpp_reconnect_max_ms = detail::timeout_ms(options.reconnect_max);
        o.xmpp_allow_strangers = options.allow_strangers;
        o.xmpp_invitations_per_minute = options.invitations_per_minute;
        // The library owns the copy from here on and deletes it when done (also on failure).
        o.credentials_user_data = new Source(options.credentials);
        o.credentials_destroy = [](void *ud) { delete static_cast<Source *>(ud); };
        o.credentials = [](void *ud, const char *name, char *buf, std::size_t size) -> bool {
            try {
                const Source &source = *static_cast<const Source *>(ud);
                if (!source) {
                    return false;
                }
                std::optional<std::string> password = source(name);
                if (!password || password->size() + 1 > size ||
                    password->find('\0') != std::string::npos) {
                    return false;
                }
                std::memcpy(buf, password->c_str(), password->size() + 1);
                return true;
            } catch (...) {
                return false;
            }
        };
        check(msgr_service_create(&o, &h_), "msgr_service_create");
    }
    /**
     * Takes over a service handle the caller owns.
     * @param h  The handle, or nullptr for an empty Service.
     * @return The Service that owns it.
     */
    static Service adopt(msgr_service *h) noexcept { return Service(h); }
    Service(const Service &) = delete;
    Service &operator=(const Service &) = delete;
    /**
     * Takes other's handle.
     * @param other  Becomes empty.
     */
    Service(Service &&other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
    /**
     * Destroys the current service, takes other's.
     * @param other  Becomes empty.
     * @return `*this`.
     */
    Service &operator=(Service &&other) noexcept {
        Service moved(std::move(other));
        std::swap(h_, moved.h_);
        return *this;
    }
    /** msgr_service_destroy. */
    ~Service() { reset(); }
    /** Destroys the handle now; the object becomes empty. */
    void reset() noexcept {
        if (msgr_service *h = std::exchange(h_, nullptr)) {
            (void)msgr_service_destroy(h);
        }
    }
    /**
     * The C handle.
     * @return The handle, nullptr when empty.
     */
    msgr_service *get() const noexcept { return h_; }
    /**
     * Gives the handle up to the caller; the object becomes empty.
     * @return The handle, which the caller must destroy (msgr_service_destroy); nullptr when
     *         empty.
     */
    msgr_service *detach() noexcept { return std::exchange(h_, nullptr); }

    /**
     * Adds a Lock and Key application ID/key pair (in force from the next sign-in).
     * @param app_id  The application ID: UTF-8, 1 to 256 characters.
     * @param key     Its key: UTF-8, 1 to 256 characters (replaces the key of a known ID).
     */
    void add_app_key(string_arg app_id, string_arg key) const {
        check(msgr_service_add_app_key(h_, app_id.c_str(), key.c_str()), "msgr_service_add_app_key");
    }
    /**
     * Moves a manual clock forward, firing the invitation timeouts that fell due.
     * @param ms  How far to move the clock (a negative value counts as 0). The service must
     *            have been created with `manual_clock` (E_ILLEGAL_METHOD_CALL otherwise).
     */
    void advance_clock(std::chrono::milliseconds ms) const {
        check(msgr_service_advance_clock(h_, static_cast<std::uint64_t>(ms.count() > 0 ? ms.count() : 0)),
              "msgr_service_advance_clock");
    }
    /**
     * Test hook (embedded service): cuts or restores delivery to a user
     * (msgr_service_set_reachable).
     * @param sign_in_name  The user.
     * @param reachable     false: messages to the user fail delivery; true: they are delivered.
     * @return true; false when that user is not signed in (nothing changes).
     */
    bool set_reachable(string_arg sign_in_name, bool reachable) const {
        return check(msgr_service_set_reachable(h_, sign_in_name.c_str(), reachable),
                     "msgr_service_set_reachable") == S_OK;
    }

private:
    explicit Service(msgr_service *h) noexcept : h_(h) {}
    msgr_service *h_ = nullptr;
};

/**
 * A client (one signed-in user), owned: move-only, destroyed on destruction (signs out; its
 * managers and sessions stay valid handles). Owns the launchers given to set_launcher().
 */
class Client {
public:
    /** An empty client. */
    Client() noexcept = default;
    /**
     * Creates a client on `service` and signs `sign_in_name` in (msgr_client_create).
     * @param service       The service (the client holds it alive: it keeps working after the
     *                      Service object is destroyed).
     * @param sign_in_name  UTF-8, 1 to 256 characters, no leading or trailing white space.
     * @param mode          How its events are delivered.
     */
    Client(const Service &service, string_arg sign_in_name, DispatchMode mode = DispatchMode::manual) {
        check(msgr_client_create(service.get(), sign_in_name.c_str(), static_cast<std::int32_t>(mode), &h_),
              "msgr_client_create");
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    /**
     * Takes other's client (and launchers).
     * @param other  Becomes empty.
     */
    Client(Client &&other) noexcept
        : h_(std::exchange(other.h_, nullptr)), launchers_(std::move(other.launchers_)) {}
    /**
     * Destroys the current client, takes other's.
     * @param other  Becomes empty.
     * @return `*this`.
     */
    Client &operator=(Client &&other) noexcept {
        Client moved(std::move(other));
        std::swap(h_, moved.h_);
        std::swap(launchers_, moved.launchers_);
        return *this;
    }
    /** msgr_client_destroy, then frees the launchers. */
    ~Client() { reset(); }
    /** Destroys the client now; the object becomes empty. */
    void reset() noexcept {
        if (msgr_client *h = std::exchange(h_, nullptr)) {
            (void)msgr_client_destroy(h);
        }
        launchers_.clear();
    }
    /**
     * Takes over a client handle the caller owns.
     * @param h  The handle, or nullptr for an empty Client.
     * @return The Client that owns it.
     */
    static Client adopt(msgr_client *h) noexcept {
        Client c;
        c.h_ = h;
        return c;
    }
    /**
     * The C handle.
     * @return The handle, nullptr when empty.
     */
    msgr_client *get() const noexcept { return h_; }

    /** Signs out: live sessions end with SR_CONNECTION_FAILURE on both sides. */
    void sign_out() const { check(msgr_client_sign_out(h_), "msgr_client_sign_out"); }
    /** Signs in again: managers are locked again. */
    void sign_in() const { check(msgr_client_sign_in(h_), "msgr_client_sign_in"); }
    /**
     * Whether the client is signed in (msgr_client_get_connection_state).
     * @return The state, and why the client was last signed out other than by the
     *         application (S_OK when it never was).
     */
    std::pair<ConnectionState, MSGR_HRESULT> connection_state() const {
        std::int32_t state = 0;
        MSGR_HRESULT reason = 0;
        check(msgr_client_get_connection_state(h_, &state, &reason),
              "msgr_client_get_connection_state");
        return {static_cast<ConnectionState>(state), reason};
    }
    /** Shuts down: OnAppShutdown is each manager's last event; no sign-in after. */
    void shutdown() const { check(msgr_client_shutdown(h_), "msgr_client_shutdown"); }

    /**
     * Delivers the queued events (manual mode; msgr_client_dispatch): waits up to `timeout`
     * (0: poll; msgrpriv::infinite: for ever) for the first one, then delivers every pending
     * one. Rethrows the first exception a callback threw
     * during this call (after the C dispatch has returned: every event was delivered).
     * @param timeout  How long to wait for the first event: 0 polls, msgrpriv::infinite waits for
     *                 ever.
     * @return How many events were delivered (0 when the timeout passed).
     */
    std::uint32_t dispatch(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
        detail::dispatch_scope scope;
        std::uint32_t n = 0;
        MSGR_HRESULT hr = msgr_client_dispatch(h_, detail::timeout_ms(timeout), &n);
        if (std::exception_ptr e = scope.leave()) {
            std::rethrow_exception(e);
        }
        check(hr, "msgr_client_dispatch");
        return n;
    }
    /**
     * A descriptor readable while events are pending (manual mode), for poll/epoll. Owned by
     * the client: do not read or close it.
     * @return The descriptor, valid until the client is destroyed.
     */
    int event_fd() const {
        std::int32_t fd = -1;
        check(msgr_client_event_fd(h_, &fd), "msgr_client_event_fd");
        return static_cast<int>(fd);
    }

    /**
     * Replaces the launcher (msgr_client_set_launcher): `f(std::string_view path,
     * std::string_view session_id, std::string_view app_guid)` starts the application and
     * returns its process id (any integer type), or a std::optional of one, empty for a launch
     * that failed (the session then ends with SR_APPLICATION_LAUNCH_FAILED). A launcher that
     * throws fails the launch too (E_FAIL, or the code of a msgrpriv::error), and dispatch()
     * rethrows its exception. The client keeps every launcher it was given until it is
     * destroyed (the C API has no destroy callback for it).
     * @param f  The launcher, any callable of that signature (moved or copied; kept by the client).
     */
    template <class F>
    void set_launcher(F &&f) {
        using FD = std::decay_t<F>;
        auto p = std::make_shared<detail::holder<FD>>(detail::holder<FD>{std::forward<F>(f)});
        launchers_.push_back(p);
        check(msgr_client_set_launcher(h_, &t_launch<FD>, p.get()), "msgr_client_set_launcher");
    }
    /** Restores the default launcher (the executable itself, the SessionID as argument). */
    void reset_launcher() const {
        check(msgr_client_set_launcher(h_, nullptr, nullptr), "msgr_client_set_launcher");
    }

private:
    template <class F>
    static MSGR_HRESULT t_launch(void *ud, const char *path, const char *session_id,
                                 const char *app_guid, std::uint32_t *pid) noexcept {
        MSGR_HRESULT hr = E_FAIL;
        try {
            auto result = std::invoke(detail::callable<F>(ud), detail::view(path),
                                      detail::view(session_id), detail::view(app_guid));
            using R = decltype(result);
            if constexpr (std::is_integral_v<R>) {
                *pid = static_cast<std::uint32_t>(result);
                hr = S_OK;
            } else {
                if (result) {
                    *pid = static_cast<std::uint32_t>(*result);
                    hr = S_OK;
                }
            }
        } catch (const error &e) {
            hr = e.code();
            detail::report(std::current_exception());
        } catch (...) {
            detail::report(std::current_exception());
        }
        return hr;
    }

    msgr_client *h_ = nullptr;
    std::vector<std::shared_ptr<void>> launchers_;
};

inline SessionManager::SessionManager(const Client &client) {
    check(msgr_session_manager_create(client.get(), &h_), "msgr_session_manager_create");
}

}  // namespace msgrpriv

#endif  // MSGRPRIV_HPP
