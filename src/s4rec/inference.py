"""Using a trained model: top-k predictions for a split, recommendations for raw-id histories."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from .checkpoint import load_state, model_from_state
from .config import Config
from .data.dataset import LeaveOneOut, Split
from .data.readers import read_text
from .evaluate import Ranker
from .files import atomic_file
from .model import SequenceEncoder


def write_predictions(
    model: SequenceEncoder,
    data: LeaveOneOut,
    split: Split | Literal["next"],
    k: int,
    path: str | Path,
    cfg: Config | None = None,
    fmt: Literal["tsv", "jsonl"] = "tsv",
) -> None:
    """Write every user's top-k (dataset ids, best first) under ``cfg``'s protocol (default:
    ``Config()``'s, history never shown), atomically. ``split``: before the validation or the
    test item, or ``"next"``: after the whole sequence (what to show the user tomorrow).
    ``fmt``: ``user<TAB>item item ...`` lines, or JSON lines ``{"user", "items", "scores"}``,
    which no id can break; TSV refuses ids that contain whitespace."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    cfg = cfg or Config()
    users, items = list(data.seqs.user_ids), list(data.seqs.item_ids)
    if split == "next":
        histories = [[items[i - 1] for i in data.seqs[u].tolist()] for u in range(data.n_users)]
        tops = Recommender(model, items, cfg).recommend(histories, k, cfg.eval.exclude_history)
    else:
        ids, scores = Ranker.from_config(model, data, cfg).top_k(split, k)
        tops = [
            [(items[i - 1], v) for i, v in zip(row, vals, strict=True) if v > float("-inf")]
            for row, vals in zip(ids.tolist(), scores.tolist(), strict=True)
        ]
    if fmt == "tsv":
        spaced = [x for x in (*users, *items) if any(c.isspace() for c in x)]
        if spaced:
            raise ValueError(
                f"id {spaced[0]!r} contains whitespace, which breaks TSV lines: use --format jsonl"
            )
    with atomic_file(path) as f:
        for user, top in zip(users, tops, strict=True):
            if fmt == "tsv":
                f.write(user + "\t" + " ".join(item for item, _ in top) + "\n")
            else:
                row = {"user": user, "items": [i for i, _ in top], "scores": [v for _, v in top]}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def special_items(n_items: int, device: torch.device | str = "cpu") -> Tensor:
    """(n_items + 2,) bool: the ids never recommended, padding (0) and the mask token."""
    blocked = torch.zeros(n_items + 2, dtype=torch.bool, device=device)
    blocked[0] = blocked[-1] = True
    return blocked


def top_k_after(
    model: SequenceEncoder, history: Tensor, k: int, exclude_seen: bool, blocked: Tensor
) -> tuple[Tensor, Tensor]:
    """Scores and internal ids (B, k) of the best items after left-padded histories (B, H)
    of internal ids, best first: the model reads the last ``max_len`` items, ``blocked``
    items and (``exclude_seen``) each history's own are never shown, as the Ranker ranks.
    Plain tensor operations, so the ONNX export traces this same function."""
    z = model(history[:, -model.max_len :], last_only=True)[:, -1]  # (B, d)
    scores = (z @ model.item_emb.weight.T).masked_fill(blocked, float("-inf"))
    if exclude_seen:
        scores = scores.scatter(1, history, float("-inf"))
    return torch.topk(scores, min(k, len(blocked) - 2), dim=1)


def read_histories(path: str | Path) -> list[list[str]]:
    """Histories from a file, one per line: space-separated raw ids, or a JSON list of ids
    (for ids that contain spaces). A malformed line is an error naming it."""
    histories = []
    text = read_text(path)
    lines = text.removesuffix("\n").split("\n") if text else []
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("["):
            histories.append(line.split())
            continue
        try:
            ids = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}: not a JSON list of ids ({err.msg})") from None
        if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
            raise ValueError(f"{path}, line {number}: expected a JSON list of item ids")
        histories.append([str(i) for i in ids])
    return histories


