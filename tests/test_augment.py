"""Augmentations of App. A on left-padded batches, and the views TrainLoader builds from them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from conftest import tiny_config
from s4rec.config import AugmentConfig
from s4rec.data.augment import augment, crop, crop_out, insert, mask, reorder, spans
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.sequences import Sequences
from s4rec.methods import apply_method
from s4rec.pipeline import load_data
from s4rec.train import Trainer

MASK_ID = 999
LENGTHS = list(range(1, 31))  # one row of each length


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def padded(rows: list[list[int]], width: int | None = None) -> Tensor:
    """Left-padded (B, W) batch, W = the longest row unless given."""
    width = max(len(r) for r in rows) if width is None else width
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            out[i, width - len(r) :] = torch.tensor(r)
    return out


def distinct_rows(lengths: list[int], base: int = 1) -> list[list[int]]:
    """Rows of distinct item ids (row i uses base + 100 i, ...), so positions are recoverable."""
    return [list(range(base + 100 * i, base + 100 * i + n)) for i, n in enumerate(lengths)]


def real(row: Tensor) -> list[int]:
    return row[row != 0].tolist()


def assert_left_padded_and_trimmed(out: Tensor) -> None:
    """Zeros only on the left of each row, and no leading column that is padding everywhere."""
    nonzero = out != 0
    # once a row has started, it never returns to padding
    assert torch.equal(nonzero, nonzero.long().cummax(1).values.bool()), out
    need = max(int(nonzero.sum(1).max()), 1)
    assert out.shape[1] == need, f"width {out.shape[1]}, but the longest row has {need} items"


def is_contiguous_run(part: list[int], whole: list[int]) -> bool:
    k = len(part)
    return any(whole[i : i + k] == part for i in range(len(whole) - k + 1))


# ---------------------------------------------------------------- operators, one by one


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_crop_keeps_a_contiguous_run(rate: float) -> None:
    rows = distinct_rows(LENGTHS)
    out = crop(padded(rows), rate, gen())
    assert_left_padded_and_trimmed(out)
    for row, o in zip(rows, out, strict=True):
        kept = real(o)
        assert len(kept) == max(1, int(rate * len(row)))
        assert is_contiguous_run(kept, row), (row, kept)


def test_crop_offsets_cover_every_start() -> None:
    row = list(range(1, 11))  # n = 10: run of 2, starts 0..8
    starts = Counter()
    g = gen(1)
    for _ in range(20):
        out = crop(padded([row] * 50), 0.2, g)
        starts.update(row.index(real(o)[0]) for o in out)
    assert set(starts) == set(range(9))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_crop_out_removes_one_contiguous_run(rate: float) -> None:
    """Eq. 16: the kept items are a prefix and a suffix of the row, in order."""
    rows = distinct_rows(LENGTHS)
    out = crop_out(padded(rows), rate, gen())
    assert_left_padded_and_trimmed(out)
    for row, o in zip(rows, out, strict=True):
        kept = real(o)
        assert len(kept) == max(1, int(rate * len(row)))
        cut = len(row) - len(kept)
        assert any(row[:i] + row[i + cut :] == kept for i in range(len(kept) + 1)), (row, kept)


def test_crop_out_cuts_at_every_place() -> None:
    row = list(range(1, 11))  # n = 10: keep 2, cut 8 starting at 0, 1 or 2
    prefixes = Counter()
    g = gen(1)
    for _ in range(20):
        out = crop_out(padded([row] * 50), 0.2, g)
        prefixes.update(sum(1 for x in real(o) if x <= 2) for o in out)
    assert set(prefixes) == {0, 1, 2}


def test_crop_style_picks_the_operator() -> None:
    rows = padded([list(range(1, 11))] * 200)
    views = augment(rows, AugmentConfig(operators=("crop",), crop_style="remove"), MASK_ID,
                    torch.arange(1, 5), 50, gen())  # fmt: skip
    split = [real(v) for v in views if real(v)[0] == 1 and real(v)[-1] == 10]
    assert split  # a prefix and a suffix: never a contiguous run of 2 of 10
    kept = augment(rows, AugmentConfig(operators=("crop",)), MASK_ID, torch.arange(1, 5), 50, gen())
    assert all(is_contiguous_run(real(v), list(range(1, 11))) for v in kept)


def test_mask_replaces_exactly_int_rate_n() -> None:
    rows = distinct_rows(LENGTHS)
    x = padded(rows)
    out = mask(x, 0.7, MASK_ID, gen())
    assert out.shape == x.shape
    assert_left_padded_and_trimmed(out)
    for row, xi, o in zip(rows, x, out, strict=True):
        masked = o == MASK_ID
        assert int(masked.sum()) == int(0.7 * len(row))
        assert torch.equal(o[~masked], xi[~masked])  # everything else (padding too) unchanged
        assert (xi[masked] != 0).all()  # padding is never masked


def test_mask_positions_vary() -> None:
    out = mask(padded([list(range(1, 11))] * 200), 0.3, MASK_ID, gen(2))
    patterns = {tuple((o == MASK_ID).tolist()) for o in out}
    assert len(patterns) > 50
    assert (out == MASK_ID).any(0).all()  # every position gets masked sometimes


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_reorder_shuffles_one_window(rate: float) -> None:
    rows = distinct_rows(LENGTHS)
    x = padded(rows)
    changed = 0
    g = gen(3)
    for _ in range(5):
        out = reorder(x, rate, g)
        assert out.shape == x.shape
        assert_left_padded_and_trimmed(out)
        for row, o in zip(rows, out, strict=True):
            got = real(o)
            size = int(rate * len(row))
            assert sorted(got) == row  # same multiset (items are distinct and increasing)
            moved = [i for i, (a, b) in enumerate(zip(got, row, strict=True)) if a != b]
            if moved:
                assert moved[-1] - moved[0] < size, (row, got)
                lo = moved[0]
                # the window [lo, lo + size) holds a permutation of the same items
                assert sorted(got[lo : lo + size]) == row[lo : lo + size]
                changed += 1
    assert changed > 50


def test_reorder_window_reaches_both_ends() -> None:
    row = list(range(1, 11))  # n = 10, window of 5: starts 0..5
    out = reorder(padded([row] * 400), 0.5, gen(4))
    diff = torch.tensor([[a != b for a, b in zip(real(o), row, strict=True)] for o in out])
    assert diff[:, 0].any() and diff[:, -1].any()


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_insert_without_truncation(rate: float) -> None:
    rows = distinct_rows(LENGTHS)
    pool = torch.arange(5001, 5021)  # disjoint from the rows' ids
    out = insert(padded(rows), rate, pool, max_len=64, g=gen(5))
    assert_left_padded_and_trimmed(out)
    for row, o in zip(rows, out, strict=True):
        got = real(o)
        m = max(1, int(rate * len(row)))
        assert len(got) == len(row) + m
        assert [i for i in got if i < 5001] == row  # originals all there, in order
        assert all(5001 <= i <= 5020 for i in got if i not in row)


def test_insert_truncates_to_the_last_max_len_items() -> None:
    rows = distinct_rows([10, 20, 30])
    pool = torch.arange(5001, 5021)
    g = gen(6)
    for _ in range(20):
        out = insert(padded(rows), 0.5, pool, max_len=24, g=g)
        assert out.shape[1] == 24
        assert_left_padded_and_trimmed(out)
        for row, o in zip(rows, out, strict=True):
            got = real(o)
            m = max(1, int(0.5 * len(row)))
            assert len(got) == min(len(row) + m, 24)
            originals = [i for i in got if i < 5001]
            assert originals == row[len(row) - len(originals) :]  # a suffix, in order
            assert len(got) - len(originals) <= m


def test_insert_positions_and_draws_are_random() -> None:
    row = list(range(1, 6))  # n = 5: one inserted item, six possible places
    pool = torch.arange(101, 111)
    out = insert(padded([row] * 300), 0.2, pool, max_len=50, g=gen(7))
    places = Counter()
    drawn = Counter()
    for o in out:
        got = real(o)
        (j,) = [i for i, v in enumerate(got) if v > 100]
        places[j] += 1
        drawn[got[j]] += 1
    assert set(places) == set(range(6))
    assert set(drawn) == set(range(101, 111))


def test_operators_keep_zero_rate_rows_valid() -> None:
    """Short rows where int(rate * n) is 0: crop and insert still use at least one item."""
    x = padded([[7], [8, 9]])
    assert real(crop(x, 0.2, gen())[0]) == [7]
    assert torch.equal(reorder(x, 0.2, gen()), x)
    assert torch.equal(mask(x, 0.2, MASK_ID, gen()), x)
    assert [len(real(o)) for o in insert(x, 0.2, torch.tensor([50]), 10, gen())] == [2, 3]


@pytest.mark.parametrize("op", ["crop", "mask", "reorder", "insert"])
def test_operators_are_deterministic_given_the_generator(op: str) -> None:
    x = padded(distinct_rows(LENGTHS))
    pool = torch.arange(5001, 5021)

    def run(seed: int) -> Tensor:
        g = gen(seed)
        if op == "crop":
            return crop(x, 0.3, g)
        if op == "mask":
            return mask(x, 0.5, MASK_ID, g)
        if op == "reorder":
            return reorder(x, 0.5, g)
        return insert(x, 0.3, pool, 40, g)

    assert torch.equal(run(11), run(11))
    assert not torch.equal(run(11), run(12))


# ---------------------------------------------------------------- augment: one operator per row


def classify(row: list[int], got: list[int], pool_lo: int) -> str:
    """Which operator produced ``got`` from ``row`` (n = 20, rates 0.2 / 0.7 / 0.2 / 0.2)."""
    if len(got) == 4 and is_contiguous_run(got, row):
        return "crop"
    if len(got) == 24 and [i for i in got if i < pool_lo] == row:
        return "insert"
    if got.count(MASK_ID) == 14 and all(g in (a, MASK_ID) for g, a in zip(got, row, strict=True)):
        return "mask"
    if sorted(got) == row:
        return "reorder"
    raise AssertionError(f"{got} is no augmentation of {row}")


def test_augment_draws_one_operator_per_row() -> None:
    cfg = AugmentConfig(operators=("crop", "mask", "reorder", "insert"))
    rows = distinct_rows([20] * 400)
    pool = torch.arange(90001, 90051)
    out = augment(padded(rows), cfg, MASK_ID, pool, 50, gen(8))
    assert len(out) == 400
    used = Counter(classify(r, real(o), 90001) for r, o in zip(rows, out, strict=True))
    assert set(used) == set(cfg.operators)
    assert min(used.values()) > 60  # 100 expected each


def test_augment_respects_the_operator_subset() -> None:
    rows = distinct_rows([20] * 100)
    out = augment(
        padded(rows), AugmentConfig(operators=("crop",)), MASK_ID, torch.tensor([1]), 50, gen()
    )
    assert all(classify(r, real(o), 90001) == "crop" for r, o in zip(rows, out, strict=True))
    with pytest.raises(ValueError, match="non-empty subset"):
        augment(
            padded(rows), AugmentConfig(operators=("flip",)), MASK_ID, torch.tensor([1]), 50, gen()
        )
    with pytest.raises(ValueError, match="non-empty subset"):
        augment(padded(rows), AugmentConfig(operators=()), MASK_ID, torch.tensor([1]), 50, gen())


def test_augment_is_deterministic_given_the_generator() -> None:
    cfg = AugmentConfig(operators=("crop", "mask", "reorder", "insert"))
    x = padded(distinct_rows(LENGTHS))
    pool = torch.arange(5001, 5021)
    a = augment(x, cfg, MASK_ID, pool, 40, gen(9))
    b = augment(x, cfg, MASK_ID, pool, 40, gen(9))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(x, cfg, MASK_ID, pool, 40, gen(10)))


def test_augment_output_is_left_padded_and_trimmed() -> None:
    """A long row that is cropped leaves the batch short: no all-padding leading columns.

    Row 0 has 10 items, the other rows 2. Whenever row 0 draws crop (2 items kept), every
    output row has at most 2 items, so the view should be 2 columns wide; mask and reorder
    rows are passed on at the input width.
    """
    x = padded([list(range(1, 11))] + [[3, 4]] * 39)
    g = gen(0)
    for _ in range(10):
        assert_left_padded_and_trimmed(
            augment(x, AugmentConfig(), MASK_ID, torch.tensor([1]), 10, g)
        )


def test_mask_with_the_padding_id_keeps_every_unmasked_item() -> None:
    """augment.mask_token=padding writes 0 inside rows; trimming must not cut those rows."""
    x = padded([list(range(1, 11)), [3, 4]])
    for seed in range(20):
        out = augment(x, AugmentConfig(operators=("mask",)), 0, torch.tensor([1]), 10, gen(seed))
        assert (out != 0).sum(1).tolist() == [10 - 7, 2 - 1]
        tail = x[:, x.shape[1] - out.shape[1] :]
        assert ((out == tail) | (out == 0)).all()  # items stay in their columns
    assert spans(padded([[5, 0, 0, 7], [], [0, 2]])).tolist() == [4, 0, 1]


# ---------------------------------------------------------------- views built by TrainLoader


def held_out_only_data() -> tuple[LeaveOneOut, set[int]]:
    """Users whose validation and test items occur nowhere else (ids 41 and up)."""
    rng = np.random.default_rng(0)
    seqs, nxt = [], 41
    for _ in range(60):
        n = int(rng.integers(2, 25))
        train = rng.choice(np.arange(1, 41), size=n, replace=False).tolist()
        seqs.append([*train, nxt, nxt + 1])
        nxt += 2
    return LeaveOneOut(Sequences.from_lists(seqs, n_items=nxt - 1)), set(range(41, nxt))


def masked(row: Tensor, mask_id: int) -> bool:
    """Whether a left-padded view holds a masked item: the mask token, or, when the mask
    writes the padding id (``augment.mask_token=padding``), a zero after its first item."""
    if mask_id != 0:
        return bool((row == mask_id).any())
    items = (row != 0).nonzero()
    return bool(len(items)) and bool((row[int(items[0]) :] == 0).any())


def check_views(trainer: Trainer, epochs: int) -> Counter:
    """Every view item is the user's own input, the mask token or a training interaction."""
    data = trainer.data
    pool = set(data.train_items.tolist())
    mask_id = data.n_items + 1 if trainer.cfg.augment.mask_token == "own" else 0
    seen = Counter()
    for _ in range(epochs):
        for batch in trainer.loader:
            for c in batch.chunks:
                assert c.views is not None and len(c.views) == 2
                for view in c.views:
                    assert len(view) == len(c.items) and view.shape[1] <= trainer.cfg.data.max_len
                    for j, u in enumerate(c.users.tolist()):
                        own = set(real(c.items[j]))
                        got = real(view[j])
                        assert got, "a view keeps at least one item"
                        foreign = set(got) - own - {mask_id}
                        assert foreign <= pool, (u, foreign - pool)
                        seen["mask"] += masked(view[j], mask_id)
                        seen["foreign"] += bool(foreign)
    return seen


