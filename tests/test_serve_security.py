"""`fractalgd serve` against a hostile page and hostile clients (issue 12): host, origin, token and
content-type checks, no code from requests, cost caps, timeouts, connection limits, strict JSON,
and a fuzz of malformed requests. Raw sockets, so every byte of a request is the test's own."""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import threading
import time

import pytest

import fractalgd.explorer.session as session
from fractalgd.explorer.server import MAX_BODY, TOKEN_HEADER, make_server
from fractalgd.explorer.session import MAX_PIXEL_STEPS, MIN_TILE, SERVE_TILE, tile_pixels
from tests.helpers import p1_config

RES = 32
FULL = {"x": {"center": 0.0, "width": 8.0}, "y": {"center": 0.0, "width": 8.0}}
TIMEOUT = 1.0  # the servers' read timeout here (10 s in `fractalgd serve`)


def start(**kw):
    srv = make_server(p1_config(plane={"resolution": [RES, RES]}, gd={"steps": 200}), port=0, resolution=RES,
                      read_timeout=TIMEOUT, **kw)  # fmt: skip
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def stop(srv):
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def server():
    srv = start()
    yield srv
    stop(srv)


@pytest.fixture
def engine_calls(monkeypatch):
    """Every pipeline render the explorer starts (each is one or more engine calls)."""
    calls = []
    real = session.render

    def counting(config, **kw):
        calls.append((config, kw))
        return real(config, **kw)

    monkeypatch.setattr(session, "render", counting)
    return calls


def strict_json(data: bytes):
    def refuse(name):
        raise AssertionError(f"{name} in a JSON answer")

    return json.loads(data, parse_constant=refuse)


def exchange(srv, data: bytes, method: str = "GET", timeout: float = 10.0, half_close: bool = True):
    """Send raw bytes, read one answer: (status, headers, body); half-closes so nothing waits for more."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def build(srv, method="GET", path="/api/config", body=None, headers=None, token=True, host=None):
    """A request's bytes: Host, token, Content-Type/Length for a body, then `headers` (None drops one)."""
    head = {"Host": f"127.0.0.1:{srv.port}" if host is None else host}
    if token:
        head[TOKEN_HEADER] = srv.token
    if body is not None:
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        head["Content-Type"] = "application/json"
        head["Content-Length"] = str(len(body))
    head["Connection"] = "close"
    head.update(headers or {})
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def ask(srv, method="GET", path="/api/config", body=None, **kw):
    status, headers, data = exchange(srv, build(srv, method, path, body, **kw), method)
    kind = headers.get("content-type", "")
    return status, headers, (strict_json(data) if kind == "application/json" and data else data)


def render_body(client="sec", **kw):
    return {"client": client, "view": FULL, "resolution": [8, 8], **kw}


# --- host, origin, token, content type ------------------------------------------------------------


def test_host_must_be_a_loopback_name_with_the_servers_port(server, engine_calls):
    for host in (
        f"127.0.0.1:{server.port}",
        f"localhost:{server.port}",
        f"[::1]:{server.port}",
        f"LOCALHOST:{server.port}",
    ):
        assert ask(server, host=host)[0] == 200, host
    # DNS rebinding: a foreign name that resolves to 127.0.0.1 carries that name in Host.
    for host in (f"evil.example:{server.port}", "evil.example", f"127.0.0.1:{server.port + 1}", "127.0.0.1",
                 f"127.0.0.1.evil.example:{server.port}", "a b", ""):  # fmt: skip
        status, _, answer = ask(server, host=host)
        assert status in (400, 403) and "Host" in answer["error"], host
    status, _, answer = ask(server, "POST", "/api/render", render_body(), host=f"evil.example:{server.port}")
    assert status == 403
    # No Host at all (HTTP/1.0 allows it; browsers always send one).
    status, _, data = exchange(server, f"GET /api/config HTTP/1.0\r\n{TOKEN_HEADER}: {server.token}\r\n\r\n".encode())
    assert status == 400
    assert engine_calls == []


