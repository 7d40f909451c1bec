"""The HTTP server under a bounded load, then under hostile requests.

    python benchmarks/serve_load.py --checkpoint runs/beauty-sasrec/best.pt
    python benchmarks/serve_load.py --dataset beauty          # trains a 1-epoch SASRec first

Starts ``s4rec serve`` (one torch thread) on a free 127.0.0.1 port, once on the checkpoint and
once on its ONNX export (``--onnx``). Each phase sends at most ``--requests`` requests from
``--clients`` concurrent keep-alive connections and stops after ``--seconds`` whichever comes
first: ``/recommend`` with one history as fast as answers come, then paced to ``--rate``
requests/s, then ``/recommend/batch`` with 64. It records p50 /
p95 / p99 latency, requests and histories per second, and the server's RSS before and after.
Before that, the model alone: the median time of one single-history ``recommend`` call on
one thread, eager against the ONNX graph. Then 1,000 malformed or hostile requests (bad JSON, huge k, unknown ids, deep nesting,
oversized bodies, wrong content types and methods): every answer must be a 4xx, the server
must stay alive, and its RSS growth is recorded. Writes benchmarks/results/summaries/serve-load.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from common import ROOT, commit, provenance, write_result
from s4rec.export import export_onnx
from s4rec.inference import Recommender


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes = b"",
            content_type: str = "application/json") -> tuple[int, bytes]:  # fmt: skip
    conn.request(method, path, body=body, headers={"content-type": content_type})
    response = conn.getresponse()
    return response.status, response.read()


class Server:
    """``s4rec serve`` in a subprocess, up once /health answers; stopped on exit."""

    def __init__(self, path: str, onnx: bool) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "s4rec", "serve", path, "--port", str(self.port),
               "--threads", "1", *(["--onnx"] if onnx else [])]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                if request(self.connect(), "GET", "/health")[0] == 200:
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {' '.join(cmd)}") from None
                time.sleep(0.3)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def load(server: Server, path: str, bodies: list[bytes], clients: int, requests: int,
         seconds: float, rate: float = 0.0) -> dict[str, float]:  # fmt: skip
    """Latency percentiles (ms) and throughput of ``requests`` requests at most, from
    ``clients`` threads, stopping after ``seconds``; as fast as answers come, or paced to
    ``rate`` requests per second in all."""
    latencies: list[float] = []
    errors = [0]
    lock, left = threading.Lock(), [requests]
    stop_at = time.monotonic() + seconds

    def client() -> None:
        conn, sent, began = server.connect(), 0, time.monotonic()
        while time.monotonic() < stop_at:
            if rate:  # this client's share of the rate, on a fixed schedule
                time.sleep(max(0.0, began + sent * clients / rate - time.monotonic()))
                sent += 1
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            body = random.choice(bodies)
            start = time.perf_counter()
            status, _ = request(conn, "POST", path, body)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                errors[0] += status != 200

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "errors": errors[0], "seconds": round(wall, 2),
            "requests_per_s": round(len(latencies) / wall, 1), "p50_ms": round(q[49] * 1e3, 2),
            "p95_ms": round(q[94] * 1e3, 2), "p99_ms": round(q[98] * 1e3, 2)}  # fmt: skip


def hostile(item: str, n: int) -> list[tuple[str, str, bytes, str]]:
    """``n`` bad requests: (method, path, body, content type), cycling through the kinds."""
    kinds = [
        ("POST", "/recommend", b"{not json", "application/json"),
        ("POST", "/recommend", json.dumps({"history": [item], "k": 10**9}).encode(), "application/json"),
        ("POST", "/recommend", json.dumps({"history": ["no-such-id"] * 50}).encode(), "application/json"),
        ("POST", "/recommend", b"[" * 50_000 + b"]" * 50_000, "application/json"),
        ("POST", "/recommend", b"x" * (2 << 20), "application/json"),
        ("POST", "/recommend", b"history=1", "text/plain"),
        ("POST", "/recommend/batch", json.dumps({"histories": [[item]] * 5000}).encode(), "application/json"),
        ("POST", "/recommend", json.dumps({"history": {"a": 1}, "k": "ten"}).encode(), "application/json"),
        ("GET", "/recommend", b"", "application/json"),
        ("POST", "/nowhere", b"{}", "application/json"),
    ]  # fmt: skip
    return [kinds[i % len(kinds)] for i in range(n)]


def fuzz(server: Server, item: str, n: int) -> dict[str, object]:
    statuses: dict[int, int] = {}
    conn = server.connect()
    for method, path, body, content_type in hostile(item, n):
        try:
            status, _ = request(conn, method, path, body, content_type)
        except (http.client.HTTPException, OSError):  # the server may close after a 413
            conn = server.connect()
            status = -1
        statuses[status] = statuses.get(status, 0) + 1
    alive = request(server.connect(), "GET", "/health")[0] == 200
    return {"requests": n, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "all_4xx": all(400 <= s < 500 for s in statuses), "alive": alive}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--checkpoint", help="a trained model (default: train a 1-epoch SASRec)")
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--data-dir")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--fuzz", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0, help="requests/s of the paced phase")
    p.add_argument("--name", default="serve-load")
    args = p.parse_args()
    start, code = time.perf_counter(), commit()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            cmd = [sys.executable, "-m", "s4rec", "train", "--dataset", args.dataset, "--epochs",
                   "1", "--threads", "1", "--no-progress", "--config", str(ROOT / "configs" / "paper-bce.yaml"),
                   "--out", f"{tmp}/run", *(["--data-dir", args.data_dir] if args.data_dir else [])]  # fmt: skip
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            ckpt = f"{tmp}/run/best.pt"
        export_onnx(ckpt, f"{tmp}/model.onnx", k=100)
        rec = Recommender.load(ckpt)
        rng = random.Random(0)
        histories = [rng.sample(rec.item_ids, rng.randint(1, 30)) for _ in range(512)]
        single = [json.dumps({"history": h, "k": 10}).encode() for h in histories]
        batches = [json.dumps({"histories": rng.sample(histories, 64), "k": 10}).encode()
                   for _ in range(32)]  # fmt: skip
        model_ms = {}  # one history at a time, in this process, one thread: the model alone
        torch.set_num_threads(1)
        for runtime, ranker in (
            ("torch", rec),
            ("onnxruntime", Recommender.from_onnx(f"{tmp}/model.onnx")),
        ):
            times = []
            for h in histories[:300]:
                began = time.perf_counter()
                ranker.recommend([h], 10)
                times.append(time.perf_counter() - began)
            model_ms[runtime] = round(statistics.median(times[50:]) * 1e3, 3)
        print("model latency, ms:", model_ms, flush=True)
        phases = {}
        for runtime, path in (("torch", ckpt), ("onnxruntime", f"{tmp}/model.onnx")):
            server = Server(path, onnx=runtime == "onnxruntime")
            try:
                before = rss_mib(server.proc.pid)
                one = load(server, "/recommend", single, args.clients, args.requests, args.seconds)
                paced = load(server, "/recommend", single, args.clients, args.requests,
                             args.seconds, args.rate)  # fmt: skip
                many = load(server, "/recommend/batch", batches, args.clients,
                            max(args.requests // 20, 50), args.seconds)  # fmt: skip
                many["histories_per_s"] = round(many["requests_per_s"] * 64, 1)
                after_load = rss_mib(server.proc.pid)
                hostile_result = fuzz(server, rec.item_ids[0], args.fuzz)
                phases[runtime] = {
                    "recommend": one, f"recommend_at_{args.rate:g}_per_s": paced,
                    "recommend_batch_64": many, "rss_mib_before": round(before, 1),
                    "rss_mib_after_load": round(after_load, 1), "fuzz": hostile_result,
                    "rss_mib_growth_fuzz": round(rss_mib(server.proc.pid) - after_load, 1),
                }  # fmt: skip
                print(runtime, json.dumps(phases[runtime]), flush=True)
            finally:
                server.stop()
    result = {"benchmark": "serve_load", "dataset": args.dataset, "clients": args.clients,
              "server_threads": 1, "rate": args.rate, "model_latency_ms": model_ms,
              "onnx_over_torch": round(model_ms["onnxruntime"] / model_ms["torch"], 3),
              "phases": phases,
              **provenance(time.perf_counter() - start, code)}  # fmt: skip
    print(f"wrote {write_result(args.name, result)}")


if __name__ == "__main__":
    main()
