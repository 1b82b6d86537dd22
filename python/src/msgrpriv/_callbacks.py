"""Event plumbing: the slab, one trampoline per callback type, registrations, in/out flags.

How a registration works (STYLE.md, "Callbacks through one module-level trampoline"):

- The Python callable is kept in an ``_Entry`` owned by the object it was registered on
  (``owner._entries``), so a callable that refers back to its owner forms an ordinary
  reference cycle that the garbage collector can break.
- The slab maps a small integer (the C ``user_data``) to a weak reference to the entry.
- The C callback is one module-level ``CFUNCTYPE`` object per callback type, created at
  import and never freed, so no ctypes callback object can die while C holds it.
- The destroy notification (also one module-level trampoline) frees the slab index and drops
  the entry: exactly once per registration, when it ends for any reason (unadvise, release of
  the owner, failed registration).
- The package's locks are :class:`Guarded`: while a thread holds one, a ``close()`` on that
  thread (a finalizer run by the garbage collector inside the locked region) does not
  release its handle there but queues it; the queue is emptied when the thread leaves its
  last package lock, and by the next ``close()`` or ``dispatch()``.
- An exception raised by a Python callback is caught in the trampoline and stored on the
  owner's :class:`~msgrpriv.Client`; ``Client.dispatch`` re-raises it (manual mode), or
  ``Client.raise_pending`` and the client's next method call do (thread mode).
"""

from __future__ import annotations

import collections
import sys
import threading
import traceback
import weakref
from ctypes import byref, c_uint32
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar, cast

from ._ffi import CALLBACK_TYPES
from ._library import lib
from .codes import E_FAIL, E_HANDLE, E_INVALIDARG, HResult
from .enums import LockStatus, SessionState, _enum_value
from .errors import MsgrError, error_for

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import ParamSpec

    from ._objects import Client, Session
elif sys.version_info >= (3, 10):
    from typing import ParamSpec
else:  # pragma: no cover - Python 3.9: a stand-in, for type checkers only

    def ParamSpec(name: str) -> Any:
        return TypeVar(name)


_P = ParamSpec("_P")
_R = TypeVar("_R")

finalizing = False
"""Set at interpreter exit (after every object was closed): trampolines and ``__del__`` stop."""

# ---- locks and finalizers --------------------------------------------------------------------

_held = threading.local()
"""``depth``: how many of the package's locks the current thread holds."""

_deferred: "collections.deque[Tuple[Any, int]]" = collections.deque()
"""``(object, handle)`` pairs closed while their thread held a package lock, to release."""


def holding_lock() -> bool:
    """True while the current thread holds one of the package's locks."""
    return bool(getattr(_held, "depth", 0))


class Guarded:
    """A package lock (a ``threading.Lock`` or ``RLock``) that counts its holders per thread.

    The garbage collector can run wherever Python allocates, including inside a locked
    region, and run finalizers there that close other objects. A close that needs this
    lock, or that waits in C for another thread (a thread-mode client's ``destroy`` joins
    its thread) which needs it, would deadlock. So while a thread holds a guarded lock its
    closes are deferred (:func:`defer_release`), and leaving the outermost guarded region
    releases them (:func:`release_deferred`).
    """

    __slots__ = ("_lock",)

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        _held.depth = getattr(_held, "depth", 0) + 1  # before acquiring: finalizers defer
        try:
            self._lock.acquire()
        except BaseException:
            _held.depth -= 1
            raise

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        _held.depth -= 1
        if _deferred and not _held.depth:
            release_deferred()


def defer_release(obj: Any, handle: int) -> None:
    """Queues ``obj._release(handle)`` for the next safe point (a lock-free append)."""
    _deferred.append((obj, handle))


def release_deferred() -> None:
    """Runs the queued releases, unless the current thread holds a package lock (then the
    end of its outermost locked region does) or runs them already (a release that leaves a
    locked region comes back here: the outer loop goes on). Their failures are ignored, as
    in finalizers."""
    if not _deferred or holding_lock() or getattr(_held, "draining", False):
        return
    _held.draining = True
    try:
        while _deferred:
            try:
                obj, handle = _deferred.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                obj._release(handle)
            except Exception:
                pass
    finally:
        _held.draining = False


