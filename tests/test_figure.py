"""Paper figures: the image at full resolution inside axes, honest legends, physical ticks, formats."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.colour import FIRST_STEP, MIN_BRIGHTNESS, class_colors, colorize, legend_colors, shade_values
from fractalgd.config import load_config
from fractalgd.output import save_render
from fractalgd.output.figure import _image_and_key, _layout, draw_figure
from fractalgd.output.histogram import step_histogram
from fractalgd.output.names import axis_label, key_label, log_ticks, title_of
from fractalgd.output.render_files import RenderFiles, load_render
from fractalgd.pipeline import render

runner = CliRunner()
SMALL = ["plane.resolution=[48,40]", "gd.steps=200"]


@pytest.fixture(scope="module")
def fig3(tmp_path_factory):
    """A small P1 Fig-3 render directory, written by the CLI with an override."""
    out = tmp_path_factory.mktemp("fig") / "r"
    args = ["render", "configs/p1-fig3.toml", "--out", str(out), "--set", "problem.lam=0.1"]
    args += [a for s in SMALL for a in ("--set", s)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


# --- shading and legends ------------------------------------------------------------------------


def test_shading_runs_from_full_colour_at_the_first_check_to_the_floor_at_T():
    total = 1000
    steps = np.array([[1, FIRST_STEP, 64, 256, total, 10 * total]])
    labels = np.zeros_like(steps)
    b = shade_values(labels, steps, total, equalize=False)[0]
    assert b[0] == b[1] == 1.0  # nothing is decided before the first check: full colour
    assert b[4] == b[5] == pytest.approx(MIN_BRIGHTNESS)  # the step budget (undecided pixels)
    assert np.all(np.diff(b[1:5]) < 0)  # slower is darker
    # log scale: 64 and 256 sit at log(2)/log(T/C) and log(8)/log(T/C) of the way down
    span = math.log(total / FIRST_STEP)
    assert b[2] == pytest.approx(1 - (1 - MIN_BRIGHTNESS) * math.log(2) / span)
    assert b[3] == pytest.approx(1 - (1 - MIN_BRIGHTNESS) * math.log(8) / span)
    assert np.all(shade_values(labels, steps, 16, False, first_step=32) == 1.0)  # T ≤ C: nothing to shade


def test_legend_swatches_are_colours_that_are_drawn():
    rng = np.random.default_rng(0)
    names = ["nearest", "farthest", "diverged"]
    labels = rng.integers(0, 2, (60, 70))  # "diverged" absent
    steps = rng.choice([32, 64, 96, 128, 500, 1000], size=labels.shape)
    for shade, equalize in ((True, False), (True, True), (False, False)):
        rgb = colorize(labels, steps, names, 1000, shade, equalize)
        swatches = np.round(legend_colors(labels, steps, names, 1000, shade, equalize) * 255).astype(np.uint8)
        for cls in (0, 1):
            drawn = {tuple(c) for c in rgb[labels == cls]}
            assert tuple(swatches[cls]) in drawn
            # the median pixel by brightness: as many pixels of the class are brighter as darker
            brightness = rgb[labels == cls].sum(axis=1)
            level = int(swatches[cls].astype(int).sum())
            assert np.mean(brightness < level) <= 0.5 <= np.mean(brightness <= level)
        np.testing.assert_allclose(swatches[2] / 255, class_colors(names)[2], atol=1 / 255)  # absent: its hue


# --- names, ticks, titles ---------------------------------------------------------------------


def test_log_axes_are_labelled_as_powers_of_ten():
    positions, labels = log_ticks(-3.0, 0.0)
    assert positions == [-3.0, -2.0, -1.0, 0.0] and labels == ["$10^{-3}$", "$10^{-2}$", "$10^{-1}$", "$10^{0}$"]
    positions, labels = log_ticks(-8.0, 6.0)
    assert len(positions) <= 7 and all(p == int(p) for p in positions)
    for lo, hi in ((-2.0, -0.5), (-1.2, -0.5), (0.3, 0.31)):  # narrower: round values at their log positions
        positions, labels = log_ticks(lo, hi)
        assert len(positions) >= 2 and all(lo - 1e-9 <= p <= hi + 1e-9 for p in positions)
        for p, text in zip(positions, labels, strict=True):
            assert float(text) == pytest.approx(10**p, rel=1e-3)


def test_axis_names_and_titles():
    assert axis_label("eta", "log10") == "η (step size, log scale)"
    assert axis_label("lam") == "λ (ridge)" and axis_label("u0").startswith("u₀")
    assert axis_label("lr0") == "η₀ (step size, layer 0)" and axis_label("w[1]") == "w[1]"
    assert key_label("problem.lam") == "λ (ridge)" and key_label("gd.eta", log=True) == "η (step size, log scale)"
    overrides = {"gd.eta": 0.8, "problem.lam": 0.0, "plane.resolution": [64, 64], "render.axes": True}
    assert title_of("default", overrides) == "default (η = 0.8, λ = 0)"  # view and colours are not in it
    assert title_of("default", {}) == "default"


def test_meta_records_the_overrides(fig3):
    meta = json.loads((fig3 / "meta.json").read_text())
    assert meta["overrides"] == {"problem.lam": 0.1, "plane.resolution": [48, 40], "gd.steps": 200}
    assert title_of(meta["name"], meta["overrides"]) == "p1-fig3 (λ = 0.1, T = 200)"


# --- the figure ------------------------------------------------------------------------------


def _image_region(fig, png: np.ndarray) -> np.ndarray:
    """The pixels of the figure's image axes in the written PNG."""
    box = fig.axes[0].get_window_extent(fig.canvas.get_renderer())
    height = png.shape[0]
    return png[round(height - box.y1) : round(height - box.y0), round(box.x0) : round(box.x1)]


