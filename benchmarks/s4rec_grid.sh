#!/usr/bin/env bash
# S^4Rec benchmarks of the paper protocol (BCE, paper weights), in two one-thread lanes.
# Finished runs are skipped and interrupted ones resume. Needs S4REC_DATA.
#   table2: sasrec and s4rec, 3 seeds on Beauty, 1 seed on toys, sports, ml-1m
#   table3: the ablations with online clustering on Beauty (3 seeds)
#   table4: K in 32 64 128 256 512 on Beauty (seed 1)
# Usage: s4rec_grid.sh [table2|table3|table4 ...]
set -u
cd "$(dirname "$0")/.."
run() { python benchmarks/train_run.py --threads 1 "$@" || echo "FAILED: $*"; }
table2() {
  for s in 1 2 3; do for m in sasrec s4rec; do run --dataset beauty --method "$m" --seed "$s"; done; done
  for d in toys sports ml-1m; do for m in sasrec s4rec; do run --dataset "$d" --method "$m" --seed 1; done; done
}
table3() {
  for s in 1 2 3; do for m in s4rec-no-csd s4rec-no-gr; do run --dataset beauty --method "$m" --seed "$s"; done; done
}
table4() {
  for k in 32 64 128 256 512; do
    run --dataset beauty --method s4rec --seed 1 --set s4rec.prototypes="$k" --tag "-k$k"
  done
}
mkdir -p runs/logs
for t in ${@:-table2 table3 table4}; do "$t" > "runs/logs/s4rec_$t.log" 2>&1 & done
wait
