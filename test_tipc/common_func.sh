#!/usr/bin/env bash
# Helpers shared by the TIPC scripts. A config line is "key:value"; a value may hold
# per-mode alternatives "mode1=value1|mode2=value2"; "null" means "not set".

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

# The alternative of a value that belongs to MODE ("mode=value|..."); a value without
# per-mode alternatives is returned unchanged.
function func_parser_params() {
    local value=$1
    local mode=$2
    if [[ ${value} != *"${mode}="* ]]; then
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

# The line of SECTION ("train_params", "eval_params", "infer_params") of CONFIG whose key
# is KEY (first match), or nothing.
function func_config_line() {
    local config=$1
    local section=$2
    local key=$3
    awk -v s="${section}" -v k="${key}" '
        /^=+[a-z_]+=+$/ { gsub(/=/, ""); current = $0; next }
        current == s && index($0, k ":") == 1 { print; exit }' "${config}"
}

# Value of KEY in SECTION of CONFIG for MODE ("" when the key is absent).
function func_config_value() {
    local config=$1
    local section=$2
    local key=$3
    local mode=$4
    local line
    line=$(func_config_line "${config}" "${section}" "${key}")
    func_parser_params "$(func_parser_value "${line}")" "${mode}"
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

# Append the TIPC status line for one command to the results log.
function status_check() {
    local last_status=$1
    local run_command=$2
    local run_log=$3
    if [[ ${last_status} -eq 0 ]]; then
        echo -e "\033[33m Run successfully with command - ${run_command}!\033[0m"
        echo "Run successfully with command - ${run_command}!" >> "${run_log}"
    else
        echo -e "\033[31m Run failed with command - ${run_command}!\033[0m"
        echo "Run failed with command - ${run_command}!" >> "${run_log}"
    fi
}

# True when this Paddle build sees at least one CUDA device.
function func_paddle_has_gpu() {
    local python=$1
    "${python}" -c "import sys, paddle; sys.exit(0 if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 1)" 2>/dev/null
}

# Check the chain scripts' arguments (CONFIG MODE) and the working directory; exit 2 with a
# usage message otherwise. Usage: func_check_args SCRIPT_NAME "$@"
function func_check_args() {
    local script=$1
    shift
    if [[ $# -ne 2 ]]; then
        echo "usage: bash test_tipc/${script} CONFIG MODE" >&2
        echo "  MODE: lite_train_lite_infer | whole_infer | whole_train_whole_infer" >&2
        exit 2
    fi
    if [[ ! -f $1 ]]; then
        echo "config file not found: $1" >&2
        exit 2
    fi
    if [[ $2 != lite_train_lite_infer && $2 != whole_infer && $2 != whole_train_whole_infer ]]; then
        echo "unknown MODE '$2'; expected lite_train_lite_infer, whole_infer or whole_train_whole_infer" >&2
        exit 2
    fi
}
