"""Long decimal numbers reach a deep axis with every digit: from the CLI (quotes eaten by the
shell), from a recipe file (an unquoted literal) and from Python; everywhere else a float."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from decimal import Decimal

import pytest

from fractalgd.config import load_config
from fractalgd.config.toml import loads, parse_override
from fractalgd.core.decimal_axis import to_dd

# 45 significant digits: float64 keeps 17 of them, a double-double pair ≈ 32.
LONG = "1.71847639664035890376366752203623211840794181"
PAIR = to_dd(Decimal(LONG))
DEEP = ['gd.dtype="double-double"', "plane.x.width=1e-24", "plane.y.center=-0.515625", "plane.y.width=1e-24"]


def test_a_long_unquoted_number_keeps_its_digits_under_an_axis_only():
    assert float(LONG) != Decimal(LONG) and PAIR[1] != 0.0  # the test means something
    assert parse_override(f"plane.x.center={LONG}") == (["plane", "x", "center"], LONG)
    assert parse_override(f'plane.x.center="{LONG}"') == (["plane", "x", "center"], LONG)
    assert parse_override(f"zoom.center=[{LONG}, -0.5]") == (["zoom", "center"], [LONG, -0.5])
    # Short numbers stay floats (recipes and hashes as before); elsewhere long ones round.
    assert parse_override("plane.x.center=0.25") == (["plane", "x", "center"], 0.25)
    assert parse_override(f"gd.eta={LONG}") == (["gd", "eta"], float(LONG))
    assert parse_override("plane.x.width=1e-24")[1] == 1e-24
    raw = loads(f"[plane.x]\ncenter = {LONG}\nwidth = 1_0.5\n[problem]\ny = {LONG}\n[gd]\nx = inf")
    assert raw["plane"]["x"] == {"center": LONG, "width": 10.5}
    assert raw["problem"]["y"] == float(LONG) and raw["gd"]["x"] == float("inf")
    assert type(raw["problem"]["y"]) is float and type(raw["plane"]["x"]["width"]) is float


def test_python_and_files_give_the_pair_of_all_digits(tmp_path):
    quoted = load_config("configs/p1-fig3.toml", [f'plane.x.center="{LONG}"', *DEEP])
    bare = load_config("configs/p1-fig3.toml", [f"plane.x.center={LONG}", *DEEP])
    assert quoted.plane.x.deep[:2] == PAIR and bare.recipe_hash == quoted.recipe_hash
    # The float64-rounded centre is another pair: the digits did matter.
    rounded = load_config("configs/p1-fig3.toml", [f"plane.x.center={float(LONG)!r}", *DEEP])
    assert rounded.plane.x.deep[:2] != PAIR
    values = quoted.with_values({"plane.x": {"param": "u0", "center": Decimal(LONG), "width": 1e-24}})
    assert values.plane.x.deep[:2] == PAIR and values.recipe_hash == quoted.recipe_hash
    # A recipe file with the centre as an unquoted TOML float of 45 digits.
    recipe = quoted.to_toml().replace(f'center = "{quoted.resolved["plane"]["x"]["center"]}"', f"center = {LONG}")
    assert f"center = {LONG}" in recipe
    (tmp_path / "r.toml").write_text(recipe)
    assert load_config(tmp_path / "r.toml").recipe_hash == quoted.recipe_hash


def test_the_cli_keeps_every_digit_of_an_unquoted_centre(tmp_path):
    # A real shell: `--set plane.x.center=1.7184…` arrives without quotes.
    out = tmp_path / "r"
    sets = " ".join(f"--set '{s}'" for s in [*DEEP, "plane.resolution=[4,4]", "gd.steps=20"])
    cmd = f"{sys.executable} -m fractalgd render configs/p1-fig3.toml --out {out} --set plane.x.center={LONG} {sets}"
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    recipe = tomllib.loads((out / "recipe.toml").read_text())
    assert to_dd(Decimal(recipe["plane"]["x"]["center"])) == PAIR


@pytest.mark.parametrize("text", ["1.0000000000000000000001", "-2.50000000000000000000000000001e-3"])
def test_long_literals_in_a_zoom_centre_stay_text(text):
    assert loads(f"[zoom]\ncenter = [{text}, 0.5]")["zoom"]["center"] == [text, 0.5]
