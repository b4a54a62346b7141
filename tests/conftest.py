"""Test harness: the synth recorder (components/tools/offline/recorder.py) runs the real program under Pulumi's mock
runtime (inputs echoed back, preview=False) and tests assert on what it recorded."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from servingstack.tools.offline.recorder import SynthResult
from servingstack.tools.synth import read_stack_file, stack_name_for, synth_stack

ROOT = Path(__file__).resolve().parent.parent
STACK_FILES = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
STACK_NAMES = [stack_name_for(p) for p in STACK_FILES]


def stack_config(name: str) -> dict[str, Any]:
    """A deep copy of a stack file's `config:` map, safe to modify in a test."""
    return copy.deepcopy(read_stack_file(ROOT / "stacks" / f"Pulumi.{name}.yaml"))


@functools.lru_cache(maxsize=None)
def _synth_cached(name: str) -> SynthResult:
    return synth_stack(stack_config(name), name)


def synth(name: str) -> SynthResult:
    """Synthesize a checked-in stack file (cached: results are read-only)."""
    return _synth_cached(name)


def synth_config(config: dict[str, Any], name: str = "test", **kwargs: Any) -> SynthResult:
    """Synthesize an ad-hoc config map (not cached)."""
    return synth_stack(copy.deepcopy(config), name, **kwargs)


@pytest.fixture(params=STACK_NAMES)
def stack(request) -> str:
    """Each checked-in stack's name, in turn."""
    return request.param


@pytest.fixture
def stack_result(stack) -> SynthResult:
    return synth(stack)


def write_stack_file(tmp_path: Path, config: dict[str, Any], name: str = "test") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def set_key(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Set `servingstack:serving.vllm.image`-style paths in a config map (creating objects)."""
    top, _, rest = dotted.partition(".")
    if not rest:
        config[top] = value
        return config
    node = config.setdefault(top, {})
    parts = rest.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return config


def recording(region: str = "us-east-1") -> dict[str, Any]:
    """A deep copy of the shipped recording of AWS answers for `region`, safe to mutate in a test
    (pass it to synth_config(..., aws_data=...))."""
    from servingstack.tools.offline.awsdata import DATA_DIR

    return yaml.safe_load((DATA_DIR / f"{region}.yaml").read_text())


def find(result: SynthResult, predicate: Callable[[Any], bool]) -> list:
    return [r for r in result.resources if predicate(r)]


# ---- the real load generator (tests marked `aiperf`: tests/test_bench_e2e.py) -------------------

import aiperf_env  # noqa: E402

_AIPERF = aiperf_env.Background()


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "aiperf: runs the real AIPerf load generator (its own virtualenv, "
                                       "installed in the background; these tests run last)")


def pytest_collection_modifyitems(session, config, items) -> None:
    """Tests that need AIPerf run after the others, while its virtualenv installs in the background."""
    needs = [item for item in items if item.get_closest_marker("aiperf")]
    if needs:
        items[:] = [item for item in items if not item.get_closest_marker("aiperf")] + needs
        _AIPERF.start()


@pytest.fixture(scope="session")
def aiperf_exe() -> Path:
    exe, reason = _AIPERF.wait()
    if exe is None:
        pytest.skip(reason)
    return exe
