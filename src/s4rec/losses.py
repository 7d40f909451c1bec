"""Loss objects: tensors in, scalar out. They know nothing about batches, files or models."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .runtime import in_fp32


class BCENextItemLoss(nn.Module):
    """Next-item loss L_SR (Eq. 1) as trained by ICLRec/CoSeRec: binary cross-entropy.

    ``-log sigmoid(s_pos) - mean_j log(1 - sigmoid(s_neg_j))`` averaged over positions.
    pos: (N,) scores of the true next items; neg: (N, M) scores of sampled negatives.
    """

    @in_fp32
    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        return (F.softplus(-pos) + F.softplus(neg).mean(-1)).mean()


class BPRNextItemLoss(nn.Module):
    """Next-item loss as Bayesian personalised ranking: ``-log sigmoid(s_pos - s_neg)``,
    averaged over positions and their sampled negatives. pos: (N,); neg: (N, M)."""

    @in_fp32
    def forward(self, pos: Tensor, neg: Tensor) -> Tensor:
        return F.softplus(neg - pos.unsqueeze(-1)).mean()


class CENextItemLoss(nn.Module):
    """Next-item loss L_SR (Eq. 1) as softmax cross-entropy over every item.

    logits: (N, V) scores of all candidate items; target: (N,) column of the true item.
    """

    @in_fp32
    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(logits, target)


class SampledCENextItemLoss(nn.Module):
    """Next-item loss L_SR (Eq. 1) as softmax cross-entropy against sampled negatives.

    pos: (N,) true-item scores; neg: (N, M) negative scores; ``neg_valid`` (N, M) is False
    where a sampled negative equals the true item (an accidental hit, excluded).
    """

    @in_fp32
    def forward(self, pos: Tensor, neg: Tensor, neg_valid: Tensor | None = None) -> Tensor:
        if neg_valid is not None:
            neg = neg.masked_fill(~neg_valid, float("-inf"))
        logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1)  # (N, 1 + M), true item first
        return F.cross_entropy(logits, logits.new_zeros(len(logits), dtype=torch.long))


def identity(x: Tensor) -> Tensor:
    return x


@torch.no_grad()
def sinkhorn(
    scores: Tensor,
    eps: float = 0.05,
    iters: int = 3,
    all_reduce: Callable[[Tensor], Tensor] = identity,
) -> Tensor:
    """Equipartitioned soft assignment Q* (Eq. 5-7), computed in fp32 without gradient.

    scores: (B, K) similarities of sequences to prototypes. Returns the transport plan Q
    (B, K), rows summing to 1/B and columns to 1/K, from Q = diag(m) exp(scores / eps)
    diag(v) by alternating normalisation (SwAV's Sinkhorn-Knopp). Under data parallelism
    pass ``all_reduce`` (a sum over ranks) so that B and the column sums are global.
    """
    logits = scores.float() / eps
    # a row's scale is free in Q* = diag(m) exp(.) diag(v): subtracting each row's max leaves
    # the converged plan unchanged (after a few iterations it differs slightly from SwAV's
    # unshifted start, and is closer to convergence) and keeps exp() finite with an entry of
    # 1 in every row, so no row sum is ever zero
    q = torch.exp(logits - logits.max(1, keepdim=True).values)
    n_rows = all_reduce(torch.tensor([float(len(q))], device=q.device))
    n_cols = q.shape[1]
    tiny = torch.finfo(q.dtype).tiny
    q /= all_reduce(q.sum().reshape(1))
    for _ in range(iters):
        q /= all_reduce(q.sum(0, keepdim=True)).clamp_min(tiny) * n_cols  # columns -> 1/K
        q /= q.sum(1, keepdim=True) * n_rows  # rows -> 1/B
    return q


class ClusterLoss(nn.Module):
    """L_Clust (Eq. 4): cross-entropy between Sinkhorn targets q and soft assignments p (Eq. 3).

    scores: (B, K) similarities z . mu (cosine or raw); target: (B, K) rows summing to 1.
    p_uk = softmax_k(scores / tau1).
    """

    def __init__(self, tau1: float) -> None:
        super().__init__()
        self.tau1 = tau1

    @in_fp32
    def forward(self, scores: Tensor, target: Tensor) -> Tensor:
        return -(target * F.log_softmax(scores / self.tau1, dim=1)).sum(1).mean()


class SequenceContrastiveLoss(nn.Module):
    """L_SCL (Eq. 9-10): InfoNCE between the two views of each sequence, summed both ways.

    For anchor view a of sequence u the positive is the other view b of u; negatives are
    both views of every other sequence in the batch and, given ``prototypes``, every
    prototype except the one u is assigned to (h(u)): S^4Rec's intent negatives. Without
    them this is CL4SRec's instance contrastive loss. ``groups`` (B,) drops the sequences
    of u's own group from u's negatives (ICLRec's false-negative mitigation; there b is
    the intent of u). ``similarity`` is "cosine" (unit vectors) or "dot" (raw dot
    products, as the CL4SRec/ICLRec code); divided by tau2.
    a, b: (B, D), the whole (global) batch; prototypes: (K, D); ``rows``: the anchors this
    process computes the loss for (default: all B; under data parallelism its own rows,
    while every other sequence of the global batch is a negative); assigned: (n,) h(u) of
    those anchors. The loss is the mean over the anchors in ``rows``.
    """

    def __init__(self, tau2: float, similarity: str = "cosine") -> None:
        super().__init__()
        if similarity not in ("cosine", "dot"):
            raise ValueError(f"similarity must be 'cosine' or 'dot', got {similarity!r}")
        self.tau2, self.similarity = tau2, similarity

    def one_way(
        self,
        a: Tensor,
        b: Tensor,
        prototypes: Tensor | None = None,
        assigned: Tensor | None = None,
        groups: Tensor | None = None,
        rows: slice | None = None,
    ) -> Tensor:
        if self.similarity == "cosine":
            a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        rows = rows or slice(0, len(a))
        anchor = a[rows]  # (n, D)
        own = torch.arange(rows.start, rows.stop, device=a.device)  # each anchor's column
        eye = own[:, None] == torch.arange(len(a), device=a.device)  # (n, B)
        same = eye if groups is None else eye | (groups[rows, None] == groups[None, :])
        # (n, B): the anchor's own column is its positive
        to_b = (anchor @ b.T).masked_fill(same & ~eye, float("-inf"))
        to_a = (anchor @ a.T).masked_fill(same, float("-inf"))  # other sequences' anchor views
        parts = [to_b, to_a]
        if prototypes is not None:
            if assigned is None:
                raise ValueError("intent negatives need each anchor's assigned intent")
            mu = F.normalize(prototypes, dim=1) if self.similarity == "cosine" else prototypes
            own_intent_out = (anchor @ mu.T).scatter(1, assigned[:, None], float("-inf"))
            parts.append(own_intent_out)
        logits = torch.cat(parts, 1) / self.tau2
        return F.cross_entropy(logits, own)

    @in_fp32
    def forward(
        self,
        z1: Tensor,
        z2: Tensor,
        prototypes: Tensor | None = None,
        assigned: Tensor | None = None,
        groups: Tensor | None = None,
        rows: slice | None = None,
    ) -> Tensor:
        return self.one_way(z1, z2, prototypes, assigned, groups, rows) + self.one_way(
            z2, z1, prototypes, assigned, groups, rows
        )


class DistillationLoss(nn.Module):
    """L_CKD (Eq. 11-12): KL(e_t || e_s) over the d dimensions, teacher = assigned prototype.

    e_t = softmax(mu_h(u) / tau3), e_s = softmax(z / tau3), of the vectors as the paper
    writes them, or of L2-normalised ones (``normalize``: with tau3 = 1 in 64 dimensions
    both are then nearly uniform and the term nearly inert).
    teacher: (B, d) prototype of each sequence; student: (B, d) sequence representation.
    """

    def __init__(self, tau3: float, detach_teacher: bool = True, normalize: bool = True) -> None:
        super().__init__()
        self.tau3, self.detach_teacher, self.normalize = tau3, detach_teacher, normalize

    @in_fp32
    def forward(self, teacher: Tensor, student: Tensor) -> Tensor:
        if self.detach_teacher:
            teacher = teacher.detach()
        if self.normalize:
            teacher, student = F.normalize(teacher, dim=1), F.normalize(student, dim=1)
        log_t = F.log_softmax(teacher / self.tau3, dim=1)
        log_s = F.log_softmax(student / self.tau3, dim=1)
        return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean")


class HeadTailAdversarialLoss(nn.Module):
    """L_Adv (Eq. 13): cross-entropy of the head/tail classifier on gradient-reversed z.

    logits: (B, 2) classifier output; is_head: (B,) bool labels. The encoder maximises it
    through the gradient reversal layer in front of the classifier.
    """

    @in_fp32
    def forward(self, logits: Tensor, is_head: Tensor) -> Tensor:
        return F.cross_entropy(logits, is_head.long())
