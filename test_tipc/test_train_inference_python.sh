#!/usr/bin/env bash
# TIPC train-inference chain: train -> evaluate + predict -> export -> Paddle Inference with
# every inference switch -> check that Paddle Inference reproduces predict.py.
#
#   bash test_tipc/test_train_inference_python.sh test_tipc/configs/InvDN/train_infer_python.txt lite_train_lite_infer
#
# MODE: lite_train_lite_infer | lite_train_whole_infer | whole_infer | whole_train_whole_infer.
# Run from the repository root, after test_tipc/prepare.sh with the same arguments.
#
# The config is read by line number in the layout of Paddle's TIPC template (lines 1-32,
# docs/test_train_inference_python.md), so the template's own script runs the same file;
# lines 33 and after hold what only this runner does (multi-card script, dygraph
# prediction and alignment, inference switches, whole_infer fallback weights).
# Every step prints and appends "Run successfully/failed with command - ...!" to
# test_tipc/output/<model>/<mode>/results_python.log and writes its output to its own log
# beside it; a step this machine cannot run (GPU, bf16) gets a "Skipped (reason)" line.
# Exits non-zero when any step failed.
set -uo pipefail

if [[ ! -f test_tipc/common_func.sh ]]; then
    echo "run this script from the repository root (test_tipc/common_func.sh not found)" >&2
    exit 2
fi
source test_tipc/common_func.sh
func_check_args test_train_inference_python.sh "$@"
CONFIG=$1
MODE=$2

function line() { func_config_line_no "${CONFIG}" "$1"; }
function key_of() { func_parser_key "$(line "$1")"; }
function value_of() { func_parser_value "$(line "$1")"; }
function mode_value_of() { func_parser_params "$(line "$1")" "${MODE}"; }
function project() { func_project_value "${CONFIG}" "$1" "${MODE}"; }
function project_key() { awk -v k="$1" 'NR > 32 && index($0, k ":") == 1 { print k; exit }' "${CONFIG}"; }

# ---- lines 1-32: the template's layout
model_name=$(value_of 2)
python=$(value_of 3)
gpu_list=$(value_of 4)
device_key=$(key_of 5)
device_values=$(value_of 5)
niter_key=$(key_of 6)
niter_value=$(mode_value_of 6)
save_model_key=$(key_of 7)
train_batch_key=$(key_of 8)
train_batch_value=$(mode_value_of 8)
pretrain_key=$(key_of 9)
pretrain_value=$(value_of 9)
train_model_name=$(value_of 10)
trainer_list=$(value_of 13)
trainer_name=$(key_of 14)
trainer_py=$(value_of 14)
eval_py=$(value_of 17)
save_infer_key=$(key_of 20)
save_infer_dir=$(value_of 20)
export_weights_key=$(key_of 21)
norm_export=$(value_of 22)
whole_infer_weights=$(value_of 24)
infer_export=$(value_of 25)
inference_py=$(value_of 27)
use_gpu_key=$(key_of 28)
use_gpu_list=$(value_of 28)
infer_batch_key=$(key_of 29)
infer_batch_list=$(value_of 29)
infer_model_key=$(key_of 30)
input_key=$(key_of 31)
input_value=$(value_of 31)
benchmark_key=$(key_of 32)
benchmark_value=$(value_of 32)
# ---- lines 33+: this runner only
multi_card_py=$(project multi_card_train)
eval_mode_params=$(project eval_mode_params)
predict_py=$(project predict)
gt_key=$(project_key --gt_dir)
gt_value=$(project --gt_dir)
mkldnn_key=$(project_key --enable_mkldnn)
mkldnn_list=$(project --enable_mkldnn)
threads_key=$(project_key --cpu_threads)
threads_list=$(project --cpu_threads)
precision_key=$(project_key --precision)
precision_list=$(project --precision)
trt_key=$(project_key --use_tensorrt)
trt_list=$(project --use_tensorrt)
compare_py=$(project compare)
whole_infer_fallback=$(project whole_infer_fallback)
fleet_port=$(project fleet_port)

