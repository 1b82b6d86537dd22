"""Exceptions raised for failure codes, one class per family of codes
(docs/CONTRACT.md, "Result codes").

Every failure code a library call returns is raised as a subclass of :class:`MsgrError`
carrying ``code`` (an :class:`~msgrpriv.codes.HResult`), ``name`` (the documented name, e.g.
``"SR_APP_NOT_REGISTERED"``) and ``text`` (``msgr_result_text``):

=======================  ==============================================  ================
class                    codes                                           example
=======================  ==============================================  ================
:class:`LockError`       ``MSGR_E_API_*`` (0x810007xx)                   MSGR_E_API_LOCKED
:class:`SessionError`    ``SR_*`` (0x810006xx)                           SR_INVITED_SELF
:class:`MessengerError`  other ``MSGR_E_*`` (0x810003xx)                 MSGR_E_NOT_LOGGED_ON
:class:`GenericError`    ``E_*``, ``REGDB_E_*`` and any unknown code     E_INVALIDARG
=======================  ==============================================  ================

Mistakes Python can see before calling the library raise the usual built-in exceptions
instead: ``TypeError`` for a wrong type or ``None`` where a value is required,
``ValueError`` for a string with an embedded NUL, ``OverflowError`` for an integer outside
its C type.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

from .codes import HResult, family


class MsgrError(Exception):
    """Base class of every failure code the library returns.

    Attributes: ``code`` (:class:`~msgrpriv.codes.HResult`, signed), ``name`` (documented
    name or ``None``), ``text`` (the library's description), ``hex`` (``0x%08X``),
    ``detail`` (for a failed library call, its ``msgr_last_error()``: the function, the
    argument and the form expected, e.g. ``"msgr_session_manager_register_application:
    flags: 1, must be 0 (E_INVALIDARG)"``; else ``None``).
    """

    code: HResult
    name: Optional[str]
    text: str

    def __init__(self, code: int, detail: Optional[str] = None) -> None:
        self.code = HResult(code)
        self.name = self.code.name
        try:
            self.text = self.code.text
        except Exception:  # the library could not be loaded: still a usable exception
            self.text = ""
        self.detail = detail
        msg = f"{self.name or 'unknown result code'} ({self.code.hex})"
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
        return (type(self), (int(self.code), self.detail))


class LockError(MsgrError):
    """A Lock and Key error (``MSGR_E_API_*``): the manager is locked, not initialized, ..."""


class SessionError(MsgrError):
    """A session result (``SR_*``): a session method refused by the session's rules."""


class MessengerError(MsgrError):
    """A Messenger client code (``MSGR_E_*`` outside ``MSGR_E_API_*``): sign-in problems."""


class GenericError(MsgrError):
    """A generic COM code (``E_*``, ``REGDB_E_*``) or a code the library does not define."""


_FAMILIES: Dict[str, Type[MsgrError]] = {
    "lock": LockError,
    "session": SessionError,
    "messenger": MessengerError,
    "generic": GenericError,
}


def error_class(code: int) -> Type[MsgrError]:
    """The exception class for a failure code (its family's class)."""
    return _FAMILIES[family(code)]


def error_for(code: int, detail: Optional[str] = None) -> MsgrError:
    """An exception instance of the right family for a failure code."""
    return error_class(code)(code, detail)


def check(code: int) -> int:
    """Returns ``code`` when it is a success code (S_OK, S_FALSE), raises it otherwise,
    with the failed call's ``msgr_last_error()`` as the exception's ``detail`` (call it
    right after the library call, on the same thread)."""
    if code < 0:
        from ._library import last_error

        raise error_for(code, last_error() or None)
    return code
