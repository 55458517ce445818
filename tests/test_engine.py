"""Engine mechanics: tilings and block sizes change nothing; sweeping values never recompiles."""

from __future__ import annotations

import numpy as np
import pytest

from fractalgd.engine import EngineOptions, launch_batch, run_batch
from fractalgd.engine import xla as engine
from fractalgd.engine.dispatch import resolved_options
from fractalgd.pipeline import render
from fractalgd.pipeline.features import tile_epilogue
from fractalgd.problems import scalar
from tests.helpers import p1_config


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tilings_and_block_sizes_are_bit_identical(dtype):
    def run(**engine_cfg):
        # Labels and steps only: no limit features (their own tiling test is in test_features).
        gd = {"steps": 300, "dtype": dtype}
        cfg = p1_config(plane={"resolution": [96, 80]}, gd=gd, engine=engine_cfg, render={"features": False})
        return render(cfg)

    reference = run()
    for variant in ({"tile": 1000}, {"block": 64}, {"block": 128, "tile": 777, "unroll": 3}, {"batch_blocks": 4}):
        other = run(**variant)
        np.testing.assert_array_equal(other.labels, reference.labels, err_msg=str(variant))
        np.testing.assert_array_equal(other.steps, reference.steps, err_msg=str(variant))


def test_decision_steps_are_check_multiples_and_budget_is_respected():
    cfg = p1_config(plane={"resolution": [64, 64]}, gd={"steps": 250}, engine={"check_every": 32})
    result = render(cfg)
    decided = result.labels != 0
    assert np.all((result.steps[decided] % 32 == 0) | (result.steps[decided] == 250))
    assert np.all(result.steps[~decided] == 250)
    assert result.meta["pixel_steps"] <= 64 * 64 * 250


def test_state_matches_a_plain_loop_for_undecided_pixels():
    # Dense case (η small, every pixel runs the whole budget): the engine's final state is
    # exactly T plain steps.
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(1, 300)), rng.normal(size=(1, 300))
    hyper = {"eta": np.asarray(0.001), "lam": np.asarray(0.05), "y": np.asarray(1.0)}
    result = run_batch(scalar.ScalarKernel(1), (u, v), hyper, EngineOptions(100, check_every=32))
    assert np.all(result.labels == 0) and result.executed_pixel_steps == 300 * 100
    c, eta = 1 - 0.001 * 0.05, 0.001
    for _ in range(100):
        r = u * v - 1.0
        u, v = c * u - eta * r * v, c * v - eta * r * u
    np.testing.assert_allclose(result.state[0], u, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.state[1], v, rtol=1e-10, atol=1e-12)


