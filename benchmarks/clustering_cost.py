"""What offline clustering costs as the user base grows (Table 5's question, on this machine).

    python benchmarks/clustering_cost.py --users 10000 100000 1000000 --threads 1

For each synthetic dataset size: one S^4Rec training epoch with online prototypes (BCE
protocol, 1 layer, as on Beauty), and the two steps that K-means intents add before every
epoch (sr+csd, iclrec): encoding every user's training sequence, and K-means (K = 256,
20 Lloyd iterations, k-means++ seeding, fit on at most 256 points per centroid like faiss,
then every user assigned); each a median of --repeats runs. Writes benchmarks/results/summaries/clustering-cost-t<threads>.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from common import ROOT, commit, provenance, timed, write_result
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.synthetic import make_synthetic
from s4rec.encoding import training_representations
from s4rec.kmeans import kmeans
from s4rec.methods import configure
from s4rec.train import Trainer


def measure(n_users: int, k: int, iters: int, repeats: int) -> dict:
    data = LeaveOneOut(make_synthetic(n_users=n_users, n_items=12000, max_len=50, seed=0).sequences)
    cfg = configure("s4rec", ROOT / "configs" / "paper-bce.yaml",
                    ["model.layers=1", "train.progress=false"])  # fmt: skip
    g = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, data)
        epoch_s, _, _ = timed(trainer.train_epoch, repeats)
        encode_s, _, z = timed(
            lambda: training_representations(trainer.model, data, cfg.data.max_len, "mean"),
            repeats,
        )
        kmeans_s, _, _ = timed(lambda: kmeans(z, k, iters, 1, g), repeats)
    added = encode_s + kmeans_s
    return {"users": data.n_users, "items": data.n_items, "s4rec_epoch_seconds": round(epoch_s, 2),
            "encode_seconds": round(encode_s, 2), "kmeans_seconds": round(kmeans_s, 2),
            "kmeans_share": round(kmeans_s / (epoch_s + added), 4),
            "clustering_share": round(added / (epoch_s + added), 4)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="timings are medians of this many")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    rows = []
    for n in args.users:
        rows.append(measure(n, args.k, args.iters, args.repeats))
        print(rows[-1], flush=True)
    write_result(
        f"clustering-cost-t{args.threads}",
        {
            "benchmark": "clustering_cost",
            "k": args.k,
            "iters": args.iters,
            "repeats": args.repeats,
            "sizes": rows,
            **provenance(time.perf_counter() - start, code),
        },
    )


if __name__ == "__main__":
    main()
