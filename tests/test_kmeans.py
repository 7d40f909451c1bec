"""K-means: nearest-centroid assignment, Lloyd updates, empty clusters, determinism."""

from __future__ import annotations

import pytest
import torch

from s4rec.kmeans import kmeans, kmeans_plus_plus, nearest


def blobs(n: int = 300, k: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, 8, generator=g) * 10
    labels = torch.arange(n) % k
    return centres[labels] + torch.randn(n, 8, generator=g) * 0.1, labels


def test_nearest_by_hand() -> None:
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    c = torch.tensor([[1.0, 0.0], [3.0, 3.0]])
    idx, dist = nearest(x, c, chunk=2)
    assert idx.tolist() == [0, 1, 1]
    assert dist.tolist() == pytest.approx([1.0, 1.0, 58.0])  # 49 + 9 < 81


def test_recovers_separated_blobs() -> None:
    x, labels = blobs()
    fit = kmeans(x, 4, iters=10, restarts=3, generator=torch.Generator().manual_seed(0))
    # every true blob maps to one cluster and every cluster to one blob
    pairs = {(int(a), int(b)) for a, b in zip(labels, fit.assigned, strict=True)}
    assert len(pairs) == 4
    exact = float(((x - fit.centroids[fit.assigned]) ** 2).sum())
    assert fit.inertia == pytest.approx(exact, rel=1e-4)  # expanded-square rounding
    assert fit.inertia < 300 * 8 * 0.1**2 * 2  # about the within-blob noise


def test_centroids_are_the_means_of_their_points() -> None:
    x, _ = blobs(seed=1)
    fit = kmeans(x, 4, iters=10, generator=torch.Generator().manual_seed(1))
    for k in range(4):
        members = x[fit.assigned == k]
        torch.testing.assert_close(fit.centroids[k], members.mean(0), rtol=1e-4, atol=1e-4)


def test_no_empty_cluster_with_duplicate_points() -> None:
    x = torch.cat([torch.zeros(50, 3), torch.ones(50, 3), torch.full((2, 3), 5.0)])
    fit = kmeans(x, 3, iters=5, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(fit.assigned, minlength=3).min() > 0


def test_deterministic_given_a_generator() -> None:
    x, _ = blobs(seed=2)
    a = kmeans(x, 5, generator=torch.Generator().manual_seed(7))
    b = kmeans(x, 5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.assigned, b.assigned)


def test_rejects_too_many_clusters() -> None:
    with pytest.raises(ValueError, match="k-means needs"):
        kmeans(torch.zeros(3, 2), 4)


def test_seeding_draws_points_in_proportion_to_squared_distance() -> None:
    """With one seed fixed at 0, the second is x_i with probability d_i^2 / sum d^2."""
    x = torch.tensor([[0.0], [1.0], [2.0], [0.0]])  # distances^2 to x_0: 0, 1, 4, 0
    counts = torch.zeros(4)
    g = torch.Generator().manual_seed(0)
    for _ in range(2000):
        seeds = kmeans_plus_plus(x, 2, g)
        if seeds[0, 0] == 0.0:
            counts[int(seeds[1, 0])] += 1  # value 1 -> index 1, value 2 -> index 2
    share = counts / counts.sum()
    assert share[0] == 0 and share[1] == pytest.approx(0.2, abs=0.04)


def test_fits_on_a_sample_and_assigns_every_point() -> None:
    x, labels = blobs(n=4000, k=4, seed=3)
    fit = kmeans(x, 4, iters=10, restarts=3, generator=torch.Generator().manual_seed(0), sample=50)
    assert len(fit.assigned) == 4000  # fit on 200 points, every point assigned
    pairs = {(int(a), int(b)) for a, b in zip(labels, fit.assigned, strict=True)}
    assert len(pairs) == 4
