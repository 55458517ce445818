"""`fractalgd trace`: one pixel's singular values and ranks against time, and its CLI."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.config import load_config
from fractalgd.engine import run_batch
from fractalgd.pipeline import engine_options, render
from fractalgd.studies.trace import effective_rank, trace_pixel

runner = CliRunner()
SMALL = ["gd.steps=300", "gd.dtype=float64"]


def test_effective_rank_is_nuclear_over_operator_norm():
    sv = np.array([[10.0, 6.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(effective_rank(sv), [2.0, 4.0, 1.0])


def test_deep_trace_follows_the_decoupled_eigenvalues_and_the_engine_label():
    # Identity init, diagonal target: σᵢ(W(t)) = |wᵢᴺ| with wᵢ⁺ = wᵢ − η(wᵢᴺ − λ̂ᵢ)wᵢᴺ⁻¹.
    cfg = load_config("configs/deep-p2.toml", SMALL)
    alpha, eta = 0.3, 0.05
    trace = trace_pixel(cfg, alpha, eta)
    lam_hat, w, want = np.array([1.0, 0.6, 0.3, 0.1]), np.full(4, alpha), [np.full(4, alpha**3)]
    for _ in range(300):
        w = w - eta * (w**3 - lam_hat) * w**2
        want.append(np.sort(np.abs(w**3))[::-1])
    np.testing.assert_allclose(trace.singular_values, np.array(want), rtol=1e-9, atol=1e-12)
    state, hyper = cfg.problem.initial({"alpha": np.array([alpha]), "eta": np.array([eta])}, np.float64)
    label = run_batch(cfg.problem.kernel, state, hyper, engine_options(cfg)).labels[0]
    assert trace.label == cfg.problem.class_names[label]
    assert trace.loss[-1] < trace.loss[0] and len(trace.step) == 300


def test_trace_cli_writes_a_png(tmp_path):
    out = tmp_path / "t.png"
    args = ["trace", "configs/deep-p2.toml", "--at", "0.1,0.05", "--out", str(out)]
    result = runner.invoke(app, [*args, *[x for s in SMALL for x in ("--set", s)]])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not [p for p in tmp_path.iterdir() if p != out]


def test_trace_of_a_scalar_problem_has_no_singular_values(tmp_path):
    cfg = load_config("configs/p1-fig3.toml", ["gd.steps=50"])
    trace = trace_pixel(cfg, 0.3, 0.4)
    assert trace.singular_values is None and trace.loss is not None and np.isfinite(trace.norm).all()


def test_bad_at_is_one_line_exit_2(tmp_path):
    for at in ("0.1", "a,b", "1,2,3"):
        result = runner.invoke(app, ["trace", "configs/deep-p2.toml", "--at", at, "--out", str(tmp_path / "x.png")])
        assert result.exit_code == 2 and "--at" in result.output
    assert not list(tmp_path.iterdir())


def test_shipped_configs_render_at_64_in_well_under_a_minute():
    for name, kind in (("matrix-orthogonal", "matrix"), ("deep-p2", "deep")):
        result = render(load_config(f"configs/{name}.toml", ["plane.resolution=[64,64]"]))
        assert result.meta["problem"] == kind and result.labels.shape == (64, 64)
        assert result.meta["elapsed_s"] < 60
