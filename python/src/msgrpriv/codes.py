"""Result codes of msgrpriv (``MSGR_HRESULT``), with their documented names and values.

How to compare: a code is the signed 32-bit value C returns. Compare it with these constants
(``err.code == codes.SR_CONTEXT_DATA_OVER_LIMIT``) or with its name, or compare its
``unsigned`` form with the documented hexadecimal value:

>>> from msgrpriv import codes, HResult
>>> code = HResult(0x81000611)      # the unsigned spelling is accepted here
>>> code == codes.SR_CONTEXT_DATA_OVER_LIMIT, code.unsigned == 0x81000611, code.name
(True, True, 'SR_CONTEXT_DATA_OVER_LIMIT')
>>> code == 0x81000611              # an int cannot equal (and hash as) both forms
False

Every code of ``include/msgrpriv.h`` is a module constant here, an :class:`HResult` (an
``int`` holding the signed 32-bit value, as C sees it). A test compares this table with the
header's ``#define`` lines, so the two cannot drift apart.

Families (docs/CONTRACT.md, "Result codes"), each raised as its own exception class
(see :mod:`msgrpriv.errors`):

- generic COM codes ``S_*``, ``E_*``, ``REGDB_E_*`` -> :class:`~msgrpriv.GenericError`;
- Lock and Key errors ``MSGR_E_API_*`` (0x810007xx) -> :class:`~msgrpriv.LockError`;
- session results ``SR_*`` (0x810006xx) -> :class:`~msgrpriv.SessionError`;
- Messenger client codes ``MSGR_E_*`` (0x810003xx) -> :class:`~msgrpriv.MessengerError`.
"""

from __future__ import annotations

from typing import Dict, Final, Optional


def _signed(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


class HResult(int):
    """A 32-bit result code.

    The value is the signed 32-bit integer C uses (failures are negative); the constructor
    also accepts the unsigned hexadecimal form, so ``HResult(0x81000609) == SR_SESSION_TIMEOUT``.
    ``name`` is the documented name (``None`` for a code the library does not define),
    ``text`` the library's English description (``msgr_result_text``), ``hex`` the
    conventional ``0x%08X`` spelling.
    """

    __slots__ = ()

    def __new__(cls, value: int) -> "HResult":
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"a result code must be an int, not {type(value).__name__}")
        if not -0x8000_0000 <= value <= 0xFFFF_FFFF:
            raise OverflowError(f"{value} does not fit a 32-bit result code")
        return super().__new__(cls, _signed(value))

    @property
    def name(self) -> Optional[str]:
        """The documented name (``"SR_SESSION_TIMEOUT"``), or ``None`` for an unknown code."""
        return NAMES.get(int(self))

    @property
    def unsigned(self) -> int:
        """The value as an unsigned 32-bit integer (``0x81000609``)."""
        return int(self) & 0xFFFFFFFF

    @property
    def hex(self) -> str:
        """The value as ``0x%08X``."""
        return f"0x{self.unsigned:08X}"

    @property
    def text(self) -> str:
        """The library's English description of the code (``msgr_result_text``)."""
        from ._library import result_text

        return result_text(int(self))

    @property
    def succeeded(self) -> bool:
        """True for a success code (S_OK, S_FALSE)."""
        return int(self) >= 0

    @property
    def failed(self) -> bool:
        """True for a failure code (negative)."""
        return int(self) < 0

    def __repr__(self) -> str:
        return f"<HResult {self.name or '?'} {self.hex}>"

    def __str__(self) -> str:
        return self.name or self.hex


