"""`vaelab export RUN [RUN...] --html page.html`: the explorer as one self-contained HTML file, no server.

The page is the explorer's own (static/), its modules joined into one inline script (a file:// page cannot load
module files), talking to an in-browser backend (static/local.js) instead of the server: the same routes, answered
by a small hand-written forward pass (static/nn.js) over the networks' weights, embedded as base64 float32. Why
hand-written rather than a bundled runtime (onnxruntime-web's wasm is ~10 MB): the explorer's networks are a few
dense and (transposed) convolution layers, 150 lines of JavaScript decode one image in about a millisecond, and the
file stays the size of the weights.

Each run embeds its encoder (for drawing) and decoder, its test posterior means and labels (the map), and its
first test images (the gallery and neighbours), at most MAX_POINTS of each.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vaelab.errors import ConfigError
from vaelab.explorer.session import Session, open_sessions
from vaelab.models import likelihoods

MAX_POINTS = 1000  # test points and images embedded per run
ACTIVATIONS = {nn.ReLU: "relu", nn.ELU: "elu", nn.SiLU: "silu", nn.LeakyReLU: "leaky_relu"}
MODULES = ["http.js", "errors.js", "ink.js", "paint.js", "geometry.js", "nn.js", "course.js", "local.js", "map.js"]
MODULES += ["figure.js", "run.js", "encode.js", "state.js", "main.js"]  # each after the modules it imports


class Weights:
    """Every tensor of a run's networks in one float32 buffer; layers refer to them by offset."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.size = 0

    def add(self, tensor: torch.Tensor) -> int:
        array = tensor.detach().float().contiguous().numpy().ravel()
        self.parts.append(array)
        self.size += array.size
        return self.size - array.size

    def base64(self) -> str:
        return base64.b64encode(np.concatenate(self.parts).astype("<f4").tobytes()).decode("ascii")


def layers_of(network: nn.Module, weights: Weights) -> list[dict]:
    """The network's layers in forward order (leaf modules in registration order, which nets.py keeps the forward
    order) as plain dicts for nn.js; a layer nn.js cannot run is a one-line error."""
    layers = []
    for module in network.modules():
        if list(module.children()):
            continue
        if isinstance(module, nn.Linear):
            layers.append(
                {
                    "op": "linear",
                    "in": module.in_features,
                    "out": module.out_features,
                    "w": weights.add(module.weight),
                    "b": weights.add(module.bias),
                }
            )
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            transposed = isinstance(module, nn.ConvTranspose2d)
            layers.append(
                {
                    "op": "convT" if transposed else "conv",
                    "cin": module.in_channels,
                    "cout": module.out_channels,
                    "k": module.kernel_size[0],
                    "s": module.stride[0],
                    "p": module.padding[0],
                    "op_pad": list(module.output_padding) if transposed else [0, 0],
                    "w": weights.add(module.weight),
                    "b": weights.add(module.bias),
                }
            )
        elif type(module) in ACTIVATIONS:
            layers.append({"op": ACTIVATIONS[type(module)], "slope": getattr(module, "negative_slope", 0.0)})
        elif isinstance(module, nn.Flatten):
            layers.append({"op": "flatten"})
        elif isinstance(module, nn.Unflatten):
            layers.append({"op": "unflatten", "shape": list(module.unflattened_size)})
        else:
            raise ConfigError(f"export --html: the layer {type(module).__name__} has no in-browser version")
    return layers


def browser_output(likelihood: str) -> str:
    """How the page turns the decoder's output into an image (the likelihood's `browser`), or a one-line refusal."""
    output = likelihoods.get(likelihood).browser
    if output is None:
        raise ConfigError(
            f"export --html: the {likelihood} likelihood's image has no in-browser version yet; "
            "explore the run with `vaelab explore RUN`"
        )
    return output


def run_data(session: Session, index: int) -> dict:
    """What the page needs of one run: its info, points, test images and networks."""
    from vaelab.models.vae import LOGVAR_MAX, LOGVAR_MIN

    model, weights = session.model, Weights()
    n = min(MAX_POINTS, int(session.test_images.shape[0]))
    info = dict(session.info(), id=index, n_test=n, samplers=["N(0, I)"], path=session.name, test_elbo=None)
    info["has_likelihood"] = False  # no per-image ELBO in the browser (the reference mean would mislead)
    points = session.points()
    decoder = layers_of(model.decoder, weights)
    encoder = layers_of(model.encoder, weights) if session.has_encoder else None
    return {
        "info": info,
        "means": points["means"][:n],
        "labels": points["labels"][:n],
        "factors": {name: values[:n] for name, values in points["factors"].items()} if "factors" in points else None,
        "images": base64.b64encode(session.test_images[:n].permute(0, 2, 3, 1).contiguous().numpy().tobytes()).decode(),
        "decoder": decoder,
        "encoder": encoder,
        "logvar": [LOGVAR_MIN, LOGVAR_MAX],
        "output": browser_output(session.model.likelihood),
        "weights": weights.base64(),
        "weights_size": weights.size * 4,
    }


IMPORT = re.compile(r"^import\s*\{([^}]*)\}\s*from\s*'\./([\w.]+)';\s*$", re.M)
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function|class|const|let)\s+(\w+)", re.M)


def bundle(static: Path) -> str:
    """The page's ES modules as one script: each module's body in its own function scope, its exports returned as
    an object, its imports read from the objects of the modules before it."""
    parts = []
    for name in MODULES:
        source = (static / name).read_text()
        exports = EXPORT.findall(source)
        body = IMPORT.sub(lambda m: f"const {{{m.group(1)}}} = modules['{m.group(2)}'];", source)
        body = re.sub(r"^export\s+", "", body, flags=re.M)
        if re.search(r"^import\s", body, re.M):
            raise RuntimeError(f"{name}: an import the bundler does not handle")
        parts.append(f"modules['{name}'] = (() => {{\n{body}\nreturn {{ {', '.join(exports)} }};\n}})();")
    return "const modules = {};\n" + "\n".join(parts)


def build(paths: list[str | Path], out: str | Path) -> tuple[Path, list[dict]]:
    """Write the page for the runs to `out`; (its path, per run the embedded weights' size in bytes)."""
    from vaelab.explorer.server import static_dir

    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--html {out}: is a folder; give a file name such as page.html")
    if not out.parent.exists():
        raise ConfigError(f"--html {out}: the folder {out.parent} does not exist")
    sessions = open_sessions(list(paths))
    runs = [run_data(s, i) for i, s in enumerate(sessions)]
    static = static_dir()
    html = (static / "index.html").read_text()
    css = (static / "explorer.css").read_text()
    data = json.dumps({"runs": runs}, separators=(",", ":")).replace("</", "<\\/")
    script = f"window.VAELAB_STATIC = {data};\n{bundle(static)}"
    html = html.replace('<link rel="stylesheet" href="static/explorer.css">', f"<style>\n{css}</style>")
    html = html.replace(
        '<script type="module" src="static/main.js"></script>', f'<script type="module">\n{script}\n</script>'
    )
    html = html.replace("<title>vaelab explore</title>", "<title>vaelab explore (exported page)</title>")
    out.write_text(html, encoding="utf-8")
    return out, [{"name": s.name, "weights": r["weights_size"]} for s, r in zip(sessions, runs)]
