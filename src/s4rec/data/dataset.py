"""Leave-one-out split, head/tail labels, training samples and width-bucketed batches.

Everything auxiliary (negatives, head/tail labels, training samples) is built from the
training part of each sequence only: the last two items (validation and test targets)
are never seen by it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal, overload

import numpy as np
import torch
from torch import Tensor

from ..config import AugmentConfig
from ..runtime import CPU_CHUNK_COST
from .augment import augment
from .sequences import Sequences

log = logging.getLogger(__name__)

Split = Literal["valid", "test"]


@overload
def _to(t: Tensor, device: torch.device) -> Tensor: ...
@overload
def _to(t: None, device: torch.device) -> None: ...
def _to(t: Tensor | None, device: torch.device) -> Tensor | None:
    return None if t is None else t.to(device, non_blocking=True)


@dataclass(frozen=True)
class Chunk:
    """Sequences of similar length, left-padded to a common width W."""

    rows: Tensor  # (b,) positions of these sequences in the batch
    users: Tensor  # (b,) user indices
    items: Tensor  # (b, W) input item ids, 0 = padding
    targets: Tensor  # (b, W) next-item targets, 0 = no loss at this position
    negatives: Tensor | None = None  # (b, W, n) sampled negatives per target ("bce", "bpr")
    views: tuple[Tensor, Tensor] | None = None  # two augmented copies of items (b, W')

    def to(self, device: torch.device) -> Chunk:
        """This chunk with every tensor on ``device``."""
        views = (
            None if self.views is None else (_to(self.views[0], device), _to(self.views[1], device))
        )
        return replace(self, rows=_to(self.rows, device), users=_to(self.users, device),
                       items=_to(self.items, device), targets=_to(self.targets, device),
                       negatives=_to(self.negatives, device), views=views)  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """A batch of training samples, run through the encoder chunk by chunk (no wasted padding)."""

    users: Tensor  # (B,) user of each sample
    chunks: list[Chunk]
    shared_negatives: Tensor | None = None  # (M,) negatives shared by all positions ("sampled_ce")
    # of the global batch this one is a rank's share of (itself in one process), so that each
    # rank weighs its losses without asking the others: its samples and trained positions
    global_samples: int | None = None
    global_positions: int | None = None

    def __len__(self) -> int:
        return len(self.users)

    def to(self, device: torch.device) -> Batch:
        """This batch with every tensor on ``device``."""
        return replace(self, users=_to(self.users, device), chunks=[c.to(device) for c in self.chunks],
                       shared_negatives=_to(self.shared_negatives, device))  # fmt: skip


def shared_tensor(array: np.ndarray) -> Tensor:
    """``torch.from_numpy(array)``, also of a read-only (memory-mapped) array, whose pages
    stay shared: the tensor is only read (writing into it would fault)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(array)


