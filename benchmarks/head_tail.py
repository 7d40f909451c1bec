"""The paper's head/tail claims (Fig. 3 and 4) on one dataset, from the committed protocol's runs.

    python benchmarks/head_tail.py --dataset beauty

Collects the finished paper-protocol runs ``runs/bench/DATASET-METHOD-bce-sSEED`` of the
methods below, recomputes their analyses (``--force`` semantics: nothing cached) and
writes the report to benchmarks/reports/DATASET/ (report.md and PNGs are committed;
report.html is the same page, self-contained). The JSON result holds the per-method
head/tail numbers, the checks of issue 5, and the wall time of the whole report.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, commit, provenance, write_result
from s4rec.report import analyze_runs, by_method, write_report

METHODS = ("sasrec", "s4rec", "s4rec-no-gr", "s4rec-no-csd", "cl4srec", "iclrec", "sr+csd+gr")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--tsne-points", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "bench")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    runs = [d for m in METHODS for pattern in (f"{args.dataset}-{m}-bce-s*", f"{args.dataset}-{m}-bce-b256-s*")
            for d in sorted(args.runs_dir.glob(pattern)) if (d / "results.json").exists()]  # fmt: skip
    if not runs:
        raise SystemExit(f"no finished {args.dataset} runs under {args.runs_dir}")
    analyses = analyze_runs(runs, args.tsne_points, reuse=False)
    out = ROOT / "benchmarks" / "reports" / args.dataset
    write_report(analyses, out, baseline=f"{args.dataset}-sasrec-bce")
    variants = by_method(analyses)
    checks = {}
    sasrec = variants.get(f"{args.dataset}-sasrec-bce")
    for batch in ("", "-b256"):  # S^4Rec at the paper's batch, and the earlier batch-256 runs
        s4 = variants.get(f"{args.dataset}-s4rec-bce{batch}")
        if s4 is None or sasrec is None:
            continue
        for m in ("HR@5", "NDCG@5"):
            checks[f"s4rec{batch}: tail {m} gain > head {m} gain"] = bool(
                s4[f"tail {m}"] / sasrec[f"tail {m}"] > s4[f"head {m}"] / sasrec[f"head {m}"]
            )
        for other in (f"{args.dataset}-s4rec-no-gr-bce{batch}", f"{args.dataset}-iclrec-bce"):
            if other in variants:
                checks[f"s4rec{batch}: head-rate IQR < {other}"] = bool(
                    s4["head-rate IQR"] < variants[other]["head-rate IQR"]
                )
    write_result(
        f"head-tail-{args.dataset}",
        {"benchmark": "head_tail", "dataset": args.dataset, "runs": [d.name for d in runs],
         "by_variant": variants, "checks": checks, "report": str(out.relative_to(ROOT)),
         **provenance(time.perf_counter() - start, code)},
    )  # fmt: skip
    print(checks)


if __name__ == "__main__":
    main()