@pytest.mark.parametrize("dpi", [72, 150, 300])
def test_png_figure_holds_every_pixel_of_the_image(fig3, tmp_path, dpi):
    files = load_render(fig3)
    path = draw_figure(files, tmp_path / "f.png", dpi=dpi)
    png = np.asarray(Image.open(path).convert("RGB"))
    rgb, key = _image_and_key(files, 1, None, None)
    scale = math.ceil(480 / 48)  # MIN_IMAGE_PX over the longer side
    fig = _layout(rgb, scale, files.plane, key, "t", dpi, "png")
    region = _image_region(fig, png)
    expected = np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8))
    assert region.shape == expected.shape and png.shape[1] >= 48
    # inside the axes frame (its 0.8 pt line covers the outermost pixels) the image is exact, pixel for pixel
    m = math.ceil(0.8 / 72 * dpi) + 1
    np.testing.assert_array_equal(region[m:-m, m:-m], expected[m:-m, m:-m])
    assert Image.open(path).text["Software"].startswith("fractalgd")


def test_figure_formats_and_overwrite_rules(fig3, tmp_path):
    for suffix in ("png", "pdf", "svg"):
        out = tmp_path / f"f.{suffix}"
        result = runner.invoke(app, ["figure", str(fig3), "--out", str(out), "--dpi", "100", "--title", "Fig. 3"])
        assert result.exit_code == 0, result.output
        again = runner.invoke(app, ["figure", str(fig3), "--out", str(out)])  # our own file: replaced
        assert again.exit_code == 0, again.output
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
    root = ET.fromstring((tmp_path / "f.svg").read_bytes())
    assert root.tag.endswith("svg")
    assert Image.open(tmp_path / "f.png").size[0] >= 48
    foreign = tmp_path / "mine.pdf"
    foreign.write_bytes(b"%PDF-1.4 not fractalgd's")
    refused = runner.invoke(app, ["figure", str(fig3), "--out", str(foreign)])
    assert refused.exit_code == 2 and "--force" in refused.output and foreign.read_bytes().endswith(b"fractalgd's")
    assert runner.invoke(app, ["figure", str(fig3), "--out", str(foreign), "--force"]).exit_code == 0
    bad = runner.invoke(app, ["figure", str(fig3), "--out", str(tmp_path / "f.jpg")])
    assert bad.exit_code == 2 and ".pdf" in bad.output
    missing = runner.invoke(app, ["figure", str(tmp_path), "--out", str(tmp_path / "g.png")])
    assert missing.exit_code == 2 and "not a render directory" in missing.output