def test_foreign_origins_and_cross_site_fetches_are_refused_and_run_nothing(server, engine_calls):
    for origin in (
        "http://evil.example",
        "null",
        f"http://localhost:{server.port}",
        f"https://127.0.0.1:{server.port}",
    ):
        status, _, answer = ask(server, "POST", "/api/render", render_body(), headers={"Origin": origin})
        assert status == 403 and "Origin" in answer["error"], origin
    for site in ("cross-site", "same-site"):
        status, _, answer = ask(server, "POST", "/api/render", render_body(), headers={"Sec-Fetch-Site": site})
        assert status == 403 and "Sec-Fetch-Site" in answer["error"]
    assert engine_calls == [] and server.explorer.current("sec") == 0
    own = {"Origin": f"http://127.0.0.1:{server.port}", "Sec-Fetch-Site": "same-origin"}
    assert ask(server, "POST", "/api/render", render_body(), headers=own)[0] == 200
    assert len(engine_calls) == 1


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
def test_posts_must_be_json(server, engine_calls, kind):
    # A cross-origin page can send these three without a CORS preflight (the "simple" requests).
    status, _, answer = ask(server, "POST", "/api/render", render_body(), headers={"Content-Type": kind})
    assert status == 415 and "application/json" in answer["error"]
    assert engine_calls == []


def test_the_page_and_the_api_need_the_token(server, engine_calls):
    status, _, answer = ask(server, "GET", "/", token=False)
    assert status == 403 and "token" in answer["error"] and "\n" not in answer["error"]
    assert ask(server, "GET", "/?token=wrong", token=False)[0] == 403
    status, headers, page = ask(server, "GET", f"/?token={server.token}", token=False)
    assert status == 200 and b"explorer.js" in page and "frame-ancestors 'none'" in headers["content-security-policy"]
    assert ask(server, "GET", "/explorer.js", token=False)[0] == 200  # static code, no secret
    for path in ("/api/config", "/api/progress?client=a"):
        assert ask(server, "GET", path, token=False)[0] == 403
        assert ask(server, "GET", path, token=False, headers={TOKEN_HEADER: server.token[:-1]})[0] == 403
        assert ask(server, "GET", path + ("&" if "?" in path else "?") + f"token={server.token}", token=False)[0] == 200
    status, _, answer = ask(server, "POST", "/api/render", render_body(), token=False)
    assert status == 403 and TOKEN_HEADER in answer["error"]
    assert engine_calls == []
    # The token is random per server and in the URL printed.
    other = start()
    try:
        assert other.token != server.token and len(server.token) >= 32
        assert server.url == f"http://127.0.0.1:{server.port}/?token={server.token}"
    finally:
        stop(other)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (render_body(overrides=["problem.kind=custom"]), "problem.kind"),
        (render_body(overrides=["problem.loss=subprocess:run"]), "problem.loss"),
        (render_body(overrides=['problem.loss="os:system"']), "problem.loss"),
        (render_body(overrides=["problem.params={x=[0.0]}"]), "problem.params"),
        (render_body(overrides=["problem={kind='custom', loss='subprocess:run'}"]), "'problem'"),
        (render_body(overrides=["engine.unroll=100000"]), "engine.unroll"),
        (render_body(overrides=["engine.backend=pallas"]), "engine.backend"),
        (render_body(overrides=["name=../../etc"]), "'name'"),
        (render_body(overrides=["plane.x.param=eta"]), "plane.x.param"),
        (render_body(overrides=["plane.resolution=[4096, 4096]"]), "plane.resolution"),
        (render_body(overrides=["gd.steps=100001"]), "gd.steps"),
        (render_body(problem={"kind": "custom", "loss": "subprocess:run"}), "problem"),
        (render_body(config={"problem": {"kind": "custom"}}), "config"),
    ],
)
def test_requests_never_choose_code_or_the_engine(server, engine_calls, monkeypatch, body, words):
    imports, processes = [], []
    monkeypatch.setattr("fractalgd.problems.custom.load_function", lambda *a, **k: imports.append(a))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: processes.append(a))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: processes.append(a))
    for path in ("/api/render", "/api/recipe"):
        status, _, answer = ask(server, "POST", path, body)
        assert status == 400 and words in answer["error"], (path, answer)
    assert imports == [] and processes == [] and engine_calls == []


# --- costs ------------------------------------------------------------------------------------------


def test_costly_views_are_refused_before_anything_runs(server, engine_calls, monkeypatch):
    start_time = time.monotonic()
    body = render_body(resolution=[4096, 4096], overrides=["gd.steps=100000"])
    status, _, answer = ask(server, "POST", "/api/render", body)
    assert status == 413 and "gd.steps" in answer["error"] and "1.68e+12 pixel-steps" in answer["error"]
    assert f"{MAX_PIXEL_STEPS:.3g}" in answer["error"]
    # Memory: what the render would hold must fit (fractalgd.pipeline.cost.check).
    monkeypatch.setattr("fractalgd.pipeline.cost.available_memory", lambda: 1 << 20)
    status, _, answer = ask(server, "POST", "/api/render", render_body(resolution=[1024, 1024]))
    assert status == 413 and "memory" in answer["error"] and "plane.resolution" in answer["error"]
    assert engine_calls == [] and time.monotonic() - start_time < 5


