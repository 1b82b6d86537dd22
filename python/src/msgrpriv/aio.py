"""asyncio integration: deliver a manual-mode client's events inside a running event loop.

::

    async with msgrpriv.aio.attach(client) as events:
        ...                       # callbacks run in the loop's thread as events arrive
        await events.run_until(done_future, timeout=5)

:func:`attach` (or :meth:`Client.attach_to_loop`) registers the client's event descriptor
with ``loop.add_reader``; whenever it is readable, ``client.dispatch(0)`` runs in the loop.
An exception raised by a callback is handed to whoever awaits :meth:`LoopAttachment.run_until`
(or :meth:`LoopAttachment.wait_error`); when nobody is waiting it is also reported through
the loop's exception handler, and :meth:`LoopAttachment.raise_pending` re-raises it later.

Thread-mode clients do not need this: their callbacks run on the client's own thread; use
``loop.call_soon_threadsafe`` from a callback to hand results to a loop.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, List, Optional, Set, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from ._objects import Client

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

