"""The Pythonic objects: Service, Client, SessionManager, Session.

Each wraps one C handle it owns (one reference, for sessions) and releases it in
:meth:`Managed.close`, at the end of a ``with`` block, or when it is garbage collected.
"""

from __future__ import annotations

import atexit
import math
import operator
import os
import random
import threading
import time
import warnings
import weakref
from ctypes import byref, c_int, c_int32, c_size_t, c_uint32, create_string_buffer, memmove, sizeof
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
    cast,
    overload,
)

from . import _callbacks, _ffi
from ._callbacks import EventSpec, Registration, advise, event_spec
from ._ffi import (
    CALLBACK_TYPES,
    MSGR_LOCK_RESPONSE_SIZE,
    ClientHandle,
    ManagerHandle,
    ServiceHandle,
    CREDENTIAL_CALLBACK,
    ServiceOptions,
    SessionHandle,
)
from ._library import lib
from .codes import (
    E_HANDLE,
    E_INVALIDARG,
    E_INSUFFICIENT_BUFFER,
    S_FALSE,
    SR_APP_NOT_SPECIFIED,
    SR_NO_USER_INVITED,
    SR_SESSION_CANCELLED_REMOTE,
    HResult,
)
from .enums import ConnectionState, DispatchMode, LockStatus, SessionFlags, SessionState, Tls, TraceLevel, _enum_value
from .errors import GenericError, MsgrError, check, error_for

if TYPE_CHECKING:  # pragma: no cover
    from .aio import EventStream, LoopAttachment

StrLike = Union[str, bytes]
_M = TypeVar("_M", bound="Managed")
_R = TypeVar("_R")
if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import ParamSpec

    _P = ParamSpec("_P")

# ---- argument conversion ---------------------------------------------------------------------


def _in_str(value: Any, what: str, optional: bool = False) -> Optional[bytes]:
    """str/bytes -> NUL-terminated UTF-8 for C. ``None`` only when optional."""
    if value is None:
        if optional:
            return None
        raise TypeError(f"{what} must be a str, not None")
    if isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate
            raise error_for(
                E_INVALIDARG, f"{what}: {value[exc.start:exc.end]!r} at {exc.start} is not UTF-8 text"
            ) from exc
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if b"\0" in data:
        raise error_for(E_INVALIDARG, f"{what} contains a NUL character")
    return data


def _in_path(value: Any, what: str) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        value = os.fsencode(value)
    return _in_str(value, what, optional=True)


def _in_int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, float) or value is None:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise OverflowError(f"{what} {v} is out of range [{lo}, {hi}]")
    return v


def _in_bool(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, int)):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return bool(value)


