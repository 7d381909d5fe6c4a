"""scripts/tfjs_to_onnx.py: a TF.js graph model becomes an ONNX model that computes the same.

The graph here is made by the test (random weights, every op the converter handles, NHWC as
TF.js has it), and its expected output is computed in NumPy/OpenCV from TensorFlow's
definitions of the ops. NanoDet itself (the graph set-up converts) is checked in
``test_nanodet.py`` and against tf2onnx in docs/benchmarks.md.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import tfjs_to_onnx  # noqa: E402

RNG = np.random.default_rng(7)
NHWC, VALID = base64.b64encode(b"NHWC").decode(), base64.b64encode(b"VALID").decode()


class Graph:
    """A TF.js graph-model JSON and its weight shard, built node by node."""

    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.weights: list[tuple[dict, bytes]] = []

    def const(self, name: str, value: np.ndarray, fp16: bool = False) -> str:
        spec: dict = {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
        if fp16:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            data = value.astype(np.float16).tobytes()
        else:
            data = value.tobytes()
        self.weights.append((spec, data))
        self.nodes.append({"name": name, "op": "Const", "attr": {}})
        return name

    def op(self, name: str, op: str, inputs: list[str], **attr: dict) -> str:
        self.nodes.append({"name": name, "op": op, "input": inputs, "attr": attr})
        return name

    def write(self, folder: Path, inputs: dict, outputs: list[str]) -> Path:
        (folder / "g.bin").write_bytes(b"".join(d for _, d in self.weights))
        model = {
            "format": "graph-model",
            "modelTopology": {"node": self.nodes[::-1]},  # any order: the converter sorts
            "weightsManifest": [{"paths": ["g.bin"], "weights": [s for s, _ in self.weights]}],
            "signature": {"inputs": inputs, "outputs": {o: {"name": o} for o in outputs}},
        }
        path = folder / "g.json"
        path.write_text(json.dumps(model))
        return path


def ints(*values: int) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def conv_nhwc(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """TF's Conv2D, NHWC, VALID, HWIO kernel (groups when the kernel has fewer in-channels)."""
    kh, kw, cin, cout = kernel.shape
    groups = x.shape[3] // cin
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, cout), np.float64)
    per = cout // groups
    for g in range(groups):
        xs = x[..., g * cin:(g + 1) * cin]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
                out[..., g * per:(g + 1) * per] += patch @ kernel[i, j, :, g * per:(g + 1) * per]
    return out


