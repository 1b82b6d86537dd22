"""The Python package over XMPP, in two processes: alice (this process) invites bob (a child
interpreter with its own Service) through a Prosody that scripts/with-prosody.sh starts and
stops, each through its own loopback address of the server (as from two hosts); bob accepts,
they exchange context data, alice cancels. Each side checks its events. Over plain TCP, and
over STARTTLS with the server's certificate trusted through ``ca_file``; the TLS, CA file
and domain options' refusals.
Needs prosody and a library built with the ``xmpp`` feature (CI has both; elsewhere the test
is skipped when either is missing)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import msgrpriv
from msgrpriv import SessionState, codes


ROOT = Path(__file__).resolve().parents[2]
GUID = "{5A1F3C2B-0D4E-4F6A-8B9C-7E6D5C4B3A21}"
PASSWORDS = {"alice@localhost": "alicepw", "bob@localhost": "bobpw"}


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must run this test)")
    pytest.skip(what)


# A server: (alice's address, bob's address, the CA file to trust, or "" for plain TCP).
Server = Tuple[str, str, str]


@pytest.fixture(params=["plain", "starttls"])
def server(request: Any) -> Iterator[Server]:
    if shutil.which("prosody") is None:
        _missing("prosody is not installed")
    tls = ["--tls"] if request.param == "starttls" else []
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts/with-prosody.sh"), *tls, "sh", "-c",
         'echo "$MSGRPRIV_XMPP_SERVER $MSGRPRIV_XMPP_SERVER2 ${MSGRPRIV_XMPP_CA_FILE:--}";'
         " exec sleep 600"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        first, second, ca_file = proc.stdout.readline().split()
        yield first, second, "" if ca_file == "-" else ca_file
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def tls_options(ca_file: str) -> Dict[str, Any]:
    """STARTTLS trusting `ca_file`, or plain TCP (loopback) when there is none."""
    if ca_file:
        return {"tls": msgrpriv.Tls.STARTTLS, "ca_file": ca_file}
    return {"tls": msgrpriv.Tls.PLAIN}


def xmpp_service(server: str, **options: Any) -> msgrpriv.Service:
    try:
        return msgrpriv.Service(xmpp_server=server, credentials=PASSWORDS.get, **options)
    except msgrpriv.MsgrError as e:
        if e.code == codes.E_NOTIMPL:
            _missing("the library was built without the xmpp feature")
        raise


BOB = textwrap.dedent('''
    import sys, time, msgrpriv
    server, guid, ca_file = sys.argv[1], sys.argv[2], sys.argv[3]
    tls = msgrpriv.Tls.STARTTLS if ca_file else msgrpriv.Tls.PLAIN
    svc = msgrpriv.Service(xmpp_server=server, credentials=lambda n: "bobpw", tls=tls,
                           ca_file=ca_file or None)
    log = []
    def pump(client, cond):
        deadline = time.monotonic() + 15
        while not cond():
            assert time.monotonic() < deadline, log
            client.dispatch(0.01)
    with svc, svc.client("bob@localhost") as bob:
        m = bob.session_manager()
        m.register_application(guid, "Demo", "http://example.com")
        got = []
        @m.on("invitation")
        def invited(manager, session, data, handled):
            handled.value = True
            log.append(f"Invitation({data})")
            session.on_state_changed(lambda s, prev: log.append(f"StateChanged({prev.name})"))
            session.on_context_data(lambda s, d: log.append(f"ContextData({d})"))
            session.on_cancelled(lambda s, d: log.append(f"Cancelled({d})"))
            session.on_termination(lambda s, hr, d: log.append(f"Termination({hr.name},{d})"))
            got.append(session)
        print("ready", flush=True)  # an invitation before this would reach no manager
        pump(bob, lambda: got)
        s = got[0]
        s.accept("yes")
        pump(bob, lambda: "ContextData(ping)" in log)
        s.send_context_data("pong")
        pump(bob, lambda: any(l.startswith("Termination") for l in log))
        s.close()
    print("\\n".join(log))
''')


def test_two_processes_through_prosody(server: Server) -> None:
    with xmpp_service(server[0], **tls_options(server[2])) as svc, \
            svc.client("alice@localhost") as alice:
        bob = subprocess.Popen(
            [sys.executable, "-c", BOB, server[1], GUID, server[2]], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(Path(msgrpriv.__file__).resolve().parents[1])),
        )
        try:
            m = alice.session_manager()
            m.register_application(GUID, "Demo", "http://example.com")
            s = m.create_session()
            log: List[str] = []
            s.on_state_changed(lambda s, prev: log.append(f"StateChanged({prev.name})"))
            s.on_accepted(lambda s, d: log.append(f"Accepted({d})"))
            s.on_context_data(lambda s, d: log.append(f"ContextData({d})"))
            s.on_termination(lambda s, hr, d: log.append(f"Termination({hr.name},{d})"))
            s.application = GUID
            assert bob.stdout is not None
            assert bob.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 15
            while True:  # bob is not signed in until his presence arrives
                try:
                    s.invite("bob@localhost", "hello")
                    break
                except msgrpriv.MsgrError as e:
                    assert e.code == codes.MSGR_E_NOT_LOGGED_ON, e
                    assert time.monotonic() < deadline, "bob never signed in"
                    time.sleep(0.01)

            def pump(cond: Any) -> None:
                end = time.monotonic() + 15
                while not cond():
                    assert time.monotonic() < end, log
                    alice.dispatch(0.01)

            pump(lambda: s.state is SessionState.CONNECTED)
            s.send_context_data("ping")
            pump(lambda: "ContextData(pong)" in log)
            s.cancel(codes.E_FAIL, "bye")
            pump(lambda: any(line.startswith("Termination") for line in log))
            assert log == [
                "StateChanged(READY)", "StateChanged(INVITATION)", "Accepted(yes)",
                "StateChanged(ACCEPTED)", "ContextData(pong)", "StateChanged(CONNECTED)",
                "Termination(SR_SESSION_CANCELLED_LOCAL,bye)",
            ]
            out, err = bob.communicate(timeout=20)
            assert bob.returncode == 0, err
            assert out.split() == [
                "Invitation(hello)", "StateChanged(INVITATION)", "StateChanged(ACCEPTED)",
                "ContextData(ping)", "StateChanged(CONNECTED)", "Cancelled(bye)",
                "Termination(E_FAIL,bye)",
            ]
            s.close()
        finally:
            if bob.poll() is None:
                bob.kill()
                bob.wait()


def test_xmpp_options_are_checked() -> None:
    with pytest.raises(ValueError):
        msgrpriv.Service(xmpp_server="no-port", credentials=PASSWORDS.get)
    with pytest.raises(TypeError):
        msgrpriv.Service(xmpp_server="127.0.0.1:5222")
    try:
        svc = msgrpriv.Service(xmpp_server="127.0.0.1:1", credentials=lambda n: None,
                               tls=msgrpriv.Tls.PLAIN)
    except msgrpriv.MsgrError as e:
        if e.code == codes.E_NOTIMPL:
            _missing("the library was built without the xmpp feature")
        raise
    with svc:
        # The password source refuses: the sign-in fails at once, with the documented code.
        with pytest.raises(msgrpriv.MsgrError) as info:
            svc.client("alice@localhost")
        assert info.value.code == codes.SR_AUTHENTICATION_FAILED
    # Plain TCP: loopback IP literals only; TLS (the default) to any host.
    for host in ["192.0.2.1:5222", "localhost:5222"]:
        with pytest.raises(msgrpriv.MsgrError) as info:
            msgrpriv.Service(xmpp_server=host, credentials=PASSWORDS.get, tls=msgrpriv.Tls.PLAIN)
        assert info.value.code == codes.E_INVALIDARG
        msgrpriv.Service(xmpp_server=host, credentials=PASSWORDS.get).close()
    msgrpriv.Service(xmpp_server="[::1]:1", credentials=PASSWORDS.get, tls=msgrpriv.Tls.PLAIN).close()
    bad: List[Dict[str, Any]] = [
        {"tls": 3},
        {"ca_file": "/nonexistent/msgrpriv-ca.pem"},
        {"ca_file": __file__},  # readable, holds no certificate
        {"xmpp_domain": ""},
        {"xmpp_domain": "alice@localhost"},
    ]
    for options in bad:
        with pytest.raises(msgrpriv.MsgrError) as info:
            msgrpriv.Service(xmpp_server="127.0.0.1:1", credentials=PASSWORDS.get, **options)
        assert info.value.code == codes.E_INVALIDARG, options
    # The domain option: a name at another domain is refused before anything connects.
    with msgrpriv.Service(xmpp_server="127.0.0.1:1", credentials=PASSWORDS.get,
                          xmpp_domain="localhost") as svc:
        with pytest.raises(msgrpriv.MsgrError) as info:
            svc.client("bob@example.com")
        assert info.value.code == codes.E_INVALIDARG


def test_reconnection_and_policy_options(server: Server) -> None:
    # The options are taken; a bad one is refused before anything is created.
    tls = tls_options(server[2])
    for options in [{"keepalive": 5.0, "reconnect_max": math.inf},
                    {"allow_strangers": True, "invitations_per_minute": 0},
                    {"reconnect_max": 2, "invitations_per_minute": 3}]:
        xmpp_service(server[0], **tls, **options).close()
    for options, error in [({"keepalive": -1}, ValueError),
                           ({"invitations_per_minute": -1}, OverflowError),
                           ({"allow_strangers": "yes"}, TypeError)]:
        with pytest.raises(error):
            xmpp_service(server[0], **tls, **options)
    with xmpp_service(server[0], **tls) as svc:
        alice = svc.client("alice@localhost")
        assert alice.connection_state() == (msgrpriv.ConnectionState.SIGNED_IN, codes.S_OK)
        alice.sign_out()
        state, reason = alice.connection_state()
        assert state is msgrpriv.ConnectionState.SIGNED_OUT and reason == codes.S_OK
        alice.close()


def test_starttls_refusals(server: Server) -> None:
    """A certificate the system's store does not vouch for, and STARTTLS required of a
    server that offers none: refused at once with SR_NETWORK_CONFIG_FAILURE."""
    with xmpp_service(server[0]) as svc:  # STARTTLS, the system's store
        start = time.monotonic()
        with pytest.raises(msgrpriv.MsgrError) as info:
            svc.client("alice@localhost")
        assert info.value.code == codes.SR_NETWORK_CONFIG_FAILURE
        assert time.monotonic() - start < 3
