"""What one training epoch of a configuration costs on each dataset (issue 19's other datasets):
epochs interleaved in one process, so that the ratios to the first dataset are the result.

    python benchmarks/dataset_cost.py --datasets beauty toys sports ml-1m --threads 1

The configuration is a method on each dataset's paper file (its depth) with ``--set``
settings; the default is S^4Rec with the ``codepad-raw`` settings, named in full so that the
measurement does not depend on what the ``s4rec`` preset is. A finished Beauty run's epoch
count times a ratio says what the same run would take on another dataset, if it peaked as
late. Writes benchmarks/results/summaries/NAME.json (``--name``, default
dataset-cost-t<threads>).
"""

from __future__ import annotations

import argparse
import time

import torch

from common import S4REC_CODEPAD_RAW, commit, provenance, write_result
from cost import epoch_costs
from s4rec.data.catalog import load_sequences
from s4rec.data.dataset import LeaveOneOut


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--datasets", nargs="+", default=["beauty", "toys", "sports", "ml-1m"])
    p.add_argument("--data-dir", help="where the catalog looks first (else $S4REC_DATA)")
    p.add_argument("--method", default="s4rec")
    p.add_argument("--set", action="append", dest="sets", default=None, metavar="KEY=VALUE",
                   help="settings on top of the paper file (default: the codepad-raw ones)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--name", help="result name (default dataset-cost-t<threads>)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    sets = tuple(args.sets) if args.sets is not None else S4REC_CODEPAD_RAW
    data = {d: LeaveOneOut(load_sequences(d, args.data_dir)) for d in args.datasets}
    specs = {d: (f"paper/{d}", args.method, *sets) for d in args.datasets}
    epochs = epoch_costs(data, specs, args.repeats)
    first = epochs[args.datasets[0]]["seconds_median"]
    ratio = {d: round(e["seconds_median"] / first, 2) for d, e in epochs.items()}
    users = {d: data[d].n_users for d in args.datasets}
    result = {"benchmark": "dataset_cost", "method": args.method, "sets": list(sets),
              "repeats": args.repeats, "users": users, "epochs": epochs,
              "over_first_dataset": ratio}  # fmt: skip
    name = args.name or f"dataset-cost-t{args.threads}"
    path = write_result(name, {**result, **provenance(time.perf_counter() - start, code)})
    print(ratio, "->", path)


if __name__ == "__main__":
    main()
