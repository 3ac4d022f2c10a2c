"""The chain for one run (vaelab.pipeline): train, then figures, evaluation and the report, on the data set and model
loaded once."""

import pytest

from vaelab import data

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 64)


def test_train_with_eval_loads_the_data_once_and_builds_the_model_once(cli, digits, tmp_path, monkeypatch):
    from vaelab import checkpoint
    from vaelab.models import vae as vae_module

    calls = {"data": 0, "models": 0, "weights read": 0}
    load, init, read = data.load, vae_module.VAE.__init__, checkpoint.read_tensors

    def counting_load(*args, **kwargs):
        calls["data"] += 1
        return load(*args, **kwargs)

    def counting_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        calls["models"] += next(self.parameters()).device.type != "meta"  # the size check builds on the meta device

    def counting_read(*args, **kwargs):
        calls["weights read"] += 1
        return read(*args, **kwargs)

    monkeypatch.setattr(data, "load", counting_load)
    monkeypatch.setattr(vae_module.VAE, "__init__", counting_init)
    monkeypatch.setattr("vaelab.run.read_tensors", counting_read)
    result = cli("train", "--data", digits, "--out", tmp_path / "run", "--epochs", "1", "--quiet", "--eval")
    assert result.returncode == 0, result.stderr
    assert calls == {"data": 1, "models": 1, "weights read": 0}


def test_a_tiny_image_folder_trains_evaluates_and_reports(cli, tmp_path):
    """20 images: every figure and the report adapt to a test split of a handful of images.
    Found by hardening (bad input and faults)."""
    from PIL import Image

    from vaelab import data

    images = data.load("mnist-mini").train.images[:20, 0].numpy()
    for i, image in enumerate(images):
        folder = tmp_path / "folder" / ("test" if i < 4 else "train") / str(i % 2)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "run"
    result = cli(
        "train",
        "--data",
        tmp_path / "folder",
        "--out",
        out,
        "--epochs",
        "2",
        "--quiet",
        "--batch-size",
        "8",
        "--latent-dim",
        "3",
        "--eval",
    )
    assert result.returncode == 0, result.stderr
    for name in ("interpolation.png", "manifold.png", "latents.png", "reconstructions.png", "report.html", "eval.json"):
        assert (out / name).is_file(), name
