#!/usr/bin/env bash
# Sets up a development/usage environment on a fresh clone: system tools the tests drive
# (tmux, neovim, vim, node), a virtual environment in .venv with scribe installed editable,
# and the VS Code extension's node modules from its lockfile. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in tmux nvim vim node npm; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  pkgs=()
  for tool in "${need[@]}"; do
    case "$tool" in nvim) pkgs+=(neovim) ;; node) pkgs+=(nodejs) ;; *) pkgs+=("$tool") ;; esac
  done
  echo "setup: installing ${pkgs[*]}" >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# torch is pinned to the CPU wheel; a looser pin would pull a multi-GB CUDA build.
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
  | grep -v -E "^WARNING: Location .* is ignored" || true
.venv/bin/python -c "import scribe.engine, torch, transformers" >/dev/null

if [ -f plugins/editors/vscode/package-lock.json ] && command -v npm >/dev/null 2>&1; then
  (cd plugins/editors/vscode && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
