"""One call for every estimate on a label image, and the files `fractalgd analyze` writes.

`analyze` is pure: arrays in, a JSON-ready dict out. `method="uncertainty"` re-runs the engine
through the function it is given (`fractalgd.pipeline.analyze` passes it); files are written by
`fractalgd.output.analysis_files`.
"""

from __future__ import annotations

import math

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.boundary import as_labels
from fractalgd.analysis.boxcount import box_count, sd_box_count
from fractalgd.analysis.cracks import counted_boundary
from fractalgd.analysis.entropy import basin_entropy, wada_merge
from fractalgd.analysis.methods import disagreements, summary, uncertainty_summary

METHODS = ("boxcount", "sd", "uncertainty")
MAX_BOUNDARY_FRACTION = 0.5  # above it the boundary is not resolved: noise, or riddled basins
MIN_WADA_FRACTION = 0.005  # classes below this share of the pixels (null sets such as the saddle) sit out the Wada test


def resolve_classes(classes, class_names) -> tuple[int, int] | None:
    """A pair of class names (or ids, or id strings) → a pair of class ids; None stays None."""
    if classes is None or len(classes) == 0:
        return None
    if len(classes) != 2:
        raise AnalysisError(f"classes: give two classes (a,b), got {list(classes)}")
    ids = []
    for item in classes:
        if isinstance(item, str) and item in class_names:
            ids.append(list(class_names).index(item))
        elif isinstance(item, (int, np.integer)) or (isinstance(item, str) and item.strip().lstrip("-").isdigit()):
            ids.append(int(item))
        else:
            raise AnalysisError(f"classes: unknown class '{item}' (known: {', '.join(class_names)})")
    if ids[0] == ids[1]:
        raise AnalysisError(f"classes: give two different classes, got {list(classes)}")
    return ids[0], ids[1]


def _name(class_names, cls: int) -> str:
    return class_names[cls] if 0 <= cls < len(class_names) else str(cls)


