"""The deployment virtualenv is pinned: requirements.txt (what `pulumi install` installs) pins every
runtime dependency exactly, inside pyproject.toml's ranges, and the test virtualenv runs those pins."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line == "-e .":
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line}: requirements.txt pins exact versions"
        out[canonicalize_name(req.name)] = spec.version
    return out


def runtime_closure() -> dict[str, str]:
    """Every distribution the installed servingstack needs at run time (no extras), with its version."""
    seen: dict[str, str] = {}
    todo = ["servingstack"]
    while todo:
        dist = metadata.distribution(todo.pop())
        key = canonicalize_name(dist.metadata["Name"])
        if key in seen:
            continue
        seen[key] = dist.version
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    seen.pop("servingstack")
    return seen


def test_requirements_install_the_project_itself():
    assert "-e ." in [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]


def test_every_pyproject_dependency_is_pinned_inside_its_range():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = pins()
    for line in declared:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (pyproject.toml) has no pin in requirements.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"requirements.txt pins {req.name}=={pinned[name]}, outside pyproject.toml's {req.specifier}"


def test_pins_cover_the_whole_runtime_closure_and_are_what_the_tests_run():
    """Every runtime dependency (transitive ones too) is pinned, and the virtualenv running these
    tests has exactly those versions: the tested set is the deployed set."""
    closure, pinned = runtime_closure(), pins()
    assert sorted(set(closure) - set(pinned)) == [], "runtime dependencies without a pin"
    assert {n: v for n, v in closure.items() if pinned[n] != v} == {}, \
        "installed versions differ from requirements.txt: run `make install-dev`"
