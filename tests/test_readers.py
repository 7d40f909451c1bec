import gzip
import json
import sys

import numpy as np
import pytest

from s4rec.data.readers import (
    DataError,
    infer_format,
    read_amazon_ratings,
    read_amazon_reviews,
    read_interactions,
    read_movielens_ratings,
    read_raw,
    read_sequence_text,
    read_yelp_reviews,
    vocab_path,
    write_sequence_text,
)
from s4rec.data.sequences import Sequences


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_at(err, name, line):
    assert f"{name}:{line}:" in str(err.value) if line else name in str(err.value)
    assert err.value.line == line


def test_data_error_str():
    err = DataError("Beauty.txt", 17, "item id 'abc' is not a positive integer")
    assert str(err) == "Beauty.txt:17: item id 'abc' is not a positive integer"
    assert isinstance(err, ValueError)
    assert str(DataError("x.txt", None, "file is empty")) == "x.txt: file is empty"


def test_sequence_text_contiguous_is_identity(tmp_path):
    seqs = read_sequence_text(write(tmp_path, "s.txt", "1 1 2 3\n2 3 4\n"))
    assert seqs.user_ids == ["1", "2"]
    assert seqs.item_ids == ["1", "2", "3", "4"]
    assert seqs[0].tolist() == [1, 2, 3]
    assert seqs[1].tolist() == [3, 4]


def test_sequence_text_maps_sparse_ids_and_keeps_user_order(tmp_path):
    seqs = read_sequence_text(write(tmp_path, "s.txt", "7 50 10\r\n3 10 30 50"))
    assert seqs.user_ids == ["7", "3"]
    assert seqs.item_ids == ["10", "30", "50"]
    assert seqs[0].tolist() == [3, 1]
    assert seqs[1].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1 2 3\n2 x 4\n", 2, "item id 'x'"),
        ("1 2\n2 2.5\n", 2, "'2.5'"),
        ("1 2 -3\n", 1, "'-3'"),
        ("1 2\n2 0\n", 2, "item id 0"),
        ("1 2\n0 3\n", 2, "user id 0"),
        ("1 2\n3\n4 5\n", 2, "without items"),
        ("1 2\n2 3\n1 4\n", 3, "already on line 1"),
        ("1 2\n\n2 3\n", 2, "blank line"),
        ("1 2\n2 3\n\n", 3, "blank line"),
        ("1 2\n  \n", 2, "blank line"),
        ("1 99999999999999999999\n", 1, "too large"),
        ("1 2\n2 é\n", 2, "not a positive integer"),
        ("", None, "empty"),
    ],
)
def test_sequence_text_rejects(tmp_path, text, line, fragment):
    with pytest.raises(DataError) as err:
        read_sequence_text(write(tmp_path, "bad.txt", text))
    assert_at(err, "bad.txt", line)
    assert fragment in str(err.value)


def test_write_read_round_trip_keeps_raw_ids(tmp_path):
    seqs = Sequences.from_lists(
        [[2, 1, 3], [3, 2]], user_ids=["alice", "bob"], item_ids=["B07", "A01", "ü9"]
    )
    path = write_sequence_text(seqs, tmp_path / "out" / "d.txt")
    assert path.read_text() == "1 2 1 3\n2 3 2\n"
    assert vocab_path(path).name == "d.vocab.json"
    assert json.loads(vocab_path(path).read_text())["users"] == ["alice", "bob"]
    back = read_sequence_text(path)
    assert back.user_ids == seqs.user_ids
    assert back.item_ids == seqs.item_ids
    assert np.array_equal(back.values, seqs.values)
    assert sorted(p.name for p in path.parent.iterdir()) == ["d.txt", "d.vocab.json"]


def test_write_rejects_empty_user(tmp_path):
    with pytest.raises(ValueError, match="no items"):
        write_sequence_text(Sequences.from_lists([[1], []]), tmp_path / "d.txt")


def test_vocab_that_does_not_cover_ids(tmp_path):
    path = write(tmp_path, "d.txt", "1 1 2\n")
    vocab_path(path).write_text(json.dumps({"users": ["u"], "items": ["a"]}))
    with pytest.raises(DataError, match=r"d\.vocab\.json: vocabulary does not cover"):
        read_sequence_text(path)