class LeaveOneOut:
    """Per user: training part = all items but the last two; validation = second to last; test = last."""

    def __init__(
        self, seqs: Sequences, min_length: int = 3, head_fraction: float = 0.2, hold_out: int = 2
    ) -> None:
        """``hold_out=0``: every item is training data (a final model): the "valid" history
        is then the whole sequence, and there are no targets to evaluate."""
        if hold_out not in (0, 2):
            raise ValueError(f"hold_out must be 2 (validation and test) or 0, got {hold_out}")
        if min_length < 3:
            raise ValueError(
                "min_length must be at least 3 (one training, validation and test item)"
            )
        short = seqs.lengths < min_length
        if short.all():
            raise ValueError(f"{seqs.source}: no user has {min_length} or more items")
        if short.any():
            log.warning(
                "%s: dropped %d of %d users with fewer than %d items (leave-one-out needs them)",
                seqs.source,
                int(short.sum()),
                seqs.n_users,
                min_length,
            )
            seqs = seqs.subset(np.flatnonzero(~short))
        self.seqs = seqs
        self.n_dropped = int(short.sum())
        self.n_users = seqs.n_users
        self.n_items = seqs.n_items
        self.flat = shared_tensor(seqs.values)
        self.starts = torch.from_numpy(seqs.offsets[:-1].copy())
        self.final = hold_out == 0
        self.train_end = torch.from_numpy(seqs.offsets[1:] - hold_out)  # exclusive training end
        self.train_lengths = self.train_end - self.starts
        self.is_head = head_tail_labels(self.train_lengths.numpy(), head_fraction)
        # every training interaction's item (insert draws from them) and, sorted, its key
        # user * (n_items + 1) + item; built in place, a few bytes per interaction at a time
        keep = np.ones(len(seqs.values), dtype=bool)
        for back in range(1, hold_out + 1):
            keep[seqs.offsets[1:] - back] = False
        items = seqs.values[keep]
        keys = np.repeat(np.arange(self.n_users, dtype=np.int64), self.train_lengths.numpy())
        keys *= self.n_items + 1
        keys += items
        keys.sort()
        self.train_items, self._train_keys = torch.from_numpy(items), torch.from_numpy(keys)

    def target(self, split: Split) -> Tensor:
        """(U,) validation or test item of every user."""
        return self.flat[self.history_end(split)]

    def history_end(self, split: Split) -> Tensor:
        """(U,) exclusive end of the input (and masked history) for a split; a final model's
        data has no split (its sequences end at ``train_end``)."""
        if split not in ("valid", "test"):
            raise ValueError(f"split {split!r} is not 'valid' or 'test'")
        if self.final:
            raise ValueError(
                f"{self.seqs.source}: a final model trains on every item; nothing is held out to"
                f" evaluate or predict for {split!r} (predict --split next works)"
            )
        return self.train_end + (0 if split == "valid" else 1)

    def repeated(self, split: Split) -> Tensor:
        """(U,) bool: is the user's validation or test target an item of their own history?"""
        return torch.from_numpy(self.seqs.seen_before(self.history_end(split).numpy()))

    def item_counts(self) -> Tensor:
        """(n_items + 2,) how often each item occurs in the training parts (0 for specials)."""
        return torch.bincount(self.train_items, minlength=self.n_items + 2)

    def in_training(self, users: Tensor, items: Tensor) -> Tensor:
        """Bool mask: is ``items[i]`` in the training part of ``users[i]``'s sequence?"""
        keys = users * (self.n_items + 1) + items
        idx = torch.searchsorted(self._train_keys, keys).clamp(max=len(self._train_keys) - 1)
        return self._train_keys[idx] == keys

    def sample_negatives(self, users: Tensor, n: int, generator: torch.Generator) -> Tensor:
        """(len(users), n) items drawn uniformly from the catalogue, none in the user's training part."""
        users = users[:, None].expand(-1, n).reshape(-1)
        neg = torch.randint(1, self.n_items + 1, users.shape, generator=generator)
        bad = self.in_training(users, neg)
        for _ in range(100):
            if not bad.any():
                break
            neg[bad] = torch.randint(1, self.n_items + 1, (int(bad.sum()),), generator=generator)
            bad[bad.clone()] = self.in_training(users[bad], neg[bad])
        if bad.any():
            user = int(users[bad][0])
            raise ValueError(
                f"{self.seqs.source}: no negative found for user {self.seqs.user_ids[user]} in 100 "
                "draws: the user's training items cover (almost) the whole catalogue"
            )
        return neg.view(-1, n)


def head_tail_labels(train_lengths: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Bool (U,): the ``round(fraction * U)`` users with the longest training sequences are head.

    Ties at the boundary are broken by user index (the earlier user is head), so the head
    set has exactly that size and does not depend on anything but training lengths.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"head fraction must be in [0, 1], got {fraction}")
    n_head = round(fraction * len(train_lengths))
    order = np.lexsort((np.arange(len(train_lengths)), -np.asarray(train_lengths)))
    head = np.zeros(len(train_lengths), dtype=bool)
    head[order[:n_head]] = True
    return head


@dataclass(frozen=True)
class Samples:
    """Training samples: input ``flat[start:end]``, targets ``flat[start + 1:end + 1]``.

    Targets count from position ``first_target`` of the window on (earlier ones were
    trained by an overlapping window).
    """

    user: Tensor
    start: Tensor
    end: Tensor
    first_target: Tensor

    def __len__(self) -> int:
        return len(self.user)


