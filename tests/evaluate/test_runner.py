"""What `vaelab eval` and `vaelab train --eval` compute (vaelab.evaluate), checked against numbers recomputed here:
bits per dimension, the IWAE NLL's standard error, reconstruction MSE / PSNR (and that a trained model beats a
constant image), `--split train`, `--json`, the run's precision, and the evaluation that `train --eval` runs."""

import contextlib
import io
import json
import math
import re

import pytest

import vaelab
from vaelab import data
from vaelab.evaluate.iwae import iwae_log_likelihood

pytestmark = pytest.mark.e2e

K = 20  # importance samples for the evals these tests run (train --eval uses the default, 1000)


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(1200, 200)


@pytest.fixture(scope="module")
def evaluated(digits, tmp_path_factory):
    """A small MLP VAE trained with `train --eval` (enough steps to learn something): the run directory, what
    the command printed, and the eval.json it wrote (copied now: later tests evaluate the run again)."""
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("claims") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "train",
                "--data",
                str(digits),
                "--out",
                str(out),
                "--epochs",
                "4",
                "--batch-size",
                "32",
                "--lr",
                "3e-3",
                "--latent-dim",
                "8",
                "--hidden",
                "128",
                "--quiet",
                "--eval",
            ]
        )
    assert code == 0
    return out, printed.getvalue(), json.loads((out / "eval.json").read_text())


def dims_of(run) -> int:
    return math.prod(json.loads((run / "config.json").read_text())["data"]["shape"])