def _check_finite(value, key="result"):
    """Raise rather than hand back a NaN or an infinity anywhere in the result."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{key}.{k}")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_finite(v, key)
    elif isinstance(value, float) and not math.isfinite(value):
        raise AnalysisError(f"{key} is not finite ({value}): the image does not support this estimate")


def _box_fit(labels, mask, pair, ignore, box_options: dict | None):
    """`box_count` of the counted boundary: on its cracks unless `box_options` names another mode."""
    options = dict(box_options or {})
    mode = options.pop("mode", "cracks")
    if mode == "cracks":
        return box_count(labels, mode="cracks", classes=pair, ignore=ignore, **options)
    return box_count(mask if mode == "occupied" else labels, mode=mode, **options)


def analyze(
    labels,
    class_names,
    *,
    classes=None,
    box: int = 5,
    method: str = "boxcount",
    config=None,
    box_options: dict | None = None,
    uncertainty_options: dict | None = None,
    wada_r: int = 2,
    progress=None,
    uncertainty_fn=None,
) -> dict:
    """Every estimate on one label image, as a JSON-ready dict.

    Args:
        labels: (H, W) integer or boolean class ids.
        class_names: names indexed by class id.
        classes: None (boundary between any two classes) or a pair of class names/ids.
        box: box side ε (px) of the basin entropies.
        method: which estimate gives `dimension`/`stderr`/`fit_range`: "boxcount" (ours, see
            `boxcount`), "sd" (Sohl-Dickstein's median of local slopes) or "uncertainty"
            (D = 2 − α; needs `config`, re-runs the engine).
        config: the render's Config (only for method="uncertainty").
        box_options, uncertainty_options: keyword arguments for `box_count` / `uncertainty_exponent`
            (box counting runs on the cracks, `mode="cracks"`, unless box_options gives a mode).
        uncertainty_fn: the engine re-run of method="uncertainty" (`fractalgd.pipeline.uncertainty_exponent`;
            this module runs no engine).

    Returns:
        dict with `dimension`, `stderr`, `fit_range`, `method`, `curve` (the curve of the chosen
        method), `boxcount` (our fit in full), `sd_dimension`, `sd_local_slopes`, `methods` (each
        method's dimension, stderr and scale range, `methods.summary`), `basin_entropy`,
        `boundary_basin_entropy`, `entropy` (details), `wada` (three classes or more), `classes`,
        `ignored_classes` (classes that sat out the boundary, `counted_boundary`),
        `boundary_pixels`, `resolution`, `warnings` (the box fit's, and one per pair of methods
        that disagree beyond their errors, `methods.disagreements`). Degenerate input raises
        AnalysisError.
    """
    if method not in METHODS:
        raise AnalysisError(f"method: must be one of {', '.join(METHODS)}, got '{method}'")
    if method == "uncertainty" and config is None:
        raise AnalysisError("method 'uncertainty' re-runs the engine: it needs the render's recipe (a render directory)")
    labels = as_labels(labels)
    class_names = [str(n) for n in class_names]
    pair = resolve_classes(classes, class_names)
    present = [int(c) for c in np.unique(labels)]
    if len(present) < 2:
        raise AnalysisError(f"no boundary: the image holds one class ('{_name(class_names, present[0])}')")
    if pair is not None:
        for cls in pair:
            if cls not in present:
                raise AnalysisError(f"classes: '{_name(class_names, cls)}' does not occur in the image")
    mask, ignore = counted_boundary(labels, pair)
    fraction = float(mask.mean())
    if fraction > MAX_BOUNDARY_FRACTION:
        raise AnalysisError(
            f"{fraction:.0%} of the pixels are boundary pixels: the boundary is not resolved at this resolution "
            "(noise or riddled basins); zoom in or render more pixels"
        )
    fit = _box_fit(labels, mask, pair, ignore, box_options)
    warnings = list(fit.warnings)
    result = {
        "method": method,
        "classes": [_name(class_names, c) for c in pair] if pair else "all",
        "ignored_classes": [_name(class_names, c) for c in ignore],
        "resolution": [int(labels.shape[1]), int(labels.shape[0])],
        "boundary_pixels": int(mask.sum()),
        "boxcount": fit.to_dict(),
    }
    methods = {"boxcount": summary(fit.dimension, fit.stderr, fit.fit_range, graph=fit.graph)}
    try:
        sd = sd_box_count(labels, pair)
        result["sd_dimension"] = sd.dimension
        result["sd_local_slopes"] = [float(v) for v in sd.local_slopes]
        result["sd_sizes"] = [int(v) for v in sd.sizes]
        methods["sd"] = summary(sd.dimension, sd.stderr, sd.fit_range)
    except AnalysisError as error:
        sd = None
        result["sd_dimension"] = None
        warnings.append(f"sd: {error}")
    entropy = basin_entropy(labels, box)
    result["basin_entropy"] = entropy["basin_entropy"]
    result["boundary_basin_entropy"] = entropy["boundary_basin_entropy"]
    result["entropy"] = entropy
    total = labels.size
    basins = [c for c in present if np.count_nonzero(labels == c) >= MIN_WADA_FRACTION * total]
    if len(basins) >= 3:
        wada = wada_merge(labels, basins, r=wada_r)
        wada["classes"] = [_name(class_names, c) for c in wada["classes"]]
        wada["pairs"] = {
            "|".join(_name(class_names, int(c)) for c in key.split("|")): v for key, v in wada["pairs"].items()
        }
        result["wada"] = wada
    if method == "boxcount":
        chosen = {"dimension": fit.dimension, "stderr": fit.stderr, "fit_range": list(fit.fit_range)}
        curve = {"sizes": fit.to_dict()["sizes"], "counts": fit.to_dict()["counts"], "local_slopes": fit.to_dict()["local_slopes"]}
    elif method == "sd":
        if sd is None:
            raise AnalysisError(warnings[-1])
        sd_dict = sd.to_dict()
        chosen = {"dimension": sd.dimension, "stderr": sd.stderr, "fit_range": list(sd.fit_range)}
        curve = {key: sd_dict[key] for key in ("sizes", "counts", "local_slopes")}
    else:
        if uncertainty_fn is None:
            raise AnalysisError("method 'uncertainty' re-runs the engine: call fractalgd.pipeline.analyze")
        unc = uncertainty_fn(config, classes=pair, progress=progress, **(uncertainty_options or {}))
        chosen = {"dimension": unc["dimension"], "stderr": unc["stderr"], "fit_range": unc["fit_range"]}
        curve = {key: unc[key] for key in ("epsilons", "fractions", "uncertain")}
        result["alpha"] = unc["alpha"]
        result["n_points"] = unc["n_points"]
        methods["uncertainty"] = uncertainty_summary(unc, labels.shape)
    warnings += disagreements(methods)
    result = {**chosen, **result, "methods": methods, "curve": curve, "warnings": warnings}
    _check_finite(result)
    return result
