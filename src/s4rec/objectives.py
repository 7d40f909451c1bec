"""Training tasks: run the encoder over a batch and combine loss objects into one objective."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Config, S4RecConfig
from .data.dataset import Batch, width_buckets
from .losses import (
    BCENextItemLoss,
    CENextItemLoss,
    ClusterLoss,
    DistillationLoss,
    HeadTailAdversarialLoss,
    SampledCENextItemLoss,
    SequenceContrastiveLoss,
    sinkhorn,
)
from .model import HeadTailClassifier, Prototypes, SASRec, pool


@dataclass
class Encoded:
    """Encoder output of a batch, flattened to the positions that carry a next-item target."""

    hidden: Tensor  # (N, d) hidden state at every trained position
    targets: Tensor  # (N,) true next item there
    negatives: Tensor | None  # (N, n) per-position negatives ("bce"), if sampled
    sequence: Tensor  # (B, d) pooled representation of each sample, in batch order


@dataclass
class LossOutput:
    total: Tensor  # the weighted sum that is minimised
    terms: dict[str, float]  # each unweighted loss term, for logging


def _in_batch_order(parts: list[Tensor], rows: list[Tensor]) -> Tensor:
    """Concatenate per-chunk outputs and put them back in batch order."""
    return torch.cat(parts)[torch.argsort(torch.cat(rows))]


def encode(model: SASRec, batch: Batch, pooling: str) -> Encoded:
    """Run the encoder chunk by chunk and gather the trained positions."""
    hidden, targets, negatives, sequence = [], [], [], []
    for chunk in batch.chunks:
        h = model(chunk.items)  # (b, W, d)
        at = chunk.targets != 0
        hidden.append(h[at])
        targets.append(chunk.targets[at])
        if chunk.negatives is not None:
            negatives.append(chunk.negatives[at])
        sequence.append(pool(h, chunk.items, pooling))
    return Encoded(
        torch.cat(hidden),
        torch.cat(targets),
        torch.cat(negatives) if negatives else None,
        _in_batch_order(sequence, [c.rows for c in batch.chunks]),
    )


def encode_by_length(model: SASRec, items: Tensor, pooling: str) -> Tensor:
    """(N, D) pooled representations of left-padded sequences (N, W), run in length buckets."""
    parts, rows = [], []
    for idx, width in width_buckets((items != 0).sum(1), model.max_len):
        x = items[idx, items.shape[1] - width :]
        h = model(x, last_only=pooling == "last")
        parts.append(pool(h, x, pooling, model.max_len))
        rows.append(idx)
    return _in_batch_order(parts, rows)


def encode_views(model: SASRec, batch: Batch, pooling: str) -> tuple[Tensor, Tensor]:
    """(B, D) representations of the two augmented views of every sample.

    Views are re-bucketed by their own lengths: a crop is much shorter than its sequence.
    """
    views = [(i, c.rows, v) for c in batch.chunks for i, v in enumerate(c.views)]
    width = max(v.shape[1] for _, _, v in views)
    items = torch.cat([F.pad(v, (width - v.shape[1], 0)) for _, _, v in views])  # (2B, W)
    slot = torch.cat([i * len(batch) + rows for i, rows, _ in views])  # view-major batch slot
    z = encode_by_length(model, items, pooling)[torch.argsort(slot)]  # (2B, D)
    return z[: len(batch)], z[len(batch) :]


class NextItemObjective(nn.Module):
    """L_SR (Eq. 1) with the configured next-item loss."""

    def __init__(self, model: SASRec, cfg: Config) -> None:
        super().__init__()
        self.model = model
        self.kind = cfg.loss.next_item
        self.pooling = cfg.model.pooling
        self.loss = {
            "bce": BCENextItemLoss,
            "ce": CENextItemLoss,
            "sampled_ce": SampledCENextItemLoss,
        }[self.kind]()

    def next_item_loss(self, enc: Encoded, batch: Batch) -> Tensor:
        m = self.model
        if self.kind == "bce":
            return self.loss(m.score(enc.hidden, enc.targets), m.score(enc.hidden, enc.negatives))
        if self.kind == "ce":
            logits = enc.hidden @ m.item_emb.weight[1 : m.n_items + 1].T  # (N, n_items)
            return self.loss(logits, enc.targets - 1)
        neg = batch.shared_negatives  # (M,)
        return self.loss(
            m.score(enc.hidden, enc.targets),
            enc.hidden @ m.item_emb(neg).T,
            neg[None, :] != enc.targets[:, None],
        )

    def forward(self, batch: Batch) -> LossOutput:
        enc = encode(self.model, batch, self.pooling)
        loss = self.next_item_loss(enc, batch)
        return LossOutput(loss, {"next_item": loss.item()})


class S4RecObjective(NextItemObjective):
    """The joint objective of Eq. 14: L_SR + alpha L_Clust + beta1 L_SCL + beta2 L_CKD + lambda L_Adv.

    Terms whose weight is 0 are not computed (the ablations switch them off this way);
    the two augmented views are encoded only when L_SCL or L_CKD is on, and prototypes are
    assigned only when a term uses them (CL4SRec is L_SCL alone, without intent negatives).
    """

    def __init__(self, model: SASRec, cfg: Config, is_head: Tensor) -> None:
        super().__init__(model, cfg)
        s = self.s = cfg.s4rec
        self.prototypes = Prototypes(s.prototypes, cfg.model.hidden)
        self.classifier = HeadTailClassifier(cfg.model.hidden, s.adv_normalize)
        self.cluster = ClusterLoss(s.tau1)
        self.contrastive = SequenceContrastiveLoss(s.tau2, s.similarity)
        self.distill = DistillationLoss(s.tau3, s.detach_teacher)
        self.adversarial = HeadTailAdversarialLoss()
        self.register_buffer(
            "is_head", torch.as_tensor(is_head, dtype=torch.bool), persistent=False
        )
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # optimiser steps taken

    def forward(self, batch: Batch) -> LossOutput:
        s = self.s
        enc = encode(self.model, batch, self.pooling)
        z = enc.sequence  # (B, d)
        terms = {"next_item": self.next_item_loss(enc, batch)}
        if s.needs_clusters:
            frozen = bool(self.steps < s.freeze_prototypes_steps)
            mu = self.prototypes.weight.detach() if frozen else self.prototypes.weight  # (K, d)
            scores = F.normalize(z, dim=1) @ F.normalize(mu, dim=1).T  # (B, K) Eq. 3 logits * tau1
            q = sinkhorn(scores, s.sinkhorn_eps, s.sinkhorn_iters)  # (B, K), rows sum to 1/B
            assigned = q.argmax(1)  # h(u)
            if s.alpha > 0:
                terms["cluster"] = self.cluster(scores, q * len(q))
        if s.needs_views:
            pooling = "flat" if s.contrast_on == "flat" else self.pooling
            z1, z2 = encode_views(self.model, batch, pooling)  # (B, D) each
            if s.beta1 > 0:
                negatives = (mu, assigned) if s.intent_negatives else ()
                terms["contrastive"] = self.contrastive(z1, z2, *negatives)
            if s.beta2 > 0:
                teacher = mu[assigned]
                terms["distill"] = self.distill(teacher, z1) + self.distill(teacher, z2)
        if s.lam > 0:
            logits = self.classifier(z, reversal_scale(s, int(self.steps)))
            terms["adversarial"] = self.adversarial(logits, self.is_head[batch.users])
        if self.training:
            self.steps += 1
        weight = {"next_item": 1.0, "cluster": s.alpha, "contrastive": s.beta1, "distill": s.beta2,
                  "adversarial": s.lam}  # fmt: skip
        total = sum(weight[name] * value for name, value in terms.items())
        return LossOutput(total, {name: value.item() for name, value in terms.items()})


def reversal_scale(s: S4RecConfig, step: int) -> float:
    """Gradient reversal multiplier at optimiser step ``step`` (0-based): ``grl_scale``,
    ramped in linearly over the first ``grl_warmup_steps`` steps when that is set."""
    if s.grl_warmup_steps <= 0:
        return s.grl_scale
    return s.grl_scale * min(1.0, (step + 1) / s.grl_warmup_steps)


def build_objective(model: SASRec, cfg: Config, is_head: Tensor) -> NextItemObjective:
    """S^4Rec's joint objective when any of its terms has a weight, else the next-item loss alone."""
    return (
        S4RecObjective(model, cfg, is_head) if cfg.s4rec.enabled else NextItemObjective(model, cfg)
    )
