"""The committed ``config/schema.json`` is the one the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from fleet.config import json_schema

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.json"
REGENERATE = "regenerate it with `camfleet schema -o config/schema.json` and commit the result"


def test_committed_schema_matches_the_models() -> None:
    expected = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"

    assert SCHEMA.is_file(), f"{SCHEMA} is missing; {REGENERATE}"
    assert SCHEMA.read_text(encoding="utf-8") == expected, (
        f"{SCHEMA} is out of date with the models in fleet/config/; {REGENERATE}"
    )


def test_schema_describes_the_fleet_file() -> None:
    schema = json_schema()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "camfleet fleet file"
    assert schema["required"] == ["cameras"]
    assert schema["additionalProperties"] is False
    assert "source" in schema["$defs"]["CameraConfig"]["required"]


GOOD_FILES = [
    "cameras: [{id: a, source: synthetic}]",
    "cameras: [{id: a, source: 'rtsp://admin:${CAM_PASS}@10.0.0.5/s'}]",
    "cameras: [{id: a, source: {url: 'https://h/live.m3u8'}}]",
    (
        "cameras: [{id: a, source: {type: device, index: 1}, detect: [person]}]\n"
        "detectors: {person: {actors: 2}, faces-hd: {type: face, scale_factor: 1.3}}"
    ),
]


def _example_texts() -> list[str]:
    examples = sorted(SCHEMA.parent.glob("*.yaml"))
    return GOOD_FILES + [path.read_text(encoding="utf-8") for path in examples]


def test_the_schema_accepts_what_the_loader_accepts() -> None:
    import jsonschema
    validator = jsonschema.Draft202012Validator(json_schema())

    for text in _example_texts():
        data = yaml.safe_load(text)
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
        assert not errors, f"schema refuses a valid fleet file:\n{text}\n{errors}"


def test_the_schema_refuses_an_unknown_key() -> None:
    import jsonschema
    validator = jsonschema.Draft202012Validator(json_schema())

    assert not validator.is_valid(yaml.safe_load("cameras: [{id: a, source: synthetic, fsp: 2}]"))
