"""Benchmark: vaelab's training loop against the pytorch/examples VAE recipe, on the same data and machine.

In one invocation the contenders take turns, one epoch each, so they all see the same machine load:
- vaelab's MLP VAE with the pytorch/examples architecture (784-400-20), batch 128 and 512, Adam lr 1e-3;
- a reference written here after the pytorch/examples recipe: a `Dataset` that returns one image at a time,
  converted from uint8 to float per item, a shuffling `DataLoader`, a sigmoid output and binary cross-entropy;
  batch 128 and 512;
- vaelab's default conv model (batch 128).
Also measured: the fp32 matrix-multiply throughput of this machine (the ceiling) and each model's training
FLOPs per image (forward + backward, counted by torch), so that the fraction of the ceiling is printed.

    python bench/train_speed.py [--epochs 10] [--threads 2] [--json FILE] [--compile]

bf16 rows autocast the forward pass to bfloat16; their fraction is of the bf16 matmul ceiling.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from vaelab import data, kinds
from vaelab.device import World
from vaelab.training.loop import train_epoch
from vaelab.training.split import split_terms


# --- the reference recipe ----------------------------------------------------------------------------------
class PerItemImages(Dataset):
    """One image at a time, converted from uint8 to float on each access."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index].to(torch.float32).div(255.0).view(-1)


class ReferenceVAE(nn.Module):
    def __init__(self, pixels: int = 784, hidden: int = 400, latent: int = 20):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(pixels, hidden), nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.fc3, self.fc4 = nn.Linear(latent, hidden), nn.Linear(hidden, pixels)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    return bce + (-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()))


class Reference:
    def __init__(self, dataset: data.Dataset, batch_size: int, seed: int):
        torch.manual_seed(seed)
        self.model = ReferenceVAE(dataset.train.images[0].numel())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            PerItemImages(dataset.train.images), batch_size=batch_size, shuffle=True, generator=generator
        )
        self.test = dataset.test.images

    def epoch(self) -> float:
        self.model.train()
        start = time.perf_counter()
        for x in self.loader:
            self.optimizer.zero_grad()
            recon, mu, logvar = self.model(x)
            loss = reference_loss(recon, x, mu, logvar) / x.shape[0]
            loss.backward()
            self.optimizer.step()
        return time.perf_counter() - start

    def test_loss(self) -> float:
        torch.manual_seed(123)
        self.model.eval()
        with torch.no_grad():
            x = self.test.float().div(255).flatten(1)
            recon, mu, logvar = self.model(x)
            return float(reference_loss(recon, x, mu, logvar)) / x.shape[0]

    def flops_per_image(self, batch: int) -> float:
        x = self.test[:batch].float().div(255).flatten(1)
        with FlopCounterMode(display=False) as counter:
            recon, mu, logvar = self.model(x)
            reference_loss(recon, x, mu, logvar).backward()
        self.optimizer.zero_grad()
        return counter.get_total_flops() / batch


# --- vaelab ------------------------------------------------------------------------------------------------
class Vaelab:
    def __init__(self, dataset: data.Dataset, **options):
        self.config = kinds.make_config({"latent_dim": 20, "hidden": [400], "lr": 1e-3, "quiet": True, **options})
        torch.manual_seed(self.config.seed)
        self.trainer = kinds.get(self.config.kind).trainer(self.config, dataset.shape, torch.device("cpu"), World())
        self.model, self.optimizer = self.trainer.model, self.trainer.optimizers["adam"]
        self.order = torch.Generator().manual_seed(self.config.seed)
        self.noise = torch.Generator().manual_seed(self.config.seed + 1)
        self.dataset, self.done = dataset, 0

    def epoch(self) -> float:
        self.done += 1
        _, seconds = train_epoch(
            self.trainer,
            self.dataset.train.images,
            None,
            self.config,
            self.done,
            self.order,
            self.noise,
            World(),
            torch.device("cpu"),
        )
        return seconds

    def test_loss(self) -> float:
        return split_terms(self.model, self.dataset.test.images, seed=123)["loss"]

    def flops_per_image(self, batch: int) -> float:
        x = data.to_float(self.dataset.test.images[:batch])
        with FlopCounterMode(display=False) as counter:
            out = self.model(x)
            from vaelab.losses import batch_sums

            s = batch_sums(self.model.likelihood, out.output, x, out.posterior, self.model.log_sigma)
            (s["recon"] + s["kl"]).backward()
        self.optimizer.zero_grad()
        return counter.get_total_flops() / batch


