"""vaelab from Python, for scripts and notebooks: the command line's commands as functions, with the same options.

    import vaelab

    run = vaelab.train(data="mnist-mini", arch="conv", latent_dim=2, epochs=5)
    run.metrics[-1]["test"]                  # the last epoch's test terms (metrics.jsonl)
    result = run.evaluate(iwae_k=100)        # an EvalResult: result.get("iwae").nll
    run.figure("manifold")                   # a PIL image (shown inline by Jupyter)
    study = vaelab.compare(archs=["mlp", "conv"], latent_dims=[2, 10], epochs=5)
    study.members["conv-z2"].figure("samples")

Options are keyword arguments named as in `vaelab train --help` (`latent_dim`, `batch_size`, a kind's own such as
`beta`), checked exactly as the command line checks them (`kinds.make_config`): a misspelt option or a bad value is
a `vaelab.errors.ConfigError` naming it. Nothing here reads sys.argv. Progress bars are tqdm's, drawn as widgets in a
notebook (with ipywidgets) or as text; `quiet=True` hides them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vaelab import kinds, tracking
from vaelab.checkpoint import read_json
from vaelab.config import read_toml
from vaelab.device import resolve_device
from vaelab.errors import ConfigError
from vaelab.run import Run, resume_config

ORIGIN = "vaelab.train"  # how an error names a keyword argument it does not know
VARIED = ("kind", "arch", "latent_dim", "beta", "out")  # what `compare` varies (its own arguments)


class TrainedRun(Run):
    """A run directory opened for use from Python: its options (`config`), kind, data set and model (as `Run`),
    plus its epochs, its evaluation, its figures as images and its export."""

    def __repr__(self) -> str:
        return f"TrainedRun({str(self.path)!r}, kind={self.kind.name!r}, epochs={len(self.metrics)})"

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """One dict per epoch, as metrics.jsonl holds it: "epoch", "train" and "test" terms, "seconds"..."""
        return self.read_metrics()[1]

    @property
    def eval_result(self):
        """The saved evaluation (an `EvalResult`), or None when the run has not been evaluated."""
        from vaelab.evaluate import read_eval

        return read_eval(self)

    def evaluate(
        self,
        split: str = "test",
        iwae_k: int = 1000,
        seed: int = 0,
        precision: str | None = None,
        device: str = "auto",
        write: bool = True,
        quiet: bool = False,
        features: str = "auto",
    ):
        """`vaelab eval`: every number the run's kind has, as an `EvalResult` (`result.get("iwae").nll`,
        `result.to_dict()` is eval.json, written to the run unless `write=False`). `precision`: the decoder's in
        the IWAE estimate (default: the run's training precision). `features`: the sample-quality feature space
        (auto, classifier, random), as `vaelab eval --features`."""
        from vaelab.evaluate import evaluate_run

        precision = self.config.precision if precision is None else precision
        return evaluate_run(self, split, iwae_k, seed, precision, device, write=write, quiet=quiet, features=features)

    def figure_names(self) -> list[str]:
        """The figures this run's kind can have (`figure(name)` draws any of them)."""
        from vaelab import figures

        return [name for f in figures.for_kind(self.kind) for name, _ in f.files()]

    def figure(self, name: str, **options: Any) -> Image.Image:
        """The figure `name` as a PIL image. Without options, the one drawn at the end of training (drawn now if it
        is not there); with options (those of its command: `n`, `span`, `steps`, `seed`...), drawn now into a
        temporary folder, leaving the run's own files as they are."""
        from vaelab import figures

        spec = _figure(name)
        if not spec.applies(self.kind):
            raise ConfigError(f"figure {name}: a {self.kind.title} run has no such figure ({', '.join(spec.needs)})")
        if spec.when is not None and not spec.when(self):
            raise ConfigError(f"figure {name}: this run's model or data does not allow it")
        if not options:
            path = self.figure_path(name)
            if not path.exists():
                figures.FIGURES[spec.name].draw(self)
            return _image(path)
        with tempfile.TemporaryDirectory() as folder:
            drawn = spec.draw(self, Path(folder) / f"{spec.name}.png", **options)
            paths = [Path(p) for p in (drawn if isinstance(drawn, tuple) else (drawn,))]
            return _image(next((p for p in paths if p.stem == name), paths[0]))  # `name` may be a file it also writes

    def export(self, out: str | Path, format: str = "onnx"):
        """`vaelab export`: the encoder and decoder as ONNX files in `out`, checked with onnxruntime."""
        from vaelab.export import export_run

        return export_run(self, out, format)


def _figure(name: str):
    """The declaration that draws the file `name` (a figure, or one of the files it also writes)."""
    from vaelab import figures

    for spec in figures.FIGURES.values():
        if name in (file for file, _ in spec.files()):
            return spec
    raise ConfigError(f"figure: unknown figure {name!r}; known: {', '.join(n for n, _ in figures.captions())}")


def _image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image.copy()


def open_run(path: str | Path, device: str = "cpu") -> TrainedRun:
    """An existing run directory, for its metrics, evaluation, figures and model."""
    return TrainedRun.open(path, resolve_device(device))


def _paths_as_text(options: dict[str, Any]) -> dict[str, Any]:
    """Options as the command line gives them: a path (`out=Path(...)`) as its text."""
    return {name: os.fspath(value) if isinstance(value, os.PathLike) else value for name, value in options.items()}


def _log(log: str | None, log_uri: str | None) -> tracking.Log | None:
    if log_uri and not log:
        raise ConfigError("log_uri: says where `log` writes; give log= too (" + ", ".join(tracking.names()) + ")")
    return tracking.Log(log, log_uri) if log else None


def train(
    data: str | Path | None = None,
    kind: str | None = None,
    *,
    resume: bool = False,
    evaluate: bool = False,
    iwae_k: int = 1000,
    log: str | None = None,
    log_uri: str | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> TrainedRun:
    """`vaelab train`: train a model and write its run directory (figures and report included); returns the run.

    data: a data set's name (mnist-mini, mnist, fashion-mnist) or a path; kind: what to train (vae, gan, vaegan,
    iwae, vamp, cvae); options: every other option of `vaelab train --help`, by its name (`latent_dim=2`,
    `arch="conv"`, `epochs=5`, `out="runs/conv-z2"`, `seed=0`, `quiet=True`...). `config`: a TOML file read
    first (keyword arguments win). `resume`: continue the run in `out` (only the resumable options, such as
    `epochs`, may change). `evaluate`: run `vaelab eval` at the end (with `iwae_k` importance samples). `log`:
    also log to "tensorboard" or "mlflow" (`log_uri`: where)."""
    from vaelab.pipeline import train_run

    given = {
        **_paths_as_text(options),
        **({"data": str(data)} if data is not None else {}),
        **({"kind": kind} if kind else {}),
    }
    file_values = read_toml(config) if config else {}
    if resume:
        if not given.get("out"):
            raise ConfigError("resume: needs out=RUN_DIR, the run to continue")
        chosen = resume_config(given["out"], {**file_values, **given})
    else:
        chosen = kinds.make_config(file_values, given, origin=ORIGIN)
    path = train_run(chosen, resume=resume, evaluate=evaluate, iwae_k=iwae_k, log=_log(log, log_uri))
    return TrainedRun.open(path, resolve_device(chosen.device))


@dataclass
class Study:
    """A comparison study's folder: its members (runs, by name) and its report."""

    path: Path
    members: dict[str, TrainedRun]

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def figure(self, name: str) -> Image.Image:
        """One of the study's side-by-side figures (STUDY/<name>.png: `curves`, `samples`, `manifolds`...)."""
        path = self.path / f"{name}.png"
        if not path.exists():
            drawn = sorted(p.stem for p in self.path.glob("*.png"))
            raise ConfigError(f"figure: the study has no figure {name!r}; it has {', '.join(drawn) or 'none'}")
        return _image(path)


def compare(
    data: str | Path | None = None,
    *,
    kinds: list[str] | tuple[str, ...] = ("vae",),
    archs: list[str] | tuple[str, ...] = ("mlp", "conv"),
    latent_dims: list[int] | tuple[int, ...] = (2, 10),
    betas: list[float] | tuple[float, ...] | None = None,
    seeds: list[int] | tuple[int, ...] | None = None,
    out: str | Path = "compare",
    evaluate: bool = True,
    iwae_k: int = 100,
    log: str | None = None,
    log_uri: str | None = None,
    config: str | Path | None = None,
    **options: Any,
) -> Study:
    """`vaelab compare`: train every combination of `kinds` x `archs` x `latent_dims` x `betas` with the same other
    options (keyword arguments as in `train`), each a run under `out`, then the study's report; an interrupted study
    resumes where it stopped. `log`: each member also logged to "tensorboard" or "mlflow", grouped as one study.
    A kind may carry options of its own (`"vae:beta=4"`); `betas` None: each kind's own; `seeds`: every member once
    per seed, the report's table over seeds as mean ± standard deviation."""
    from vaelab.compare import STUDY_FILE, parse_kind, run_study

    varied = sorted(set(options) & set(VARIED))
    if varied:
        raise ConfigError(f"{varied[0]}: compare varies it; give kinds=, archs=, latent_dims=, betas= or out= instead")
    base = {**(read_toml(config) if config else {}), **_paths_as_text(options)}
    if data is not None:
        base["data"] = str(data)
    for key in VARIED[:4]:
        base.pop(key, None)
    for spec in kinds:
        parse_kind(spec)
    quiet = bool(base.get("quiet"))
    say = (lambda message: None) if quiet else print
    run_study(base, archs, latent_dims, betas, out, evaluate, iwae_k, say, list(kinds), _log(log, log_uri), seeds)
    study = Path(out)
    members = read_json(study / STUDY_FILE)["members"]
    return Study(study, {name: TrainedRun.open(study / name) for name in members})
