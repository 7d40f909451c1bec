"""Run directories that cannot be lost: one writer, no silent overwrite, checked data,
whole metric lines, ordinary permissions, and the use commands' --set and --threads."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from conftest import run, tiny_sets
from s4rec.checkpoint import load_state, save_atomic
from s4rec.data.readers import write_sequence_text
from s4rec.data.sequences import Sequences
from s4rec.data.synthetic import make_synthetic
from s4rec.files import append_line, write_text_atomic
from s4rec.rundir import RunDirError, claim, locked

USERS = 120


def write_data(path: Path, n_users: int = USERS, seed: int = 3) -> Path:
    return write_sequence_text(make_synthetic(n_users=n_users, seed=seed).sequences, path)


def train(data: Path, out: Path, *extra: str) -> None:
    run("train", "--dataset", str(data), "--epochs", "1", "--no-progress", "--threads", "1",
        "--out", str(out), *tiny_sets(), *extra)  # fmt: skip


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must exit with status 2; its stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run(*argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def contents(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rundirs")
    data = write_data(root / "seqs.txt")
    train(data, root / "run")
    return {"root": root, "data": data, "run": root / "run"}


@pytest.fixture
def copy(finished: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """The finished run, copied: a test may change it (not its data)."""
    shutil.copytree(finished["run"], tmp_path / "run")
    return {"data": finished["data"], "run": tmp_path / "run"}


def test_a_finished_run_is_not_overwritten(
    copy: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = contents(copy["run"])
    err = fails(capsys, "train", "--dataset", str(copy["data"]), "--out", str(copy["run"]),
                "--epochs", "1", "--no-progress", *tiny_sets())  # fmt: skip
    assert "holds a run" in err and "--overwrite" in err
    assert contents(copy["run"]) == before
    train(copy["data"], copy["run"], "--overwrite", "--set", "train.seed=5")
    assert "seed: 5" in (copy["run"] / "config.yaml").read_text()


def test_a_failing_run_touches_nothing(
    copy: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = contents(copy["run"])
    fails(capsys, "train", "--dataset", str(copy["data"]), "--out", str(copy["run"]),
          "--overwrite", "--set", "train.precision=fp16", "--device", "cpu")  # fmt: skip
    assert contents(copy["run"]) == before


def test_resume_with_nothing_to_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = fails(capsys, "train", "--dataset", "synthetic", "--out", str(tmp_path / "new"),
                "--resume")  # fmt: skip
    assert "nothing to resume" in err and not (tmp_path / "new").exists()


def test_a_second_writer_is_refused(
    copy: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = contents(copy["run"])
    with locked(copy["run"]):  # as a running `s4rec train` holds it
        err = fails(capsys, "train", "--dataset", str(copy["data"]), "--resume", "--epochs",
                    "2", "--no-progress", "--out", str(copy["run"]), *tiny_sets())  # fmt: skip
    assert "another s4rec train" in err
    assert {k: v for k, v in contents(copy["run"]).items() if k != ".lock"} == {
        k: v for k, v in before.items() if k != ".lock"
    }


def test_other_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run_dir = write_data(tmp_path / "seqs.txt"), tmp_path / "run"
    train(data, run_dir)
    best = str(run_dir / "best.pt")
    write_data(data, n_users=USERS, seed=4)  # other sequences
    assert "not the data this model was trained on" in fails(capsys, "evaluate", best)
    assert "not the data this model was trained on" in fails(
        capsys, "predict", best, "--out", str(data.parent / "p.tsv")
    )
    err = fails(capsys, "train", "--dataset", str(data), "--resume", "--epochs", "2",
                "--no-progress", "--out", str(run_dir), *tiny_sets())  # fmt: skip
    assert "not the data this model was trained on" in err
    seqs = make_synthetic(n_users=USERS, seed=3).sequences  # one more item than the model has
    lists = [seqs[u].tolist() for u in range(seqs.n_users)] + [[seqs.n_items + 1, 1, 2]]
    bigger = Sequences.from_lists(
        lists, user_ids=[*seqs.user_ids, "new"], item_ids=[*seqs.item_ids, "new"]
    )
    write_sequence_text(bigger, data)
    assert "items" in fails(capsys, "evaluate", best)  # was an IndexError


def test_evaluates_from_any_directory(
    finished: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(finished["root"])
    train(Path("seqs.txt"), tmp_path / "rel")  # a relative dataset path
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    run("evaluate", str(tmp_path / "rel" / "best.pt"), "--json")
    results = json.loads((tmp_path / "rel" / "results.json").read_text())
    assert json.loads(capsys.readouterr().out)["test"]["all"] == results["test"]


def test_moved_data_is_found_through_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_data(Path("old") / "seqs.txt")
    train(Path("old") / "seqs.txt", tmp_path / "run")
    Path("new").mkdir()
    (Path("old") / "seqs.txt").rename(Path("new") / "seqs.txt")
    err = fails(capsys, "evaluate", str(tmp_path / "run" / "best.pt"))
    assert "which is no longer there" in err and "--data-dir" in err
    run("evaluate", str(tmp_path / "run" / "best.pt"), "--data-dir", "new", "--json")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert json.loads(capsys.readouterr().out)["test"]["all"] == results["test"]


def test_an_older_checkpoint_still_loads(
    copy: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    state = load_state(copy["run"] / "best.pt")
    del state["data"]
    save_atomic(state, copy["run"] / "best.pt")
    with caplog.at_level(logging.WARNING):
        run("evaluate", str(copy["run"] / "best.pt"))
    assert "without a data fingerprint" in caplog.text


def test_resume_drops_a_partial_line_and_stale_temporaries(copy: dict[str, Path]) -> None:
    run_dir = copy["run"]
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "lo')  # an epoch cut short while writing its line
    (run_dir / ".last.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    train(copy["data"], run_dir, "--resume", "--epochs", "2")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2]
    assert not list(run_dir.glob(".*.tmp"))


def test_resume_needs_only_the_run_directory(
    copy: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's config.yaml is the configuration: ``--out RUN --resume --epochs 2`` continues
    it, and a change beyond the free settings is refused."""
    run_dir = copy["run"]
    err = fails(capsys, "train", "--out", str(run_dir), "--resume", "--overwrite")
    assert "give one" in err
    err = fails(capsys, "train", "--out", str(run_dir), "--resume", "--set", "model.hidden=64")
    assert "another configuration (model.hidden:" in err
    run("train", "--out", str(run_dir), "--resume", "--epochs", "2", "--no-progress")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["epoch"] for ln in lines] == [1, 2]


