"""Layer 4: a recipe's pixels through the engine — `render` (arrays and metadata, no files) and its helpers."""

from fractalgd.pipeline.analysis import analyze, analyze_render
from fractalgd.pipeline.pixels import device_summary, engine_options, run_pixels, run_range
from fractalgd.pipeline.render import RenderResult, render, render_meta
from fractalgd.pipeline.uncertainty import uncertainty_exponent

__all__ = [
    "RenderResult",
    "analyze",
    "analyze_render",
    "uncertainty_exponent",
    "device_summary", "engine_options", "render", "render_meta", "run_pixels", "run_range"]
