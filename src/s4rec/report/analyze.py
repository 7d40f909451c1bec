"""``s4rec analyze``: what a trained run does for whom.

``analyze_run`` reads a run directory (``best.pt``, ``results.json``, ``metrics.jsonl``)
and the data, and writes ``RUN_DIR/analysis.json``: test metrics per user group, the
clusters of the training sequences with their head rates and statistics, a t-SNE map,
and the training curves. The t-SNE map needs scikit-learn (``pip install "s4rec[report]"``).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis import (
    assign_clusters,
    cluster_stats,
    embed_2d,
    group_metrics,
    head_rate_iqr,
    head_rate_spread,
    head_rates,
    nmi,
)
from ..checkpoint import load_state, model_from_state
from ..config import Config
from ..data.dataset import LeaveOneOut
from ..encoding import training_representations
from ..evaluate import Ranker, protocol
from ..files import atomic_file, read_json
from ..kmeans import kmeans
from ..model import GRU4Rec, SASRec
from ..pipeline import check_data, trained_data

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")
GROUP_METRIC = "NDCG@20"


def group_metric(analysis: dict, group: str, metric: str) -> float:
    """One user group's metric in an analysis; NaN for a group without users (it has none)."""
    return analysis["groups"][group].get(metric, math.nan)


def read_curves(log: Path) -> dict[str, list[float]]:
    """Per-epoch loss terms and validation NDCG@20 from ``metrics.jsonl``."""
    curves: dict[str, list[float]] = defaultdict(list)
    if not log.exists():
        return {}
    for line in log.read_text().split("\n")[:-1]:  # complete lines: not an interrupted write
        if line.strip():
            row = json.loads(line)
            curves["epoch"].append(row["epoch"])
            curves["valid " + GROUP_METRIC].append(row["valid"][GROUP_METRIC])
            for name, value in row["loss"].items():
                curves[name].append(value)
    return dict(curves)


def run_clusters(
    cfg: Config, heads: dict[str, torch.Tensor], z: torch.Tensor
) -> tuple[np.ndarray, str, int]:
    """Each user's cluster: the nearest trained prototype (online S^4Rec), else K-means of the
    representations with the configured K (what K-means methods refit every epoch, and a
    common yardstick for encoders that have no clusters)."""
    online = cfg.s4rec.clustering == "online" and cfg.s4rec.needs_clusters
    if online and "prototypes.weight" in heads:
        mu = heads["prototypes.weight"]
        return assign_clusters(z, mu), "prototypes", len(mu)
    k = min(cfg.s4rec.prototypes, len(z))
    g = torch.Generator().manual_seed(cfg.train.seed)
    fit = kmeans(z, k, cfg.s4rec.kmeans_iters, 1, g, cfg.s4rec.kmeans_sample)
    return fit.assigned.numpy(), "kmeans", k


