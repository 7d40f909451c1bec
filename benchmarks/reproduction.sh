#!/usr/bin/env bash
# S^4Rec as the paper wrote it (issue 19): paper protocol (configs/paper/DATASET.yaml, batch 512),
# one lane per call, one thread per run. Results go to benchmarks/results/runs/repro/, run
# directories to $S4REC_RUNS (default ~/.cache/s4rec/runs): finished runs are skipped,
# interrupted ones resume. Needs S4REC_DATA. Beauty unless a lane says otherwise.
#   screens:  today's s4rec, then each paper-literal switch alone
#   codepad:  the padding hypothesis (the ICLRec code's padding behaviour, mean-pooled z),
#             with raw dot products and raw distillation
#   codepad-controls: its controls at the same batch and behaviour (sasrec at batch 512, then
#             cl4srec on mean-pooled views)
#   controls: cl4srec on the views' z (last position) at batch 512, today's s4rec's control
#   flat:     S^4Rec on top of the ICLRec code's instance term (flattened views, dot products,
#             no intent negatives) with its padding behaviour: what iclrec-codepad keeps
#   temps:    tau1 x tau2 x tau3 over {0.1, 1}, seed 1, with $SWITCHES (the screens' best)
#   selected: the grid's validation-best configuration ($SWITCHES, temperatures included) on
#             Beauty under the tag $SELECTED (the selected run's, so that its seed 1 is found done)
#   datasets: s4rec with $SWITCHES on $DATASETS (default: Toys, Sports and ML-1M)
#   dataset-controls: its two codepad controls (as codepad-controls) on $DATASETS
# Usage: [SEEDS="1 2 3"] [SWITCHES="--set k=v ..."] [SELECTED=-TAG] [DATASETS="toys ..."]
#        [DEVICE=cuda] reproduction.sh LANE...
#        (two lanes fill two cores: reproduction.sh codepad & reproduction.sh screens temps &;
#        on a GPU machine run one lane at a time with DEVICE=cuda)
set -u
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1}
SWITCHES=${SWITCHES:-}
DATASETS=${DATASETS:-toys sports ml-1m}
CODEPAD="--set model.padding=iclrec --set augment.mask_token=padding --set model.pooling=mean"
on() {
  python benchmarks/train_run.py --threads 1 --group repro ${DEVICE:+--set train.device=$DEVICE} \
    --dataset "$@" || echo "FAILED: $*"
}
run() { on beauty "$@"; }
screens() {
  for s in $SEEDS; do
    run --method s4rec --seed "$s" --tag=-base
    run --method s4rec --seed "$s" --tag=-nearest --set s4rec.assignment=nearest
    run --method s4rec --seed "$s" --tag=-rawkd --set s4rec.distill_normalize=false
    run --method s4rec --seed "$s" --tag=-doteq3 --set s4rec.cluster_similarity=dot
    run --method s4rec --seed "$s" --tag=-doteq9 --set s4rec.similarity=dot
    run --method s4rec --seed "$s" --tag=-insert --set "augment.operators=[crop,mask,reorder,insert]"
    run --method s4rec --seed "$s" --tag=-cropout --set augment.crop_style=remove
  done
}
codepad() {
  for s in $SEEDS; do
    run --method s4rec --seed "$s" --tag=-codepad $CODEPAD
    run --method s4rec --seed "$s" --tag=-codepad-raw $CODEPAD --set s4rec.similarity=dot \
      --set s4rec.distill_normalize=false
  done
}
codepad-controls() { controls-on beauty; }
controls-on() {
  for s in $SEEDS; do
    on "$1" --method sasrec --seed "$s" --tag=-codepad-b512 $CODEPAD --set train.batch_size=512
  done
  for s in $SEEDS; do
    on "$1" --method cl4srec --seed "$s" --tag=-codepad-b512 $CODEPAD \
      --set s4rec.contrast_on=sequence --set train.batch_size=512
  done
}
controls() {
  for s in $SEEDS; do
    run --method cl4srec --seed "$s" --tag=-b512 --set s4rec.contrast_on=sequence \
      --set train.batch_size=512
  done
}
flat() {
  for s in $SEEDS; do
    run --method s4rec --seed "$s" --tag=-codepad-flat $CODEPAD --set s4rec.contrast_on=flat \
      --set s4rec.similarity=dot --set s4rec.intent_negatives=false
  done
}
temps() {
  for t1 in 0.1 1; do for t2 in 0.1 1; do for t3 in 0.1 1; do
    run --method s4rec --seed 1 --tag="-tau$t1-$t2-$t3" $SWITCHES --set s4rec.tau1=$t1 \
      --set s4rec.tau2=$t2 --set s4rec.tau3=$t3
  done; done; done
}
selected() {
  for s in $SEEDS; do run --method s4rec --seed "$s" --tag="${SELECTED:?}" $SWITCHES; done
}
datasets() {
  for d in $DATASETS; do for s in $SEEDS; do
    on "$d" --method s4rec --seed "$s" --tag=-selected $SWITCHES
  done; done
}
dataset-controls() { for d in $DATASETS; do controls-on "$d"; done; }
[ $# -gt 0 ] || { sed -n '2,23p' "$0"; exit 2; }
for lane in "$@"; do "$lane"; done