def test_views_never_hold_validation_or_test_items(tmp_path: Path) -> None:
    data, held_out = held_out_only_data()
    cfg = apply_method(
        tiny_config("augment.operators=[crop,mask,reorder,insert]", "augment.insert=0.5"), "s4rec"
    )
    trainer = Trainer(cfg, tmp_path, data=data)
    assert trainer.loader.augment == cfg.augment
    assert not held_out & set(data.train_items.tolist())
    pool = set(data.train_items.tolist())
    for _ in range(5):
        for batch in trainer.loader:
            for c in batch.chunks:
                for view in c.views:
                    assert not held_out & set(view.flatten().tolist())
    seen = check_views(trainer, 1)
    assert seen["mask"] > 0 and seen["foreign"] > 0  # mask and insert really ran
    assert pool == set(range(1, 41))


@pytest.mark.parametrize("mask_token", ["own", "padding"])
def test_synthetic_views_use_training_items_only(tmp_path: Path, mask_token: str) -> None:
    cfg = apply_method(
        tiny_config("data.synthetic_users=200", "augment.operators=[crop,mask,reorder,insert]"),
        "s4rec",
    ).override([f"augment.mask_token={mask_token}"])
    trainer = Trainer(cfg, tmp_path, data=load_data(cfg))
    seen = check_views(trainer, 1)
    assert seen["mask"] > 0 and seen["foreign"] > 0
