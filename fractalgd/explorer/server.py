"""`fractalgd serve`: a local web page to explore a recipe's plane by zooming (standard library only).

HTTP API (JSON bodies and answers; views in axis units, see `fractalgd.explorer`):

- `GET /` the page, `GET /explorer.js` its script (package data in `fractalgd/explorer/web/`).
- `GET /api/config` → `{name, problem, view, axes: {x, y: {param, scale, center, width, min, max}},
  resolution: [W, H], max_side, class_names, colors}`: the base view the page starts from.
- `POST /api/render` `{client, view: {x: {center, width}, y: {...}}, resolution: [W, H],
  overrides: ["gd.eta=0.5", ...]}` → `{render_id, generation, name, view: {x, y: {param, scale,
  center, width, min, max}}, resolution, legend: [{id, name, color, count, fraction}],
  image: "data:image/png;base64,…", elapsed_s, pixel_steps}`. The PNG carries the recipe.
  The page asks at 1/4 resolution first, then at full resolution (progressive).
  A newer render request of the same `client` cancels this one: 409 `{"error", "superseded": true}`.
- `POST /api/dimension` `{render_id, classes?: [a, b]}` → the box count of the render's class
  boundary (`fractalgd.analysis.boxcount.BoxCount.to_dict()`: dimension, stderr, fit_range, sizes,
  counts, local_slopes, warnings) plus boundary_pixels and resolution.
- `POST /api/recipe` `{view, resolution, overrides}` → `{filename, toml}`: the resolved recipe of the
  view; `fractalgd render` of it gives the same labels.
- `POST /api/zoom-recipe` `{keyframes: [view, ...], resolution, overrides, factor?, frames_per_doubling?,
  fps?}` → `{filename, toml}`: a recipe with a `[zoom]` table for `fractalgd zoom`.

Errors are JSON `{"error": message}`: 400 for a bad view, resolution (> 4096 a side), override or
malformed JSON, 404 for unknown paths or forgotten renders, 413 for bodies over 1 MiB, 500 for a
bug (the server keeps running: http.server handles each request in its own thread).
"""

from __future__ import annotations

import json
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from fractalgd.config import Config, ConfigError
from fractalgd.explorer.session import Explorer, RequestError, Superseded

MAX_BODY = 1 << 20
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/explorer.js": ("explorer.js", "text/javascript")}


def static_file(name: str) -> bytes:
    return resources.files("fractalgd.explorer").joinpath("web", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    server_version = "fractalgd"
    protocol_version = "HTTP/1.1"

    @property
    def explorer(self) -> Explorer:
        return self.server.explorer  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        if getattr(self.server, "verbose", False):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the page aborted the request
            self.close_connection = True

    def send_json(self, status: int, data: dict) -> None:
        self.send_body(status, json.dumps(data).encode(), "application/json")

    def read_json(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise RequestError("Content-Length: not a number") from None
        if length > MAX_BODY:
            self.close_connection = True  # the unread body would be taken for the next request
            raise RequestError(f"request body of {length} bytes: at most {MAX_BODY}", 413)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(f"malformed JSON body: {error}") from None
        if not isinstance(body, dict):
            raise RequestError("the JSON body must be an object")
        return body

    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, content_type = STATIC[path]
            self.send_body(HTTPStatus.OK, static_file(name), content_type)
        elif path == "/api/config":
            self.send_json(HTTPStatus.OK, self.explorer.initial())
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def do_POST(self):  # noqa: N802
        routes = {
            "/api/render": self.explorer.render,
            "/api/dimension": self.explorer.dimension,
            "/api/recipe": self.explorer.recipe,
            "/api/zoom-recipe": self.explorer.zoom_recipe,
        }
        path = self.path.split("?", 1)[0]
        try:
            if path not in routes:
                self.close_connection = True
                raise RequestError(f"no such endpoint: POST {path}", 404)
            answer = routes[path](self.read_json())
        except RequestError as error:
            self.send_json(error.status, {"error": str(error)})
        except ConfigError as error:  # invalid recipe values, analysis errors (AnalysisError)
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except Superseded as error:
            self.send_json(HTTPStatus.CONFLICT, {"error": str(error), "superseded": True})
        except Exception as error:  # a bug: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})
        else:
            self.send_json(HTTPStatus.OK, answer)


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, explorer: Explorer, verbose: bool = False):
        super().__init__(address, Handler)
        self.explorer = explorer
        self.verbose = verbose

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def make_server(config: Config, host: str = "127.0.0.1", port: int = 8000, resolution: int = 512, **kw):
    """An ExplorerServer bound to (host, port) (0: any free port); call serve_forever() to run it."""
    return ExplorerServer((host, port), Explorer(config, resolution, **kw))


def serve(config: Config, host: str = "127.0.0.1", port: int = 8000, resolution: int = 512, announce=print):
    """Run the explorer until Ctrl-C; `announce` gets the URL line."""
    server = make_server(config, host, port, resolution)
    server.verbose = False
    announce(f"fractalgd explorer for '{config.name}' at {server.url}  (Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"warning: listening on {host}: anyone who can reach this address can run renders")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
