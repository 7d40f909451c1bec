"""Training tasks: combine loss objects over an encoded batch into one objective."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import reduce

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Config, S4RecConfig
from .data.dataset import Batch, LeaveOneOut
from .encoding import Encoded, encode, encode_views, training_representations
from .kmeans import kmeans, nearest
from .losses import (
    BCENextItemLoss,
    BPRNextItemLoss,
    CENextItemLoss,
    ClusterLoss,
    DistillationLoss,
    HeadTailAdversarialLoss,
    SampledCENextItemLoss,
    SequenceContrastiveLoss,
    sinkhorn,
)
from .model import BERT4Rec, HeadTailClassifier, Prototypes, SequenceEncoder
from .runtime import all_reduce_sum, gather_rows, share_of_global


@dataclass
class LossOutput:
    # each loss term times its weight (and this rank's share of the global batch), in the graph
    weighted: dict[str, Tensor]
    terms: dict[str, Tensor]  # each unweighted loss term (0-d, detached), for logging
    total: Tensor = field(init=False)  # the sum of ``weighted``, which is minimised

    def __post_init__(self) -> None:
        self.total = reduce(operator.add, self.weighted.values())


class NextItemObjective(nn.Module):
    """L_SR (Eq. 1) with the configured next-item loss."""

    # whether a step can leave a trainable parameter without a gradient (data parallelism
    # then has to look for such parameters after every forward pass, which costs time)
    may_skip_parameters = False

    def __init__(self, model: SequenceEncoder, cfg: Config) -> None:
        super().__init__()
        self.model = model
        self.kind = cfg.loss.next_item
        self.pooling = cfg.model.pooling
        self.loss = {
            "bce": BCENextItemLoss,
            "bpr": BPRNextItemLoss,
            "ce": CENextItemLoss,
            "sampled_ce": SampledCENextItemLoss,
        }[self.kind]()

    def next_item_loss(self, enc: Encoded, batch: Batch) -> Tensor:
        m = self.model
        if self.kind in ("bce", "bpr"):  # one lookup for targets and negatives (N, 1 + n)
            assert enc.negatives is not None  # the loader samples them for these losses
            scores = m.score(enc.hidden, torch.cat([enc.targets[:, None], enc.negatives], 1))
            return self.loss(scores[:, 0], scores[:, 1:])
        if self.kind == "ce":
            logits = enc.hidden @ m.item_emb.weight[1 : m.n_items + 1].T  # (N, n_items)
            return self.loss(logits, enc.targets - 1)
        neg = batch.shared_negatives  # (M,)
        assert neg is not None  # the loader draws them for "sampled_ce"
        return self.loss(
            m.score(enc.hidden, enc.targets),
            enc.hidden @ m.item_emb(neg).T,
            neg[None, :] != enc.targets[:, None],
        )

    def forward(self, batch: Batch) -> LossOutput:
        enc = encode(self.model, batch, self.pooling)
        loss = self.next_item_loss(enc, batch)
        share = share_of_global(len(enc.targets), batch.global_positions, loss.device)
        return LossOutput({"next_item": loss * share}, {"next_item": loss.detach()})

    def start_epoch(self, data: LeaveOneOut, epoch: int) -> None:
        """Work due before each training epoch (none for the next-item loss alone)."""


def mask_items(items: Tensor, prob: float, mask_id: int) -> tuple[Tensor, Tensor]:
    """BERT4Rec's cloze input: each item of left-padded ``items`` (B, W) is replaced by the
    mask token with probability ``prob``, and the last item of a row where none was drawn,
    so every row predicts something. Returns the masked ids and where they were masked."""
    at = (torch.rand(items.shape, device=items.device) < prob) & (items != 0)
    at[:, -1] |= ~at.any(1)
    return items.masked_fill(at, mask_id), at


class MaskedItemObjective(NextItemObjective):
    """BERT4Rec's training task: mask items of each whole training sequence and predict them
    from both sides, with a softmax over all items ("ce") or shared sampled ones."""

    model: BERT4Rec

    def __init__(self, model: BERT4Rec, cfg: Config) -> None:
        super().__init__(model, cfg)
        if self.kind not in ("ce", "sampled_ce"):
            raise ValueError(
                f"bert4rec predicts masked items, not next items: loss.next_item={self.kind!r}"
                " has no negatives for them; use 'ce' or 'sampled_ce'"
            )
        self.mask_prob = cfg.loss.mask_prob

    def forward(self, batch: Batch) -> LossOutput:
        m = self.model
        hidden, targets = [], []
        for chunk in batch.chunks:
            # the window's inputs and its last target: the whole sequence (B, <= max_len)
            items = torch.cat([chunk.items, chunk.targets[:, -1:]], 1)[:, -m.max_len :]
            masked, at = mask_items(items, self.mask_prob, m.mask_id)
            hidden.append(m.bidirectional(masked)[at])
            targets.append(items[at])
        enc = Encoded(torch.cat(hidden), torch.cat(targets), None, None)
        loss = self.next_item_loss(enc, batch)
        share = share_of_global(len(enc.targets), None, loss.device)  # masked: drawn per rank
        return LossOutput({"masked_item": loss * share}, {"masked_item": loss.detach()})


class S4RecObjective(NextItemObjective):
    """The joint objective of Eq. 14: L_SR + alpha L_Clust + beta1 L_SCL + beta2 L_CKD + lambda L_Adv.

    Terms whose weight is 0 are not computed (the ablations switch them off this way);
    the augmented views are encoded only when a term uses them, and intents are assigned
    only when a term needs them. The same terms make the baselines that share them:
    CL4SRec is L_SCL alone without intent negatives; with ``clustering="kmeans"`` the
    intents are per-epoch K-means centroids (SR+CSD, and ICLRec with its ``icl`` term).
    """

    centroids: Tensor  # buffers, declared for the type checker
    is_head: Tensor
    steps: Tensor

    def __init__(self, model: SequenceEncoder, cfg: Config, is_head: Tensor) -> None:
        super().__init__(model, cfg)
        s = self.s = cfg.s4rec
        self.max_len, self.seed = cfg.data.max_len, cfg.train.seed
        self.prototypes = Prototypes(s.prototypes, cfg.model.hidden)
        # K-means intents: recomputed at every epoch's start, so not part of a checkpoint
        self.register_buffer(
            "centroids", torch.zeros(s.prototypes, cfg.model.hidden), persistent=False
        )
        self.classifier = HeadTailClassifier(cfg.model.hidden, s.adv_normalize)
        self.cluster = ClusterLoss(s.tau1)
        self.contrastive = SequenceContrastiveLoss(s.tau2, s.similarity)
        self.distill = DistillationLoss(s.tau3, s.detach_teacher, s.distill_normalize)
        self.adversarial = HeadTailAdversarialLoss()
        self.register_buffer(
            "is_head", torch.as_tensor(is_head, dtype=torch.bool), persistent=False
        )
        # parameters of terms that are off never train; those that may lack a gradient in a
        # step: prototypes frozen at first, or used only by a detached teacher
        self.classifier.requires_grad_(s.lam > 0)
        self.prototypes.requires_grad_(s.clustering == "online" and s.needs_clusters)
        learn = s.alpha > 0 or s.icl > 0 or (s.beta1 > 0 and s.intent_negatives)
        self.may_skip_parameters = self.prototypes.weight.requires_grad and (
            s.freeze_prototypes_steps > 0 or not (learn or (s.beta2 > 0 and not s.detach_teacher))
        )
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # optimiser steps taken
        self.step = 0  # the same count, read without waiting for the device
        self.register_load_state_dict_post_hook(lambda m, _: setattr(m, "step", int(m.steps)))

    def start_epoch(self, data: LeaveOneOut, epoch: int) -> None:
        """With K-means intents: cluster every user's training sequence with the current encoder."""
        if self.s.clustering != "kmeans" or not self.s.needs_clusters:
            return
        z = training_representations(self.model, data, self.max_len, self.pooling)
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        s = self.s
        fit = kmeans(z, s.prototypes, s.kmeans_iters, s.kmeans_restarts, g, s.kmeans_sample)
        self.centroids.copy_(fit.centroids)

    def intents(self, z: Tensor, terms: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Prototypes mu (K, d) and each sequence's h(u) (B,); adds L_Clust (Eq. 4) to ``terms``."""
        s = self.s
        if s.clustering == "kmeans":  # fixed for the epoch, no gradient
            return self.centroids, nearest(z.detach(), self.centroids)[0]
        frozen = self.step < s.freeze_prototypes_steps
        mu = self.prototypes.weight.detach() if frozen else self.prototypes.weight  # (K, d)
        scores = cluster_scores(z, mu, s.cluster_similarity)  # (B, K)
        # (B, K), rows sum to 1 / global B: equipartition over every rank's sequences
        q = sinkhorn(scores, s.sinkhorn_eps, s.sinkhorn_iters, all_reduce_sum)
        if s.alpha > 0:
            terms["cluster"] = self.cluster(scores, q / q.sum(1, keepdim=True))
        return mu, (q if s.assignment == "sinkhorn" else scores).argmax(1)

    def forward(self, batch: Batch) -> LossOutput:
        s = self.s
        enc = encode(self.model, batch, self.pooling)
        z = enc.sequence  # (B, d)
        assert z is not None  # encode pools every sample
        terms = {"next_item": self.next_item_loss(enc, batch)}
        if s.needs_views:  # encoded before any exchange between ranks: one wait, not two
            contrast = "flat" if s.contrast_on == "flat" else self.pooling
            views = encode_views(self.model, batch, tuple(dict.fromkeys([contrast, self.pooling])))
            z1, z2 = views[self.pooling]  # (B, d) each
        if s.needs_clusters:
            mu, assigned = self.intents(z, terms)
        if s.needs_views:
            if s.beta1 > 0:  # negatives: both views of every sequence of the global batch
                (v1, first), (v2, _) = (gather_rows(v) for v in views[contrast])
                rows = slice(first, first + len(z))
                negatives = (mu, assigned) if s.intent_negatives else ()
                terms["contrastive"] = self.contrastive(v1, v2, *negatives, rows=rows)
            if s.beta2 > 0:
                teacher = mu[assigned]
                terms["distill"] = self.distill(teacher, z1) + self.distill(teacher, z2)
            if s.icl > 0:  # ICLRec: each view against its sequence's intent, mean over views
                c = F.normalize(mu[assigned], dim=1) if s.icl_unit_intents else mu[assigned]
                (c, first), (everyone, _) = gather_rows(c), gather_rows(assigned)
                rows, groups = slice(first, first + len(z)), everyone if s.icl_denoise else None
                one, two = (self.contrastive(gather_rows(v)[0], c, groups=groups, rows=rows)
                            for v in (z1, z2))  # fmt: skip
                terms["intent"] = (one + two) / 2
        if s.lam > 0:
            logits = self.classifier(z, reversal_scale(s, self.step))
            terms["adversarial"] = self.adversarial(logits, self.is_head[batch.users])
        if self.training:
            self.steps += 1
            self.step += 1
        weight = {"next_item": 1.0, "cluster": s.alpha, "contrastive": s.beta1, "distill": s.beta2,
                  "adversarial": s.lam, "intent": s.icl}  # fmt: skip
        # under data parallelism each term is this rank's part of the global batch's mean
        share = share_of_global(len(z), batch.global_samples, z.device)
        weight = {k: w * share for k, w in weight.items()}
        weight["next_item"] = share_of_global(len(enc.targets), batch.global_positions, z.device)
        return LossOutput({name: weight[name] * value for name, value in terms.items()},
                          {name: value.detach() for name, value in terms.items()})  # fmt: skip


def cluster_scores(z: Tensor, mu: Tensor, similarity: str) -> Tensor:
    """(B, K) z_u . mu_k, the logits of Eq. 3 times tau1: of raw vectors as the paper
    writes it (``"dot"``), or of unit vectors (``"cosine"``, SwAV's habit)."""
    if similarity == "cosine":
        z, mu = F.normalize(z, dim=1), F.normalize(mu, dim=1)
    return z @ mu.T


def reversal_scale(s: S4RecConfig, step: int) -> float:
    """Gradient reversal multiplier at optimiser step ``step`` (0-based): ``grl_scale``,
    ramped in linearly over the first ``grl_warmup_steps`` steps when that is set."""
    if s.grl_warmup_steps <= 0:
        return s.grl_scale
    return s.grl_scale * min(1.0, (step + 1) / s.grl_warmup_steps)


def build_objective(model: SequenceEncoder, cfg: Config, is_head: Tensor) -> NextItemObjective:
    """S^4Rec's joint objective when any of its terms has a weight, BERT4Rec's masked-item
    task for its encoder, else the next-item loss alone."""
    if isinstance(model, BERT4Rec):
        if cfg.s4rec.enabled:
            raise ValueError("the S^4Rec terms are not defined for bert4rec's masked-item task")
        return MaskedItemObjective(model, cfg)
    if cfg.s4rec.enabled:
        return S4RecObjective(model, cfg, is_head)
    return NextItemObjective(model, cfg)
