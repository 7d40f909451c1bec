"""Repeat consumption: one protocol for metrics and for the lists the system shows.

A target the user had before is a miss while history is excluded (the default), and is
ranked like any other item with ``eval.exclude_history=false``; either way the metrics of
``evaluate`` are those recomputed from ``predict``'s lists.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import brute_ranks, data_file, history_matrix, run, tiny_sets
from s4rec.checkpoint import load_model, load_state
from s4rec.config import Config
from s4rec.data.catalog import DATASETS
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.readers import read_sequence_text
from s4rec.data.sequences import Sequences
from s4rec.data.synthetic import make_synthetic, plant_repeats
from s4rec.evaluate import Ranker, evaluate, metrics_from_lists
from s4rec.inference import Recommender
from test_metrics import ScoreTable

# ---------------------------------------------------------------- counting repeats


def test_held_out_repeats_by_hand() -> None:
    seqs = Sequences.from_lists(
        [[1, 2, 1], [1, 2, 3, 2], [5, 5, 5], [1, 2], [4, 3, 1, 3], [2, 3, 4, 5]], n_items=5
    )
    # kept (>= 3 items): users 0, 1, 2, 4, 5; valid repeats: user 2; test: users 0, 1, 2, 4
    assert seqs.held_out_repeats() == {"users": 5, "valid": 1, "test": 4, "either": 4}
    assert "4 of 5 users (80.0%)" in seqs.held_out_repeats_text()
    data = LeaveOneOut(seqs)  # drops user [1, 2]
    assert data.repeated("valid").tolist() == [False, False, True, False, False]
    assert data.repeated("test").tolist() == [True, True, True, True, False]


def test_seen_before_is_the_same_in_any_block_size() -> None:
    seqs = plant_repeats(make_synthetic(n_users=500, seed=2).sequences, 0.3)
    pos = seqs.offsets[1:] - 1
    by_hand = [item in seqs[u][:-1] for u, item in enumerate(seqs.values[pos])]
    assert 0 < sum(by_hand) < seqs.n_users
    for block in (1, 3, 64, 1 << 16):
        assert seqs.seen_before(pos, block).tolist() == by_hand


def test_plant_repeats_copies_recent_items_only() -> None:
    seqs = make_synthetic(n_users=300, seed=3).sequences
    assert seqs.held_out_repeats()["either"] == 0  # the generator never repeats
    same = plant_repeats(seqs, 0.0)
    assert np.array_equal(same.values, seqs.values)
    planted = plant_repeats(seqs, 0.3, window=4, seed=1)
    assert np.array_equal(planted.offsets, seqs.offsets)
    changed = 0
    for u in range(planted.n_users):
        old, new = seqs[u], planted[u]
        assert new[0] == old[0]
        for t in np.flatnonzero(new != old):
            assert new[t] in new[max(0, t - 4) : t]  # a real repeat, from the last 4 items
            changed += 1
    # copying an equal item changes nothing; about 0.3 * 2,970 positions change
    assert 0.25 < changed / (len(seqs.values) - seqs.n_users) < 0.33
    counts = planted.held_out_repeats()
    assert 0.2 < counts["test"] / counts["users"] < 0.4


@pytest.mark.parametrize("name", ["beauty", "sports", "toys", "ml-1m"])
def test_paper_files_have_no_repeated_targets(name: str) -> None:
    """So the committed Table 2 numbers are the same under either protocol."""
    path = data_file(DATASETS[name].filename)
    if path is None:
        pytest.skip(f"{DATASETS[name].filename} not found in $S4REC_DATA or ../shared/data")
    assert read_sequence_text(path).held_out_repeats()["either"] == 0


# ---------------------------------------------------------------- ranks and lists


def repeat_data() -> LeaveOneOut:
    """Users 0 and 2 have a test target from their history; user 1 a new one."""
    return LeaveOneOut(Sequences.from_lists([[1, 2, 3, 1], [4, 5, 6, 7], [2, 8, 9, 8]], n_items=10))


def random_table(data: LeaveOneOut, seed: int = 0) -> ScoreTable:
    model = ScoreTable(data.n_items)
    model.table = torch.randn(
        data.n_items + 2, data.n_items + 2, generator=torch.Generator().manual_seed(seed)
    )
    return model


@pytest.mark.parametrize("item_chunk", [32768, 3])
def test_repeated_target_is_a_miss_unless_history_is_rankable(item_chunk: int) -> None:
    data = repeat_data()
    model = random_table(data)
    scores = model.table[data.flat[data.history_end("test") - 1]].numpy()  # (U, n_items + 2)
    shown = Ranker(model, data, exclude_history=True, item_chunk=item_chunk).ranks("test")
    n_cols = data.n_items + 2
    assert shown[0] == shown[2] == n_cols  # never shown: last
    assert shown[1] == brute_ranks(data, "test", scores)[1]
    rankable = Ranker(model, data, exclude_history=False, item_chunk=item_chunk).ranks("test")
    target = data.target("test").numpy()
    for u in range(3):  # every item but padding, the mask token and the target itself
        ok = np.ones(n_cols, dtype=bool)
        ok[[0, n_cols - 1, target[u]]] = False
        assert rankable[u] == int((scores[u][ok] >= scores[u][target[u]]).sum())
    assert rankable[1] >= shown[1]  # history items now compete with the target


@pytest.mark.parametrize("exclude", [True, False])
def test_top_k_holds_the_ranked_targets(exclude: bool) -> None:
    data = LeaveOneOut(plant_repeats(make_synthetic(n_users=200, seed=4).sequences, 0.4))
    model = random_table(data, seed=1)
    ranker = Ranker(model, data, exclude_history=exclude, item_chunk=97)
    ranks = ranker.ranks("test")
    ids, _ = ranker.top_k("test", 20)
    target = data.target("test")
    position = [
        row.index(t) if t in row else None
        for row, t in zip(ids.tolist(), target.tolist(), strict=True)
    ]
    assert [r if r < 20 else None for r in ranks.tolist()] == position
    history = history_matrix(data, "test")
    shows_history = any(history[u, i] for u in range(data.n_users) for i in ids[u].tolist())
    assert shows_history == (not exclude)


def test_recommend_follows_the_protocol() -> None:
    data = repeat_data()
    model = random_table(data)
    items = [str(i) for i in range(1, 11)]
    history = ["1", "2", "3"]
    rec = Recommender(model, items)
    shown = [i for i, _ in rec.recommend([history], k=10)[0]]
    assert not set(shown) & set(history) and len(shown) == 7
    every = [i for i, _ in rec.recommend([history], k=10, exclude_seen=False)[0]]
    assert set(every) == set(items)


# ---------------------------------------------------------------- the command end to end


@pytest.fixture(scope="module")
def repeat_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A raw log with planted repeats -> prepare -> train (history excluded), by the command."""
    root = tmp_path_factory.mktemp("repeats")
    seqs = plant_repeats(make_synthetic(n_users=400, seed=5).sequences, 0.3, seed=2)
    rows = ["user_id,item_id,timestamp"]
    for u in range(seqs.n_users):
        rows += [f"u{u},sku{i},{1000 + t}" for t, i in enumerate(seqs[u].tolist())]
    (root / "log.csv").write_text("\n".join(rows) + "\n")
    run("prepare", str(root / "log.csv"), "--out", str(root / "shop.txt"), "--k-core", "1")
    run("train", "--dataset", str(root / "shop.txt"), "--epochs", "3", "--no-progress",
        "--out", str(root / "run"), *tiny_sets())  # fmt: skip
    return {"root": root, "run": root / "run", "data": root / "shop.txt"}


