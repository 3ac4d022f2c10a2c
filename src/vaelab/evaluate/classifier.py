"""A small convolutional classifier whose penultimate layer is the feature space for sample-quality numbers.

Trained by vaelab on the data set's own training split, once per data set, and cached (safetensors + JSON)
under the data cache (`<cache>/classifiers/`). Inception weights cannot be fetched offline, and for digits a
digit classifier is the more meaningful feature space anyway.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vaelab import data, progress, threads
from vaelab.checkpoint import atomic_write, load_weights, read_tensors, save_weights
from vaelab.data.download import cache_root
from vaelab.errors import VaelabError
from vaelab.training.common import fused_adam

FEATURES = 128
# Training length as images seen: 8 epochs of mnist-mini's 8,000 images (96.7% test accuracy), 2 of MNIST's 60,000
# (an epoch of a large set is worth more than one of a small set); between 2 and 8 epochs.
IMAGES_SEEN = 64_000
EPOCHS = (2, 8)


class FeatureClassifier(nn.Module):
    """Two strided 5x5 convolutions (16, 32 channels), adaptive pooling to 7x7, dense 128 (the features)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 5, stride=2, padding=2),
            nn.ReLU(),  # 16 x H/2 x W/2
            nn.Conv2d(16, 32, 5, stride=2, padding=2),
            nn.ReLU(),  # 32 x H/4 x W/4
            nn.AdaptiveAvgPool2d(7),
            nn.Flatten(),  # 32 x 7 x 7 = 1568
            nn.Linear(32 * 49, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    # channels-last: oneDNN's fast layout; with a contiguous one-channel input the first convolution's backward pass
    # was several times slower (bench/classifier.py sets torch.contiguous_format on an instance to compare)
    memory_format = torch.channels_last

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.contiguous(memory_format=self.memory_format))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def default_epochs(n_images: int) -> int:
    """Epochs that show the classifier about `IMAGES_SEEN` images, within `EPOCHS`."""
    low, high = EPOCHS
    return min(high, max(low, -(-IMAGES_SEEN // max(1, n_images))))


def dataset_key(dataset: data.Dataset) -> str:
    """Name plus a digest of the training split, so a changed data set gets a new classifier."""
    # hashed in place (the same bytes as tobytes() for the contiguous arrays a Dataset holds): a memory-mapped
    # image folder is not copied
    digest = hashlib.sha256(np.ascontiguousarray(dataset.train.images.numpy()))
    digest.update(np.ascontiguousarray(dataset.train.labels.numpy()))
    return f"{Path(dataset.name).name}-{digest.hexdigest()[:16]}"


def train_classifier(
    dataset: data.Dataset, epochs: int | None = None, seed: int = 0, device="cpu", quiet: bool = True
) -> tuple[FeatureClassifier, float]:
    """Train on the training split (`default_epochs` unless given); return the model (eval mode) and its accuracy
    on the test split."""
    epochs = epochs or default_epochs(len(dataset.train))
    with torch.enable_grad():
        return _train(dataset, epochs, seed, device, quiet)


def _train(dataset: data.Dataset, epochs: int, seed: int, device, quiet: bool) -> tuple[FeatureClassifier, float]:
    torch.manual_seed(seed)
    n_classes = int(dataset.num_classes)
    model = FeatureClassifier(dataset.shape[0], n_classes).to(device)
    optimizer = fused_adam(model, 2e-3, (0.9, 0.999))  # the per-parameter loop was a third of the training time
    generator = torch.Generator().manual_seed(seed)
    shown = progress.bar(
        epochs * len(dataset.train),
        f"training the feature classifier of {dataset.name} (once, cached)",
        quiet,
        "img",
        unit_scale=True,
    )
    with shown:
        for _ in range(epochs):
            model.train()
            for x, y in data.batches(
                dataset.train.images, 128, labels=dataset.train.labels, shuffle=True, generator=generator, device=device
            ):
                threads.tick()
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                shown.update(x.shape[0])
    model.eval()
    return model, accuracy(model, dataset.test, device)


def accuracy(model: FeatureClassifier, split: data.Split, device="cpu") -> float:
    correct = 0
    with torch.inference_mode():
        for x, y in data.batches(split.images, 1000, labels=split.labels, device=device):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(split)


def load_cached(weights: Path, meta: Path, dataset: data.Dataset, device) -> tuple[FeatureClassifier, dict] | None:
    """The cached classifier, or None when the cache is missing or damaged (it is then trained again)."""
    if not (weights.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text())
        if not isinstance(info, dict) or info.get("num_classes") != int(dataset.num_classes):
            return None
        model = FeatureClassifier(dataset.shape[0], info["num_classes"])
        load_weights(model, read_tensors(weights), str(weights))
        float(info["test_accuracy"])
    except (VaelabError, OSError, ValueError, KeyError, TypeError):
        return None
    return model.to(device).eval(), info


def load_or_train(
    dataset: data.Dataset, cache_dir=None, device="cpu", quiet: bool = True
) -> tuple[FeatureClassifier, dict]:
    """The cached classifier for this data set, trained first if needed (or if its cache is damaged).
    Returns (model, info)."""
    folder = cache_root(cache_dir) / "classifiers"
    key = dataset_key(dataset)
    weights, meta = folder / f"{key}.safetensors", folder / f"{key}.json"
    cached = load_cached(weights, meta, dataset, device)
    if cached is not None:
        return cached
    model, test_accuracy = train_classifier(dataset, device=device, quiet=quiet)
    info = {
        "data": dataset.name,
        "key": key,
        "num_classes": int(dataset.num_classes),
        "test_accuracy": test_accuracy,
        "features": FEATURES,
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(weights, {"": model})
    atomic_write(meta, lambda temp: Path(temp).write_text(json.dumps(info, indent=2)))
    return model, info


def features(model: FeatureClassifier, images: torch.Tensor, batch_size: int = 1000, device="cpu") -> torch.Tensor:
    """Features `[N, 128]` of float images in [0, 1] `[N, C, H, W]`."""
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            out.append(model.features(images[start : start + batch_size].to(device)).float().cpu())
    return torch.cat(out)
