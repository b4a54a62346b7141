"""The platform-team snippets (README "For platform teams", docs/platform-teams.md) and examples run,
create the namespace they deploy into, and ask no more of a g6e.xlarge than it has: a pod sized
by the components' defaults (8 cores, 96 GiB per GPU) would stay Pending there forever."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from servingstack.planning.catalog import INSTANCE_TYPES
from servingstack.tools.offline.recorder import run_program

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "g6e.xlarge"
# What a node keeps for the kubelet, system daemons and DaemonSets (CNI, kube-proxy, device plugin,
# Pod Identity agent), conservatively: EKS reserves less than this on a 4 vCPU / 32 GiB node.
RESERVED_CPU = 1.0
ALLOCATABLE_MEMORY_FRACTION = 0.9
RESERVED_MEMORY_GIB = 1.0


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def program_blocks(text: str) -> list[str]:
    """The snippets that are programs (they build components), not tests of programs."""
    return [b for b in python_blocks(text) if "servingstack.testing" not in b]


DOCS = (ROOT / "docs" / "platform-teams.md").read_text()
SNIPPETS = {
    "README": program_blocks(section((ROOT / "README.md").read_text(), "## For platform teams")),
    "docs/platform-teams.md": program_blocks(DOCS),
}
TEST_SNIPPETS = [b for b in python_blocks(DOCS) if "servingstack.testing" in b]


def quantity_gib(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Gi|Mi)", value)
    assert m, value
    return float(m.group(1)) / (1 if m.group(2) == "Gi" else 1024)


def quantity_cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def assert_fits(requests: dict, gpus: int, instance_name: str = INSTANCE) -> None:
    instance = INSTANCE_TYPES[instance_name]
    assert gpus <= instance.gpus
    assert quantity_cpu(requests["cpu"]) <= instance.vcpus - RESERVED_CPU, requests
    allocatable = instance.memory_mib / 1024 * ALLOCATABLE_MEMORY_FRACTION - RESERVED_MEMORY_GIB
    assert quantity_gib(requests["memory"]) <= allocatable, requests


def assert_recorded_deployment_fits_and_namespace_created(result) -> None:
    deployment = result.manifest("Deployment")
    namespace = deployment["metadata"]["namespace"]
    assert namespace in {m["metadata"]["name"] for m in result.manifests() if m["kind"] == "Namespace"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    assert resources["requests"] == resources["limits"]
    assert_fits(resources["requests"], int(resources["limits"]["nvidia.com/gpu"]))
    group = result.one("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["instanceTypes"] == [INSTANCE]
    # Every Kubernetes object goes through the adopted cluster's provider.
    k8s_objects = [r for r in result.resources if r.type.startswith("kubernetes:")]
    assert k8s_objects and all("pulumi:providers:kubernetes::" in r.provider for r in k8s_objects)


def test_every_doc_has_one_python_snippet():
    assert {name: len(blocks) for name, blocks in SNIPPETS.items()} == {name: 1 for name in SNIPPETS}


@pytest.mark.parametrize("doc", list(SNIPPETS))
def test_platform_snippet_runs_creates_its_namespace_and_fits_the_instance(doc):
    (code,) = SNIPPETS[doc]

    def program():
        exec(compile(code, f"<{doc} snippet>", "exec"), {"__name__": "snippet"})  # noqa: S102 - our own docs
        return {}

    result = run_program(program, {}, [], "snippet", "us-west-2")
    assert result.one("servingstack:index:VllmServer")
    assert_recorded_deployment_fits_and_namespace_created(result)


def test_python_example_fits_the_instance():
    path = ROOT / "examples" / "existing-cluster-py" / "__main__.py"
    spec = importlib.util.spec_from_file_location("example_existing_cluster_fit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    project = "existing-cluster-py"
    config = {f"{project}:clusterName": "team-a", "aws:region": "us-west-2", f"{project}:hfToken": "hf_x"}
    result = run_program(module.main, config, [f"{project}:hfToken"], "example", "us-west-2", project=project)
    assert_recorded_deployment_fits_and_namespace_created(result)


def test_yaml_example_fits_the_instance_and_creates_its_namespace():
    program = yaml.safe_load((ROOT / "examples" / "package-yaml" / "Pulumi.yaml").read_text())
    resources = program["resources"]
    assert resources["gpuPool"]["properties"]["instanceType"] == INSTANCE
    vllm = resources["vllm"]["properties"]
    namespaces = [r for r in resources.values() if r["type"] == "kubernetes:core/v1:Namespace"]
    assert [n["properties"]["metadata"]["name"] for n in namespaces] == [vllm["namespace"]]
    (ns_key,) = [k for k, r in resources.items() if r["type"] == "kubernetes:core/v1:Namespace"]
    assert f"${{{ns_key}}}" in resources["vllm"]["options"]["dependsOn"]
    tp = vllm["tensorParallelSize"]
    shm_gib = 2 if tp == 1 else 4 * tp  # servingstack.planning.resources.shm_size_gib: counted in the memory limit
    assert {"cpuPerGpu", "memoryGibPerGpu"} <= vllm.keys(), "the defaults (8 cores, 96 GiB) never fit"
    requests = {"cpu": str(vllm["cpuPerGpu"] * tp), "memory": f"{vllm['memoryGibPerGpu'] * tp + shm_gib}Gi"}
    assert_fits(requests, tp)


def test_the_fit_check_rejects_the_component_defaults():
    with pytest.raises(AssertionError):
        assert_fits({"cpu": "8", "memory": "98Gi"}, 1)


def test_the_docs_pytest_snippet_passes_on_the_example(tmp_path):
    """docs/platform-teams.md's `servingstack.testing` snippet, placed in a copy of the example
    program as its tests/test_program.py, runs and its assertions hold."""
    import shutil

    (code,) = TEST_SNIPPETS
    program = tmp_path / "program"
    shutil.copytree(ROOT / "examples" / "existing-cluster-py", program)
    (program / "tests").mkdir()
    test_file = program / "tests" / "test_program.py"
    test_file.write_text(code)
    namespace = {"__file__": str(test_file), "__name__": "test_program"}
    exec(compile(code, str(test_file), "exec"), namespace)  # noqa: S102 - our own docs
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert tests
    for test in tests:
        test()
