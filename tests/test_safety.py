"""Renders never destroy what they did not write; user code and bad input end in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fractalgd.config import ConfigError, load_config
from fractalgd.output import atomic, save_render
from fractalgd.output.atomic import TEMP_MARK, recover_directory, replace_directory
from fractalgd.pipeline import render

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["plane.resolution=[16,16]", "gd.steps=50"]


def cli(*args, cwd=ROOT, timeout=120):
    return subprocess.run([sys.executable, "-m", "fractalgd.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


def snapshot(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_out_at_a_directory_of_other_files_is_refused_and_untouched(tmp_path):
    target = tmp_path / "thesis"
    target.mkdir()
    (target / "chapter1.tex").write_text("precious")
    (target / "sub").mkdir()
    (target / "sub" / "data.csv").write_text("1,2")
    before = snapshot(target)
    line = one_error_line(cli("render", "configs/p1-fig3.toml", "--out", target, *sum((["--set", s] for s in SMALL), [])))
    assert "not a fractalgd render" in line
    assert snapshot(target) == before and sorted(os.listdir(tmp_path)) == ["thesis"]


def test_out_at_a_file_is_refused_and_untouched(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    one_error_line(cli("render", "configs/p1-fig3.toml", "--out", target, "--set", SMALL[0], "--set", SMALL[1]))
    assert target.read_text() == "keep me" and sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_another_recipes_render_needs_force_and_user_files_survive(tmp_path):
    out = tmp_path / "r"
    first = load_config("configs/p1-fig3.toml", SMALL)
    save_render(render(first), out)
    (out / "notes.md").write_text("my notes")
    other = load_config("configs/p1-fig3.toml", [*SMALL, "problem.lam=0.1"])
    with pytest.raises(ConfigError, match="--force"):
        save_render(render(other), out)
    assert json.loads((out / "meta.json").read_text())["config"] == first.resolved
    save_render(render(other), out, force=True)
    assert json.loads((out / "meta.json").read_text())["config"] == other.resolved
    assert (out / "notes.md").read_text() == "my notes"  # a render never deletes what it did not write
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]


def test_same_recipe_rerender_keeps_its_analysis(tmp_path):
    out = tmp_path / "r"
    config = load_config("configs/p1-fig3.toml", SMALL)
    save_render(render(config), out)
    (out / "analysis-boxcount.json").write_text('{"method": "boxcount", "dimension": 1.2}')
    save_render(render(config), out)
    assert (out / "analysis-boxcount.json").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "/tmp/abs", "a/b", ".hidden", "x" * 200, "tab\tname"])
def test_recipe_names_are_one_path_component(name):
    with pytest.raises(ConfigError, match="name"):
        load_config("configs/p1-fig3.toml", [f'name="{name}"'])


def test_names_never_write_outside_outputs(tmp_path):
    escape = tmp_path / "escape"
    result = cli("render", ROOT / "configs/p1-fig3.toml", "--set", "name=../escape", *sum((["--set", s] for s in SMALL), []),
                 cwd=tmp_path)  # fmt: skip
    one_error_line(result)
    assert not escape.exists() and not (tmp_path / "outputs").exists()


def test_swap_without_exchange_restores_the_old_render_when_the_second_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "r"
    target.mkdir()
    (target / "meta.json").write_text("old")
    monkeypatch.setattr(atomic, "_renameat2_exchange", lambda a, b: False)
    real_rename, failed = os.rename, []

    def failing_rename(src, dst):
        if Path(dst) == target and not failed and TEMP_MARK + "new" in str(src):
            failed.append(src)
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", failing_rename)
    with pytest.raises(OSError), replace_directory(target) as tmp:
        (tmp / "meta.json").write_text("new")
    assert failed and (target / "meta.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary sibling left


def test_an_error_while_writing_leaves_the_old_render_and_no_temporary(tmp_path):
    target = tmp_path / "r"
    target.mkdir()
    (target / "meta.json").write_text("old")
    with pytest.raises(RuntimeError), replace_directory(target) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("disk full")
    assert (target / "meta.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_run_killed_between_the_renames_is_recovered_by_the_next(tmp_path):
    """The fallback swap's window: the old render waits under .NAME.fractalgd-old-HOST-PID-…, NAME is missing."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    host = atomic._host()
    old = tmp_path / f".r{TEMP_MARK}old-{host}-{pid}-abc"
    old.mkdir()
    (old / "meta.json").write_text("complete old render")
    stale = tmp_path / f".r{TEMP_MARK}new-{host}-{pid}-def"
    stale.mkdir()  # a half-written new render: no meta.json
    recover_directory(tmp_path / "r", lambda p: (p / "meta.json").is_file())
    assert (tmp_path / "r" / "meta.json").read_text() == "complete old render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_sigterm_during_a_render_leaves_no_temporary(tmp_path):
    out = tmp_path / "big"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fractalgd.cli", "render", "configs/p1-fig3.toml", "--out", str(out), "--set",
         "plane.resolution=[4096,4096]", "--set", "gd.steps=20000", "--set", "gd.eta=0.02", "--set",
         "problem.lam=0.05", "--set", "engine.tile=65536"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == []


