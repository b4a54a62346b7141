"""The public API and the multi-language component package: stable exported names, documented
arguments, the schema Pulumi infers for the hosted components (against the checked-in snapshot), the
provider-host entry, hosted construction, and the Pulumi YAML example checked against the schema."""

import functools
import json
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.provider.server import ComponentInitError

import servingstack
from servingstack.tools import package
from servingstack.tools.offline.recorder import run_program

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "schema.json"
REGENERATE = "regenerate with `make schema` if the change is intended"

PUBLIC_NAMES = {
    "EksCluster", "EksClusterArgs", "ClusterNetwork", "ClusterNetworkArgs", "GpuNodePool", "GpuNodePoolArgs",
    "ModelStore", "ModelStoreArgs", "ModelReadAccess", "ModelReadAccessArgs", "NvidiaDevicePlugin",
    "NvidiaDevicePluginArgs", "NgcCredentials", "NgcCredentialsArgs", "HuggingFaceToken", "HuggingFaceTokenArgs",
    "VllmServer", "VllmServerArgs", "TritonServer", "TritonServerArgs", "NimServer", "NimServerArgs", "ServingArgs",
    "ServingPlatform", "ServingPlatformArgs", "StackConfig", "ConfigError", "load_stack_config", "parse_stack_config",
    "MODELS", "INSTANCE_TYPES",
}


def camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(w[:1].upper() + w[1:] for w in rest)


def args_type(component: type) -> type:
    return typing.get_type_hints(component.__init__)["args"]


