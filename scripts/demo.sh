#!/usr/bin/env bash
# Install camfleet and run the demo fleet (real footage + synthetic cameras) on an embedded Ray.
# DEMO_DURATION=120 bash scripts/demo.sh   runs longer; extra arguments go to `camfleet run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec .venv/bin/camfleet run config/demo.yaml --duration "${DEMO_DURATION:-60}" "$@"
