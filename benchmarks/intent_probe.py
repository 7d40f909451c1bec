"""What S^4Rec's clustering and adversarial terms do, measured on planted-intent synthetic data.

    python benchmarks/intent_probe.py                      # coupling 0.5, seeds 0-4
    python benchmarks/intent_probe.py --coupling 0 --seeds 3

Users follow one of 8 planted intents; ``--coupling`` of them get intents tied to their
length, so head users gather in some intents (as on real data). Each variant trains a
small model for a fixed number of epochs and records, for every seed:
  nmi_intent  NMI(prototype assignment, planted intent)
  nmi_head    NMI(prototype assignment, head/tail label)
  head_spread size-weighted std of the clusters' head rates (0 = uniform; Fig. 3)
  valid       validation NDCG@20 (full ranking)
Writes benchmarks/results/summaries/intent-probe-c<coupling>.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from common import commit, provenance, write_result
from s4rec.analysis import assign_clusters, head_rate_spread, nmi
from s4rec.config import Config
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.synthetic import make_synthetic
from s4rec.encoding import training_representations
from s4rec.methods import apply_method
from s4rec.train import Trainer

SMALL = ["data.max_len=20", "model.hidden=16", "model.inner=32", "model.layers=1",
         "model.dropout=0.1", "model.attn_dropout=0.1", "train.batch_size=64", "train.lr=0.005",
         "train.progress=false", "s4rec.prototypes=8"]  # fmt: skip
VARIANTS = {  # name -> (method, extra settings)
    "s4rec-no-gr": ("s4rec-no-gr", []),
    "s4rec": ("s4rec", []),
    "s4rec, teacher not detached": ("s4rec", ["s4rec.detach_teacher=false"]),
}


def probe(
    method: str, extra: list[str], data: LeaveOneOut, intents, seed: int, epochs: int
) -> dict:
    cfg = apply_method(Config().override(SMALL), method)  # the method sets batch 512: undo
    cfg = cfg.override(["train.batch_size=64", f"train.seed={seed}", *extra])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, data)
        for _ in range(epochs):
            trainer.train_epoch()
        z = training_representations(trainer.model, data, cfg.data.max_len, cfg.model.pooling)
        clusters = assign_clusters(z, trainer.objective.prototypes.weight.detach())
        valid = trainer.evaluate("valid")["all"]["NDCG@20"]
    return {
        "nmi_intent": nmi(clusters, intents),
        "nmi_head": nmi(clusters, data.is_head),
        "head_spread": head_rate_spread(clusters, data.is_head),
        "valid": valid,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--coupling", type=float, default=0.5)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    synth = make_synthetic(n_users=args.users, seed=0, length_coupling=args.coupling)
    data = LeaveOneOut(synth.sequences)
    results = {}
    for name, (method, extra) in VARIANTS.items():
        runs = [
            probe(method, extra, data, synth.intents, s, args.epochs) for s in range(args.seeds)
        ]
        results[name] = {
            key: {"median": statistics.median(r[key] for r in runs), "runs": [r[key] for r in runs]}
            for key in runs[0]
        }
        print(name, {k: round(v["median"], 4) for k, v in results[name].items()}, flush=True)
    write_result(
        f"intent-probe-c{args.coupling:g}",
        {
            "benchmark": "intent_probe",
            "coupling": args.coupling,
            "users": args.users,
            "epochs": args.epochs,
            "seeds": list(range(args.seeds)),
            "variants": results,
            **provenance(time.perf_counter() - start, code),
        },
    )


if __name__ == "__main__":
    main()
