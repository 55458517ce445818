"""Analysis of a render that may re-run the engine: the [analysis] table, and `analyze` with every method."""

from __future__ import annotations

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.report import analyze as analyze_labels
from fractalgd.pipeline.uncertainty import uncertainty_exponent


def analyze(labels, class_names, **options) -> dict:
    """`fractalgd.analysis.report.analyze`, with method="uncertainty" re-running the engine."""
    return analyze_labels(labels, class_names, uncertainty_fn=uncertainty_exponent, **options)


def analyze_render(labels, config, class_names=None) -> dict:
    """The [analysis] table of a render's recipe, run on its labels (named `class_names`, default the
    problem's): the result, or {"error": why}."""
    spec = config.analysis
    names = config.problem.class_names if class_names is None else class_names
    try:
        return analyze(
            labels, names, classes=list(spec.classes) or None, box=spec.box,
            method=spec.method, config=config,
        )  # fmt: skip
    except AnalysisError as error:  # a render is still worth keeping when its boundary cannot be measured
        return {"error": str(error), "method": spec.method}
