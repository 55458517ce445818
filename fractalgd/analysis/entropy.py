"""Basin entropy (Daza et al. 2016) and the Wada merging test (Daza et al. 2018) on label images.

Basin entropy: tile the image with non-overlapping ε×ε boxes (ε = `box` px; rows and columns
beyond the last whole box are left out, as Attractors.jl requires divisibility). In box i the
classes have fractions p_ij and Gibbs entropy S_i = −Σ_j p_ij log p_ij (natural log). Then

    Sb  = (1/N) Σ_i S_i            over all N boxes,
    Sbb = (1/N_b) Σ_{i: S_i > 0} S_i over the N_b boxes that hold two classes or more.

Sbb > log 2 is a sufficient condition for a fractal boundary (the "log 2 criterion", Daza 2016):
a box on a smooth boundary between two basins holds at most entropy log 2, and three basins
must meet in many boxes to exceed it. With two classes Sbb ≤ log 2 always, so the test can only
be passed with three classes or more; failing it proves nothing.

Wada merging test (Daza et al. 2018; Attractors.jl `test_wada_merge`): for each class j, merge
all others into one and take the boundary B_j of "j against the rest". If every boundary point
of every basin is a boundary point of all basins (Wada), the B_j coincide. We return
p = max over pairs (j, k) of the fraction of B_j farther than r px (chessboard distance) from
B_k; Wada at scale r when p ≤ `tol`. Three sectors meeting at one point give p ≈ 1/2.
"""

from __future__ import annotations

import math

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.boundary import as_labels

LOG2 = math.log(2.0)


def basin_entropy(labels, box: int = 5) -> dict:
    """Sb and Sbb of a label image on ε×ε boxes (ε = `box` px), natural log.

    Args:
        labels: (H, W) integer or boolean class ids.
        box: box side ε in px (default 5).

    Returns:
        dict with `basin_entropy` (Sb), `boundary_basin_entropy` (Sbb), `box`, `boxes` (N),
        `boundary_boxes` (N_b), `log2_test` (Sbb > log 2: fractal boundary).
    """
    labels = as_labels(labels)
    if box < 1:
        raise AnalysisError(f"box: must be a positive number of pixels, got {box}")
    h, w = labels.shape[0] // box, labels.shape[1] // box
    if h == 0 or w == 0:
        raise AnalysisError(f"image {labels.shape[1]}×{labels.shape[0]} is smaller than one {box}×{box} box")
    blocks = labels[: h * box, : w * box].reshape(h, box, w, box)
    entropy = np.zeros((h, w))
    for cls in np.unique(blocks):
        p = np.count_nonzero(blocks == cls, axis=(1, 3)) / float(box * box)
        entropy -= np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    on_boundary = entropy > 0
    n_boundary = int(np.count_nonzero(on_boundary))
    if n_boundary == 0:
        raise AnalysisError(f"no {box}×{box} box holds two classes: no boundary to measure the entropy of")
    sbb = float(entropy[on_boundary].mean())
    return {
        "basin_entropy": float(entropy.mean()),
        "boundary_basin_entropy": sbb,
        "box": int(box),
        "boxes": int(entropy.size),
        "boundary_boxes": n_boundary,
        "log2_test": bool(sbb > LOG2),
    }


def _merged_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a binary image with a 4-neighbour of the other value (both sides)."""
    out = np.zeros(mask.shape, dtype=bool)
    horizontal = mask[:, :-1] != mask[:, 1:]
    vertical = mask[:-1, :] != mask[1:, :]
    out[:, :-1] |= horizontal
    out[:, 1:] |= horizontal
    out[:-1, :] |= vertical
    out[1:, :] |= vertical
    return out


def wada_merge(labels, classes=None, r: int = 2, tol: float = 0.05) -> dict:
    """Daza's merging test for the Wada property (≥ 3 classes).

    Args:
        labels: (H, W) integer or boolean class ids.
        classes: the class ids to test (≥ 3); default: every class present.
        r: distance (px, chessboard) within which two merged boundaries count as the same.
        tol: largest fraction p of boundary pixels off another boundary still called Wada.

    Returns:
        dict with `p` (max over class pairs of the fraction of B_j farther than r from B_k),
        `pairs` ({"j|k": fraction}), `r`, `tol`, `classes`, `wada` (p ≤ tol).
    """
    from scipy.ndimage import distance_transform_cdt

    labels = as_labels(labels)
    present = [int(c) for c in np.unique(labels)]
    classes = present if classes is None else [int(c) for c in classes]
    if len(classes) < 3:
        raise AnalysisError(f"the Wada test needs three classes or more, got {len(classes)}")
    missing = sorted(set(classes) - set(present))
    if missing:
        raise AnalysisError(f"the Wada test: class {missing[0]} is not in the image")
    boundaries = {c: _merged_boundary(labels == c) for c in classes}
    distance = {c: distance_transform_cdt(~b, metric="chessboard") for c, b in boundaries.items()}
    pairs = {}
    for j in classes:
        for k in classes:
            if j != k:
                pairs[f"{j}|{k}"] = float(np.mean(distance[k][boundaries[j]] > r))
    p = max(pairs.values())
    return {"p": p, "pairs": pairs, "r": int(r), "tol": float(tol), "classes": classes, "wada": bool(p <= tol)}
