"""The explorer page in a real headless browser (Debian's Chromium driven by Playwright).

Skips when /usr/bin/chromium or the playwright package is missing (.ci/run installs both).
Never runs `playwright install`: the browser is the system's.
"""

from __future__ import annotations

import math
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.explorer.server import make_server
from fractalgd.explorer.session import SERVE_TILE, view_config
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


# --- issue 19: axes, Save PNG, progress ----------------------------------------------------------


def test_axes_show_ticks_names_and_bounds_of_the_view(page):
    ticks = page.evaluate("explorer.axisTicks")
    assert [t["label"] for t in ticks["x"]["ticks"]] == ["−4", "−2", "0", "2", "4"] and ticks["x"]["note"] == ""
    assert [t["at"] for t in ticks["y"]["ticks"]] == [-4, -2, 0, 2, 4]
    before = seq(page)
    drag(page, (160, 160), (320, 320))  # u0 ∈ [−2, 0], v0 ∈ [0, 2]
    wait_rendered(page, before)
    ticks = page.evaluate("explorer.axisTicks")
    assert [t["label"] for t in ticks["x"]["ticks"]] == ["−2.0", "−1.5", "−1.0", "−0.5", "0"]
    assert all(0 <= t["at"] <= 2 for t in ticks["y"]["ticks"])
    # The labels' rules, in the page itself: factors for tiny values, offsets for deep zooms, and
    # powers of ten on log10 axes (the view in decades).
    assert page.evaluate("linearTicks(1e-7, 3e-7, 6)")["note"] == "×10⁻⁷"
    deep = page.evaluate("linearTicks(1.2345678901234, 1.2345678901434, 6)")
    assert deep["note"] == {"ref": "1.234567890135", "unit": "10⁻¹²"}
    assert [t["label"] for t in deep["ticks"]] == ["−10", "−5", "0", "+5"]
    assert [t["label"] for t in page.evaluate("logTicks(-20, 10, 6)")["ticks"]][:3] == ["10⁻²⁰", "10⁻¹⁵", "10⁻¹⁰"]
    decades = page.evaluate("logTicks(-2, 0.3, 6)")["ticks"]
    assert [t["label"] for t in decades] == ["10⁻²", "2×10⁻²", "5×10⁻²", "10⁻¹", "2×10⁻¹", "5×10⁻¹", "10⁰"]
    assert decades[1]["at"] == pytest.approx(math.log10(0.02))
    # The axes canvas frames the image: its pixels around the image are drawn (ticks, labels).
    drawn = page.evaluate(
        """() => { const c = document.getElementById('axes'); const g = c.getContext('2d');
                   const d = g.getImageData(0, c.height - 60, c.width, 60).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"""
    )
    assert drawn > 500


def test_save_png_downloads_the_image_with_its_recipe(page, server, tmp_path):
    from PIL import Image

    from fractalgd.config import config_from_dict
    from fractalgd.output import RECIPE_CHUNK

    before = seq(page)
    drag(page, (100, 300), (300, 500))
    view = wait_rendered(page, before)
    assert page.locator("#save-png").is_enabled()
    with page.expect_download() as download:
        page.click("#save-png")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == "p1-fig3-view.png"
    image = Image.open(path)
    image.load()
    assert image.size == (RES, RES)
    config = config_from_dict(tomllib.loads(image.text[RECIPE_CHUNK]))
    assert config.plane.x.center == pytest.approx(view["x"]["center"]) and config.plane.x.width == pytest.approx(view["x"]["width"])
    served, _ = server.explorer.labels(page.evaluate("explorer.shown.renderId"))
    np.testing.assert_array_equal(render(config).labels, served)


