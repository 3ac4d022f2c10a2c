"""What the end-to-end tests of training share: a tiny `vaelab train` and its `--resume` through the in-process
command line (the `cli` fixture), a one-line error's check, and what a run directory holds (epochs, tensors, bytes)."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from vaelab.device import World
from vaelab.run import Run

# tiny networks, so that a run of a few epochs of 256 digits takes about a second
TINY = ["--hidden", "32", "--latent-dim", "2", "--batch-size", "64", "--threads", "1", "--quiet"]
KIND_EXTRA = {"vamp": ["--pseudo-inputs", "5"]}  # 500 pseudo-inputs would dominate a run this small
TIMING = ("seconds", "images_per_s")


def train(cli, data, out, kind="vae", *extra, epochs=1):
    return cli(
        "train",
        "--kind",
        kind,
        "--data",
        data,
        "--out",
        out,
        "--epochs",
        epochs,
        *TINY,
        *KIND_EXTRA.get(kind, []),
        *extra,
    )


def resume(cli, out, epochs, *extra):
    return cli("train", "--out", out, "--resume", "--epochs", epochs, "--quiet", "--threads", "1", *extra)


def ok(result):
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result, code=2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    message = result.stderr.strip()
    assert "Traceback" not in message and message.count("\n") == 0, message
    return message


def epochs_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING} for record in records]


def tensors(out: Path) -> dict[str, torch.Tensor]:
    """Every tensor a run directory holds: weights of each network, optimizer moments and generator states."""
    found = {}
    for path in sorted(out.glob("*.safetensors")):
        found.update({f"{path.name}:{k}": v for k, v in load_file(path).items()})
    return found


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def initial_trainer(out: Path):
    """The trainer a run started from, rebuilt as the loop builds it (seeded before construction)."""
    run = Run.open(out)
    config = run.config
    torch.manual_seed(config.seed)
    return run.kind.trainer(config, tuple(run.meta["data"]["shape"]), torch.device("cpu"), World())
