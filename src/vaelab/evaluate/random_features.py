"""A feature space for sample quality that needs no labels: a fixed, randomly initialised convolutional network.

For a data set without labels (an image folder of photos) or with one class, no classifier can be trained, and
Inception-v3's weights cannot be downloaded here. A randomly initialised CNN is the usual baseline embedding
where no trained network fits the images (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models", study random embeddings for such domains); its filters respond to colour, edges and texture at four scales, so blur, wrong colours and broken textures
move the statistics of generated images away from those of real ones.

The network: 3x3 convolutions of 32, 64, 128 and 256 channels (each after the first with stride 2), ReLU,
Kaiming-normal weights drawn from a fixed seed. Its statistics, each stage's channel means and standard deviations
over the image (960 numbers), are standardised over the training split and projected onto their first 16
principal components there, whitened: the feature space is `[N, 16]`. In all 960 dimensions every generated
image was an outlier (the k-NN balls of precision and recall are too tight in so many dimensions: a 10-epoch VAE
on MNIST scored precision 0.00), while 16 whitened components (54% of the variance on mnist-mini) rank real
images, longer-trained and shorter-trained models and noise in that order on FD, precision and recall alike
(docs/sample-quality.md has the measurements). The weights, the standardisation and the projection are made once per data set and cached (safetensors + JSON, under
`<cache>/features/`), so the numbers of a data set stay comparable whatever a later torch draws for the same seed.

Limits: the features are not semantic (a sample with the right textures in the wrong arrangement scores better
than it should), and the numbers are comparable only within one data set and one sample count; they are not
FID and must not be compared to published FIDs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from vaelab import data
from vaelab.checkpoint import atomic_write, load_weights, read_tensors, save_weights
from vaelab.data.download import cache_root
from vaelab.errors import VaelabError

WIDTHS = (32, 64, 128, 256)
SEED = 20_190_405
VERSION = 1
STATISTICS = 2 * sum(WIDTHS)  # a mean and a standard deviation per channel of each stage
COMPONENTS = 16
# Training images that set the standardisation and the projection (enough for 960 means and spreads to settle).
FIT_ON = 10_000


class RandomFeatures(nn.Module):
    """The fixed random CNN; `forward` returns the whitened principal components `[N, 16]` of its statistics."""

    def __init__(self, channels: int):
        super().__init__()
        generator = torch.Generator().manual_seed(SEED)
        layers, width = [], channels
        for i, out in enumerate(WIDTHS):
            conv = nn.Conv2d(width, out, 3, stride=1 if i == 0 else 2, padding=1)
            with torch.no_grad():  # Kaiming-normal for ReLU: activations keep their scale through the stages
                conv.weight.normal_(0.0, (2.0 / (width * 9)) ** 0.5, generator=generator)
                conv.bias.zero_()
            layers.append(conv)
            width = out
        self.convs = nn.ModuleList(layers)
        self.register_buffer("mean", torch.zeros(STATISTICS))
        self.register_buffer("scale", torch.ones(STATISTICS))
        self.register_buffer("projection", torch.zeros(STATISTICS, COMPONENTS))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - 0.5) * 4.0  # [0, 1] pixels around 0, about unit spread
        stats = []
        for conv in self.convs:
            h = torch.relu(conv(h))  # [N, width, H / 2^i, W / 2^i]
            stats += [h.mean((2, 3)), h.std((2, 3), correction=0)]
        return torch.cat(stats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((self.raw(x) - self.mean) / self.scale) @ self.projection


def _raw_features(net: RandomFeatures, images: torch.Tensor, device, batch: int = 500) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for x, _ in data.batches(images, batch, device=device):
            out.append(net.raw(x).double().cpu())
    return torch.cat(out)


def dataset_key(dataset: data.Dataset) -> str:
    """Name plus a digest of the training images (hashed in place: a memory-mapped folder is not copied)."""
    digest = hashlib.sha256(dataset.train.images.numpy())
    return f"{Path(dataset.name).name}-{digest.hexdigest()[:16]}"


def build(dataset: data.Dataset, device="cpu") -> RandomFeatures:
    """The network for `dataset`: standardisation and whitened projection fitted on (up to `FIT_ON` of) its
    training images."""
    net = RandomFeatures(dataset.shape[0]).to(device).eval()
    raw = _raw_features(net, dataset.train.images[:FIT_ON], device)  # float64 [n, 960]
    mean, scale = raw.mean(0), raw.std(0).clamp(min=1e-6)  # a dead unit (always 0) stays 0
    z = (raw - mean) / scale  # [n, 960]
    n = z.shape[0]
    if n >= STATISTICS:  # principal directions: eigenvectors of the covariance, ascending (the last are the top)
        variance, directions = torch.linalg.eigh(z.T @ z / (n - 1))
    else:  # fewer images than statistics: the same directions from the smaller Gram matrix z z^T
        variance, u = torch.linalg.eigh(z @ z.T / max(1, n - 1))
        directions = z.T @ u / (variance.clamp(min=1e-12) * max(1, n - 1)).sqrt()
    k = min(COMPONENTS, n - 1)  # a training split of few images has fewer components: the rest stay 0
    projection = torch.zeros(STATISTICS, COMPONENTS, dtype=torch.float64)
    if k > 0:
        top = torch.arange(variance.numel() - 1, variance.numel() - 1 - k, -1)
        projection[:, :k] = directions[:, top] / variance[top].clamp(min=1e-12).sqrt()  # whitened: unit variance
    net.mean.copy_(mean.float())
    net.scale.copy_(scale.float())
    net.projection.copy_(projection.float())
    return net


def load_or_build(dataset: data.Dataset, cache_dir=None, device="cpu") -> tuple[RandomFeatures, dict]:
    """The cached network of this data set, made first if needed (or if its cache is damaged)."""
    folder = cache_root(cache_dir) / "features"
    key = dataset_key(dataset)
    weights, meta = folder / f"random-{key}.safetensors", folder / f"random-{key}.json"
    if weights.exists() and meta.exists():
        try:
            info = json.loads(meta.read_text())
            if isinstance(info, dict) and info.get("version") == VERSION:
                net = RandomFeatures(dataset.shape[0])
                load_weights(net, read_tensors(weights), str(weights))
                return net.to(device).eval(), info
        except (VaelabError, OSError, ValueError, KeyError, TypeError):
            pass  # damaged: made again below
    net = build(dataset, device)
    info = {"data": dataset.name, "key": key, "version": VERSION, "features": COMPONENTS}
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(weights, {"": net})
    atomic_write(meta, lambda temp: Path(temp).write_text(json.dumps(info, indent=2)))
    return net, info


def features(net: RandomFeatures, images: torch.Tensor, batch_size: int = 500, device="cpu") -> torch.Tensor:
    """Features `[N, 16]` of images `[N, C, H, W]`: uint8, or float in [0, 1] (converted a batch at a time)."""
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device)
            out.append(net(data.to_float(x) if x.dtype == torch.uint8 else x).float().cpu())
    return torch.cat(out)
