"""The explorer's page in a real headless Chromium (Debian's `chromium`, driven by Playwright), served by the real
`vaelab explore` command for tiny runs trained here. Screenshots go to the test's temporary folder.

The same code makes the README's screenshot from real runs:
    python tests/explorer/test_page.py runs/mnist-mini-mlp-z2 runs/mnist-mini-conv-z10 --out docs/explorer.png
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest

from tests.helpers.explorer_page import (
    Explorer,
    canvas_pixels,
    chromium_path,
    draw_digit,
    interpolate_between_map_points,
    map_point,
    open_page,
    overlay_colour,
    require_browser,
    settle,
    small_screenshot,
)

pytestmark = pytest.mark.e2e


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(digits_npz, tmp_path_factory):
    require_browser()
    from vaelab.cli import main

    data = digits_npz(400, 100)
    root = tmp_path_factory.mktemp("browser-runs")
    specs = {
        "mlp-z2": ["--latent-dim", "2", "--epochs", "2"],
        "conv-z3": ["--arch", "conv", "--latent-dim", "3", "--channels", "8,16", "--hidden", "32"],
        "gan-z2": ["--model", "gan", "--latent-dim", "2"],
    }
    for name, extra in specs.items():
        assert main(["train", "--data", str(data), "--epochs", "1", "--quiet", "--out", str(root / name), *extra]) == 0
    return {name: root / name for name in specs}


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path())
        yield browser
        browser.close()


@pytest.fixture
def explorer():
    servers = []

    def start(*paths):
        servers.append(Explorer(list(paths)))
        return servers[-1].url

    yield start
    for server in servers:
        server.close()


def test_one_run_decode_under_the_cursor_encode_a_drawing_interpolate(browser, runs, explorer, tmp_path):
    page = open_page(browser, explorer(runs["mlp-z2"]))
    settle(page)
    page.screenshot(path=tmp_path / "1-loaded.png")
    assert page.locator(".legend button").count() == 10  # the test points, by label
    assert page.evaluate("explorer.views[0].map.grid !== null")  # the decoded grid lies under them

    # decode under the cursor: two places, two images; a sweep never has two decodes in flight
    page.mouse.move(*map_point(page, 0, 0.15, 0.15))
    settle(page)
    assert page.text_content('.run[data-run="0"] .decoded-caption').startswith("cursor (")
    first = canvas_pixels(page, ".decoded")
    page.mouse.move(*map_point(page, 0, 0.85, 0.85), steps=40)
    settle(page)
    second = canvas_pixels(page, ".decoded")
    assert sum(abs(a - b) for a, b in zip(first, second)) > 28 * 28 * 3 * 4  # a visibly different image
    assert page.evaluate("explorer.views[0].decodes.maxInFlight") == 1
    page.screenshot(path=tmp_path / "2-hover.png")

    # draw: the posterior appears (mean and ellipse on the map, reconstruction, ELBO terms in nats)
    draw_digit(page)
    page.wait_for_selector('.run[data-run="0"][data-posterior]', timeout=15_000)
    settle(page)
    red = overlay_colour(page, 0, "v.posterior.mean")
    assert red[0] > 150 and red[1] < 90 and red[2] < 90, red  # the mean's red dot at its place on the map
    terms = page.text_content('.run[data-run="0"] .terms')
    assert re.search(r"−ELBO [\d.]+ nats = recon [\d.]+ \+ KL [\d.]+", terms), terms
    assert page.locator('.run[data-run="0"] .post-samples img').count() == 8
    # the current point is now the posterior mean: the decoded view shows the reconstruction
    same = page.evaluate(
        """async () => { const img = document.querySelector('.recon-img'); await img.decode();
            const c = document.createElement('canvas'); c.width = 28; c.height = 28;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            const a = ctx.getImageData(0, 0, 28, 28).data;
            const b = document.querySelector('.decoded').getContext('2d').getImageData(0, 0, 28, 28).data;
            return a.every((x, k) => x === b[k]); }"""
    )
    assert same
    page.screenshot(path=tmp_path / "3-drawn.png")

    # interpolate between two clicked points: the strip, and the path drawn on the map
    interpolate_between_map_points(page, 0, 6)
    page.wait_for_function("document.querySelectorAll('.run[data-run=\"0\"] .interp img').length === 6")
    path = page.evaluate("explorer.views[0].path")
    a, b = page.evaluate("[explorer.views[0].A, explorer.views[0].B]")
    assert len(path) == 6 and math.dist(path[0], a) < 1e-4 and math.dist(path[-1], b) < 1e-4
    orange = overlay_colour(page, 0, "v.path[2]")
    assert orange[0] > 180 and 50 < orange[1] < 150 and orange[2] < 80, orange

    # zoom with the wheel: the box shrinks and the grid is decoded again over it
    span = page.evaluate("explorer.views[0].map.view.span")
    page.mouse.move(*map_point(page, 0, 0.5, 0.5))
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(300)
    settle(page)
    assert page.evaluate("explorer.views[0].map.view.span") < span * 0.8
    assert page.evaluate(
        "JSON.stringify(explorer.views[0].map.grid.box) === JSON.stringify(explorer.views[0].map.box())"
    )

    # an upload of the wrong size is resized, and said so; a non-image is refused in the status line
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (56, 56), 0).save(buffer, "PNG")
    page.set_input_files("#upload", files=[{"name": "big.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
    page.wait_for_function("document.querySelector('#input-note').textContent.includes('resized from 56x56 to 28x28')")
    page.set_input_files("#upload", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"}])
    page.wait_for_function("document.querySelector('#encode-errors').textContent.includes('not an image')")
    page.screenshot(path=tmp_path / "4-interpolated.png", full_page=True)
    assert [e for e in page.errors if "not an image" not in e and "415" not in e] == []


def test_two_runs_side_by_side(browser, runs, explorer, tmp_path):
    page = open_page(browser, explorer(runs["mlp-z2"], runs["conv-z3"]), width=1400)
    settle(page, 0)
    settle(page, 1)
    left, right = (page.locator(f'.run[data-run="{i}"]').bounding_box() for i in (0, 1))
    assert right["x"] >= left["x"] + left["width"] and abs(right["y"] - left["y"]) < 2  # columns
    assert "principal plane" in page.text_content('.run[data-run="1"] .plane-description')

    # the same test images are encoded by both runs and interpolated by both
    page.locator("#gallery img").nth(0).click()
    page.wait_for_selector('.run[data-run="1"][data-posterior]', timeout=15_000)
    page.click("#set-a")
    page.locator("#gallery img").nth(1).click()
    page.wait_for_function(
        "explorer.views.every((v) => v.posterior && !v.encodes.busy && v.posterior.mean.join() !== (v.A || []).join())"
    )
    page.click("#set-b")
    page.click("#interpolate")
    page.wait_for_function("document.querySelectorAll('.run .interp img').length === 20")
    means = page.evaluate("explorer.views.map((v) => v.posterior.mean.length)")
    assert means == [2, 3]
    page.click("#samplers button")
    page.wait_for_function("document.querySelectorAll('.run .samples img').length === 16")
    settle(page, 0)
    settle(page, 1)
    small_screenshot(page, tmp_path / "side-by-side.png")
    assert (tmp_path / "side-by-side.png").stat().st_size < 400_000
    assert page.errors == []


def test_a_gan_run_explains_why_it_cannot_encode(browser, runs, explorer, tmp_path):
    page = open_page(browser, explorer(runs["gan-z2"]))
    settle(page)
    assert "no encoder" in page.text_content('.run[data-run="0"] .terms')
    assert "no encoder" in page.text_content("#no-encoder")
    assert not page.is_visible("#draw")
    page.mouse.move(*map_point(page, 0, 0.3, 0.3))
    settle(page)
    first = canvas_pixels(page, ".decoded")
    page.mouse.move(*map_point(page, 0, 0.7, 0.7), steps=10)
    settle(page)
    assert canvas_pixels(page, ".decoded") != first
    page.locator(".slider input").first.fill("2.5")  # a slider moves the current point
    settle(page)
    assert page.evaluate("explorer.views[0].z[0]") == 2.5
    interpolate_between_map_points(page, 0, 5)
    page.wait_for_function("document.querySelectorAll('.interp img').length === 5")
    page.click("#samplers button")
    page.wait_for_function("document.querySelectorAll('.samples img').length === 8")
    page.screenshot(path=tmp_path / "gan.png", full_page=True)
    assert page.errors == []


def make_screenshot(runs: list[str], out: str) -> None:
    """The README's screenshot: two real runs side by side, a test image encoded, an interpolation, samples."""
    from playwright.sync_api import sync_playwright

    server = Explorer([Path(r) for r in runs])
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path())
            page = open_page(browser, server.url, width=1400, height=860)
            for i in range(len(runs)):
                settle(page, i)
            page.locator("#gallery img").nth(1).click()
            page.wait_for_function("explorer.views.every((v) => !v.info.has_encoder || v.posterior)")
            page.click("#set-a")
            page.locator("#gallery img").nth(2).click()
            page.wait_for_function(
                "explorer.views.every((v) => !v.info.has_encoder || (!v.encodes.busy && v.posterior.mean.join() !== v.A.join()))"
            )
            page.click("#set-b")
            page.click("#interpolate")
            page.click("#samplers button")
            page.wait_for_timeout(1000)
            page.evaluate("window.scrollTo(0, 0); document.getElementById('controls').scrollTop = 0")  # clicks scrolled
            page.mouse.move(*map_point(page, 0, 0.62, 0.4))
            for i in range(len(runs)):
                settle(page, i)
            print(small_screenshot(page, Path(out)))
            browser.close()
    finally:
        server.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the README's screenshot of vaelab explore")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="docs/explorer.png")
    args = parser.parse_args()
    make_screenshot(args.runs, args.out)
