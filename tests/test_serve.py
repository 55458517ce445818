"""`fractalgd serve`: the JSON API over a real socket (127.0.0.1, port 0, urllib), and the explorer logic."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
import time
import tomllib
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fractalgd.cli import app
from fractalgd.colour import class_colors
from fractalgd.config import config_from_dict
from fractalgd.explorer.server import TOKEN_HEADER, make_server
from fractalgd.explorer.session import Explorer, RequestError, Superseded, view_config
from fractalgd.output import RECIPE_CHUNK
from fractalgd.pipeline import render
from fractalgd.problems import scalar
from tests.helpers import p1_config

RES = 64
FULL = {"x": {"center": 0.0, "width": 8.0}, "y": {"center": 0.0, "width": 8.0}}
# papers.md §1.4: λ = 0, y = 1, η = 0.8: the converged set is an ellipse with semi-axes √7, √3.
ELLIPSE = ["problem.lam=0.0", "problem.y=1.0", "gd.eta=0.8", "gd.steps=3000"]


@pytest.fixture(scope="module")
def server():
    srv = make_server(p1_config(plane={"resolution": [RES, RES]}, gd={"steps": 400}), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def call(srv, path, body=None, raw: bytes | None = None, timeout=120):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json", TOKEN_HEADER: srv.token}
    request = urllib.request.Request(f"http://127.0.0.1:{srv.port}/{path.lstrip('/')}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
            kind = response.headers["Content-Type"]
            return response.status, (json.loads(payload) if kind == "application/json" else payload)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def decode_png(data_url: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    image.load()
    return image


def test_page_and_base_view(server):
    status, page = call(server, "/")
    assert status == 200 and b"explorer.js" in page
    status, script = call(server, "/explorer.js")
    assert status == 200 and b"/api/render" in script
    status, base = call(server, "/api/config")
    assert status == 200
    assert base["view"] == FULL and base["resolution"] == [RES, RES]
    assert base["axes"]["x"]["param"] == "u0" and base["axes"]["y"]["param"] == "v0"


def test_render_is_the_pipeline_render_of_the_view(server):
    body = {"client": "t1", "view": FULL, "resolution": [RES, RES], "overrides": ["render.shade=false"]}
    status, answer = call(server, "/api/render", body)
    assert status == 200
    labels, names = server.explorer.labels(answer["render_id"])
    config = view_config(server.explorer.base, FULL, [RES, RES], ["render.shade=false"])
    np.testing.assert_array_equal(labels, render(config).labels)
    # The legend: fractions of pixels, summing to 1.
    counts = np.bincount(labels.ravel(), minlength=len(names))
    assert {c["name"]: c["count"] for c in answer["legend"]} == {n: int(k) for n, k in zip(names, counts) if k}
    assert sum(c["fraction"] for c in answer["legend"]) == pytest.approx(1.0, abs=1e-12)
    # Unshaded, every pixel of the PNG has its class colour; the PNG carries the view's recipe.
    image = decode_png(answer["image"])
    rgb = np.asarray(image.convert("RGB"))
    expected = np.round(class_colors(names)[labels] * 255).astype(np.uint8)
    np.testing.assert_array_equal(rgb, expected)
    recipe = config_from_dict(tomllib.loads(image.text[RECIPE_CHUNK]))
    assert (recipe.plane.x.lo, recipe.plane.x.hi, recipe.plane.y.lo, recipe.plane.y.hi) == (-4.0, 4.0, -4.0, 4.0)
    # P1's symmetry (u, v) → (−u, −v) (papers.md §1.4) holds in the served image.
    np.testing.assert_array_equal(labels, labels[::-1, ::-1])


def test_a_zoomed_view_holds_the_same_pixels(server):
    # The top-left quarter at half the resolution has exactly the same pixel centres (dyadic
    # coordinates): each pixel is one GD run, whatever view it is rendered in.
    _, full = call(server, "/api/render", {"client": "t2", "view": FULL, "resolution": [RES, RES]})
    quarter = {"x": {"center": -2.0, "width": 4.0}, "y": {"center": 2.0, "width": 4.0}}
    _, zoom = call(server, "/api/render", {"client": "t2", "view": quarter, "resolution": [RES // 2, RES // 2]})
    assert zoom["view"]["x"]["min"] == -4.0 and zoom["view"]["x"]["max"] == 0.0
    assert zoom["view"]["y"]["min"] == 0.0 and zoom["view"]["y"]["max"] == 4.0
    big, _ = server.explorer.labels(full["render_id"])
    small, _ = server.explorer.labels(zoom["render_id"])
    np.testing.assert_array_equal(small, big[: RES // 2, : RES // 2])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"view": {"x": {"center": 0.0, "width": 0.0}, "y": FULL["y"]}}, "view.x.width"),
        ({"view": {"x": {"center": 0.0, "width": -1.0}, "y": FULL["y"]}}, "view.x.width"),
        ({"view": {"x": {"center": "a", "width": 1.0}, "y": FULL["y"]}}, "view.x.center"),
        ({"view": {"x": FULL["x"]}}, "view.y"),
        ({"view": FULL, "resolution": [5000, 5000]}, "resolution"),
        ({"view": FULL, "resolution": [0, 10]}, "resolution"),
        ({"view": FULL, "resolution": [64.5, 64]}, "resolution"),
        # P1 is polynomial: past float64 it renders in double-double, down to ~1e-31 of the centre.
        ({"view": {"x": {"center": 1.0, "width": 1e-30}, "y": FULL["y"]}}, "double-double's resolution"),
        ({"view": {"x": {"center": "1.0000000000000000000001", "width": 1e-40}, "y": FULL["y"]}}, "double-double"),
        ({"view": {"x": {"center": "1.0e", "width": 1.0}, "y": FULL["y"]}}, "view.x.center"),
        ({"view": FULL, "overrides": ["gd.nope=1"]}, "gd.nope"),
        ({"view": FULL, "overrides": ["gd.steps=0"]}, "gd.steps"),
        ({"view": FULL, "overrides": ["gd.steps=10000000"]}, "gd.steps"),
        ({"view": FULL, "overrides": ["problem.lam=-1"]}, "problem.lam"),
        ({"view": FULL, "overrides": "gd.eta=1"}, "overrides"),
        ({"view": FULL, "client": ""}, "client"),
    ],
)
def test_bad_render_requests_get_400_naming_the_key(server, body, words):
    status, answer = call(server, "/api/render", {"client": "bad", **body})
    assert status == 400 and words in answer["error"]


def test_malformed_requests_and_the_server_keeps_running(server):
    assert call(server, "/api/render", raw=b"{not json")[0] == 400
    assert call(server, "/api/render", raw=b"[1, 2]")[0] == 400
    assert call(server, "/api/nothing", {})[0] == 404
    assert call(server, "/nothing")[0] == 404
    # A body announced as too large is refused before it is read.
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    connection.putrequest("POST", "/api/render")
    connection.putheader(TOKEN_HEADER, server.token)
    connection.putheader("Content-Length", str(2 << 20))
    connection.endheaders(b"{}")
    response = connection.getresponse()
    assert response.status == 413 and "body" in json.loads(response.read())["error"]
    connection.close()
    assert call(server, "/api/dimension", {"render_id": 10**9})[0] == 404
    assert call(server, "/api/render", {"client": "ok", "view": FULL, "resolution": [16, 16]})[0] == 200


def test_a_newer_request_of_the_same_client_supersedes_the_older(server):
    explorer = server.explorer
    answers = {}

    def send(name, client):
        answers[name] = call(server, "/api/render", {"client": client, "view": FULL, "resolution": [16, 16]})

    threads = {}
    with explorer._engine:  # hold the engine: both requests wait, in order
        for name, client in (("old", "c"), ("other", "d"), ("new", "c")):
            before = explorer.current(client)
            threads[name] = threading.Thread(target=send, args=(name, client))
            threads[name].start()
            deadline = time.monotonic() + 30
            while explorer.current(client) == before and time.monotonic() < deadline:
                time.sleep(0.01)
    for thread in threads.values():
        thread.join(60)
    assert answers["old"][0] == 409 and answers["old"][1]["superseded"]
    assert answers["new"][0] == 200 and answers["other"][0] == 200  # other clients are not affected


def test_a_superseded_render_stops_between_tiles():
    tiles = []

    def on_tile(client, gen, done, total):
        tiles.append(done)
        if len(tiles) == 1:
            explorer.new_generation(client)  # a newer request arrives during the first tile

    explorer = Explorer(p1_config(plane={"resolution": [32, 32]}, gd={"steps": 50}), tile=128, on_tile=on_tile)
    with pytest.raises(Superseded):
        explorer.render({"client": "c", "view": FULL, "resolution": [32, 32]})
    assert tiles == [128]  # 1 of 8 tiles ran


def test_exported_recipe_renders_to_the_same_labels_with_the_cli(server, tmp_path, monkeypatch):
    view = {"x": {"center": 1.3, "width": 0.7}, "y": {"center": -0.45, "width": 0.7}}
    status, answer = call(server, "/api/render", {"client": "e", "view": view, "resolution": [48, 40]})
    assert status == 200
    status, recipe = call(server, "/api/recipe", {"view": view, "resolution": [48, 40]})
    assert status == 200 and recipe["filename"].endswith(".toml")
    (tmp_path / recipe["filename"]).write_text(recipe["toml"])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["render", recipe["filename"], "--out", "out"])
    assert result.exit_code == 0, result.output
    served, _ = server.explorer.labels(answer["render_id"])
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "labels.npy"), served)


def test_zoom_recipe_follows_the_keyframes(server, tmp_path):
    from fractalgd.studies.zoom import load_zoom

    keyframes = [FULL, {"x": {"center": 1.5, "width": 2.0}, "y": {"center": 1.5, "width": 2.0}},
                 {"x": {"center": 1.52, "width": 0.3}, "y": {"center": 1.49, "width": 0.3}}]  # fmt: skip
    status, answer = call(server, "/api/zoom-recipe", {"keyframes": keyframes, "resolution": [RES - 1, RES]})
    assert status == 200
    (tmp_path / "zoom.toml").write_text(answer["toml"])
    spec, base = load_zoom(tmp_path / "zoom.toml")
    assert spec.center == (1.52, 1.49) and spec.start_width == 8.0 and spec.factor == 2.0
    assert spec.resolution == (RES, RES)  # rounded up to even sizes
    assert (base.plane.x.lo, base.plane.x.hi) == (-4.0, 4.0)  # the plane is the first keyframe
    # w_k = 8·2^(−k): the last keyframe is the first no wider than the last view (0.3): k = 5.
    assert spec.keyframes == 1 + int(np.ceil(np.log2(8.0 / 0.3)))
    assert spec.keyframe_view(spec.keyframes - 1).size[0] <= 0.3 < spec.keyframe_view(spec.keyframes - 2).size[0]


@pytest.mark.parametrize(
    ("keyframes", "words"),
    [
        ([FULL], "at least two"),
        ([{"x": {"center": 0.0, "width": 1.0}, "y": {"center": 0.0, "width": 1.0}}, FULL], "narrower"),
        ([FULL, {"x": {"center": 9.0, "width": 1.0}, "y": {"center": 0.0, "width": 1.0}}], "zoom.center"),
    ],
)
def test_bad_zoom_paths_get_400(server, keyframes, words):
    status, answer = call(server, "/api/zoom-recipe", {"keyframes": keyframes})
    assert status == 400 and words in answer["error"]


def test_dimension_of_the_smooth_ellipse_boundary_is_one(server):
    pytest.importorskip("fractalgd.analysis.boxcount")
    # papers.md §1.5: for λ = 0 the boundary is a smooth ellipse, D ≈ 1.00 (positive control).
    body = {"client": "dim", "view": FULL, "resolution": [256, 256], "overrides": ELLIPSE}
    status, answer = call(server, "/api/render", body)
    assert status == 200
    fractions = {c["name"]: c["fraction"] for c in answer["legend"]}
    assert fractions[scalar.CLASS_NAMES[scalar.CONVERGED]] == pytest.approx(np.pi * np.sqrt(21) / 64, abs=0.01)
    status, dim = call(server, "/api/dimension", {"render_id": answer["render_id"]})
    assert status == 200
    assert dim["dimension"] == pytest.approx(1.0, abs=0.1)
    assert dim["fit_range"][0] < dim["fit_range"][1] and dim["boundary_pixels"] > 0
    # One class in view: no boundary, a clear 400.
    inside = {"x": {"center": 0.5, "width": 0.2}, "y": {"center": 0.8, "width": 0.2}}  # inside, off a = 0
    _, calm = call(server, "/api/render", {**body, "view": inside, "resolution": [64, 64]})
    assert len(calm["legend"]) == 1
    status, answer = call(server, "/api/dimension", {"render_id": calm["render_id"]})
    assert status == 400 and "boundary" in answer["error"]


def test_log10_views_stop_at_the_float_limit():
    # On a log10 axis the pixel pitch at the centre is ln 10 · 10^c · Δ; below one ulp of 10^c the
    # pixels merge (float64: Δ < ε/ln 10 ≈ 9.6e−17 decades at most; double-double 2⁻⁵³ of that),
    # and 10^c must stay finite. P1 is polynomial, so past float64 the explorer goes double-double.
    base = p1_config(plane={"resolution": [32, 32], "x": {"param": "eta", "min": -2.0, "max": 0.5, "scale": "log10"}})
    y = {"center": 0.0, "width": 8.0}
    ok = view_config(base, {"x": {"center": -0.5, "width": 32 * 1e-14}, "y": y}, [32, 32])
    assert ok.plane.x.width == pytest.approx(32e-14) and ok.gd.dtype == "float64"
    deep = view_config(base, {"x": {"center": -0.5, "width": 32 * 1e-17}, "y": y}, [32, 32])
    assert deep.gd.dtype == "double-double" and deep.plane.x.width == pytest.approx(32e-17)
    with pytest.raises(RequestError, match="double-double's resolution"):
        view_config(base, {"x": {"center": -0.5, "width": 32 * 1e-33}, "y": y}, [32, 32])
    with pytest.raises(RequestError, match="leaves the range"):
        view_config(base, {"x": {"center": 400.0, "width": 1.0}, "y": y}, [32, 32])


def test_serve_cli_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "not found" in result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "configs/p1-fig3.toml", "--port", str(port)])
    assert result.exit_code == 2 and "cannot listen" in result.output


def test_serve_cli_prints_the_url_with_its_token_and_warns_off_loopback(monkeypatch):
    from fractalgd.explorer.server import ExplorerServer

    servers = []

    def stop_at_once(self, *args, **kw):
        servers.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(ExplorerServer, "serve_forever", stop_at_once)
    result = CliRunner().invoke(app, ["serve", "configs/p1-fig3.toml", "--port", "0"])
    assert result.exit_code == 0, result.output
    (local,) = servers
    assert f"http://127.0.0.1:{local.port}/?token={local.token}" in result.output and "warning" not in result.output
    result = CliRunner().invoke(app, ["serve", "configs/p1-fig3.toml", "--port", "0", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    wide = servers[1]
    assert wide.token != local.token and "warning: listening on every network interface" in result.output
    assert "token" in result.output.split("warning", 1)[1] and "plain HTTP" in result.output
    # Bound to every interface, the Host may also be this machine's name or an address of it.
    port = wide.port
    for host in (f"127.0.0.1:{port}", f"192.168.1.7:{port}", f"[fe80::1]:{port}", f"{socket.gethostname()}:{port}"):
        assert wide.host_allowed(host), host
    assert not wide.host_allowed(f"evil.example:{port}") and not wide.host_allowed(f"192.168.1.7:{port + 1}")
    assert not local.host_allowed(f"192.168.1.7:{local.port}")
