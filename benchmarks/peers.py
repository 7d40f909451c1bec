"""s4rec against RecBole, on one machine in one interleaved run: SASRec with softmax CE.

    python benchmarks/peers.py --setup-venv          # once: RecBole in its own venv (PINS)
    python benchmarks/peers.py --dataset beauty --epochs 25 --repeats 1

RecBole's SASRec (``loss_type: CE``, leave-one-out split ``LS: valid_and_test``, ``order:
TO``, full ranking) and s4rec's ``sasrec`` under the cross-entropy protocol
(configs/ce.yaml: every prefix a sample, softmax CE over all items) are trained with the
same settings (SETTINGS: hidden 64, 2 layers, 2 heads, FFN 256, max_len 50, dropout 0.5,
Adam lr 1e-3, the same number of training targets per optimiser step; see ``--batch``).

Each library runs in its own worker process on one thread (RecBole's in the venv
``--venv``, driven through benchmarks/peers_recbole.py; s4rec's is this script with
``--worker``), and the driver interleaves them: per repeat both are started, then they
train epoch by epoch in alternating order, then each evaluates all users (full ranking,
``--eval-repeats`` times, alternating), then each exports its top-k. Per library the result
records seconds per training epoch (median over epochs after each repeat's first, all
repeats), seconds per full-ranking evaluation of the test split, the process's peak RSS,
and test HR/NDCG after ``--epochs`` epochs: by the library's own evaluator, and by ours
(``s4rec.evaluate.metrics_from_lists``) on both libraries' top-k lists under two
protocols: history ranked like any item (RecBole's for sequential models) and history
excluded (s4rec's default). Ratios are s4rec over RecBole, speed-ups RecBole over s4rec.

Importing RecBole's sequential models runs ``torch.autograd.set_detect_anomaly(True)``
(module level, recbole/model/sequential_recommender/sine.py), which slows every model's
training. The comparison turns it off (``--recbole-anomaly`` keeps it); the first repeat
ends with ``--shipped-epochs`` extra RecBole epochs with it on, timed separately (after
the metrics were taken).

Writes benchmarks/results/summaries/peers-DATASET.json (``--name``, ``--results-dir``).
If RecBole cannot run, the JSON records why and with which pins it was tried.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from peers_worker import MARK, reply, rss_now, serve

HERE = Path(__file__).resolve().parent
RECBOLE_RUNNER = HERE / "peers_recbole.py"
DEFAULT_VENV = Path("~/.cache/s4rec/venvs/recbole").expanduser()
RECBOLE_VERSION = "1.2.1"  # the current release on PyPI (2026-11)

# What RecBole 1.2.1 needs to run with torch 2.13 on Python 3.11, installed with
# ``--no-deps`` for recbole itself: its declared ``ray<=2.6.3`` and ``plotly`` serve only
# hyper-parameter search (recbole.quick_start, recbole.trainer.hyper_tuning), not imported here.
PINS = [
    "torch==2.13.0",
    "numpy==1.26.4",  # RecBole's Config runs ``np.float = np.float_``: gone in numpy 2
    "pandas==2.3.3",  # pandas 3 needs numpy >= 2
    "scipy==1.16.3",  # the newest with numpy 1.26 wheels
    "scikit-learn==1.7.2",  # likewise
    "colorlog==4.7.2",  # RecBole pins these two exactly
    "colorama==0.4.4",
    "tensorboard==2.21.0",  # recbole.utils imports SummaryWriter at module level
    "texttable==1.7.2",
    "tabulate==0.10.0",
    "psutil==7.2.2",
    "thop==0.1.1.post2209072238",
    "tqdm==4.70.1",
    "pyyaml==6.0.4",
]

SETTINGS = {  # shared by both libraries (each worker maps them onto its own names)
    "max_len": 50,
    "hidden": 64,
    "inner": 256,
    "layers": 2,
    "heads": 2,
    "dropout": 0.5,  # s4rec: model.dropout; RecBole: hidden_dropout_prob
    "attn_dropout": 0.5,  # s4rec: model.attn_dropout; RecBole: attn_dropout_prob
    "lr": 1e-3,
    "eval_batch_size": 4096,  # RecBole's default (users per full-ranking batch)
}
TOP_K = 20
KS = (5, 10, 20)


# -- plumbing shared by the driver and the s4rec worker ----------------------------------------
class WorkerError(RuntimeError):
    pass


class Worker:
    """A worker process spoken to one JSON line at a time (see peers_recbole.py)."""

    def __init__(self, name: str, cmd: list[str], log: Path, cwd: Path) -> None:
        self.name, self.log_path = name, log
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True, env=env, cwd=cwd,
        )  # fmt: skip
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                out = json.loads(line[len(MARK) :])
                if "error" in out:
                    raise WorkerError(f"{self.name}: {out['error']}\n{out.get('traceback', '')}")
                return out
        raise WorkerError(f"{self.name} exited (code {self.proc.wait()}):\n{self.log_tail()}")

    def ask(self, cmd: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> dict[str, Any]:
        try:
            out = self.ask("quit")
        finally:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        return out

    def log_tail(self, chars: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]


# -- the s4rec worker (this script with --worker) ----------------------------------------------
class S4RecWorker:
    def __init__(self, sequence_file: Path, workdir: Path, settings: dict[str, Any]) -> None:
        self.sequence_file, self.workdir, self.settings = sequence_file, workdir, settings

    def sets(self) -> list[str]:
        s = self.settings
        return [
            f"data.dataset={self.sequence_file}",
            f"data.max_len={s['max_len']}",
            f"model.hidden={s['hidden']}",
            f"model.inner={s['inner']}",
            f"model.layers={s['layers']}",
            f"model.heads={s['heads']}",
            f"model.dropout={s['dropout']}",
            f"model.attn_dropout={s['attn_dropout']}",
            f"train.batch_size={s['batch_size']}",
            f"train.lr={s['lr']}",
            f"train.epochs={s['epochs']}",
            f"train.seed={s['seed']}",
            "train.threads=1",
            "train.device=cpu",
            "train.progress=false",
        ]

    def setup(self) -> dict[str, Any]:
        import torch

        from s4rec.data.dataset import training_samples
        from s4rec.methods import configure
        from s4rec.train import Trainer

        torch.set_num_threads(1)
        start = time.perf_counter()
        cfg = configure("sasrec", HERE.parent / "configs" / "ce.yaml", self.sets())
        self.trainer = Trainer(cfg, self.workdir / "s4rec-run")
        self.cfg, self.data = cfg, self.trainer.data
        d = cfg.data
        samples = training_samples(self.data, d.layout, d.max_len, d.prefix_stride)
        targets = int((samples.end - samples.start - samples.first_target).sum())
        return {
            "setup_seconds": round(time.perf_counter() - start, 3),
            "users": self.data.n_users,
            "items": self.data.n_items,
            "train_windows": len(samples),
            "train_targets": targets,
            "steps_per_epoch": len(self.trainer.loader),
            "test_users": self.data.n_users,
            "device": str(self.trainer.device),
            "threads": torch.get_num_threads(),
            "rss_after_setup": rss_now(),
            "config": cfg.to_dict(),
        }

    def train_epoch(self) -> dict[str, Any]:
        start = time.perf_counter()
        losses = self.trainer.train_epoch()
        seconds = time.perf_counter() - start
        self.trainer.progress.epoch += 1
        return {"seconds": seconds, "loss": losses, "epoch": self.trainer.progress.epoch}

    def ranker(self, exclude_history: bool):
        from s4rec.evaluate import Ranker

        t = self.cfg.train
        return Ranker(
            self.trainer.model, self.data, exclude_history=exclude_history,
            user_batch=t.eval_batch_users, item_chunk=t.eval_item_chunk,
        )  # fmt: skip

    def evaluate(self) -> dict[str, Any]:
        from s4rec.evaluate import metrics_from_ranks

        start = time.perf_counter()
        ranks = self.ranker(self.cfg.eval.exclude_history).ranks("test")
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "metrics": metrics_from_ranks(ranks, KS),
            "exclude_history": self.cfg.eval.exclude_history,
        }

    def topk(self, k: int, out: str) -> dict[str, Any]:
        seqs = self.data.seqs
        items = seqs.item_ids  # internal id i is item_ids[i - 1]
        start = time.perf_counter()
        lists = {}
        for name, exclude in (("history_ranked", False), ("history_excluded", True)):
            ids, _ = self.ranker(exclude).top_k("test", k)
            lists[name] = [[items[i - 1] for i in row] for row in ids.tolist()]
        seconds = time.perf_counter() - start
        payload = {
            "users": list(seqs.user_ids),
            "targets": [items[i - 1] for i in self.data.target("test").tolist()],
            "k": k,
            **lists,
        }
        Path(out).write_text(json.dumps(payload))
        return {"seconds": seconds, "users": len(payload["users"]), "path": out}


def worker_main(argv: list[str]) -> None:
    """``--worker SEQUENCE_FILE WORKDIR SETTINGS_JSON``: serve commands on stdin."""
    sequence_file, workdir, settings = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    reply({"ready": True, "rss_after_start": rss_now()})
    worker = S4RecWorker(sequence_file, workdir, settings)
    serve({
        "setup": lambda m: worker.setup(),
        "train": lambda m: worker.train_epoch(),
        "eval": lambda m: worker.evaluate(),
        "topk": lambda m: worker.topk(int(m["k"]), m["out"]),
    })  # fmt: skip


# -- RecBole's environment ---------------------------------------------------------------------
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def setup_venv(venv: Path) -> None:
    """Create ``venv`` and install RecBole (without its declared dependencies) and PINS."""
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run([*pip, "--no-deps", f"recbole=={RECBOLE_VERSION}"], check=True)


def venv_freeze(venv: Path) -> list[str]:
    try:
        out = subprocess.run(
            [str(venv_python(venv)), "-m", "pip", "freeze", "--disable-pip-version-check"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"(pip freeze failed: {e})"]
    return out.stdout.splitlines()


# -- data --------------------------------------------------------------------------------------
def read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def subsample(path: Path, users: int, out: Path, seed: int = 0) -> Path:
    """``users`` lines of ``path`` drawn at random (seeded), in file order."""
    lines = read_lines(path)
    if users >= len(lines):
        return path
    keep = sorted(random.Random(seed).sample(range(len(lines)), users))
    out.write_text("".join(lines[i] + "\n" for i in keep))
    return out


def test_targets(path: Path) -> dict[str, str]:
    """Each user's last item: the test target under leave-one-out, as the file says."""
    return {t[0]: t[-1] for t in (line.split() for line in read_lines(path))}


