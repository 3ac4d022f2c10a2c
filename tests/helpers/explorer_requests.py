"""Hypothesis strategies for requests to the explorer's HTTP API: JSON bodies holding huge integers, non-ASCII
digits, NaN and wrong types; path segments and queries of every such kind; image files in every Pillow mode.

A request is a `Call` (method, path with its query already URL-encoded, body, headers). JSON bodies are written
by `dump`, which also writes what `json.dumps` cannot or will not: integers of thousands of digits (Python's int
refuses to print more than 4,300) and bare tokens such as NaN, 1e999 or an Arabic-Indic digit.
"""

from __future__ import annotations

import io
import json
import urllib.parse
import warnings
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from PIL import Image


@dataclass
class Call:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (a huge integer, NaN, a non-ASCII digit: valid JSON or not)."""

    text: str


def dump(value) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


texts = st.characters(exclude_categories=("Cs",))  # no lone surrogates: paths and queries are UTF-8
NON_ASCII_DIGITS = "٠١٢٣٤٥٦٧٨٩０１２３４５６７８９۳३৩߃᠓𝟑"  # Arabic-Indic, full-width, Persian, Devanagari, ...


def digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Decimal digits, no leading zero, optionally signed."""
    return st.builds(
        lambda sign, first, rest: sign + first + rest,
        st.sampled_from(["", "-"]),
        st.sampled_from("123456789"),
        st.text("0123456789", min_size=min_size - 1, max_size=max_size - 1),
    )


huge_integer_text = digits(31, 6000)  # past MAX_DIGITS, and past Python's 4,300-digit int() limit
non_ascii_integer_text = st.text(NON_ASCII_DIGITS + "0123456789", min_size=1, max_size=8).filter(
    lambda t: not t.isascii()
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    huge_integer_text.map(Raw),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "0.5e+308", "٣", "３"]).map(Raw),
    non_ascii_integer_text,  # as a string
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)


def latent(d: int) -> st.SearchStrategy:
    """Mostly a list of d numbers in the prior's range (so that the request gets past the first check), else
    anything: a huge integer among them, a wrong length, a wrong type."""
    good = st.lists(st.floats(-3, 3), min_size=d, max_size=d)
    near = st.lists(st.one_of(st.floats(-3, 3), json_scalars), min_size=d, max_size=d)
    return st.one_of(good, good, near, st.lists(json_scalars, max_size=d + 2), json_values)


def integer_field(lo: int, hi: int) -> st.SearchStrategy:
    return st.one_of(st.integers(lo, hi), st.integers(lo, hi), st.integers(-(2**80), 2**80), json_scalars)


def json_body(d: int, endpoint: str) -> st.SearchStrategy[dict]:
    """A body for `endpoint` with its fields mostly plausible, each possibly hostile, plus stray keys."""
    fields = {
        "decode": {"z": latent(d)},
        "grid": {
            "origin": latent(d),
            "axes": st.one_of(st.tuples(latent(d), latent(d)).map(list), json_values),
            "box": st.one_of(st.just([-1.5, 1.5, -1.5, 1.5]), latent(4)),
            "n": integer_field(2, 8),
        },
        "interpolate": {
            "a": latent(d),
            "b": latent(d),
            "steps": integer_field(2, 8),
            "spherical": st.booleans() | json_scalars,
        },
        "sample": {
            "n": integer_field(1, 8),
            "seed": integer_field(0, 2**63),
            "sampler": st.just("N(0, I)") | json_scalars,
        },
    }[endpoint]
    return st.fixed_dictionaries({}, optional=fields).flatmap(
        lambda body: st.dictionaries(st.text(max_size=6), json_values, max_size=2).map(lambda extra: {**extra, **body})
    )


def segment(valid: list[str]) -> st.SearchStrategy[str]:
    """A path segment or query value: mostly a valid one (so that the request reaches its handler), else a number
    written in a way the server must refuse."""
    hostile = st.one_of(
        huge_integer_text.map(lambda t: t.lstrip("-")),
        non_ascii_integer_text,
        st.sampled_from(["-1", "+1", " 1", "1 ", "01", "0x1", "1e3", "1.0", "", "nan", "٣", "３", "1_000"]),
        st.text(texts, max_size=12),
    )
    return st.integers(0, 3).flatmap(lambda k: hostile if k == 0 else st.sampled_from(valid))


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# --- image files in every mode Pillow has ---------------------------------------------------------------------