LOG_PATH=./test_tipc/output/${model_name}/${MODE}
status_log=${LOG_PATH}/results_python.log
# Each run starts from an empty output folder of its own (written by this script only), so
# the trainer never meets an old experiment of the same name.
rm -rf "${LOG_PATH}"
mkdir -p "${LOG_PATH}"
echo "==== ${model_name} ${MODE} $(date '+%Y-%m-%d %H:%M:%S') config ${CONFIG}" >> "${status_log}"

steps=0
failures=0
skips=0
# run_step NAME COMMAND: run COMMAND with its output in LOG_PATH/NAME.log, record the status.
function run_step() {
    local name=$1
    local command=$2
    local step_log="${LOG_PATH}/${name}.log"
    local start=${SECONDS}
    echo "---- ${name}: ${command}"
    eval "${command}" > "${step_log}" 2>&1
    local status=$?
    steps=$((steps + 1))
    status_check ${status} "${command} > ${step_log} 2>&1" "${status_log}" "${model_name}"
    if [[ ${status} -ne 0 ]]; then
        failures=$((failures + 1))
        echo "---- last lines of ${step_log}:"
        tail -n 40 "${step_log}"
    fi
    echo "---- ${name}: $((SECONDS - start)) s"
}

if func_paddle_has_gpu "${python}"; then has_gpu=1; else has_gpu=0; fi
# As the template: lite inference runs on infer.py's default input (the real SIDD block of
# docs/demo, scored against its GT); the whole-infer modes on the image(s) of line 31.
DEMO_INPUT=docs/demo/Noisy
DEMO_GT=docs/demo/GT
if [[ ${MODE} == *whole_infer ]]; then
    infer_input=${input_value}
    infer_gt=${gt_value}
else
    infer_input=""
    infer_gt=""
fi
if func_cpu_has_bf16 "${python}"; then has_bf16=1; else has_bf16=0; fi

# infer_one SAVE_DIR MODEL_DIR DEVICE SWITCHES NAME: one infer.py run, then its alignment
# with predict.py (fp32 only: bf16 rounds the coupling states, see deploy/paddle_inference.py).
function infer_one() {
    local save_dir=$1 model_dir=$2 use_gpu=$3 switches=$4 name=$5 precision=$6 batch_size=$7
    local result="${save_dir}/${name}"
    local cmd="${python} ${inference_py} ${use_gpu_key}=${use_gpu} ${switches} \
$(func_set_params "${infer_model_key}" "${model_dir}") $(func_set_params "${infer_batch_key}" "${batch_size}") \
$(func_set_params "${input_key}" "${infer_input}") $(func_set_params "${gt_key}" "${infer_gt}") \
--result_dir=${result} $(func_set_params "${benchmark_key}" "${benchmark_value}")"
    run_step "${name}" "${cmd}"
    if [[ ${precision} == fp32 && ${reference} -eq 1 && -n ${compare_py} && -n ${predict_py} ]]; then
        run_step "compare_predict_${name}" "${python} ${compare_py} --expected=${save_dir}/predict --actual=${result}"
    fi
}

