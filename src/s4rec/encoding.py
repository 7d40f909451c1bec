"""Batches through an encoder: hidden states at the trained positions, pooled sequence
representations (in length buckets) and the two augmented views of every sample."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .data.augment import spans
from .data.dataset import Batch, Chunk, LeaveOneOut, eval_inputs, width_buckets
from .model import SequenceEncoder, pool
from .runtime import chunk_cost


@dataclass
class Encoded:
    """Encoder output of a batch, flattened to the positions that carry a next-item target."""

    hidden: Tensor  # (N, d) hidden state at every trained position
    targets: Tensor  # (N,) true next item there
    negatives: Tensor | None  # (N, n) per-position negatives ("bce", "bpr"), if sampled
    sequence: Tensor | None  # (B, d) pooled representation of each sample, in batch order


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
    views = [(i, c.rows, v) for c in batch.chunks for i, v in enumerate(_views(c))]
    width = max(v.shape[1] for _, _, v in views)
    items = torch.cat([F.pad(v, (width - v.shape[1], 0)) for _, _, v in views])  # (2B, W)
    slot = torch.cat([i * len(batch) + rows for i, rows, _ in views])  # view-major batch slot
    order = torch.argsort(slot)
    out = {}
    for p, z in zip(poolings, encode_pooled(model, items, poolings), strict=True):
        z = z[order]  # (2B, D)
        out[p] = (z[: len(batch)], z[len(batch) :])
    return out


def _views(chunk: Chunk) -> tuple[Tensor, Tensor]:
    """The two augmented views of a chunk; the batch must have been drawn with augmentation."""
    if chunk.views is None:
        raise ValueError("this batch has no augmented views (its loader has no augment)")
    return chunk.views
