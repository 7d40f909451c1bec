"""Using a trained model: top-k predictions for a split, recommendations for a raw-id history."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import atomic_file
from .data.dataset import LeaveOneOut, Split
from .evaluate import Ranker
from .model import SequenceEncoder


def write_predictions(
    model: SequenceEncoder,
    data: LeaveOneOut,
    split: Split,
    k: int,
    path: str | Path,
    user_batch: int = 1024,
) -> None:
    """Write ``user<TAB>item1 item2 ...`` (dataset ids, best first) for every user, atomically."""
    ids, scores = Ranker(model, data, user_batch).top_k(split, k)
    users, items = data.seqs.user_ids, data.seqs.item_ids
    with atomic_file(path) as f:
        for u, (row, vals) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True)):
            best = (items[i - 1] for i, v in zip(row, vals, strict=True) if v > float("-inf"))
            f.write(users[u] + "\t" + " ".join(best) + "\n")


@torch.no_grad()
def recommend(
    model: SequenceEncoder, item_ids: list[str], history: list[str], k: int = 10
) -> list[tuple[str, float]]:
    """Top-k (raw item id, score) after a history of raw item ids, history items excluded."""
    index = {raw: i + 1 for i, raw in enumerate(item_ids)}
    unknown = [h for h in history if h not in index]
    if unknown:
        raise ValueError(f"unknown item id(s) {unknown[:10]}: not in the model's catalogue")
    if not history:
        raise ValueError("the history is empty: give at least one item id")
    seq = torch.tensor([index[h] for h in history[-model.max_len :]])
    scores = model.eval().score(model(seq[None], last_only=True)[0, -1])  # (n_items + 2,)
    scores[0] = scores[model.mask_id] = float("-inf")
    scores[torch.tensor([index[h] for h in history])] = float("-inf")
    vals, idx = scores.topk(min(k, len(item_ids)))
    return [
        (item_ids[i - 1], float(v))
        for i, v in zip(idx.tolist(), vals.tolist(), strict=True)
        if v > float("-inf")
    ]