# -- metrics on exported top-k lists -----------------------------------------------------------
def list_metrics(topk_file: Path, truth: dict[str, str]) -> dict[str, Any]:
    """Our HR/NDCG on a library's exported top-k lists, against the file's test targets."""
    from s4rec.evaluate import metrics_from_lists

    payload = json.loads(topk_file.read_text())
    users, targets = payload["users"], payload["targets"]
    out: dict[str, Any] = {
        "users": len(users),
        "users_match_file": sorted(users) == sorted(truth),
        "targets_match_file": all(truth.get(u) == t for u, t in zip(users, targets, strict=True)),
    }
    wanted = [truth.get(u) for u in users]
    out["lists_changed_by_excluding_history"] = sum(
        a != b for a, b in zip(payload["history_ranked"], payload["history_excluded"], strict=True)
    )
    for protocol in ("history_excluded", "history_ranked"):
        shown = payload[protocol]
        out[protocol] = metrics_from_lists(shown, wanted, KS)
    return out


# -- the driver --------------------------------------------------------------------------------
def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def epoch_times(per_repeat: list[list[float]]) -> list[float]:
    """Every repeat's epochs after its first (warm-up), or all when a repeat has one."""
    return [t for times in per_repeat for t in (times[1:] if len(times) > 1 else times)]


def ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0 or math.isnan(num) or math.isnan(den):
        return None
    return round(num / den, 4)


def recbole_batch(args: argparse.Namespace, s4: dict[str, Any]) -> int:
    """RecBole's batch (prefix samples): as many targets per step as s4rec's (windows)."""
    if args.recbole_batch:
        return args.recbole_batch
    return max(1, round(s4["train_targets"] / s4["steps_per_epoch"]))


def run_repeat(
    args: argparse.Namespace,
    repeat: int,
    data_file: Path,
    work: Path,
    record: dict[str, Any],
) -> None:
    """One repeat: both libraries trained epoch by epoch in alternating order, then evaluated."""
    seed = args.seed + repeat
    settings = {**SETTINGS, "epochs": args.epochs, "batch_size": args.batch, "seed": seed}
    rdir = work / f"repeat{repeat + 1}"
    rdir.mkdir()
    workers: dict[str, Worker] = {}
    s4 = record["s4rec"]
    rb = record["recbole"]
    try:
        s4_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker",
                  str(data_file), str(rdir), json.dumps(settings)]  # fmt: skip
        workers["s4rec"] = Worker("s4rec", s4_cmd, rdir / "s4rec.log", rdir)
        setup = workers["s4rec"].ask("setup")
        s4["setup"].append(setup)
        s4["last_peak"] = setup["peak_rss"]
        if rb["status"] != "failed":
            rb_settings = {**settings, "batch_size": recbole_batch(args, setup),
                           "detect_anomaly": args.recbole_anomaly}  # fmt: skip
            try:
                rb_cmd = [str(venv_python(args.venv)), str(RECBOLE_RUNNER), str(data_file),
                          str(rdir / "recbole"), json.dumps(rb_settings)]  # fmt: skip
                workers["recbole"] = Worker("recbole", rb_cmd, rdir / "recbole.log", rdir)
                rb["versions"] = workers["recbole"].ready.get("versions")
                rb["setup"].append(workers["recbole"].ask("setup"))
                rb["settings"], rb["last_peak"] = rb_settings, rb["setup"][-1]["peak_rss"]
            except (WorkerError, OSError) as e:
                fail(rb, e, workers.pop("recbole", None))
        s4["settings"] = settings
        names = list(workers)
        if repeat % 2:
            names.reverse()
        for key in names:  # RSS once imports, data and model are in place
            record[key]["rss_after_setup"].append(record[key]["setup"][-1]["rss_after_setup"])
        for epoch in range(args.epochs):
            order = names if epoch % 2 == 0 else names[::-1]
            for key in order:
                out = call(workers, key, record, "train")
                if out is not None:
                    record[key]["epoch_seconds"][repeat].append(round(out["seconds"], 3))
                    record[key]["losses"][repeat].append(out["loss"])
            print(f"repeat {repeat + 1} epoch {epoch + 1}: " + ", ".join(
                f"{k} {record[k]['epoch_seconds'][repeat][-1]:.2f}s"
                for k in names if k in workers and record[k]["epoch_seconds"][repeat]
            ), flush=True)  # fmt: skip
        for key in names:
            if key in workers:
                record[key]["peak_rss_after_training"].append(record[key]["last_peak"])
        for i in range(args.eval_repeats):
            for key in names if i % 2 == 0 else names[::-1]:
                out = call(workers, key, record, "eval")
                if out is not None:
                    record[key]["eval_seconds"].append(round(out["seconds"], 3))
                    record[key]["own_metrics"][repeat] = out["metrics"]
        for key in names:  # the library's own work ends here; the top-k export is ours
            if key in workers:
                record[key]["peak_rss_after_eval"].append(record[key]["last_peak"])
        truth = test_targets(data_file)
        for key in names:
            path = rdir / f"{key}-top{TOP_K}.json"
            out = call(workers, key, record, "topk", k=TOP_K, out=str(path))
            if out is not None:
                record[key]["topk_seconds"].append(round(out["seconds"], 3))
                record[key]["our_metrics"][repeat] = list_metrics(path, truth)
        if repeat == 0 and "recbole" in workers:
            for _ in range(args.shipped_epochs):  # after the metrics: RecBole as shipped
                out = call(workers, "recbole", record, "train", detect_anomaly=True)
                if out is not None:
                    rb["shipped_epoch_seconds"].append(round(out["seconds"], 3))
        for key in list(workers):
            worker = workers.pop(key)
            try:
                record[key]["peak_rss"].append(worker.close()["peak_rss"])
            except WorkerError as e:
                fail(record[key], e, None)
    finally:
        for worker in workers.values():
            worker.proc.kill()
            worker.proc.wait()


