"""Exceptions raised for failure codes, one class per family of codes
(docs/CONTRACT.md, "Result codes").

Every failure code a library call returns is raised as a subclass of :class:`MsgrError`
carrying ``code`` (an :class:`~msgrpriv.codes.HResult`), ``name`` (the documented name, e.g.
``"SR_APP_NOT_REGISTERED"``), ``text`` (``msgr_result_text``), ``detail`` (the library's
``msgr_last_error()``, naming the C function) and ``method`` (the Python method that
failed, e.g. ``"Session.invite"``, which ``str(error)`` starts with):

=======================  ==============================================  ================
class                    codes                                           example
=======================  ==============================================  ================
:class:`LockError`       ``MSGR_E_API_*`` (0x810007xx)                   MSGR_E_API_LOCKED
:class:`SessionError`    ``SR_*`` (0x810006xx)                           SR_INVITED_SELF
:class:`MessengerError`  other ``MSGR_E_*`` (0x810003xx)                 MSGR_E_NOT_LOGGED_ON
:class:`GenericError`    ``E_*``, ``REGDB_E_*`` and any unknown code     E_INVALIDARG
=======================  ==============================================  ================

Three codes have a class of their own within their family, which is also a ``ValueError``
(a bad value, as ``ValueError`` is for the standard library):

- :class:`InvalidArgument` (a :class:`GenericError`), E_INVALIDARG: a bad string (too long,
  malformed GUID, invalid UTF-8, an embedded NUL, a lone surrogate) or another bad argument;
- :class:`ContextDataOverLimit` (a :class:`SessionError`), SR_CONTEXT_DATA_OVER_LIMIT:
  context data over 300 characters, or a sixth send;
- :class:`ClosedError` (a :class:`GenericError`), E_HANDLE: a method of a closed object (as
  I/O on a closed file is a ``ValueError``), or a stale handle.

So ``except ValueError`` catches every bad string, and ``err.code`` still tells which code:

>>> import msgrpriv
>>> try:
...     msgrpriv.compute_response("a\\0b", "key")
... except ValueError as err:
...     print(type(err).__name__, err.name, err.method)
InvalidArgument E_INVALIDARG msgrpriv.compute_response

Mistakes of type rather than value raise the built-in exceptions: ``TypeError`` for a wrong
type or ``None`` where a value is required, ``OverflowError`` for an integer outside its C
type, ``ValueError`` for a negative or NaN number of seconds.

Codes are signed 32-bit integers, as C returns them: compare ``err.code`` with the constants
of :mod:`msgrpriv.codes` (``err.code == codes.SR_CONTEXT_DATA_OVER_LIMIT``), or its
``unsigned`` form with the documented hexadecimal value (``err.code.unsigned == 0x81000611``).
"""

from __future__ import annotations

import sys
from typing import Dict, Optional, Type

from .codes import E_HANDLE, E_INVALIDARG, SR_CONTEXT_DATA_OVER_LIMIT, HResult, family


class MsgrError(Exception):
    """Base class of every failure code the library returns.

    Attributes: ``code`` (:class:`~msgrpriv.codes.HResult`, signed), ``name`` (documented
    name or ``None``), ``text`` (the library's description), ``hex`` (``0x%08X``),
    ``detail`` (for a failed library call, its ``msgr_last_error()``: the function, the
    argument and the form expected, e.g. ``"msgr_session_manager_register_application:
    flags: 1, must be 0 (E_INVALIDARG)"``; else ``None``), ``method`` (the package's
    function or method that failed, e.g. ``"SessionManager.register_application"``;
    ``None`` for an exception made by hand).
    """

    code: HResult
    name: Optional[str]
    text: str
    method: Optional[str]
    app_data: Optional[str] = None
    """For the end of an awaited invitation (:func:`msgrpriv.aio.invite`): the app data of
    the termination (a decline's, a cancel's); ``None`` otherwise."""

    def __init__(self, code: int, detail: Optional[str] = None, method: Optional[str] = None) -> None:
        self.code = HResult(code)
        self.method = method
        self.name = self.code.name
        try:
            self.text = self.code.text
        except Exception:  # the library could not be loaded: still a usable exception
            self.text = ""
        self.detail = detail
        msg = f"{self.name or 'unknown result code'} ({self.code.hex})"
        if method:
            msg = f"{method}: {msg}"
        if self.text:
            msg += f": {self.text}"
        if detail:
            msg += f" [{detail}]"
        super().__init__(msg)

    @property
    def hex(self) -> str:
        """The code as ``0x%08X``."""
        return self.code.hex

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (int(self.code), self.detail, self.method))


