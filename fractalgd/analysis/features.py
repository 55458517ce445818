"""Statistics of one limit feature (a features.npz array) over a render, overall and per class."""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)


def _stats(values: np.ndarray) -> dict:
    finite = values[np.isfinite(values)]
    out = {"pixels": int(values.size), "defined": int(finite.size)}
    if finite.size == 0:
        return {**out, "min": None, "max": None, "mean": None, "quantiles": None}
    q = np.quantile(finite, QUANTILES)
    return {
        **out,
        "min": float(finite.min()),
        "max": float(finite.max()),
        "mean": float(finite.mean()),
        "quantiles": {f"{p:g}": float(v) for p, v in zip(QUANTILES, q, strict=True)},
    }


def feature_summary(values: np.ndarray, labels: np.ndarray, class_names, name: str) -> dict:
    """{"feature", "all": stats, "classes": {class: stats}}: count, defined (finite) pixels, min, max,
    mean and the QUANTILES of the finite values; null where a class has none."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    if values.shape != labels.shape:
        raise ValueError(f"feature '{name}' has shape {values.shape}, the labels {labels.shape}")
    classes = {}
    for cid in np.unique(labels).tolist():
        label = class_names[cid] if cid < len(class_names) else str(cid)
        classes[label] = _stats(values[labels == cid])
    return {"feature": name, "all": _stats(values), "classes": classes}
