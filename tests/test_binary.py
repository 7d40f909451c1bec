"""The binary dataset format: round trip, read-only memory maps, same runs, clean errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import run, tiny_sets
from s4rec.data.binary import read_binary, read_dataset, write_binary
from s4rec.data.catalog import load_sequences
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.readers import DataError, read_sequence_text, write_sequence_text
from s4rec.data.sequences import Sequences
from s4rec.data.synthetic import make_synthetic
from s4rec.pipeline import fingerprint


@pytest.fixture
def text_and_binary(tmp_path: Path) -> tuple[Path, Path]:
    """One synthetic dataset with raw string ids, as sequence text and as a binary directory."""
    seqs = make_synthetic(n_users=300, seed=3).sequences
    seqs = Sequences(seqs.offsets, seqs.values, [f"u{u}" for u in seqs.user_ids],
                     [f"é{i}" for i in seqs.item_ids])  # fmt: skip
    text = write_sequence_text(seqs, tmp_path / "shop.txt")
    return text, write_binary(read_sequence_text(text), tmp_path / "shop.s4rec")


def test_round_trip(text_and_binary: tuple[Path, Path]) -> None:
    text, binary = text_and_binary
    a, b = read_sequence_text(text), read_binary(binary)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.values, b.values)
    assert (a.user_ids, a.item_ids) == (b.user_ids, b.item_ids)
    assert (
        fingerprint(a)
        == fingerprint(b)
        == json.loads((binary / "meta.json").read_text())["fingerprint"]
    )
    assert b.source == str(binary) and b.values.dtype == b.offsets.dtype == np.int64
    assert sorted(p.name for p in binary.parent.iterdir()) == [
        "shop.s4rec", "shop.txt", "shop.vocab.json"
    ]  # fmt: skip
    assert fingerprint(load_sequences(binary)) == fingerprint(read_dataset(text))


def test_memory_mapped_read_only(text_and_binary: tuple[Path, Path]) -> None:
    seqs = read_binary(text_and_binary[1])
    for array in (seqs.offsets, seqs.values):
        assert isinstance(array, np.memmap) and not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = LeaveOneOut(seqs)
    assert data.flat.data_ptr() == seqs.values.ctypes.data  # shared, not copied


def test_rewrite_replaces(text_and_binary: tuple[Path, Path], tmp_path: Path) -> None:
    binary = text_and_binary[1]
    small = Sequences.from_lists([[1, 2, 3], [2, 3, 1, 2]])
    write_binary(small, binary)
    assert fingerprint(read_binary(binary)) == fingerprint(small)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "shop.s4rec", "shop.txt", "shop.vocab.json"
    ]  # fmt: skip
    with pytest.raises(FileExistsError, match="not a binary dataset"):
        write_binary(small, text_and_binary[0].parent / "shop.txt")


def test_train_and_evaluate_match_text(
    text_and_binary: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = []
    for name, data in zip(("text", "binary"), text_and_binary, strict=True):
        out = tmp_path / name
        run("train", "--dataset", str(data), "--epochs", "1", "--seed", "1", "--no-progress",
            "--out", str(out), *tiny_sets())  # fmt: skip
        results = json.loads((out / "results.json").read_text())
        capsys.readouterr()
        run("evaluate", str(out / "best.pt"), "--json")
        evaluated = json.loads(capsys.readouterr().out)
        assert evaluated["test"]["all"] == results["test"]
        metrics.append((results["valid"], results["test"]))
    assert metrics[0] == metrics[1]


def test_prepare_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "log.csv").write_text(
        "user_id,item_id,timestamp\nbob,x,3\nalice,y,1\nbob,y,1\nalice,z,2\ncarol,x,5\n"
    )
    args = ("prepare", str(tmp_path / "log.csv"), "--k-core", "1", "--out")
    run(*args, str(tmp_path / "out.txt"))
    run(*args, str(tmp_path / "out.s4rec"), "--out-format", "binary")
    assert "3 users, 3 items, 5 interactions" in capsys.readouterr().out
    text, binary = read_dataset(tmp_path / "out.txt"), read_dataset(tmp_path / "out.s4rec")
    assert fingerprint(text) == fingerprint(binary)
    assert binary.user_ids == ["alice", "bob", "carol"] and binary.item_ids == ["y", "z", "x"]


def _corrupt(binary: Path, name: str, content: bytes | None) -> None:
    if content is None:
        (binary / name).unlink()
    else:
        (binary / name).write_bytes(content)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("meta.json", None, "not a binary dataset"),
        ("meta.json", b"{", "unreadable meta.json"),
        ("meta.json", b'{"format": "s4rec-sequences", "version": 9}', "format version 9"),
        ("offsets.npy", None, "offsets.npy: missing"),
        ("values.npy", b"garbage", "values.npy: not a readable .npy array"),
        ("vocab.json", b'{"users": []}', "vocab.json: invalid vocabulary"),
        ("vocab.json", None, "vocab.json: missing"),
    ],
)
def test_corrupt_is_one_clean_error(
    text_and_binary: tuple[Path, Path], name: str, content: bytes | None, message: str
) -> None:
    binary = text_and_binary[1]
    _corrupt(binary, name, content)
    with pytest.raises(DataError, match=message) as e:
        read_dataset(binary)
    assert str(binary) in str(e.value) and "\n" not in str(e.value)


def test_inconsistent_arrays(text_and_binary: tuple[Path, Path], tmp_path: Path) -> None:
    binary = text_and_binary[1]
    np.save(binary / "values.npy", np.arange(5, dtype=np.int64))
    with pytest.raises(DataError, match="inconsistent binary dataset: interactions 5"):
        read_binary(binary)
    np.save(binary / "values.npy", np.arange(5, dtype=np.int32))
    with pytest.raises(DataError, match="expected a 1-d int64 array"):
        read_binary(binary)
    with pytest.raises(DataError, match="not a binary dataset"):
        read_dataset(tmp_path)


def test_bad_dataset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        run("train", "--dataset", str(tmp_path), "--out", str(tmp_path / "r"))
    assert e.value.code == 2
    assert f"{tmp_path}: not a binary dataset" in capsys.readouterr().err
