"""What the ICLRec code's padding behaviour costs per epoch (issue 19): SASRec and S^4Rec on a
paper file, padding ignored against the ``codepad-raw`` settings, epochs interleaved.

    python benchmarks/padding_cost.py --dataset beauty --threads 1

With padding ignored a batch is cut to its longest sequence; with the ICLRec code's behaviour
every one of the max_len positions is encoded (padding attends to the whole sequence and the
mean pools all of them), so the cost grows with max_len over the mean length. Both sides are
named in full, so the comparison does not depend on which one the ``s4rec`` preset is.
Writes benchmarks/results/summaries/padding-cost-DATASET-t<threads>.json.
"""

from __future__ import annotations

import argparse
import time

import torch

from common import (
    CODE_PADDING,
    IGNORED_PADDING,
    S4REC_BEFORE_19,
    S4REC_CODEPAD_RAW,
    commit,
    provenance,
    write_result,
)
from cost import epoch_costs
from s4rec.data.catalog import load_sequences
from s4rec.data.dataset import LeaveOneOut


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--data-dir", help="where the catalog looks first (else $S4REC_DATA)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start, code = time.perf_counter(), commit()
    data = LeaveOneOut(load_sequences(args.dataset, args.data_dir))
    paper = f"paper/{args.dataset}"
    sides = {  # method: (its runs with padding ignored, with the ICLRec code's behaviour)
        "sasrec": ("sasrec-b512", "sasrec-codepad-b512"),
        "s4rec": ("s4rec", "s4rec-codepad-raw"),
    }
    specs = {
        "sasrec-b512": (paper, "sasrec", "train.batch_size=512", *IGNORED_PADDING),
        "sasrec-codepad-b512": (paper, "sasrec", "train.batch_size=512", *CODE_PADDING),
        "s4rec": (paper, "s4rec", *S4REC_BEFORE_19),
        "s4rec-codepad-raw": (paper, "s4rec", *S4REC_CODEPAD_RAW),
    }
    epochs = epoch_costs(data, specs, args.repeats)
    ratio = {m: round(epochs[c]["seconds_median"] / epochs[i]["seconds_median"], 2)
             for m, (i, c) in sides.items()}  # fmt: skip
    result = {"benchmark": "padding_cost", "dataset": args.dataset, "repeats": args.repeats,
              "epochs": epochs, "codepad_over_ignored": ratio}  # fmt: skip
    path = write_result(f"padding-cost-{args.dataset}-t{args.threads}",
                        {**result, **provenance(time.perf_counter() - start, code)})  # fmt: skip
    print(ratio, "->", path)


if __name__ == "__main__":
    main()
