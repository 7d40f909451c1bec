"""The generated blocks of docs/reproduction.md (issue 19: S^4Rec as the paper wrote it): the
Beauty grid against the paper's row and the matched controls, the runs nearest to each of the
paper's rows, each term's pull on the encoder, and the other datasets. benchmarks/table.py
writes them."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from functools import cache

from common import (
    BOOKKEEPING,
    METRICS,
    PAPER,
    PAPER_K_HR5,
    RUNS,
    SUMMARIES,
    cell,
    generated,
    load,
)

BLOCKS = ("switches", "results", "targets", "closest", "headtail", "gradients", "datasets")

REFERENCES = {"s4rec": "s4rec before issue 19, earlier runs", "sasrec-b512": "SASRec, batch 512",
              "iclrec-codepad": "ICLRec, its code's padding"}  # fmt: skip
# the S^4Rec configurations the targets are always checked for: the s4rec before issue 19 (its
# runs), its rerun with the grid's code, and the padding hypothesis; the selected one joins
TARGETED = ("s4rec", "s4rec-base", "s4rec-codepad")


def matched_controls(rs: list[dict]) -> tuple[str, str]:
    """SASRec and CL4SRec at batch 512 with the configuration's padding behaviour and pooling."""
    if rs[0]["config"]["model"].get("padding") == "iclrec":
        return "sasrec-codepad-b512", "cl4srec-codepad-b512"
    return "sasrec-b512", "cl4srec-b512"


def selected(grid: dict[str, list[dict]]) -> str:
    """The validation-selected S^4Rec configuration (issue 19's rule for the defaults): the
    highest validation NDCG@20 at seed 1, the seed every screen has, among the grid's S^4Rec
    runs (the s4rec before issue 19 among them as ``s4rec-base``)."""
    seed1 = {
        n: r for n, rs in grid.items() for r in rs if r["method"] == "s4rec" and r["seed"] == 1
    }
    return max(seed1, key=lambda n: seed1[n]["valid"]["NDCG@20"])


def default_decision(grid: dict[str, list[dict]], reference: dict[str, list[dict]]) -> str:
    """Issue 19's rule for the ``s4rec`` defaults: ``"adopt"`` the selected configuration when
    its three-seed validation NDCG@20 mean is above the earlier s4rec's (the reference ``s4rec``
    runs), ``"keep"`` the earlier one when it is not or when it is the one selected, ``"pending"``
    while the selected one has fewer than three seeds."""
    best = selected(grid)
    if best == "s4rec-base":
        return "keep"
    if len(grid[best]) < 3:
        return "pending"
    ours = statistics.mean(r["valid"]["NDCG@20"] for r in grid[best])
    earlier = statistics.mean(r["valid"]["NDCG@20"] for r in reference["s4rec"])
    return "adopt" if ours > earlier else "keep"


DECISIONS = {
    "pending": "it becomes the `s4rec` default only if its three-seed validation mean is above "
    "the earlier s4rec's; {seeds} so far",
    "adopt": "its three-seed validation mean is above the earlier s4rec's, so it is now the "
    "`s4rec` default",
    "keep": "the earlier s4rec stays the default: the selected configuration's three-seed "
    "validation mean is not above it",
}


