"""Issue 12: pods as the pinned engines need them — rollouts and drains, time-slicing, the Triton
repository, NIM's writable paths and 1.x/2.x contracts, vLLM's environment."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import set_key, stack_config, synth, synth_config
from servingstack.config import ConfigError, parse_stack_config, secret_needed
from servingstack.k8s import podspec
from servingstack.planning import engines, resources
from servingstack.serving import triton_repo
from servingstack.serving.triton import REPOSITORY_HASH_ANNOTATION
from servingstack.tools.synth import engine_config


def _deployment(result):
    return result.manifest("Deployment")


def _pod(result):
    return _deployment(result)["spec"]["template"]["spec"]


def _container(result):
    return _pod(result)["containers"][0]


def _env(result):
    return {e["name"]: e for e in _container(result).get("env", [])}


def _parse(cfg):
    config, _, _ = engine_config(cfg)
    return parse_stack_config(config)


# ---- rollouts, drains, disruption budgets -----------------------------------------------------------

def _free_slots(stack_file: str) -> int:
    cfg = stack_config(stack_file)
    s, pool = cfg["servingstack:serving"], cfg["servingstack:gpuNodePool"]
    from servingstack.planning.catalog import INSTANCE_TYPES
    gpus = INSTANCE_TYPES[pool["instanceType"]].gpus
    return resources.spare_replica_slots(s["replicas"], s["tensorParallelSize"], gpus, pool["desiredSize"],
                                         s.get("spread") == "hard")


@pytest.mark.parametrize("stack_file,surges", [("dev", True), ("staging", True), ("dev-small", False), ("prod", False)])
def test_rolling_update_surges_where_the_pool_has_a_free_slot(stack_file, surges):
    """dev and staging (one replica x 2 GPUs on a p4de: 3 more fit) surge; dev-small (its only L4
    is taken) and prod (hard spread, no node without a replica) replace one replica at a time."""
    assert (_free_slots(stack_file) >= 1) is surges
    strategy = _deployment(synth(stack_file))["spec"]["strategy"]["rollingUpdate"]
    assert strategy == ({"maxSurge": 1, "maxUnavailable": 0} if surges else {"maxSurge": 0, "maxUnavailable": 1})


def test_spare_slots_follow_the_pool():
    assert resources.spare_replica_slots(1, 2, 8, 1, False) == 3
    assert resources.spare_replica_slots(2, 2, 8, 2, True) == 0
    assert resources.spare_replica_slots(2, 2, 8, 3, True) == 1
    assert resources.spare_replica_slots(1, 1, 1, 1, False) == 0
    more = synth_config(set_key(stack_config("prod"), "servingstack:gpuNodePool.desiredSize", 3))
    assert _deployment(more)["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_pdb_lets_unhealthy_pods_be_evicted():
    pdb = synth("prod").manifest("PodDisruptionBudget")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pods_drain_in_flight_streams_before_sigterm(stack):
    result = synth(stack)
    pod, c = _pod(result), _container(result)
    max_model_len = stack_config(stack)["servingstack:serving"]["maxModelLen"]
    drain = resources.drain_seconds(max_model_len)
    assert c["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", str(drain)]}}
    # The longest planned stream (2048 tokens at 16 tokens/s) fits the drain; SIGTERM comes after.
    assert drain * resources.DRAIN_TOKENS_PER_SECOND >= min(max_model_len, resources.DRAIN_STREAM_TOKENS)
    assert pod["terminationGracePeriodSeconds"] > drain


def test_drain_is_configurable():
    result = synth_config(set_key(stack_config("prod"), "servingstack:serving.drainSeconds", 600))
    assert _container(result)["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "600"]
    assert _pod(result)["terminationGracePeriodSeconds"] == 630


def test_rollout_timeouts_cover_every_replacement(stack):
    result = synth(stack)
    dep = result.one("kubernetes:apps/v1:Deployment")
    c = _container(result)
    budget = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
    grace = _pod(result)["terminationGracePeriodSeconds"]
    per_replica = budget + podspec.PULL_SLACK_SECONDS + grace
    assert int(dep.timeouts["create"].removesuffix("m")) * 60 >= max(1, dep.inputs["spec"]["replicas"]) * per_replica
    assert dep.timeouts["update"] == dep.timeouts["create"]
    assert dep.inputs["spec"]["progressDeadlineSeconds"] >= per_replica


# ---- time-slicing ----------------------------------------------------------------------------------

def test_time_slicing_with_tensor_parallelism_is_refused():
    cfg = set_key(stack_config("dev"), "servingstack:devicePlugin.timeSlicingReplicas", 4)
    with pytest.raises(ConfigError) as err:
        _parse(cfg)
    message = str(err.value)
    assert "\n" not in message and message.startswith("servingstack:devicePlugin.timeSlicingReplicas: 4")
    assert "tensorParallelSize 2" in message


def test_time_slicing_fences_multi_gpu_requests():
    cfg = set_key(stack_config("dev"), "servingstack:devicePlugin.timeSlicingReplicas", 4)
    set_key(cfg, "servingstack:serving.tensorParallelSize", 1)
    set_key(cfg, "servingstack:serving.model", "meta-llama/Llama-3.1-8B-Instruct")
    result = synth_config(cfg)
    (release,) = [r for r in result.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "nvidia-device-plugin"]
    plugin = yaml.safe_load(release.inputs["values"]["config"]["map"]["default"])
    assert plugin["sharing"]["timeSlicing"]["failRequestsGreaterThanOne"] is True
    # Time-sliced: 8 GPUs advertised 4 times each, one GPU per replica: plenty of surge room.
    assert _deployment(result)["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1


# ---- Triton -----------------------------------------------------------------------------------------

def _objects(result):
    return {r.inputs["key"]: r.inputs["content"] for r in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}


def test_triton_reports_vllm_metrics_with_the_value_the_backend_tests():
    from test_serving import triton_model_config_module
    from google.protobuf import text_format

    pb2 = triton_model_config_module()
    pbtxt = _objects(synth("staging"))["models/triton/llama-70b/config.pbtxt"]
    config = text_format.Parse(pbtxt, pb2.ModelConfig())
    assert config.parameters["REPORT_CUSTOM_METRICS"].string_value == "yes"


def test_triton_multi_gpu_uses_the_ray_executor():
    engine = json.loads(_objects(synth("staging"))["models/triton/llama-70b/1/model.json"])
    assert engine["tensor_parallel_size"] == 2 and engine["distributed_executor_backend"] == "ray"
    single = triton_repo.engine_args("m", 1, 8192, 0.9, 16, True, "auto")
    assert "distributed_executor_backend" not in single


@pytest.mark.parametrize("key,value", [("maxNumSeqs", 32), ("gpuMemoryUtilization", 0.9), ("triton.modelName", "llm2"),
                                       ("enablePrefixCaching", False)])
def test_a_repository_change_changes_the_pod_template(key, value):
    base = synth("staging")
    changed = synth_config(set_key(stack_config("staging"), f"servingstack:serving.{key}", value))
    before = _deployment(base)["spec"]["template"]["metadata"]["annotations"][REPOSITORY_HASH_ANNOTATION]
    after = _deployment(changed)["spec"]["template"]["metadata"]["annotations"][REPOSITORY_HASH_ANNOTATION]
    assert before != after
    # The hash is over the files as uploaded (keys relative to the repository prefix).
    uploaded = {k.removeprefix("models/triton/"): v for k, v in _objects(base).items()}
    assert before == triton_repo.repository_hash(uploaded)


def test_repository_api_merges_models():
    a = triton_repo.repository_files("a", model="x", tensor_parallel_size=1, max_model_len=4096,
                                     gpu_memory_utilization=0.9, max_num_seqs=8, enable_prefix_caching=True, dtype="auto")
    b = triton_repo.vllm_model("b", triton_repo.engine_args("y", 2, 4096, 0.9, 8, True, "auto"))
    merged = triton_repo.merge(a, b)
    assert sorted(merged) == ["a/1/model.json", "a/config.pbtxt", "b/1/model.json", "b/config.pbtxt"]
    with pytest.raises(ValueError):
        triton_repo.merge(a, a)


# ---- NIM -----------------------------------------------------------------------------------------

def _writable(result) -> set[str]:
    pod = _pod(result)
    vols = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"] for m in _container(result)["volumeMounts"] if "emptyDir" in vols[m["name"]]}


def _nim(image=None, **serving):
    cfg = set_key(stack_config("dev"), "servingstack:serving.stack", "nim")
    if image:
        set_key(cfg, "servingstack:serving.nim.image", image)
    for k, v in serving.items():
        set_key(cfg, f"servingstack:serving.{k}", v)
    return cfg


@pytest.mark.parametrize("image,major", [(None, 1), ("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.12", 2)])
def test_nim_has_a_writable_volume_at_every_path_its_release_writes(image, major):
    result = synth_config(_nim(image))
    line = engines.NIM_RELEASE_LINES[major]
    assert set(line.writable_paths) <= _writable(result)
    assert {"/opt/nim/.cache", "/tmp"} <= _writable(result)
    assert _container(result)["securityContext"]["readOnlyRootFilesystem"] is True
    assert _env(result)["HOME"]["value"] == line.home
    assert any(line.home == p or line.home.startswith(p + "/") for p in _writable(result))


def test_nim_2x_environment_contract_and_public_models_without_a_key():
    cfg = _nim("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.12")
    assert secret_needed(_parse(cfg))["ngcApiKey"] is False
    result = synth_config(cfg)
    env = _env(result)
    assert "NGC_API_KEY" not in env and "OUTLINES_CACHE_DIR" not in env
    assert env["NIM_SERVED_MODEL_NAME"]["value"] and env["NIM_MAX_MODEL_LEN"]["value"] == "8192"
    assert "imagePullSecrets" not in _pod(result)
    assert not result.of_type("servingstack:index:NgcCredentials")
    # 1.x keeps its contract and its key.
    one = synth("dev")
    assert "OUTLINES_CACHE_DIR" in _env(one) and "NGC_API_KEY" in _env(one)


def test_nim_2x_with_a_key_uses_it():
    cfg = _nim("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.12")
    result = synth_config(cfg, secrets={"ngcApiKey": "nvapi-test-key"})
    assert "NGC_API_KEY" in _env(result) and _pod(result)["imagePullSecrets"] == [{"name": "ngc-secret"}]


@pytest.mark.parametrize("image,needed", [("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.4-pb6", True),
                                          ("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.0.9", True),
                                          ("nvcr.io/nim/meta/llama-3.1-70b-instruct:2.1.6", False),
                                          ("nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.0", True)])
def test_ngc_key_needed_per_release(image, needed):
    assert secret_needed(_parse(_nim(image)))["ngcApiKey"] is needed


@pytest.mark.parametrize("image,fix", [("nvcr.io/nim/meta/llama-3.1-70b-instruct:latest", "serving.nim.release"),
                                       ("nvcr.io/nim/meta/llama-3.1-70b-instruct:3.0.0", "1.x or 2.x")])
def test_nim_release_line_must_be_known(image, fix):
    with pytest.raises(ConfigError) as err:
        _parse(_nim(image))
    assert str(err.value).startswith("servingstack:serving.nim.image:") and fix in str(err.value)
    assert "\n" not in str(err.value)


def test_nim_release_override():
    cfg = _nim("nvcr.io/nim/meta/llama-3.1-70b-instruct@sha256:" + "a" * 64, **{"nim.release": "2.1.6"})
    assert secret_needed(_parse(cfg))["ngcApiKey"] is False


# ---- vLLM environment ------------------------------------------------------------------------------

@pytest.mark.parametrize("image,hf_transfer", [(None, True), ("vllm/vllm-openai:v0.33.0", False)])
def test_vllm_environment(image, hf_transfer):
    cfg = stack_config("prod")
    if image:
        set_key(cfg, "servingstack:serving.vllm.image", image)
    env = _env(synth_config(cfg))
    assert env["USER"]["value"] and env["LOGNAME"]["value"]
    assert env["VLLM_NO_USAGE_STATS"]["value"] == "1" and env["DO_NOT_TRACK"]["value"] == "1"
    assert ("HF_HUB_ENABLE_HF_TRANSFER" in env) is hf_transfer
    if hf_transfer:
        assert env["HF_HUB_ENABLE_HF_TRANSFER"]["value"] == "1"
