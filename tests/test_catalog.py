import gzip
import os
import time
import zipfile
from pathlib import Path

import pytest

from s4rec.data import catalog
from s4rec.data.catalog import (
    DatasetNotFound,
    catalog_table,
    load_sequences,
    resolve_dataset,
    search_dirs,
)
from s4rec.data.readers import read_sequence_text


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty S4REC_DATA, a private cache, and a downloader that records calls and fails."""
    monkeypatch.delenv("S4REC_DATA", raising=False)
    monkeypatch.setenv("S4REC_CACHE", str(tmp_path / "cache"))
    calls = []

    def offline(url, dest, timeout=catalog.TIMEOUT_S):
        calls.append(url)
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(catalog, "download_file", offline)
    return calls


def put(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory / name


def test_resolution_order(tmp_path, monkeypatch):
    given, env1, env2, cache = (tmp_path / d for d in ("given", "env1", "env2", "cache"))
    monkeypatch.setenv("S4REC_DATA", os.pathsep.join([str(env1), str(env2)]))
    for d in (given, env2, cache):
        put(d, "Beauty.txt", "1 1 2\n")
    assert resolve_dataset("beauty", data_dir=given) == given / "Beauty.txt"
    assert resolve_dataset("Beauty") == env2 / "Beauty.txt"
    put(env1, "Beauty.txt", "1 1 2\n")
    assert resolve_dataset("beauty") == env1 / "Beauty.txt"
    monkeypatch.delenv("S4REC_DATA")
    assert resolve_dataset("beauty") == cache / "Beauty.txt"
    dirs = [d for d, _ in search_dirs(given)]
    assert dirs == [given, cache]


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("S4REC_CACHE")
    assert catalog.cache_dir() == Path.home() / ".cache" / "s4rec"


def test_path_instead_of_name(tmp_path):
    path = put(tmp_path / "x", "mine.txt", "5 9 7\n")
    assert resolve_dataset(path) == path
    assert load_sequences(str(path)).item_ids == ["7", "9"]
    with pytest.raises(DatasetNotFound, match="neither a dataset name"):
        resolve_dataset(tmp_path / "nope.txt")


def test_not_found_message(tmp_path, monkeypatch, isolated):
    env = tmp_path / "env"
    monkeypatch.setenv("S4REC_DATA", str(env))
    with pytest.raises(DatasetNotFound) as err:
        resolve_dataset("sports", data_dir=tmp_path / "given")
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for text in (
        "Sports_and_Outdoors.txt",
        str(tmp_path / "given"),
        str(env),
        str(tmp_path / "cache"),
        "reviews_Sports_and_Outdoors_5.json.gz",
        "ratings_Sports_and_Outdoors.csv",
        "reviews_Sports_and_Outdoors_5.json.gz (see https://cseweb.ucsd.edu",
        "network unreachable (test)",
        "S4REC_DATA",
    ):
        assert text in msg
    assert isolated == [catalog.DATASETS["sports"].url]


def test_no_download_when_disabled_or_impossible(isolated):
    with pytest.raises(DatasetNotFound, match=r"ml-1m\.zip"):
        resolve_dataset("ml-1m", download=False)
    with pytest.raises(DatasetNotFound, match="cannot be downloaded automatically"):
        resolve_dataset("yelp")
    assert isolated == []


def reviews_gz(path: Path) -> None:
    """Five users who each reviewed the same five products, as 2014-style dict literals."""
    recs = [
        repr({"reviewerID": f"R{u}", "asin": f"P{(u + t) % 5}", "unixReviewTime": t})
        for u in range(5)
        for t in range(5)
    ]
    path.write_bytes(gzip.compress(("\n".join(recs) + "\n").encode()))


def test_prepares_raw_file_into_cache(tmp_path, isolated):
    given = tmp_path / "given"
    given.mkdir()
    reviews_gz(given / "reviews_Beauty_5.json.gz")
    path = resolve_dataset("beauty", data_dir=given)
    assert path == tmp_path / "cache" / "Beauty.txt"
    seqs = load_sequences("beauty", data_dir=given)
    assert seqs.user_ids == [f"R{u}" for u in range(5)]
    assert [seqs.item_ids[i - 1] for i in seqs[1]] == ["P1", "P2", "P3", "P4", "P0"]
    assert isolated == []


def test_fake_download_of_movielens_zip(tmp_path, monkeypatch):
    def fake(url, dest, timeout=catalog.TIMEOUT_S):
        rows = "".join(f"{u}::{i}::5::{i}\n" for u in range(1, 6) for i in range(10, 15))
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w") as z:
            z.writestr("ml-1m/ratings.dat", rows)
        return dest

    monkeypatch.setattr(catalog, "download_file", fake)
    seqs = load_sequences("ml-1m")
    assert (seqs.n_users, seqs.n_items, len(seqs.values)) == (5, 5, 25)
    assert (tmp_path / "cache" / "ml-1m" / "ratings.dat").exists()
    assert resolve_dataset("ml-1m") == tmp_path / "cache" / "ml-1m.txt"


def test_dns_lookup_is_bounded(monkeypatch):
    monkeypatch.setattr(catalog.socket, "getaddrinfo", lambda *a: time.sleep(2))
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="took more than"):
        catalog._resolve("example.org", 0.05)
    assert time.perf_counter() - start < 1


def test_catalog_table(tmp_path):
    put(tmp_path / "given", "Toys_and_Games.txt", "1 1 2 3\n2 2 3\n")
    rows = {r["name"]: r for r in catalog_table(tmp_path / "given")}
    assert set(rows) == {"beauty", "sports", "toys", "ml-1m", "yelp", "synthetic"}
    toys = rows["toys"]
    assert toys["path"] == str(tmp_path / "given" / "Toys_and_Games.txt")
    assert (toys["users"], toys["items"], toys["interactions"], toys["avg_length"]) == (
        2,
        3,
        5,
        2.5,
    )
    beauty = rows["beauty"]
    assert beauty["path"] is None and beauty["users"] is None
    assert str(tmp_path / "cache") in beauty["searched"]
    assert "reviews_Beauty_5.json.gz" in beauty["note"]
    put(tmp_path / "given", "yelp.txt", "1\n")
    assert (
        "without items" in {r["name"]: r for r in catalog_table(tmp_path / "given")}["yelp"]["note"]
    )


def test_synthetic():
    pytest.importorskip("s4rec.data.synthetic")
    a = load_sequences("synthetic", seed=3, synthetic_users=50)
    assert a.n_users == 50
    assert (a.values == load_sequences("synthetic", seed=3, synthetic_users=50).values).all()
    with pytest.raises(ValueError, match="in memory"):
        resolve_dataset("synthetic")


def shared_data_dir() -> Path | None:
    env = os.environ.get("S4REC_DATA", "")
    dirs = [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    return next((d for d in dirs if (d / "Beauty.txt").is_file()), None)


SHARED = shared_data_dir()


@pytest.mark.skipif(SHARED is None, reason="Beauty.txt not in $S4REC_DATA nor ../shared/data")
def test_real_beauty_counts():
    seqs = load_sequences("beauty", data_dir=SHARED)
    assert (seqs.n_users, seqs.n_items, len(seqs.values)) == (22363, 12101, 198502)
    assert seqs.item_ids[:3] == ["1", "2", "3"]
    assert read_sequence_text(SHARED / "Beauty.txt").user_ids[-1] == "22363"
