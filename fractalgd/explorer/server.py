"""`fractalgd serve`: a local web page to explore a recipe's plane by zooming (standard library only).

HTTP API (JSON bodies and answers; views in axis units, see `fractalgd.explorer`):

- `GET /?token=…` the page (the token is printed by `fractalgd serve`), `GET /explorer.js` its
  script (package data in `fractalgd/explorer/web/`).
- `GET /api/config` → `{name, problem, view, axes: {x, y: {param, scale, center, width, min, max}},
  resolution: [W, H], max_side, max_pixel_steps, steps, overrides, class_names, colors}`: the base
  view the page starts from.
- `POST /api/render` `{client, view: {x: {center, width}, y: {...}}, resolution: [W, H],
  overrides: ["gd.eta=0.5", ...]}` → `{render_id, generation, name, view: {x, y: {param, scale,
  center, width, min, max}}, resolution, dtype, legend: [{id, name, color, count, fraction}],
  image: "data:image/png;base64,…", elapsed_s, pixel_steps}`. The PNG carries the recipe.
  The page asks at 1/4 resolution first, then at full resolution (progressive).
  A newer render request of the same `client` cancels this one: 409 `{"error", "superseded": true}`.
- `GET /api/progress?client=…` → `{state: idle | waiting | rendering | done | superseded | failed,
  generation, resolution, done, total, fraction, elapsed_s, eta_s, queued?}`: the client's newest render.
- `POST /api/dimension` `{render_id, classes?: [a, b]}` → the box count of the render's class
  boundary (`fractalgd.analysis.boxcount.BoxCount.to_dict()`: dimension, stderr, fit_range, sizes,
  counts, local_slopes, warnings) plus boundary_pixels and resolution.
- `POST /api/recipe` `{view, resolution, overrides}` → `{filename, toml}`: the resolved recipe of the
  view; `fractalgd render` of it gives the same labels.
- `POST /api/zoom-recipe` `{keyframes: [view, ...], resolution, overrides, factor?, frames_per_doubling?,
  fps?}` → `{filename, toml}`: a recipe with a `[zoom]` table for `fractalgd zoom`.

Security (any web page the user visits can send requests to 127.0.0.1, so every request is checked):

- the `Host` must be a loopback name (`127.0.0.1`, `localhost`, `[::1]`) or the `--host`, with the
  server's port (DNS rebinding: a foreign name resolving to 127.0.0.1 is refused);
- an `Origin`, when sent, must be the server's own origin, and API calls must come from the page
  itself (`Sec-Fetch-Site` same-origin or none, when the browser sends it);
- `GET /` and every API call need the server's random token (`?token=` or `X-Fractalgd-Token`):
  a page that cannot read the printed URL cannot call the API;
- POST bodies must be `Content-Type: application/json` with a Content-Length ≤ 1 MiB (no CORS
  "simple" text/plain requests, no chunked bodies);
- requests change only the view, the resolution and whitelisted overrides (`session.allowed_overrides`):
  the explorer never imports or runs code named by a request; costs are capped (`session.check_cost`).

Robustness: sockets time out after `read_timeout` s of silence (a stalled client holds its thread
that long), at most `max_connections` connections are served at once (more get 503 with
Retry-After), the listen backlog is 128, and every malformed request gets a 4xx JSON answer
(never 501/505): `{"error": message}` — 400 bad JSON, view, resolution or override, 403 wrong
host, origin or token, 404 unknown path or forgotten render, 405 wrong method (with `Allow`), 408
a body that stalls, 409 superseded, 411 no Content-Length or chunked, 413 body over 1 MiB or a
render over the cost cap, 415 not JSON, 503 too many renders waiting (Retry-After). A bug answers
500 and the server keeps running. Answers are strict JSON: NaN and infinities are null.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, quote, urlsplit

from fractalgd.config import Config, ConfigError
from fractalgd.explorer.session import Explorer, RequestError, Superseded
from fractalgd.output.atomic import finite_json

MAX_BODY = 1 << 20
READ_TIMEOUT = 10.0  # seconds a socket may stay silent (while a request is read or an answer written)
MAX_CONNECTIONS = 64  # connections served at once (one thread each); more get a quick 503
MAX_REFUSING = 64  # threads answering those 503s at once; beyond, a connection is just closed
LISTEN_BACKLOG = 128
LINGER_S = 1.0  # after an answer, how long a closing connection still reads what the client sends
LINGER_BYTES = 4 * MAX_BODY
TOKEN_HEADER = "X-Fractalgd-Token"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
WILDCARD = ("0.0.0.0", "::", "")

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
}
GET_API = ("/api/config", "/api/progress")
POST_API = ("/api/render", "/api/dimension", "/api/recipe", "/api/zoom-recipe")
ROUTES = {**{p: ("GET", "HEAD") for p in (*STATIC, *GET_API)}, **{p: ("POST",) for p in POST_API}}
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip
CONTENT_LENGTH = re.compile(r"[0-9]{1,12}")


def static_file(name: str) -> bytes:
    return resources.files("fractalgd.explorer").joinpath("web", name).read_bytes()


def json_bytes(data) -> bytes:
    """Strict JSON: NaN and infinities are null (the page's JSON.parse would refuse them)."""
    return json.dumps(finite_json(data), allow_nan=False, separators=(",", ":")).encode()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:40]} is too large for a float")
    return value


