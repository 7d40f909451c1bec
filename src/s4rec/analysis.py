"""Who lands in which intent: sequence representations, cluster assignments, head rates, NMI.

These are the measurements behind the paper's head/tail analysis (Fig. 3: the head rate
of each cluster) and behind the planted-intent checks on synthetic data.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from .objectives import training_representations

__all__ = ["assign_clusters", "head_rate_spread", "head_rates", "nmi", "training_representations"]


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