def analyze_run(
    run_dir: str | Path,
    data: LeaveOneOut | None = None,
    tsne_points: int = 1000,
    seed: int = 0,
    state: dict[str, Any] | None = None,
    sets: tuple[str, ...] = (),
    device: str = "cpu",
) -> dict[str, Any]:
    """Analyse one run (see the module docstring) and write ``RUN_DIR/analysis.json``;
    ``state`` is its ``best.pt`` when the caller has read it already, ``sets`` are ``eval.*``
    overrides of the run's protocol; the model runs on ``device``."""
    run_dir = Path(run_dir)
    start = time.perf_counter()
    state = state if state is not None else load_state(run_dir / "best.pt")
    cfg, model, _ = model_from_state(state, str(run_dir / "best.pt"), sets, device)
    heads = state.get("heads", {})
    where = str(run_dir / "best.pt")
    data = data if data is not None else trained_data(state, cfg, where)
    check_data(state, data, where)
    groups = group_metrics(Ranker.from_config(model, data, cfg).ranks("test"), data)
    finished = (run_dir / "results.json").exists()
    out: dict[str, Any] = {
        "run": str(run_dir),
        "label": run_dir.name,
        "method": cfg.method,
        "dataset": cfg.data.dataset,
        "seed": cfg.train.seed,
        "config": cfg.to_dict(),
        "eval_protocol": protocol(cfg, data),
        "test": {k: v for k, v in groups["all"].items() if k != "users"} if finished else None,
        "groups": groups,
        "curves": read_curves(run_dir / "metrics.jsonl"),
        "clusters": None,
        "tsne": None,
        "tsne_points": tsne_points,  # analyze_runs reuses the file only for this count
    }
    if isinstance(model, (SASRec, GRU4Rec)):  # encoders of the history alone (BERT4Rec too)
        z = training_representations(model, data, cfg.data.max_len, cfg.model.pooling).cpu()
        clusters, source, k = run_clusters(cfg, heads, z)
        is_head = np.asarray(data.is_head, dtype=bool)
        out["clusters"] = {
            "source": source,
            **cluster_stats(clusters, k),
            "head_rates": head_rates(clusters, is_head)[0].tolist(),
            "head_rate_iqr": head_rate_iqr(clusters, is_head),
            "head_rate_spread": head_rate_spread(clusters, is_head),
            "nmi_head": nmi(clusters, is_head),
        }
        if tsne_points > 0:
            coords, rows = embed_2d(z, tsne_points, seed)
            out["tsne"] = {
                "x": coords[:, 0].round(3).tolist(),
                "y": coords[:, 1].round(3).tolist(),
                "head": is_head[rows].tolist(),
                "cluster": clusters[rows].tolist(),
            }
    out["seconds"] = round(time.perf_counter() - start, 2)
    with atomic_file(run_dir / "analysis.json") as f:
        json.dump(out, f, indent=1)
    return out


def analyze_runs(
    run_dirs: list[str] | list[Path],
    tsne_points: int = 1000,
    reuse: bool = True,
    data_dir: str | None = None,
    sets: tuple[str, ...] = (),
    device: str = "cpu",
) -> list[dict]:
    """Analyses of several runs; data is loaded once per dataset (from ``data_dir`` when
    given), and an ``analysis.json`` newer than the run's ``best.pt`` and made under the same
    protocol (the run's, with ``eval.*`` overrides ``sets``) and ``tsne_points`` is reused
    when ``reuse``."""
    datasets: dict[tuple, LeaveOneOut] = {}
    out = []
    for run_dir in map(Path, run_dirs):
        cached = run_dir / "analysis.json"
        if run_dir.is_file():
            raise ValueError(f"{run_dir}: a file; give its run directory ({run_dir.parent})")
        if not (run_dir / "best.pt").exists():
            raise FileNotFoundError(f"{run_dir}: no best.pt (is this a finished run directory?)")
        state = load_state(run_dir / "best.pt")
        cfg = Config.from_dict(state["config"], where=str(run_dir)).for_trained_model(list(sets))
        fresh = cached.exists() and cached.stat().st_mtime >= (run_dir / "best.pt").stat().st_mtime
        if reuse and fresh:
            analysis = read_json(cached)
            same = (
                analysis.get("eval_protocol", {}).get("exclude_history") == cfg.eval.exclude_history
            )
            if same and analysis.get("tsne_points") == tsne_points:
                out.append(analysis)
                continue
        cfg.data.data_dir = data_dir or cfg.data.data_dir
        key = (cfg.data.dataset, cfg.data.data_dir, cfg.data.min_length, cfg.data.head_fraction,
               cfg.data.synthetic_users)  # fmt: skip
        if key not in datasets:
            datasets[key] = trained_data(state, cfg, str(run_dir / "best.pt"), data_dir)
        out.append(
            analyze_run(run_dir, datasets[key], tsne_points, state=state, sets=sets, device=device)
        )
    return out