def output_names(component: type) -> list[str]:
    """Annotated outputs, as the schema inference collects them (whole MRO, public names)."""
    names: dict[str, None] = {}
    for cls in reversed(component.__mro__):
        if cls in (object, pulumi.Resource, pulumi.ComponentResource):
            continue
        names.update(dict.fromkeys(k for k in cls.__dict__.get("__annotations__", {}) if not k.startswith("_")))
    return list(names)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package.schema()


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def schema_differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What changed between two package schemas, one line per resource, input or output."""
    out = []
    exp_res, act_res = expected.get("resources", {}), actual.get("resources", {})
    for token in sorted(exp_res.keys() - act_res.keys()):
        out.append(f"{token}: component missing")
    for token in sorted(act_res.keys() - exp_res.keys()):
        out.append(f"{token}: new component")
    for token in sorted(exp_res.keys() & act_res.keys()):
        e, a = exp_res[token], act_res[token]
        for kind, key in (("input", "inputProperties"), ("output", "properties")):
            for prop in sorted(e.get(key, {}).keys() - a.get(key, {}).keys()):
                out.append(f"{token}: {kind} {prop} missing")
            for prop in sorted(a.get(key, {}).keys() - e.get(key, {}).keys()):
                out.append(f"{token}: new {kind} {prop}")
            for prop in sorted(e.get(key, {}).keys() & a.get(key, {}).keys()):
                if e[key][prop] != a[key][prop]:
                    out.append(f"{token}: {kind} {prop} changed")
        for key in ("requiredInputs", "required", "description"):
            if e.get(key) != a.get(key):
                out.append(f"{token}: {key} changed")
    for key in sorted((expected.keys() | actual.keys()) - {"resources"}):
        if expected.get(key) != actual.get(key):
            out.append(f"schema {key} changed")
    return out


# ---- public API -------------------------------------------------------------------------------------

def test_public_names_are_stable_and_importable():
    assert set(servingstack.__all__) == PUBLIC_NAMES, "the public API changed: update PUBLIC_NAMES and the upgrade notes"
    for name in servingstack.__all__:
        assert getattr(servingstack, name) is not None
    namespace: dict[str, Any] = {}
    exec(f"from servingstack import {', '.join(sorted(PUBLIC_NAMES))}", namespace)
    assert PUBLIC_NAMES <= namespace.keys()


def test_every_public_component_is_hosted_with_its_args_type():
    public = {n for n in servingstack.__all__
              if isinstance(getattr(servingstack, n), type) and issubclass(getattr(servingstack, n), pulumi.ComponentResource)}
    assert public == set(package.COMPONENTS)
    for name in package.COMPONENTS:
        component = getattr(servingstack, name)
        assert args_type(component) is getattr(servingstack, f"{name}Args"), name


def test_component_annotations_are_real_types():
    """The schema inference reads annotations at run time: a module with `from __future__ import
    annotations` turns them into strings, which the analyzer cannot read."""
    import inspect

    modules = {cls.__module__ for c in package.hosted_components() for cls in c.__mro__
               if cls.__module__.startswith("servingstack.")}
    modules |= {getattr(servingstack, n).__module__ for n in servingstack.__all__ if n.endswith("Args")}
    for module in sorted(modules):
        assert "from __future__ import annotations" not in inspect.getsource(sys.modules[module]), module
    for component in package.hosted_components():
        assert not isinstance(component.__init__.__annotations__["args"], str), component.__name__


def test_every_argument_is_documented_with_its_default():
    """Every key of every public Args TypedDict has a docstring (read the way the schema inference
    reads it, inherited keys included); optional keys say what their default is."""
    missing, no_default = [], []
    for name in sorted(n for n in servingstack.__all__ if n.endswith("Args")):
        typ = getattr(servingstack, name)
        assert typing.is_typeddict(typ), name
        for key in typ.__annotations__:
            doc = package.field_docstring(typ, key)
            if not doc or not doc.strip():
                missing.append(f"{name}.{key}")
            elif key in typ.__optional_keys__ and not re.search(r"\bdefault", doc, re.IGNORECASE):
                no_default.append(f"{name}.{key}: {doc!r}")
    assert not missing, f"arguments without a docstring: {missing}"
    assert not no_default, f"optional arguments whose docstring does not give the default: {no_default}"


def test_every_output_is_documented():
    undocumented = [f"{c.__name__}.{o}" for c in package.hosted_components() for o in output_names(c)
                    if not package.field_docstring(c, o)]
    assert not undocumented


class ProbeArgs(typing.TypedDict):
    documented: int
    """Replicas. Default 1."""
    bare: int


def test_docstring_check_notices_a_missing_docstring():
    assert package.field_docstring(ProbeArgs, "documented") == "Replicas. Default 1."
    assert package.field_docstring(ProbeArgs, "bare") is None


def test_inherited_arguments_keep_their_docstrings():
    from servingstack import ServingArgs, VllmServerArgs

    assert package.field_docstring(VllmServerArgs, "tensor_parallel_size") == \
        package.field_docstring(ServingArgs, "tensor_parallel_size") == "GPUs per replica (request = limit). Default 2."


# ---- the package schema -------------------------------------------------------------------------------

def test_schema_matches_snapshot(schema, golden):
    assert schema == golden, "package schema differs from tests/golden/schema.json:\n  " + \
        "\n  ".join(schema_differences(golden, schema)) + f"\n{REGENERATE}"


def test_schema_lists_every_component_with_its_inputs_and_outputs(schema):
    assert schema["name"] == package.PACKAGE_NAME
    assert set(schema["resources"]) == {f"servingstack:index:{n}" for n in package.COMPONENTS}
    for component in package.hosted_components():
        res = schema["resources"][f"servingstack:index:{component.__name__}"]
        assert res["isComponent"] is True
        args = args_type(component)
        assert set(res["inputProperties"]) == {camel(k) for k in args.__annotations__}, component.__name__
        assert set(res.get("requiredInputs", [])) == {camel(k) for k in args.__required_keys__}, component.__name__
        assert set(res["properties"]) == {camel(o) for o in output_names(component)}, component.__name__
        assert res["description"] and "\n    " not in res["description"]
        for prop in [*res["inputProperties"].values(), *res["properties"].values()]:
            assert prop.get("description"), component.__name__
    # Spot checks of the inferred types.
    pool = schema["resources"]["servingstack:index:GpuNodePool"]
    assert pool["inputProperties"]["subnetIds"]["type"] == "array" and "plain" not in pool["inputProperties"]["subnetIds"]
    assert pool["inputProperties"]["minSize"] == {**pool["inputProperties"]["minSize"], "type": "integer", "plain": True}
    assert pool["properties"]["tolerations"]["items"]["additionalProperties"]["type"] == "string"
    vllm = schema["resources"]["servingstack:index:VllmServer"]
    assert vllm["inputProperties"]["gpuMemoryUtilization"]["type"] == "number"
    assert set(vllm["requiredInputs"]) == {"namespace", "model"}  # node_labels or node_selector: checked at construction


def test_schema_check_fails_when_a_component_loses_an_input(golden):
    """A copy of GpuNodePool whose args lack `instance_type`: the schema no longer matches."""
    from servingstack import GpuNodePool, GpuNodePoolArgs

    fields = {k: v for k, v in GpuNodePoolArgs.__annotations__.items() if k != "instance_type"}
    fewer = typing.TypedDict("GpuNodePoolArgs", fields)  # type: ignore[misc]

    def __init__(self, name: str, args: fewer, opts: typing.Optional[pulumi.ResourceOptions] = None):  # noqa: N807
        GpuNodePool.__init__(self, name, args, opts)

    smaller = type("GpuNodePool", (GpuNodePool,), {"__init__": __init__, "__module__": GpuNodePool.__module__})
    hosted = [smaller if c is GpuNodePool else c for c in package.hosted_components()]
    changed = package.schema(hosted)
    assert changed != golden
    assert "servingstack:index:GpuNodePool: input instanceType missing" in schema_differences(golden, changed)


def test_provider_folder_is_a_python_component_plugin():
    plugin = yaml.safe_load((ROOT / "provider" / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["name"] == "python"
    requirements = [line.strip() for line in (ROOT / "provider" / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == [".."]  # the servingstack distribution from this repository
    assert (ROOT / "provider" / "__main__.py").exists()


def test_provider_host_serves_the_snapshot_schema(golden):
    """Run provider/ as the engine would (`python <plugin dir> <engine address>`) and ask it for its
    schema over gRPC."""
    import grpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    proc = subprocess.Popen([sys.executable, str(ROOT / "provider"), "127.0.0.1:1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT / "provider")
    try:
        port = proc.stdout.readline().decode().strip()
        assert port.isdigit(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = provider_pb2_grpc.ResourceProviderStub(channel).GetSchema(provider_pb2.GetSchemaRequest(),
                                                                              timeout=30)
        assert json.loads(reply.schema) == golden
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- hosted construction: what the provider does when another language creates a component ------------

def as_engine_sends(value: Any) -> Any:
    """Every number as a float, at any depth (protobuf Struct numbers are doubles)."""
    if isinstance(value, dict):
        return {k: as_engine_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_engine_sends(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


@functools.lru_cache(maxsize=1)
def hosting_provider() -> Any:
    """The package's ComponentProvider (inferring its schema takes seconds: build it once)."""
    return package.component_provider()


