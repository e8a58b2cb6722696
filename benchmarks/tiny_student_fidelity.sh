#!/bin/bash
# The random tiny student on the demo teacher's sessions: LoRA with the head and final norm
# trained in full (modules_to_save), then next-action fidelity on held-out turns, base vs tuned.
# Usage: bash benchmarks/tiny_student_fidelity.sh WORKDIR [STEPS] [LR]   (docs/benchmarks.md)
set -euo pipefail
work=${1:?usage: tiny_student_fidelity.sh WORKDIR [STEPS] [LR]}; steps=${2:-200}; lr=${3:-5e-3}
mkdir -p "$work" && cd "$work"
prompt=$(python -c "from tracetune.eval.live.loop import DEFAULT_SYSTEM_PROMPT as p; print(p)")
tools=$(python -c "from tracetune.demo.profiles import compact_tools_file as f; print(f())")
[ -d traces ] || python -c "from pathlib import Path; from tracetune.demo.teacher import generate_demo_traces as g; g(Path('traces'), seed=0)"
[ -d tiny ] || tracetune student tiny --out tiny --seed 0
tracetune prepare traces --student tiny --out prepared --max-length 2048 --eval-fraction 0.2 \
  --tools-file "$tools" --system-prompt "$prompt"
rm -rf train && time tracetune train prepared --out train --model tiny --lr "$lr" --lora-r 16 --max-steps "$steps" \
  --batch-size 4 --grad-accumulation 1 --max-length 2048 --save-steps 100000 --report-to none \
  --modules-to-save lm_head,model.norm
tracetune eval --prepared prepared --out eval --adapter train/adapter --base tiny --max-samples 24 \
  --max-new-tokens 96 --device cpu
