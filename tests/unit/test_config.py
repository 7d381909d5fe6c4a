"""Fleet files: what parses, what is refused, and how refusals read (file:line: field: message)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.cli import main as cli_main
from fleet.config import (
    BlazeFaceDetectorConfig,
    DeviceSource,
    FaceDetectorConfig,
    FileSource,
    HttpSource,
    NanoDetDetectorConfig,
    OnnxDetectorConfig,
    PersonDetectorConfig,
    RtspSource,
    SyntheticSource,
    load_fleet,
    parse_fleet,
)
from fleet.errors import ConfigError, ConfigProblem

REPO = Path(__file__).resolve().parents[2]


def fleet(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def problems_of(text: str, env: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(fleet(text), "f.yaml", env={} if env is None else env)
    return caught.value.problems


# ------------------------------------------------------------------------------------ good files
def test_minimal_file_parses_with_defaults() -> None:
    config = parse_fleet("cameras: [{id: gate, source: synthetic}]", env={})

    camera = config.cameras[0]
    assert (config.version, config.name, camera.id) == (1, "fleet", "gate")
    assert (camera.fps, camera.buffers, camera.drop_policy) == (5, 4, "drop_oldest")
    assert isinstance(camera.source, SyntheticSource)
    assert camera.detect == ["face"]
    face = config.detectors["face"]
    assert isinstance(face, BlazeFaceDetectorConfig)
    assert face.model == "back"  # small faces: docs/benchmarks.md, "Which model is the default"
    assert config.active_cameras == [camera]


def test_defaults_deep_merge_into_each_camera_and_the_camera_wins() -> None:
    config = parse_fleet(fleet("""
        defaults:
          fps: 2
          buffers: 8
          motion: {enabled: true, threshold: 0.1}
          reconnect: {max_backoff_s: 10}
        cameras:
          - id: a
            source: synthetic
            fps: 9
            motion: {threshold: 0.5}
            reconnect: {jitter: 0}
          - id: b
            source: synthetic
    """), env={})

    a, b = config.cameras
    assert (a.fps, a.buffers, b.fps, b.buffers) == (9, 8, 2, 8)
    assert (a.motion.enabled, a.motion.threshold, a.motion.width) == (True, 0.5, 160)
    assert (b.motion.enabled, b.motion.threshold) == (True, 0.1)
    assert (a.reconnect.max_backoff_s, a.reconnect.jitter) == (10, 0)
    assert a.reconnect.initial_backoff_s == 0.5
    assert (b.reconnect.max_backoff_s, b.reconnect.jitter) == (10, 0.2)


def test_interpolation_uses_the_env_given_not_the_process_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAM_HOST", "from-process")
    text = fleet("""
        name: ${FLEET_NAME}
        cameras:
          - id: a
            source: rtsp://${CAM_HOST:-10.0.0.9}/${STREAM:-main}
            fps: ${FPS:-3}
    """)

    config = parse_fleet(text, env={"FLEET_NAME": "lobby", "STREAM": "sub"})

    assert config.name == "lobby"
    source = config.cameras[0].source
    assert isinstance(source, RtspSource) and source.url == "rtsp://10.0.0.9/sub"
    assert config.cameras[0].fps == 3


@pytest.mark.parametrize(
    ("text", "kind", "attrs"),
    [
        ("rtsp://10.0.0.5/live", RtspSource, {"url": "rtsp://10.0.0.5/live", "transport": "tcp"}),
        ("rtsps://cam.example/live", RtspSource, {"url": "rtsps://cam.example/live"}),
        ("RTSP://10.0.0.5/live", RtspSource, {"url": "RTSP://10.0.0.5/live"}),
        ("http://cam.example/mjpg", HttpSource, {"url": "http://cam.example/mjpg"}),
        ("https://cam.example/live.m3u8", HttpSource, {"url": "https://cam.example/live.m3u8"}),
        ("videos/lobby.mp4", FileSource, {"path": "videos/lobby.mp4", "loop": True}),
        ("/data/lobby.mp4", FileSource, {"path": "/data/lobby.mp4"}),
        ("file:///data/my%20lobby.mp4", FileSource, {"path": "/data/my lobby.mp4"}),
        ("file://videos/lobby.mp4", FileSource, {"path": "videos/lobby.mp4"}),
        ("device:0", DeviceSource, {"index": 0}),
        ("device:3", DeviceSource, {"index": 3}),
        ("synthetic", SyntheticSource, {"width": 1280, "fps": 30}),
    ],
)
def test_source_shorthand_maps_to_a_typed_source(
    text: str, kind: type, attrs: dict[str, object]
) -> None:
    config = parse_fleet(f"cameras: [{{id: a, source: '{text}'}}]", env={})

    source = config.cameras[0].source
    assert isinstance(source, kind)
    assert {name: getattr(source, name) for name in attrs} == attrs


@pytest.mark.parametrize(
    ("mapping", "kind"),
    [
        ("{url: 'rtsp://h/s', transport: udp}", RtspSource),
        ("{url: 'https://h/s', read_timeout_s: 2}", HttpSource),
        ("{url: 'file:///v.mp4', loop: false}", FileSource),
        ("{path: v.mp4, realtime: false}", FileSource),
        ("{type: synthetic, frames: 10}", SyntheticSource),
    ],
)
def test_source_mapping_without_type_takes_it_from_url_or_path(mapping: str, kind: type) -> None:
    config = parse_fleet(f"cameras: [{{id: a, source: {mapping}}}]", env={})

    assert isinstance(config.cameras[0].source, kind)


def test_detectors_named_like_a_kind_get_that_type() -> None:
    config = parse_fleet(fleet("""
        cameras: [{id: a, source: synthetic, detect: [face, person]}]
        detectors:
          face: {model: front, min_score: 0.6}
          person:
    """), env={})

    face, person = config.detectors["face"], config.detectors["person"]
    assert isinstance(face, BlazeFaceDetectorConfig) and (face.model, face.min_score) == (
        "front", 0.6)
    assert face.providers == ["CPUExecutionProvider"]
    assert isinstance(person, NanoDetDetectorConfig) and person.classes == ["person"]
    assert (face.type, person.type) == ("blazeface", "nanodet")


def test_person_and_objects_are_nanodet_with_their_classes_unless_told_otherwise() -> None:
    config = parse_fleet(fleet("""
        cameras: [{id: a, source: synthetic, detect: [person, objects, cars, people]}]
        detectors:
          objects: {input_size: [416, 416]}
          cars: {type: nanodet, classes: [car, truck]}
          people: {type: hog}
    """), env={})

    objects, cars = config.detectors["objects"], config.detectors["cars"]
    assert isinstance(objects, NanoDetDetectorConfig) and objects.input_size == (416, 416)
    assert objects.classes is not None and {"person", "car", "truck", "bus"} <= set(
        objects.classes)
    assert isinstance(cars, NanoDetDetectorConfig) and cars.classes == ["car", "truck"]
    assert config.detectors["person"] == NanoDetDetectorConfig(classes=["person"])
    assert isinstance(config.detectors["people"], PersonDetectorConfig)


def test_the_legacy_detectors_keep_their_old_type_names() -> None:
    config = parse_fleet(fleet("""
        cameras: [{id: a, source: synthetic, detect: [face, old-faces, haar-faces, people]}]
        detectors:
          face: {type: haar, min_neighbors: 3}
          old-faces: {type: face, scale_factor: 1.3}
          haar-faces: {type: haar}
          people: {type: person, win_stride_px: 16}
    """), env={})

    assert {name: d.type for name, d in config.detectors.items()} == {
        "face": "haar", "old-faces": "haar", "haar-faces": "haar", "people": "hog"}
    face, people = config.detectors["face"], config.detectors["people"]
    assert isinstance(face, FaceDetectorConfig) and face.min_neighbors == 3
    assert isinstance(people, PersonDetectorConfig) and people.win_stride_px == 16


def test_an_onnx_detector_reads_its_model_settings() -> None:
    config = parse_fleet(fleet("""
        cameras: [{id: a, source: synthetic, detect: [cars]}]
        detectors:
          cars:
            type: onnx
            model: {path: yolov8n.onnx, width: 640, height: 480, scale: 1/255,
                    mean: [0, 0, 0], std: [1, 1, 1], input_tensor: nhwc, pixel_format: bgr}
            family: yolov8
            classes: [car, truck, bus]
            providers: [CUDAExecutionProvider, CPUExecutionProvider]
            min_score: 0.4
    """), env={})

    cars = config.detectors["cars"]
    assert isinstance(cars, OnnxDetectorConfig)
    assert (cars.model.path, cars.model.width, cars.model.height) == ("yolov8n.onnx", 640, 480)
    assert cars.model.scale == pytest.approx(1 / 255)
    assert (cars.model.input_tensor, cars.model.pixel_format) == ("nhwc", "bgr")
    assert cars.classes == ["car", "truck", "bus"] and cars.family == "yolov8"
    assert cars.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert (cars.min_score, cars.nms_iou, cars.model.resize) == (0.4, 0.45, "letterbox")


def test_a_kind_used_in_detect_but_not_defined_is_added_with_defaults() -> None:
    config = parse_fleet(fleet("""
        cameras:
          - {id: a, source: synthetic, detect: [person]}
          - {id: b, source: synthetic}
        detectors:
          faces-hd: {type: face, scale_factor: 1.3}
    """), env={})

    assert sorted(config.detectors) == ["face", "faces-hd", "person"]
    assert config.detectors["person"] == NanoDetDetectorConfig(classes=["person"])
    assert config.detectors["face"] == BlazeFaceDetectorConfig()
    assert isinstance(config.detectors["faces-hd"], FaceDetectorConfig)


def test_yaml_anchors_and_merge_keys_are_not_duplicate_keys() -> None:
    config = parse_fleet(fleet("""
        defaults: &base {fps: 2, buffers: 6}
        cameras:
          - id: a
            source: synthetic
            <<: *base
            fps: 7
    """), env={})

    assert (config.cameras[0].fps, config.cameras[0].buffers) == (7, 6)


class _AnyEnv(dict[str, str]):
    """Every variable is set: example fleets validate whatever the reader's environment holds."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "placeholder"


