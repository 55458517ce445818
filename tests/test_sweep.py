"""Sweeps (issue 7): grids of recipes, D of the boundary per point, resumable, shared by processes."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.config import ConfigError
from fractalgd.studies.sweep import load_sweep, run_sweep, sweep_from_dict
from fractalgd.tiled.distributed import ProcessInfo

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

TINY = """
[sweep]
name = "tiny"
recipe = "{recipe}"
set = ["plane.resolution=[96,96]", "gd.steps=300"]
[[sweep.grid]]
key = "problem.lam"
values = [0.0, 0.1, 0.2, 0.3]
"""


def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(recipe=ROOT / "configs" / "p1-fig3.toml"))
    return path


def rows(out: Path) -> list[dict]:
    """sweep.csv without the columns that depend on the run (timing, which process)."""
    table = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    return [{k: v for k, v in r.items() if k not in ("seconds", "process")} for r in table]


def test_grid_values_and_outer_product():
    raw = tomllib.loads((ROOT / "configs" / "sweep-p1-lam.toml").read_text())
    raw["sweep"]["recipe"] = str(ROOT / "configs" / "p1-fig3.toml")
    raw["sweep"]["grid"] = [
        {"key": "problem.lam", "min": 0.0, "max": 0.3, "num": 4},
        {"key": "gd.eta", "values": [-1.0, 0.0], "scale": "log10"},
    ]
    sweep = sweep_from_dict(raw)
    points = sweep.points()
    assert len(points) == 8
    assert [p.params["problem.lam"] for p in points[::2]] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert {p.params["gd.eta"] for p in points} == {0.1, 1.0}
    cfg = sweep.config(points[3])
    assert cfg.gd.eta == 1.0 and cfg.problem.kernel is not None and cfg.plane.shape == (2048, 2048)


def test_windows_set_the_view():
    raw = {"sweep": {"recipe": str(ROOT / "configs" / "p1-fig3.toml"), "grid": [
        {"key": "problem.lam", "values": [0.0, 0.2], "windows": [[-1, 1, -2, 2], [0, 0.5, 1, 3]]}]}}  # fmt: skip
    sweep = sweep_from_dict(raw)
    plane = sweep.config(sweep.points()[1]).plane
    assert (plane.x.lo, plane.x.hi, plane.y.lo, plane.y.hi) == (0.0, 0.5, 1.0, 3.0)


@pytest.mark.parametrize(
    "grid, message",
    [
        ([], "one or two"),
        ([{"key": "problem.lam"}], "values, or min, max and num"),
        ([{"key": "problem.lamb", "values": [0.1]}], "problem.lamb"),
        ([{"key": "problem.lam", "values": [0.1], "step": 2}], "sweep.grid[0].step"),
        ([{"key": "problem.lam", "values": [-0.1]}], "lam"),
        ([{"key": "problem.lam", "values": [0.1], "windows": [[1, 0, 0, 1]]}], "windows"),
    ],
)
def test_bad_sweep_files_name_the_key(grid, message):
    raw = {"sweep": {"recipe": str(ROOT / "configs" / "p1-fig3.toml"), "grid": grid}}
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        sweep_from_dict(raw)


def test_render_refuses_a_sweep_file_and_sweep_a_recipe():
    result = runner.invoke(app, ["render", "configs/sweep-p1-lam.toml"])
    assert result.exit_code == 2 and "fractalgd sweep" in result.output
    result = runner.invoke(app, ["sweep", "configs/p1-fig3.toml"])
    assert result.exit_code == 2 and "[sweep]" in result.output


def test_lambda_turns_the_boundary_fractal(tmp_path):
    """papers.md §1.4–1.5: λ = 0 gives the smooth ellipse (D ≈ 1), λ > 0 a self-similar boundary."""
    raw = tomllib.loads((ROOT / "configs" / "sweep-p1-lam.toml").read_text())
    raw["sweep"]["recipe"] = str(ROOT / "configs" / "p1-fig3.toml")
    raw["sweep"]["set"] = ["plane.resolution=[384,384]"]
    raw["sweep"]["grid"][0]["values"] = [0.0, 0.3]
    run = run_sweep(sweep_from_dict(raw), tmp_path / "s")
    smooth, fractal = run.rows
    assert abs(smooth["D"] - 1.0) < 0.06
    assert fractal["D"] > 1.15 and fractal["D"] - fractal["D_err"] * 3 > smooth["D"] + smooth["D_err"] * 3
    assert smooth["frac_converged"] > 0 and smooth["frac_nearest"] == 0  # λ = 0: one class of minimizers
    assert fractal["frac_nearest"] > 0 and fractal["frac_farthest"] > 0
    assert (tmp_path / "s" / "sweep.png").stat().st_size > 0


# Runs the CLI with a pause after every finished point, so a kill lands after exactly k points.
SLOW_CLI = """
import sys, time
import fractalgd.studies.sweep_report as report
publish = report.publish
def slow(*a, **k):
    out = publish(*a, **k)
    time.sleep(0.5)
    return out
