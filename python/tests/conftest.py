"""pytest fixtures: a two-user world, and a leak guard run around every test."""

from __future__ import annotations

import gc
from typing import Iterator

import pytest

import msgrpriv
from helpers import World


@pytest.fixture(autouse=True)
def no_leaked_registrations() -> Iterator[None]:
    """Every registration a test made has ended (its destroy notification ran) once the
    test's objects are gone: the slab is back where it started (the previous test's
    teardown collected its garbage already)."""
    before = msgrpriv.live_registrations()
    yield
    gc.collect()
    assert msgrpriv.live_registrations() == before


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


@pytest.fixture
def app_world(world: World) -> World:
    """A world with the test application registered (no path)."""
    world.register_app()
    return world
