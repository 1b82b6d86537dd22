// The header alone, as C++11 with -Wall -Wextra -pedantic -Werror, included twice; its
// macros are constant expressions in C++ too.
#include "msgrpriv.h"
#include "msgrpriv.h"

#include <cstring>

static_assert(E_FAIL == static_cast<MSGR_HRESULT>(0x80004005u), "E_FAIL");
static_assert(SR_OLD_SIP_STACK == static_cast<MSGR_HRESULT>(0x81000624u), "SR_OLD_SIP_STACK");
static_assert(SS_TERMINATED == 7 && LOCK_DISABLED == 6 && SF_INVITEE == 2, "enums");
static_assert(sizeof(SESSION_STATE) == sizeof(int), "SESSION_STATE is an int-sized enum");
static_assert(MSGR_FAILED(E_HANDLE) && MSGR_SUCCEEDED(S_FALSE), "MSGR_FAILED/MSGR_SUCCEEDED");

int main() {
    char out[MSGR_LOCK_RESPONSE_SIZE];
    if (msgr_lock_compute_response("ab", "c", out) != S_OK) return 1;
    if (std::strcmp(out, "900150983cd24fb0d6963f7d28e17f72") != 0) return 1;
    return std::strcmp(msgr_version(), MSGR_VERSION_STRING) == 0 ? 0 : 1;
}
