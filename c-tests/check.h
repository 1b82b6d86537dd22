/* check.h: minimal assertions for the C tests. Each failure prints file:line, the expression,
 * and for result codes the value and its text (msgr_result_text), then exits with status 1. */
#ifndef MSGR_CHECK_H
#define MSGR_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgrpriv.h"

/* C11 _Static_assert, or static_assert when the file is compiled as C++. */
#ifdef __cplusplus
#define STATIC_CHECK(expr) static_assert(expr, #expr)
#else
#define STATIC_CHECK(expr) _Static_assert(expr, #expr)
#endif

static inline void check_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    exit(1);
}

static inline void check_hr_fail(const char *file, int line, const char *expr, MSGR_HRESULT got,
                                 MSGR_HRESULT expected) {
    fprintf(stderr, "%s:%d: CHECK_HR failed: %s\n  returned 0x%08lX %s\n  expected 0x%08lX %s\n",
            file, line, expr, (unsigned long)(uint32_t)got, msgr_result_text(got),
            (unsigned long)(uint32_t)expected, msgr_result_text(expected));
    exit(1);
}

static inline void check_str_fail(const char *file, int line, const char *expr, const char *got,
                                  const char *expected) {
    fprintf(stderr, "%s:%d: CHECK_STR failed: %s\n  got      \"%s\"\n  expected \"%s\"\n", file,
            line, expr, got ? got : "(null)", expected ? expected : "(null)");
    exit(1);
}

/** Fails unless cond is true. */
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) check_fail(__FILE__, __LINE__, #cond);                                    \
    } while (0)

/** Fails unless call returns the result code expected. */
#define CHECK_HR(expected, call)                                                               \
    do {                                                                                       \
        MSGR_HRESULT check_got_ = (call);                                                      \
        MSGR_HRESULT check_expected_ = (expected);                                             \
        if (check_got_ != check_expected_)                                                     \
            check_hr_fail(__FILE__, __LINE__, #call, check_got_, check_expected_);             \
    } while (0)

/** Fails unless call returns S_OK. */
#define CHECK_OK(call) CHECK_HR(S_OK, call)

/** Fails unless the two NUL-terminated strings are equal (both non-NULL). */
#define CHECK_STR(got, expected)                                                               \
    do {                                                                                       \
        const char *check_g_ = (got);                                                          \
        const char *check_e_ = (expected);                                                     \
        if (!check_g_ || !check_e_ || strcmp(check_g_, check_e_) != 0)                         \
            check_str_fail(__FILE__, __LINE__, #got, check_g_, check_e_);                      \
    } while (0)

#endif /* MSGR_CHECK_H */
