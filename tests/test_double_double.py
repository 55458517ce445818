"""Renders past float64: decimal axes, double-double recipes, and deep P1 views against 60-digit GD."""

from __future__ import annotations

import decimal
from decimal import Decimal

import numpy as np
import pytest

from fractalgd.config import ConfigError, load_config
from fractalgd.core.classes import UNDECIDED
from fractalgd.core.decimal_axis import dd_decimal, dd_text, parse_decimal, to_dd
from fractalgd.core.plane import View
from fractalgd.output import save_render
from fractalgd.pipeline import render
from fractalgd.studies.zoom import next_center_dd
from tests.mp_gd import p1_label

# A point of the nearest/farthest boundary of P1 Fig 3 (y = 0.5, λ = 0.2, η = 1), found by
# bisection with `tests.mp_gd.p1_boundary` from the float64 pixels (1.703125, −0.515625) (nearest)
# and (1.734375, −0.515625) (farthest) of a 256² render, to 40 digits.
BOUNDARY = ("1.71847639664035890376366752203623211840794181", "-0.515625")
DD = 'gd.dtype="double-double"'
decimal.getcontext().prec = 60  # the tests' own decimal arithmetic (pixel pitches, offsets)


def deep_view(width: str, n: int, steps: int = 1000, center=BOUNDARY):
    return load_config("configs/p1-fig3.toml", [
        f'plane.x.center="{center[0]}"', f"plane.x.width={width}", f'plane.y.center="{center[1]}"',
        f"plane.y.width={width}", DD, f"plane.resolution=[{n},{n}]", f"gd.steps={steps}",
    ])  # fmt: skip


def test_decimal_strings_read_back_as_the_same_pairs():
    for text in ("0.3", "1.71992837465829384756102938475610293847", "-2.5e-30", "1e300", "7"):
        pair = to_dd(Decimal(text))
        assert to_dd(Decimal(dd_text(*pair))) == pair
        assert abs(dd_decimal(*pair) - Decimal(text)) <= abs(Decimal(text)) * Decimal(2) ** -106
    assert dd_text(0.25) == "0.25" and to_dd(Decimal("0.1"))[1] == pytest.approx(-5.551115123125783e-18)
    for bad in ("abc", "1e", "nan", "inf", True, [1]):
        with pytest.raises(ConfigError, match="plane.x.center"):
            parse_decimal("plane.x.center", bad)


def test_float_recipes_resolve_as_before_and_deep_ones_to_decimal_centres():
    # Floats stay floats (min/max): the recipes, hashes and labels of float32/float64 renders.
    cfg = load_config("configs/p1-fig3.toml", ["plane.x={param='u0', center=0.3, width=0.2}"])
    assert cfg.resolved["plane"]["x"] == {"param": "u0", "min": 0.3 - 0.1, "max": 0.3 + 0.1, "scale": "linear"}
    assert cfg.plane.x.deep is None
    # A double-double axis that float64 bounds hold exactly stays min/max too.
    coarse = load_config("configs/p1-fig3.toml", [DD])
    assert coarse.resolved["plane"]["x"] == {"param": "u0", "min": -4.0, "max": 4.0, "scale": "linear"}
    # --set center/width replaces the file's min/max; the centre keeps its digits beyond float64.
    deep = deep_view("1e-24", 8)
    x = deep.resolved["plane"]["x"]
    assert x["width"] == 1e-24 and to_dd(Decimal(x["center"])) == to_dd(Decimal(BOUNDARY[0]))
    assert len(x["center"]) < len(BOUNDARY[0])  # the shortest string of the pair, not the input
    assert deep.resolved["plane"]["y"] == {"param": "v0", "center": -0.515625, "width": 1e-24, "scale": "linear"}
    assert deep.plane.x.deep == (*to_dd(Decimal(BOUNDARY[0])), 1e-24)
    again = load_config_text(deep.to_toml())
    assert again.resolved == deep.resolved and again.recipe_hash == deep.recipe_hash
    # Without double-double such a view collapses to one float64 number.
    with pytest.raises(ConfigError, match="double-double"):
        load_config("configs/p1-fig3.toml", [f'plane.x.center="{BOUNDARY[0]}"', "plane.x.width=1e-24"])


def load_config_text(text: str, tmp=None):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.toml"
        path.write_text(text)
        return load_config(path)


def test_pixels_of_a_deep_view_are_distinct_pairs():
    cfg = deep_view("1e-24", 4)
    coords = cfg.plane.coordinates_dd(0, 16)
    u = [dd_decimal(h, lo) for h, lo in zip(*coords["u0"], strict=True)]
    pitch = [u[i + 1] - u[i] for i in range(3)]
    for p in pitch:  # 1e-24 / 4 apart, to the pairs' precision (≈ 2⁻¹⁰⁶ · 1.7)
        assert abs(p - Decimal("2.5e-25")) < Decimal("1e-31")
    centre = (u[1] + u[2]) / 2
    assert abs(centre - Decimal(BOUNDARY[0])) < Decimal("1e-31")
    assert len(set(coords["u0"][0].tolist())) == 1  # float64 alone cannot tell them apart