def _example_fleets() -> Iterator[object]:
    paths = sorted((REPO / "config").glob("*.yaml")) + sorted((REPO / "config").glob("*.yml"))
    if not paths:
        yield pytest.param(None, marks=pytest.mark.skip(reason="no example fleets in config/"))
    for path in paths:
        yield pytest.param(path, id=path.name)


@pytest.mark.parametrize("path", _example_fleets())
def test_every_example_fleet_validates(path: Path) -> None:
    config = load_fleet(path, env=_AnyEnv())

    assert config.cameras


# ------------------------------------------------------------------------------------- bad files
@dataclass(frozen=True)
class Bad:
    """A malformed fleet file and the problem it must produce."""

    name: str
    text: str
    line: int | None
    field: str
    fragment: str
    env: dict[str, str] = dataclasses.field(default_factory=dict)


ONE_CAMERA = "cameras:\n  - id: a\n    source: synthetic\n"
ONNX = "    detect: [cars]\ndetectors:\n  cars:\n    type: onnx\n"

BAD = [
    # name, file text,
    #     line, field, message fragment
    Bad("unknown-key", ONE_CAMERA + "    fsp: 5\n",
        4, "cameras[0].fsp", "did you mean 'fps'"),
    Bad("unknown-key-no-match", ONE_CAMERA + "    colour: red\n",
        4, "cameras[0].colour", "expected one of: buffers, detect"),
    Bad("wrong-type", ONE_CAMERA + "    fps: fast\n",
        4, "cameras[0].fps", "expected a number; found 'fast'"),
    Bad("negative-fps", ONE_CAMERA + "  - id: b\n    source: synthetic\n    fps: -1\n",
        6, "cameras[1].fps", "greater than 0; found -1"),
    Bad("zero-buffers", ONE_CAMERA + "    buffers: 0\n",
        4, "cameras[0].buffers", "at least 1; found 0"),
    Bad("too-many-buffers", ONE_CAMERA + "    buffers: 65\n",
        4, "cameras[0].buffers", "at most 64; found 65"),
    Bad("duplicate-id", ONE_CAMERA + "  - id: a\n    source: synthetic\n",
        4, "cameras[1].id", "duplicate camera id 'a'"),
    Bad("id-uppercase", "cameras:\n  - id: Gate\n    source: synthetic\n",
        2, "cameras[0].id", "'Gate' is not a safe id"),
    Bad("id-slash", "cameras:\n  - id: gate/2\n    source: synthetic\n",
        2, "cameras[0].id", "is not a safe id"),
    Bad("id-leading-dash", "cameras:\n  - id: '-gate'\n    source: synthetic\n",
        2, "cameras[0].id", "is not a safe id"),
    Bad("id-spaces", "cameras:\n  - id: front gate\n    source: synthetic\n",
        2, "cameras[0].id", "'front gate' is not a safe id"),
    Bad("fleet-name-unsafe", "name: My Fleet\n" + ONE_CAMERA,
        1, "name", "is not a safe id"),
    Bad("ftp-scheme", "cameras:\n  - id: a\n    source: ftp://cam.example/x\n",
        3, "cameras[0].source", "unknown scheme 'ftp'"),
    Bad("scheme-does-not-match-type",
        "cameras:\n  - id: a\n    source:\n      type: rtsp\n      url: http://cam.example/x\n",
        5, "cameras[0].source.url", "starting with rtsp://"),
    Bad("missing-env-var", "cameras:\n  - id: a\n    source: rtsp://admin:${CAM_PASS}@10.0.0.5/s\n",
        3, "cameras[0].source", "environment variable CAM_PASS is not set",
        env={"CAM_PASSWORD": "hunter2"}),
    Bad("yaml-syntax", "cameras:\n  - id: a\n    source: [synthetic\n  - id: b\n",
        4, "", "YAML syntax error"),
    Bad("yaml-bad-indent", "cameras:\n  - id: a\n   source: synthetic\n",
        3, "", "YAML syntax error"),
    Bad("yaml-tab", "cameras:\n\t- id: a\n",
        2, "", "YAML syntax error"),
    Bad("yaml-unknown-tag", ONE_CAMERA + "    fps: !fast 5\n",
        4, "cameras[0].fps", "YAML cannot read this value"),
    Bad("empty-file", "",
        1, "", "the file is empty"),
    Bad("comments-only", "# nothing yet\n",
        1, "", "the file is empty"),
    Bad("top-level-list", "- id: a\n  source: synthetic\n",
        1, "", "the top level is a list"),
    Bad("top-level-scalar", "cameras\n",
        1, "", "the top level is a single value"),
    Bad("cameras-empty", "name: lobby\ncameras: []\n",
        2, "cameras", "expected at least 1 item"),
    Bad("cameras-missing", "name: lobby\n",
        1, "cameras", "required key 'cameras' is missing"),
    Bad("cameras-a-mapping", "cameras:\n  a: synthetic\n",
        1, "cameras", "expected a list"),
    Bad("camera-a-string", "cameras:\n  - synthetic\n",
        2, "cameras[0]", "expected a mapping"),
    Bad("camera-missing-source", "cameras:\n  - id: a\n    fps: 2\n",
        2, "cameras[0].source", "required key 'source' is missing"),
    Bad("source-mapping-missing-url", "cameras:\n  - id: a\n    source:\n      type: rtsp\n",
        3, "cameras[0].source.url", "required key 'url' is missing"),
    Bad("source-mapping-without-type", "cameras:\n  - id: a\n    source:\n      transport: tcp\n",
        3, "cameras[0].source", "no type given"),
    Bad("unknown-source-type", "cameras:\n  - id: a\n    source:\n      type: webcam\n",
        4, "cameras[0].source.type", "unknown type 'webcam'; expected one of: file, rtsp"),
    Bad("unknown-source-key",
        "cameras:\n  - id: a\n    source:\n      url: rtsp://h/s\n      tranport: udp\n",
        5, "cameras[0].source.tranport", "did you mean 'transport'"),
    Bad("device-index-not-a-number", "cameras:\n  - id: a\n    source: device:front\n",
        3, "cameras[0].source.index", "expected a whole number; found 'front'"),
    Bad("unknown-detector", ONE_CAMERA + "    detect: [face, car]\n",
        4, "cameras[0].detect[1]", "unknown detector 'car'"),
    Bad("detector-listed-twice", ONE_CAMERA + "    detect: [face, face]\n",
        4, "cameras[0].detect", "face listed more than once"),
    Bad("detect-not-a-list", ONE_CAMERA + "    detect: face\n",
        4, "cameras[0].detect", "expected a list"),
    Bad("min-above-max-actors",
        ONE_CAMERA + "detectors:\n  face:\n    max_actors: 2\n    min_actors: 3\n",
        7, "detectors.face.min_actors", "3 exceeds max_actors (2)"),
    Bad("actors-outside-bounds", ONE_CAMERA + "detectors:\n  face:\n    actors: 9\n",
        6, "detectors.face.actors", "9 lies outside min_actors..max_actors (1..4)"),
    Bad("bad-detector-parameter", ONE_CAMERA + "detectors:\n  face:\n    min_score: 1.5\n",
        6, "detectors.face.min_score", "at most 1; found 1.5"),
    Bad("bad-haar-parameter",
        ONE_CAMERA + "detectors:\n  face:\n    type: haar\n    scale_factor: 1.0\n",
        7, "detectors.face.scale_factor", "greater than 1; found 1.0"),
    Bad("haar-setting-on-blazeface", ONE_CAMERA + "detectors:\n  face:\n    min_neighbors: 5\n",
        6, "detectors.face.min_neighbors", "not of BlazeFace (what face runs now); add type: haar"),
    Bad("hog-setting-on-nanodet", ONE_CAMERA + "    detect: [person]\ndetectors:\n  person:\n"
        "    win_stride_px: 8\n", 7, "detectors.person.win_stride_px",
        "not of NanoDet (what person runs now); add type: hog"),
    Bad("nanodet-input-not-a-multiple-of-32", ONE_CAMERA + "    detect: [person]\ndetectors:\n"
        "  person:\n    input_size: [500, 384]\n", 7, "detectors.person.input_size[0]",
        "expected a multiple of 32; found 500"),
    Bad("blazeface-unknown-model", ONE_CAMERA + "detectors:\n  face:\n    model: side\n",
        6, "detectors.face.model", "expected 'front' or 'back'; found 'side'"),
    Bad("detector-without-type",
        ONE_CAMERA + "    detect: [cars]\ndetectors:\n  cars:\n    actors: 2\n",
        6, "detectors.cars",
        "no type given; add type: with one of blazeface, nanodet, haar, hog, onnx"),
    Bad("unknown-detector-type",
        ONE_CAMERA + "    detect: [cars]\ndetectors:\n  cars:\n    type: yolo\n",
        7, "detectors.cars.type", "unknown type 'yolo'; expected one of: blazeface, nanodet, haar"),
    Bad("onnx-without-model", ONE_CAMERA + ONNX,
        6, "detectors.cars.model", "required key 'model' is missing"),
    Bad("onnx-model-without-path", ONE_CAMERA + ONNX + "    model:\n      width: 640\n",
        8, "detectors.cars.model.path", "required key 'path' is missing"),
    Bad("onnx-bad-input-tensor",
        ONE_CAMERA + ONNX + "    model:\n      path: m.onnx\n      input_tensor: chw\n",
        10, "detectors.cars.model.input_tensor", "expected 'nchw' or 'nhwc'; found 'chw'"),
    Bad("onnx-scale-divides-by-zero",
        ONE_CAMERA + ONNX + "    model:\n      path: m.onnx\n      scale: 1/0\n",
        10, "detectors.cars.model.scale", "'1/0' divides by zero"),
    Bad("onnx-width-without-height",
        ONE_CAMERA + ONNX + "    model:\n      path: m.onnx\n      width: 640\n",
        8, "detectors.cars.model.height", "give width and height together"),
    Bad("onnx-mean-of-two", ONE_CAMERA + ONNX + "    model: {path: m.onnx, mean: [0.5, 0.5]}\n",
        8, "detectors.cars.model.mean", "expected 3 values, one per channel; found 2"),
    Bad("onnx-unknown-family", ONE_CAMERA + ONNX + "    model: {path: m.onnx}\n    family: v9\n",
        9, "detectors.cars.family",
        "expected 'auto', 'yolov5', 'yolov8', 'nms', 'yolox', 'detr' or 'nanodet'; found 'v9'"),
    Bad("onnx-provider-name",
        ONE_CAMERA + ONNX + "    model: {path: m.onnx}\n    providers: [CPU, cuda]\n",
        9, "detectors.cars.providers[0]", "'CPU' is not an ONNX Runtime execution provider"),
    Bad("onnx-no-classes", ONE_CAMERA + ONNX + "    model: {path: m.onnx}\n    classes: []\n",
        9, "detectors.cars.classes", "expected at least 1 item"),
    Bad("onnx-class-twice",
        ONE_CAMERA + ONNX + "    model: {path: m.onnx}\n    classes: [car, car]\n",
        9, "detectors.cars.classes", "car listed more than once"),
    Bad("onnx-unknown-key", ONE_CAMERA + ONNX + "    model: {path: m.onnx}\n    clases: [car]\n",
        9, "detectors.cars.clases", "did you mean 'classes'"),
    Bad("detector-name-unsafe", ONE_CAMERA + "detectors:\n  Face HD:\n    type: face\n",
        5, "detectors.Face HD", "is not a safe id"),
    Bad("bad-drop-policy", ONE_CAMERA + "    drop_policy: newest\n",
        4, "cameras[0].drop_policy",
        "expected 'drop_newest', 'drop_oldest' or 'wait'; found 'newest'"),
    Bad("live-source-cannot-wait",
        "cameras:\n  - id: gate\n    source: rtsp://192.0.2.1/s\n    drop_policy: wait\n",
        4, "cameras[0].drop_policy", "a live source cannot wait"),
    Bad("sink-path-absolute", ONE_CAMERA + "sinks:\n  jsonl: {path: /etc/cron.d/x}\n",
        5, "sinks.jsonl.path", "is absolute"),
    Bad("sink-dir-leaves-run-folder", ONE_CAMERA + "sinks:\n  snapshots: {dir: ../../x}\n",
        5, "sinks.snapshots.dir", "leaves the run folder"),
    Bad("zone-point-negative",
        ONE_CAMERA + "    zones:\n      - name: dock\n        polygon:\n          - [0.1, 0.1]\n"
        "          - [0.9, -0.2]\n          - [0.5, 0.9]\n",
        8, "cameras[0].zones[0].polygon[1]", "point (0.9, -0.2) has a negative coordinate"),
    Bad("zone-point-one-number",
        ONE_CAMERA + "    zones:\n      - name: dock\n        polygon: [[0, 0], [1], [1, 1]]\n",
        6, "cameras[0].zones[0].polygon[1]", "a point is [x, y], two numbers; got 1"),
    Bad("zone-on-a-line",
        ONE_CAMERA + "    zones:\n      - {name: d, polygon: [[0, 0], [0.5, 0.5], [1, 1]]}\n",
        5, "cameras[0].zones[0].polygon", "encloses no area"),
    Bad("zone-twice",
        ONE_CAMERA + "    zones:\n      - {name: d, polygon: [[0, 0], [1, 0], [1, 1]]}\n"
        "      - {name: d, polygon: [[0, 0], [1, 0], [0, 1]]}\n",
        4, "cameras[0].zones", "zone d defined more than once"),
    Bad("zones-without-tracking",
        ONE_CAMERA + "    tracking: {enabled: false}\n"
        "    zones:\n      - {name: d, polygon: [[0, 0], [1, 0], [1, 1]]}\n",
        5, "cameras[0].zones", "zones need tracking"),
    Bad("mask-two-points", ONE_CAMERA + "    masks:\n      - polygon: [[0, 0], [1, 1]]\n",
        5, "cameras[0].masks[0].polygon", "at least 3 item"),
    Bad("webhook-without-url", ONE_CAMERA + "sinks:\n  webhook: {enabled: true}\n",
        5, "sinks.webhook.url", "expected an http:// or https:// URL"),
    Bad("motion-threshold-above-1", ONE_CAMERA + "    motion:\n      threshold: 1.5\n",
        5, "cameras[0].motion.threshold", "at most 1; found 1.5"),
    Bad("backoff-order", ONE_CAMERA + "    reconnect:\n      initial_backoff_s: 40\n",
        5, "cameras[0].reconnect.initial_backoff_s", "exceeds max_backoff_s"),
    Bad("duplicate-yaml-key", ONE_CAMERA + "    fps: 2\n    fps: 3\n",
        5, "cameras[0].fps", "duplicate key 'fps' (first at line 4)"),
    Bad("unknown-top-level-key", ONE_CAMERA + "camras: []\n",
        4, "camras", "did you mean 'cameras'"),
    Bad("version-2", "version: 2\n" + ONE_CAMERA,
        1, "version", "version 2 is not supported"),
    Bad("bad-default-reported-at-defaults", "defaults:\n  fps: 0\n" + ONE_CAMERA,
        2, "defaults.fps", "greater than 0; found 0"),
    Bad("sink-unknown-key", ONE_CAMERA + "sinks:\n  jsonl:\n    flush_s: 2\n",
        6, "sinks.jsonl.flush_s", "did you mean 'flush_interval_s'"),
    # Found by tests/unit/test_config_properties.py (test_bug_*): each once escaped as another
    # exception, or gave a problem without a message, at a made-up field, or with a password.
    Bad("cameras-a-number", "cameras: 1\n",
        1, "cameras", "expected a list, such as [a, b]; found 1"),
    Bad("cameras-true-with-defaults", "defaults: {fps: 2}\ncameras: true\n",
        2, "cameras", "expected a list, such as [a, b]; found True"),
    Bad("int-tag-on-empty-text", ONE_CAMERA + '    fps: !!int ""\n',
        4, "cameras[0].fps", "cannot read this value as !!int: '' is not a whole number"),
    Bad("bool-tag-on-a-word", ONE_CAMERA + "    fps: !!bool maybe\n",
        4, "cameras[0].fps", "cannot read this value as !!bool: 'maybe' is not true or false"),
    Bad("timestamp-tag-on-a-word", ONE_CAMERA + "    fps: !!timestamp soon\n",
        4, "cameras[0].fps", "cannot read this value as !!timestamp: 'soon' is not a date"),
    Bad("float-tag-on-an-empty-key", "!!float : 1\n" + ONE_CAMERA,
        1, "", "cannot read this key as !!float: '' is not a number"),
    Bad("huge-hex-number", ONE_CAMERA + "    fps: 0x" + "f" * 3600 + "\n",
        4, "cameras[0].fps", "a 4,335-digit number is larger than any setting takes"),
    Bad("huge-base-60-number", ONE_CAMERA + "    buffers: 1:" + ":".join(["59"] * 3600) + "\n",
        4, "cameras[0].buffers", "-digit number is larger than any setting takes"),
    Bad("huge-decimal-number", ONE_CAMERA + "    fps: " + "9" * 5000 + "\n",
        4, "cameras[0].fps", "a 5,000-digit number is larger than any setting takes"),
    Bad("number-of-60-digits", ONE_CAMERA + "    fps: " + "9" * 60 + "\n",
        4, "cameras[0].fps", "at most 240; found a 60-digit number"),
    Bad("lone-surrogate-in-a-detector-name", ONE_CAMERA + '    detect: ["x\\ud800"]\n',
        4, "cameras[0].detect[0]", "'x\\ud800' holds a lone surrogate"),
    Bad("lone-surrogate-twice", ONE_CAMERA + '    detect: ["x\\ud800", "x\\ud800"]\n',
        4, "cameras[0].detect[1]", "holds a lone surrogate"),
    Bad("lone-surrogate-in-a-source", 'cameras:\n  - id: a\n    source: "ftp://h/\\udc00"\n',
        3, "cameras[0].source", "holds a lone surrogate"),
    Bad("lone-surrogate-in-a-key", ONE_CAMERA + '    "fps\\udc00": 2\n',
        2, "cameras[0]", "the key at line 4, 'fps\\udc00', holds a lone surrogate"),
    Bad("newlines-in-a-detector-name", ONE_CAMERA + '    detect: ["x\\n\\n"]\n',
        4, "cameras[0].detect[0]", "unknown detector 'x\\n\\n'; define it under detectors:"),
    Bad("newline-in-a-source", 'cameras:\n  - id: a\n    source: "ftp://h/x\\nkey: \\n"\n',
        3, "cameras[0].source", "unknown scheme 'ftp' in ftp://h/x\\nkey: \\n; expected"),
    Bad("field-like-detector-names", ONE_CAMERA + '    detect: ["fps: 1", "fps: 1"]\n',
        4, "cameras[0].detect", "fps: 1 listed more than once"),
    Bad("deep-flow-list", "cameras: " + "[" * 500 + "]" * 500 + "\n",
        1, "", "lists and mappings nest more than 64 levels deep here"),
    Bad("deep-flow-mapping", "cameras:\n  - id: a\n    source: " + "{a: " * 500 + "1" + "}" * 500,
        3, "", "nest more than 64 levels deep"),
    Bad("deep-block-list", "cameras:\n" + "- " * 500 + "1\n",
        2, "", "nest more than 64 levels deep"),
    Bad("password-with-a-tab",
        "cameras:\n  - id: a\n    source: {type: http, url: 'rtsp://admin:${P}@10.0.0.5/s'}\n",
        3, "cameras[0].source.url", "found 'rtsp://admin:***@10.0.0.5/s'",
        env={"P": "hunter2\thunter2"}),
    Bad("long-password-with-a-space", ONE_CAMERA + "    fps: 'rtsp://admin:${P}@10.0.0.5/s'\n",
        4, "cameras[0].fps", "expected a number; found 'rtsp://admin:***@10.0.0.5/s'",
        env={"P": "hunter2 " + "hunter2" * 10}),
    Bad("secret-file-path-after-file-colon", "name: ${file:/nonexistent/gate}\n" + ONE_CAMERA,
        1, "name", "cannot read the secret file /nonexistent/gate"),
]


