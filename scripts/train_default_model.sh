#!/usr/bin/env bash
# Reproduces scribe's embedded default model (engine/default_model/) from public-domain text.
#
#   scripts/train_default_model.sh            # about an hour on 2 CPU cores
#
# It needs these Debian packages (installed with apt-get when missing):
#   sword-text-web diatheke jargon-text dict-devil python3.11-doc
#
# 1. scripts/build_corpus.py rebuilds the corpus in build/corpus/ (git-ignored) and records each
#    source's package and licence in build/corpus/SOURCES.json.
# 2. One `scribe finetune --from-scratch` command trains the tokenizer and the model (below).
# 3. The model files are copied into engine/default_model/, and the card (scribe.json) gets the
#    corpus sources, their licences and the word list used by the tests.
# Environment: STEPS (training steps, default 1000), THREADS (CPU threads, default 1: on a
# shared 2-core machine one thread was fastest), OUT (run folder, default build/default-model).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
SCRIBE=.venv/bin/scribe
STEPS=${STEPS:-1000}
THREADS=${THREADS:-1}
OUT=${OUT:-build/default-model}
DEST=engine/default_model

PACKAGES=(sword-text-web diatheke jargon-text dict-devil python3.11-doc)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

"$PY" scripts/build_corpus.py --out build/corpus

# The recipe. 6 layers x 256 wide, an 8k byte-level BPE, 1024 positions; blocks of 512 tokens
# keep a step cheap on a CPU. Small steps (2 blocks) give more updates for the same CPU time,
# which is what a short run needs. No dropout: the run sees about a quarter of the corpus, so
# there is nothing to over-fit. A small validation split keeps evaluations cheap.
"$SCRIBE" finetune build/corpus --out "$OUT" --overwrite \
  --from-scratch 6x256 --vocab-size 8192 --n-positions 1024 \
  --block-size 512 --batch-size 2 --max-steps "$STEPS" --lr 2e-3 --warmup 50 --dropout 0 \
  --val-fraction 0.003 --test-fraction 0.02 --eval-every 125 --patience 0 \
  --sample-prompt "It was a dark and stormy night" \
  --sample-prompt "The purpose of this document is" \
  --seed 0 --threads "$THREADS" --save-dtype float16

# Install into the package: only what scribe loads (no report or run folder).
rm -f "$DEST"/*.json "$DEST"/*.safetensors "$DEST"/*.txt
for f in config.json generation_config.json model.safetensors tokenizer.json \
         tokenizer_config.json special_tokens_map.json; do
  if [ -f "$OUT/$f" ]; then cp "$OUT/$f" "$DEST/$f"; fi
done
chmod 644 "$DEST"/*  # save_pretrained leaves the weights readable by their owner only
"$PY" - "$OUT" "$DEST" <<'EOF'
"""Extend the run's card with the corpus sources and licences; ship the corpus word list."""
import json
import shutil
import sys
from pathlib import Path

out, dest = Path(sys.argv[1]), Path(sys.argv[2])
card = json.loads((out / "scribe.json").read_text(encoding="utf-8"))
sources = json.loads(Path("build/corpus/SOURCES.json").read_text(encoding="utf-8"))
card["name"] = "default"
card["description"] = (
    "scribe's embedded default model: a small GPT-2-architecture model trained from scratch on "
    "public-domain and permissively licensed English (Bible, Shakespeare, the Jargon File, "
    "The Devil's Dictionary, Python documentation prose). Modest quality: for trying scribe "
    "offline; use --model gpt2 or a finetuned model for real writing."
)
card["recipe"] = "scripts/train_default_model.sh"
card["corpus"] = sources
card["licence"] = "MIT (model weights); training text public domain or PSF-2.0, see corpus"
# Paths in the card are relative to the repository, not to the machine that trained it.
root = str(Path.cwd()) + "/"
card["command"] = card.get("command", "").replace(root, "")
# One line per corpus source instead of one per file (there are hundreds).
per_folder: dict = {}
for f in card.get("data", {}).get("files", []):
    folder = str(Path(f["path"].replace(root, "")).parent)
    entry = per_folder.setdefault(folder, {"folder": folder, "files": 0, "documents": 0})
    entry["files"] += 1
    entry["documents"] += f["documents"]
card.setdefault("data", {})["files"] = list(per_folder.values())
(dest / "scribe.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
shutil.copy("build/corpus_words.txt", dest / "words.txt")
# Sampling defaults like scribe complete's, for anyone loading the folder with transformers.
gen_file = dest / "generation_config.json"
gen = json.loads(gen_file.read_text(encoding="utf-8")) if gen_file.exists() else {}
gen.pop("_from_model_config", None)
gen.update(do_sample=True, temperature=0.8, top_k=40, top_p=0.95, max_new_tokens=128)
gen_file.write_text(json.dumps(gen, indent=2) + "\n", encoding="utf-8")
print(f"installed {dest}: test perplexity {card['metrics']['test_perplexity_after']:.1f}")
EOF
du -ch "$DEST"/* | tail -1
