"""Shared fixtures: one torch thread, tiny configurations and hand-made datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from s4rec import cli
from s4rec.config import Config
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.sequences import Sequences

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]

TINY_BATCH = "train.batch_size=64"  # methods may set their own (S^4Rec: 512); tests re-apply this

TINY = [
    "data.synthetic_users=300",
    "data.max_len=20",
    "model.hidden=16",
    "model.inner=32",
    "model.layers=1",
    "model.heads=2",
    "model.dropout=0.1",
    "model.attn_dropout=0.1",
    "train.epochs=2",
    TINY_BATCH,
    "train.lr=0.005",
    "train.progress=false",
]


def data_file(name: str) -> Path | None:
    """A benchmark file from ``$S4REC_DATA`` or ``../shared/data``; None when absent."""
    dirs = [Path(p) for p in os.environ.get("S4REC_DATA", "").split(os.pathsep) if p]
    dirs.append(REPO.parent / "shared" / "data")
    return next((d / name for d in dirs if (d / name).is_file()), None)


def tiny_sets(*extra: str) -> list[str]:
    """``--set`` arguments for the tiny test model plus ``extra`` (epochs and progress come
    as flags)."""
    keep = [a for a in TINY if not a.startswith(("train.epochs", "train.progress"))]
    return [arg for a in [*keep, *extra] for arg in ("--set", a)]


def run(*argv: str) -> None:
    """The ``s4rec`` command, in this process."""
    cli.main(list(argv))


def tiny_config(*overrides: str) -> Config:
    """A small, fast configuration on the synthetic dataset, with extra ``key=value`` overrides."""
    return Config().override([*TINY, *overrides])


def unique_item_data(lengths: list[int], extra_items: int = 0) -> LeaveOneOut:
    """Users with the given lengths where item ``i`` sits at flat position ``i - 1``.

    Every item occurs once, so an item id names its position in the flat array;
    ``extra_items`` unused items are appended to the catalogue.
    """
    seqs, nxt = [], 1
    for n in lengths:
        seqs.append(list(range(nxt, nxt + n)))
        nxt += n
    return LeaveOneOut(Sequences.from_lists(seqs, n_items=nxt - 1 + extra_items))


@pytest.fixture
def small_seqs() -> Sequences:
    """Five users over ten items; user 2 (index 1) is too short for leave-one-out."""
    return Sequences.from_lists(
        [[1, 2, 3, 4, 5], [6, 7], [2, 4, 6, 8], [9, 10, 1], [3, 5, 7, 9, 10, 2]],
        n_items=10,
    )


def history_matrix(data: LeaveOneOut, split: str) -> np.ndarray:
    """(U, n_items + 2) bool: the items before the split's target, per user."""
    end = data.history_end(split).numpy()
    start = data.starts.numpy()
    flat = data.flat.numpy()
    out = np.zeros((data.n_users, data.n_items + 2), dtype=bool)
    for u in range(data.n_users):
        out[u, flat[start[u] : end[u]]] = True
    return out


def brute_ranks(data: LeaveOneOut, split: str, scores: np.ndarray) -> np.ndarray:
    """Pessimistic rank of each user's target among items not in history, not 0, not mask.

    scores: (U, n_items + 2), one row per user over all ids.
    """
    history = history_matrix(data, split)
    target = data.target(split).numpy()
    out = []
    for u in range(data.n_users):
        ok = ~history[u]
        ok[[0, data.n_items + 1, target[u]]] = False
        out.append(int((scores[u][ok] >= scores[u][target[u]]).sum()))
    return np.array(out)


def popularity_ndcg(data: LeaveOneOut, split: str = "test", k: int = 10) -> float:
    """NDCG@k of ranking by training-part counts, history excluded, ties against the target."""
    flat, start, end = data.flat.numpy(), data.starts.numpy(), data.train_end.numpy()
    counts = np.zeros(data.n_items + 2)
    for u in range(data.n_users):
        np.add.at(counts, flat[start[u] : end[u]], 1.0)
    ranks = brute_ranks(data, split, np.broadcast_to(counts, (data.n_users, len(counts))))
    return float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)))
