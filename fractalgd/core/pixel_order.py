"""The order in which a render hands its pixels to the engine: compact patches, not rows.

A block of the engine stops when its last pixel decides, so its cost is set by its slowest
pixel. Neighbouring pixels decide at nearly the same step (a basin's inside decides fast, its
boundary slowly), so a block that is a compact bh × bw patch of the image waits on fewer slow
pixels than a block that is a stretch of one row, which crosses every basin of the image.
Measured on P1 at 1024² × 1000 (2-core CPU, blocks of 1024): a block-row runs 0.139 of the
nominal pixel-steps with early exit at λ = 0, a 32 × 32 patch 0.079, and the engine takes 16.0
→ 11.1 ms. Every pixel's label is its own (engine/blocks.py), so the order changes no result.

The order: bands of `bh` rows, top to bottom; within a band, strips of `bw` columns, left to
right; within a strip, row-major. The last band and the last strip of each band may be smaller,
so any (H, W) is covered, once each. Position i in this order is "engine index" i.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelOrder:
    """Patches of `patch` = (bh, bw) pixels over an image of `shape` = (H, W)."""

    shape: tuple[int, int]
    patch: tuple[int, int]

    @classmethod
    def for_blocks(cls, shape: tuple[int, int], block: int) -> PixelOrder:
        """Patches of about `block` pixels, as square as powers of two allow (1024 → 32 × 32, 512
        → 16 × 32), no wider than the image."""
        height, width = shape
        bw = min(width, 1 << math.ceil(math.log2(max(block, 1)) / 2))
        bh = max(1, min(height, block // bw))
        return cls(shape, (bh, bw))

    def rows_cols(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the pixels at engine indices [start, stop), int64."""
        height, width = self.shape
        return self.take(start, stop, np.arange(height, dtype=np.int64), np.arange(width, dtype=np.int64))

    def take(self, start: int, stop: int, by_row: np.ndarray, by_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(by_row[row], by_col[col]) of the pixels at engine indices [start, stop), for per-row
        (H,) and per-column (W,) arrays (coordinates: what the plane computes once per row and
        column). Full bands gather through one band's pattern: `position`'s divisions take 8 ms
        for 2¹⁸ pixels, this ~1 ms."""
        (height, width), (bh, _) = self.shape, self.patch
        band_size, full_bands = bh * width, height // bh
        band_rows, band_cols = self._band_pattern
        rows = np.empty(max(stop - start, 0), by_row.dtype)
        cols = np.empty(max(stop - start, 0), by_col.dtype)
        i = start
        while i < stop:
            band = i // band_size
            lo, hi = i - band * band_size, min(stop - band * band_size, band_size)
            here = slice(i - start, i - start + hi - lo)
            if band < full_bands:
                np.take(by_row[band * bh : (band + 1) * bh], band_rows[lo:hi], out=rows[here], mode="clip")
                np.take(by_col, band_cols[lo:hi], out=cols[here], mode="clip")  # "raise" buffers `out`
            else:  # the last band, fewer rows
                row, col = self.position(np.arange(i, band * band_size + hi, dtype=np.int64))
                rows[here], cols[here] = by_row[row], by_col[col]
            i = band * band_size + hi
        return rows, cols

    @functools.cached_property
    def _band_pattern(self) -> tuple[np.ndarray, np.ndarray]:
        """(row within the band, col) of every pixel of a full band, in engine order."""
        rows, cols = self.position(np.arange(self.patch[0] * self.shape[1], dtype=np.int64))
        return rows.astype(np.intp), cols.astype(np.intp)

    def position(self, engine_index) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the pixels at the given engine indices, int64."""
        (height, width), (bh, bw) = self.shape, self.patch
        i = np.asarray(engine_index, dtype=np.int64)
        band = i // (bh * width)
        rows_in_band = np.minimum(bh, height - band * bh)
        within = i - band * (bh * width)
        strip = within // (rows_in_band * bw)  # every strip but a band's last holds rows_in_band · bw
        within = within - strip * (rows_in_band * bw)
        strip_width = np.minimum(bw, width - strip * bw)
        return band * bh + within // strip_width, strip * bw + within % strip_width

    def flat_index(self, engine_index) -> np.ndarray:
        """Row-major flat indices (row · W + col) of the pixels at the given engine indices."""
        row, col = self.position(engine_index)
        return row * self.shape[1] + col

    def image(self, values: np.ndarray, dtype=None) -> np.ndarray:
        """(H, W, …): `values` (H·W, …) given in engine order, laid out as the image (in `dtype`,
        default the values')."""
        out = np.empty((*self.shape, *values.shape[1:]), dtype or values.dtype)
        self.place(out, values, 0)
        return out

    @property
    def band_pixels(self) -> int:
        """Pixels of one full band (`place` takes runs of whole bands)."""
        return self.patch[0] * self.shape[1]

    def place(self, out: np.ndarray, values: np.ndarray, start: int) -> None:
        """Write `values`, the pixels at engine indices [start, start + len), into the image `out`
        (H, W, …), converted to its dtype: the run must start at a band and end at one or at the
        image's end (a render lays out each finished band while the devices run the next tile)."""
        (height, width), (bh, bw) = self.shape, self.patch
        stop = start + len(values)
        if start % self.band_pixels or (stop % self.band_pixels and stop != height * width):
            raise ValueError(f"pixels [{start}, {stop}) do not start and end at bands of {self.band_pixels}")
        tail = values.shape[1:]
        first, last = start // self.band_pixels, -(-stop // self.band_pixels)
        full = min(last, height // bh)  # bands [first, full) have bh rows
        if width % bw == 0 and full > first:  # the bulk at once: bands × strips × patch rows × patch cols
            patches = values[: (full - first) * self.band_pixels].reshape(full - first, width // bw, bh, bw, *tail)
            # Written through a view of `out` (splitting an axis never copies): one copy, where a
            # reshape of the transposed patches would be a second.
            out[first * bh : full * bh].reshape(full - first, bh, width // bw, bw, *tail)[...] = patches.swapaxes(1, 2)
            done = full
        else:
            done = first
        full_width = (width // bw) * bw
        for band in range(done, last):
            top = band * bh
            rows = min(bh, height - top)
            chunk = values[(top * width - start) : ((top + rows) * width - start)]
            if full_width:
                strips = chunk[: rows * full_width].reshape(width // bw, rows, bw, *tail)
                out[top : top + rows, :full_width].reshape(rows, width // bw, bw, *tail)[...] = strips.swapaxes(0, 1)
            if full_width < width:
                out[top : top + rows, full_width:] = chunk[rows * full_width :].reshape(rows, width - full_width, *tail)
