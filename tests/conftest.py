"""Shared fixtures: local gloo worlds, each started once per test session and reused.

Test functions that run inside a world must live at module level in a module importable from
tests/ (the ranks are spawned processes that import them by name).
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from moe_mc2.launch import LocalWorld  # noqa: E402

_WORLDS: dict = {}


def get_world(ep: int, tp: int) -> LocalWorld:
    """The session's ep x tp world (a closed one, after a test broke it, is started again)."""
    world = _WORLDS.get((ep, tp))
    if world is None or world.closed:
        world = _WORLDS[(ep, tp)] = LocalWorld(ep, tp)
    return world


def pytest_sessionfinish(session, exitstatus):
    for world in _WORLDS.values():
        try:
            world.close()
        except Exception:
            pass
    _WORLDS.clear()


@pytest.fixture(scope="session")
def world_2x2():
    return get_world(2, 2)


@pytest.fixture(scope="session")
def world_4x2():
    return get_world(4, 2)


@pytest.fixture(scope="session")
def world_2x4():
    return get_world(2, 4)


@pytest.fixture(scope="module")
def ta():
    """The real torchair with this project's converters registered the default way (real torchair,
    runtime.groups.comm_name); skips, saying why, when the torch-npu wheel cannot be had."""
    from moe_mc2.integration import torchair as conv
    from support import real_torchair

    try:
        module = real_torchair.load()
    except real_torchair.WheelUnavailable as exc:
        pytest.skip(f"torchair's Python tree (torch-npu wheel) unavailable: {exc}")
    conv._reset_for_tests()
    assert conv.register() is True
    yield module
    real_torchair.unload()
