"""Deterministic synthetic sequences with planted latent intents.

Generative process (all draws from one ``numpy.random.Generator(seed)``):

1. Intents get Zipf-like user shares and item-group sizes; each group is a cycle of
   items (a random slice of a shuffled catalogue).
2. Lengths follow a truncated power law on ``[min_len, max_len]``; each user's intent
   is drawn independently of its length, except that a ``length_coupling`` fraction of
   users get their intents re-dealt by length (longest users, lowest-numbered intents),
   so that head users gather in some intents as they do on real data.
3. A user walks forward along its intent's cycle from a random start, each step moving
   1, 2 or 3 places (``step_probs``) and never wrapping, so no item repeats.
4. A ``jump`` fraction of positions instead holds a globally popular item (Zipf over a
   random item order), distinct from the user's other items.
5. Items nobody touched are dropped and the rest renumbered densely from 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from s4rec.data.sequences import Sequences


@dataclass(frozen=True)
class SyntheticData:
    """Generated sequences with the planted intent of each user and each item."""

    sequences: Sequences
    intents: np.ndarray  # (n_users,) int64 planted intent of each user
    item_intents: np.ndarray  # (n_items + 1,) int64 owning intent of each item, -1 at 0


def _validate(
    n_users: int,
    n_items: int,
    n_intents: int,
    min_len: int,
    max_len: int,
    jump: float,
    zipf: float,
    length_alpha: float,
    step_probs: tuple[float, ...],
    length_coupling: float,
) -> None:
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    if n_intents < 1:
        raise ValueError(f"n_intents must be >= 1, got {n_intents}")
    if min_len < 3:
        raise ValueError(f"min_len must be >= 3, got {min_len}")
    if max_len < min_len:
        raise ValueError(f"max_len ({max_len}) must be >= min_len ({min_len})")
    if n_items < n_intents * min_len:
        raise ValueError(
            f"n_items ({n_items}) must be >= n_intents * min_len ({n_intents * min_len})"
        )
    if 2 * max_len > n_items:
        raise ValueError(f"max_len ({max_len}) must be <= n_items // 2 ({n_items // 2})")
    if not 0.0 <= jump < 1.0:
        raise ValueError(f"jump must lie in [0, 1), got {jump}")
    if zipf < 0.0:
        raise ValueError(f"zipf must be >= 0, got {zipf}")
    if not 0.0 <= length_coupling <= 1.0:
        raise ValueError(f"length_coupling must lie in [0, 1], got {length_coupling}")
    if length_alpha <= 0.0:
        raise ValueError(f"length_alpha must be > 0, got {length_alpha}")
    probs = np.asarray(step_probs, dtype=np.float64)
    if probs.ndim != 1 or len(probs) == 0 or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError(f"step_probs must be non-negative with a positive sum, got {step_probs}")


def _split(total: int, weights: np.ndarray, floor: int) -> np.ndarray:
    """Integer sizes summing to ``total``, roughly proportional to ``weights``, each >= floor."""
    spare = total - floor * len(weights)
    raw = spare * weights / weights.sum()
    sizes = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - sizes), kind="stable")
    sizes[order[: spare - int(sizes.sum())]] += 1
    return sizes + floor


def _lengths(rng: np.random.Generator, n: int, lo: int, hi: int, alpha: float) -> np.ndarray:
    """Truncated power law on the integers ``lo..hi`` (inverse-CDF sampling)."""
    tail = (lo / (hi + 1)) ** alpha
    x = lo * (1.0 - rng.random(n) * (1.0 - tail)) ** (-1.0 / alpha)
    return np.clip(np.floor(x), lo, hi).astype(np.int64)


def _within(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each flat entry and its position inside that row."""
    starts = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    row = np.repeat(np.arange(len(counts)), counts)
    return row, np.arange(int(counts.sum())) - starts[row]


