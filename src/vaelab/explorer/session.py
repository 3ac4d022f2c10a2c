"""The explorer's one door into vaelab: open a run, ask what it can do, decode, encode, interpolate, sample.

Everything the explorer needs from the rest of the package (the run directory, its model and data set, the
KL per dimension, per-image ELBO terms, latent planes) goes through this module; the server, the page, the
tests and the benchmarks only see `Session` and the plain Python values (lists, numpy arrays) it returns.
When the kinds of model become a registry, this is the module to adapt: `capabilities` asks the kind.

Images leave this module as uint8 numpy arrays `[N, H, W, C]` (channels last, ready for PNG or raw bytes)
and enter it as uint8 `[H, W, C]` at the data's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab import data, latent_walks, losses
from vaelab.errors import RunError, VaelabError
from vaelab.evaluate.latents import active_units, posterior_stats
from vaelab.explorer import ink
from vaelab.run import Run

MAX_POINTS = 5000  # test posterior means shown on the map (and used for KL per dimension, activity, PCA)
ELBO_SAMPLES = 32  # z ~ q(z|x) averaged for the per-image reconstruction term
REFERENCE_IMAGES, REFERENCE_SAMPLES = 500, 4  # the test-set mean -ELBO the page shows beside an image's


# --- what the run's kind can do (asked of the registry's Kind, never of its name) --------------------------


def capabilities(run: Run) -> tuple[bool, bool]:
    """(has_encoder, has_likelihood) of a run: whether it has an encoder q(z|x), and a likelihood p(x|z) that
    gives per-image ELBO terms."""
    return run.kind.encoder, run.kind.likelihood


def kind_name(run: Run) -> str:
    """The kind's name, for display."""
    return run.kind.name


def samplers(run: Run) -> list[str]:
    """The samplers of the run's latent space: its prior (the model's `sample_prior`: N(0, I), or a learned prior
    such as the VampPrior's, still listed as "N(0, I)"), then every sampler fitted after training (`fit-sampler`)."""
    from vaelab import samplers as fitted

    return ["N(0, I)", *fitted.fitted(run.path)]


def open_run(path: str | Path) -> Run:
    """The run directory opened for reading, its model in eval mode on the CPU; a one-line `RunError` if not."""
    try:
        run = Run.open(path, "cpu")
    except VaelabError:
        raise
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise RunError(f"{path}: cannot be opened as a vaelab run ({type(exc).__name__}: {exc})") from None
    run.model.eval()
    return run


def load_dataset(run: Run) -> data.Dataset:
    """The run's data set, loaded once."""
    try:
        return run.dataset()
    except VaelabError as exc:
        raise RunError(f"{run.path}: its data set {run.config.data!r} cannot be loaded: {exc}") from None


# --- one opened run --------------------------------------------------------------------------------------


@dataclass
class Plane:
    """A plane of the latent space as plain lists: z = origin + u * axes[0] + v * axes[1]."""

    origin: list[float]
    axes: list[list[float]]
    labels: tuple[str, str]
    description: str
    share: list[float] | None = None  # share of the test means' variance along each axis (principal plane)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float `[N, C, H, W]` in [0, 1] -> uint8 `[N, H, W, C]`."""
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


