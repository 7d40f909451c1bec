"""The binary dataset format: a directory that training opens memory-mapped.

Layout of ``NAME.s4rec/`` (any directory name works):

* ``offsets.npy``: (U + 1,) int64, ``Sequences.offsets``;
* ``values.npy``: (N,) int64, ``Sequences.values`` (internal item ids, 1-based);
* ``vocab.json``: ``{"users": [...], "items": [...]}``, the raw ids (as beside sequence text);
* ``meta.json``: format name and version, sizes, the source and ``Sequences.fingerprint``.

The directory is written into a temporary sibling and renamed into place, so a reader sees
the old dataset or the whole new one. Arrays are opened read-only (``mmap_mode="r"``): the
processes that load one dataset share its pages, and writing into them raises.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from s4rec.data.readers import DataError, read_sequence_text
from s4rec.data.sequences import Sequences
from s4rec.files import read_json, umask

FORMAT = "s4rec-sequences"
VERSION = 1
_ARRAYS = ("offsets", "values")


def is_binary(path: str | os.PathLike) -> bool:
    """Is ``path`` a directory (that should be) in the binary format?"""
    return Path(path).is_dir()


def write_binary(seqs: Sequences, path: str | os.PathLike) -> Path:
    """Write ``seqs`` as a binary dataset directory at ``path``, atomically; return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(getattr(seqs, name), np.int64))
        vocab = {"users": list(seqs.user_ids), "items": list(seqs.item_ids)}
        (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        meta = {"format": FORMAT, "version": VERSION, "source": seqs.source,
                "fingerprint": seqs.fingerprint()}  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        for f in tmp.iterdir():
            _fsync(f)
        tmp.chmod(0o777 & ~umask())  # as mkdir would make it (mkdtemp: 0700)
        _swap(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``, moving an existing ``path`` aside first and removing it."""
    if not path.exists():
        os.replace(tmp, path)
        return
    if not path.is_dir() or not (path / "meta.json").is_file():
        raise FileExistsError(f"{path}: exists and is not a binary dataset; not replacing it")
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.replace(path, old / path.name)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def read_binary(path: str | os.PathLike) -> Sequences:
    """A binary dataset, its arrays memory-mapped read-only; a problem is one DataError."""
    path = Path(path)
    meta = _meta(path)
    arrays = {name: _array(path / f"{name}.npy") for name in _ARRAYS}
    vocab = _vocab(path / "vocab.json")
    size = meta["fingerprint"]
    found = {
        "users": len(arrays["offsets"]) - 1,
        "items": len(vocab["items"]),
        "interactions": len(arrays["values"]),
    }
    wrong = [
        f"{k} {found[k]:,} (meta.json: {size.get(k)})" for k in found if found[k] != size.get(k)
    ]
    if len(vocab["users"]) != found["users"]:
        wrong.append(f"{len(vocab['users']):,} user ids for {found['users']:,} users")
    if wrong:
        raise DataError(path, None, "inconsistent binary dataset: " + "; ".join(wrong))
    offsets = arrays["offsets"]
    if len(offsets) and (np.diff(offsets) < 0).any():
        raise DataError(path, None, "offsets.npy is not non-decreasing")
    try:
        return Sequences(offsets, arrays["values"], vocab["users"], vocab["items"], str(path))
    except ValueError as e:
        raise DataError(path, None, str(e).removeprefix(f"{path}: ")) from None


def _meta(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise DataError(path, None, "not a binary dataset directory")
    if not (path / "meta.json").is_file():
        raise DataError(path, None, "not a binary dataset (no meta.json)")
    try:
        meta = read_json(path / "meta.json")
    except ValueError as e:
        raise DataError(path, None, f"unreadable meta.json ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(path, None, f"meta.json does not describe a {FORMAT} dataset")
    if meta.get("version") != VERSION:
        raise DataError(
            path, None, f"format version {meta.get('version')!r}; this s4rec reads {VERSION}"
        )
    if not isinstance(meta.get("fingerprint"), dict):
        raise DataError(path, None, "meta.json has no fingerprint")
    return meta


def _array(file: Path) -> np.ndarray:
    """A 1-d int64 array, memory-mapped read-only."""
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(file, None, "missing") from None
    except (ValueError, OSError) as e:
        raise DataError(file, None, f"not a readable .npy array ({e})") from None
    if array.ndim != 1 or array.dtype != np.int64:
        raise DataError(
            file, None, f"expected a 1-d int64 array, found {array.dtype} {array.shape}"
        )
    return array


def _vocab(file: Path) -> dict[str, list[str]]:
    try:
        data = read_json(file)
        vocab = {key: data[key] for key in ("users", "items")}
    except FileNotFoundError:
        raise DataError(file, None, "missing") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(file, None, f"invalid vocabulary ({e})") from None
    if not all(isinstance(ids, list) and all(isinstance(i, str) for i in ids)
               for ids in vocab.values()):  # fmt: skip
        raise DataError(file, None, "invalid vocabulary (users and items must be lists of text)")
    return vocab


def read_dataset(path: str | os.PathLike) -> Sequences:
    """A binary dataset directory or a sequence text file."""
    return read_binary(path) if is_binary(path) else read_sequence_text(path)
