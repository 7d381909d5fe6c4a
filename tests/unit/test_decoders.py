"""The yolox, detr and nanodet families on small ONNX graphs made here with known outputs, run
through the onnx detector: boxes at the expected frame pixels, class names and scores,
``family: auto`` telling them apart (yolox from yolov5 by the rows a grid cell), outputs
matched by shape whatever their order, and a clear ``family`` error for outputs that do not
fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from fleet.config import OnnxDetectorConfig
from fleet.detectors import OnnxDetector, SettingError, build_detector
from fleet.frames import Detection, FrameMeta
from tests.unit.test_onnx_detector import NAMES, frame, save_onnx


# ------------------------------------------------------------------------------ test graphs
@dataclass
class Output:
    """One output: ``base`` for every image, plus the image's mean input value times ``gain``."""

    name: str
    base: np.ndarray  # (rows, columns) for one image
    gain: np.ndarray | None = None


@dataclass
class Model:
    outputs: list[Output]
    size: tuple[int, int] = (64, 64)  # (width, height)
    metadata: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> str:
        width, height = self.size
        nodes = [
            helper.make_node("ReduceMean", ["images"], ["mean4"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Reshape", ["mean4", "per_image"], ["mean"]),  # [batch, 1, 1]
        ]
        constants = [numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "per_image")]
        results = []
        for out in self.outputs:
            gain = np.zeros_like(out.base) if out.gain is None else out.gain
            nodes += [helper.make_node("Mul", ["mean", f"{out.name}_gain"], [f"{out.name}_x"]),
                      helper.make_node("Add", [f"{out.name}_x", f"{out.name}_base"], [out.name])]
            constants += [numpy_helper.from_array(out.base[None].astype(np.float32),
                                                  f"{out.name}_base"),
                          numpy_helper.from_array(gain[None].astype(np.float32),
                                                  f"{out.name}_gain")]
            results.append(helper.make_tensor_value_info(out.name, TensorProto.FLOAT,
                                                         ["batch", *out.base.shape]))
        graph = helper.make_graph(
            nodes, "test",
            [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                           ["batch", 3, height, width])],
            results, constants)
        return save_onnx(graph, self.metadata, path)


def detector(tmp_path: Path, model: Model, **settings: object) -> OnnxDetector:
    path = model.save(tmp_path / "model.onnx")
    built = build_detector(OnnxDetectorConfig(model={"path": path}, **settings))  # type: ignore[arg-type]
    assert isinstance(built, OnnxDetector)
    return built


def meta(image: np.ndarray, index: int = 0) -> FrameMeta:
    return FrameMeta("cam", index, 0.0, image.shape[1], image.shape[0], None)


def boxes(found: list[Detection]) -> list[tuple[str, int, int, int, int]]:
    return sorted((d.label, d.x, d.y, d.w, d.h) for d in found)


def run(built: OnnxDetector, width: int = 64, height: int = 64) -> list[Detection]:
    image = frame(width, height)
    return built.detect(image, meta(image))


# ------------------------------------------------------------------------------------ yolox
def cells(size: tuple[int, int], strides: tuple[int, ...] = (8, 16, 32)) -> list[int]:
    return [math.ceil(size[0] / s) * math.ceil(size[1] / s) for s in strides]


def yolox_output(rows: dict[int, tuple[float, float, float, float, float, int, float]],
                 size: tuple[int, int] = (64, 64), classes: int = 3) -> np.ndarray:
    """[cells, 5 + classes]: at each given row index x, y, log w, log h, objectness and one
    class's score; the other rows empty."""
    out = np.zeros((sum(cells(size)), 5 + classes), np.float32)
    for row, (x, y, log_w, log_h, obj, cls, score) in rows.items():
        out[row, :5] = (x, y, log_w, log_h, obj)
        out[row, 5 + cls] = score
    return out


