"""The explorer as one offline page (vaelab.explorer.static_page): what it embeds of a run on data with known factors,
so the page's map can be coloured by any factor without a server."""

import pytest

from vaelab.explorer.session import Session
from vaelab.explorer.static_page import MAX_POINTS, run_data

pytestmark = pytest.mark.e2e


def test_a_run_on_dsprites_embeds_each_factor_of_its_points(tmp_path):
    from vaelab.cli import main

    out = tmp_path / "run"
    args = ["train", "--data", "dsprites:200", "--out", str(out), "--epochs", "1", "--latent-dim", "2"]
    assert main([*args, "--hidden", "16", "--threads", "1", "--quiet"]) == 0
    session = Session(out)
    embedded = run_data(session, 0)
    n = min(MAX_POINTS, len(session.dataset.test))
    assert list(embedded["factors"]) == ["shape", "scale", "orientation", "x", "y"]
    for k, name in enumerate(embedded["factors"]):
        assert embedded["factors"][name] == session.dataset.test.factors[:n, k].tolist()
    assert [f["name"] for f in embedded["info"]["factors"]] == list(embedded["factors"])


def test_a_likelihood_without_an_in_browser_image_is_refused_in_one_line():
    """The page draws the decoder's image itself (sigmoid or clamp): the logistic mixture's mean has no in-browser
    version yet, so exporting such a run is a one-line refusal rather than a page of wrong images."""
    from vaelab.errors import ConfigError
    from vaelab.explorer.static_page import browser_output

    assert browser_output("bernoulli") == "sigmoid" and browser_output("gaussian") == "clamp"
    with pytest.raises(ConfigError, match="the logistic likelihood's image has no in-browser version"):
        browser_output("logistic")
