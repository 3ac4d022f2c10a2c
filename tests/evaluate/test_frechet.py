"""The Frechet distance and precision / recall (vaelab.evaluate.frechet), against closed forms, known sets and
direct reference computations on tiny inputs."""

import math

import pytest
import torch

from vaelab.evaluate import frechet
from vaelab.evaluate.frechet import frechet_distance, precision_recall


def frechet_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)), the eigenvalues of S_a S_b being real and >= 0."""
    a, b = a.double(), b.double()
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    roots = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0).sqrt().sum()
    return float((a.mean(0) - b.mean(0)).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * roots)


def test_frechet_distance_matches_the_reference_for_small_and_large_spreads():
    """Found by mutation testing."""
    torch.manual_seed(0)
    for scale in (0.05, 1.0, 20.0):
        a = scale * torch.randn(50, 3) @ torch.randn(3, 3)
        b = scale * torch.randn(60, 3) @ torch.randn(3, 3) + 0.3
        assert frechet_distance(a, b) == pytest.approx(frechet_reference(a, b), rel=1e-6, abs=1e-9)
    assert frechet_distance(torch.ones(5, 2), torch.ones(5, 2)) == 0.0
    # a degenerate covariance (a zero-variance feature): its eigenvalues may come out slightly negative
    c = torch.randn(40, 3, dtype=torch.float64)
    c[:, 2] = 1.0
    assert frechet_distance(c, c) == pytest.approx(0.0, abs=1e-9)


def test_knn_radii_and_coverage_are_exact_on_a_line():
    """Found by mutation testing."""
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    torch.testing.assert_close(frechet._knn_radii(x, 1), torch.tensor([1.0, 1.0, 2.0, 4.0]))
    torch.testing.assert_close(frechet._knn_radii(x, 2), torch.tensor([3.0, 2.0, 3.0, 6.0]))
    torch.testing.assert_close(frechet._knn_radii(x, 1, chunk=3), torch.tensor([1.0, 1.0, 2.0, 4.0]))
    centres, radii = torch.tensor([[0.0], [10.0]]), torch.tensor([1.0, 0.5])
    points = torch.tensor([[1.0], [1.5], [10.5], [9.0], [-1.0]])  # on the boundary counts as inside
    assert frechet._coverage(points, centres, radii) == pytest.approx(3 / 5)
    assert frechet._coverage(points, centres, radii, chunk=2) == pytest.approx(3 / 5)


def test_chunked_and_unchunked_precision_recall_agree():
    """Found by mutation testing."""
    torch.manual_seed(1)
    real, fake = torch.randn(1100, 2), torch.randn(1030, 2) + 0.5
    radii = frechet._knn_radii(real, 3)
    torch.testing.assert_close(radii, torch.cdist(real, real).kthvalue(4, dim=1).values)
    inside = (torch.cdist(fake, real) <= radii[None, :]).any(1).float().mean()
    assert frechet._coverage(fake, real, radii) == pytest.approx(float(inside))


def coverage_reference(points, centres, k):
    """The share of `points` within the k-th nearest-neighbour distance of some centre, by loops."""
    inside = 0
    for p in points.tolist():
        for i, c in enumerate(centres.tolist()):
            others = sorted(math.dist(c, o) for j, o in enumerate(centres.tolist()) if j != i)
            if math.dist(p, c) <= others[k - 1]:
                inside += 1
                break
    return inside / len(points)


def test_precision_recall_against_loops_with_the_default_k():
    """Found by mutation testing."""
    torch.manual_seed(2)
    real, fake = torch.randn(25, 2, dtype=torch.float64), 1.5 * torch.randn(20, 2, dtype=torch.float64) + 1
    for k in (1, 3):
        p, r = precision_recall(real, fake, k=k)
        assert (p, r) == (
            pytest.approx(coverage_reference(fake, real, k)),
            pytest.approx(coverage_reference(real, fake, k)),
        )
    assert precision_recall(real, fake) == precision_recall(real, fake, k=3)
    assert precision_recall(real, fake, k=2) != precision_recall(real, fake, k=3) != precision_recall(real, fake, k=4)


def test_frechet_distance_is_zero_on_itself_and_grows_with_corruption():
    torch.manual_seed(0)
    real = torch.randn(2000, 16) @ torch.randn(16, 16)
    assert abs(frechet_distance(real, real)) < 1e-6
    distances = [frechet_distance(real, real + s * torch.randn_like(real)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(distances, distances[1:]))
    # against the closed form for two isotropic Gaussians: |mu|^2 + D (s1 - s2)^2
    a, b = torch.randn(200000, 4), 2 * torch.randn(200000, 4) + 1
    assert frechet_distance(a, b) == pytest.approx(4 * 1 + 4 * (1 - 2) ** 2, rel=0.02)


def test_precision_and_recall_on_shifted_and_collapsed_sets():
    torch.manual_seed(0)
    real = torch.randn(1000, 8)
    same_p, same_r = precision_recall(real, torch.randn(1000, 8))
    far_p, far_r = precision_recall(real, torch.randn(1000, 8) + 4)
    collapsed_p, collapsed_r = precision_recall(real, 0.1 * torch.randn(1000, 8))
    assert same_p > 0.8 and same_r > 0.8
    assert far_p < 0.05 and far_r < 0.05
    assert collapsed_p > 0.9 and collapsed_r < 0.3  # good samples of too few modes: precise, not diverse


def test_precision_recall_exact_on_identical_and_far_disjoint_sets():
    """Known cases: a set against itself lies on its own manifold (precision = recall = 1, FD = 0); a set far from
    every k-NN ball of the other (precision = recall = 0)."""
    torch.manual_seed(1)
    real = torch.randn(300, 5)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert abs(frechet_distance(real, real.clone())) < 1e-6
    assert precision_recall(real, torch.randn(300, 5) + 100.0) == (0.0, 0.0)