_lock = Guarded(threading.RLock())
"""Guards the slab and every owner's ``_entries``; never held during a C call."""


class _Slab:
    """Small integers handed to C as ``user_data``; 0 is never used (it would be NULL)."""

    def __init__(self) -> None:
        self._items: Dict[int, "weakref.ref[Any]"] = {}
        self._free: List[int] = []
        self._next = 1

    def add(self, ref: "weakref.ref[Any]") -> int:
        if self._free:
            idx = self._free.pop()
        else:
            idx = self._next
            self._next += 1
        self._items[idx] = ref
        return idx

    def get(self, idx: Optional[int]) -> Any:
        ref = self._items.get(idx) if idx is not None else None
        return ref() if ref is not None else None

    def pop(self, idx: int) -> Any:
        ref = self._items.pop(idx, None)
        if ref is None:
            return None
        self._free.append(idx)
        return ref()

    def __len__(self) -> int:
        return len(self._items)

    def capacity(self) -> int:
        """How many indices were ever handed out (the slab's high-water mark)."""
        return self._next - 1


_slab = _Slab()


def live_registrations() -> int:
    """How many registrations (slab entries) are alive; for leak checks and debugging."""
    return len(_slab)


def slab_capacity() -> int:
    """The slab's high-water mark: the most registrations ever alive at once."""
    return _slab.capacity()


class Flag:
    """An in/out boolean of an event (``handled`` of OnInvitation, ``enable`` of BeforeAppLaunch).

    The callback receives it with the current value in ``value`` and may change it; the
    value after the callback returns goes back to the library. Returning ``True`` or
    ``False`` from the callback sets it too (any other return value is ignored).
    """

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = bool(value)

    def set(self, value: bool = True) -> None:
        """Sets the flag (``flag.set()`` is ``flag.value = True``)."""
        self.value = bool(value)

    def __bool__(self) -> bool:
        return self.value

    def __repr__(self) -> str:
        return f"Flag({self.value})"


@dataclass(frozen=True)
class EventSpec:
    """One event: its Python name, the original name, who fires it and its C registration."""

    name: str
    """Python name, e.g. ``"invitation"`` (methods are ``on_<name>``)."""
    original: str
    """Name in Msgrpriv.h, e.g. ``"OnInvitation"``."""
    owner: str
    """``"manager"`` or ``"session"``."""
    c_function: str
    """The registration function, e.g. ``"msgr_session_manager_on_invitation"``."""
    typedef: str
    """The C callback typedef."""
    signature: str
    """The Python callback's parameters, for documentation."""


MANAGER_EVENTS: Tuple[EventSpec, ...] = (
    EventSpec("app_registered", "OnAppRegistered", "manager",
              "msgr_session_manager_on_app_registered", "msgr_on_app_registered_callback",
              "(manager, guid: str)"),
    EventSpec("app_unregistered", "OnAppUnRegistered", "manager",
              "msgr_session_manager_on_app_unregistered", "msgr_on_app_unregistered_callback",
              "(manager, guid: str)"),
    EventSpec("app_shutdown", "OnAppShutdown", "manager",
              "msgr_session_manager_on_app_shutdown", "msgr_on_app_shutdown_callback",
              "(manager)"),
    EventSpec("invitation", "OnInvitation", "manager",
              "msgr_session_manager_on_invitation", "msgr_on_invitation_callback",
              "(manager, session: Session, app_data: str | None, handled: Flag)"),
    EventSpec("lock_challenge", "OnLockChallenge", "manager",
              "msgr_session_manager_on_lock_challenge", "msgr_on_lock_challenge_callback",
              "(manager, cookie: int, challenge: str)"),
    EventSpec("lock_enable", "OnLockEnable", "manager",
              "msgr_session_manager_on_lock_enable", "msgr_on_lock_enable_callback",
              "(manager, enabled: bool)"),
    EventSpec("lock_result", "OnLockResult", "manager",
              "msgr_session_manager_on_lock_result", "msgr_on_lock_result_callback",
              "(manager, cookie: int, succeeded: bool)"),
    EventSpec("lock_status_changed", "OnLockStatusChanged", "manager",
              "msgr_session_manager_on_lock_status_changed",
              "msgr_on_lock_status_changed_callback", "(manager, status: LockStatus)"),
)

