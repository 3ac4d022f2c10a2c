"""The ELBO section's note says what its numbers are (`vaelab.evaluate.likelihood`)."""

import pytest
import torch

from tests.helpers.tiny import tiny_images, tiny_vae
from vaelab.evaluate.likelihood import measure_elbo
from vaelab.evaluate.metric import Context


def context(images: torch.Tensor, binarize: bool = False) -> Context:
    return Context(None, tiny_vae(), None, images, "test", 0, 10, "fp32", torch.device("cpu"), None, True, binarize, {})


@pytest.mark.parametrize(
    ("images", "binarize", "warned"),
    [
        (tiny_images(8), False, True),  # grey levels: a cross-entropy, not a likelihood of the data
        (tiny_images(8), True, False),  # the binarized protocol
        (torch.where(tiny_images(8) > 127, 255, 0).to(torch.uint8), False, False),  # binary data, like dSprites
    ],
)
def test_the_bernoulli_note_only_on_grey_levels(images, binarize, warned):
    result, notes = measure_elbo(context(images, binarize))
    assert torch.isfinite(torch.tensor(result.elbo))
    assert any("grey-level" in note for note in notes) == warned