def resize_nhwc(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """TF's ResizeBilinear with half_pixel_centers (OpenCV's INTER_LINEAR samples the same)."""
    return np.stack([cv2.resize(img.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                     .reshape(h, w, -1) for img in x])


def build(folder: Path) -> tuple[Path, dict[str, np.ndarray]]:
    g = Graph()
    k1 = RNG.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32)
    k2 = RNG.normal(0, 0.3, (3, 3, 4, 8)).astype(np.float32)  # 2 groups over 8 channels
    bias = RNG.normal(0, 0.1, 8).astype(np.float32)
    g.const("perm_nhwc", np.array([0, 2, 3, 1], np.int32))
    g.const("perm_nchw", np.array([0, 3, 1, 2], np.int32))
    g.const("pads", np.array([[0, 0], [0, 0], [1, 1], [1, 1]], np.int32))
    g.const("k1", k1, fp16=True)
    g.const("k2", k2)
    g.const("bias", bias, fp16=True)
    g.const("up", np.array([12, 12], np.int32))  # twice conv2's 6 x 6 at the graph's size
    g.const("sizes", np.array([3, 5], np.int32))
    g.const("axis", np.array(-1, np.int32))
    # a reshape target computed from constants, as NanoDet's graph does it
    g.const("shape_base", np.array([1, 8, -1], np.int32))
    g.const("where", np.zeros((0, 1), np.int32))
    g.const("count", np.array([3], np.int32))
    g.const("none", np.zeros(0, np.int32))
    g.const("zero", np.array(0, np.int32))
    g.op("dense", "SparseToDense", ["where", "count", "none", "zero"])
    g.op("shape", "AddV2", ["shape_base", "dense"])
    g.op("input_1", "Placeholder", [], shape={"shape": {"dim": [{"size": "1"}, {"size": "3"},
                                                                {"size": "16"}, {"size": "16"}]}})
    g.op("pad", "Pad", ["input_1", "pads"])
    g.op("t1", "Transpose", ["pad", "perm_nhwc"])
    g.op("conv1", "Conv2D", ["t1", "k1"], data_format={"s": NHWC}, padding={"s": VALID},
         strides=ints(1, 2, 2, 1), dilations=ints(1, 1, 1, 1))
    g.op("biased", "Add", ["conv1", "bias"])
    g.op("act", "LeakyRelu", ["biased"], alpha={"f": 0.1})
    g.op("conv2", "Conv2D", ["act", "k2"], data_format={"s": NHWC}, padding={"s": VALID},
         strides=ints(1, 1, 1, 1), dilations=ints(1, 1, 1, 1))
    g.op("big", "ResizeBilinear", ["conv2", "up"], half_pixel_centers={"b": True},
         align_corners={"b": False})
    g.op("parts", "SplitV", ["big", "sizes", "axis"], num_split={"i": "2"})
    g.op("scores", "Sigmoid", ["parts"])
    g.op("t2", "Transpose", ["parts:1", "perm_nchw"])
    g.op("flat", "Reshape", ["t2", "shape"])
    g.op("Identity", "Identity", ["scores"])
    g.op("Identity_1", "Identity", ["flat"])
    path = g.write(folder, {"input_1:0": {}}, ["Identity:0", "Identity_1:0"])
    return path, {"k1": k1.astype(np.float16).astype(np.float32), "k2": k2,
                  "bias": bias.astype(np.float16).astype(np.float32)}


def expected(x: np.ndarray, w: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)]).transpose(0, 2, 3, 1)
    y = conv_nhwc(padded, w["k1"], 2) + w["bias"]
    y = np.where(y > 0, y, 0.1 * y)
    y = conv_nhwc(y, w["k2"], 1)
    y = resize_nhwc(y, 2 * y.shape[1], 2 * y.shape[2])  # the graph's [12, 12] at its own size
    scores = 1 / (1 + np.exp(-y[..., :3]))
    rest = y[..., 3:].transpose(0, 3, 1, 2)
    return scores, rest.reshape(rest.shape[0], 8, -1)


def test_a_graph_of_every_supported_op_computes_what_tensorflow_defines(tmp_path: Path) -> None:
    path, weights = build(tmp_path)
    out = tmp_path / "g.onnx"
    tfjs_to_onnx.convert(path, out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for size in (16, 32):  # the input size is free: the resize is a scale, not a size
        x = RNG.normal(0, 1, (2, 3, size, size)).astype(np.float32)  # and so is the batch
        scores, flat = session.run(None, {"input_1": x})
        want_scores, want_flat = expected(x, weights)
        np.testing.assert_allclose(scores, want_scores, atol=1e-4)
        np.testing.assert_allclose(flat, want_flat, atol=1e-4)


def test_the_conversion_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    path, _ = build(tmp_path)
    tfjs_to_onnx.convert(path, tmp_path / "a.onnx")
    tfjs_to_onnx.convert(path, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_an_op_it_does_not_know_stops_the_conversion_naming_it(tmp_path: Path) -> None:
    g = Graph()
    g.op("input_1", "Placeholder", [], shape={"shape": {"dim": [{"size": "1"}, {"size": "3"},
                                                                {"size": "8"}, {"size": "8"}]}})
    g.op("odd", "Erf", ["input_1"])
    path = g.write(tmp_path, {"input_1:0": {}}, ["odd:0"])
    with pytest.raises(tfjs_to_onnx.ConversionError, match="odd: op Erf is not supported"):
        tfjs_to_onnx.convert(path, tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()
