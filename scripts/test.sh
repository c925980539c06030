#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite, plus ruff.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
