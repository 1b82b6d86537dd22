/* msgrpriv.h after a header that already defines the generic COM codes (also compiled as C++
 * by header_other_com.cpp): no redefinition, and every code keeps its documented value. */
#include "other_com.h"
#include "msgrpriv.h"

#include "check.h"

/* The other header's definitions stand; they have the same values. */
STATIC_CHECK(E_FAIL == OTHER_HR(0x80004005L));
STATIC_CHECK(E_FAIL == (MSGR_HRESULT)0x80004005u);
STATIC_CHECK(S_OK == 0 && S_FALSE == 1);
/* Ours fill in the names the other header lacks. */
STATIC_CHECK(E_INSUFFICIENT_BUFFER == (MSGR_HRESULT)0x8007007Au);
STATIC_CHECK(E_ILLEGAL_METHOD_CALL == (MSGR_HRESULT)0x8000000Eu);
STATIC_CHECK(MSGR_E_API_LOCKED == (MSGR_HRESULT)0x81000752u);

int main(void) {
    char out[MSGR_LOCK_RESPONSE_SIZE];
    HRESULT hr = msgr_lock_compute_response(NULL, "k", out);
    CHECK_HR(E_POINTER, hr);
    CHECK_HR(E_INVALIDARG, msgr_lock_compute_response("\xff", "k", out));
    CHECK_OK(msgr_lock_compute_response("ab", "c", out));
    return 0;
}