SESSION_EVENTS: Tuple[EventSpec, ...] = (
    EventSpec("before_app_launch", "BeforeAppLaunch", "session",
              "msgr_session_before_app_launch", "msgr_before_app_launch_callback",
              "(session, enable: Flag)"),
    EventSpec("accepted", "OnAccepted", "session", "msgr_session_on_accepted",
              "msgr_on_accepted_callback", "(session, app_data: str | None)"),
    EventSpec("app_not_present", "OnAppNotPresent", "session", "msgr_session_on_app_not_present",
              "msgr_on_app_not_present_callback", "(session, name: str, url: str)"),
    EventSpec("cancelled", "OnCancelled", "session", "msgr_session_on_cancelled",
              "msgr_on_cancelled_callback", "(session, app_data: str | None)"),
    EventSpec("context_data", "OnContextData", "session", "msgr_session_on_context_data",
              "msgr_on_context_data_callback", "(session, data: str)"),
    EventSpec("declined", "OnDeclined", "session", "msgr_session_on_declined",
              "msgr_on_declined_callback", "(session, app_data: str | None)"),
    EventSpec("ready_to_launch", "OnReadyToLaunch", "session", "msgr_session_on_ready_to_launch",
              "msgr_on_ready_to_launch_callback", "(session)"),
    EventSpec("send_error", "OnSendError", "session", "msgr_session_on_send_error",
              "msgr_on_send_error_callback", "(session, hr: HResult)"),
    EventSpec("state_changed", "OnStateChanged", "session", "msgr_session_on_state_changed",
              "msgr_on_state_changed_callback", "(session, previous: SessionState)"),
    # OnStateChanged again, with the state the transition led to (its original name is
    # OnStateChanged's: looked up by that name, state_changed comes first).
    EventSpec("state_transition", "OnStateChanged", "session", "msgr_session_on_state_transition",
              "msgr_on_state_transition_callback",
              "(session, previous: SessionState, current: SessionState)"),
    EventSpec("termination", "OnTermination", "session", "msgr_session_on_termination",
              "msgr_on_termination_callback", "(session, hr: HResult, app_data: str | None)"),
)

EVENTS: Dict[str, EventSpec] = {e.name: e for e in MANAGER_EVENTS + SESSION_EVENTS}
"""Every event by Python name."""


def event_spec(owner: str, name: str) -> EventSpec:
    """The spec of ``name`` for an owner kind; accepts ``"invitation"``, ``"on_invitation"``
    and ``"OnInvitation"`` spellings. :class:`~msgrpriv.InvalidArgument` (a ``ValueError``)
    for an unknown event or the wrong owner."""
    if not isinstance(name, str):
        raise TypeError(f"an event name must be a str, not {type(name).__name__}")
    specs = MANAGER_EVENTS if owner == "manager" else SESSION_EVENTS
    for spec in specs:
        if name in (spec.name, "on_" + spec.name, spec.original):
            return spec
    known = ", ".join(s.name for s in specs)
    raise error_for(E_INVALIDARG, f"unknown {owner} event {name!r}; one of: {known}")


class _Entry:
    """One registration's Python side: the callable and a weak reference to its owner."""

    __slots__ = ("fn", "spec", "owner", "alive", "index", "__weakref__")

    def __init__(self, fn: Callable[..., Any], spec: Optional[EventSpec], owner: Any) -> None:
        self.fn = fn
        self.spec = spec
        self.owner = weakref.ref(owner)
        self.alive = True
        self.index = 0