def named_runs(runs: list[dict], dataset: str) -> dict[str, list[dict]]:
    """BCE-protocol runs of one dataset by name (method and tag), seeds together."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        if r["dataset"] == dataset and r["loss"] == "bce":
            out[r["method"] + r.get("tag", "")].append(r)
    return out


def beyond_paper_file(run: dict, against: dict | None = None) -> list[str]:
    """The run's settings that differ from what its method resolves to on its dataset's paper
    file today (or from the configuration ``against``); a key the run's code did not have yet
    counts at its default, the behaviour every switch keeps as its default when it is added."""
    from common import protocol_file
    from s4rec.config import Config, dotted
    from s4rec.methods import configure

    if against is None:
        against = configure(run["method"], protocol_file("bce", run["dataset"])).to_dict()
    defaults = dotted(json.loads(json.dumps(Config().to_dict())))  # as results store it: lists
    theirs = {**defaults, **dotted(json.loads(json.dumps(against)))}
    cfg = {**defaults, **dotted(run["config"])}
    skip = (*BOOKKEEPING, "method", "data.dataset")
    return [f"{k}={cfg[k]}" for k in cfg if k not in skip and cfg[k] != theirs.get(k)]


def paper_gap(rs: list[dict], paper: tuple[float, ...]) -> str:
    """Mean over the four test metrics of (ours / paper - 1)."""
    means = [statistics.mean(r["test"][m] for r in rs) for m in METRICS]
    return f"{statistics.mean(m / p - 1 for m, p in zip(means, paper, strict=True)):+.0%}"


def variant_rows(named: dict[str, list[dict]], paper: tuple[float, ...], base_valid: float | None,
                 labels: dict[str, str] | None = None) -> list[str]:  # fmt: skip
    """One row per name: what it changes (``labels``, else its settings beyond the paper file),
    seeds, validation NDCG@20 (and its distance to ``base_valid``), the four test metrics and
    the mean relative distance to ``paper``."""
    lines = []
    for name, rs in named.items():
        valid = [r["valid"]["NDCG@20"] for r in rs]
        delta = "" if base_valid is None else f" ({statistics.mean(valid) - base_valid:+.4f})"
        label = labels[name] if labels else ", ".join(beyond_paper_file(rs[0])) or "-"
        metrics = " | ".join(cell([r["test"][m] for r in rs]) for m in METRICS)
        lines.append(f"| {name} | {label} | {len(rs)} | {cell(valid)}{delta} | {metrics}"
                     f" | {paper_gap(rs, paper)} |")  # fmt: skip
    return lines


HEADER = ("| run | settings beyond its method's paper file (S^4Rec's: beyond `s4rec-base`) | "
          "seeds | valid NDCG@20 | "
          + " | ".join(METRICS) + " | vs paper |")  # fmt: skip


# issue 19's findings and the grid runs that test them (benchmarks/reproduction.sh); the
# temperature cells are found by name
FINDINGS = (
    ("1. Eq. 11 on raw vectors", "s4rec-rawkd"),
    ("2. h(u) from p, not the Sinkhorn target", "s4rec-nearest"),
    ("3. tau1, tau2, tau3 apart: the best cell", "best tau"),
    ("3. the worst cell", "worst tau"),
    ("4. dot products in Eq. 3", "s4rec-doteq3"),
    ("4. dot products in Eq. 9-10", "s4rec-doteq9"),
    ("5. insert among the operators", "s4rec-insert"),
    ("5. Eq. 16's crop", "s4rec-cropout"),
    ("6. the ICLRec code's padding, z the mean of all outputs", "s4rec-codepad"),
    ("6. the same with Eq. 9-11 on raw vectors (now `s4rec`)", "s4rec-codepad-raw"),
)


def switches_table(repro: list[dict], reference: list[dict]) -> list[str]:
    """Each finding of issue 19 against the earlier s4rec rerun with the grid's code
    (``s4rec-base``, seed 1): validation NDCG@20, which decides, and test NDCG@20, which does
    not, each minus ``s4rec-base``'s; the verdict counts the validation difference in standard
    deviations of the earlier s4rec's three seeds (or of the run's own, if larger)."""
    grid = named_runs(repro, "beauty")
    base = grid["s4rec-base"]
    earlier = [r["valid"]["NDCG@20"] for r in named_runs(reference, "beauty")["s4rec"]]
    taus = sorted((n for n in grid if n.startswith("s4rec-tau")),
                  key=lambda n: statistics.mean(r["valid"]["NDCG@20"] for r in grid[n]))  # fmt: skip
    picks = {"best tau": taus[-1] if taus else None, "worst tau": taus[0] if taus else None}

    def minus_base(ours: list[float], split: str) -> float:
        return statistics.mean(ours) - statistics.mean(r[split]["NDCG@20"] for r in base)

    lines = ["| finding | run | seeds | valid NDCG@20 (minus `s4rec-base`) | test NDCG@20 "
             "(minus `s4rec-base`) | validation, in seed standard deviations |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for finding, name in FINDINGS:
        name = picks.get(name, name)
        rs = grid.get(name or "", [])
        if not rs:
            lines.append(f"| {finding} | `{name}` | - | not finished | - | - |")
            continue
        valid, test = ([r[split]["NDCG@20"] for r in rs] for split in ("valid", "test"))
        own = [statistics.stdev(valid)] if len(valid) >= 3 else []
        gain = minus_base(valid, "valid")
        sds = gain / max([statistics.stdev(earlier), *own])
        word = "above" if sds > 2 else "below" if sds < -2 else "within the spread"
        lines.append(f"| {finding} | `{name}` | {len(rs)} | {cell(valid)} "
                     f"({gain:+.4f}) | {cell(test)} "
                     f"({minus_base(test, 'test'):+.4f}) | {sds:+.1f}: {word} |")  # fmt: skip
    return lines


def reproduction_table(repro: list[dict], reference: list[dict]) -> list[str]:
    """Issue 19's Beauty grid (benchmarks/results/runs/repro/) under the paper's S^4Rec row and
    the matched references: test metrics over seeds, the mean relative distance to the paper's
    row, and validation NDCG@20 (the bracket: minus ``s4rec-base``'s), which alone decides."""
    paper = PAPER[("beauty", "s4rec")]
    grid = dict(sorted(named_runs(repro, "beauty").items()))
    base = grid.get("s4rec-base")
    base_valid = statistics.mean(r["valid"]["NDCG@20"] for r in base) if base else None
    refs = named_runs(reference, "beauty")
    lines = [HEADER, "|---|---|---|---|" + "---|" * (len(METRICS) + 1),
             "| paper S^4Rec (Table 2) | - | - | - | "
             + " | ".join(f"{v:.4f}" for v in paper) + " | - |"]  # fmt: skip
    lines += variant_rows({n: refs[n] for n in REFERENCES if n in refs}, paper, None, REFERENCES)
    against = base[0]["config"] if base else None  # the switches are measured against it
    labels = {n: ", ".join(beyond_paper_file(rs[0], against if rs[0]["method"] == "s4rec"
                                             else None)) or "-" for n, rs in grid.items()}  # fmt: skip
    return lines + variant_rows(grid, paper, base_valid, labels)


def datasets_table(repro: list[dict], reference: list[dict]) -> list[str]:
    """Toys, Sports and ML-1M: the paper's S^4Rec row, our Table 2 rows, and any grid runs."""
    lines = ["| dataset | run | settings beyond its method's paper file | seeds | valid NDCG@20 | "
             + " | ".join(METRICS) + " | vs paper S^4Rec |",
             "|---|---|---|---|---|" + "---|" * (len(METRICS) + 1)]  # fmt: skip
    for dataset in ("toys", "sports", "ml-1m"):
        paper = PAPER[(dataset, "s4rec")]
        lines.append(f"| {dataset} | paper S^4Rec | - | - | - | "
                     + " | ".join(f"{v:.4f}" for v in paper) + " | - |")  # fmt: skip
        refs = named_runs(reference, dataset)
        table2 = {n: refs[n] for n in ("sasrec", "cl4srec", "iclrec", "s4rec") if n in refs}
        grid = dict(sorted(named_runs(repro, dataset).items()))
        rows = variant_rows(table2, paper, None, dict.fromkeys(table2, "our Table 2 row"))
        rows += variant_rows(grid, paper, None)
        lines += [f"| {dataset} {row}" for row in rows]
    return lines


def display(name: str) -> str:
    """A run's name as the page writes it: the untagged S^4Rec runs are the preset before
    issue 19 changed it."""
    return "`s4rec` before issue 19" if name == "s4rec" else f"`{name}`"


def seeds(runs: list) -> str:
    return f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"


def control_line(name: str, rs: list[dict], named: dict[str, list[dict]]) -> str:
    """How far a configuration's test NDCG@20 is above each matched control, in standard
    deviations of the seeds (the larger of the two sides that have three seeds or more: two
    seeds give no spread worth the name), against the target's 2. A configuration with fewer
    than three seeds gets none: the control's spread alone would understate its own."""
    ours = [r["test"]["NDCG@20"] for r in rs]
    parts = []
    for control in matched_controls(rs):
        theirs = [r["test"]["NDCG@20"] for r in named.get(control, [])]
        if not theirs:
            parts.append(f"`{control}` not run yet")
            continue
        diff = statistics.mean(ours) - statistics.mean(theirs)
        spread = max((statistics.stdev(v) for v in (ours, theirs) if len(v) >= 3), default=0.0)
        if len(ours) < 3 or not spread:
            sds = "no spread yet (fewer than three seeds)"
        else:
            sds = f"{diff / spread:+.1f} sd"
        parts.append(f"`{control}` {cell(theirs)} ({seeds(theirs)}): {diff:+.4f}, {sds}")
    return f"- {display(name)} ({seeds(rs)}, {cell(ours)}) against " + "; ".join(parts) + "."


def targets_lines(repro: list[dict], reference: list[dict]) -> list[str]:
    """Issue 19's targets on Beauty for the targeted configurations and the validation-selected
    one: against the paper's row, and against the matched controls."""
    paper = PAPER[("beauty", "s4rec")]
    grid = named_runs(repro, "beauty")
    named = {**named_runs(reference, "beauty"), **grid}
    best = selected(grid)
    valid = next(r["valid"]["NDCG@20"] for r in grid[best] if r["seed"] == 1)
    shown = [n for n in dict.fromkeys([*TARGETED, best]) if n in named]
    decision = DECISIONS[default_decision(grid, named)].format(seeds=seeds(grid[best]))
    lines = [f"Selected by validation NDCG@20 at seed 1 among the grid's S^4Rec runs (the s4rec "
             f"before issue 19 among them as `s4rec-base`): `{best}` ({valid:.4f}); {decision}.",
             "",
             "Against the paper's S^4Rec row (test; target: at or above it on all four metrics):",
             ""]  # fmt: skip
    for name in shown:
        rs = named[name]
        means = [statistics.mean(r["test"][m] for r in rs) for m in METRICS]
        above = sum(m >= p for m, p in zip(means, paper, strict=True))
        lines.append(f"- {display(name)} ({seeds(rs)}): "
                     + ", ".join(f"{m} {v:.4f} ({v / p - 1:+.0%})"
                                 for m, v, p in zip(METRICS, means, paper, strict=True))
                     + f"; at or above the paper on {above} of 4.")  # fmt: skip
    lines += ["", "Against the matched controls (test NDCG@20; target: above both by more than "
              "two standard deviations):", ""]  # fmt: skip
    return lines + [control_line(n, named[n], named) for n in shown]


def distance(rs: list[dict], paper: tuple[float, ...]) -> float:
    """Mean over the four test metrics of |ours / paper - 1|, ours the mean over seeds."""
    means = [statistics.mean(r["test"][m] for r in rs) for m in METRICS]
    return statistics.mean(abs(m / p - 1) for m, p in zip(means, paper, strict=True))


def closest_lines(repro: list[dict], reference: list[dict]) -> list[str]:
    """For each of the paper's Beauty rows (Tables 2-3): our run of that method nearest to it
    and our run of any method nearest to it; then Table 4's HR@5 by number of prototypes."""
    named = {**named_runs(reference, "beauty"), **named_runs(repro, "beauty")}

    def nearest(names: list[str], paper: tuple[float, ...]) -> str:
        if not names:
            return "not run | - | -"
        best = min(names, key=lambda n: distance(named[n], paper))
        rs = named[best]
        return f"{display(best)} | {len(rs)} | {distance(rs, paper):.0%} ({paper_gap(rs, paper)})"

    lines = ["| paper row (Beauty) | nearest run of that method | seeds | distance (signed) "
             "| nearest run of any method | seeds | distance (signed) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (dataset, method), paper in PAPER.items():
        if dataset == "beauty":
            own = [n for n, rs in named.items() if rs[0]["method"] == method]
            lines.append(f"| {method} | {nearest(own, paper)} | {nearest(list(named), paper)} |")
    ks = []
    for k, paper_hr5 in PAPER_K_HR5.items():
        rs = named.get("s4rec" if k == 128 else f"s4rec-k{k}", [])
        ours = f"{statistics.mean(r['test']['HR@5'] for r in rs):.4f}" if rs else "not run"
        gap = f" ({float(ours) / paper_hr5 - 1:+.0%})" if rs else ""
        ks.append(f"K = {k}: {ours} against {paper_hr5:.4f}{gap}")
    return [*lines, "", "Table 4 (HR@5 of the `s4rec` before issue 19 by number of prototypes, batch 512): "
            + "; ".join(ks) + "."]  # fmt: skip


# the S^4Rec configurations whose head and tail users are compared with their SASRec control
HEAD_TAIL = ("s4rec", "s4rec-base", "s4rec-codepad", "s4rec-codepad-raw")
GROUP_METRICS = ("HR@5", "NDCG@5")


def head_tail_table(repro: list[dict], reference: list[dict]) -> list[str]:
    """Fig. 4's comparison from the result files, over seeds: head and tail users' test HR@5
    and NDCG@5 of each S^4Rec configuration, and in brackets its relative gain over its
    SASRec control (same batch and padding behaviour); the controls' rows follow."""
    named = {**named_runs(reference, "beauty"), **named_runs(repro, "beauty")}

    def means(rs: list[dict], group: str) -> list[float]:
        return [statistics.mean(r["test_by_group"][group][m] for r in rs) for m in GROUP_METRICS]

    lines = ["| run | seeds | " + " | ".join(f"{g} {m}" for g in ("head", "tail")
                                             for m in GROUP_METRICS) + " |",
             "|---|---|" + "---|" * 2 * len(GROUP_METRICS)]  # fmt: skip
    controls: dict[str, None] = {}
    for name in (n for n in HEAD_TAIL if n in named):
        rs = named[name]
        control = matched_controls(rs)[0]
        controls[control] = None
        cells = []
        for group in ("head", "tail"):
            theirs = means(named[control], group) if control in named else None
            for i, v in enumerate(means(rs, group)):
                cells.append(f"{v:.4f}" + (f" ({v / theirs[i] - 1:+.1%})" if theirs else ""))
        lines.append(f"| {display(name)} against `{control}` | {len(rs)} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    for name in (c for c in controls if c in named):
        rs = named[name]
        cells = [f"{v:.4f}" for g in ("head", "tail") for v in means(rs, g)]
        lines.append(f"| {display(name)} | {len(rs)} | " + " | ".join(cells) + " |")
    return lines


TERMS = {"cluster": "alpha L_Clust", "contrastive": "beta1 L_SCL", "distill": "beta2 L_CKD",
         "adversarial": "lambda L_Adv", "intent": "ICLRec's intent term"}  # fmt: skip


def gradients_table(summary: dict) -> list[str]:
    """Each weighted term's pull on the encoder (without the item table) at the best epoch:
    its gradient norm as a share of L_SR's, and the cosine between the two."""
    names = [t for t in TERMS if any(t in r["terms"] for r in summary["runs"])]
    lines = ["| run | best epoch | valid NDCG@20 | " + " | ".join(TERMS[t] for t in names) + " |",
             "|---|---|---|" + "---|" * len(names)]  # fmt: skip
    for r in summary["runs"]:
        cells = []
        for t in names:
            g = r["terms"].get(t, {}).get("rest of the encoder")
            cells.append(f"{g['norm_vs_next_item']:.1%} ({g['cosine_with_next_item']:+.2f})"
                         if g else "-")  # fmt: skip
        valid = r["valid"]["NDCG@20"]
        lines.append(
            f"| {r['run']} | {r['best_epoch']} | {valid:.4f} | " + " | ".join(cells) + " |"
        )
    return lines


@cache
def reproduction_runs() -> tuple[list[dict], list[dict]]:
    """The grid's runs and every reference run, read once for all of the page's blocks."""
    return load(RUNS / "repro"), load(RUNS)


def render_reproduction(block: str) -> str:
    if block == "gradients":
        return generated(gradients_table(json.loads((SUMMARIES / "term-gradients-beauty.json")
                                                    .read_text())), block)  # fmt: skip
    make = {
        "switches": switches_table,
        "results": reproduction_table,
        "datasets": datasets_table,
        "targets": targets_lines,
        "closest": closest_lines,
        "headtail": head_tail_table,
    }
    return generated(make[block](*reproduction_runs()), block)
