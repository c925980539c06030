#!/usr/bin/env bash
# The pilot that chose the default model's recipe (scripts/train_default_model.sh): short runs
# of the same model on a 15% sample of the corpus, two at a time on one thread each, compared by
# held-out bits per byte (bench/bpb.py). Run after scripts/train_default_model.sh has built
# build/corpus (or with the corpus built by hand):
#
#   scripts/pilot_default_model.sh          # about 15 minutes on 2 cores; table in build/pilot/
#
# A: AdamW beta2 0.95, cosine (the previous recipe)   B: AdamW beta2 0.99, cosine
# C: Muon for the block matrices + AdamW 0.99, cosine D: AdamW 0.99, warmup-stable-decay: constant
#    at 256-token blocks for 80% of the tokens, then a linear decay to zero at 1024-token blocks
#    from that model (no re-warm)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
SCRIBE=.venv/bin/scribe
STEPS=${STEPS:-240}
DIR=build/pilot
mkdir -p "$DIR"
if [ ! -d "$DIR/corpus" ]; then
  "$PY" - <<'EOF'
import random
from pathlib import Path

rng = random.Random(0)
for folder in sorted(p for p in Path("build/corpus").iterdir() if p.is_dir()):
    dest = Path("build/pilot/corpus") / folder.name
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(folder.iterdir()):
        if f.suffix == ".txt" and rng.random() < 0.15:
            (dest / f.name).symlink_to(f.resolve())
        elif f.suffix == ".jsonl":  # task files: every 7th example
            lines = f.read_text(encoding="utf-8").splitlines()[::7]
            (dest / f.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
EOF
fi

COMMON=(--from-scratch 6x256 --vocab-size 8192 --n-positions 1024 --fim 0.5 --dropout 0
        --val-fraction 0.01 --test-fraction 0.01 --patience 0 --sample-every 0 --seed 0
        --threads 1 --save-dtype float32 --lr 2e-3 --warmup 0.1 --eval-every 1000)
DECAY=$((STEPS / 5))  # D's decay phase: a fifth of the tokens, at 1024-token blocks

run() {  # run NAME ARGS...
  local name=$1; shift
  [ -f "$DIR/$name/scribe.json" ] && return 0
  "$SCRIBE" finetune "$DIR/corpus" --out "$DIR/$name" --overwrite "$@" > "$DIR/$name.log" 2>&1
}

decay() {  # D's second half: the constant-rate model decayed at 1024-token blocks
  [ -f "$DIR/D/scribe.json" ] && return 0
  "$SCRIBE" finetune "$DIR/corpus" --out "$DIR/D" --overwrite --model "$DIR/D-stable" \
    --block-size 1024 --batch-size 2 --max-steps "$DECAY" --schedule linear --warmup 0 \
    --adam-beta2 0.99 --lr 2e-3 --fim 0.5 --dropout 0 --val-fraction 0.01 --test-fraction 0.01 \
    --patience 0 --sample-every 0 --seed 0 --threads 1 --eval-every 1000 > "$DIR/D.log" 2>&1
}

B256=(--block-size 256 --batch-size 8)
echo "pilot round 1 $(date -u +%T)"
run A "${B256[@]}" --max-steps "$STEPS" --adam-beta2 0.95 "${COMMON[@]}" &
run B "${B256[@]}" --max-steps "$STEPS" --adam-beta2 0.99 "${COMMON[@]}" &
wait
echo "pilot round 2 $(date -u +%T)"
run C "${B256[@]}" --max-steps "$STEPS" --adam-beta2 0.99 --optimizer muon "${COMMON[@]}" &
(run D-stable "${B256[@]}" --max-steps $((STEPS - DECAY)) --adam-beta2 0.99 --schedule constant \
   "${COMMON[@]}" && decay) &
wait
echo "pilot scoring $(date -u +%T)"
"$PY" bench/bpb.py --model "$DIR/A" --model "$DIR/B" --model "$DIR/C" --model "$DIR/D" \
  --json "$DIR/bpb.json" | tee "$DIR/table.txt"
