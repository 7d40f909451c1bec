"""Full-ranking evaluation: every user's target ranked against all items, in bounded memory."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .data.dataset import LeaveOneOut, Split, eval_inputs, left_padded
from .model import SASRec

KS = (5, 10, 20)


def metrics_from_ranks(ranks: Tensor | np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """HR@k, NDCG@k and MRR from 0-based ranks of the targets (one per user)."""
    r = torch.as_tensor(ranks, dtype=torch.float64)
    if len(r) == 0:
        return {
            **{f"HR@{k}": math.nan for k in ks},
            **{f"NDCG@{k}": math.nan for k in ks},
            "MRR": math.nan,
        }
    out = {f"HR@{k}": float((r < k).double().mean()) for k in ks}
    gain = 1.0 / torch.log2(r + 2.0)
    out.update({f"NDCG@{k}": float(torch.where(r < k, gain, 0.0).mean()) for k in ks})
    out["MRR"] = float((1.0 / (r + 1.0)).mean())
    return out


def rank_targets(scores: Tensor, target_scores: Tensor, excluded: Tensor) -> Tensor:
    """Per row, how many non-excluded items score at least as high as the target (ties count against it).

    scores: (b, C); target_scores: (b,); excluded: (b, C) bool, which must include the
    target's own column so that it is not counted against itself.
    """
    return ((scores >= target_scores[:, None]) & ~excluded).sum(1)


def _history_mask(history: Tensor, lo: int, hi: int) -> Tensor:
    """(b, hi - lo) bool: True where column lo + j is one of the row's history items (0 = none)."""
    mask = torch.zeros(len(history), hi - lo, dtype=torch.bool)
    rows, cols = torch.nonzero((history >= lo) & (history < hi) & (history > 0), as_tuple=True)
    mask[rows, history[rows, cols] - lo] = True
    return mask


class Ranker:
    """Scores users in chunks of ``user_batch`` against items in chunks of ``item_chunk``.

    Excluded from every ranking: padding (0), the mask token, and the user's history.
    """

    def __init__(
        self, model: SASRec, data: LeaveOneOut, user_batch: int = 2048, item_chunk: int = 65536
    ):
        self.model, self.data = model, data
        self.user_batch, self.item_chunk = user_batch, item_chunk
        self.n_cols = model.item_emb.num_embeddings  # n_items + 2

    def _user_batches(self, split: Split, users: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Yield (users, sequence vectors (b, d), history (b, H)) with users grouped by length."""
        data, L = self.data, self.model.max_len
        end = data.history_end(split)
        order = users[
            torch.argsort(torch.minimum(end[users] - data.starts[users], torch.tensor(L)))
        ]
        for i in range(0, len(order), self.user_batch):
            u = order[i : i + self.user_batch]
            hidden = self.model(eval_inputs(data, split, u, L))  # (b, W, d)
            hist_len = end[u] - data.starts[u]
            history = left_padded(data.flat, data.starts[u], end[u], int(hist_len.max()))
            yield u, hidden[:, -1], history

    def _excluded(self, history: Tensor, lo: int, hi: int) -> Tensor:
        excluded = _history_mask(history, lo, hi)
        for special in (0, self.n_cols - 1):
            if lo <= special < hi:
                excluded[:, special - lo] = True
        return excluded

    def _chunks(self) -> list[tuple[int, int]]:
        return [
            (lo, min(lo + self.item_chunk, self.n_cols))
            for lo in range(0, self.n_cols, self.item_chunk)
        ]

    @torch.no_grad()
    def ranks(self, split: Split, users: Tensor | None = None) -> Tensor:
        """(U,) 0-based rank of each user's target among all non-excluded items."""
        was_training = self.model.training
        self.model.eval()
        users = torch.arange(self.data.n_users) if users is None else users
        ranks = torch.empty(self.data.n_users, dtype=torch.long)
        weight = self.model.item_emb.weight
        chunks = self._chunks()
        for u, z, history in self._user_batches(split, users):
            target = self.data.target(split)[u]
            t_score = torch.empty(len(u))
            cached = None
            for lo, hi in chunks:  # pass 1: target scores, read off the same matmul as the ranking
                scores = z @ weight[lo:hi].T
                here = (target >= lo) & (target < hi)
                t_score[here] = scores[here, target[here] - lo]
                cached = scores if len(chunks) == 1 else None
            rank = torch.zeros(len(u), dtype=torch.long)
            for lo, hi in chunks:  # pass 2: count items scored at least as high
                scores = cached if cached is not None else z @ weight[lo:hi].T
                excluded = self._excluded(history, lo, hi)
                here = torch.nonzero((target >= lo) & (target < hi)).squeeze(1)
                excluded[here, target[here] - lo] = True
                rank += rank_targets(scores, t_score, excluded)
            ranks[u] = rank
        self.model.train(was_training)
        return ranks[users]

    @torch.no_grad()
    def top_k(self, split: Split, k: int) -> tuple[Tensor, Tensor]:
        """(U, k) internal ids of the best-scored non-excluded items per user, best first, and their scores."""
        was_training = self.model.training
        self.model.eval()
        weight = self.model.item_emb.weight
        ids = torch.empty(self.data.n_users, k, dtype=torch.long)
        vals = torch.empty(self.data.n_users, k)
        for u, z, history in self._user_batches(split, torch.arange(self.data.n_users)):
            best_v = torch.full((len(u), 0), float("-inf"))
            best_i = torch.zeros((len(u), 0), dtype=torch.long)
            for lo, hi in self._chunks():
                scores = (z @ weight[lo:hi].T).masked_fill(
                    self._excluded(history, lo, hi), float("-inf")
                )
                v, i = scores.topk(min(k, hi - lo), dim=1)
                best_v, pos = torch.cat([best_v, v], 1).topk(
                    min(k, best_v.shape[1] + v.shape[1]), dim=1
                )
                best_i = torch.cat([best_i, i + lo], 1).gather(1, pos)
            ids[u], vals[u] = best_i, best_v
        self.model.train(was_training)
        return ids, vals


def evaluate(
    model: SASRec, data: LeaveOneOut, split: Split, user_batch: int = 2048, item_chunk: int = 65536
) -> dict[str, dict[str, float]]:
    """Metrics for all users and for the head and tail groups: {"all": ..., "head": ..., "tail": ...}."""
    ranks = Ranker(model, data, user_batch, item_chunk).ranks(split)
    head = torch.from_numpy(data.is_head)
    return {
        "all": metrics_from_ranks(ranks),
        "head": metrics_from_ranks(ranks[head]),
        "tail": metrics_from_ranks(ranks[~head]),
    }
