"""``s4rec analyze`` and ``s4rec report``: what each trained run does for whom, as JSON,
plots and one self-contained HTML page (plus a Markdown summary).

``analyze_run`` reads a run directory (``best.pt``, ``results.json``, ``metrics.jsonl``)
and the data, and writes ``RUN_DIR/analysis.json``: test metrics per user group, the
clusters of the training sequences with their head rates and statistics, a t-SNE map,
and the training curves. ``write_report`` turns several analyses into plots and pages.
Plots need matplotlib and t-SNE scikit-learn (``pip install "s4rec[report]"``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import platform
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import (
    assign_clusters,
    cluster_stats,
    embed_2d,
    group_metrics,
    head_rate_iqr,
    head_rate_spread,
    head_rates,
    nmi,
    training_representations,
)
from .checkpoint import load_state, model_from_state
from .config import Config, dotted
from .data.dataset import LeaveOneOut
from .evaluate import Ranker, protocol
from .files import atomic_file, write_text_atomic
from .kmeans import kmeans
from .model import GRU4Rec, SASRec
from .train import load_data

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")
GROUP_METRIC = "NDCG@20"


def _needs(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as err:
        raise SystemExit(
            f"this needs {module}: pip install 's4rec[report]' (matplotlib, scikit-learn)"
        ) from err


def read_curves(log: Path) -> dict[str, list[float]]:
    """Per-epoch loss terms and validation NDCG@20 from ``metrics.jsonl``."""
    curves: dict[str, list[float]] = defaultdict(list)
    if not log.exists():
        return {}
    for line in log.read_text().splitlines():
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
    data = data if data is not None else load_data(cfg)
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
    protocol (the run's, with ``eval.*`` overrides ``sets``) is reused when ``reuse``."""
    datasets: dict[tuple, LeaveOneOut] = {}
    out = []
    for run_dir in map(Path, run_dirs):
        cached = run_dir / "analysis.json"
        if not (run_dir / "best.pt").exists():
            raise FileNotFoundError(f"{run_dir}: no best.pt (is this a finished run directory?)")
        state = load_state(run_dir / "best.pt")
        cfg = Config.from_dict(state["config"], where=str(run_dir)).for_trained_model(list(sets))
        fresh = cached.exists() and cached.stat().st_mtime >= (run_dir / "best.pt").stat().st_mtime
        if reuse and fresh:
            analysis = json.loads(cached.read_text())
            if analysis.get("eval_protocol", {}).get("exclude_history") == cfg.eval.exclude_history:
                out.append(analysis)
                continue
        cfg.data.data_dir = data_dir or cfg.data.data_dir
        key = (cfg.data.dataset, cfg.data.data_dir, cfg.data.min_length, cfg.data.head_fraction,
               cfg.data.synthetic_users)  # fmt: skip
        if key not in datasets:
            datasets[key] = load_data(cfg)
        out.append(
            analyze_run(run_dir, datasets[key], tsne_points, state=state, sets=sets, device=device)
        )
    return out


