"""Loading the stack config: raw engine values -> validated StackConfig, one-line errors, secrets.

Part of the config module (components/config.py re-exports these); split only for size.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Mapping, Optional

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from .config import (
    CREATE_ONLY_CLUSTER_KEYS,
    NAMESPACE,
    SECRET_KEYS,
    ConfigError,
    StackConfig,
    _Cross,
)
from .aws.nodepool_spec import uses_nvme_raid
from .sizing import (
    DISK_RESERVED_GIB,
    FitError,
    FitReport,
    allocatable_cpu,
    allocatable_memory_gib,
    check_fit,
    default_cpu_per_gpu,
    default_memory_gib_per_gpu,
    pod_ephemeral_gib,
    pods_per_node,
    serving_nodes,
    shm_size_gib,
)


TOP_LEVEL_KEYS = {to_camel(k): k for k in StackConfig.model_fields}


def parse_stack_config(raw: Mapping[str, Any], *, notices: Optional[list[str]] = None) -> StackConfig:
    """Validate a raw `servingstack:`-namespaced config map (values as strings or JSON strings, as the
    engine passes them, or as already-decoded YAML values). Raises ConfigError; pure otherwise."""
    notices = notices if notices is not None else []
    data: dict[str, Any] = {}
    for full_key, value in raw.items():
        ns, _, key = full_key.partition(":")
        if ns != NAMESPACE:
            if ns == "aws" and key == "region":
                data["region"] = value
            continue
        if key in SECRET_KEYS:
            continue
        if key == "region":
            raise ConfigError(key, "unknown key — the region is the AWS provider's `aws:region`")
        if key not in TOP_LEVEL_KEYS:
            allowed = ", ".join(sorted([*TOP_LEVEL_KEYS.keys() - {"region"}, *SECRET_KEYS]))
            raise ConfigError(key, f"unknown key — allowed top-level keys are {allowed}")
        data[key] = _decode(key, value)
    cluster = data.get("cluster")
    if isinstance(cluster, dict) and cluster.get("create") is False:
        ignored = [k for k in CREATE_ONLY_CLUSTER_KEYS if k in cluster and k != "version"]
        if ignored:
            notices.append(f"notice: servingstack:cluster.{', cluster.'.join(ignored)} ignored: "
                           "they only apply when cluster.create is true")
    try:
        cfg = StackConfig.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(exc, data) from None
    report = fit_check(cfg)
    _check_capacity(cfg)
    _check_node_fit(cfg, report.weights_gib)
    return cfg


def _pool_key(cfg: StackConfig, field: str) -> str:
    pool = cfg.serving_pool
    if pool is cfg.gpu_node_pool:
        return f"gpuNodePool.{field}"
    return f"extraGpuNodePools.{next(i for i, p in enumerate(cfg.extra_gpu_node_pools) if p is pool)}.{field}"


def _check_capacity(cfg: StackConfig) -> None:
    """No cluster autoscaler is installed: the pool's desiredSize must hold every replica."""
    pool = cfg.serving_pool
    s = cfg.serving
    needed = serving_nodes(s.replicas, s.tensor_parallel_size, pool.instance.gpus, s.spread == "hard")
    if needed > pool.desired_size:
        raise ConfigError(_pool_key(cfg, "desiredSize"), (
            f"{pool.desired_size} — {s.replicas} replicas x {s.tensor_parallel_size} GPUs ({s.spread} spread) need "
            f"{needed} {pool.instance_type} nodes and no cluster autoscaler is installed — raise desiredSize "
            f"(and maxSize) to >= {needed} or lower serving.replicas"))


def pod_resources(cfg: StackConfig) -> tuple[float, int]:
    """(CPU cores, memory GiB) per GPU for the serving pods: configured, or derived from the instance."""
    instance = cfg.serving_pool.instance
    s = cfg.serving
    cpu = s.cpu_per_gpu if s.cpu_per_gpu is not None else default_cpu_per_gpu(instance)
    memory = s.memory_gib_per_gpu if s.memory_gib_per_gpu is not None else \
        default_memory_gib_per_gpu(instance, s.tensor_parallel_size)
    return cpu, memory


