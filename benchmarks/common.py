"""What every benchmark result records besides its numbers: command, commit, machine, threads, time."""

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
