"""Importance-sampled log-likelihood: the IWAE bound of Burda, Grosse & Salakhutdinov (2016), eq. 8.

    log p(x) >= L_k = E[ log (1/k) sum_i p(x, z_i) / q(z_i | x) ],   z_i ~ q(z | x)

L_1 is the ELBO; L_k grows with k and tends to log p(x). Batched over images and samples: each step
decodes a `[k_chunk * B, D]` block, and the k log-weights of an image are combined with logsumexp.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from vaelab import data, progress, threads
from vaelab.losses import log_likelihood
from vaelab.models import VAE

# The decoded block's widest activation, in floats (12 MiB of float32). Blocks much larger than the caches are slower
# per sample: the conv decoder at 8192 rows (200 MB per activation) ran 2.2x slower than at 512 (bench/iwae.py).
BLOCK_FLOATS = 3 << 20


def decoded_width(model: VAE) -> int:
    """Floats per latent in the decoder's widest activation (6,272 for the default conv decoder, 784 for the
    MLP's on MNIST): one latent decoded with a hook on every module."""
    widest = 0

    def record(module, inputs, output) -> None:
        nonlocal widest
        if isinstance(output, torch.Tensor):
            widest = max(widest, output[0].numel())

    hooks = [module.register_forward_hook(record) for module in model.modules()]
    try:
        with torch.inference_mode():
            model.decode(torch.zeros(1, model.latent_dim, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return widest


def iwae_log_likelihood(
    model: VAE,
    images: torch.Tensor,
    k: int = 1000,
    *,
    seed: int = 0,
    rows: int | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    quiet: bool = True,
) -> torch.Tensor:
    """The k-sample IWAE estimate of log p(x) for every image (uint8 `[N, C, H, W]`), float64 `[N]` in nats.

    `rows` bounds the decoded block (samples x images) per step, and so the memory in use (default: what keeps
    the widest activation at `BLOCK_FLOATS`). Deterministic for a given seed and `rows`. `precision="bf16"` runs the decoder under bfloat16 autocast (faster on CPUs with
    bf16 units; the log-weights are still summed in float32/float64).
    """
    device = torch.device(device)
    rows = rows or max(1, BLOCK_FLOATS // decoded_width(model))
    generator = torch.Generator(device=device).manual_seed(seed)
    batch = max(1, rows // k)
    k_chunk = min(k, max(1, rows // batch))
    log_k = math.log(k)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    results = []
    model.eval()
    shown = progress.bar(images.shape[0], f"IWAE log-likelihood, k={k}", quiet, "img")
    with torch.inference_mode(), shown:
        for x, _ in data.batches(images, batch, device=device):
            threads.tick()
            posterior = model.encode(x)
            std = posterior.std
            log_w = torch.empty(k, x.shape[0], dtype=torch.float32, device=device)
            for start in range(0, k, k_chunk):
                n = min(k_chunk, k - start)
                eps = torch.randn(n, *posterior.mean.shape, generator=generator, device=device)
                z = posterior.mean + std * eps  # [n, B, D]
                with autocast:
                    output = model.decode(z.view(-1, z.shape[-1]))
                output = output.float().view(n, x.shape[0], *output.shape[1:])  # [n, B, C * outputs, H, W]
                log_px = log_likelihood(model.likelihood, output, x, model.log_sigma)  # [n, B]
                # log q(z|x) from eps directly: z - mean = std * eps exactly
                log_qz = -0.5 * (eps.pow(2) + posterior.logvar + math.log(2 * math.pi)).sum(-1)
                log_w[start : start + n] = log_px + model.log_prior(z) - log_qz  # the model's prior p(z)
            results.append(torch.logsumexp(log_w.double(), dim=0) - log_k)
            shown.update(x.shape[0])
    return torch.cat(results)
