"""promtool (the Prometheus project's own rule checker and rule unit-test runner) as a test oracle.

`.ci/run` installs Debian's `prometheus` package, which ships /usr/bin/promtool; where it is absent
locally the tests that need it skip with that reason (CI always has it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (apt-get install prometheus; .ci/run installs it)")
    return path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def check_rules(groups: list[dict], tmp_path: Path, name: str = "rules.yaml") -> subprocess.CompletedProcess:
    """`promtool check rules` on a rules file holding `groups`."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return run(["check", "rules", str(path)], tmp_path)


def test_rules(groups: list[dict], tests: list[dict], tmp_path: Path) -> subprocess.CompletedProcess:
    """`promtool test rules` of `tests` (promtool's unit-test format) against `groups`."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return run(["test", "rules", "tests.yaml"], tmp_path)


test_rules.__test__ = False  # a helper, not a pytest test