def raw_id(item: object) -> str:
    """A raw item id as the vocabulary holds it: a string, or an integer read as its text."""
    if isinstance(item, str):
        return item
    if isinstance(item, int | np.integer) and not isinstance(item, bool):
        return str(item)
    raise ValueError(f"item ids are strings (or integers read as text), got {item!r}")


class Recommender:
    """A trained model that recommends for histories of raw item ids (the run's vocabulary).

    >>> rec = Recommender.load("runs/x/best.pt")
    >>> rec.recommend([["sku1", "sku7"], []], k=10)   # per history: [(item, score), ...]

    Histories are scored in batches of ``batch`` by length, the way evaluation scores users:
    each keeps its most recent ``max_len`` items, and with ``exclude_seen`` none of its items
    is recommended. An empty history gets the items ranked by how often they occur in the
    training data (the score is that count).
    """

    def __init__(
        self, model: SequenceEncoder | None, item_ids: list[str], cfg: Config | None = None,
        item_counts: Tensor | None = None, batch: int = 1024, onnx: Any = None,
        about: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if model is not None and model.item_emb.num_embeddings != len(item_ids) + 2:
            raise ValueError(f"the model scores {model.item_emb.num_embeddings - 2} items but"
                             f" {len(item_ids)} item ids were given")  # fmt: skip
        self.model, self.item_ids, self.batch = model, list(item_ids), batch
        self.cfg = cfg or Config()  # the run's configuration (its eval.* protocol)
        self.index = {raw: i + 1 for i, raw in enumerate(self.item_ids)}
        self.item_counts = item_counts  # (n_items + 2,) training counts; None in old checkpoints
        self.onnx, self.about = onnx, about or {}  # an onnxruntime session ranks instead
        self.device = torch.device("cpu") if model is None else model.item_emb.weight.device
        if model is not None:
            model.eval()

    @classmethod
    def load(
        cls, path: str | Path, device: str = "cpu", sets: Sequence[str] = (), batch: int = 1024
    ) -> Recommender:
        """The encoder of a checkpoint (``best.pt``, ``last.pt``), read without running code;
        ``sets``: ``eval.*`` overrides of the run's protocol."""
        state = load_state(path)
        cfg, model, item_ids = model_from_state(state, str(path), sets, device)
        return cls(model, item_ids, cfg, state.get("item_counts"), batch)

    @classmethod
    def from_onnx(cls, path: str | Path, batch: int = 1024) -> Recommender:
        """A recommender that ranks with an exported ONNX graph (``s4rec export``) through
        onnxruntime, without the checkpoint: its k and protocol are the export's."""
        import onnxruntime as ort  # the export extra

        if not Path(path).is_file():
            raise FileNotFoundError(errno.ENOENT, "no such ONNX file", str(path))
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own error types: a file it cannot read
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"{path}: not a readable ONNX graph ({first})") from None
        meta = session.get_modelmeta().custom_metadata_map
        if "s4rec.item_ids" not in meta:
            raise ValueError(f"{path}: not an s4rec export (no s4rec.* metadata)")
        counts = json.loads(meta["s4rec.item_counts"])
        return cls(None, json.loads(meta["s4rec.item_ids"]), None,
                   torch.tensor(counts) if counts else None, batch, session,
                   json.loads(meta["s4rec.about"]))  # fmt: skip

    def ids(self, history: Iterable[str | int], on_unknown: str = "error") -> list[int]:
        """Internal ids of a raw-id history; unknown ids are an error listing them, or are
        dropped (``on_unknown="skip"``)."""
        if on_unknown not in ("error", "skip"):
            raise ValueError(f"on_unknown must be 'error' or 'skip', got {on_unknown!r}")
        if isinstance(history, str):
            raise ValueError(f"a history is a list of item ids, not the string {history!r}")
        raw = [raw_id(h) for h in history]  # once: a generator is read here
        unknown = [h for h in raw if h not in self.index]
        if unknown and on_unknown == "error":
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(
                f"unknown item id(s) {unknown[:10]}{more}: not in the model's catalogue"
            )
        return [self.index[h] for h in raw if h in self.index]

    @torch.no_grad()
    def recommend(
        self,
        histories: Iterable[Iterable[str | int]],
        k: int = 10,
        exclude_seen: bool = True,
        on_unknown: str = "error",
    ) -> list[list[tuple[str, float]]]:
        """Per history, the top ``k`` (raw item id, score), best first. Ids are strings, as
        the vocabulary has them; an integer is read as its text."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be an integer of at least 1, got {k!r}")
        if not isinstance(exclude_seen, bool):
            raise ValueError(f"exclude_seen must be True or False, got {exclude_seen!r}")
        if isinstance(histories, str):
            raise ValueError("histories is a list of histories, each a list of item ids, not a"
                             f" string: [{histories!r}]?")  # fmt: skip
        k = int(k)
        encoded = [self.ids(h, on_unknown) for h in histories]
        out: list[list[tuple[str, float]]] = [[] for _ in encoded]
        order = sorted((i for i, h in enumerate(encoded) if h), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.batch):
            rows = order[start : start + self.batch]
            tops = self._top_k([encoded[i] for i in rows], k, exclude_seen)
            for i, top in zip(rows, tops, strict=True):
                out[i] = top
        empty = [i for i, h in enumerate(encoded) if not h]
        if empty:
            top = self._popular(k)
            for i in empty:
                out[i] = top
        return out

    def _top_k(
        self, histories: list[list[int]], k: int, exclude_seen: bool
    ) -> list[list[tuple[str, float]]]:
        width = max(len(h) for h in histories)
        seen = torch.zeros(len(histories), width, dtype=torch.long)
        for row, h in enumerate(histories):
            seen[row, width - len(h) :] = torch.tensor(h)
        if self.onnx is not None:
            return self._onnx_top_k(seen, k, exclude_seen)
        assert self.model is not None  # a recommender without an ONNX session has a model
        blocked = special_items(len(self.item_ids), self.device)
        vals, idx = top_k_after(self.model, seen.to(self.device), k, exclude_seen, blocked)
        return [self._named(i, v) for i, v in zip(idx.tolist(), vals.tolist(), strict=True)]

    def _onnx_top_k(
        self, seen: Tensor, k: int, exclude_seen: bool
    ) -> list[list[tuple[str, float]]]:
        if k > self.about["k"] or exclude_seen != self.about["exclude_seen"]:
            raise ValueError(
                f"this ONNX graph returns the top {self.about['k']} with exclude_seen="
                f"{self.about['exclude_seen']}: asked for k={k}, exclude_seen={exclude_seen}"
            )
        vals, idx = self.onnx.run(None, {"history": seen.numpy()})
        return [self._named(i[:k], v[:k]) for i, v in zip(idx.tolist(), vals.tolist(), strict=True)]

    def _popular(self, k: int) -> list[tuple[str, float]]:
        if self.item_counts is None:
            raise ValueError(
                "an empty history is answered with the training popularity, which this"
                " recommender has no counts of (a checkpoint older than them, or item_counts"
                " not given): give at least one item id"
            )
        counts = self.item_counts.double().clone()
        counts[0] = counts[-1] = float("-inf")  # padding, mask token
        vals, idx = counts.topk(min(k, len(self.item_ids)))
        return self._named(idx.tolist(), vals.tolist())

    def _named(self, idx: list[int], vals: list[float]) -> list[tuple[str, float]]:
        return [
            (self.item_ids[i - 1], float(v))
            for i, v in zip(idx, vals, strict=True)
            if v > float("-inf")
        ]
