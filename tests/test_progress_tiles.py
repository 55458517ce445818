"""Planned tiles: progress that moves, one compiled shape, and no label that depends on the tiling."""

from __future__ import annotations

import numpy as np
import pytest

from fractalgd.config import config_from_dict
from fractalgd.engine import EngineOptions, run_batch
from fractalgd.pipeline import cost, render
from fractalgd.pipeline.cost import PROGRESS_SECONDS, tile_pixels


def p1(resolution, **engine):
    recipe = {"problem": {"kind": "scalar", "y": 0.5, "lam": 0.2}, "gd": {"eta": 1.0, "steps": 400},
              "plane": {"resolution": list(resolution), "x": {"param": "u0", "min": -4.0, "max": 4.0},
                        "y": {"param": "v0", "min": -4.0, "max": 4.0}}, "engine": engine}  # fmt: skip
    return config_from_dict(recipe)


def test_padding_is_invisible():
    """`pad_to` runs copies of the last pixel: labels, steps and counted pixel-steps are the unpadded ones."""
    config = p1((37, 5))
    state, hyper = config.problem.initial(config.plane.coordinates(0, 185), np.dtype("float64"))
    opts = EngineOptions(400, check_every=16, block=64)
    plain = run_batch(config.problem.kernel, state, hyper, opts)
    padded = run_batch(config.problem.kernel, state, hyper, opts, pad_to=1000)
    np.testing.assert_array_equal(padded.labels, plain.labels)
    np.testing.assert_array_equal(padded.steps, plain.steps)
    assert padded.labels.shape == (185,) and padded.executed_pixel_steps == plain.executed_pixel_steps


def test_slow_recipes_get_tiles_of_about_two_seconds(monkeypatch):
    """At a planning rate 10⁴× slower, the plane splits into whole-block tiles each planned ≤ PROGRESS_SECONDS."""
    config = p1((200, 150), block=64)
    fast = tile_pixels(config)
    assert fast == config.plane.size or fast % 64 == 0
    monkeypatch.setitem(cost.PLANNING_FLOPS_PER_DEVICE, "cpu", cost.PLANNING_FLOPS_PER_DEVICE["cpu"] / 1e4)
    tile = tile_pixels(config)
    devices = len(__import__("jax").local_devices())
    assert tile % (64 * devices) == 0 and tile < fast
    assert cost.planned_seconds(config, tile) <= PROGRESS_SECONDS * 1.01 or tile == 64 * devices
    calls = []
    planned = render(config, progress=lambda done, total: calls.append(done))
    whole = render(config, tile=config.plane.size)
    assert len(calls) == -(-config.plane.size // tile) >= 2 and calls[-1] == config.plane.size
    assert calls == sorted(calls)
    np.testing.assert_array_equal(planned.labels, whole.labels)
    np.testing.assert_array_equal(planned.steps, whole.steps)
    assert planned.meta["pixel_steps"] == whole.meta["pixel_steps"]


@pytest.mark.parametrize("resolution, cap", [((64, 64), 1 << 18), ((300, 200), 4096)])
def test_tiles_respect_the_engine_tile(resolution, cap):
    config = p1(resolution, tile=cap)
    assert tile_pixels(config) <= cap
