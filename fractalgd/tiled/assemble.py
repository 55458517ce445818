"""Tile files → a render directory, one band of tiles in memory at a time.

The directory has the layout of `io.save_render`: `labels.npy` (uint8) and `steps.npy` (int32),
plain .npy files written sequentially band by band (so `np.load(..., mmap_mode="r")` opens them
without reading; no memory map is written, whose dirty pages would count against the process's
resident memory), `meta.json` (class counts summed over tiles, plus a `tiled` entry), `recipe.toml`
and `image.png`. When the image is wider or taller than `PNG_MAX_SIDE`, `image.png` is a preview
sampled with stride f = ⌈max(H, W) / PNG_MAX_SIDE⌉ (pixel (f·r + ⌊f/2⌋, f·c + ⌊f/2⌋), true labels,
no blending across a fractal boundary) and `tiles/tile-I-J.png` hold the full resolution, one PNG
per tile. Colours are `render.colorize` per band or tile; with `[render] equalize` the per-class
ranks are therefore taken within each tile.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np

from fractalgd.colour import colorize
from fractalgd.config import Config
from fractalgd.output.png import write_png
from fractalgd.output.render_dir import write_render_directory
from fractalgd.pipeline import render_meta

PNG_MAX_SIDE = 4096


def _npy_writer(path: Path, shape: tuple[int, int], dtype):
    f = open(path, "wb")  # noqa: SIM115 (closed by the caller after the last band)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f


def _colorize(config: Config, labels: np.ndarray, steps: np.ndarray, rows: int = 256) -> np.ndarray:
    """`colour.colorize` a few rows at a time: its float64 temporaries are 24 bytes a pixel."""
    r = config.render
    if r.equalize:  # ranks are taken over the whole array given
        return colorize(labels, steps, config.problem.class_names, config.gd.steps, r.shade, True, config.engine.check_every)
    out = np.empty((*labels.shape, 3), np.uint8)
    for k in range(0, labels.shape[0], rows):
        out[k : k + rows] = colorize(
            labels[k : k + rows], steps[k : k + rows], config.problem.class_names, config.gd.steps, r.shade,
            first_step=config.engine.check_every,
        )
    return out


class _Bands:
    """Streams the tile files of a store, band by band, into labels.npy / steps.npy (and PNG tiles),
    keeping the class counts, the cost and a stride-sampled preview."""

    def __init__(self, config: Config, store, tiles: list, stride: int):
        self.config, self.store, self.tiles, self.stride = config, store, tiles, stride
        height, width = config.plane.shape
        self.counts = np.zeros(max(len(config.problem.class_names), 256), dtype=np.int64)
        self.executed, self.seconds, self.by_process = 0, 0.0, {}
        self.rows = np.arange(stride // 2, height, stride)
        self.cols = np.arange(stride // 2, width, stride)
        self.preview_labels = np.empty((len(self.rows), len(self.cols)), np.uint8)
        self.preview_steps = np.empty(self.preview_labels.shape, np.int32)
        self.bands = sorted({t.i for t in tiles})

    def write(self, tmp: Path) -> None:
        height, width = self.config.plane.shape
        recipe = self.config.to_toml()
        if self.stride > 1:
            (tmp / "tiles").mkdir()
        with _npy_writer(tmp / "labels.npy", (height, width), np.uint8) as labels_f, _npy_writer(
            tmp / "steps.npy", (height, width), np.int32
        ) as steps_f:
            for i in self.bands:
                row = [t for t in self.tiles if t.i == i]
                band_labels, band_steps = self._band(row)
                band_labels.tofile(labels_f)  # C-contiguous rows of the image
                band_steps.tofile(steps_f)
                self.counts += np.bincount(band_labels.ravel(), minlength=len(self.counts))
                r0 = row[0].r0
                picked = (self.rows >= r0) & (self.rows < row[0].r1)
                local = self.rows[picked] - r0
                self.preview_labels[picked] = band_labels[local][:, self.cols]
                self.preview_steps[picked] = band_steps[local][:, self.cols]
                for t in row if self.stride > 1 else ():
                    rgb = _colorize(self.config, band_labels[:, t.c0 : t.c1], band_steps[:, t.c0 : t.c1])
                    write_png(tmp / "tiles" / f"tile-{t.i:04d}-{t.j:04d}.png", rgb, recipe)

    def _band(self, row: list) -> tuple[np.ndarray, np.ndarray]:
        width = self.config.plane.shape[1]
        r0, r1 = row[0].r0, row[0].r1
        band_labels = np.empty((r1 - r0, width), np.uint8)
        band_steps = np.empty((r1 - r0, width), np.int32)
        for t in row:  # one tile file in memory at a time, besides the band
            d = self.store.read(t)
            band_labels[:, t.c0 : t.c1], band_steps[:, t.c0 : t.c1] = d["labels"], d["steps"]
            self.executed += int(d["executed"])
            self.seconds += float(d["seconds"])
            key = str(int(d["process"]))
            self.by_process[key] = self.by_process.get(key, 0) + 1
        return band_labels, band_steps


def assemble(config: Config, store, tiles: list, out_dir: Path, png_max_side: int = PNG_MAX_SIDE) -> dict:
    """Write the render directory from the tile files of `store`; remove the work directory.

    Returns the meta dict written to meta.json.
    """
    height, width = config.plane.shape
    stride = max(1, math.ceil(max(height, width) / png_max_side))
    bands = _Bands(config, store, tiles, stride)
    meta: dict = {}

    def write_arrays(tmp: Path) -> None:
        bands.write(tmp)
        # elapsed: engine time summed over tiles and processes
        meta.update(render_meta(config, bands.counts, bands.seconds, bands.executed))
        meta["tiled"] = {
            "recipe_hash": store.digest,
            "tile": config.engine.disk_tile,
            "grid": [len(bands.bands), len(tiles) // len(bands.bands)],
            "tiles_by_process": dict(sorted(bands.by_process.items())),
            "preview_stride": stride,
            "png_tiles": stride > 1,
        }

    def preview() -> np.ndarray:
        return _colorize(config, bands.preview_labels, bands.preview_steps)

    # The target was checked before the first tile (render_tiled); here it is ours to replace.
    write_render_directory(out_dir, config, meta, write_arrays, preview, force=True)
    shutil.rmtree(store.root, ignore_errors=True)
    return meta
