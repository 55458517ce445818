"""Tiled out-of-core renders (issue 7): equal to the single-shot render, resumable, shared by processes.

Each pixel's GD run is independent of every other pixel's, so any tiling, any batching, any
interruption and any split over processes must give the single-shot labels and steps bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fractalgd.colour import colorize
from fractalgd.pipeline import render
from fractalgd.tiled.distributed import ProcessInfo
from fractalgd.tiled.tiles import render_tiled, tile_grid, use_tiled, work_dir
from tests.helpers import p1_config

ROOT = Path(__file__).resolve().parent.parent
W, H = 200, 168  # not multiples of the tile sides below: edge tiles are partial


def small(**engine):
    return p1_config(plane={"resolution": [W, H]}, gd={"steps": 400}, engine={"out_of_core": "on", **engine})


@pytest.fixture(scope="module")
def single_shot():
    return render(small())


def test_tile_grid_partitions_the_image():
    tiles = tile_grid((H, W), 64)
    cover = np.zeros((H, W), int)
    for t in tiles:
        cover[t.r0 : t.r1, t.c0 : t.c1] += 1
    assert (cover == 1).all() and len(tiles) == 3 * 4


def test_render_switches_to_tiles_above_the_threshold():
    big = {"resolution": [4097, 4096]}
    assert use_tiled(p1_config(plane=big)) and not use_tiled(p1_config(plane={"resolution": [4096, 4096]}))
    assert not use_tiled(p1_config(plane=big, engine={"out_of_core": "off"}))
    assert use_tiled(p1_config(engine={"out_of_core": "on"})) and use_tiled(p1_config(), processes=2)


@pytest.mark.parametrize("side, batch", [(64, 1000), (97, 1 << 18), (256, 777)])
def test_tiled_render_equals_single_shot(tmp_path, single_shot, side, batch):
    """Any tile side and engine batch: labels and steps bit-identical, counts = the labels' histogram."""
    run = render_tiled(small(disk_tile=side, tile=batch), tmp_path / "r")
    labels = np.load(tmp_path / "r" / "labels.npy", mmap_mode="r")
    steps = np.load(tmp_path / "r" / "steps.npy", mmap_mode="r")
    np.testing.assert_array_equal(labels, single_shot.labels)
    np.testing.assert_array_equal(steps, single_shot.steps)
    assert run.assembled and run.meta["counts"] == single_shot.meta["counts"]
    assert not work_dir(tmp_path / "r").exists()  # the work files are gone once assembled


def test_preview_and_png_tiles(tmp_path, single_shot):
    """Too big for one PNG: image.png samples every f-th pixel, the tile PNGs tile the full image."""
    cfg = small(disk_tile=64)
    run = render_tiled(cfg, tmp_path / "r", png_max_side=80)
    f = run.meta["tiled"]["preview_stride"]
    assert f == int(np.ceil(W / 80))
    full = colorize(single_shot.labels, single_shot.steps, cfg.problem.class_names, cfg.gd.steps)
    preview = np.asarray(Image.open(tmp_path / "r" / "image.png").convert("RGB"))
    np.testing.assert_array_equal(preview, full[f // 2 :: f, f // 2 :: f])
    for t in tile_grid((H, W), 64):
        png = np.asarray(Image.open(tmp_path / "r" / "tiles" / f"tile-{t.i:04d}-{t.j:04d}.png").convert("RGB"))
        np.testing.assert_array_equal(png, full[t.r0 : t.r1, t.c0 : t.c1])


def test_other_recipe_is_not_mixed_in(tmp_path, single_shot):
    """Tiles of another recipe in the same directory are never read: hashes differ."""
    other = p1_config(plane={"resolution": [W, H]}, gd={"steps": 400, "eta": 0.9}, engine={"disk_tile": 64})
    assert other.recipe_hash != small(disk_tile=64).recipe_hash
    partial = render_tiled(other, tmp_path / "r", process=ProcessInfo(0, 2))  # half the tiles, not assembled
    assert not partial.assembled and len(list(work_dir(tmp_path / "r").glob("tile-*"))) == 6
    run = render_tiled(small(disk_tile=64), tmp_path / "r")
    assert run.reused == 0 and len(run.computed) == 12
    np.testing.assert_array_equal(np.load(tmp_path / "r" / "labels.npy"), single_shot.labels)


# Runs the CLI with a pause after every tile file, so a kill lands after exactly k tiles.
SLOW_CLI = """
import sys, time
import fractalgd.tiled.tiles as tiles
write = tiles.TileStore.write
def slow(self, *a, **k):
    write(self, *a, **k)
    time.sleep(0.4)
tiles.TileStore.write = slow
from fractalgd.cli import app
app(sys.argv[1:])
"""


def cli_args(out: Path) -> list[str]:
    res = f"plane.resolution=[{W},{H}]"
    return ["render", "configs/p1-fig3.toml", "--out", str(out), "--set", res, "--set", "gd.steps=400"] + [
        "--set",
        "engine.out_of_core='on'",
        "--set",
        "engine.disk_tile=64",
    ]


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_kill9_then_resume_is_bit_identical(tmp_path, single_shot):
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, *cli_args(out)], cwd=ROOT, env=env)
    try:
        wait_for(lambda: len(list(work_dir(out).glob("tile-*.npz"))) >= 5 or proc.poll() is not None)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    finished = len(list(work_dir(out).glob("tile-*.npz")))
    assert 5 <= finished < 12 and not out.exists()
    run = render_tiled(small(disk_tile=64), out)
    assert run.reused == finished and len(run.computed) == 12 - finished  # only the missing tiles
    np.testing.assert_array_equal(np.load(out / "labels.npy"), single_shot.labels)
    np.testing.assert_array_equal(np.load(out / "steps.npy"), single_shot.steps)
    again = render_tiled(small(disk_tile=64), out)  # a finished render is not redone
    assert again.computed == [] and again.reused == 12 and again.meta == run.meta


