"""Every bad input a clean error (issue 21, section 2): settings out of range, byte-order marks,
text that is not UTF-8, timestamps and ids that ``prepare`` cannot keep exactly, and broken
Parquet files; each a ValueError/DataError naming the key, file or line, and at the command
line exit status 2 with one line on stderr."""

from __future__ import annotations

import codecs
import gzip
from pathlib import Path

import numpy as np
import pytest

from conftest import run
from s4rec.config import BOUNDS, Config, ModelConfig, dotted
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.preprocess import prepare
from s4rec.data.readers import (
    DataError,
    read_amazon_reviews,
    read_interactions,
    read_movielens_ratings,
    read_sequence_text,
)
from s4rec.data.sequences import Sequences
from s4rec.evaluate import Ranker
from s4rec.methods import METHODS, apply_method, configure
from s4rec.model import SASRec

BOM = codecs.BOM_UTF8
NS = 1_700_000_000_000_000_000  # nanoseconds since 1970, late 2023


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must exit with status 2 and say why in one line; return that line."""
    with pytest.raises(SystemExit) as e:
        run(*argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def csv_log(tmp_path: Path, times: list[str]) -> Path:
    """A log of one user alternating items a and b at ``times``, in file order."""
    rows = ["user_id,item_id,timestamp"] + [f"u,{'ab'[k % 2]},{t}" for k, t in enumerate(times)]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train.batch_size=0", "train.batch_size: 0 is not >= 1"),
        ("train.eval_batch_users=-5", "train.eval_batch_users: -5 is not >= 1"),
        ("train.eval_item_chunk=0", "train.eval_item_chunk: 0 is not >= 1"),
        ("model.heads=0", "model.heads: 0 is not >= 1"),
        ("model.hidden=0", "model.hidden: 0 is not >= 1"),
        ("data.max_len=0", "data.max_len: 0 is not >= 1"),
        ("loss.negatives=0", "loss.negatives: 0 is not >= 1"),
        ("s4rec.prototypes=0", "s4rec.prototypes: 0 is not >= 1"),
        ("s4rec.sinkhorn_iters=0", "s4rec.sinkhorn_iters: 0 is not >= 1"),
        ("s4rec.kmeans_restarts=0", "s4rec.kmeans_restarts: 0 is not >= 1"),
        ("train.epochs=-3", "train.epochs: -3 is not >= 0"),
        ("train.patience=0", "train.patience: 0 is not >= 1"),
        ("train.threads=-1", "train.threads: -1 is not >= 0"),
        ("train.seed=-1", "train.seed: -1 is not in [0, 4294967295]"),
        ("data.min_length=2", "data.min_length: 2 is not >= 3"),
        ("model.dropout=1.0", "model.dropout: 1.0 is not in [0, 1)"),
        ("model.attn_dropout=-0.1", "model.attn_dropout: -0.1 is not in [0, 1)"),
        ("augment.crop=1.5", "augment.crop: 1.5 is not in [0, 1]"),
        ("data.head_fraction=2", "data.head_fraction: 2.0 is not in [0, 1]"),
        ("loss.mask_prob=0", "loss.mask_prob: 0.0 is not in (0, 1]"),
        ("train.lr=0", "train.lr: 0.0 is not > 0"),
        ("train.lr=.nan", "train.lr: nan is not a finite number"),
        ("train.lr=inf", "train.lr: inf is not a finite number"),
        ("s4rec.tau2=-1", "s4rec.tau2: -1.0 is not > 0"),
        ("train.weight_decay=-0.1", "train.weight_decay: -0.1 is not >= 0"),
        ("s4rec.alpha=-0.01", "s4rec.alpha: -0.01 is not >= 0"),
        ("model.hidden=10", "model.hidden: 10 is not divisible by model.heads=3"),
        ("data.prefix_stride=60", "data.prefix_stride: 60 is not <= data.max_len=50"),
        ("augment.operators=[flip]", "augment.operators: ['flip'] is not a non-empty subset"),
        ("augment.operators=[]", "augment.operators: [] is not a non-empty subset"),
    ],
)
def test_a_setting_out_of_range_names_key_value_and_range(setting: str, message: str) -> None:
    context = {"model.hidden": "model.heads=3", "data.prefix_stride": "data.layout=prefix"}
    extra = [v for k, v in context.items() if setting.startswith(k)]
    with pytest.raises(ValueError) as err:
        Config().override([*extra, setting])
    assert str(err.value).startswith(message)


def test_every_numeric_setting_has_a_bound_and_every_preset_is_within() -> None:
    numeric = {k for k, v in dotted(Config().to_dict()).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}  # fmt: skip
    assert numeric == set(BOUNDS)
    for name in METHODS:
        apply_method(Config(), name)


def test_heads_need_not_divide_hidden_where_there_is_no_attention() -> None:
    assert Config().override(["model.encoder=gru4rec", "model.hidden=10", "model.heads=3"])


def test_pop_trains_for_no_epoch() -> None:
    assert configure("pop").train.epochs == 0
    with pytest.raises(ValueError, match=r"train.epochs: 3 is not 0 \(model.encoder=pop"):
        configure("pop", sets=["train.epochs=3"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "-3"], "train.epochs: -3 is not >= 0"),
        (["--set", "train.eval_batch_users=-5"], "train.eval_batch_users: -5 is not >= 1"),
        (["--set", "train.batch_size=0"], "train.batch_size: 0 is not >= 1"),
        (["--set", "model.heads=0"], "model.heads: 0 is not >= 1"),
        (["--set", "train.lr=nan"], "train.lr: nan is not a finite number"),
        (["--method", "pop", "--epochs", "3"], "train.epochs: 3 is not 0"),
    ],
)
def test_train_with_a_bad_setting_exits_2_before_anything_is_written(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = fails(capsys, "train", "--dataset", "synthetic", *argv, "--out", str(tmp_path / "r"))
    assert err.startswith("s4rec train: error:") and message in err
    assert not (tmp_path / "r" / "results.json").exists()


# ---------------------------------------------------------------- evaluation


def tiny_ranker(**kwargs: int) -> Ranker:
    data = LeaveOneOut(Sequences.from_lists([[1, 2, 3, 4], [2, 3, 4, 5], [5, 4, 3]]))
    model = SASRec(data.n_items, 5, ModelConfig(hidden=8, layers=1, heads=2, inner=16))
    return Ranker(model, data, **kwargs)


def test_the_ranker_refuses_empty_batches() -> None:
    with pytest.raises(ValueError, match="user_batch -5 and item_chunk 32768 must be >= 1"):
        tiny_ranker(user_batch=-5)


def test_a_user_left_unranked_is_an_internal_error_not_a_metric() -> None:
    ranker = tiny_ranker()
    ranker.user_batch = -5  # as train.eval_batch_users=-5 did: no batch, no rank written
    with pytest.raises(RuntimeError, match="internal error: 3 of 3 users were not ranked"):
        ranker.ranks("test")
    with pytest.raises(RuntimeError, match="internal error: 3 of 3 users were not ranked"):
        ranker.top_k("test", 2)
    ranker.user_batch = 2
    assert (ranker.ranks("test") >= 0).all()


# ---------------------------------------------------------------- byte-order marks


def test_a_bom_is_accepted_in_sequence_text(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_bytes(BOM + b"1 1 2 3\n2 3 4\n")
    assert read_sequence_text(path).user_ids == ["1", "2"]


@pytest.mark.parametrize(("name", "sep"), [("log.csv", ","), ("log.tsv", "\t")])
def test_a_bom_is_accepted_in_csv_and_tsv_logs(tmp_path: Path, name: str, sep: str) -> None:
    path = tmp_path / name
    path.write_bytes(BOM + sep.join(["user_id", "item_id", "timestamp"]).encode() + b"\n"
                     + sep.join(["u", "i", "7"]).encode() + b"\n")  # fmt: skip
    inter = read_interactions(path)
    assert inter.users.tolist() == ["u"] and inter.times.tolist() == [7]


def test_a_bom_is_accepted_in_movielens_ratings(tmp_path: Path) -> None:
    path = tmp_path / "ratings.dat"
    path.write_bytes(BOM + b"1::2::5::9\n")
    assert read_movielens_ratings(path).users.tolist() == ["1"]


@pytest.mark.parametrize(("name", "text"), [("c.yaml", "train:\n  lr: 0.002\n"),
                                            ("c.toml", "[train]\nlr = 0.002\n")])  # fmt: skip
def test_a_bom_is_accepted_in_config_files(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_bytes(BOM + text.encode())
    assert configure(file=path).train.lr == 0.002


# ---------------------------------------------------------------- text that is not UTF-8


@pytest.mark.parametrize(
    ("body", "line", "byte"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", 1, "0x89 at column 1"),
        (b"1 2 3\n2 3 \xff\n", 2, "0xff at column 5"),
    ],
)
def test_binary_sequence_text_is_a_data_error_with_its_line(
    tmp_path: Path, body: bytes, line: int, byte: str
) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(body)
    with pytest.raises(DataError) as err:
        read_sequence_text(path)
    assert str(err.value) == f"{path}:{line}: not UTF-8 text (byte {byte})"


@pytest.mark.parametrize("gz", [False, True])
def test_binary_csv_is_a_data_error_with_its_line(tmp_path: Path, gz: bool) -> None:
    body = b"user_id,item_id,timestamp\n" + b"u,i,1\n" * 5000 + b"u,\xe9t\xe9,2\n"
    path = tmp_path / ("log.csv.gz" if gz else "log.csv")
    path.write_bytes(gzip.compress(body) if gz else body)
    with pytest.raises(DataError) as err:
        read_interactions(path, sep=",")
    assert str(err.value) == f"{path}:5002: not UTF-8 text (byte 0xe9 at column 3)"


def test_binary_json_lines_and_broken_gzip_are_data_errors(tmp_path: Path) -> None:
    path = tmp_path / "reviews_Beauty.json"
    path.write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(DataError, match=r"reviews_Beauty\.json:1: not UTF-8 text"):
        read_amazon_reviews(path)
    path = tmp_path / "reviews_Beauty.json.gz"
    record = b'{"reviewerID": "r", "asin": "p", "unixReviewTime": 1}\n'
    for body in (gzip.compress(record * 5000)[:200], record):  # cut short; not gzip at all
        path.write_bytes(body)
        with pytest.raises(DataError, match=r"Beauty\.json\.gz: not a readable gzip file \("):
            read_amazon_reviews(path)


def test_prepare_binary_csv_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"\x00\x01\x02\xff\xfe\n")
    err = fails(capsys, "prepare", str(path), "--out", str(tmp_path / "o.txt"))
    assert f"{path}:1: not UTF-8 text (byte 0xff at column 4)" in err


# ---------------------------------------------------------------- timestamps


def test_one_fraction_in_a_nanosecond_column_is_an_error_not_lost_events(tmp_path: Path) -> None:
    times = [str(NS + 37 * k) for k in range(240)]
    kept = prepare(csv_log(tmp_path, times), tmp_path / "ok.txt", k_core=0)
    assert len(kept.values) == 240  # distinct events, all kept
    times[0] += ".5"  # float64 would merge events 256 ns apart: 169 "duplicates" dropped
    with pytest.raises(DataError) as err:
        prepare(csv_log(tmp_path, times), tmp_path / "o.txt", k_core=0)
    where, fit = tmp_path / "log.csv", "does not fit int64 with the 1 decimal place(s) of line 2"
    assert str(err.value) == f"{where}:2: timestamp '{NS}.5' {fit}"


def test_integer_timestamps_stay_int64(tmp_path: Path) -> None:
    inter = read_interactions(csv_log(tmp_path, [str(NS + 1), str(NS)]))
    assert inter.times.dtype == np.int64 and inter.times.tolist() == [NS + 1, NS]


def test_decimal_timestamps_are_exact(tmp_path: Path) -> None:
    # 1e-7 apart, less than a float64 step at 1.7e9: as floats they tie and keep file order
    times = ["1700000000.0000002", "1700000000.0000001", "1700000000.1", "5e-1", "2"]
    inter = read_interactions(csv_log(tmp_path, times))
    assert inter.times.dtype == np.int64
    assert inter.times.tolist() == [17000000000000002, 17000000000000001, 17000000001000000,
                                    5000000, 20000000]  # fmt: skip
    seqs = prepare(csv_log(tmp_path, times[:2]), tmp_path / "o.txt", k_core=0)
    assert [seqs.item_ids[i - 1] for i in seqs[0]] == ["b", "a"]


def test_iso_dates_and_times_become_nanoseconds(tmp_path: Path) -> None:
    day = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z
    times = ["2020-01-01", "2020-01-01T00:00:01Z", "2020-01-01 01:00:00+01:00",
             "2020-01-01T00:00:00.000000001", '"2020-01-01T00:00:00,5"']  # fmt: skip
    inter = read_interactions(csv_log(tmp_path, times))
    assert inter.times.tolist() == [day, day + 10**9, day, day + 1, day + 10**9 // 2]


@pytest.mark.parametrize(
    ("times", "line", "message"),
    [
        (["1", "2020-01-02"], 3, "timestamp '2020-01-02' is a date in a column of numbers"),
        (["2020-01-02", "17"], 3, "timestamp '17' is a number in a column of dates"),
        (["1", "yesterday"], 3, "timestamp 'yesterday' is not numeric and not an ISO-8601 date"),
        (["1.5", "inf"], 3, "timestamp 'inf' is not finite"),
        (["2300-01-01"], 2, "timestamp '2300-01-01' does not fit int64 as nanoseconds"),
        (["99999999999999999999"], 2, "timestamp '99999999999999999999' does not fit int64"),
    ],
)
def test_bad_timestamps_name_their_line(
    tmp_path: Path, times: list[str], line: int, message: str
) -> None:
    path = csv_log(tmp_path, times)
    with pytest.raises(DataError) as err:
        read_interactions(path)
    assert str(err.value) == f"{path}:{line}: {message}"


# ---------------------------------------------------------------- ids


def test_ids_with_spaces_and_commas_survive_prepare(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text('user_id,item_id,timestamp\n"ann lee","shirt, blue",1\n"ann lee",a b,2\n')
    seqs = prepare(path, tmp_path / "o.txt", k_core=0)
    back = read_sequence_text(tmp_path / "o.txt")
    assert back.user_ids == ["ann lee"] and back.item_ids == ["shirt, blue", "a b"]
    assert back.item_ids == seqs.item_ids


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        ('"a\tb",i,1', 3, "user id 'a\\tb' has a control character"),
        ('u,"x\ny",1', 4, "item id 'x\\ny' has a control character"),  # a record's last line
        ("u,i\x00,1", 3, "item id 'i\\x00' has a control character"),
    ],
)
def test_ids_with_control_characters_are_rejected(
    tmp_path: Path, row: str, line: int, message: str
) -> None:
    path = tmp_path / "log.csv"
    path.write_text(f"user_id,item_id,timestamp\nu,i,0\n{row}\n")
    with pytest.raises(DataError) as err:
        read_interactions(path)
    assert str(err.value) == f"{path}:{line}: {message}"


# ---------------------------------------------------------------- Parquet


@pytest.fixture
def parquet(tmp_path: Path):
    """Write a table of the given columns as ``log.parquet``; return its path."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")

    def write(**columns: object) -> Path:
        path = tmp_path / "log.parquet"
        pq.write_table(pa.table(columns), path)
        return path

    return write


