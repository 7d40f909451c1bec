"""A run directory: one writer at a time, and nothing of an earlier run lost by accident."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .files import write_text_atomic

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not guarded there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# what ``s4rec train`` (and ``analyze``) write into a run directory
RUN_FILES = ("config.yaml", "metrics.jsonl", "last.pt", "best.pt", "results.json", "analysis.json")
LOCK = ".lock"


class RunDirError(ValueError):
    """A run directory that cannot be written as asked."""


@contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold ``RUN_DIR/.lock`` (made with the directory): a second writer is refused."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise RunDirError(
                    f"{run_dir}: another s4rec train (process {holder}) is writing this run"
                    " directory; wait for it to end or choose another --out"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def claim(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Make ``run_dir`` (held with ``locked``) ready for a run: remove temporary files an
    interrupted write left; refuse a directory with a run's files unless the run resumes
    from its ``last.pt`` or ``overwrite`` (which removes them). ``resume`` with no
    ``last.pt`` starts afresh where no epoch has finished (and the run has no results)."""
    for name in RUN_FILES:
        for tmp in run_dir.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    if resume and (run_dir / "last.pt").exists():
        return
    present = [n for n in RUN_FILES if (run_dir / n).exists()]
    if resume and "results.json" not in present:
        log.info("%s: nothing to resume (no epoch has finished); starting afresh", run_dir)
    elif present and not overwrite:
        raise RunDirError(
            f"{run_dir}: holds a run ({', '.join(present)}); --resume (fit(resume=True))"
            " continues it, --overwrite (fit(overwrite=True)) replaces it, or choose another"
            " --out"
        )
    for name in present:
        (run_dir / name).unlink()


def trim_metrics(path: Path, epochs: int) -> None:
    """Keep the ``metrics.jsonl`` lines of the first ``epochs`` epochs; a partial last line
    (the write of an interrupted epoch) is dropped."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # complete lines only
    kept = [ln for ln in lines if ln.strip() and _record(path, ln)["epoch"] <= epochs]
    write_text_atomic(path, "".join(ln + "\n" for ln in kept))


def _record(path: Path, line: str) -> dict[str, Any]:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path}: a line is not JSON ({err})") from None