def shown_lists(path: Path, seqs: Sequences) -> tuple[list[list[str]], list[str]]:
    """``predict``'s lists (raw ids) and each user's raw test target."""
    lists, targets = [], []
    for u, line in enumerate(path.read_text().splitlines()):
        user, _, shown = line.partition("\t")
        assert user == seqs.user_ids[u]
        lists.append(shown.split(" "))
        targets.append(seqs.item_ids[seqs[u][-1] - 1])
    return lists, targets


def test_metrics_from_lists_by_hand() -> None:
    m = metrics_from_lists([["a", "b"], ["c", "d"], ["e"]], ["b", "x", "e"], ks=(1, 2))
    assert m == pytest.approx({"HR@1": 1 / 3, "HR@2": 2 / 3, "NDCG@1": 1 / 3,
                               "NDCG@2": (1 / math.log2(3) + 1) / 3})  # fmt: skip


@pytest.mark.parametrize("exclude", ["true", "false"])
def test_evaluate_equals_metrics_of_predicted_lists(
    repeat_run: dict[str, Path], capsys: pytest.CaptureFixture[str], exclude: str
) -> None:
    ckpt, tsv = str(repeat_run["run"] / "best.pt"), repeat_run["root"] / f"top20-{exclude}.tsv"
    protocol = f"eval.exclude_history={exclude}"
    capsys.readouterr()
    run("evaluate", ckpt, "--set", protocol, "--json")
    out = json.loads(capsys.readouterr().out)
    run("predict", ckpt, "--k", "20", "--out", str(tsv), "--set", protocol)
    seqs = read_sequence_text(repeat_run["data"])
    assert out["eval_protocol"]["exclude_history"] is (exclude == "true")
    assert out["eval_protocol"]["repeated_targets"]["test"] == seqs.held_out_repeats()["test"] > 50
    recomputed = metrics_from_lists(*shown_lists(tsv, seqs))
    assert recomputed == pytest.approx({k: out["test"]["all"][k] for k in recomputed}, abs=1e-12)


