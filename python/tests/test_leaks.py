"""Callbacks are released when unadvised: no leak over 100k register/unregister cycles.

Measured three ways: the slab (live registrations and its high-water mark) and the process's
resident set (RSS, which includes the library's own allocations for each registration) over
every cycle, Python allocations (tracemalloc) over the last 10k. Run with ``-s`` to see the
numbers; MSGRPRIV_LEAK_CYCLES changes the count."""

from __future__ import annotations

import gc
import os
import resource
import tracemalloc
from typing import Any, Callable, Dict

import pytest

import msgrpriv
from msgrpriv import _callbacks
from helpers import World

CYCLES = int(os.environ.get("MSGRPRIV_LEAK_CYCLES", "100000"))


def rss_kib() -> int:
    """Current resident set size in KiB (Linux), else the peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except OSError:  # pragma: no cover
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(cycle: Callable[[], None], n: int, traced: int = 10_000) -> Dict[str, Any]:
    """Runs ``n`` cycles: the slab and RSS are compared over all of them, Python allocations
    (tracemalloc, which slows every allocation down) over the last ``traced``."""
    for _ in range(2000):  # warm up: caches, free lists, the slab's first slots
        cycle()
    gc.collect()
    cap0, live0, rss0 = _callbacks.slab_capacity(), msgrpriv.live_registrations(), rss_kib()
    traced = min(traced, n)
    for _ in range(n - traced):
        cycle()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(traced):
        cycle()
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    return {
        "cycles": n,
        "traced_cycles": traced,
        "live_before": live0,
        "live_after": msgrpriv.live_registrations(),
        "slab_capacity_growth": _callbacks.slab_capacity() - cap0,
        "python_bytes_growth": growth,
        "rss_kib_growth": rss_kib() - rss0,
    }


def report(name: str, m: Dict[str, Any]) -> None:
    print(f"\n[leak] {name}: {m}")


def check(m: Dict[str, Any]) -> None:
    assert m["live_after"] == m["live_before"]
    assert m["slab_capacity_growth"] == 0  # indices are reused: the slab never grew
    assert m["python_bytes_growth"] < 64 * 1024
    assert m["rss_kib_growth"] < 8 * 1024


def test_manager_register_unregister_cycles(world: World) -> None:
    m = world.ma
    fn = lambda *a: None  # noqa: E731

    def cycle() -> None:
        reg = m.on_invitation(fn)
        reg.close()

    result = measure(cycle, CYCLES)
    report("manager on_invitation + close", result)
    check(result)
    assert m._entries == {}


def test_session_register_unregister_cycles(app_world: World) -> None:
    s = app_world.session()
    base = msgrpriv.live_registrations()

    def cycle() -> None:
        with s.on("termination", lambda *a: None):
            pass

    result = measure(cycle, CYCLES)
    report("session on('termination') + close", result)
    check(result)
    assert msgrpriv.live_registrations() == base


def test_registrations_ended_by_release_cycles(world: World) -> None:
    """Sessions closed with registrations still in place: the destroy notifications free
    every slab entry."""
    m = world.ma

    def cycle() -> None:
        s = m.create_session()
        s.on_state_changed(lambda *a: None)
        s.on_termination(lambda *a: None)
        s.close()

    result = measure(cycle, CYCLES // 10)
    report("create_session + 2 registrations + close", result)
    check(result)


@pytest.mark.parametrize("mode", ["decorator", "failed registration"])
def test_other_paths_do_not_leak(world: World, mode: str) -> None:
    m = world.ma
    closed = msgrpriv.SessionManager(world.a)
    stale_handle = closed.handle
    closed.close()

    def cycle() -> None:
        if mode == "decorator":
            @m.on("lock_result")
            def fn(*a: Any) -> None:
                pass
            fn.close()
        else:
            # the registration call fails in C (stale handle): destroy still runs once
            closed._handle = stale_handle
            try:
                closed.on_lock_result(lambda *a: None)
            except msgrpriv.GenericError as e:
                assert e.name == "E_HANDLE"
            finally:
                closed._handle = None

    result = measure(cycle, CYCLES // 10)
    report(mode, result)
    check(result)