class LockError(MsgrError):
    """A Lock and Key error (``MSGR_E_API_*``): the manager is locked, not initialized, ..."""


class SessionError(MsgrError):
    """A session result (``SR_*``): a session method refused by the session's rules."""


class MessengerError(MsgrError):
    """A Messenger client code (``MSGR_E_*`` outside ``MSGR_E_API_*``): sign-in problems."""


class GenericError(MsgrError):
    """A generic COM code (``E_*``, ``REGDB_E_*``) or a code the library does not define."""


class InvalidArgument(GenericError, ValueError):
    """E_INVALIDARG, a bad argument: a string too long, malformed (a GUID), not UTF-8, with an
    embedded NUL or a lone surrogate, or another value the library refuses."""


class ContextDataOverLimit(SessionError, ValueError):
    """SR_CONTEXT_DATA_OVER_LIMIT: context data over 300 characters, or more than five sends."""


class ClosedError(GenericError, ValueError):
    """E_HANDLE: a method of a closed object (or of a stale handle), as I/O on a closed file."""


_BY_CODE: Dict[int, Type[MsgrError]] = {
    int(E_INVALIDARG): InvalidArgument,
    int(SR_CONTEXT_DATA_OVER_LIMIT): ContextDataOverLimit,
    int(E_HANDLE): ClosedError,
}

_FAMILIES: Dict[str, Type[MsgrError]] = {
    "lock": LockError,
    "session": SessionError,
    "messenger": MessengerError,
    "generic": GenericError,
}


def error_class(code: int) -> Type[MsgrError]:
    """The exception class for a failure code: its own (:class:`InvalidArgument`,
    :class:`ContextDataOverLimit`, :class:`ClosedError`) or its family's."""
    return _BY_CODE.get(int(HResult(code)), None) or _FAMILIES[family(code)]


def caller() -> Optional[str]:
    """The package's public function or method running on this thread, nearest first
    (``"Session.invite"``, ``"Service()"`` for a constructor,
    ``"msgrpriv.compute_response"``): the method a failure is reported for. Private helpers
    (``_name``) and lambdas are skipped; ``None`` outside the package."""
    try:
        frame = sys._getframe(1)
    except (AttributeError, ValueError):  # pragma: no cover - another interpreter
        return None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "msgrpriv" and not module.startswith("msgrpriv."):
            return None
        if module == __name__:  # error_for, check
            frame = frame.f_back  # type: ignore[assignment]
            continue
        code = frame.f_code
        name = code.co_name
        if name == "__init__" or not (name.startswith("_") or name.startswith("<")):
            owner = frame.f_locals.get("self") if code.co_varnames[:1] == ("self",) else None
            if owner is not None:
                cls = type(owner).__name__
                return f"{cls}()" if name == "__init__" else f"{cls}.{name}"
            if name in getattr(sys.modules.get("msgrpriv"), "__all__", ()):
                return f"msgrpriv.{name}"  # an exported function (internal ones are skipped)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def error_for(code: int, detail: Optional[str] = None, method: Optional[str] = None) -> MsgrError:
    """An exception instance of the right class for a failure code; ``method`` defaults to
    :func:`caller`."""
    return error_class(code)(code, detail, method or caller())


def check(code: int) -> int:
    """Returns ``code`` when it is a success code (S_OK, S_FALSE), raises it otherwise,
    with the failed call's ``msgr_last_error()`` as the exception's ``detail`` (call it
    right after the library call, on the same thread) and the package method that made the
    call as its ``method``."""
    if code < 0:
        from ._library import last_error

        raise error_for(code, last_error() or None)
    return code