def test_csv_with_extra_columns(tmp_path):
    path = write(tmp_path, "log.csv", "timestamp,item_id,rating,user_id\n5,b,1,u1\n3.5,a,2,u2\n")
    inter = read_interactions(path)
    assert inter.users.tolist() == ["u1", "u2"]
    assert inter.items.tolist() == ["b", "a"]
    assert inter.times.dtype == np.int64 and inter.times.tolist() == [50, 35]  # tenths, exactly
    assert inter.lines.tolist() == [2, 3]


def test_tsv_custom_columns_and_int_times(tmp_path):
    path = write(tmp_path, "log.tsv", "u\ti\tt\nx\ty\t10\nx\tz\t11\n")
    inter = read_interactions(path, user_col="u", item_col="i", time_col="t")
    assert inter.times.dtype == np.int64 and inter.times.tolist() == [10, 11]


def test_csv_without_time_column(tmp_path):
    path = write(tmp_path, "log.csv", "user_id,item_id\na,b\n")
    assert read_interactions(path, time_col=None).times.tolist() == [0]


def test_csv_missing_column_lists_header(tmp_path):
    path = write(tmp_path, "log.csv", "user,item_id,timestamp\na,b,1\n")
    with pytest.raises(DataError, match=r"\['user_id'\].*\['user', 'item_id', 'timestamp'\]"):
        read_interactions(path)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("user_id,item_id,timestamp\na,b,1\na,c\n", 3, "expected 3 fields, found 2"),
        ("user_id,item_id,timestamp\na,b,1\n\n", 3, "found 0"),
        ("user_id,item_id,timestamp\na,b,1\n,c,2\n", 3, "empty user id"),
        ("user_id,item_id,timestamp\na,,1\n", 2, "empty item id"),
        ("user_id,item_id,timestamp\na,b,1\na,c,yesterday\n", 3, "'yesterday' is not numeric"),
        ("user_id,item_id,timestamp\na,b,nan\n", 2, "not finite"),
        ("user_id,item_id,timestamp\n", None, "no interactions"),
        ("", None, "empty"),
    ],
)
def test_csv_rejects(tmp_path, text, line, fragment):
    with pytest.raises(DataError) as err:
        read_interactions(write(tmp_path, "bad.csv", text))
    assert_at(err, "bad.csv", line)
    assert fragment in str(err.value)


def test_csv_unknown_extension_needs_sep(tmp_path):
    with pytest.raises(DataError, match="sep="):
        read_interactions(write(tmp_path, "log.dat", "user_id,item_id,timestamp\n"))


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        read_interactions(tmp_path / "log.parquet")


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": [1, 2], "item_id": ["a", "b"], "timestamp": [3, 4]}), path)
    inter = read_interactions(path)
    assert inter.users.tolist() == ["1", "2"] and inter.times.tolist() == [3, 4]
    assert inter.lines is None


def test_movielens(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_bytes(b"1::1193::5::978300760\r\n1::661::3::978302109\r\n2::1193::4::978300000\r\n")
    inter = read_movielens_ratings(path)
    assert inter.users.tolist() == ["1", "1", "2"]
    assert inter.items.tolist() == ["1193", "661", "1193"]
    assert inter.times.tolist() == [978300760, 978302109, 978300000]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("1::2::5::9\n1::3::5\n", 2, "expected 4 '::'-separated fields, found 3"),
        ("1::2::5::9\n\n", 2, "found 1"),
        ("1::::5::9\n", 1, "empty item id"),
        ("1::2::5::x\n", 1, "not numeric"),
        ("", None, "no interactions"),
    ],
)
def test_movielens_rejects(tmp_path, text, line, fragment):
    with pytest.raises(DataError) as err:
        read_movielens_ratings(write(tmp_path, "ratings.dat", text))
    assert_at(err, "ratings.dat", line)
    assert fragment in str(err.value)


