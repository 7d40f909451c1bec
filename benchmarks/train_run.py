"""Train one (dataset, method, protocol, seed) and save its results with provenance.

    python benchmarks/train_run.py --dataset beauty --protocol bce --seed 1
    python benchmarks/train_run.py --dataset beauty --protocol ce --seed 1 --threads 1

    torchrun --standalone --nproc_per_node 2 benchmarks/train_run.py --dataset beauty \
        --method s4rec --tag=-ddp2 --runs-dir ~/.cache/s4rec/runs

Resumable: the run directory (``--runs-dir``/NAME, default ``$S4REC_RUNS`` or
~/.cache/s4rec/runs: outside the work tree, so a fresh checkout resumes it) keeps last.pt;
rerunning continues it, and a finished run (result file present) is skipped unless --force;
a run that reached its epoch cap continues with ``--force --set train.epochs=N``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from common import RUNS, commit, protocol_file, provenance, write_result
from s4rec.config import Config
from s4rec.methods import configure
from s4rec.rundir import RunDirError
from s4rec.runtime import rank
from s4rec.train import FREE, Trainer


def epoch_split(log: Path) -> dict[str, float]:
    """Median seconds per epoch of training (K-means step included), of the K-means step
    (per-epoch intents) and of validation, from the run's metrics.jsonl."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not rows:  # nothing trained (pop)
        return {}
    return {
        key: round(statistics.median(r.get(f"{key}_seconds", 0.0) for r in rows), 3)
        for key in ("train", "cluster", "eval")
    }


def run_config(args: argparse.Namespace) -> tuple[str, Config]:
    """The run's name and its configuration, by the CLI's one rule (``methods.configure``):
    what ``s4rec train --dataset D --method M --config FILE --seed S --threads T --set ...``
    trains."""
    name = f"{args.dataset}-{args.method}-{args.protocol}{args.tag}-s{args.seed}"
    if args.group:
        name = f"{args.group}/{name}"
    sets = [f"data.dataset={args.dataset}", f"train.seed={args.seed}", f"train.threads={args.threads}",
            "train.progress=false"]  # fmt: skip
    if args.data_dir:
        sets.append(f"data.data_dir={args.data_dir}")
    return name, configure(args.method, protocol_file(args.protocol, args.dataset), sets + args.set)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True)
    p.add_argument("--method", default="sasrec")
    p.add_argument("--protocol", choices=["bce", "ce"], default="bce")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir")
    p.add_argument("--set", action="append", default=[], help="extra config overrides")
    p.add_argument("--tag", default="", help="suffix for the result name")
    p.add_argument(
        "--group", default="", help="write the result under benchmarks/results/runs/GROUP/"
    )
    p.add_argument("--force", action="store_true")
    p.add_argument("--runs-dir", default=os.environ.get("S4REC_RUNS", "~/.cache/s4rec/runs"),
                   help="where run directories (checkpoints, logs) are kept")  # fmt: skip
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    name, cfg = run_config(args)
    done = RUNS / f"{name}.json"
    if done.exists() and not args.force:
        saved = Config.from_dict(json.loads(done.read_text())["config"], where=str(done))
        changed = saved.changes(cfg, ignore=FREE)
        if changed:  # e.g. a default changed since: the kept result is not this command's
            print(f"{name}: kept, but made with {'; '.join(changed)}", file=sys.stderr)
        print(f"{name}: already done, skipping (use --force to redo)")
        return
    start, code = time.perf_counter(), commit()
    run_dir = Path(args.runs_dir).expanduser() / name
    try:
        results = Trainer(cfg, run_dir).fit(resume=True)
    except RunDirError as err:  # e.g. another lane is training this run: skip it, one line
        sys.exit(f"{name}: {err}")
    if rank() > 0:  # under torchrun rank 0 writes the result
        return
    path = write_result(
        name,
        {
            **results,
            "protocol": args.protocol,
            "tag": args.tag,
            "config": cfg.to_dict(),
            "epoch_seconds": epoch_split(run_dir / "metrics.jsonl"),
            **provenance(time.perf_counter() - start, code),
        },
    )
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
