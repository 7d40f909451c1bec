"""Table 5 on this machine: an S^4Rec epoch (online prototypes) against the same model with
per-epoch K-means intents (``sr+csd+gr``), split into training, clustering and validation.

    python benchmarks/table5.py --threads 1

For each dataset (its paper file, configs/paper/DATASET.yaml) the epochs of both methods are interleaved, each
timing a median of ``--repeats``; the validation pass is timed alike. The Table 5 table of docs/results.md
multiplies these clean epoch times by the best epochs of the committed training runs to
give the time to convergence. Writes benchmarks/results/summaries/table5-t<threads>.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from common import commit, protocol_file, provenance, timed, write_result
from cost import epoch_costs
from s4rec.data.catalog import load_sequences
from s4rec.data.dataset import LeaveOneOut
from s4rec.methods import configure
from s4rec.train import Trainer

METHODS = ("s4rec", "sr+csd+gr")


def validation_seconds(data: LeaveOneOut, dataset: str, repeats: int) -> float:
    """Median time of one validation pass (the same for both methods: same encoder)."""
    cfg = configure("s4rec", protocol_file("bce", dataset), ["train.progress=false"])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, data)
        return timed(lambda: trainer.evaluate("valid"), repeats)[0]


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", nargs="+", default=["beauty", "toys"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    rows = {}
    for dataset in args.datasets:
        data = LeaveOneOut(load_sequences(dataset))
        epochs = epoch_costs(data, {m: (f"paper/{dataset}", m) for m in METHODS}, args.repeats)
        rows[dataset] = {
            "epochs": epochs,
            "validation_seconds": round(validation_seconds(data, dataset, args.repeats), 3),
        }
        print(dataset, rows[dataset], flush=True)
    write_result(
        f"table5-t{args.threads}",
        {"benchmark": "table5", "repeats": args.repeats, "datasets": rows,
         **provenance(time.perf_counter() - start, code)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
