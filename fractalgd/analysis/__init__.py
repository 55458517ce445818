"""Fractal analysis of label images: boundaries, box counting, uncertainty exponent, basin entropy, Wada.

Everything here but `report.fit_plot`/`report.write_report` is a pure function of plain integer or
boolean arrays (the uncertainty exponent re-runs the engine from a config, and touches no files).
"""

from fractalgd.config import ConfigError


class AnalysisError(ConfigError):
    """An image the analysis cannot give a trustworthy number for; the message says why."""


__all__ = ["AnalysisError"]
