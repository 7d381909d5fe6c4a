#!/usr/bin/env bash
# Check scripts/tfjs_to_onnx.py against tf2onnx on real frames: converts NanoDet's TF.js graph
# with tf2onnx (TensorFlow in a throwaway environment, never camfleet's) and compares both ONNX
# files' six outputs on every 40th frame of vtest.avi. A maintainer's check, not part of set-up:
# about 600 MB of TensorFlow. Run after scripts/setup.sh (it needs models/nanodet.*).
#   bash scripts/check_nanodet_conversion.sh [/tmp/camfleet-tf2onnx]
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="${1:-/tmp/camfleet-tf2onnx}"
models="${CAMFLEET_MODELS:-models}"
if [ ! -x "$env_dir/bin/python" ]; then
  python3 -m venv "$env_dir"
  "$env_dir/bin/pip" install -q tensorflow-cpu==2.21.0 tf2onnx==1.17.0
fi
# NumPy 2 removed np.product, which tf2onnx 1.17 still calls: alias it before importing it.
"$env_dir/bin/python" - "$models/nanodet.json" "$env_dir/nanodet-tf2onnx.onnx" <<'PY'
import sys
import numpy as np
np.product = np.prod
import tf2onnx.convert
sys.argv = ["tf2onnx", "--tfjs", sys.argv[1], "--output", sys.argv[2], "--opset", "13"]
tf2onnx.convert.main()
PY
.venv/bin/python - "$models/nanodet.onnx" "$env_dir/nanodet-tf2onnx.onnx" <<'PY'
import sys
import cv2
import numpy as np
import onnxruntime as ort
ours, theirs = (ort.InferenceSession(p, providers=["CPUExecutionProvider"]) for p in sys.argv[1:])
their_input = theirs.get_inputs()[0].name
video = cv2.VideoCapture("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
worst, frames, index = {}, 0, -1
while True:
    ok, frame = video.read()
    index += 1
    if not ok:
        break
    if index % 40:
        continue
    pixels = cv2.resize(frame, (416, 416), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = ((pixels - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]).astype(np.float32)
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    a = dict(zip([o.name for o in ours.get_outputs()], ours.run(None, {"input_1": x})))
    b = dict(zip([o.name.split(":")[0] for o in theirs.get_outputs()],
                 theirs.run(None, {their_input: x})))
    for name, value in a.items():
        worst[name] = max(worst.get(name, 0.0), float(np.abs(value - b[name]).max()))
    frames += 1
print(f"{frames} frames of vtest.avi; largest difference per output, ours vs tf2onnx:")
for name, diff in sorted(worst.items()):
    print(f"  {name}: {diff:.2e}")
sys.exit(0 if max(worst.values()) < 1e-4 else 1)
PY
