"""Using a trained model: top-k predictions for a split, recommendations for a raw-id history."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import Config
from .data.dataset import LeaveOneOut, Split
from .evaluate import Ranker, exclude_
from .files import atomic_file
from .model import SequenceEncoder


def write_predictions(
    model: SequenceEncoder,
    data: LeaveOneOut,
    split: Split,
    k: int,
    path: str | Path,
    cfg: Config | None = None,
) -> None:
    """Write ``user<TAB>item1 item2 ...`` (dataset ids, best first) for every user, atomically,
    under ``cfg``'s protocol (default: ``Config()``'s, history never shown)."""
    ids, scores = Ranker.from_config(model, data, cfg or Config()).top_k(split, k)
    users, items = data.seqs.user_ids, data.seqs.item_ids
    with atomic_file(path) as f:
        for u, (row, vals) in enumerate(zip(ids.tolist(), scores.tolist(), strict=True)):
            best = (items[i - 1] for i, v in zip(row, vals, strict=True) if v > float("-inf"))
            f.write(users[u] + "\t" + " ".join(best) + "\n")


@torch.no_grad()
def recommend(
    model: SequenceEncoder,
    item_ids: list[str],
    history: list[str],
    k: int = 10,
    exclude_history: bool = True,
) -> list[tuple[str, float]]:
    """Top-k (raw item id, score) after a history of raw item ids; the history's items are
    not recommended unless ``exclude_history`` is false (the ``eval`` protocol)."""
    index = {raw: i + 1 for i, raw in enumerate(item_ids)}
    unknown = [h for h in history if h not in index]
    if unknown:
        raise ValueError(f"unknown item id(s) {unknown[:10]}: not in the model's catalogue")
    if not history:
        raise ValueError("the history is empty: give at least one item id")
    items = torch.tensor([index[h] for h in history], device=model.item_emb.weight.device)
    z = model.eval()(items[None, -model.max_len :], last_only=True)[:, -1]  # (1, d)
    scores = z @ model.item_emb.weight.T  # (1, n_items + 2), as the Ranker scores
    excluded = items[None] if exclude_history else items[None, :0]
    scores = exclude_(scores, 0, excluded, (0, len(item_ids) + 1))[0]  # padding, mask token
    vals, idx = scores.cpu().topk(min(k, len(item_ids)))
    return [
        (item_ids[i - 1], float(v))
        for i, v in zip(idx.tolist(), vals.tolist(), strict=True)
        if v > float("-inf")
    ]
