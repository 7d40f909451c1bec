"""Who lands in which intent, and who is served well: metrics per user group, cluster
assignments and statistics, head rates, NMI, a 2-D map of the representations.

These are the measurements behind the paper's head/tail analysis (Fig. 1: t-SNE; Fig. 3:
the head rate of each cluster; Fig. 4: metrics of head and tail users) and behind the
planted-intent checks on synthetic data.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data.dataset import LeaveOneOut
from .evaluate import metrics_from_ranks

__all__ = [
    "LENGTH_BUCKETS",
    "assign_clusters",
    "cluster_stats",
    "embed_2d",
    "group_metrics",
    "head_rate_iqr",
    "head_rate_spread",
    "head_rates",
    "length_groups",
    "nmi",
]

# (lowest, highest) number of interactions of a user, highest None = no bound
LENGTH_BUCKETS = ((3, 5), (6, 10), (11, 20), (21, 50), (51, None))


def length_groups(data: LeaveOneOut) -> dict[str, np.ndarray]:
    """Users by their number of interactions (LENGTH_BUCKETS), as boolean masks (U,)."""
    n = data.seqs.lengths
    return {
        f"{lo}-{hi}" if hi else f"{lo}+": (n >= lo) & (n <= (hi or n.max()))
        for lo, hi in LENGTH_BUCKETS
    }


def group_metrics(ranks: Tensor, data: LeaveOneOut) -> dict[str, dict[str, float]]:
    """Metrics and user counts for all users, head and tail (the 20% longest training
    sequences, Fig. 4) and each length bucket; ranks (U,) 0-based, one per user."""
    head = np.asarray(data.is_head, dtype=bool)
    groups = {"all": np.ones(len(head), dtype=bool), "head": head, "tail": ~head}
    groups.update(length_groups(data))
    out = {}
    for name, mask in groups.items():
        out[name] = {"users": int(mask.sum()), **metrics_from_ranks(ranks[torch.from_numpy(mask)])}
    return out


def assign_clusters(z: Tensor, prototypes: Tensor) -> np.ndarray:
    """(U,) h(u) = argmax_k cos(z_u, mu_k), the prototype each sequence is assigned to."""
    return (F.normalize(z, dim=1) @ F.normalize(prototypes, dim=1).T).argmax(1).numpy()


def head_rates(clusters: np.ndarray, is_head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of head sequences in each non-empty cluster (Fig. 3), and the clusters' sizes."""
    ids, sizes = np.unique(clusters, return_counts=True)
    heads = np.bincount(clusters, weights=is_head.astype(np.float64))[ids]
    return heads / sizes, sizes


def head_rate_spread(clusters: np.ndarray, is_head: np.ndarray) -> float:
    """Size-weighted standard deviation of the clusters' head rates around the overall rate.

    0 when every cluster holds head users in the same proportion as the data: the
    adversarial term of Eq. 13 aims at this.
    """
    rates, sizes = head_rates(clusters, is_head)
    return float(np.sqrt(np.average((rates - is_head.mean()) ** 2, weights=sizes)))


def head_rate_iqr(clusters: np.ndarray, is_head: np.ndarray) -> float:
    """Interquartile range of the non-empty clusters' head rates (the boxes of Fig. 3)."""
    q1, q3 = np.percentile(head_rates(clusters, is_head)[0], [25, 75])
    return float(q3 - q1)


def cluster_stats(clusters: np.ndarray, k: int) -> dict[str, float | int | list[int]]:
    """Sizes of all k clusters, how many are empty, and the entropy of the assignment
    distribution in nats and as a share of its maximum log k (1 = perfectly even)."""
    sizes = np.bincount(clusters, minlength=k)
    entropy = _entropy(sizes / sizes.sum())
    return {
        "k": k,
        "sizes": sizes.tolist(),
        "empty": int((sizes == 0).sum()),
        "entropy": entropy,
        "entropy_ratio": entropy / np.log(k) if k > 1 else 1.0,
    }


def embed_2d(z: Tensor, max_points: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE coordinates (n, 2) of at most ``max_points`` rows of z drawn at random, and
    which rows (n,): the map of Fig. 1. Needs scikit-learn."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(z), min(max_points, len(z)), replace=False))
    x = F.normalize(z[torch.from_numpy(rows)], dim=1).numpy()
    perplexity = min(30.0, (len(rows) - 1) / 3)
    coords = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    return coords, rows


def nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information I(A; B) / mean(H(A), H(B)) of two labellings."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    h = (_entropy(pa) + _entropy(pb)) / 2
    return mi / h if h > 0 else 1.0


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