def construct(token: str, inputs: dict[str, Any], config: dict[str, str] | None = None,
              secret_keys: list[str] | None = None, kubernetes: bool = False):
    """Construct a component as the provider host does (engine-style inputs: camelCase names,
    numbers as floats), under the recording mocks, with an explicit Kubernetes provider in its
    options when `kubernetes`. Returns (recorded run, component state)."""
    provider = hosting_provider()
    state: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        opts = None
        if kubernetes:
            import pulumi_kubernetes as k8s

            opts = pulumi.ResourceOptions(providers={"kubernetes": k8s.Provider("team-k8s", kubeconfig="{}")})
        result = provider.construct("hosted", token, as_engine_sends(inputs), opts)
        state.update(result.state)
        return {k: v for k, v in result.state.items() if v is not None}

    return run_program(program, config or {"aws:region": "us-east-1"}, secret_keys or [], "hosted", "us-east-1"), state


def test_hosted_gpu_node_pool_and_vllm_server():
    run, _ = construct("servingstack:index:GpuNodePool", {
        "clusterName": "team-a", "subnetIds": ["subnet-1", "subnet-2"], "poolName": "l40s",
        "instanceType": "g6e.xlarge", "minSize": 0, "maxSize": 2, "desiredSize": 1})
    group = run.one("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 1}
    assert group.inputs["instanceTypes"] == ["g6e.xlarge"]
    assert run.outputs["labels"] == {"nvidia.com/gpu.present": "true", "servingstack.io/pool": "l40s"}
    assert run.outputs["gpusPerNode"] == 1

    run, _ = construct("servingstack:index:VllmServer", {
        "namespace": "llm", "model": "meta-llama/Llama-3.1-8B-Instruct",
        "nodeLabels": {"nvidia.com/gpu.present": "true", "servingstack.io/pool": "l40s"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}],
        "replicas": 1, "tensorParallelSize": 1, "instanceType": "g6e.xlarge"}, kubernetes=True)
    deployment = run.manifest("Deployment")
    assert deployment["spec"]["replicas"] == 1
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "1"  # an int, though the engine sent 1.0
    assert all("pulumi:providers:kubernetes::team-k8s::" in r.provider
               for r in run.resources if r.type.startswith("kubernetes:"))
    assert run.outputs["endpoint"] == "http://llm.llm.svc.cluster.local:8000"


