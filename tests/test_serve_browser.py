"""The explorer page in a real headless browser (Debian's Chromium driven by Playwright).

Skips when /usr/bin/chromium or the playwright package is missing (.ci/run installs both).
Never runs `playwright install`: the browser is the system's.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.explorer.server import make_server
from fractalgd.explorer.session import view_config
from fractalgd.pipeline import render
from tests.helpers import p1_config

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
RES = 96
SIDE = 640  # the canvas' longer side (explorer.js)

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def server():
    srv = make_server(p1_config(plane={"resolution": [RES, RES]}, gd={"steps": 300}), port=0, resolution=RES)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: Playwright evaluates the tests' string predicates, which the page's CSP (no eval) forbids.
    context = browser.new_context(viewport={"width": 1100, "height": 760}, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    wait_rendered(page, 0)
    yield page
    context.close()
    assert not errors, errors


def wait_rendered(page, after_seq: int) -> dict:
    """Wait for the full-resolution image of a request newer than `after_seq`; return the view."""
    page.wait_for_function(
        f"explorer.seq > {after_seq} && explorer.shown && explorer.shown.full"
        " && explorer.shown.seq === explorer.seq && !explorer.busy",
        timeout=60_000,
    )
    return page.evaluate("explorer.view")


def seq(page) -> int:
    return page.evaluate("explorer.seq")


def canvas_origin(page) -> tuple[float, float]:
    box = page.locator("#canvas").bounding_box()
    assert (box["width"], box["height"]) == (SIDE, SIDE)
    return box["x"], box["y"]


def to_axis(view, px, py):
    """Canvas pixel → axis units, as the page maps it (x left → right, y top → bottom)."""
    x = view["x"]["center"] - view["x"]["width"] / 2 + px / SIDE * view["x"]["width"]
    y = view["y"]["center"] + view["y"]["width"] / 2 - py / SIDE * view["y"]["width"]
    return x, y


def drag(page, start, stop, shift=False):
    x0, y0 = canvas_origin(page)
    page.mouse.move(x0 + start[0], y0 + start[1])
    if shift:
        page.keyboard.down("Shift")
    page.mouse.down()
    page.mouse.move(x0 + stop[0], y0 + stop[1], steps=5)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def test_load_zoom_by_drag_pan_wheel_and_back(page, server):
    view0 = page.evaluate("explorer.view")
    assert view0 == {"x": {"center": 0.0, "width": 8.0}, "y": {"center": 0.0, "width": 8.0}}
    assert page.locator("#legend div").count() >= 2
    image0 = page.evaluate("canvas.toDataURL()")

    # Drag a box (160, 160)–(320, 320): the view becomes the box, u0 ∈ [−2, 0], v0 ∈ [0, 2].
    before = seq(page)
    drag(page, (160, 160), (320, 320))
    view1 = wait_rendered(page, before)
    assert view1["x"]["center"] == pytest.approx(-1.0, abs=1e-12) and view1["x"]["width"] == pytest.approx(2.0)
    assert view1["y"]["center"] == pytest.approx(1.0, abs=1e-12) and view1["y"]["width"] == pytest.approx(2.0)
    bounds = page.evaluate("explorer.shown.bounds")
    assert (bounds["x"]["min"], bounds["x"]["max"]) == pytest.approx((-2.0, 0.0), abs=1e-12)
    assert (bounds["y"]["min"], bounds["y"]["max"]) == pytest.approx((0.0, 2.0), abs=1e-12)
    assert page.evaluate("canvas.toDataURL()") != image0
    # The image shown is the engine's render of that view.
    served, _ = server.explorer.labels(page.evaluate("explorer.shown.renderId"))
    config = view_config(server.explorer.base, view1, [RES, RES])
    np.testing.assert_array_equal(served, render(config).labels)

    # Shift-drag pans: the point under the cursor follows it.
    before = seq(page)
    drag(page, (300, 300), (364, 268), shift=True)
    view2 = wait_rendered(page, before)
    assert view2["x"]["width"] == view1["x"]["width"]
    assert view2["x"]["center"] == pytest.approx(view1["x"]["center"] - 64 / SIDE * 2.0, abs=1e-12)
    assert view2["y"]["center"] == pytest.approx(view1["y"]["center"] - 32 / SIDE * 2.0, abs=1e-12)

    # The wheel zooms about the cursor: the point under it stays put, both widths scale alike.
    x0, y0 = canvas_origin(page)
    before = seq(page)
    page.mouse.move(x0 + 200, y0 + 450)
    page.mouse.wheel(0, -300)
    view3 = wait_rendered(page, before)
    f = view3["x"]["width"] / view2["x"]["width"]
    assert f < 1 and view3["y"]["width"] / view2["y"]["width"] == pytest.approx(f, rel=1e-12)
    assert to_axis(view3, 200, 450) == pytest.approx(to_axis(view2, 200, 450), abs=1e-12)

    # Back walks the history exactly.
    for expected in (view2, view1, view0):
        before = seq(page)
        page.click("#back")
        assert wait_rendered(page, before) == expected
    assert page.locator("#back").is_disabled()


def test_export_recipe_renders_to_the_same_labels(page, server, tmp_path, monkeypatch):
    before = seq(page)
    drag(page, (400, 100), (520, 200))
    view = wait_rendered(page, before)
    with page.expect_download() as download:
        page.click("#export")
    recipe = tmp_path / download.value.suggested_filename
    download.value.save_as(recipe)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["render", recipe.name, "--out", "out"])
    assert result.exit_code == 0, result.output
    served, _ = server.explorer.labels(page.evaluate("explorer.shown.renderId"))
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "labels.npy"), served)
    assert page.evaluate("explorer.view") == view


def test_keyframes_download_as_a_zoom_recipe(page, tmp_path):
    from fractalgd.studies.zoom import load_zoom

    page.click("#keyframe")
    before = seq(page)
    drag(page, (100, 100), (260, 260))
    wait_rendered(page, before)
    before = seq(page)
    drag(page, (300, 300), (380, 380))
    last = wait_rendered(page, before)
    page.click("#keyframe")
    with page.expect_download() as download:
        page.click("#zoom")
    path = tmp_path / "zoom.toml"
    download.value.save_as(path)
    spec, base = load_zoom(path)
    assert spec.center == (last["x"]["center"], last["y"]["center"])
    assert spec.start_width == 8.0 and (base.plane.x.lo, base.plane.x.hi) == (-4.0, 4.0)
    # 8 → 8·(1/4)·(1/8) = 0.25: five doublings, six keyframes (w_k = 8·2^−k).
    assert last["x"]["width"] == pytest.approx(0.25)
    assert spec.keyframes == 1 + math.ceil(math.log2(8.0 / last["x"]["width"]) - 1e-9)


def test_bad_override_shows_the_error_and_the_page_recovers(page):
    page.fill("#overrides", "gd.nope=1")
    page.press("#overrides", "Enter")
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=30_000)
    assert "gd.nope" in page.inner_text("#status")
    before = seq(page)
    page.fill("#overrides", "gd.eta=0.9")
    page.press("#overrides", "Enter")
    wait_rendered(page, before)
    assert "error" not in page.get_attribute("#status", "class")
