"""The onnx detector kind on small ONNX graphs made here with known outputs: each family's
decoding, ``family: auto``, class names and the ``classes:`` filter, boxes mapped back to
original-frame pixels through the letterbox and the camera's ``detect_width``, batches, and the
errors a bad model file, a wrong family or a missing provider give at start."""

from __future__ import annotations

import logging
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from fleet.config import OnnxDetectorConfig
from fleet.detectors import DetectorService, OnnxDetector, SettingError, build_detector
from fleet.detectors.session import OrtModel
from fleet.errors import DetectorError
from fleet.frames import Detection, FrameMeta


# ------------------------------------------------------------------------------ test graphs
@dataclass
class Graph:
    """A model whose output for each image is ``base`` plus the image's mean input value times
    ``gain``: known boxes, and scores that follow the image's brightness."""

    base: np.ndarray  # (rows, columns) for one image
    gain: np.ndarray | None = None  # same shape; None: zeros
    size: tuple[int, int] | None = (64, 64)  # (width, height); None: dynamic
    batch: int | None = None  # None: dynamic
    nhwc: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> str:
        w, h = self.size or ("width", "height")
        batch = self.batch or "batch"
        dims = [batch, h, w, 3] if self.nhwc else [batch, 3, h, w]
        rows, columns = self.base.shape
        gain = np.zeros_like(self.base) if self.gain is None else self.gain
        nodes = [
            helper.make_node("ReduceMean", ["images"], ["mean4"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Reshape", ["mean4", "per_image"], ["mean"]),  # [batch, 1, 1]
            helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
            helper.make_node("Add", ["scaled", "base"], ["output0"]),
        ]
        graph = helper.make_graph(
            nodes, "test",
            [helper.make_tensor_value_info("images", TensorProto.FLOAT, dims)],
            [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, rows, columns])],
            [numpy_helper.from_array(self.base[None].astype(np.float32), "base"),
             numpy_helper.from_array(gain[None].astype(np.float32), "gain"),
             numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "per_image")],
        )
        return save_onnx(graph, self.metadata, path)


