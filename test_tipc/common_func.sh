#!/usr/bin/env bash
# Helpers shared by the TIPC scripts.
#
# A config is read by line number, in the layout of Paddle's TIPC template (32 lines, see
# docs/test_train_inference_python.md); the lines after 32 hold what only this project's
# runner uses, read by key. A line is "key:value"; a value may hold per-mode alternatives
# "mode1=value1|mode2=value2"; "null" (or nothing) means "not set".

# Line N (1-based) of CONFIG.
function func_config_line_no() {
    local config=$1
    local number=$2
    sed -n "${number}p" "${config}"
}

# Key of a "key:value" line (everything before the first colon).
function func_parser_key() {
    local line=$1
    echo "${line%%:*}"
}

# Value of a "key:value" line (everything after the first colon).
function func_parser_value() {
    local line=$1
    if [[ ${line} != *:* ]]; then
        echo ""
        return
    fi
    echo "${line#*:}"
}

# The alternative of LINE's value that belongs to MODE ("mode=value|..."); a value without
# per-mode alternatives is returned unchanged, a mode without an alternative gives "".
function func_parser_params() {
    local value
    value=$(func_parser_value "$1")
    local mode=$2
    if [[ ${value} != *_infer=* ]]; then
        echo "${value}"
        return
    fi
    local IFS='|'
    local item
    for item in ${value}; do
        if [[ ${item} == "${mode}="* ]]; then
            echo "${item#"${mode}="}"
            return
        fi
    done
}

# Value (for MODE) of the line whose key is KEY after line 32 of CONFIG ("" when absent).
function func_project_value() {
    local config=$1
    local key=$2
    local mode=$3
    local line
    line=$(awk -v k="${key}" 'NR > 32 && index($0, k ":") == 1 { print; exit }' "${config}")
    func_parser_params "${line}" "${mode}"
}

# "key=value", or nothing when the key or the value is null/empty.
function func_set_params() {
    local key=$1
    local value=$2
    if [[ -z ${key} || ${key} == "null" || -z ${value} || ${value} == "null" ]]; then
        echo ""
    else
        echo "${key}=${value}"
    fi
}

# Print and append to RUN_LOG the TIPC status line of one command.
function status_check() {
    local last_status=$1
    local run_command=$2
    local run_log=$3
    local model_name=$4
    if [[ ${last_status} -eq 0 ]]; then
        echo -e "\033[33m Run successfully with command - ${model_name} - ${run_command}!\033[0m"
        echo "Run successfully with command - ${model_name} - ${run_command}!" >> "${run_log}"
    else
        echo -e "\033[31m Run failed with command - ${model_name} - ${run_command}!\033[0m"
        echo "Run failed with command - ${model_name} - ${run_command}!" >> "${run_log}"
    fi
}

# Print and append to RUN_LOG a line for a step that cannot run here, with the reason.
function skip_check() {
    local reason=$1
    local run_command=$2
    local run_log=$3
    local model_name=$4
    echo -e "\033[36m Skipped (${reason}) - ${model_name} - ${run_command}\033[0m"
    echo "Skipped (${reason}) - ${model_name} - ${run_command}" >> "${run_log}"
}

# True when this Paddle build sees at least one CUDA device.
function func_paddle_has_gpu() {
    local python=$1
    "${python}" -c "import sys, paddle; sys.exit(0 if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 1)" 2>/dev/null
}

# True when oneDNN can run bf16 on this CPU (AVX512-BF16 or AMX).
function func_cpu_has_bf16() {
    local python=$1
    "${python}" -c "import sys, paddle; sys.exit(0 if paddle.base.core.supports_bfloat16() else 1)" 2>/dev/null
}

TIPC_MODES="lite_train_lite_infer lite_train_whole_infer whole_infer whole_train_whole_infer"

# Check the chain scripts' arguments (CONFIG MODE) and the working directory; exit 2 with a
# usage message otherwise. Usage: func_check_args SCRIPT_NAME "$@"
function func_check_args() {
    local script=$1
    shift
    if [[ $# -lt 2 ]]; then
        echo "usage: bash test_tipc/${script} CONFIG MODE" >&2
        echo "  MODE: ${TIPC_MODES// / | }" >&2
        exit 2
    fi
    if [[ ! -f $1 ]]; then
        echo "config file not found: $1" >&2
        exit 2
    fi
    if [[ " ${TIPC_MODES} " != *" $2 "* ]]; then
        echo "unknown MODE '$2'; expected one of: ${TIPC_MODES}" >&2
        exit 2
    fi
    if [[ $(wc -l < "$1") -lt 31 ]]; then
        echo "$1: a TIPC config has at least 32 lines (the template's layout), found $(wc -l < "$1")" >&2
        exit 2
    fi
}
