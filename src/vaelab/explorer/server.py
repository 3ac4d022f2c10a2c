"""The explorer's web server (Starlette on uvicorn): the static page, and a JSON API over `session.Session`s.

Routes (`R` is a run's index in the order given on the command line):

    GET  /                             the page (static HTML + JS + CSS from `static/`)
    GET  /api/runs                     every run: kind, shape, latent dimension, capabilities, KL per dimension,
                                       planes (the principal plane with its share of variance)
    GET  /api/runs/R/points            test posterior means [N, D] and labels (the map's scatter)
    GET  /api/runs/R/test/I.png        test image I
    POST /api/runs/R/decode?format=raw|png     {"z": [D numbers]} -> one image (raw: uint8 H x W x C bytes)
    POST /api/runs/R/grid?format=raw|png       {"origin", "axes", "box": [u0, u1, v0, v1], "n"} -> one mosaic
    POST /api/runs/R/encode[?invert=1][&test=I]  an image file as the body (or test image I) -> the posterior
    POST /api/runs/R/interpolate       {"a", "b", "steps", "spherical"} -> path and images
    POST /api/runs/R/sample            {"n", "seed", "sampler"} -> latent points and images

A bad request gets a 4xx answer whose body is one line of JSON, {"error": "..."}; the server keeps serving.
Model work runs in a worker thread, one computation at a time (two cores: parallel decodes only contend).
"""

from __future__ import annotations

import errno
import json
import math
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
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vaelab.errors import ConfigError
from vaelab.explorer import images
from vaelab.explorer.session import Session

MAX_JSON_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 16 << 20
MAX_ABS_Z = 100.0  # the prior is N(0, I): a coordinate beyond this is a mistake, not a place to look at
MAX_STEPS, MAX_SAMPLES, MAX_GRID = 64, 64, 32
IMAGE_FORMATS = ("raw", "png")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


