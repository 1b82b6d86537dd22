"""msgrpriv: the Windows Messenger Session Invite and Lock and Key API (Msgrpriv.h) for Python.

A ctypes binding of the ``libmsgrpriv`` C library. The objects::

    Service            an embedded Messenger service users sign in to
    Client             one signed-in user and its event queue (dispatch, asyncio, thread)
    SessionManager     registers applications, creates sessions, Lock and Key, manager events
    Session            one invitation between two users, its properties and session events

A session between two users on the embedded service, events delivered by
:meth:`Client.dispatch` (manual mode)::

>>> import msgrpriv
>>> GUID = "{5A1F3C2B-0D4E-4F6A-8B9C-7E6D5C4B3A21}"
>>> with msgrpriv.Service() as svc, svc.client("alice@example.com") as alice, \\
...         svc.client("bob@example.com") as bob:
...     ma, mb = alice.session_manager(), bob.session_manager()
...
...     @mb.on("invitation")
...     def invited(manager, session, app_data, handled):
...         handled.value = True          # the application answers it
...         session.accept("hello back")
...
...     ma.register_application(GUID, "Demo", "http://example.com")
...     s = ma.create_session()
...     s.application = GUID
...     accepted = s.on_accepted(lambda session, data: print("accepted:", data))
...     s.invite("bob@example.com", "hello")
...     while alice.dispatch(0) + bob.dispatch(0):   # deliver the events
...         pass
...     print(s.state)
accepted: hello back
CONNECTED

The same with asyncio (:mod:`msgrpriv.aio`), the invitation awaited::

>>> import asyncio
>>> async def main():
...     with msgrpriv.Service() as svc, svc.client("alice@example.com") as alice, \\
...             svc.client("bob@example.com") as bob:
...         alice.session_manager().register_application(GUID, "Demo", "http://example.com")
...         mb = bob.session_manager()
...         mb.on_invitation(lambda m, session, data, handled: session.accept("sure"))
...         async with msgrpriv.aio.attach(alice), msgrpriv.aio.attach(bob):
...             s = alice.session_manager().create_session()
...             s.application = GUID
...             print(await msgrpriv.aio.invite(s, "bob@example.com", "hello", timeout=10))
...             print(s.state)
>>> asyncio.run(main())
sure
CONNECTED

Failures raise :class:`MsgrError` subclasses (:class:`LockError`, :class:`SessionError`,
:class:`MessengerError`, :class:`GenericError`) carrying ``code`` and ``name``. See
``docs/PYTHON.md`` for the event rules, threads and asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import codes
from ._callbacks import (
    EVENTS,
    MANAGER_EVENTS,
    SESSION_EVENTS,
    EventSpec,
    Flag,
    Registration,
    live_registrations,
)
from ._ffi import CLSID_MsgrSessionManager
from ._library import EXPECTED_VERSION, LIBRARY_PATH, LIBRARY_VERSION
from ._objects import (
    Application,
    Client,
    Managed,
    Service,
    Session,
    SessionManager,
    compute_response,
    result_text,
    set_trace,
    version,
)
from .codes import HResult, code_name
from .enums import ConnectionState, DispatchMode, LockStatus, SessionFlags, SessionState, Tls, TraceLevel
from .errors import (
    ClosedError,
    ContextDataOverLimit,
    GenericError,
    InvalidArgument,
    LockError,
    MessengerError,
    MsgrError,
    SessionError,
)

if TYPE_CHECKING:  # pragma: no cover - imported on first use (see __getattr__)
    from . import aio as aio

__version__: str = EXPECTED_VERSION or LIBRARY_VERSION
"""The package version: the version of the library it binds."""

__all__ = [
    "Application",
    "CLSID_MsgrSessionManager",
    "Client",
    "ClosedError",
    "ContextDataOverLimit",
    "DispatchMode",
    "EVENTS",
    "EventSpec",
    "Flag",
    "GenericError",
    "HResult",
    "InvalidArgument",
    "LIBRARY_PATH",
    "LIBRARY_VERSION",
    "LockError",
    "LockStatus",
    "MANAGER_EVENTS",
    "Managed",
    "MessengerError",
    "MsgrError",
    "Registration",
    "SESSION_EVENTS",
    "Service",
    "Session",
    "SessionError",
    "SessionFlags",
    "SessionManager",
    "SessionState",
    "Tls",
    "ConnectionState",
    "TraceLevel",
    "aio",
    "code_name",
    "codes",
    "compute_response",
    "live_registrations",
    "result_text",
    "set_trace",
    "version",
]


def __getattr__(name: str) -> Any:
    """``msgrpriv.aio`` is imported on first use: ``import msgrpriv`` does not import asyncio."""
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
