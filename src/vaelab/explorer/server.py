"""The explorer's web server (Starlette on uvicorn): the static page, and a JSON API over `session.Session`s.

Routes (`R` is a run's index in the order given on the command line):

    GET  /                             the page (static HTML + JS + CSS from `static/`)
    GET  /api/runs                     every run: kind, shape, latent dimension, capabilities, KL per dimension,
                                       planes (the principal plane with its share of variance)
    GET  /api/runs/R/points            test posterior means [N, D], labels and known factors (the map's scatter)
    GET  /api/runs/R/test/I.png        test image I
    POST /api/runs/R/decode?format=raw|png     {"z": [D numbers]} -> one image (raw: uint8 H x W x C bytes)
    POST /api/runs/R/grid?format=raw|png       {"origin", "axes", "box": [u0, u1, v0, v1], "n"} -> one mosaic
    POST /api/runs/R/encode[?invert=auto|1|0][&normalize=1|0][&test=I]
                                       an image file as the body (or test image I) -> the posterior; for digit-like
                                       data an upload is inverted when its border is light (invert=auto) and cropped,
                                       scaled and centred like the data's digits (normalize=1; see `ink`)
    POST /api/runs/R/interpolate       {"a", "b", "steps", "spherical"} -> path and images
    POST /api/runs/R/sample            {"n", "seed", "sampler"} -> latent points and images

A bad request gets a 4xx answer whose body is one line of JSON, {"error": "..."}; the server keeps serving. Every
number a request carries (in its path, query, headers or JSON body) is parsed with bounds by `params`. A bug gets a
500 whose message says nothing of the exception (its traceback goes to the server's terminal, once); a client that
goes away mid-request gets nothing, and nothing is printed.
Model work runs in a worker thread, one computation at a time (two cores: parallel decodes only contend).
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import threading
import time
import webbrowser
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vaelab.errors import ConfigError, VaelabError, one_line
from vaelab.explorer import images, params
from vaelab.explorer.params import BadRequest
from vaelab.explorer.session import Session

MAX_JSON_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 16 << 20
MAX_ABS_Z = 100.0  # the prior is N(0, I): a coordinate beyond this is a mistake, not a place to look at
MAX_STEPS, MAX_SAMPLES, MAX_GRID = 64, 64, 32
MAX_SEED = 2**63 - 1
MAX_DECLARED = 10**params.MAX_DIGITS - 1  # a Content-Length is parsed like any integer, then compared with the limit
IMAGE_FORMATS = ("raw", "png")


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


# --- request bodies and query parameters (every number through `params`) -------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    declared = None if declared is None else params.integer_text(declared, "Content-Length", 0, MAX_DECLARED)
    if declared is not None and declared > limit:
        raise BadRequest(f"request body too large ({declared:,} bytes; at most {limit:,})", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body too large (more than {limit:,} bytes)", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    return params.json_object(await read_body(request, MAX_JSON_BYTES))


def image_format(request: Request) -> str:
    return params.choice(request.query_params.get("format", "raw"), "format", IMAGE_FORMATS)


def image_response(image, fmt: str) -> Response:
    if fmt == "png":
        return Response(images.png_bytes(image), media_type="image/png")
    h, w, c = image.shape
    return Response(images.raw_bytes(image), media_type="application/octet-stream", headers={"X-Shape": f"{h},{w},{c}"})


# --- the application ----------------------------------------------------------------------------------------


class Api:
    """The explorer's routes over opened sessions (each model loaded once); one computation at a time."""

    def __init__(self, sessions: list[Session]):
        self.sessions = sessions
        self.limiter = anyio.CapacityLimiter(1)

    async def compute(self, fn, *args):
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    def session_of(self, request: Request) -> Session:
        text, last = request.path_params["run"], len(self.sessions) - 1
        try:
            return self.sessions[params.integer_text(text, "run", 0, last)]
        except BadRequest:
            raise BadRequest(f"run {params.shown(text)}: no such run (0..{last})", 404) from None

    def encoder_of(self, request: Request) -> Session:
        session = self.session_of(request)
        if not session.has_encoder:
            raise BadRequest(session.info()["no_encoder_reason"], 409)
        return session

    async def page(self, request: Request) -> Response:
        return FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-cache"})

    async def runs(self, request: Request) -> Response:
        return JSONResponse({"runs": [dict(s.info(), id=i) for i, s in enumerate(self.sessions)]})

    async def points(self, request: Request) -> Response:
        return JSONResponse(self.session_of(request).points())

    async def test_image(self, request: Request) -> Response:
        session = self.session_of(request)
        index = params.integer_text(request.path_params["index"], "test image", 0, len(session.test_images) - 1)
        return Response(images.png_bytes(session.test_image(index)), media_type="image/png")

    async def decode(self, request: Request) -> Response:
        session, fmt = self.session_of(request), image_format(request)
        z = params.vector((await read_json(request)).get("z"), "z", session.latent_dim, MAX_ABS_Z)
        return image_response((await self.compute(session.decode, [z]))[0], fmt)

    async def grid(self, request: Request) -> Response:
        session, fmt = self.session_of(request), image_format(request)
        body = await read_json(request)
        d = session.latent_dim
        origin = params.vector(body.get("origin"), "origin", d, MAX_ABS_Z)
        axes = body.get("axes")
        if not isinstance(axes, list) or len(axes) != 2:
            raise BadRequest("axes: expected two lists of numbers (the plane's directions)")
        axes = [params.vector(axes[i], f"axes[{i}]", d, MAX_ABS_Z) for i in range(2)]
        box = params.vector(body.get("box"), "box", 4, MAX_ABS_Z, "u0, u1, v0, v1")
        if not (box[0] < box[1] and box[2] < box[3]):
            raise BadRequest("box: expected [u0, u1, v0, v1] with u0 < u1 and v0 < v1")
        n = params.integer(body.get("n", 15), "n", 2, MAX_GRID)
        return image_response(await self.compute(session.grid, origin, axes, tuple(box), n), fmt)

    async def encode(self, request: Request) -> Response:
        session = self.encoder_of(request)
        invert = request.query_params.get("invert", "auto")
        invert = None if invert == "auto" else params.flag(invert, "invert")
        normalize = params.flag(request.query_params.get("normalize", "1"), "normalize")
        box = session.ink_box if normalize else None
        note = None
        if "test" in request.query_params:
            index = params.integer_text(request.query_params["test"], "test", 0, len(session.test_images) - 1)
            image = session.test_image(index)
        else:
            body = await read_body(request, MAX_UPLOAD_BYTES)
            try:
                image, note = await self.compute(images.read_upload, body, session.shape, invert, box)
            except images.ImageError as exc:
                raise BadRequest(str(exc), exc.status) from None
        result = await self.compute(session.encode, image)
        result["input"] = images.data_url(image)
        result["reconstruction"] = images.data_url(result["reconstruction"])
        result["samples"] = [images.data_url(s) for s in result["samples"]]
        result["note"] = note
        return JSONResponse(result)

    async def interpolate(self, request: Request) -> Response:
        session = self.session_of(request)
        body = await read_json(request)
        a = params.vector(body.get("a"), "a", session.latent_dim, MAX_ABS_Z)
        b = params.vector(body.get("b"), "b", session.latent_dim, MAX_ABS_Z)
        steps = params.integer(body.get("steps", 10), "steps", 2, MAX_STEPS)
        spherical = params.boolean(body.get("spherical", False), "spherical")
        path, decoded = await self.compute(session.interpolate, a, b, steps, spherical)
        return JSONResponse({"z": path, "images": [images.data_url(x) for x in decoded]})

    async def sample(self, request: Request) -> Response:
        session = self.session_of(request)
        body = await read_json(request)
        n = params.integer(body.get("n", 8), "n", 1, MAX_SAMPLES)
        seed = body.get("seed")
        seed = None if seed is None else params.integer(seed, "seed", 0, MAX_SEED)
        sampler = params.choice(body.get("sampler", "N(0, I)"), "sampler", session.info()["samplers"])
        z, decoded = await self.compute(session.sample, n, seed, sampler)
        return JSONResponse({"z": z, "images": [images.data_url(x) for x in decoded]})

    async def bad_request(self, request: Request, exc: BadRequest) -> Response:
        return error(str(exc), exc.status)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return error(exc.detail or "error", exc.status_code)

    async def disconnected(self, request: Request, exc: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody reads it: the client went away mid-request (an aborted upload)

    async def run_error(self, request: Request, exc: VaelabError) -> Response:
        # a run's file damaged or removed while serving (a sampler file, say): its one line, a conflict, not a bug
        return error(one_line(str(exc)), 409)

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        # a bug: uvicorn logs its traceback once; the answer carries no text of the exception (it may hold paths)
        return error("internal error (the server's terminal shows what went wrong)", 500)


def create_app(sessions: list[Session]) -> Starlette:
    """The ASGI application serving `sessions` (already opened: each model is loaded once, here)."""
    api = Api(sessions)
    run = "/api/runs/{run}"  # path parameters are text, parsed with bounds by `params` (not Starlette's int())
    routes = [
        Route("/", api.page),
        Route("/api/runs", api.runs),
        Route(f"{run}/points", api.points),
        Route(run + "/test/{index}.png", api.test_image),
        Route(f"{run}/decode", api.decode, methods=["POST"]),
        Route(f"{run}/grid", api.grid, methods=["POST"]),
        Route(f"{run}/encode", api.encode, methods=["POST"]),
        Route(f"{run}/interpolate", api.interpolate, methods=["POST"]),
        Route(f"{run}/sample", api.sample, methods=["POST"]),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    handlers = {
        BadRequest: api.bad_request,
        HTTPException: api.http_error,
        ClientDisconnect: api.disconnected,
        VaelabError: api.run_error,
        Exception: api.internal_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers)


def static_dir() -> Path:
    return Path(str(resources.files("vaelab.explorer") / "static"))


# --- serving ------------------------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), port 0 for a free one; a one-line `ConfigError` when that fails."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port: must lie in 0..65535, got {port}")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"host: cannot resolve {host!r} ({exc})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        what = f"port {port} is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise ConfigError(
            f"cannot serve on {host}:{port}: {what} (give another --port, or none for a free one)"
        ) from None
    sock.listen(128)  # connections wait in the backlog from now on, so the printed URL answers at once
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether the bound address is this machine's own (127.0.0.0/8, ::1; `localhost` resolves to one of them)."""
    address = ipaddress.ip_address(sock.getsockname()[0].split("%")[0])  # an IPv6 address may carry its zone
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback  # ::ffff:127.0.0.1 too


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


def serve(sessions: list[Session], sock: socket.socket, open_browser: bool = True) -> None:
    """Serve the page and the API on the bound socket until Ctrl+C (then raises KeyboardInterrupt, once uvicorn has
    shut down); opens the browser once it listens."""
    import uvicorn

    held = []  # Ctrl+C pressed before uvicorn's own handler was in place, or handed back by uvicorn once it stopped

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            if held:  # pressed while uvicorn started: stop it the way its own handler would
                self.handle_exit(signal.SIGINT, None)
            await super().startup(sockets)

    config = uvicorn.Config(create_app(sessions), log_level="warning", access_log=False, lifespan="off")
    server = Server(config)
    url = url_of(sock)
    # A KeyboardInterrupt raised inside asyncio.run before uvicorn catches signals leaves it half-started ("coroutine
    # 'Server.serve' was never awaited"): from here on Ctrl+C is only noted, and raised once serving has ended.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum)) if main_thread else None
    try:
        print(
            f"vaelab explore: {url}  ({len(sessions)} run{'s' * (len(sessions) > 1)}; Ctrl+C stops the server)",
            flush=True,
        )
        if open_browser:

            def open_when_listening():
                while not server.started and not server.should_exit:
                    time.sleep(0.05)
                if server.started:
                    webbrowser.open(url)

            threading.Thread(target=open_when_listening, daemon=True).start()
        server.run(sockets=[sock])
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if held:
        raise KeyboardInterrupt