def test_analyze_never_imports_the_recipes_loss(tmp_path):
    module = tmp_path / "tripwire.py"
    marker = tmp_path / "imported"
    module.write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('yes')\n"
        "def loss(p):\n    return (p['x'] ** 2 - 1.0) ** 2 + p['y'] ** 2\n"
    )
    recipe = [f"problem.loss={module}:loss", "plane.resolution=[24,24]", "gd.steps=50"]
    config = load_config("configs/custom-example.toml", recipe + ["problem.params={x = 0.5, y = 0.5}",
                                                                    "problem.minima=[]", "problem.constants={}"])  # fmt: skip
    save_render(render(config), tmp_path / "r")
    marker.unlink()
    result = cli("analyze", tmp_path / "r", cwd=tmp_path)
    assert result.returncode in (0, 2) and "Traceback" not in result.stderr
    assert not marker.exists()


def test_a_loss_that_exits_or_raises_is_one_line_naming_it(tmp_path):
    (tmp_path / "badloss.py").write_text(
        "import sys\n"
        "def exits(p):\n    sys.exit(3)\n"
        "def raises(p):\n    raise KeyError('boom')\n"
    )
    for fn, words in (("exits", "exit"), ("raises", "boom")):
        result = cli("render", ROOT / "configs/custom-example.toml", "--out", tmp_path / fn, "--set",
                     f"problem.loss=badloss:{fn}", "--set", "problem.minima=[]", "--set", "problem.constants={}",
                     cwd=tmp_path)  # fmt: skip
        line = one_error_line(result)
        assert f"badloss:{fn}" in line and words in line and not (tmp_path / fn).exists()


def test_steps_beyond_int32_and_absurd_sizes_exit_2_before_any_work(tmp_path):
    for override, key in (("gd.steps=1000000000000", "gd.steps"), ("plane.resolution=[1000000000,1000000000]",
                          "plane.resolution"), ("plane.resolution=[1000000,1000000]", "plane.resolution")):  # fmt: skip
        start = time.perf_counter()
        line = one_error_line(cli("render", "configs/p1-fig3.toml", "--out", tmp_path / "x", "--set", override))
        assert key in line and time.perf_counter() - start < 30 and not (tmp_path / "x").exists()


def test_dry_run_prints_the_estimate_and_writes_nothing(tmp_path):
    result = cli("render", "configs/p1-fig3.toml", "--out", tmp_path / "x", "--dry-run", "--set", "plane.resolution=[256,256]")
    assert result.returncode == 0, result.stderr
    assert "pixel-steps" in result.stdout and "disk" in result.stdout and "on this device" in result.stdout
    assert not (tmp_path / "x").exists()


def test_json_and_csv_outputs_hold_no_nan(tmp_path):
    from fractalgd.output.atomic import json_text

    text = json_text({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float64("-inf"), "d": {"e": np.nan}})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "d": {"e": None}}
    assert "NaN" not in text and "Infinity" not in text
