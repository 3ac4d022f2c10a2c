"""`vaelab eval`: the sections of an evaluation that the run's kind has (`Kind.eval_sections`), in one result."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from vaelab import data
from vaelab.checkpoint import check_writable
from vaelab.device import resolve_device
from vaelab.errors import ConfigError
from vaelab.evaluate import classifier as feature_net
from vaelab.evaluate.frechet import frechet_distance, precision_recall
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.latents import active_units, collapse_warning, posterior_stats
from vaelab.losses import binarize as binarize_images
from vaelab.run import Run
from vaelab.training.split import split_terms


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert nats per image to bits per dimension: nats / (D * ln 2)."""
    return nats_per_image / (dims * math.log(2))


def binarized(images: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded binarization of uint8 images (pixel on with probability grey / 255), as uint8 0 / 255."""
    on = binarize_images(data.to_float(images), torch.Generator().manual_seed(seed))
    return on.mul_(255).to(torch.uint8)


def reconstruction_error(model, images: torch.Tensor, device) -> dict[str, float]:
    """MSE per pixel and PSNR (dB, peak 1) of reconstructions from the posterior means."""
    sq, count = 0.0, 0
    for x, _ in data.batches(images, 1000, device=device):
        sq += float((model.reconstruct(x) - x).double().pow(2).sum())
        count += x.numel()
    mse = sq / count
    return {"mse": mse, "psnr_db": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf}


def sample_quality(
    model, dataset: data.Dataset, images: torch.Tensor, seed: int, cache_dir, device, quiet: bool = True
) -> dict[str, Any]:
    if dataset.train.labels is None:
        return {"available": False, "why": "the data set has no labels to train the feature classifier on"}
    if images.shape[0] < 2 or dataset.num_classes is None or dataset.num_classes < 2:
        return {"available": False, "why": "sample quality needs at least 2 images and 2 classes"}
    net, info = feature_net.load_or_train(dataset, cache_dir, device, quiet)
    real = feature_net.features(net, data.to_float(images), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    samples = torch.cat(
        [model.sample(min(1000, images.shape[0] - s), generator) for s in range(0, images.shape[0], 1000)]
    )
    fake = feature_net.features(net, samples, device=device)
    precision, recall = precision_recall(real, fake)
    return {
        "available": True,
        "fd_classifier": frechet_distance(real, fake),
        "precision": precision,
        "recall": recall,
        "n_samples": int(samples.shape[0]),
        "classifier_test_accuracy": info["test_accuracy"],
        "feature_space": f"penultimate layer ({info['features']} units) of a CNN trained on {dataset.name}'s training split",
    }


def likelihood_sections(
    model,
    images: torch.Tensor,
    binarize: bool,
    split: str,
    k: int,
    seed: int,
    precision: str,
    device,
    quiet: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """The exact ELBO and the IWAE log-likelihood (on a seeded binarization for a run trained binarized)."""
    dims = images[0].numel()
    lik_images = binarized(images, seed) if binarize else images
    terms = split_terms(model, lik_images, seed=seed, device=device)
    neg_elbo = terms["recon"] + terms["kl"]
    elbo = {"elbo": -neg_elbo, "recon": terms["recon"], "kl": terms["kl"], "bits_per_dim": bits_per_dim(neg_elbo, dims)}
    if "sq_error" in terms:
        elbo["sq_error"] = terms["sq_error"]
    started = time.perf_counter()
    nll = -iwae_log_likelihood(model, lik_images, k, seed=seed, device=device, precision=precision, quiet=quiet)
    iwae = {
        "k": k,
        "nll": float(nll.mean()),
        "nll_se": float(nll.std() / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
        "bits_per_dim": bits_per_dim(float(nll.mean()), dims),
        "precision": precision,
        "seconds": time.perf_counter() - started,
    }
    notes = []
    if model.likelihood == "bernoulli" and not binarize:
        notes.append(
            "Bernoulli likelihood on grey-level pixels: the ELBO and NLL are cross-entropies, not a normalized "
            "likelihood of the data (train with --binarize for the standard binarized-MNIST protocol)"
        )
    if binarize:
        notes.append(f"likelihoods on a seeded binarization (seed {seed}) of the {split} split, the standard protocol")
    return {"elbo": elbo, "iwae": iwae}, notes


def latent_sections(model, images: torch.Tensor, device) -> tuple[dict[str, Any], list[str]]:
    """Latent usage (KL per dimension, active units, collapse) and the reconstruction error."""
    stats = posterior_stats(model, images, device=device)
    n_active, activity = active_units(stats["means"])
    warning = collapse_warning(n_active, model.latent_dim, stats["kl_per_dim"])
    latents = {
        "latent_dim": model.latent_dim,
        "active_units": n_active,
        "kl_per_dim": stats["kl_per_dim"].tolist(),
        "activity": activity.tolist(),
        "warning": warning,
    }
    return {"latents": latents, "reconstruction": reconstruction_error(model, images, device)}, [
        warning
    ] if warning else []


class SamplerModel:
    """A model whose `sample` decodes a fitted sampler's latents instead of the prior's."""

    def __init__(self, model, sampler):
        self.model, self.sampler = model, sampler

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.model.sample(n, z=self.sampler.sample(n, generator))


def sampler_sections(
    run: Run, model, dataset: data.Dataset, images: torch.Tensor, seed: int, cache_dir, device, quiet: bool = True
) -> dict[str, Any]:
    """Sample quality of every sampler fitted to the run (`vaelab fit-sampler`), and the prior's mismatch with
    the aggregate posterior of the training split (for kinds with an encoder)."""
    from vaelab import samplers
    from vaelab.evaluate.prior_mismatch import prior_mismatch

    fitted = samplers.fitted(run.path)
    found: dict[str, Any] = {}
    if fitted:
        found["samplers"] = {
            name: {
                "description": sampler.description,
                **sampler.info,
                **sample_quality(SamplerModel(model, sampler), dataset, images, seed, cache_dir, device, quiet),
            }
            for name, sampler in fitted.items()
        }
    if run.kind.encoder:
        found["prior_mismatch"] = prior_mismatch(model, dataset.train.images, fitted, seed=seed, device=device)
    return found


def check_options(split: str, iwae_k: int, precision: str) -> None:
    if split not in ("train", "test"):
        raise ConfigError(f"split: must be train or test, got {split!r}")
    if not 1 <= iwae_k <= 1_000_000:
        raise ConfigError(f"iwae_k: must lie in 1..1000000, got {iwae_k}")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision: must be fp32 or bf16, got {precision!r}")


def evaluate_run(
    run: Run | str | Path,
    split: str = "test",
    iwae_k: int = 1000,
    seed: int = 0,
    precision: str = "fp32",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    write: bool = True,
    quiet: bool = True,
) -> dict[str, Any]:
    """Every number of `vaelab eval` that the run's kind has; written to RUN/eval.json when `write` (checked
    to be writable before the work starts). Progress bars on stderr unless `quiet`."""
    check_options(split, iwae_k, precision)
    dev = resolve_device(device)
    run = run if isinstance(run, Run) else Run.open(run, dev)
    if write:
        check_writable(run.path)
    model, dataset = run.model.to(dev), run.dataset()
    images = getattr(dataset, split).images
    sections = run.kind.eval_sections
    binarize = bool(getattr(run.config.options, "binarize", False))
    started = time.perf_counter()
    result: dict[str, Any] = {
        "run": str(run.path),
        "split": split,
        "n_images": int(images.shape[0]),
        "seed": seed,
        "likelihood": model.likelihood,
        "binarized": binarize,
        "kind": run.kind.name,
    }
    notes = []
    if "elbo" in sections:
        found, said = likelihood_sections(model, images, binarize, split, iwae_k, seed, precision, dev, quiet)
        result.update(found)
        notes += said
    if "latents" in sections:
        found, said = latent_sections(model, images, dev)
        result.update(found)
        notes += said
    result["samples"] = sample_quality(model, dataset, images, seed, cache_dir, dev, quiet)
    result.update(sampler_sections(run, model, dataset, images, seed, cache_dir, dev, quiet))
    if not run.kind.likelihood:
        measured = "latent usage, reconstruction and sample quality are" if run.kind.encoder else "sample quality is"
        notes.append(f"a {run.kind.name} run has no likelihood: only {measured} measured")
    result["notes"] = notes
    result["seconds"] = time.perf_counter() - started
    if write:
        run.write_eval(result)
    return result
