"""Fractal analysis of label images: boundaries, box counting, uncertainty exponent, basin entropy, Wada.

Everything here is a pure function of plain integer or boolean arrays: no engine, no files (the
uncertainty exponent, which re-runs the engine, is `fractalgd.pipeline.uncertainty`; the report's
files are `fractalgd.output.analysis_files`).
"""

from fractalgd.core.errors import ConfigError


class AnalysisError(ConfigError):
    """An image the analysis cannot give a trustworthy number for; the message says why."""


__all__ = ["AnalysisError"]