def test_engine_calls_are_short_whatever_the_steps(server, engine_calls):
    assert tile_pixels(100_000, "cpu") == MIN_TILE == 256
    assert tile_pixels(2000, "cpu") == 8192 and tile_pixels(1000, "cpu") == 16384
    assert tile_pixels(10, "cpu") == tile_pixels(1000, "gpu") == SERVE_TILE
    for steps in (1, 7, 999, 12345, 100_000):
        tile = tile_pixels(steps, "cpu")
        assert tile & (tile - 1) == 0 and (tile * steps <= 1 << 24 or tile == MIN_TILE)
    assert ask(server, "POST", "/api/render", render_body(resolution=[16, 16], overrides=["gd.steps=20000"]))[0] == 200
    ((config, kw),) = engine_calls
    assert config.gd.steps == 20000 and kw["tile"] == min(server.explorer.tile, tile_pixels(20000)) <= 1024


# --- strict JSON ------------------------------------------------------------------------------------


def test_answers_never_hold_nan_or_infinity(server, monkeypatch):
    # The view's centre (lo + hi)/2 overflows to inf at the edge of float64: null in the answer.
    edge = {"x": {"center": 1.7e308, "width": 1e300}, "y": {"center": 0.0, "width": 8.0}}
    status, headers, data = exchange(server, build(server, "POST", "/api/render", render_body(view=edge)), "POST")
    assert status == 200 and b"Infinity" not in data and b"NaN" not in data
    answer = strict_json(data)
    assert answer["view"]["x"]["center"] is None and answer["view"]["x"]["min"] == pytest.approx(1.7e308)

    # An analysis with undefined numbers (a NaN error bar, infinite slopes).
    class Undefined:
        def to_dict(self):
            return {"dimension": float("nan"), "stderr": float("inf"), "fit_range": [4, 8],
                    "local_slopes": [float("-inf"), 1.0], "warnings": []}  # fmt: skip

    monkeypatch.setattr(session, "box_count", lambda *args, **kwargs: Undefined())
    status, _, data = exchange(server, build(server, "POST", "/api/render", render_body()), "POST")
    render_id = strict_json(data)["render_id"]  # the default view holds a boundary to count
    status, _, data = exchange(server, build(server, "POST", "/api/dimension", {"render_id": render_id}), "POST")
    assert status == 200 and b"NaN" not in data and b"Infinity" not in data
    dim = strict_json(data)
    assert dim["dimension"] is None and dim["stderr"] is None and dim["local_slopes"] == [None, 1.0]
    # NaN, Infinity and overflowing numbers are refused in requests too.
    for raw in (b'{"view": NaN}', b'{"factor": Infinity}', b'{"view": {"x": {"center": 1e999, "width": 1}}}'):
        status, _, answer = ask(server, "POST", "/api/render", raw)
        assert status == 400 and "JSON" in answer["error"], raw


# --- methods, lengths, bodies -----------------------------------------------------------------------


