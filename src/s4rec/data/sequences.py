"""The one in-memory form of a dataset: chronological item sequences, one per user."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from operator import index
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Sequences:
    """User sequences in compressed-row form with internal ids.

    Internal item ids run from 1 to ``n_items`` (0 is padding); ``item_ids[i - 1]`` is
    the raw id of internal item ``i`` and ``user_ids[u]`` the raw id of row ``u``.
    The items of user ``u`` are ``values[offsets[u]:offsets[u + 1]]``, oldest first.
    """

    offsets: np.ndarray  # (U + 1,) int64, offsets[0] == 0
    values: np.ndarray  # (N,) int64 in [1, n_items]
    user_ids: list[str]
    item_ids: list[str]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.user_ids) + 1:
            raise ValueError(
                f"{self.source}: {len(self.user_ids)} users but {len(self.offsets)} offsets"
            )
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.values):
            raise ValueError(f"{self.source}: offsets do not cover the values")
        if len(self.values) and (self.values.min() < 1 or self.values.max() > len(self.item_ids)):
            raise ValueError(f"{self.source}: item ids must lie in [1, {len(self.item_ids)}]")
        odd = next((i for i in self.item_ids if not isinstance(i, str)), None)
        if odd is not None:
            raise ValueError(f"{self.source}: raw item ids are strings, got {odd!r}")
        if len(set(self.item_ids)) != len(self.item_ids):
            raise ValueError(f"{self.source}: raw item ids repeat; each item needs its own")

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.n_users

    def __getitem__(self, u: int) -> np.ndarray:
        return self.values[self.offsets[u] : self.offsets[u + 1]]

    @classmethod
    def from_lists(
        cls,
        seqs: Sequence[Sequence[int]],
        n_items: int | None = None,
        user_ids: list[str] | None = None,
        item_ids: list[str] | None = None,
        source: str = "<memory>",
    ) -> Sequences:
        """Build from lists of internal ids (1-based); raw ids default to the numbers themselves."""
        seqs = [list(s) for s in seqs]
        if user_ids is not None and len(user_ids) != len(seqs):
            raise ValueError(f"{source}: {len(user_ids)} user ids for {len(seqs)} sequences")
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        try:  # operator.index: an integer, never a float cut down to one
            values = np.fromiter((index(i) for s in seqs for i in s), np.int64, int(offsets[-1]))
        except TypeError as err:
            raise ValueError(
                f"{source}: sequences hold internal item ids, integers ({err})"
            ) from None
        if item_ids is None:
            n = int(n_items if n_items is not None else (values.max() if len(values) else 0))
            item_ids = [str(i) for i in range(1, n + 1)]
        if user_ids is None:
            user_ids = [str(u) for u in range(1, len(seqs) + 1)]
        return cls(offsets, values, user_ids, item_ids, source)

    def fingerprint(self) -> dict[str, Any]:
        """Sizes and a hash of the sequences and their raw ids: equal only for the same data."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.offsets, self.values):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        for ids in (self.user_ids, self.item_ids):
            digest.update("\0".join(ids).encode() + b"\1")
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self.values),
            "blake2b": digest.hexdigest(),
        }

    def seen_before(self, pos: np.ndarray, block: int = 1 << 16) -> np.ndarray:
        """Bool (U,): does user ``u``'s item at flat position ``pos[u]`` occur earlier in
        the user's sequence (a repeat)? ``pos[u]`` lies in ``[offsets[u], offsets[u + 1])``.
        Blocks of ``block`` users at a time: memory does not grow with the dataset."""
        out, lengths = np.zeros(self.n_users, dtype=bool), self.lengths
        for lo in range(0, self.n_users, block):
            hi = min(lo + block, self.n_users)
            a, b = self.offsets[lo], self.offsets[hi]
            user = np.repeat(np.arange(hi - lo), lengths[lo:hi])
            earlier = np.arange(a, b) < pos[lo:hi][user]
            same = earlier & (self.values[a:b] == self.values[pos[lo:hi]][user])
            out[lo:hi] = np.bincount(user[same], minlength=hi - lo) > 0
        return out

    def held_out_repeats(self, min_length: int = 3) -> dict[str, int]:
        """Of the users a leave-one-out split keeps (``min_length`` or more items): how many
        there are, and how many have a validation, a test, or either target that repeats
        an earlier item of their own."""
        kept = self.subset(np.flatnonzero(self.lengths >= max(min_length, 3)))
        end = kept.offsets[1:]
        valid, test = kept.seen_before(end - 2), kept.seen_before(end - 1)
        return {
            "users": kept.n_users,
            "valid": int(valid.sum()),
            "test": int(test.sum()),
            "either": int((valid | test).sum()),
        }

    def held_out_repeats_text(self, min_length: int = 3) -> str:
        """``held_out_repeats`` in one line, for logs and the command line."""
        r = self.held_out_repeats(min_length)
        share = r["either"] / r["users"] if r["users"] else 0.0
        return (
            f"{r['either']:,} of {r['users']:,} users ({share:.1%}) have a held-out item that"
            f" repeats one of their earlier items (validation {r['valid']:,}, test {r['test']:,})"
        )

    def subset(self, rows: np.ndarray) -> Sequences:
        """The given users only (same item vocabulary)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = np.repeat(self.offsets[rows], lengths)
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
        values = self.values[starts + within]
        users = [self.user_ids[r] for r in rows]
        return Sequences(offsets, values, users, self.item_ids, self.source)
