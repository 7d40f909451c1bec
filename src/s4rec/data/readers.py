"""Readers and writers for sequence text and raw interaction logs.

Sequence text (S3-Rec format): one line per user, ``user_id item_id item_id ...``, positive
integers, items oldest first. Raw logs (CSV/TSV/Parquet, MovieLens ``ratings.dat``, Amazon 2014
ratings CSV and review JSON lines, Yelp reviews) are read into :class:`Interactions` tables, which
:mod:`s4rec.data.preprocess` turns into :class:`Sequences`.
"""

from __future__ import annotations

import ast
import codecs
import csv
import gzip
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, NoReturn, cast

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
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # tab, newline, NUL, escape, ...
_FRACTION = re.compile(r"(?<=\d\d:\d\d:\d\d)[.,](\d+)")  # of the seconds of an ISO-8601 time
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAME_COLUMNS = " (name the columns with s4rec prepare --user-col, --item-col, --time-col)"
_INT64 = 2**63 - 1


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

    ``users`` and ``items`` hold raw ids as ``str`` (object arrays); ``times`` orders the
    events: int64 (see :func:`parse_times`), or float64 from a binary float column; ``lines``
    gives the 1-based source line of each row (None when rows have no line, e.g. Parquet).
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


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 file (a BOM skipped); other bytes are a DataError naming the line."""
    data = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8(Path(path), data.split(b"\n")) from None


def read_sequence_text(path: str | os.PathLike) -> Sequences:
    """Read a sequence text file, strictly validated.

    Internal item ids are the sorted distinct file ids mapped to 1..n (the identity for
    contiguous files). Raw ids are the integers as strings, or come from ``<stem>.vocab.json``
    when that file sits beside ``path``. Users keep file order.
    """
    path = Path(path)
    text = read_text(path)
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

    ``sep`` defaults to ``','`` for ``.csv`` and ``'\\t'`` for ``.tsv``. Timestamps are numbers
    or ISO-8601 dates (:func:`parse_times`; Parquet also timestamp and date columns); with
    ``time_col=None`` all times are 0 and file order alone orders events. Ids are strings or
    integers, any text but control characters.
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
            raise DataError(
                path, 1, f"missing column(s) {missing}; the header has {header}{_NAME_COLUMNS}"
            )
        fields = [header.index(c) for c in cols]
        data, lines = _collect(path, reader, len(header), fields)
    return _table(path, data[0], data[1], data[2] if time_col else None, lines)


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
        if _CONTROL.search("".join(col)):  # spaces and commas are fine: the vocabulary is JSON
            row = next(r for r, v in enumerate(col) if _CONTROL.search(v))
            raise DataError(
                path, _line(line_arr, row), f"{name} id {col[row]!r} has a control character"
            )
    if times is None:
        time_arr = np.zeros(len(users), dtype=np.int64)
    else:
        time_arr = parse_times(path, times, line_arr)
    return Interactions(cols["user"], cols["item"], time_arr, str(path), line_arr)


def _line(lines: np.ndarray | None, row: int) -> int | None:
    return None if lines is None else int(lines[row])


def parse_times(path: Path, values: list, lines: np.ndarray | None = None) -> np.ndarray:
    """Timestamps as keys that order the events exactly.

    Integers stay int64; binary floats (JSON, a Parquet float column) stay float64. Decimal
    text with a fraction is scaled by the power of ten of the longest fraction into int64,
    and ISO-8601 dates and times become int64 nanoseconds since the Unix epoch (UTC unless
    they carry an offset). A value that is neither, or that int64 cannot hold exactly, is a
    DataError naming its line: precision is never lost silently.
    """
    arr = np.array(values)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr))
        if len(bad):
            raise DataError(
                path, _line(lines, bad[0]), f"timestamp {values[bad[0]]!r} is not finite"
            )
        return arr
    if arr.dtype.kind == "U":
        try:  # the common case: decimal integers
            return arr.astype(np.int64)
        except (ValueError, OverflowError):
            pass
    return _exact_times(path, [str(v).strip() for v in values], lines)


def _exact_times(path: Path, texts: list[str], lines: np.ndarray | None) -> np.ndarray:
    """``parse_times`` of text that is not all integers: decimals, or ISO-8601 dates (as the
    first row is)."""
    return time_keys(path, texts, lines, _decimal(texts[0]) is None)[0]


def time_keys(
    path: Path, texts: list[str], lines: np.ndarray | None, dated: bool
) -> tuple[np.ndarray, int]:
    """Exact int64 keys of stripped time texts, all dates (``dated``) or all decimals, and
    the power of ten the decimals were scaled by."""
    keys: list[Any] = [_iso_ns(t) if dated else _decimal(t) for t in texts]
    bad = next((r for r, k in enumerate(keys) if k is None or not Decimal(k).is_finite()), None)
    if bad is not None:
        raise DataError(path, _line(lines, bad), _time_problem(texts[bad], dated))
    places = [0] * len(keys) if dated else [_fraction_digits(d) for d in keys]
    scale = max(places)
    if not dated:  # exact: |d| * 10**scale has at most 19 digits where it is computed
        keys = [int(d.scaleb(scale)) if d.adjusted() + scale <= 18 else None for d in keys]
    bad = next((r for r, k in enumerate(keys) if k is None or abs(k) > _INT64), None)
    if bad is not None:
        why = " as nanoseconds" if dated else ""
        if scale:
            why = f" with the {scale} decimal place(s) of {_where(lines, places.index(scale))}"
        raise DataError(
            path, _line(lines, bad), f"timestamp {texts[bad]!r} does not fit int64{why}"
        )
    return np.array(keys, dtype=np.int64), scale


def _time_problem(text: str, dated: bool) -> str:
    """Why ``text`` is not a timestamp of a column of dates (``dated``) or of numbers."""
    number, date = _decimal(text), _iso_ns(text)
    if number is not None and not number.is_finite():
        return f"timestamp {text!r} is not finite"
    if number is None and date is None:
        return f"timestamp {text!r} is not numeric and not an ISO-8601 date"
    kinds = ("a number", "dates") if dated else ("a date", "numbers")
    return f"timestamp {text!r} is {kinds[0]} in a column of {kinds[1]}"


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _fraction_digits(d: Decimal) -> int:
    """Decimal places but trailing zeros: 0 for ``5``, ``5.00`` and ``5e3``, 2 for ``0.250``."""
    _, digits, exp = d.as_tuple()
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -int(exp) - zeros) if any(digits) else 0


def _iso_ns(text: str) -> int | None:
    """Nanoseconds since the Unix epoch of an ISO-8601 date, or date and time (UTC unless it
    has an offset), exactly; None when ``text`` is not one (or is finer than nanoseconds)."""
    fraction = _FRACTION.search(text)
    digits = fraction.group(1) if fraction else ""
    if fraction:
        text = text[: fraction.start()] + text[fraction.end() :]
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    if len(digits.rstrip("0")) > 9:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000 + int(digits[:9].ljust(9, "0"))


def _where(lines: np.ndarray | None, row: int) -> str:
    return f"row {row + 1}" if lines is None else f"line {lines[row]}"


def _read_parquet(path: Path, cols: list[str]) -> Interactions:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError(
            "reading Parquet needs pyarrow: pip install pyarrow (or pip install s4rec[parquet])"
        ) from e
    try:
        names = pq.read_schema(path).names
        missing = [c for c in cols if c not in names]
        if missing:
            raise DataError(
                path, None, f"missing column(s) {missing}; the file has {names}{_NAME_COLUMNS}"
            )
        table = pq.read_table(path, columns=cols)
    except pa.ArrowException as e:
        raise DataError(
            path, None, f"not a readable Parquet file ({str(e).splitlines()[0]})"
        ) from None
    users, items = (_parquet_ids(path, c, table.column(c)) for c in cols[:2])
    times = _parquet_times(path, cols[2], table.column(cols[2])) if len(cols) == 3 else None
    return _table(path, users, items, times, None)


def _parquet_ids(path: Path, name: str, column: Any) -> list[str]:
    """A Parquet id column (strings or integers, plain or dictionary-encoded) as strings."""
    import pyarrow as pa

    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (
        pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
    ):
        raise DataError(
            path, None, f"column {name!r} holds {column.type}; ids must be strings or integers"
        )
    return ["" if v is None else str(v) for v in column.to_pylist()]


def _parquet_times(path: Path, name: str, column: Any) -> list:
    """A Parquet time column's values for ``parse_times``: numbers, text, or (from a
    timestamp or date column) nanoseconds since the Unix epoch."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        try:
            ns = column.cast(pa.timestamp("ns", getattr(kind, "tz", None))).cast(pa.int64())
        except pa.ArrowException as e:
            raise DataError(path, None, f"column {name!r}: {str(e).splitlines()[0]}") from None
        return ns.to_pylist()
    plain = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_string,
             pa.types.is_large_string)  # fmt: skip
    if any(is_kind(kind) for is_kind in plain):
        return column.to_pylist()
    raise DataError(
        path, None, f"column {name!r} holds {kind}; timestamps must be numbers, dates or text"
    )


