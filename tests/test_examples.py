"""examples/existing-cluster-py: the program a platform team writes to add GPU serving to a cluster
it already runs, synthesized under the mock runtime exactly as `pulumi up` would run it (as its
project, existing-cluster-py, whose config namespace `pulumi.Config()` reads)."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from servingstack.tools.offline.recorder import run_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "existing-cluster-py"


def load_example():
    spec = importlib.util.spec_from_file_location("example_existing_cluster", EXAMPLE / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines main(); the `__name__ == "__main__"` block does not run
    return module


PROJECT = "existing-cluster-py"


def synth_example(extra_config=None, secret_keys=(f"{PROJECT}:hfToken",)):
    config = {f"{PROJECT}:clusterName": "team-a", "aws:region": "us-west-2",
              f"{PROJECT}:hfToken": "hf_example_token", **(extra_config or {})}
    return run_program(load_example().main, config, list(secret_keys), "example", "us-west-2", project=PROJECT)


@pytest.fixture(scope="module")
def result():
    return synth_example()


def test_example_adopts_the_cluster_and_creates_no_cluster_resources(result):
    types = {r.type for r in result.resources}
    assert not types & {"aws:eks/cluster:Cluster", "aws:ec2/vpc:Vpc", "aws:eks/addon:Addon"}
    (cluster,) = result.of_type("servingstack:index:EksCluster")
    assert result.one("pulumi:providers:kubernetes").inputs["clusterIdentifier"] == "team-a"


def test_example_adds_pool_device_plugin_and_vllm(result):
    group = result.one("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["clusterName"] == "team-a"
    assert group.inputs["instanceTypes"] == ["g6e.xlarge"]
    assert group.inputs["labels"]["servingstack.io/pool"] == "l40s"
    release = result.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "nvidia-device-plugin"
    deployment = result.manifest("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true", "servingstack.io/pool": "l40s"}
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "meta-llama/Llama-3.1-8B-Instruct" in spec["containers"][0]["args"]
    # Every Kubernetes object goes through the adopted cluster's provider, none through a default one.
    k8s_objects = [r for r in result.resources if r.type.startswith("kubernetes:")]
    assert k8s_objects and all("pulumi:providers:kubernetes::cluster-k8s::" in r.provider for r in k8s_objects)
    assert result.outputs == {
        "endpoint": "http://llm.llm.svc.cluster.local:8000",
        "openaiBaseUrl": "http://llm.llm.svc.cluster.local:8000/v1",
        "nodeGroup": "gpu-pool-ng",
        "devicePlugin": "nvidia-device-plugin 0.17.4 on pools l40s",
    }


def test_example_requires_the_hf_token_for_gated_models():
    import pulumi

    config = {f"{PROJECT}:clusterName": "team-a", "aws:region": "us-west-2"}
    with pytest.raises(pulumi.ConfigMissingError, match="hfToken"):
        run_program(load_example().main, config, [], "example", "us-west-2", project=PROJECT)
    ungated = run_program(load_example().main, {**config, f"{PROJECT}:model": "Qwen/Qwen2.5-72B-Instruct",
                                                f"{PROJECT}:instanceType": "p4de.24xlarge",
                                                f"{PROJECT}:tensorParallelSize": "4"}, [],
                          "example", "us-west-2", project=PROJECT)
    assert not [m for m in ungated.manifests() if m["kind"] == "Secret"]


def test_example_mounts_the_hf_token_when_set():
    result = synth_example({f"{PROJECT}:hfToken": "hf_example_token"}, [f"{PROJECT}:hfToken"])
    secret = result.manifest("Secret")
    assert secret["stringData"] == {"HF_TOKEN": "[secret]"}
    env = result.manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/huggingface/HF_TOKEN"} in env


def test_example_project_files():
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert "clusterName" in project["config"] and "default" not in project["config"]["clusterName"]
    assert "../.." in (EXAMPLE / "requirements.txt").read_text().split()