def parse_json(raw: bytes):
    """Strict JSON (no NaN/Infinity, no overflowing numbers); RequestError (400) otherwise."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise RequestError("malformed JSON body: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, NaN, int digit limits
        raise RequestError(f"malformed JSON body: {error}") from None


def host_name(host: str) -> str:
    """How a bind address appears in a Host header (IPv6 in brackets), lower case."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback(host: str) -> bool:
    host = host_name(host)
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header → (name, port or None); None if it is not host[:port]."""
    value = value.strip().lower()
    match = re.fullmatch(r"(\[[0-9a-f:.]+\]|[a-z0-9.\-_]+)(?::([0-9]{1,5}))?", value)
    if match is None:
        return None
    return match.group(1), (int(match.group(2)) if match.group(2) else None)


class Handler(BaseHTTPRequestHandler):
    server_version = "fractalgd"
    protocol_version = "HTTP/1.1"
    server: ExplorerServer

    def setup(self):
        self.timeout = self.server.read_timeout  # StreamRequestHandler puts it on the socket
        self.linger = False
        super().setup()

    def finish(self):
        super().finish()
        if self.linger:
            self.lingering_close()

    def lingering_close(self) -> None:
        """Stop writing, then read (and drop) what the client still sends for a moment: closing a
        socket with unread data resets the connection, and the client would lose the answer."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            self.connection.settimeout(LINGER_S)
            drained = 0
            while drained < LINGER_BYTES and time.monotonic() < deadline:
                chunk = self.connection.recv(1 << 16)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def __getattr__(self, name: str):
        # http.server answers 501 for a method without a do_<METHOD>: every method comes here instead.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    @property
    def explorer(self) -> Explorer:
        return self.server.explorer

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        if getattr(self.server, "verbose", False):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # --- answers ---------------------------------------------------------------------------------

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:  # the page aborted the request, or stopped reading (a timeout)
            self.close_connection = True

    def send_json(self, status: int, data: dict, headers: dict | None = None) -> None:
        self.send_body(status, json_bytes(data), "application/json", headers)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request lines and headers) as JSON, never 505."""
        if self.request_version in ("HTTP/0.9", ""):
            self.request_version = "HTTP/1.0"  # answer with a status line
        if code == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            code = HTTPStatus.BAD_REQUEST
        self.close_connection = self.linger = True  # the rest of the request is not read
        self.send_json(code, {"error": message or HTTPStatus(code).phrase})

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not served")
            return False
        return True

    # --- checks ----------------------------------------------------------------------------------

    def check_host(self) -> str:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1:
            raise RequestError("Host: expected one Host header", 400)
        if not self.server.host_allowed(hosts[0]):
            raise RequestError(f"Host: '{hosts[0]}' is not this server; open {self.server.url_hint}", 403)
        return hosts[0].strip().lower()

    def check_origin(self, host: str, api: bool) -> None:
        origins = self.headers.get_all("Origin") or []
        if len(origins) > 1 or (origins and origins[0].strip().lower() != f"http://{host}"):
            raise RequestError(f"Origin: '{origins[0]}' is not this server's origin (http://{host})", 403)
        site = self.headers.get("Sec-Fetch-Site")
        if api and site is not None and site.strip().lower() not in ("same-origin", "none"):
            raise RequestError(f"Sec-Fetch-Site: {site}: the API answers its own page only", 403)

    def check_token(self, query: dict, page: bool) -> None:
        given = self.headers.get(TOKEN_HEADER) or (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.server.token.encode()):
            what = "the page" if page else "the API"
            raise RequestError(
                f"{'no' if not given else 'wrong'} token: {what} needs the URL printed by `fractalgd serve` "
                f"(…/?token=…){'' if page else f' or the {TOKEN_HEADER} header'}",
                403,
            )

    def read_json(self) -> dict:
        if self.headers.get("Transfer-Encoding") is not None:
            raise RequestError("Transfer-Encoding: chunked bodies are not read; send a Content-Length", 411)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            raise RequestError("Content-Length: a POST needs one", 411)
        if len(lengths) > 1 or not CONTENT_LENGTH.fullmatch(lengths[0].strip()):
            raise RequestError(f"Content-Length: expected one non-negative integer, got {', '.join(lengths)!r}")
        length = int(lengths[0])
        if length > MAX_BODY:
            raise RequestError(f"request body of {length} bytes: at most {MAX_BODY}", 413)
        kind = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            raise RequestError(f"Content-Type: expected application/json, got '{kind or 'none'}'", 415)
        raw = self.read_body(length)
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise RequestError("the JSON body must be an object")
        return body

    def read_body(self, length: int) -> bytes:
        """`length` bytes within `read_timeout` s overall (408 otherwise)."""
        chunks, left = [], length
        deadline = time.monotonic() + self.server.read_timeout
        try:
            while left > 0:
                chunk = self.rfile.read1(min(left, 1 << 16))
                if not chunk:
                    raise RequestError(f"body: {length - left} of the {length} bytes announced, then the end")
                chunks.append(chunk)
                left -= len(chunk)
                if left > 0 and time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError:
            raise RequestError(
                f"body: {length - left} of {length} bytes in {self.server.read_timeout:g} s", 408
            ) from None
        self.body_read = True
        return b"".join(chunks)

    # --- dispatch --------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Every method: checks in order (host, origin, path, method, token, body), then the answer."""
        self.body_read = False
        has_body = (
            self.headers.get("Transfer-Encoding") is not None
            or (self.headers.get("Content-Length") or "0").strip() != "0"
        )
        if has_body and self.command != "POST":
            self.close_connection = self.linger = True  # a body nobody reads would be taken for the next request
        headers = {}
        try:
            host = self.check_host()
            if not self.path.startswith("/"):
                raise RequestError(f"expected a path, got {self.path!r}")
            parts = urlsplit(self.path)
            path = parts.path
            api = path.startswith("/api/")
            self.check_origin(host, api)
            try:
                query = parse_qs(parts.query, max_num_fields=16)
            except ValueError:
                raise RequestError("query: too many fields") from None
            if path not in ROUTES:
                raise RequestError(f"no such {'endpoint' if api else 'page'}: {self.command} {path}", 404)
            allowed = ROUTES[path]
            if self.command not in allowed:
                headers["Allow"] = ", ".join(allowed)
                raise RequestError(f"{self.command} {path}: method not allowed (allow: {headers['Allow']})", 405)
            if path == "/" or api:
                self.check_token(query, page=not api)
            if self.command == "POST":
                answer = self.post(path, self.read_json())
                self.send_json(HTTPStatus.OK, answer)
            elif path in STATIC:
                name, content_type = STATIC[path]
                extra = {"Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY"} if path == "/" else {}
                self.send_body(HTTPStatus.OK, static_file(name), content_type, extra)
            elif path == "/api/config":
                self.send_json(HTTPStatus.OK, self.explorer.initial())
            else:  # /api/progress
                self.send_json(HTTPStatus.OK, self.explorer.progress((query.get("client") or [""])[0]))
        except RequestError as error:
            self.answer_error(error.status, {"error": str(error)}, {**headers, **error.headers}, has_body)
        except ConfigError as error:  # invalid recipe values, analysis errors (AnalysisError)
            self.answer_error(HTTPStatus.BAD_REQUEST, {"error": str(error)}, headers, has_body)
        except Superseded as error:
            self.send_json(HTTPStatus.CONFLICT, {"error": str(error), "superseded": True})
        except Exception as error:  # a bug: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            self.answer_error(
                HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"}, headers, has_body
            )

    def answer_error(self, status: int, data: dict, headers: dict, has_body: bool) -> None:
        if has_body and not self.body_read:
            self.close_connection = True  # the unread body would be taken for the next request
            self.linger = status != HTTPStatus.REQUEST_TIMEOUT  # a stalled client is not waited for
        self.send_json(status, data, headers)

    def post(self, path: str, body: dict) -> dict:
        explorer = self.explorer
        routes = {"/api/render": explorer.render, "/api/dimension": explorer.dimension,
                  "/api/recipe": explorer.recipe, "/api/zoom-recipe": explorer.zoom_recipe}  # fmt: skip
        return routes[path](body)


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's HTTP server: one thread per connection, at most `max_connections` at once."""

    daemon_threads = True
    block_on_close = False  # server_close() does not wait for stalled clients
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address, explorer: Explorer, verbose: bool = False, read_timeout: float = READ_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, token: str | None = None):  # fmt: skip
        host = address[0]
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
            address = (host.strip("[]"), *address[1:])
        super().__init__(address, Handler)
        self.explorer = explorer
        self.verbose = verbose
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.token = token or secrets.token_urlsafe(24)
        self.bind_host = host
        self._count_lock = threading.Lock()
        self._active = 0
        self._refusing = 0
        self.refused = 0  # connections answered 503 (or closed) because `max_connections` were busy

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def display_host(self) -> str:
        """The host of the printed URL: the --host, or a loopback address for a wildcard."""
        host = self.bind_host.strip().lower()
        return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host_name(host))

    @property
    def url(self) -> str:
        """The page's address, token included (what `fractalgd serve` prints)."""
        return f"http://{self.display_host}:{self.port}/?token={quote(self.token)}"

    @property
    def url_hint(self) -> str:
        return f"http://{self.display_host}:{self.port}/?token=… (printed by `fractalgd serve`)"

    def allowed_names(self) -> set[str]:
        names = set(LOOPBACK)
        host = self.bind_host.strip().lower()
        if host in WILDCARD:
            for name in (socket.gethostname(), socket.getfqdn()):
                names.add(name.lower())
        else:
            names.add(host_name(host))
        return names

    def host_allowed(self, value: str) -> bool:
        """Loopback names or the --host, with this server's port (no port: port 80)."""
        parsed = split_host(value)
        if parsed is None:
            return False
        name, port = parsed
        if (port or 80) != self.port:
            return False
        if name in self.allowed_names():
            return True
        if self.bind_host.strip().lower() in WILDCARD:  # any address of this machine, as an IP literal
            try:
                ipaddress.ip_address(name.strip("[]"))
                return True
            except ValueError:
                return False
        return False

    # --- the connection limit --------------------------------------------------------------------

    def process_request(self, request, client_address):
        with self._count_lock:
            serve = self._active < self.max_connections
            refuse = not serve and self._refusing < MAX_REFUSING
            if serve:
                self._active += 1
            elif refuse:
                self._refusing += 1
            self.refused += not serve
        if serve:
            try:
                super().process_request(request, client_address)
            except BaseException:
                with self._count_lock:
                    self._active -= 1
                raise
        elif refuse:
            threading.Thread(target=self._refuse, args=(request,), daemon=True).start()
        else:  # overloaded: not even a 503
            self.shutdown_request(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self._active -= 1

    def _refuse(self, request) -> None:
        """A quick 503 for a connection over the limit (its request read first, so no reset)."""
        try:
            request.settimeout(1.0)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < (1 << 16):
                chunk = request.recv(1 << 14)
                if not chunk:
                    break
                data += chunk
            body = json_bytes({"error": f"busy: {self.max_connections} connections are open; try again in 1 s"})
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
            with self._count_lock:
                self._refusing -= 1


def make_server(config: Config, host: str = "127.0.0.1", port: int = 8000, resolution: int = 512, *,
                read_timeout: float = READ_TIMEOUT, max_connections: int = MAX_CONNECTIONS, token: str | None = None,
                **kw) -> ExplorerServer:  # fmt: skip
    """An ExplorerServer bound to (host, port) (0: any free port); call serve_forever() to run it.

    `server.url` is the page's address with its random `server.token`; `kw` goes to `Explorer`."""
    explorer = Explorer(config, resolution, **kw)
    return ExplorerServer(
        (host, port), explorer, read_timeout=read_timeout, max_connections=max_connections, token=token
    )


def exposure_warning(server: ExplorerServer) -> str | None:
    """What listening on a non-loopback address exposes, or None on loopback."""
    host = server.bind_host
    if is_loopback(host):
        return None
    where = "every network interface" if host.strip().lower() in WILDCARD else host
    return (
        f"warning: listening on {where} (port {server.port}): anyone who can reach it and learns the URL's token "
        "can run renders on this machine's CPU/GPU and read this recipe and its images; the traffic is plain "
        "HTTP, so the token can be read on the network. Use --host 127.0.0.1 (and an SSH tunnel) unless you trust it."
    )


def serve(config: Config, host: str = "127.0.0.1", port: int = 8000, resolution: int = 512, announce=print):
    """Run the explorer until Ctrl-C; `announce` gets the URL line (and a warning off loopback)."""
    server = make_server(config, host, port, resolution)
    announce(f"fractalgd explorer for '{config.name}' at {server.url}  (Ctrl-C to stop)")
    warning = exposure_warning(server)
    if warning:
        announce(warning)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
