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
from types import SimpleNamespace

import numpy as np

from fractalgd.config import Config
from fractalgd.pipeline import render_meta
from fractalgd.io import annotated_figure, atomic_directory, write_json, write_png
from fractalgd.render import colorize

PNG_MAX_SIDE = 4096


def _npy_writer(path: Path, shape: tuple[int, int], dtype):
    f = open(path, "wb")  # noqa: SIM115 (closed by the caller after the last band)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f


def _colorize(config: Config, labels: np.ndarray, steps: np.ndarray, rows: int = 256) -> np.ndarray:
    """`render.colorize` a few rows at a time: its float64 temporaries are 24 bytes a pixel."""
    r = config.render
    if r.equalize:  # ranks are taken over the whole array given
        return colorize(labels, steps, config.problem.class_names, config.gd.steps, shade=r.shade, equalize=True)
    out = np.empty((*labels.shape, 3), np.uint8)
    for k in range(0, labels.shape[0], rows):
        out[k : k + rows] = colorize(
            labels[k : k + rows], steps[k : k + rows], config.problem.class_names, config.gd.steps, shade=r.shade
        )
    return out


def assemble(config: Config, store, tiles: list, out_dir: Path, png_max_side: int = PNG_MAX_SIDE) -> dict:
    """Write the render directory from the tile files of `store`; remove the work directory.

    Returns the meta dict written to meta.json.
    """
    height, width = config.plane.shape
    names = config.problem.class_names
    stride = max(1, math.ceil(max(height, width) / png_max_side))
    recipe = config.to_toml()
    counts = np.zeros(max(len(names), 256), dtype=np.int64)
    executed, seconds, by_process = 0, 0.0, {}
    sample_rows = np.arange(stride // 2, height, stride)
    sample_cols = np.arange(stride // 2, width, stride)
    preview_labels = np.empty((len(sample_rows), len(sample_cols)), np.uint8)
    preview_steps = np.empty(preview_labels.shape, np.int32)
    bands = sorted({t.i for t in tiles})
    with atomic_directory(out_dir) as tmp:
        if stride > 1:
            (tmp / "tiles").mkdir()
        labels_f = _npy_writer(tmp / "labels.npy", (height, width), np.uint8)
        steps_f = _npy_writer(tmp / "steps.npy", (height, width), np.int32)
        with labels_f, steps_f:
            for i in bands:
                row = [t for t in tiles if t.i == i]
                r0, r1 = row[0].r0, row[0].r1
                band_labels = np.empty((r1 - r0, width), np.uint8)
                band_steps = np.empty((r1 - r0, width), np.int32)
                for t in row:  # one tile file in memory at a time, besides the band
                    d = store.read(t)
                    band_labels[:, t.c0 : t.c1], band_steps[:, t.c0 : t.c1] = d["labels"], d["steps"]
                    executed += int(d["executed"])
                    seconds += float(d["seconds"])
                    by_process[str(int(d["process"]))] = by_process.get(str(int(d["process"])), 0) + 1
                    del d
                band_labels.tofile(labels_f)  # C-contiguous rows of the image
                band_steps.tofile(steps_f)
                counts += np.bincount(band_labels.ravel(), minlength=len(counts))
                picked = (sample_rows >= r0) & (sample_rows < r1)
                local = sample_rows[picked] - r0
                preview_labels[picked] = band_labels[local][:, sample_cols]
                preview_steps[picked] = band_steps[local][:, sample_cols]
                for t in row if stride > 1 else ():
                    rgb = _colorize(config, band_labels[:, t.c0 : t.c1], band_steps[:, t.c0 : t.c1])
                    write_png(tmp / "tiles" / f"tile-{t.i:04d}-{t.j:04d}.png", rgb, recipe)
        meta = render_meta(config, counts, seconds, executed)  # elapsed: engine time over tiles and processes
        meta["tiled"] = {
            "recipe_hash": store.digest,
            "tile": config.engine.disk_tile,
            "grid": [len(bands), len(tiles) // len(bands)],
            "tiles_by_process": dict(sorted(by_process.items())),
            "preview_stride": stride,
            "png_tiles": stride > 1,
        }
        write_json(tmp / "meta.json", meta)
        (tmp / "recipe.toml").write_text(recipe)
        rgb = _colorize(config, preview_labels, preview_steps)
        if config.render.axes:
            view = SimpleNamespace(config=config, meta=meta, labels=np.broadcast_to(np.uint8(0), (height, width)))
            annotated_figure(rgb, view, tmp / "image.png", recipe)
        else:
            write_png(tmp / "image.png", rgb, recipe)
    shutil.rmtree(store.root, ignore_errors=True)
    return meta
