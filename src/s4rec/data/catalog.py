"""Named benchmark datasets: where to find them, how to build them from raw files.

A named dataset's sequence text file is looked for in, in order: the ``data_dir`` argument,
each directory of ``$S4REC_DATA`` (``os.pathsep``-separated) and the cache directory
(``$S4REC_CACHE`` or ``~/.cache/s4rec``). When it is missing, a raw source file found in the
same directories (or downloaded from its public source) is prepared (5-core) into the cache.
A path to a sequence text file or a binary dataset directory (:mod:`s4rec.data.binary`)
is loaded as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from s4rec.data.binary import is_binary, read_dataset
from s4rec.data.preprocess import prepare
from s4rec.data.readers import DataError, read_sequence_text
from s4rec.data.sequences import Sequences
from s4rec.files import atomic_file

logger = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
TIMEOUT_S = 5.0
_AMAZON_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_{}_5.json.gz"
_AMAZON_HOME = "https://cseweb.ucsd.edu/~jmcauley/datasets/amazon/links.html"


class DatasetNotFound(FileNotFoundError):
    """A dataset could be neither found, prepared from raw files, nor downloaded."""


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: its sequence file and the raw files it can be prepared from."""

    name: str
    filename: str
    raw_files: tuple[str, ...]
    url: str | None
    homepage: str
    zip_member: str | None = None


def _amazon(name: str, category: str) -> DatasetInfo:
    raw = (f"reviews_{category}_5.json.gz", f"ratings_{category}.csv")
    return DatasetInfo(name, f"{category}.txt", raw, _AMAZON_URL.format(category), _AMAZON_HOME)


DATASETS: dict[str, DatasetInfo] = {
    "beauty": _amazon("beauty", "Beauty"),
    "sports": _amazon("sports", "Sports_and_Outdoors"),
    "toys": _amazon("toys", "Toys_and_Games"),
    "ml-1m": DatasetInfo(
        "ml-1m",
        "ml-1m.txt",
        ("ml-1m/ratings.dat", "ratings.dat", "ml-1m.zip"),
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        "https://grouplens.org/datasets/movielens/1m/",
        zip_member="ml-1m/ratings.dat",
    ),
    "yelp": DatasetInfo(
        "yelp",
        "yelp.txt",
        ("yelp_academic_dataset_review.json",),
        None,
        "https://www.yelp.com/dataset",
    ),
}


def cache_dir() -> Path:
    """``$S4REC_CACHE`` or ``~/.cache/s4rec``."""
    return Path(os.environ.get("S4REC_CACHE") or Path.home() / ".cache" / "s4rec").expanduser()


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Directories searched for dataset files, in order, each with where it came from."""
    dirs = [(Path(data_dir).expanduser(), "data_dir")] if data_dir else []
    env = os.environ.get("S4REC_DATA", "")
    dirs += [(Path(p).expanduser(), "S4REC_DATA") for p in env.split(os.pathsep) if p]
    dirs.append((cache_dir(), "cache"))
    unique: list[tuple[Path, str]] = []
    for d, why in dirs:
        if all(d != seen for seen, _ in unique):
            unique.append((d, why))
    return unique


def resolve_dataset(
    name_or_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Path:
    """Path of a named dataset's sequence file (preparing it if needed), or of a given file or
    binary dataset directory."""
    key = str(name_or_path).lower()
    if key == SYNTHETIC:
        raise ValueError("'synthetic' is generated in memory and has no file; use load_sequences")
    info = DATASETS.get(key)
    dirs = search_dirs(data_dir)
    if info is None:  # a path: as given, else under (or by its name in) each search directory
        path = Path(name_or_path).expanduser()
        for candidate in [path, *(d / p for d, _ in dirs for p in (path, Path(path.name)))]:
            if candidate.is_file() or is_binary(candidate):
                return candidate
        names = ", ".join([*DATASETS, SYNTHETIC])
        looked = ", ".join(str(d) for d, _ in dirs)
        raise DatasetNotFound(
            f"{name_or_path!r} is neither a dataset name ({names}) nor a file or binary dataset"
            f" (looked here and in {looked}; --data-dir or $S4REC_DATA add a directory)"
        )
    found = _find(dirs, (info.filename,))
    if found is not None:
        return found
    raw = _find(dirs, info.raw_files)
    problem = None
    if raw is None and download and info.url:
        try:
            raw = _fetch(info)
        except OSError as e:
            problem = f"downloading {info.url} failed: {e}"
            logger.warning(problem)
    if raw is None:
        raise DatasetNotFound(_not_found_message(info, dirs, problem))
    out = cache_dir() / info.filename
    logger.info("preparing %s from %s into %s", info.name, raw, out)
    prepare(_unzip(raw, info), out, k_core=5)
    return out


def load_sequences(
    name_or_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    download: bool = True,
    synthetic_users: int | None = None,
) -> Sequences:
    """Load a named dataset, a sequence text file, a binary dataset directory, or ``synthetic``.

    ``synthetic`` is generated with ``seed`` and, if given, ``synthetic_users`` users.
    """
    if str(name_or_path).lower() == SYNTHETIC:
        from s4rec.data.synthetic import make_synthetic

        if synthetic_users is None:
            return make_synthetic(seed=seed).sequences
        return make_synthetic(n_users=synthetic_users, seed=seed).sequences
    return read_dataset(resolve_dataset(name_or_path, data_dir, download))


def catalog_table(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per named dataset, with statistics for those whose file is present.

    Keys: name, file, path (None if absent), searched (directories), users, items,
    interactions, avg_length, repeats (``Sequences.held_out_repeats``; these five None if
    absent), note (why absent, or a read error).
    """
    dirs = search_dirs(data_dir)
    searched = [str(d) for d, _ in dirs]
    rows = []
    for info in DATASETS.values():
        path = _find(dirs, (info.filename,))
        if path is None:
            note = f"not found; raw source: {' or '.join(info.raw_files)} ({info.homepage})"
            rows.append(_row(info.name, info.filename, None, searched, note))
            continue
        try:
            seqs = read_sequence_text(path)
        except DataError as e:
            rows.append(_row(info.name, info.filename, path, searched, str(e)))
        else:
            rows.append(_row(info.name, info.filename, path, searched, None, seqs))
    note = "generated in memory (s4rec.data.synthetic.make_synthetic)"
    rows.append(_row(SYNTHETIC, None, None, [], note))
    return rows


