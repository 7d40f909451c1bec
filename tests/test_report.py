"""s4rec analyze / report: per-group metrics, clusters, plots and the HTML page."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_config, unique_item_data
from s4rec.analysis import cluster_stats, group_metrics, head_rate_iqr, length_groups
from s4rec.cli import main
from s4rec.data.dataset import head_tail_labels
from s4rec.evaluate import Ranker
from s4rec.methods import apply_method
from s4rec.report import METRICS, analyze_runs, by_method, sweep_points, tables, write_report
from s4rec.report import variant as runs_variant
from s4rec.train import Trainer

pytest.importorskip("matplotlib", reason="the report needs matplotlib (pip install '.[report]')")
pytest.importorskip("sklearn", reason="the t-SNE map needs scikit-learn (pip install '.[report]')")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny finished runs on synthetic data: SASRec and S^4Rec."""
    dirs = []
    for method in ("sasrec", "s4rec"):
        out = tmp_path_factory.mktemp(method)
        cfg = apply_method(tiny_config("train.epochs=2", "s4rec.prototypes=8"), method)
        Trainer(cfg, out).fit()
        dirs.append(out)
    return dirs


@pytest.fixture(scope="module")
def analyses(runs: list[Path]) -> list[dict]:
    return analyze_runs(runs, tsne_points=200)


def test_group_metrics_sum_back_to_all(runs: list[Path]) -> None:
    trainer = Trainer(apply_method(tiny_config(), "sasrec"), runs[0] / "again")
    ranks = Ranker(trainer.model, trainer.data).ranks("test")
    groups = group_metrics(ranks, trainer.data)
    n = groups["all"]["users"]
    buckets = [g for g in groups if g not in ("all", "head", "tail")]
    for parts in (["head", "tail"], buckets):
        assert sum(groups[g]["users"] for g in parts) == n
        for m in ("HR@5", "NDCG@20", "MRR"):
            weighted = sum(groups[g][m] * groups[g]["users"] for g in parts if groups[g]["users"])
            assert weighted / n == pytest.approx(groups["all"][m], abs=1e-12)


def test_a_group_without_users_has_no_metrics_and_shows_a_dash() -> None:
    data = unique_item_data([7, 8, 9, 10, 8])  # every user in the 6-10 bucket
    groups = group_metrics(torch.zeros(data.n_users, dtype=torch.long), data)
    assert groups["51+"] == {"users": 0} and groups["6-10"]["HR@5"] == 1.0
    json.dumps(groups, allow_nan=False)  # analysis.json stays JSON any parser reads
    a = {"label": "r-s1", "method": "sasrec", "dataset": "d", "seed": 1, "test": None,
         "groups": groups, "clusters": None}  # fmt: skip
    header, rows = tables([a])["Test NDCG@20 by user group (users in brackets)"]
    assert rows[0][header.index("51+ (0)")] == "-"


def test_head_group_comes_from_training_lengths(runs: list[Path]) -> None:
    data = Trainer(apply_method(tiny_config(), "sasrec"), runs[0] / "again").data
    expected = head_tail_labels(data.train_lengths.numpy(), 0.2)
    assert np.array_equal(data.is_head, expected)
    groups = group_metrics(torch.zeros(data.n_users, dtype=torch.long), data)
    assert groups["head"]["users"] == int(expected.sum())
    lengths = data.seqs.lengths
    for name, mask in length_groups(data).items():
        lo = int(name.split("-")[0].rstrip("+"))
        assert (lengths[mask] >= lo).all()