def test_amazon_ratings(tmp_path):
    path = write(tmp_path, "ratings_Beauty.csv", "A1,0205616461,5.0,1369699200\nA2,X9,1.0,13\n")
    inter = read_amazon_ratings(path)
    assert inter.users.tolist() == ["A1", "A2"]
    assert inter.items.tolist() == ["0205616461", "X9"]
    assert inter.times.tolist() == [1369699200, 13]


def test_amazon_ratings_rejects(tmp_path):
    with pytest.raises(DataError) as err:
        read_amazon_ratings(write(tmp_path, "ratings_Beauty.csv", "A1,B,5.0,1\nA1,C,5.0\n"))
    assert_at(err, "ratings_Beauty.csv", 2)


REVIEWS = [
    '{"reviewerID": "R1", "asin": "P1", "unixReviewTime": 100, "reviewText": "ok"}',
    "{'reviewerID': 'R2', 'asin': 'P2', 'unixReviewTime': 50, 'helpful': [0, 0]}",
]


@pytest.mark.parametrize("gz", [False, True])
def test_amazon_reviews_json_and_python_literals(tmp_path, gz):
    text = "\n".join(REVIEWS) + "\n"
    path = tmp_path / ("reviews_Beauty_5.json" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    inter = read_amazon_reviews(path)
    assert inter.users.tolist() == ["R1", "R2"]
    assert inter.items.tolist() == ["P1", "P2"]
    assert inter.times.tolist() == [100, 50]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("{'reviewerID': 'R3', oops}", "neither JSON nor a Python dict literal"),
        ("__import__('os').system('true')", "neither JSON"),
        ("[1, 2]", "expected an object"),
        ('{"reviewerID": "R3", "unixReviewTime": 1}', "lacks field(s) ['asin']"),
        ('{"reviewerID": "R3", "asin": "P", "unixReviewTime": "soon"}', "not numeric"),
        ("", "blank line"),
    ],
)
def test_amazon_reviews_rejects(tmp_path, bad, fragment):
    path = write(tmp_path, "reviews_X_5.json", "\n".join([*REVIEWS, bad, REVIEWS[0]]) + "\n")
    with pytest.raises(DataError) as err:
        read_amazon_reviews(path)
    assert_at(err, "reviews_X_5.json", 3)
    assert fragment in str(err.value)


def test_yelp_reviews(tmp_path):
    rec = {"user_id": "U", "business_id": "B", "date": "2019-01-01 00:00:10", "stars": 5}
    path = write(tmp_path, "yelp_academic_dataset_review.json", json.dumps(rec) + "\n")
    inter = read_yelp_reviews(path)
    assert inter.items.tolist() == ["B"] and inter.times.tolist() == [1546300810]
    bad = write(tmp_path, "y.json", json.dumps({**rec, "date": "someday"}) + "\n")
    with pytest.raises(DataError, match=r"y\.json:1: bad date"):
        read_yelp_reviews(bad)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ratings.dat", "movielens"),
        ("reviews_Beauty_5.json.gz", "amazon-reviews"),
        ("reviews_Toys_and_Games_5.json", "amazon-reviews"),
        ("ratings_Beauty.csv", "amazon-ratings"),
        ("yelp_academic_dataset_review.json", "yelp"),
        ("log.parquet", "parquet"),
        ("log.tsv", "tsv"),
        ("log.csv", "csv"),
        ("Beauty.txt", "sequence"),
    ],
)
def test_infer_format(name, fmt):
    assert infer_format(name) == fmt


def test_read_raw_dispatch(tmp_path):
    assert len(read_raw(write(tmp_path, "ratings.dat", "1::2::5::9\n"))) == 1
    path = write(tmp_path, "log.txt", "user_id\titem_id\ttimestamp\na\tb\t1\n")
    assert read_raw(path, "tsv").items.tolist() == ["b"]
    with pytest.raises(DataError, match="already sequence text"):
        read_raw(write(tmp_path, "Beauty.txt", "1 2 3\n"))
    with pytest.raises(
        DataError, match=r"log.txt:1: a .txt name, but not sequence text .*--format"
    ):
        read_raw(path)
    with pytest.raises(DataError, match="cannot infer the format"):
        read_raw(tmp_path / "mystery.bin")
    with pytest.raises(ValueError, match="unknown format"):
        read_raw(path, "excel")
