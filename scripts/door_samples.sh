#!/usr/bin/env bash
# Unedited samples of a model through every door, as a user meets them, for judging by eye:
# five `scribe complete` prompts at its defaults, three chat requests (`chat --plain`), each
# built-in template once, and ghost text for a Python file (the JSONL editor bridge).
#
#   scripts/door_samples.sh                 # the embedded default model
#   scripts/door_samples.sh --model gpt2    # any model scribe can load
#
# Runs in a throwaway SCRIBE_HOME, so no conversation or setting of yours is touched.
set -uo pipefail
cd "$(dirname "$0")/.."
SCRIBE=${SCRIBE:-.venv/bin/scribe}
SCRIBE_HOME=$(mktemp -d)
export SCRIBE_HOME
trap 'rm -rf "$SCRIBE_HOME"' EXIT
section() { printf '\n### %s\n' "$1"; }

section "scribe complete (defaults)"
for prompt in "Dear Ms. Patel,\n\nThank you for" \
              "How to make a good cup of coffee: first," \
              "The city council voted on Tuesday to" \
              "I bought this keyboard last month and" \
              "It was a dark and stormy night"; do
  printf -- '- prompt: %s\n  output: ' "$prompt"
  printf '%b' "$prompt" | "$SCRIBE" complete "$@" 2>&1
  echo
done

section "scribe chat --plain (defaults)"
for request in "Write a short paragraph about autumn in the city." \
               "Give me three tips for writing a cover letter." \
               "What is a language model?"; do
  printf -- '- request: %s\n' "$request"
  printf '%s\n/quit\n' "$request" | "$SCRIBE" chat --plain "$@" 2>&1 | sed 's/^/  /'
done

section "templates (scribe complete -t NAME)"
text="the committee have decided that there meeting will be moved to thursday, because most of members is away."
for file in engine/prompting/builtin_templates/*.toml; do
  name=$(basename "$file" .toml)
  [ "$name" = chat ] && continue  # the chat requests above
  printf -- '- %s: ' "$name"
  printf '%s' "$text" | "$SCRIBE" complete -t "$name" "$@" 2>&1
  echo
done

section "ghost text in a Python file (scribe serve, the editor bridge)"
python3 - "$SCRIBE" "$@" <<'EOF'
import json, subprocess, sys
prefixes = ["import os\n\n\ndef read_config(path):\n    ",
            "def mean(values):\n    total = 0\n    for v in values:\n        ",
            "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        "]
lines = [json.dumps({"id": i, "prefix": p, "suffix": "\n", "language": "python",
                     "document": f"file:///sample{i}.py"})
         for i, p in enumerate(prefixes)]
out = subprocess.run([sys.argv[1], "serve", *sys.argv[2:]], input="\n".join(lines) + "\n",
                     capture_output=True, text=True, timeout=300).stdout
replies = {m.get("id"): m for m in map(json.loads, out.splitlines())}
for i, prefix in enumerate(prefixes):
    reply = replies.get(i, {})
    print(f"- after {prefix[-40:]!r}: {reply.get('text', reply.get('error'))!r}")
EOF
