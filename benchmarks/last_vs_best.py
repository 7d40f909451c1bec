"""Does model selection explain the contrastive baselines' HR@20 gap? Test metrics of the
selected epoch (best validation NDCG@20, ``best.pt``) next to the last epoch's (``last.pt``).

    python benchmarks/last_vs_best.py --dataset beauty --runs sasrec cl4srec iclrec s4rec

Each run is ``runs/bench/DATASET-METHOD-bce-s1`` of ``benchmarks/train_run.py``; the table
also gives the epoch at which validation HR@20 peaked, and, for every dataset of
``--count-datasets``, how many users' test (or validation) target repeats an item of the
history the evaluator excludes (it would be unrankable).
Writes benchmarks/results/summaries/last-vs-best-DATASET.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import ROOT, commit, provenance, write_result
from s4rec.checkpoint import load_model
from s4rec.data.dataset import LeaveOneOut
from s4rec.evaluate import evaluate
from s4rec.pipeline import load_data

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")


def targets_in_history(data: LeaveOneOut) -> dict[str, int]:
    """Per split, how many users' target item is already in the history ranked against it."""
    out = {}
    for split in ("valid", "test"):
        target, end = data.target(split), data.history_end(split)
        out[split] = sum(
            int(target[u]) in set(data.flat[data.starts[u] : end[u]].tolist())
            for u in range(data.n_users)
        )
    return out


def compare(run_dir: Path, data: LeaveOneOut) -> dict:
    """Test metrics of best.pt and last.pt, and where validation NDCG@20 and HR@20 peaked."""
    row = {}
    for name in ("best", "last"):
        _, model, _ = load_model(run_dir / f"{name}.pt")
        test = evaluate(model, data, "test")["all"]
        row[name] = {k: round(test[k], 4) for k in METRICS}
    log = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    valid = {k: [r["valid"][k] for r in log] for k in ("NDCG@20", "HR@20")}
    row["epochs"] = len(log)
    for k, series in valid.items():
        row[f"valid_{k}_peak_epoch"] = series.index(max(series)) + 1
    return row


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--runs", nargs="+", default=["sasrec", "cl4srec", "iclrec", "s4rec"])
    p.add_argument("--count-datasets", nargs="+", default=["beauty", "sports", "toys", "ml-1m"])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    dirs = {m: ROOT / "runs" / "bench" / f"{args.dataset}-{m}-bce-s1" for m in args.runs}
    cfg, _, _ = load_model(dirs[args.runs[0]] / "best.pt")
    data = load_data(cfg)
    rows = {}
    for method, run_dir in dirs.items():
        rows[method] = compare(run_dir, data)
        print(method, rows[method], flush=True)
    write_result(
        f"last-vs-best-{args.dataset}",
        {
            "benchmark": "last_vs_best",
            "dataset": args.dataset,
            "targets_in_history": {
                name: targets_in_history(
                    data
                    if name == args.dataset
                    else load_data(cfg.override([f"data.dataset={name}"]))
                )
                for name in args.count_datasets
            },
            "runs": rows,
            **provenance(time.perf_counter() - start, code),
        },
    )


if __name__ == "__main__":
    main()
