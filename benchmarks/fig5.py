"""Fig. 5 and Table 4 as sweeps: test accuracy of S^4Rec against K and each loss weight.

    python benchmarks/fig5.py --dataset beauty

Collects the finished paper-protocol runs of one dataset that vary one setting of S^4Rec:
the K runs of ``s4rec_grid.sh table4`` and the loss-weight sweeps of ``sweep.py``
(``--name alpha|beta1|beta2|lam``), together with the ``s4rec`` runs (the paper's values)
and ``s4rec-no-gr`` (lambda = 0). Runs join a curve only when everything but the swept
setting and the seed agrees (``s4rec.report.sweep_points``). Writes the report to
benchmarks/reports/fig5-DATASET/ and the points to benchmarks/results/summaries/fig5-DATASET.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, commit, provenance, write_result
from s4rec.report import METRICS, analyze_runs, sweep_points, write_report

KEYS = ("s4rec.prototypes", "s4rec.alpha", "s4rec.beta1", "s4rec.beta2", "s4rec.lam")
SWEEPS = ("alpha", "beta1", "beta2", "lam")  # sweep.py --name of each loss-weight sweep


def run_dirs(runs: Path, dataset: str) -> list[Path]:
    patterns = [f"{dataset}-s4rec-bce-s*", f"{dataset}-s4rec-no-gr-bce-s*",
                f"{dataset}-s4rec-bce-b256-s*", f"{dataset}-s4rec-bce-k*-s*",
                *(f"sweep-{name}/{dataset}-s4rec-bce-*-s*" for name in SWEEPS)]  # fmt: skip
    found = {d for p in patterns for d in runs.glob(p) if (d / "results.json").exists()}
    return sorted(found)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    runs = run_dirs(args.runs_dir, args.dataset)
    if not runs:
        raise SystemExit(f"no finished {args.dataset} S^4Rec runs under {args.runs_dir}")
    analyses = analyze_runs(runs, tsne_points=0, reuse=False)
    out = ROOT / "benchmarks" / "reports" / f"fig5-{args.dataset}"
    write_report(analyses, out, KEYS)
    sweeps = [
        {"key": key, "batch": batch, "series": series,
         "points": [{"value": v, "seeds": n, **{m: points[m][i][1] for m in METRICS}}
                    for i, (v, _, _, n) in enumerate(points[METRICS[0]])]}
        for batch in sorted({a["config"]["train"]["batch_size"] for a in analyses}, reverse=True)
        for key in KEYS
        for series, points in _by_series(
            [a for a in analyses if a["config"]["train"]["batch_size"] == batch], key
        ).items()
        if len(points[METRICS[0]]) > 1
    ]  # fmt: skip
    write_result(
        f"fig5-{args.dataset}",
        {"benchmark": "fig5", "dataset": args.dataset, "runs": [d.name for d in runs],
         "sweeps": sweeps, "report": str(out.relative_to(ROOT)),
         **provenance(time.perf_counter() - start, code)},
    )  # fmt: skip
    print(f"wrote {out / 'report.md'}")


def _by_series(analyses: list[dict], key: str) -> dict[str, dict[str, list[tuple]]]:
    """Series -> metric -> sweep points."""
    per_metric = {m: sweep_points(analyses, key, m) for m in METRICS}
    return {s: {m: per_metric[m][s] for m in METRICS} for s in per_metric[METRICS[0]]}


if __name__ == "__main__":
    main()
