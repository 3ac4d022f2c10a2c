"""What the in-process tests of the loop and the kinds share: 1 x 4 x 4 images, a small configuration of any kind,
a trainer built from a fixed seed, seeded batches, and a progress bar that records what the loop shows."""

import torch

from vaelab import kinds
from vaelab.device import World

SHAPE = (1, 4, 4)
CPU = torch.device("cpu")


def make(tmp_path, **over):
    """A TrainConfig of one epoch, batches of 8, an MLP of one hidden layer of 8 and 2 latents, on the CPU, quiet,
    writing to tmp_path/run; `over` sets any option."""
    values = {
        "epochs": 1,
        "batch_size": 8,
        "hidden": [8],
        "latent_dim": 2,
        "quiet": True,
        "out": str(tmp_path / "run"),
        "device": "cpu",
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