def test_hosted_serving_platform_takes_the_stack_file_config():
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    config = {("region" if k == "aws:region" else k.removeprefix("servingstack:")): v for k, v in stack.items()
              if k.startswith("servingstack:") or k == "aws:region"}
    config = {k: v for k, v in config.items() if not (isinstance(v, dict) and "secure" in v)}
    run, state = construct("servingstack:index:ServingPlatform", {
        "config": config, "hfToken": pulumi.Output.secret("hf_hosted"), "ngcApiKey": pulumi.Output.secret("nvapi")})
    assert run.of_type("aws:eks/nodeGroup:NodeGroup")
    assert run.outputs["endpoint"].startswith("http://")
    assert run.outputs["kubeconfig"] == "[secret]"
    assert set(state) == {camel(o) for o in output_names(servingstack.ServingPlatform)} - (
        set() if config["serving"].get("stack", "vllm") != "triton" else {"openaiBaseUrl"}) - (
        set() if config["serving"].get("triton", {}).get("models") else {"tritonModels"}) - (
        set() if (config.get("benchmark") or {}).get("enabled") else {"benchmark"})


def test_hosted_serving_platform_reports_config_errors_and_missing_secrets():
    # The provider host wraps the component's exception in ComponentInitError; the engine prints its message.
    with pytest.raises(ComponentInitError, match="clusterNam: unknown key"):
        construct("servingstack:index:ServingPlatform", {"config": {"clusterNam": "x"}})
    with pytest.raises(ComponentInitError, match="hfToken.*input"):
        construct("servingstack:index:ServingPlatform", {"config": {"hfToken": "hf_plaintext"}})
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    config = {k.removeprefix("servingstack:"): v for k, v in stack.items() if k.startswith("servingstack:")}
    config = {k: v for k, v in config.items() if not (isinstance(v, dict) and "secure" in v)}
    config["serving"] = {**config.get("serving", {}), "stack": "nim"}
    config["serving"].pop("vllm", None)
    with pytest.raises(ComponentInitError, match="ngcApiKey: is not set — pass it as the ServingPlatform input"):
        construct("servingstack:index:ServingPlatform", {"config": config})


def _hosted_nim_config(image: str) -> dict[str, Any]:
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    config = {("region" if k == "aws:region" else k.removeprefix("servingstack:")): v for k, v in stack.items()
              if k.startswith("servingstack:") or k == "aws:region"}
    config = {k: v for k, v in config.items() if not (isinstance(v, dict) and "secure" in v)}
    config["serving"] = {**config["serving"], "stack": "nim", "nim": {"image": image}}
    return config


def test_hosted_serving_platform_runs_a_public_nim_2x_model_without_an_ngc_key():
    """Issue 12: NIM 2.x (from 2.0.10) serves public models without NGC_API_KEY: the platform input
    ngcApiKey is optional there (no NgcCredentials, no pull secret), used when given, and still
    required for a 1.x image (the test above) and a Production Branch 2.x image."""
    public = _hosted_nim_config("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.12")
    run, _ = construct("servingstack:index:ServingPlatform", {"config": public})
    assert not run.of_type("servingstack:index:NgcCredentials")
    pod = run.manifest("Deployment")["spec"]["template"]["spec"]
    assert "imagePullSecrets" not in pod and "NGC_API_KEY" not in {e["name"] for e in pod["containers"][0]["env"]}
    run, _ = construct("servingstack:index:ServingPlatform", {"config": public, "ngcApiKey": pulumi.Output.secret("nvapi")})
    assert run.of_type("servingstack:index:NgcCredentials")
    pod = run.manifest("Deployment")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] and "NGC_API_KEY" in {e["name"] for e in pod["containers"][0]["env"]}
    with pytest.raises(ComponentInitError, match="ngcApiKey: is not set — pass it as the ServingPlatform input"):
        construct("servingstack:index:ServingPlatform",
                  {"config": _hosted_nim_config("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.4-pb6")})


