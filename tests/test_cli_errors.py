"""Bad input to the command: one line naming the file and what is wrong, exit status 2;
Ctrl-C during ``train`` says how to resume; a genuine bug still shows its traceback."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest
import torch

from conftest import run, tiny_sets
from s4rec import cli


def error(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 2) -> str:
    """The one line a failing command writes to stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run(*argv)
    assert e.value.code == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def train_with_config(capsys: pytest.CaptureFixture[str], config: Path) -> str:
    return error(capsys, "train", "--config", str(config), "--out", str(config.parent / "r"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.yaml", b"train:\n  epochs: 3\n bad: [\n", "bad.yaml: line 3, column 2: expected"),
        ("toml.yaml", b"[train]\nepochs = 3\n", "toml.yaml: this is TOML: name the file toml.toml"),
        ("binary.yaml", b"\x89PNG\r\n\x1a\n\x00\xff", "binary.yaml: not UTF-8 text"),
        ("bad.toml", b"[train\n", "bad.toml: "),
    ],
)
def test_config_files_that_do_not_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    line = train_with_config(capsys, tmp_path / name)
    assert line.startswith("s4rec train: error: ") and message in line
    assert not (tmp_path / "r").exists()


def test_a_directory_where_a_file_belongs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "conf.yaml").mkdir()
    assert "conf.yaml: Is a directory" in train_with_config(capsys, tmp_path / "conf.yaml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "conf.yaml").write_text("train:\n  epochs: 1\n")
    (tmp_path / "conf.yaml").chmod(0)
    assert "conf.yaml: Permission denied" in train_with_config(capsys, tmp_path / "conf.yaml")


def test_json_errors_in_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.json").write_text('{"best_epoch": 3,')
    line = error(capsys, "train", "--dataset", "synthetic", "--final", "--epochs-from",
                 str(tmp_path), "--out", str(tmp_path / "r"))  # fmt: skip
    assert "results.json: line 1, column 18: " in line


def test_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("")
    line = error(capsys, "train", "--dataset", "synthetic", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "taken"), *tiny_sets())  # fmt: skip
    assert line.endswith("taken: exists and is not a directory")


def test_disk_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "p.tsv"))

    monkeypatch.setattr(cli, "cmd_predict", full)
    line = error(capsys, "predict", "best.pt", "--out", str(tmp_path / "p.tsv"))
    assert line == f"s4rec predict: error: {tmp_path / 'p.tsv'}: no space left on the device"


def test_a_checkpoint_that_needs_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": "s4rec/1", "x": io.StringIO}, buffer)  # a class: pickled by name
    (tmp_path / "evil.pt").write_bytes(buffer.getvalue())
    line = error(capsys, "evaluate", str(tmp_path / "evil.pt"))
    assert "evil.pt: not a readable s4rec checkpoint" in line and "weights_only" not in line


@pytest.mark.parametrize(
    "argv",
    [
        ("predict", "best.pt", "-k", "0", "--out", "p.tsv"),
        ("recommend", "best.pt", "--history", "1", "-k", "-1"),
        ("export", "best.pt", "-k", "0", "--out", "m.onnx"),
        ("evaluate", "best.pt", "--threads", "0"),
        ("train", "--dataset", "synthetic", "--threads", "0", "--out", "r"),
        ("serve", "best.pt", "--port", "70000"),
        ("serve", "best.pt", "--port", "http"),
    ],
)
def test_numbers_out_of_range(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    line = error(capsys, *argv)
    assert "is not" in line and line.startswith("s4rec")


class Interrupted:
    def __init__(self, *args: object) -> None:
        pass

    def fit(self, **kwargs: object) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_says_how_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "Trainer", Interrupted)
    argv = ("train", "--dataset", "synthetic", "--out", str(tmp_path))
    line = error(capsys, *argv, code=130)
    assert line.endswith("interrupted before an epoch finished; start again with --overwrite")
    (tmp_path / "last.pt").write_bytes(b"")
    line = error(capsys, *argv, code=130)
    assert line == f"s4rec train: interrupted; continue with: s4rec {' '.join(argv)} --resume"


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(*args: object) -> None:
        raise TypeError("a genuine bug")

    monkeypatch.setattr(cli, "cmd_methods", bug)
    with pytest.raises(TypeError, match="a genuine bug"):
        run("methods")


def test_verbose_goes_before_or_after_the_command() -> None:
    before, after = ["-v", "evaluate", "x.pt"], ["predict", "-v", "x.pt", "--out", "p.tsv"]
    for argv in (before, after, ["evaluate", "x.pt", "-v"]):
        assert cli.parser().parse_args(argv).verbose is True
    assert cli.parser().parse_args(["evaluate", "x.pt"]).verbose is False
