"""Limit features and automatic attractors: analytic sharpness, P1's λ = 0 bounds, known attractors."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fractalgd.config import ConfigError, load_config
from fractalgd.core.jaxenv import x64
from fractalgd.pipeline import render
from fractalgd.problems import scalar
from fractalgd.problems.features import hessian_sharpness, singular_values

CUSTOM = "configs/custom-example.toml"
P1 = "configs/p1-fig3.toml"
HIMMELBLAU = np.array([[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]])

LOSSES = '''
import jax.numpy as jnp


def roots(p, k=3):
    """|z^k − 1|² (z = x + iy): exactly k minima, the k-th roots of unity, each with Hessian 2k²·I."""
    x, y = p["x"], p["y"]
    re, im = jnp.ones_like(x), jnp.zeros_like(x)
    for _ in range(k):
        re, im = re * x - im * y, re * y + im * x
    return (re - 1) ** 2 + im**2


def logcosh(p):
    """log cosh x + log cosh y: GD with η = 3 ends on the 2-cycles (±c, ±c) with 2c = 3·tanh c."""
    return jnp.log(jnp.cosh(p["x"])) + jnp.log(jnp.cosh(p["y"]))
'''


@pytest.fixture(scope="module")
def losses(tmp_path_factory):
    path = tmp_path_factory.mktemp("losses") / "known.py"
    path.write_text(LOSSES)
    return str(path)


def custom(losses, fn, overrides=()):
    base = [f"problem.loss={json.dumps(losses + ':' + fn)}", "problem.minima=[]", "problem.constants={}",
            'gd.dtype="float64"', "plane.resolution=[24,24]"]  # fmt: skip
    return load_config(CUSTOM, [*base, *overrides])


def test_p1_closed_form_sharpness_is_the_largest_hessian_eigenvalue():
    rng = np.random.default_rng(1)

    @functools.partial(jax.jit, static_argnums=2)  # one compile per d, not ~100 op-by-op ones per draw
    def hessian(w, hyper, d):
        return jax.hessian(lambda w: scalar.loss((w[:d, None], w[d:, None]), hyper)[0])(w)

    with x64():
        for _ in range(5):
            d = int(rng.integers(1, 4))
            u, v = rng.normal(size=d), rng.normal(size=d)
            hyper = {"y": float(rng.normal()), "lam": float(rng.uniform(0, 0.5))}
            want = np.linalg.eigvalsh(np.asarray(hessian(jnp.asarray(np.r_[u, v]), hyper, d)))[-1]
            got = scalar.sharpness((jnp.asarray(u)[:, None], jnp.asarray(v)[:, None]), hyper)
            np.testing.assert_allclose(np.asarray(got)[0], want, rtol=1e-10)


def test_lanczos_sharpness_is_exact_on_small_problems():
    """dim θ ≤ the Lanczos steps: the largest Ritz value is λ_max(∇²L) itself (deep net n = 2, depth 2: dim 8)."""
    cfg = load_config("configs/deep-p2.toml", ["problem.target_diag=[1.0, 0.5]", "problem.depth=2", 'gd.dtype="float64"'])
    problem = cfg.problem
    with x64():
        state, hyper = problem.initial(cfg.plane.coordinates(0, 6), np.float64)
        rng = np.random.default_rng(2)
        state = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape)), state)
        got = np.asarray(hessian_sharpness(problem, state, hyper))
        leaves, treedef = jax.tree_util.tree_flatten(state)
        shapes = [(*leaf.shape[:-1], 1) for leaf in leaves]  # one pixel's leaves
        sizes = [int(np.prod(shape)) for shape in shapes]

        @jax.jit  # one compile for every pixel: eager, each pixel's Hessian is ~100 op-by-op compiles
        def hessian(w, h):
            def f(w):
                parts = jnp.split(w, np.cumsum(sizes)[:-1])
                s = jax.tree_util.tree_unflatten(treedef, [q.reshape(a) for q, a in zip(parts, shapes, strict=True)])
                return problem.loss(s, h)[0]

            return jax.hessian(f)(w)

        for p in range(6):
            w = jnp.concatenate([jnp.asarray(leaf[..., p : p + 1]).ravel() for leaf in leaves])
            h = {k: (v[..., p : p + 1] if np.ndim(v) else v) for k, v in hyper.items()}
            want = np.linalg.eigvalsh(np.asarray(hessian(w, h)))[-1]
            np.testing.assert_allclose(got[p], want, rtol=1e-8, atol=1e-10)


def test_singular_values_match_numpy():
    rng = np.random.default_rng(3)
    with x64():
        for shape in ((3, 3), (2, 4), (5, 3)):
            m = rng.normal(size=(*shape, 7))
            got = np.asarray(singular_values(jnp.asarray(m)))
            want = np.stack([np.linalg.svd(m[..., p], compute_uv=False) for p in range(7)], axis=-1)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def p1_zero():
    """P1 with λ = 0, d = 2, η = 0.5: converged runs sit on uᵀv = y with sharpness ‖u‖² + ‖v‖²."""
    cfg = load_config(P1, ["problem.lam=0.0", "problem.dim=2", "gd.eta=0.5", "gd.steps=4000",
                           "plane.resolution=[20,16]", "plane.x.param=a", "plane.y.param=b", "plane.x.min=-2", "plane.x.max=2", "plane.y.min=-2", "plane.y.max=2"])  # fmt: skip
    return cfg, render(cfg)


def test_p1_lambda_zero_converged_sharpness_lies_in_two_y_to_two_over_eta(p1_zero):
    cfg, result = p1_zero
    converged = np.isin(result.labels, [cfg.problem.class_names.index(n) for n in ("converged", "nearest", "farthest")])
    assert converged.sum() > 20
    f = result.features
    y, eta = cfg.problem.y, cfg.gd.eta
    sharp = f["sharpness"][converged]
    assert np.all(sharp >= 2 * abs(y) * (1 - 1e-6)) and np.all(sharp <= 2 / eta * (1 + 1e-6))
    norm = f["norm"][converged]
    np.testing.assert_allclose(sharp, norm, rtol=1e-5)  # λ_max = ‖u‖² + ‖v‖² on uᵀv = y
    assert np.all(f["loss"][converged] < 1e-9) and np.all(f["distance"][converged] < 1e-4)
    assert np.all(np.isnan(f["sharpness"][result.labels == cfg.problem.class_names.index("diverged")]))


def test_p1_features_equal_an_independent_numpy_gd(p1_zero):
    cfg, result = p1_zero
    names = cfg.problem.class_names
    rows, cols = np.nonzero(result.labels == names.index("converged"))
    for r, c in list(zip(rows, cols, strict=True))[:: max(1, len(rows) // 5)]:
        coords = {k: float(v[0]) for k, v in cfg.plane.coordinates(r * cfg.plane.x.n + c, r * cfg.plane.x.n + c + 1).items()}
        state, _ = cfg.problem.initial({k: np.array([v]) for k, v in coords.items()}, np.float64)
        u, v = np.asarray(state[0])[:, 0].copy(), np.asarray(state[1])[:, 0].copy()
        for _ in range(20000):
            res = u @ v - cfg.problem.y
            u, v = u - cfg.gd.eta * res * v, v - cfg.gd.eta * res * u
        assert result.features["norm"][r, c] == pytest.approx(u @ u + v @ v, rel=1e-5)
        assert result.features["imbalance"][r, c] == pytest.approx(u @ u - v @ v, abs=1e-5)


def test_features_do_not_change_labels_and_are_invariant_under_tilings():
    cfg = load_config(P1, ["plane.resolution=[16,12]"])
    whole, tiled = render(cfg), render(cfg, tile=40)
    off = render(load_config(P1, ["plane.resolution=[16,12]", "render.features=false"]))
    assert off.features is None and np.array_equal(off.labels, whole.labels) and np.array_equal(off.steps, whole.steps)
    assert np.array_equal(whole.labels, tiled.labels) and [a["name"] for a in whole.meta["attractors"]] == [
        a["name"] for a in tiled.meta["attractors"]]  # fmt: skip
    for name, values in whole.features.items():
        assert np.array_equal(np.isnan(values), np.isnan(tiled.features[name])), name
        np.testing.assert_allclose(values, tiled.features[name], rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=name)


def test_himmelblau_without_minima_finds_its_four_minima():
    cfg = load_config(CUSTOM, ["problem.minima=[]", "plane.resolution=[32,32]"])
    result = render(cfg)
    fixed = [a for a in result.meta["attractors"] if a["kind"] == "fixed"]
    assert len(fixed) == 4
    for a in fixed:
        assert np.min(np.abs(HIMMELBLAU - np.array(a["state"])).max(axis=1)) < 1e-3
        assert a["loss"] < 1e-6
    names = result.class_names
    assert {names[i] for i in np.unique(result.labels)} <= {"diverged", "min0", "min1", "min2", "min3"}
    counts = {names[i]: int(c) for i, c in enumerate(np.bincount(result.labels.ravel(), minlength=len(names)))}
    assert all(counts[a["name"]] == a["pixels"] for a in fixed)


def test_roots_of_unity_are_exactly_the_attractors_with_sharpness_2k2(losses):
    cfg = custom(losses, "roots", ["gd.eta=0.01", "gd.steps=3000", "plane.x.min=-1.3", "plane.x.max=1.3",
                                    "plane.y.min=-1.3", "plane.y.max=1.3"])  # fmt: skip
    result = render(cfg)
    fixed = [a for a in result.meta["attractors"] if a["kind"] == "fixed"]
    roots = np.array([[np.cos(2 * np.pi * j / 3), np.sin(2 * np.pi * j / 3)] for j in range(3)])
    assert len(fixed) == 3
    assert sorted(np.argmin(np.abs(roots - np.array(a["state"])).max(axis=1)) for a in fixed) == [0, 1, 2]
    for a in fixed:
        assert np.min(np.abs(roots - np.array(a["state"])).max(axis=1)) < 1e-3
    converged = np.isfinite(result.features["attractor"])
    np.testing.assert_allclose(result.features["sharpness"][converged], 2 * 3**2, rtol=1e-3)


def test_logcosh_with_eta_3_has_exactly_two_attracting_two_cycles(losses):
    cfg = custom(losses, "logcosh", ["gd.eta=3.0", "gd.steps=2000"])
    result = render(cfg)
    cycles = [a for a in result.meta["attractors"] if a["kind"] == "period2"]
    c = 1.0
    for _ in range(200):  # the root of 2c = 3 tanh c: fixed-point iteration, a contraction here
        c = 1.5 * np.tanh(c)
    assert len(cycles) == 2 and sum(a["pixels"] for a in cycles) >= 0.9 * result.labels.size
    signs = set()
    for a in cycles:
        orbit = np.array(a["orbit"])
        np.testing.assert_allclose(np.abs(orbit), c, rtol=1e-4)
        np.testing.assert_allclose(orbit[0], -orbit[1], rtol=1e-4)
        signs.add(float(np.sign(orbit[0, 0] * orbit[0, 1])))
    assert signs == {1.0, -1.0}  # {(c, c), (−c, −c)} and {(c, −c), (−c, c)}


def test_feature_colour_needs_a_known_feature():
    with pytest.raises(ConfigError, match="render.color"):
        load_config(P1, ['render.color="feature:nope"'])
    with pytest.raises(ConfigError, match="render.features"):
        load_config(P1, ['render.color="feature:sharpness"', "render.features=false"])
    assert load_config(P1, ['render.color="feature:imbalance"']).render.feature == "imbalance"


def test_render_directory_has_features_and_attractors_and_analyze_reads_them(tmp_path):
    from typer.testing import CliRunner

    from fractalgd.cli import app

    out = tmp_path / "r"
    runner = CliRunner()
    args = ["render", CUSTOM, "--out", str(out), "--set", "problem.minima=[]", "--set", "plane.resolution=[16,16]",
            "--set", 'render.color="feature:sharpness"', "--set", "render.axes=true"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    meta = json.loads((out / "meta.json").read_text())  # strict JSON: no NaN
    with np.load(out / "features.npz") as data:
        assert {"loss", "norm", "sharpness", "step", "attractor"} <= set(data.files)
        labels = np.load(out / "labels.npy")
        assert all(data[k].shape == labels.shape for k in data.files)
        attractor = data["attractor"]
    for row, entry in enumerate(meta["attractors"]):
        assert entry["pixels"] == int(np.sum(attractor == row)) and len(entry["state"]) == 2
    result = runner.invoke(app, ["analyze", str(out), "--feature", "sharpness"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "feature-sharpness.json").read_text())
    finite = np.isfinite(np.load(out / "features.npz")["sharpness"])
    assert summary["all"]["defined"] == int(finite.sum())
    bad = runner.invoke(app, ["analyze", str(out), "--feature", "nope", "--force"])
    assert bad.exit_code == 2 and "nope" in bad.output


@pytest.mark.parametrize("distinct", [1, 7, 16, 17, 5000, -3])  # any number of cells, one missed by a sample
def test_cell_hashes_are_grouped_exactly_as_numpy_unique_groups_them(distinct):
    from fractalgd.pipeline.attractors import _group

    rng = np.random.default_rng(abs(distinct))
    values = rng.integers(-(2**62), 2**62, abs(distinct))[rng.integers(0, abs(distinct), 20_000)]
    if distinct < 0:  # a cell of one pixel between the sampled ones: the guess misses it
        values[1] = 12345
    close = rng.integers(0, 4, values.size).astype(float)  # many ties: the first of them wins
    close[rng.random(values.size) < 0.1] = np.inf
    unique, inverse, counts, first = _group(values, close)
    for ours, numpys in zip((unique, inverse, counts), np.unique(values, return_inverse=True, return_counts=True), strict=True):
        np.testing.assert_array_equal(ours, numpys)
    for u in range(len(unique)):
        mine = np.flatnonzero(values == unique[u])
        assert first[u] == mine[close[mine] == close[mine].min()][0]


@pytest.mark.parametrize("distinct", [1, 3, 16, 17, 400, -5])  # both sides of FEW_CELLS = 16
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tiles_cells_are_counted_exactly_whichever_way_they_are_grouped(distinct, dtype):
    # Per cell of the member pixels (kind ≠ none): its pixels, its most settled pixel (smallest
    # closeness, NaN as inf, the first on ties) and its pixels per label, from a plain loop;
    # the few-cells masks and the gathered grouping must both give exactly these.
    from collections import Counter

    from fractalgd.pipeline.attractors import _few_cells, _many_cells

    rng = np.random.default_rng(abs(distinct) + 10 * (dtype == np.float64))
    n = 6000
    cell = rng.integers(-(2**62), 2**62, abs(distinct))[rng.integers(0, abs(distinct), n)]
    if distinct < 0:  # rare cells between the sampled pixels: the guess misses them
        cell[[3, 4000]] = [77, -77]
    member = rng.random(n) < 0.8
    close = (rng.integers(0, 4, n) / 4).astype(dtype)  # many ties
    close[rng.random(n) < 0.1] = np.nan
    close[rng.random(n) < 0.1] = np.inf
    close[cell == cell[7]] = np.nan  # a cell with no closeness at all: its first pixel
    labels = rng.integers(2, 6, n).astype(np.uint8)
    want = {}
    for i in np.flatnonzero(member):
        c = want.setdefault(int(cell[i]), {"count": 0, "first": i, "labels": Counter()})
        c["count"] += 1
        c["labels"][int(labels[i])] += 1
        key = lambda j: np.inf if np.isnan(close[j]) else close[j]  # noqa: E731
        if key(i) < key(c["first"]):
            c["first"] = i
    tiles = [_many_cells(cell, member, close, labels)]
    few = _few_cells(cell, member, int(member.sum()), close, labels)
    assert (few is None) == (abs(distinct) + 2 * (distinct < 0) > 16)
    tiles += [few] if few is not None else []
    for tile in tiles:
        assert tile.unique.tolist() == sorted(want)
        assert tile.counts.tolist() == [want[h]["count"] for h in sorted(want)]
        assert tile.first.tolist() == [want[h]["first"] for h in sorted(want)]
        pairs = [(u, label, want[h]["labels"][label]) for u, h in enumerate(sorted(want)) for label in sorted(want[h]["labels"])]
        assert tile.pairs == pairs
        ids = tile.ids(np.arange(len(want)) * 10, n)
        expected = np.array([sorted(want).index(int(h)) * 10 if m else -1 for h, m in zip(cell, member, strict=True)])
        np.testing.assert_array_equal(ids, expected)


def test_blocks_of_diverged_pixels_are_skipped_without_touching_the_others():
    """The features of a block whose pixels all diverged are not computed (NaN, kind none); every
    other pixel's features, kinds and cells equal those of a run where nothing is skipped."""
    from dataclasses import replace

    from fractalgd.core.classes import DIVERGED, UNDECIDED
    from fractalgd.pipeline.features import KIND_NONE, tile_limits
    from fractalgd.pipeline.pixels import plane_coordinates, run_pixels

    cfg = load_config(P1, ["plane.resolution=[16,12]"])
    coords = plane_coordinates(cfg, 0, cfg.plane.size)
    with x64():
        result = run_pixels(cfg, coords)
        gone = result.labels == DIVERGED
        blocks = gone.reshape(-1, 8).all(axis=1)
        assert blocks.any() and not blocks.all() and (gone & ~np.repeat(blocks, 8)).any()  # all three kinds of block
        skipped = tile_limits(cfg, coords, result, block=8)
        kept = tile_limits(cfg, coords, replace(result, labels=np.where(gone, UNDECIDED, result.labels)), block=8)
    assert np.all(skipped.kind[gone] == KIND_NONE)
    live = ~gone
    np.testing.assert_array_equal(skipped.kind[live], kept.kind[live])
    np.testing.assert_array_equal(skipped.cell[live], kept.cell[live])
    for name, values in kept.features.items():
        np.testing.assert_array_equal(skipped.features[name][live], values[live], err_msg=name)
    assert np.all(np.isnan(skipped.features["loss"][np.repeat(blocks, 8)]))
