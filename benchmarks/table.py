"""Regenerate the tables of README.md, docs/results.md and docs/reproduction.md from
benchmarks/results (runs/ and summaries/).

python benchmarks/table.py          # rewrite each between its markers
python benchmarks/table.py --check  # exit 1 if any is out of date
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from functools import partial

from common import (
    MARKERS,
    METRICS,
    PAPER,
    PAPER_K_HR5,
    ROOT,
    RUNS,
    SUMMARIES,
    cell,
    generated,
    load,
)
from verdict import BLOCKS, render_reproduction


def accuracy_table(runs: list[dict]) -> list[str]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["dataset"], r["method"] + r.get("tag", ""), r["loss"])].append(r)
    lines = [
        "| dataset | method | loss | seeds | "
        + " | ".join(METRICS)
        + " | epochs | minutes / run |",
        "|---|---|---|---|" + "---|" * len(METRICS) + "---|---|",
    ]
    for (dataset, method, loss), rs in sorted(groups.items()):
        if (dataset, method) in PAPER and loss == "bce":
            paper = " | ".join(f"{v:.4f}" for v in PAPER[(dataset, method)])
            lines.append(f"| {dataset} | {method} (paper) | bce | - | {paper} | - | - |")
        metrics = " | ".join(cell([r["test"][m] for r in rs]) for m in METRICS)
        epochs = cell([float(r["epochs"]) for r in rs], digits=0)
        minutes = statistics.median(r["train_seconds"] for r in rs) / 60
        lines.append(
            f"| {dataset} | {method} | {loss} | {len(rs)} | {metrics} | {epochs} | {minutes:.1f} |"
        )
    return lines


def cost_table(costs: list[dict], runs: list[dict]) -> list[str]:
    lines = ["| measurement | threads | median seconds | detail |", "|---|---|---|---|"]
    labels = {"sasrec_bce": "SASRec epoch, BCE protocol", "s4rec_bce": "S^4Rec epoch, BCE protocol",
              "sasrec_ce": "SASRec epoch, CE every prefix"}  # fmt: skip
    for c in costs:
        for name, e in c["epochs"].items():
            depth = e["layers"] if "layers" in e else e["sets"][0].split("=")[1]  # older files
            lines.append(
                f"| {labels.get(name, name)} (Beauty, {depth} layer) | {c['threads']} | "
                f"{e['seconds_median']:.2f} | {e['trained_positions']:,} trained positions, "
                f"{e['batches']} batches |"
            )
        ev = c["evaluation"]
        lines += [
            f"| S^4Rec / SASRec epoch time, same run | {c['threads']} | - | "
            f"{c['s4rec_over_sasrec_bce']:.2f}x |",
            f"| full-ranking evaluation, {ev['users']:,} users (Beauty) | {c['threads']} | "
            f"{ev['seconds_median']:.2f} | all {c['evaluation_memory'][0]['items']:,} items |",
        ]
        for m in c["evaluation_memory"]:
            lines.append(
                f"| eval peak memory growth, {m['dataset']} {m['users']:,} users x {m['items']:,} items "
                f"| {c['threads']} | {m['seconds']:.2f} | +{m['peak_growth_mib']} MiB |"
            )
    machines = sorted({c["machine"] for c in costs})
    return [*lines, *time_to_best(costs, runs), "", *(f"Machine: {m}." for m in machines)]


def padding_cost_table(results: list[dict]) -> list[str]:
    """Per-epoch cost of the ICLRec code's padding behaviour against padding ignored
    (benchmarks/padding_cost.py): each side's median of interleaved epochs, and the ratio."""
    lines = ["| dataset | run | threads | median epoch s | trained positions | against padding "
             "ignored |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for name, e in r["epochs"].items():
            ratio = next((f"{v:.2f}x" for m, v in r["codepad_over_ignored"].items()
                          if name.startswith(m) and "codepad" in name), "-")  # fmt: skip
            lines.append(f"| {r['dataset']} | {name} | {r['threads']} | {e['seconds_median']:.2f}"
                         f" | {e['trained_positions']:,} | {ratio} |")  # fmt: skip
    machines = sorted({r["machine"] for r in results})
    return [*lines, "", "The four kinds of epoch interleaved in one process, so that the "
            "machine's load hits them alike: read the ratios, not the seconds "
            "(`benchmarks/padding_cost.py`). `-codepad` runs encode all max_len positions "
            "(`model.padding=iclrec`, mean-pooled z); the others cut each batch to its longest "
            "sequence.", "", *(f"Machine: {m}." for m in machines)]  # fmt: skip


def sweep_table(results: list[dict]) -> list[str]:
    """Table 4 and Fig. 5: S^4Rec's test accuracy against K and each loss weight, from
    benchmarks/fig5.py (one row per value, mean over its seeds)."""
    lines = ["| dataset | batch | setting | value | seeds | " + " | ".join(METRICS)
             + " | paper HR@5 |", "|---|---|---|---|---|" + "---|" * len(METRICS) + "---|"]  # fmt: skip
    for r in results:
        for sweep in r["sweeps"]:
            key = sweep["key"]
            for pt in sweep["points"]:
                paper = PAPER_K_HR5.get(pt["value"]) if key == "s4rec.prototypes" else None
                lines.append(f"| {r['dataset']} | {sweep['batch']} | `{key}` | {pt['value']:g} | "
                             f"{pt['seeds']} | " + " | ".join(f"{pt[m]:.4f}" for m in METRICS)
                             + f" | {'-' if paper is None else f'{paper:.4f}'} |")  # fmt: skip
    notes = [f"`python benchmarks/fig5.py --dataset {r['dataset']}`; plots in "
             f"`{r['report']}/report.md`." for r in results]  # fmt: skip
    return [*lines, "", *notes]


def best_epochs(runs: list[dict], dataset: str, method: str) -> list[int]:
    """Best validation epoch of each seed of the method's untagged BCE runs on the dataset."""
    key = (dataset, method, "bce", "")
    return [r["best_epoch"] for r in runs
            if (r["dataset"], r["method"], r["loss"], r.get("tag", "")) == key]  # fmt: skip


def time_to_best(costs: list[dict], runs: list[dict]) -> list[str]:
    """Rows estimating time to the best validation epoch on Beauty: the median best epoch of
    the untagged BCE runs times the measured (epoch + evaluation) time at each thread count."""
    lines = []
    for c in costs:
        for name, method in (("sasrec_bce", "sasrec"), ("s4rec_bce", "s4rec")):
            best = best_epochs(runs, "beauty", method)
            if not best:
                continue
            epoch = c["epochs"][name]["seconds_median"] + c["evaluation"]["seconds_median"]
            lines.append(
                f"| {method} time to best validation (Beauty, BCE protocol), estimated | {c['threads']} "
                f"| {statistics.median(best) * epoch:.0f} | median best epoch {statistics.median(best):g} "
                f"of {len(best)} seeds x {epoch:.2f} s per epoch with validation |"
            )
    return lines


def clustering_table(results: list[dict]) -> list[str]:
    lines = ["| users | threads | S^4Rec epoch s | encode all users s | K-means s | K-means share "
             "| encode + K-means share |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for row in r["sizes"]:
            lines.append(
                f"| {row['users']:,} | {r['threads']} | {row['s4rec_epoch_seconds']:.2f} | "
                f"{row['encode_seconds']:.2f} | {row['kmeans_seconds']:.2f} | "
                f"{row['kmeans_share']:.1%} | {row['clustering_share']:.1%} |"
            )
    ks = sorted({(r["k"], r["iters"]) for r in results})
    where = ", ".join(f"K = {k}, {i} iterations" for k, i in ks)
    return [*lines, "", f"Shares are of an epoch with K-means intents ({where}, fit on at "
            "most 256 points per centroid, then every user assigned); "
            "`benchmarks/clustering_cost.py`, synthetic data, 12,000 items."]  # fmt: skip


def table5(results: list[dict], runs: list[dict]) -> list[str]:
    """Table 5: clean per-epoch split (benchmarks/table5.py) x best epoch of the training runs."""
    lines = ["| dataset | method | threads | train s / epoch | clustering s | validation s "
             "| epoch vs s4rec | best epoch (seeds) | est. minutes to best |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for dataset, row in r["datasets"].items():
            full = {
                m: e["seconds_median"] + row["validation_seconds"] for m, e in row["epochs"].items()
            }
            for method, e in row["epochs"].items():
                best = best_epochs(runs, dataset, method)
                converged = (f"{statistics.median(best):g} ({len(best)}) | "
                             f"{statistics.median(best) * full[method] / 60:.1f}"
                             if best else "not run | -")  # fmt: skip
                lines.append(
                    f"| {dataset} | {method} | {r['threads']} | "
                    f"{e['seconds_median'] - e['cluster_seconds_median']:.2f} | "
                    f"{e['cluster_seconds_median']:.2f} | {row['validation_seconds']:.2f} | "
                    f"{full[method] / full['s4rec']:.2f}x | {converged} |"
                )
    return [*lines, "", "Seconds are medians of interleaved epochs on a quiet machine "
            "(`benchmarks/table5.py`); an epoch counts training, clustering and validation; "
            "minutes to best = median best epoch of the committed runs x that epoch. The "
            "paper (P100 GPU): Beauty 62.6 vs 31.4 minutes, Toys 72.6 vs 48.1."]  # fmt: skip


def head_tail_table(results: list[dict]) -> list[str]:
    """Fig. 3-4 numbers per variant from benchmarks/head_tail.py, with the checks of issue 5."""
    keys = ("head HR@5", "head NDCG@5", "tail HR@5", "tail NDCG@5", "head-rate IQR")
    lines = ["| variant | runs | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    notes = []
    for r in results:
        for name, row in r["by_variant"].items():
            lines.append(f"| {name} | {row['runs']} | "
                         + " | ".join(f"{row[k]:.4f}" for k in keys) + " |")  # fmt: skip
        checks = ", ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in r["checks"].items())
        notes.append(f"{r['dataset']}: {checks}. Report: `{r['report']}/report.md`, built in "
                     f"{r['wall_seconds']:.0f} s with t-SNE ({r['threads']} thread).")  # fmt: skip
    return [*lines, "", *notes]


def probe_table(probes: list[dict]) -> list[str]:
    lines = ["| coupling | variant | NMI(cluster, intent) | NMI(cluster, head) | head-rate spread "
             "| valid NDCG@20 |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(probes, key=lambda r: r["coupling"]):
        for name, v in r["variants"].items():
            cells = " | ".join(
                f"{v[k]['median']:.3f}" for k in ("nmi_intent", "nmi_head", "head_spread", "valid")
            )
            lines.append(f"| {r['coupling']:g} | {name} | {cells} |")
    seeds = sorted({len(r["seeds"]) for r in probes})
    return [
        *lines,
        "",
        f"Medians over {'/'.join(map(str, seeds))} seeds; `benchmarks/intent_probe.py`.",
    ]


def repeats_table(results: list[dict]) -> list[str]:
    """What a run's results.json reported on data with planted repeats, against `evaluate`
    and the metrics of `predict`'s top-20 lists under both protocols (benchmarks/repeats.py)."""
    lines = ["| run | best epoch | repeated test targets | metrics of | " + " | ".join(METRICS)
             + " |", "|---|---|---|---|" + "---|" * len(METRICS)]  # fmt: skip
    for r in results:
        rep = r["reported"]
        written = rep["eval_protocol"]
        how = ("written before this protocol: repeats scored as if shown" if written is None
               else f"exclude_history={str(written['exclude_history']).lower()}")  # fmt: skip
        rows = [(f"results.json ({how})", rep["test"])]
        for setting, u in r["under"].items():
            rows += [(f"`evaluate`, {setting}", u["evaluate"]),
                     (f"`predict` top-20 lists, {setting}", u["from_predict_lists"])]  # fmt: skip
        repeated = r["under"]["exclude_history=true"]["eval_protocol"]["repeated_targets"]["test"]
        first = f"| {r['name']} | {rep['best_epoch']} | {repeated:,} | "
        for i, (label, m) in enumerate(rows):
            lead = first if i == 0 else "| | | | "
            lines.append(lead + label + " | " + " | ".join(f"{m[k]:.4f}" for k in METRICS) + " |")
    return lines


def ddp_table(results: list[dict]) -> list[str]:
    """Epoch seconds, 1 against 2 processes at the same global batch, and bf16 on CPU."""
    lines = ["| dataset | method | 1 process s | 2 processes s | speedup | 1 process bf16 s |"
             " bf16 / fp32 |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for method, m in r["methods"].items():
            t = m["epoch_seconds_median"]
            lines.append(f"| {r['dataset']} | {method} | {t['1 process']:.2f} | {t['2 processes']:.2f}"
                         f" | {m['speedup']:.2f} | {t['1 process bf16']:.2f} | {m['bf16_over_fp32']:.2f} |")  # fmt: skip
    notes = [f"{r['dataset']}: medians of {r['repeats']} interleaved repeats x {r['epochs_per_run'] - 1}"
             f" epochs (training + validation), one thread per process, {r['machine']};"
             " `benchmarks/ddp_scaling.py`." for r in results]  # fmt: skip
    return [*lines, "", *notes]


def serve_table(results: list[dict]) -> list[str]:
    """Latency and throughput of ``s4rec serve`` per runtime, and the hostile-request phase."""
    lines = ["| runtime | model alone ms | /recommend most req/s | p50 / p99 ms there | req/s paced"
             " | p50 / p99 ms paced | batch-64 histories/s | hostile: all 4xx, alive | RSS growth MiB |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for runtime, ph in r["phases"].items():
            one, fz = ph["recommend"], ph["fuzz"]
            paced = ph[f"recommend_at_{r['rate']:g}_per_s"]
            lines.append(f"| {runtime} | {r['model_latency_ms'][runtime]:.2f} | {one['requests_per_s']:.0f}"
                         f" | {one['p50_ms']:.1f} / {one['p99_ms']:.1f} | {paced['requests_per_s']:.0f}"
                         f" | {paced['p50_ms']:.1f} / {paced['p99_ms']:.1f}"
                         f" | {ph['recommend_batch_64']['histories_per_s']:.0f}"
                         f" | {fz['all_4xx'] and fz['alive']} ({fz['requests']})"
                         f" | {ph['rss_mib_growth_fuzz']:.1f} |")  # fmt: skip
    notes = [f"{r['dataset']}, {r['clients']} clients, server on {r['server_threads']} thread,"
             f" load generator on the same machine; {r['machine']}; `benchmarks/serve_load.py`."
             for r in results]  # fmt: skip
    return [*lines, "", *notes]


def peers_rows(r: dict) -> list[str]:
    """One peers run as a table: s4rec's SASRec-CE against RecBole's, side by side in one run."""
    ours, theirs, ratio = (
        r["summary"]["s4rec"],
        r["summary"]["recbole"],
        r["ratios_s4rec_vs_recbole"],
    )
    e, version = r["epochs"], r["libraries"]["recbole"].get("recbole", "")
    return [
        f"| Beauty, SASRec with CE, one thread each, one run | s4rec | RecBole {version} |"
        " s4rec vs RecBole |",
        "|---|---|---|---|",
        f"| seconds per training epoch | {ours['epoch_seconds_median']:.1f} | "
        f"{theirs['epoch_seconds_median']:.1f} | {ratio['train_epoch_speedup']:.1f}x faster |",
        f"| seconds per full-ranking evaluation, all users | {ours['eval_seconds_median']:.1f} | "
        f"{theirs['eval_seconds_median']:.1f} | {ratio['eval_speedup']:.1f}x faster |",
        f"| peak memory (MiB) | {ours['peak_rss_mib']:.0f} | {theirs['peak_rss_mib']:.0f} | "
        f"{ratio['peak_rss']:.2f}x |",
        f"| test NDCG@10 after {e} epochs, each library's evaluator | "
        f"{ours['own_evaluator']['NDCG@10']:.4f} | {theirs['own_evaluator']['NDCG@10']:.4f} | "
        f"{ratio['NDCG@10 own_evaluator']:.2f}x |",
        f"| test NDCG@10 after {e} epochs, our evaluator on both top-20 lists | "
        f"{ours['ours_history_excluded']['NDCG@10']:.4f} | "
        f"{theirs['ours_history_excluded']['NDCG@10']:.4f} | "
        f"{ratio['NDCG@10 ours_history_excluded']:.2f}x |",
    ]


def peers_table(results: list[dict]) -> list[str]:
    lines = []
    for r in sorted(results, key=lambda r: r["epochs"]):
        lines += [f"{r['epochs']} epochs, `{r['command']}` (commit {r['commit'][:7]}):", "",
                  *peers_rows(r), ""]  # fmt: skip
    return lines


def epochs(train: dict, suffix: str) -> str:
    """A point's sasrec and s4rec epoch seconds (``suffix``: which variant), or -."""
    got = [train.get(m + suffix) for m in ("sasrec", "s4rec")]
    return ", ".join(f"{t['epoch_seconds']:.1f}" if t else "-" for t in got)


def train_growth(g: dict) -> str:
    """The training cost-per-user ratios of a growth row, one per trained variant."""
    return ", ".join(f"x{v} ({k.removeprefix('train_').removesuffix('_seconds_per_user')})"
                     for k, v in g.items() if k.startswith("train_"))  # fmt: skip


def growth_line(g: dict, axis: str, fixed: str) -> str:
    """One growth row of a scale result as a bullet: training and evaluation cost per user."""
    return (f"- {g[axis]:,} {axis} against {g['relative_to_' + axis]:,} ({g[fixed]:,} {fixed}):"
            f" training cost per user {train_growth(g)}; evaluation cost per user"
            f" x{g['eval_seconds_per_user']}")  # fmt: skip


def scale_table(results: list[dict]) -> list[str]:
    lines = ["| users | items | interactions | load s | load peak MiB | epoch s: sasrec, s4rec "
             "| sparse item table | eval ms/user | eval peak MiB | ranking adds MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        for p in r["points"]:
            load, train, ev = p["load"], p["train"], p["eval"]
            extrapolated = any(t["epoch_extrapolated"] for t in train.values())
            lines.append(
                f"| {p['users']:,} | {load['items']:,} | {load['interactions']:,} | "
                f"{load['seconds']:.2f} | {load['peak_rss_mib']:.0f} | "
                f"{epochs(train, '')}{'*' if extrapolated else ''} | "
                f"{epochs(train, '-sparse')}{'*' if extrapolated else ''} | "
                f"{1000 * ev['seconds_per_user']:.2f} | "
                f"{ev['peak_rss_mib']:.0f} | {ev['peak_rss_mib'] - ev['rss_before_ranking_mib']:.0f} |"
            )
        growth = r["growth_with_users"]
        lines += ["", f"`{r['command']}` (commit {r['commit'][:7]}); * the epoch is extrapolated"
                  f" from its first {r['max_batches']} batches; evaluation ranks"
                  f" {r['eval_users']:,} random users against every item.", ""]  # fmt: skip
        for g in growth:
            lines.append(growth_line(g, "users", "items") + f"; evaluation peak memory"
                         f" x{g['eval_peak_rss_mib']} (data included), what ranking adds to it"
                         f" x{g['eval_ranking_rss_mib']}.")  # fmt: skip
        lines += [growth_line(g, "items", "users") + "." for g in r["growth_with_items"]]
    return lines


def ingest_table(results: list[dict]) -> list[str]:
    lines = [
        "| reader | rows | log MiB | seconds | rows/s | peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for p in r["sizes"]:
            lines.append(f"| {r['reader']} | {p['rows']:,} | {p['log_mib']:.0f} | {p['wall_seconds']:.1f} | "
                         f"{p['rows_per_second']:,} | {p['peak_rss_mib']:.0f} |")  # fmt: skip
    commands = "; ".join(f"`{r['command']}` (commit {r['commit'][:7]})" for r in results)
    return [*lines, "", f"{commands}; peak RSS of the whole `prepare` process."]


def profile_table(results: list[dict]) -> list[str]:
    lines = []
    for r in results:
        shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["share_of_step"].items())
        lines += [f"`{r['method']}` with `{r['config']}` on {r['dataset']} ({r['items']:,} items,"
                  f" {r['targets_per_step']:.0f} targets per step): {shares}. `{r['command']}`"
                  f" (commit {r['commit'][:7]}).", "", "| product | milliseconds |", "|---|---|",
                  *(f"| {k} | {v:.1f} |" for k, v in r["head_matmul_ms"].items()), ""]  # fmt: skip
    return lines


def ranker_table(results: list[dict]) -> list[str]:
    lines = ["| dataset | users x items | against | ranks s (then / now) | top-k s (then / now) "
             "| then / now, ranks | then / now, top-k |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        s, x = r["seconds_median"], r["then_over_now_median"]
        lines.append(f"| {r['dataset']} | {r['users']:,} x {r['items']:,} | {r['against']} | "
                     f"{s['ranks then']:.2f} / {s['ranks now']:.2f} | "
                     f"{s['top_k then']:.2f} / {s['top_k now']:.2f} | {x['ranks']:.2f}x | "
                     f"{x['top_k']:.2f}x |")  # fmt: skip
    return [*lines, "", "Medians of interleaved repeats with one thread (`benchmarks/ranker_speed."
            "py`); both evaluators gave the same ranks and lists. Ranks are what validation "
            "costs each training epoch, top-k lists what `predict` costs."]  # fmt: skip


def render_readme_cost() -> str:
    """The README's cost table: the newest peers run's ratios, measured side by side."""
    summaries = load(SUMMARIES)
    peers = [r for r in summaries if r["benchmark"] == "peers"]
    if not peers:
        return generated([], "cost")
    lines = peers_rows(max(peers, key=lambda r: r["epochs"]))
    for s in (r for r in summaries if r["benchmark"] == "scale"):
        big = max(s["points"], key=lambda p: p["users"])
        g = next(g for g in s["growth_with_users"] if g["users"] == big["users"])
        lines += ["", f"At {big['users']:,} users and {big['load']['items']:,} items"
                  f" ({big['load']['interactions']:,} interactions) the binary dataset loads in"
                  f" {big['load']['seconds']:.1f} s at {big['load']['peak_rss_mib']:.0f} MiB peak;"
                  f" from {g['relative_to_users']:,} users to {big['users']:,} a training epoch's"
                  f" cost per user changes by {train_growth(g)}."]  # fmt: skip
    return generated(lines, "cost")


# run name -> its row in the README: the s4rec preset is issue 19's selected configuration,
# whose runs carry that name in the grid (runs/repro/); the earlier preset's runs follow it
HEADLINE = {"sasrec": "`sasrec`", "cl4srec": "`cl4srec`", "iclrec": "`iclrec`",
            "iclrec-codepad": "`iclrec-codepad`", "s4rec-codepad-raw": "`s4rec`",
            "s4rec": "`s4rec` before issue 19"}  # fmt: skip


def render_headline() -> str:
    """The README's one table: Beauty's Table 2 rows, the paper's against ours."""
    runs = [r for r in load(RUNS) + load(RUNS / "repro")
            if r["dataset"] == "beauty" and r["loss"] == "bce"]  # fmt: skip
    lines = ["| Beauty, test | paper HR@20 | ours HR@20 | paper NDCG@20 | ours NDCG@20 | seeds |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, label in HEADLINE.items():
        rs = [r for r in runs if r["method"] + r.get("tag", "") == name]
        paper = PAPER.get(("beauty", name.split("-")[0]), (None,) * 4)
        cells = [f"{paper[1]:.4f}" if paper[1] else "-", cell([r["test"]["HR@20"] for r in rs]),
                 f"{paper[3]:.4f}" if paper[3] else "-", cell([r["test"]["NDCG@20"] for r in rs])]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {len(rs)} |")
    return generated(lines)


def render() -> str:
    kinds: dict[str, list[dict]] = defaultdict(list)
    for r in load(SUMMARIES):
        kinds[r["benchmark"]].append(r)
    runs, costs = load(RUNS), kinds["cost"]
    note = (
        "Minutes are the training and validation wall time of a whole run (early stopping"
        " included, summed over resumed parts) with one thread, while other runs shared the"
        " machine's two cores; the Cost table has clean timings. Runs paused for a quiet"
        " benchmark count the pause: beauty s4rec-k64 and sports s4rec, about 19 minutes each."
        " The S^4Rec runs and timings on this page that carry no `codepad` tag were made with the"
        " s4rec preset before issue 19 (padding ignored, cosine Eq. 9-11); the preset now"
        " encodes every position (docs/method.md)."
    )
    body = ["### Accuracy (test, full ranking, best validation NDCG@20 checkpoint)", "",
            *accuracy_table(runs), "", note, "",
            "### Number of prototypes and loss weights (Table 4, Fig. 5; BCE protocol; the"
            " paper's batch is 512)", "", *sweep_table(kinds["fig5"]),
            "", "### Cost", "", *cost_table(costs, runs),
            "", "### Intents and head rates on planted-intent synthetic data", "",
            *probe_table(kinds["intent_probe"])]  # fmt: skip
    if kinds["head_tail"]:
        body += ["", "### Head and tail users (Fig. 3 and 4; test, mean over seeds)", "",
                 *head_tail_table(kinds["head_tail"])]  # fmt: skip
    if kinds["padding_cost"]:
        body += ["", "### What the ICLRec code's padding behaviour costs", "",
                 *padding_cost_table(kinds["padding_cost"])]  # fmt: skip
    if kinds["table5"]:
        body += ["", "### Online vs K-means clustering (Table 5)", "",
                 *table5(kinds["table5"], runs)]  # fmt: skip
    if kinds["ddp_scaling"]:
        body += ["", "### One process against two (torchrun, gloo, CPU)", "",
                 *ddp_table(kinds["ddp_scaling"])]  # fmt: skip
    if kinds["serve_load"]:
        body += ["", "### Serving (HTTP, one core)", "", *serve_table(kinds["serve_load"])]
    if kinds["repeats"]:
        body += ["", "### Repeat consumption", "", *repeats_table(kinds["repeats"])]
    if kinds["peers"]:
        body += ["", "### Against RecBole, side by side", "", *peers_table(kinds["peers"])]
    if kinds["ranker_speed"]:
        body += ["", "### Full-ranking evaluation against its earlier version", "",
                 *ranker_table(kinds["ranker_speed"])]  # fmt: skip
    if kinds["step_profile"]:
        body += ["", "### Where a training step's time goes (one thread)", "",
                 *profile_table(kinds["step_profile"])]  # fmt: skip
    if kinds["ingest"]:
        body += ["", "### Ingest (`prepare`, synthetic CSV logs, one process)", "",
                 *ingest_table(kinds["ingest"])]  # fmt: skip
    if kinds["scale"]:
        body += [
            "",
            "### Scale (synthetic, long-tailed, one thread)",
            "",
            *scale_table(kinds["scale"]),
        ]
    if kinds["clustering_cost"]:
        body += ["", "### What per-epoch K-means adds, by number of users", "",
                 *clustering_table(kinds["clustering_cost"])]  # fmt: skip
    return generated(body)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    stale = []
    for doc, block, render_doc in ((ROOT / "README.md", "results", render_headline),
                                   (ROOT / "README.md", "cost", render_readme_cost),
                                   (ROOT / "docs" / "results.md", "results", render),
                                   *((ROOT / "docs" / "reproduction.md", block,
                                      partial(render_reproduction, block))
                                     for block in BLOCKS)):  # fmt: skip
        text = doc.read_text()
        start, end = (m.format(block) for m in MARKERS)
        if start not in text or end not in text:
            sys.exit(f"{doc}: missing the {start} / {end} markers")
        before, rest = text.split(start, 1)
        new = before + render_doc() + rest.split(end, 1)[1]
        if args.check:
            stale += [str(doc)] if new != text else []
        else:
            doc.write_text(new)
    if stale:
        sys.exit(f"{', '.join(stale)} out of date: run python benchmarks/table.py")


if __name__ == "__main__":
    main()