MODES = ["1", "CMYK", "F", "HSV", "I", "I;16", "I;16B", "I;16L", "L", "LA", "LAB", "P", "PA", "RGB", "RGBA", "RGBX"]
MODES += ["YCbCr"]
FORMATS = ["PNG", "TIFF", "JPEG", "BMP", "GIF", "WEBP", "PPM", "IM", "TGA", "ICO", "SPIDER", "JPEG2000", "PCX"]


def image_in(mode: str, width: int, height: int, seed: int, transparency: bool) -> Image.Image:
    """A random image in `mode` (float modes take values of any finite size; some palettes are transparent)."""
    rng = np.random.default_rng(seed)
    if mode == "F":
        return Image.fromarray((rng.standard_normal((height, width)) * 10.0 ** rng.integers(-3, 30)).astype("f4"))
    image = Image.new(mode, (width, height))
    image.frombytes(rng.integers(0, 256, len(image.tobytes()), dtype=np.uint8).tobytes())
    if mode == "P":
        image.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
        if transparency:
            image.info["transparency"] = int(rng.integers(0, 256))
    return image


def encoded(image: Image.Image, fmt: str) -> bytes | None:
    """The image saved as `fmt`, or None where Pillow cannot write that mode in that format."""
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image.save(buffer, fmt)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return buffer.getvalue()


@st.composite
def image_files(draw) -> tuple[str, str, bytes]:
    """(mode, format, file bytes) of a random image Pillow could write; some files cut short or with flipped bytes."""
    while True:
        mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS))
        size = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        image = image_in(mode, *size, draw(st.integers(0, 2**32 - 1)), draw(st.booleans()))
        data = encoded(image, fmt)
        if data is not None:
            break
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "flip"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        at = draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8))
        flipped = bytearray(data)
        for i in at:
            flipped[i] ^= 0xFF
        data = bytes(flipped)
    return mode, fmt, data


# --- whole requests --------------------------------------------------------------------------------------------


@st.composite
def calls(draw, runs: list[dict]) -> Call:
    """One request to the explorer serving `runs` (the /api/runs answer's list): any route, hostile parameters."""
    run_index = draw(st.integers(0, len(runs) - 1))
    info = runs[run_index]
    run = quote(draw(segment([str(run_index)])))
    api = f"/api/runs/{run}"
    kind = draw(
        st.sampled_from(
            ["page", "runs", "points", "test", "decode", "grid", "encode", "interpolate", "sample", "static", "other"]
        )
    )
    if kind == "page":
        return Call("GET", "/")
    if kind == "runs":
        return Call("GET", "/api/runs")
    if kind == "points":
        return Call(draw(st.sampled_from(["GET", "GET", "POST", "DELETE"])), f"{api}/points")
    if kind == "test":
        index = draw(segment(["0", "3", str(info["n_test"] - 1), str(info["n_test"])]))
        return Call("GET", f"{api}/test/{quote(index)}.png")
    if kind == "static":
        name = draw(st.sampled_from(["main.js", "run.js", "explorer.css", "index.html", "../server.py", "%00", "x"]))
        return Call("GET", f"/static/{name}")
    if kind == "other":
        path = draw(st.text(texts, max_size=30))
        return Call(draw(st.sampled_from(["GET", "POST", "PUT", "PATCH"])), "/" + quote(path).replace("%2F", "/"))
    query = {}
    if draw(st.booleans()):
        query["format"] = draw(st.one_of(st.sampled_from(["raw", "png"]), st.text(texts, max_size=6)))
    if kind == "encode":
        if draw(st.booleans()):
            query["invert"] = draw(segment(["0", "1", "true", "no"]))
        if draw(st.booleans()):
            query["test"] = draw(segment(["0", "5", str(info["n_test"] - 1), str(info["n_test"])]))
            body = None
        else:
            _, _, body = draw(image_files())
        path = f"{api}/encode" + ("?" + urllib.parse.urlencode(query) if query else "")
        return Call("POST", path, body, {"Content-Type": "application/octet-stream"})
    path = f"{api}/{kind}" + ("?" + urllib.parse.urlencode(query) if query else "")
    if draw(st.integers(0, 9)) == 0:
        body = draw(json_values)
    else:
        body = draw(json_body(info["latent_dim"], kind))
    return Call("POST", path, dump(body).encode(), {"Content-Type": "application/json"})