# --- request parsing and validation -----------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"request body too large ({int(declared):,} bytes; at most {limit:,})", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body too large (more than {limit:,} bytes)", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise BadRequest("the body is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def vector(value: Any, name: str, length: int) -> list[float]:
    """A list of `length` finite numbers of moderate size."""
    if not isinstance(value, list):
        raise BadRequest(f"{name}: expected a list of {length} numbers, got {type(value).__name__}")
    if len(value) != length:
        raise BadRequest(f"{name}: expected {length} numbers (the latent dimension), got {len(value)}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise BadRequest(f"{name}: every entry must be a number")
    if not all(math.isfinite(v) for v in value if isinstance(v, float)):
        raise BadRequest(f"{name}: holds NaN or infinite values")
    if not all(-MAX_ABS_Z <= v <= MAX_ABS_Z for v in value):  # compares huge integers exactly, without float()
        raise BadRequest(f"{name}: values must lie in [-{MAX_ABS_Z:g}, {MAX_ABS_Z:g}] (the prior is N(0, I))")
    return [float(v) for v in value]


def integer(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"{name}: must be an integer in {lo}..{hi}, got {value!r}")
    return value


def image_format(request: Request) -> str:
    fmt = request.query_params.get("format", "raw")
    if fmt not in IMAGE_FORMATS:
        raise BadRequest(f"format: must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    return fmt


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
        index = request.path_params["run"]
        if not 0 <= index < len(self.sessions):
            raise BadRequest(f"run {index}: no such run (0..{len(self.sessions) - 1})", 404)
        return self.sessions[index]

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
        index = integer(request.path_params["index"], "test image", 0, len(session.test_images) - 1)
        return Response(images.png_bytes(session.test_image(index)), media_type="image/png")

    async def decode(self, request: Request) -> Response:
        session, fmt = self.session_of(request), image_format(request)
        z = vector((await read_json(request)).get("z"), "z", session.latent_dim)
        return image_response((await self.compute(session.decode, [z]))[0], fmt)

    async def grid(self, request: Request) -> Response:
        session, fmt = self.session_of(request), image_format(request)
        body = await read_json(request)
        d = session.latent_dim
        origin = vector(body.get("origin"), "origin", d)
        axes = body.get("axes")
        if not isinstance(axes, list) or len(axes) != 2:
            raise BadRequest("axes: expected two lists of numbers (the plane's directions)")
        axes = [vector(axes[0], "axes[0]", d), vector(axes[1], "axes[1]", d)]
        box = vector(body.get("box"), "box", 4)
        if not (box[0] < box[1] and box[2] < box[3]):
            raise BadRequest("box: expected [u0, u1, v0, v1] with u0 < u1 and v0 < v1")
        n = integer(body.get("n", 15), "n", 2, MAX_GRID)
        return image_response(await self.compute(session.grid, origin, axes, tuple(box), n), fmt)

    async def encode(self, request: Request) -> Response:
        session = self.encoder_of(request)
        invert = request.query_params.get("invert", "0") in ("1", "true", "yes")
        note = None
        if "test" in request.query_params:
            text = request.query_params["test"]
            if not text.isdigit():
                raise BadRequest(f"test: must be a test image index, got {text!r}")
            image = session.test_image(integer(int(text), "test", 0, len(session.test_images) - 1))
        else:
            body = await read_body(request, MAX_UPLOAD_BYTES)
            try:
                image, note = await self.compute(images.read_upload, body, session.shape, invert)
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
        a = vector(body.get("a"), "a", session.latent_dim)
        b = vector(body.get("b"), "b", session.latent_dim)
        steps = integer(body.get("steps", 10), "steps", 2, MAX_STEPS)
        spherical = body.get("spherical", False)
        if not isinstance(spherical, bool):
            raise BadRequest("spherical: must be true or false")
        path, decoded = await self.compute(session.interpolate, a, b, steps, spherical)
        return JSONResponse({"z": path, "images": [images.data_url(x) for x in decoded]})

    async def sample(self, request: Request) -> Response:
        session = self.session_of(request)
        body = await read_json(request)
        n = integer(body.get("n", 8), "n", 1, MAX_SAMPLES)
        seed = body.get("seed")
        if seed is not None:
            seed = integer(seed, "seed", 0, 2**63 - 1)
        sampler = body.get("sampler", "N(0, I)")
        if sampler not in session.info()["samplers"]:
            raise BadRequest(f"sampler: {sampler!r} is not one of {session.info()['samplers']}")
        z, decoded = await self.compute(session.sample, n, seed, sampler)
        return JSONResponse({"z": z, "images": [images.data_url(x) for x in decoded]})

    async def bad_request(self, request: Request, exc: BadRequest) -> Response:
        return error(str(exc), exc.status)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return error(exc.detail or "error", exc.status_code)

    async def internal_error(self, request: Request, exc: Exception) -> Response:  # a bug: uvicorn logs the traceback
        return error(f"internal error: {type(exc).__name__}: {exc}", 500)


def create_app(sessions: list[Session]) -> Starlette:
    """The ASGI application serving `sessions` (already opened: each model is loaded once, here)."""
    api = Api(sessions)
    run = "/api/runs/{run:int}"
    routes = [
        Route("/", api.page),
        Route("/api/runs", api.runs),
        Route(f"{run}/points", api.points),
        Route(run + "/test/{index:int}.png", api.test_image),
        Route(f"{run}/decode", api.decode, methods=["POST"]),
        Route(f"{run}/grid", api.grid, methods=["POST"]),
        Route(f"{run}/encode", api.encode, methods=["POST"]),
        Route(f"{run}/interpolate", api.interpolate, methods=["POST"]),
        Route(f"{run}/sample", api.sample, methods=["POST"]),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]
    handlers = {BadRequest: api.bad_request, HTTPException: api.http_error, Exception: api.internal_error}
    return Starlette(routes=routes, exception_handlers=handlers)


def static_dir() -> Path:
    return Path(str(resources.files("vaelab.explorer") / "static"))


# --- serving ------------------------------------------------------------------------------------------------

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


def serve(sessions: list[Session], sock: socket.socket, open_browser: bool = True) -> None:
    """Serve the page and the API on the bound socket until Ctrl+C; opens the browser once it listens."""
    import uvicorn

    config = uvicorn.Config(create_app(sessions), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    url = url_of(sock)
    print(
        f"vaelab explore: {url}  ({len(sessions)} run{'s' * (len(sessions) > 1)}; Ctrl+C stops the server)", flush=True
    )
    if open_browser:

        def open_when_listening():
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=open_when_listening, daemon=True).start()
    server.run(sockets=[sock])
