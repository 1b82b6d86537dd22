// cxx_check.hpp: checks for the C++ tests (test_cxx_*.cpp) of include/msgrpriv.hpp. A failed
// check prints file:line and the expression and counts; cxx_finish() gives the exit status.
// EXPECT_THROW_CODE(code, expr) checks that expr throws msgrpriv::error with that code.
#ifndef MSGRPRIV_CXX_CHECK_HPP
#define MSGRPRIV_CXX_CHECK_HPP

#include "msgrpriv.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

inline int &cxx_failures() {
    static int n = 0;
    return n;
}

inline void cxx_fail(const char *file, int line, const std::string &what) {
    std::cerr << file << ":" << line << ": CHECK failed: " << what << std::endl;
    cxx_failures()++;
}

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) cxx_fail(__FILE__, __LINE__, #cond);                                      \
    } while (0)

#define CHECK_EQ(got, expected)                                                                \
    do {                                                                                       \
        const auto check_g_ = (got);                                                            \
        const auto check_e_ = (expected);                                                       \
        if (!(check_g_ == check_e_)) {                                                         \
            std::string check_m_ = std::string(#got " == " #expected);                          \
            cxx_fail(__FILE__, __LINE__, check_m_);                                            \
            std::cerr << "  got:      " << check_g_ << "\n  expected: " << check_e_ << "\n";  \
        }                                                                                      \
    } while (0)

#define EXPECT_THROW_CODE(expected_code, expr)                                                          \
    do {                                                                                       \
        try {                                                                                  \
            (void)(expr);                                                                      \
            cxx_fail(__FILE__, __LINE__, std::string(#expr " did not throw"));                 \
        } catch (const msgrpriv::error &check_e_) {                                            \
            if (check_e_.code() != (expected_code)) {                                                   \
                cxx_fail(__FILE__, __LINE__, std::string(#expr " threw ") + check_e_.what());  \
            }                                                                                  \
        }                                                                                      \
    } while (0)

// Slowdown factor for waits on the real clock (valgrind runs code 20 to 50 times slower).
inline int cxx_slowdown() {
    const char *under = std::getenv("MSGRPRIV_TEST_UNDER");
    if (under && std::strcmp(under, "valgrind") == 0) return 50;
    if (under && std::strcmp(under, "sanitizers") == 0) return 5;
    return 1;
}

inline int cxx_finish(const char *name) {
    if (cxx_failures()) {
        std::cerr << name << ": " << cxx_failures() << " check(s) failed" << std::endl;
        return 1;
    }
    std::cout << name << ": ok" << std::endl;
    return 0;
}

// Delivers both clients' events until neither has any left.
inline void pump(const msgrpriv::Client &a, const msgrpriv::Client &b) {
    for (int i = 0; i < 1000; i++) {
        if (a.dispatch() + b.dispatch() == 0) return;
    }
}

#endif
