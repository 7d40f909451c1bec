#!/usr/bin/env bash
# On a GPU machine: the device-parametrised tests on the GPU, then epoch and evaluation
# times in fp32 and bf16 and one full S^4Rec Beauty run (benchmarks/device_check.py).
#   bash benchmarks/gpu_check.sh                    # DEVICE=cuda NAME=gpu
#   DEVICE=cpu NAME=smoke bash benchmarks/gpu_check.sh --dataset synthetic --repeats 1
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
S4REC_TEST_DEVICE="$DEVICE" python -m pytest -q tests/test_runtime.py
if [ "$#" -eq 0 ]; then set -- --full; fi
python benchmarks/device_check.py --device "$DEVICE" --name "${NAME:-gpu}" "$@"
