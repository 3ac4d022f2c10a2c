"""What the explorer's session tells the page about a run (vaelab.explorer.session): on data with known factors
(dSprites), every factor's name and number of values, and each test point's factor values, so the map can be coloured
by any factor; on data without factors, nothing of the kind."""

import pytest

from vaelab.explorer.session import Session

pytestmark = pytest.mark.e2e


def _train(out, data: str) -> None:
    from vaelab.cli import main

    args = ["train", "--data", data, "--out", str(out), "--epochs", "1", "--latent-dim", "2", "--hidden", "16"]
    assert main([*args, "--batch-size", "64", "--threads", "1", "--quiet"]) == 0


def test_the_points_carry_each_factor_of_the_data_and_the_info_names_them(tmp_path):
    _train(tmp_path / "run", "dsprites:200")
    session = Session(tmp_path / "run")
    test = session.dataset.test
    assert session.info()["factors"] == [
        {"name": name, "size": size} for name, size in zip(session.dataset.factor_names, session.dataset.factor_sizes)
    ]
    assert [f["name"] for f in session.info()["factors"]] == ["shape", "scale", "orientation", "x", "y"]
    points = session.points()
    assert list(points["factors"]) == ["shape", "scale", "orientation", "x", "y"]
    for k, name in enumerate(points["factors"]):
        assert points["factors"][name] == test.factors[:, k].tolist()
        assert len(points["factors"][name]) == len(points["means"]) == len(test)


def test_data_without_factors_offers_none(digits_npz, tmp_path):
    _train(tmp_path / "digits", str(digits_npz(64, 16)))
    session = Session(tmp_path / "digits")
    assert session.info()["factors"] is None and "factors" not in session.points()