def _check_node_fit(cfg: StackConfig, weights_gib: float) -> None:
    """The pods that share a node must fit its allocatable CPU, memory and ephemeral storage."""
    pool = cfg.serving_pool
    instance = pool.instance
    s = cfg.serving
    tp = s.tensor_parallel_size
    per_node = pods_per_node(s.replicas, tp, instance.gpus, s.spread == "hard")
    cpu_per_gpu, memory_per_gpu = pod_resources(cfg)
    shm = shm_size_gib(tp)
    cpu_limit = allocatable_cpu(instance)
    if per_node * cpu_per_gpu * tp > cpu_limit:
        raise ConfigError("serving.cpuPerGpu", (
            f"{cpu_per_gpu:g} — {per_node} pod(s) x {tp} GPUs x {cpu_per_gpu:g} cores exceed the ~{cpu_limit:g} "
            f"allocatable cores of {instance.name} — use cpuPerGpu <= {int(cpu_limit // (per_node * tp))}"))
    memory_limit = allocatable_memory_gib(instance)
    if per_node * (memory_per_gpu * tp + shm) > memory_limit:
        fits = int((memory_limit / per_node - shm) // tp)
        raise ConfigError("serving.memoryGibPerGpu", (
            f"{memory_per_gpu} — {per_node} pod(s) x ({tp} GPUs x {memory_per_gpu} GiB + {shm} GiB /dev/shm) "
            f"exceed the ~{memory_limit:.0f} GiB allocatable memory of {instance.name} — use memoryGibPerGpu "
            f"<= {max(fits, 0)}"))
    needed = per_node * pod_ephemeral_gib(weights_gib)
    if uses_nvme_raid(pool.ami_type, instance, pool.local_nvme_raid0):
        capacity, where = instance.nvme_gb * 1e9 / 2**30 * 0.95, f"the RAID0 NVMe of {instance.name}"
        if needed > capacity:
            raise ConfigError("serving.replicas", (
                f"{s.replicas} — {per_node} pod(s) x {pod_ephemeral_gib(weights_gib)} GiB model cache exceed "
                f"{capacity:.0f} GiB on {where} — use spread: hard or fewer replicas per node"))
    else:
        capacity = pool.disk_size_gib - DISK_RESERVED_GIB
        if needed > capacity:
            raise ConfigError(_pool_key(cfg, "diskSizeGib"), (
                f"{pool.disk_size_gib} — {per_node} pod(s) x {pod_ephemeral_gib(weights_gib)} GiB model cache need "
                f"{needed} GiB of ephemeral storage beside {DISK_RESERVED_GIB} GiB for images and the OS — raise "
                f"diskSizeGib to >= {needed + DISK_RESERVED_GIB} or use local NVMe (localNvmeRaid0 on AL2023)"))


def fit_check(cfg: StackConfig) -> FitReport:
    try:
        return check_fit(cfg.serving.architecture, cfg.serving_pool.instance, cfg.serving.shape)
    except FitError as exc:
        raise ConfigError(exc.key, f"{_fmt_value(_lookup(cfg, exc.key))} — {exc.message}") from None


def _lookup(cfg: StackConfig, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, snake_case(part))
    return obj


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key == "environment" or key == "region":
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(key, f"{value!r} is not valid JSON/YAML for an object — see the README config reference")


def _to_config_error(exc: ValidationError, data: Mapping[str, Any]) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    ctx_error = (err.get("ctx") or {}).get("error")
    message = err["msg"]
    if isinstance(ctx_error, _Cross):
        # A model validator: its location is the model; the rule names the field inside it.
        loc = loc + ctx_error.key.split(".")
        message = ctx_error.message
        value = _dig(data, loc)
    else:
        message = message.removeprefix("Value error, ")
        value = err.get("input")
    if loc[:1] == ["region"]:
        loc[0] = "aws:region"  # read from the aws provider's config, not the servingstack: namespace
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f"allowed keys are {', '.join(allowed)}" if allowed else "see the README config reference"
        return ConfigError(key, f"unknown key — {hint}")
    if err["type"] == "missing":
        return ConfigError(key, "is required")
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if isinstance(ctx_error, _Cross) or (err["type"] == "value_error" and _names_value(message, value)):
        return ConfigError(key, f"{message}{suffix}")
    return ConfigError(key, f"{_fmt_value(value)} — {message}{suffix}")


def _names_value(message: str, value: Any) -> bool:
    """Whether a validator's own message already quotes the bad value (or the bad list item)."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and repr(v) in message for v in items)


def _allowed_keys(loc: list[str]) -> list[str]:
    """camelCase keys of the config object at `loc` (list indexes skipped)."""
    model: Any = StackConfig
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(snake_case(part)) if isinstance(model, type) else None
        if field is None:
            return []
        model = next((a for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                      if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return sorted(to_camel(k) for k in model.model_fields)


def _dig(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _fmt_value(value: Any) -> str:
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, str):
        return repr(value)
    return str(value)


def raw_config_from_runtime() -> dict[str, Any]:
    """Every `servingstack:` / `aws:region` value the engine (or synth) handed the program."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return {k: v for k, v in raw.items() if k.startswith(f"{NAMESPACE}:") or k == "aws:region"}


def load_stack_config() -> StackConfig:
    """Read and validate the stack's config from the running Pulumi program."""
    notices: list[str] = []
    cfg = parse_stack_config(raw_config_from_runtime(), notices=notices)
    for notice in notices:
        print(notice, file=sys.stderr)
    return cfg


# ---- secrets -----------------------------------------------------------------------------------

def secret_needed(cfg: StackConfig) -> dict[str, bool]:
    """Which secret config keys this stack needs: NGC for NIM (its image and model downloads; the
    Triton images on nvcr.io are public); HF for gated Hugging Face downloads by vLLM/Triton."""
    ngc = cfg.serving.stack == "nim"
    hf = (cfg.serving.stack != "nim" and cfg.serving.weights_source == "huggingface"
          and cfg.serving.architecture.gated)
    return {"ngcApiKey": ngc, "hfToken": hf}


def require_secret(key: str) -> pulumi.Output[str]:
    """A secret config value as a secret Output. Fails in one line if it is missing or was set in
    plaintext (it must come from `pulumi config set --secret`)."""
    from pulumi.runtime import config as runtime_config

    full = f"{NAMESPACE}:{key}"
    value = runtime_config.get_config(full)
    if value is None:
        raise ConfigError(key, f"is not set — run `pulumi config set --secret {full} <value>`")
    # The language host passes secret keys either through set_all_config or the environment.
    if not (runtime_config.is_config_secret(full) or full in runtime_config.get_config_secret_keys_env()):
        raise ConfigError(key, f"is set in plaintext — remove it and run `pulumi config set --secret {full} <value>`")
    return pulumi.Output.secret(str(value))
