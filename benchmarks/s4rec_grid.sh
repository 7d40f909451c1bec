#!/usr/bin/env bash
# S^4Rec benchmarks, one lane: the named tables run one after another with one thread.
# Finished runs are skipped and interrupted ones resume. Needs S4REC_DATA.
#   table2: sasrec (ICLRec's batch 256 and S^4Rec's 512) and s4rec on Beauty for each seed
#           in $SEEDS, then seed 1 on toys, sports, ml-1m
#   table3: the ablations on Beauty (online clustering, then K-means: SR+CSD, SR+CSD+GR), each seed in $SEEDS
#   table4: K in 32 512 64 256 on Beauty, seed 1 (K = 128 is table2's s4rec run)
#   ce:     s4rec under the CE protocol (configs/ce.yaml, its batch of 64) on Beauty, seed 1
# Usage: [SEEDS="1 2 3"] s4rec_grid.sh TABLE...   (two lanes fill two cores:
#        s4rec_grid.sh table2 & SEEDS=1 s4rec_grid.sh table3 ce table4 &)
set -u
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1 2 3}
run() { python benchmarks/train_run.py --threads 1 "$@" || echo "FAILED: $*"; }
table2() {
  for s in $SEEDS; do
    for m in sasrec s4rec; do run --dataset beauty --method "$m" --seed "$s"; done
    run --dataset beauty --method sasrec --seed "$s" --tag=-b512 --set train.batch_size=512
  done
  for d in toys sports ml-1m; do for m in sasrec s4rec; do run --dataset "$d" --method "$m" --seed 1; done; done
}
table3() {
  for s in $SEEDS; do
    for m in s4rec-no-csd s4rec-no-gr sr+csd sr+csd+gr; do run --dataset beauty --method "$m" --seed "$s"; done
  done
}
table4() {
  for k in 32 512 64 256; do
    run --dataset beauty --method s4rec --seed 1 --set s4rec.prototypes="$k" --tag="-k$k"
  done
}
ce() { run --dataset beauty --method s4rec --protocol ce --seed 1 --set train.batch_size=64; }
[ $# -gt 0 ] || { sed -n '2,11p' "$0"; exit 2; }
mkdir -p runs/logs
for t in "$@"; do "$t"; done
