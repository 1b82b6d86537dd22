"""asyncio integration: deliver a manual-mode client's events inside a running event loop,
await invitations, iterate over events.

:func:`attach` (or :meth:`Client.attach_to_loop`) registers the client's event descriptor
with ``loop.add_reader``; whenever it is readable, ``client.dispatch(0)`` runs in the loop.
An exception raised by a callback is handed to whoever awaits :meth:`LoopAttachment.run_until`
(or :meth:`LoopAttachment.wait_error`); when nobody is waiting it is also reported through
the loop's exception handler, and :meth:`LoopAttachment.raise_pending` re-raises it later.

Thread-mode clients do not need an attachment: their callbacks run on the client's own
thread; :func:`invite` and :func:`events` hand their results to the loop themselves (use
``loop.call_soon_threadsafe`` in your own callbacks).

:func:`invite` sends an invitation and returns when it is accepted (the invitee's app data),
or raises the :class:`~msgrpriv.SessionError` of its termination (SR_INVITATION_DECLINED,
SR_SESSION_CANCELLED_REMOTE, SR_SESSION_TIMEOUT, ...). :func:`events` yields the events of a
manager or session as :class:`Event` objects.

>>> import asyncio, msgrpriv
>>> from msgrpriv import aio
>>> GUID = "{5A1F3C2B-0D4E-4F6A-8B9C-7E6D5C4B3A21}"
>>> async def main():
...     with msgrpriv.Service() as svc, svc.client("alice@example.com") as alice, \\
...             svc.client("bob@example.com") as bob:
...         ma, mb = alice.session_manager(), bob.session_manager()
...         ma.register_application(GUID, "Demo", "http://example.com")
...         async with aio.attach(alice), aio.attach(bob), \\
...                 aio.events(mb, ["invitation"]) as invitations:
...             s = ma.create_session()
...             s.application = GUID
...             invitation = asyncio.create_task(aio.invite(s, "bob@example.com", "hi", timeout=10))
...             async for event in invitations:
...                 session, data, handled = event.args
...                 print(event.name, data)
...                 session.decline("busy")
...                 break
...             try:
...                 await invitation
...             except msgrpriv.SessionError as e:
...                 print(e.name, e.app_data)
>>> asyncio.run(main())
invitation hi
SR_INVITATION_DECLINED busy
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
)

from ._callbacks import MANAGER_EVENTS, SESSION_EVENTS, Registration
from .codes import SR_SESSION_CANCELLED_REMOTE, HResult
from .enums import DispatchMode
from .errors import MsgrError, error_for

if TYPE_CHECKING:  # pragma: no cover
    from ._objects import Client, Session, SessionManager

_T = TypeVar("_T")


class LoopAttachment:
    """A client's event descriptor registered with an asyncio loop (``loop.add_reader``).

    Close it with :meth:`close` or ``async with``/``with``; closing the client closes it too.
    """

    def __init__(self, client: "Client", loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        if loop is None:
            loop = asyncio.get_running_loop()
        self._client = client
        self._loop = loop
        self._errors: List[BaseException] = []
        self._waiters: Set["asyncio.Future[None]"] = set()
        self._fd: Optional[int] = client.event_fd()
        loop.add_reader(self._fd, self._readable)
        client._attachments.append(self)

    @property
    def client(self) -> "Client":
        """The attached client."""
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the client is attached to."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True once the descriptor was removed from the loop."""
        return self._fd is None

    def _readable(self) -> None:
        try:
            self._client.dispatch(0)
        except BaseException as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        waiters = [w for w in self._waiters if not w.done()]
        if waiters:
            for w in waiters:
                w.set_exception(exc)
            return
        self._errors.append(exc)
        self._loop.call_exception_handler(
            {"message": "exception in a msgrpriv callback", "exception": exc, "client": self._client}
        )

    def raise_pending(self) -> None:
        """Re-raises the oldest callback exception nobody was waiting for, if any."""
        if self._errors:
            exc = self._errors.pop(0)
            raise exc

    async def wait_error(self) -> None:
        """Waits until a callback raises, then raises that exception."""
        self.raise_pending()
        waiter: "asyncio.Future[None]" = self._loop.create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)

    async def run_until(self, aw: Awaitable[_T], timeout: Optional[float] = None) -> _T:
        """Awaits ``aw`` while events are delivered and returns its result.

        Raises the exception of a callback as soon as one raises (``aw`` is then
        cancelled), and ``asyncio.TimeoutError`` after ``timeout`` seconds.
        """
        self.raise_pending()
        task = asyncio.ensure_future(aw)
        err = asyncio.ensure_future(self.wait_error())
        try:
            done, _ = await asyncio.wait({task, err}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if err in done:
                task.cancel()
                err.result()  # raises the callback's exception
            if task in done:
                return task.result()
            task.cancel()
            raise asyncio.TimeoutError()
        finally:
            err.cancel()

    def close(self) -> None:
        """Removes the descriptor from the loop (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self._loop.remove_reader(fd)
        except Exception:  # the loop is closed already
            pass
        try:
            self._client._attachments.remove(self)
        except ValueError:
            pass

    def __enter__(self) -> "LoopAttachment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "LoopAttachment":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LoopAttachment {self._client!r} fd={self._fd}>"


def attach(client: "Client", loop: Optional[asyncio.AbstractEventLoop] = None) -> LoopAttachment:
    """Delivers ``client``'s events inside ``loop`` (default: the running loop)."""
    return LoopAttachment(client, loop)



def _attachment(client: "Client", loop: asyncio.AbstractEventLoop) -> Optional[LoopAttachment]:
    for att in client._attachments:
        if isinstance(att, LoopAttachment) and att.loop is loop and not att.closed:
            return att
    return None


def _to_loop(loop: asyncio.AbstractEventLoop) -> Callable[..., None]:
    """Runs ``fn(*args)`` in ``loop``: at once on the loop's thread, else through
    ``call_soon_threadsafe`` (thread-mode callbacks)."""
    owner = threading.get_ident()

    def call(fn: Callable[..., Any], *args: Any) -> None:
        if threading.get_ident() == owner:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    return call


async def invite(
    session: "Session",
    user: Union[str, bytes],
    app_data: Optional[Union[str, bytes]] = None,
    *,
    timeout: Optional[float] = None,
) -> Optional[str]:
    """Sends the invitation (:meth:`Session.invite`) and waits for the answer.

    Returns the app data of the acceptance (``None`` when the invitee sent none) once the
    invitee accepted. Raises the :class:`~msgrpriv.MsgrError` of the termination code when the
    invitation ends otherwise: SR_INVITATION_DECLINED (declined), SR_SESSION_CANCELLED_REMOTE
    (cancelled by the invitee), SR_SESSION_TIMEOUT (the service's invitation timeout), a
    send failure...; its ``app_data`` is the termination's. After ``timeout`` seconds
    (``None``: no limit of its own) the session is cancelled and ``asyncio.TimeoutError``
    raised; cancelling the awaiting task cancels the session the same way (the invitee gets
    SR_SESSION_CANCELLED_REMOTE) and the task ends cancelled.

    The session's client must deliver its events: a thread-mode client does; a manual-mode
    client must be attached to the running loop (:func:`attach`), or this function attaches
    it while it waits. A callback exception raised meanwhile is raised here.
    """
    loop = asyncio.get_running_loop()
    client = session.client
    if client is None:  # pragma: no cover - every session has its client
        raise RuntimeError("the session has no client")
    attachment = _attachment(client, loop) if client.mode == DispatchMode.MANUAL else None
    temporary = None
    if client.mode == DispatchMode.MANUAL and attachment is None:
        attachment = temporary = LoopAttachment(client, loop)
    done: "asyncio.Future[Optional[str]]" = loop.create_future()
    to_loop = _to_loop(loop)

    def accepted(fut: "asyncio.Future[Optional[str]]", data: Optional[str]) -> None:
        if not fut.done():
            fut.set_result(data)

    def ended(fut: "asyncio.Future[Optional[str]]", exc: MsgrError) -> None:
        if not fut.done():
            fut.set_exception(exc)

    def on_termination(s: "Session", hr: HResult, data: Optional[str]) -> None:
        exc = error_for(hr, f"the invitation ended with {hr}", "aio.invite")
        exc.app_data = data
        to_loop(ended, done, exc)

    regs: List[Registration[..., None]] = [
        session.on_accepted(lambda s, data: to_loop(accepted, done, data)),
        session.on_termination(on_termination),
    ]
    try:
        session.invite(user, app_data)
        if attachment is not None:
            return await attachment.run_until(done, timeout)
        return await asyncio.wait_for(done, timeout)
    except (asyncio.CancelledError, asyncio.TimeoutError):
        try:
            if not session.closed and not session.state.terminal:
                session.cancel(SR_SESSION_CANCELLED_REMOTE)
        except MsgrError:
            pass
        raise
    finally:
        for reg in regs:
            try:
                reg.close()
            except MsgrError:
                pass
        if temporary is not None:
            temporary.close()
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: no "exception was never retrieved" report


@dataclass(frozen=True)
class Event:
    """One event, as :func:`events` yields it: ``name`` is the event's Python name
    (``"invitation"``, ``"termination"``; docs/PYTHON.md, "Events"), ``source`` the manager or
    session that fired it, ``args`` the callback's arguments after the source (for
    ``invitation``: ``(session, app_data, handled)``; for ``termination``:
    ``(hr, app_data)``)."""

    name: str
    source: Union["SessionManager", "Session"]
    args: Tuple[Any, ...]


class EventStream:
    """The events of a client, a manager or a session, for ``async for``. Use it as an async
    context manager (``async with aio.events(manager) as stream``) or :meth:`close` it:
    closing ends its registrations. The iteration ends once the stream is closed and empty.

    A client's stream follows its managers (those there and those created later) and their
    sessions (created, received in an invitation, or found by ``launching_session``); it
    lets a session go after its ``termination``.

    In/out flags (``handled``, ``enable``) are reported as they were when the event was
    delivered: a callback, not the stream, must set them, as the library reads them when
    the callback returns.
    """

    def __init__(self, source: Union["Client", "SessionManager", "Session"],
                 names: Optional[List[str]] = None) -> None:
        from ._objects import Client

        self._loop = asyncio.get_running_loop()
        self._queue: "asyncio.Queue[Optional[Event]]" = asyncio.Queue()
        self._source = source
        self._names = names
        self._closed = False
        self._to_loop = _to_loop(self._loop)
        # Registrations by followed object (kept alive while followed); guarded: a
        # thread-mode client's own thread follows the sessions its invitations bring.
        self._lock = threading.Lock()
        self._registrations: Dict[Any, List[Registration[..., None]]] = {}
        self._client: Optional["Client"] = source if isinstance(source, Client) else None
        if self._client is not None:
            self._client._followers.append(self._follow)
            for manager in list(self._client._managers):
                self._follow(manager)
        else:
            self._follow(source)

    def _follow(self, obj: Any) -> None:
        """Registers for the events of a manager or session (once)."""
        from ._objects import SessionManager

        manager = isinstance(obj, SessionManager)
        specs = MANAGER_EVENTS if manager else SESSION_EVENTS
        regs: List[Registration[..., None]] = []
        with self._lock:
            if self._closed or obj in self._registrations or getattr(obj, "closed", False):
                return
            self._registrations[obj] = regs
        for spec in specs:
            wanted = self._names is None or spec.name in self._names
            # A client's stream follows the sessions of invitations even when it does not
            # yield the invitations themselves.
            follows = self._client is not None and spec.name in ("invitation", "termination")
            if spec.name == "state_transition" or not (wanted or follows):
                continue

            def put(src: Any, *args: Any, _name: str = spec.name, _wanted: bool = wanted) -> None:
                # First what the stream follows, so that whoever reads the event finds it
                # done (in thread mode the reader runs on another thread).
                if self._client is not None and _name == "invitation":
                    self._follow(args[0])
                elif self._client is not None and _name == "termination":
                    self._forget(src)
                if _wanted:
                    self._to_loop(self._queue.put_nowait, Event(_name, src, args))

            try:
                regs.append(obj.on(spec.name, put))
            except MsgrError:  # closed meanwhile: nothing more comes from it
                break

    def _forget(self, obj: Any) -> None:
        """Ends the registrations for one followed object (its last event came)."""
        with self._lock:
            regs = self._registrations.pop(obj, [])
        for reg in regs:
            try:
                reg.close()
            except MsgrError:
                pass

    def close(self) -> None:
        """Ends the registrations; events already queued are still yielded (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            followed = list(self._registrations.values())
            self._registrations.clear()
        if self._client is not None:
            try:
                self._client._followers.remove(self._follow)
            except ValueError:
                pass
        for regs in followed:
            for reg in regs:
                try:
                    reg.close()
                except MsgrError:
                    pass
        self._queue.put_nowait(None)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def get(self, timeout: Optional[float] = None) -> Event:
        """The next event; ``asyncio.TimeoutError`` after ``timeout`` seconds,
        ``StopAsyncIteration`` once closed and empty."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def __aenter__(self) -> "EventStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def events(source: Union["Client", "SessionManager", "Session"],
           names: Optional[List[str]] = None) -> EventStream:
    """Every event of a client (its managers and their sessions, as they come), a manager or
    a session (or only those ``names``) as :class:`Event` objects, for ``async for``, from
    now until the stream is closed (``client.events()`` is ``events(client)``). The client
    must deliver its events (thread mode, or attached to the loop: :func:`attach`)."""
    return EventStream(source, names)
