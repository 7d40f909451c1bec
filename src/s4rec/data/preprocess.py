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
from typing import NoReturn

import numpy as np

from s4rec.data.binary import write_binary
from s4rec.data.readers import (
    DataError,
    Interactions,
    infer_format,
    read_raw,
    write_sequence_text,
)
from s4rec.data.sequences import Sequences
from s4rec.data.stream import Coded, Fallback, read_coded

logger = logging.getLogger(__name__)

DUPLICATE_POLICIES = ("drop", "error")
OUT_FORMATS = ("text", "binary")


def to_sequences(
    inter: Interactions,
    k_core: int = 5,
    duplicates: str = "drop",
    log: logging.Logger = logger,
) -> Sequences:
    """Deduplicate, k-core filter, order and renumber an interaction log (see module doc)."""
    _check_policies(k_core, duplicates)
    users, raw_users = _factorize(inter.users)
    items, raw_items = _factorize(inter.items)
    coded = Coded(users, raw_users, items, raw_items, inter.times, inter.source)
    dups = _duplicate_rows(coded)
    if len(dups) and duplicates == "error":
        _raise_duplicate(inter, coded, int(dups.min()))
    return _build(coded, dups, k_core, duplicates, log)


def _check_policies(k_core: int, duplicates: str) -> None:
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, not {duplicates!r}")
    if k_core < 0:
        raise ValueError(f"k_core must be >= 0, not {k_core}")


def _build(
    coded: Coded, dups: np.ndarray, k_core: int, duplicates: str, log: logging.Logger
) -> Sequences:
    """Sequences of a coded log less its duplicate rows ``dups`` (see module doc)."""
    users, items = coded.users, coded.items
    keep = np.ones(len(users), dtype=bool)
    if len(dups):
        keep[dups] = False
        log.warning(
            "%s: dropped %d exact duplicate (user, item, time) rows", coded.source, len(dups)
        )
    keep = _k_core(coded, keep, k_core, log)
    if not keep.any():
        raise DataError(
            coded.source,
            None,
            f"{k_core}-core filtering removed every interaction ({len(coded)} rows); "
            "use a smaller k-core (k_core, prepare --k-core) or more data",
        )
    rows = np.flatnonzero(keep)
    del keep
    rank = _user_rank(coded.user_ids)
    order = rows[np.lexsort((coded.times[rows], rank[users[rows]]))]
    del rows
    u, i = users[order], items[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    offsets = np.r_[starts, len(u)].astype(np.int64)
    uniq, first = np.unique(i, return_index=True)
    by_first = uniq[np.argsort(first)]
    new_id = np.zeros(len(coded.item_ids), dtype=np.int64)
    new_id[by_first] = np.arange(1, len(by_first) + 1)
    return Sequences(
        offsets,
        new_id[i],
        [coded.user_ids[c] for c in u[starts].tolist()],
        [coded.item_ids[c] for c in by_first.tolist()],
        coded.source,
    )


def read_sequences(
    input_path: str | os.PathLike,
    fmt: str = "auto",
    k_core: int = 5,
    duplicates: str = "drop",
    **reader_kwargs,
) -> Sequences:
    """:func:`to_sequences` of the raw log at ``input_path``. CSV/TSV/Parquet are streamed
    column-wise (:mod:`s4rec.data.stream`); files it cannot read exactly, and every error,
    go through the exact reader :func:`read_raw`, which names the file and line."""
    _check_policies(k_core, duplicates)
    kind = infer_format(input_path) if fmt == "auto" else fmt
    if kind in ("csv", "tsv", "parquet"):
        kwargs = dict(reader_kwargs)
        if kind != "parquet":
            kwargs.setdefault("sep", "," if kind == "csv" else "\t")
        try:
            coded = read_coded(input_path, **kwargs)
            dups = _duplicate_rows(coded)
            if not (len(dups) and duplicates == "error"):
                return _build(coded, dups, k_core, duplicates, logger)
        except Fallback as e:
            logger.debug("%s: read with the exact reader (%s)", input_path, e)
    return to_sequences(read_raw(input_path, fmt, **reader_kwargs), k_core, duplicates)


def prepare(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    fmt: str = "auto",
    k_core: int = 5,
    duplicates: str = "drop",
    out_format: str = "text",
    **reader_kwargs,
) -> Sequences:
    """Read a raw log, build sequences, write them (``out_format``: ``text``, sequence text
    plus vocabulary, or ``binary``, a :mod:`s4rec.data.binary` directory); return them."""
    if out_format not in OUT_FORMATS:
        raise ValueError(f"out_format must be one of {OUT_FORMATS}, not {out_format!r}")
    seqs = read_sequences(input_path, fmt, k_core, duplicates, **reader_kwargs)
    (write_binary if out_format == "binary" else write_sequence_text)(seqs, output_path)
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


def _duplicate_rows(coded: Coded) -> np.ndarray:
    """Rows repeating an earlier row's exact (user, item, time)."""
    users, items, times = coded.users, coded.items, coded.times
    order = np.lexsort((times, items, users))
    same = (
        (users[order][1:] == users[order][:-1])
        & (items[order][1:] == items[order][:-1])
        & (times[order][1:] == times[order][:-1])
    )
    return order[1:][same]


def _raise_duplicate(inter: Interactions, coded: Coded, row: int) -> NoReturn:
    """The DataError for duplicate ``row``, naming the row it repeats."""
    users, items, times = coded.users, coded.items, coded.times
    match = (users == users[row]) & (items == items[row]) & (times == times[row])
    first = int(np.flatnonzero(match)[0])
    where = inter.line_of(first)
    raise DataError(
        inter.source,
        inter.line_of(row),
        f"duplicate interaction (user {inter.users[row]!r}, item {inter.items[row]!r}, "
        f"time {times[row]}) repeats {f'row {first}' if where is None else f'line {where}'}",
    )


def _k_core(coded: Coded, keep: np.ndarray, k: int, log: logging.Logger) -> np.ndarray:
    """Iteratively drop users and items with fewer than ``k`` kept interactions."""
    if k <= 1:
        return keep
    users, items = coded.users, coded.items
    before = _sizes(users, items, keep)
    passes = 0
    while True:
        passes += 1
        n_user = np.bincount(users[keep], minlength=len(coded.user_ids))
        n_item = np.bincount(items[keep], minlength=len(coded.item_ids))
        new = keep & (n_user[users] >= k) & (n_item[items] >= k)
        if new.sum() == keep.sum():
            break
        keep = new
    after = _sizes(users, items, keep)
    log.info(
        "%s: %d-core (%d passes) removed %d users, %d items, %d interactions",
        coded.source,
        k,
        passes,
        *(b - a for b, a in zip(before, after, strict=True)),
    )
    return keep


def _sizes(users: np.ndarray, items: np.ndarray, keep: np.ndarray) -> tuple[int, int, int]:
    """Distinct users, distinct items and rows among the kept rows."""
    return len(np.unique(users[keep])), len(np.unique(items[keep])), int(keep.sum())
