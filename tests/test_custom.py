"""kind = "custom": jax.grad of a user loss; P1 recovered through it; basins by minima; bad input."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.config import ConfigError, load_config
from fractalgd.problems import custom, scalar
from tests.helpers import small_render

runner = CliRunner()
CONFIG = "configs/custom-example.toml"


def test_custom_p1_loss_takes_the_hand_written_p1_step():
    """½(w₂ᵀw₁ − y)² through jax.grad equals P1's u⁺ = u − ηrv, v⁺ = v − ηru (λ = 0)."""
    cfg = load_config(
        CONFIG,
        ["problem.loss=examples.losses:two_layer_scalar", "problem.params={w1 = [0.3, -1.0], w2 = [1.2, 0.4]}",
         "problem.constants={target = 0.7}", "problem.minima=[]", "plane.x.param=a", "plane.y.param=b"],
    )
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(2, 7)), rng.normal(size=(2, 7))
    eta = rng.uniform(0.05, 0.5, 7)
    kernel = cfg.problem.kernel
    got = kernel.step({"w1": jnp.asarray(u), "w2": jnp.asarray(v)}, kernel.prepare({"eta": jnp.asarray(eta), "target": jnp.asarray(0.7)}))
    p1 = scalar.ScalarKernel(2)
    want = p1.step((jnp.asarray(u), jnp.asarray(v)), p1.prepare({"eta": eta, "lam": 0.0, "y": 0.7}))
    np.testing.assert_allclose(np.asarray(got["w1"]), np.asarray(want[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got["w2"]), np.asarray(want[1]), rtol=1e-12)


def test_runs_started_next_to_each_minimum_are_labelled_with_it():
    cfg = load_config(CONFIG, ["gd.dtype=\"float64\"", "gd.eta=0.005"])
    minima = np.array(cfg.resolved["problem"]["minima"])
    start = minima + 0.05
    state, hyper = cfg.problem.initial({"x": start[:, 0], "y": start[:, 1]}, np.float64)
    from fractalgd.engine import EngineOptions, run_batch

    labels = run_batch(cfg.problem.kernel, state, hyper, EngineOptions(2000)).labels
    names = cfg.problem.class_names
    assert [names[i] for i in labels] == ["min0", "min1", "min2", "min3"]


def test_a_swept_constant_changes_the_loss_without_a_new_kernel():
    cfg = load_config(CONFIG, ["plane.x.param=a", "plane.x.min=10", "plane.x.max=12", "plane.resolution=[4,4]"])
    state, hyper = cfg.problem.initial(cfg.plane.coordinates(0, 16), np.float32)
    assert hyper["a"].shape == (16,) and np.ptp(hyper["a"]) > 1
    assert hash(cfg.problem.kernel) == hash(load_config(CONFIG).problem.kernel)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("problem.loss=examples.nothing_here:f", "cannot import"),
        ("problem.loss=examples.losses:no_such_function", "cannot import"),
        ("problem.loss=not-a-spec", "cannot import"),
        ("problem.params={x = 1.0, y = [1.0, 2.0]}", "must return a float scalar"),
        ("problem.loss=fractalgd.problems.custom:unflatten", "failed on the parameter template"),
    ],
)
def test_bad_custom_loss_is_one_line_and_exit_2(tmp_path, override, needle):
    with pytest.raises(ConfigError, match=needle):
        load_config(CONFIG, [override])
    result = runner.invoke(app, ["render", CONFIG, "--out", str(tmp_path / "r"), "--set", override])
    assert result.exit_code == 2
    assert needle in result.output and len(result.output.strip().splitlines()) <= 2


def test_non_scalar_loss_is_rejected(tmp_path):
    module = tmp_path / "vec.py"
    module.write_text("def f(p):\n    return p['x'] * p['y'] * p['x'].reshape(1).repeat(2)\n")
    with pytest.raises(ConfigError, match="scalar"):
        load_config(CONFIG, [f"problem.loss={json.dumps(str(module) + ':f')}", "problem.constants={}"])


def test_every_new_config_renders_small_and_names_its_kind():
    # The renders at tests.helpers.SMALL (8×6, 20 steps) that test_cli's shipped-config test shares.
    for name, kind in (("sensing-p4", "sensing"), ("dln-sgd-p5", "dln_sgd"), ("mlp-sd", "mlp"), ("custom-example", "custom")):
        result = small_render(f"configs/{name}.toml")
        assert result.meta["problem"] == kind and result.labels.shape == (6, 8)
        assert set(np.unique(result.labels)) <= set(range(len(result.config.problem.class_names)))
    assert result.score is None
    sd = small_render("configs/mlp-sd.toml")
    assert sd.score.shape == (6, 8) and np.all((sd.score < 0) == (sd.labels == sd.config.problem.class_names.index("trainable")))


def test_custom_class_names_follow_the_minima():
    assert custom.class_names(2)[-3:] == ("converged", "min0", "min1")
