"""Leave-one-out split, head/tail labels, training samples, batches and negatives."""

from __future__ import annotations

import itertools
import logging
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import unique_item_data
from s4rec.data.dataset import (
    Batch,
    LeaveOneOut,
    TrainLoader,
    head_tail_labels,
    make_batch,
    training_samples,
    width_buckets,
)
from s4rec.data.sequences import Sequences


def train_part(data: LeaveOneOut, u: int) -> list[int]:
    return data.flat[data.starts[u] : data.train_end[u]].tolist()


def rows_of(batch: Batch) -> list[tuple[int, list[int], list[int]]]:
    """(user, unpadded items, targets at those positions) per sample, in batch order."""
    out: list = [None] * len(batch)
    for c in batch.chunks:
        for j, row in enumerate(c.rows.tolist()):
            keep = c.items[j] != 0
            out[row] = (int(c.users[j]), c.items[j][keep].tolist(), c.targets[j][keep].tolist())
    return out


def trained_pairs(data: LeaveOneOut, layout: str, max_len: int, stride: int = 1) -> list:
    """(user, context, target) for every position with a target, read off ``make_batch``."""
    samples = training_samples(data, layout, max_len, stride)
    batch = make_batch(data, samples, torch.arange(len(samples)), max_len)
    pairs = []
    for c in batch.chunks:
        for j in range(len(c.rows)):
            for p in torch.nonzero(c.targets[j]).squeeze(1).tolist():
                context = c.items[j, : p + 1]
                pairs.append(
                    (int(c.users[j]), tuple(context[context != 0].tolist()), int(c.targets[j, p]))
                )
    return pairs


# ---------------------------------------------------------------- LeaveOneOut