def test_batches_in_flight_together_each_get_their_own_result():
    # A render launches its next tile before reading the last: two launches collected out of
    # order give exactly what each gives alone.
    rng = np.random.default_rng(1)
    kernel = scalar.ScalarKernel(1)
    opts = EngineOptions(100, check_every=32)
    runs = []
    for eta in (0.001, 0.6):
        hyper = {"eta": np.asarray(eta), "lam": np.asarray(0.05), "y": np.asarray(1.0)}
        runs.append(((rng.normal(size=(1, 700)), rng.normal(size=(1, 700))), hyper))
    pending = [launch_batch(kernel, state, hyper, opts) for state, hyper in runs]
    together = [collect() for collect in reversed(pending)][::-1]
    for (state, hyper), result in zip(runs, together, strict=True):
        alone = run_batch(kernel, state, hyper, opts)
        np.testing.assert_array_equal(result.labels, alone.labels)
        np.testing.assert_array_equal(result.steps, alone.steps)
        assert result.executed_pixel_steps == alone.executed_pixel_steps
        for a, b in zip(result.state, alone.state, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.all(together[0].labels == 0)  # η = 0.001: nothing decides in 100 steps
    assert np.any(together[1].labels != 0)  # η = 0.6: many do


def test_without_kept_states_the_epilogue_outputs_and_labels_are_unchanged():
    # A render that reads only the epilogue's outputs asks for no final states: they are not
    # written out, and nothing else changes (the epilogue still sees every block's final state).
    import jax

    from fractalgd.pipeline.pixels import initial_state, plane_coordinates

    cfg = p1_config(plane={"resolution": [24, 40]}, gd={"eta": 0.6, "steps": 300})
    state, hyper = initial_state(cfg, plane_coordinates(cfg, 0, cfg.plane.size))
    opts = EngineOptions(300, check_every=16, block=128)
    epilogue = tile_epilogue(cfg, 128)
    kept = run_batch(cfg.problem.kernel, state, hyper, opts, epilogue=epilogue)
    dropped = run_batch(cfg.problem.kernel, state, hyper, opts, epilogue=epilogue, keep_state=False)
    assert dropped.state is None and kept.state is not None
    np.testing.assert_array_equal(dropped.labels, kept.labels)
    np.testing.assert_array_equal(dropped.steps, kept.steps)
    flat_kept, tree = jax.tree_util.tree_flatten(kept.finished)
    flat_dropped, tree_dropped = jax.tree_util.tree_flatten(dropped.finished)
    assert tree == tree_dropped and len(flat_kept) > 3
    for a, b in zip(flat_kept, flat_dropped, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # without an epilogue the states are the result: they are kept whatever was asked
    assert run_batch(cfg.problem.kernel, state, hyper, opts, keep_state=False).state is not None


def test_blocks_dealt_to_devices_give_what_one_device_gives():
    # Two devices take the blocks in turn (engine.xla._deal): each pixel's label, step, final
    # state and the executed count are those of one device running every block, padding
    # included. The plane is lopsided (η grows along it) so the halves' work differs.
    import jax

    if len(jax.local_devices()) < 2:
        pytest.skip("needs two XLA devices (one per core)")
    rng = np.random.default_rng(2)
    n = 64 * 9 + 5  # not a whole number of blocks a device: padding dealt too
    state = (rng.normal(size=(1, n)), rng.normal(size=(1, n)))
    hyper = {"eta": np.linspace(0.001, 0.7, n), "lam": np.asarray(0.05), "y": np.asarray(1.0)}
    opts = EngineOptions(200, check_every=16, block=64)
    kernel = scalar.ScalarKernel(1)
    two = launch_batch(kernel, state, hyper, opts, devices=jax.local_devices()[:2])()
    one = launch_batch(kernel, state, hyper, opts, devices=jax.local_devices()[:1])()
    assert len(set(two.steps.tolist())) > 3  # blocks of very different cost
    np.testing.assert_array_equal(two.labels, one.labels)
    np.testing.assert_array_equal(two.steps, one.steps)
    assert two.executed_pixel_steps == one.executed_pixel_steps
    for a, b in zip(two.state, one.state, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = np.arange(2 * 3 * 8 * 4).reshape(2, 3, -1)
    np.testing.assert_array_equal(engine._undeal(engine._deal(x, 2, 4), 2, 4), x)
    assert engine._deal(x, 2, 4)[0, 0, 4:8].tolist() == x[0, 0, 8:12].tolist()  # block 2 right after block 0


def test_new_parameter_values_do_not_recompile():
    # η, λ and y travel as arrays: three renders share one compiled program (the engine's, with
    # the features in it) and one program for the attractors' representatives.
    import jax

    from fractalgd.pipeline import engine_options
    from fractalgd.pipeline.attractors import _orbit_fn

    engine._compiled.cache_clear()
    _orbit_fn.cache_clear()
    for eta, lam, y in ((0.5, 0.1, 1.0), (0.7, 0.0, 2.0), (1.1, 0.3, 0.5)):
        problem = {"lam": lam, "y": y}
        cfg = p1_config(plane={"resolution": [32, 32]}, gd={"eta": eta, "steps": 64}, problem=problem)
        assert render(cfg).meta["attractors"]
    assert engine._compiled.cache_info().currsize == 1
    assert _orbit_fn.cache_info().currsize == 1
    devices = tuple(jax.devices())[: min(len(jax.devices()), 2)]  # 1024 pixels = 2 blocks of 512
    opts = resolved_options(cfg.problem.kernel, engine_options(cfg))  # as run_batch resolves them
    epilogue = tile_epilogue(cfg, opts.block)  # a render's engine program computes the features too
    # ... and writes no final states: a render of P1 reads only the epilogue's outputs
    fn = engine._compiled(cfg.problem.kernel, opts, devices, engine.default_batch_blocks(devices), epilogue, False)
    assert engine._compiled.cache_info().hits >= 1
    assert fn._cache_size() == 1
