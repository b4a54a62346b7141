"""Issue 5: one pod-spec contract, three serving stacks, and the reference deployments reproduced."""

import json
import re

import pytest

from servingstack.serving import triton_repo
from servingstack.planning.resources import startup_budget_seconds
from conftest import set_key, stack_config, synth, synth_config

REFERENCE_VLLM_ARGS = ["--model", "meta-llama/Llama-3.1-70B-Instruct", "--tensor-parallel-size", "2",
                       "--max-model-len", "8192", "--gpu-memory-utilization", "0.92", "--enable-prefix-caching",
                       "--max-num-seqs", "64", "--dtype", "auto"]
SERVING_URN = re.compile(r"servingstack:index:(VllmServer|TritonServer|NimServer|NgcCredentials|HuggingFaceToken"
                         r"|ModelReadAccess|ServingObservability|KedaAutoscaler)")


def container(result):
    return result.manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]


def pod(result):
    return result.manifest("Deployment")["spec"]["template"]["spec"]


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


# ---- reference deployments, field by field ------------------------------------------------------

def test_reference_vllm_in_prod():
    result = synth("prod")
    dep = result.manifest("Deployment")
    c = container(result)
    assert c["image"] == "vllm/vllm-openai:v0.8.4"
    assert dep["spec"]["replicas"] == 2
    assert c["args"] == REFERENCE_VLLM_ARGS
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in c["ports"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}


def test_reference_triton_in_staging():
    result = synth("staging")
    c = container(result)
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-vllm-python-py3", c["image"])
    bucket = result.outputs["modelStoreBucket"]
    assert c["args"] == ["tritonserver", f"--model-repository=s3://{bucket}/models/triton",
                         "--model-control-mode=poll", "--repository-poll-secs=30"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert [p["containerPort"] for p in c["ports"]] == [8000, 8001, 8002]
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # Credentials from the pod's IAM role only.
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env(c))
    assert env(c)["AWS_DEFAULT_REGION"]["value"] == "us-east-1"


def test_triton_pinned_release_is_explained_in_stack_file():
    text = open("stacks/Pulumi.staging.yaml").read()
    assert "24.05" in text and "0.5.3.post1" in text and "24.08" in text


