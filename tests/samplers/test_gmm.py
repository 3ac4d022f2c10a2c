"""The Gaussian-mixture sampler (Ghosh et al. 2020): fitted to latents, saved as safetensors, sampled."""

import pytest
import torch

from vaelab.samplers import gmm


def test_gmm_recovers_two_clusters_round_trips_through_safetensors_and_samples_them(tmp_path):
    g = torch.Generator().manual_seed(0)
    points = torch.cat(
        [
            torch.randn(400, 2, generator=g) * 0.1 + torch.tensor([3.0, 0.0]),
            torch.randn(200, 2, generator=g) * 0.1 - torch.tensor([3.0, 0.0]),
        ]
    )
    fitted = gmm.fit(points, 2, seed=0)
    path = tmp_path / "sampler-gmm.safetensors"
    gmm.save(fitted, path)
    assert b"__reduce__" not in path.read_bytes() and path.read_bytes()[8:9] == b"{"  # safetensors, not a pickle
    loaded = gmm.load(path)
    order = loaded.means[:, 0].argsort(descending=True)
    assert torch.allclose(loaded.means[order], torch.tensor([[3.0, 0.0], [-3.0, 0.0]], dtype=torch.float64), atol=0.05)
    assert torch.allclose(loaded.weights[order], torch.tensor([2 / 3, 1 / 3], dtype=torch.float64), atol=0.01)
    z = loaded.sample(6000, torch.Generator().manual_seed(1))
    assert abs(float((z[:, 0] > 0).double().mean()) - 2 / 3) < 0.03 and abs(float(z[:, 1].std()) - 0.1) < 0.01
    assert loaded.info["components"] == 2 and loaded.info["converged"]
    with pytest.raises(Exception, match="components"):
        gmm.fit(points, 0)
