"""How load, training and evaluation cost grow with users and items, on synthetic data.

    python benchmarks/scale.py                                   # 10k/100k/1M users x 200k items, 10k x 20k
    python benchmarks/scale.py --points 10k:200k 100k:200k --max-batches 50 --eval-users 5000

Each point USERS:ITEMS is a ``make_scale_synthetic`` dataset in the binary format, made once
by benchmarks/make_scale_data.py and cached under ~/.cache/s4rec/scale (``--cache``). Every
measurement runs in a fresh process (one thread, OMP_NUM_THREADS=1) whose peak RSS is read with
``os.wait4``: loading (``load_data``), one training epoch of ``sasrec`` with
``loss.next_item=sampled_ce`` and of ``s4rec`` (BCE), each with the dense item table and
with ``train.sparse_items`` (TRAIN), and full-ranking evaluation on test
(an untrained ``sasrec``: its cost does not depend on the weights). ``--max-batches N`` times
the first N batches and extrapolates the epoch from them (both recorded, labelled);
``--eval-users N`` ranks a random N users (recorded). Writes
benchmarks/results/summaries/<name>.json (``--name``, default scale).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from common import commit, count, provenance, run_child, write_result

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "s4rec" / "scale"
POINTS = ["10k:200k", "100k:200k", "1M:200k", "10k:20k"]
SPARSE = "train.sparse_items=true"  # the item table's gradient and Adam step touch its used rows
TRAIN = {  # label: method, settings on top of its preset (s4rec's is BCE)
    "sasrec": ("sasrec", ["loss.next_item=sampled_ce"]),
    "s4rec": ("s4rec", []),
    "sasrec-sparse": ("sasrec", ["loss.next_item=sampled_ce", SPARSE]),
    "s4rec-sparse": ("s4rec", [SPARSE]),
}
GENERATOR = "full"  # in cached names: datasets since the generator kept the whole catalogue
COMMON = ["train.threads=1", "train.device=cpu", "train.progress=false"]


def rss_mib() -> float:
    """This process's peak RSS so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the measured child (this script with --child SPEC) ----------------------------------------
class Limited:
    """The first ``n`` batches of a training loader, with their count as its length."""

    def __init__(self, loader: Any, n: int | None) -> None:
        self.loader, self.n = loader, min(n or len(loader), len(loader))

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        return islice(iter(self.loader), self.n)


def child_load(cfg: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from s4rec.pipeline import load_data

    start = time.perf_counter()
    data = load_data(cfg)
    seconds = time.perf_counter() - start
    sizes = {"users": data.n_users, "items": data.n_items, "interactions": len(data.seqs.values)}
    return {"seconds": seconds, **sizes}


def child_train(cfg: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from s4rec.train import Trainer

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="s4rec-scale-") as tmp:
        trainer = Trainer(cfg, tmp)
        setup = time.perf_counter() - start
        full = len(trainer.loader)
        trainer.loader = Limited(trainer.loader, spec["max_batches"])
        rss_setup = rss_mib()
        start = time.perf_counter()
        trainer.train_epoch()
        seconds = time.perf_counter() - start
    per_batch = (seconds - trainer.cluster_seconds) / len(trainer.loader)
    epoch = trainer.cluster_seconds + per_batch * full
    return {
        "setup_seconds": setup,
        "rss_after_setup_mib": rss_setup,
        "batches_per_epoch": full,
        "measured_batches": len(trainer.loader),
        "measured_seconds": seconds,
        "start_epoch_seconds": trainer.cluster_seconds,
        "data_seconds": trainer.data_seconds,
        "epoch_seconds": epoch,
        "epoch_extrapolated": len(trainer.loader) < full,
        "seconds_per_user": epoch / trainer.data.n_users,
    }


def child_eval(cfg: Any, spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from s4rec.evaluate import Ranker
    from s4rec.pipeline import build_model, load_data

    data = load_data(cfg)
    model = build_model(cfg, data)
    n = min(spec["eval_users"] or data.n_users, data.n_users)
    users = torch.randperm(data.n_users, generator=torch.Generator().manual_seed(0))[:n].sort()
    rss_before = rss_mib()
    start = time.perf_counter()
    Ranker.from_config(model, data, cfg).ranks("test", users.values)
    seconds = time.perf_counter() - start
    return {
        "users_ranked": n,
        "users": data.n_users,
        "rss_before_ranking_mib": rss_before,
        "seconds": seconds,
        "seconds_per_user": seconds / n,
    }


def child_main(spec: dict[str, Any]) -> None:
    """Measure one thing (``spec["kind"]``) and print it as one JSON line."""
    import torch

    from s4rec.methods import configure

    torch.set_num_threads(1)
    rss_imports = rss_mib()
    cfg = configure(spec["method"], None, [f"data.dataset={spec['dataset']}", *spec["sets"]])
    kinds = {"load": child_load, "train": child_train, "eval": child_eval}
    out = kinds[spec["kind"]](cfg, spec)
    print(json.dumps({"rss_after_imports_mib": rss_imports, **out}))


# -- the driver --------------------------------------------------------------------------------
def dataset(users: int, items: int, cache: Path) -> tuple[Path, dict[str, Any] | None]:
    """The binary dataset of a point, made (and its generation measured) unless cached."""
    path = cache / f"u{users}-i{items}-s0-{GENERATOR}.s4rec"
    if path.exists():
        return path, None
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(HERE / "make_scale_data.py"), "--users", str(users),
           "--items", str(items), "--out", str(path)]  # fmt: skip
    wall, peak, out = run_child(cmd)
    return path, {"wall_seconds": wall, "peak_rss_mib": peak, **json.loads(out)}


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in a fresh single-threaded process: its own record, wall, peak RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    wall, peak, out = run_child([sys.executable, __file__, "--child", json.dumps(spec)], env)
    got = {**json.loads(out.strip().splitlines()[-1]), "process_wall_seconds": wall}
    got = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in got.items()}
    print(spec["kind"], spec["method"], got, flush=True)
    return {**got, "peak_rss_mib": round(peak, 1)}


