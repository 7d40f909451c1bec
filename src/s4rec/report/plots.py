"""The report's figures as PNG bytes (matplotlib, ``pip install "s4rec[report]"``), drawn
from the analyses that ``analyze`` writes."""

from __future__ import annotations

import io
import json
import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from ..config import Config, dotted
from .analyze import GROUP_METRIC, group_metric


def _needs(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as err:
        raise SystemExit(
            f"this needs {module}: pip install 's4rec[report]' (matplotlib, scikit-learn)"
        ) from err


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
        values = [group_metric(a, g, metric) for g in groups]
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
