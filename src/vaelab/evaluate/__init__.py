"""Evaluation of a trained run: ELBO, IWAE log-likelihood, latent usage, reconstruction error and sample
quality (Frechet distance, precision, recall in a trained classifier's feature space)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from vaelab import data
from vaelab.checkpoint import write_json
from vaelab.device import resolve_device
from vaelab.errors import ConfigError
from vaelab.evaluate import classifier as feature_net
from vaelab.evaluate.elbo import bits_per_dim, split_terms
from vaelab.evaluate.frechet import frechet_distance, precision_recall
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.latents import active_units, collapse_warning, posterior_stats
from vaelab.losses import binarize as binarize_images
from vaelab.run import Run

EVAL_FILE = "eval.json"


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


def sample_quality(model, dataset: data.Dataset, images: torch.Tensor, seed: int, cache_dir, device) -> dict[str, Any]:
    if dataset.train.labels is None:
        return {"available": False, "why": "the data set has no labels to train the feature classifier on"}
    net, info = feature_net.load_or_train(dataset, cache_dir, device)
    real = feature_net.features(net, data.to_float(images), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    samples = torch.cat(
        [model.sample(min(1000, images.shape[0] - s), generator) for s in range(0, images.shape[0], 1000)]
    )
    fake = feature_net.features(net, samples, device=device)
    precision, recall = precision_recall(real, fake)
    return {"available": True, "fd_classifier": frechet_distance(real, fake), "precision": precision, "recall": recall,
            "n_samples": int(samples.shape[0]), "classifier_test_accuracy": info["test_accuracy"],
            "feature_space": f"penultimate layer ({info['features']} units) of a CNN trained on {dataset.name}'s training split"}  # fmt: skip


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    iwae_k: int = 1000,
    seed: int = 0,
    precision: str = "fp32",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Every number of `vaelab eval`; written to RUN/eval.json when `write`."""
    if split not in ("train", "test"):
        raise ConfigError(f"split: must be train or test, got {split!r}")
    if iwae_k < 1:
        raise ConfigError(f"iwae_k: must be >= 1, got {iwae_k}")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision: must be fp32 or bf16, got {precision!r}")
    dev = resolve_device(device)
    run = Run.open(run_dir, dev)
    model, train_cfg = run.model, run.config["train"]
    dataset = data.load(train_cfg["data"], size=tuple(train_cfg["size"]) if train_cfg.get("size") else None)
    images = getattr(dataset, split).images
    dims = images[0].numel()
    binarize = bool(train_cfg.get("binarize"))
    lik_images = binarized(images, seed) if binarize else images
    started = time.perf_counter()
    result: dict[str, Any] = {"run": str(run_dir), "split": split, "n_images": int(images.shape[0]), "seed": seed,
                              "likelihood": model.likelihood, "binarized": binarize, "kind": run.kind}  # fmt: skip
    if run.kind == "gan":  # no encoder, no likelihood: sample quality only
        result["samples"] = sample_quality(model, dataset, images, seed, cache_dir, dev)
        result["notes"] = ["a GAN has no encoder and no likelihood: only sample quality is measured"]
        result["seconds"] = time.perf_counter() - started
        if write:
            write_json(Path(run_dir) / EVAL_FILE, result)
        return result

    terms = split_terms(model, lik_images, seed=seed, device=dev)
    neg_elbo = terms["recon"] + terms["kl"]
    result["elbo"] = {
        "elbo": -neg_elbo,
        "recon": terms["recon"],
        "kl": terms["kl"],
        "bits_per_dim": bits_per_dim(neg_elbo, dims),
    }
    if "sq_error" in terms:
        result["elbo"]["sq_error"] = terms["sq_error"]

    t0 = time.perf_counter()
    log_px = iwae_log_likelihood(model, lik_images, iwae_k, seed=seed, device=dev, precision=precision)
    nll = -log_px
    result["iwae"] = {"k": iwae_k, "nll": float(nll.mean()), "nll_se": float(nll.std() / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
                      "bits_per_dim": bits_per_dim(float(nll.mean()), dims), "precision": precision,
                      "seconds": time.perf_counter() - t0}  # fmt: skip

    notes = []
    if model.likelihood == "bernoulli" and not binarize:
        notes.append("Bernoulli likelihood on grey-level pixels: the ELBO and NLL are cross-entropies, not a normalized "
                     "likelihood of the data (train with --binarize for the standard binarized-MNIST protocol)")  # fmt: skip
    if binarize:
        notes.append(f"likelihoods on a seeded binarization (seed {seed}) of the {split} split, the standard protocol")

    stats = posterior_stats(model, images, device=dev)
    n_active, activity = active_units(stats["means"])
    warning = collapse_warning(n_active, model.latent_dim, stats["kl_per_dim"])
    result["latents"] = {"latent_dim": model.latent_dim, "active_units": n_active, "kl_per_dim": stats["kl_per_dim"].tolist(),
                         "activity": activity.tolist(), "warning": warning}  # fmt: skip
    if warning:
        notes.append(warning)
    result["reconstruction"] = reconstruction_error(model, images, dev)
    result["samples"] = sample_quality(model, dataset, images, seed, cache_dir, dev)
    result["notes"] = notes
    result["seconds"] = time.perf_counter() - started
    if write:
        write_json(Path(run_dir) / EVAL_FILE, result)
    return result


def format_table(result: dict[str, Any]) -> str:
    s = result["samples"]
    rows = [] if result.get("kind") == "gan" else _likelihood_rows(result)
    if s.get("available"):
        rows += [("FD (classifier features)", f"{s['fd_classifier']:.3f}"),
                 ("precision / recall", f"{s['precision']:.3f} / {s['recall']:.3f}"),
                 ("feature classifier accuracy", f"{s['classifier_test_accuracy']:.4f}")]  # fmt: skip
    else:
        rows.append(("sample quality", f"unavailable: {s['why']}"))
    width = max(len(r[0]) for r in rows)
    head = f"{result['run']}: {result['split']} split, {result['n_images']} images, seed {result['seed']}"
    lines = [head] + [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  note: {note}" for note in result["notes"]]
    return "\n".join(lines)


def _likelihood_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    e, i, lat, rec = result["elbo"], result["iwae"], result["latents"], result["reconstruction"]
    rows = [
        ("ELBO (nats/image)", f"{e['elbo']:.2f}  (recon {e['recon']:.2f}, KL {e['kl']:.2f})"),
        ("-ELBO (bits/dim)", f"{e['bits_per_dim']:.4f}"),
        (f"NLL, IWAE k={i['k']} (nats/image)", f"{i['nll']:.2f} +- {i['nll_se']:.2f} (s.e.)"),
        ("NLL (bits/dim)", f"{i['bits_per_dim']:.4f}"),
        ("active units", f"{lat['active_units']} of {lat['latent_dim']}"),
        (
            "KL per dimension",
            " ".join(f"{v:.2f}" for v in lat["kl_per_dim"][:16]) + (" ..." if lat["latent_dim"] > 16 else ""),
        ),
        ("reconstruction MSE / PSNR", f"{rec['mse']:.5f} / {rec['psnr_db']:.2f} dB"),
    ]
    if "sq_error" in e:
        rows.insert(1, ("squared error ||x - x_hat||^2", f"{e['sq_error']:.2f}"))
    return rows