def point(text: str, args: argparse.Namespace) -> dict[str, Any]:
    users, items = (count(part) for part in text.split(":"))
    path, generated = dataset(users, items, args.cache)
    base = {"dataset": str(path), "max_batches": args.max_batches, "eval_users": args.eval_users}
    rec: dict[str, Any] = {"users": users, "items": items, "dataset": str(path)}
    rec["generate"] = generated or "cached"
    rec["load"] = measure({**base, "kind": "load", "method": "sasrec", "sets": COMMON})
    rec["train"] = {
        label: measure({**base, "kind": "train", "method": m, "sets": [*COMMON, *sets]})
        for label, (m, sets) in TRAIN.items()
    }
    rec["eval"] = measure({**base, "kind": "eval", "method": "sasrec", "sets": COMMON})
    return rec


def costs(rec: dict[str, Any]) -> dict[str, float]:
    """A point's per-user costs and its evaluation peak RSS, the quantities ``growth`` compares."""
    out = {f"train_{m}_seconds_per_user": r["seconds_per_user"] for m, r in rec["train"].items()}
    out["load_seconds_per_user"] = rec["load"]["seconds"] / rec["users"]
    out["eval_seconds_per_user"] = rec["eval"]["seconds_per_user"]
    out["eval_peak_rss_mib"] = rec["eval"]["peak_rss_mib"]
    out["eval_ranking_rss_mib"] = (
        rec["eval"]["peak_rss_mib"] - rec["eval"]["rss_before_ranking_mib"]
    )
    return out


def growth(points: list[dict[str, Any]], axis: str, fixed: str) -> list[dict[str, Any]]:
    """Each point's ``costs`` over those of the point with the least ``axis`` at its ``fixed``."""
    rows = []
    for p in points:
        peers = [q for q in points if q[fixed] == p[fixed]]
        base = min(peers, key=lambda q: q[axis])
        if len(peers) < 2 or base is p:
            continue
        mine, ref = costs(p), costs(base)
        ratios = {k: round(v / ref[k], 3) if ref[k] else None for k, v in mine.items()}
        rows.append({"users": p["users"], "items": p["items"], f"relative_to_{axis}": base[axis],
                     **ratios})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", nargs="+", default=POINTS, help="USERS:ITEMS, e.g. 100k:200k")
    ap.add_argument("--max-batches", type=int, default=None, help="time N batches, extrapolate")
    ap.add_argument("--eval-users", type=int, default=None, help="rank a random N users")
    ap.add_argument("--cache", type=Path, default=CACHE, help="where datasets are kept")
    ap.add_argument("--name", default="scale", help="result name")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(json.loads(args.child))
    code, begun = commit(), time.perf_counter()
    points = [point(text, args) for text in args.points]
    result = {
        "benchmark": "scale",
        "max_batches": args.max_batches,
        "eval_users": args.eval_users,
        "train_sets": TRAIN,  # on top of each method's preset (s4rec's is BCE)
        "points": points,
        "growth_with_users": growth(points, "users", "items"),
        "growth_with_items": growth(points, "items", "users"),
        "targets": {
            "train_seconds_per_user_ratio_10k_to_1M": 1.5,
            "load_1M_seconds": 10,
            "load_1M_peak_rss_mib": 1536,
            "eval_peak_rss": "independent of users",
        },
        "notes": {
            "epoch_seconds": "start_epoch_seconds + (measured_seconds - start_epoch_seconds) "
            "/ measured_batches * batches_per_epoch; extrapolated when epoch_extrapolated",
            "peak_rss_mib": "ru_maxrss of the measuring process (os.wait4): imports, data, "
            "model and the measured work; rss_* fields are the process's peak at that moment",
            "eval": "an untrained sasrec ranks users_ranked random users on test, all items",
        },
        **provenance(time.perf_counter() - begun, code),
    }
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
