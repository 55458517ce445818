"""The annotated figure: the image in its plane's coordinates, with a legend of class fractions."""

from __future__ import annotations

import numpy as np

from fractalgd.colour import class_colors
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