def test_figure_of_a_log_axis_render_and_a_score_render(tmp_path):
    cfg = load_config(
        "configs/p1-fig3.toml",
        [*SMALL, "plane.x={param='eta', min=-2.0, max=0.5, scale='log10'}", "plane.y={param='lam', min=0.0, max=0.4}"],
    )
    files = RenderFiles.from_result(render(cfg))
    rgb, key = _image_and_key(files, 1, None, None)
    fig = _layout(rgb, 10, files.plane, key, "t", 100, "png")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "η (step size, log scale)" and ax.get_ylabel() == "λ (ridge)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["$10^{-2}$", "$10^{-1}$", "$10^{0}$"]
    # a score: a colour bar instead of a legend, ticks ordered like the ranks
    score = np.linspace(-1.0, 2.0, 48 * 40).reshape(40, 48)
    files = RenderFiles(files.labels, files.steps, files.meta, score)
    rgb, key = _image_and_key(files, 1, "magma", None)
    assert key[0] == "colorbar" and rgb.shape == (40, 48, 3)
    draw_figure(files, tmp_path / "score.png", cmap="viridis")
    with pytest.raises(Exception, match="cmap"):
        draw_figure(files, tmp_path / "bad.png", cmap="no-such-map")


def test_render_axes_keeps_the_full_resolution_image(tmp_path):
    cfg = load_config("configs/p1-fig3.toml", [*SMALL, "render.axes=true", "render.histogram=true"])
    result = render(cfg)
    out = save_render(result, tmp_path / "r")
    image = Image.open(out / "image.png")
    assert image.size == (48, 40)
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), result.rgb())
    assert Image.open(out / "figure.png").size[0] > 48 and (out / "histogram.png").is_file()


def test_step_histogram_counts_every_pixel_once_per_class():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, (50, 40))
    steps = rng.choice([32, 64, 96, 128, 256, 1000], size=labels.shape)
    edges, counts = step_histogram(labels, steps, 4)
    assert np.all(np.diff(edges) > 0) and counts.shape == (4, len(edges) - 1)
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(labels.ravel(), minlength=4))
    for value in np.unique(steps):  # few distinct steps: one bin each
        b = np.searchsorted(edges, value) - 1
        np.testing.assert_array_equal(counts[:, b], np.bincount(labels[steps == value], minlength=4))
    many = rng.integers(1, 10_000, labels.shape)
    edges, counts = step_histogram(labels, many, 3)
    assert counts.sum() == labels.size and len(edges) == 41


# --- the library -------------------------------------------------------------------------------


def test_render_result_coordinates_and_inline_png():
    cfg = load_config("configs/p1-fig3.toml", [*SMALL, "plane.x={param='u0', min=-1.0, max=3.0}"])
    result = render(cfg)
    assert result.x.shape == (48,) and result.y.shape == (40,)
    assert np.all(np.diff(result.x) > 0) and np.all(np.diff(result.y) < 0)  # rows run top to bottom
    coords = cfg.plane.coordinates(0, cfg.plane.size)
    np.testing.assert_array_equal(coords["u0"].reshape(40, 48)[0], result.x)
    np.testing.assert_array_equal(coords["v0"].reshape(40, 48)[:, 0], result.y)
    assert result.x[0] == pytest.approx(-1.0 + 4.0 / 96) and result.y[0] == pytest.approx(4.0 - 8.0 / 80)
    data = result._repr_png_()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), result.rgb())


def test_to_xarray():
    pytest.importorskip("xarray")
    result = render(load_config("configs/p1-fig3.toml", SMALL))
    ds = result.to_xarray()
    assert ds["labels"].dims == ("y", "x") and ds.attrs["x_param"] == "u0"
    np.testing.assert_array_equal(ds["x"].values, result.x)
    np.testing.assert_array_equal(ds["labels"].sel(y=result.y[3], x=result.x[5]).item(), result.labels[3, 5])


def test_public_names_resolve_and_have_docstrings():
    import fractalgd as fg

    for name in fg.__all__:
        value = getattr(fg, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), name
    for name in ("colorize", "class_colors", "analyze", "box_count", "boundary_mask", "basin_entropy"):
        assert name in fg.__all__
