"""Cost on Beauty: training epochs (SASRec per protocol, S^4Rec), one full evaluation, eval memory.

    python benchmarks/cost.py --threads 1

Each timing is the median of ``--repeats`` runs in this process. Peak evaluation memory is
measured in fresh child processes (peak RSS during evaluation minus RSS before it; Linux), on Beauty and on
larger synthetic catalogues, to show it is bounded by the chunk sizes rather than the data.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import torch

from common import ROOT, commit, provenance, timed, write_result
from s4rec.config import Config
from s4rec.data.catalog import load_sequences
from s4rec.data.dataset import LeaveOneOut
from s4rec.data.synthetic import make_synthetic
from s4rec.evaluate import evaluate
from s4rec.methods import configure
from s4rec.model import SASRec
from s4rec.train import Trainer

EPOCHS = {  # name: (configuration file under configs/, method, *settings) on Beauty
    "sasrec_bce": ("paper-bce", "sasrec", "model.layers=1"),
    "s4rec_bce": ("paper-bce", "s4rec", "model.layers=1"),
    "sasrec_ce": ("ce", "sasrec", "model.layers=2"),
}


def epoch_costs(
    data: LeaveOneOut | dict[str, LeaveOneOut],
    specs: dict[str, tuple[str, ...]],
    repeats: int,
    sets: tuple = (),
) -> dict:
    """Median epoch time of each (configuration file, method, *its own settings), with
    ``sets`` added to all (device, precision), the epochs interleaved so that machine noise
    hits all alike. ``data`` is every spec's, or each spec's by name."""
    trainers, times, clustering = {}, {name: [] for name in specs}, {name: [] for name in specs}
    with tempfile.TemporaryDirectory() as out:
        for name, (protocol, method, *own) in specs.items():
            cfg = configure(method, ROOT / "configs" / f"{protocol}.yaml",
                            [*own, "train.progress=false", *sets])  # fmt: skip
            own_data = data[name] if isinstance(data, dict) else data
            trainers[name] = Trainer(cfg, f"{out}/{name}", own_data)
        for _ in range(repeats):
            for name, trainer in trainers.items():
                times[name].append(timed(trainer.train_epoch, 1)[0])
                clustering[name].append(trainer.cluster_seconds)  # part of the epoch (K-means)
    result = {}
    for name, trainer in trainers.items():
        tokens = sum(int((c.targets != 0).sum()) for b in trainer.loader for c in b.chunks)
        protocol, method, *own = specs[name]
        result[name] = {"protocol": protocol, "method": method, "sets": own,
                        "seconds_median": round(statistics.median(times[name]), 3),
                        "seconds": [round(t, 3) for t in times[name]],
                        "cluster_seconds_median": round(statistics.median(clustering[name]), 3),
                        "trained_positions": tokens, "batches": len(trainer.loader)}  # fmt: skip
    return result


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _eval_peak(args: tuple[str, int, int, int], queue: mp.Queue) -> None:
    """Child process: peak RSS growth (MiB) while evaluating an untrained model (default chunks)."""
    source, n_users, n_items, threads = args
    torch.set_num_threads(threads)
    if source == "beauty":
        seqs = load_sequences("beauty")
    else:
        seqs = make_synthetic(n_users=n_users, n_items=n_items, max_len=50, seed=0).sequences
    data = LeaveOneOut(seqs)
    model = SASRec(data.n_items, 50, Config().model)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark (Linux)
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    evaluate(model, data, "test")
    seconds = time.perf_counter() - start
    after = _status_kib("VmHWM")
    queue.put({"dataset": source, "users": data.n_users, "items": data.n_items,
               "peak_growth_mib": round((after - before) / 1024, 1), "seconds": round(seconds, 2)})  # fmt: skip


def eval_memory(threads: int) -> list[dict]:
    ctx = mp.get_context("spawn")
    rows = []
    jobs = [("beauty", 0, 0), ("synthetic", 20000, 12000), ("synthetic", 100000, 12000),
            ("synthetic", 20000, 48000)]  # fmt: skip
    for job in jobs:
        queue = ctx.Queue()
        proc = ctx.Process(target=_eval_peak, args=((*job, threads), queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    data = LeaveOneOut(load_sequences("beauty"))
    result = {
        "benchmark": "cost",
        "dataset": "beauty",
        "epochs": epoch_costs(data, EPOCHS, args.repeats),
    }
    epochs = result["epochs"]
    result["s4rec_over_sasrec_bce"] = round(
        epochs["s4rec_bce"]["seconds_median"] / epochs["sasrec_bce"]["seconds_median"], 3
    )
    model = SASRec(data.n_items, 50, Config().model)
    med, all_, _ = timed(lambda: evaluate(model, data, "test"), args.repeats)
    result["evaluation"] = {"users": data.n_users, "seconds_median": round(med, 3), "seconds": all_}
    result["evaluation_memory"] = eval_memory(args.threads)
    torch.set_num_threads(args.threads)
    write_result(
        f"cost-beauty-t{args.threads}", {**result, **provenance(time.perf_counter() - start, code)}
    )
    print(result)


if __name__ == "__main__":
    main()