# Files may grow to 8 kB (a tile file is ~34 kB): writes fail with EFBIG as they would on a full disk.
LIMITED_CLI = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
from fractalgd.cli import app
app(sys.argv[1:])
"""


def test_full_disk_is_one_line_and_leaves_nothing_trusted(tmp_path, single_shot):
    """A write that fails (file-size limit, as on a full disk): exit 2, one line, no tile file."""
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", LIMITED_CLI, *cli_args(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot write" in lines[0] and "Traceback" not in proc.stderr
    assert not list(work_dir(out).glob("tile-*")) and not list(work_dir(out).glob(".*tmp"))
    run = render_tiled(small(disk_tile=64), out)  # a rerun without the limit completes
    np.testing.assert_array_equal(np.load(out / "labels.npy"), single_shot.labels)
    assert len(run.computed) == 12


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "fractalgd.cli", *cli_args(blocker / "r")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr


WORKER = """
import json, sys
from fractalgd.tiled.distributed import initialize
info = initialize()
from fractalgd.tiled.tiles import render_tiled
from tests.helpers import p1_config
cfg = p1_config(plane={"resolution": [200, 168]}, gd={"steps": 400}, engine={"disk_tile": 64})
run = render_tiled(cfg, sys.argv[1], process=info)
print(json.dumps({"index": info.index, "count": info.count, "via": info.via, "computed": run.computed,
                  "assembled": run.assembled}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_cover_every_tile_once(tmp_path, single_shot):
    """jax.distributed on two local CPU processes: tile k goes to process k mod 2, each tile once."""
    out, port = tmp_path / "r", free_port()
    procs = []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FRACTALGD_COORDINATOR": f"127.0.0.1:{port}"}
        env.update(FRACTALGD_NUM_PROCESSES="2", FRACTALGD_PROCESS_ID=str(index))
        cmd = [sys.executable, "-c", WORKER, str(out)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True))
    reports = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert all(r["count"] == 2 and r["via"].startswith("jax.distributed") for r in reports)
    computed = [tuple(t) for r in reports for t in r["computed"]]
    assert sorted(computed) == [(i, j) for i in range(3) for j in range(4)]  # all, none twice
    for r in reports:
        assert all((i * 4 + j) % 2 == r["index"] for i, j in r["computed"])
    assert sum(r["assembled"] for r in reports) == 1
    np.testing.assert_array_equal(np.load(out / "labels.npy"), single_shot.labels)
    np.testing.assert_array_equal(np.load(out / "steps.npy"), single_shot.steps)
    assert json.loads((out / "meta.json").read_text())["tiled"]["tiles_by_process"] == {"0": 6, "1": 6}


DEVICES = """
import json, os
import fractalgd
fractalgd.use_all_cores()  # what the CLI does first
import jax, numpy as np
from fractalgd.engine import xla as engine
from fractalgd.pipeline import run_range
from tests.helpers import p1_config
used = []
compiled = engine._compiled
def spy(*args):
    fn = compiled(*args)
    def run(*a):
        out = fn(*a)
        used.append(len(out[0].sharding.device_set))
        return out
    return run
engine._compiled = spy
cfg = p1_config(plane={"resolution": [64, 64]}, gd={"steps": 50})
run_range(cfg, 0, 64 * 64)
print(json.dumps({"devices": len(jax.devices()), "cores": len(os.sched_getaffinity(0)), "used": used}))
"""


def test_one_cpu_device_per_core_all_used():
    """perf-baseline.md §5: on CPU one XLA device per core; a large enough batch is sharded over all."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-c", DEVICES]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["devices"] == report["cores"]
    assert report["used"] == [min(report["cores"], 64 * 64 // 512)]  # 8 blocks of 512 pixels
