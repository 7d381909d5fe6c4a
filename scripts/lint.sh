#!/usr/bin/env bash
# Lint and type checks, as CI runs them: ruff (pyflakes, pycodestyle, bugbear, 100 columns,
# TRY400, C901), mypy on both packages, and mypy --strict on the config, policy and frame records.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin
echo "[lint] ruff check"
"$py/ruff" check fleet actors tests dashboards scripts
echo "[lint] mypy fleet actors"
"$py/mypy" --no-error-summary
echo "[lint] mypy --strict fleet/config fleet/control/policy.py fleet/frames.py"
"$py/mypy" --strict --no-error-summary fleet/config fleet/control/policy.py fleet/frames.py
echo "[lint] ok"
