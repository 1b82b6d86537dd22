/* The header alone, as C99 with -Wall -Wextra -pedantic -Werror, included twice. */
#include "msgrpriv.h"
#include "msgrpriv.h"

int main(void) {
    char out[MSGR_LOCK_RESPONSE_SIZE];
    if (msgr_version() == NULL || msgr_result_text(E_FAIL) == NULL) return 1;
    return msgr_lock_compute_response("ab", "c", out) == S_OK ? 0 : 1;
}
