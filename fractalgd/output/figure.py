"""The annotated figures: the image in its plane's coordinates, with a legend of class fractions
(`annotated_png`) or, for a feature image, a colour bar (`colorbar_png`)."""

from __future__ import annotations

import numpy as np

from fractalgd.colour import class_colors, viridis_lut
from fractalgd.output.png import figure_png


def annotated_png(rgb: np.ndarray, plane, class_names, counts: dict, title: str, recipe: str) -> bytes:
    """PNG bytes of the image inside axes (plane units) with a legend of the classes present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colors = class_colors(class_names)
    total = max(sum(counts.values()), 1)
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=150)
    try:
        ax.imshow(rgb, extent=plane.extent(), origin="upper", interpolation="nearest", aspect="auto")
        for axis, setter in ((plane.x, ax.set_xlabel), (plane.y, ax.set_ylabel)):
            setter(f"log10 {axis.param}" if axis.scale == "log10" else axis.param)
        handles = [
            Patch(color=colors[i], label=f"{n} ({counts[n] / total:.1%})") for i, n in enumerate(class_names) if counts.get(n)
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.set_title(title)
        fig.tight_layout()
        return figure_png(fig, recipe)
    finally:
        plt.close(fig)


def colorbar_png(rgb: np.ndarray, plane, feature: str, value_range, title: str, recipe: str) -> bytes:
    """PNG bytes of a feature image inside axes (plane units) with its colour bar over `value_range`.

    The bar is the colormap the image was drawn with (`colour.viridis_lut`); pixels outside the
    range are clipped to its ends (arrows on the bar); grey pixels are undefined (NaN).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, Normalize

    lo, hi = value_range if value_range is not None else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=150)
    try:
        ax.imshow(rgb, extent=plane.extent(), origin="upper", interpolation="nearest", aspect="auto")
        for axis, setter in ((plane.x, ax.set_xlabel), (plane.y, ax.set_ylabel)):
            setter(f"log10 {axis.param}" if axis.scale == "log10" else axis.param)
        mappable = plt.cm.ScalarMappable(Normalize(lo, hi), ListedColormap(viridis_lut()))
        bar = fig.colorbar(mappable, ax=ax, extend="both")
        bar.set_label(feature + ("" if value_range is not None else " (no finite values)"))
        ax.set_title(title)
        fig.tight_layout()
        return figure_png(fig, recipe)
    finally:
        plt.close(fig)
