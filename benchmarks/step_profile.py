"""Where a training step's time goes: torch.profiler over steps of one configuration.

    python benchmarks/step_profile.py --data-dir ../shared/data                 # sasrec, CE protocol
    python benchmarks/step_profile.py --data-dir ../shared/data --config configs/paper/beauty.yaml --method s4rec

Builds the run's trainer (one thread), takes ``--steps`` training batches after
``--warmup`` untimed ones, and profiles forward, backward and the optimiser step. Operators
are grouped by what they serve: the full-softmax head (the (N, d) x (d, items) products in
both directions, log-softmax and its backward, the NLL), the optimiser, and the rest (the
encoder, the other losses, dropout). The head is told apart by shape: a matrix product with
the number of items as a dimension. Also times the head's three products alone, and the
same products through numpy's BLAS, to show what the matrix library gives on this CPU.
Writes benchmarks/results/summaries/<name>.json (``--name``, default step-profile-beauty-ce).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from itertools import islice

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from common import commit, provenance, write_result
from s4rec.methods import configure
from s4rec.train import Trainer

HEAD_OPS = ("aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
            "aten::nll_loss_backward")  # fmt: skip


def group(event: object, n_items: int) -> str:
    name = event.key  # type: ignore[attr-defined]
    shapes = event.input_shapes  # type: ignore[attr-defined]
    if name in HEAD_OPS or (name == "aten::mm" and any(n_items in s for s in shapes if s)):
        return "softmax head"
    if "adam" in name.lower():
        return "optimiser"
    return "rest"


def matmuls(n: int, d: int, items: int, repeats: int = 15) -> dict[str, float]:
    """Median milliseconds of the head's three products, in torch and in numpy's BLAS."""
    rng = np.random.default_rng(0)
    h, w = rng.standard_normal((n, d), np.float32), rng.standard_normal((items, d), np.float32)
    g = rng.standard_normal((n, items), np.float32)
    th, tw, tg = map(torch.from_numpy, (h, w, g))
    cases = {
        "torch forward (N,d)x(d,V)": lambda: th @ tw.T,
        "torch grad hidden (N,V)x(V,d)": lambda: tg @ tw,
        "torch grad table (V,N)x(N,d)": lambda: tg.T @ th,
        "numpy forward (N,d)x(d,V)": lambda: h @ w.T,
        "numpy grad hidden (N,V)x(V,d)": lambda: g @ w,
        "numpy grad table (V,N)x(N,d)": lambda: g.T @ h,
    }
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):  # interleaved, so that a busy moment hits every case
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: round(1000 * statistics.median(t), 2) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--method", default="sasrec")
    ap.add_argument("--config", default="configs/ce.yaml")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--name", default="step-profile-beauty-ce")
    args = ap.parse_args()
    code, begun = commit(), time.perf_counter()
    torch.set_num_threads(1)
    sets = [f"data.dataset={args.dataset}", f"data.data_dir={args.data_dir}", "train.threads=1",
            "train.device=cpu", "train.progress=false"]  # fmt: skip
    cfg = configure(args.method, args.config, sets)
    with tempfile.TemporaryDirectory(prefix="s4rec-profile-") as tmp:
        trainer = Trainer(cfg, tmp)
        batches = list(islice(iter(trainer.loader), args.warmup + args.steps))
    step_module, opt = trainer.step_module, trainer.optimizer
    step_module.train()

    def step(batch: object) -> None:
        out = step_module(batch)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        opt.step()

    for b in batches[: args.warmup]:
        step(b)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for b in batches[args.warmup :]:
            step(b)
    wall = time.perf_counter() - start
    groups: dict[str, float] = defaultdict(float)
    for event in prof.key_averages(group_by_input_shape=True):
        groups[group(event, trainer.data.n_items)] += event.self_cpu_time_total / 1e6
    total = sum(groups.values())
    targets = sum(int((c.targets != 0).sum()) for b in batches[args.warmup :] for c in b.chunks)
    result = {
        "benchmark": "step_profile",
        "dataset": args.dataset,
        "method": args.method,
        "config": args.config,
        "steps": args.steps,
        "targets_per_step": round(targets / args.steps, 1),
        "items": trainer.data.n_items,
        "ms_per_step_profiled": round(1000 * wall / args.steps, 1),
        "share_of_step": {k: round(v / total, 3) for k, v in sorted(groups.items())},
        "head_matmul_ms": matmuls(
            round(targets / args.steps), cfg.model.hidden, trainer.data.n_items
        ),
        "notes": {
            "share_of_step": "self CPU time of each group's operators over all profiled operators",
            "head_matmul_ms": "one product each at the mean targets per step, median of 15, "
            "interleaved; numpy uses its own BLAS (OpenBLAS), torch its own (MKL on x86)",
        },
        **provenance(time.perf_counter() - begun, code),
    }
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