# export_and_infer SAVE_DIR WEIGHTS EXPORT_SCRIPT MATRIX: predict (dygraph reference),
# export, then Paddle Inference for each device, batch size and switch, each fp32 run
# compared with predict.py. MATRIX=1: every combination of the CPU switches; 0 (the chain's
# other training entries): the first value of each, without the dygraph reference.
function export_and_infer() {
    local save_dir=$1 weights=$2 export_py=$3 matrix=$4
    reference=${matrix}
    if [[ -n ${predict_py} && ${reference} -eq 1 ]]; then
        run_step "predict_${save_dir##*/}" "${python} ${predict_py} $(func_set_params "${pretrain_key}" "${weights}") \
$(func_set_params "${input_key}" "${infer_input:-${DEMO_INPUT}}") $(func_set_params "${gt_key}" "${infer_gt:-${DEMO_GT}}") \
--result_dir=${save_dir}/predict"
    fi
    if [[ -z ${export_py} || ${export_py} == null ]]; then
        return
    fi
    local model_dir="${save_dir}/inference"
    run_step "export_${save_dir##*/}" "${python} ${export_py} $(func_set_params "${export_weights_key}" "${weights}") \
$(func_set_params "${save_infer_key}" "${model_dir}")"

    local use_gpu batch_size mkldnn threads precision trt name
    for use_gpu in ${use_gpu_list//|/ }; do
        for batch_size in ${infer_batch_list//|/ }; do
            if [[ ${use_gpu} == True ]]; then
                for trt in ${trt_list//|/ }; do
                    name="python_infer_gpu_usetrt_${trt}_precision_fp32_batchsize_${batch_size}"
                    if [[ ${has_gpu} -eq 0 ]]; then
                        skip_check "this Paddle build sees no GPU" "${inference_py} ${use_gpu_key}=True ${trt_key}=${trt}" "${status_log}" "${model_name}"
                        continue
                    fi
                    infer_one "${save_dir}" "${model_dir}" True "$(func_set_params "${trt_key}" "${trt}")" "${name}" fp32 "${batch_size}"
                done
                continue
            fi
            local mkldnn_values=${mkldnn_list//|/ } threads_values=${threads_list//|/ } precision_values=${precision_list//|/ }
            if [[ ${matrix} -eq 0 ]]; then
                mkldnn_values=${mkldnn_values%% *}; threads_values=${threads_values%% *}; precision_values=${precision_values%% *}
            fi
            for mkldnn in ${mkldnn_values}; do
                for threads in ${threads_values}; do
                    for precision in ${precision_values}; do
                        name="python_infer_cpu_usemkldnn_${mkldnn}_threads_${threads}_precision_${precision}_batchsize_${batch_size}"
                        local switches="$(func_set_params "${mkldnn_key}" "${mkldnn}") \
$(func_set_params "${threads_key}" "${threads}") $(func_set_params "${precision_key}" "${precision}")"
                        if [[ ${precision} == bf16 && ${mkldnn} == False ]]; then
                            skip_check "bf16 runs through oneDNN: needs ${mkldnn_key}=True" "${inference_py} ${switches}" "${status_log}" "${model_name}"
                            continue
                        fi
                        if [[ ${precision} == bf16 && ${has_bf16} -eq 0 ]]; then
                            skip_check "this CPU has neither AVX512-BF16 nor AMX" "${inference_py} ${switches}" "${status_log}" "${model_name}"
                            continue
                        fi
                        infer_one "${save_dir}" "${model_dir}" False "${switches}" "${name}" "${precision}" "${batch_size}"
                    done
                done
            done
        done
    done
}

if [[ ${MODE} == whole_infer ]]; then
    # No training: the weights of line 24 (the converted official weights), else the
    # fallback (the shipped demo model), else a skip line naming both.
    weights=""
    for candidate in ${whole_infer_weights} ${whole_infer_fallback}; do
        if [[ -f ${candidate} ]]; then
            weights=${candidate}
            break
        fi
    done
    if [[ -z ${weights} ]]; then
        skip_check "no weights: neither ${whole_infer_weights} nor ${whole_infer_fallback} exists; convert the official weights (docs/evaluation.md: Official weights)" \
            whole_infer "${status_log}" "${model_name}"
        exit 0
    fi
    echo "==== whole_infer weights: ${weights}" | tee -a "${status_log}"
    export_and_infer "$(dirname "${save_infer_dir}")" "${weights}" "${infer_export}" 1
else
    first_entry=1
    for gpu in ${gpu_list//|/ }; do
        # "ips;devices" is several nodes; "a,b" several devices of one node.
        ips=""
        nodes=1
        if [[ ${gpu} == *";"* ]]; then
            ips=${gpu%%;*}
            gpu=${gpu#*;}
            IFS=',' read -r -a node_array <<< "${ips}"
            nodes=${#node_array[@]}
        fi
        for trainer in ${trainer_list//|/ }; do
            if [[ ${trainer} != "${trainer_name}" ]]; then
                echo "trainer ${trainer} of line 13 has no script line (line 14 is ${trainer_name})" >&2
                exit 2
            fi
            autocast=False
            [[ ${trainer} == amp_train ]] && autocast=True
            tag="${trainer}_gpus_${gpu}_autocast_${autocast}_nodes_${nodes}"
            save_dir="${LOG_PATH}/${tag}.log"   # the template's name: a folder ending in .log
            weights="${save_dir}/${train_model_name}"
            device_value=$(echo "${device_values}" | cut -d'|' -f1)
            if [[ ${autocast} == True && ${has_gpu} -eq 0 ]]; then
                # training/trainer.py MixedPrecision: Paddle has no bf16 training on CPUs.
                skip_check "mixed-precision training needs a GPU: Paddle has no bf16 training on the CPU, so no weights to evaluate, export or infer" \
                    "${trainer_py} gpus ${gpu}" "${status_log}" "${model_name}"
                skips=$((skips + 1))
                continue
            fi
            params="$(func_set_params "${device_key}" "${device_value}") $(func_set_params "${save_model_key}" "${save_dir}") \
$(func_set_params "${niter_key}" "${niter_value}") $(func_set_params "${train_batch_key}" "${train_batch_value}") \
$(func_set_params "${pretrain_key}" "${pretrain_value}")"
            if [[ ${nodes} -gt 1 ]]; then
                # Several nodes: on one machine, every node of a loopback list is started
                # here (one process each); on real nodes each runs its own command (docs).
                start=${SECONDS}
                pids=()
                for ((rank = 0; rank < nodes; rank++)); do
                    cmd="${python} -m paddle.distributed.launch --master=${node_array[0]}:${fleet_port} \
--nnodes=${nodes} --rank=${rank} --nproc_per_node=1 --log_dir=${save_dir}_launch_rank${rank} ${trainer_py} ${params}"
                    echo "---- ${tag} node ${rank}: ${cmd}"
                    eval "${cmd}" > "${LOG_PATH}/${tag}_train_node${rank}.log" 2>&1 &
                    pids+=($!)
                done
                status=0
                for pid in "${pids[@]}"; do wait "${pid}" || status=1; done
                steps=$((steps + 1))
                status_check ${status} "${cmd//--rank=$((nodes - 1))/--rank=0..$((nodes - 1))}" "${status_log}" "${model_name}"
                if [[ ${status} -ne 0 ]]; then
                    failures=$((failures + 1))
                    tail -n 30 "${save_dir}"_launch_rank*/* 2>/dev/null
                fi
                echo "---- ${tag}_train: $((SECONDS - start)) s"
            elif [[ ${gpu} == *,* ]]; then
                # Several devices of one machine: one process each; on a CPU-only machine
                # that many gloo processes (Paddle's launcher refuses --gpus there).
                script=${multi_card_py:-${trainer_py}}
                if [[ ${has_gpu} -eq 1 ]]; then
                    launch="--gpus=${gpu}"
                else
                    IFS=',' read -r -a device_array <<< "${gpu}"
                    launch="--nproc_per_node=${#device_array[@]}"
                fi
                run_step "${tag}_train" "${python} -m paddle.distributed.launch ${launch} --log_dir=${save_dir}_launch ${script} ${params}"
            else
                if [[ ${has_gpu} -eq 1 ]]; then export CUDA_VISIBLE_DEVICES=${gpu}; fi
                run_step "${tag}_train" "${python} ${trainer_py} ${params}"
            fi
            if [[ -n ${eval_py} && ${eval_py} != null ]]; then
                run_step "${tag}_eval" "${python} ${eval_py} ${eval_mode_params} \
$(func_set_params "${pretrain_key}" "${weights}") --result_dir=${save_dir}/eval"
            fi
            export_and_infer "${save_dir}" "${weights}" "${norm_export}" "${first_entry}"
            first_entry=0
            unset CUDA_VISIBLE_DEVICES
        done
    done
fi

echo "==== ${MODE}: ${steps} steps, ${failures} failed, ${skips} training entries skipped (status lines in ${status_log})"
echo "==== ${model_name} ${MODE}: ${steps} steps, ${failures} failed, ${skips} training entries skipped" >> "${status_log}"
if [[ ${failures} -ne 0 || ( ${steps} -eq 0 && ${skips} -eq 0 ) ]]; then
    exit 1
fi