# -- plots -------------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 3.6, cols: int = 1) -> tuple[Any, Any]:
    _needs("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, cols, figsize=(width, height), squeeze=False)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def plot_head_rates(analyses: list[dict]) -> bytes | None:
    """Fig. 3: box plot of the clusters' head rates, one box per run."""
    runs = [a for a in analyses if a["clusters"]]
    if not runs:
        return None
    fig, ax = _figure(max(5.0, 1.2 * len(runs)))
    ax = ax[0, 0]
    ax.boxplot([a["clusters"]["head_rates"] for a in runs])
    ax.set_xticks(range(1, len(runs) + 1), [a["label"] for a in runs], rotation=20, ha="right")
    ax.set_ylabel("head rate per cluster")
    ax.axhline(np.mean([a["groups"]["head"]["users"] / a["groups"]["all"]["users"] for a in runs]),
               ls="--", c="grey", lw=1)  # fmt: skip
    return _png(fig)


def plot_groups(analyses: list[dict], metric: str = GROUP_METRIC) -> bytes:
    """Fig. 4 generalised: ``metric`` per user group (head/tail and length buckets) per run."""
    groups = [g for g in analyses[0]["groups"] if g != "all"]
    fig, ax = _figure(max(7.0, 1.2 * len(groups)))
    ax = ax[0, 0]
    width = 0.8 / len(analyses)
    for i, a in enumerate(analyses):
        values = [a["groups"][g][metric] for g in groups]
        ax.bar(np.arange(len(groups)) + i * width, values, width, label=a["label"])
    counts = [analyses[0]["groups"][g]["users"] for g in groups]
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2,
                  [f"{g}\n{n:,} users" for g, n in zip(groups, counts, strict=True)])  # fmt: skip
    ax.set_ylabel(f"test {metric}")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_tsne(analysis: dict) -> bytes | None:
    """Fig. 1: the t-SNE map coloured by head/tail and by cluster."""
    t = analysis["tsne"]
    if not t:
        return None
    fig, axes = _figure(9.0, 4.2, cols=2)
    head = np.array(t["head"])
    x, y = np.array(t["x"]), np.array(t["y"])
    axes[0, 0].scatter(x[~head], y[~head], s=4, c="tab:blue", label="tail")
    axes[0, 0].scatter(x[head], y[head], s=4, c="tab:red", label="head")
    axes[0, 0].legend(fontsize=7)
    axes[0, 0].set_title(f"{analysis['label']}: head / tail", fontsize=9)
    axes[0, 1].scatter(x, y, s=4, c=np.array(t["cluster"]) % 20, cmap="tab20")
    axes[0, 1].set_title(f"{analysis['label']}: clusters", fontsize=9)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    return _png(fig)


def plot_curves(analysis: dict) -> bytes | None:
    """Loss terms (each divided by its first value) and validation NDCG@20 per epoch."""
    c = analysis["curves"]
    if not c.get("epoch"):
        return None
    fig, axes = _figure(9.0, 3.4, cols=2)
    valid = "valid " + GROUP_METRIC
    for name, values in c.items():
        if name not in ("epoch", valid) and values and values[0]:
            axes[0, 0].plot(c["epoch"], np.array(values) / values[0], label=name)
    axes[0, 0].set_ylabel("loss / first epoch")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].plot(c["epoch"], c[valid])
    axes[0, 1].set_ylabel(valid)
    for ax in axes[0]:
        ax.set_xlabel("epoch")
    fig.suptitle(analysis["label"], fontsize=9)
    return _png(fig)


def sweep_points(analyses: list[dict], key: str, metric: str) -> dict[str, list[tuple]]:
    """Series -> [(value, mean, std, seeds)] of test ``metric`` against ``key``.

    A series is the runs whose configurations agree on everything but ``key``, the seed
    and the method name, so an ablation that zeroes the swept weight (``s4rec-no-gr`` for
    ``s4rec.lam``) joins the sweep; it is labelled with the methods in it (numbered when
    two series share them). A series with a single value is no sweep: it is left out when
    another series has several."""
    series: dict[str, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    methods: dict[str, set[str]] = defaultdict(set)
    for a in analyses:
        if a["test"]:
            cfg = dotted(Config.from_dict(a["config"]).to_dict())  # older runs get defaults
            if key not in cfg:
                raise ValueError(f"unknown configuration key {key!r}")
            value = cfg[key]
            others = {k: v for k, v in cfg.items() if k not in (key, "method", "train.seed")}
            rest = json.dumps(others, sort_keys=True)
            series[rest][value].append(a["test"][metric])
            methods[rest].add(a["method"])
    widest = max((len(values) for values in series.values()), default=0)
    out: dict[str, list[tuple]] = {}
    seen: dict[str, int] = defaultdict(int)
    for rest, values in series.items():
        if len(values) > 1 or widest == 1:
            base = "/".join(sorted(methods[rest]))
            seen[base] += 1
            label = base if seen[base] == 1 else f"{base} ({seen[base]})"
            out[label] = [
                (v, statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs))
                for v, xs in sorted(values.items())
            ]
    return out