def test_yolox_decodes_offsets_and_log_sizes_on_each_strides_grid(tmp_path):
    # 64x64: 8x8 cells at stride 8 (rows 0-63), 4x4 at 16 (64-79), 2x2 at 32 (80-83)
    out = yolox_output({
        2 * 8 + 5: (0.0, 0.0, 0.0, 0.0, 0.9, 0, 1.0),  # stride 8, row 2, col 5: 8x8 around (40, 16)
        64 + 1 * 4 + 2: (0.5, 0.25, math.log(2), 0.0, 0.9, 1, 0.8),  # stride 16, row 1, col 2
        80 + 3: (0.5, 0.5, 0.0, 0.0, 0.5, 2, 0.4),  # stride 32, row 1, column 1: 0.2, too low
    })
    found = run(detector(tmp_path, Model([Output("output", out)], metadata=NAMES)))
    # stride 16: centre ((0.5 + 2) x 16, (0.25 + 1) x 16) = (40, 20), 32 x 16
    assert boxes(found) == [("car", 24, 12, 32, 16), ("person", 36, 12, 8, 8)]
    assert sorted(round(d.score, 3) for d in found) == [0.72, 0.9]


def test_yolox_boxes_come_back_in_frame_pixels(tmp_path):
    # stride 16, row 2, column 2: 24, 28 to 56, 44 in the input
    out = yolox_output({64 + 2 * 4 + 2: (0.5, 0.25, math.log(2), 0.0, 0.9, 1, 0.8)})
    built = detector(tmp_path, Model([Output("output", out)], metadata=NAMES))
    # 256x128 letterboxed into 64x64: scale 1/4, 16 px bars above and below
    assert boxes(run(built, 256, 128)) == [("car", 96, 48, 128, 64)]


@pytest.mark.parametrize("rows, family", [
    (sum(cells((64, 64))), "yolox"),  # one row a cell
    (3 * sum(cells((64, 64))), "yolov5"),  # three anchors a cell
    (20, "yolov5"),
])
def test_auto_tells_yolox_from_yolov5_by_the_rows_a_cell(tmp_path, rows, family):
    out = np.zeros((rows, 8), np.float32)
    assert detector(tmp_path, Model([Output("output", out)], metadata=NAMES)).family == family


def test_yolov5_on_a_yolox_output_says_it_fits_yolox(tmp_path):
    model = Model([Output("output", yolox_output({}))], metadata=NAMES)
    with pytest.raises(SettingError, match=r"family: yolov5 expects .* but the model's output "
                                           r"is \[batch, 84, 8\]; it fits yolox"):
        detector(tmp_path, model, family="yolov5")