def _walks(
    rng: np.random.Generator, k: np.ndarray, size: np.ndarray, step_probs: np.ndarray
) -> np.ndarray:
    """Forward positions on cycles of ``size``, ``k`` per user, never wrapping."""
    row, pos = _within(k)
    steps = rng.choice(np.arange(1, len(step_probs) + 1), size=len(row), p=step_probs)
    steps[pos == 0] = 0
    span = np.bincount(row, weights=steps, minlength=len(k))
    steps[(span >= size)[row] & (pos > 0)] = 1  # too long for its cycle: unit steps
    walked = np.cumsum(steps)
    walked -= np.repeat(walked[np.cumsum(k) - k], k)
    start = (rng.random(len(k)) * size).astype(np.int64)
    return (start[row] + walked) % size[row]


def _noise(
    rng: np.random.Generator,
    counts: np.ndarray,
    taken: np.ndarray,
    taken_row: np.ndarray,
    cdf: np.ndarray,
    order: np.ndarray,
) -> np.ndarray:
    """Popular items, ``counts`` per user, distinct within a user and from ``taken``."""
    n_items = len(order)
    row = np.repeat(np.arange(len(counts)), counts)
    items = order[np.searchsorted(cdf, rng.random(len(row)), side="right")]
    for rounds in range(1000):
        keys = np.concatenate([taken_row * (n_items + 1) + taken, row * (n_items + 1) + items])
        srt = np.argsort(keys, kind="stable")  # ``taken`` first, so they win ties
        dup = np.zeros(len(keys), dtype=bool)
        dup[srt[1:]] = keys[srt[1:]] == keys[srt[:-1]]
        redo = dup[len(taken) :]
        n_redo = int(redo.sum())
        if n_redo == 0:
            return items
        if rounds < 20:
            draw = order[np.searchsorted(cdf, rng.random(n_redo), side="right")]
        else:  # rare long users under a steep Zipf: fall back to uniform draws
            draw = rng.integers(1, n_items + 1, size=n_redo)
        items[redo] = draw
    raise RuntimeError("could not draw distinct popular items")  # pragma: no cover