def _row(
    name: str,
    file: str | None,
    path: Path | None,
    searched: list[str],
    note: str | None,
    seqs: Sequences | None = None,
) -> dict:
    n = 0 if seqs is None else len(seqs.values)
    return {
        "name": name,
        "file": file,
        "path": None if path is None else str(path),
        "searched": searched,
        "users": None if seqs is None else seqs.n_users,
        "items": None if seqs is None else seqs.n_items,
        "interactions": None if seqs is None else n,
        "avg_length": None if seqs is None else round(n / seqs.n_users, 2),
        "repeats": None if seqs is None else seqs.held_out_repeats(),
        "note": note,
    }


def download_file(url: str, dest: Path, timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically with a progress bar; fail fast when offline."""
    _resolve(urllib.parse.urlsplit(url).hostname or "", timeout)
    with (
        atomic_file(dest, "wb", ".part") as f,
        urllib.request.urlopen(url, timeout=timeout) as resp,
    ):
        total = int(resp.headers.get("Content-Length") or 0) or None
        terminal = sys.stderr.isatty()  # no bar in logs
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=dest.name, disable=not terminal
        ) as bar:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    return dest


def _resolve(host: str, timeout: float) -> None:
    """Look ``host`` up within ``timeout`` seconds (socket timeouts do not cover DNS)."""
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            socket.getaddrinfo(host, None)
        except OSError as e:
            outcome.append(e)
        else:
            outcome.append(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError(f"looking up {host} took more than {timeout:g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _fetch(info: DatasetInfo) -> Path:
    """Download a dataset's raw file into the cache directory."""
    assert info.url is not None
    dest = cache_dir() / Path(urllib.parse.urlsplit(info.url).path).name
    logger.info("downloading %s to %s", info.url, dest)
    return download_file(info.url, dest)


def _unzip(raw: Path, info: DatasetInfo) -> Path:
    """The raw file itself, or its member extracted into the cache when it is a zip archive."""
    if raw.suffix != ".zip" or info.zip_member is None:
        return raw
    out = cache_dir() / info.zip_member
    with (
        zipfile.ZipFile(raw) as z,
        z.open(info.zip_member) as src,
        atomic_file(out, "wb", ".part") as dst,
    ):
        shutil.copyfileobj(src, dst, 1 << 20)
    return out


def _find(dirs: list[tuple[Path, str]], names: tuple[str, ...]) -> Path | None:
    """First existing ``dir/name``, directories outermost."""
    for d, _ in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    return None


def _not_found_message(info: DatasetInfo, dirs: list[tuple[Path, str]], problem: str | None) -> str:
    where = "\n".join(f"  {d}  ({why})" for d, why in dirs)
    raw = " or ".join(info.raw_files)
    lines = [
        f"dataset {info.name!r} not found. Looked for {info.filename} in:",
        where,
        "Do one of:",
        f"  - put {info.filename} (sequence text) into one of those directories;",
        f"  - put the raw file {raw} into one of them; it is prepared (5-core) into "
        f"{cache_dir() / info.filename} on first use;",
        f"  - add a directory with --data-dir or S4REC_DATA (several joined by {os.pathsep!r}).",
        f"Raw data: {info.url or info.homepage} (see {info.homepage}).",
    ]
    if problem:
        lines.append(f"Automatic download: {problem}.")
    elif info.url is None:
        lines.append("It cannot be downloaded automatically (licence terms); fetch it by hand.")
    return "\n".join(lines)
