"""Training tasks: run the encoder over a batch and combine loss objects into one objective."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import Config
from .data.dataset import Batch
from .losses import BCENextItemLoss, CENextItemLoss, SampledCENextItemLoss
from .model import SASRec, pool


@dataclass
class Encoded:
    """Encoder output of a batch, flattened to the positions that carry a next-item target."""

    hidden: Tensor  # (N, d) hidden state at every trained position
    targets: Tensor  # (N,) true next item there
    negatives: Tensor | None  # (N, n) per-position negatives ("bce"), if sampled
    sequence: Tensor  # (B, d) pooled representation of each sample, in batch order


@dataclass
class LossOutput:
    total: Tensor
    terms: dict[str, float]  # each weighted term, for logging


def encode(model: SASRec, batch: Batch, pooling: str) -> Encoded:
    """Run the encoder chunk by chunk and gather the trained positions."""
    hidden, targets, negatives = [], [], []
    sequence = None
    for chunk in batch.chunks:
        h = model(chunk.items)  # (b, W, d)
        at = chunk.targets != 0
        hidden.append(h[at])
        targets.append(chunk.targets[at])
        if chunk.negatives is not None:
            negatives.append(chunk.negatives[at])
        z = pool(h, chunk.items, pooling)
        if sequence is None:
            sequence = z.new_empty(len(batch), z.shape[-1])
        sequence = sequence.index_copy(0, chunk.rows, z)
    return Encoded(
        torch.cat(hidden),
        torch.cat(targets),
        torch.cat(negatives) if negatives else None,
        sequence,
    )


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
