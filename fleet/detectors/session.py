"""One ONNX Runtime session per detector: providers checked at start, threads as reserved.

ONNX Runtime is imported when the first such detector starts, so importing ``fleet.detectors``
(camera actors, ``camfleet validate``) does not load it. Outputs are written into buffers kept
per input shape (ONNX Runtime's I/O binding), so a steady stream of calls allocates no output
arrays; an array :meth:`OrtModel.run` returns is valid until the next call.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fleet.config import OnnxRuntimeSettings
from fleet.errors import SettingError

log = logging.getLogger(__name__)
INSTALL_HINT = ("install the onnxruntime build that has it on the node (onnxruntime-gpu for "
                "CUDA and TensorRT, onnxruntime-openvino for OpenVINO), or list another")


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise SettingError("providers", f"cannot import onnxruntime ({exc}); pip install "
                           "onnxruntime (or onnxruntime-gpu) on the node") from exc
    return onnxruntime


def _options(ort: Any, num_cpus: float) -> Any:
    options = ort.SessionOptions()
    # As many threads as CPUs reserved: the pool, not ONNX Runtime, spreads work over cores.
    options.intra_op_num_threads = max(1, int(num_cpus))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: converted models warn about unused constants
    # Idle threads would spin on cores that other actors have reserved.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def check_providers(wanted: list[str], available: list[str]) -> None:
    """Every provider asked for is installed, or a SettingError names it and what is."""
    missing = [name for name in wanted if name not in available]
    if missing:
        raise SettingError(
            "providers", f"{', '.join(missing)} not available on this node (ONNX Runtime has "
            f"{', '.join(available)}); {INSTALL_HINT}")


def check_running(wanted: list[str], running: list[str], fallback: bool) -> None:
    """ONNX Runtime falls back quietly when a provider fails to start (a GPU asked, the CPU
    used): say so at start, and stop unless ``provider_fallback`` allows it."""
    if not running or running[0] == wanted[0]:
        return
    message = (f"{wanted[0]} was asked for but the model runs on {running[0]}: ONNX Runtime "
               f"could not start {wanted[0]} (its log above says why, e.g. a missing CUDA "
               "library)")
    if not fallback:
        raise SettingError("providers", f"{message}; fix that, or set provider_fallback: true "
                           "to run on what works")
    log.warning("%s; going on (provider_fallback: true)", message)


class OrtModel:
    """An ONNX Runtime session over one model file, and its input and outputs."""

    def __init__(self, path: Path, settings: OnnxRuntimeSettings, field: str):
        ort = _onnxruntime()
        wanted = list(settings.providers)
        check_providers(wanted, list(ort.get_available_providers()))
        try:
            self.session = ort.InferenceSession(str(path), _options(ort, settings.num_cpus),
                                                providers=wanted)
        except Exception as exc:  # onnxruntime raises its own (Fail, InvalidProtobuf, ...)
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise SettingError(field, f"cannot load {path} as an ONNX model: {reason}") from exc
        self.providers = list(self.session.get_providers())
        check_running(wanted, self.providers, settings.provider_fallback)
        source = self.session.get_inputs()[0]
        self.input_name: str = source.name
        self.input_shape: list[Any] = list(source.shape)
        self.input_type: str = source.type
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self._outputs: dict[tuple[int, ...], list[np.ndarray] | None] = {}
        self._binding = self.session.io_binding()
        log.info("ONNX Runtime runs %s on %s", path.name, ", ".join(self.providers))

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph was exported with, or None when any size will do."""
        first = self.input_shape[0] if self.input_shape else None
        return first if isinstance(first, int) and first > 0 else None

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for ``tensor``, in buffers reused for the next call of its shape."""
        key = tuple(tensor.shape)
        if key not in self._outputs:  # the first call of a shape sizes its buffers
            outputs = [np.asarray(o) for o in self.session.run(None, {self.input_name: tensor})]
            self._outputs[key] = outputs if all(o.flags.c_contiguous for o in outputs) else None
            return outputs
        buffers = self._outputs[key]
        if buffers is None:
            return list(self.session.run(None, {self.input_name: tensor}))
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input(self.input_name, tensor)
        for name, buffer in zip(self.output_names, buffers, strict=True):
            binding.bind_output(name, "cpu", 0, buffer.dtype, list(buffer.shape),
                                buffer.ctypes.data)
        try:
            self.session.run_with_iobinding(binding)
        except Exception:  # an output whose shape varies with the input's content (NMS)
            self._outputs[key] = None
            return list(self.session.run(None, {self.input_name: tensor}))
        return buffers
