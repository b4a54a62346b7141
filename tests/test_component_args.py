"""Component arguments are checked like stack files, at construction (components/arguments.py).

A real program (a Pulumi project folder using eleven components) runs through `servingstack synth
--program` under the offline runtime. Its stack's `case` config mutates one component's arguments
or options; every wrong case must stop the program at that component with one `error:` line naming
the component, its resource name and the argument, and exit 2 — no traceback, no unretrieved-future
noise, nothing logged at error level."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import pulumi
import pytest
import yaml

from servingstack.tools import cli, package

PROGRAM = '''
import json

import pulumi
import pulumi_kubernetes as k8s

from servingstack import (ClusterNetwork, EksCluster, GpuNodePool, HuggingFaceToken, ModelReadAccess, ModelStore,
                          NgcCredentials, NimServer, NvidiaDevicePlugin, TritonServer, VllmServer)

case = json.loads(pulumi.Config().get("case") or "{}")


def value(v):
    if isinstance(v, dict) and set(v) == {"$output"}:
        return pulumi.Output.from_input(v["$output"])
    if isinstance(v, dict):
        return {k: value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [value(x) for x in v]
    return v


def args(component, base):
    if case.get("component") != component:
        return base
    if "replace" in case:
        return value(case["replace"])
    out = {k: v for k, v in base.items() if k not in case.get("drop", [])}
    out.update(value(case.get("set", {})))
    return out


def opts(component, base):
    return None if case.get("component") == component and case.get("no_provider") else base


target = case.get("component")


def want(*components):
    """Build only what the mutated component needs (the whole program when nothing is mutated)."""
    return target is None or target in components


SERVING = ("VllmServer", "TritonServer", "NimServer")
outputs = {}
cluster = EksCluster("cluster", args("EksCluster", {"cluster_name": "team-a", "region": "us-west-2", "create": False}))
k8s_opts = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
if want("GpuNodePool", *SERVING):
    pool = GpuNodePool("gpu", args("GpuNodePool", {
        "cluster_name": cluster.cluster_name, "subnet_ids": cluster.subnet_ids, "pool_name": "l40s",
        "instance_type": "g6e.xlarge", "min_size": 0, "max_size": 2, "desired_size": 2}))
    common = {"namespace": "llm", "node_labels": pool.labels, "tolerations": pool.tolerations,
              "instance_type": "g6e.xlarge", "replicas": 1, "tensor_parallel_size": 1, "cpu_per_gpu": 3,
              "memory_gib_per_gpu": 24}
if want("NvidiaDevicePlugin"):
    NvidiaDevicePlugin("device-plugin", args("NvidiaDevicePlugin", {"pool_names": ["l40s"]}),
                       opts=opts("NvidiaDevicePlugin", k8s_opts))
    k8s.core.v1.Namespace("llm", metadata={"name": "llm"}, opts=k8s_opts)
if want("HuggingFaceToken"):
    HuggingFaceToken("hf-token", args("HuggingFaceToken", {"namespace": "llm", "token": pulumi.Output.secret("hf_x")}),
                     opts=opts("HuggingFaceToken", k8s_opts))
if want("VllmServer"):
    outputs["vllm"] = VllmServer("vllm", args("VllmServer", {
        **common, "model": "meta-llama/Llama-3.1-8B-Instruct", "service_name": "vllm", "service_account": "vllm",
        "hf_token_secret": "hf-token"}), opts=opts("VllmServer", k8s_opts)).endpoint
if want("ModelStore", "ModelReadAccess", "TritonServer"):
    store = ModelStore("model-store", args("ModelStore", {"force_destroy": True}))
    read = ModelReadAccess("model-read", args("ModelReadAccess", {
        "cluster_name": cluster.cluster_name, "namespace": "llm", "service_account": "triton",
        "bucket_arn": store.bucket_arn, "kms_key_arn": store.kms_key_arn, "use_pod_identity": False,
        "oidc_provider_arn": cluster.oidc_provider_arn, "oidc_issuer_url": cluster.oidc_issuer_url}))
if want("TritonServer"):
    outputs["triton"] = TritonServer("triton", args("TritonServer", {
        **common, "model": "meta-llama/Llama-3.1-8B-Instruct", "bucket_name": store.bucket_name,
        "service_name": "triton", "service_account": "triton",
        "service_account_annotations": read.service_account_annotations}), opts=opts("TritonServer", k8s_opts)).endpoint
if want("NgcCredentials", "NimServer"):
    ngc = NgcCredentials("ngc", args("NgcCredentials", {"namespace": "llm", "api_key": pulumi.Output.secret("nvapi-x")}),
                         opts=opts("NgcCredentials", k8s_opts))
if want("NimServer"):
    outputs["nim"] = NimServer("nim", args("NimServer", {
        **common, "model": "meta-llama/Llama-3.1-8B-Instruct", "service_name": "nim", "service_account": "nim",
        "pull_secret_name": ngc.pull_secret_name, "api_secret_name": ngc.api_secret_name}),
        opts=opts("NimServer", k8s_opts)).endpoint
if want("ClusterNetwork"):
    pulumi.export("vpc", ClusterNetwork("net", args("ClusterNetwork", {
        "cluster_name": "team-b", "availability_zones": ["us-west-2a", "us-west-2b"]})).vpc_id)
pulumi.export("endpoints", outputs)
'''

# (id, component, resource name, case, the argument the error names, a fragment of the message)
CASES = [
    # unknown keys: typos and camelCase
    ("typo", "VllmServer", "vllm", {"set": {"tensor_paralel_size": 1}}, "tensor_paralel_size",
     "did you mean 'tensor_parallel_size'?"),
    ("camel", "VllmServer", "vllm", {"set": {"tensorParallelSize": 1}}, "tensorParallelSize",
     "did you mean 'tensor_parallel_size'? (arguments are snake_case)"),
    ("camel-typo", "VllmServer", "vllm", {"set": {"maxModelLenn": 4096}}, "maxModelLenn", "'max_model_len'"),
    ("pool-typo", "GpuNodePool", "gpu", {"set": {"desired_sise": 1}}, "desired_sise", "'desired_size'"),
    ("pool-camel", "GpuNodePool", "gpu", {"set": {"instanceType": "g6e.xlarge"}}, "instanceType", "'instance_type'"),
    ("cluster-camel", "EksCluster", "cluster", {"set": {"podIdentity": False}}, "podIdentity", "'pod_identity'"),
    ("plugin-typo", "NvidiaDevicePlugin", "device-plugin", {"set": {"pool_name": ["l40s"]}}, "pool_name",
     "'pool_names'"),
    ("hf-camel", "HuggingFaceToken", "hf-token", {"set": {"secretName": "hf"}}, "secretName", "'secret_name'"),
    ("store-typo", "ModelStore", "model-store", {"set": {"bucket_nam": "b"}}, "bucket_nam", "'bucket_name'"),
    ("nim-camel", "NimServer", "nim", {"set": {"modelProfile": "x"}}, "modelProfile", "'model_profile'"),
    ("unknown", "TritonServer", "triton", {"set": {"sglang": True}}, "sglang", "unknown argument"),
    # wrong types
    ("str-for-int", "VllmServer", "vllm", {"set": {"replicas": "2"}}, "replicas", "'2' — should be a valid integer"),
    ("str-for-float", "VllmServer", "vllm", {"set": {"gpu_memory_utilization": "0.9"}}, "gpu_memory_utilization",
     "'0.9' — should be a valid number"),
    ("float-for-int", "GpuNodePool", "gpu", {"set": {"desired_size": 1.5}}, "desired_size", "1.5 —"),
    ("label-value", "GpuNodePool", "gpu", {"set": {"labels": {"team": 1}}}, "labels.team", "1 — should be a valid string"),
    ("tolerations-str", "VllmServer", "vllm", {"set": {"tolerations": "nvidia.com/gpu"}}, "tolerations",
     "should be a valid list"),
    ("output-for-plain", "VllmServer", "vllm", {"set": {"namespace": {"$output": "llm"}}}, "namespace",
     "is a pulumi Output"),
    ("str-for-list", "VllmServer", "vllm", {"set": {"extra_args": "--enforce-eager"}}, "extra_args",
     "should be a valid list"),
    ("str-for-bool", "EksCluster", "cluster", {"set": {"create": "false"}}, "create", "'false' — should be a valid boolean"),
    ("pools-str", "NvidiaDevicePlugin", "device-plugin", {"set": {"pool_names": "l40s"}}, "pool_names",
     "should be a valid list"),
    ("not-a-dict", "VllmServer", "vllm", {"replace": ["llm", "meta-llama/Llama-3.1-8B-Instruct"]}, "args",
     "the arguments are a dict (VllmServerArgs)"),
    # ranges, patterns, choices (the stack config's fields)
    ("negative", "VllmServer", "vllm", {"set": {"replicas": -1}}, "replicas", "greater than or equal to 0"),
    ("utilization", "VllmServer", "vllm", {"set": {"gpu_memory_utilization": 1.5}}, "gpu_memory_utilization",
     "less than or equal to 0.98"),
    ("dtype", "VllmServer", "vllm", {"set": {"dtype": "fp16"}}, "dtype", "'auto', 'bfloat16'"),
    ("namespace", "VllmServer", "vllm", {"set": {"namespace": "LLM"}}, "namespace", "is not a DNS-1123 label"),
    ("instance", "GpuNodePool", "gpu", {"set": {"instance_type": "g6e.xlarg"}}, "instance_type",
     "is not a known GPU instance type"),
    ("sizes", "GpuNodePool", "gpu", {"set": {"min_size": 3}}, "min_size", "greater than max_size 2"),
    ("mig", "NvidiaDevicePlugin", "device-plugin", {"set": {"mig_strategy": "all"}}, "mig_strategy",
     "'none', 'single' or 'mixed'"),
    ("region", "EksCluster", "cluster", {"set": {"region": "us-east"}}, "region", "is not an AWS region name"),
    ("one-zone", "ClusterNetwork", "net", {"set": {"availability_zones": ["us-west-2a"]}}, "availability_zones",
     "at least 2 items"),
    ("adopt-without-bucket", "ModelStore", "model-store", {"set": {"create": False}}, "bucket_name",
     "is required when create is false"),
    ("capacity-block", "GpuNodePool", "gpu", {"set": {"capacity_type": "CAPACITY_BLOCK"}}, "capacity_reservation_id",
     "is required when capacity_type is CAPACITY_BLOCK"),
    ("irsa-without-oidc", "ModelReadAccess", "model-read", {"drop": ["oidc_issuer_url"]}, "oidc_issuer_url",
     "is required when use_pod_identity is false"),
    # missing required keys
    ("no-model", "VllmServer", "vllm", {"drop": ["model"]}, "model", "is required"),
    ("no-subnets", "GpuNodePool", "gpu", {"drop": ["subnet_ids"]}, "subnet_ids", "is required"),
    ("no-token", "HuggingFaceToken", "hf-token", {"drop": ["token"]}, "token", "is required"),
    ("no-key", "NgcCredentials", "ngc", {"drop": ["api_key"]}, "api_key", "is required"),
    ("no-bucket", "TritonServer", "triton", {"drop": ["bucket_name"]}, "bucket_name", "is required"),
    ("no-nodes", "VllmServer", "vllm", {"drop": ["node_labels"]}, "node_selector", "is required (or node_labels)"),
    # impossible fits (the planning core's check_fit and the node's allocatable resources)
    ("tp-too-big", "VllmServer", "vllm", {"set": {"tensor_parallel_size": 2}}, "tensor_parallel_size",
     "do not fit on one g6e.xlarge (1 GPUs)"),
    ("70b-on-one-l40s", "VllmServer", "vllm", {"set": {"model": "meta-llama/Llama-3.1-70B-Instruct"}}, "model",
     "needs ~131 GiB of bf16 weights"),
    ("tp-heads", "VllmServer", "vllm", {"set": {"tensor_parallel_size": 3}, "drop": ["instance_type"]},
     "tensor_parallel_size", "3 does not divide the 32 attention heads"),
    ("context", "VllmServer", "vllm", {"set": {"max_model_len": 200000}}, "max_model_len",
     "exceed the 131072-token context"),
    ("kv-cache", "TritonServer", "triton", {"set": {"max_model_len": 131072, "gpu_memory_utilization": 0.5}},
     "max_model_len",
     "tokens do not fit"),
    ("cpu-explicit", "NimServer", "nim", {"set": {"cpu_per_gpu": 8}}, "cpu_per_gpu",
     "exceed the ~3 allocatable cores of g6e.xlarge — use cpu_per_gpu <= 3"),
    ("memory", "VllmServer", "vllm", {"set": {"memory_gib_per_gpu": 96}}, "memory_gib_per_gpu",
     "allocatable memory of g6e.xlarge"),
    ("unknown-model", "VllmServer", "vllm", {"set": {"model": "acme/llama-ft"}}, "model",
     "is not in the model catalog"),
    ("awq-on-bf16", "VllmServer", "vllm", {"set": {"quantization": "awq"}}, "quantization", "needs an int4 AWQ checkpoint"),
    ("nim-without-image", "NimServer", "nim", {"set": {"model": "Qwen/Qwen2.5-72B-Instruct", "weights_gib": 140},
                                               "drop": ["instance_type"]}, "image", "no NIM image is catalogued"),
    ("nim-1x-without-key", "NimServer", "nim", {"drop": ["api_secret_name", "pull_secret_name"]}, "api_secret_name",
     "needs an NGC API key"),
    # no Kubernetes provider
    ("no-provider-vllm", "VllmServer", "vllm", {"no_provider": True}, "opts.providers", "no Kubernetes provider"),
    ("no-provider-plugin", "NvidiaDevicePlugin", "device-plugin", {"no_provider": True}, "opts.providers",
     "allow_default_provider"),
    ("no-provider-hf", "HuggingFaceToken", "hf-token", {"no_provider": True}, "opts.providers", "no Kubernetes provider"),
    ("no-provider-ngc", "NgcCredentials", "ngc", {"no_provider": True}, "opts.providers", "no Kubernetes provider"),
]
WRONG = CASES


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("team-program")
    (root / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "team-llm", "runtime": "python"}))
    (root / "__main__.py").write_text(PROGRAM)
    # What is on the heap now (imports, earlier tests) cannot hold a future of these runs: freeze it
    # so that the collection after each run scans only what the run made.
    gc.collect()
    gc.freeze()
    yield root
    gc.unfreeze()


def synth(program: Path, tmp_path: Path, capfd, case: dict, stack: str = "case") -> tuple[int, str, str]:
    (program / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(
        {"config": {"aws:region": "us-west-2", "team-llm:case": json.dumps(case)}}))
    try:
        rc = cli.main(["synth", "--program", str(program), "--stack", stack, "--out", str(tmp_path / "out")])
    finally:
        (program / f"Pulumi.{stack}.yaml").unlink()
    gc.collect()  # an unretrieved future's exception is reported when the future is collected
    out, err = capfd.readouterr()
    return rc, out, err


def test_corpus_has_thirty_wrong_cases_of_every_kind():
    assert len(WRONG) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)
    assert {c[1] for c in WRONG} >= {"EksCluster", "GpuNodePool", "NvidiaDevicePlugin", "HuggingFaceToken",
                                     "NgcCredentials", "VllmServer", "TritonServer", "NimServer", "ModelStore",
                                     "ModelReadAccess", "ClusterNetwork"}


def test_the_program_as_written_synthesizes(program, tmp_path, capfd):
    rc, out, err = synth(program, tmp_path, capfd, {})
    assert rc == 0, err
    outputs = json.loads((tmp_path / "out" / "outputs.json").read_text())
    assert outputs["endpoints"] == {s: f"http://{s}.llm.svc.cluster.local:8000" for s in ("vllm", "triton", "nim")}
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["project"] == "team-llm"
    assert all("::team-llm::" in r["urn"] for r in plan["resources"])


@pytest.mark.parametrize("case", WRONG, ids=[c[0] for c in WRONG])
def test_wrong_arguments_are_refused_at_construction_in_one_line(program, tmp_path, capfd, caplog, case):
    _, component, name, mutation, key, fragment = case
    rc, out, err = synth(program, tmp_path, capfd, {"component": component, **mutation})
    lines = err.strip().splitlines()
    assert rc == cli.EXIT_CONFIG, err
    assert len(lines) == 1, err
    where = key if key.startswith("opts") or key == "args" else f"args.{key}"
    assert lines[0].startswith(f"error: {component} {name!r}: {where}: "), lines[0]
    assert fragment in lines[0], lines[0]
    for noise in ("Traceback", "Future exception", "Exception ignored", "never retrieved"):
        assert noise not in err + out
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert not (tmp_path / "out").exists(), "nothing is written for a refused program"


def test_instance_defaults_fit_where_the_fixed_defaults_would_not(program, tmp_path, capfd):
    """Without cpu_per_gpu the default is g6e.xlarge's share per GPU (3 cores), not 8."""
    rc, _, err = synth(program, tmp_path, capfd, {"component": "VllmServer", "drop": ["cpu_per_gpu"]})
    assert rc == 0, err
    (deployment,) = [yaml.safe_load(p.read_text()) for p in (tmp_path / "out" / "manifests").glob("deployment-*")
                     if "vllm" in p.name]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "3"