# ------------------------------------------------------------------------------------- detr
def detr_outputs(queries: list[tuple[float, float, float, float, int, float]], classes: int = 3,
                 count: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """boxes [count, 4] (cx, cy, w, h in 0..1) and logits [count, classes]: one query a
    (cx, cy, w, h, class, logit), the rest logit -10 for every class."""
    boxes_out = np.full((count, 4), 0.1, np.float32)
    logits = np.full((count, classes), -10.0, np.float32)
    for i, (cx, cy, w, h, cls, logit) in enumerate(queries):
        boxes_out[i] = (cx, cy, w, h)
        logits[i, cls] = logit
    return boxes_out, logits


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def detr_model(queries: list[tuple[float, float, float, float, int, float]],
               **kwargs: object) -> Model:
    boxes_out, logits = detr_outputs(queries, **kwargs)  # type: ignore[arg-type]
    # logits first: the outputs are told apart by shape, not order
    return Model([Output("pred_logits", logits), Output("pred_boxes", boxes_out)], metadata=NAMES)


def test_detr_scales_normalised_boxes_and_scores_with_a_sigmoid(tmp_path):
    model = detr_model([(0.5, 0.25, 0.5, 0.25, 1, 2.0), (0.25, 0.75, 0.25, 0.25, 2, -0.5),
                        (0.5, 0.5, 0.1, 0.1, 0, -2.0)])  # sigmoid(-2) = 0.12 < 0.25
    built = detector(tmp_path, model)
    assert built.family == "detr"
    found = run(built, 128, 128)  # the input is 64x64: frame pixels are twice the input's
    assert boxes(found) == [("car", 32, 16, 64, 32), ("truck", 16, 80, 32, 32)]
    assert sorted(d.score for d in found) == pytest.approx([sigmoid(-0.5), sigmoid(2.0)])


def test_detr_keeps_overlapping_boxes_and_only_the_best_max_detections(tmp_path):
    # a set predictor: no NMS, so two queries on one object both stay; then the best 2
    model = detr_model([(0.5, 0.5, 0.5, 0.5, 1, 1.0), (0.51, 0.5, 0.5, 0.5, 1, 3.0),
                        (0.2, 0.2, 0.2, 0.2, 0, 2.0)])
    assert [(d.label, d.x) for d in run(detector(tmp_path, model))] == [
        ("car", 17), ("person", 6), ("car", 16)]
    found = run(detector(tmp_path, model, max_detections=2))
    assert [(d.label, d.x) for d in found] == [("car", 17), ("person", 6)]


@pytest.mark.parametrize("names, family", [
    (("pred_boxes", "pred_logits"), "detr"),  # four classes: the names tell them apart
    (("out0", "out1"), None),
])
def test_detr_with_four_classes_needs_the_output_names(tmp_path, names, family):
    boxes_out, logits = detr_outputs([(0.5, 0.5, 0.5, 0.5, 3, 2.0)], classes=4)
    model = Model([Output(names[1], logits), Output(names[0], boxes_out)])
    if family is None:
        with pytest.raises(SettingError, match=r"family: auto: the model's outputs are "
                                               r"\[batch, 10, 4\], \[batch, 10, 4\].*fits no "
                                               r"family"):
            detector(tmp_path, model)
        return
    found = run(detector(tmp_path, model))
    assert boxes(found) == [("class3", 16, 16, 32, 32)]


def test_detr_reads_one_output_with_sigmoid_scores_when_told_or_the_names_say(tmp_path):
    combined = np.zeros((10, 4 + 3), np.float32)
    combined[0] = (0.5, 0.25, 0.5, 0.25, 0.1, 0.9, 0.2)  # scores, no sigmoid to apply
    model = Model([Output("output0", combined)], metadata=NAMES)
    found = run(detector(tmp_path, model, family="detr"))
    assert boxes(found) == [("car", 16, 8, 32, 16)] and found[0].score == pytest.approx(0.9)
    assert detector(tmp_path, model).family == "detr"  # 3 names: 7 columns are 4 + 3
    # without names the one output could be yolov5's (2 classes): as before, yolov5
    assert detector(tmp_path, Model([Output("output0", combined)])).family == "yolov5"


def test_detr_logits_that_count_other_classes_than_the_names_is_an_error(tmp_path):
    boxes_out, logits = detr_outputs([], classes=91)  # RF-DETR: COCO's 91 ids
    model = Model([Output("dets", boxes_out), Output("labels", logits)], metadata=NAMES)
    with pytest.raises(SettingError, match=r"family: detr reads 91 classes from the outputs "
                                           r"\[batch, 10, 4\], \[batch, 10, 91\], but there "
                                           r"are 3 class names"):
        detector(tmp_path, model, family="detr")


# ---------------------------------------------------------------------------------- nanodet
def nanodet_outputs(size: tuple[int, int], found: dict[tuple[int, int, int], tuple],
                    classes: int = 3, bins: int = 11) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{stride: (scores [cells, classes], distributions [cells, 4 x bins])} for strides 8, 16
    and 32. ``found`` maps (stride, row, column) to (class, score, (left, top, right, bottom)
    in strides, each a whole or half number of bins)."""
    levels = {}
    for stride in (8, 16, 32):
        columns, rows = math.ceil(size[0] / stride), math.ceil(size[1] / stride)
        scores = np.zeros((rows * columns, classes), np.float32)
        dists = np.zeros((rows * columns, 4, bins), np.float32)
        for (s, row, column), (cls, score, sides) in found.items():
            if s != stride:
                continue
            cell = row * columns + column  # row-major
            scores[cell, cls] = score
            for side, value in enumerate(sides):  # 2.5: equal logits at bins 2 and 3
                dists[cell, side, [math.floor(value), math.ceil(value)]] = 30.0
        levels[stride] = (scores, dists.reshape(len(scores), 4 * bins))
    return levels


def nanodet_model(levels: dict[int, tuple[np.ndarray, np.ndarray]], size: tuple[int, int],
                  **kwargs: object) -> Model:
    # in an odd order and with meaningless names, as the shipped graph has them
    order = [(32, 0), (8, 1), (16, 1), (32, 1), (16, 0), (8, 0)]
    return Model([Output(f"Identity_{i}", levels[stride][which])
                  for i, (stride, which) in enumerate(order)], size=size, **kwargs)  # type: ignore[arg-type]


def test_nanodet_pairs_outputs_by_shape_and_decodes_the_distributions(tmp_path):
    levels = nanodet_outputs((64, 64), {
        (16, 1, 2): (2, 0.8, (1, 1, 2, 0.5)),  # centre (40, 24): 24, 8 to 72, 32
        (8, 3, 5): (0, 0.6, (1, 1, 1, 1)),  # centre (44, 28): 36, 20 to 52, 36
        (32, 0, 1): (1, 0.1, (1, 1, 1, 1)),  # below min_score
    })
    built = detector(tmp_path, nanodet_model(levels, (64, 64), metadata=NAMES))
    assert built.family == "nanodet"
    found = run(built)
    # right side clipped at the input's 64 (the frame's edge)
    assert boxes(found) == [("person", 36, 20, 16, 16), ("truck", 24, 8, 40, 24)]
    assert sorted(round(d.score, 3) for d in found) == [0.6, 0.8]


def test_nanodet_grid_rounds_up_on_an_input_that_strides_do_not_divide(tmp_path):
    # 72x40: 9x5 cells at stride 8, 5x3 at 16, 3x2 at 32
    levels = nanodet_outputs((72, 40), {(32, 1, 2): (1, 0.9, (0.5, 0.5, 0.5, 0.5))})
    built = detector(tmp_path, nanodet_model(levels, (72, 40), metadata=NAMES))
    # centre (80, 48): 64, 32 to 96, 64 in the input, clipped to the frame's 72x40
    assert boxes(run(built, 72, 40)) == [("car", 64, 32, 8, 8)]


def test_nanodet_suppresses_overlaps_within_a_class_across_strides(tmp_path):
    levels = nanodet_outputs((64, 64), {
        (16, 1, 1): (1, 0.9, (1, 1, 1, 1)),  # centre (24, 24), 32x32
        (8, 2, 2): (1, 0.7, (2, 2, 2, 2)),  # centre (20, 20), 32x32: the same car
        (8, 2, 3): (0, 0.5, (2, 2, 2, 2)),  # a person there too: kept
    })
    found = run(detector(tmp_path, nanodet_model(levels, (64, 64), metadata=NAMES)))
    assert [(d.label, round(d.score, 2)) for d in found] == [("car", 0.9), ("person", 0.5)]


def test_nanodet_any_bins_and_classes(tmp_path):
    # NanoDet-Plus' reg_max 7: 8 bins, 32 wide; 5 classes, no names
    levels = nanodet_outputs((64, 64), {(8, 0, 0): (4, 0.9, (0, 0, 7, 3))}, classes=5, bins=8)
    found = run(detector(tmp_path, nanodet_model(levels, (64, 64))))
    assert boxes(found) == [("class4", 4, 4, 56, 24)]


def test_nanodet_80_classes_and_44_wide_distributions_without_names(tmp_path):
    # both widths are multiples of 4: NanoDet-m's 11 bins say which is which
    levels = nanodet_outputs((64, 64), {(8, 0, 0): (79, 0.9, (0, 0, 1, 1))}, classes=80)
    built = detector(tmp_path, nanodet_model(levels, (64, 64)))
    assert built.family == "nanodet"
    assert boxes(run(built)) == [("class79", 4, 4, 8, 8)]


def test_a_nanodet_batch_keeps_the_images_apart(tmp_path):
    levels = nanodet_outputs((64, 64), {(16, 1, 1): (0, 0.0, (1, 1, 1, 1))})
    scores, dists = levels[16]
    gain = np.zeros_like(scores)
    gain[1 * 4 + 1, 0] = 1.0  # the score is the image's mean input value (0..1)
    model = Model([Output("scores8", levels[8][0]), Output("boxes8", levels[8][1]),
                   Output("scores16", scores, gain), Output("boxes16", dists),
                   Output("scores32", levels[32][0]), Output("boxes32", levels[32][1])])
    built = detector(tmp_path, model, family="nanodet", min_score=0.3)
    frames = [frame(value=v) for v in (30, 200, 120)]
    found = built.detect_batch(frames, [meta(f, i) for i, f in enumerate(frames)])
    assert [len(f) for f in found] == [0, 1, 1]  # 30/255 < 0.3
    assert found[1][0].score == pytest.approx(200 / 255, abs=1e-3)


def test_nanodet_outputs_that_are_not_the_inputs_grids_are_an_error(tmp_path):
    levels = nanodet_outputs((416, 416), {})  # NanoDet-m's 416x416 cells on a 64x64 input
    model = Model([Output(f"o{s}_{i}", a) for s in (8, 16, 32) for i, a in enumerate(levels[s])])
    with pytest.raises(SettingError, match=r"family: nanodet expects pairs of \[batch, cells, "
                                           r"classes\] scores .* but the model's outputs are "
                                           r"\[batch, 2704, 3\], \[batch, 2704, 44\], "):
        detector(tmp_path, model, family="nanodet")


def test_nanodet_scores_that_count_other_classes_than_the_names_is_an_error(tmp_path):
    levels = nanodet_outputs((64, 64), {}, classes=5)
    with pytest.raises(SettingError, match=r"family: nanodet reads 5 classes from the outputs "
                                           r"\[batch, 64, 5\], .*but there are 3 class names"):
        detector(tmp_path, nanodet_model(levels, (64, 64), metadata=NAMES), family="nanodet")


# ------------------------------------------------------------------------ the wrong family
@pytest.mark.parametrize("family, fragment", [
    ("nanodet", r"family: nanodet expects pairs .* but the model's output is \[batch, 7, 20\]; "
                r"it fits yolov8: set family: yolov8 or auto"),
    # read as detr's one output with scores, it would have 16 classes
    ("detr", r"family: detr reads 16 classes from the output \[batch, 7, 20\], but there are "
             r"3 class names; it fits yolov8"),
    ("yolox", r"family: yolox expects \[batch, cells, 5 \+ classes\] .* it fits yolov8"),
])
def test_a_new_family_on_a_yolov8_output_says_what_fits(tmp_path, family, fragment):
    yolov8 = np.zeros((4 + 3, 20), np.float32)
    with pytest.raises(SettingError, match=fragment):
        detector(tmp_path, Model([Output("output0", yolov8)], metadata=NAMES), family=family)


def test_auto_on_outputs_no_family_reads_lists_the_layouts(tmp_path):
    model = Model([Output("a", np.zeros((10, 4), np.float32)),
                   Output("b", np.zeros((12, 3), np.float32))])
    with pytest.raises(SettingError, match=r"family: auto: the model's outputs are \[batch, 10, "
                                           r"4\], \[batch, 12, 3\], which fits no family .*"
                                           r"yolox .*detr .*nanodet"):
        detector(tmp_path, model)


def test_auto_does_not_guess_from_the_first_of_several_outputs(tmp_path):
    # the first output alone would be yolov5's; with another beside it, auto asks
    model = Model([Output("a", np.zeros((20, 8), np.float32)),
                   Output("b", np.zeros((6, 5), np.float32))])
    with pytest.raises(SettingError, match=r"family: auto cannot tell: the model's outputs are "
                                           r"\[batch, 20, 8\], \[batch, 6, 5\] could be read as "
                                           r"yolov5.*set family: to the one it is or give labels:"):
        detector(tmp_path, model)
    assert detector(tmp_path, model, family="yolov5").family == "yolov5"