def make_synthetic(
    n_users: int = 2000,
    n_items: int = 500,
    n_intents: int = 8,
    seed: int = 0,
    min_len: int = 5,
    max_len: int = 60,
    jump: float = 0.2,
    zipf: float = 1.0,
    length_alpha: float = 1.2,
    step_probs: tuple[float, ...] = (0.6, 0.25, 0.15),
    length_coupling: float = 0.0,
    dense_catalogue: bool = True,
) -> SyntheticData:
    """Sequences where each user follows one intent's item cycle, with popular-item jumps.

    ``jump`` is the fraction of positions holding a Zipf(``zipf``)-popular item,
    ``length_alpha`` the power-law exponent of lengths, ``step_probs[j]`` the chance of
    moving ``j + 1`` places along the cycle, ``length_coupling`` the fraction of users
    whose intent is tied to their length (0: independent). With ``dense_catalogue`` the items
    never drawn are dropped and the rest renumbered, so ``sequences.n_items <= n_items``;
    without, the catalogue holds all ``n_items`` (a real catalogue has items nobody chose).
    """
    _validate(
        n_users, n_items, n_intents, min_len, max_len, jump, zipf, length_alpha, step_probs,
        length_coupling,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    probs = np.asarray(step_probs, dtype=np.float64)
    probs = probs / probs.sum()
    ranks = np.arange(1, n_intents + 1, dtype=np.float64)

    # Intents: item groups of uneven size and uneven user shares (in a different order).
    group = _split(n_items, ranks**-0.5, min_len)
    group_start = np.cumsum(group) - group
    share = rng.permutation(ranks**-0.8)
    share /= share.sum()
    slot_item = rng.permutation(n_items) + 1  # cycle slot -> item id
    item_intents = np.full(n_items + 1, -1, dtype=np.int64)
    item_intents[slot_item] = np.repeat(np.arange(n_intents), group)

    # Users: long-tailed lengths, intents independent of length unless coupled.
    lengths = _lengths(rng, n_users, min_len, max_len, length_alpha)
    intents = rng.choice(n_intents, size=n_users, p=share).astype(np.int64)
    if length_coupling > 0:
        coupled = np.flatnonzero(rng.random(n_users) < length_coupling)
        longest_first = coupled[np.argsort(-lengths[coupled], kind="stable")]
        intents[longest_first] = np.sort(intents[coupled])
    size = group[intents]
    n_jump = rng.binomial(lengths, jump)
    k = np.clip(lengths - n_jump, 2, size)
    n_jump = lengths - k

    # In-intent walks, then distinct popular jumps.
    walk_row = np.repeat(np.arange(n_users), k)
    walk = slot_item[group_start[intents][walk_row] + _walks(rng, k, size, probs)]
    weights = np.arange(1, n_items + 1, dtype=np.float64) ** -zipf
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    pop_order = rng.permutation(n_items) + 1  # popularity rank -> item id
    jumps = _noise(rng, n_jump, walk, walk_row, cdf, pop_order)

    # Interleave: jumps sit at random positions, walk order is kept.
    row, pos = _within(lengths)
    shuffled = np.lexsort((rng.random(len(row)), row))
    rank = np.empty(len(row), dtype=np.int64)
    rank[shuffled] = pos
    is_jump = rank < n_jump[row]
    values = np.empty(len(row), dtype=np.int64)
    values[is_jump] = jumps
    values[~is_jump] = walk

    used = np.zeros(n_items + 1, dtype=bool)
    used[values] = True
    used[0] = False
    if dense_catalogue and not used[1:].all():
        new_id = np.cumsum(used)
        values = new_id[values]
        item_intents = np.concatenate([[-1], item_intents[used]])

    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n_kept = len(item_intents) - 1
    seqs = Sequences(
        offsets,
        values,
        [str(u) for u in range(1, n_users + 1)],
        [str(i) for i in range(1, n_kept + 1)],
        source=f"synthetic(seed={seed})",
    )
    return SyntheticData(seqs, intents, item_intents)


def plant_repeats(seqs: Sequences, share: float, window: int = 10, seed: int = 0) -> Sequences:
    """A copy of ``seqs`` where a ``share`` of positions re-consume an earlier item.

    Every position but a user's first is, with probability ``share``, replaced by the item
    at one of the (up to) ``window`` positions before it, drawn uniformly: repeat consumption
    with a recency bias, as in check-in or grocery logs. Positions are filled oldest first,
    so a copied item is one the user really had before. The catalogue is kept as it is.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must lie in [0, 1], got {share}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rng = np.random.default_rng(seed)
    values = seqs.values.copy()
    starts, lengths = seqs.offsets[:-1], seqs.lengths
    for pos in range(1, int(lengths.max(initial=0))):
        users = np.flatnonzero((lengths > pos) & (rng.random(len(lengths)) < share))
        back = rng.integers(1, min(window, pos) + 1, size=len(users))
        values[starts[users] + pos] = values[starts[users] + pos - back]
    return Sequences(
        seqs.offsets.copy(), values, seqs.user_ids, seqs.item_ids, f"{seqs.source}+repeats({share})"
    )


def make_scale_synthetic(
    n_users: int = 1_000_000, n_items: int = 200_000, seed: int = 0, max_len: int = 200
) -> SyntheticData:
    """``make_synthetic`` at benchmark scale: long-tailed lengths (power law on
    ``5..max_len``, capped at ``n_items // 2``), long-tailed item popularity (Zipf jumps, uneven
    intents), one intent per 2,000 items (at least 8) and head users gathered in some intents
    (``length_coupling=0.5``). The catalogue keeps all ``n_items``, drawn or not, so that
    datasets with different numbers of users rank the same items. Vectorised: 1M users x 200k
    items take about 20 s and 1.2 GB."""
    n_intents = min(max(8, n_items // 2000), n_items // 5)
    return make_synthetic(
        n_users=n_users, n_items=n_items, n_intents=n_intents, seed=seed,
        max_len=min(max_len, n_items // 2), length_coupling=0.5, dense_catalogue=False,
    )  # fmt: skip
