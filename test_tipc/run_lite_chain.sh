#!/usr/bin/env bash
# The main job in one command: prepare the mini SIDD data, then run the TIPC chain
# (train -> evaluate/predict -> export -> Paddle Inference).
#
#   bash test_tipc/run_lite_chain.sh --install                # install (tools/install.sh), then run
#   bash test_tipc/run_lite_chain.sh                          # synthetic SIDD-like data
#   SIDD_MINI_DIR=../shared/SIDD_mini bash test_tipc/run_lite_chain.sh   # real SIDD patches
#
# An optional argument selects another TIPC mode (default lite_train_lite_infer).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --install ]]; then
    shift
    bash tools/install.sh
fi

CONFIG=test_tipc/configs/InvDN/train_infer_python.txt
MODE=${1:-lite_train_lite_infer}
start=${SECONDS}
bash test_tipc/prepare.sh "${CONFIG}" "${MODE}"
bash test_tipc/test_train_inference_python.sh "${CONFIG}" "${MODE}"
echo "TIPC ${MODE} passed in $((SECONDS - start)) s"
