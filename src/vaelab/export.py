"""A run's networks as ONNX files, for use outside vaelab (onnxruntime, a browser, a phone):

    encoder.onnx   image [batch, C, H, W] float32 in [0, 1] (uint8 / 255)  ->  mu, logvar [batch, D]
    decoder.onnx   z [batch, D] float32                                      ->  image [batch, C, H, W] in [0, 1]
    export.json    the inputs and outputs of each file, their shapes, and the run's config.json

The decoder's output is what the figures show: the Bernoulli mean sigmoid(logits), or the Gaussian mean clamped to
[0, 1] (`model.to_image`). The batch axis is dynamic. A kind without an encoder (a GAN) exports its decoder only;
a conditional kind (`Kind.labels`) takes the label as a second input of both files (`label`, int64 [batch], in
0..classes-1). Each file is checked with onnxruntime against PyTorch, on random and on real test inputs, at a batch
size other than the one it was traced with, and refused past `TOLERANCE` (the differences go in export.json).

Exported with torch's `torch.export`-based exporter (`torch.onnx.export(..., dynamo=True)`), whose TorchScript
predecessor PyTorch has deprecated.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaelab import data
from vaelab.checkpoint import atomic_write, check_writable, write_json
from vaelab.errors import ConfigError, RunError, VaelabError
from vaelab.extras import require
from vaelab.run import Run

FORMATS = ("onnx",)
TOLERANCE = 1e-4  # largest absolute difference allowed between onnxruntime's outputs and PyTorch's
EXPORT_FILE = "export.json"
MAX_BYTES = 2**31 - 1  # protobuf's limit for one ONNX file (weights stored inside it)
TRACE_BATCH, CHECK_BATCH = 2, 17  # traced at one batch size, checked at another: the batch axis is dynamic


class Encoder(nn.Module):
    """image [N, C, H, W] in [0, 1] (+ label [N]) -> (mu, logvar) [N, D] of q(z|x) (logvar clamped as in training)."""

    def __init__(self, model: nn.Module, labels: bool):
        super().__init__()
        self.model, self.labels = model, labels

    def forward(self, image: torch.Tensor, label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.model.encode(image, label) if self.labels else self.model.encode(image)
        return posterior.mean, posterior.logvar


class Decoder(nn.Module):
    """z [N, D] (+ label [N]) -> image [N, C, H, W] in [0, 1]: the mean of p(x|z), as the figures show it."""

    def __init__(self, model: nn.Module, labels: bool):
        super().__init__()
        self.model, self.labels = model, labels

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.to_image(self.model.decode(z, label) if self.labels else self.model.decode(z))


@dataclass
class Network:
    """One exported file: its module, its inputs (name -> example tensor) and its outputs' names."""

    name: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: tuple[str, ...]
    meaning: str
    checked: dict[str, float] = field(default_factory=dict)  # input set -> max |onnxruntime - torch|

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


@dataclass
class Exported:
    """What `export_run` wrote: the folder, the networks (with their checks) and the notes (an encoder left out)."""

    out: Path
    networks: list[Network]
    notes: list[str]

    @property
    def files(self) -> list[Path]:
        return [self.out / n.file for n in self.networks] + [self.out / EXPORT_FILE]


def networks(run: Run, batch: int = TRACE_BATCH) -> tuple[list[Network], list[str]]:
    """The networks of `run` to export, with example inputs of `batch` rows, and what was left out and why."""
    model, kind = run.model, run.kind
    c, h, w = run.meta["model"]["shape"]
    labels = {"label": torch.zeros(batch, dtype=torch.long)} if kind.labels else {}
    found, notes = [], []
    if kind.encoder:
        found.append(
            Network(
                "encoder",
                Encoder(model, kind.labels).eval(),
                {"image": torch.rand(batch, c, h, w), **labels},
                ("mu", "logvar"),
                "q(z|x): the mean and log-variance of the posterior of each image",
            )
        )
    else:
        notes.append(f"a {kind.title} has no encoder: exported the decoder only")
    found.append(
        Network(
            "decoder",
            Decoder(model, kind.labels).eval(),
            {"z": torch.randn(batch, model.latent_dim), **labels},
            ("image",),
            "the image decoded from z (the mean of p(x|z)), pixel values in [0, 1]",
        )
    )
    return found, notes


def check_size(run: Run) -> None:
    n = sum(p.numel() * p.element_size() for p in run.model.parameters())
    if n > MAX_BYTES:
        raise ConfigError(f"export: the model's weights take {n:,} bytes, more than one ONNX file can hold (2 GiB)")


