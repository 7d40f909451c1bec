"""Tests for the synthetic planted-intent generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s4rec.data.binary import read_binary, write_binary
from s4rec.data.synthetic import SyntheticData, make_scale_synthetic, make_synthetic


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return make_synthetic()


def _hit_rates(data: SyntheticData, k: int = 10) -> tuple[float, float]:
    """HR@k on each user's last item of popularity and first-order transition counts."""
    seqs = data.sequences
    n = seqs.n_items + 1
    last = seqs.offsets[1:] - 1
    train = np.ones(len(seqs.values), dtype=bool)
    train[last] = False
    pop = np.bincount(seqs.values[train], minlength=n).astype(np.float64)
    pairs = np.ones(len(seqs.values) - 1, dtype=bool)
    pairs[last[:-1]] = False  # no pair across users
    pairs &= train[1:]  # no pair into a held-out item
    trans = np.zeros((n, n))
    np.add.at(trans, (seqs.values[:-1][pairs], seqs.values[1:][pairs]), 1.0)

    history = np.zeros((seqs.n_users, n), dtype=bool)
    rows = np.repeat(np.arange(seqs.n_users), seqs.lengths)
    history[rows[train], seqs.values[train]] = True
    history[:, 0] = True
    target = seqs.values[last]
    tie = pop / (pop.max() + 1.0)

    def hr(scores: np.ndarray) -> float:
        scores = np.where(history, -np.inf, scores)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        return float((top == target[:, None]).any(axis=1).mean())

    pop_scores = np.broadcast_to(pop, history.shape)
    return hr(pop_scores), hr(trans[seqs.values[last - 1]] + tie)


def test_deterministic() -> None:
    a, b = make_synthetic(n_users=300, seed=3), make_synthetic(n_users=300, seed=3)
    c = make_synthetic(n_users=300, seed=4)
    assert np.array_equal(a.sequences.offsets, b.sequences.offsets)
    assert np.array_equal(a.sequences.values, b.sequences.values)
    assert np.array_equal(a.intents, b.intents)
    assert np.array_equal(a.item_intents, b.item_intents)
    assert a.sequences.source == "synthetic(seed=3)"
    assert not np.array_equal(a.sequences.values[:500], c.sequences.values[:500])


def test_shapes_and_ranges(data: SyntheticData) -> None:
    seqs = data.sequences
    assert seqs.n_users == 2000 and data.intents.shape == (2000,)
    assert seqs.n_items == 500 and data.item_intents.shape == (501,)
    assert seqs.user_ids[:2] == ["1", "2"] and seqs.item_ids[-1] == "500"
    assert np.array_equal(np.unique(seqs.values), np.arange(1, 501))
    assert set(np.unique(data.intents)) == set(range(8))
    assert data.item_intents[0] == -1 and (data.item_intents[1:] >= 0).all()
    assert len(set(np.bincount(data.intents).tolist())) > 1  # uneven intents
    assert len(set(np.bincount(data.item_intents[1:]).tolist())) > 1


def test_no_repeats(data: SyntheticData) -> None:
    seqs = data.sequences
    rows = np.repeat(np.arange(seqs.n_users), seqs.lengths)
    keys = rows * (seqs.n_items + 1) + seqs.values
    assert len(np.unique(keys)) == len(keys)


def test_lengths_long_tailed(data: SyntheticData) -> None:
    lengths = data.sequences.lengths
    assert lengths.min() == 5 and lengths.max() <= 60
    assert np.median(lengths) <= 10 and lengths.max() >= 50
    head = lengths >= np.quantile(lengths, 0.8)
    assert lengths[head].mean() >= 3 * lengths[~head].mean()


def test_every_intent_has_long_and_short_users(data: SyntheticData) -> None:
    lengths = data.sequences.lengths
    head = lengths >= np.quantile(lengths, 0.8)
    for c in range(8):
        mine = data.intents == c
        assert (mine & head).sum() >= 5 and (mine & ~head).sum() >= 5