# ---- the Pulumi YAML example, checked against the schema ------------------------------------------------

INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?[^}]*\}")


def yaml_program_problems(program: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Check a Pulumi YAML program's use of the package: every servingstack type exists, every
    property is an input, required inputs are set, plain inputs get no resource outputs, and every
    `${resource.output}` of a servingstack resource names an output."""
    problems: list[str] = []
    resources = program.get("resources") or {}
    config = set(program.get("config") or {})
    package_types = schema["resources"]
    for name, res in resources.items():
        typ = res.get("type", "")
        if not typ.startswith(f"{schema['name']}:"):
            continue
        if typ not in package_types:
            problems.append(f"{name}: unknown type {typ}")
            continue
        spec, props = package_types[typ], res.get("properties") or {}
        for key, value in props.items():
            if key not in spec["inputProperties"]:
                problems.append(f"{name}: {typ} has no input {key}")
            elif spec["inputProperties"][key].get("plain"):
                for ref, _ in INTERPOLATION.findall(json.dumps(value)):
                    if ref in resources:
                        problems.append(f"{name}: plain input {key} takes a resource output (${{{ref}...}})")
        for key in spec.get("requiredInputs", []):
            if key not in props:
                problems.append(f"{name}: required input {key} missing")
    text = json.dumps({k: v for k, v in program.items() if k in ("resources", "outputs", "variables")})
    for ref, prop in INTERPOLATION.findall(text):
        if ref in resources and resources[ref].get("type", "") in package_types and prop and prop != "urn":
            if prop not in package_types[resources[ref]["type"]]["properties"]:
                problems.append(f"${{{ref}.{prop}}}: {resources[ref]['type']} has no output {prop}")
        elif ref not in resources and ref not in config and not ref.startswith("pulumi"):
            problems.append(f"${{{ref}}}: no such resource or config value")
    return problems


def test_yaml_example_uses_the_package_as_the_schema_defines_it(golden):
    path = ROOT / "examples" / "package-yaml" / "Pulumi.yaml"
    program = yaml.safe_load(path.read_text())
    assert program["runtime"] == "yaml"
    source = program["packages"]["servingstack"]
    assert (path.parent / source / "PulumiPlugin.yaml").exists()
    used = {r["type"] for r in program["resources"].values() if r["type"].startswith("servingstack:")}
    assert used == {"servingstack:index:EksCluster", "servingstack:index:GpuNodePool",
                    "servingstack:index:NvidiaDevicePlugin", "servingstack:index:VllmServer",
                    "servingstack:index:HuggingFaceToken"}
    assert yaml_program_problems(program, golden) == []


def test_yaml_check_catches_mistakes(golden):
    program = yaml.safe_load((ROOT / "examples" / "package-yaml" / "Pulumi.yaml").read_text())
    program["resources"]["gpuPool"]["properties"]["instanceTyp"] = "g6e.xlarge"
    del program["resources"]["vllm"]["properties"]["model"]
    program["resources"]["vllm"]["properties"]["namespace"] = "${llmNamespace.metadata.name}"
    program["resources"]["extra"] = {"type": "servingstack:index:SglangServer"}
    program["outputs"]["bad"] = "${vllm.url}"
    assert sorted(yaml_program_problems(program, golden)) == sorted([
        "gpuPool: servingstack:index:GpuNodePool has no input instanceTyp",
        "vllm: required input model missing",
        "vllm: plain input namespace takes a resource output (${llmNamespace...})",
        "extra: unknown type servingstack:index:SglangServer",
        "${vllm.url}: servingstack:index:VllmServer has no output url",
    ])