def save_onnx(graph: onnx.GraphProto, metadata: dict[str, str], path: Path) -> str:
    """``graph`` as a checked opset-17 model with ``metadata`` (class names), saved at ``path``."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


NAMES = {"names": "{0: 'person', 1: 'car', 2: 'truck'}"}


def yolov8_output(boxes: list[tuple[float, float, float, float, int, float]],
                  classes: int = 3, anchors: int = 20) -> np.ndarray:
    """[4 + classes, anchors]: one anchor per (cx, cy, w, h, class, score), the rest empty."""
    out = np.zeros((4 + classes, anchors), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
        out[:4, i] = (cx, cy, w, h)
        out[4 + cls, i] = score
    return out


def yolov5_output(boxes: list[tuple[float, float, float, float, float, int, float]],
                  classes: int = 3, anchors: int = 20) -> np.ndarray:
    """[anchors, 5 + classes]: (cx, cy, w, h, objectness, class, class score) rows."""
    out = np.zeros((anchors, 5 + classes), np.float32)
    for i, (cx, cy, w, h, obj, cls, score) in enumerate(boxes):
        out[i, :5] = (cx, cy, w, h, obj)
        out[i, 5 + cls] = score
    return out


def nms_output(rows: list[tuple[float, float, float, float, float, int]],
               count: int = 10) -> np.ndarray:
    """[count, 6]: x1, y1, x2, y2, score, class; unused rows are zeros (score 0)."""
    out = np.zeros((count, 6), np.float32)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def detector(tmp_path: Path, graph: Graph, **settings: object) -> OnnxDetector:
    path = graph.save(tmp_path / "model.onnx")
    model = {"path": path, **settings.pop("model", {})}  # type: ignore[dict-item]
    built = build_detector(OnnxDetectorConfig(model=model, **settings))  # type: ignore[arg-type]
    assert isinstance(built, OnnxDetector)
    return built


def frame(width: int = 64, height: int = 64, value: int = 128) -> np.ndarray:
    out = np.full((height, width, 3), value, np.uint8)
    out.flags.writeable = False  # as the object store hands it over
    return out


def meta(image: np.ndarray, detect_width: int | None = None, index: int = 0) -> FrameMeta:
    return FrameMeta("cam", index, 0.0, image.shape[1], image.shape[0], detect_width)


def boxes(found: list[Detection]) -> list[tuple[str, int, int, int, int]]:
    return sorted((d.label, d.x, d.y, d.w, d.h) for d in found)


# ---------------------------------------------------------------------------------- families
def test_yolov8_boxes_scores_and_names_from_the_metadata(tmp_path):
    out = yolov8_output([(32, 32, 20, 10, 1, 0.9), (10, 10, 8, 8, 0, 0.6), (50, 50, 4, 4, 2, 0.1)])
    found = detector(tmp_path, Graph(out, metadata=NAMES)).detect(frame(), meta(frame()))
    assert boxes(found) == [("car", 22, 27, 20, 10), ("person", 6, 6, 8, 8)]
    assert sorted(round(d.score, 3) for d in found) == [0.6, 0.9]


def test_yolov5_multiplies_objectness_and_class_score(tmp_path):
    out = yolov5_output([(32, 32, 20, 10, 0.9, 1, 0.8), (10, 10, 8, 8, 0.5, 0, 0.4)])
    found = detector(tmp_path, Graph(out, metadata=NAMES), min_score=0.25).detect(
        frame(), meta(frame()))
    assert boxes(found) == [("car", 22, 27, 20, 10)]  # 0.5 x 0.4 = 0.2 < 0.25
    assert found[0].score == pytest.approx(0.72)


def test_nms_family_takes_the_models_boxes_as_they_are(tmp_path):
    out = nms_output([(4, 8, 24, 28, 0.8, 2), (5, 9, 25, 29, 0.7, 2), (0, 0, 2, 2, 0.1, 0)])
    found = detector(tmp_path, Graph(out, metadata=NAMES)).detect(frame(), meta(frame()))
    # the model did its NMS: two overlapping boxes stay; the low score goes
    assert boxes(found) == [("truck", 4, 8, 20, 20), ("truck", 5, 9, 20, 20)]


def test_overlapping_boxes_of_one_class_are_suppressed_but_not_across_classes(tmp_path):
    out = yolov8_output([(32, 32, 20, 20, 1, 0.9), (33, 33, 20, 20, 1, 0.8),
                         (32, 32, 20, 20, 2, 0.7)])
    found = detector(tmp_path, Graph(out, metadata=NAMES)).detect(frame(), meta(frame()))
    assert [(d.label, round(d.score, 2)) for d in found] == [("car", 0.9), ("truck", 0.7)]


@pytest.mark.parametrize("output, family", [
    (yolov8_output([]), "yolov8"),
    (yolov5_output([]), "yolov5"),
    (nms_output([], count=30), "nms"),
])
def test_auto_reads_the_family_from_the_output_shape(tmp_path, output, family):
    assert detector(tmp_path, Graph(output, metadata=NAMES)).family == family


def test_auto_says_so_when_the_shape_fits_two_families(tmp_path):
    # [30, 6] is nms's layout and also yolov5's with one class; no names to tell them apart
    with pytest.raises(SettingError, match=r"family: auto cannot tell.*\[batch, 30, 6\].*"
                                           r"yolov5 and nms"):
        detector(tmp_path, Graph(nms_output([], count=30)))


def test_auto_uses_the_number_of_names_to_tell_them_apart(tmp_path):
    assert detector(tmp_path, Graph(nms_output([], count=30), metadata=NAMES)).family == "nms"


@pytest.mark.parametrize("output, family, fragment", [
    (yolov8_output([]), "nms", r"nms expects \[batch, boxes, 6\].*\[batch, 7, 20\].*"
                               r"set family: yolov8"),
    (nms_output([], count=30), "yolov8", r"yolov8 expects \[batch, 4 \+ classes, boxes\]"),
    (yolov8_output([]), "yolov5", r"yolov5 expects .* it fits yolov8"),
])
def test_a_wrong_family_is_a_clear_error_at_start(tmp_path, output, family, fragment):
    with pytest.raises(DetectorError, match=fragment):
        detector(tmp_path, Graph(output, metadata=NAMES), family=family)


def test_a_family_that_reads_another_class_count_than_the_names_is_an_error(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    with pytest.raises(DetectorError, match="yolov8 reads 3 classes .* 2 class names"):
        detector(tmp_path, Graph(yolov8_output([])), family="yolov8", labels=str(labels))


# ------------------------------------------------------------------------ names and classes
def test_labels_file_names_the_classes_and_classes_filters_them(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("person\ncar\ntruck\n\n")
    out = yolov8_output([(32, 32, 20, 10, 1, 0.9), (10, 10, 8, 8, 0, 0.6), (50, 50, 8, 8, 2, 0.7)])
    found = detector(tmp_path, Graph(out), labels=str(labels), classes=["car", "truck"]).detect(
        frame(), meta(frame()))
    assert sorted(d.label for d in found) == ["car", "truck"]


def test_a_model_without_names_labels_boxes_by_class_index(tmp_path):
    found = detector(tmp_path, Graph(yolov8_output([(32, 32, 8, 8, 2, 0.9)]))).detect(
        frame(), meta(frame()))
    assert [d.label for d in found] == ["class2"]


@pytest.mark.parametrize("settings, fragment", [
    ({"classes": ["bus"]}, r"classes: bus not among the model's classes \(person, car, truck\)"),
    ({"labels": "absent.txt"}, r"labels: no file at .*absent.txt"),
])
def test_bad_class_settings_are_errors_at_start(tmp_path, settings, fragment):
    with pytest.raises(SettingError, match=fragment):
        detector(tmp_path, Graph(yolov8_output([]), metadata=NAMES), **settings)


def test_classes_without_any_names_is_an_error(tmp_path):
    with pytest.raises(SettingError, match="classes: the model has no class names.*labels:"):
        detector(tmp_path, Graph(yolov8_output([])), classes=["car"])


# ------------------------------------------------------------------- back to frame pixels
# One box at the centre of a 64x64 input, 32 wide and 16 high: x1, y1, x2, y2 = 16, 24, 48, 40.
CENTRE_BOX = yolov8_output([(32, 32, 32, 16, 0, 0.9)])


@pytest.mark.parametrize("width, height, detect_width, expected", [
    # 200x100 letterboxed into 64x64: scale 0.32, content 64x32, 16 px bars above and below
    (200, 100, None, (50, 25, 100, 50)),
    # twice the size, any detect_width: the same box in the bigger frame's pixels
    (400, 200, 200, (100, 50, 200, 100)),
    (400, 200, 640, (100, 50, 200, 100)),
    # detect_width below the model's width: downscaled first, then up; boxes still in frame px
    (400, 200, 32, (100, 50, 200, 100)),
    # portrait: bars left and right
    (100, 200, None, (0, 75, 100, 50)),
])
def test_letterboxed_boxes_come_back_in_original_frame_pixels(tmp_path, width, height,
                                                             detect_width, expected):
    image = frame(width, height)
    (found,) = detector(tmp_path, Graph(CENTRE_BOX)).detect(image, meta(image, detect_width))
    assert (found.x, found.y, found.w, found.h) == expected


def test_stretched_boxes_scale_each_axis(tmp_path):
    image = frame(200, 100)
    (found,) = detector(tmp_path, Graph(CENTRE_BOX), model={"resize": "stretch"}).detect(
        image, meta(image))
    assert (found.x, found.y, found.w, found.h) == (50, 38, 100, 25)  # x 64/200, y 64/100


def test_a_dynamic_input_takes_its_size_from_the_metadata_or_the_config(tmp_path):
    graph = Graph(CENTRE_BOX, size=None, metadata={"imgsz": "[64, 64]"})
    assert detector(tmp_path, graph).packer.spec.width == 64
    sized = detector(tmp_path, Graph(CENTRE_BOX, size=None), model={"width": 64, "height": 64})
    assert (sized.packer.spec.width, sized.packer.spec.height) == (64, 64)
    with pytest.raises(SettingError, match="model.width: the model's input size is not fixed"):
        detector(tmp_path, Graph(CENTRE_BOX, size=None))


def test_pixels_become_the_models_values(tmp_path):
    # value = (pixel * scale - mean) / std, channel order as the model wants it (nhwc, bgr)
    built = detector(tmp_path, Graph(CENTRE_BOX, nhwc=True), model={
        "input_tensor": "nhwc", "pixel_format": "bgr", "scale": 0.5,
        "mean": (1.0, 2.0, 3.0), "std": (2.0, 2.0, 2.0)})
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30
    tensor, _ = built.packer.pack([image], [meta(image)])
    assert tensor.shape == (1, 64, 64, 3)
    assert tensor[0, 5, 5].tolist() == [(5 - 1) / 2, (10 - 2) / 2, (15 - 3) / 2]


# ---------------------------------------------------------------------------------- batches
def test_a_batch_is_one_model_call_and_matches_frame_by_frame(tmp_path):
    # the score follows each image's brightness: the batch must keep images apart
    gain = np.zeros_like(CENTRE_BOX)
    gain[4, 0] = 1.0
    base = CENTRE_BOX.copy()
    base[4, 0] = 0.0
    built = detector(tmp_path, Graph(base, gain=gain), min_score=0.3)
    frames = [frame(200, 100, v) for v in (30, 200, 120, 250)]
    metas = [meta(f, index=i) for i, f in enumerate(frames)]
    calls = []
    run = built.model.run
    built.model.run = lambda tensor: calls.append(tensor.shape[0]) or run(tensor)  # type: ignore[method-assign]
    batched = built.detect_batch(frames, metas)
    assert calls == [4]
    alone = [built.detect(f, m) for f, m in zip(frames, metas, strict=True)]
    assert batched == alone
    assert [len(found) for found in batched] == [0, 1, 1, 1]  # 30/255 < 0.3


def test_a_graph_with_a_fixed_batch_runs_in_chunks_of_it(tmp_path):
    built = detector(tmp_path, Graph(CENTRE_BOX, batch=1))
    frames = [frame(200, 100) for _ in range(3)]
    found = built.detect_batch(frames, [meta(f) for f in frames])
    assert [boxes(f) for f in found] == [[("class0", 50, 25, 100, 50)]] * 3


def test_one_bad_frame_fails_alone_in_a_batch(tmp_path):
    service = DetectorService("cars", detector(tmp_path, Graph(CENTRE_BOX)))
    good = frame(200, 100)
    gray = np.zeros((100, 200), np.uint8)
    results = service.detect_batch([good, gray, good], [meta(good, index=i) for i in range(3)])
    assert isinstance(results[1], DetectorError) and "cam#1" in str(results[1])
    assert "HxWx3 uint8" in str(results[1])
    for result in (results[0], results[2]):
        assert not isinstance(result, Exception)
        assert [(d.x, d.y, d.w, d.h) for d in result.detections] == [(50, 25, 100, 50)]
    assert service.calls == 3 and service.errors == 1


def test_the_frame_is_left_as_it_was_and_nothing_frame_sized_is_allocated(tmp_path):
    built = detector(tmp_path, Graph(CENTRE_BOX))
    image = np.random.default_rng(1).integers(0, 255, (1080, 1920, 3), np.uint8)
    before = image.copy()
    image.flags.writeable = False
    for detect_width in (640, 32):  # direct resize, and downscale-then-upscale
        built.detect(image, meta(image, detect_width))  # sizes the buffers
        tracemalloc.start()
        try:
            for _ in range(3):
                built.detect(image, meta(image, detect_width))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < image.nbytes // 50, peak
    assert np.array_equal(image, before)


# ---------------------------------------------------------------------------- start errors
def test_a_bad_model_path_names_the_field_and_the_detector(tmp_path):
    config = OnnxDetectorConfig(model={"path": str(tmp_path / "absent.onnx")})
    with pytest.raises(DetectorError, match=r"^detectors\.cars\.model\.path: no file at "
                                            r".*absent\.onnx"):
        build_detector(config, "cars")


def test_a_relative_model_path_is_looked_up_in_the_models_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CAMFLEET_MODELS", str(tmp_path))
    Graph(CENTRE_BOX).save(tmp_path / "mine.onnx")
    assert isinstance(build_detector(OnnxDetectorConfig(model={"path": "mine.onnx"})),
                      OnnxDetector)
    with pytest.raises(SettingError, match=f"no file at {tmp_path}/other.onnx"):
        build_detector(OnnxDetectorConfig(model={"path": "other.onnx"}))


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(SettingError, match=r"model.path: cannot load .*model.onnx as an ONNX "
                                           r"model"):
        build_detector(OnnxDetectorConfig(model={"path": str(path)}))


@pytest.mark.parametrize("model, fragment", [
    ({"width": 32, "height": 32}, r"model.width: 32x32 given, but the model's input is 64x64"),
    ({"input_tensor": "nhwc"}, r"model.input_tensor: nhwc reads 64 channels .* nchw"),
])
def test_settings_that_contradict_the_model_are_errors_at_start(tmp_path, model, fragment):
    with pytest.raises(SettingError, match=fragment):
        detector(tmp_path, Graph(CENTRE_BOX), model=model)


def test_a_provider_that_is_not_installed_is_named_with_what_is(tmp_path):
    with pytest.raises(DetectorError, match=r"providers: CUDAExecutionProvider not available "
                                            r"on this node \(ONNX Runtime has .*"
                                            r"CPUExecutionProvider"):
        detector(tmp_path, Graph(CENTRE_BOX),
                 providers=["CUDAExecutionProvider", "CPUExecutionProvider"])


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_a_gpu_asked_but_the_cpu_used_says_so_at_start(tmp_path, monkeypatch, caplog):
    # as if onnxruntime-gpu were installed but CUDA could not start: ONNX Runtime falls back
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    asked = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(SettingError, match="providers: CUDAExecutionProvider was asked for but "
                                           "the model runs on CPUExecutionProvider"):
        detector(tmp_path, Graph(CENTRE_BOX), providers=asked)
    with caplog.at_level(logging.WARNING):
        built = detector(tmp_path, Graph(CENTRE_BOX), providers=asked, provider_fallback=True)
    assert built.model.providers == ["CPUExecutionProvider"]
    assert "runs on CPUExecutionProvider" in caplog.text


def test_threads_follow_the_cpus_reserved(tmp_path):
    built = detector(tmp_path, Graph(CENTRE_BOX), num_cpus=2)
    options = built.model.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    half = detector(tmp_path, Graph(CENTRE_BOX), num_cpus=0.5).model.session
    assert half.get_session_options().intra_op_num_threads == 1


# ------------------------------------------------------------------------- reused outputs
def test_outputs_are_reused_and_an_output_whose_shape_varies_still_comes_back_whole(tmp_path):
    # NonZero: [2, count] for a [4, 4] input, count depending on the values
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["where"])], "varying",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
        [helper.make_tensor_value_info("where", TensorProto.INT64, [2, "count"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "varying.onnx"))
    runner = OrtModel(tmp_path / "varying.onnx", OnnxDetectorConfig(model={"path": "x"}), "m")
    one, three = np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32)
    one[1, 2] = 1
    three[0, 0] = three[2, 3] = three[3, 1] = 1
    first = runner.run(one)
    assert runner.run(one)[0] is first[0]  # the same buffer, written again
    assert runner.run(three)[0].tolist() == [[0, 2, 3], [0, 3, 1]]  # not squeezed into it
    assert runner.run(one)[0].tolist() == [[1], [2]]


@pytest.mark.parametrize("names, fragment", [
    ("{0: 'person', 10000000000: 'x'}", "names class 10000000000; camfleet reads at most"),
    ("{" + ", ".join(f"{i}: 'c{i}'" for i in range(400_000)) + "}", "characters of class names"),
])
def test_a_models_metadata_cannot_make_the_detector_build_a_huge_class_list(
        tmp_path, names, fragment):
    # a hostile (or broken) model file: its metadata asks for 10^10 class names at start
    out = yolov8_output([(32, 32, 8, 8, 0, 0.9)])
    with pytest.raises(SettingError, match=fragment):
        detector(tmp_path, Graph(out, metadata={"names": names}))
