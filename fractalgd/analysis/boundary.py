"""Boundaries of label images: which pixels sit where two classes meet.

Two conventions, both pinned here:

- `boundary_mask` (our box counting): a pixel is a boundary pixel if its right or its lower
  4-neighbour holds another class. The true boundary runs along the cracks between pixels (a
  staircase within one pixel of it); each crack is recorded once, on its upper-left pixel, which
  is where a half-open box [a, a+s) puts the crack's midpoint. A straight boundary is then one
  pixel thick. Thicker rules bias small boxes: a t-pixel-thick curve meets about (s + t − 1)/s²
  boxes of side s per unit length, so marking both sides (t = 2) lifts the local slope between
  s = 4 and 8 by log(5/4 · 8/9)/log 2 ≈ 0.15. (Marking only the pixels of one class with a
  4-neighbour of the other gives a thinner, 8-connected curve that misses boxes a pixel-corner
  cut crosses, biasing small boxes low.)
- `sd_edges` (Sohl-Dickstein's `extract_edges`, anchors.md §1.9): the (H−1)×(W−1) image of 2×2
  pixel blocks that are not all of one class (for a signed scalar image: max·min < 0).
"""

from __future__ import annotations

import numpy as np

from fractalgd.analysis import AnalysisError


def as_labels(labels) -> np.ndarray:
    """Check a 2-D integer or boolean label image and return it as an integer array."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise AnalysisError(f"labels must be a 2-D array, got shape {labels.shape}")
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise AnalysisError(f"labels must be integer or boolean, got dtype {labels.dtype}")
    return labels


def _crack(here: np.ndarray, there: np.ndarray, classes) -> np.ndarray:
    """Cracks between `here` and its neighbour `there` (of the pair `classes`, if given)."""
    if classes is None:
        return here != there
    a, b = classes
    return ((here == a) & (there == b)) | ((here == b) & (there == a))


def boundary_mask(labels, classes: tuple[int, int] | None = None) -> np.ndarray:
    """Pixels where two different classes meet (one pixel thick).

    A pixel (i, j) is True when its right neighbour (i, j+1) or its lower neighbour (i+1, j)
    holds another class — any other class, or with `classes=(a, b)` only the pair a|b.

    Args:
        labels: (H, W) integer or boolean class ids.
        classes: None (all pairs) or two class ids (a, b).

    Returns:
        (H, W) bool mask.
    """
    labels = as_labels(labels)
    if classes is not None:
        classes = _check_pair(classes)
    mask = np.zeros(labels.shape, dtype=bool)
    mask[:, :-1] |= _crack(labels[:, :-1], labels[:, 1:], classes)
    mask[:-1, :] |= _crack(labels[:-1, :], labels[1:, :], classes)
    return mask


def _check_pair(classes) -> tuple[int, int]:
    if len(classes) != 2 or classes[0] == classes[1]:
        raise AnalysisError(f"classes: give two different class ids, got {tuple(classes)}")
    return int(classes[0]), int(classes[1])


def sd_edges(image, classes: tuple[int, int] | None = None) -> np.ndarray:
    """Sohl-Dickstein's edge image: 2×2 blocks that straddle a boundary.

    For a float (signed) image a block is an edge when max·min < 0 (a sign change between
    converged and diverged runs, his `extract_edges`); for integer/boolean labels when the four
    pixels are not all of one class (with `classes=(a, b)`: when the block holds both a and b).

    Returns:
        (H−1, W−1) bool array; entry (i, j) is the block of pixels i..i+1 × j..j+1.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise AnalysisError(f"image must be 2-D, got shape {image.shape}")
    blocks = (image[:-1, :-1], image[:-1, 1:], image[1:, :-1], image[1:, 1:])
    if np.issubdtype(image.dtype, np.floating):
        hi = np.maximum(np.maximum(blocks[0], blocks[1]), np.maximum(blocks[2], blocks[3]))
        lo = np.minimum(np.minimum(blocks[0], blocks[1]), np.minimum(blocks[2], blocks[3]))
        return hi * lo < 0
    labels = [as_labels(b) for b in blocks]
    if classes is None:
        return (labels[1] != labels[0]) | (labels[2] != labels[0]) | (labels[3] != labels[0])
    a, b = _check_pair(classes)
    return np.logical_or.reduce([x == a for x in labels]) & np.logical_or.reduce([x == b for x in labels])
