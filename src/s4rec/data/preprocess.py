"""Turn raw interaction logs into chronological 5-core sequences.

Policies (the same as the benchmark ML-1M file was built with):

* duplicates: exact duplicate ``(user, item, time)`` rows are dropped with a warning
  (``duplicates="drop"``) or rejected (``duplicates="error"``); never silently kept or lost.
* order: each user's events are sorted by time with a *stable* sort, so events with equal
  times keep their file order.
* k-core: users and items with fewer than ``k`` interactions are removed repeatedly until none
  remain (``k <= 1`` disables it).
* ids: users are numbered by ascending raw id (numerically when every raw user id is a decimal
  integer, else as strings); items are numbered 1.. by first appearance when reading the users
  in that order, each user's events oldest first.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from s4rec.data.readers import DataError, Interactions, read_raw, write_sequence_text
from s4rec.data.sequences import Sequences

logger = logging.getLogger(__name__)

DUPLICATE_POLICIES = ("drop", "error")


def to_sequences(
    inter: Interactions,
    k_core: int = 5,
    duplicates: str = "drop",
    log: logging.Logger = logger,
) -> Sequences:
    """Deduplicate, k-core filter, order and renumber an interaction log (see module doc)."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, not {duplicates!r}")
    if k_core < 0:
        raise ValueError(f"k_core must be >= 0, not {k_core}")
    users, raw_users = _factorize(inter.users)
    items, raw_items = _factorize(inter.items)
    keep = _drop_duplicates(inter, users, items, duplicates == "error", log)
    keep = _k_core(users, items, keep, k_core, inter.source, log)
    if not keep.any():
        raise DataError(
            inter.source,
            None,
            f"{k_core}-core filtering removed every interaction ({len(inter)} rows); "
            "use a smaller k_core or more data",
        )
    rows = np.flatnonzero(keep)
    rank = _user_rank(raw_users)
    order = rows[np.lexsort((inter.times[rows], rank[users[rows]]))]
    u, i = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    offsets = np.r_[starts, len(u)].astype(np.int64)
    uniq, first = np.unique(i, return_index=True)
    by_first = uniq[np.argsort(first)]
    new_id = np.zeros(len(raw_items), dtype=np.int64)
    new_id[by_first] = np.arange(1, len(by_first) + 1)
    return Sequences(
        offsets,
        new_id[i],
        [raw_users[c] for c in u[starts].tolist()],
        [raw_items[c] for c in by_first.tolist()],
        inter.source,
    )


def prepare(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    fmt: str = "auto",
    k_core: int = 5,
    duplicates: str = "drop",
    **reader_kwargs,
) -> Sequences:
    """Read a raw log, build sequences, write sequence text plus vocabulary; return them."""
    inter = read_raw(input_path, fmt, **reader_kwargs)
    seqs = to_sequences(inter, k_core=k_core, duplicates=duplicates)
    write_sequence_text(seqs, output_path)
    logger.info(
        "wrote %s: %d users, %d items, %d interactions",
        output_path,
        seqs.n_users,
        seqs.n_items,
        len(seqs.values),
    )
    return dataclasses.replace(seqs, source=str(Path(output_path)))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes 0.. in order of first appearance, and the distinct values in that order."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values)
    )
    return codes, list(index)


def _user_rank(raw: list[str]) -> np.ndarray:
    """Rank of each user code by ascending raw id (numeric if all ids are integers)."""
    numeric = all(s.isascii() and s.isdigit() for s in raw)
    order = sorted(range(len(raw)), key=(lambda c: int(raw[c])) if numeric else raw.__getitem__)
    rank = np.empty(len(raw), dtype=np.int64)
    rank[order] = np.arange(len(raw))
    return rank


def _drop_duplicates(
    inter: Interactions, users: np.ndarray, items: np.ndarray, strict: bool, log: logging.Logger
) -> np.ndarray:
    """Mask keeping the first of each exact (user, item, time) duplicate group."""
    times = inter.times
    order = np.lexsort((times, items, users))
    same = (
        (users[order][1:] == users[order][:-1])
        & (items[order][1:] == items[order][:-1])
        & (times[order][1:] == times[order][:-1])
    )
    dups = order[1:][same]
    keep = np.ones(len(users), dtype=bool)
    if not len(dups):
        return keep
    if strict:
        row = int(dups.min())
        match = (users == users[row]) & (items == items[row]) & (times == times[row])
        first = int(np.flatnonzero(match)[0])
        where = inter.line_of(first)
        raise DataError(
            inter.source,
            inter.line_of(row),
            f"duplicate interaction (user {inter.users[row]!r}, item {inter.items[row]!r}, "
            f"time {times[row]}) repeats {f'row {first}' if where is None else f'line {where}'}",
        )
    keep[dups] = False
    log.warning("%s: dropped %d exact duplicate (user, item, time) rows", inter.source, len(dups))
    return keep


def _k_core(
    users: np.ndarray,
    items: np.ndarray,
    keep: np.ndarray,
    k: int,
    source: str,
    log: logging.Logger,
) -> np.ndarray:
    """Iteratively drop users and items with fewer than ``k`` kept interactions."""
    if k <= 1:
        return keep
    before = _sizes(users, items, keep)
    passes = 0
    while True:
        passes += 1
        n_user = np.bincount(users[keep], minlength=len(users))
        n_item = np.bincount(items[keep], minlength=len(items))
        new = keep & (n_user[users] >= k) & (n_item[items] >= k)
        if new.sum() == keep.sum():
            break
        keep = new
    after = _sizes(users, items, keep)
    log.info(
        "%s: %d-core (%d passes) removed %d users, %d items, %d interactions",
        source,
        k,
        passes,
        *(b - a for b, a in zip(before, after, strict=True)),
    )
    return keep


def _sizes(users: np.ndarray, items: np.ndarray, keep: np.ndarray) -> tuple[int, int, int]:
    """Distinct users, distinct items and rows among the kept rows."""
    return len(np.unique(users[keep])), len(np.unique(items[keep])), int(keep.sum())
