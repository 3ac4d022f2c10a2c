"""vaelab.explorer.ink: drawings and uploads made to look like the data's digits (MNIST's preprocessing: cropped to
the ink, scaled into the data's box, centred by centre of mass), and the upload path that applies it
(`images.read_upload`). The page's copy of the computation (static/ink.js) is held to this one in
tests/explorer/test_teaching.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vaelab import data
from vaelab.explorer import images, ink


@pytest.fixture(scope="module")
def digits():
    return data.load("mnist-mini").test.images[:200].numpy()  # uint8 [N, 1, 28, 28]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_solid_rectangle_lands_where_the_reference_computation_puts_it():
    """A 40 x 20 block anywhere in a 100 x 100 image becomes a 20 x 10 block of full ink (area averages of a solid
    block stay solid), its centre of mass (9.5, 4.5) moved to the centre (13.5, 13.5): rows 4..23, columns 9..18."""
    image = np.zeros((100, 100), np.uint8)
    image[50:90, 7:27] = 255
    expected = np.zeros((28, 28), np.uint8)
    expected[4:24, 9:19] = 255
    assert np.array_equal(ink.normalize(image, 28, 28, 20), expected)


def test_normalized_digits_fill_the_box_and_sit_at_the_centre(digits):
    """Any digit, enlarged 3x and pushed into a corner, comes back with its ink's larger side in the box (within a
    pixel) and its centre of mass within half a pixel of the centre; an image without ink comes back black."""
    for digit in digits[:40, 0]:
        big = np.zeros((120, 120), np.uint8)
        big[:84, :84] = np.kron(digit, np.ones((3, 3), np.uint8))
        out = ink.normalize(big, 28, 28, 20)
        top, bottom, left, right = ink.ink_bounds(out)
        assert abs(max(bottom - top, right - left) + 1 - 20) <= 1
        cy, cx = ink.centre_of_mass(out.astype(np.float64))
        assert abs(cy - 13.5) <= 0.5 + 1e-9 and abs(cx - 13.5) <= 0.5 + 1e-9
    assert not ink.normalize(np.zeros((50, 40)), 28, 28, 20).any()


def test_the_box_is_measured_from_the_data(digits):
    """20 for MNIST's digits; None for colour data or dark ink on light paper (not digit-like)."""
    assert ink.ink_box(digits) == 20
    assert ink.ink_box(255 - digits) is None
    assert ink.ink_box(np.repeat(digits, 3, axis=1)) is None
    assert all(ink.is_normalized(d[0], 20) for d in digits)  # the data's own digits are left as they are


def test_uploads_are_normalized_and_light_paper_inverted(digits):
    """An upload from the data is unchanged; the same digit photographed large, dark on light paper, off centre, is
    inverted and normalized (with notes saying both) into nearly the data's digit; normalize off keeps the old
    resize."""
    digit = digits[3, 0]
    same, note = images.read_upload(png(digit), (1, 28, 28), None, 20)
    assert np.array_equal(same[:, :, 0], digit) and note is None
    paper = np.full((200, 150), 255, np.uint8)
    paper[30:114, 40:124] = 255 - np.kron(digit, np.ones((3, 3), np.uint8))
    seen, note = images.read_upload(png(paper), (1, 28, 28), None, 20)
    assert "inverted" in note and "centred" in note
    assert np.abs(seen[:, :, 0].astype(int) - digit).mean() < 20  # resampled, but the same digit in the same place
    plain, note = images.read_upload(png(paper), (1, 28, 28), None, None)  # not digit-like data: as before
    assert "inverted" not in note and plain[0, 0, 0] == 255
    forced, _ = images.read_upload(png(255 - digit), (1, 28, 28), True, 20)
    assert np.array_equal(forced[:, :, 0], digit)