def test_cluster_stats_and_iqr_by_hand() -> None:
    clusters = np.array([0, 0, 1, 1, 1, 3])
    stats = cluster_stats(clusters, 4)
    assert stats["sizes"] == [2, 3, 0, 1] and stats["empty"] == 1
    p = np.array([2, 3, 1]) / 6
    assert stats["entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert stats["entropy_ratio"] == pytest.approx(stats["entropy"] / np.log(4))
    is_head = np.array([1, 0, 1, 1, 1, 0], dtype=bool)  # rates 0.5, 1.0, 0.0 -> IQR 0.5
    assert head_rate_iqr(clusters, is_head) == pytest.approx(0.5)


def test_analysis_matches_results_and_has_clusters(runs: list[Path], analyses: list[dict]) -> None:
    for run, a in zip(runs, analyses, strict=True):
        results = json.loads((run / "results.json").read_text())
        for m in METRICS:  # ranks recomputed from best.pt give the run's own test numbers
            assert a["groups"]["all"][m] == pytest.approx(results["test"][m], abs=1e-12)
        assert a["clusters"]["k"] == 8 and len(a["tsne"]["x"]) == 200
        assert (run / "analysis.json").exists()
    assert [a["clusters"]["source"] for a in analyses] == ["kmeans", "prototypes"]
    assert analyses[1]["curves"]["cluster"]  # loss terms per epoch


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None


def test_report_page_has_every_image_and_the_results(
    runs: list[Path], analyses: list[dict], tmp_path: Path
) -> None:
    page_path = write_report(analyses, tmp_path, sweeps=("s4rec.alpha",), baselines=("sasrec",))
    page = _Page()
    page.feed(page_path.read_text())
    # head rates, groups, one sweep, a t-SNE map and training curves per run
    assert len(page.images) == 3 + 2 * len(runs)
    for src in page.images:
        assert (
            base64.b64decode(src.removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
        )
    header, *rows = page.tables[0]
    assert header[: len(METRICS) + 4] == ["run", "method", "dataset", "seed", *METRICS]
    for run, row in zip(runs, rows, strict=True):
        results = json.loads((run / "results.json").read_text())
        assert row[0] == run.name
        assert row[4:] == [f"{results['test'][m]:.4f}" for m in METRICS]
    md = (tmp_path / "report.md").read_text()
    for line in md.splitlines():
        if line.startswith("!["):
            assert (tmp_path / line.split("(")[1].rstrip(")")).exists()


def test_sweep_points_group_seeds_by_value_and_series_by_the_rest() -> None:
    def a(method: str, alpha: float, x: float, seed: int = 1, batch: int = 512) -> dict:
        cfg = {"s4rec": {"alpha": alpha}, "train": {"seed": seed, "batch_size": batch}}
        return {"method": method, "config": {"method": method, **cfg}, "test": {"HR@5": x}}

    runs = [a("s4rec", 0.1, 0.2), a("s4rec", 0.01, 0.1, 2), a("s4rec", 0.1, 0.4, 3),
            a("s4rec-no-clust", 0.0, 0.05), a("s4rec", 0.1, 0.9, batch=256)]  # fmt: skip
    pts = sweep_points(runs, "s4rec.alpha", "HR@5")
    assert set(pts) == {"s4rec/s4rec-no-clust"}  # the batch-256 run alone is no sweep
    one = pts["s4rec/s4rec-no-clust"]
    assert one[0] == (0.0, 0.05, 0.0, 1) and one[1] == (0.01, 0.1, 0.0, 1)
    assert one[2][:2] == (0.1, pytest.approx(0.3)) and one[2][3] == 2
    assert sweep_points(runs[-1:], "s4rec.alpha", "HR@5") == {"s4rec": [(0.1, 0.9, 0.0, 1)]}
    two = sweep_points([*runs[:2], runs[4], a("s4rec", 0.2, 0.5, batch=256)], "s4rec.alpha", "HR@5")
    assert two == {"s4rec": [(0.01, 0.1, 0.0, 1), (0.1, 0.2, 0.0, 1)],
                   "s4rec (2)": [(0.1, 0.9, 0.0, 1), (0.2, 0.5, 0.0, 1)]}  # fmt: skip
    with pytest.raises(ValueError, match="unknown configuration key"):
        sweep_points(runs[:1], "s4rec.nope", "HR@5")


def test_cli_analyze_and_report(runs: list[Path], tmp_path: Path, capsys) -> None:
    main(["analyze", *map(str, runs), "--tsne-points", "0", "--force"])
    assert "Tail vs head" in capsys.readouterr().out
    main(["report", *map(str, runs), "--out", str(tmp_path), "--tsne-points", "0"])
    assert (tmp_path / "report.html").exists() and (tmp_path / "report.md").exists()
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path), "--out", str(tmp_path / "x")])  # not a run directory


def test_by_method_means_and_gains(analyses: list[dict]) -> None:
    twice = [
        analyses[0],
        {
            **analyses[0],
            "groups": {
                **analyses[0]["groups"],
                "head": {
                    **analyses[0]["groups"]["head"],
                    "HR@5": analyses[0]["groups"]["head"]["HR@5"] + 0.1,
                },
            },
        },
    ]
    assert runs_variant({"label": "beauty-s4rec-bce-b256-s3"}) == "beauty-s4rec-bce-b256"
    row = by_method(twice)[runs_variant(analyses[0])]
    assert row["runs"] == 2
    assert row["head HR@5"] == pytest.approx(analyses[0]["groups"]["head"]["HR@5"] + 0.05)
    header, rows = tables(analyses, ("sasrec",))["By variant, mean over seeds (Fig. 3 and 4)"]
    assert header[-4:] == [
        "head HR@5 gain",
        "head NDCG@5 gain",
        "tail HR@5 gain",
        "tail NDCG@5 gain",
    ]
    assert rows[0][-4:] == ["+0.0%"] * 4 or "-" in rows[0][-4:]  # the baseline against itself
    header, rows = tables(analyses, ("sasrec", "s4rec"))[
        "By variant, mean over seeds (Fig. 3 and 4)"
    ]
    assert len(header) == len(rows[0]) and header[-1].startswith("tail NDCG@5 gain vs ")
    with pytest.raises(ValueError, match="names 0 of the runs' variants"):
        tables(analyses, ("bert4rec",))


def test_a_cached_analysis_is_reused_only_for_the_same_tsne_points(runs: list[Path]) -> None:
    first = analyze_runs(runs[:1], tsne_points=120)[0]
    written = (runs[0] / "analysis.json").stat().st_mtime_ns
    assert analyze_runs(runs[:1], tsne_points=120)[0]["seconds"] == first["seconds"]
    assert (runs[0] / "analysis.json").stat().st_mtime_ns == written
    assert len(analyze_runs(runs[:1], tsne_points=50)[0]["tsne"]["x"]) == 50
