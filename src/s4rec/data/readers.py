"""Readers and writers for sequence text and raw interaction logs.

Sequence text (S3-Rec format): one line per user, ``user_id item_id item_id ...``, positive
integers, items oldest first. Raw logs (CSV/TSV/Parquet, MovieLens ``ratings.dat``, Amazon 2014
ratings CSV and review JSON lines, Yelp reviews) are read into :class:`Interactions` tables, which
:mod:`s4rec.data.preprocess` turns into :class:`Sequences`.
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from s4rec.data.sequences import Sequences
from s4rec.files import write_text_atomic

FORMATS = (
    "auto",
    "csv",
    "tsv",
    "parquet",
    "movielens",
    "amazon-ratings",
    "amazon-reviews",
    "yelp",
)

_NOT_DIGITS = re.compile(r"[^0-9 \t\r\n]")


class DataError(ValueError):
    """Malformed input; ``str()`` reads ``file:line: message``."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Interactions:
    """A raw interaction log, one row per event, rows in file order.

    ``users`` and ``items`` hold raw ids as ``str`` (object arrays); ``times`` is int64 or
    float64; ``lines`` gives the 1-based source line of each row (None when rows have no line,
    e.g. Parquet).
    """

    users: np.ndarray
    items: np.ndarray
    times: np.ndarray
    source: str
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)

    def line_of(self, row: int) -> int | None:
        """Source line of a row, if known."""
        return None if self.lines is None else int(self.lines[row])


