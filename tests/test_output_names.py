"""No silent overwrites: default output names, --out and --force, analysis reports per method; the CLI's
version, completion and help texts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.core.version import __version__

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "configs" / "p1-fig3.toml")
SMALL = ["--set", "plane.resolution=[40,32]", "--set", "gd.steps=100"]
runner = CliRunner()


def _render(*args):
    result = runner.invoke(app, ["render", CONFIG, *SMALL, *args])
    return result


def test_a_second_render_with_other_values_keeps_the_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = _render()
    assert first.exit_code == 0, first.output
    labels = np.load("outputs/p1-fig3/labels.npy")
    second = _render("--set", "problem.lam=0")
    assert second.exit_code == 0, second.output
    assert "outputs/p1-fig3-2" in second.output  # the path chosen is printed
    np.testing.assert_array_equal(np.load("outputs/p1-fig3/labels.npy"), labels)
    assert json.loads(Path("outputs/p1-fig3-2/meta.json").read_text())["config"]["problem"]["lam"] == 0.0
    third = _render("--set", "problem.lam=0.05")
    assert third.exit_code == 0 and Path("outputs/p1-fig3-3/meta.json").is_file()
    again = _render()  # the first recipe again: its own directory, reused
    assert again.exit_code == 0 and "outputs/p1-fig3:" in again.output
    assert not Path("outputs/p1-fig3-4").exists()
    Path("outputs/p1-fig3/notes.txt").write_text("mine")
    _render()
    assert Path("outputs/p1-fig3/notes.txt").read_text() == "mine"  # a render never deletes what it did not write


def test_out_at_another_recipe_exits_2_unless_force(tmp_path):
    out = tmp_path / "r"
    assert _render("--out", str(out)).exit_code == 0
    before = (out / "meta.json").read_text()
    refused = _render("--out", str(out), "--set", "problem.lam=0")
    assert refused.exit_code == 2 and "--force" in refused.output
    assert (out / "meta.json").read_text() == before
    forced = _render("--out", str(out), "--set", "problem.lam=0", "--force")
    assert forced.exit_code == 0, forced.output
    assert json.loads((out / "meta.json").read_text())["config"]["problem"]["lam"] == 0.0


def test_save_render_refuses_another_recipe_without_force(tmp_path):
    from fractalgd.config import ConfigError, load_config
    from fractalgd.output import save_render
    from fractalgd.pipeline import render

    a = render(load_config(CONFIG, ["plane.resolution=[16,16]", "gd.steps=50"]))
    b = render(load_config(CONFIG, ["plane.resolution=[16,16]", "gd.steps=50", "problem.lam=0"]))
    save_render(a, tmp_path / "r")
    save_render(a, tmp_path / "r")  # the same recipe: fine
    with pytest.raises(ConfigError, match="another recipe"):
        save_render(b, tmp_path / "r")
    save_render(b, tmp_path / "r", force=True)


def test_analyze_keeps_one_report_per_method(tmp_path):
    out = tmp_path / "r"
    args = ["--set", "plane.resolution=[128,128]", "--set", "plane.x={param='u0', min=-2.0, max=-1.0}"]
    args += ["--set", "plane.y={param='v0', min=0.5, max=1.5}"]
    assert runner.invoke(app, ["render", CONFIG, "--out", str(out), *args]).exit_code == 0
    for method in ("boxcount", "sd"):
        result = runner.invoke(app, ["analyze", str(out), "--classes", "nearest,farthest", "--method", method])
        assert result.exit_code == 0, result.output
        assert f"analysis-{method}.json" in result.output
    reports = {p.name: json.loads(p.read_text()) for p in out.glob("analysis-*.json")}
    assert {r["method"] for r in reports.values()} == {"boxcount", "sd"} and len(reports) == 2
    assert all(r["input"] == str(out.resolve()) for r in reports.values())
    again = runner.invoke(app, ["analyze", str(out), "--classes", "nearest,farthest"])  # same input: replaced
    assert again.exit_code == 0, again.output
    # --json at the report of another input: refused unless --force
    npy = tmp_path / "labels.npy"
    np.save(npy, np.load(out / "labels.npy"))
    names = {v: k for k, v in json.loads((out / "meta.json").read_text())["class_names"].items()}
    pair = f"{names['nearest']},{names['farthest']}"  # a bare .npy names its classes by id
    target = out / "analysis-boxcount.json"
    refused = runner.invoke(app, ["analyze", str(npy), "--classes", pair, "--json", str(target)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert json.loads(target.read_text())["input"] == str(out.resolve())
    forced = runner.invoke(app, ["analyze", str(npy), "--classes", pair, "--json", str(target), "--force"])
    assert forced.exit_code == 0, forced.output
    user = tmp_path / "analysis-sd.json"  # a user's file of that name next to the .npy: kept
    user.write_text('{"mine": true}')
    kept = runner.invoke(app, ["analyze", str(npy), "--classes", "6,7", "--method", "sd"])
    assert kept.exit_code == 2 and json.loads(user.read_text()) == {"mine": True}


def test_version_completion_and_help_texts():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"fractalgd {__version__}"
    top = runner.invoke(app, ["--help"])
    assert "--install-completion" in top.output and "figure" in top.output
    for command, table in (("zoom", "[zoom]"), ("sweep", "[sweep]")):
        text = runner.invoke(app, [command, "--help"]).output
        assert table in text, text
