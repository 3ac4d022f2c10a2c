"""What every likelihood p(x|z) offers (see `vaelab.models.likelihoods`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

PIXELS = (-3, -2, -1)  # the (C, H, W) dimensions of an image batch


@dataclass(frozen=True)
class Likelihood:
    """One p(x|z). `output` is the decoder's `[..., C * outputs(mixtures), H, W]`; `x` float images in [0, 1]
    (uint8 / 255) `[..., C, H, W]` broadcasting against it; `log_sigma` a scalar tensor (used by the Gaussian)."""

    name: str
    help: str
    # decoder output channels per image channel, given the mixture count (0: the likelihood has no mixtures)
    outputs: Callable[[int], int]
    # log p(x|z) summed per image: (output, x, log_sigma) -> [...]
    log_prob: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    # the image shown for an output, in [0, 1]: (output, C) -> `[..., C, H, W]`
    mean: Callable[[torch.Tensor, int], torch.Tensor]
    # one image drawn from p(x|z), in [0, 1]: (output, log_sigma, C, generator) -> `[..., C, H, W]`
    sample: Callable[[torch.Tensor, torch.Tensor, int, torch.Generator | None], torch.Tensor]
    # `vaelab eval`'s note on what its ELBO and NLL are, given whether the images were binarized (None: no note)
    note: Callable[[bool], str | None]
    mixtures: bool = False  # takes --mixtures
    default_mixtures: int = 0
    # a normalized probability of 8-bit pixels: bits/dim are bounds on the data's code length
    discrete: bool = False
    # -sum of log p(x|z) over a batch, faster for training than summing `log_prob` (None: sum `log_prob`)
    batch_nll: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    browser: str | None = None  # the explorer page's in-browser image: "sigmoid", "clamp" (None: none yet)
    squared_error: bool = False  # also report ||x - mean||^2 (the course's reconstruction term)
    # floats the log-likelihood keeps (for the backward pass) per decoder output value: the memory check's count
    temporaries: int = 1