class Session:
    """One run opened for exploring: the model loaded once, the test split encoded once."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.run = open_run(path)
        self.model = self.run.model
        self.path = Path(path)
        self.name = name or self.path.resolve().name
        self.has_encoder, self.has_likelihood = capabilities(self.run)
        self.dataset = load_dataset(self.run)
        self.shape: tuple[int, int, int] = tuple(self.dataset.shape)  # (C, H, W)
        self.latent_dim: int = int(self.model.latent_dim)
        test = self.dataset.test
        self.test_images = test.images
        self.test_labels = None if test.labels is None else test.labels[:MAX_POINTS]
        # the known factors of each shown test image (dSprites), by factor name: the map can be coloured by any
        self.test_factors = None if test.factors is None else test.factors[:MAX_POINTS]
        # the side of the box the data's digits are scaled into (20 for MNIST), None for data that is not digit-like
        self.ink_box: int | None = ink.ink_box(test.images[:MAX_POINTS].numpy())
        self.means: torch.Tensor | None = None  # [N, D] test posterior means
        self.kl_per_dim: list[float] | None = None
        self.active: list[bool] | None = None
        if self.has_encoder:
            with torch.inference_mode():
                stats = posterior_stats(self.model, test.images[:MAX_POINTS])
            self.means = stats["means"].float()
            self.kl_per_dim = [float(v) for v in stats["kl_per_dim"]]
            _, activity = active_units(self.means)
            self.active = [bool(a > 0.01) for a in activity]
        self.test_elbo = self.reference_elbo() if self.has_encoder and self.has_likelihood else None

        self._info = self._describe()

    # --- what the page shows about the run ---

    def info(self) -> dict[str, Any]:
        """What the page needs to know about the run (computed once: the principal plane takes an SVD)."""
        return self._info

    def _describe(self) -> dict[str, Any]:
        cfg = self.run.meta.get("model", {})
        kind = kind_name(self.run)
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": kind,
            "arch": cfg.get("arch"),
            "likelihood": getattr(self.model, "likelihood", None),
            "latent_dim": self.latent_dim,
            "shape": list(self.shape),
            "data": self.dataset.name,
            "n_test": int(self.test_images.shape[0]),
            "ink_box": self.ink_box,
            "has_encoder": self.has_encoder,
            "has_likelihood": self.has_likelihood,
            "no_encoder_reason": None if self.has_encoder else no_encoder_reason(kind),
            "kl_per_dim": self.kl_per_dim,
            "test_elbo": self.test_elbo,
            "active": self.active,
            "samplers": samplers(self.run),
            "classes": self.classes(),
            "factors": self.factors(),
            "planes": [vars(p) for p in self.planes()],
        }

    def factors(self) -> list[dict[str, Any]] | None:
        """The data's known factors (name and number of values), for the map's colour-by choice; None without."""
        names, sizes = self.dataset.factor_names, self.dataset.factor_sizes
        if names is None or self.test_factors is None:
            return None
        return [{"name": name, "size": int(size)} for name, size in zip(names, sizes)]

    def classes(self) -> list[str] | None:
        if self.dataset.classes:
            return list(self.dataset.classes)
        n = self.dataset.num_classes
        return None if n is None else [str(i) for i in range(n)]

    def planes(self) -> list[Plane]:
        """The run's default plane first: its two dimensions for a 2-D latent, the principal plane of the test
        posterior means for more (dimensions 0 and 1 without an encoder: no means to analyse)."""
        d = self.latent_dim
        if d == 1:
            return [Plane([0.0], [[1.0], [0.0]], ("z[0]", "-"), "the 1-D latent space (vertical position unused)")]
        planes = []
        if d > 2 and self.means is not None:
            planes.append(self.principal_plane())
        plane = latent_walks.coordinate_plane(d, (0, 1))
        planes.append(Plane(plane.origin.tolist(), plane.axes.tolist(), plane.labels, plane.description))
        return planes

    def principal_plane(self) -> Plane:
        plane = latent_walks.principal_plane(self.means)
        coords = latent_walks.project(self.means, plane)
        total = float(self.means.var(0, unbiased=False).sum())
        share = [float(v) / total if total > 0 else 0.0 for v in coords.var(0, unbiased=False)]
        description = (
            f"principal plane of the test posterior means: PC1 {share[0]:.0%} + PC2 {share[1]:.0%} of their variance"
        )
        return Plane(plane.origin.tolist(), plane.axes.tolist(), plane.labels, description, share)

    def points(self) -> dict[str, Any]:
        """The test posterior means `[N, D]` and their labels, for the map's scatter."""
        if self.means is None:
            return {"means": [], "labels": [], "reason": no_encoder_reason(kind_name(self.run))}
        labels = [] if self.test_labels is None else self.test_labels.tolist()
        points = {"means": np.round(self.means.numpy(), 4).tolist(), "labels": labels}
        if self.test_factors is not None:  # each factor's value index per point, by factor name
            names = self.dataset.factor_names
            points["factors"] = {name: self.test_factors[:, k].tolist() for k, name in enumerate(names)}
        return points

    def test_image(self, index: int) -> np.ndarray:
        """Test image `index` as uint8 `[H, W, C]`."""
        return self.test_images[index].permute(1, 2, 0).contiguous().numpy()

    # --- decoding ---

    def decode(self, z: list[list[float]] | np.ndarray | torch.Tensor) -> np.ndarray:
        """Latent points `[N, D]` -> uint8 images `[N, H, W, C]`."""
        with torch.inference_mode():
            z = torch.as_tensor(np.asarray(z, dtype=np.float32))
            return to_uint8(self.model.to_image(self.model.decode(z)))

    def grid(self, origin: list[float], axes: list[list[float]], box: tuple[float, float, float, float], n: int):
        """The decoded n x n grid over the box (u0, u1, v0, v1) of the plane, as one mosaic `[n*H, n*W, C]`;
        rows from the top (v1) down, as on the map."""
        u0, u1, v0, v1 = box
        # cell centres, so that each decoded image sits under the points it stands for
        u = torch.linspace(u0, u1, 2 * n + 1)[1::2]
        v = torch.linspace(v1, v0, 2 * n + 1)[1::2]
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        a = torch.tensor(axes, dtype=torch.float32)
        z = torch.tensor(origin, dtype=torch.float32) + uu.reshape(-1, 1) * a[0] + vv.reshape(-1, 1) * a[1]
        images = self.decode(z)  # [n*n, H, W, C]
        _, h, w, c = images.shape
        return images.reshape(n, n, h, w, c).transpose(0, 2, 1, 3, 4).reshape(n * h, n * w, c)

    def interpolate(self, a: list[float], b: list[float], steps: int, spherical: bool) -> tuple[list, np.ndarray]:
        """The path from a to b (`steps` points, ends included) and its decoded images."""
        t = torch.linspace(0, 1, steps)
        path = (latent_walks.slerp if spherical else latent_walks.lerp)(torch.tensor(a), torch.tensor(b), t)
        return path.tolist(), self.decode(path)

    def sample(self, n: int, seed: int | None = None, sampler: str = "N(0, I)") -> tuple[list, np.ndarray]:
        """n latent points drawn from the sampler (the prior N(0, I)) and their decoded images."""
        known = self._info["samplers"]  # listed (and their files checked) when the run was opened
        if sampler not in known:
            raise ValueError(f"sampler: {sampler!r} is not one of {known}")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        if sampler == "N(0, I)":
            z = self.model.sample_prior(n, generator).cpu()  # the model's own prior (learned for the VampPrior)
        else:
            from vaelab import samplers as fitted

            z = fitted.load(self.run.path, sampler).sample(n, generator)
        return z.tolist(), self.decode(z)

    # --- encoding ---

    def reference_elbo(self) -> dict[str, float]:
        """The mean -ELBO terms (nats) of the first REFERENCE_IMAGES test images, REFERENCE_SAMPLES draws each: the
        yardstick the page puts beside one image's -ELBO (an unbiased estimate of the same mean as `encode`'s)."""
        x = data.to_float(self.test_images[:REFERENCE_IMAGES])  # [N, C, H, W]
        generator = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            q = self.model.encode(x)
            recon = torch.zeros(x.shape[0])
            for _ in range(REFERENCE_SAMPLES):
                z = q.mean + q.std * torch.randn(q.mean.shape, generator=generator)
                recon -= losses.log_likelihood(self.model.likelihood, self.model.decode(z), x, self.model.log_sigma)
            recon, kl = float(recon.mean()) / REFERENCE_SAMPLES, float(q.kl().mean())
        return {"recon": recon, "kl": kl, "neg_elbo": recon + kl, "images": int(x.shape[0])}

    def encode(self, image: np.ndarray, n_samples: int = 8, seed: int = 0) -> dict[str, Any]:
        """The posterior q(z|x) of one uint8 image `[H, W, C]` at the data's size: its mean and standard deviation,
        the reconstruction (decoded mean), `n_samples` draws z ~ q decoded, and (with a likelihood) the per-image
        ELBO terms in nats, recon = E_q[-log p(x|z)] averaged over ELBO_SAMPLES draws and kl = KL(q || N(0, I))."""
        if not self.has_encoder:
            raise ValueError(no_encoder_reason(kind_name(self.run)))
        x = data.to_float(torch.from_numpy(np.array(image, np.uint8)).permute(2, 0, 1)[None])  # [1, C, H, W]
        generator = torch.Generator().manual_seed(seed)
        with torch.inference_mode():
            q = self.model.encode(x)
            eps = torch.randn(max(n_samples, ELBO_SAMPLES), self.latent_dim, generator=generator)
            z = q.mean + q.std * eps  # [K, D]
            outputs = self.model.decode(torch.cat([q.mean, z]))  # the mean first, then the K draws
            images = to_uint8(self.model.to_image(outputs))
            result: dict[str, Any] = {
                "mean": q.mean[0].tolist(),
                "std": q.std[0].tolist(),
                "kl_per_dim": q.kl_per_dim()[0].tolist(),
                "samples_z": z[:n_samples].tolist(),
                "reconstruction": images[0],
                "samples": images[1 : 1 + n_samples],
            }
            if self.has_likelihood:
                log_p = losses.log_likelihood(self.model.likelihood, outputs[1:], x, self.model.log_sigma)  # [K]
                recon, kl = float(-log_p.mean()), float(q.kl()[0])
                result["elbo"] = {"recon": recon, "kl": kl, "elbo": -(recon + kl), "samples": int(z.shape[0])}
        return result


def no_encoder_reason(kind: str) -> str:
    return (
        f"This {kind} run has no encoder q(z|x): its generator maps a latent point to an image, but nothing maps an "
        "image back to the latent space, so a drawn, uploaded or test image cannot be placed on the map. "
        "Decoding, sliders, interpolation between latent points and sampling work."
    )


def serve_with_one_thread() -> None:
    """One intra-op thread for the model work of a running explorer. A decode is one small batch: on 2 cores shared
    with the browser (and on a loaded machine) a second thread buys nothing and its waits make the tail slow
    (measured here for one conv decode under load: p95 126-140 ms with 2 threads, under 1 ms with 1; the
    15 x 15 grid 31-56 ms against 213-233 ms). Call after `open_sessions`, whose test-set encoding keeps all."""
    torch.set_num_threads(1)


def open_sessions(paths: list[str | Path], progress=None) -> list[Session]:
    """Open every run (each error names its run); `progress(path)` is called before each."""
    sessions = []
    names = [Path(p).resolve().name for p in paths]
    for path, name in zip(paths, names):
        if progress:
            progress(path)
        unique = name if names.count(name) == 1 else f"{name} ({path})"
        sessions.append(Session(path, unique))
    return sessions