def test_other_problems_refuse_double_double_naming_the_key():
    with pytest.raises(ConfigError, match="gd.dtype.*scalar"):
        load_config("configs/deep-p2.toml", [DD])


def test_float64_and_double_double_agree_on_a_coarse_view():
    # Away from the boundaries (pixels whose 3×3 neighbourhood has one class) both dtypes follow
    # the same orbit to the same attractor: the labels must be equal there. 256 steps are eight
    # decision chunks and no later phase or tail (a third of 400 steps' compile); every float64
    # pixel is decided by then, so the calm labels compared are attractors, not the budget running out.
    for config in ("configs/p1-fig3.toml", "configs/matrix-orthogonal.toml"):
        common = ["plane.resolution=[48,48]", "gd.steps=256"]
        f64 = render(load_config(config, [*common, 'gd.dtype="float64"'])).labels
        ddl = render(load_config(config, [*common, DD])).labels
        assert not (f64 == UNDECIDED).any()
        padded = np.pad(f64, 1, mode="edge")
        calm = np.ones_like(f64, dtype=bool)
        for dr in range(3):
            for dc in range(3):
                calm &= padded[dr : dr + 48, dc : dc + 48] == f64
        assert calm.mean() > 0.6
        np.testing.assert_array_equal(ddl[calm], f64[calm])
        assert np.mean(ddl == f64) > 0.97


def test_the_boundary_point_separates_the_two_basins():
    u, v = Decimal(BOUNDARY[0]), BOUNDARY[1]
    assert p1_label(str(u - Decimal("1e-30")), v) == "nearest"
    assert p1_label(str(u + Decimal("1e-30")), v) == "farthest"


def check_against_mpmath(cfg, sample: int, seed: int = 0):
    """The render's labels of `sample` random pixels against a 60-digit GD run of each."""
    result = render(cfg)
    names = cfg.problem.class_names
    labels = result.labels.ravel()
    present = {names[i] for i in np.unique(labels)}
    rng = np.random.default_rng(seed)
    picks = rng.choice(labels.size, min(sample, labels.size), replace=False)
    agree = 0
    for i in picks:
        c = cfg.plane.coordinates_dd(int(i), int(i) + 1)
        u, v = (str(dd_decimal(c[k][0][0], c[k][1][0])) for k in ("u0", "v0"))
        agree += p1_label(u, v, steps=cfg.gd.steps) == names[labels[i]]
    return present, agree / len(picks)


def test_a_view_1e24_wide_has_both_basins_and_agrees_with_60_digit_gd():
    present, agreement = check_against_mpmath(deep_view("1e-24", 12, steps=600), sample=10)
    assert {"nearest", "farthest"} <= present
    assert agreement >= 0.9


@pytest.mark.slow
def test_a_view_1e24_wide_at_32x32_agrees_with_60_digit_gd():
    # The check: P1 Fig 3 at 32² on a view 1e-24 wide, both classes, ≥ 90 % agreement.
    present, agreement = check_against_mpmath(deep_view("1e-24", 32), sample=1024)
    assert {"nearest", "farthest"} <= present
    assert agreement >= 0.9


def test_a_double_double_render_round_trips_through_its_recipe(tmp_path):
    cfg = deep_view("1e-22", 8, steps=300)
    first = render(cfg)
    save_render(first, tmp_path / "r", force=True)
    again = render(load_config(tmp_path / "r" / "recipe.toml"))
    assert again.config.recipe_hash == cfg.recipe_hash and first.meta["dtype"] == "double-double"
    np.testing.assert_array_equal(again.labels, first.labels)
    np.testing.assert_array_equal(again.steps, first.steps)


def test_auto_target_keeps_a_deep_centre():
    hi, lo = to_dd(Decimal(BOUNDARY[0]))
    view = View((hi, -0.515625), (1e-24, 1e-24), (lo, 0.0))
    labels = np.zeros((16, 16), dtype=np.uint8)
    labels[:, 11:] = 1  # a boundary right of the centre: the centre moves right
    (cx, cy), (lx, ly) = next_center_dd(labels, view, 2.0)
    moved = dd_decimal(cx, lx) - dd_decimal(hi, lo)
    assert Decimal(0) < moved <= Decimal("0.25e-24") * Decimal("1.0000001")
    assert abs(dd_decimal(cy, ly) - Decimal("-0.515625")) <= Decimal("1e-24") / 16  # rows: at most ½ pixel
    assert view.contains(View((cx, cy), (0.5e-24, 0.5e-24), (lx, ly)))