def plot_sweep(
    analyses: list[dict], key: str, metrics: tuple[str, ...] = ("HR@5", "NDCG@20")
) -> bytes:
    """Fig. 5 (and Table 4 for K): test metrics against one setting, mean and std over
    seeds, per method."""
    fig, axes = _figure(4.0 * len(metrics), 3.4, cols=len(metrics))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for method, pts in sweep_points(analyses, key, metric).items():
            v, mean, std, _ = zip(*pts, strict=True)
            x = np.arange(len(v))
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=method)
            ax.set_xticks(x, [str(u) for u in v])
        ax.set_xlabel(key)
        ax.set_ylabel(f"test {metric}")
        ax.legend(fontsize=7)
    return _png(fig)


# -- pages -------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "platform": platform.platform(),
           "machine": f"{platform.processor() or platform.machine()}; {os.cpu_count()} cores"}  # fmt: skip
    for module in ("matplotlib", "sklearn"):
        try:
            out[module] = __import__(module).__version__
        except ImportError:
            out[module] = "not installed"
    return out


FIG4 = tuple(f"{side} {m}" for side in ("head", "tail") for m in ("HR@5", "NDCG@5"))


def variant(a: dict) -> str:
    """What a run is a seed of: its directory name without a trailing ``-s<seed>``."""
    return re.sub(r"-s\d+$", "", a["label"])


