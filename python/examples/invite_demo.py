#!/usr/bin/env python3
"""The Session Invite flow with Lock and Key, in one process: alice invites bob to an
application, bob accepts, they exchange context data, alice hangs up.

    pip install ./python && python3 python/examples/invite_demo.py
"""

from __future__ import annotations

from typing import Optional

import msgrpriv
from msgrpriv import Flag, Session, SessionManager

APP_GUID = "{5A1F3C2B-0D4E-4F6A-8B9C-7E6D5C4B3A21}"
APP_ID, APP_KEY = "demo-app", "demo-secret"


def unlock(manager: SessionManager) -> None:
    """Lock and Key: answer the service's challenge with MD5(challenge + key)."""

    @manager.on("lock_challenge")
    def answer(m: SessionManager, cookie: int, challenge: str) -> None:
        m.send_response(APP_ID, msgrpriv.compute_response(challenge, APP_KEY), cookie)

    @manager.on("lock_result")
    def result(m: SessionManager, cookie: int, ok: bool) -> None:
        print(f"  {m.client.sign_in_name}: unlock {'succeeded' if ok else 'FAILED'}")


def main() -> None:
    with msgrpriv.Service() as service:
        service.add_app_key(APP_ID, APP_KEY)  # the service now enforces Lock and Key
        with service.client("alice@example.com") as alice, service.client("bob@example.com") as bob:
            ma, mb = alice.session_manager(), bob.session_manager()

            def pump() -> None:  # manual dispatch mode: deliver both users' events
                while alice.dispatch(0) + bob.dispatch(0):
                    pass

            for m in (ma, mb):
                unlock(m)
            pump()  # OnLockEnable(True) arrives
            ma.request_challenge()
            mb.request_challenge()
            pump()

            ma.register_application(APP_GUID, "Demo", "http://example.com/demo")

            @mb.on("invitation")
            def invited(m: SessionManager, s: Session, data: Optional[str], handled: Flag) -> None:
                print(f"  bob: {s.user} invites me to {s.application_name!r} ({data})")
                handled.value = True  # we take care of it
                s.on_context_data(lambda s, d: (print(f"  bob: got {d!r}"), s.send_context_data("pong")))
                s.on_termination(lambda s, hr, d: print(f"  bob: session over: {hr.name} {d!r}"))
                s.local_address = "192.0.2.2:7000"
                s.accept("sure")
                sessions.append(s)  # keep it (it holds its own reference)

            sessions: list[Session] = []
            s = ma.create_session()
            s.application = APP_GUID
            s.local_address = "192.0.2.1:7000"
            s.on_state_changed(lambda s, prev: print(f"  alice: {prev.name} -> {s.state.name}"))
            s.on_accepted(lambda s, d: print(f"  alice: accepted ({d}); bob is at {s.remote_address}"))
            s.on_context_data(lambda s, d: print(f"  alice: got {d!r}"))
            s.invite("bob@example.com", "let's play")
            pump()
            s.send_context_data("ping")
            pump()
            s.cancel(app_data="bye")
            pump()
            for obj in sessions + [s, ma, mb]:
                obj.close()


if __name__ == "__main__":
    main()