@pytest.mark.parametrize("case", BAD, ids=[case.name for case in BAD])
def test_malformed_fleet_is_refused_with_file_line_field_and_message(
    case: Bad, tmp_path: Path
) -> None:
    path = tmp_path / f"{case.name}.yaml"
    path.write_text(case.text, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_fleet(path, env=case.env)

    wanted = (str(path), case.line, case.field)
    matching = [p for p in caught.value.problems if (p.file, p.line, p.field) == wanted]
    assert matching, f"no problem at {wanted}; got {caught.value.problems}"
    assert any(case.fragment in p.message for p in matching), caught.value.problems
    assert all("hunter2" not in p.message for p in caught.value.problems)


def test_a_variable_named_file_takes_its_default_or_its_value() -> None:
    text = "name: ${file:-demo}\n" + ONE_CAMERA

    assert parse_fleet(text, env={}).name == "demo"
    assert parse_fleet(text, env={"file": "lobby"}).name == "lobby"


def test_a_secret_file_is_read_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "gate"
    secret.write_text("hunter2\n", encoding="utf-8")
    url = f"rtsp://admin:${{file:{secret}}}@10.0.0.5/s"

    config = parse_fleet(f"cameras: [{{id: a, source: '{url}'}}]", env={})
    source = config.cameras[0].source
    assert isinstance(source, RtspSource) and source.url == "rtsp://admin:hunter2@10.0.0.5/s"

    problems = problems_of(f"cameras: [{{id: a, source: '{url}', fps: -1}}]")
    assert problems and all("hunter2" not in str(p) for p in problems)


def test_a_value_with_newlines_never_invents_a_field() -> None:
    problems = problems_of(ONE_CAMERA + '    detect: ["x\\ncameras[0].fps: fake"]\n')

    assert [(p.line, p.field) for p in problems] == [(4, "cameras[0].detect[0]")]
    assert "unknown detector 'x\\ncameras[0].fps: fake'" in problems[0].message


def test_a_cross_check_still_reports_each_of_its_problems_with_newlines_in_names() -> None:
    problems = problems_of("""
        cameras:
          - {id: a, source: synthetic, detect: ["x\\n"]}
          - {id: a, source: synthetic, detect: [face, "y\\nz"]}
    """)

    assert {(p.line, p.field) for p in problems} == {
        (2, "cameras[0].detect[0]"), (3, "cameras[1].id"), (3, "cameras[1].detect[1]"),
    }
    assert all("\n" not in str(p) for p in problems)


def test_nesting_through_aliases_is_bounded() -> None:
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 1500)]
    with pytest.raises(ConfigError) as caught:
        parse_fleet("\n".join([*lines, ONE_CAMERA]), "f.yaml", env={})

    assert any("nest more than 64 levels deep" in p.message for p in caught.value.problems)


