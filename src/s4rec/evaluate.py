"""Full-ranking evaluation: every user's target ranked against all items, in bounded memory.

One protocol (``Config.eval``) for metrics and for the lists the system shows: a metric is
computed on exactly the ranking that ``top_k`` (and so ``predict``) returns. By default a
user's history is never shown, so a target the user had before is a miss; with
``eval.exclude_history=false`` history items are ranked like any other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from .config import Config
from .data.dataset import LeaveOneOut, Split, eval_inputs, left_padded
from .model import SequenceEncoder
from .runtime import all_reduce_sum, distributed, rank, world_size

KS = (5, 10, 20)


def metrics_from_ranks(ranks: Tensor | np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """HR@k, NDCG@k and MRR from 0-based ranks of the targets (one per user); no ranks (a
    group without users) give no metrics, an empty dict, never NaN in a results file."""
    r = torch.as_tensor(ranks, dtype=torch.float64)
    if len(r) == 0:
        return {}
    out = {f"HR@{k}": float((r < k).double().mean()) for k in ks}
    gain = 1.0 / torch.log2(r + 2.0)
    out.update({f"NDCG@{k}": float(torch.where(r < k, gain, 0.0).mean()) for k in ks})
    out["MRR"] = float((1.0 / (r + 1.0)).mean())
    return out


def metrics_from_lists(
    shown: Sequence[Sequence[object]], targets: Sequence[object], ks: tuple[int, ...] = KS
) -> dict[str, float]:
    """HR@k and NDCG@k of each target's position in the list shown for it (absent: a miss),
    as a log of shown lists measures them; exact when every list holds ``max(ks)`` items."""
    pos = [lst.index(t) if t in lst else math.inf for lst, t in zip(shown, targets, strict=True)]
    metrics = metrics_from_ranks(torch.tensor(pos, dtype=torch.float64), ks)
    return {name: value for name, value in metrics.items() if name != "MRR"}


ROWS = 1024  # items compared per step: a (ROWS, users) block stays in cache


def rank_targets(scores: Tensor, target_scores: Tensor) -> Tensor:
    """Per column (user), how many items score at least as high as the target: ties count
    against it.

    scores: (C, b), a row per item, with excluded items (history, padding, the target itself)
    at -inf; target_scores: (b,). A non-finite target score (a broken model) ranks last.
    """
    counts = torch.zeros(scores.shape[1], dtype=torch.int32, device=scores.device)
    for i in range(0, scores.shape[0], ROWS):
        counts += (
            (scores[i : i + ROWS] >= target_scores).view(torch.uint8).sum(0, dtype=torch.int32)
        )
    return torch.where(torch.isfinite(target_scores), counts.long(), scores.shape[0])


def exclude_(scores: Tensor, lo: int, history: Tensor, specials: tuple[int, ...]) -> Tensor:
    """Set, in place, the scores of items ``lo + i`` that are in column j's history or in
    ``specials`` to -inf.

    scores: (C, b) for items lo .. lo + C - 1; history: (b, H) item ids, 0 = none.
    """
    hi = lo + scores.shape[0]
    users, cols = torch.nonzero((history >= lo) & (history < hi) & (history > 0), as_tuple=True)
    scores[history[users, cols] - lo, users] = float("-inf")
    for item in specials:
        if lo <= item < hi:
            scores[item - lo] = float("-inf")
    return scores


UNSET = -1  # a rank or an item id not computed (yet)


def all_set(values: Tensor) -> Tensor:
    """``values``, checked to hold no ``UNSET`` entry: every user was ranked."""
    unset = values == UNSET
    missed = int((unset.any(-1) if unset.ndim > 1 else unset).sum())
    if missed:
        raise RuntimeError(f"internal error: {missed} of {len(values)} users were not ranked")
    return values


class Ranker:
    """Scores users in chunks of ``user_batch`` against items in chunks of ``item_chunk``.

    Excluded from every ranking: padding (0), the mask token, and, with ``exclude_history``,
    the user's history. A target that is excluded can never be shown and ranks last.
    """

    def __init__(
        self,
        model: SequenceEncoder,
        data: LeaveOneOut,
        *,
        exclude_history: bool = True,
        user_batch: int = 1024,
        item_chunk: int = 32768,
    ):
        if user_batch < 1 or item_chunk < 1:
            raise ValueError(f"user_batch {user_batch} and item_chunk {item_chunk} must be >= 1")
        if not isinstance(exclude_history, bool):
            raise ValueError(f"exclude_history must be True or False, got {exclude_history!r}")
        if model.item_emb.num_embeddings != data.n_items + 2:
            raise ValueError(f"the model scores {model.item_emb.num_embeddings - 2} items but the"
                             f" data has {data.n_items}: a model of other data?")  # fmt: skip
        self.model, self.data = model, data
        self.exclude_history = exclude_history
        self.user_batch, self.item_chunk = user_batch, item_chunk
        self.n_cols = model.item_emb.num_embeddings  # n_items + 2
        self.device = model.item_emb.weight.device  # scores live there; ranks come back to the CPU
        self.specials = (0, self.n_cols - 1)  # padding and the mask token

    @classmethod
    def from_config(cls, model: SequenceEncoder, data: LeaveOneOut, cfg: Config) -> Ranker:
        """The ranker of ``cfg``'s protocol (``eval``) and evaluation chunk sizes (``train``)."""
        t = cfg.train
        return cls(
            model, data, exclude_history=cfg.eval.exclude_history,
            user_batch=t.eval_batch_users, item_chunk=t.eval_item_chunk,
        )  # fmt: skip

    def _user_batches(self, split: Split, users: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Yield (users, sequence vectors (b, d), excluded history (b, H)) grouped by length,
        the last two on the model's device; the history is empty (b, 0) when not excluded."""
        data, L = self.data, self.model.max_len
        end = data.history_end(split)
        order = users[
            torch.argsort(torch.minimum(end[users] - data.starts[users], torch.tensor(L)))
        ]
        for i in range(0, len(order), self.user_batch):
            u = order[i : i + self.user_batch]
            items, on = eval_inputs(data, split, u, L).to(self.device), u.to(self.device)
            z = self.model(items, last_only=True, users=on)[:, -1]  # (b, d)
            width = int((end[u] - data.starts[u]).max()) if self.exclude_history else 0
            yield u, z, left_padded(data.flat, data.starts[u], end[u], width).to(self.device)

    def _scores(self, z: Tensor, lo: int, hi: int, buffer: Tensor) -> Tensor:
        """(hi - lo, b) scores, a row per item of lo .. hi - 1 and a column per user of ``z``
        (b, d), computed into ``buffer``. Item-major, because the CPU matrix library computes
        this layout about three times as fast as (b, hi - lo) (benchmarks/ranker_speed.py)."""
        out = buffer[: (hi - lo) * len(z)].view(hi - lo, len(z))
        return torch.mm(self.model.item_emb.weight[lo:hi], z.T, out=out)

    def _shown(self, z: Tensor, history: Tensor, lo: int, hi: int, buffer: Tensor) -> Tensor:
        """``_scores`` with padding, the mask token and each user's ``history`` at -inf."""
        return exclude_(self._scores(z, lo, hi, buffer), lo, history, self.specials)

    def _chunks(self) -> list[tuple[int, int]]:
        return [
            (lo, min(lo + self.item_chunk, self.n_cols))
            for lo in range(0, self.n_cols, self.item_chunk)
        ]

    def _buffer(self) -> Tensor:
        """Room for the largest block of scores, reused by every block."""
        size = min(self.item_chunk, self.n_cols) * min(self.user_batch, self.data.n_users)
        return torch.empty(max(size, 0), dtype=self.model.item_emb.weight.dtype, device=self.device)

    @torch.no_grad()
    def ranks(self, split: Split, users: Tensor | None = None) -> Tensor:
        """(U,) 0-based rank of each user's target among all non-excluded items; a target
        that is itself excluded (in the history, with ``exclude_history``) ranks last."""
        if users is None and distributed():  # each rank ranks its share of the users
            return self._gathered_ranks(split)
        was_training = self.model.training
        self.model.eval()
        users = torch.arange(self.data.n_users) if users is None else users
        ranks = torch.full((self.data.n_users,), UNSET, dtype=torch.long)
        chunks, targets, buffer = self._chunks(), self.data.target(split), self._buffer()
        for u, z, history in self._user_batches(split, users):
            target = targets[u].to(self.device)
            cols = torch.arange(len(u), device=self.device)
            # the target's score is read off the same product as the ranking, then excluded itself
            with_target = torch.cat([history, target[:, None]], 1)
            if len(chunks) == 1:
                scores = self._scores(z, 0, self.n_cols, buffer)
                t_score = scores[target, cols]
                rank = rank_targets(exclude_(scores, 0, with_target, self.specials), t_score)
            else:  # pass 1: target scores chunk by chunk; pass 2: count
                t_score = torch.empty(len(u), dtype=buffer.dtype, device=self.device)
                for lo, hi in chunks:
                    here = (target >= lo) & (target < hi)
                    scores = self._scores(z, lo, hi, buffer)  # same shapes as pass 2
                    t_score[here] = scores[target[here] - lo, cols[here]]
                rank = torch.stack(
                    [
                        rank_targets(self._shown(z, with_target, lo, hi, buffer), t_score)
                        for lo, hi in chunks
                    ]
                ).sum(0)
            ranks[u] = rank.cpu()
        if self.exclude_history:  # never shown: worse than every item that can be
            ranks[self.data.repeated(split)] = self.n_cols
        self.model.train(was_training)
        return all_set(ranks[users])

    def _gathered_ranks(self, split: Split) -> Tensor:
        """(U,) ranks of all users, computed a share per rank and summed over ranks."""
        mine = torch.arange(self.data.n_users)[rank() :: world_size()]
        ranks = torch.zeros(self.data.n_users, dtype=torch.long)
        ranks[mine] = self.ranks(split, mine)
        return all_reduce_sum(ranks.to(self.device)).cpu()

    @torch.no_grad()
    def top_k(self, split: Split, k: int) -> tuple[Tensor, Tensor]:
        """(U, k) internal ids of the best-scored non-excluded items per user, best first, and
        their scores: from the same blocks of scores as ``ranks``. A ``k`` beyond the
        catalogue gives every item (excluded ones at -inf)."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        k = min(k, self.n_cols)
        was_training = self.model.training
        self.model.eval()
        ids = torch.full((self.data.n_users, k), UNSET, dtype=torch.long)
        vals = torch.empty(self.data.n_users, k)
        buffer = self._buffer()
        user_major = torch.empty_like(buffer)  # topk is fast along a contiguous row
        for u, z, history in self._user_batches(split, torch.arange(self.data.n_users)):
            best_v = torch.full((len(u), 0), float("-inf"), device=self.device)
            best_i = torch.zeros((len(u), 0), dtype=torch.long, device=self.device)
            for lo, hi in self._chunks():
                scores = self._shown(z, history, lo, hi, buffer)
                rows = user_major[: scores.numel()].view(len(u), hi - lo).copy_(scores.T)
                v, j = rows.topk(min(k, hi - lo), dim=1)
                best_v, pos = torch.cat([best_v, v], 1).topk(
                    min(k, best_v.shape[1] + v.shape[1]), dim=1
                )
                best_i = torch.cat([best_i, j + lo], 1).gather(1, pos)
            ids[u], vals[u] = best_i.cpu(), best_v.cpu()
        self.model.train(was_training)
        return all_set(ids), vals


def evaluate(
    model: SequenceEncoder, data: LeaveOneOut, split: Split, cfg: Config | None = None
) -> dict[str, dict[str, float]]:
    """Metrics for all users and for the head and tail groups: {"all": ..., "head": ..., "tail": ...},
    under ``cfg``'s protocol (default: ``Config()``'s, history excluded)."""
    ranks = Ranker.from_config(model, data, cfg or Config()).ranks(split)
    head = torch.from_numpy(data.is_head)
    return {
        "all": metrics_from_ranks(ranks),
        "head": metrics_from_ranks(ranks[head]),
        "tail": metrics_from_ranks(ranks[~head]),
    }


def protocol(cfg: Config, data: LeaveOneOut) -> dict[str, object]:
    """How the metrics of ``cfg`` on ``data`` are computed, as ``results.json`` records it."""
    return {
        "ranking": "all items (not padding, not the mask token)",
        "exclude_history": cfg.eval.exclude_history,
        "ties": "counted against the target",
        "repeated_targets": {s: int(data.repeated(s).sum()) for s in ("valid", "test")},
        "repeated_targets_are": "misses" if cfg.eval.exclude_history else "ranked",
    }