def add_entry(owner: Any, fn: Callable[..., Any], spec: Optional[EventSpec]) -> _Entry:
    """Creates an entry owned by ``owner`` and gives it a slab index."""
    entry = _Entry(fn, spec, owner)
    with _lock:
        entry.index = _slab.add(weakref.ref(entry))
        owner._entries[entry.index] = entry
    return entry


def drop_entry(idx: int) -> None:
    """Ends an entry and frees its slab index (the destroy notification's work)."""
    with _lock:
        entry = _slab.get(idx)
        if entry is not None:
            entry.alive = False
            owner = entry.owner()
            if owner is not None and owner._entries.get(idx) is entry:
                del owner._entries[idx]
        _slab.pop(idx)


def _destroy(user_data: Optional[int]) -> None:
    if user_data is None:
        return
    try:
        drop_entry(user_data)
    except BaseException:  # pragma: no cover - never let anything escape into C
        pass


DESTROY_TRAMPOLINE = CALLBACK_TYPES["msgr_destroy_callback"](_destroy)
"""The one destroy notification of every registration."""


# ---- exceptions raised by callbacks --------------------------------------------------------


def report_exception(client: Optional["Client"], exc: BaseException) -> None:
    """Stores an exception raised by a callback on its client (or reports it as unraisable)."""
    if client is not None:
        client._store_exception(exc)
    else:  # pragma: no cover - a callback with no client: nowhere to re-raise it
        unraisable(exc, "Exception in a msgrpriv callback")


def _find_hook_args_type() -> Optional[type]:
    """The interpreter's ``UnraisableHookArgs``: the only type ``sys.__unraisablehook__``
    accepts. ``sys`` does not export it; it is a struct sequence, so a subclass of tuple.
    ``None`` when it cannot be found or instantiated (another interpreter, a future one)."""
    for t in tuple.__subclasses__():
        if t.__name__ == "UnraisableHookArgs" and t.__module__ == "builtins":
            try:
                # Through Any: its constructor's type differs between typeshed versions.
                cast(Any, t)((ValueError, ValueError(), None, "", None))
            except Exception:
                return None
            return t
    return None


_HookArgs: Optional[type] = _find_hook_args_type()


class _Unraisable:
    """An ``UnraisableHookArgs`` look-alike, for when the real type cannot be made: custom
    hooks accept it; the interpreter's default hook does not (it is bypassed then)."""

    def __init__(self, exc_type: type, exc_value: BaseException, exc_traceback: Any,
                 err_msg: str, obj: Any) -> None:
        self.exc_type = exc_type
        self.exc_value = exc_value
        self.exc_traceback = exc_traceback
        self.err_msg = err_msg
        self.object = obj


def _hook_args(exc: BaseException, message: str, obj: Any) -> Any:
    fields = (type(exc), exc, exc.__traceback__, message, obj)
    if _HookArgs is not None:
        try:
            return _HookArgs(fields)
        except Exception:  # pragma: no cover - found but refused
            pass
    return _Unraisable(*fields)


def _write_unraisable(args: Any) -> None:
    """Writes a report to stderr in the format of the interpreter's default hook."""
    try:
        stderr = sys.stderr
        if stderr is None:
            return
        if args.object is not None:
            stderr.write(f"{args.err_msg or 'Exception ignored in'}: {args.object!r}\n")
        elif args.err_msg:
            stderr.write(f"{args.err_msg}:\n")
        traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=stderr)
        stderr.flush()
    except Exception:  # pragma: no cover - nowhere left to report to
        pass


def unraisable(exc: BaseException, message: str, obj: Any = None) -> None:
    """Reports an exception through ``sys.unraisablehook``, as the interpreter reports its own
    unraisable exceptions: the hook gets a ``sys.UnraisableHookArgs`` (``object`` is
    ``obj``). Never raises an ``Exception``: when the hook fails, the report and the hook's
    own exception go to stderr."""
    args = _hook_args(exc, message, obj)
    real = _HookArgs is not None and isinstance(args, _HookArgs)
    hook = getattr(sys, "unraisablehook", None)
    if hook is None or (hook is sys.__unraisablehook__ and not real):
        _write_unraisable(args)
        return
    try:
        hook(args)
    except Exception as hook_exc:
        _write_unraisable(args)
        _write_unraisable(_hook_args(hook_exc, "Exception ignored in sys.unraisablehook", hook))


