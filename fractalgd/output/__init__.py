"""Layer 6: every file fractalgd writes — atomically, and never over what it did not write."""

from fractalgd.output.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from fractalgd.output.png import RECIPE_CHUNK, read_recipe, write_png
from fractalgd.output.render_dir import check_target, finished_render, free_output_dir, read_meta, save_render

__all__ = [
    "RECIPE_CHUNK",
    "check_target",
    "finished_render",
    "free_output_dir",
    "read_meta",
    "read_recipe",
    "save_render",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_png",
    "write_text_atomic",
]
