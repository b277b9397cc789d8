#!/usr/bin/env bash
# TIPC paddle2onnx chain: export the Paddle program and convert it to ONNX (export_model.py
# --format onnx: paddle2onnx, attributes repaired against the program, verified with ONNX
# Runtime), infer with ONNX Runtime, infer the same images with Paddle Inference, and compare
# the two sets of images.
#
#   bash test_tipc/test_paddle2onnx.sh test_tipc/configs/InvDN/paddle2onnx_infer_python.txt
#
# Needs requirements-deploy.txt. Status lines go to test_tipc/output/paddle2onnx/results_paddle2onnx.log;
# the exit status is non-zero when a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source test_tipc/common_func.sh

CONFIG=${1:-test_tipc/configs/InvDN/paddle2onnx_infer_python.txt}
if [[ ! -f ${CONFIG} ]]; then
    echo "config file not found: ${CONFIG}" >&2
    exit 2
fi
IFS=$'\n' read -r -d '' -a lines < "${CONFIG}"

# The layout of the config (line numbers from 0, as in the template).
model_name=$(func_parser_value "${lines[1]}")
python=$(func_parser_value "${lines[2]}")
convert_cmd=$(func_parser_value "${lines[3]}")
convert_params=""
for index in 4 5 6 7; do
    convert_params="${convert_params} $(func_set_params "$(func_parser_key "${lines[index]}")" \
        "$(func_parser_value "${lines[index]}")")"
done
inference_cmd=$(func_parser_value "${lines[8]}")
inference_params=""
for index in 9 10 11 12 13; do
    inference_params="${inference_params} $(func_set_params "$(func_parser_key "${lines[index]}")" \
        "$(func_parser_value "${lines[index]}")")"
done
onnx_result_dir=$(func_parser_value "${lines[13]}")
reference_cmd=$(func_parser_value "${lines[14]}")
reference_result_dir=$(func_parser_value "${lines[15]}")
compare_cmd=$(func_parser_value "${lines[16]}")
# The reference run reads the same model and images as the ONNX Runtime run.
reference_params=""
for index in 10 11 12; do
    reference_params="${reference_params} $(func_set_params "$(func_parser_key "${lines[index]}")" \
        "$(func_parser_value "${lines[index]}")")"
done
reference_params="${reference_params} $(func_set_params "$(func_parser_key "${lines[15]}")" "${reference_result_dir}")"

LOG_PATH=./test_tipc/output/paddle2onnx
mkdir -p "${LOG_PATH}"
status_log=${LOG_PATH}/results_paddle2onnx.log
: > "${status_log}"
failed=0

function run_step() {
    local name=$1
    local command=$2
    local log=${LOG_PATH}/${name}.log
    eval "${command}" > "${log}" 2>&1
    local status=$?
    status_check ${status} "${command}" "${status_log}" "${model_name}"
    if [[ ${status} -ne 0 ]]; then
        failed=1
        tail -n 5 "${log}" >&2
    fi
    return ${status}
}

echo "################### ${model_name}: paddle2onnx chain ###################"
run_step paddle2onnx "${python} ${convert_cmd}${convert_params}" \
    && run_step onnxruntime_infer "${python} ${inference_cmd}${inference_params}" \
    && run_step paddle_inference_infer "${python} ${reference_cmd}${reference_params}" \
    && run_step compare "${python} ${compare_cmd} --expected=${reference_result_dir} --actual=${onnx_result_dir}"
grep -h "vs dynamic model\|repaired\|wrote" "${LOG_PATH}/paddle2onnx.log" 2>/dev/null
grep -h "max difference\|agree" "${LOG_PATH}/compare.log" 2>/dev/null
exit ${failed}
