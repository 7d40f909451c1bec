"""Reading text files with errors that name them; writing files so that a reader sees the
old file or the whole new one, never a part."""

from __future__ import annotations

import errno
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


def read_parsed(path: str | Path, parse: Callable[[str], T]) -> T:
    """``parse`` (``json.loads``, ``yaml.safe_load``, ``tomllib.loads``) of the UTF-8 text
    of ``path``; text that is not UTF-8 or does not parse is a ValueError naming the file
    and the line."""
    path = Path(path)
    try:
        return parse(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}, column {err.colno}: {err.msg}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"{path}: {where}{err.problem or err.context}") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: {str(err).splitlines()[0]}") from None


def read_json(path: str | Path) -> Any:
    """A JSON file's content (errors: ``read_parsed``)."""
    return read_parsed(path, json.loads)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """A file to write instead of ``path`` (its folder is made), renamed over it once
    written and synced; on error it is removed and ``path`` is left as it was.

    A ``path`` that is a stream rather than a file (``/dev/stdout``, a pipe, a terminal) is
    written directly: nothing can be renamed over it. A directory is an error naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file to write", str(path))
    if path.exists() and not path.is_file():
        with open(path, mode, encoding=None if "b" in mode else "utf-8") as stream:
            yield stream
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # as open() would make it (mkstemp: 0600)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` and a newline in one write (``O_APPEND``), synced: a reader sees
    whole lines, and at most the last one cut short by a crash or a full disk."""
    data = (line + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, "short write (disk full?)", str(path))
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``Path(path).write_text(text)``, atomically."""
    with atomic_file(path) as f:
        f.write(text)
