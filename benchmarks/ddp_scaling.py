"""Epoch time of one process against two torchrun processes at the same global batch.

    python benchmarks/ddp_scaling.py --dataset beauty --repeats 3

For each method (``sasrec``, ``s4rec``; paper protocol, ICLRec depth) it runs, interleaved
``--repeats`` times: 1 process x 1 thread, 2 processes x 1 thread (``torchrun
--nproc_per_node 2``, gloo) and, for the precision comparison, 1 process x 1 thread in
bf16. Each run trains ``--epochs`` epochs; the first is dropped as warm-up and the epoch
time is the median of the others' training + validation seconds from ``metrics.jsonl``.
``speedup`` = t(1 process) / t(2 processes). Run on a quiet machine: other work on its
cores lowers the two-process time most. Writes benchmarks/results/summaries/ddp-scaling-DATASET.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, commit, provenance, write_result

SETUPS = {  # name -> (processes, extra settings)
    "1 process": (1, []),
    "2 processes": (2, []),
    "1 process bf16": (1, ["train.precision=bf16"]),
}


def epoch_seconds(run_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [r["train_seconds"] + r["eval_seconds"] for r in rows[1:]]


def run(args: argparse.Namespace, method: str, processes: int, sets: list[str]) -> list[float]:
    launcher = [sys.executable, "-m", "s4rec"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", str(processes), "-m", "s4rec"]  # fmt: skip
    settings = list(sets)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*launcher, "train", "--dataset", args.dataset, "--method", method,
               "--config", str(ROOT / "configs" / "paper" / f"{args.dataset}.yaml"),
               "--epochs", str(args.epochs),
               "--threads", "1", "--device", "cpu", "--no-progress", "--out", tmp,
               *(x for s in settings for x in ("--set", s))]  # fmt: skip
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        return epoch_seconds(Path(tmp))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--data-dir")
    p.add_argument("--methods", nargs="+", default=["sasrec", "s4rec"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    start, code = time.perf_counter(), commit()
    seconds: dict[str, dict[str, list[float]]] = {m: {s: [] for s in SETUPS} for m in args.methods}
    for repeat in range(args.repeats):
        for method in args.methods:
            for name, (processes, sets) in SETUPS.items():
                seconds[method][name] += run(args, method, processes, sets)
                print(f"repeat {repeat + 1}: {method} {name}: {seconds[method][name][-1]:.2f} s")
    methods = {}
    for method, by_setup in seconds.items():
        median = {name: statistics.median(v) for name, v in by_setup.items()}
        methods[method] = {
            "epoch_seconds_median": median,
            "epoch_seconds": by_setup,
            "speedup": median["1 process"] / median["2 processes"],
            "bf16_over_fp32": median["1 process bf16"] / median["1 process"],
        }
    result = {
        "benchmark": "ddp_scaling",
        "dataset": args.dataset,
        "epochs_per_run": args.epochs,
        "repeats": args.repeats,
        "methods": methods,
        **provenance(time.perf_counter() - start, code),
        "threads": 1,
    }
    path = write_result(f"ddp-scaling-{args.dataset}", result)
    print(
        json.dumps(
            {m: {k: v[k] for k in ("speedup", "bf16_over_fp32")} for m, v in methods.items()}
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
