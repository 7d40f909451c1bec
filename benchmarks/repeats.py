"""Repeat consumption: a dataset with planted repeats, and whether `evaluate` agrees with `predict`.

    python benchmarks/repeats.py make --dataset beauty --share 0.1 --out ~/.cache/s4rec/repeats/beauty-r10.txt
    s4rec train --dataset ~/.cache/s4rec/repeats/beauty-r10.txt --config configs/paper-bce.yaml \
        --set model.layers=1 --threads 1 --out ~/.cache/s4rec/runs/repeats/beauty-r10
    python benchmarks/repeats.py check ~/.cache/s4rec/runs/repeats/beauty-r10 --name beauty-r10

``make`` writes a sequence file in which a ``share`` of positions re-consume one of the
user's last 10 items (``s4rec.data.synthetic.plant_repeats``). ``check`` takes a finished
run, evaluates its ``best.pt`` under both protocols (``eval.exclude_history`` true and
false), recomputes HR/NDCG from the top-20 lists that ``predict`` writes under each, and
saves both next to what the run's ``results.json`` reported, with provenance, as
``benchmarks/results/summaries/repeats-NAME.json`` (the Repeat consumption table of docs/results.md comes from it).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from common import SUMMARIES, commit, provenance, write_result
from s4rec.checkpoint import load_model
from s4rec.data.catalog import load_sequences
from s4rec.data.readers import write_sequence_text
from s4rec.data.synthetic import plant_repeats
from s4rec.evaluate import evaluate, metrics_from_lists, protocol
from s4rec.inference import write_predictions
from s4rec.pipeline import load_data
from s4rec.runtime import setup_runtime


def make(args: argparse.Namespace) -> None:
    seqs = load_sequences(args.dataset, args.data_dir)
    planted = plant_repeats(seqs, args.share, args.window, args.seed)
    write_sequence_text(planted, Path(args.out).expanduser())
    print(f"wrote {args.out}: {planted.n_users:,} users, share {args.share} of positions repeated")


def shown_lists(path: Path) -> list[list[str]]:
    """The lists of a ``predict`` file (``user<TAB>item item ...``), one per line."""
    return [line.partition("\t")[2].split(" ") for line in path.read_text().splitlines()]


def check(args: argparse.Namespace) -> None:
    start, code = time.perf_counter(), commit()
    run_dir = Path(args.run).expanduser()
    results = json.loads((run_dir / "results.json").read_text())
    reported = {
        "valid": results["valid"],
        "test": results["test"],
        "best_epoch": results.get("best_epoch"),
        "eval_protocol": results.get("eval_protocol"),  # absent: written before it existed
    }
    under: dict[str, dict] = {}
    for exclude in ("true", "false"):
        cfg, model, _ = load_model(run_dir / "best.pt", [f"eval.exclude_history={exclude}"])
        cfg.data.data_dir = args.data_dir or cfg.data.data_dir
        setup_runtime(cfg)
        data = load_data(cfg)
        test = evaluate(model, data, "test", cfg)["all"]
        with tempfile.TemporaryDirectory() as tmp:
            tsv = Path(tmp) / "top20.tsv"
            write_predictions(model, data, "test", 20, tsv, cfg)
            targets = [data.seqs.item_ids[i - 1] for i in data.target("test").tolist()]
            lists = metrics_from_lists(shown_lists(tsv), targets)
        under[f"exclude_history={exclude}"] = {
            "eval_protocol": protocol(cfg, data),
            "evaluate": test,
            "from_predict_lists": lists,
            "max_abs_difference": max(abs(test[k] - v) for k, v in lists.items()),
        }
    out = {
        "benchmark": "repeats",
        "name": args.name,
        "run": str(run_dir),
        "dataset": results["dataset"],
        "method": results["method"],
        "seed": results["seed"],
        "config": cfg.to_dict(),
        "reported": reported,
        "under": under,
        **provenance(time.perf_counter() - start, code),
    }
    path = write_result(f"repeats-{args.name}", out)
    print(json.dumps({k: out[k] for k in ("reported", "under")}, indent=1))
    print(f"wrote {path}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="write a dataset with planted repeats")
    m.add_argument("--dataset", required=True, help="catalog name or sequence file")
    m.add_argument("--data-dir")
    m.add_argument("--share", type=float, default=0.1, help="share of positions repeated")
    m.add_argument("--window", type=int, default=10, help="copied from this many last items")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    m.set_defaults(func=make)
    c = sub.add_parser("check", help="evaluate against predict's lists, both protocols")
    c.add_argument("run", help="a finished run directory (best.pt, results.json)")
    c.add_argument("--name", required=True, help=f"saved as {SUMMARIES}/repeats-NAME.json")
    c.add_argument("--data-dir")
    c.set_defaults(func=check)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args.func(args)


if __name__ == "__main__":
    main()