def matmul_ceiling(n: int = 2048, repeats: int = 10, dtype=torch.float32) -> float:
    """FLOP/s of a large square matrix multiply (median of `repeats`)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per contender (the first is a warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile contender (slow to start)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = data.load("mnist-mini")
    contenders = {
        "vaelab mlp b128": Vaelab(dataset, batch_size=128),
        "reference b128": Reference(dataset, 128, 0),
        "vaelab mlp b512": Vaelab(dataset, batch_size=512),
        "reference b512": Reference(dataset, 512, 0),
        "vaelab conv b128": Vaelab(dataset, batch_size=128, arch="conv", latent_dim=10, hidden=None),
        "vaelab mlp b128 bf16": Vaelab(dataset, batch_size=128, precision="bf16"),
        "vaelab mlp b512 bf16": Vaelab(dataset, batch_size=512, precision="bf16"),
    }
    if args.compile:
        contenders["vaelab mlp b128 compiled"] = Vaelab(dataset, batch_size=128, compile=True)
    ceiling_before, bf16_before = matmul_ceiling(), matmul_ceiling(dtype=torch.bfloat16)
    seconds = {name: [] for name in contenders}
    for _ in range(args.epochs):
        for name, contender in contenders.items():
            seconds[name].append(contender.epoch())
    ceiling = max(ceiling_before, matmul_ceiling())
    bf16_ceiling = max(bf16_before, matmul_ceiling(dtype=torch.bfloat16))
    n = len(dataset.train)
    rows = {}
    for name, contender in contenders.items():
        batch = 512 if "512" in name else 128
        ips = statistics.median(n / s for s in seconds[name][1:] or seconds[name])
        flops = contender.flops_per_image(batch)
        rows[name] = {
            "images_per_s": ips,
            "test_loss": contender.test_loss(),
            "flops_per_image": flops,
            "fraction_of_ceiling": ips * flops / (bf16_ceiling if "bf16" in name else ceiling),
        }
    for batch in (128, 512):
        rows[f"vaelab mlp b{batch}"]["ratio_to_reference"] = (
            rows[f"vaelab mlp b{batch}"]["images_per_s"] / rows[f"reference b{batch}"]["images_per_s"]
        )
    print(
        f"mnist-mini, {n} training images, {args.epochs} epochs each (median of epochs 2..{args.epochs}), {args.threads} threads, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {datetime.date.today()}"
    )
    print(
        f"matmul ceiling: fp32 {ceiling / 1e9:.1f} GFLOP/s, bf16 {bf16_ceiling / 1e9:.1f} GFLOP/s (bf16 rows are measured against it)"
    )
    print(f"{'contender':<24} {'images/s':>9} {'vs ref':>7} {'test -ELBO':>11} {'MFLOP/img':>10} {'of ceiling':>11}")
    for name, r in rows.items():
        ratio = f"{r['ratio_to_reference']:.2f}x" if "ratio_to_reference" in r else ""
        print(
            f"{name:<24} {r['images_per_s']:9.0f} {ratio:>7} {r['test_loss']:11.2f} {r['flops_per_image'] / 1e6:10.2f} {r['fraction_of_ceiling']:10.1%}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "ceiling_flops": ceiling,
                    "bf16_ceiling_flops": bf16_ceiling,
                    "epochs": args.epochs,
                    "threads": args.threads,
                    "rows": rows,
                    "date": str(datetime.date.today()),
                    "torch": torch.__version__,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
