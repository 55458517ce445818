"""The command line: outputs, recipes that redraw exactly, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.config import config_from_dict, load_config
from fractalgd.output import read_recipe
from fractalgd.pipeline import render
from tests.helpers import SMALL as SMALL_RECIPE
from tests.helpers import in_a_process, run_cli, small_render

runner = CliRunner()
SMALL = ["--set", "plane.resolution=[48,40]", "--set", "gd.steps=200"]


def test_render_writes_the_render_directory(tmp_path):
    out = tmp_path / "r"
    result = runner.invoke(app, ["render", "configs/p1-fig3.toml", "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"image.png", "labels.npy", "steps.npy", "meta.json"}
    meta = json.loads((out / "meta.json").read_text())
    for key in ("problem", "class_names", "counts", "resolution", "dtype", "device", "elapsed_s", "pixel_steps"):
        assert key in meta
    assert meta["problem"] == "scalar" and meta["resolution"] == [48, 40] and meta["dtype"] == "float64"
    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.uint8 and labels.shape == (40, 48)
    assert np.load(out / "steps.npy").dtype == np.int32
    names = {int(k): v for k, v in meta["class_names"].items()}
    assert sum(meta["counts"].values()) == 48 * 40
    for cls, count in zip(*np.unique(labels, return_counts=True), strict=True):
        assert meta["counts"][names[int(cls)]] == count
    # The PNG carries the full recipe: it redraws the same labels.
    import tomllib

    again = render(config_from_dict(tomllib.loads(read_recipe(out / "image.png"))))
    np.testing.assert_array_equal(again.labels, labels)


def test_set_overrides_take_toml_values():
    cfg = load_config("configs/p1-fig3.toml", ["plane.resolution=[64,32]", "gd.dtype=float32", 'name="x"'])
    assert cfg.plane.shape == (32, 64) and cfg.gd.dtype == "float32" and cfg.name == "x"


def test_axes_by_center_and_width_and_log_scale():
    cfg = load_config(
        "configs/p1-fig3.toml",
        ["plane.x={param='eta', center=-1.0, width=2.0, scale='log10'}", "plane.y={param='lam', min=0.0, max=0.4}"],
    )
    coords = cfg.plane.coordinates(0, cfg.plane.size)
    assert coords["eta"].min() > 0.01 and coords["eta"].max() < 1.0  # decades −2 … 0
    assert cfg.plane.x.center == -1.0 and cfg.plane.x.width == 2.0


BAD = [
    (["--set", "gd.etta=1"], "gd.etta"),
    (["--set", "gd.steps=1.5"], "gd.steps"),
    (["--set", "plane.x.min=9"], "plane.x"),
    (["--set", "plane.resolution=[0,10]"], "plane.resolution"),
    (["--set", "problem.kind=nope"], "problem.kind"),
    (["--set", "gd.dtype=float16"], "gd.dtype"),
    (["--set", "plane.x.param=w"], "plane.x.param"),
    (["--set", "gd.eta=-1"], "gd.eta"),
    (["--set", "plane.x={param='eta', min=-0.5, max=1.0}"], "plane.x.min"),
]


def check_bad_input(tmp_path, args, key, in_process):
    out = tmp_path / "never"
    result = run_cli(["render", "configs/p1-fig3.toml", "--out", out, *args], in_process)
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in result.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, key", BAD)
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, args, key):
    check_bad_input(tmp_path, args, key, in_process=True)


@pytest.mark.parametrize("args, key", in_a_process(BAD, keep=(0, 4)))
def test_bad_input_in_a_process_is_one_line_on_its_stderr(tmp_path, args, key):
    """The same through `python -m fractalgd.cli`: nothing else reaches the process's stderr."""
    check_bad_input(tmp_path, args, key, in_process=False)


