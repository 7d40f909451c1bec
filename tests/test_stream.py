"""The streaming reader behind ``prepare`` gives byte-identical output to the exact reader."""

import csv
import random

import numpy as np
import pytest

from s4rec.data import stream
from s4rec.data.preprocess import prepare, to_sequences
from s4rec.data.readers import DataError, read_raw, write_sequence_text

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def log_rows(n: int, seed: int, time_of) -> list[tuple[str, str, str]]:
    """``n`` rows over awkward ids (commas, quotes, spaces, non-ASCII), with duplicates."""
    rng = random.Random(seed)
    users = ["7", "10", "u,1", 'q"u', "ü ser", "8", "x"]
    items = [f"i{k}" for k in range(12)] + ['it"em', "a,b", "é"]
    rows = [(rng.choice(users), rng.choice(items), time_of(rng)) for _ in range(n)]
    return rows + rows[: n // 10]


def int_time(rng):
    return rng.choice([str(rng.randrange(0, 50)), "+5", "007", "-3"])


def decimal_time(rng):
    return rng.choice(["3", "2.5", "1.25", "7.000", "-1.5", "1e2", str(rng.randrange(99))])


def iso_time(rng):
    day = rng.randrange(1, 28)
    return rng.choice(
        [f"2020-01-{day:02d}", f"2020-01-{day:02d}T10:00:00.5Z", f"2020-01-{day:02d} 09:00+02:00"]
    )


def write_csv(path, rows, sep=",", bom=False):
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(["extra", "user_id", "item_id", "timestamp"])
        w.writerows([("z", *r) for r in rows])


def exact_output(path, out, **kwargs) -> bytes:
    write_sequence_text(to_sequences(read_raw(path, **kwargs), k_core=2), out)
    return out.read_bytes() + out.with_name(out.stem + ".vocab.json").read_bytes()


def streamed_output(path, out, **kwargs) -> bytes:
    stream.read_coded(path, **kwargs)  # no Fallback: the streaming path itself reads it
    prepare(path, out, k_core=2, **kwargs)
    return out.read_bytes() + out.with_name(out.stem + ".vocab.json").read_bytes()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Many batches, so that codes and decimal scales are merged across them."""
    monkeypatch.setattr(stream, "BLOCK_BYTES", 256)
    monkeypatch.setattr(stream, "PARQUET_ROWS", 7)


@pytest.mark.parametrize("time_of", [int_time, decimal_time, iso_time])
@pytest.mark.parametrize(("suffix", "sep", "bom"), [(".csv", ",", True), (".tsv", "\t", False)])
def test_text_logs_match_the_exact_reader(tmp_path, time_of, suffix, sep, bom):
    path = tmp_path / f"log{suffix}"
    write_csv(path, log_rows(300, 1, time_of), sep, bom)
    assert streamed_output(path, tmp_path / "new.txt") == exact_output(path, tmp_path / "old.txt")


@pytest.mark.parametrize(
    "times",
    [
        pa.array(np.arange(330) % 17, pa.int32()),
        pa.array((np.arange(330) % 17) / 4.0),
        pa.array([f"{k % 9}.{k % 4}" for k in range(330)]),
        pa.array((np.arange(330) % 17) * 86_400_000_000, pa.timestamp("us", "UTC")),
    ],
)
def test_parquet_logs_match_the_exact_reader(tmp_path, times):
    rows = log_rows(300, 2, int_time)
    users = pa.array([f"u{u}" for u, _, _ in rows])
    items = pa.array([i for _, i, _ in rows]).dictionary_encode()
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": users, "item_id": items, "timestamp": times}), path)
    assert streamed_output(path, tmp_path / "new.txt") == exact_output(path, tmp_path / "old.txt")


def test_integer_parquet_ids(tmp_path):
    path = tmp_path / "log.parquet"
    ids = pa.array([3, 1, 2, 3, 1, 2, 10, 10, 1], pa.int64())
    times = pa.array(range(9), pa.int64())
    pq.write_table(pa.table({"user_id": ids, "item_id": ids, "timestamp": times}), path)
    assert streamed_output(path, tmp_path / "new.txt") == exact_output(path, tmp_path / "old.txt")


def test_other_columns_and_no_time(tmp_path):
    path = tmp_path / "log.csv"
    write_csv(path, log_rows(200, 3, int_time))
    kwargs = {"user_col": "item_id", "item_col": "user_id", "time_col": None}
    new = streamed_output(path, tmp_path / "new.txt", **kwargs)
    assert new == exact_output(path, tmp_path / "old.txt", **kwargs)


@pytest.mark.parametrize(
    "body",
    [
        'user_id,item_id,timestamp\n"a\nb",x,1\n',  # a newline in an id
        "user_id,item_id,timestamp\na,x,1\n\nb,y,2\n",  # a blank line
        "user_id,item_id,timestamp\na,x,1\nb,y\n",  # a short row
        "user_id,item_id,timestamp\na,x,1.5\nb,,2\n",  # an empty id
        "user_id,item_id,timestamp\na,x,1.5\nb,y,2020-01-01\n",  # a date among numbers
        "user_id,item_id,timestamp\na,x,1\nb,y,9223372036854775807.5\n",  # beyond int64
        "user_id,item_id\na,x\n",  # no time column
        "user_id,item_id,timestamp\na,x,1\nb,y,0x1F\n",  # hexadecimal
    ],
)
def test_problems_are_reported_by_the_exact_reader(tmp_path, body):
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(stream.Fallback):
        stream.read_coded(path)
    with pytest.raises(DataError) as exact:
        to_sequences(read_raw(path), k_core=0)
    with pytest.raises(DataError) as streamed:
        prepare(path, tmp_path / "out.txt", k_core=0)
    assert str(streamed.value) == str(exact.value)


def test_duplicate_error_names_lines(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("user_id,item_id,timestamp\na,x,1\nb,y,2\na,x,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup\.csv:4: .* repeats line 2"):
        prepare(path, tmp_path / "out.txt", k_core=0, duplicates="error")


def test_parquet_float_ids_are_reported_by_the_exact_reader(tmp_path):
    path = tmp_path / "bad.parquet"
    col = pa.array([1.0, 2.0])
    pq.write_table(pa.table({"user_id": col, "item_id": col, "timestamp": col}), path)
    with pytest.raises(stream.Fallback):
        stream.read_coded(path)
    with pytest.raises(DataError, match="ids must be strings or integers"):
        prepare(path, tmp_path / "out.txt", k_core=0)