def by_method(analyses: list[dict]) -> dict[str, dict[str, float]]:
    """Per variant (runs that differ only in seed), the mean over its runs of the Fig. 4
    numbers and the head-rate IQR."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for a in analyses:
        runs[variant(a)].append(a)
    out = {}
    for method, rs in runs.items():
        row = {"runs": len(rs)}
        for key in FIG4:
            side, metric = key.split()
            row[key] = statistics.mean(a["groups"][side][metric] for a in rs)
        iqr = [a["clusters"]["head_rate_iqr"] for a in rs if a["clusters"]]
        row["head-rate IQR"] = statistics.mean(iqr) if iqr else float("nan")
        out[method] = row
    return out


def _variant_named(analyses: list[dict], methods: dict, name: str) -> str:
    """The variant ``name`` stands for: itself, or a method with one variant among the runs."""
    if name in methods:
        return name
    named = {variant(a) for a in analyses if a["method"] == name}
    if len(named) != 1:
        raise ValueError(
            f"baseline {name!r} names {len(named)} of the runs' variants {sorted(methods)}"
        )
    return named.pop()


def tables(
    analyses: list[dict], baselines: tuple[str, ...] = ()
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the report as (header, rows) of strings: the HTML and the Markdown
    pages both render these, so they cannot disagree. For each of ``baselines`` (a variant,
    or a method with one variant among the runs), each variant's relative gain over it on
    head and on tail users is added."""
    f = lambda x: f"{x:.4f}"  # noqa: E731
    out = {}
    methods = by_method(analyses)
    header = ["variant", "runs", *FIG4, "head-rate IQR"]
    rows = [
        [m, str(r["runs"]), *(f(r[k]) for k in (*FIG4, "head-rate IQR"))]
        for m, r in methods.items()
    ]
    for name in baselines:
        baseline = _variant_named(analyses, methods, name)
        base = methods[baseline]
        suffix = f" vs {baseline}" if len(baselines) > 1 else ""
        header += [f"{k} gain{suffix}" for k in FIG4]
        for row, r in zip(rows, methods.values(), strict=True):
            row += [f"{r[k] / base[k] - 1:+.1%}" if base[k] else "-" for k in FIG4]
    summary = (header, rows)
    out["Test metrics (results.json)"] = (
        ["run", "method", "dataset", "seed", *METRICS],
        [[a["label"], a["method"], a["dataset"], str(a["seed"]),
          *(f(a["test"][m]) if a["test"] else "-" for m in METRICS)] for a in analyses],
    )  # fmt: skip
    out["By variant, mean over seeds (Fig. 3 and 4)"] = summary
    groups = list(analyses[0]["groups"])
    out[f"Test {GROUP_METRIC} by user group (users in brackets)"] = (
        ["run", *(f"{g} ({analyses[0]['groups'][g]['users']:,})" for g in groups)],
        [[a["label"], *(f(a["groups"][g][GROUP_METRIC]) for g in groups)] for a in analyses],
    )
    out["Tail vs head (Fig. 4)"] = (
        ["run", *(f"{side} {m}" for side in ("head", "tail") for m in ("HR@5", "NDCG@5"))],
        [[a["label"], *(f(a["groups"][s][m]) for s in ("head", "tail") for m in ("HR@5", "NDCG@5"))]
         for a in analyses],
    )  # fmt: skip
    out["Clusters (Fig. 3)"] = (
        ["run", "source", "K", "empty", "entropy / log K", "head-rate IQR", "head-rate spread",
         "NMI(cluster, head)"],
        [[a["label"], c["source"], str(c["k"]), str(c["empty"]), f(c["entropy_ratio"]),
          f(c["head_rate_iqr"]), f(c["head_rate_spread"]), f(c["nmi_head"])]
         for a in analyses if (c := a["clusters"])],
    )  # fmt: skip
    return out


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_report(
    analyses: list[dict],
    out_dir: str | Path,
    sweeps: tuple[str, ...] = (),
    baselines: tuple[str, ...] = (),
) -> Path:
    """Write ``report.html`` (self-contained), ``report.md`` and the PNGs to ``out_dir``."""
    if not analyses:
        raise ValueError("no runs to report on")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str, bytes | None]] = [
        ("head-rates", "Head rate per cluster (Fig. 3)", plot_head_rates(analyses)),
        ("groups", f"Test {GROUP_METRIC} by user group (Fig. 4)", plot_groups(analyses)),
        *((f"sweep-{k}", f"Sweep of {k} (Fig. 5)", plot_sweep(analyses, k)) for k in sweeps),
        *((f"tsne-{a['label']}", f"t-SNE of {a['label']} (Fig. 1)", plot_tsne(a)) for a in analyses),
        *((f"curves-{a['label']}", f"Training of {a['label']}", plot_curves(a)) for a in analyses),
    ]  # fmt: skip
    figures = [(name, title, png) for name, title, png in figures if png is not None]
    for name, _, png in figures:
        (out / f"{name}.png").write_bytes(png)
    tabs = tables(analyses, baselines)
    versions = _versions()
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>s4rec report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:"
             "collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "</style></head><body><h1>s4rec report</h1>"]  # fmt: skip
    for title, (header, rows) in tabs.items():
        parts += [f"<h2>{html.escape(title)}</h2>", _html_table(header, rows)]
    for name, title, png in figures:
        data, alt = base64.b64encode(png).decode(), html.escape(name, quote=True)
        parts.append(
            f"<h2>{html.escape(title)}</h2><img alt='{alt}' src='data:image/png;base64,{data}'>"
        )
    parts.append("<h2>Configurations</h2>")
    for a in analyses:
        cfg = html.escape(json.dumps(a["config"], indent=1))
        parts.append(
            f"<details><summary>{html.escape(a['label'])}</summary><pre>{cfg}</pre></details>"
        )
    parts += ["<h2>Versions and machine</h2>", _html_table(["", ""], [[k, v] for k, v in versions.items()]),
              "</body></html>"]  # fmt: skip
    write_text_atomic(out / "report.html", "".join(parts))
    md = ["# s4rec report", ""]
    for title, (header, rows) in tabs.items():
        md += [f"## {title}", "", md_table(header, rows), ""]
    md += [f"## {title}\n\n![{name}]({name}.png)\n" for name, title, _ in figures]
    md += [
        "## Versions and machine",
        "",
        md_table(["", ""], [[k, v] for k, v in versions.items()]),
    ]
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    return out / "report.html"
