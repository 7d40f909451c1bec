"""Column-wise, streaming reading of CSV/TSV/Parquet logs into compact coded columns.

:func:`read_coded` keeps three columns per row (user and item as int32 codes, the time as
int64 or float64), and each distinct raw id once, so ``prepare`` holds about 16 bytes per
input row instead of Python strings. It reads in record batches with pyarrow. It gives the
same rows, ids and time keys as :func:`s4rec.data.readers.read_interactions`; whatever it
cannot read that way (an error to report with its line, nulls, unusual types, gzip) raises
:class:`Fallback`, and the caller uses the exact reader instead, which reports the problem
or reads the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s4rec.data.readers import _CONTROL, _INT64, DataError, _decimal, time_keys

BLOCK_BYTES = 1 << 20  # bytes of text per CSV record batch
PARQUET_ROWS = 1 << 19  # rows per Parquet record batch
_PLAIN_INT = r"^-?[0-9]{1,18}$"  # text that both arrow and numpy read as the same int64


class Fallback(Exception):
    """The streaming reader cannot read this file exactly; use the exact reader."""


@dataclass(frozen=True)
class Coded:
    """An interaction log as codes: row ``r`` is user ``user_ids[users[r]]``, item
    ``item_ids[items[r]]``, at time ``times[r]``; rows in file order."""

    users: np.ndarray
    user_ids: list[str]
    items: np.ndarray
    item_ids: list[str]
    times: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.users)


class _Codes:
    """Global codes, in order of first appearance, for the ids of successive batches."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.parts: list[np.ndarray] = []

    def add(self, column: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (
            pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
        ):
            raise Fallback(f"id column of type {kind}")
        enc = pc.dictionary_encode(column)
        if enc.null_count:
            raise Fallback("null id")
        distinct = [str(v) for v in enc.dictionary.to_pylist()]
        if "" in distinct or _CONTROL.search("".join(distinct)):
            raise Fallback("empty id or control character")
        index = self.index
        local = np.array([index.setdefault(v, len(index)) for v in distinct], dtype=np.int32)
        self.parts.append(local[enc.indices.to_numpy(zero_copy_only=False)])

    def codes(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int32)


class _Times:
    """Time keys of successive batches, rescaled at the end to one decimal scale."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parts: list[tuple[np.ndarray, int]] = []
        self.dated: bool | None = None  # the first row is a date (not a number)

    def add_text(self, texts: list[str]) -> None:
        if self.dated is None:
            self.dated = _decimal(texts[0].strip()) is None
        if not self.dated:
            try:
                self.parts.append((np.array(texts).astype(np.int64), 0))
                return
            except (ValueError, OverflowError):
                pass
        try:
            keys, scale = time_keys(self.path, [t.strip() for t in texts], None, self.dated)
        except DataError as e:
            raise Fallback(str(e)) from None
        self.parts.append((keys, scale))

    def add(self, keys: np.ndarray) -> None:
        self.parts.append((keys, 0))

    def keys(self) -> np.ndarray:
        if not self.parts:
            return np.zeros(0, dtype=np.int64)
        if self.parts[0][0].dtype.kind == "f":
            return np.concatenate([k for k, _ in self.parts])
        top = max(s for _, s in self.parts)
        out = []
        for keys, scale in self.parts:
            factor = 10 ** (top - scale)
            if factor > 1 and len(keys) and int(np.abs(keys).max()) > _INT64 // factor:
                raise Fallback("timestamp does not fit int64 at the common scale")
            out.append(keys * factor)
        return np.concatenate(out)


def read_coded(
    path: str | os.PathLike,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = "timestamp",
    sep: str | None = None,
) -> Coded:
    """Read a CSV/TSV (with a header row) or Parquet log as :class:`Coded` (see module doc);
    the arguments are those of :func:`s4rec.data.readers.read_interactions`."""
    path = Path(path)
    try:
        import pyarrow as pa
    except ImportError:
        raise Fallback("pyarrow is not installed") from None
    cols = [user_col, item_col] + ([time_col] if time_col else [])
    if len(set(cols)) < len(cols) or path.suffix == ".gz":
        raise Fallback("repeated column or compressed file")
    users, items, times = _Codes(), _Codes(), _Times(path)
    pool = pa.default_memory_pool()
    pa.set_memory_pool(_pool())
    try:
        for batch in _batches(path, cols, sep):
            users.add(batch.column(0))
            items.add(batch.column(1))
            if time_col:
                _add_times(times, batch.column(2))
    except (pa.ArrowException, OSError) as e:
        raise Fallback(str(e)) from None
    finally:
        pa.set_memory_pool(pool)
    u = users.codes()
    if not len(u):
        raise Fallback("no rows")
    t = times.keys() if time_col else np.zeros(len(u), dtype=np.int64)
    return Coded(u, list(users.index), items.codes(), list(items.index), t, str(path))


def _batches(path: Path, cols: list[str], sep: str | None) -> Any:
    """Record batches holding just ``cols``, in file order."""
    import pyarrow as pa

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        if len(set(pf.schema_arrow.names)) < len(pf.schema_arrow.names):
            raise Fallback("repeated column names")
        yield from pf.iter_batches(batch_size=PARQUET_ROWS, columns=cols)
        return
    import pyarrow.csv as pcsv

    sep = sep or {".csv": ",", ".tsv": "\t"}.get(path.suffix)
    if sep is None or len(sep) != 1:
        raise Fallback("separator")
    reader = pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
        parse_options=pcsv.ParseOptions(
            delimiter=sep, newlines_in_values=True, ignore_empty_lines=False
        ),
        convert_options=pcsv.ConvertOptions(
            include_columns=cols,
            column_types={c: pa.string() for c in cols},
            strings_can_be_null=False,
        ),
    )
    names = reader.schema.names
    if names != cols:
        raise Fallback("columns")
    yield from reader


def _pool() -> Any:
    """jemalloc where pyarrow has it: it returns freed batches to the system, so peak RSS
    stays near what is live (the default pool measured some 40 MB more per 1M rows)."""
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()


def _add_times(times: _Times, column: Any) -> None:
    """One batch's time column: text, integers, floats, or Parquet dates and timestamps."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if column.null_count:
        raise Fallback("null time")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if times.dated is False and pc.all(pc.match_substring_regex(column, _PLAIN_INT)).as_py():
            times.add(column.cast(pa.int64()).to_numpy())  # what numpy would read, faster
        else:
            times.add_text(column.to_pylist())
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        ns = column.cast(pa.timestamp("ns", getattr(kind, "tz", None))).cast(pa.int64())
        times.add(ns.to_numpy())
    elif pa.types.is_signed_integer(kind) or kind in (pa.uint8(), pa.uint16(), pa.uint32()):
        times.add(column.to_numpy().astype(np.int64))
    elif pa.types.is_floating(kind):
        values = column.to_numpy().astype(np.float64)
        if not np.isfinite(values).all():
            raise Fallback("non-finite time")
        times.add(values)
    else:
        raise Fallback(f"time column of type {kind}")