def test_missing_config_file_is_one_line(tmp_path):
    result = runner.invoke(app, ["render", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "not found" in result.output


def test_unknown_key_in_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[gd]\neta = 0.5\ncolour = "red"\n')
    result = runner.invoke(app, ["render", str(bad)])
    assert result.exit_code == 2 and "gd.colour" in result.output


def test_info():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0 and "devices" in result.output and "float64" in result.output


def shipped_recipes():
    """(path, points) of every shipped file: None for a recipe, a sweep file's point indices."""
    from pathlib import Path

    from fractalgd.studies.sweep import load_sweep

    out = []
    for path in sorted(Path("configs").glob("*.toml")):
        if path.name.startswith("sweep-"):  # a sweep file: its base recipe at every point
            sweep = load_sweep(path, list(SMALL_RECIPE))
            configs = [sweep.config(p) for p in sweep.points()]  # every point is a valid recipe
            assert len(configs) >= 2 and all(c.plane.shape == (6, 8) for c in configs), path
            out.append((str(path), list(range(len(configs)))))
        else:
            out.append((str(path), None))
    return out


def test_every_shipped_config_renders_small():
    # A sweep renders its first and last points here (its grid's extremes; the points between
    # differ only in the swept values, which travel to the same kernel); the slow test renders all.
    for path, points in shipped_recipes():
        for point in [None] if points is None else [points[0], points[-1]]:
            result = small_render(path, point)
            assert result.labels.shape == (6, 8), path
            assert result.labels.max() < len(result.class_names or result.config.problem.class_names), path


@pytest.mark.slow
def test_every_point_of_every_shipped_sweep_renders_small():
    for path, points in shipped_recipes():
        for point in points or []:
            result = small_render(path, point)
            names = result.class_names or result.config.problem.class_names
            assert result.labels.shape == (6, 8) and result.labels.max() < len(names), (path, point)


def test_bench_json_records(tmp_path):
    out = tmp_path / "bench.json"
    cases = ["--case", "dense", "--case", "early_exit_lam0", "--case", "early_exit_lam0.05", "--case", "matrix4x4"]
    result = runner.invoke(app, ["bench", "--size", "32", "--repeats", "1", "--json", str(out), *cases])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    cases = {r["case"] for r in records}
    assert {"dense", "early_exit_lam0", "early_exit_lam0.05"} <= cases
    for r in records:
        assert {"case", "impl", "median_s", "min_s", "pixel_steps_per_s"} <= r.keys()
        assert r["min_s"] <= r["median_s"]
        if r["impl"] == "engine":
            assert r["speedup_vs_reference"] > 0 and r["floor_ratio"] > 0 and r["compile_s"] >= r["median_s"] * 0.5
            assert r["problem"] in ("scalar", "matrix")


def test_bench_repeats_a_fast_implementation_until_it_has_been_timed_long_enough():
    """`repeats` runs at least; a fast function repeats until MIN_TIMED_S of timing (at most
    MAX_REPEATS), so a few-millisecond case's median is not five samples."""
    import time

    from fractalgd.studies.bench import MAX_REPEATS, MIN_TIMED_S, repeated_times

    assert len(repeated_times(lambda: None, repeats=2)) == MAX_REPEATS  # microseconds a run: the cap stops it
    slow = repeated_times(lambda: time.sleep(MIN_TIMED_S / 3), repeats=2)  # the third run reaches MIN_TIMED_S
    assert len(slow) == 3 and sum(slow) >= MIN_TIMED_S
    # Two runs would pass MIN_TIMED_S; `repeats` asks for three.
    assert len(repeated_times(lambda: time.sleep(MIN_TIMED_S / 2), repeats=3)) == 3


def test_bench_flop_model_is_the_steps_own_arithmetic():
    """XLA's count of P1's step: r = uv − y, η·r, then c·u − ηr·v and c·v − ηr·u: about 9–12 FLOP."""
    from fractalgd.studies.bench import CASES, case_config, step_flops

    by_name = {c.name: c for c in CASES}
    assert 8 <= step_flops(case_config(by_name["dense"], 16, "float32")) <= 16
    # 4×4 UᵀV: R (64 FMA), two gradients (2·64 FMA), the updates (32 FMA): ≈ 450 FLOP.
    assert 350 <= step_flops(case_config(by_name["matrix4x4"], 16, "float32")) <= 700
    for case in CASES:  # every problem has a model
        assert step_flops(case_config(case, 8, "float32")) > 1
