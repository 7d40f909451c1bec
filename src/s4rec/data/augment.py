"""Sequence augmentations of App. A (crop, mask, reorder, insert), batched over left-padded rows.

Each function takes items (B, W) left-padded with 0 and a generator, and returns a new
left-padded tensor; a row's real items are its last ``n`` columns.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import OPERATORS, AugmentConfig


def _lengths(items: Tensor) -> Tensor:
    return (items != 0).sum(1)


def spans(items: Tensor) -> Tensor:
    """(B,) columns from each row's first item to the end: its length, counting the padding
    ids that ``augment.mask_token=padding`` writes inside it."""
    real = items != 0
    return torch.where(real.any(1), items.shape[1] - real.int().argmax(1), 0)


def _trim(items: Tensor) -> Tensor:
    """Drop leading columns that are padding in every row (keep at least one column)."""
    width = max(int(spans(items).max()), 1)
    return items[:, items.shape[1] - width :]


def _randint_below(high: Tensor, g: torch.Generator) -> Tensor:
    """Uniform integers in [0, high) per element (high >= 1)."""
    return (torch.rand(high.shape, generator=g) * high).long().clamp(max=high - 1)


def _smallest(keys: Tensor, k: Tensor) -> Tensor:
    """Bool (B, W): the ``k[b]`` smallest keys of each row (keys distinct, k <= W)."""
    ordered = torch.cat([keys.sort(1).values, keys.new_full((len(keys), 1), float("inf"))], 1)
    return keys < ordered.gather(1, k[:, None])


def crop(items: Tensor, rate: float, g: torch.Generator) -> Tensor:
    """Keep a random contiguous run of ``max(1, int(rate * n))`` items."""
    W = items.shape[1]
    n = _lengths(items)
    keep = (n * rate).long().clamp(min=1)
    offset = _randint_below(n - keep + 1, g)
    cols = torch.arange(W)
    src = (W - n + offset)[:, None] + cols - (W - keep)[:, None]  # source column of output col
    out = items.gather(1, src.clamp(0, W - 1))
    return _trim(torch.where(cols >= (W - keep)[:, None], out, 0))


def crop_out(items: Tensor, rate: float, g: torch.Generator) -> Tensor:
    """Eq. 16: cut out a contiguous run of ``n - max(1, int(rate * n))`` items starting at a
    random place, keeping the items before it and after it, in order."""
    W = items.shape[1]
    n = _lengths(items)
    keep = (n * rate).long().clamp(min=1)
    start = (W - n + _randint_below(keep + 1, g))[:, None]  # first cut column
    cols = torch.arange(W)
    cut = (cols < (W - n)[:, None]) | ((cols >= start) & (cols < start + (n - keep)[:, None]))
    out = items.gather(1, torch.argsort((~cut).long(), dim=1, stable=True))  # kept ones last
    return _trim(torch.where(cols >= (W - keep)[:, None], out, 0))


def mask(items: Tensor, rate: float, mask_id: int, g: torch.Generator) -> Tensor:
    """Replace ``int(rate * n)`` randomly chosen items by ``mask_id``."""
    n = _lengths(items)
    keys = torch.rand(items.shape, generator=g).masked_fill(items == 0, 2.0)
    return torch.where(_smallest(keys, (n * rate).long()), mask_id, items)


def reorder(items: Tensor, rate: float, g: torch.Generator) -> Tensor:
    """Shuffle a random contiguous run of ``int(rate * n)`` items."""
    B, W = items.shape
    n = _lengths(items)
    size = (n * rate).long()
    start = W - n + _randint_below(n - size + 1, g)  # (B,)
    cols = torch.arange(W).expand(B, W).float()
    inside = (cols >= start[:, None]) & (cols < (start + size)[:, None])
    keys = torch.where(inside, start[:, None] + torch.rand(B, W, generator=g) * size[:, None], cols)
    return items.gather(1, keys.argsort(1))


def insert(items: Tensor, rate: float, pool: Tensor, max_len: int, g: torch.Generator) -> Tensor:
    """Insert ``max(1, int(rate * n))`` items drawn from ``pool`` (training items) at random places.

    The original items keep their order; the result keeps its last ``max_len`` items.
    """
    B, W = items.shape
    n = _lengths(items)
    m = (n * rate).long().clamp(min=1)
    total = n + m
    width = int(total.max())
    cols = torch.arange(width)
    real = cols >= (width - total)[:, None]  # (B, width) output positions in use
    keys = torch.rand(B, width, generator=g).masked_fill(~real, 2.0)
    inserted = _smallest(keys, m)  # exactly m of the real positions
    rank = torch.cumsum((real & ~inserted).long(), 1) - 1  # index among original items
    original = items.gather(1, (W - n[:, None] + rank).clamp(0, W - 1))
    drawn = pool[torch.randint(len(pool), (B, width), generator=g)]
    out = torch.where(inserted, drawn, torch.where(real, original, 0))
    return _trim(out[:, -max_len:])


def augment(
    items: Tensor, cfg: AugmentConfig, mask_id: int, pool: Tensor, max_len: int, g: torch.Generator
) -> Tensor:
    """One view: each row gets one operator drawn uniformly from ``cfg.operators``."""
    unknown = set(cfg.operators) - set(OPERATORS)
    if unknown or not cfg.operators:
        raise ValueError(f"augmentation operators must be a non-empty subset of {OPERATORS}")
    choice = torch.randint(len(cfg.operators), (len(items),), generator=g)
    parts, rows = [], []
    for k, name in enumerate(cfg.operators):
        idx = torch.nonzero(choice == k).squeeze(1)
        if len(idx) == 0:
            continue
        x = items[idx]
        if name == "crop":
            x = crop(x, cfg.crop, g) if cfg.crop_style == "keep" else crop_out(x, cfg.crop, g)
        elif name == "mask":
            x = mask(x, cfg.mask, mask_id, g)
        elif name == "reorder":
            x = reorder(x, cfg.reorder, g)
        else:
            x = insert(x, cfg.insert, pool, max_len, g)
        parts.append(x)
        rows.append(idx)
    width = max(p.shape[1] for p in parts)
    out = torch.zeros(len(items), width, dtype=items.dtype)
    for idx, x in zip(rows, parts, strict=True):
        out[idx, width - x.shape[1] :] = x
    return _trim(out)
