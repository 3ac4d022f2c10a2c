"""`vaelab fit-sampler` and `vaelab sample --sampler`: a sampler fitted to a run's latents, and what they refuse."""

import pytest

from vaelab import samplers

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 64)


def test_a_sampler_that_was_not_fitted_is_a_one_line_error(cli, tmp_path, digits):
    out = tmp_path / "vae"
    assert cli("train", "--data", digits, "--out", out, "--epochs", "1", "--quiet", "--latent-dim", "2").returncode == 0
    for args, message in [
        (["sample", out, "--sampler", "gmm"], "fit-sampler"),
        (["sample", out, "--sampler", "flow"], "unknown sampler"),
        (["sample", out, "--label", "1"], "not conditional"),
        (["fit-sampler", out, "--components", "0"], "components"),
    ]:
        result = cli(*args)
        assert result.returncode == 2 and message in result.stderr and result.stderr.strip().count("\n") == 0, (
            result.stderr
        )
    assert samplers.fitted(out) == {}
