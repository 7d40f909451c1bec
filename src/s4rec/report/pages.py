"""The report's tables, and the pages that show them with the figures: one self-contained
``report.html`` and a ``report.md`` summary."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import platform
import re
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ..files import write_text_atomic
from .analyze import GROUP_METRIC, METRICS, group_metric
from .plots import plot_curves, plot_groups, plot_head_rates, plot_sweep, plot_tsne


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
        row: dict[str, float] = {"runs": len(rs)}
        for key in FIG4:
            side, metric = key.split()
            row[key] = statistics.mean(group_metric(a, side, metric) for a in rs)
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
    f = lambda x: "-" if math.isnan(x) else f"{x:.4f}"  # noqa: E731
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
        [[a["label"], *(f(group_metric(a, g, GROUP_METRIC)) for g in groups)] for a in analyses],
    )
    out["Tail vs head (Fig. 4)"] = (
        ["run", *(f"{side} {m}" for side in ("head", "tail") for m in ("HR@5", "NDCG@5"))],
        [[a["label"], *(f(group_metric(a, s, m)) for s in ("head", "tail") for m in ("HR@5", "NDCG@5"))]
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
    drawn: list[tuple[str, str, bytes | None]] = [
        ("head-rates", "Head rate per cluster (Fig. 3)", plot_head_rates(analyses)),
        ("groups", f"Test {GROUP_METRIC} by user group (Fig. 4)", plot_groups(analyses)),
        *((f"sweep-{k}", f"Sweep of {k} (Fig. 5)", plot_sweep(analyses, k)) for k in sweeps),
        *((f"tsne-{a['label']}", f"t-SNE of {a['label']} (Fig. 1)", plot_tsne(a)) for a in analyses),
        *((f"curves-{a['label']}", f"Training of {a['label']}", plot_curves(a)) for a in analyses),
    ]  # fmt: skip
    figures = [(name, title, png) for name, title, png in drawn if png is not None]
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
