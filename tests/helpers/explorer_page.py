"""What the explorer's browser tests share: Debian's chromium through Playwright (or a one-line skip, a failure in
CI), `vaelab explore` in a child process, and the page's gestures and readings (a map point, a canvas's pixels, a
drawn digit, a small screenshot for the README)."""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
MAP = '.run[data-run="{}"] .map-overlay'


def chromium_path() -> str | None:
    return os.environ.get("VAELAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser():
    """Playwright and Debian's chromium; in CI their absence fails the test (it must never be skipped there)."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    if not chromium_path():
        missing.append("chromium (apt-get install -y chromium)")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        missing.append('the explore extra (pip install -e ".[explore]")')
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class Explorer:
    """`vaelab explore RUN... --no-browser` in a child process, stopped by `close`."""

    def __init__(self, runs: list[Path], timeout: float = 60):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, "-m", "vaelab", "explore", *map(str, runs), "--no-browser", "--quiet"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + timeout
        self.url = None
        while self.url is None:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"vaelab explore exited: {self.process.stderr.read()}")
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if match:
                self.url = match.group(1)
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("vaelab explore printed no URL")

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def open_page(browser, url: str, width: int = 1400, height: int = 1000):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    return page


def settle(page, run: int = 0):
    """Wait until the run's decodes, encodes and grid requests are answered."""
    page.wait_for_function(
        """(i) => { const v = explorer.views[i];
            return !v.decodes.busy && !v.grids.busy && !(v.encodes && v.encodes.busy); }""",
        arg=run,
        timeout=15_000,
    )


def map_point(page, run: int, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator(MAP.format(run)).bounding_box()
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def canvas_pixels(page, selector: str) -> list[int]:
    return page.evaluate(
        """(s) => { const c = document.querySelector(s);
            return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""",
        selector,
    )


def overlay_colour(page, run: int, uv_expression: str) -> list[int]:
    """The RGBA of run's map overlay at the plane point given by a JS expression of `v` (the run's view)."""
    return page.evaluate(
        """([i, expr]) => { const v = explorer.views[i];
            const [u, w] = new Function('v', `return ${expr}`)(v);
            const c = v.map.overlay; const r = window.devicePixelRatio || 1;
            return Array.from(c.getContext('2d').getImageData(Math.round(v.map.px(u) * r), Math.round(v.map.py(w) * r), 1, 1).data); }""",
        [run, uv_expression],
    )


def draw_digit(page, selector: str = "#draw"):
    """Two strokes on the drawing canvas: a loop and a tail (a rough 9)."""
    box = page.locator(selector).bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    loop = [
        at(0.5 + 0.18 * math.cos(2 * math.pi * k / 16), 0.35 + 0.15 * math.sin(2 * math.pi * k / 16)) for k in range(17)
    ]
    for stroke in (loop, [at(0.68, 0.35), at(0.62, 0.6), at(0.55, 0.85)]):
        page.mouse.move(*stroke[0])
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*point, steps=3)
        page.mouse.up()


def interpolate_between_map_points(page, run: int, steps: int):
    page.mouse.click(*map_point(page, run, 0.25, 0.3))
    page.click("#set-a")
    page.mouse.click(*map_point(page, run, 0.75, 0.7))
    page.click("#set-b")
    page.fill("#steps", str(steps))
    page.click("#interpolate")


def small_screenshot(page, path: Path, width: int = 1100):
    """The viewport, scaled down and reduced to 256 colours: a small PNG for the README."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot()))
    image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    image.convert("RGB").quantize(256, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(path, optimize=True)
    return path
