"""Enumerations of the header: session states and flags, Lock and Key status, dispatch modes.

Members have Python names (``SessionState.CONNECTED``); the C names of the header are
aliases (``SessionState.SS_CONNECTED is SessionState.CONNECTED``). A test compares every C
name and value with ``include/msgrpriv.h``.

``str()`` and ``format()`` of a member give its Python name, on every Python version (the
standard ``IntEnum`` gives the number from Python 3.11 on); ``repr()`` is the standard one,
and a numeric format spec formats the number:

>>> from msgrpriv import SessionState, SessionFlags
>>> str(SessionState.CONNECTED), f"{SessionState.SS_READY}", f"{SessionState.READY:d}"
('CONNECTED', 'READY', '1')
>>> str(SessionFlags.INVITER | SessionFlags.APP_INVITE_COMPATIBLE), str(SessionFlags(0))
('INVITER|APP_INVITE_COMPATIBLE', 'NONE')
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

_NUMERIC_FORMATS = frozenset("bcdoxXneEfFgG%")


class _Named(IntEnum):
    """An IntEnum whose ``str()`` and ``format()`` are the member's name."""

    def __str__(self) -> str:
        return str(self.name)

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in _NUMERIC_FORMATS:
            return int.__format__(int(self), spec)
        return format(str(self), spec)


class _NamedFlag(IntFlag):
    """An IntFlag whose ``str()`` and ``format()`` are the names of its set bits, joined by
    ``|`` in definition order (``"NONE"`` for no bit, the number for unknown bits)."""

    def __str__(self) -> str:
        value = int(self)
        names = []
        for name, member in type(self).__members__.items():
            bit = int(member)
            if bit and bit & (bit - 1) == 0 and value & bit and name == member.name:
                names.append(name)
                value &= ~bit
        if value:
            names.append(hex(value))
        if not names:
            zero = [m.name for m in type(self).__members__.values() if int(m) == 0]
            return str(zero[0]) if zero else "0"
        return "|".join(names)

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in _NUMERIC_FORMATS:
            return int.__format__(int(self), spec)
        return format(str(self), spec)


class SessionState(_Named):
    """SESSION_STATE: the state of a session (``Session.state``, ``state_changed`` events)."""

    UNKNOWN = 0
    READY = 1
    INVITATION = 2
    ACCEPTED = 3
    CONNECTED = 4
    CANCELLED = 5
    DECLINED = 6
    TERMINATED = 7

    SS_UNKNOWN = 0
    SS_READY = 1
    SS_INVITATION = 2
    SS_ACCEPTED = 3
    SS_CONNECTED = 4
    SS_CANCELLED = 5
    SS_DECLINED = 6
    SS_TERMINATED = 7

    @property
    def terminal(self) -> bool:
        """True for the states a session ends in (CANCELLED, DECLINED, TERMINATED)."""
        return self in (SessionState.CANCELLED, SessionState.DECLINED, SessionState.TERMINATED)


class LockStatus(_Named):
    """LockStatus: the Lock and Key status of one session manager."""

    NOT_INITIALIZED = 1
    INITIALIZED = 2
    PENDING_RESULT = 3
    UNLOCKED = 4
    UNLOCK_FAILED = 5
    DISABLED = 6

    LOCK_NOTINITIALIZED = 1
    LOCK_INITIALIZED = 2
    LOCK_PENDINGRESULT = 3
    LOCK_UNLOCKED = 4
    LOCK_UNLOCKFAILED = 5
    LOCK_DISABLED = 6

    @property
    def usable(self) -> bool:
        """True when the manager's calls are allowed (UNLOCKED or DISABLED)."""
        return self in (LockStatus.UNLOCKED, LockStatus.DISABLED)


class SessionFlags(_NamedFlag):
    """SESSION_FLAGS: the bits of ``Session.flags``."""

    NONE = 0
    INVITER = 1
    INVITEE = 2
    APP_INVITE_COMPATIBLE = 4

    SF_NONE = 0
    SF_INVITER = 1
    SF_INVITEE = 2
    SF_APP_INVITE_COMPATIBLE = 4


class DispatchMode(_Named):
    """MSGR_DISPATCH_MODE: how a client's events reach the Python callbacks.

    ``MANUAL``: :meth:`Client.dispatch` (or the asyncio helper) delivers them on the calling
    thread. ``THREAD``: a thread owned by the client delivers them as they arrive.
    """

    MANUAL = 0
    THREAD = 1

    MSGR_DISPATCH_MANUAL = 0
    MSGR_DISPATCH_THREAD = 1


class TraceLevel(_Named):
    """MSGR_TRACE_LEVEL: how much :func:`set_trace` tells; each level includes the ones
    before it. ``WARNING``: probable mistakes and losses (an invitation no manager was told
    of, a message not delivered, events waiting while nobody dispatches); ``INFO``: sign-ins
    and every message sent and received; ``DEBUG``: every event queued and delivered."""

    OFF = 0
    WARNING = 1
    INFO = 2
    DEBUG = 3


class ConnectionState(_Named):
    """MSGR_CONNECTION_STATE: whether a client is signed in (:meth:`Client.connection_state`).

    ``RECONNECTING``: signed out by a lost connection (XMPP); the service is signing the
    client in again, with growing pauses, and each manager gets ``lock_enable`` and
    ``lock_status_changed`` when it gets in. :meth:`Client.sign_in` signs in at once instead;
    :meth:`Client.sign_out` stops the attempts.
    """

    SIGNED_OUT = 0
    SIGNED_IN = 1
    RECONNECTING = 2


class Tls(_Named):
    """MSGR_TLS: how an XMPP service protects its connections (``Service(tls=...)``).

    ``STARTTLS`` (the default): STARTTLS required, the server's certificate verified (against
    the system's store or ``ca_file``); a server that offers no STARTTLS or whose certificate
    does not verify refuses the sign-in with SR_NETWORK_CONFIG_FAILURE. ``DIRECT``: TLS from
    the first byte (XEP-0368), verified the same way. ``PLAIN``: plain TCP, to a loopback IP
    address only (E_INVALIDARG otherwise).
    """

    STARTTLS = 0
    DIRECT = 1
    PLAIN = 2

    MSGR_TLS_STARTTLS = 0
    MSGR_TLS_DIRECT = 1
    MSGR_TLS_PLAIN = 2


def _enum_value(cls, value: int):  # type: ignore[no-untyped-def]
    """``cls(value)``, or the plain int when the library sent a value Python does not know."""
    try:
        return cls(value)
    except ValueError:
        return value
