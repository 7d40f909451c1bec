"""Run a grid of settings (x seeds) through train_run.py, then tabulate validation results.

    python benchmarks/sweep.py --name tau --dataset beauty --method s4rec-no-gr \\
        --grid s4rec.tau2=0.1,1 --grid s4rec.tau3=0.1,1 --seeds 1 --jobs 2

Results go to benchmarks/results/runs/sweep-NAME/ (finished runs are skipped, interrupted ones
resume); the summary ranks settings by mean validation NDCG@20 (never by test) and is
written to benchmarks/results/summaries/sweep-NAME.md. The runs feed the report's Fig. 5 plot:

    s4rec report runs/bench/sweep-NAME/* --sweep s4rec.alpha --out report-alpha
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from common import ROOT, RUNS, SUMMARIES


def settings(grids: list[str]) -> list[dict[str, str]]:
    """Cartesian product of ``key=v1,v2`` options."""
    axes = []
    for g in grids:
        key, sep, values = g.partition("=")
        if not sep or not values:
            sys.exit(f"--grid {g!r}: expected key=v1,v2,...")
        axes.append([(key, v) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


def tag(setting: dict[str, str]) -> str:
    return "".join(f"-{key.split('.')[-1]}={value}" for key, value in setting.items())


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--name", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--method", default="s4rec")
    p.add_argument("--protocol", default="bce")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2")
    p.add_argument("--seeds", default="1", help="comma-separated")
    p.add_argument("--set", action="append", default=[], help="fixed overrides for every run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, one thread each")
    args = p.parse_args()
    group = f"sweep-{args.name}"
    runs = []
    for setting in settings(args.grid):
        for seed in args.seeds.split(","):
            cmd = [sys.executable, str(ROOT / "benchmarks" / "train_run.py"), "--dataset", args.dataset,
                   "--method", args.method, "--protocol", args.protocol, "--seed", seed,
                   f"--tag={tag(setting)}", "--group", group]  # fmt: skip
            for key, value in setting.items():
                cmd += ["--set", f"{key}={value}"]
            for extra in args.set:
                cmd += ["--set", extra]
            runs.append(cmd)
    with ThreadPoolExecutor(args.jobs) as pool:
        codes = list(pool.map(lambda c: subprocess.run(c).returncode, runs))
    if any(codes):
        print(f"{sum(1 for c in codes if c)} of {len(runs)} runs failed", file=sys.stderr)
    by_tag = defaultdict(list)
    for path in sorted((RUNS / group).glob("*.json")):
        r = json.loads(path.read_text())
        by_tag[r["tag"]].append(r)
    rows = sorted(
        by_tag.items(), key=lambda kv: -statistics.mean(r["valid"]["NDCG@20"] for r in kv[1])
    )
    lines = [f"Sweep `{args.name}`: {args.dataset}, {args.method}, {args.protocol}; ranked by validation.",
             "", "| setting | seeds | valid NDCG@20 | valid HR@20 | test NDCG@20 |", "|---|---|---|---|---|"]  # fmt: skip
    for t, rs in rows:
        valid = statistics.mean(r["valid"]["NDCG@20"] for r in rs)
        valid_hr = statistics.mean(r["valid"]["HR@20"] for r in rs)
        test = statistics.mean(r["test"]["NDCG@20"] for r in rs)
        lines.append(f"| {t} | {len(rs)} | {valid:.4f} | {valid_hr:.4f} | {test:.4f} |")
    (SUMMARIES / f"{group}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