@contextlib.contextmanager
def _quiet_exporter():
    """torch's exporter logs every operator set it skips (torchvision's, absent here) and warns about its own
    internals: none of it concerns the user."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx(network: Network, path: Path) -> None:
    """Trace `network` with a dynamic batch axis and write it to `path` (weights inside the file)."""
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet_exporter():
            program = torch.onnx.export(
                network.module,
                tuple(network.inputs.values()),
                dynamo=True,
                verbose=False,
                input_names=list(network.inputs),
                output_names=list(network.outputs),
                dynamic_shapes={name: {0: batch} for name in network.inputs},
                optimize=True,
            )
            atomic_write(path, lambda temp: program.save(temp, external_data=False))
    except VaelabError:
        raise
    except Exception as exc:  # the exporter's errors are many and deep; the user needs the first line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(f"export: torch could not convert the {network.name} to ONNX ({reason})") from None


def random_inputs(network: Network, classes: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Inputs of `CHECK_BATCH` rows like the network's examples: images uniform in [0, 1], z ~ N(0, I), labels
    uniform over the classes."""
    inputs = {}
    for name, example in network.inputs.items():
        shape = (CHECK_BATCH, *example.shape[1:])
        if example.dtype == torch.long:
            inputs[name] = torch.randint(0, classes, shape, generator=generator)
        else:
            inputs[name] = (torch.rand if name == "image" else torch.randn)(shape, generator=generator)
    return inputs


def check(network: Network, path: Path, real: dict[str, torch.Tensor], classes: int = 1) -> None:
    """Run `path` in onnxruntime on random inputs and on `real` ones, at a batch size it was not traced with;
    record the largest difference from PyTorch, refused past TOLERANCE."""
    (ort,) = require("vaelab export", "onnx", "onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    random = random_inputs(network, classes, torch.Generator().manual_seed(0))
    for label, inputs in (("random", random), ("real", real)):
        with torch.no_grad():
            expected = network.module(*inputs.values())
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(list(network.outputs), {name: value.numpy() for name, value in inputs.items()})
        diff = max(float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected))
        network.checked[label] = diff
        if not diff <= TOLERANCE:
            raise RunError(
                f"export: {path} differs from PyTorch by {diff:.3g} on {label} inputs (more than {TOLERANCE:g}); "
                "the exported file is not faithful, do not use it"
            )


def real_inputs(run: Run, encoder: Network | None) -> dict[str, dict[str, torch.Tensor]]:
    """Real inputs of each network: test images (with their labels), and the posterior means of those images
    (or, without an encoder, latents from the run's prior)."""
    split = run.dataset().test
    images = data.to_float(split.images[:CHECK_BATCH])
    labels = {"label": split.labels[: len(images)].long()} if run.kind.labels else {}
    with torch.no_grad():
        if encoder is not None:
            z = encoder.module(images, *labels.values())[0]
        else:
            z = run.model.sample_prior(CHECK_BATCH, torch.Generator().manual_seed(run.config.seed))
    return {"encoder": {"image": images, **labels}, "decoder": {"z": z, **labels}}


def describe(run: Run, exported: list[Network], notes: list[str]) -> dict[str, Any]:
    """export.json: each file's inputs and outputs (shapes with "batch" for the dynamic axis), the checks, and the
    run's config.json."""
    import onnx

    files = {}
    for network in exported:
        with torch.no_grad():
            outputs = network.module(*network.inputs.values())
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        files[network.name] = {
            "file": network.file,
            "meaning": network.meaning,
            "inputs": {name: _tensor_info(value) for name, value in network.inputs.items()},
            "outputs": {name: _tensor_info(value) for name, value in zip(network.outputs, outputs)},
            "max_abs_diff_onnxruntime": network.checked,
        }
        if "image" in network.inputs:
            files[network.name]["inputs"]["image"]["range"] = [0.0, 1.0]
        if "image" in network.outputs:
            files[network.name]["outputs"]["image"]["range"] = [0.0, 1.0]
        if "label" in network.inputs:
            files[network.name]["inputs"]["label"]["range"] = [0, int(run.model.classes) - 1]
    return {
        "format": "onnx",
        "run": str(run.path),
        "kind": run.kind.name,
        "files": files,
        "notes": notes,
        "tolerance": TOLERANCE,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        "config": run.meta,
    }


def _tensor_info(value: torch.Tensor) -> dict[str, Any]:
    return {"dtype": str(value.dtype).removeprefix("torch."), "shape": ["batch", *value.shape[1:]]}


def export_run(run: Run | str | Path, out: str | Path, format: str = "onnx") -> Exported:
    """Write the run's networks to `out` as `format` (ONNX), each checked with onnxruntime; see the module's doc."""
    if format not in FORMATS:
        raise ConfigError(f"format: must be one of {', '.join(FORMATS)}, got {format!r}")
    require("vaelab export --format onnx", "onnx", "onnx", "onnxscript", "onnxruntime")
    if not isinstance(run, Run) or run.device.type != "cpu":  # traced and checked on the CPU
        run = Run.open(run if not isinstance(run, Run) else run.path, "cpu")
    out = Path(out)
    check_writable(out)
    check_size(run)
    exported, notes = networks(run)
    real = real_inputs(run, exported[0] if exported[0].name == "encoder" else None)
    out.mkdir(parents=True, exist_ok=True)
    for network in exported:
        to_onnx(network, out / network.file)
        check(network, out / network.file, real[network.name], int(getattr(run.model, "classes", 1)))
    write_json(out / EXPORT_FILE, describe(run, exported, notes))
    return Exported(out, exported, notes)