def vocab_path(path: str | os.PathLike) -> Path:
    """The vocabulary file that sits beside a sequence text file: ``<stem>.vocab.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.vocab.json")


# ---------------------------------------------------------------- sequence text


def read_sequence_text(path: str | os.PathLike) -> Sequences:
    """Read a sequence text file, strictly validated.

    Internal item ids are the sorted distinct file ids mapped to 1..n (the identity for
    contiguous files). Raw ids are the integers as strings, or come from ``<stem>.vocab.json``
    when that file sits beside ``path``. Users keep file order.
    """
    path = Path(path)
    text = path.read_text(encoding="ascii", errors="replace")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError(path, None, "file is empty")
    if _NOT_DIGITS.search(text):
        _raise_bad_token(path, lines)
    counts = np.fromiter((len(s.split()) for s in lines), dtype=np.int64, count=len(lines))
    short = np.flatnonzero(counts < 2)
    if len(short):
        k = int(short[0])
        what = "blank line" if counts[k] == 0 else "user id without items"
        raise DataError(path, k + 1, what)
    try:
        tokens = np.array(text.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        _raise_bad_token(path, lines)
    starts = np.zeros(len(lines), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    bad = np.flatnonzero(tokens <= 0)
    if len(bad):
        k = int(np.searchsorted(starts, bad[0], side="right"))
        kind = "user" if bad[0] == starts[k - 1] else "item"
        raise DataError(path, k, f"{kind} id {tokens[bad[0]]} is not a positive integer")
    users = tokens[starts]
    is_item = np.ones(len(tokens), dtype=bool)
    is_item[starts] = False
    items = tokens[is_item]
    _check_unique_users(path, users)
    uniq = np.unique(items)
    values = np.searchsorted(uniq, items) + 1
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(counts - 1, out=offsets[1:])
    user_ids = [str(u) for u in users.tolist()]
    item_ids = [str(i) for i in uniq.tolist()]
    vocab = vocab_path(path)
    if vocab.exists():
        user_ids, item_ids = _apply_vocab(vocab, users, uniq)
    return Sequences(offsets, values, user_ids, item_ids, str(path))


def _raise_bad_token(path: Path, lines: list[str]) -> NoReturn:
    """Find and report the first token that is not a plain positive integer."""
    for n, line in enumerate(lines, start=1):
        for j, tok in enumerate(line.split()):
            if not tok.isascii() or not tok.isdigit():
                kind = "user" if j == 0 else "item"
                raise DataError(path, n, f"{kind} id {tok!r} is not a positive integer")
            if len(tok.lstrip("0")) > 18:
                raise DataError(path, n, f"id {tok!r} is too large")
    raise DataError(path, None, "unreadable sequence text")


def _check_unique_users(path: Path, users: np.ndarray) -> None:
    order = np.argsort(users, kind="stable")
    same = np.flatnonzero(users[order][1:] == users[order][:-1])
    if len(same):
        first = order[same + 1].min()
        prev = int(np.flatnonzero(users == users[first])[0])
        raise DataError(path, int(first) + 1, f"user {users[first]} already on line {prev + 1}")


def _apply_vocab(vocab: Path, users: np.ndarray, items: np.ndarray) -> tuple[list[str], list[str]]:
    """Map file user/item ids (1-based positions in the vocabulary) to raw ids."""
    try:
        data = json.loads(vocab.read_text(encoding="utf-8"))
        raw_users, raw_items = list(data["users"]), list(data["items"])
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(vocab, None, f"invalid vocabulary file ({e})") from e
    if users.max() > len(raw_users) or items.max() > len(raw_items):
        raise DataError(vocab, None, "vocabulary does not cover the ids in the sequence file")
    return [str(raw_users[u - 1]) for u in users], [str(raw_items[i - 1]) for i in items]


def write_sequence_text(seqs: Sequences, path: str | os.PathLike) -> Path:
    """Write ``seqs`` as sequence text plus ``<stem>.vocab.json``, both atomically.

    Line ``u`` is ``u item item ...`` with internal ids; the vocabulary maps user ``u`` to
    ``users[u - 1]`` and item ``i`` to ``items[i - 1]`` so that reading back restores raw ids.
    """
    path = Path(path)
    empty = np.flatnonzero(seqs.lengths == 0)
    if len(empty):
        raise ValueError(f"user {seqs.user_ids[empty[0]]} has no items; cannot write it")
    vocab = {
        "users": list(seqs.user_ids),
        "items": list(seqs.item_ids),
        "source": seqs.source,
        "created_by": "s4rec.data.readers.write_sequence_text",
    }
    write_text_atomic(vocab_path(path), json.dumps(vocab, ensure_ascii=False) + "\n")
    values = seqs.values.tolist()
    off = seqs.offsets.tolist()
    out = [f"{u + 1} " + " ".join(map(str, values[off[u] : off[u + 1]])) for u in range(len(seqs))]
    write_text_atomic(path, "\n".join(out) + "\n")
    return path


# ---------------------------------------------------------------- raw interaction logs


def read_interactions(
    path: str | os.PathLike,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = "timestamp",
    sep: str | None = None,
) -> Interactions:
    """Read a CSV/TSV file with a header row, or a Parquet file, into :class:`Interactions`.

    ``sep`` defaults to ``','`` for ``.csv`` and ``'\\t'`` for ``.tsv``. Timestamps must be
    numeric; with ``time_col=None`` all times are 0 and file order alone orders events.
    """
    path = Path(path)
    cols = [user_col, item_col] + ([time_col] if time_col else [])
    if path.suffix == ".parquet":
        return _read_parquet(path, cols)
    if sep is None:
        sep = {".csv": ",", ".tsv": "\t"}.get(path.suffix)
        if sep is None:
            raise DataError(path, None, "cannot infer the separator; pass sep= (or use .csv/.tsv)")
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=sep)
        header = next(reader, None)
        if header is None:
            raise DataError(path, None, "file is empty (a header row is required)")
        missing = [c for c in cols if c not in header]
        if missing:
            raise DataError(path, 1, f"missing column(s) {missing}; the header has {header}")
        fields = [header.index(c) for c in cols]
        cols, lines = _collect(path, reader, len(header), fields)
    return _table(path, cols[0], cols[1], cols[2] if time_col else None, lines)


def _collect(
    path: Path, reader: Any, width: int, fields: list[int]
) -> tuple[list[list[str]], list[int]]:
    """The ``fields`` columns of a csv reader's rows, checking each row's field count."""
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if len(row) != width:
            raise DataError(path, reader.line_num, f"expected {width} fields, found {len(row)}")
        rows.append(row)
        lines.append(reader.line_num)
    return [[r[j] for r in rows] for j in fields], lines


def _table(
    path: Path, users: list, items: list, times: list | None, lines: list[int] | None
) -> Interactions:
    """Validate raw id and time columns and build an :class:`Interactions`."""
    if not users:
        raise DataError(path, None, "no interactions in file")
    line_arr = None if lines is None else np.asarray(lines, dtype=np.int64)
    cols = {"user": np.array(users, dtype=object), "item": np.array(items, dtype=object)}
    for name, col in cols.items():
        empty = np.flatnonzero(col == "")
        if len(empty):
            raise DataError(path, _line(line_arr, empty[0]), f"empty {name} id")
    if times is None:
        time_arr = np.zeros(len(users), dtype=np.int64)
    else:
        time_arr = _parse_times(path, times, line_arr)
    return Interactions(cols["user"], cols["item"], time_arr, str(path), line_arr)


def _line(lines: np.ndarray | None, row: int) -> int | None:
    return None if lines is None else int(lines[row])


def _parse_times(path: Path, values: list, lines: np.ndarray | None) -> np.ndarray:
    """Numeric timestamps as int64 when all are integers, else float64."""
    arr = np.array(values)
    for dtype in (np.int64, np.float64):
        if arr.dtype.kind in "US":
            try:
                arr = arr.astype(dtype)
            except (ValueError, OverflowError):
                continue
    if arr.dtype.kind not in "iuf":
        row = next((r for r, v in enumerate(values) if not _is_number(v)), None)
        if row is None:
            raise DataError(path, None, "timestamps are not all numeric")
        raise DataError(path, _line(lines, row), f"timestamp {values[row]!r} is not numeric")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        row = int(bad[0])
        raise DataError(path, _line(lines, row), f"timestamp {values[row]!r} is not finite")
    return arr.astype(np.float64)


def _is_number(v: object) -> bool:
    if isinstance(v, bool):
        return False
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _read_parquet(path: Path, cols: list[str]) -> Interactions:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError(
            "reading Parquet needs pyarrow: pip install pyarrow (or pip install s4rec[parquet])"
        ) from e
    names = pq.read_schema(path).names
    missing = [c for c in cols if c not in names]
    if missing:
        raise DataError(path, None, f"missing column(s) {missing}; the file has {names}")
    table = pq.read_table(path, columns=cols)
    data = [table.column(c).to_pylist() for c in cols]
    ids = [["" if v is None else str(v) for v in col] for col in data[:2]]
    return _table(path, *ids, data[2] if len(cols) == 3 else None, None)


def read_movielens_ratings(path: str | os.PathLike) -> Interactions:
    """Read MovieLens ``ratings.dat`` (``user::item::rating::timestamp``); every rating counts."""
    path = Path(path)
    body = path.read_text(encoding="latin-1").replace("\r\n", "\n").removesuffix("\n")
    lines = body.split("\n") if body else []
    seps = np.fromiter((s.count("::") for s in lines), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero(seps != 3)
    if len(bad):
        n = int(bad[0])
        raise DataError(path, n + 1, f"expected 4 '::'-separated fields, found {seps[n] + 1}")
    fields = body.replace("::", "\n").split("\n") if body else []
    return _table(path, fields[0::4], fields[1::4], fields[3::4], list(range(1, len(lines) + 1)))


def read_amazon_ratings(path: str | os.PathLike) -> Interactions:
    """Read an Amazon 2014 ratings-only CSV without header: ``user,item,rating,timestamp``."""
    path = Path(path)
    with _open_text(path) as f:
        reader = csv.reader(f)
        cols, lines = _collect(path, reader, 4, [0, 1, 3])
    return _table(path, *cols, lines)


def read_amazon_reviews(path: str | os.PathLike) -> Interactions:
    """Read Amazon 2014 review JSON lines (``reviewerID``, ``asin``, ``unixReviewTime``).

    Lines that are Python dict literals rather than strict JSON are parsed with
    :func:`ast.literal_eval`. ``.gz`` files are decompressed on the fly.
    """
    fields = ("reviewerID", "asin", "unixReviewTime")
    return _read_json_lines(Path(path), fields, lambda t: t)


def read_yelp_reviews(path: str | os.PathLike) -> Interactions:
    """Read Yelp ``yelp_academic_dataset_review.json`` (``user_id``, ``business_id``, ``date``).

    Dates (``YYYY-MM-DD HH:MM:SS``) become UTC Unix seconds.
    """

    def seconds(date: str) -> int:
        when = datetime.fromisoformat(date).replace(tzinfo=timezone.utc)
        return int(when.timestamp())

    return _read_json_lines(Path(path), ("user_id", "business_id", "date"), seconds)


def _read_json_lines(
    path: Path, fields: tuple[str, str, str], to_time: Callable[[Any], Any]
) -> Interactions:
    cols: tuple[list, list, list] = ([], [], [])
    lines: list[int] = []
    with _open_text(path) as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                raise DataError(path, n, "blank line")
            rec = _parse_record(path, n, raw)
            missing = [k for k in fields if k not in rec]
            if missing:
                raise DataError(path, n, f"record lacks field(s) {missing}")
            try:
                cols[2].append(to_time(rec[fields[2]]))
            except (TypeError, ValueError) as e:
                raise DataError(path, n, f"bad {fields[2]} {rec[fields[2]]!r}") from e
            cols[0].append(str(rec[fields[0]]))
            cols[1].append(str(rec[fields[1]]))
            lines.append(n)
    return _table(path, *cols, lines)


def _parse_record(path: Path, line: int, raw: str) -> dict:
    try:
        rec = json.loads(raw)
    except ValueError:
        try:
            rec = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
            raise DataError(path, line, "neither JSON nor a Python dict literal") from e
    if not isinstance(rec, dict):
        raise DataError(path, line, f"expected an object, found {type(rec).__name__}")
    return rec


def _open_text(path: Path):
    """Open text (utf-8, gzip-aware) for csv/json reading."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def infer_format(path: str | os.PathLike) -> str:
    """Guess the raw format from a file name (see :data:`FORMATS`)."""
    name = Path(path).name.lower()
    plain = name.removesuffix(".gz")
    if name == "ratings.dat":
        return "movielens"
    if plain.startswith("yelp_academic_dataset_review") and plain.endswith(".json"):
        return "yelp"
    if plain.startswith("reviews_") and plain.endswith(".json"):
        return "amazon-reviews"
    if name.startswith("ratings_") and name.endswith(".csv"):
        return "amazon-ratings"
    for ext in ("parquet", "tsv", "csv"):
        if name.endswith(f".{ext}"):
            return ext
    if name.endswith(".txt"):
        return "sequence"
    raise DataError(path, None, f"cannot infer the format from the name; choose one of {FORMATS}")


def read_raw(path: str | os.PathLike, fmt: str = "auto", **kwargs) -> Interactions:
    """Read a raw interaction log in format ``fmt`` (see :data:`FORMATS`).

    Extra keyword arguments (column names, ``sep``) go to :func:`read_interactions`.
    """
    kind = infer_format(path) if fmt == "auto" else fmt
    if kind == "sequence":
        raise DataError(path, None, "this is already sequence text; use it directly, no prepare")
    if kind in ("csv", "tsv", "parquet"):
        if kind != "parquet":
            kwargs.setdefault("sep", "," if kind == "csv" else "\t")
        return read_interactions(path, **kwargs)
    readers = {
        "movielens": read_movielens_ratings,
        "amazon-ratings": read_amazon_ratings,
        "amazon-reviews": read_amazon_reviews,
        "yelp": read_yelp_reviews,
    }
    if kind not in readers:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    if kwargs:
        raise TypeError(f"format {kind!r} takes no options, got {sorted(kwargs)}")
    return readers[kind](path)
