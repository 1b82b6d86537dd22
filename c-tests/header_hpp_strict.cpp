// msgrpriv.hpp alone, included twice, as C++17 with -Wall -Wextra -pedantic -Werror plus
// -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast (set in CMakeLists.txt): every
// template of the header is instantiated here, so that its code is compiled too.
#include "msgrpriv.hpp"
#include "msgrpriv.hpp"

#include <optional>

int main() {
    static_assert(std::is_nothrow_move_constructible_v<msgrpriv::Session>, "Session moves");
    static_assert(std::is_copy_constructible_v<msgrpriv::Session>, "Session copies (add_ref)");
    static_assert(!std::is_copy_constructible_v<msgrpriv::Client>, "Client is move-only");
    static_assert(!std::is_copy_constructible_v<msgrpriv::SessionManager>, "move-only");
    static_assert(!std::is_copy_constructible_v<msgrpriv::Service>, "move-only");
    static_assert(std::is_base_of_v<std::runtime_error, msgrpriv::error>, "error");

    // Every registration instantiated on empty objects: each fails with E_POINTER, after the
    // destroy callback freed the callable.
    msgrpriv::SessionRef s;
    msgrpriv::SessionManagerRef m;
    int failures = 0;
    auto expect_pointer = [&failures](auto &&register_it) {
        try {
            register_it();
            failures++;
        } catch (const msgrpriv::error &e) {
            if (e.code() != E_POINTER) failures++;
        }
    };
    expect_pointer([&] { s.before_app_launch([](bool &enable) { enable = false; }); });
    expect_pointer([&] { s.on_accepted([](std::string_view) {}); });
    expect_pointer([&] { s.on_app_not_present([](std::string_view, std::string_view) {}); });
    expect_pointer([&] { s.on_cancelled([](msgrpriv::SessionRef, std::string_view) {}); });
    expect_pointer([&] { s.on_context_data([](std::string_view) {}); });
    expect_pointer([&] { s.on_declined([](std::string_view) {}); });
    expect_pointer([&] { s.on_ready_to_launch([] {}); });
    expect_pointer([&] { s.on_send_error([](MSGR_HRESULT) {}); });
    expect_pointer([&] { s.on_state_changed([](SESSION_STATE) {}); });
    expect_pointer([&] { s.on_termination([](MSGR_HRESULT, std::string_view) {}); });
    expect_pointer([&] { m.on_app_registered([](std::string_view) {}); });
    expect_pointer([&] { m.on_app_unregistered([](std::string_view) {}); });
    expect_pointer([&] { m.on_app_shutdown([](msgrpriv::SessionManagerRef) {}); });
    expect_pointer([&] {
        m.on_invitation([](msgrpriv::SessionRef, std::string_view, bool &handled) { handled = true; });
    });
    expect_pointer([&] { m.on_lock_challenge([](std::int32_t, std::string_view) {}); });
    expect_pointer([&] { m.on_lock_enable([](bool) {}); });
    expect_pointer([&] { m.on_lock_result([](std::int32_t, bool) {}); });
    expect_pointer([&] { m.on_lock_status_changed([](LockStatus) {}); });
    expect_pointer([&] { (void)s.session_id(); });
    expect_pointer([&] { (void)m.application_list(); });
    msgrpriv::Client c;
    expect_pointer([&] { c.set_launcher([](std::string_view, std::string_view, std::string_view) { return 1; }); });
    expect_pointer([&] {
        c.set_launcher([](std::string_view, std::string_view, std::string_view) -> std::optional<long> {
            return std::nullopt;
        });
    });
    expect_pointer([&] { (void)c.dispatch(msgrpriv::infinite); });
    return failures == 0 && msgrpriv::compute_lock_response("ab", "c") ==
                                "900150983cd24fb0d6963f7d28e17f72"
               ? 0
               : 1;
}
