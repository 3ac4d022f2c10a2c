"""`vaelab eval RUN`: the evaluation printed and written to eval.json, its cached classifier, a missing run."""

import json
import math

import numpy as np
import pytest

from tests.helpers.files import save_png

pytestmark = pytest.mark.e2e


def test_vaelab_eval_end_to_end(cli, digits_npz, tmp_path):
    path = digits_npz(500, 150)
    run = tmp_path / "run"
    assert cli("train", "--data", path, "--out", run, "--epochs", "2", "--quiet", "--binarize").returncode == 0
    result = cli("eval", run, "--iwae-k", "50", "--cache-dir", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert (
        "IWAE k=50" in result.stdout and "FD (classifier features)" in result.stdout and "binarization" in result.stdout
    )
    saved = json.loads((run / "eval.json").read_text())
    assert saved["iwae"]["k"] == 50 and saved["n_images"] == 150
    assert saved["iwae"]["nll"] <= -saved["elbo"]["elbo"] + 1.0  # the IWAE bound is (nearly always) tighter
    samples, rec = saved["samples"], saved["reconstruction"]
    assert samples["n_samples"] == 150 and samples["fd_classifier"] > 0
    assert f"{samples['precision']:.3f} / {samples['recall']:.3f}" in result.stdout
    assert samples["classifier_test_accuracy"] > 0.5  # the feature classifier learned the digits (chance: 0.1)
    assert len(saved["latents"]["kl_per_dim"]) == 10 and rec["psnr_db"] == pytest.approx(-10 * math.log10(rec["mse"]))
    assert list((tmp_path / "cache" / "classifiers").glob("*.safetensors"))  # cached for the next run
    bad = cli("eval", tmp_path / "nope")
    assert bad.returncode == 2 and "no such run directory" in bad.stderr


def test_eval_of_an_unlabelled_colour_folder_measures_sample_quality(cli, tmp_path):
    """Issue 22: a colour image folder without labels gets FD, precision and recall, in the fixed random CNN's
    features (cached per data set); `--features classifier` there, and `--features inception` (no network), are
    one-line errors, exit 2, before any work."""
    rng = np.random.default_rng(0)
    for k in range(60):
        image = rng.integers(0, 60, (8, 8, 3), dtype=np.uint8)
        image[rng.integers(0, 4) :, : rng.integers(4, 8)] = rng.integers(120, 256, 3, dtype=np.uint8)
        save_png(tmp_path / "photos" / f"{k}.png", image)
    run, cache = tmp_path / "run", tmp_path / "cache"
    trained = cli("train", "--data", tmp_path / "photos", "--out", run, "--epochs", "1", "--quiet")
    assert trained.returncode == 0, trained.stderr
    result = cli("eval", run, "--iwae-k", "5", "--cache-dir", cache, "--json")
    assert result.returncode == 0, result.stderr
    samples = json.loads(result.stdout)["samples"]
    assert samples["available"] and samples["features"] == "random" and samples["n_samples"] == 12
    assert samples["fd"] > 0 and 0 <= samples["precision"] <= 1 and 0 <= samples["recall"] <= 1
    assert "fd_classifier" not in samples and "random CNN" in samples["feature_space"]
    assert list((cache / "features").glob("random-*.safetensors"))
    assert "FD (random-CNN features)" in cli("eval", run, "--iwae-k", "5", "--cache-dir", cache).stdout
    for features, phrase in (("classifier", "has no labels"), ("inception", "no Inception-v3 network")):
        bad = cli("eval", run, "--features", features, "--cache-dir", cache)
        assert bad.returncode == 2 and phrase in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
