"""Smoke checks of the construction benchmark's programs (benchmarks/): never timed here."""

import sys
from collections import Counter
from pathlib import Path

import pytest

from servingstack.tools.offline.recorder import run_program
from servingstack.tools.synth import engine_config, read_stack_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import fleet  # noqa: E402
import raw_prod  # noqa: E402


@pytest.fixture(scope="module")
def prod_runs():
    from servingstack.program import build

    config, secret_keys, _ = engine_config(read_stack_file(ROOT / "stacks" / "Pulumi.prod.yaml"))
    config.pop("servingstack:observability", None)  # raw_prod reproduces the platform without monitoring
    config["servingstack:hfToken"] = "hf_smoke"
    secret_keys.append("servingstack:hfToken")
    return (run_program(build, config, secret_keys, "prod", "us-east-1", ("hf_smoke",)),
            run_program(raw_prod.main, config, secret_keys, "prod", "us-east-1", ("hf_smoke",)))


def test_raw_program_registers_the_same_resources_as_the_components(prod_runs):
    components, raw = prod_runs
    custom = [r for r in components.resources if not r.type.startswith("servingstack:index:")]
    assert Counter(r.type for r in raw.resources) == Counter(r.type for r in custom)
    assert sorted((r.type, r.name) for r in raw.resources) == sorted((r.type, r.name) for r in custom)
    assert not [r for r in raw.resources if r.type.startswith("servingstack:")]
    # Same resources means same inputs too: the ratio compares like with like.
    raw_inputs = {(r.type, r.name): r.inputs for r in raw.resources}
    differing = [(r.type, r.name) for r in custom if raw_inputs[(r.type, r.name)] != r.inputs]
    assert not differing, differing


def test_fleet_program_grows_by_one_pool_and_server_per_model():
    counts = {}
    for n in (1, 3):
        result = run_program(fleet.fleet_program(n), {"aws:region": "us-east-1"}, [], "bench", "us-east-1")
        counts[n] = Counter(r.type for r in result.resources)
        assert len(result.outputs) == n
    per_model = counts[3] - counts[1]
    assert per_model["servingstack:index:GpuNodePool"] == per_model["servingstack:index:VllmServer"] == 2
    assert per_model["aws:eks/nodeGroup:NodeGroup"] == per_model["kubernetes:apps/v1:Deployment"] == 2
    assert counts[3]["servingstack:index:NvidiaDevicePlugin"] == 1
