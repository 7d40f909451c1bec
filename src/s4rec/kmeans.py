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
    """(k, d) initial centroids by D^2 sampling (Arthur & Vassilvitskii, 2007)."""
    n = len(x)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    dist = ((x - x[chosen[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = dist.sum()
        if total <= 0:  # fewer distinct points than k: any unchosen point will do
            weights = torch.ones(n).index_fill_(0, torch.tensor(chosen), 0.0)
        else:
            weights = dist / total
        chosen.append(int(torch.multinomial(weights, 1, generator=generator)))
        dist = torch.minimum(dist, ((x - x[chosen[-1]]) ** 2).sum(1))
    return x[chosen].clone()


@torch.no_grad()
def kmeans(
    x: Tensor, k: int, iters: int = 20, restarts: int = 1, generator: torch.Generator | None = None
) -> KMeansResult:
    """Lloyd's algorithm from k-means++ seeds, the best of ``restarts`` runs.

    x: (N, d). An emptied cluster is re-seeded with the point farthest from its centroid,
    so all ``k`` centroids stay in use. Deterministic given ``generator``.
    """
    x = x.float()
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points ({n}), got k={k}")
    best: KMeansResult | None = None
    for _ in range(restarts):
        centroids = kmeans_plus_plus(x, k, generator)
        for _ in range(iters):
            assigned, dist = nearest(x, centroids)
            counts = torch.bincount(assigned, minlength=k)
            sums = torch.zeros_like(centroids).index_add_(0, assigned, x)
            centroids = sums / counts.clamp(min=1)[:, None]
            empty = torch.nonzero(counts == 0).flatten()
            if len(empty):
                far = dist.topk(len(empty)).indices
                centroids[empty] = x[far]
        assigned, dist = nearest(x, centroids)
        result = KMeansResult(centroids, assigned, float(dist.sum()))
        if best is None or result.inertia < best.inertia:
            best = result
    return best