def test_any_node_selector_and_tolerations(program, tmp_path, capfd):
    """A team's own node group: its labels and taints, none of servingstack's."""
    selector = {"eks.amazonaws.com/nodegroup": "team-gpus"}
    tolerations = [{"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]
    rc, _, err = synth(program, tmp_path, capfd, {"component": "VllmServer", "drop": ["node_labels"],
                                                   "set": {"node_selector": selector, "tolerations": tolerations}})
    assert rc == 0, err
    pod = next(yaml.safe_load(p.read_text()) for p in (tmp_path / "out" / "manifests").glob("deployment-*")
               if "vllm" in p.name)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == selector
    assert pod["tolerations"] == tolerations
    rc, _, err = synth(program, tmp_path, capfd, {"component": "VllmServer", "drop": ["node_labels", "tolerations"],
                                                   "set": {"node_selector": {}}})
    assert rc == 0, err
    pod = next(yaml.safe_load(p.read_text()) for p in (tmp_path / "out" / "manifests").glob("deployment-*")
               if "vllm" in p.name)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                   "effect": "NoSchedule"}]


def test_node_labels_without_the_pool_labels_select_by_all_of_them(program, tmp_path, capfd):
    rc, _, err = synth(program, tmp_path, capfd, {"component": "VllmServer", "set": {"node_labels": {"team": "ml"}}})
    assert rc == 0, err
    pod = next(yaml.safe_load(p.read_text()) for p in (tmp_path / "out" / "manifests").glob("deployment-*")
               if "vllm" in p.name)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"team": "ml"}