def test_reference_nim_in_dev():
    result = synth("dev")
    c = container(result)
    image, tag = c["image"].rsplit(":", 1)
    assert image == "nvcr.io/nim/meta/llama-3.1-70b-instruct"
    assert tag and tag != "latest"
    assert env(c)["NGC_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "ngc-api", "key": "NGC_API_KEY"}}
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in c["ports"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod(result)["imagePullSecrets"] == [{"name": "ngc-secret"}]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert env(c)["NIM_CACHE_PATH"]["value"] == mounts["model-cache"]
    assert env(c)["NIM_SERVED_MODEL_NAME"]["value"] == "meta-llama/Llama-3.1-70B-Instruct"
    assert env(c)["NIM_MAX_MODEL_LEN"]["value"] == "8192"
    assert c["startupProbe"]["httpGet"]["path"] == "/v1/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v1/health/live"


# ---- the shared contract --------------------------------------------------------------------------

def test_gpu_request_equals_limit_equals_tp(stack):
    result = synth(stack)
    cfg = stack_config(stack)
    tp = cfg["servingstack:serving"]["tensorParallelSize"]
    res = container(result)["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == str(tp)


def test_scheduling_comes_from_the_node_pool(stack):
    result = synth(stack)
    (ng,) = [r.inputs for r in result.of_type("aws:eks/nodeGroup:NodeGroup") if r.name.startswith("pool-")]
    spec = pod(result)
    assert spec["nodeSelector"].items() <= ng["labels"].items()
    (taint,) = ng["taints"]
    assert {"key": taint["key"], "operator": "Equal", "value": taint["value"], "effect": "NoSchedule"} in spec["tolerations"]


def _gib(q):
    return int(q.removesuffix("Gi"))


def test_shm_sized_for_tp_and_counted_in_memory_limit(stack):
    result = synth(stack)
    vols = {v["name"]: v for v in pod(result)["volumes"]}
    shm = vols["dshm"]["emptyDir"]
    assert shm["medium"] == "Memory"
    tp = stack_config(stack)["servingstack:serving"]["tensorParallelSize"]
    assert _gib(shm["sizeLimit"]) >= (2 if tp == 1 else 4 * tp)
    res = container(result)["resources"]
    per_gpu = stack_config(stack)["servingstack:serving"].get("memoryGibPerGpu", 96)
    assert _gib(res["limits"]["memory"]) == per_gpu * tp + _gib(shm["sizeLimit"])
    assert res["requests"]["memory"] == res["limits"]["memory"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(result)["volumeMounts"]


def test_model_cache_is_node_local_emptydir_with_ephemeral_request(stack):
    result = synth(stack)
    cache = {v["name"]: v for v in pod(result)["volumes"]}["model-cache"]
    assert "emptyDir" in cache and "hostPath" not in cache
    assert "ephemeral-storage" in container(result)["resources"]["requests"]


def test_startup_budget_never_below_reference_for_70b(stack):
    result = synth(stack)
    c = container(result)
    s = c["startupProbe"]
    budget = s["periodSeconds"] * s["failureThreshold"]
    model = result.outputs["model"]
    if "70B" in model:
        assert budget >= 1840  # NIM chart 40 + 10 x 180 s; vLLM production-stack ~600 s
    else:
        assert budget >= 600
    assert c["livenessProbe"] and c["readinessProbe"]


def test_startup_budget_grows_with_model_size():
    budgets = [startup_budget_seconds(g) for g in (5, 15, 131, 378, 756)]
    assert budgets == sorted(budgets) and budgets[-1] > budgets[2] > budgets[0]


def test_security_context(stack):
    result = synth(stack)
    spec = pod(result)
    c = container(result)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))


def test_same_service_shape_for_all_stacks(stack):
    result = synth(stack)
    svc = result.manifest("Service")
    assert svc["metadata"]["name"] == "llm" and svc["metadata"]["namespace"] == "llm-serving"
    assert svc["spec"]["ports"][0] == {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    assert svc["spec"]["selector"].items() <= result.manifest("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    assert result.outputs["endpoint"] == "http://llm.llm-serving.svc.cluster.local:8000"


def test_pdb_and_spread_only_with_two_or_more_replicas():
    prod = synth("prod")
    assert prod.manifest("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    spec = pod(prod)
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    dev = synth("dev")
    assert not [m for m in dev.manifests() if m["kind"] == "PodDisruptionBudget"]
    assert "topologySpreadConstraints" not in pod(dev)
    soft = synth_config(set_key(stack_config("prod"), "servingstack:serving.spread", "soft"))
    (tsc,) = pod(soft)["topologySpreadConstraints"]
    assert tsc["whenUnsatisfiable"] == "ScheduleAnyway" and "affinity" not in pod(soft)


def test_network_policy_admits_only_configured_namespaces():
    np = synth_config(set_key(stack_config("prod"), "servingstack:observability", {"prometheus": "none"}),
                      name="prod").manifest("NetworkPolicy")
    (rule,) = np["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchExpressions"][0]["values"] == ["gateway", "llm-serving"]
    assert [p["port"] for p in rule["ports"]] == [8000]
    assert np["spec"]["podSelector"]["matchLabels"] == synth("prod").manifest("Deployment")["spec"]["selector"]["matchLabels"]


def test_namespace_enforces_restricted_pod_security(stack):
    ns = synth(stack).manifest("Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---- vLLM options ---------------------------------------------------------------------------------

def test_vllm_s3_weights_stream_with_runai_and_pod_role():
    cfg = set_key(stack_config("prod"), "servingstack:serving.weightsSource", "s3")
    result = synth_config(cfg)
    c = container(result)
    bucket = result.outputs["modelStoreBucket"]
    assert c["args"][:2] == ["--model", f"s3://{bucket}/models/meta-llama/Llama-3.1-70B-Instruct/"]
    assert c["args"][c["args"].index("--load-format") + 1] == "runai_streamer"
    assert c["args"][c["args"].index("--served-model-name") + 1] == "meta-llama/Llama-3.1-70B-Instruct"
    assert "HF_TOKEN_PATH" not in env(c) and "AWS_ACCESS_KEY_ID" not in env(c)


def test_vllm_options_and_passthrough():
    cfg = stack_config("prod")
    set_key(cfg, "servingstack:serving.vllm.speculativeModel", "meta-llama/Llama-3.2-1B-Instruct")
    set_key(cfg, "servingstack:serving.vllm.numSpeculativeTokens", 5)
    set_key(cfg, "servingstack:serving.vllm.extraArgs", ["--disable-log-requests"])
    set_key(cfg, "servingstack:serving.servedModelName", "llama-70b")
    args = container(synth_config(cfg))["args"]
    spec = json.loads(args[args.index("--speculative-config") + 1])
    assert spec == {"model": "meta-llama/Llama-3.2-1B-Instruct", "num_speculative_tokens": 5}
    assert args[-1] == "--disable-log-requests"
    assert args[args.index("--served-model-name") + 1] == "llama-70b"


def test_hf_token_is_a_file_not_env():
    c = container(synth("prod"))
    assert env(c)["HF_TOKEN_PATH"]["value"] == "/var/run/secrets/huggingface/HF_TOKEN"
    assert "HF_TOKEN" not in env(c)


# ---- Triton model repository ----------------------------------------------------------------------

def test_triton_repository_uploaded_and_parses_with_tritons_protobuf():
    model_config_pb2 = triton_model_config_module()
    from google.protobuf import text_format

    result = synth("staging")
    objects = {r.inputs["key"]: r.inputs for r in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    pbtxt = objects["models/triton/llama-70b/config.pbtxt"]["content"]
    config = text_format.Parse(pbtxt, model_config_pb2.ModelConfig())
    assert config.name == "llama-70b" and config.backend == "vllm"
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_MODEL
    engine = json.loads(objects["models/triton/llama-70b/1/model.json"]["content"])
    assert engine["model"] == "meta-llama/Llama-3.1-70B-Instruct"
    assert engine["tensor_parallel_size"] == 2 and engine["max_model_len"] == 8192
    assert engine["gpu_memory_utilization"] == 0.92
    with pytest.raises(text_format.ParseError):
        text_format.Parse('backend: "vllm"\ninstance_grup [ ]', model_config_pb2.ModelConfig())


def triton_model_config_module():
    """Triton's own model-config protobuf, as tritonclient ships it. Loaded by file path: importing
    the tritonclient.grpc package would also need its client dependencies (numpy, rapidjson)."""
    import importlib.util
    import os

    import tritonclient  # a required dev dependency (pyproject [dev]): the oracle never skips
    path = os.path.join(os.path.dirname(tritonclient.__file__), "grpc", "model_config_pb2.py")
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_triton_pbtxt_pure():
    text = triton_repo.config_pbtxt("m")
    assert 'backend: "vllm"' in text and "KIND_MODEL" in text and "REPORT_CUSTOM_METRICS" in text


# ---- switching stacks is one line -----------------------------------------------------------------

def _infrastructure(result):
    return {(r.type, r.name): r.inputs for r in result.resources
            if not SERVING_URN.search(r.urn) and r.type not in (
                "servingstack:index:ServingPlatform",)}


@pytest.mark.parametrize("other", ["triton", "nim"])
def test_switching_stack_changes_only_serving_resources(other):
    base = synth("prod")
    switched = synth_config(set_key(stack_config("prod"), "servingstack:serving.stack", other), name="prod")
    before, after = _infrastructure(base), _infrastructure(switched)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    # Only the serving workload's own Kubernetes objects may differ.
    assert not changed, changed
    for must in ("aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "kubernetes:helm.sh/v3:Release",
                 "aws:s3/bucket:Bucket", "aws:ec2/launchTemplate:LaunchTemplate"):
        assert [k for k in before if k[0] == must] and all(before[k] == after[k] for k in before if k[0] == must)
    assert switched.outputs["servingStack"] == other


# ---- what waits for what (recorded dependencies, as the engine would order them) --------------------

def _urns(result, type_):
    return {r.urn for r in result.of_type(type_)}


def test_serving_objects_wait_for_namespace_plugin_and_pool(stack):
    result = synth(stack)
    namespace = result.one("kubernetes:core/v1:Namespace").urn
    # The device plugin's releases (monitoring and autoscaler releases are not the pods' prerequisites).
    plugin = {r.urn for r in result.of_type("kubernetes:helm.sh/v3:Release") if "NvidiaDevicePlugin" in r.urn}
    assert plugin
    pool = {r.urn for r in result.of_type("aws:eks/nodeGroup:NodeGroup") if r.name.startswith("pool-")}
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:core/v1:ServiceAccount", "kubernetes:core/v1:Service",
                 "kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        for r in result.of_type(kind):
            assert namespace in r.dependencies, (kind, r.name)
            assert pool <= set(r.dependencies), (kind, r.name)
            assert plugin <= set(r.dependencies), (kind, r.name)
    for r in result.of_type("kubernetes:core/v1:Secret"):
        assert namespace in r.dependencies, r.name


def test_triton_waits_for_its_model_repository():
    result = synth("staging")
    objects = _urns(result, "aws:s3/bucketObjectv2:BucketObjectv2")
    assert len(objects) == 2
    assert objects <= set(result.one("kubernetes:apps/v1:Deployment").dependencies)


def test_rollout_waits_as_long_as_the_start_up_budget_allows(stack):
    """pulumi up must not give up on a healthy rollout: replicas x (start-up budget + image pull)."""
    result = synth(stack)
    dep = result.one("kubernetes:apps/v1:Deployment")
    budget = container(result)["startupProbe"]["periodSeconds"] * container(result)["startupProbe"]["failureThreshold"]
    replicas = max(1, dep.inputs["spec"]["replicas"])
    minutes = int(dep.timeouts["create"].removesuffix("m"))
    assert minutes * 60 >= replicas * budget
    assert dep.timeouts["update"] == dep.timeouts["create"]
    assert dep.inputs["spec"]["progressDeadlineSeconds"] >= budget


def test_serving_waits_for_pod_credentials_and_bucket():
    for name in ("prod", "staging"):
        result = synth(name)
        deps = set(result.one("kubernetes:apps/v1:Deployment").dependencies)
        role_policy = result.one("aws:iam/rolePolicy:RolePolicy").urn
        assert role_policy in deps
        assert result.one("aws:s3/bucketServerSideEncryptionConfiguration:"
                          "BucketServerSideEncryptionConfiguration").urn in deps
    staging = synth("staging")
    sse = staging.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").urn
    for obj in staging.of_type("aws:s3/bucketObjectv2:BucketObjectv2"):
        assert sse in obj.dependencies  # the repository is written SSE-KMS
