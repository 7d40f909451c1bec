"""Training tasks: run the encoder over a batch and combine loss objects into one objective."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Config, S4RecConfig
from .data.augment import spans
from .data.dataset import Batch, LeaveOneOut, eval_inputs, width_buckets
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
from .model import BERT4Rec, HeadTailClassifier, Prototypes, SequenceEncoder, pool
from .runtime import all_reduce_sum, chunk_cost, gather_rows, share_of_global


@dataclass
class Encoded:
    """Encoder output of a batch, flattened to the positions that carry a next-item target."""

    hidden: Tensor  # (N, d) hidden state at every trained position
    targets: Tensor  # (N,) true next item there
    negatives: Tensor | None  # (N, n) per-position negatives ("bce", "bpr"), if sampled
    sequence: Tensor | None  # (B, d) pooled representation of each sample, in batch order


@dataclass
class LossOutput:
    total: Tensor  # the weighted sum that is minimised
    terms: dict[str, Tensor]  # each unweighted loss term (0-d, detached), for logging


def _in_batch_order(parts: list[Tensor], rows: list[Tensor]) -> Tensor:
    """Concatenate per-chunk outputs and put them back in batch order."""
    return torch.cat(parts)[torch.argsort(torch.cat(rows))]


def full_width(model: SequenceEncoder, items: Tensor) -> Tensor:
    """Left-pad (N, W) to (N, max_len): an encoder that reads padding sees all of it."""
    return F.pad(items, (model.max_len - items.shape[1], 0))


def item_vectors(model: SequenceEncoder, ids: list[Tensor]) -> list[Tensor | None]:
    """``model.item_emb`` rows (..., d) of each id tensor, from one embedding call (None each
    for an encoder that does not take them). Autograd builds a table-sized gradient for every
    lookup; in a small training step those, not the encoder, would set the pace."""
    if not model.embeds_items:
        return [None] * len(ids)
    flat = model.item_emb(torch.cat([i.reshape(-1) for i in ids]))  # (sum of sizes, d)
    parts = flat.split([i.numel() for i in ids])
    return [v.view(*i.shape, -1) for v, i in zip(parts, ids, strict=True)]


def encode(model: SequenceEncoder, batch: Batch, pooling: str) -> Encoded:
    """Run the encoder chunk by chunk and gather the trained positions."""
    hidden, targets, negatives, sequence = [], [], [], []
    # an encoder that reads padding pools a full-width pass; its last W positions are the same
    inputs = [full_width(model, c.items) if model.reads_padding else c.items for c in batch.chunks]
    for chunk, items, x in zip(batch.chunks, inputs, item_vectors(model, inputs), strict=True):
        h = model(items, users=chunk.users, embedded=x)  # (b, W or max_len, d)
        sequence.append(pool(h, items, pooling, padding=model.reads_padding))
        h = h[:, -chunk.items.shape[1] :]  # (b, W, d)
        at = chunk.targets != 0
        hidden.append(h[at])
        targets.append(chunk.targets[at])
        if chunk.negatives is not None:
            negatives.append(chunk.negatives[at])
    return Encoded(
        torch.cat(hidden),
        torch.cat(targets),
        torch.cat(negatives) if negatives else None,
        _in_batch_order(sequence, [c.rows for c in batch.chunks]),
    )


def encode_pooled(model: SequenceEncoder, items: Tensor, poolings: tuple[str, ...]) -> list[Tensor]:
    """Each pooling (N, D) of the encoder output for left-padded sequences (N, W), from one
    pass run in length buckets."""
    if model.reads_padding:  # one bucket: every row at full width
        items = full_width(model, items)
        buckets = [(torch.arange(len(items), device=items.device), model.max_len)]
    else:
        buckets = width_buckets(spans(items), model.max_len, chunk_cost(items.device))
    inputs = [items[idx, items.shape[1] - width :] for idx, width in buckets]
    parts: dict[str, list[Tensor]] = {p: [] for p in poolings}
    for x, vectors in zip(inputs, item_vectors(model, inputs), strict=True):
        h = model(x, last_only=set(poolings) == {"last"}, embedded=vectors)
        for p in poolings:
            parts[p].append(pool(h, x, p, model.max_len, padding=model.reads_padding))
    return [_in_batch_order(parts[p], [idx for idx, _ in buckets]) for p in poolings]


def encode_by_length(model: SequenceEncoder, items: Tensor, pooling: str) -> Tensor:
    """(N, D) pooled representations of left-padded sequences (N, W), run in length buckets."""
    return encode_pooled(model, items, (pooling,))[0]


@torch.no_grad()
def training_representations(
    model: SequenceEncoder, data: LeaveOneOut, max_len: int, pooling: str, batch_users: int = 1024
) -> Tensor:
    """(U, d) z_u of every user's whole training sequence (the input that predicts validation),
    on the model's device."""
    was_training = model.training
    model.eval()
    device = model.item_emb.weight.device
    parts = [
        encode_by_length(model, eval_inputs(data, "valid", users, max_len).to(device), pooling)
        for users in torch.arange(data.n_users).split(batch_users)
    ]
    model.train(was_training)
    return torch.cat(parts)


def encode_views(
    model: SequenceEncoder, batch: Batch, poolings: tuple[str, ...]
) -> dict[str, tuple[Tensor, Tensor]]:
    """Pooling -> (B, D) representations of the two augmented views of every sample.

    Views are re-bucketed by their own lengths: a crop is much shorter than its sequence.
    """
    views = [(i, c.rows, v) for c in batch.chunks for i, v in enumerate(c.views)]
    width = max(v.shape[1] for _, _, v in views)
    items = torch.cat([F.pad(v, (width - v.shape[1], 0)) for _, _, v in views])  # (2B, W)
    slot = torch.cat([i * len(batch) + rows for i, rows, _ in views])  # view-major batch slot
    order = torch.argsort(slot)
    out = {}
    for p, z in zip(poolings, encode_pooled(model, items, poolings), strict=True):
        z = z[order]  # (2B, D)
        out[p] = (z[: len(batch)], z[len(batch) :])
    return out


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
            scores = m.score(enc.hidden, torch.cat([enc.targets[:, None], enc.negatives], 1))
            return self.loss(scores[:, 0], scores[:, 1:])
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
        share = share_of_global(len(enc.targets), batch.global_positions, loss.device)
        return LossOutput(loss * share, {"next_item": loss.detach()})

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
        return LossOutput(loss * share, {"masked_item": loss.detach()})


class S4RecObjective(NextItemObjective):
    """The joint objective of Eq. 14: L_SR + alpha L_Clust + beta1 L_SCL + beta2 L_CKD + lambda L_Adv.

    Terms whose weight is 0 are not computed (the ablations switch them off this way);
    the augmented views are encoded only when a term uses them, and intents are assigned
    only when a term needs them. The same terms make the baselines that share them:
    CL4SRec is L_SCL alone without intent negatives; with ``clustering="kmeans"`` the
    intents are per-epoch K-means centroids (SR+CSD, and ICLRec with its ``icl`` term).
    """

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
        total = sum(weight[name] * value for name, value in terms.items())
        return LossOutput(total, {name: value.detach() for name, value in terms.items()})


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
