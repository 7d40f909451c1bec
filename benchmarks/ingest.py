"""Peak memory and throughput of ``s4rec prepare`` on synthetic logs of N rows.

    python benchmarks/ingest.py --rows 1M 3M 10M
    python benchmarks/ingest.py --rows 1M --reader exact     # today's exact reader, to compare

Writes a CSV log of N rows (string user and item ids, ``u123``/``i45``, N/10 users and
min(N/50, 200k) items with long-tailed popularity, integer timestamps) into a temporary
folder under /tmp, runs ``s4rec prepare`` on it in a subprocess, and records the child's
peak RSS (``os.wait4``) and wall time, and rows per second. ``--reader exact`` runs the exact
reader (``read_raw`` then ``to_sequences``) instead of the streaming one. Writes
benchmarks/results/summaries/ingest[-exact].json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import commit, count, provenance, run_child, write_result

EXACT = (
    "import sys; from s4rec.data.preprocess import to_sequences; "
    "from s4rec.data.readers import read_raw, write_sequence_text; "
    "write_sequence_text(to_sequences(read_raw(sys.argv[1])), sys.argv[2])"
)


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    """A synthetic CSV log of ``rows`` rows (see module doc), written in chunks."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    n_users, n_items = max(rows // 10, 1), max(min(rows // 50, 200_000), 1)
    schema = pa.schema(
        [("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64())]
    )
    with pcsv.CSVWriter(path, schema) as out:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            users = rng.integers(0, n_users, n)
            items = np.minimum(rng.zipf(1.2, n) - 1, n_items - 1)
            ids = [pc.binary_join_element_wise(p, pa.array(v).cast(pa.string()), "")
                   for p, v in (("u", users), ("i", items))]  # fmt: skip
            times = 1_600_000_000 + rng.integers(0, 10**8, n)
            out.write_table(pa.table([*ids, pa.array(times)], schema=schema))


def measure(log: Path, out: Path, reader: str) -> dict:
    """Run prepare on ``log`` in a child process; its peak RSS and wall time."""
    if reader == "exact":
        cmd = [sys.executable, "-c", EXACT, str(log), str(out)]
    else:
        cmd = [sys.executable, "-m", "s4rec", "prepare", str(log), "--out", str(out)]
    wall, peak, _ = run_child(cmd)
    return {"wall_seconds": round(wall, 2), "peak_rss_mib": round(peak, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", nargs="+", default=["1M", "3M", "10M"])
    ap.add_argument("--reader", choices=["stream", "exact"], default="stream")
    ap.add_argument("--name", default=None, help="result name (default ingest[-exact])")
    args = ap.parse_args()
    code, begun = commit(), time.perf_counter()
    sizes = []
    for text in args.rows:
        rows = count(text)
        with tempfile.TemporaryDirectory(dir="/tmp", prefix="s4rec-ingest-") as tmp:
            log = Path(tmp) / "log.csv"
            write_log(log, rows)
            got = measure(log, Path(tmp) / "seqs.txt", args.reader)
            got = {"rows": rows, "log_mib": round(log.stat().st_size / 2**20, 1), **got}
        got["rows_per_second"] = round(rows / got["wall_seconds"])
        print(got, flush=True)
        sizes.append(got)
    name = args.name or ("ingest" if args.reader == "stream" else "ingest-exact")
    result = {
        "benchmark": "ingest",
        "reader": args.reader,
        "sizes": sizes,
        "targets": {"peak_rss_mib_1M": 400, "peak_rss_mib_10M": 2048},
        **provenance(time.perf_counter() - begun, code),
    }
    print(write_result(name, result))


if __name__ == "__main__":
    main()