S_OK: Final[HResult] = HResult(0x00000000)
"""The operation succeeded."""
S_FALSE: Final[HResult] = HResult(0x00000001)
"""The operation succeeded but there was nothing to return."""
E_NOTIMPL: Final[HResult] = HResult(0x80004001)
"""Not implemented."""
E_POINTER: Final[HResult] = HResult(0x80004003)
"""A required pointer argument was NULL."""
E_FAIL: Final[HResult] = HResult(0x80004005)
"""Unspecified failure."""
E_ILLEGAL_METHOD_CALL: Final[HResult] = HResult(0x8000000E)
"""The call is not allowed in the object's current mode or state."""
E_UNEXPECTED: Final[HResult] = HResult(0x8000FFFF)
"""An internal fault was contained; the library remains usable."""
E_HANDLE: Final[HResult] = HResult(0x80070006)
"""The handle is stale, released, forged or of the wrong kind."""
E_OUTOFMEMORY: Final[HResult] = HResult(0x8007000E)
"""Out of memory."""
E_INVALIDARG: Final[HResult] = HResult(0x80070057)
"""An argument is invalid: bad value, invalid UTF-8 or over its limit."""
E_ACCESSDENIED: Final[HResult] = HResult(0x80070005)
"""Access denied: the invitee's service accepts invitations from its contacts only."""
E_NOT_ENOUGH_QUOTA: Final[HResult] = HResult(0x80070718)
"""Over quota: the invitee's service refused the invitation, too many came from this sender in the last minute (HRESULT_FROM_WIN32(ERROR_NOT_ENOUGH_QUOTA))."""
E_FILE_NOT_FOUND: Final[HResult] = HResult(0x80070002)
"""The file does not exist (HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND))."""
E_INSUFFICIENT_BUFFER: Final[HResult] = HResult(0x8007007A)
"""The output buffer is NULL or too small; *needed holds the size required."""
REGDB_E_WRITEREGDB: Final[HResult] = HResult(0x80040151)
"""The application registry could not be written."""
MSGR_E_API_NOTINITIALIZED: Final[HResult] = HResult(0x81000751)
"""Lock and Key is not initialized: the client is not signed in yet."""
MSGR_E_API_LOCKED: Final[HResult] = HResult(0x81000752)
"""The session manager is locked: request a challenge (msgr_session_manager_request_challenge) and send its response (msgr_session_manager_send_response) first."""
MSGR_E_API_UNLOCK_FAILED: Final[HResult] = HResult(0x81000753)
"""The unlock failed; a sign-in allows one challenge: sign out and in again to try again."""
MSGR_E_API_ALREADY_UNLOCKED: Final[HResult] = HResult(0x81000754)
"""The session manager is already unlocked."""
MSGR_E_API_PENDING_UNLOCK: Final[HResult] = HResult(0x81000755)
"""A challenge is already pending; send its response first."""
MSGR_E_API_DISABLED: Final[HResult] = HResult(0x81000756)
"""Lock and Key is not in force on this service."""
SR_APPLICATION_LAUNCH_FAILED: Final[HResult] = HResult(0x81000601)
"""The application could not be launched."""
SR_INVITATION_DECLINED: Final[HResult] = HResult(0x81000602)
"""The invitation was declined."""
SR_CONNECTION_FAILURE: Final[HResult] = HResult(0x81000603)
"""The connection to the other party failed."""
SR_AUTHENTICATION_FAILED: Final[HResult] = HResult(0x81000604)
"""Authentication failed."""
SR_SESSION_NOT_READY: Final[HResult] = HResult(0x81000605)
"""The session is no longer in the SS_READY state."""
SR_SESSION_CANCELLED_LOCAL: Final[HResult] = HResult(0x81000606)
"""The session was cancelled on this side."""
SR_SESSION_CANCELLED_REMOTE: Final[HResult] = HResult(0x81000607)
"""The session was cancelled by the other side."""
SR_SESSION_PROTOCOL_ERROR: Final[HResult] = HResult(0x81000608)
"""Session protocol error."""
SR_SESSION_TIMEOUT: Final[HResult] = HResult(0x81000609)
"""The invitation was not answered in time."""
SR_CANCEL_BEFORE_CONNECT: Final[HResult] = HResult(0x8100060A)
"""The session was cancelled before any invitation was sent."""
SR_NOT_INVITEE: Final[HResult] = HResult(0x8100060B)
"""Only the invited side may do this."""
SR_NOT_INVITER: Final[HResult] = HResult(0x8100060C)
"""Only the inviting side may do this."""
SR_APP_ALREADY_REGISTERED: Final[HResult] = HResult(0x8100060D)
"""An application with this GUID is already registered."""
SR_APP_NOT_REGISTERED: Final[HResult] = HResult(0x8100060E)
"""The application is not registered."""
SR_NOT_VALID_FOR_APP_INVITE: Final[HResult] = HResult(0x8100060F)
"""Not valid before the invitation was accepted."""
SR_APP_NOT_SPECIFIED: Final[HResult] = HResult(0x81000610)
"""No application is set on the session."""
SR_CONTEXT_DATA_OVER_LIMIT: Final[HResult] = HResult(0x81000611)
"""Context data over 300 characters, or more than five sends."""
SR_NO_USER_INVITED: Final[HResult] = HResult(0x81000612)
"""Nobody has been invited to this session."""
SR_INVITED_SELF: Final[HResult] = HResult(0x81000613)
"""A user cannot invite themselves."""
SR_SESSION_STATE_INVALID: Final[HResult] = HResult(0x81000614)
"""The call is not valid in the session's current state."""
SR_INVITATION_SEND_FAILURE: Final[HResult] = HResult(0x81000615)
"""The invitation could not be delivered."""
SR_CANCEL_SEND_FAILURE: Final[HResult] = HResult(0x81000616)
"""The cancellation could not be delivered."""
SR_DECLINE_SEND_FAILURE: Final[HResult] = HResult(0x81000617)
"""The decline could not be delivered."""
SR_ACCEPT_SEND_FAILURE: Final[HResult] = HResult(0x81000618)
"""The acceptance could not be delivered."""
SR_CONTEXT_DATA_SEND_FAILURE: Final[HResult] = HResult(0x81000619)
"""The context data could not be delivered."""
SR_NETWORK_CONFIG_FAILURE: Final[HResult] = HResult(0x81000620)
"""Network configuration failure."""
SR_NET_NOT_SUPPORTED: Final[HResult] = HResult(0x81000621)
"""The network is not supported."""
SR_REMOTE_NET_NOT_SUPPORTED: Final[HResult] = HResult(0x81000622)
"""The other party's network is not supported."""
SR_FIREWALL_NOT_SUPPORTED: Final[HResult] = HResult(0x81000623)
"""The firewall configuration is not supported."""
SR_OLD_SIP_STACK: Final[HResult] = HResult(0x81000624)
"""The other party uses an old SIP stack."""
MSGR_E_ALREADY_LOGGED_ON: Final[HResult] = HResult(0x81000304)
"""This sign-in name is already signed in on the service."""
MSGR_E_USER_NOT_FOUND: Final[HResult] = HResult(0x8100030A)
"""No such user."""
MSGR_E_DISCONNECTED: Final[HResult] = HResult(0x8100030C)
"""The client was disconnected from the service."""
MSGR_E_NOT_LOGGED_ON: Final[HResult] = HResult(0x8100031E)
"""The user is not signed in."""
MSGR_E_SESSION_TIMEOUT: Final[HResult] = HResult(0x81000329)
"""The operation timed out."""
MSGR_E_SERVER_SHUTDOWN: Final[HResult] = HResult(0x81000347)
"""The service or client has shut down."""


#: Every documented code: name -> value. Generated from the header; tests keep it in sync.
CODES: Final[Dict[str, HResult]] = {
    k: v for k, v in dict(globals()).items() if isinstance(v, HResult) and k.isupper()
}

#: value -> name, for every documented code.
NAMES: Final[Dict[int, str]] = {int(v): k for k, v in CODES.items()}


def code_name(code: int) -> Optional[str]:
    """The documented name of a result code (signed or unsigned form), or ``None``."""
    return NAMES.get(_signed(code))


def family(code: int) -> str:
    """The family of a code: ``"lock"``, ``"session"``, ``"messenger"`` or ``"generic"``.

    Unknown codes are classified by their range (0x810007xx lock, 0x810006xx session,
    0x810003xx messenger); everything else is generic.
    """
    u = code & 0xFFFFFFFF
    if u & 0xFFFFFF00 == 0x81000700:
        return "lock"
    if u & 0xFFFFFF00 == 0x81000600:
        return "session"
    if u & 0xFFFFFF00 == 0x81000300:
        return "messenger"
    return "generic"