def test_protocols_differ_and_results_record_theirs(
    repeat_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(repeat_run["run"] / "best.pt")
    results = json.loads((repeat_run["run"] / "results.json").read_text())
    assert results["eval_protocol"]["exclude_history"] is True
    assert results["eval_protocol"]["repeated_targets_are"] == "misses"
    capsys.readouterr()
    run("evaluate", ckpt, "--set", "eval.exclude_history=false", "--json")
    rankable = json.loads(capsys.readouterr().out)["test"]["all"]
    # a trained model scores a re-consumed item high: counting repeats raises the hit rate
    assert rankable["HR@20"] > results["test"]["HR@20"]


def test_model_selection_uses_the_protocol(repeat_run: dict[str, Path], tmp_path: Path) -> None:
    run("train", "--dataset", str(repeat_run["data"]), "--epochs", "2", "--no-progress",
        "--out", str(tmp_path), *tiny_sets("eval.exclude_history=false"))  # fmt: skip
    best = load_state(tmp_path / "best.pt")
    cfg, model, _ = load_model(tmp_path / "best.pt")
    assert cfg.eval.exclude_history is False
    data = LeaveOneOut(read_sequence_text(repeat_run["data"]))
    assert best["valid"] == evaluate(model, data, "valid", cfg)["all"]
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert best["valid"] == max((r["valid"] for r in log), key=lambda v: v["NDCG@20"])
    assert best["valid"] != evaluate(model, data, "valid", Config())["all"]


def test_only_the_protocol_changes_after_training(
    repeat_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        run("evaluate", str(repeat_run["run"] / "best.pt"), "--set", "model.hidden=8")
    assert "only eval.* settings can change after training" in capsys.readouterr().err


def test_recommend_command_follows_the_protocol(
    repeat_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, items = load_model(repeat_run["run"] / "best.pt")
    history = items[:3]
    capsys.readouterr()
    run("recommend", str(repeat_run["run"] / "best.pt"), "--history", " ".join(history),
        "-k", str(len(items)))  # fmt: skip
    assert len(capsys.readouterr().out.splitlines()) == len(items) - 3
    run("recommend", str(repeat_run["run"] / "best.pt"), "--history", " ".join(history),
        "-k", str(len(items)), "--set", "eval.exclude_history=false")  # fmt: skip
    assert len(capsys.readouterr().out.splitlines()) == len(items)


def test_prepare_and_datasets_report_repeats(
    repeat_run: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    counts = read_sequence_text(repeat_run["data"]).held_out_repeats()
    run("prepare", str(repeat_run["root"] / "log.csv"), "--out", str(tmp_path / "p.txt"),
        "--k-core", "1")  # fmt: skip
    out = capsys.readouterr().out
    assert f"held-out repeats: {counts['either']:,} of {counts['users']:,} users" in out
    assert f"test {counts['test']:,}" in out
    (tmp_path / "Beauty.txt").write_text((tmp_path / "p.txt").read_text())
    run("datasets", "--data-dir", str(tmp_path))
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("beauty"))
    assert f"{counts['either'] / counts['users']:.2%}" in line


def test_analyze_uses_the_protocol(
    repeat_run: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, analysis = repeat_run["run"], repeat_run["run"] / "analysis.json"
    data = LeaveOneOut(read_sequence_text(repeat_run["data"]))
    for exclude in ("true", "false", "true"):  # a cached analysis of the other protocol is redone
        run(
            "analyze",
            str(run_dir),
            "--tsne-points",
            "0",
            "--set",
            f"eval.exclude_history={exclude}",
        )
        groups = json.loads(analysis.read_text())["groups"]
        cfg, model, _ = load_model(run_dir / "best.pt", [f"eval.exclude_history={exclude}"])
        expected = evaluate(model, data, "test", cfg)
        assert {k: v for k, v in groups["all"].items() if k != "users"} == expected["all"]
        assert {k: v for k, v in groups["tail"].items() if k != "users"} == expected["tail"]