def test_methods_paths_and_lengths_get_the_right_4xx(server, engine_calls):
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "GET", "HEAD", "TRACE", "FOO"):
        status, headers, _ = ask(server, method, "/api/render")
        assert status == 405 and headers["allow"] == "POST", method
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, _ = ask(server, method, "/api/config", body={} if method == "POST" else None)
        assert status == 405 and headers["allow"] == "GET, HEAD", method
    status, headers, data = ask(server, "HEAD", "/api/config")
    assert status == 200 and data == b"" and int(headers["content-length"]) > 0
    assert ask(server, "GET", "/nothing")[0] == 404 and ask(server, "DELETE", "/api/nothing")[0] == 404
    post = f"POST /api/render HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{TOKEN_HEADER}: {server.token}\r\n"
    post += "Content-Type: application/json\r\n"
    cases = {
        "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n": 411,
        "\r\n": 411,  # no Content-Length
        "Content-Length: -1\r\n\r\n": 400,
        "Content-Length: 1e3\r\n\r\n": 400,
        "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}": 400,
        f"Content-Length: {MAX_BODY + 1}\r\n\r\n{{}}": 413,
        f"Content-Length: {10**30}\r\n\r\n{{}}": 400,
        "Content-Length: 10\r\n\r\n{}": 400,  # the body ends early
    }
    for rest, expected in cases.items():
        status, _, data = exchange(server, (post + rest).encode(), "POST")
        assert status == expected and "error" in strict_json(data), rest
    for line in (b"GET /api/config HTTP/2.0\r\n\r\n", b"GET /api/config HTTP/x\r\n\r\n", b"GET /\r\n\r\n",
                 b"GET / HTTP/1.1 extra\r\n\r\n", b"GET " + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):  # fmt: skip
        status, _, data = exchange(server, line)
        assert 400 <= status < 500 and "error" in strict_json(data), line[:40]
    assert engine_calls == []


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"{not json", 400, "JSON"),
        (b"[1, 2]", 400, "object"),
        (b"\xff\xfe\x00", 400, "JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "JSON"),
        (b'{"client": ' + b"9" * 5000 + b"}", 400, "JSON"),
        (json.dumps(render_body(view="x")).encode(), 400, "view"),
        (json.dumps(render_body(resolution=[8, True])).encode(), 400, "resolution"),
        (json.dumps(render_body(client=["a"])).encode(), 400, "client"),
        (json.dumps(render_body(overrides=[1])).encode(), 400, "overrides"),
        (json.dumps(render_body(overrides=["gd.eta=true"])).encode(), 400, "gd.eta"),
        (json.dumps(render_body(extra=1)).encode(), 400, "extra"),
    ],
)
def test_malformed_bodies_get_400(server, engine_calls, raw, status, words):
    got, _, answer = ask(server, "POST", "/api/render", raw)
    assert got == status and words in answer["error"] and len(answer["error"]) <= 400
    assert engine_calls == []


def test_malformed_ids_get_400(server):
    for body in ({"render_id": [1]}, {"render_id": {"a": 1}}, {"render_id": True}, {"render_id": 1.5}):
        assert ask(server, "POST", "/api/dimension", body)[0] == 400, body
    assert ask(server, "POST", "/api/dimension", {"render_id": 10**9})[0] == 404
    bad_keyframes = {"keyframes": [FULL, FULL], "factor": "2"}
    assert ask(server, "POST", "/api/zoom-recipe", bad_keyframes)[0] == 400
    assert (
        ask(server, "GET", "/api/progress")[0] == 400
        and ask(server, "GET", "/api/progress?client=" + "a" * 65)[0] == 400
    )


# --- load: concurrency, queue, stalled clients, connection limit -----------------------------------


def test_fifty_concurrent_requests_all_get_an_answer(server):
    statuses, errors = [], []

    def one(i):
        try:
            body = render_body(client=f"load{i}", resolution=[8, 8]) if i % 2 else None
            status, _, _ = exchange(server, build(server, "POST" if body else "GET", "/api/render" if body else "/api/config", body),
                                    "POST" if body else "GET", timeout=60)  # fmt: skip
            statuses.append(status)
        except Exception as error:  # a reset, a timeout
            errors.append(repr(error))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    start_time = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    elapsed = time.monotonic() - start_time
    print(f"50 concurrent: {len(statuses)} answers {sorted(set(statuses))}, {len(errors)} errors, {elapsed:.2f} s")
    assert errors == [] and len(statuses) == 50
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 25 + 1  # every GET, and renders up to the queue