def read_movielens_ratings(path: str | os.PathLike) -> Interactions:
    """Read MovieLens ``ratings.dat`` (``user::item::rating::timestamp``); every rating counts."""
    path = Path(path)
    body = (
        path.read_bytes()
        .removeprefix(codecs.BOM_UTF8)
        .decode("latin-1")
        .replace("\r\n", "\n")
        .removesuffix("\n")
    )
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
        (users, items, times), lines = _collect(path, reader, 4, [0, 1, 3])
    return _table(path, users, items, times, lines)


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


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """UTF-8 text (a BOM skipped, ``.gz`` decompressed) for csv/json reading; text that is
    not UTF-8, or a broken gzip file, is a DataError naming the file."""
    try:
        with _open(path, "rt", encoding="utf-8-sig", newline="") as f:
            yield f
    except UnicodeDecodeError:
        with _open(path, "rb") as raw:
            raise _not_utf8(path, raw) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(path, None, f"not a readable gzip file ({e})") from None


def _open(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    if path.suffix == ".gz":
        return cast(IO[Any], gzip.open(path, mode, **kwargs))
    return open(path, mode, **kwargs)


def _not_utf8(path: Path, lines: Iterable[bytes]) -> DataError:
    """The error for a file whose ``lines`` are not all UTF-8, naming the first bad byte."""
    for n, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            return DataError(
                path, n, f"not UTF-8 text (byte 0x{line[e.start]:02x} at column {e.start + 1})"
            )
    return DataError(path, None, "not UTF-8 text")


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
    named = ", ".join(f for f in FORMATS if f != "auto")
    raise DataError(path, None, f"cannot infer the format from the name; give --format: {named}")


def read_raw(path: str | os.PathLike, fmt: str = "auto", **kwargs) -> Interactions:
    """Read a raw interaction log in format ``fmt`` (see :data:`FORMATS`).

    Extra keyword arguments (column names, ``sep``) go to :func:`read_interactions`.
    """
    kind = infer_format(path) if fmt == "auto" else fmt
    if kind == "sequence":
        with _open_text(Path(path)) as f:
            first = f.readline().strip()
        if not _NOT_DIGITS.search(first):
            raise DataError(
                path, None, "this is already sequence text; use it directly, no prepare"
            )
        raise DataError(path, 1, f"a .txt name, but not sequence text ({first[:40]!r}): give"
                                 " --format csv or tsv (and the column names)")  # fmt: skip
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
