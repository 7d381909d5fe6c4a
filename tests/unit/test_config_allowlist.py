"""The operator's allow-lists of what a fleet file may read: CAMFLEET_SECRET_DIRS for
``${file:...}`` and CAMFLEET_ENV_PREFIXES for ``${VAR}``, taken from the loader's environment
(parse_fleet's ``env``), never from the fleet file. Unset, anything goes, as before."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fleet.config import _interpolate, load_fleet, parse_fleet
from fleet.errors import ConfigError, ConfigProblem

SECRET = "hunter2-secret-value"
# The secret on line 1, under `name:` (a text field any value fits).
ONE_CAMERA = "cameras:\n  - id: a\n    source: synthetic\n"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """An allowed directory and a directory beside it, each with a readable secret."""
    allowed, outside = tmp_path / "secrets", tmp_path / "elsewhere"
    for folder in (allowed, outside):
        folder.mkdir()
        (folder / "gate").write_text(SECRET + "\n", encoding="utf-8")
    return allowed, outside


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the loader opens."""
    paths: list[str] = []
    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        paths.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(_interpolate, "open", spy, raising=False)
    return paths


def _name_from(value: str, env: Mapping[str, str]) -> str:
    return parse_fleet(f'name: "{value}"\n' + ONE_CAMERA, "f.yaml", env=env).name