# ---- trampolines -----------------------------------------------------------------------------

wrap_session: Callable[[int, Optional["Client"]], "Session"]
"""Set by _objects: wraps a session handle lent to a callback (adds a reference)."""


def _dec(b: Optional[bytes]) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


def _dec_opt(b: Optional[bytes]) -> Optional[str]:
    return b.decode("utf-8", "replace") if b is not None else None


def _in_out(ptr: Any, call: Callable[[Flag], Any]) -> None:
    flag = Flag(bool(ptr[0]))
    try:
        result = call(flag)
        if isinstance(result, bool):
            flag.value = result
    finally:
        ptr[0] = bool(flag.value)


def _make(spec: EventSpec, convert: Callable[..., None]) -> Any:
    """Builds the module-level trampoline of one callback type."""

    def trampoline(user_data: Optional[int], _handle: Any, *args: Any) -> None:
        if finalizing:
            return
        entry = _slab.get(user_data)
        if entry is None or not entry.alive:
            return
        owner = entry.owner()
        if owner is None:
            return
        try:
            convert(entry.fn, owner, *args)
        except BaseException as exc:  # noqa: B902 - everything goes back to Python
            try:
                report_exception(owner._client, exc)
            except BaseException:  # pragma: no cover
                pass

    trampoline.__name__ = f"trampoline_{spec.name}"
    return CALLBACK_TYPES[spec.typedef](trampoline)


def _session_arg(h: Any, owner: Any) -> "Session":
    return wrap_session(h.value if hasattr(h, "value") else h, owner._client)


def _hr(v: int) -> HResult:
    return HResult(v)


_CONVERTERS: Dict[str, Callable[..., None]] = {
    # manager events: fn(manager, ...)
    "app_registered": lambda fn, m, guid: fn(m, _dec(guid)),
    "app_unregistered": lambda fn, m, guid: fn(m, _dec(guid)),
    "app_shutdown": lambda fn, m: fn(m),
    "invitation": lambda fn, m, s, data, handled: _in_out(
        handled, lambda flag: fn(m, _session_arg(s, m), _dec_opt(data), flag)
    ),
    "lock_challenge": lambda fn, m, cookie, challenge: fn(m, int(cookie), _dec(challenge)),
    "lock_enable": lambda fn, m, enabled: fn(m, bool(enabled)),
    "lock_result": lambda fn, m, cookie, ok: fn(m, int(cookie), bool(ok)),
    "lock_status_changed": lambda fn, m, status: fn(m, _enum_value(LockStatus, status)),
    # session events: fn(session, ...)
    "before_app_launch": lambda fn, s, enable: _in_out(enable, lambda flag: fn(s, flag)),
    "accepted": lambda fn, s, data: fn(s, _dec_opt(data)),
    "app_not_present": lambda fn, s, name, url: fn(s, _dec(name), _dec(url)),
    "cancelled": lambda fn, s, data: fn(s, _dec_opt(data)),
    "context_data": lambda fn, s, data: fn(s, _dec(data)),
    "declined": lambda fn, s, data: fn(s, _dec_opt(data)),
    "ready_to_launch": lambda fn, s: fn(s),
    "send_error": lambda fn, s, hr: fn(s, _hr(hr)),
    "state_changed": lambda fn, s, prev: fn(s, _enum_value(SessionState, prev)),
    "state_transition": lambda fn, s, prev, cur: fn(
        s, _enum_value(SessionState, prev), _enum_value(SessionState, cur)
    ),
    "termination": lambda fn, s, hr, data: fn(s, _hr(hr), _dec_opt(data)),
}