def test_a_long_chain_of_merge_keys_is_a_config_error() -> None:
    # Anchored in keys (which are never read), no mapping of the chain is flattened before the
    # last: PyYAML's flatten_mapping then recurses once per link.
    lines = ["? &m0 {k: 1}\n: 1"] + [f"? &m{i} {{<<: *m{i - 1}}}\n: 1" for i in range(1, 1500)]
    with pytest.raises(ConfigError) as caught:
        parse_fleet("\n".join([*lines, "x: {<<: *m1499}", ONE_CAMERA]), "f.yaml", env={})

    assert any(p.field == "x" and "merge keys (<<) chain mappings too deep" in p.message
               for p in caught.value.problems)


@pytest.mark.parametrize("value", [
    "x" * 1_000_000,
    "${X:-" * 200_000,  # no '}' after any of them
    "${file:" * 150_000,
    "rtsp://a:" * 100_000,
])
def test_a_megabyte_value_is_refused_quickly_and_shown_short(value: str) -> None:
    started = time.perf_counter()
    problems = problems_of(f"cameras: [{{id: '{value}', source: synthetic}}]\n")

    assert time.perf_counter() - started < 5  # minutes when it was quadratic
    assert [p.field for p in problems] == ["cameras[0].id"]
    assert len(problems[0].message) < 600


