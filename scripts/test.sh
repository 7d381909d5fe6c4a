#!/usr/bin/env bash
# Install camfleet with its test tools, lint and type-check it, and run the whole test suite
# (unit, integration, e2e).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh tests/unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/lint.sh
exec .venv/bin/python -m pytest -ra "${@:-tests}"
