"""asyncio integration: the event descriptor registered with loop.add_reader delivers events
inside a running loop, without any explicit dispatch call."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional

import pytest

import msgrpriv
from msgrpriv import Flag, Session, SessionManager, SessionState, aio, codes
from helpers import ALICE, APP, BOB


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_invitation_flow_driven_by_the_loop() -> None:
    async def main() -> List[str]:
        loop = asyncio.get_running_loop()
        log: List[str] = []
        done: "asyncio.Future[Optional[str]]" = loop.create_future()
        with msgrpriv.Service(manual_clock=True) as svc, svc.client(ALICE) as alice, svc.client(BOB) as bob:
            ma, mb = alice.session_manager(), bob.session_manager()
            keep: List[Session] = []

            @mb.on("invitation")
            def invited(m: SessionManager, s: Session, data: Optional[str], handled: Flag) -> None:
                log.append(f"B invited {data}")
                handled.value = True
                keep.append(s)
                s.on_context_data(lambda s, d: (log.append(f"B got {d}"), s.send_context_data("pong")))
                s.on_termination(lambda s, hr, d: log.append(f"B end {hr.name}"))
                s.accept("yes")

            async with aio.attach(alice) as ev_a, bob.attach_to_loop() as ev_b:
                assert not ev_a.closed and ev_b.loop is loop
                ma.register_application(APP, "Test App", "http://example.com/app")
                s = ma.create_session()
                s.application = APP
                s.on_accepted(lambda s, d: (log.append(f"A accepted {d}"), s.send_context_data("ping")))

                def got(s: Session, d: str) -> None:
                    log.append(f"A got {d}")
                    s.cancel(codes.SR_SESSION_CANCELLED_REMOTE, "bye")

                s.on_context_data(got)
                s.on_termination(lambda s, hr, d: done.set_result(hr.name))
                s.invite(BOB, "hi")
                assert await ev_a.run_until(done, timeout=10) == "SR_SESSION_CANCELLED_LOCAL"
                # let bob's side finish
                for _ in range(100):
                    if "B end SR_SESSION_CANCELLED_REMOTE" in log:
                        break
                    await asyncio.sleep(0.01)
                assert s.state is SessionState.CANCELLED
            assert ev_a.closed and ev_b.closed
            for obj in keep + [s, ma, mb]:
                obj.close()
        return log

    assert run(main()) == [
        "B invited hi",
        "A accepted yes",
        "B got ping",
        "A got pong",
        "B end SR_SESSION_CANCELLED_REMOTE",
    ]


def test_callback_exception_raises_from_run_until() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with msgrpriv.Service() as svc, svc.client(ALICE) as alice, alice.session_manager() as m:
            m.on_app_registered(lambda m, g: 1 / 0)
            with alice.attach_to_loop() as ev:
                m.register_application(APP, "n", "u")
                never: "asyncio.Future[None]" = loop.create_future()
                with pytest.raises(ZeroDivisionError):
                    await ev.run_until(never, timeout=10)
                assert never.cancelled()

    run(main())


def test_exception_with_nobody_waiting_goes_to_the_loop_handler() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reported: List[Dict[str, Any]] = []
        loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))
        with msgrpriv.Service() as svc, svc.client(ALICE) as alice, alice.session_manager() as m:
            m.on_app_registered(lambda m, g: (_ for _ in ()).throw(KeyError("lost?")))
            with aio.attach(alice, loop) as ev:
                m.register_application(APP, "n", "u")
                for _ in range(200):
                    if reported:
                        break
                    await asyncio.sleep(0.005)
                assert isinstance(reported[0]["exception"], KeyError)
                assert reported[0]["client"] is alice
                with pytest.raises(KeyError):
                    ev.raise_pending()
                ev.raise_pending()  # reported once

    run(main())


def test_closing_the_client_detaches_it() -> None:
    async def main() -> None:
        with msgrpriv.Service() as svc:
            alice = svc.client(ALICE)
            ev = alice.attach_to_loop()
            fd = ev._fd
            assert fd is not None and fd >= 0
            alice.close()
            assert ev.closed
            ev.close()  # idempotent
            assert "fd=None" in repr(ev)

    run(main())


def test_real_clock_timeout_arrives_in_the_loop() -> None:
    """An invitation timeout on the real clock wakes the loop without any dispatch call."""

    async def main() -> List[str]:
        loop = asyncio.get_running_loop()
        ended: "asyncio.Future[str]" = loop.create_future()
        with msgrpriv.Service(invitation_timeout=0.05) as svc, svc.client(ALICE) as a, svc.client(BOB) as b:
            ma, mb = a.session_manager(), b.session_manager()
            kept: List[Session] = []
            mb.on_invitation(lambda m, s, d, h: kept.append(s))
            async with aio.attach(a) as ev_a, aio.attach(b):
                ma.register_application(APP, "n", "u")
                s = ma.create_session()
                s.application = APP
                s.on_termination(lambda s, hr, d: ended.set_result(str(hr)))
                s.invite(BOB)
                result = await ev_a.run_until(ended, timeout=10)
            for o in kept + [s, ma, mb]:
                o.close()
            return [result]

    assert run(main()) == ["SR_SESSION_TIMEOUT"]


def test_thread_mode_with_call_soon_threadsafe() -> None:
    """Thread-mode clients need no attachment: callbacks hand results to the loop."""

    async def main() -> str:
        loop = asyncio.get_running_loop()
        got: "asyncio.Future[str]" = loop.create_future()
        with msgrpriv.Service() as svc, svc.client(ALICE, msgrpriv.DispatchMode.THREAD) as a:
            with a.session_manager() as m:
                m.on_app_registered(lambda m, g: loop.call_soon_threadsafe(got.set_result, g))
                m.register_application(APP, "n", "u")
                return await asyncio.wait_for(got, 10)

    assert run(main()) == APP
