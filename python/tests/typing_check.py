"""A user script written against the documented API (README.md, docs/PYTHON.md), for type
checkers: ``tests/test_typing.py`` runs ``mypy --strict`` on it and checks what the
``reveal_type`` lines show, then runs it.

Nothing here reaches into private names: a type error in this file is one a user would get.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, List, Optional

import msgrpriv
from msgrpriv import Flag, Session, SessionManager, SessionState, codes

GUID = "{5A1F3C2B-0D4E-4F6A-8B9C-7E6D5C4B3A21}"


def manual_mode() -> str:
    with msgrpriv.Service(manual_clock=True) as svc, svc.client("alice@example.com") as alice, \
            svc.client("bob@example.com") as bob:
        ma, mb = alice.session_manager(), bob.session_manager()
        kept: List[Session] = []
        seen: List[str] = []

        @mb.on("invitation")
        def invited(manager: SessionManager, session: Session, app_data: Optional[str],
                    handled: Flag) -> None:
            handled.value = True
            kept.append(session)
            session.accept("sure")

        def accepted(session: Session, data: Optional[str]) -> None:
            seen.append(f"accepted {data}")

        ma.register_application(GUID, "Demo", "http://example.com/demo")
        s = ma.create_session()
        s.application = GUID
        reg = s.on_accepted(accepted)
        s.invite("bob@example.com", "let's play")
        while alice.dispatch(0) + bob.dispatch(0):
            pass
        state = s.state
        assert state is SessionState.CONNECTED
        assert reg.active and invited.active
        if TYPE_CHECKING:
            reveal_type(svc)
            reveal_type(alice)
            reveal_type(ma)
            reveal_type(s)
            reveal_type(s.state)
            reveal_type(s.flags)
            reveal_type(s.remote_address)
            reveal_type(ma.applications)
            reveal_type(invited)
            reveal_type(reg)
        try:
            s.send_context_data("x" * 301)
        except msgrpriv.MsgrError as e:
            if TYPE_CHECKING:
                reveal_type(e.code)
            assert e.code == codes.SR_CONTEXT_DATA_OVER_LIMIT
            assert e.code.unsigned == 0x81000611
        result = f"{s.state} {seen}"
        for obj in [*kept, s]:
            obj.close()
        return result


async def with_asyncio() -> Optional[str]:
    loop = asyncio.get_running_loop()
    with msgrpriv.Service() as svc, svc.client("alice@example.com") as alice:
        with alice.session_manager() as manager:
            done: "asyncio.Future[str]" = loop.create_future()
            manager.on_app_registered(lambda m, guid: done.set_result(guid))
            async with msgrpriv.aio.attach(alice) as events:
                if TYPE_CHECKING:
                    reveal_type(events)
                    reveal_type(manager)
                manager.register_application(GUID, "Demo", "http://example.com/demo")
                guid = await events.run_until(done, timeout=10)
                if TYPE_CHECKING:
                    reveal_type(guid)
                return guid


async def awaited_invitation() -> str:
    with msgrpriv.Service(invitation_timeout=30) as svc, \
            svc.client("alice@example.com", msgrpriv.DispatchMode.THREAD) as alice, \
            svc.client("bob@example.com", msgrpriv.DispatchMode.THREAD) as bob:
        ma, mb = alice.session_manager(), bob.session_manager()
        ma.register_application(GUID, "Demo", "http://example.com/demo")
        async with msgrpriv.aio.events(mb, ["invitation"]) as invitations:
            s = ma.create_session()
            s.application = GUID
            answer = asyncio.ensure_future(msgrpriv.aio.invite(s, "bob@example.com", "hi", timeout=10))
            event = await invitations.get(timeout=10)
            if TYPE_CHECKING:
                reveal_type(event)
            invited = event.args[0]
            assert isinstance(invited, Session)
            invited.accept("ok")
            data = await answer
            if TYPE_CHECKING:
                reveal_type(data)
            for obj in (invited, s):
                obj.close()
            return f"{event.name} {data}"


if __name__ == "__main__":
    print(manual_mode())
    print(asyncio.run(with_asyncio()))
    print(asyncio.run(awaited_invitation()))
