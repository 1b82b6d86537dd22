/* other_com.h: stands in for a platform header (windows.h, wine's winerror.h, a COM shim) that
 * defines the generic HRESULT names before msgrpriv.h is included. msgrpriv.h must then leave
 * them alone: a redefinition is an error under -Werror. */
#ifndef OTHER_COM_H
#define OTHER_COM_H

#include <stdint.h>

typedef int32_t HRESULT;
#define OTHER_HR(x) ((HRESULT)(x))

#define S_OK OTHER_HR(0L)
#define S_FALSE OTHER_HR(1L)
#define E_NOTIMPL OTHER_HR(0x80004001L)
#define E_POINTER OTHER_HR(0x80004003L)
#define E_FAIL OTHER_HR(0x80004005L)
#define E_UNEXPECTED OTHER_HR(0x8000FFFFL)
#define E_HANDLE OTHER_HR(0x80070006L)
#define E_OUTOFMEMORY OTHER_HR(0x8007000EL)
#define E_INVALIDARG OTHER_HR(0x80070057L)
#define REGDB_E_WRITEREGDB OTHER_HR(0x80040151L)

#endif /* OTHER_COM_H */