def test_leave_one_out_split(small_seqs: Sequences, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        data = LeaveOneOut(small_seqs)
    assert "dropped 1 of 5 users" in caplog.text
    assert data.n_dropped == 1 and data.n_users == 4 and data.n_items == 10
    assert data.seqs.user_ids == ["1", "3", "4", "5"]
    assert [train_part(data, u) for u in range(4)] == [[1, 2, 3], [2, 4], [9], [3, 5, 7, 9]]
    assert data.target("valid").tolist() == [4, 6, 10, 10]
    assert data.target("test").tolist() == [5, 8, 1, 2]
    assert data.train_lengths.tolist() == [3, 2, 1, 4]
    assert (data.history_end("test") - data.history_end("valid")).tolist() == [1, 1, 1, 1]


def test_leave_one_out_min_length(small_seqs: Sequences, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        data = LeaveOneOut(small_seqs, min_length=5)
    assert "dropped 3 of 5 users" in caplog.text
    assert data.seqs.user_ids == ["1", "5"]
    with pytest.raises(ValueError, match="at least 3"):
        LeaveOneOut(small_seqs, min_length=2)
    with pytest.raises(ValueError, match="no user"):
        LeaveOneOut(small_seqs, min_length=7)


def test_no_warning_when_nothing_dropped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        data = LeaveOneOut(Sequences.from_lists([[1, 2, 3], [3, 2, 1, 4]]))
    assert caplog.text == "" and data.n_dropped == 0


def test_in_training(small_seqs: Sequences) -> None:
    data = LeaveOneOut(small_seqs)
    users = torch.tensor([0, 0, 0, 1, 2, 2, 3])
    items = torch.tensor([3, 4, 5, 4, 9, 10, 9])
    assert data.in_training(users, items).tolist() == [True, False, False, True, True, False, True]


# ---------------------------------------------------------------- head / tail


def test_head_tail_exact_count_and_ties() -> None:
    lengths = np.array([3, 5, 5, 1, 5, 2, 5, 4])
    assert np.flatnonzero(head_tail_labels(lengths, 0.2)).tolist() == [1, 2]  # round(1.6) = 2
    assert np.flatnonzero(head_tail_labels(lengths, 0.4)).tolist() == [1, 2, 4]  # round(3.2)
    assert np.flatnonzero(head_tail_labels(lengths, 0.6)).tolist() == [1, 2, 4, 6, 7]
    assert head_tail_labels(lengths, 0.0).sum() == 0 and head_tail_labels(lengths, 1.0).all()
    with pytest.raises(ValueError):
        head_tail_labels(lengths, 1.5)


def test_head_labels_depend_only_on_training_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 12, size=23)
    a = Sequences.from_lists([list(range(1, n + 1)) for n in lengths], n_items=20)
    b = Sequences.from_lists([(rng.permutation(20)[:n] + 1).tolist() for n in lengths], n_items=20)
    da, db = LeaveOneOut(a), LeaveOneOut(b)
    assert da.is_head.sum() == round(0.2 * 23) == 5
    assert np.array_equal(da.is_head, db.is_head)
    assert np.array_equal(da.is_head, head_tail_labels(lengths - 2, 0.2))
    longest = np.argsort(-(lengths - 2), kind="stable")[:5]
    assert sorted(np.flatnonzero(da.is_head).tolist()) == sorted(longest.tolist())


# ---------------------------------------------------------------- training samples


def test_user_layout(small_seqs: Sequences) -> None:
    data = LeaveOneOut(small_seqs)
    samples = training_samples(data, "user", max_len=2)
    assert samples.user.tolist() == [0, 1, 3]  # user 2 has a single training item
    batch = make_batch(data, samples, torch.arange(len(samples)), max_len=2)
    assert rows_of(batch) == [(0, [1, 2], [2, 3]), (1, [2], [4]), (3, [5, 7], [7, 9])]
    samples = training_samples(data, "user", max_len=50)
    batch = make_batch(data, samples, torch.arange(len(samples)), max_len=50)
    assert rows_of(batch) == [(0, [1, 2], [2, 3]), (1, [2], [4]), (3, [3, 5, 7], [5, 7, 9])]


@pytest.mark.parametrize("max_len", [1, 3, 4, 20])
def test_prefix_layout_stride_one_is_every_truncated_prefix(max_len: int) -> None:
    data = unique_item_data([3, 4, 5, 7, 9, 12, 15, 6])
    expected = []
    for u in range(data.n_users):
        t = train_part(data, u)
        expected += [(u, tuple(t[max(0, j - max_len) : j]), t[j]) for j in range(1, len(t))]
    got = trained_pairs(data, "prefix", max_len, stride=1)
    assert sorted(got) == sorted(expected)


@pytest.mark.parametrize(("max_len", "stride"), [(3, 2), (4, 3), (5, 5), (4, 4)])
def test_prefix_layout_stride_trains_every_target_once(max_len: int, stride: int) -> None:
    data = unique_item_data([3, 4, 5, 7, 9, 12, 15, 6])
    got = trained_pairs(data, "prefix", max_len, stride)
    expected = [(u, t) for u in range(data.n_users) for t in train_part(data, u)[1:]]
    assert Counter((u, t) for u, _, t in got) == Counter(expected)
    for u, context, target in got:  # each context is the (possibly shorter) recent past
        t = train_part(data, u)
        j = t.index(target)
        assert 1 <= len(context) <= max_len and list(context) == t[j - len(context) : j]
    n_windows = len(training_samples(data, "prefix", max_len, stride))
    n_long = [max(0, n - 1 - max_len) for n in data.train_lengths.tolist()]
    assert n_windows == sum(
        1 + -(-k // stride) for k, n in zip(n_long, data.train_lengths, strict=True) if n > 1
    )


def test_prefix_stride_longer_than_window_loses_no_target() -> None:
    """stride > max_len: either rejected up front, or still every target trained once."""
    data = unique_item_data([12, 15])  # 9 and 12 training inputs for windows of 4
    try:
        got = trained_pairs(data, "prefix", 4, stride=100)
    except ValueError as err:
        assert "stride" in str(err)
        return
    expected = [(u, t) for u in range(data.n_users) for t in train_part(data, u)[1:]]
    assert Counter((u, t) for u, _, t in got) == Counter(expected)


def test_training_samples_rejects_bad_arguments(small_seqs: Sequences) -> None:
    data = LeaveOneOut(small_seqs)
    with pytest.raises(ValueError, match="layout"):
        training_samples(data, "window", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stride"):
        training_samples(data, "prefix", 5, stride=0)


# ---------------------------------------------------------------- batches


def test_make_batch_width_buckets_and_left_padding() -> None:
    data = unique_item_data([3, 4, 5, 6, 11, 19, 3])  # training inputs: 0, 1, 2, 3, 8, 16, 0
    samples = training_samples(data, "user", max_len=32)
    assert samples.user.tolist() == [1, 2, 3, 4, 5]  # users 0 and 6 have one training item
    index = torch.tensor([4, 0, 2, 1, 3])  # lengths 16, 1, 3, 2, 8
    batch = make_batch(data, samples, index, max_len=32, chunk_cost=4)
    assert batch.users.tolist() == [5, 1, 3, 2, 4]
    widths = sorted((c.items.shape[1], sorted(c.rows.tolist())) for c in batch.chunks)
    # 1, 2, 3 together: 9 positions + 4 beat 6 + 12 (apart) and 7 + 8 (1, 2 | 3)
    assert widths == [(3, [1, 2, 3]), (8, [4]), (16, [0])]
    one = make_batch(data, samples, index, max_len=32, chunk_cost=100)
    assert [(c.items.shape[1], len(c.rows)) for c in one.chunks] == [(16, 5)]
    for c in batch.chunks:
        assert c.items.shape == c.targets.shape == (len(c.rows), c.items.shape[1])
        for j, u in enumerate(c.users.tolist()):
            n = int(data.train_lengths[u]) - 1
            w = c.items.shape[1]
            assert c.items[j, : w - n].eq(0).all() and c.targets[j, : w - n].eq(0).all()
            first = int(data.starts[u]) + 1  # item ids equal flat position + 1
            assert c.items[j, w - n :].tolist() == list(range(first, first + n))
            assert c.targets[j, w - n :].tolist() == list(range(first + 1, first + n + 1))


def test_width_buckets_is_the_cheapest_grouping() -> None:
    """Against every split of the sorted distinct lengths into runs, by brute force."""
    g = torch.Generator().manual_seed(0)
    for trial in range(30):
        lengths = torch.randint(0, 12, (int(torch.randint(1, 40, (1,), generator=g)),), generator=g)
        cost = [0, 3, 10, 50][trial % 4]
        groups = width_buckets(lengths, 10, cost)
        rows = torch.cat([idx for idx, _ in groups])
        assert sorted(rows.tolist()) == list(range(len(lengths)))  # each row once
        clamped = lengths.clamp(1, 10)
        for idx, width in groups:
            assert int(clamped[idx].max()) == width
        assert [w for _, w in groups] == sorted(w for _, w in groups)
        got = sum(len(idx) * w + cost for idx, w in groups)
        values = torch.unique(clamped).tolist()
        best = min(
            sum(int((clamped <= values[b - 1]).sum() - (clamped <= (values[a - 1] if a else 0)).sum())
                * values[b - 1] + cost for a, b in itertools.pairwise((0, *cuts, len(values))))
            for n in range(len(values))
            for cuts in itertools.combinations(range(1, len(values)), n)
        )  # fmt: skip
        assert got == best, (lengths.tolist(), cost)


def test_batches_only_touch_training_positions() -> None:
    data = unique_item_data([3, 4, 5, 7, 9, 12, 15, 6, 30])
    for layout, stride in [("user", 1), ("prefix", 1), ("prefix", 3)]:
        samples = training_samples(data, layout, 4, stride)
        loader = TrainLoader(data, samples, 3, 4, "bce", 2, torch.Generator().manual_seed(0))
        n_targets = 0
        for batch in loader:
            for c in batch.chunks:
                for j, u in enumerate(c.users.tolist()):
                    lo, hi = int(data.starts[u]), int(data.train_end[u])
                    pos = torch.cat([c.items[j], c.targets[j]])
                    pos = pos[pos != 0] - 1  # item i sits at flat position i - 1
                    assert ((pos >= lo) & (pos < hi)).all(), (layout, u, pos.tolist())
                n_targets += int((c.targets != 0).sum())
        n_inputs = (data.train_lengths - 1).clamp(min=0)
        cap = n_inputs if layout == "prefix" else n_inputs.clamp(max=4)
        assert n_targets == int(cap.sum())


# ---------------------------------------------------------------- negatives


def crowded_data() -> LeaveOneOut:
    """Eight items; most are in each user's training part, so rejection has work to do."""
    return LeaveOneOut(
        Sequences.from_lists(
            [[1, 2, 3, 4, 5, 6, 7], [8, 7, 6, 5, 4, 3], [2, 4, 6, 8, 1, 3, 5, 7], [1, 2, 3]],
            n_items=8,
        )
    )


def test_sample_negatives_rejects_training_items() -> None:
    data = crowded_data()
    g = torch.Generator().manual_seed(0)
    users = torch.tensor([0, 1, 2, 3])
    neg = data.sample_negatives(users, 400, g)
    assert neg.shape == (4, 400)
    for u in range(4):
        allowed = set(range(1, 9)) - set(train_part(data, u))
        assert set(neg[u].tolist()) == allowed  # all of them drawn, nothing else


def test_train_loader_negatives() -> None:
    data = crowded_data()
    for layout in ("user", "prefix"):
        samples = training_samples(data, layout, 3)
        g = torch.Generator().manual_seed(1)
        loader = TrainLoader(data, samples, 2, 3, "bce", 5, g)
        assert len(loader) == -(-len(samples) // 2)
        seen = 0
        for batch in loader:
            for c in batch.chunks:
                assert c.negatives is not None and c.negatives.shape == (*c.targets.shape, 5)
                at = c.targets != 0
                assert c.negatives[~at].eq(0).all()
                for j, u in enumerate(c.users.tolist()):
                    neg = c.negatives[j][at[j]]
                    seen += neg.numel()
                    assert neg.min() >= 1 and neg.max() <= 8
                    assert not set(neg.flatten().tolist()) & set(train_part(data, u))
        assert seen > 0


def test_train_loader_other_losses() -> None:
    data = crowded_data()
    samples = training_samples(data, "user", 3)
    ce = next(iter(TrainLoader(data, samples, 4, 3, "ce", 5, torch.Generator())))
    assert ce.shared_negatives is None and all(c.negatives is None for c in ce.chunks)
    g = torch.Generator().manual_seed(0)
    sampled = next(iter(TrainLoader(data, samples, 4, 3, "sampled_ce", 7, g)))
    assert sampled.shared_negatives is not None and sampled.shared_negatives.shape == (7,)
    assert int(sampled.shared_negatives.min()) >= 1 and int(sampled.shared_negatives.max()) <= 8


def test_train_loader_is_replayable_from_generator_state() -> None:
    data = crowded_data()
    samples = training_samples(data, "prefix", 3)
    g = torch.Generator().manual_seed(5)
    loader = TrainLoader(data, samples, 2, 3, "bce", 3, g)
    list(loader)
    state = g.get_state()
    first = [(b.users.tolist(), [c.negatives.tolist() for c in b.chunks]) for b in loader]
    g.set_state(state)
    again = [(b.users.tolist(), [c.negatives.tolist() for c in b.chunks]) for b in loader]
    assert first == again


def test_train_loader_needs_samples() -> None:
    data = LeaveOneOut(Sequences.from_lists([[1, 2, 3], [2, 3, 1]]))
    samples = training_samples(data, "user", 5)
    with pytest.raises(ValueError, match="no user has a training sequence"):
        TrainLoader(data, samples, 2, 5, "bce", 1, torch.Generator())


def test_negative_sampling_fails_clearly_when_no_negative_exists() -> None:
    # user 1 has every item of the catalogue in its training part: no valid negative
    seqs = Sequences.from_lists([[1, 2, 3, 4, 5, 1, 2], [1, 2, 3]], n_items=5)
    data = LeaveOneOut(seqs)
    with pytest.raises(ValueError, match="no negative found for user 1"):
        data.sample_negatives(torch.tensor([0]), 2, torch.Generator().manual_seed(0))