def test_outputs_are_accepted_inside_inputs_and_the_default_provider_by_opt_in(program, tmp_path, capfd):
    rc, _, err = synth(program, tmp_path, capfd, {"component": "GpuNodePool",
                                                   "set": {"subnet_ids": [{"$output": "subnet-1"}, "subnet-2"]}})
    assert rc == 0, err
    rc, _, err = synth(program, tmp_path, capfd, {"component": "NvidiaDevicePlugin", "no_provider": True,
                                                   "set": {"allow_default_provider": True}})
    assert rc == 0, err
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    (release,) = [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"]
    assert release["provider"] == ""  # Pulumi's default provider, as asked


def test_errors_raise_from_the_constructor_before_registering(tmp_path):
    """In-process (as pytest users see it): an ArgumentError, a ConfigError and a pulumi.RunError,
    raised before the component registers anything."""
    from servingstack import ConfigError, GpuNodePool
    from servingstack.arguments import ArgumentError
    from servingstack.testing import run

    registered = []

    def program():
        try:
            GpuNodePool("gpu", {"cluster_name": "a", "subnet_ids": ["s"], "desired_sise": 1})  # type: ignore[typeddict-unknown-key]
        except ArgumentError as exc:
            registered.append(exc)
        return {}

    result = run(program)
    (exc,) = registered
    assert isinstance(exc, ConfigError) and isinstance(exc, pulumi.RunError)
    assert (exc.component, exc.resource, exc.key) == ("GpuNodePool", "gpu", "args.desired_sise")
    assert not [r for r in result.resources if r.type != "pulumi:pulumi:Stack"]


def test_the_package_host_reports_argument_errors():
    from pulumi.provider.server import ComponentInitError

    from test_package import construct

    with pytest.raises(ComponentInitError, match=r"VllmServer 'hosted': opts.providers: no Kubernetes provider"):
        construct("servingstack:index:VllmServer", {"namespace": "llm", "model": "meta-llama/Llama-3.1-8B-Instruct",
                                                    "nodeSelector": {}})
    with pytest.raises(ComponentInitError, match=r"GpuNodePool 'hosted': args.desired_size: 2.5"):
        construct("servingstack:index:GpuNodePool", {"clusterName": "a", "subnetIds": ["s"], "desiredSize": 2.5})


@pytest.mark.parametrize("component", package.COMPONENTS)
def test_every_public_component_checks_its_arguments(component):
    """A component that does not hand its args to the base (or a new one) would accept anything."""
    import servingstack
    from servingstack.arguments import ArgumentError
    from servingstack.testing import run

    raised = []

    def program():
        try:
            getattr(servingstack, component)("probe", {"no_such_argument": 1})
        except ArgumentError as exc:
            raised.append(str(exc))

    run(program)
    count = len(getattr(servingstack, f"{component}Args").__annotations__)
    assert raised == [f"{component} 'probe': args.no_such_argument: unknown argument — see help() of the "
                      f"component's Args for its {count} arguments"]
