#!/usr/bin/env bash
# The Table 2 grid of one dataset under the paper protocol (BCE): each method in $METHODS
# for each seed in $SEEDS, one thread per run, one run after another. Finished runs are
# skipped and interrupted ones resume, so rerunning continues the grid. Needs S4REC_DATA.
# Two lanes fill two cores, e.g.
#   METHODS="sasrec cl4srec" benchmarks/grid.sh beauty & METHODS="iclrec s4rec" benchmarks/grid.sh beauty &
# python benchmarks/table.py then writes the mean +- std of every cell into docs/results.md.
set -u
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { sed -n '2,8p' "$0"; exit 2; }
for s in ${SEEDS:-1 2 3}; do
  for m in ${METHODS:-pop bprmf gru4rec caser bert4rec sasrec cl4srec iclrec s4rec}; do
    python benchmarks/train_run.py --threads 1 --dataset "$1" --method "$m" --seed "$s" \
      || echo "FAILED: $1 $m seed $s"
  done
done