def test_parquet_timestamp_and_date_columns(parquet) -> None:
    import pyarrow as pa

    day = 1_577_836_800 * 10**9
    stamps = pa.array([day // 1000, day // 1000 + 1], pa.timestamp("us", tz="UTC"))
    path = parquet(user_id=["u", "u"], item_id=["a", "b"], timestamp=stamps)
    assert read_interactions(path).times.tolist() == [day, day + 1000]
    path = parquet(user_id=["u"], item_id=["a"], timestamp=pa.array([18262], pa.date32()))
    assert read_interactions(path).times.tolist() == [day]
    path = parquet(user_id=["u"], item_id=["a"], timestamp=["2020-01-01"])
    assert read_interactions(path).times.tolist() == [day]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"item_id": [[1, 2]]}, "column 'item_id' holds list<"),
        ({"user_id": [1.5]}, "column 'user_id' holds double; ids must be strings or integers"),
        ({"timestamp": [[1]]}, "column 'timestamp' holds list<"),
    ],
)
def test_parquet_lists_and_float_ids_are_rejected(parquet, column: dict, message: str) -> None:
    path = parquet(**{"user_id": ["u"], "item_id": ["a"], "timestamp": [1], **column})
    with pytest.raises(DataError) as err:
        read_interactions(path)
    assert str(err.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize("body", [b"", b"not parquet at all", b"PAR1\x00\x00PAR1"])
def test_corrupt_or_empty_parquet_is_a_data_error(
    tmp_path: Path, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "log.parquet"
    path.write_bytes(body)
    with pytest.raises(DataError, match=r"log\.parquet: not a readable Parquet file \("):
        read_interactions(path)
    err = fails(capsys, "prepare", str(path), "--out", str(tmp_path / "o.txt"))
    assert "not a readable Parquet file" in err


def test_a_histories_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    from s4rec.inference import read_histories

    path = tmp_path / "histories.txt"
    path.write_bytes(codecs.BOM_UTF8 + b'a b\n["x y", 3]\r\nc\xe9d\n')
    with pytest.raises(DataError, match=r"histories.txt:3: not UTF-8 text \(byte 0xe9"):
        read_histories(path)
    path.write_bytes(codecs.BOM_UTF8 + b'a b\n\n["x y", 3]\r\n')
    assert read_histories(path) == [["a", "b"], [], ["x y", "3"]]


def test_curves_skip_a_partial_last_metrics_line(tmp_path: Path) -> None:
    from s4rec.report.analyze import read_curves

    log = tmp_path / "metrics.jsonl"
    line = '{"epoch": 1, "loss": {"next_item": 0.5}, "valid": {"NDCG@20": 0.1}}\n'
    log.write_text(line + line.replace("1,", "2,")[:30])  # epoch 2 cut short by a crash
    assert read_curves(log)["epoch"] == [1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([[1, 2.7]],), "integers"),  # a float id was cut down to 2 before
        (([["x"]],), "integers"),
        (([[1, 2]], None, ["a", "b"]), "2 user ids for 1 sequences"),
        (([[1, 2]], None, None, [1, 2]), "raw item ids are strings, got 1"),
        (([[1, 2]], None, None, ["a", "a"]), "raw item ids repeat"),  # answers named one twice
    ],
)
def test_sequences_from_lists_refuse_what_they_would_misread(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sequences.from_lists(*args)
    assert Sequences.from_lists(iter([[1, 2], [2]])).n_items == 2  # any iterable of sequences
