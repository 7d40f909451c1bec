#!/usr/bin/env bash
# The SASRec results of docs/results.md, in two lanes of one thread each (both cores of a 2-core
# machine). Finished runs are skipped and interrupted ones resume, so rerunning is safe.
# Needs the benchmark files: export S4REC_DATA=/path/to/data first. Usage: sasrec_grid.sh [bce|ce]
set -u
cd "$(dirname "$0")/.."
run() { python benchmarks/train_run.py --threads 1 "$@" || echo "FAILED: $*"; }
lane_bce() {
  for d in beauty toys sports ml-1m; do run --dataset "$d" --protocol bce --seed 1; done
  for s in 2 3; do run --dataset beauty --protocol bce --seed "$s"; done
}
lane_ce() {
  for d in beauty toys sports; do run --dataset "$d" --protocol ce --seed 1; done
  # ML-1M sequences average 165 items: non-overlapping windows of 50 (each target trained
  # once, with 0-49 items of context) and a shorter budget keep an epoch near a minute
  run --dataset ml-1m --protocol ce --seed 1 --set data.prefix_stride=50 --set train.epochs=40 \
    --set train.patience=10
}
mkdir -p runs/logs
lanes=${1:-"bce ce"}  # run one lane with: benchmarks/sasrec_grid.sh bce
for lane in $lanes; do "lane_$lane" > "runs/logs/lane_$lane.log" 2>&1 & done
wait