def test_files_get_the_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        append_line(tmp_path / "b.jsonl", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.jsonl").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.jsonl").read_text() == "{}\n"


def test_a_stream_is_written_directly_and_a_directory_is_refused(tmp_path: Path) -> None:
    """``--out /dev/stdout`` or a pipe gets the text; nothing is renamed over the stream."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    write_text_atomic(fifo, "a line\n")
    reader.join(timeout=10)
    assert got == ["a line\n"] and stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(IsADirectoryError, match="is a directory") as err:
        write_text_atomic(tmp_path, "x")
    assert err.value.filename == str(tmp_path)


def test_use_commands_take_runtime_settings(
    finished: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    best = str(finished["run"] / "best.pt")
    run("evaluate", best, "--threads", "1", "--set", "train.eval_batch_users=7", "--json")
    results = json.loads((finished["run"] / "results.json").read_text())
    assert json.loads(capsys.readouterr().out)["test"]["all"] == pytest.approx(results["test"])
    err = fails(capsys, "evaluate", best, "--set", "model.hidden=8")
    assert "only eval.* settings can change after training" in err


def test_resume_in_the_library_starts_a_run_that_never_finished_an_epoch(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("x")  # interrupted in its first epoch
    claim(tmp_path, resume=True, overwrite=False)
    assert not (tmp_path / "config.yaml").exists()
    (tmp_path / "results.json").write_text("{}")  # a finished run without last.pt
    with pytest.raises(RunDirError, match="holds a run"):
        claim(tmp_path, resume=True, overwrite=False)
