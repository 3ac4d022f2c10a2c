"""One training step of a kind's trainer through the real loop (`training.loop.train_epoch`), with plain SGD
(lr 1, no momentum) in place of Adam, so that the change of every weight is exactly the step's gradient.

Run by tests/training/test_distributed.py as `python tests/helpers/ddp_step.py OUT DATA KIND...` (one process)
and under `torchrun --nproc-per-node 2` (two): on the same global batch, averaged gradients give the same change as one
process, summed ones twice it. Adam cannot tell them apart (its step is invariant to the gradient's scale).

The reparameterization noise is the one thing that differs between one and two processes (each process has
its own stream), so here the posterior's standard deviation is taken as 0 in the draw: z = mean, and the step
is deterministic. The KL still depends on the log-variance, so its gradients are checked too.
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from vaelab import data, kinds
from vaelab.device import World, init_distributed
from vaelab.models import DiagonalGaussian
from vaelab.training.loop import train_epoch


def one_step(kind_name: str, images: torch.Tensor, world: World, device: torch.device) -> tuple[dict, dict]:
    config = kinds.make_config(
        {
            "kind": kind_name,
            "batch_size": len(images),
            "hidden": [32],
            "latent_dim": 4,
            "seed": 0,
            "device": "cpu",
            "precision": "fp32",  # the comparison is to float32 rounding
            "quiet": True,
        }
    )
    torch.manual_seed(0)
    trainer = kinds.get(kind_name).trainer(config, (1, 28, 28), device, world)
    for name, optimizer in trainer.optimizers.items():
        params = [p for group in optimizer.param_groups for p in group["params"]]
        trainer.optimizers[name] = torch.optim.SGD(params, lr=1.0, momentum=0.0)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    means, _ = train_epoch(
        trainer,
        images,
        None,
        config,
        1,
        torch.Generator().manual_seed(0),
        torch.Generator().manual_seed(1 + world.rank),
        world,
        device,
    )
    step = {k: before[k] - v.detach() for k, v in trainer.model.named_parameters()}  # = the gradient (lr 1)
    return step, means


def main(out: str, data_path: str, kind_names: list[str]) -> None:
    DiagonalGaussian.std = property(lambda self: torch.zeros_like(self.logvar))  # z = mean: no noise
    torch.set_num_threads(1)
    world = World.from_env()
    device, own_group = init_distributed(world, "cpu")
    images = data.load(data_path).train.images[:64]
    for kind_name in kind_names:
        step, means = one_step(kind_name, images, world, device)
        if world.is_main:
            save_file({k: v.contiguous() for k, v in step.items()}, Path(out) / f"{kind_name}-{world.size}.safetensors")
            (Path(out) / f"{kind_name}-{world.size}.json").write_text(json.dumps(means))
    if own_group:
        import torch.distributed as dist

        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