def test_every_problem_in_a_file_is_reported_at_once_in_line_order() -> None:
    problems = problems_of("""
        cameras:
          - id: a
            source: synthetic
            fps: 0
          - id: B
            source: synthetic
            buffers: 99
    """)

    assert [(p.line, p.field) for p in problems] == [
        (4, "cameras[0].fps"), (5, "cameras[1].id"), (7, "cameras[1].buffers"),
    ]


def test_a_bad_default_is_reported_once_not_once_per_camera() -> None:
    problems = problems_of("""
        defaults:
          fpz: 2
        cameras:
          - {id: a, source: synthetic}
          - {id: b, source: synthetic}
    """)

    assert [(p.line, p.field) for p in problems] == [(2, "defaults.fpz")]


def test_every_duplicate_and_unknown_detector_is_reported() -> None:
    problems = problems_of("""
        cameras:
          - {id: a, source: synthetic}
          - {id: a, source: synthetic, detect: [car]}
          - {id: a, source: synthetic, detect: [face, bus]}
    """)

    assert {(p.line, p.field) for p in problems} == {
        (3, "cameras[1].id"),
        (3, "cameras[1].detect[0]"),
        (4, "cameras[2].id"),
        (4, "cameras[2].detect[1]"),
    }


def test_config_problem_reads_file_line_field_message() -> None:
    problems = problems_of(ONE_CAMERA + "    fps: -2\n")

    assert str(problems[0]) == "f.yaml:4: cameras[0].fps: expected a value greater than 0; found -2"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_fleet(tmp_path / "absent.yaml", env={})


