"""`vaelab eval RUN`: the evaluation printed and written to eval.json, its cached classifier, a missing run."""

import json
import math

import pytest

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
