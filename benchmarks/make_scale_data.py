"""Write a long-tailed synthetic dataset at scale in the binary format, or time loading one.

    python benchmarks/make_scale_data.py --users 1000000 --items 200000 --out scale-1m.s4rec
    python benchmarks/make_scale_data.py --load scale-1m.s4rec

The first generates ``s4rec.data.synthetic.make_scale_synthetic`` (planted intents,
long-tailed lengths and item popularity; the same seed gives the same arrays) and writes it
with ``s4rec.data.binary.write_binary``; the second opens a binary dataset as training does
(memory-mapped) in a fresh process. Each prints one JSON line: sizes, seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from s4rec.data.binary import read_binary, write_binary
from s4rec.data.synthetic import make_scale_synthetic


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--max-len", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="binary dataset directory to write")
    p.add_argument("--load", help="time loading this binary dataset instead")
    args = p.parse_args()
    if (args.out is None) == (args.load is None):
        p.error("give exactly one of --out and --load")
    start = time.perf_counter()
    if args.load:
        seqs = read_binary(args.load)
        record = {"load_s": time.perf_counter() - start}
    else:
        seqs = make_scale_synthetic(args.users, args.items, args.seed, args.max_len).sequences
        record = {"generate_s": time.perf_counter() - start}
        write_binary(seqs, args.out)
        record["write_s"] = time.perf_counter() - start - record["generate_s"]
    sizes = {"users": seqs.n_users, "items": seqs.n_items, "interactions": len(seqs.values)}
    print(json.dumps({**sizes, **record, "peak_rss_mb": round(peak_rss_mb(), 1)}))


if __name__ == "__main__":
    main()