def _problems(value: str, env: Mapping[str, str], tmp_path: Path) -> tuple[str, ConfigProblem]:
    """The one problem of a fleet file whose `name:` (line 2, after a comment) is ``value``."""
    path = tmp_path / "fleet.yaml"
    path.write_text(f'# a fleet\nname: "{value}"\n' + ONE_CAMERA, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_fleet(path, env=env)
    problems = caught.value.problems
    assert len(problems) == 1, problems
    return str(path), problems[0]


# --------------------------------------------------------------------------- ${file:...}
def test_a_secret_file_inside_an_allowed_directory_is_read(dirs: tuple[Path, Path]) -> None:
    allowed, _ = dirs
    env = {"CAMFLEET_SECRET_DIRS": f"{allowed}"}

    assert _name_from(f"${{file:{allowed / 'gate'}}}", env) == SECRET


def test_a_secret_file_outside_is_refused_with_file_line_field_and_never_opened(
    dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, outside = dirs
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    fleet_file, problem = _problems(f"${{file:{outside / 'gate'}}}", env, tmp_path)

    assert (problem.file, problem.line, problem.field) == (fleet_file, 2, "name")
    assert problem.message.startswith("the secret file /")  # its name, cut to 60 characters
    assert problem.message.endswith(
        f" is outside CAMFLEET_SECRET_DIRS ({allowed}); put it there or widen the list"
    )
    assert opened == [] and SECRET not in str(problem)


def test_a_readable_system_file_is_refused_unopened(
    dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, _ = dirs
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    _, problem = _problems("${file:/etc/passwd}", env, tmp_path)

    assert problem.message.startswith(
        f"the secret file /etc/passwd is outside CAMFLEET_SECRET_DIRS ({allowed})"
    )
    assert opened == [] and "root:" not in problem.message


def test_a_link_inside_to_a_file_outside_is_refused(
    dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, outside = dirs
    (allowed / "link").symlink_to(outside / "gate")
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    _, problem = _problems(f"${{file:{allowed / 'link'}}}", env, tmp_path)

    assert "outside CAMFLEET_SECRET_DIRS" in problem.message
    assert "once links and '..' are resolved" in problem.message
    assert opened == [] and SECRET not in str(problem)


def test_a_linked_directory_inside_is_refused_too(
    dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, outside = dirs
    (allowed / "sub").symlink_to(outside, target_is_directory=True)
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    _, problem = _problems(f"${{file:{allowed / 'sub' / 'gate'}}}", env, tmp_path)

    assert "outside CAMFLEET_SECRET_DIRS" in problem.message and opened == []


@pytest.mark.parametrize("escape", ["../elsewhere/gate", "./../elsewhere/gate"])
def test_dot_dot_out_of_an_allowed_directory_is_refused(
    escape: str, dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, _ = dirs
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    _, problem = _problems(f"${{file:{allowed}/{escape}}}", env, tmp_path)

    assert "outside CAMFLEET_SECRET_DIRS" in problem.message and opened == []


def test_a_sibling_directory_sharing_the_prefix_is_outside(
    dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, _ = dirs
    sibling = tmp_path / "secrets-old"
    sibling.mkdir()
    (sibling / "gate").write_text(SECRET, encoding="utf-8")
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    _, problem = _problems(f"${{file:{sibling / 'gate'}}}", env, tmp_path)

    assert "outside CAMFLEET_SECRET_DIRS" in problem.message and opened == []


def test_a_linked_allowed_directory_and_relative_entries_resolve(
    dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = dirs
    (tmp_path / "via-link").symlink_to(allowed, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    # empty entries ignored; "elsewhere" is relative to the cwd; the link resolves to secrets/
    env = {"CAMFLEET_SECRET_DIRS": os.pathsep.join(["", "via-link", "", "elsewhere"])}

    assert _name_from(f"${{file:{allowed / 'gate'}}}", env) == SECRET
    assert _name_from("${file:elsewhere/gate}", env) == SECRET
    assert _name_from("${file:via-link/gate}", env) == SECRET


def test_an_allowed_but_absent_file_still_says_it_cannot_be_read(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    allowed, _ = dirs
    env = {"CAMFLEET_SECRET_DIRS": str(allowed)}

    _, problem = _problems(f"${{file:{allowed / 'absent'}}}", env, tmp_path)

    assert "cannot read the secret file" in problem.message


def test_set_but_empty_secret_dirs_allow_no_file(
    dirs: tuple[Path, Path], tmp_path: Path, opened: list[str]
) -> None:
    allowed, _ = dirs

    for setting in ("", os.pathsep, "  "):
        _, problem = _problems(f"${{file:{allowed / 'gate'}}}", {"CAMFLEET_SECRET_DIRS": setting},
                               tmp_path)
        assert "outside CAMFLEET_SECRET_DIRS (set, but empty)" in problem.message
    assert opened == []


def test_a_nul_in_a_secret_file_name_is_a_problem_not_a_crash(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    allowed, _ = dirs

    for env in ({}, {"CAMFLEET_SECRET_DIRS": str(allowed)}):
        _, problem = _problems(f"${{file:{allowed}/gate\\0}}", env, tmp_path)
        assert problem.field == "name"


def test_the_fleet_file_cannot_set_the_allow_list(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    allowed, outside = dirs
    text = f"CAMFLEET_SECRET_DIRS: {outside}\nname: \"${{file:{outside / 'gate'}}}\"\n"

    with pytest.raises(ConfigError) as caught:
        parse_fleet(text + ONE_CAMERA, "f.yaml", env={"CAMFLEET_SECRET_DIRS": str(allowed)})

    assert any("outside CAMFLEET_SECRET_DIRS" in p.message for p in caught.value.problems)
    assert all(SECRET not in str(p) for p in caught.value.problems)


# --------------------------------------------------------------------------------- ${VAR}
ENV = {"CAMFLEET_ENV_PREFIXES": "CAM_, HOOK_,,", "CAM_NAME": "lobby",
       "AWS_SECRET_ACCESS_KEY": SECRET}


@pytest.mark.parametrize("value, expected", [
    ("${CAM_NAME}", "lobby"),
    ("${CAM_UNSET:-hall}", "hall"),
    ("${HOOK_X:-gate}", "gate"),
])
def test_a_variable_with_an_allowed_prefix_is_used(value: str, expected: str) -> None:
    assert _name_from(value, ENV) == expected


@pytest.mark.parametrize("value, with_default", [
    ("${AWS_SECRET_ACCESS_KEY}", False),
    ("${AWS_SECRET_ACCESS_KEY:-fallback}", True),
    ("x-${AWS_SECRET_ACCESS_KEY:-}-y", True),
])
def test_a_variable_with_no_allowed_prefix_is_refused_unread(
    value: str, with_default: bool, tmp_path: Path
) -> None:
    class Watched(dict[str, str]):
        def __getitem__(self, key: str) -> str:
            assert key != "AWS_SECRET_ACCESS_KEY", "a refused variable was read"
            return super().__getitem__(key)

        def __contains__(self, key: object) -> bool:
            assert key != "AWS_SECRET_ACCESS_KEY", "a refused variable was looked up"
            return super().__contains__(key)

    fleet_file, problem = _problems(value, Watched(ENV), tmp_path)

    assert (problem.file, problem.line, problem.field) == (fleet_file, 2, "name")
    assert problem.message.startswith(
        "environment variable AWS_SECRET_ACCESS_KEY is refused: its name starts with none of "
        "CAMFLEET_ENV_PREFIXES (CAM_, HOOK_,,)"
    )
    assert ("its default is not used instead" in problem.message) is with_default
    assert SECRET not in str(problem) and "fallback" not in str(problem)


def test_set_but_empty_prefixes_allow_no_variable(tmp_path: Path) -> None:
    _, problem = _problems("${CAM_NAME}", {"CAMFLEET_ENV_PREFIXES": " , ", "CAM_NAME": "x"},
                           tmp_path)

    assert "none of CAMFLEET_ENV_PREFIXES (set, but empty)" in problem.message


def test_the_prefix_list_does_not_limit_secret_files(dirs: tuple[Path, Path]) -> None:
    allowed, _ = dirs

    assert _name_from(f"${{file:{allowed / 'gate'}}}", ENV) == SECRET


# --------------------------------------------------------------------------------- unset
def test_unset_allow_lists_allow_everything_as_before(dirs: tuple[Path, Path]) -> None:
    _, outside = dirs
    env = {"AWS_SECRET_ACCESS_KEY": SECRET}

    assert _name_from(f"${{file:{outside / 'gate'}}}", env) == SECRET
    assert _name_from("${AWS_SECRET_ACCESS_KEY}", env) == SECRET
    assert _name_from("${ANYTHING:-x}", env) == "x"


def test_the_allow_lists_come_from_os_environ_by_default(
    dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = dirs
    monkeypatch.setenv("CAMFLEET_SECRET_DIRS", str(allowed))
    path = tmp_path / "fleet.yaml"
    path.write_text(f"name: \"${{file:{outside / 'gate'}}}\"\n" + ONE_CAMERA, encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_fleet(path)

    assert "outside CAMFLEET_SECRET_DIRS" in caught.value.problems[0].message


def test_a_refused_value_suppresses_later_errors_on_its_field(tmp_path: Path) -> None:
    env = {"CAMFLEET_ENV_PREFIXES": "CAM_", "FPS": "5"}
    path = tmp_path / "fleet.yaml"
    path.write_text(ONE_CAMERA + "    fps: ${FPS}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_fleet(path, env=env)

    assert [(p.line, p.field) for p in caught.value.problems] == [(4, "cameras[0].fps")]
    assert "FPS is refused" in caught.value.problems[0].message