def test_length_coupling_gathers_long_users_in_some_intents(data: SyntheticData) -> None:
    """Coupled users' intents are re-dealt by length; the intent shares stay the same."""
    coupled = make_synthetic(length_coupling=1.0)
    assert np.array_equal(coupled.sequences.lengths, data.sequences.lengths)
    assert np.array_equal(np.bincount(coupled.intents), np.bincount(data.intents))
    lengths = data.sequences.lengths
    head = lengths >= np.quantile(lengths, 0.8)

    def head_share_spread(intents: np.ndarray) -> float:
        return float(np.std([head[intents == c].mean() for c in range(8)]))

    assert head_share_spread(coupled.intents) > 3 * head_share_spread(data.intents)
    # fully coupled: a longer user never has a higher-numbered intent than a shorter one
    order = np.argsort(-lengths, kind="stable")
    assert (np.diff(coupled.intents[order]) >= 0).all()


def test_transitions_beat_popularity(data: SyntheticData) -> None:
    pop, trans = _hit_rates(data)
    assert 0.03 < pop < 0.3
    assert trans > pop + 0.2


def test_intent_predictable_from_items(data: SyntheticData) -> None:
    seqs = data.sequences
    rows = np.repeat(np.arange(seqs.n_users), seqs.lengths)
    fit = rows % 2 == 0  # learn item labels on even users, classify odd users
    votes = np.zeros((seqs.n_items + 1, 8))
    np.add.at(votes, (seqs.values[fit], data.intents[rows[fit]]), 1.0)
    label = votes.argmax(axis=1)
    tally = np.zeros((seqs.n_users, 8))
    np.add.at(tally, (rows[~fit], label[seqs.values[~fit]]), 1.0)
    odd = np.arange(1, seqs.n_users, 2)
    accuracy = (tally[odd].argmax(axis=1) == data.intents[odd]).mean()
    assert accuracy > 0.8


def test_dense_catalogue_when_items_unused() -> None:
    data = make_synthetic(n_users=5, n_items=200, n_intents=4, max_len=20)
    seqs = data.sequences
    assert seqs.n_items < 200
    assert np.array_equal(np.unique(seqs.values), np.arange(1, seqs.n_items + 1))
    assert data.item_intents.shape == (seqs.n_items + 1,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_len": 2},
        {"max_len": 4},
        {"n_users": 0},
        {"n_intents": 0},
        {"n_items": 30},
        {"max_len": 300},
        {"jump": 1.0},
        {"step_probs": (-1.0, 1.0)},
        {"length_coupling": 1.5},
    ],
)
def test_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_synthetic(**{"n_users": 10, **kwargs})


def test_scale_generator_deterministic_and_long_tailed(tmp_path: Path) -> None:
    a, b = make_scale_synthetic(20_000, 4_000, seed=5), make_scale_synthetic(20_000, 4_000, seed=5)
    for data, name in ((a, "a"), (b, "b")):
        write_binary(data.sequences, tmp_path / name)
    for array in ("offsets", "values"):
        assert (tmp_path / "a" / f"{array}.npy").read_bytes() == (
            tmp_path / "b" / f"{array}.npy"
        ).read_bytes()
    assert read_binary(tmp_path / "a").fingerprint() == a.sequences.fingerprint()
    other = make_scale_synthetic(20_000, 4_000, seed=6).sequences
    assert other.fingerprint() != a.sequences.fingerprint()
    seqs = a.sequences
    assert (seqs.n_users, seqs.n_items) == (20_000, 4_000)
    lengths = seqs.lengths
    assert lengths.min() == 5 and lengths.max() == 200 and np.median(lengths) <= 10
    counts = np.sort(np.bincount(seqs.values, minlength=seqs.n_items + 1)[1:])[::-1]
    assert counts[: len(counts) // 100].sum() > 0.05 * counts.sum()  # top 1% of items: > 5%
    assert counts[0] > 20 * np.median(counts)
    assert len(np.unique(a.intents)) == 8


def test_scale_generator_keeps_the_whole_catalogue() -> None:
    seqs = make_scale_synthetic(1_000, 40_000, seed=2).sequences  # ~15k draws: many items unused
    used = np.unique(seqs.values)
    assert seqs.n_items == 40_000 and len(used) < 30_000
    assert used.min() >= 1 and used.max() <= 40_000
    assert make_synthetic(n_users=20, n_items=4_000).sequences.n_items < 4_000  # dense by default
