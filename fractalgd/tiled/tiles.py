"""Out-of-core renders: the plane in 2-D tiles, each tile an atomic file, resumable, shared by processes.

A tiled render of `out_dir` works in the hidden sibling `.NAME.tiles/`. Tile (i, j) of side S
(`[engine] disk_tile`) covers rows i·S … and columns j·S … of the image; its labels and decision
steps go to `tile-HASH-i-j.npz`, written to a temporary name, fsync'ed and renamed, so a tile
file either holds a finished tile of the recipe whose hash it names or does not exist. A rerun
(after kill -9, a full disk, …) computes only the tiles whose file is missing; a different
recipe has a different hash and never reads another's tiles. Tile k (row-major) belongs to
process k mod P (`fractalgd.distributed`); when every tile exists, one process claims the
assembly (an O_EXCL lock file) and writes the render directory (`fractalgd.assemble`).

Pixels are elementwise independent in the engine, so any tiling gives the labels and steps of
the single-shot render bit for bit. Host memory holds one tile at a time (and one band of tiles
at assembly), never the image.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fractalgd.config import Config
from fractalgd.core.pixel_order import PixelOrder
from fractalgd.core.precision import DOUBLE_DOUBLE
from fractalgd.output import check_target, finished_render
from fractalgd.output.atomic import atomic_path, process_alive, remove_dead_temporaries
from fractalgd.pipeline import run_pixels
from fractalgd.pipeline.cost import AUTO_PIXELS, use_tiled  # noqa: F401 (re-exported: the tiled path's rule)
from fractalgd.tiled.assemble import PNG_MAX_SIDE, assemble
from fractalgd.tiled.distributed import ProcessInfo, current

LOCK = "assemble.lock"


@dataclass(frozen=True)
class Tile:
    i: int
    j: int
    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.r1 - self.r0, self.c1 - self.c0)


def tile_grid(shape: tuple[int, int], side: int) -> list[Tile]:
    """Tiles of `side`² pixels (smaller at the right and bottom edges), row-major."""
    height, width = shape
    rows, cols = math.ceil(height / side), math.ceil(width / side)
    return [
        Tile(i, j, i * side, min(height, (i + 1) * side), j * side, min(width, (j + 1) * side))
        for i in range(rows)
        for j in range(cols)
    ]


def work_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.tiles"


def render_tile(config: Config, tile: Tile, progress: Callable[[int], None] | None = None) -> dict:
    """Labels (h, w) uint8, steps (h, w) int32 and executed pixel-steps of one tile.

    The tile's pixels go through the engine in batches of `[engine] tile` pixels, on this
    process's local devices, in patches of an engine block each (`fractalgd.core.pixel_order`,
    as `render` does; the coordinates are `Plane.coordinates`' values, the same formula on the
    same pixel indices).
    """
    n = tile.shape[0] * tile.shape[1]
    order = PixelOrder.for_blocks(tile.shape, config.engine.block or config.problem.kernel.block)
    labels, steps = np.empty(n, np.uint8), np.empty(n, np.int32)
    executed, batch, start_time = 0, config.engine.tile, time.perf_counter()
    double_double = config.gd.dtype == DOUBLE_DOUBLE
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        coords = config.plane.ordered_coordinates(order, start, stop, double_double, origin=(tile.r0, tile.c0))
        result = run_pixels(config, coords)
        labels[start:stop], steps[start:stop] = result.labels, result.steps
        executed += result.executed_pixel_steps
        if progress is not None:
            progress(stop - start)
    return {
        "labels": order.image(labels),
        "steps": order.image(steps),
        "executed": np.int64(executed),
        "seconds": np.float64(time.perf_counter() - start_time),
    }


@dataclass
class TileStore:
    """The tile files of one recipe hash in one work directory."""

    root: Path
    digest: str

    def path(self, tile: Tile) -> Path:
        return self.root / f"tile-{self.digest[:16]}-{tile.i:04d}-{tile.j:04d}.npz"

    def done(self, tile: Tile) -> bool:
        return self.path(tile).is_file()

    def write(self, tile: Tile, data: dict, process: int) -> None:
        """Write to a temporary name, fsync, rename: the file exists only once it is complete."""
        with atomic_path(self.path(tile)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **data, digest=np.array(self.digest), process=np.int64(process))

    def read(self, tile: Tile) -> dict:
        with np.load(self.path(tile), allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
        if str(out["digest"]) != self.digest or out["labels"].shape != tile.shape:
            raise OSError(f"{self.path(tile)}: not a tile of this recipe")
        return out


@dataclass
class TiledResult:
    out_dir: Path
    computed: list[tuple[int, int]]  # tiles this process rendered
    reused: int  # tiles found done
    assembled: bool  # whether this process wrote the render directory
    meta: dict | None = None  # meta.json when assembled
    waiting: list[tuple[int, int]] = field(default_factory=list)  # other processes' tiles still missing


def finished_meta(out_dir: Path, config: Config, digest: str) -> dict | None:
    """meta.json of a finished tiled render of exactly this recipe in `out_dir`, else None."""
    meta = finished_render(out_dir, config)
    return meta if meta is not None and meta.get("tiled", {}).get("recipe_hash") == digest else None


def claim_assembly(root: Path) -> bool:
    """Take the assembly lock (O_EXCL); a lock left by a dead process on this host is taken over."""
    lock = root / LOCK
    owner = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileNotFoundError:  # the work directory is gone: another process has assembled
            return False
        except FileExistsError:
            try:
                host, pid = lock.read_text().split()
            except (OSError, ValueError):
                return False
            if process_alive(host, int(pid)):
                return False
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its process died mid-assembly (the output was never renamed in)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner)
        return True
    return False


def render_tiled(
    config: Config,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    process: ProcessInfo | None = None,
    png_max_side: int | None = None,
    force: bool = False,
) -> TiledResult:
    """Render `config` tile by tile into the render directory `out_dir` (resumable, see module doc).

    Args:
        config: the recipe; `[engine] disk_tile` is the tile side.
        out_dir: the render directory; work files live in its hidden sibling `.NAME.tiles/`.
        progress: called as `progress(done_pixels, total_pixels)` over this process's share.
        process: index and count of the processes sharing the render (default: `distributed.current()`).
        png_max_side: largest side written as one PNG (default `assemble.PNG_MAX_SIDE`).
        force: replace a render directory of another recipe at `out_dir` (see `output.check_target`).

    Returns:
        A TiledResult; `assembled` is True for the process that wrote the render directory.
    """
    process = process or current()
    out_dir = Path(out_dir)
    store = TileStore(work_dir(out_dir), config.recipe_hash)
    tiles = tile_grid(config.plane.shape, config.engine.disk_tile)
    finished = finished_meta(out_dir, config, store.digest)
    if finished is not None:  # a rerun of a finished render: nothing to do
        return TiledResult(out_dir, [], len(tiles), False, finished)
    check_target(out_dir, config, force)  # before the first tile, not after hours of them
    store.root.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(store.root)  # what a killed run left half-written
    mine = [tiles[k] for k in process.share(len(tiles))]
    todo = [t for t in mine if not store.done(t)]
    total = sum(t.shape[0] * t.shape[1] for t in mine)
    done = total - sum(t.shape[0] * t.shape[1] for t in todo)
    if progress is not None:
        progress(done, total)
    for tile in todo:

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        store.write(tile, render_tile(config, tile, step), process.index)
    result = TiledResult(out_dir, [(t.i, t.j) for t in todo], len(mine) - len(todo), False)
    result.waiting = [(t.i, t.j) for t in tiles if not store.done(t)]
    if not result.waiting and claim_assembly(store.root):
        result.meta = finished_meta(out_dir, config, store.digest)
        if result.meta is not None:  # assembled by another process just before we took the lock
            return result
        try:
            result.meta = assemble(config, store, tiles, out_dir, png_max_side or PNG_MAX_SIDE)
        except BaseException:
            (store.root / LOCK).unlink(missing_ok=True)  # let a rerun assemble
            raise
        result.assembled = True
    return result
