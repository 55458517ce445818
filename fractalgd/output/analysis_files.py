"""The files of `fractalgd analyze`: reading its input (a render directory or a .npy array) and writing
analysis-METHOD.json with its fit plot (analysis-METHOD.png), so each method keeps its own report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fractalgd.analysis import AnalysisError
from fractalgd.analysis.boundary import as_labels
from fractalgd.config import ConfigError, config_from_dict, load_config
from fractalgd.output.atomic import write_json_atomic
from fractalgd.output.files import check_file_target
from fractalgd.output.fitplot import draw


def fit_plot(result: dict, path) -> Path:
    """PNG of the D fit: log N vs log s with the fit, the local slopes with the fit range and each method's D.

    See `fitplot` for the panels (a third one, f(ε), for method="uncertainty").
    """
    path = Path(path)
    draw(result, path)
    return path


MAX_CLASS_ID = 65535


def report_name(method: str) -> str:
    """analysis-METHOD.json: one report per method, next to the input."""
    return f"analysis-{method}.json"


def load_input(
    path, need_config: bool = False, method: str = "boxcount"
) -> tuple[np.ndarray, list[str], object, Path]:
    """(labels, class names, config or None, default report path) of a render directory or a .npy file.

    The default report is `report_name(method)` inside a render directory, or next to a .npy file.

    The recipe is only read with `need_config` (method="uncertainty" re-runs the engine): box
    counting never builds a problem, so it never imports a custom loss.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "labels.npy").is_file():
            raise AnalysisError(f"'{path}' is not a render directory (no labels.npy)")
        labels = _load_npy(path / "labels.npy")
        names, config = [str(i) for i in range(int(labels.max()) + 1)], None
        meta = _load_meta(path / "meta.json")
        if meta is not None:
            given = meta.get("class_names", {})
            given = given if isinstance(given, dict) else {}
            names = [str(given.get(str(i), i)) for i in range(max(len(given), len(names)))]
        if need_config:
            config = _load_recipe(path, meta)
        return labels, names, config, path / report_name(method)
    if path.suffix == ".npy" and path.is_file():
        labels = _load_npy(path)
        return labels, [str(i) for i in range(int(labels.max()) + 1)], None, path.with_name(report_name(method))
    raise AnalysisError(f"'{path}': expected a render directory or a 2-D .npy label array")


def _load_meta(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise AnalysisError(f"'{path}' is not readable JSON: {error}") from None
    if not isinstance(meta, dict):
        raise AnalysisError(f"'{path}': expected a JSON object")
    return meta


def _load_recipe(path: Path, meta: dict | None):
    try:
        if (path / "recipe.toml").is_file():
            return load_config(path / "recipe.toml")
        if meta is not None and isinstance(meta.get("config"), dict):
            return config_from_dict(meta["config"])
    except ConfigError as error:
        raise AnalysisError(f"'{path}': its recipe cannot be used: {error}") from None
    raise AnalysisError(f"'{path}': no recipe (recipe.toml or meta.json) to re-run the engine with")


def _load_npy(path: Path) -> np.ndarray:
    try:
        labels = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise AnalysisError(f"'{path}' is not a readable .npy array: {error}") from None
    labels = as_labels(labels)
    if labels.size == 0:
        raise AnalysisError(f"'{path}': the label array is empty")
    if labels.min() < 0:
        raise AnalysisError(f"'{path}': class ids must be >= 0, got {int(labels.min())}")
    if labels.max() > MAX_CLASS_ID:
        raise AnalysisError(f"'{path}': class ids must be at most {MAX_CLASS_ID}, got {int(labels.max())}")
    return labels


def check_report_target(json_path, input_path, force: bool = False) -> None:
    """Refuse (ConfigError) to replace a file fractalgd did not write, or fractalgd's report of
    another input, unless `force` (a report of this same input is replaced)."""
    json_path = Path(json_path)
    for target in (json_path, json_path.with_suffix(".png")):
        check_file_target(target, force, "--json")
    if force or not json_path.is_file():
        return
    try:
        recorded = json.loads(json_path.read_text()).get("input")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return  # check_file_target found it to be ours; an old report without an input field
    if recorded is not None and recorded != input_key(input_path):
        raise ConfigError(f"--json {json_path}: holds the analysis of {recorded}; pass --force or choose another --json")


def input_key(path) -> str:
    """How a report names its input: the resolved path of the render directory or .npy file."""
    return str(Path(path).resolve())


def write_report(result: dict, json_path, input_path=None) -> tuple[Path, Path]:
    """Write the report JSON (atomically, naming its input) and the fit plot next to it (same name, .png)."""
    json_path = Path(json_path)
    if input_path is not None:
        result = {**result, "input": input_key(input_path)}
    write_json_atomic(json_path, result)
    return json_path, fit_plot(result, json_path.with_suffix(".png"))


def load_feature(path, name: str) -> np.ndarray:
    """The feature `name` of a render directory's features.npz (float64)."""
    file = Path(path) / "features.npz"
    if not file.is_file():
        raise AnalysisError(f"'{path}' has no features.npz (rendered with [render] features = false, or out of core)")
    try:
        with np.load(file, allow_pickle=False) as data:
            if name not in data.files:
                raise AnalysisError(f"--feature: '{name}' is not in {file} (known: {', '.join(data.files)})")
            return np.asarray(data[name], dtype=np.float64)
    except (ValueError, OSError, EOFError) as error:
        raise AnalysisError(f"'{file}' is not a readable .npz archive: {error}") from None


def write_feature_report(summary: dict, values: np.ndarray, json_path) -> tuple[Path, Path]:
    """The feature's statistics as JSON and its image (viridis, NaN grey) as a PNG next to it."""
    from fractalgd.colour import colorize_feature
    from fractalgd.output.atomic import write_bytes_atomic
    from fractalgd.output.png import png_bytes

    json_path = Path(json_path)
    png_path = json_path.with_suffix(".png")
    write_json_atomic(json_path, summary)
    write_bytes_atomic(png_path, png_bytes(colorize_feature(values)))
    return json_path, png_path
