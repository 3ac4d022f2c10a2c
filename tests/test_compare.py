"""The comparison study (vaelab.compare): members trained, evaluated and compared in one report, resumed where a
longer study picks them up."""

import json

import pytest


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 64)


def test_compare_runs_the_study_of_the_new_kinds_fitting_a_sampler_to_each(cli, digits, tmp_path):
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--kinds",
        "vae,iwae,vamp,cvae",
        "--archs",
        "mlp",
        "--latent-dims",
        "2",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--iwae-k",
        "2",
        "--batch-size",
        "64",
        "--pseudo-inputs",
        "10",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    for member in ("vae-mlp-z2", "iwae-mlp-z2", "vamp-mlp-z2", "cvae-mlp-z2"):
        assert member in report and (study / member / "sampler-gmm.safetensors").is_file()
    assert "Test log-likelihood (mlp, z=2)" in report and "VampPrior VAE:" in report and "IWAE:" in report
    assert "Prior against aggregate posterior (vamp-mlp-z2)" in report and "fitted gmm sampler" in report
    assert "adversarial" not in report  # no discriminator in this study


def test_compare_models_side_by_side(cli, digits_npz, tmp_path):
    digits = digits_npz(512, 128)
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--models",
        "vae,vaegan,gan",
        "--archs",
        "mlp",
        "--latent-dims",
        "4",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--iwae-k",
        "5",
        "--batch-size",
        "64",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    for member in ("vae-mlp-z4", "vaegan-mlp-z4", "gan-mlp-z4"):
        assert member in report and (study / member / "eval.json").is_file()
    assert "VAE against adversarial models" in report and "FD" in report
    gan_eval = json.loads((study / "gan-mlp-z4" / "eval.json").read_text())
    assert gan_eval["kind"] == "gan" and gan_eval["samples"]["fd_classifier"] > 0