# -------------------------------------------------------------------------------------------- CLI
def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_validate_bad_file_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "bad.yaml", ONE_CAMERA + "    fps: -1\n    buffers: 0\n")

    status = cli_main(["validate", bad])

    lines = capsys.readouterr().err.splitlines()
    assert status == 2
    assert f"{bad}:4: cameras[0].fps: expected a value greater than 0; found -1" in lines
    assert f"{bad}:5: cameras[0].buffers: expected a value of at least 1; found 0" in lines
    assert all(re.match(rf"{re.escape(bad)}(:\d+: \S+)?: ", line) for line in lines)
    assert not any("Traceback" in line for line in lines)


def test_cli_validate_good_file_exits_0_and_says_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path, "good.yaml", ONE_CAMERA)

    status = cli_main(["validate", good])

    out, err = capsys.readouterr()
    assert status == 0
    assert out.startswith(f"{good}: ok")
    assert err == ""


def test_cli_validate_in_a_subprocess_exits_2(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", "cameras: []\n")

    done = subprocess.run(
        [sys.executable, "-m", "fleet", "validate", bad],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert done.returncode == 2, done.stderr
    assert f"{bad}:1: cameras:" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------- secrets
SECRET_ENV = {"CAM_PASS": "hunter2"}
SECRET_URL = "rtsp://admin:${CAM_PASS}@10.0.0.5/s"


def test_loaded_config_never_shows_the_password() -> None:
    config = parse_fleet(f"cameras: [{{id: a, source: '{SECRET_URL}'}}]", env=SECRET_ENV)

    camera = config.cameras[0]
    source = camera.source
    assert isinstance(source, RtspSource) and source.url == "rtsp://admin:hunter2@10.0.0.5/s"
    assert source.safe_url == "rtsp://admin:***@10.0.0.5/s"
    for shown in (repr(config), str(config), repr(camera), str(camera), repr(source), str(source)):
        assert "hunter2" not in shown


@pytest.mark.parametrize(
    "camera",
    [
        f"{{id: a, source: '{SECRET_URL}', fps: -1}}",
        f"{{id: a, source: {{url: '{SECRET_URL}', transport: carrier}}}}",
        f"{{id: a, source: {{type: http, url: '{SECRET_URL}'}}}}",
        "{id: a, source: 'ftp://admin:${CAM_PASS}@10.0.0.5/s'}",
        "{id: a, source: 'ftp://10.0.0.5/s?token=${CAM_PASS}'}",
        "{id: '${CAM_PASS}', source: synthetic, fps: 0}",
        "{id: a, source: {url: 'rtsp://10.0.0.5/s', transport: '${CAM_PASS}'}}",
        "{id: a, source: 'device:${CAM_PASS}'}",
    ],
)
def test_config_errors_never_show_the_password(camera: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(f"cameras:\n  - {camera}\n", "f.yaml", env=SECRET_ENV)

    assert caught.value.problems
    assert "hunter2" not in str(caught.value)
    assert all("hunter2" not in p.message for p in caught.value.problems)


def billion_laughs(depth: int = 9, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, depth):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join([*lines, "cameras: [{id: x, source: synthetic}]", f"x: *a{depth - 1}"])


def test_an_alias_bomb_exits_2_within_a_second(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1024  # 9**9 = 387 million values, written in under 1 KB
    started = time.perf_counter()
    assert cli_main(["validate", str(path)]) == 2
    assert time.perf_counter() - started < 5  # a bound against a hang, not a benchmark


def test_aliases_a_fleet_really_uses_still_load():
    text = "cameras:\n  - {id: c0, source: synthetic, motion: &m {enabled: true, width: 160}}\n" + \
        "".join(f"  - {{id: c{i}, source: synthetic, motion: *m}}\n" for i in range(1, 300))
    config = parse_fleet(text, env={})
    assert len(config.cameras) == 300


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(17 * 2**20)
    with pytest.raises(ConfigError, match="at most 16 MiB"):
        load_fleet(path)


@pytest.mark.parametrize("source, expected", [
    ("{type: file, path: /x.mp4, realtime: false}", "wait"),
    ("{type: file, path: /x.mp4}", "drop_oldest"),
    ("{type: images, path: /frames}", "wait"),
    ("synthetic", "drop_oldest"),
    ("rtsp://h/s", "drop_oldest"),
])
def test_drop_policy_defaults_to_wait_for_files_that_are_not_live(source, expected):
    config = parse_fleet(f"cameras: [{{id: a, source: {source}}}]", env={})
    assert config.cameras[0].drop_policy == expected
