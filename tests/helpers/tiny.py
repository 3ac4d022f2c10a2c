"""What the in-process tests of the loop and the kinds share: 1 x 4 x 4 images, a small configuration of any kind,
a trainer built from a fixed seed, seeded batches, and a progress bar that records what the loop shows; and for the
estimators' tests, a VAE of 1 x 3 x 2 images with its seeded images."""

import torch

from vaelab import kinds
from vaelab.device import World
from vaelab.models import VAE, VAEConfig

SHAPE = (1, 4, 4)
CPU = torch.device("cpu")


def make(tmp_path, **over):
    """A TrainConfig of one epoch, batches of 8, an MLP of one hidden layer of 8 and 2 latents, on the CPU in fp32
    (the steps' tests write the float32 math out; `--precision auto` would pick bf16 on a CPU with bf16 units),
    quiet, writing to tmp_path/run; `over` sets any option."""
    values = {
        "epochs": 1,
        "batch_size": 8,
        "hidden": [8],
        "latent_dim": 2,
        "quiet": True,
        "out": str(tmp_path / "run"),
        "device": "cpu",
        "precision": "fp32",
        "eval_batch_size": 4,
        **over,
    }
    return kinds.make_config(values)


def trainer_of(config, world: World | None = None):
    torch.manual_seed(0)
    return kinds.get(config.kind).trainer(config, SHAPE, CPU, world or World())


def uint8(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    """The same images as `uint8(n, seed)`, as floats in [0, 1]."""
    return uint8(n, seed).float() / 255


class Bar:
    """What train_epoch asks of its progress bar, recorded."""

    def __init__(self):
        self.updates, self.postfixes = [], []

    def update(self, n):
        self.updates.append(n)

    def set_postfix(self, *args, **kwargs):
        self.postfixes.append((args, kwargs))


def tiny_vae(likelihood: str = "bernoulli", latent_dim: int = 3) -> VAE:
    """A seeded VAE of 1 x 3 x 2 images (one hidden layer of 8): small enough to write its estimators out by hand."""
    torch.manual_seed(0)
    return VAE(VAEConfig(shape=(1, 3, 2), latent_dim=latent_dim, hidden=(8,), likelihood=likelihood, sigma=0.4))


def tiny_images(n: int, seed: int = 1) -> torch.Tensor:
    """`n` seeded uint8 images of 1 x 3 x 2, for `tiny_vae`."""
    return torch.randint(0, 256, (n, 1, 3, 2), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
