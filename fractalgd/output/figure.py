"""The paper figure of a render: the image at full resolution inside axes, physical ticks, axis
names, a legend whose swatches are colours drawn (or a colour bar), and a title.

Layout: every image pixel is s × s figure pixels (s ≥ 1, an integer: small renders are scaled up
to at least `MIN_IMAGE_PX` so the labels fit); the margins are measured from the drawn text, so the
image never shrinks to make room. PNG, PDF and SVG follow the file's suffix; in PDF and SVG the
image is embedded unresampled (`interpolation="none"`), so every pixel stays sharp at any zoom.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fractalgd.colour import colorize, colorize_score, feature_range, legend_colors, signed_cdf
from fractalgd.config import dump_toml
from fractalgd.core.errors import ConfigError
from fractalgd.core.version import __version__
from fractalgd.output.atomic import atomic_savefig
from fractalgd.output.names import axis_label, log_ticks, title_of
from fractalgd.output.png import RECIPE_CHUNK
from fractalgd.output.render_files import RenderFiles

FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 150
MAX_SIDE = 4096  # larger renders are drawn from a stride sample (true labels, no blending)
MIN_IMAGE_PX = 480  # small renders are scaled up (whole pixels) to at least this longer side
PAD_IN = 0.08


def _sample(array: np.ndarray | None, stride: int) -> np.ndarray | None:
    if array is None or stride == 1:
        return None if array is None else np.asarray(array)
    return np.asarray(array[stride // 2 :: stride, stride // 2 :: stride])


def _colormap(name: str | None, default: str):
    import matplotlib

    try:
        return matplotlib.colormaps[name or default]
    except KeyError:
        raise ConfigError(f"--cmap: unknown colormap '{name}' (e.g. viridis, magma, Spectral, coolwarm)") from None


def _image_and_key(render: RenderFiles, stride: int, cmap: str | None, feature: str | None):
    """(rgb, key): key is ("legend", [(colour, label)]) or ("colorbar", (cmap, ticks, labels, title))."""
    if feature is None:
        wanted = str((render.config.get("render") or {}).get("color", ""))
        if wanted.startswith("feature:"):  # [render] color = "feature:NAME" draws a per-pixel feature
            feature = wanted.split(":", 1)[1]
    if feature is not None:
        if feature not in render.features:
            known = ", ".join(sorted(render.features)) or "none: this render has no features.npz"
            raise ConfigError(f"--feature: '{feature}' is not a feature of this render (known: {known})")
        values = np.asarray(_sample(render.features[feature], stride), dtype=np.float64)
        return _feature_image(values, _colormap(cmap, "viridis"), feature)
    if render.score is not None:
        return _score_image(np.asarray(_sample(render.score, stride), dtype=np.float64), cmap)
    labels, steps = _sample(render.labels, stride), _sample(render.steps, stride)
    names, options = render.class_names, render.colour_options
    rgb = colorize(labels, steps, names, **options)
    swatches = legend_colors(labels, steps, names, **options)
    counts = np.bincount(labels.ravel(), minlength=len(names))
    total = max(int(counts.sum()), 1)
    items = [(swatches[i], f"{n} ({_percent(counts[i] / total)})") for i, n in enumerate(names) if counts[i]]
    return rgb, ("legend", items)


def _percent(fraction: float) -> str:
    """'17.2%', or '<0.1%' for a class that is present but rounds to nothing."""
    return f"{fraction:.1%}" if fraction >= 0.0005 else "<0.1%"


def _feature_image(values: np.ndarray, colormap, name: str):
    finite = np.isfinite(values)
    lo, hi = feature_range(values) or (0.0, 1.0)  # the range image.png is drawn over (percentiles)
    hi = hi if hi > lo else lo + 1.0
    x = np.where(finite, np.clip((values - lo) / (hi - lo), 0.0, 1.0), 0.0)
    rgb = np.round(np.asarray(colormap(x))[..., :3] * 255).astype(np.uint8)
    rgb[~finite] = 128  # undefined values: grey
    import matplotlib.ticker

    ticks = [t for t in matplotlib.ticker.MaxNLocator(nbins=6).tick_values(lo, hi) if lo <= t <= hi]
    return rgb, ("colorbar", (colormap, [(t - lo) / (hi - lo) for t in ticks], [f"{t:.4g}" for t in ticks], name))


def _score_image(score: np.ndarray, cmap: str | None):
    colormap = _colormap(cmap, "Spectral") if cmap else None
    rgb = colorize_score(score, colormap)
    # Ticks at ranks: the colour of a position x is the score whose rank maps there (signed_cdf).
    flat = np.sort(score.ravel())
    x = (signed_cdf(flat) + 1) / 2  # decreasing in the score
    order = np.argsort(x, kind="stable")
    positions = [p for p in (0.0, 0.2, 0.375, 0.625, 0.8, 1.0) if x.min() <= p <= x.max()]
    labels = [f"{np.interp(p, x[order], flat[order]):.3g}" for p in positions]
    bar = colormap if colormap is not None else _colormap("Spectral", "Spectral")
    return rgb, ("colorbar", (bar, positions, labels, "score (ranked per sign; < 0: trainable)"))


def _set_ticks(ax, plane) -> None:
    for axis, ticks in ((plane.x, ax.set_xticks), (plane.y, ax.set_yticks)):
        if axis.scale == "log10":
            positions, labels = log_ticks(axis.lo, axis.hi)
            ticks(positions, labels)
    ax.set_xlabel(axis_label(plane.x.param, plane.x.scale))
    ax.set_ylabel(axis_label(plane.y.param, plane.y.scale))


def draw_figure(
    render: RenderFiles,
    path: str | Path,
    dpi: int = DEFAULT_DPI,
    cmap: str | None = None,
    title: str | None = None,
    feature: str | None = None,
    max_side: int = MAX_SIDE,
) -> Path:
    """Write the figure of `render` to `path` (.png, .pdf or .svg), atomically.

    Args:
        dpi: figure pixels per inch; the image keeps one image pixel per figure pixel (or s × s).
        cmap: a matplotlib colormap for scores and features (default: Spectral, viridis).
        title: default: the recipe's name and the values its `--set` overrides changed.
        feature: draw this array of features.npz with a colour bar instead of the classes.
        max_side: renders wider or taller are drawn from a stride sample.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"--out {path}: the suffix picks the format: .png, .pdf or .svg")
    if not 10 <= dpi <= 2400:
        raise ConfigError(f"--dpi: must be in [10, 2400], got {dpi}")
    height, width = render.labels.shape
    stride = max(1, math.ceil(max(height, width) / max_side))
    rgb, key = _image_and_key(render, stride, cmap, feature)
    scale = max(1, math.ceil(MIN_IMAGE_PX / max(rgb.shape[:2])))
    title = title if title is not None else title_of(render.name, render.meta.get("overrides"))
    fig = _layout(rgb, scale, render.plane, key, title, dpi, fmt)
    kwargs = {"dpi": dpi}
    if fmt == "png":  # marked as ours, and carrying the recipe, as image.png does
        kwargs["metadata"] = {"Software": f"fractalgd {__version__}", RECIPE_CHUNK: dump_toml(render.config)}
    atomic_savefig(fig, path, **kwargs)
    return path


