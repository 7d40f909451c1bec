"""Training and evaluation speed on one device, in fp32 and bf16, and one full S^4Rec run.

    python benchmarks/device_check.py --device cuda --name h200 --full
    python benchmarks/device_check.py --device cpu --dataset synthetic --repeats 1   # smoke

Epoch times of SASRec-BCE, S^4Rec-BCE (paper protocol) and SASRec-CE (every prefix) as in
benchmarks/cost.py, in each precision the device trains in; the full-ranking evaluation of
all users; with ``--full``, one ``s4rec`` paper-protocol run to early stopping. Writes
benchmarks/results/summaries/gpu/device-check-NAME.json. ``benchmarks/gpu_check.sh`` runs it with the
device tests on a GPU machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from common import ROOT, commit, provenance, timed, write_result
from cost import EPOCHS, epoch_costs
from s4rec.config import Config
from s4rec.data.catalog import load_sequences
from s4rec.data.dataset import LeaveOneOut
from s4rec.evaluate import evaluate
from s4rec.methods import configure
from s4rec.model import SASRec
from s4rec.runtime import resolve_device
from s4rec.train import Trainer


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda")
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--data-dir")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--full", action="store_true", help="also one s4rec run to early stopping")
    p.add_argument("--name", default="gpu")
    args = p.parse_args()
    start, code = time.perf_counter(), commit()
    device = resolve_device(args.device)
    data = LeaveOneOut(load_sequences(args.dataset, args.data_dir))
    precisions = ("fp32", "bf16")
    result = {"benchmark": "device_check", "dataset": args.dataset, "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}  # fmt: skip
    result["epochs"] = {
        p: epoch_costs(
            data, EPOCHS, args.repeats, (f"train.device={device}", f"train.precision={p}")
        )
        for p in precisions
    }
    model = SASRec(data.n_items, 50, Config().model).to(device)
    evaluate(model, data, "test")  # warm-up (kernels, allocator)
    med, every, _ = timed(lambda: evaluate(model, data, "test"), args.repeats)
    result["evaluation"] = {
        "users": data.n_users,
        "seconds_median": round(med, 3),
        "seconds": every,
    }
    if args.full:
        cfg = configure("s4rec", ROOT / "configs" / "paper-bce.yaml",
                        [f"data.dataset={args.dataset}", "model.layers=1",
                         f"train.device={device}", "train.progress=false"])  # fmt: skip
        if args.data_dir:
            cfg.data.data_dir = args.data_dir
        with tempfile.TemporaryDirectory() as out:
            began = time.perf_counter()
            full = Trainer(cfg, out).fit()
            result["full_s4rec"] = {"wall_seconds": round(time.perf_counter() - began, 1),
                                    **{k: full[k] for k in ("epochs", "best_epoch", "test")}}  # fmt: skip
    path = write_result(
        f"gpu/device-check-{args.name}", {**result, **provenance(time.perf_counter() - start, code)}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