report.publish = slow
from fractalgd.cli import app
app(sys.argv[1:])
"""


def test_kill9_then_resume_gives_the_same_table(tmp_path):
    path = tiny(tmp_path)
    reference = run_sweep(load_sweep(path), tmp_path / "ref")
    assert len(reference.rows) == 4
    out = tmp_path / "s"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, "sweep", str(path), "--out", str(out)], cwd=ROOT, env=env)
    try:
        from tests.test_tiles import wait_for

        wait_for(lambda: len(list((out / "points").glob("*.json"))) >= 2 or proc.poll() is not None)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    finished = len(list((out / "points").glob("*.json")))
    assert 2 <= finished < 4
    run = run_sweep(load_sweep(path), out)
    assert run.reused == finished and len(run.computed) == 4 - finished
    assert rows(out) == rows(tmp_path / "ref")
    labels = [np.load(out / "points" / f"{k:04d}" / "labels.npy") for k in range(4)]
    for k in range(4):
        np.testing.assert_array_equal(labels[k], np.load(tmp_path / "ref" / "points" / f"{k:04d}" / "labels.npy"))


def test_changed_recipe_redoes_the_points(tmp_path):
    path = tiny(tmp_path)
    run_sweep(load_sweep(path), tmp_path / "s", process=ProcessInfo(0, 2))  # points 0 and 2
    again = run_sweep(load_sweep(path, ["gd.eta=0.9"]), tmp_path / "s")
    assert again.reused == 0 and again.computed == [0, 1, 2, 3]


WORKER = """
import json, sys
from fractalgd.tiled.distributed import initialize
info = initialize()
from fractalgd.studies.sweep import load_sweep, run_sweep
run = run_sweep(load_sweep(sys.argv[1]), sys.argv[2], process=info)
print(json.dumps({"index": info.index, "via": info.via, "computed": run.computed}))
"""


def test_two_processes_cover_every_point_once(tmp_path):
    """Process ids from the environment alone (FRACTALGD_DISTRIBUTED=0): point k on process k mod 2."""
    import json

    path, out = tiny(tmp_path), tmp_path / "s"
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FRACTALGD_DISTRIBUTED": "0"}
        env.update(FRACTALGD_NUM_PROCESSES="2", FRACTALGD_PROCESS_ID=str(index))
        cmd = [sys.executable, "-c", WORKER, str(path), str(out)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))
    reports = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and {r["via"] for r in reports} == {"env"}
    assert sorted(k for r in reports for k in r["computed"]) == [0, 1, 2, 3]
    assert all(k % 2 == r["index"] for r in reports for k in r["computed"])
    table = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    assert [int(r["index"]) for r in table] == [0, 1, 2, 3]
    assert [int(r["process"]) for r in table] == [0, 1, 0, 1]


def test_unwritable_sweep_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["sweep", str(tiny(tmp_path)), "--out", str(blocker / "s")])
    assert result.exit_code == 2 and "cannot write" in result.output


def test_p5_sweep_lists_jump_probabilities_with_binomial_errors(tmp_path):
    """Each point is a plane of independent SGD runs (noise × trial): frac ± √(p(1−p)/N) per class."""
    sweep = load_sweep(ROOT / "configs" / "sweep-p5-jumps.toml", ["plane.resolution=[8, 8]"])
    sweep = sweep_from_dict({"sweep": {"name": "p5", "grid": [{"key": "gd.eta", "values": [1.0, 5.0]}]}, **sweep.base})
    run_sweep(sweep, tmp_path)
    table = list(csv.DictReader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    for row in table:
        n = int(row["pixels"])
        assert n == 64
        for key in [k for k in row if k.startswith("frac_") and not k.endswith("_err")]:
            p = float(row[key])
            assert float(row[f"{key}_err"]) == pytest.approx(np.sqrt(p * (1 - p) / n), abs=1e-15)
        assert abs(sum(float(row[k]) for k in row if k.startswith("frac_") and not k.endswith("_err")) - 1) < 1e-12
    low, high = (float(r["frac_rank1"]) for r in table)
    assert low == 0.0 and high > 0.3  # SGD leaves the rank-2 minimum at η = 5, not at η = 1
