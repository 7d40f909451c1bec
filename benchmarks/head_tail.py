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
    runs = [d for m in METHODS for tag in ("", "-b256", "-b512")
            for d in sorted(args.runs_dir.glob(f"{args.dataset}-{m}-bce{tag}-s*"))
            if (d / "results.json").exists()]  # fmt: skip
    if not runs:
        raise SystemExit(f"no finished {args.dataset} runs under {args.runs_dir}")
    analyses = analyze_runs(runs, args.tsne_points, reuse=False)
    out = ROOT / "benchmarks" / "reports" / args.dataset
    variants = by_method(analyses)
    sasrecs = (f"{args.dataset}-sasrec-bce", f"{args.dataset}-sasrec-bce-b512")  # batch 256, 512
    write_report(analyses, out, baselines=tuple(b for b in sasrecs if b in variants))
    checks = {}
    pre = f"{args.dataset}-"
    # (S^4Rec variant, SASRec at the same batch): 512 is the paper's S^4Rec batch, 256 ICLRec's
    for s4rec, sasrec in (("s4rec-bce", "sasrec-bce-b512"), ("s4rec-bce", "sasrec-bce"),
                          ("s4rec-bce-b256", "sasrec-bce")):  # fmt: skip
        s4, base = variants.get(pre + s4rec), variants.get(pre + sasrec)
        if s4 is None or base is None:
            continue
        for m in ("HR@5", "NDCG@5"):
            checks[f"{s4rec} vs {sasrec}: tail {m} gain > head {m} gain"] = bool(
                s4[f"tail {m}"] / base[f"tail {m}"] > s4[f"head {m}"] / base[f"head {m}"]
            )
    for s4rec, other in (("s4rec-bce", "s4rec-no-gr-bce"), ("s4rec-bce-b256", "s4rec-no-gr-bce-b256"),
                         ("s4rec-bce", "iclrec-bce"), ("s4rec-bce-b256", "iclrec-bce")):  # fmt: skip
        if pre + s4rec in variants and pre + other in variants:
            checks[f"{s4rec}: head-rate IQR < {other}"] = bool(
                variants[pre + s4rec]["head-rate IQR"] < variants[pre + other]["head-rate IQR"]
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
