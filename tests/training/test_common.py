"""training.common: fused Adam (and its fallback), the learning-rate change, DistributedDataParallel and
torch.compile wrapping, and the hand-made gradient and scalar averages of the kinds that take several losses
from one forward pass, against a mirrored world (tests/helpers/world.py)."""

import pytest
import torch
from torch import nn

from tests.helpers.world import Mirror
from vaelab.device import World
from vaelab.training import common


@pytest.fixture
def mirror3(monkeypatch):
    """A mirrored world of three processes (the conftest's `mirror` has two)."""
    return Mirror(3).install(monkeypatch)


def test_fused_adam_takes_the_module_s_parameters_lr_and_betas():
    """Found by mutation testing."""
    module = nn.Linear(3, 2)
    optimizer = common.fused_adam(module, 0.01, [0.6, 0.95])
    (group,) = optimizer.param_groups
    assert group["lr"] == 0.01 and group["betas"] == (0.6, 0.95) and group["fused"] is True
    assert [id(p) for p in group["params"]] == [id(p) for p in module.parameters()]


def test_fused_adam_falls_back_to_the_loop_where_the_build_has_no_fused_kernel(monkeypatch):
    """Found by mutation testing."""
    real = torch.optim.Adam

    def adam(params, lr, betas, fused=None):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return real(params, lr=lr, betas=betas)

    monkeypatch.setattr(torch.optim, "Adam", adam)
    module = nn.Linear(3, 2)
    (group,) = common.fused_adam(module, 0.02, (0.5, 0.9)).param_groups
    assert group["lr"] == 0.02 and group["betas"] == (0.5, 0.9) and not group["fused"]
    assert [id(p) for p in group["params"]] == [id(p) for p in module.parameters()]


def test_set_lr_changes_every_group_of_every_optimizer():
    """Found by mutation testing."""
    one, two = nn.Linear(2, 2), nn.Linear(2, 1)
    optimizers = {
        "a": torch.optim.Adam([{"params": one.weight}, {"params": one.bias}], lr=0.1),
        "b": torch.optim.SGD(two.parameters(), lr=0.2),
    }
    common.set_lr(optimizers, 0.003)
    assert [g["lr"] for o in optimizers.values() for g in o.param_groups] == [0.003, 0.003, 0.003]


def test_wrap_is_ddp_across_processes_then_compile_if_asked(monkeypatch):
    """Found by mutation testing."""
    made, compiled = [], []

    class FakeDDP(nn.Module):
        def __init__(self, module, device_ids=None):
            super().__init__()
            made.append((module, device_ids))

    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel", FakeDDP)
    monkeypatch.setattr(torch, "compile", lambda net: compiled.append(net) or ("compiled", net))
    module, cpu = nn.Linear(2, 2), torch.device("cpu")
    assert common.wrap(module, False, cpu, World()) is module and made == [] and compiled == []
    assert common.wrap(module, True, cpu, World()) == ("compiled", module)
    ddp = common.wrap(module, False, cpu, World(rank=1, size=2))
    assert isinstance(ddp, FakeDDP) and made == [(module, None)]
    common.wrap(module, False, torch.device("cuda", 1), World(rank=1, size=2, local_rank=1))
    assert made[-1] == (module, [1])  # a GPU process: its own device
    kind, net = common.wrap(module, True, cpu, World(rank=0, size=2))
    assert kind == "compiled" and isinstance(net, FakeDDP)  # compile over DDP, not DDP over compile


def test_gradients_are_averaged_over_the_processes(mirror3):
    """Found by mutation testing."""
    module = nn.Linear(2, 1)
    module.weight.grad = torch.tensor([[3.0, -6.0]])  # the bias has no gradient: nothing to reduce
    common.average_gradients(module, World(rank=0, size=3))
    assert (
        mirror3.reduced == 1
        and torch.equal(module.weight.grad, torch.tensor([[3.0, -6.0]]))
        and module.bias.grad is None
    )
    common.average_gradients(module, World())
    assert mirror3.reduced == 1  # one process: no collective


def test_scalars_are_averaged_over_the_processes_on_a_detached_copy(mirror3):
    """Found by mutation testing."""
    values = torch.tensor([0.5, 1.5], requires_grad=True) * 1
    averaged = common.average_scalars(values, World(rank=2, size=3))
    assert torch.equal(averaged, torch.tensor([0.5, 1.5])) and not averaged.requires_grad
    assert torch.equal(values.detach(), torch.tensor([0.5, 1.5]))  # left as it was
    alone = common.average_scalars(values, World())
    assert torch.equal(alone, values.detach()) and not alone.requires_grad and mirror3.reduced == 1


def test_lr_factor_ramps_up_then_holds_or_falls_along_a_half_cosine():
    """--lr-warmup ramps linearly from 0; then constant holds 1, and cosine falls from 1 through 1/2 at the middle of
    what is left to 0 at the last epoch (and stays at 0 past it, as a resumed run with fewer --epochs would ask)."""
    assert common.lr_factor("constant", 0.0, 7.3, 10) == 1.0
    assert common.lr_factor("constant", 2.0, 0.5, 10) == pytest.approx(0.25)
    assert common.lr_factor("constant", 2.0, 2.0, 10) == 1.0
    assert common.lr_factor("cosine", 0.0, 0.0, 10) == 1.0
    assert common.lr_factor("cosine", 0.0, 5.0, 10) == pytest.approx(0.5)
    assert common.lr_factor("cosine", 0.0, 2.5, 10) == pytest.approx(0.5 + 0.5**0.5 / 2)
    assert common.lr_factor("cosine", 2.0, 6.0, 10) == pytest.approx(0.5)
    assert common.lr_factor("cosine", 2.0, 1.0, 10) == pytest.approx(0.5)
    assert common.lr_factor("cosine", 0.0, 10.0, 10) == pytest.approx(0.0)
    assert common.lr_factor("cosine", 0.0, 12.0, 10) == pytest.approx(0.0)
