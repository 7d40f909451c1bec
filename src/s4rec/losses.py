"""Loss objects: tensors in, scalar out. They know nothing about batches, files or models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BCENextItemLoss(nn.Module):
    """Next-item loss L_SR (Eq. 1) as trained by ICLRec/CoSeRec: binary cross-entropy.

    ``-log sigmoid(s_pos) - mean_j log(1 - sigmoid(s_neg_j))`` averaged over positions.
    pos: (N,) scores of the true next items; neg: (N, M) scores of sampled negatives.
    """

    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        return (F.softplus(-pos) + F.softplus(neg).mean(-1)).mean()


class CENextItemLoss(nn.Module):
    """Next-item loss L_SR (Eq. 1) as softmax cross-entropy over every item.

    logits: (N, V) scores of all candidate items; target: (N,) column of the true item.
    """

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)


class SampledCENextItemLoss(nn.Module):
    """Next-item loss L_SR (Eq. 1) as softmax cross-entropy against sampled negatives.

    pos: (N,) true-item scores; neg: (N, M) negative scores; ``neg_valid`` (N, M) is False
    where a sampled negative equals the true item (an accidental hit, excluded).
    """

    def forward(self, pos: Tensor, neg: Tensor, neg_valid: Tensor | None = None) -> Tensor:
        if neg_valid is not None:
            neg = neg.masked_fill(~neg_valid, float("-inf"))
        logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1)  # (N, 1 + M), true item first
        return F.cross_entropy(logits, logits.new_zeros(len(logits), dtype=torch.long))
