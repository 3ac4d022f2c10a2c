"""`vaelab export` (vaelab.export): the ONNX files run in onnxruntime give PyTorch's outputs within 1e-4, on random
and real inputs, at batch sizes they were not traced with (the batch axis is dynamic), for the mlp and conv
networks; a kind without an encoder exports its decoder only, a conditional kind takes the label; export.json
describes the files; unsupported cases are one-line errors."""

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

import vaelab
from tests.helpers.runs import ok, one_line_error

CONV = ["--arch", "conv", "--channels", "4,8"]


@pytest.fixture(scope="module")
def runs(digits_npz, tmp_path_factory):
    """Tiny trained runs, one per case: mlp, conv (a VAE each), a GAN, a conditional VAE."""
    from vaelab.cli import main

    made = {}

    def make(name, kind="vae", *extra):
        if name not in made:
            out = tmp_path_factory.mktemp("export") / name
            args = ["train", "--kind", kind, "--data", digits_npz(256, 64), "--out", out, "--epochs", "1", "--quiet"]
            args += ["--hidden", "32", "--latent-dim", "3", "--batch-size", "64", "--threads", "1", *extra]
            assert main([str(a) for a in args]) == 0
            made[name] = out
        return made[name]

    return make


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def real_images(digits_npz, n):
    return torch.from_numpy(np.load(digits_npz(256, 64))["test_images"][:n]).float() / 255


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_exported_encoder_and_decoder_match_pytorch_on_random_and_real_inputs(arch, runs, digits_npz, cli, tmp_path):
    run = runs(arch, "vae", *(CONV if arch == "conv" else []))
    out = tmp_path / "onnx"
    done = ok(cli("export", run, "--format", "onnx", "--out", out))
    assert "encoder.onnx" in done.stdout and "decoder.onnx" in done.stdout
    model = vaelab.load(run)
    encoder, decoder = session(out / "encoder.onnx"), session(out / "decoder.onnx")
    assert [i.name for i in encoder.get_inputs()] == ["image"] and [o.name for o in encoder.get_outputs()] == [
        "mu",
        "logvar",
    ]
    generator = torch.Generator().manual_seed(1)
    for images in (torch.rand(1, 1, 28, 28, generator=generator), real_images(digits_npz, 33)):
        mu, logvar = encoder.run(None, {"image": images.numpy()})
        with torch.no_grad():
            posterior = model.encode(images)
        assert mu.shape == (len(images), 3)
        np.testing.assert_allclose(mu, posterior.mean.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(logvar, posterior.logvar.numpy(), atol=1e-4, rtol=0)
    for z in (torch.randn(1, 3, generator=generator), torch.randn(64, 3, generator=generator), posterior.mean):
        (image,) = decoder.run(None, {"z": z.numpy()})
        with torch.no_grad():
            expected = model.sample(len(z), z=z)  # the image in [0, 1], as the figures show it
        assert image.shape == (len(z), 1, 28, 28) and 0 <= image.min() and image.max() <= 1
        np.testing.assert_allclose(image, expected.numpy(), atol=1e-4, rtol=0)
    described = json.loads((out / "export.json").read_text())
    assert described["files"]["encoder"]["inputs"]["image"] == {
        "dtype": "float32",
        "shape": ["batch", 1, 28, 28],
        "range": [0.0, 1.0],
    }
    assert described["files"]["decoder"]["outputs"]["image"]["shape"] == ["batch", 1, 28, 28]
    assert described["files"]["decoder"]["inputs"]["z"]["shape"] == ["batch", 3]
    assert described["config"] == json.loads((run / "config.json").read_text())
    for checked in (described["files"][name]["max_abs_diff_onnxruntime"] for name in ("encoder", "decoder")):
        assert set(checked) == {"random", "real"} and max(checked.values()) <= 1e-4


def test_a_kind_without_an_encoder_exports_its_decoder_and_says_so(runs, cli, tmp_path):
    run = runs("gan", "gan")
    done = ok(cli("export", run, "--out", tmp_path / "gan"))
    assert "has no encoder: exported the decoder only" in done.stdout
    assert sorted(p.name for p in (tmp_path / "gan").iterdir()) == ["decoder.onnx", "export.json"]
    z = torch.randn(5, 3)
    (image,) = session(tmp_path / "gan" / "decoder.onnx").run(None, {"z": z.numpy()})
    np.testing.assert_allclose(image, vaelab.load(run).sample(5, z=z).numpy(), atol=1e-4, rtol=0)
    (note,) = json.loads((tmp_path / "gan" / "export.json").read_text())["notes"]
    assert note.endswith("has no encoder: exported the decoder only")


def test_a_conditional_kind_takes_the_label_as_an_input_of_both_files(runs, digits_npz, cli, tmp_path):
    run = runs("cvae", "cvae")
    ok(cli("export", run, "--out", tmp_path / "cvae"))
    model = vaelab.load(run)
    encoder, decoder = session(tmp_path / "cvae" / "encoder.onnx"), session(tmp_path / "cvae" / "decoder.onnx")
    assert [i.name for i in encoder.get_inputs()] == ["image", "label"]
    assert [i.name for i in decoder.get_inputs()] == ["z", "label"]
    images, labels = real_images(digits_npz, 7), torch.tensor([0, 1, 2, 3, 4, 5, 9])
    mu, _ = encoder.run(None, {"image": images.numpy(), "label": labels.numpy()})
    np.testing.assert_allclose(mu, model.encode(images, labels).mean.detach().numpy(), atol=1e-4, rtol=0)
    z = torch.randn(7, 3)
    (image,) = decoder.run(None, {"z": z.numpy(), "label": labels.numpy()})
    np.testing.assert_allclose(image, model.sample(7, z=z, labels=labels).numpy(), atol=1e-4, rtol=0)
    described = json.loads((tmp_path / "cvae" / "export.json").read_text())
    assert described["files"]["decoder"]["inputs"]["label"] == {"dtype": "int64", "shape": ["batch"], "range": [0, 9]}


def test_unsupported_cases_are_one_line_errors(runs, cli, tmp_path, monkeypatch):
    run = runs("mlp")
    assert "no such run directory" in one_line_error(cli("export", tmp_path / "missing", "--out", tmp_path / "o"))
    assert "invalid choice: 'tflite'" in one_line_error(cli("export", run, "--format", "tflite", "--out", tmp_path))
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert "is a file, not a folder" in one_line_error(cli("export", run, "--out", blocker / "onnx"))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    message = one_line_error(cli("export", run, "--out", tmp_path / "o"))
    assert message.endswith("pip install 'vaelab[onnx]'") and not (tmp_path / "o").exists()