def eval_json(cli, run, *args) -> dict:
    result = cli("eval", run, "--iwae-k", K, "--quiet", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_train_with_eval_evaluates_the_test_split_after_training(evaluated, digits):
    """Catches `train --eval` skipping the evaluation, evaluating something else than the final model's test
    split, or printing numbers that differ from the eval.json it wrote; and the report missing its section.
    Checks a README claim."""
    run, printed, result = evaluated
    assert result["split"] == "test" and result["n_images"] == 200 and result["iwae"]["k"] == 1000
    assert f"{result['iwae']['nll']:.2f} +- {result['iwae']['nll_se']:.2f}" in printed
    assert f"{result['elbo']['elbo']:.2f}" in printed
    # the ELBO it measured is the last epoch's test ELBO (same split, same model) up to the sampling noise (0.7
    # nats here; the epoch before is 10 nats away)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert -result["elbo"]["elbo"] == pytest.approx(last["test"]["recon"] + last["test"]["kl"], abs=1.5)
    assert "Evaluation (test split, 200 images)" in (run / "report.html").read_text()


def test_bits_per_dim_are_the_nats_over_d_ln2(evaluated):
    """Catches a bits/dim that is not -ELBO or NLL / (D ln 2) with D the number of values in an image
    (log2 against ln, a D of H*W or of the whole batch, the ELBO's sign). Checks a README claim."""
    run, printed, result = evaluated
    d = dims_of(run)
    assert d == 784
    assert result["elbo"]["bits_per_dim"] == pytest.approx(-result["elbo"]["elbo"] / (d * math.log(2)), rel=1e-9)
    assert result["iwae"]["bits_per_dim"] == pytest.approx(result["iwae"]["nll"] / (d * math.log(2)), rel=1e-9)
    assert f"{result['iwae']['bits_per_dim']:.4f}" in printed and f"{result['elbo']['bits_per_dim']:.4f}" in printed
    assert -result["elbo"]["elbo"] == pytest.approx(result["elbo"]["recon"] + result["elbo"]["kl"], rel=1e-9)


def test_nll_and_its_standard_error_follow_the_per_image_estimates(cli, evaluated, digits):
    """Catches a standard error that is the standard deviation (not / sqrt(n)), a variance, or computed over
    something else than the images; and an NLL that is not the mean of the per-image IWAE estimates.
    Checks a README claim."""
    run, _, _ = evaluated
    result = eval_json(cli, run)
    per_image = -iwae_log_likelihood(vaelab.load(run), data.load(digits).test.images, K, seed=0)
    assert len(per_image) == result["n_images"] == 200
    assert result["iwae"]["nll"] == pytest.approx(float(per_image.mean()), rel=1e-6)
    se = float(per_image.std()) / math.sqrt(len(per_image))
    assert result["iwae"]["nll_se"] == pytest.approx(se, rel=1e-6)
    assert 0.2 < result["iwae"]["nll_se"] < 20  # a few nats: neither the std (~10x more) nor its square
    # the IWAE bound with k = 20 is tighter than the ELBO on the same images (on average over 200 images)
    assert result["iwae"]["nll"] < -result["elbo"]["elbo"]


def test_reconstruction_mse_and_psnr_match_a_recomputation_and_beat_a_constant_image(cli, evaluated, digits):
    """Catches an MSE over the wrong images or from sampled rather than mean latents, a PSNR that is not
    10 log10(1 / MSE), and a model whose reconstructions are no better than the training split's mean image
    (which reaches about 11.8 dB on these digits: a PSNR above 5 dB proves nothing). Checks a README claim."""
    run, _, _ = evaluated
    result = eval_json(cli, run)
    ds = data.load(digits)
    x = data.to_float(ds.test.images)
    mse = float((vaelab.load(run).reconstruct(x) - x).double().pow(2).mean())
    assert result["reconstruction"]["mse"] == pytest.approx(mse, rel=1e-5)
    assert result["reconstruction"]["psnr_db"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)
    mean_image = data.to_float(ds.train.images).mean(0, keepdim=True)
    baseline = float((x - mean_image).double().pow(2).mean())
    assert result["reconstruction"]["mse"] < 0.8 * baseline
    assert result["reconstruction"]["psnr_db"] > 10 * math.log10(1 / baseline) + 1.0


def test_split_train_evaluates_the_training_images(cli, evaluated, digits):
    """Catches `--split train` being ignored (the test split evaluated under another name). Checks a README claim."""
    run, _, _ = evaluated
    test, train = eval_json(cli, run), eval_json(cli, run, "--split", "train")
    assert (test["split"], test["n_images"]) == ("test", 200)
    assert (train["split"], train["n_images"]) == ("train", 1200)
    x = data.to_float(data.load(digits).train.images)
    mse = float((vaelab.load(run).reconstruct(x) - x).double().pow(2).mean())
    assert train["reconstruction"]["mse"] == pytest.approx(mse, rel=1e-5)
    assert train["iwae"]["nll"] != test["iwae"]["nll"] and train["elbo"]["elbo"] != test["elbo"]["elbo"]
    assert json.loads((run / "eval.json").read_text())["split"] == "train"  # what it wrote is what it measured


def test_json_output_is_the_eval_json_and_the_table_shows_the_same_numbers(cli, evaluated):
    """Catches `--json` printing something that is not JSON (a table, progress text), or numbers that differ
    from eval.json or from the printed table (evaluation is deterministic for a seed). Checks a README claim."""
    run, _, _ = evaluated
    printed = eval_json(cli, run, "--seed", "3")
    saved = json.loads((run / "eval.json").read_text())
    for result in (printed, saved):
        result.pop("seconds"), result["iwae"].pop("seconds")
    assert printed == saved and printed["seed"] == 3
    table = cli("eval", run, "--iwae-k", K, "--quiet", "--seed", "3")
    assert table.returncode == 0, table.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(table.stdout)

    def shown(label: str) -> list[float]:
        line = next(line for line in table.stdout.splitlines() if line.strip().startswith(label))
        return [float(v) for v in re.findall(r"-?\d+\.\d+", line[len(label) + 2 :])]

    e, i, r, s = printed["elbo"], printed["iwae"], printed["reconstruction"], printed["samples"]
    assert shown("ELBO (nats/image)") == [round(e["elbo"], 2), round(e["recon"], 2), round(e["kl"], 2)]
    assert shown("-ELBO (bits/dim)") == [round(e["bits_per_dim"], 4)]
    assert shown(f"NLL, IWAE k={K} (nats/image)") == [round(i["nll"], 2), round(i["nll_se"], 2)]
    assert shown("NLL (bits/dim)") == [round(i["bits_per_dim"], 4)]
    assert shown("reconstruction MSE / PSNR") == [round(r["mse"], 5), round(r["psnr_db"], 2)]
    assert shown("FD (classifier features)") == [round(s["fd_classifier"], 3)]
    assert shown("precision / recall") == [round(s["precision"], 3), round(s["recall"], 3)]
    assert shown("KL per dimension") == [round(v, 2) for v in printed["latents"]["kl_per_dim"]]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_run_is_evaluated_in_the_precision_it_was_trained_in(cli, digits_npz, tmp_path, precision):
    """`train --eval` and `compare` evaluate a `--precision bf16` run with a bf16 decoder (and an fp32 run in
    fp32): catches the evaluation ignoring the run's precision, in either direction. Checks a README claim."""
    from vaelab.pipeline import finish_run
    from vaelab.run import Run

    out = tmp_path / "run"
    trained = cli(
        "train",
        "--data",
        digits_npz(256, 64),
        "--out",
        out,
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--latent-dim",
        "2",
        "--precision",
        precision,
        "--quiet",
    )
    assert trained.returncode == 0, trained.stderr
    assert not (out / "eval.json").exists()
    finish_run(Run.open(out), evaluate=True, iwae_k=5)
    assert json.loads((out / "eval.json").read_text())["iwae"]["precision"] == precision