def _in_seconds(value: Any, what: str, hi_ms: int) -> int:
    """A number of seconds (int or float, >= 0) -> whole milliseconds, rounded to the nearest."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{what} must be a number of seconds >= 0, not {value}")
    if math.isinf(value) or value * 1000 > hi_ms + 0.5:
        raise OverflowError(f"{what} {value} s is out of range [0, {hi_ms / 1000}]")
    return int(round(value * 1000))


def _in_timeout(seconds: Any, what: str, old_ms: Any, old_what: str) -> int:
    """A timeout given in seconds (``None``: the library's default) or, deprecated, in
    milliseconds under its old name (0: the default): milliseconds for C, 0 for the default."""
    if old_ms is not None:
        warnings.warn(f"{old_what} is deprecated; use {what} (seconds)", DeprecationWarning, stacklevel=3)
        if seconds is not None:
            raise TypeError(f"give {what} or {old_what}, not both")
        return _in_int(old_ms, old_what, 0, 0xFFFF_FFFF)
    if seconds is None:
        return 0
    ms = _in_seconds(seconds, what, 0xFFFF_FFFF)
    if ms == 0:
        if seconds == 0:
            raise ValueError(f"{what} must be > 0 seconds (None: the default)")
        ms = 1  # under half a millisecond: the shortest timeout C takes
    return ms


def _in_hr(value: Any, what: str) -> int:
    if isinstance(value, MsgrError):
        return int(value.code)
    return int(HResult(_in_int(value, what, -0x8000_0000, 0xFFFF_FFFF)))


def _out_str(fn: Any, handle: int, *, allow_false: bool = False) -> Tuple[int, str]:
    """Calls a string getter with the caller-buffer convention; returns (hr, text)."""
    size = 128
    needed = c_size_t()
    for _ in range(8):  # the value may grow between two calls: try again
        buf = create_string_buffer(size)
        hr = fn(handle, buf, size, byref(needed))
        if hr == E_INSUFFICIENT_BUFFER and needed.value > size:
            size = needed.value
            continue
        check(hr)
        return hr, buf.raw[: max(needed.value - 1, 0)].decode("utf-8", "replace")
    raise error_for(E_INSUFFICIENT_BUFFER)  # pragma: no cover


def _value(handle: Any) -> int:
    """The token an output handle received (a successful call always writes one)."""
    v = handle.value
    if not v:  # pragma: no cover - the library broke its contract
        raise GenericError(E_HANDLE, "the library returned a NULL handle")
    return int(v)


def _closed(obj: "Managed") -> MsgrError:
    return error_for(E_HANDLE, f"{type(obj).__name__} is closed")


# ---- the managed base class ------------------------------------------------------------------

_live: "weakref.WeakSet[Managed]" = weakref.WeakSet()


class Managed:
    """Base class of every object that owns a C handle.

    :meth:`close` releases the handle (idempotent); ``with obj:`` closes on exit; the
    handle is also released when the object is garbage collected. Every method of a closed
    object raises :class:`~msgrpriv.GenericError` with code E_HANDLE.
    """

    _handle: Optional[int] = None
    _client: Optional["Client"] = None

    def __init__(self) -> None:
        self._entries: Dict[int, Any] = {}
        _live.add(self)

    def _h(self) -> int:
        h = self._handle
        if h is None:
            raise _closed(self)
        return h

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the object was never opened)."""
        return self._handle is None

    @property
    def handle(self) -> Optional[int]:
        """The C handle (an opaque token) as an int; ``None`` once closed."""
        return self._handle

    def _release(self, handle: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take(self) -> Optional[int]:
        """Takes the handle out of the object, atomically without a lock: of two threads (or
        a finalizer interrupting a close on the same thread) exactly one gets it."""
        return self.__dict__.pop("_handle", None)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Releases the handle: registrations end (their destroy notifications run).

        Idempotent: closing a closed object does nothing. Takes no lock, so the garbage
        collector may run it anywhere (finalizers of objects in reference cycles). On a thread
        that is inside one of the package's locked regions (a finalizer the collector runs
        there) the object is closed at once and its handle released when the thread leaves
        that region.
        """
        h = self._take()
        if h is None or _callbacks.finalizing:
            return
        if _callbacks.holding_lock():
            _callbacks.defer_release(self, h)
            return
        hr = self._release(h)
        _callbacks.release_deferred()
        if hr < 0 and hr != E_HANDLE:
            raise error_for(hr)

    def __enter__(self: _M) -> _M:
        """Returns the object itself, of its own type (``with Service() as svc``: a Service)."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if self._handle is None or _callbacks.finalizing:
            return
        try:
            self.close()
        except BaseException:  # a finalizer must not raise
            pass

    def _on(self, spec: EventSpec, fn: Callable["_P", _R]) -> "Registration[_P, _R]":
        return advise(self, spec, fn)

    def _unadvise(self, handle: int, cookie: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


@atexit.register
def _at_exit() -> None:
    """Closes every live object before the interpreter goes away: client threads stop and no
    callback can run into a finalizing interpreter."""
    objs = list(_live)
    order = (Client, Session, SessionManager, Service)
    for kind in order:
        for obj in objs:
            if isinstance(obj, kind):
                try:
                    obj.close()
                except BaseException:
                    pass
    _callbacks.release_deferred()
    _callbacks.finalizing = True


# ---- Service ---------------------------------------------------------------------------------


def _credential_trampoline(credentials: Callable[[str], Optional[str]]) -> Any:
    """The C credential callback around ``credentials``; it must outlive the service (clients
    keep a reference to the Service object that holds it)."""

    def call(_ud: Any, name: Optional[bytes], buf: Any, size: int) -> bool:
        try:
            password = credentials((name or b"").decode())
        except Exception:
            return False
        if password is None:
            return False
        data = str(password).encode()
        if b"\0" in data or len(data) + 1 > size:
            return False
        memmove(buf, data + b"\0", len(data) + 1)
        return True

    return CREDENTIAL_CALLBACK(call)


class Service(Managed):
    """A Messenger service (``msgr_service``): what users sign in to. By default the embedded,
    in-process service; with ``xmpp_server`` an XMPP server (the library built with its
    ``xmpp`` feature; docs/xmpp.md), where sign-in names are bare JIDs and clients in any
    process invite each other.

    Every argument is a keyword argument. Times are in seconds (int or float, rounded to the
    millisecond), as in :mod:`asyncio`.

    :param invitation_timeout: how many seconds an invitation may go unanswered (``None``: the
        default, 120 s).
    :param manual_clock: when true, time moves only through :meth:`advance_time` (tests;
        embedded service only).
    :param registry_path: a JSON file for the application registry, shared between
        processes (a change made through any service on it reaches every manager's
        ``app_registered``/``app_unregistered`` within about a tenth of a second);
        ``None`` keeps it in memory.
    :param xmpp_server: ``"host:port"`` of an XMPP server (an IP literal, ``[...]`` for IPv6,
        or a host name resolved at each sign-in). ``None``: the embedded service.
    :param credentials: with ``xmpp_server``: called with a sign-in name on the thread that
        signs in; returns its password, or ``None`` to refuse the sign-in
        (SR_AUTHENTICATION_FAILED). An exception counts as ``None``.
    :param xmpp_resource: the resource each client binds (``None``: "msgrpriv").
    :param tls: how the connection is protected: :attr:`Tls.STARTTLS` (the default; the
        server must offer STARTTLS and its certificate must verify, otherwise the sign-in
        fails with SR_NETWORK_CONFIG_FAILURE), :attr:`Tls.DIRECT` (TLS from the first byte)
        or :attr:`Tls.PLAIN` (plain TCP, to a loopback IP address only: E_INVALIDARG
        otherwise).
    :param ca_file: a PEM file of the certificates to trust for the server's certificate,
        instead of the system's store (``None``). Unreadable or holding no certificate:
        E_INVALIDARG.
    :param xmpp_domain: the XMPP domain: the certificate's name and the stream's ``to``; a
        sign-in name without '@' is completed with it, one at another domain is refused
        (E_INVALIDARG). ``None``: each sign-in name's own domain.
    :param connect_timeout: how many seconds a sign-in may take (``None``: 10 s).
    :param request_timeout: how many seconds a step may wait for its acknowledgement
        (``None``: 10 s).
    :param keepalive: how many quiet seconds pass before the client pings the server
        (``None``: 30 s); no answer within ``request_timeout`` is a lost connection.
    :param reconnect_max: the longest pause, in seconds, between attempts to sign in again
        after a lost connection (the first comes after about a second, each later one after
        twice the pause before); ``None``: 30 s; ``math.inf``: never (the client stays
        signed out). See :meth:`Client.connection_state`.
    :param allow_strangers: take invitations from users who are not among the invitee's
        contacts (its roster and the server's shared groups). False (the default): they are
        refused, and the inviter's session ends declined with E_ACCESSDENIED.
    :param invitations_per_minute: how many invitations one sender may send to one client in
        a minute; more end declined with E_NOT_ENOUGH_QUOTA. ``None``: 30; 0: no limit.
    :param invitation_timeout_ms: deprecated: ``invitation_timeout`` in milliseconds (0: the
        default); so are ``connect_timeout_ms`` and ``request_timeout_ms``. They warn
        (``DeprecationWarning``); giving both spellings of one is a ``TypeError``.
    """

    def __init__(
        self,
        *,
        invitation_timeout: Optional[float] = None,
        manual_clock: bool = False,
        registry_path: Union[str, "os.PathLike[str]", None] = None,
        xmpp_server: Optional[str] = None,
        credentials: Optional[Callable[[str], Optional[str]]] = None,
        xmpp_resource: Optional[StrLike] = None,
        tls: Tls = Tls.STARTTLS,
        ca_file: Union[str, "os.PathLike[str]", None] = None,
        xmpp_domain: Optional[StrLike] = None,
        connect_timeout: Optional[float] = None,
        request_timeout: Optional[float] = None,
        keepalive: Optional[float] = None,
        reconnect_max: Optional[float] = None,
        allow_strangers: bool = False,
        invitations_per_minute: Optional[int] = None,
        invitation_timeout_ms: Optional[int] = None,
        connect_timeout_ms: Optional[int] = None,
        request_timeout_ms: Optional[int] = None,
    ) -> None:
        super().__init__()
        path = _in_path(registry_path, "registry_path")
        invitation = _in_timeout(invitation_timeout, "invitation_timeout", invitation_timeout_ms, "invitation_timeout_ms")
        connect = _in_timeout(connect_timeout, "connect_timeout", connect_timeout_ms, "connect_timeout_ms")
        request = _in_timeout(request_timeout, "request_timeout", request_timeout_ms, "request_timeout_ms")
        opts = ServiceOptions(
            struct_size=0,
            invitation_timeout_ms=invitation,
            manual_clock=_in_bool(manual_clock, "manual_clock"),
            registry_path=path,
        )
        opts.struct_size = sizeof(ServiceOptions)
        self._credentials_cb: Any = None
        if xmpp_server is not None:
            host, sep, port = str(xmpp_server).rpartition(":")
            if not sep or not port.isdigit():
                raise error_for(E_INVALIDARG, f"xmpp_server must be 'host:port', not {xmpp_server!r}")
            if credentials is None or not callable(credentials):
                raise TypeError("an XMPP service needs a credentials callable")
            opts.transport = 1
            opts.server_host = _in_str(host.strip("[]"), "xmpp_server")
            opts.server_port = _in_int(int(port), "xmpp_server port", 1, 65535)
            opts.xmpp_resource = _in_str(xmpp_resource, "xmpp_resource", optional=True)
            opts.tls = _in_int(tls, "tls", -0x8000_0000, 0x7FFF_FFFF)
            opts.ca_file = _in_path(ca_file, "ca_file")
            opts.xmpp_domain = _in_str(xmpp_domain, "xmpp_domain", optional=True)
            opts.connect_timeout_ms = connect
            opts.request_timeout_ms = request
            opts.xmpp_keepalive_ms = _in_timeout(keepalive, "keepalive", None, "")
            if reconnect_max is not None and isinstance(reconnect_max, float) and math.isinf(reconnect_max):
                opts.xmpp_reconnect_max_ms = 0xFFFF_FFFF
            else:
                opts.xmpp_reconnect_max_ms = _in_timeout(reconnect_max, "reconnect_max", None, "")
            opts.xmpp_allow_strangers = _in_bool(allow_strangers, "allow_strangers")
            if invitations_per_minute is not None:
                n = _in_int(invitations_per_minute, "invitations_per_minute", 0, 0xFFFF_FFFE)
                opts.xmpp_invitations_per_minute = n if n else 0xFFFF_FFFF
            self._credentials_cb = _credential_trampoline(credentials)
            opts.credentials = self._credentials_cb
        out = ServiceHandle()
        check(lib.msgr_service_create(byref(opts), byref(out)))
        self._handle = _value(out)

    def _release(self, handle: int) -> int:
        return int(lib.msgr_service_destroy(handle))

    def add_app_key(self, app_id: StrLike, key: StrLike) -> None:
        """Adds or replaces a Lock and Key application ID/key pair; Lock and Key is in force
        from the next sign-in on once the service holds one pair."""
        check(lib.msgr_service_add_app_key(self._h(), _in_str(app_id, "app_id"), _in_str(key, "key")))

    def advance_time(self, seconds: float) -> None:
        """Moves the manual clock forward by ``seconds`` (int or float, rounded to the
        millisecond); due invitation timeouts fire (their events are queued).
        GenericError(E_ILLEGAL_METHOD_CALL) on a real clock."""
        check(lib.msgr_service_advance_clock(self._h(), _in_seconds(seconds, "seconds", 2**64 - 1)))

    def advance_clock(self, ms: int) -> None:
        """Deprecated (``DeprecationWarning``): :meth:`advance_time` in milliseconds."""
        warnings.warn("Service.advance_clock(ms) is deprecated; use Service.advance_time(seconds)",
                      DeprecationWarning, stacklevel=2)
        check(lib.msgr_service_advance_clock(self._h(), _in_int(ms, "ms", 0, 2**64 - 1)))

    def set_reachable(self, sign_in_name: StrLike, reachable: bool) -> bool:
        """Test hook: makes messages to ``sign_in_name`` fail (or succeed again).

        Returns False when that user is not signed in (nothing changed), True otherwise.
        """
        hr = check(
            lib.msgr_service_set_reachable(
                self._h(), _in_str(sign_in_name, "sign_in_name"), _in_bool(reachable, "reachable")
            )
        )
        return hr != S_FALSE

    def client(self, sign_in_name: StrLike, mode: DispatchMode = DispatchMode.MANUAL) -> "Client":
        """Signs a user in: shorthand for ``Client(service, sign_in_name, mode)``."""
        return Client(self, sign_in_name, mode)

    def __repr__(self) -> str:
        return f"<Service {'closed' if self.closed else hex(self._handle or 0)}>"


# ---- Client ----------------------------------------------------------------------------------

_CHUNK_MS = 200  # long waits are cut in slices so that Ctrl-C is seen
_NULL_LAUNCHER = CALLBACK_TYPES["msgr_launch_callback"]()  # NULL: the default launcher


_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()
"""Every client object, for the fork handler (which gives each a fresh lock)."""


class Client(Managed):
    """A signed-in user (``msgr_client``) and its event queue.

    :param service: the :class:`Service` to sign in to.
    :param sign_in_name: the user's sign-in name (at most 256 characters).
    :param mode: :attr:`DispatchMode.MANUAL` (events are delivered by :meth:`dispatch` or the
        asyncio helper, on the calling thread) or :attr:`DispatchMode.THREAD` (a thread owned
        by the client delivers them).

    Exceptions raised by callbacks are stored on the client: :meth:`dispatch` re-raises them;
    in thread mode :meth:`raise_pending` does, and so does the client's next method call.
    """

    def __init__(
        self,
        service: Service,
        sign_in_name: StrLike,
        mode: DispatchMode = DispatchMode.MANUAL,
    ) -> None:
        super().__init__()
        if not isinstance(service, Service):
            raise TypeError(f"service must be a Service, not {type(service).__name__}")
        name = _in_str(sign_in_name, "sign_in_name")
        m = _in_int(mode, "mode", -0x8000_0000, 0x7FFF_FFFF)
        self._service = service
        self._pending: List[BaseException] = []
        self._pending_lock = _callbacks.Guarded(threading.RLock())
        _clients.add(self)
        self._launcher_entry: Optional[Any] = None
        self._attachments: List[Any] = []
        # Managers made on this client, and what follows new managers and sessions (the
        # client's event streams, msgrpriv.aio).
        self._managers: "weakref.WeakSet[SessionManager]" = weakref.WeakSet()
        self._followers: List[Callable[[Managed], None]] = []
        out = ClientHandle()
        check(lib.msgr_client_create(service._h(), name, m, byref(out)))
        self._handle = _value(out)
        self.mode = DispatchMode(m)
        """The dispatch mode chosen at creation."""
        self.sign_in_name = name.decode() if name is not None else ""
        """The sign-in name given at creation."""

    @property
    def service(self) -> Service:
        """The service this client signed in to."""
        return self._service

    @property
    def _client(self) -> "Client":  # type: ignore[override]
        # A property, not an attribute: no self-reference cycle.
        return self

    def _release(self, handle: int) -> int:
        for att in list(self._attachments):
            try:
                att.close()
            except BaseException:
                pass
        hr = int(lib.msgr_client_destroy(handle))
        self._drop_launcher()
        return hr

    # exceptions from callbacks

    def _store_exception(self, exc: BaseException) -> None:
        with self._pending_lock:
            self._pending.append(exc)

    @property
    def pending_exceptions(self) -> List[BaseException]:
        """Exceptions raised by callbacks and not re-raised yet (oldest first)."""
        with self._pending_lock:
            return list(self._pending)

    def raise_pending(self) -> None:
        """Re-raises the oldest exception a callback raised, if any.

        Later ones (when several callbacks raised) go to ``sys.unraisablehook``, with
        ``err_msg`` "Further exception in a msgrpriv callback" and ``object`` this client.
        """
        if not self._pending:
            return
        with self._pending_lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        for extra in pending[1:]:
            _callbacks.unraisable(extra, "Further exception in a msgrpriv callback", self)
        raise pending[0]

    # sign-in state

    def sign_out(self) -> None:
        """Signs out: live sessions end on both sides, managers become LOCK_NOTINITIALIZED."""
        self.raise_pending()
        check(lib.msgr_client_sign_out(self._h()))

    def sign_in(self) -> None:
        """Signs in again: every manager is locked again (OnLockEnable, OnLockStatusChanged)."""
        self.raise_pending()
        check(lib.msgr_client_sign_in(self._h()))

    def shutdown(self) -> None:
        """Shuts the client down: signs out, then OnAppShutdown is the managers' last event."""
        self.raise_pending()
        check(lib.msgr_client_shutdown(self._h()))

    def session_manager(self) -> "SessionManager":
        """Creates a session manager on this client: ``SessionManager(client)``."""
        return SessionManager(self)

    # event delivery

    def dispatch(self, timeout: Optional[float] = None) -> int:
        """Delivers queued events (manual mode) and returns how many were delivered.

        Waits up to ``timeout`` seconds (``None``: for ever, ``0``: poll) for the first
        event, then delivers every pending one, including events raised by the callbacks it
        runs. The first exception raised by a callback is re-raised here, after the other
        events were delivered. GenericError(E_ILLEGAL_METHOD_CALL) for a thread-mode client.
        """
        h = self._h()
        _callbacks.release_deferred()
        self.raise_pending()
        if timeout is None:
            deadline = None
        else:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
            if math.isnan(timeout) or timeout < 0:
                raise ValueError(f"timeout must be >= 0, not {timeout}")
            deadline = time.monotonic() + timeout
        n = c_uint32()
        while True:
            if deadline is None:
                ms = _CHUNK_MS
            else:
                remaining = deadline - time.monotonic()
                ms = 0 if remaining <= 0 else min(_CHUNK_MS, math.ceil(remaining * 1000))
            hr = lib.msgr_client_dispatch(h, ms, byref(n))
            self.raise_pending()
            check(hr)
            if n.value or ms == 0 or (deadline is not None and time.monotonic() >= deadline):
                return n.value

    def pump(self) -> int:
        """Delivers events until none is pending (``dispatch(0)`` in a loop); returns the count."""
        total = 0
        while True:
            n = self.dispatch(0)
            if n == 0:
                return total
            total += n

    def connection_state(self) -> Tuple[ConnectionState, HResult]:
        """Whether the client is signed in, and why it was last signed out other than by the
        application: S_OK when it never was, MSGR_E_DISCONNECTED (a lost connection),
        MSGR_E_ALREADY_LOGGED_ON (another sign-in of the same name replaced it; not undone),
        SR_AUTHENTICATION_FAILED or SR_NETWORK_CONFIG_FAILURE (signing in again was refused,
        which ends the attempts)."""
        state = c_int32()
        reason = c_int32()
        check(lib.msgr_client_get_connection_state(self._h(), byref(state), byref(reason)))
        return ConnectionState(state.value), HResult(reason.value)

    def event_fd(self) -> int:
        """A file descriptor readable while events are pending (manual mode), for
        select/poll/epoll or ``loop.add_reader``. Owned by the client: do not read or close it."""
        fd = c_int()
        check(lib.msgr_client_event_fd(self._h(), byref(fd)))
        return fd.value

    def fileno(self) -> int:
        """Same as :meth:`event_fd`, so a client can be passed to ``select`` directly."""
        return self.event_fd()

    def events(self, names: Optional[List[str]] = None) -> "EventStream":
        """Every event of this client, for ``async for``: those of its managers (existing
        and created later) and of their sessions (created, received in an invitation, or
        found by :meth:`SessionManager.launching_session`), as :class:`msgrpriv.aio.Event`
        objects, from now until the stream is closed (``names``: only those events). See
        :func:`msgrpriv.aio.events`; must be called in a running event loop."""
        from .aio import EventStream

        return EventStream(self, names)

    def _follow(self, obj: "Managed") -> None:
        """Hands a new manager or session of this client to its event streams."""
        for follow in list(self._followers):
            follow(obj)

    def attach_to_loop(self, loop: Any = None) -> "LoopAttachment":
        """Delivers this client's events inside an asyncio loop (see :mod:`msgrpriv.aio`)."""
        from .aio import LoopAttachment

        return LoopAttachment(self, loop)

    # launcher

    def set_launcher(self, launcher: Optional[Callable[[str, str, str], int]]) -> None:
        """Replaces the launcher run for an accepted invitation whose application has a path.

        ``launcher(path, session_id, app_guid)`` starts the application and returns its
        process id (the session becomes that process's launching session). Raising a
        :class:`MsgrError` refuses with its code; any other exception gives E_FAIL and is
        re-raised from :meth:`dispatch`. Either way the session ends with
        SR_APPLICATION_LAUNCH_FAILED. ``None`` restores the default launcher, which starts
        the executable with the SessionID as its only argument.
        """
        h = self._h()
        self.raise_pending()
        if launcher is None:
            check(lib.msgr_client_set_launcher(h, _NULL_LAUNCHER, None))
            self._drop_launcher()
            return
        if not callable(launcher):
            raise TypeError(f"launcher must be callable or None, not {type(launcher).__name__}")
        entry = _callbacks.add_entry(self, launcher, None)
        try:
            check(lib.msgr_client_set_launcher(h, _callbacks.LAUNCH_TRAMPOLINE, entry.index))
        except BaseException:
            _callbacks.drop_entry(entry.index)
            raise
        self._drop_launcher()
        self._launcher_entry = entry

    def _drop_launcher(self) -> None:
        # The C launcher has no destroy notification: its entry ends when it is replaced or
        # the client is destroyed. A call already running looks the index up and finds nothing.
        entry, self._launcher_entry = self._launcher_entry, None
        if entry is not None:
            _callbacks.drop_entry(entry.index)

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:  # no exception in flight: surface the callbacks' ones
                self.raise_pending()
        finally:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.mode.name.lower()
        return f"<Client {self.sign_in_name!r} {state}>"


# ---- SessionManager --------------------------------------------------------------------------


class Application(NamedTuple):
    """One registered application (a line of the Applications listing)."""

    guid: str
    """``{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}``, uppercase."""
    name: str
    """The application's name."""
    url: str
    """Where to get it."""
    path: Optional[str]
    """The executable's absolute path, ``None`` when registered without one."""


def _parse_applications(text: str) -> List[Application]:
    apps = []
    for line in text.split("\n"):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 4:
            raise GenericError(-0x7FFF0001, f"malformed Applications line {line!r}")
        guid, name, url, path = parts
        apps.append(Application(guid, name, url, path or None))
    return apps


class SessionManager(Managed):
    """A session manager (``msgr_session_manager``: IMsgrSessionManager and IMsgrLock).

    Created on a :class:`Client`. While its client enforces Lock and Key it is locked: unlock
    it with :meth:`request_challenge`, the ``lock_challenge`` event,
    :func:`~msgrpriv.compute_response` and :meth:`send_response`.

    Events: ``on_<event>(fn)`` registers ``fn`` and returns a :class:`Registration`;
    ``@manager.on("event")`` is the decorator form. See :data:`MANAGER_EVENTS`.
    """

    def __init__(self, client: Client) -> None:
        super().__init__()
        if not isinstance(client, Client):
            raise TypeError(f"client must be a Client, not {type(client).__name__}")
        client.raise_pending()
        out = ManagerHandle()
        check(lib.msgr_session_manager_create(client._h(), byref(out)))
        self._handle = _value(out)
        self._client = client
        client._managers.add(self)
        client._follow(self)

    @property
    def client(self) -> Client:
        """The client this manager was created on."""
        assert self._client is not None
        return self._client

    def _release(self, handle: int) -> int:
        return int(lib.msgr_session_manager_release(handle))

    def _unadvise(self, handle: int, cookie: int) -> int:
        return int(lib.msgr_session_manager_unadvise(handle, cookie))

    # sessions

    def create_session(self) -> "Session":
        """CreateSession: a new session in SessionState.READY, flags INVITER, a fresh SessionID.
        A new session is needed for every invitation. LockError while locked."""
        out = SessionHandle()
        check(lib.msgr_session_manager_create_session(self._h(), byref(out)))
        return self._followed(Session._adopt(_value(out), self._client))

    def _followed(self, session: "Session") -> "Session":
        if self._client is not None:
            self._client._follow(session)
        return session

    def launching_session(self, pid: int) -> "Session":
        """GetLaunchingSession: the session whose acceptance launched process ``pid``.

        GenericError(E_FAIL) when no session launched it, E_INVALIDARG for pid 0.
        """
        out = SessionHandle()
        check(
            lib.msgr_session_manager_get_launching_session(
                self._h(), _in_int(pid, "pid", 0, 0xFFFF_FFFF), byref(out)
            )
        )
        return self._followed(Session._adopt(_value(out), self._client))

    # applications

    def register_application(
        self,
        guid: StrLike,
        name: StrLike,
        url: StrLike,
        path: Union[str, "os.PathLike[str]", None] = None,
        flags: int = 0,
    ) -> None:
        """RegisterApplication: adds an application to the registry this client shares;
        every manager sharing it gets ``app_registered``.

        ``guid`` in braced form (either case), ``name`` and ``url`` at most 256 characters,
        ``path`` ``None`` or an absolute path to an existing file, ``flags`` 0.
        SessionError(SR_APP_ALREADY_REGISTERED) when the GUID is registered already.
        """
        check(
            lib.msgr_session_manager_register_application(
                self._h(),
                _in_str(guid, "guid"),
                _in_str(name, "name"),
                _in_str(url, "url"),
                _in_path(path, "path"),
                _in_int(flags, "flags", 0, 0xFFFF_FFFF),
            )
        )

    def unregister_application(self, guid: StrLike) -> None:
        """UnRegisterApplication: every manager sharing the registry gets ``app_unregistered``.
        SessionError(SR_APP_NOT_REGISTERED) when it is not registered."""
        check(lib.msgr_session_manager_unregister_application(self._h(), _in_str(guid, "guid")))

    @property
    def applications(self) -> List[Application]:
        """The registered applications, sorted by GUID (a read-only listing)."""
        _, text = _out_str(lib.msgr_session_manager_get_applications, self._h())
        return _parse_applications(text)

    # Lock and Key

    @property
    def lock_status(self) -> LockStatus:
        """The manager's Lock and Key status."""
        v = c_int()
        check(lib.msgr_session_manager_get_lock_status(self._h(), byref(v)))
        return cast(LockStatus, _enum_value(LockStatus, v.value))

    def request_challenge(self, cookie: Optional[int] = None) -> int:
        """RequestChallenge: asks the service for a challenge; the ``lock_challenge`` event
        brings it. ``cookie`` (a 32-bit signed int) identifies the exchange; ``None`` picks a
        fresh random one. Returns the cookie."""
        if cookie is None:
            cookie = random.SystemRandom().randint(1, 0x7FFF_FFFF)
        c = _in_int(cookie, "cookie", -0x8000_0000, 0x7FFF_FFFF)
        check(lib.msgr_session_manager_request_challenge(self._h(), c))
        return c

    def send_response(self, app_id: StrLike, response: StrLike, cookie: int) -> None:
        """SendResponse: the service checks ``response`` (see :func:`compute_response`);
        ``lock_result`` and ``lock_status_changed`` follow."""
        check(
            lib.msgr_session_manager_send_response(
                self._h(),
                _in_str(app_id, "app_id"),
                _in_str(response, "response"),
                _in_int(cookie, "cookie", -0x8000_0000, 0x7FFF_FFFF),
            )
        )

    # events

    @overload
    def on(self, event: str) -> "Callable[[Callable[_P, _R]], Registration[_P, _R]]": ...

    @overload
    def on(self, event: str, fn: "Callable[_P, _R]") -> "Registration[_P, _R]": ...

    def on(self, event: str, fn: Optional[Callable[..., Any]] = None) -> Any:
        """Registers ``fn`` for ``event`` (``"invitation"``, ``"on_invitation"`` or
        ``"OnInvitation"``) and returns the :class:`Registration`; without ``fn``, a
        decorator that does so."""
        spec = event_spec("manager", event)
        if fn is None:
            return lambda f: self._on(spec, f)
        return self._on(spec, fn)

    def on_app_registered(self, fn: Callable[["SessionManager", str], _R]) -> "Registration[..., _R]":
        """OnAppRegistered: ``fn(manager, guid)`` after an application was registered."""
        return self._on(_callbacks.EVENTS["app_registered"], fn)

    def on_app_unregistered(self, fn: Callable[["SessionManager", str], _R]) -> "Registration[..., _R]":
        """OnAppUnRegistered: ``fn(manager, guid)`` after an application was unregistered."""
        return self._on(_callbacks.EVENTS["app_unregistered"], fn)

    def on_app_shutdown(self, fn: Callable[["SessionManager"], _R]) -> "Registration[..., _R]":
        """OnAppShutdown: ``fn(manager)``; the client is shutting down (last event)."""
        return self._on(_callbacks.EVENTS["app_shutdown"], fn)

    def on_invitation(
        self, fn: Callable[["SessionManager", "Session", Optional[str], "_callbacks.Flag"], _R]
    ) -> "Registration[..., _R]":
        """OnInvitation: ``fn(manager, session, app_data, handled)`` for a new invitation.

        ``session`` is a :class:`Session` holding its own reference (keep it to answer
        later). ``handled`` is a :class:`Flag`: set ``handled.value = True`` (or return
        True) when the application takes care of the invitation.
        """
        return self._on(_callbacks.EVENTS["invitation"], fn)

    def on_lock_challenge(self, fn: Callable[["SessionManager", int, str], _R]) -> "Registration[..., _R]":
        """OnLockChallenge: ``fn(manager, cookie, challenge)``."""
        return self._on(_callbacks.EVENTS["lock_challenge"], fn)

    def on_lock_enable(self, fn: Callable[["SessionManager", bool], _R]) -> "Registration[..., _R]":
        """OnLockEnable: ``fn(manager, enabled)`` soon after sign-in."""
        return self._on(_callbacks.EVENTS["lock_enable"], fn)

    def on_lock_result(self, fn: Callable[["SessionManager", int, bool], _R]) -> "Registration[..., _R]":
        """OnLockResult: ``fn(manager, cookie, succeeded)``."""
        return self._on(_callbacks.EVENTS["lock_result"], fn)

    def on_lock_status_changed(self, fn: Callable[["SessionManager", LockStatus], _R]) -> "Registration[..., _R]":
        """OnLockStatusChanged: ``fn(manager, status)`` on every change of the status."""
        return self._on(_callbacks.EVENTS["lock_status_changed"], fn)

    def __repr__(self) -> str:
        if self.closed:
            return "<SessionManager closed>"
        return f"<SessionManager of {self._client.sign_in_name if self._client else '?'!r}>"


# ---- Session ---------------------------------------------------------------------------------

_sessions: "weakref.WeakValueDictionary[int, Session]" = weakref.WeakValueDictionary()
_sessions_lock = _callbacks.Guarded(threading.RLock())


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: a lock another thread held at the fork
    stays held for ever there. The package's locks start afresh, the module's and each
    inherited client's (the inherited objects raise MSGR_E_SERVER_SHUTDOWN and close without
    error; docs/PYTHON.md)."""
    global _sessions_lock
    _sessions_lock = _callbacks.Guarded(threading.RLock())
    _callbacks._lock = _callbacks.Guarded(threading.RLock())
    _callbacks._held.depth = 0
    for client in list(_clients):
        client._pending_lock = _callbacks.Guarded(threading.RLock())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Session(Managed):
    """A session (``msgr_session``, IMsgrSession): one invitation between two users.

    Get one from :meth:`SessionManager.create_session`, from the ``invitation`` event or
    from :meth:`SessionManager.launching_session`. Each Python ``Session`` owns one
    reference to the C session; while one is alive, callbacks for that session receive
    that same object. Closing it (or collecting it) releases the reference; at the last
    reference the session's registrations end, but the session itself goes on.

    Events: ``on_<event>(fn)`` or ``@session.on("event")``; see :data:`SESSION_EVENTS`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("sessions come from SessionManager.create_session() or the invitation event")

    @classmethod
    def _new(cls, handle: int, client: Optional[Client]) -> "Session":
        self = cls.__new__(cls)
        Managed.__init__(self)
        self._handle = handle
        self._client = client
        _sessions[handle] = self
        return self

    @classmethod
    def _adopt(cls, handle: int, client: Optional[Client]) -> "Session":
        """Wraps a handle of which the caller owns one reference."""
        with _sessions_lock:
            existing = _sessions.get(handle)
            if existing is not None and existing._handle == handle:
                lib.msgr_session_release(handle)  # the wrapper already owns one
                return existing
            return cls._new(handle, client)

    @classmethod
    def _borrow(cls, handle: int, client: Optional[Client]) -> "Session":
        """Wraps a handle lent to a callback: adds a reference of its own."""
        with _sessions_lock:
            existing = _sessions.get(handle)
            if existing is not None and existing._handle == handle:
                return existing
            check(lib.msgr_session_add_ref(handle))
            return cls._new(handle, client)

    def _release(self, handle: int) -> int:
        with _sessions_lock:
            if _sessions.get(handle) is self:
                del _sessions[handle]
        return int(lib.msgr_session_release(handle))

    def _unadvise(self, handle: int, cookie: int) -> int:
        return int(lib.msgr_session_unadvise(handle, cookie))

    @property
    def client(self) -> Optional[Client]:
        """The client this session belongs to (on this side)."""
        return self._client

    # properties

    @property
    def state(self) -> SessionState:
        """State: the session's :class:`SessionState` (already the new one during events)."""
        v = c_int()
        check(lib.msgr_session_get_state(self._h(), byref(v)))
        return cast(SessionState, _enum_value(SessionState, v.value))

    @property
    def flags(self) -> SessionFlags:
        """Flags: INVITER on the inviting side, INVITEE on the invited side."""
        v = c_uint32()
        check(lib.msgr_session_get_flags(self._h(), byref(v)))
        return SessionFlags(v.value)

    @property
    def session_id(self) -> str:
        """SessionID: ``{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}``, the same on both sides."""
        return _out_str(lib.msgr_session_get_session_id, self._h())[1]

    def _optional(self, fn: Any, absent: int) -> Optional[str]:
        try:
            return _out_str(fn, self._h())[1]
        except MsgrError as e:
            if e.code == absent:
                return None
            raise

    @property
    def application(self) -> Optional[str]:
        """Application: the GUID of the session's application, ``None`` when none is set.

        Setting it requires an application registered with the client's registry
        (SessionError(SR_APP_NOT_REGISTERED)) and a session still READY
        (SessionError(SR_SESSION_NOT_READY)).
        """
        return self._optional(lib.msgr_session_get_application, SR_APP_NOT_SPECIFIED)

    @application.setter
    def application(self, guid: StrLike) -> None:
        check(lib.msgr_session_set_application(self._h(), _in_str(guid, "application")))

    @property
    def application_name(self) -> Optional[str]:
        """ApplicationName from the registry ("" when the application is not registered
        here), ``None`` when no application is set."""
        return self._optional(lib.msgr_session_get_application_name, SR_APP_NOT_SPECIFIED)

    @property
    def application_url(self) -> Optional[str]:
        """ApplicationURL from the registry, ``None`` when no application is set."""
        return self._optional(lib.msgr_session_get_application_url, SR_APP_NOT_SPECIFIED)

    @property
    def context_data(self) -> str:
        """ContextData: the last application data received from the other side ("" if none)."""
        return _out_str(lib.msgr_session_get_context_data, self._h())[1]

    @property
    def local_address(self) -> str:
        """LocalAddress: a stored value (at most 30 characters) handed to the other side."""
        return _out_str(lib.msgr_session_get_local_address, self._h())[1]

    @local_address.setter
    def local_address(self, address: StrLike) -> None:
        check(lib.msgr_session_set_local_address(self._h(), _in_str(address, "local_address")))

    @property
    def remote_address(self) -> Optional[str]:
        """RemoteAddress: the other side's LocalAddress once CONNECTED, ``None`` before
        (the library's S_FALSE)."""
        hr, text = _out_str(lib.msgr_session_get_remote_address, self._h())
        return None if hr == S_FALSE else text

    @property
    def user(self) -> Optional[str]:
        """User: the other party's sign-in name, ``None`` when nobody was invited."""
        return self._optional(lib.msgr_session_get_user, SR_NO_USER_INVITED)

    # methods

    def invite(self, user: StrLike, app_data: Optional[StrLike] = None) -> None:
        """Invite: sends the invitation (app data at most 512 bytes); the state becomes
        INVITATION and the invited client's managers get ``invitation``."""
        check(
            lib.msgr_session_invite(
                self._h(), _in_str(user, "user"), _in_str(app_data, "app_data", optional=True)
            )
        )

    def accept(self, app_data: Optional[StrLike] = None) -> None:
        """Accept: invitee only (SR_NOT_INVITEE), in INVITATION only (SR_SESSION_STATE_INVALID)."""
        check(lib.msgr_session_accept(self._h(), _in_str(app_data, "app_data", optional=True)))

    def decline(self, app_data: Optional[StrLike] = None) -> None:
        """Decline: same rules as :meth:`accept`; both sides end DECLINED."""
        check(lib.msgr_session_decline(self._h(), _in_str(app_data, "app_data", optional=True)))

    def cancel(self, hr: int = SR_SESSION_CANCELLED_REMOTE, app_data: Optional[StrLike] = None) -> None:
        """Cancel: ends the invitation or the session; ``hr`` is the reason handed to the
        other side (default SR_SESSION_CANCELLED_REMOTE; signed or unsigned form, or a
        :class:`MsgrError`)."""
        check(
            lib.msgr_session_cancel(
                self._h(), _in_hr(hr, "hr"), _in_str(app_data, "app_data", optional=True)
            )
        )

    def send_context_data(self, data: StrLike) -> None:
        """SendContextData: at most 300 characters, five times per side, once accepted."""
        check(lib.msgr_session_send_context_data(self._h(), _in_str(data, "data")))

    # events

    @overload
    def on(self, event: str) -> "Callable[[Callable[_P, _R]], Registration[_P, _R]]": ...

    @overload
    def on(self, event: str, fn: "Callable[_P, _R]") -> "Registration[_P, _R]": ...

    def on(self, event: str, fn: Optional[Callable[..., Any]] = None) -> Any:
        """Registers ``fn`` for ``event`` (``"termination"``, ``"on_termination"`` or
        ``"OnTermination"``) and returns the :class:`Registration`; without ``fn``, a
        decorator that does so."""
        spec = event_spec("session", event)
        if fn is None:
            return lambda f: self._on(spec, f)
        return self._on(spec, fn)

    def on_before_app_launch(self, fn: Callable[["Session", "_callbacks.Flag"], _R]) -> "Registration[..., _R]":
        """BeforeAppLaunch: ``fn(session, enable)``; set ``enable.value = False`` (or return
        False) to keep the application from being launched."""
        return self._on(_callbacks.EVENTS["before_app_launch"], fn)

    def on_accepted(self, fn: Callable[["Session", Optional[str]], _R]) -> "Registration[..., _R]":
        """OnAccepted: ``fn(session, app_data)`` on the inviter side."""
        return self._on(_callbacks.EVENTS["accepted"], fn)

    def on_app_not_present(self, fn: Callable[["Session", str, str], _R]) -> "Registration[..., _R]":
        """OnAppNotPresent: ``fn(session, name, url)`` when the application is missing here."""
        return self._on(_callbacks.EVENTS["app_not_present"], fn)

    def on_cancelled(self, fn: Callable[["Session", Optional[str]], _R]) -> "Registration[..., _R]":
        """OnCancelled: ``fn(session, app_data)`` when the other side cancelled."""
        return self._on(_callbacks.EVENTS["cancelled"], fn)

    def on_context_data(self, fn: Callable[["Session", str], _R]) -> "Registration[..., _R]":
        """OnContextData: ``fn(session, data)`` sent by the other side."""
        return self._on(_callbacks.EVENTS["context_data"], fn)

    def on_declined(self, fn: Callable[["Session", Optional[str]], _R]) -> "Registration[..., _R]":
        """OnDeclined: ``fn(session, app_data)`` on the inviter side."""
        return self._on(_callbacks.EVENTS["declined"], fn)

    def on_ready_to_launch(self, fn: Callable[["Session"], _R]) -> "Registration[..., _R]":
        """OnReadyToLaunch: ``fn(session)``."""
        return self._on(_callbacks.EVENTS["ready_to_launch"], fn)

    def on_send_error(self, fn: Callable[["Session", HResult], _R]) -> "Registration[..., _R]":
        """OnSendError: ``fn(session, hr)`` with the SR_*_SEND_FAILURE of the failed step."""
        return self._on(_callbacks.EVENTS["send_error"], fn)

    def on_state_changed(self, fn: Callable[["Session", SessionState], _R]) -> "Registration[..., _R]":
        """OnStateChanged: ``fn(session, previous)``. ``session.state`` is the state when
        ``fn`` runs, possibly several transitions later (an inviter sees ``INVITATION`` and
        then ``ACCEPTED`` as ``previous``, both with ``session.state`` ``CONNECTED``): to
        react once per transition, use :meth:`on_state_transition`."""
        return self._on(_callbacks.EVENTS["state_changed"], fn)

    def on_state_transition(
        self, fn: Callable[["Session", SessionState, SessionState], _R]
    ) -> "Registration[..., _R]":
        """OnStateChanged with both ends of each transition: ``fn(session, previous,
        current)``, ``current`` the state this one transition led to."""
        return self._on(_callbacks.EVENTS["state_transition"], fn)

    def on_termination(self, fn: Callable[["Session", HResult, Optional[str]], _R]) -> "Registration[..., _R]":
        """OnTermination: ``fn(session, hr, app_data)``, the session's last event on this side."""
        return self._on(_callbacks.EVENTS["termination"], fn)

    def __repr__(self) -> str:
        if self.closed:
            return "<Session closed>"
        try:
            return f"<Session {self.session_id} {self.state.name}>"
        except MsgrError as e:
            return f"<Session {e.name}>"


_callbacks.wrap_session = Session._borrow


# ---- library functions -----------------------------------------------------------------------


def compute_response(challenge: StrLike, key: StrLike) -> str:
    """The Lock and Key response to a challenge: MD5 of the challenge followed by the key,
    as 32 lowercase hex digits (``msgr_lock_compute_response``)."""
    out = create_string_buffer(MSGR_LOCK_RESPONSE_SIZE)
    check(lib.msgr_lock_compute_response(_in_str(challenge, "challenge"), _in_str(key, "key"), out))
    return str(out.value.decode("ascii"))


def version() -> str:
    """``msgr_version()``: the loaded library's version, "MAJOR.MINOR.PATCH"."""
    return str(lib.msgr_version().decode("ascii"))


_trace_callback: Any = None  # the C callback of the trace set last, kept alive


def set_trace(level: "TraceLevel | int", fn: Optional[Callable[[TraceLevel, str], Any]] = None) -> None:
    """``msgr_set_trace``: every message up to ``level`` goes to ``fn(level, text)``, or to
    stderr when ``fn`` is ``None``; ``TraceLevel.OFF`` turns the trace off.

    ``fn`` runs on the thread that did the work (any thread), possibly while the library
    holds locks of its own: it must not call msgrpriv, and should return quickly; an
    exception it raises is dropped."""
    global _trace_callback
    lvl = _in_int(level, "level", -(2**31), 2**31 - 1)
    if fn is None:
        check(lib.msgr_set_trace(lvl, _ffi.TRACE_CALLBACK(), None, _ffi.DESTROY_CALLBACK()))
        _trace_callback = None
        return

    def call(_ud: Any, message_level: int, text: Optional[bytes]) -> None:
        try:
            fn(TraceLevel(message_level), (text or b"").decode("utf-8", "replace"))
        except Exception:
            pass

    cb = _ffi.TRACE_CALLBACK(call)
    check(lib.msgr_set_trace(lvl, cb, None, _ffi.DESTROY_CALLBACK()))
    # The previous C callback may still be running on another thread: keep it too until the
    # next call (the library drops its reference once no message is told to it).
    _trace_callback = (cb, _trace_callback[0] if _trace_callback else None)


def result_text(code: int) -> str:
    """``msgr_result_text(code)``: the library's English text for any result code."""
    return str(lib.msgr_result_text(_in_hr(code, "code")).decode("utf-8", "replace"))

