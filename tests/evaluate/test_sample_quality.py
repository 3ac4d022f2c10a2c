"""Sample quality without labels (vaelab.evaluate.sample_quality with the random-CNN features): on two data sets
real test images score best, a trained model better than an untrained one, and more training better (issue 22)."""

from __future__ import annotations

import pytest
import torch

from vaelab import data, kinds
from vaelab.data.dataset import Dataset, Split
from vaelab.device import World
from vaelab.evaluate.sample_quality import sample_quality

pytestmark = pytest.mark.slow


def trained(dataset: data.Dataset, epochs: int, tmp_path) -> torch.nn.Module:
    """A VAE (MLP, 256 hidden, z = 10) after `epochs` epochs on `dataset`, trained in process (0: as initialised)."""
    config = kinds.make_config(
        {"epochs": max(1, epochs), "hidden": [256], "quiet": True, "device": "cpu", "out": str(tmp_path / "run")}
    )
    torch.manual_seed(0)
    trainer = kinds.get("vae").trainer(config, dataset.shape, torch.device("cpu"), World())
    order, noise = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    for epoch in range(epochs):
        trainer.train_mode()
        for x, y in data.batches(dataset.train.images, 64, shuffle=True, generator=order):
            trainer.update(trainer.forward(x, y, float(epoch), noise)[1])
    return trainer.model.eval()


@pytest.mark.parametrize("name", ["mnist-mini", "shapes:3000"])
def test_label_free_sample_quality_ranks_real_trained_and_untrained(tmp_path, name):
    loaded = data.load(name)
    dataset = Dataset(name, Split(loaded.train.images[:2400]), Split(loaded.test.images))  # as if unlabelled
    test = dataset.test.images[:500]

    class Real:  # "samples" that are real training images: the best a model could do
        def sample(self, n, generator=None):
            return data.to_float(dataset.train.images[:n])

    scores = {
        label: sample_quality(model, dataset, test, 0, tmp_path, "cpu", features="random")
        for label, model in [("real", Real())] + [(e, trained(dataset, e, tmp_path)) for e in (0, 1, 5)]
    }
    assert all(s.available and s.features == "random" and s.n_samples == 500 for s in scores.values())
    fd = {label: s.fd for label, s in scores.items()}
    assert fd["real"] < 1.0 and scores["real"].precision > 0.8 and scores["real"].recall > 0.8
    assert fd["real"] < fd[5] < fd[1] < fd[0]
    assert scores[5].precision >= scores[1].precision and scores[5].recall >= scores[1].recall