def test_slow_renders_show_progress_and_an_eta(page, server):
    explorer = server.explorer
    texts = []
    explorer.tile, explorer.on_tile = 1024, lambda *a: time.sleep(0.25)  # 9 tiles of 0.25 s at 96²
    try:
        with explorer._engine:  # first the engine is busy: the page says it waits
            before = seq(page)
            page.click("#reset")
            page.wait_for_function("document.getElementById('progress-text').textContent.includes('waiting')",
                                   timeout=20_000)  # fmt: skip
            texts.append(page.inner_text("#progress-text"))
        deadline = time.monotonic() + 60
        while not page.evaluate("explorer.shown && explorer.shown.full && explorer.shown.seq === explorer.seq") and time.monotonic() < deadline:
            if page.is_visible("#progress"):
                texts.append(page.inner_text("#progress-text"))
            time.sleep(0.05)
        wait_rendered(page, before)
    finally:
        explorer.tile, explorer.on_tile = SERVE_TILE, None
    assert any("waiting for the engine" in t for t in texts)
    assert any(f"{RES}×{RES}: " in t and "%" in t and "left" in t for t in texts), texts
    assert not page.is_visible("#progress") and "error" not in page.get_attribute("#status", "class")


def test_the_page_works_under_its_content_security_policy(browser, server):
    # No bypass here: the page's own script, styles, images and downloads must pass its CSP.
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(str(error)))
    response = page.goto(server.url)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    deadline = time.monotonic() + 60
    while not page.evaluate("() => !!(window.explorer && explorer.shown && explorer.shown.full)"):
        assert time.monotonic() < deadline, messages
        time.sleep(0.1)
    context.close()
    assert not [m for m in messages if "Content Security Policy" in m or "Refused" in m], messages


def test_a_hostile_page_cannot_drive_the_explorer(browser, server, monkeypatch):
    # A page of another site on this machine (http://localhost:OTHER, so the browser lets its requests
    # reach 127.0.0.1) tries the requests a drive-by page would: they arrive and are refused.
    import http.server

    import fractalgd.explorer.session as session
    from fractalgd.explorer.server import Handler

    calls, refused = [], []
    monkeypatch.setattr(session, "render", lambda *a, **k: calls.append(a))
    answer_error = Handler.answer_error

    def record(self, status, data, *rest):
        refused.append((self.command, self.path.split("?")[0], status))
        return answer_error(self, status, data, *rest)

    monkeypatch.setattr(Handler, "answer_error", record)

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b"<!doctype html><title>evil</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://localhost:{evil.server_address[1]}/")
    outcome = page.evaluate(
        """async ([bases, token]) => {
            const body = JSON.stringify({client: "evil", view: {x: {center: 0, width: 8}, y: {center: 0, width: 8}},
                                         resolution: [8, 8]});
            const out = {};
            const attempt = async (name, url, init) => {
              try { const r = await fetch(url, init); out[name] = r.type === "opaque" ? "opaque" : await r.text(); }
              catch (e) { out[name] = "blocked"; }
            };
            for (const [i, base] of bases.entries()) {
              await attempt(`simple${i}`, base + "/api/render", {method: "POST", mode: "no-cors", body,
                                                                 headers: {"Content-Type": "text/plain"}});
              await attempt(`json${i}`, base + "/api/render", {method: "POST", body,
                                                               headers: {"Content-Type": "application/json"}});
              await attempt(`token${i}`, base + "/api/render?token=" + token, {method: "POST", mode: "no-cors", body});
              await attempt(`config${i}`, base + "/api/config", {});
            }
            return out;
        }""",
        [[f"http://127.0.0.1:{server.port}", f"http://localhost:{server.port}"], "guessed"],
    )
    context.close()
    evil.shutdown()
    evil.server_close()
    print("hostile page:", outcome, "refused:", refused)
    assert all(outcome[f"{kind}{i}"] in ("opaque", "blocked") for kind in ("simple", "token") for i in (0, 1))
    assert all(outcome[f"{kind}{i}"] == "blocked" for kind in ("json", "config") for i in (0, 1))  # nothing readable
    assert calls == [] and server.explorer.current("evil") == 0
    # The requests did reach the server, and each was refused there (403 Origin / Sec-Fetch-Site,
    # 405 for a CORS preflight).
    assert ("POST", "/api/render", 403) in refused and all(status in (403, 405) for _, _, status in refused)
