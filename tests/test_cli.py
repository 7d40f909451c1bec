"""The ``s4rec`` command end to end: prepare, train, evaluate, predict, recommend, datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run, tiny_config, tiny_sets
from s4rec import cli
from s4rec.checkpoint import load_model, load_state
from s4rec.config import ModelConfig
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.readers import read_sequence_text
from s4rec.data.sequences import Sequences
from s4rec.data.synthetic import make_synthetic
from s4rec.evaluate import Ranker, evaluate
from s4rec.inference import Recommender, raw_id, read_histories, write_predictions
from s4rec.methods import METHODS
from s4rec.model import SASRec
from s4rec.train import Trainer


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must exit with status 2; return its stderr."""
    with pytest.raises(SystemExit) as e:
        run(*argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A raw CSV log with string ids -> prepare -> train, all through the command."""
    root = tmp_path_factory.mktemp("cli")
    seqs = make_synthetic(n_users=400, seed=1).sequences
    rows = ["user_id,item_id,timestamp"]
    for u in range(seqs.n_users):
        rows += [f"u{u},sku{i},{1000 + t}" for t, i in enumerate(seqs[u].tolist())]
    (root / "log.csv").write_text("\n".join(rows) + "\n")
    run("prepare", str(root / "log.csv"), "--out", str(root / "shop.txt"))
    run_dir = root / "run"
    run(
        "train", "--dataset", str(root / "shop.txt"), "--epochs", "4", "--no-progress",
        "--out", str(run_dir), *tiny_sets(),
    )  # fmt: skip
    return {"root": root, "run": run_dir, "data": root / "shop.txt"}


def test_train_on_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("train", "--dataset", "synthetic", "--epochs", "2", "--seed", "7", "--no-progress",
        "--json", "--out", str(tmp_path), *tiny_sets())  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert {"config.yaml", "metrics.jsonl", "best.pt", "last.pt", "results.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    results = json.loads((tmp_path / "results.json").read_text())
    assert printed["test"] == results["test"] and printed["epochs"] == 2
    assert printed["test_by_group"] == results["test_by_group"]  # as the table shows them
    assert results["seed"] == 7 and results["dataset"] == "synthetic"
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_prepare_tiny_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "log.csv").write_text(
        "user_id,item_id,timestamp\nbob,x,3\nalice,y,1\nbob,y,1\nalice,z,2\ncarol,x,5\n"
    )
    run("prepare", str(tmp_path / "log.csv"), "--out", str(tmp_path / "out.txt"), "--k-core", "1")
    assert "3 users, 3 items, 5 interactions" in capsys.readouterr().out
    assert (tmp_path / "out.txt").read_text() == "1 1 2\n2 1 3\n3 3\n"
    seqs = read_sequence_text(tmp_path / "out.txt")
    assert seqs.user_ids == ["alice", "bob", "carol"] and seqs.item_ids == ["y", "z", "x"]


def test_prepare_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "log.csv").write_text("user,item\na,b\n")
    err = fails(capsys, "prepare", str(tmp_path / "log.csv"), "--out", str(tmp_path / "o.txt"))
    assert "missing column(s)" in err and "--user-col" in err
    err = fails(capsys, "prepare", str(tmp_path / "log.csv"), "--out", str(tmp_path / "o.txt"),
                "--k-core", "-3")  # fmt: skip
    assert "argument --k-core: -3 is not at least 0" in err


def test_pipeline_run_dir(pipeline: dict[str, Path]) -> None:
    names = {p.name for p in pipeline["run"].iterdir()}
    assert {"config.yaml", "metrics.jsonl", "best.pt", "results.json"} <= names
    seqs = read_sequence_text(pipeline["data"])
    assert seqs.item_ids[0].startswith("sku") and seqs.user_ids[0].startswith("u")


def test_evaluate_matches_results(
    pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run("evaluate", str(pipeline["run"] / "best.pt"), "--json")
    out = json.loads(capsys.readouterr().out)
    results = json.loads((pipeline["run"] / "results.json").read_text())
    assert out["test"]["all"] == results["test"]
    assert out["valid"]["all"] == results["valid"]
    assert out["test"]["head"] == results["test_by_group"]["head"]


def test_predict_tsv(pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tsv = pipeline["root"] / "top20.tsv"
    run(
        "predict",
        str(pipeline["run"] / "best.pt"),
        "--split",
        "test",
        "--k",
        "20",
        "--out",
        str(tsv),
    )
    assert "top-20 test predictions" in capsys.readouterr().err
    seqs = read_sequence_text(pipeline["data"])
    history = {
        u: [seqs.item_ids[i - 1] for i in seqs[r].tolist()] for r, u in enumerate(seqs.user_ids)
    }
    lines = tsv.read_text().splitlines()
    assert len(lines) == seqs.n_users
    hits = 0
    for line in lines:
        user, items = line.split("\t")
        top = items.split(" ")
        assert len(top) == len(set(top)) == 20
        assert all(t.startswith("sku") for t in top)
        assert not set(top) & set(history[user][:-1])  # nothing the user had before the target
        hits += history[user][-1] in top
    assert {ln.split("\t")[0] for ln in lines} == set(seqs.user_ids)
    results = json.loads((pipeline["run"] / "results.json").read_text())
    assert hits / len(lines) == results["test"]["HR@20"]
    assert 0 < hits < len(lines)


def test_predict_next_after_the_whole_sequence(pipeline: dict[str, Path]) -> None:
    """``--split next``: what to show tomorrow, after every item of the user's sequence."""
    out = pipeline["root"] / "next.jsonl"
    run("predict", str(pipeline["run"] / "best.pt"), "--split", "next", "-k", "7",
        "--format", "jsonl", "--out", str(out))  # fmt: skip
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    seqs = read_sequence_text(pipeline["data"])
    whole = [[seqs.item_ids[i - 1] for i in seqs[u].tolist()] for u in range(seqs.n_users)]
    assert [r["user"] for r in rows] == list(seqs.user_ids)
    expected = Recommender.load(pipeline["run"] / "best.pt").recommend(whole, 7)
    assert [r["items"] for r in rows] == [[i for i, _ in top] for top in expected]
    assert all(not set(r["items"]) & set(w) for r, w in zip(rows, whole, strict=True))
    assert all(r["scores"] == sorted(r["scores"], reverse=True) for r in rows)


def test_predict_ids_with_spaces_need_json_lines(tmp_path: Path) -> None:
    seqs = Sequences.from_lists([[1, 2, 3, 4], [2, 3, 4, 1]], item_ids=["a b", "c", "d", "e"],
                                user_ids=["user one", "u2"])  # fmt: skip
    data = LeaveOneOut(seqs)
    model = SASRec(4, 5, ModelConfig(hidden=8, layers=1, heads=2, inner=16))
    with pytest.raises(ValueError, match=r"'user one' contains whitespace.*--format jsonl"):
        write_predictions(model, data, "test", 2, tmp_path / "p.tsv")
    assert not (tmp_path / "p.tsv").exists()
    write_predictions(model, data, "test", 3, tmp_path / "p.jsonl", fmt="jsonl")
    rows = [json.loads(ln) for ln in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["user"] for r in rows] == ["user one", "u2"]
    # the one item each user has not seen before the test item
    assert [r["items"] for r in rows] == [["e"], ["a b"]]


@pytest.mark.parametrize("k", [6, 1000])
def test_predict_k_above_candidates(k: int, tmp_path: Path) -> None:
    """With fewer candidates than k, even beyond the catalogue, a line lists just the
    candidates (no history, no crash)."""
    torch.manual_seed(0)
    seqs = Sequences.from_lists([[1, 2, 3, 4], [5, 6, 1, 2, 3]], item_ids=list("abcdef"))
    data = LeaveOneOut(seqs)
    model = SASRec(6, 5, ModelConfig(hidden=8, layers=1, heads=2, inner=16))
    write_predictions(model, data, "test", k, tmp_path / "p.tsv")
    lines = [ln.split("\t") for ln in (tmp_path / "p.tsv").read_text().splitlines()]
    assert [u for u, _ in lines] == ["1", "2"]
    assert sorted(lines[0][1].split()) == ["d", "e", "f"]  # history a b c
    assert sorted(lines[1][1].split()) == ["c", "d"]  # history e f a b


def test_recommend_raw_ids(pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    seqs = read_sequence_text(pipeline["data"])
    history = [seqs.item_ids[i - 1] for i in seqs[0].tolist()[:4]]
    run("recommend", str(pipeline["run"] / "best.pt"), "--history", " ".join(history), "-k", "5")
    rows = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5
    items, scores = [r[0] for r in rows], [float(r[1]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert not set(items) & set(history) and set(items) <= set(seqs.item_ids)
    _, model, item_ids = load_model(pipeline["run"] / "best.pt")  # the same top 5, recomputed
    index = {raw: i + 1 for i, raw in enumerate(item_ids)}
    with torch.no_grad():
        s = model.score(model(torch.tensor([[index[h] for h in history]]))[0, -1])
    s[[0, model.mask_id, *[index[h] for h in history]]] = float("-inf")
    assert items == [item_ids[i - 1] for i in s.topk(5).indices.tolist()]


def test_recommend_unknown_id(
    pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = fails(capsys, "recommend", str(pipeline["run"] / "best.pt"), "--history", "sku1 nope")
    assert "unknown item id(s) ['nope']" in err
    run("recommend", str(pipeline["run"] / "best.pt"), "--history", "sku1 nope", "--on-unknown",
        "skip", "-k", "3")  # fmt: skip
    assert [ln.split("\t")[0] for ln in capsys.readouterr().out.splitlines()] == [
        item
        for item, _ in Recommender.load(pipeline["run"] / "best.pt").recommend([["sku1"]], 3)[0]
    ]


def test_the_python_api_refuses_what_it_would_misread(pipeline: dict[str, Path]) -> None:
    """A flat list, a string, a float id or a float k would be read wrongly: each is an error;
    a generator history is read once, and integer ids as their text."""
    rec = Recommender.load(pipeline["run"] / "best.pt")
    a, b = rec.item_ids[:2]
    with pytest.raises(ValueError, match="not the string"):
        rec.recommend([a, b], 3)  # a flat list of ids: two "histories" of characters before
    with pytest.raises(ValueError, match="histories is a list of histories"):
        rec.recommend(a, 3)
    for k in (0, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="k must be an integer of at least 1"):
            rec.recommend([[a]], k)  # type: ignore[arg-type]
    assert rec.recommend([(i for i in (a, b))], 3) == rec.recommend([[a, b]], 3)
    with pytest.raises(ValueError, match="exclude_seen must be True or False, got 'no'"):
        rec.recommend([[a]], 3, exclude_seen="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="item ids are strings"):
        rec.recommend([[1.5]], 3)  # type: ignore[list-item]
    assert (raw_id(12), raw_id(np.int64(3))) == ("12", "3")
    with pytest.raises(ValueError, match="item ids are strings"):
        raw_id(True)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        Recommender.load(pipeline["run"] / "best.pt", batch=0)
    with pytest.raises(ValueError, match="2 item ids were given"):
        Recommender(rec.model, ["x", "y"])
    data = LeaveOneOut(read_sequence_text(pipeline["data"]))
    for split in ("val", "train", "Test"):  # each scored test before
        with pytest.raises(ValueError, match=f"split '{split}' is not 'valid' or 'test'"):
            evaluate(rec.model, data, split)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be at least 1"):
        Ranker(rec.model, data).top_k("test", 0)
    with pytest.raises(ValueError, match="exclude_history must be True or False"):
        Ranker(rec.model, data, exclude_history="false")  # type: ignore[arg-type]
    other = LeaveOneOut(Sequences.from_lists([[1, 2, 3]] * 3))
    with pytest.raises(ValueError, match="but the data has 3: a model of other data"):
        evaluate(rec.model, other, "test")


def test_an_empty_history_gets_the_training_popularity(
    pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run("recommend", str(pipeline["run"] / "best.pt"), "--history", "", "-k", "5")
    rows = [ln.split("\t") for ln in capsys.readouterr().out.splitlines()]
    data = LeaveOneOut(read_sequence_text(pipeline["data"]))
    counts = data.item_counts()[1:-1]  # real items
    assert [int(float(c)) for _, c in rows] == sorted(counts.tolist(), reverse=True)[:5]
    assert all(counts[data.seqs.item_ids.index(i)] == int(float(c)) for i, c in rows)


def test_recommender_shows_what_predict_shows(pipeline: dict[str, Path]) -> None:
    """The Python API, given each user's history before the test item, returns the lists
    that ``predict --split test`` writes, in batches and in any order of histories."""
    tsv = pipeline["root"] / "top10.tsv"
    run("predict", str(pipeline["run"] / "best.pt"), "--k", "10", "--out", str(tsv))
    predicted = [ln.split("\t")[1].split() for ln in tsv.read_text().splitlines()]
    seqs = read_sequence_text(pipeline["data"])
    histories = [[seqs.item_ids[i - 1] for i in seqs[u].tolist()[:-1]] for u in range(seqs.n_users)]
    rec = Recommender.load(pipeline["run"] / "best.pt", batch=37)
    got = rec.recommend(histories[::-1], k=10)[::-1]
    assert [[item for item, _ in top] for top in got] == predicted


def test_histories_from_a_file(
    pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b, c = read_sequence_text(pipeline["data"]).item_ids[:3]
    path = tmp_path / "h.txt"
    path.write_text(f'{a} {b}\n["{c}", "{a}"]\n\n')
    assert read_histories(path) == [[a, b], [c, a], []]
    run("recommend", str(pipeline["run"] / "best.pt"), "--histories", str(path), "-k", "4")
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    expected = Recommender.load(pipeline["run"] / "best.pt").recommend(read_histories(path), 4)
    assert [[x["item"] for x in ln["items"]] for ln in lines] == [
        [item for item, _ in top] for top in expected
    ]
    path.write_text('["an id with spaces", "c"]\n[1, {"x": 2}]\n["a"\n')
    err = fails(capsys, "recommend", str(pipeline["run"] / "best.pt"), "--histories", str(path))
    assert f"{path}, line 2: expected a JSON list of item ids" in err
    path.write_text('["an id with spaces", 7]\n["a"\n')
    with pytest.raises(ValueError, match=r"line 2: not a JSON list of ids"):
        read_histories(path)
    path.write_text('["an id with spaces", 7]\n')
    assert read_histories(path) == [["an id with spaces", "7"]]
    path.write_text(f"{a}\n\n{b} no-such-item\n")
    err = fails(capsys, "recommend", str(pipeline["run"] / "best.pt"), "--histories", str(path))
    assert f"{path}, line 3: unknown item id(s) ['no-such-item']" in err


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = fails(capsys, "evaluate", str(tmp_path / "nope.pt"))
    assert "no such checkpoint" in err


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("train.epochs=abc", "expected an integer, got 'abc'"),
        ("train.nope=1", "unknown configuration key 'train.nope'"),
        ("train.lr", "expected key=value"),
        ("loss.next_item=hinge", "is not one of"),
    ],
)
def test_bad_set_exits_2(
    assignment: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = fails(
        capsys, "train", "--dataset", "synthetic", "--set", assignment, "--out", str(tmp_path / "r")
    )
    assert message in err and err.startswith("s4rec train: error:")
    assert not (tmp_path / "r").exists()


def test_unknown_dataset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = fails(
        capsys, "train", "--dataset", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "r")
    )
    assert "neither a dataset name" in err


def test_config_precedence(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 9\n  lr: 0.01\nmodel:\n  layers: 3\n")
    args = cli.parser().parse_args(
        [
            "train",
            "--config",
            str(tmp_path / "c.yaml"),
            "--epochs",
            "4",
            "--set",
            "train.lr=0.02",
            "--out",
            "x",
        ]
    )
    cfg = cli.build_config(args)
    assert (cfg.train.epochs, cfg.train.lr, cfg.model.layers, cfg.model.hidden) == (4, 0.02, 3, 64)


def test_methods(capsys: pytest.CaptureFixture[str]) -> None:
    run("methods")
    out = capsys.readouterr().out
    names = [ln for ln in out.splitlines() if ln and not ln.startswith(" ")]
    assert sorted(names) == sorted(METHODS)
    iclrec = out[out.index("\niclrec\n") : out.index("\nsr+csd\n")]
    assert "ICLRec" in iclrec and "s4rec.clustering=kmeans" in iclrec


def test_datasets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("S4REC_DATA", raising=False)
    monkeypatch.setenv("S4REC_CACHE", str(tmp_path / "cache"))
    (tmp_path / "Beauty.txt").write_text("1 1 2 3\n2 2 3 4 5\n")
    run("datasets", "--data-dir", str(tmp_path))
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["name", "users", "items", "interactions", "avg"]
    by_name = {ln.split()[0]: ln for ln in out[1:]}
    assert set(by_name) == {"beauty", "sports", "toys", "ml-1m", "yelp", "synthetic"}
    assert by_name["beauty"].split()[1:6] == ["2", "5", "7", "3.50", "0.00%"]
    assert str(tmp_path / "Beauty.txt") in by_name["beauty"]
    assert "not found" in by_name["toys"] and "Toys_and_Games" in by_name["toys"]
    assert f"looked in {tmp_path}" in by_name["toys"]
    nope = str(tmp_path / "nope")  # a mistyped directory fails, rather than being searched past
    for argv in (["datasets"], ["train", "--out", "x"], ["evaluate", "run"], ["analyze", "run"]):
        err = fails(capsys, *argv, "--data-dir", nope)
        assert f"argument --data-dir: {nope}: no such directory" in err


# ---------------------------------------------------------------- a final model


def test_final_training_sees_the_held_out_items(tmp_path: Path) -> None:
    """Every user's validation and test items are training targets of a final model, and of
    no other."""
    for final in (False, True):
        cfg = tiny_config("data.synthetic_users=100", f"train.final={str(final).lower()}")
        trainer = Trainer(cfg, tmp_path / str(final))
        seen = set()
        for batch in trainer.loader:
            for c in batch.chunks:
                at = c.targets != 0
                users = c.users[:, None].expand_as(c.targets)[at]
                seen |= set(zip(users.tolist(), c.targets[at].tolist(), strict=True))
        data, ends = trainer.data, trainer.data.seqs.offsets[1:]
        held_out = {(u, int(data.flat[ends[u] - j])) for u in range(data.n_users) for j in (1, 2)}
        first = {(u, int(data.flat[data.starts[u]])) for u in range(data.n_users)}
        assert (held_out - first <= seen) == final  # (an item may also occur earlier)
        assert bool(held_out - first - seen) != final
        other = tiny_config("data.synthetic_users=100", f"train.final={str(not final).lower()}")
        with pytest.raises(ValueError, match="build it with load_data"):  # it trained before
            Trainer(other, tmp_path / "mismatch", data=trainer.data)


def test_train_final_from_a_finished_run(
    pipeline: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    best_epoch = json.loads((pipeline["run"] / "results.json").read_text())["best_epoch"]
    out = tmp_path / "final"
    run("train", "--dataset", str(pipeline["data"]), "--final", "--epochs-from",
        str(pipeline["run"]), "--no-progress", "--out", str(out), *tiny_sets())  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert results["final"] is True and results["epochs"] == best_epoch
    assert "test" not in results and load_state(out / "best.pt")["final"] is True
    capsys.readouterr()
    err = fails(capsys, "evaluate", str(out / "best.pt"), "--data-dir", str(pipeline["root"]))
    assert "nothing is held out" in err
    err = fails(capsys, "predict", str(out / "best.pt"), "--out", str(tmp_path / "t.tsv"))
    assert "nothing is held out" in err and not (tmp_path / "t.tsv").exists()
    run("predict", str(out / "best.pt"), "--split", "next", "--out", str(tmp_path / "n.tsv"))
    assert len((tmp_path / "n.tsv").read_text().splitlines()) == results["users"]["all"]
    err = fails(capsys, "train", "--dataset", str(pipeline["data"]), "--epochs-from",
                str(pipeline["run"]), "--out", str(tmp_path / "x"))  # fmt: skip
    assert "--epochs-from goes with --final" in err
    err = fails(capsys, "train", "--dataset", str(pipeline["data"]), "--final", "--out",
                str(tmp_path / "x"))  # fmt: skip
    assert "give --epochs-from RUN_DIR" in err
    err = fails(capsys, "train", "--dataset", str(pipeline["data"]), "--final", "--epochs-from",
                str(tmp_path), "--out", str(tmp_path / "x"))  # fmt: skip
    assert "needs a finished run directory" in err
