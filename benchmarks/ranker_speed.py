"""The full-ranking evaluator against an earlier version of itself, side by side.

    python benchmarks/ranker_speed.py --data-dir ../shared/data --against 50ae3fd

Loads ``src/s4rec/evaluate.py`` as it was at ``--against`` next to today's, builds the
dataset's paper-protocol S^4Rec (seeded, untrained: the cost of ranking does not depend on
the weights), and times, interleaved, both Rankers' validation ranks (what every training
epoch pays) and test top-k lists (what ``predict`` pays). Both must give the same ranks and
the same lists, or the script stops. Writes benchmarks/results/summaries/<name>.json (``--name``,
default ranker-speed-DATASET).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from common import ROOT, commit, provenance, write_result
from s4rec.evaluate import Ranker
from s4rec.methods import configure
from s4rec.pipeline import build_model, load_data


def ranker_at(revision: str) -> type:
    """The Ranker class of ``src/s4rec/evaluate.py`` at ``revision``, importing today's package
    for everything else."""
    source = subprocess.check_output(
        ["git", "show", f"{revision}:src/s4rec/evaluate.py"], cwd=ROOT, text=True
    )
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("s4rec._evaluate_then", f.name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Path(f.name).unlink()
    return module.Ranker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--against", required=True, help="git revision of the earlier evaluator")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    code, begun = commit(), time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = configure("s4rec", ROOT / "configs" / "paper" / f"{args.dataset}.yaml",
                    [f"data.dataset={args.dataset}", f"data.data_dir={args.data_dir}"])  # fmt: skip
    data = load_data(cfg)
    model = build_model(cfg, data)
    rankers = {"then": ranker_at(args.against).from_config(model, data, cfg),
               "now": Ranker.from_config(model, data, cfg)}  # fmt: skip
    ranks = {n: r.ranks("valid") for n, r in rankers.items()}
    lists = {n: r.top_k("test", args.k)[0] for n, r in rankers.items()}
    if not torch.equal(ranks["then"], ranks["now"]) or not torch.equal(lists["then"], lists["now"]):
        raise SystemExit("the two evaluators disagree: ranks or top-k lists differ")
    seconds: dict[str, list[float]] = {f"{w} {n}": [] for w in ("ranks", "top_k") for n in rankers}
    for _ in range(args.repeats):  # interleaved, so that a busy moment hits every case
        for n, r in rankers.items():
            start = time.perf_counter()
            r.ranks("valid")
            seconds[f"ranks {n}"].append(time.perf_counter() - start)
            start = time.perf_counter()
            r.top_k("test", args.k)
            seconds[f"top_k {n}"].append(time.perf_counter() - start)
    ratios = {
        w: statistics.median(
            t / n for t, n in zip(seconds[f"{w} then"], seconds[f"{w} now"], strict=True)
        )
        for w in ("ranks", "top_k")
    }
    result = {
        "benchmark": "ranker_speed",
        "dataset": args.dataset,
        "against": args.against,
        "users": data.n_users,
        "items": data.n_items,
        "k": args.k,
        "repeats": args.repeats,
        "seconds_median": {k: round(statistics.median(v), 3) for k, v in seconds.items()},
        "seconds": {k: [round(t, 3) for t in v] for k, v in seconds.items()},
        "then_over_now_median": {k: round(v, 2) for k, v in ratios.items()},
        "same_ranks_and_lists": True,
        "notes": {
            "ranks": "validation ranks of every user (one per training epoch)",
            "top_k": f"test top-{args.k} lists of every user (predict)",
            "then_over_now_median": "median over repeats of then / now, timed side by side",
        },
        **provenance(time.perf_counter() - begun, code),
    }
    print(write_result(args.name or f"ranker-speed-{args.dataset}", result))


if __name__ == "__main__":
    main()
