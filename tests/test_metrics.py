"""Metrics, pessimistic ranking and the chunked full-ranking evaluator."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from torch import nn

from conftest import brute_ranks, history_matrix, unique_item_data
from s4rec.config import Config, ModelConfig
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.sequences import Sequences
from s4rec.evaluate import ROWS, Ranker, evaluate, metrics_from_ranks, rank_targets
from s4rec.model import SASRec

evaluate_module = importlib.import_module("s4rec.evaluate")  # s4rec.evaluate is also a function


class ScoreTable(nn.Module):
    """Stub encoder whose scores we choose: item embeddings are the identity and the
    hidden state at a position is ``table[item there]``, so a user's scores are
    ``table[last input item]``."""

    def __init__(self, n_items: int, max_len: int = 10) -> None:
        super().__init__()
        n = n_items + 2
        self.max_len = max_len
        self.n_items = n_items
        self.item_emb = nn.Embedding(n, n)
        with torch.no_grad():
            self.item_emb.weight.copy_(torch.eye(n))
        self.table = torch.zeros(n, n)

    def forward(
        self, items: torch.Tensor, last_only: bool = False, users: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.table[items[:, -1:] if last_only else items]


def last_input(data: LeaveOneOut, split: str) -> torch.Tensor:
    return data.flat[data.history_end(split) - 1]


# ---------------------------------------------------------------- metrics_from_ranks


def test_metrics_from_ranks_by_hand() -> None:
    ranks = [0, 1, 4, 9, 25]
    m = metrics_from_ranks(torch.tensor(ranks))
    assert m["HR@5"] == pytest.approx(3 / 5)
    assert m["HR@10"] == pytest.approx(4 / 5)
    assert m["HR@20"] == pytest.approx(4 / 5)
    g = [1.0, 1 / math.log2(3), 1 / math.log2(6), 1 / math.log2(11)]
    assert m["NDCG@5"] == pytest.approx(sum(g[:3]) / 5)
    assert m["NDCG@10"] == pytest.approx(sum(g) / 5)
    assert m["NDCG@20"] == pytest.approx(sum(g) / 5)
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 10 + 1 / 26) / 5)
    assert set(m) == {"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"}


def test_metrics_rank_boundary_and_numpy_input() -> None:
    m = metrics_from_ranks(np.array([4, 5]), ks=(5,))
    assert m == pytest.approx(
        {"HR@5": 0.5, "NDCG@5": 0.5 / math.log2(6), "MRR": (1 / 5 + 1 / 6) / 2}
    )


def test_no_users_have_no_metrics() -> None:
    """An empty group (no head users on a tiny log) has no metrics, not NaN: results files
    stay JSON that any parser reads."""
    assert metrics_from_ranks(torch.tensor([], dtype=torch.long)) == {}


# ---------------------------------------------------------------- rank_targets


def test_rank_targets_ties_count_against_target() -> None:
    inf = float("-inf")
    scores = torch.tensor([[3.0, 1.0, inf, 2.0, 5.0], [inf, 1.0, 1.0, 1.0, 1.0]])  # user x item
    target = torch.tensor([2.0, 1.0])  # the targets' own items are already at -inf
    assert rank_targets(scores.T, target).tolist() == [3, 4]  # a row per item
    scores[0, 4] = scores[1, 3] = inf  # an excluded item above or tied with the target
    assert rank_targets(scores.T, target).tolist() == [2, 3]


def test_rank_targets_counts_across_steps_of_rows() -> None:
    scores = torch.randn(3 * ROWS + 7, 4)  # more items than one step compares
    target = scores[5]
    scores[5] = float("-inf")
    want = [(scores[:, u] >= target[u]).sum().item() for u in range(4)]
    assert rank_targets(scores, target).tolist() == want


def test_rank_targets_non_finite_target_ranks_last() -> None:
    scores = torch.tensor([[0.0, 1.0, 2.0], [float("nan")] * 3]).T  # 3 items, 2 users
    target = torch.tensor([float("nan"), float("nan")])
    assert rank_targets(scores, target).tolist() == [3, 3]


# ---------------------------------------------------------------- Ranker on a stub


def test_ranker_ignores_history_padding_and_mask() -> None:
    data = unique_item_data([3, 4], extra_items=8)  # user 0: 1 2 | 3 ; user 1: 4 5 6 | 7
    model = ScoreTable(data.n_items)
    mask = data.n_items + 1
    s0 = torch.zeros(data.n_items + 2)
    s0[[0, mask, 1, 2]] = 100.0  # padding, mask token and history score highest
    s0[3] = 5.0  # the target
    s0[[8, 9]] = 10.0
    s0[10] = 5.0  # a tie, counted against the target
    model.table[2] = s0
    s1 = torch.zeros(data.n_items + 2)
    s1[[0, mask, 4, 5, 6]] = 50.0
    s1[7] = 1.0
    model.table[6] = s1
    assert last_input(data, "test").tolist() == [2, 6]
    assert Ranker(model, data).ranks("test").tolist() == [3, 0]
    assert Ranker(model, data, user_batch=1, item_chunk=2).ranks("test").tolist() == [3, 0]


def test_collapsed_model_ranks_last() -> None:
    data = unique_item_data([3, 4], extra_items=30)  # 37 items
    model = ScoreTable(data.n_items)  # every score 0
    ranks = Ranker(model, data).ranks("test")
    # candidates: 37 items minus history (2 and 3 items); the target ties with all others
    assert ranks.tolist() == [37 - 2 - 1, 37 - 3 - 1]
    m = metrics_from_ranks(ranks)
    assert m["HR@5"] == m["HR@10"] == m["HR@20"] == m["NDCG@20"] == 0.0
    valid = Ranker(model, data, item_chunk=4).ranks("valid")
    assert valid.tolist() == [37 - 1 - 1, 37 - 2 - 1]


@pytest.mark.parametrize("item_chunk", [1000, 4])
def test_nan_model_ranks_last(item_chunk: int) -> None:
    data = unique_item_data([3, 4], extra_items=30)
    model = ScoreTable(data.n_items)
    model.table.fill_(float("nan"))
    ranks = Ranker(model, data, item_chunk=item_chunk).ranks("test")
    assert (ranks >= torch.tensor([37 - 2 - 1, 37 - 3 - 1])).all()
    assert metrics_from_ranks(ranks)["MRR"] < 1 / 30


@pytest.mark.parametrize("rows", [ROWS, 2])  # items per step inside a block
def test_ranker_chunking_invariance_with_ties(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate_module, "ROWS", rows)
    data = unique_item_data([3, 5, 4, 6, 3, 7, 4], extra_items=20)
    g = torch.Generator().manual_seed(0)
    model = ScoreTable(data.n_items)
    model.table = torch.randint(0, 4, model.table.shape, generator=g).float()  # many ties
    for split in ("valid", "test"):
        expected = brute_ranks(data, split, model.table[last_input(data, split)].numpy())
        big = Ranker(model, data).ranks(split)
        small = Ranker(model, data, user_batch=2, item_chunk=3).ranks(split)
        assert big.tolist() == expected.tolist()
        assert small.tolist() == expected.tolist()
        assert len(set((data.target(split) // 3).tolist())) >= 6  # targets spread over chunks


def test_ranker_user_subset_keeps_order() -> None:
    data = unique_item_data([3, 5, 4, 6, 3], extra_items=5)
    model = ScoreTable(data.n_items)
    model.table = torch.randn(model.table.shape, generator=torch.Generator().manual_seed(1))
    full = Ranker(model, data, user_batch=2).ranks("test")
    sub = Ranker(model, data, user_batch=2).ranks("test", torch.tensor([4, 1, 2]))
    assert sub.tolist() == full[[4, 1, 2]].tolist()


def test_top_k_matches_brute_force_across_chunks() -> None:
    data = unique_item_data([3, 5, 4, 6, 3, 7], extra_items=10)
    n_cols = data.n_items + 2
    g = torch.Generator().manual_seed(2)
    model = ScoreTable(data.n_items)
    model.table = torch.stack([torch.randperm(n_cols, generator=g).float() for _ in range(n_cols)])
    model.table[:, [0, n_cols - 1]] = 1000.0  # padding and mask would win if not excluded
    for split in ("valid", "test"):
        history = history_matrix(data, split)
        scores = model.table[last_input(data, split)].numpy().copy()
        model.table[last_input(data, split)] += torch.from_numpy(history * 500.0).float()
        ids, vals = Ranker(model, data, user_batch=2, item_chunk=3).top_k(split, 5)
        model.table[last_input(data, split)] -= torch.from_numpy(history * 500.0).float()
        for u in range(data.n_users):
            s = np.where(history[u], -np.inf, scores[u])
            s[[0, n_cols - 1]] = -np.inf
            best = np.argsort(-s, kind="stable")[:5]
            assert ids[u].tolist() == best.tolist()
            assert vals[u].tolist() == s[best].tolist()
            assert not history[u][ids[u].numpy()].any()


def test_top_k_same_for_any_chunking() -> None:
    data = unique_item_data([3, 5, 4, 6, 3, 7], extra_items=10)
    model = ScoreTable(data.n_items)
    model.table = torch.randn(model.table.shape, generator=torch.Generator().manual_seed(3))
    a, _ = Ranker(model, data).top_k("test", 7)
    b, _ = Ranker(model, data, user_batch=4, item_chunk=5).top_k("test", 7)
    assert a.tolist() == b.tolist()


# ---------------------------------------------------------------- Ranker on a real SASRec


def random_sequences(n_users: int, n_items: int, seed: int) -> Sequences:
    rng = np.random.default_rng(seed)
    seqs = [(rng.permutation(n_items)[: rng.integers(3, 16)] + 1).tolist() for _ in range(n_users)]
    return Sequences.from_lists(seqs, n_items=n_items)


def test_ranker_on_sasrec_matches_per_user_scoring() -> None:
    torch.manual_seed(0)
    data = LeaveOneOut(random_sequences(12, 30, seed=0))
    model = SASRec(data.n_items, 8, ModelConfig(hidden=16, layers=1, heads=2, inner=32)).eval()
    for split in ("valid", "test"):
        end = data.history_end(split)
        scores = []
        with torch.no_grad():
            for u in range(data.n_users):
                seq = data.flat[data.starts[u] : end[u]][-8:]  # input truncated to max_len
                scores.append(model.score(model(seq[None])[0, -1]).numpy())
        expected = brute_ranks(data, split, np.stack(scores))
        got = Ranker(model, data, user_batch=5, item_chunk=7).ranks(split)
        assert got.tolist() == expected.tolist()


def test_evaluate_groups_head_and_tail() -> None:
    torch.manual_seed(0)
    data = LeaveOneOut(random_sequences(20, 30, seed=1))
    model = SASRec(data.n_items, 8, ModelConfig(hidden=16, layers=1, heads=2, inner=32))
    chunks = Config().override(["train.eval_batch_users=3", "train.eval_item_chunk=11"])
    out = evaluate(model, data, "test", chunks)
    ranks = Ranker(model, data).ranks("test")
    head = torch.from_numpy(data.is_head)
    assert int(head.sum()) == 4
    assert out["all"] == metrics_from_ranks(ranks)
    assert out["head"] == metrics_from_ranks(ranks[head])
    assert out["tail"] == metrics_from_ranks(ranks[~head])
    assert model.training  # evaluation restores the training flag
