"""What the benchmark scripts share: where results live, what every result records besides its
numbers (command, commit, machine, threads, time), the paper's published numbers, and the
helpers of the generated tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from s4rec.files import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "runs"  # one training run per file (benchmarks/train_run.py), groups in folders
SUMMARIES = RESULTS / "summaries"  # one benchmark over many runs or timings per file
SCHEMA = 1  # version of a result file's layout; bump it when a field changes meaning


# Padding ignored, or the ICLRec code's behaviour (padding attends, the mask writes the
# padding id, z the mean of all max_len outputs)
IGNORED_PADDING = ("model.padding=ignored", "augment.mask_token=own", "model.pooling=last")
CODE_PADDING = ("model.padding=iclrec", "augment.mask_token=padding", "model.pooling=mean")
# the s4rec preset before issue 19 selected its configuration on validation (the S^4Rec runs
# made before then have it), and the selected configuration (`codepad-raw`)
S4REC_BEFORE_19 = (*IGNORED_PADDING, "s4rec.similarity=cosine", "s4rec.distill_normalize=true")
S4REC_CODEPAD_RAW = (*CODE_PADDING, "s4rec.similarity=dot", "s4rec.distill_normalize=false")


def protocol_file(protocol: str, dataset: str) -> Path:
    """The configuration file of a protocol: Table 2's per-dataset file for "bce", the
    cross-entropy protocol's for "ce"."""
    return ROOT / "configs" / ("ce.yaml" if protocol == "ce" else f"paper/{dataset}.yaml")


def commit() -> str:
    """HEAD's hash, with '-dirty' when tracked files have uncommitted changes."""
    try:
        head = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True).strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "src"], cwd=ROOT).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; {os.cpu_count()} cores; {platform.system()} {platform.release()}; torch {torch.__version__}"


def provenance(wall_seconds: float, code_commit: str) -> dict[str, Any]:
    """``code_commit``: ``commit()`` taken when the benchmark started, i.e. the code that ran."""
    procs = os.environ.get("LOCAL_WORLD_SIZE")  # set by torchrun
    launcher = ["torchrun", "--nproc_per_node", procs] if procs else ["python"]
    return {
        "command": " ".join([*launcher, *sys.argv]),
        "commit": code_commit,
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "wall_seconds": round(wall_seconds, 2),
    }


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median wall time of ``repeats`` calls of ``fn``, every time (rounded), the last result."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), [round(t, 3) for t in times], out


def count(text: str) -> int:
    """``1M`` -> 1_000_000, ``300k`` -> 300_000."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text.rstrip("kKmM")) * scale)


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd`` to the end: its wall seconds, peak RSS in MiB (``os.wait4``) and stdout."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    child.stdout.close()
    if child.returncode:
        raise SystemExit(f"{cmd} failed with status {child.returncode}")
    return wall, usage.ru_maxrss / 1024, out


def result_path(name: str, result: dict[str, Any]) -> Path:
    """Where a result named ``name`` lives: a summary (it names its ``benchmark``) under
    SUMMARIES, a training run under RUNS."""
    return (SUMMARIES if "benchmark" in result else RUNS) / f"{name}.json"


def with_schema(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with the schema version as its first field."""
    return {"schema": SCHEMA, **{k: v for k, v in result.items() if k != "schema"}}


def write_result(name: str, result: dict[str, Any]) -> Path:
    path = result_path(name, result)
    text = json.dumps(with_schema(result), indent=2) + "\n"
    write_text_atomic(path, text)  # makes the folder too
    return path


METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")
PAPER = {  # Tables 2 and 3 of the paper, test HR@5 / HR@20 / NDCG@5 / NDCG@20 (BCE protocol)
    ("beauty", "sasrec"): (0.0374, 0.0901, 0.0241, 0.0387),
    ("sports", "sasrec"): (0.0206, 0.0497, 0.0135, 0.0216),
    ("toys", "sasrec"): (0.0463, 0.0941, 0.0306, 0.0441),
    ("ml-1m", "sasrec"): (0.1444, 0.3337, 0.0939, 0.1476),
    ("beauty", "s4rec"): (0.0519, 0.1071, 0.0348, 0.0505),
    ("sports", "s4rec"): (0.0284, 0.0656, 0.0181, 0.0292),
    ("toys", "s4rec"): (0.0586, 0.1148, 0.0407, 0.0565),
    ("ml-1m", "s4rec"): (0.1557, 0.3547, 0.1012, 0.1570),
    ("beauty", "cl4srec"): (0.0423, 0.0994, 0.0281, 0.0441),
    ("sports", "cl4srec"): (0.0217, 0.0540, 0.0137, 0.0227),
    ("toys", "cl4srec"): (0.0526, 0.1038, 0.0362, 0.0506),
    ("ml-1m", "cl4srec"): (0.1520, 0.3537, 0.0969, 0.1539),
    ("beauty", "iclrec"): (0.0475, 0.1050, 0.0316, 0.0478),
    ("sports", "iclrec"): (0.0267, 0.0644, 0.0177, 0.0283),
    ("toys", "iclrec"): (0.0571, 0.1110, 0.0392, 0.0545),
    ("ml-1m", "iclrec"): (0.1482, 0.3431, 0.0964, 0.1513),
    ("beauty", "sr+csd"): (0.0499, 0.1041, 0.0332, 0.0485),
    ("beauty", "sr+csd+gr"): (0.0517, 0.1044, 0.0349, 0.0497),
    ("beauty", "s4rec-no-csd"): (0.0382, 0.0922, 0.0258, 0.0397),
    ("beauty", "s4rec-no-gr"): (0.0487, 0.1035, 0.0329, 0.0480),
}
PAPER_K_HR5 = {32: 0.0510, 64: 0.0508, 128: 0.0519, 256: 0.0481, 512: 0.0455}  # Table 4, Beauty
MARKERS = "<!-- {}:start -->", "<!-- {}:end -->"
# settings that name a run rather than change what it learns
BOOKKEEPING = ("train.seed", "train.threads", "train.progress", "data.data_dir", "train.device",
               "train.eval_batch_users", "train.eval_item_chunk")  # fmt: skip


def cell(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def load(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def generated(body: list[str], block: str = "results") -> str:
    start, end = (m.format(block) for m in MARKERS)
    return "\n".join([start, "<!-- generated by benchmarks/table.py; do not edit by hand -->",
                      *body, end])  # fmt: skip