def call(workers: dict[str, Worker], key: str, record: dict[str, Any], cmd: str, **kw: Any):
    """``cmd`` to worker ``key``; a failure marks that library failed and stops its worker."""
    worker = workers.get(key)
    if worker is None:
        return None
    try:
        out = worker.ask(cmd, **kw)
    except WorkerError as e:
        if key == "s4rec":
            raise
        fail(record[key], e, workers.pop(key))
        return None
    record[key]["last_peak"] = out["peak_rss"]
    return out


def fail(rec: dict[str, Any], error: BaseException, worker: Worker | None) -> None:
    rec["status"] = "failed"
    rec["why"] = str(error)[-6000:]
    if worker is not None:
        rec["log_tail"] = worker.log_tail()
        worker.proc.kill()
        worker.proc.wait()
    print(f"RecBole failed: {str(error)[-2000:]}", file=sys.stderr)


def new_record(repeats: int) -> dict[str, Any]:
    return {
        "status": "ok",
        "setup": [],
        "rss_after_setup": [],
        "epoch_seconds": [[] for _ in range(repeats)],
        "losses": [[] for _ in range(repeats)],
        "eval_seconds": [],
        "topk_seconds": [],
        "peak_rss_after_training": [],
        "peak_rss_after_eval": [],
        "peak_rss": [],
        "own_metrics": [None] * repeats,
        "our_metrics": [None] * repeats,
    }