def test_a_full_queue_answers_503_with_retry_after(server, monkeypatch):
    monkeypatch.setattr(session, "MAX_WAITING", 2)
    explorer, answers = server.explorer, {}

    def send(name):
        answers[name] = ask(server, "POST", "/api/render", render_body(client=name))

    threads = []
    with explorer._engine:  # the engine busy: renders wait
        for name in ("q1", "q2"):
            threads.append(threading.Thread(target=send, args=(name,)))
            threads[-1].start()
        deadline = time.monotonic() + 10
        while len(explorer._waiting) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert explorer.progress("q1")["state"] == "waiting" and explorer.progress("q2")["queued"] >= 1
        status, headers, answer = ask(server, "POST", "/api/render", render_body(client="q3"))
        assert status == 503 and headers["retry-after"] == "2" and "busy" in answer["error"]
        # A newer request of a waiting client is not refused: it replaces that client's older one.
        threads.append(threading.Thread(target=send, args=("q1",)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while explorer.current("q1") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    for thread in threads:
        thread.join(30)
    assert answers["q1"][0] == 200 and answers["q2"][0] == 200


def test_progress_reports_tiles_and_an_eta():
    reports = []
    srv = make_server(p1_config(plane={"resolution": [32, 32]}, gd={"steps": 100}), port=0, resolution=32, tile=128)
    srv.explorer.on_tile = lambda client, gen, done, total: reports.append(srv.explorer.progress(client))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        assert ask(srv, "GET", "/api/progress?client=p")[2] == {"client": "p", "state": "idle"}
        assert ask(srv, "POST", "/api/render", render_body(client="p", resolution=[32, 32]))[0] == 200
        status, _, done = ask(srv, "GET", "/api/progress?client=p")
    finally:
        stop(srv)
    assert [r["done"] for r in reports] == list(range(128, 1025, 128))
    assert all(r["state"] == "rendering" and r["total"] == 1024 for r in reports)
    assert reports[0]["eta_s"] > 0 and reports[-1]["eta_s"] is None and reports[3]["fraction"] == 0.5
    assert status == 200 and done["state"] == "done" and done["fraction"] == 1.0 and done["elapsed_s"] > 0


def test_a_stalled_client_neither_blocks_others_nor_stays(server):
    half_line = f"GET /api/config HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()  # no blank line
    half_body = build(server, "POST", "/api/render", b'{"client": "slow", "view": ')[:-5]  # 5 bytes short
    stalled = []
    for data in (half_line, half_body, b""):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(data)
        stalled.append(sock)
    start_time = time.monotonic()
    for _ in range(5):
        assert ask(server)[0] == 200
    assert time.monotonic() - start_time < TIMEOUT  # others are served at once
    for sock in stalled:
        data = b""
        while chunk := sock.recv(65536):  # the server answers 408 (a body) or just closes, after the timeout
            data += chunk
        assert data == b"" or data.startswith(b"HTTP/1.1 408") and b'"error"' in data, data[:60]
        assert time.monotonic() - start_time < TIMEOUT + 3
        sock.close()
    assert ask(server)[0] == 200


def test_connections_over_the_limit_get_a_quick_503():
    srv = start(max_connections=3)
    socks = []
    try:
        for _ in range(3):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
            socks[-1].sendall(b"GET /api/config HTTP/1.1\r\n")  # stalls
        time.sleep(0.2)
        start_time = time.monotonic()
        status, headers, answer = ask(srv)
        assert status == 503 and headers["retry-after"] == "1" and "busy" in answer["error"]
        assert time.monotonic() - start_time < 0.5 and srv.refused >= 1
        time.sleep(TIMEOUT + 0.5)  # the stalled connections time out and free their slots
        assert ask(srv)[0] == 200
    finally:
        for sock in socks:
            sock.close()
        stop(srv)


# --- fuzz -------------------------------------------------------------------------------------------

FUZZ = 1000
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO", "get", "P0ST"]
PATHS = ["/", "/explorer.js", "/api/config", "/api/render", "/api/dimension", "/api/recipe", "/api/zoom-recipe",
         "/api/progress?client=f", "/api/progress?client=", "/api/", "/api/render/", "/../../etc/passwd", "/%00",
         "/index.html", "//api/config", "/api/config?token=x&token=y", "/?" + "a=1&" * 40, "/" + "x" * 3000, "*",
         "http://127.0.0.1/api/config"]  # fmt: skip
POST_PATHS = ["/api/render", "/api/dimension", "/api/recipe", "/api/zoom-recipe"]
VALUES = [0, -1, 1.5, 1e308, -1e308, 10**20, True, None, "", "x" * 2000, [], {}, [1, 2], {"a": 1}, "NaN", [[[]]]]


def fuzz_body(rng: random.Random, path: str) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if kind == 1:
        depth = rng.choice([10, 1000, 50_000])
        return (b"[" * depth + b"]" * depth) if rng.random() < 0.5 else (b'{"a":' * depth + b"1" + b"}" * depth)
    if kind == 2:
        return rng.choice([b"NaN", b'{"view": NaN}', b"Infinity", b'{"x": -Infinity}', b"1e999", b'{"a": 1e400}',
                           b"9" * 6000, b'{"render_id": ' + b"9" * 400 + b"}", b'"\\ud800"', b"{}", b"null", b"[]"])  # fmt: skip
    # A valid body of the endpoint, then mutated.
    if path == "/api/dimension":
        body = {"render_id": 1, "classes": [0, 1]}
    elif path == "/api/zoom-recipe":
        body = {"keyframes": [FULL, {"x": {"center": 1.0, "width": 1.0}, "y": {"center": 1.0, "width": 1.0}}],
                "resolution": [8, 8], "factor": 2.0, "fps": 30}  # fmt: skip
    else:
        body = {"client": "fuzz", "view": FULL, "resolution": [8, 8], "overrides": []}
    for _ in range(rng.randrange(1, 4)):  # mutate: wrong types, missing and extra keys, bad overrides
        key = rng.choice([*body, "view.x", "view.y.width", "overrides", "new"])
        value = rng.choice(VALUES + [["gd.steps=0"], ["gd.eta=nan"], ["engine.unroll=100000"], ["problem.kind=custom"],
                                     ["gd.steps=99999999999999999999"], ["gd.eta=0.9"], ["=1"], ["a.b.c.d=[[["]])  # fmt: skip
        if key.startswith("view.") and isinstance(body.get("view"), dict):
            parts = key.split(".")
            axis = dict(body["view"].get(parts[1], {}))
            axis[parts[2] if len(parts) > 2 else "center"] = value
            body["view"] = {**body["view"], parts[1]: axis}
        elif rng.random() < 0.15:
            body.pop(key, None)
        else:
            body[key] = value
    return json.dumps(body).encode()


def fuzz_request(rng: random.Random, srv) -> tuple[str, bytes]:
    method = "POST" if rng.random() < 0.4 else rng.choice(METHODS)
    path = rng.choice(POST_PATHS) if method == "POST" and rng.random() < 0.7 else rng.choice(PATHS)
    headers = {"Host": rng.choice([f"127.0.0.1:{srv.port}"] * 16 + [f"localhost:{srv.port}", "evil.example", ""])}
    if rng.random() < 0.95:
        headers[TOKEN_HEADER] = srv.token if rng.random() < 0.95 else "x"
    if rng.random() < 0.1:
        headers["Origin"] = rng.choice(["null", "http://evil.example", f"http://127.0.0.1:{srv.port}"])
    body = fuzz_body(rng, path) if method != "GET" or rng.random() < 0.1 else b""
    if body or rng.random() < 0.2:
        headers["Content-Type"] = rng.choice(
            ["application/json"] * 6 + ["text/plain", "application/json; charset=utf-8", "", "\x00"]
        )
        headers["Content-Length"] = rng.choice([str(len(body))] * 8 + ["-5", "abc", " ", str(MAX_BODY * 4), str(len(body) + 7),
                                                                       str(max(len(body) - 3, 0)), "1" * 40])  # fmt: skip
    if rng.random() < 0.05:
        headers["Transfer-Encoding"] = "chunked"
    for _ in range(rng.choice([0, 0, 0, 1, 3])):  # junk headers
        name = rng.choice(["X-A", "Expect", "Connection", "Content-Length", "Host", "Sec-Fetch-Site", "Bad Header"])
        headers[name] = rng.choice(["100-continue", "keep-alive", "close", "cross-site", "\xff\xfe", "x" * 5000, "-1"])
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return method, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def test_fuzz_malformed_requests_get_4xx_json_and_the_server_keeps_serving(server):
    rng = random.Random(12)
    seen: dict[int, int] = {}
    start_time = time.monotonic()
    for i in range(FUZZ):
        method, data = fuzz_request(rng, server)
        if i % 40 == 39:
            method, data = "GET", rng.randbytes(rng.randrange(1, 200)).replace(b"\n", b" ") + b"\r\n\r\n"
        try:
            status, headers, body = exchange(server, data, method, timeout=10)
        except (http.client.RemoteDisconnected, http.client.BadStatusLine) as error:
            # Only a request line with no words is closed without an answer (http.server's rule).
            assert not data.split(b"\r\n", 1)[0].strip(), (error, data[:80])
            continue
        seen[status] = seen.get(status, 0) + 1
        assert 200 <= status < 500 and status not in (500, 501), (status, data[:200], body[:200])
        kind = headers.get("content-type", "")
        if method == "HEAD":
            assert body == b""
        elif status != 200:
            assert kind == "application/json" and "error" in strict_json(body), (status, body[:200])
        elif kind == "application/json":
            strict_json(body)
    elapsed = time.monotonic() - start_time
    print(f"fuzz: {FUZZ} requests in {elapsed:.1f} s, statuses {dict(sorted(seen.items()))}")
    assert elapsed < 40 and len(seen) >= 6
    assert ask(server)[0] == 200 and ask(server, "POST", "/api/render", render_body(client="after"))[0] == 200
