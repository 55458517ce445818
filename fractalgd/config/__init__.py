"""Layer 2: recipes (TOML) → validated, frozen `Config`; overrides, views and the recipe hash."""

from fractalgd.config.recipe import (
    DEFAULTS,
    DTYPES,
    AnalysisConfig,
    Config,
    EngineConfig,
    GDConfig,
    RenderConfig,
    check_name,
    config_from_dict,
    default_recipe_path,
    load_config,
)
from fractalgd.config.tables import merge_table
from fractalgd.config.toml import apply_overrides, dump_toml, parse_override, read_toml, with_values
from fractalgd.config.zoom import ZoomSpec, parse_zoom
from fractalgd.core.errors import ConfigError

__all__ = [
    "DEFAULTS",
    "DTYPES",
    "AnalysisConfig",
    "Config",
    "ConfigError",
    "EngineConfig",
    "GDConfig",
    "RenderConfig",
    "ZoomSpec",
    "apply_overrides",
    "check_name",
    "config_from_dict",
    "default_recipe_path",
    "dump_toml",
    "load_config",
    "merge_table",
    "parse_override",
    "parse_zoom",
    "read_toml",
    "with_values",
]