def summarise(rec: dict[str, Any]) -> dict[str, Any]:
    """Medians of a library's record, and its metrics (median over repeats)."""
    rec.pop("last_peak", None)

    def mib(values: list[int]) -> float | None:
        return round(max(values) / 2**20, 1) if values else None

    out = {
        "epoch_seconds_median": median(epoch_times(rec["epoch_seconds"])),
        "eval_seconds_median": median(rec["eval_seconds"]),
        "peak_rss_mib": mib(rec["peak_rss_after_eval"]),  # setup, training, evaluation
        "peak_rss_after_training_mib": mib(rec["peak_rss_after_training"]),
        "peak_rss_with_topk_export_mib": mib(rec["peak_rss"]),  # the whole worker
        "rss_after_setup_mib": mib(rec["rss_after_setup"]),
    }

    def med(rows: list[dict[str, float] | None], key: str) -> float | None:
        values = [r[key] for r in rows if r is not None and key in r]
        return median(values)

    own = rec["own_metrics"]
    ours = rec["our_metrics"]
    for k in (10, 20):
        for name in ("HR", "NDCG"):
            metric = f"{name}@{k}"
            recbole_name = f"{'hit' if name == 'HR' else 'ndcg'}@{k}"
            value = med(own, metric)
            out.setdefault("own_evaluator", {})[metric] = (
                value if value is not None else med(own, recbole_name)
            )
            for protocol in ("history_excluded", "history_ranked"):
                rows = [r[protocol] if r else None for r in ours]
                out.setdefault(f"ours_{protocol}", {})[metric] = med(rows, metric)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="beauty", help="catalog name or sequence-text file")
    p.add_argument("--data-dir", help="where the catalog looks first (else $S4REC_DATA)")
    p.add_argument("--users", type=int, help="a random subsample of this many users")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--eval-repeats", type=int, default=2, help="evaluations per repeat")
    p.add_argument("--batch", type=int, default=64, help="s4rec's batch: sequences (windows)")
    p.add_argument("--recbole-batch", type=int, default=0,
                   help="RecBole's train_batch_size (prefix samples); 0: s4rec's targets per step")  # fmt: skip
    p.add_argument("--seed", type=int, default=1, help="repeat r uses seed + r in both")
    p.add_argument("--venv", type=Path, default=Path(os.environ.get("S4REC_RECBOLE_VENV", DEFAULT_VENV)))  # fmt: skip
    p.add_argument("--setup-venv", action="store_true", help="create the RecBole venv and exit")
    p.add_argument("--recbole-anomaly", action="store_true",
                   help="train RecBole with autograd anomaly detection on, as importing it sets")  # fmt: skip
    p.add_argument("--shipped-epochs", type=int, default=1,
                   help="extra RecBole epochs with anomaly detection on, timed apart")  # fmt: skip
    p.add_argument("--name", help="result name (default peers-DATASET[-uUSERS])")
    p.add_argument("--results-dir", type=Path,
                   help="write NAME.json here instead of benchmarks/results/summaries")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = p.parse_args()
    args.venv = args.venv.expanduser()
    if args.setup_venv:
        setup_venv(args.venv)
        return

    from common import commit, provenance, with_schema, write_result
    from s4rec.data.catalog import resolve_dataset

    start, code = time.perf_counter(), commit()
    source = resolve_dataset(args.dataset, args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="s4rec-peers-"))
    name = args.name or f"peers-{Path(args.dataset).stem.lower()}" + (
        f"-u{args.users}" if args.users else ""
    )
    record = {"s4rec": new_record(args.repeats), "recbole": new_record(args.repeats)}
    rb = record["recbole"]
    rb.update(pins=PINS, recbole=RECBOLE_VERSION, venv=str(args.venv), shipped_epoch_seconds=[])
    if not venv_python(args.venv).exists():
        rb.update(status="failed", why=f"no virtual environment at {args.venv}; create it with"
                  " python benchmarks/peers.py --setup-venv")  # fmt: skip
    try:
        data_file = subsample(source, args.users, work / "data.txt") if args.users else source
        for repeat in range(args.repeats):
            run_repeat(args, repeat, data_file, work, record)
        if rb["status"] != "failed" or venv_python(args.venv).exists():
            rb["venv_freeze"] = venv_freeze(args.venv)
        summary = {key: summarise(rec) for key, rec in record.items()}
        s, r = summary["s4rec"], summary["recbole"]
        shipped = median(rb["shipped_epoch_seconds"])
        ratios = {
            "train_epoch_speedup": ratio(r["epoch_seconds_median"], s["epoch_seconds_median"]),
            "train_epoch_speedup_vs_shipped_recbole": ratio(shipped, s["epoch_seconds_median"]),
            "eval_speedup": ratio(r["eval_seconds_median"], s["eval_seconds_median"]),
            "peak_rss": ratio(s["peak_rss_mib"], r["peak_rss_mib"]),
            "peak_rss_during_training": ratio(
                s["peak_rss_after_training_mib"], r["peak_rss_after_training_mib"]
            ),
        }
        for block in ("own_evaluator", "ours_history_excluded", "ours_history_ranked"):
            for metric in ("HR@10", "NDCG@10"):
                ratios[f"{metric} {block}"] = ratio(s[block][metric], r[block][metric])
        ok = rb["status"] == "ok"
        result = {
            "benchmark": "peers",
            "dataset": args.dataset,
            "data_file": str(source),
            "users_subsample": args.users,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "eval_repeats": args.eval_repeats,
            "settings": {
                **SETTINGS,
                "s4rec_batch_windows": args.batch,
                "recbole_batch_samples": rb.get("settings", {}).get("batch_size"),
                "seeds": [args.seed + r for r in range(args.repeats)],
                "threads_per_library": 1,
            },
            "protocol": PROTOCOL,
            "summary": summary,
            "ratios_s4rec_vs_recbole": ratios if ok else None,
            "targets": (
                {
                    "train_epoch_speedup >= 10": _at_least(ratios["train_epoch_speedup"], 10),
                    "eval_speedup >= 5": _at_least(ratios["eval_speedup"], 5),
                    "peak_rss < 1": _below(ratios["peak_rss"], 1),
                    "NDCG@10 >= RecBole (own evaluators)": _at_least(
                        ratios["NDCG@10 own_evaluator"], 1
                    ),
                }
                if ok
                else None
            ),
            "libraries": record,
            **provenance(time.perf_counter() - start, code),
            "threads": 1,
        }
        if args.results_dir:
            path = args.results_dir / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(with_schema(result), indent=2) + "\n")
        else:
            path = write_result(name, result)
        print(json.dumps({"summary": summary, "ratios": result["ratios_s4rec_vs_recbole"]},
                         indent=1))  # fmt: skip
        print(f"wrote {path}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


def _below(value: float | None, bound: float) -> bool | None:
    return None if value is None else value < bound


PROTOCOL = {
    "split": "leave-one-out in file order: last item test, second to last validation, the "
    "rest training (RecBole: eval_args split LS valid_and_test, order TO on timestamps = "
    "positions in the line, group_by user)",
    "training_targets": "every training item after a user's first, with up to max_len "
    "preceding items as input: s4rec in one causal pass per sequence (configs/ce.yaml, "
    "layout prefix), RecBole one padded sample per prefix; the same targets in both",
    "batch": "s4rec's batch counts sequences, RecBole's prefix samples; by default RecBole's "
    "train_batch_size is s4rec's mean targets per step, so both take about as many optimiser "
    "steps of as many targets per epoch",
    "loss": "softmax cross-entropy over all items, mean over targets",
    "no_model_selection": "both evaluate the model after exactly `epochs` epochs (no "
    "validation, no early stopping, no best checkpoint)",
    "own_evaluator": "s4rec: Ranker.ranks on the test split, history excluded, ties against "
    "the target; RecBole: Trainer.evaluate(test), full ranking, padding excluded, history "
    "NOT excluded for sequential models, ties broken by torch.topk",
    "ours_on_topk": "s4rec.evaluate.metrics_from_lists on each library's top-20 per test "
    "user, targets read from the data file; history_ranked: only padding (and s4rec's mask "
    "token) excluded; history_excluded: the user's input items excluded too (RecBole's "
    "lists re-ranked in the runner with every item before the test target set to -inf, as "
    "s4rec does)",
    "epoch_seconds": "wall time of one training pass (s4rec Trainer.train_epoch, RecBole "
    "Trainer._train_epoch), no validation; median over epochs after each repeat's first",
    "eval_seconds": "one full-ranking evaluation of every test user with the library's own "
    "evaluator (metrics included)",
    "peak_rss": "ru_maxrss of each worker process through imports, data, model, training "
    "and the evaluations (peak_rss_mib); before the first evaluation "
    "(peak_rss_after_training_mib); and including this benchmark's top-k export "
    "(peak_rss_with_topk_export_mib)",
    "recbole_anomaly_detection": "importing recbole.model.sequential_recommender runs "
    "torch.autograd.set_detect_anomaly(True) (sine.py, module level); RecBole trains with it "
    "off unless --recbole-anomaly; shipped_epoch_seconds are extra epochs with it on, after "
    "the first repeat's metrics, and train_epoch_speedup_vs_shipped_recbole uses them",
    "interleaving": "per repeat both workers live side by side; epochs alternate which "
    "library goes first; one thread each (torch.set_num_threads(1), OMP_NUM_THREADS=1)",
}


if __name__ == "__main__":
    main()