def training_samples(
    data: LeaveOneOut, layout: Literal["user", "prefix"], max_len: int, stride: int = 1
) -> Samples:
    """One sample per user (ICLRec protocol), or windows that cover every prefix (CE family).

    ``user``: the last ``max_len`` training inputs of each user, a target at every position.
    ``prefix``: with start-counted positions and a causal encoder, the output at position t
    of a window is exactly the prefix ending at t, so a sequence up to ``max_len`` + 1 long is
    one window; longer ones get further windows ending every ``stride`` items, each training
    only the targets the previous window did not. ``stride=1`` reproduces "every prefix,
    truncated to its last max_len items" exactly.
    """
    a = data.starts.numpy()
    b = data.train_end.numpy() - 1  # last input position is b - 1; its target is at b
    ok = b - a >= 1
    if layout == "user":
        users = np.flatnonzero(ok)
        start = np.maximum(a[users], b[users] - max_len)
        return _samples(users, start, b[users], np.zeros_like(users))
    if layout != "prefix":
        raise ValueError(f"unknown layout {layout!r}; use 'user' or 'prefix'")
    if not 1 <= stride <= max_len:
        raise ValueError(f"prefix_stride must be in [1, max_len={max_len}], got {stride}")
    n_inputs = np.where(ok, b - a, 0)
    extra = np.where(n_inputs > max_len, -(-(n_inputs - max_len) // stride), 0)
    n_windows = np.where(ok, 1 + extra, 0)
    users = np.repeat(np.arange(len(a)), n_windows)
    k = np.arange(len(users)) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)  # window idx
    end = np.minimum(a[users] + np.minimum(n_inputs[users], max_len) + k * stride, b[users])
    start = np.maximum(a[users], end - max_len)
    prev_end = np.where(k > 0, np.minimum(a[users] + max_len + (k - 1) * stride, b[users]), start)
    return _samples(users, start, end, prev_end - start)


def _samples(users: np.ndarray, start: np.ndarray, end: np.ndarray, first: np.ndarray) -> Samples:
    t = lambda x: torch.as_tensor(x, dtype=torch.long)  # noqa: E731
    return Samples(t(users), t(start), t(end), t(first))


def left_padded(flat: Tensor, start: Tensor, end: Tensor, width: int, shift: int = 0) -> Tensor:
    """(b, width) of ``flat[start + shift:end + shift]``, right-aligned, zero on the left."""
    idx = end[:, None] - width + torch.arange(width)  # (b, width)
    keep = idx >= start[:, None]
    return torch.where(keep, flat[(idx + shift).clamp(min=0, max=len(flat) - 1)], 0)


def width_buckets(lengths: Tensor, max_len: int, chunk_cost: int) -> list[tuple[Tensor, int]]:
    """Group row indices by length into chunks, each run at its longest length (<= max_len),
    in order of width: the grouping with the fewest padded positions plus ``chunk_cost``
    per chunk, exact by dynamic programming over the distinct lengths.

    ``chunk_cost``, in positions, is what one more encoder call costs beyond its positions
    (dispatch, and an embedding gradient): small batches get few chunks, large ones more.
    """
    lengths = lengths.clamp(1, max_len)
    values, counts = torch.unique(lengths, return_counts=True)  # ascending
    width = values.numpy().astype(np.float64)
    below = np.concatenate([[0], np.cumsum(counts.numpy())])  # rows shorter than values[j]
    best, cut = np.zeros(len(width) + 1), np.zeros(len(width) + 1, dtype=np.int64)
    for j in range(1, len(width) + 1):  # one chunk holds distinct lengths i..j-1
        cost = best[:j] + (below[j] - below[:j]) * width[j - 1] + chunk_cost
        cut[j] = int(np.argmin(cost))
        best[j] = cost[cut[j]]
    groups, j = [], len(width)
    while j > 0:
        lo, hi = values[cut[j]], values[j - 1]
        groups.append((torch.nonzero((lengths >= lo) & (lengths <= hi)).squeeze(1), int(hi)))
        j = int(cut[j])
    return groups[::-1]


def make_batch(
    data: LeaveOneOut,
    samples: Samples,
    index: Tensor,
    max_len: int,
    chunk_cost: int = CPU_CHUNK_COST,
) -> Batch:
    """Assemble the samples ``index`` into width-bucketed chunks (see ``width_buckets``)."""
    start, end, first = samples.start[index], samples.end[index], samples.first_target[index]
    users = samples.user[index]
    chunks = []
    for rows, width in width_buckets(end - start, max_len, chunk_cost):
        s, e = start[rows], end[rows]
        items = left_padded(data.flat, s, e, width)
        targets = left_padded(data.flat, s, e, width, shift=1)
        position = torch.arange(width) - (width - (e - s))[:, None]  # index within the window
        targets = torch.where(position >= first[rows][:, None], targets, 0)
        chunks.append(Chunk(rows, users[rows], items, targets))
    return Batch(users, chunks)


def eval_inputs(data: LeaveOneOut, split: Split, users: Tensor, max_len: int) -> Tensor:
    """(b, W) left-padded last ``max_len`` items before the split's target, W = longest in b."""
    end = data.history_end(split)[users]
    start = torch.maximum(data.starts[users], end - max_len)
    return left_padded(data.flat, start, end, int((end - start).max()))


def balanced_share(lengths: Tensor, rank: int, world: int) -> Tensor:
    """Positions of rank ``rank``'s share of a batch whose samples have ``lengths``: dealt
    in order of length, one to each rank in turn, so the ranks get the same number of
    samples (+-1) and nearly the same work, and none waits for another at the gradient
    all-reduce."""
    return torch.argsort(lengths, stable=True)[rank::world]


class TrainLoader:
    """Shuffled training batches for one epoch at a time, with negatives drawn for the loss.

    The sample order comes from ``order_generator`` (default: ``generator``), negatives and
    views from ``generator``, so saving their states makes an epoch replayable. With
    ``shard=(rank, world)`` each batch of ``batch_size`` (the global batch) is dealt into
    ``world`` parts of near-equal size and work (``balanced_share``) and this loader yields
    part ``rank``: every rank sees a disjoint share of the same epoch order (a last batch
    smaller than ``world`` is dropped).
    """

    def __init__(
        self,
        data: LeaveOneOut,
        samples: Samples,
        batch_size: int,
        max_len: int,
        loss: str,
        negatives: int,
        generator: torch.Generator,
        augment: AugmentConfig | None = None,
        order_generator: torch.Generator | None = None,
        shard: tuple[int, int] = (0, 1),
        chunk_cost: int = CPU_CHUNK_COST,
    ) -> None:
        if len(samples) == 0:
            raise ValueError(
                f"{data.seqs.source}: no user has a training sequence of 2 or more items"
            )
        self.data, self.samples, self.batch_size, self.max_len = data, samples, batch_size, max_len
        self.loss, self.negatives, self.generator = loss, negatives, generator
        self.augment = augment  # when given, every chunk carries two augmented views
        self.order_generator = order_generator or generator
        self.rank, self.world = shard
        self.chunk_cost = chunk_cost  # of the device the batches are for (see width_buckets)

    def __len__(self) -> int:
        return -(-len(self.samples) // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order = torch.randperm(len(self.samples), generator=self.order_generator)
        for i in range(0, len(order), self.batch_size):
            index = order[i : i + self.batch_size]
            if len(index) < self.world:
                break
            s = self.samples
            positions = int((s.end[index] - s.start[index] - s.first_target[index]).sum())
            mine = index[balanced_share(s.end[index] - s.start[index], self.rank, self.world)]
            batch = make_batch(self.data, self.samples, mine, self.max_len, self.chunk_cost)
            batch = replace(batch, global_samples=len(index), global_positions=positions)
            yield self._with_views(self._with_negatives(batch))

    def _with_views(self, batch: Batch) -> Batch:
        if self.augment is None:
            return batch
        mask_id = 0 if self.augment.mask_token == "padding" else self.data.n_items + 1
        pool, g = self.data.train_items, self.generator
        view = lambda x: augment(x, self.augment, mask_id, pool, self.max_len, g)  # noqa: E731
        return replace(
            batch, chunks=[replace(c, views=(view(c.items), view(c.items))) for c in batch.chunks]
        )

    def _with_negatives(self, batch: Batch) -> Batch:
        if self.loss == "sampled_ce":
            shared = torch.randint(
                1, self.data.n_items + 1, (self.negatives,), generator=self.generator
            )
            return replace(batch, shared_negatives=shared)
        if self.loss not in ("bce", "bpr"):
            return batch
        chunks = []
        for c in batch.chunks:
            at = c.targets != 0
            neg = torch.zeros(*c.targets.shape, self.negatives, dtype=torch.long)
            users = c.users[:, None].expand_as(c.targets)[at]
            neg[at] = self.data.sample_negatives(users, self.negatives, self.generator)
            chunks.append(replace(c, negatives=neg))
        return replace(batch, chunks=chunks)
