#!/usr/bin/env bash
# Benchmarks for a machine WITH a GPU (none is here): ONNX Runtime's CUDA provider for the
# detectors, placement by num_gpus, and the hand-off next to a GPU-fast model.
#   bash scripts/bench_gpu.sh [out-folder]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/bench-gpu-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
bash scripts/setup.sh demo
# onnxruntime-gpu replaces the CPU build in the venv (same import name).
.venv/bin/python -m pip install -q --upgrade onnxruntime-gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
.venv/bin/python - <<'PY' | tee "$out/providers.txt"
import onnxruntime as ort
print("providers:", ort.get_available_providers())
assert "CUDAExecutionProvider" in ort.get_available_providers(), "no CUDA provider"
PY
# A fleet whose face detectors ask Ray for half a GPU each and run on CUDA.
sed -e 's/face: {\(.*\)}/face: {\1, num_gpus: 0.5, providers: [CUDAExecutionProvider]}/' \
  config/synthetic.yaml > "$out/gpu-fleet.yaml"
.venv/bin/camfleet validate "$out/gpu-fleet.yaml"
.venv/bin/camfleet run "$out/gpu-fleet.yaml" --duration 60 --run-dir "$out/run" | tee "$out/run.log"
.venv/bin/camfleet report "$out/run" -o "$out/run.png"
.venv/bin/camfleet bench transport --json "$out/transport.json" | tee "$out/transport.md"
echo "results in $out"
