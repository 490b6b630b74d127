#!/usr/bin/env bash
# The GPU checks on a lent GPU, each phase one call of the device tool, carrying the parts of
# .device-kit/ it reads (benchmarks/device_kit.sh packs the kit here first and names them). Figures land
# in $OUT.
#
#   encoders benchmarks/encoder_rates.py: the text encoders' path against the model alone, archive-sized
#            texts (about three minutes; the record lands in $OUT).
#   volume   benchmarks/stage_commands.py: the full-size demo generated, then its CPU stages on every
#            core (the default encoder), each stage's seconds and whether its bytes are those of the
#            kit's dvc.lock (a full-size run on another machine); compare the seconds with
#            results/stage_threads/cpu_full_size_demo.json (2 cores).
#   speed    an epoch over the archive's 1.17 M pairs, timed: rubert-tiny2's shape, bfloat16, batches
#            of 128, as configured (word embeddings frozen, grouped by length), then as the first GPU
#            timing ran (all weights tuned, random batches).
#   offers   benchmarks/real_offers.py with the GPU's settings (MiniLM pooled by mean, as its folder
#            says), the runs of $RUNS (benchmark:seed) side by side, each cut at $RUN_SECONDS: a json
#            each, the logs' tails in offers.log.
#
# A dry run on this machine: PYTHON_VERSION=3.11 bash benchmarks/device_kit.sh, then
# OUT=/tmp/checks DEVICE=cpu STEPS=5 bash benchmarks/gpu_checks.sh speed, and
# OUT=/tmp/checks RUNS=amazon-google:42 EXTRA_SET="train.n_folds=2 cross_encoder.max_epochs=1" bash benchmarks/gpu_checks.sh offers
# in an environment of the image's packages alone.
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=.device-kit
OUT=${OUT:?set OUT to a folder for the figures}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-walmart-amazon:42 walmart-amazon:1 walmart-amazon:2 amazon-google:42}
RUN_SECONDS=${RUN_SECONDS:-480}
STEPS=${STEPS:-100}
[[ -d $KIT/wheels ]] || { echo "error: $KIT/wheels missing; run benchmarks/device_kit.sh here and carry $KIT/wheels" >&2; exit 1; }
mkdir -p "$OUT"
# shellcheck disable=SC2046  # faiss's wheel where volume/ was carried, split into words
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$KIT"/wheels/*.whl $(compgen -G "$KIT/volume/*.whl") || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/benchmarks PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 DVC_NO_ANALYTICS=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

case ${1:-} in
speed)
    python3 -m matching.stages.generate_demo --out /tmp/demo || exit 1
    for steps in "" "--no-freeze-word-embeddings --no-group-by-length"; do
        # shellcheck disable=SC2086  # $steps holds two flags or none
        python3 benchmarks/cross_encoder_speed.py --raw /tmp/demo --device "$DEVICE" --precision bfloat16 \
            --batch-size 128 --steps "$STEPS" $steps 2>&1 | tee -a "$OUT/cross_encoder_speed.txt"
    done
    ;;
offers)
    # float16 to travel; fine-tuned from float32, as on the CPU
    python3 benchmarks/cast_weights.py "$KIT/minilm" /tmp/minilm float32 || exit 1
    read -ra runs <<<"$RUNS"
    export MATCHING_THREADS=$(($(nproc) / ${#runs[@]} > 0 ? $(nproc) / ${#runs[@]} : 1))
    for run in "${runs[@]}"; do
        benchmark=${run%%:*} seed=${run##*:}
        mkdir -p "/tmp/one_$benchmark" && ln -sfn "$PWD/$KIT/benchmarks/$benchmark" "/tmp/one_$benchmark/$benchmark"
        # shellcheck disable=SC2086  # EXTRA_SET: more key=value overrides, split on spaces
        timeout "$RUN_SECONDS" python3 benchmarks/real_offers.py --benchmarks "/tmp/one_$benchmark" \
            --matchers lightgbm cross_encoder --seeds "$seed" --out "$OUT/${benchmark}_$seed.json" \
            --set cross_encoder.model=/tmp/minilm ${EXTRA_SET:-} \
            >"/tmp/${benchmark}_$seed.log" 2>&1 &
    done
    wait
    for run in "${runs[@]}"; do
        echo "== ${run/:/ seed }" && tail -n 25 "/tmp/${run%%:*}_${run##*:}.log"
    done | tee "$OUT/offers.log"
    ;;
volume)
    [[ -f $KIT/volume/params.yaml ]] || { echo "error: $KIT/volume missing; carry it (benchmarks/device_kit.sh)" >&2; exit 1; }
    lock=()
    [[ -f $KIT/volume/dvc.lock ]] && lock=(--lock "$KIT/volume/dvc.lock")
    python3 benchmarks/stage_commands.py --root /tmp/volume --params "$KIT/volume/params.yaml" --threads "$(nproc)" \
        --stages check_params generate_demo prepare distill embed_text embed_names embed_photos features index \
        "${lock[@]}" --out "$OUT/stage_commands.json" 2>&1 | tee "$OUT/stage_commands.log"
    ;;
encoders)
    # Both text modalities of an archive-sized text set: the transformer path against the model alone.
    (cd benchmarks && python3 encoder_rates.py --device "$DEVICE" --precision bfloat16 --batch-size 256 \
        --no-static --modalities descriptions attributes --out "$OUT/encoder_rates.json") 2>&1 |
        grep -v -E "Loading|Writing|Encoding" | tee "$OUT/encoder_rates.log"
    ;;
*)
    echo "usage: bash benchmarks/gpu_checks.sh encoders|volume|speed|offers" >&2
    exit 2
    ;;
esac
