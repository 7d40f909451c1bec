"""K-means over all training sequences: the offline clustering of ICLRec and of the
paper's SR+CSD rows, which S^4Rec's online prototypes replace."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class KMeansResult:
    centroids: Tensor  # (K, d)
    assigned: Tensor  # (N,) index of each point's nearest centroid
    inertia: float  # sum of squared distances to the assigned centroids


def nearest(x: Tensor, centroids: Tensor, chunk: int = 65536) -> tuple[Tensor, Tensor]:
    """(N,) nearest centroid (squared Euclidean distance) of each row of x, and that distance."""
    c_sq = (centroids * centroids).sum(1)  # (K,)
    idx, dist = [], []
    for part in x.split(chunk):
        d = c_sq - 2 * part @ centroids.T  # (n, K), ||x||^2 left out: same argmin
        best, arg = d.min(1)
        idx.append(arg)
        dist.append((best + (part * part).sum(1)).clamp(min=0))
    return torch.cat(idx), torch.cat(dist)


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """(k, d) initial centroids by D^2 sampling (Arthur & Vassilvitskii, 2007).

    Distances use ||x||^2 - 2 x.c + ||c||^2 (one matrix-vector product per centroid) and a
    point is drawn by inverse-CDF search on the float64 cumulative distances: O(N d) per
    centroid with no (N, d) temporaries.
    """
    n = len(x)
    x_sq = (x * x).sum(1)  # (N,)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    dist = torch.full((n,), float("inf"), device=x.device)
    for i in range(k):
        if i:
            cum = dist.double().cumsum(0)
            if cum[-1] <= 0:  # fewer distinct points than k: any unchosen point will do
                free = torch.ones(n, dtype=torch.bool, device=x.device)
                free[chosen] = False
                chosen.append(int(torch.nonzero(free)[0]))
            else:
                u = torch.rand(1, generator=generator, dtype=torch.float64).to(x.device) * cum[-1]
                chosen.append(min(int(torch.searchsorted(cum, u, right=True)), n - 1))
        c = x[chosen[-1]]
        dist = torch.minimum(dist, (x_sq - 2 * (x @ c) + c @ c).clamp(min=0))
    return x[chosen].clone()


@torch.no_grad()
def kmeans(
    x: Tensor,
    k: int,
    iters: int = 20,
    restarts: int = 1,
    generator: torch.Generator | None = None,
    sample: int = 256,
) -> KMeansResult:
    """Lloyd's algorithm from k-means++ seeds, the best of ``restarts`` runs.

    x: (N, d). Centroids are fit on at most ``sample * k`` points drawn at random (faiss's
    ``max_points_per_centroid``, also 256 there), then every point is assigned; with fewer
    points, on all of them. An emptied cluster is re-seeded with the point farthest from
    its centroid, so all ``k`` centroids stay in use. Deterministic given ``generator`` (a CPU
    generator; x may live on any device).
    """
    x = x.float()
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points ({n}), got k={k}")
    if restarts < 1:
        raise ValueError(f"k-means needs restarts >= 1, got {restarts}")
    fit_on = x
    if n > sample * k:
        fit_on = x[torch.randperm(n, generator=generator)[: sample * k].to(x.device)]
    runs = (_lloyd(x, fit_on, k, iters, generator) for _ in range(restarts))
    return min(runs, key=lambda run: run.inertia)  # the first of the best


def _lloyd(
    x: Tensor, fit_on: Tensor, k: int, iters: int, generator: torch.Generator | None
) -> KMeansResult:
    """One run of Lloyd's algorithm fit on ``fit_on``, then assigning every row of x."""
    centroids = kmeans_plus_plus(fit_on, k, generator)
    for _ in range(iters):
        assigned, dist = nearest(fit_on, centroids)
        counts = torch.bincount(assigned, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assigned, fit_on)
        centroids = sums / counts.clamp(min=1)[:, None]
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            far = dist.topk(len(empty)).indices
            centroids[empty] = fit_on[far]
    assigned, dist = nearest(x, centroids)
    return KMeansResult(centroids, assigned, float(dist.sum()))