def _layout(rgb: np.ndarray, scale: int, plane, key, title: str, dpi: int, fmt: str):
    """A matplotlib Figure (no pyplot state) with the image at `scale` figure pixels per pixel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    h_px, w_px = rgb.shape[0] * scale, rgb.shape[1] * scale
    fig = Figure(figsize=(w_px / dpi + 4, h_px / dpi + 2), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(rgb, extent=plane.extent(), origin="upper", aspect="auto",
              interpolation="nearest" if fmt == "png" else "none")  # fmt: skip
    _set_ticks(ax, plane)
    ax.set_title(title, fontsize=11)
    cax = None
    if key[0] == "legend":
        handles = [Patch(facecolor=c, edgecolor="0.35", linewidth=0.5, label=label) for c, label in key[1]]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
                  fontsize=9, handlelength=1.6, handleheight=1.2)  # fmt: skip
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        colormap, ticks, labels, label = key[1]
        cax = fig.add_axes((0, 0, 0.1, 1))
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), colormap), cax=cax)
        bar.set_ticks(ticks, labels=labels)
        bar.set_label(label)

    def place(left_px: int, bottom_px: int, fig_w: int, fig_h: int) -> None:
        fig.set_size_inches(fig_w / dpi, fig_h / dpi)
        ax.set_position((left_px / fig_w, bottom_px / fig_h, w_px / fig_w, h_px / fig_h))
        if cax is not None:
            gap, bar_w = round(0.15 * dpi), round(0.16 * dpi)
            cax.set_position(((left_px + w_px + gap) / fig_w, bottom_px / fig_h, bar_w / fig_w, h_px / fig_h))

    # Measure the text around the axes at a provisional size, then give it exactly that room.
    pad = round(PAD_IN * dpi)
    fig_w, fig_h = w_px + 8 * dpi, h_px + 3 * dpi
    place(4 * dpi, 1.5 * dpi, fig_w, fig_h)
    renderer = fig.canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)  # inches
    box = ax.get_window_extent(renderer)  # pixels
    left = max(0, math.ceil(box.x0 - tight.x0 * dpi)) + pad
    right = max(0, math.ceil(tight.x1 * dpi - box.x1)) + pad
    bottom = max(0, math.ceil(box.y0 - tight.y0 * dpi)) + pad
    top = max(0, math.ceil(tight.y1 * dpi - box.y1)) + pad
    place(left, bottom, left + w_px + right, bottom + h_px + top)
    return fig