TRAMPOLINES: Dict[str, Any] = {name: _make(EVENTS[name], conv) for name, conv in _CONVERTERS.items()}
"""One module-level C callback per event (per callback type), alive for the process."""


# ---- launcher --------------------------------------------------------------------------------


def _launch(user_data: Optional[int], path: Optional[bytes], session_id: Optional[bytes],
            app_guid: Optional[bytes], pid: Any) -> int:
    if finalizing:
        return int(E_FAIL)
    entry = _slab.get(user_data)
    if entry is None or not entry.alive:
        return int(E_FAIL)
    client = entry.owner()
    try:
        result = entry.fn(_dec(path), _dec(session_id), _dec(app_guid))
        value = int(result)
        if not 0 < value <= 0xFFFF_FFFF:
            raise ValueError(f"the launcher returned {result!r}, not a process id")
        pid[0] = value
        return 0
    except MsgrError as exc:  # a deliberate refusal: its code ends the session
        return int(exc.code) if exc.code < 0 else int(E_FAIL)
    except BaseException as exc:
        try:
            report_exception(client, exc)
        except BaseException:  # pragma: no cover
            pass
        return int(E_FAIL)


LAUNCH_TRAMPOLINE = CALLBACK_TYPES["msgr_launch_callback"](_launch)
"""The one C launcher; ``user_data`` is the slab index of the client's launcher entry."""


# ---- registrations ---------------------------------------------------------------------------


class Registration(Generic[_P, _R]):
    """One event registration: the result of ``on_<event>(fn)`` and of the ``on()`` decorator.

    The registration lasts until :meth:`close` (``unadvise``) or until the object it was made
    on is closed or collected, whichever comes first; dropping the ``Registration`` object
    does not end it. Calling the registration calls the function, so the decorator form
    keeps the decorated name usable. For type checkers a ``Registration[P, R]`` of a function
    ``(*P) -> R`` is callable as that function is: ``@manager.on("invitation")`` keeps the
    decorated function's parameters and result.
    """

    __slots__ = ("_owner", "_entry", "cookie", "event", "callback")

    callback: Callable[_P, _R]
    """The registered callable."""

    def __init__(self, owner: Any, entry: _Entry, cookie: int, event: EventSpec) -> None:
        self._owner = owner
        self._entry = entry
        self.cookie = cookie
        """The library's cookie for this registration (``msgr_*_unadvise``)."""
        self.event = event.name
        """The event's Python name (``"invitation"``)."""
        self.callback = entry.fn

    @property
    def active(self) -> bool:
        """True until the registration ended (its destroy notification ran)."""
        return self._entry.alive

    def close(self) -> None:
        """Ends the registration (unadvise). Idempotent; a no-op once it has ended."""
        if not self._entry.alive:
            return
        handle = self._owner._handle
        if handle is None:
            return
        hr = self._owner._unadvise(handle, self.cookie)
        if hr < 0 and hr not in (E_INVALIDARG, E_HANDLE):  # already ended: fine
            raise error_for(hr)

    unadvise = close

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return self.callback(*args, **kwargs)

    def __enter__(self) -> "Registration[_P, _R]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "active" if self.active else "ended"
        return f"<Registration {self.event} cookie={self.cookie} {state}>"


def advise(owner: Any, spec: EventSpec, fn: Callable[_P, _R]) -> Registration[_P, _R]:
    """Registers ``fn`` for ``spec`` on ``owner`` (a SessionManager or Session)."""
    if not callable(fn):
        raise TypeError(f"the callback must be callable, not {type(fn).__name__}")
    handle = owner._h()
    entry = add_entry(owner, fn, spec)
    cookie = c_uint32()
    hr = getattr(lib, spec.c_function)(
        handle, TRAMPOLINES[spec.name], entry.index, DESTROY_TRAMPOLINE, byref(cookie)
    )
    if hr < 0:
        if entry.alive:  # the library promises destroy ran; be safe if it did not
            drop_entry(entry.index)
        raise error_for(hr)
    return Registration(owner, entry, cookie.value, spec)
