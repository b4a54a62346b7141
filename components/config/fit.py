"""Plan-time checks of a validated config against its hardware: the model fits its GPUs, the pool
holds every replica, and the pods that share a node fit its CPU, memory and ephemeral storage."""

from __future__ import annotations

from typing import Any

from ..planning.node import uses_nvme_raid
from ..planning.resources import (
    DISK_RESERVED_GIB,
    allocatable_cpu,
    allocatable_memory_gib,
    default_cpu_per_gpu,
    default_memory_gib_per_gpu,
    pod_ephemeral_gib,
    pods_per_node,
    serving_nodes,
    shm_size_gib,
    startup_budget_seconds,
    startup_floor_seconds,
)
from ..planning.sizing import FitError, FitReport, check_fit
from .errors import ConfigError, format_value
from .fields import snake_case
from .autoscaling import node_autoscaled
from .models import StackConfig


def check_plan(cfg: StackConfig) -> FitReport:
    """Every hardware check, in the order a user would fix them; returns the fit report."""
    report = fit_check(cfg)
    _check_capacity(cfg)
    _check_node_fit(cfg, report.weights_gib)
    _check_startup(cfg, report.weights_gib)
    return report


def _check_startup(cfg: StackConfig, weights_gib: float) -> None:
    """A start-up budget shorter than the model can possibly load in restarts every pod forever."""
    budget = cfg.serving.startup_seconds
    floor = startup_floor_seconds(weights_gib)
    if budget is not None and budget < floor:
        raise ConfigError("serving.startupSeconds", (
            f"{budget} — {weights_gib:.0f} GiB of {cfg.serving.model} weights cannot load and start in under ~{floor} s "
            f"(at the fastest path planned for): the startup probe would kill every pod first — use >= {floor} or "
            f"leave it unset (default {startup_budget_seconds(weights_gib)} s)"))


def _pool_key(cfg: StackConfig, field: str) -> str:
    pool = cfg.serving_pool
    if pool is cfg.gpu_node_pool:
        return f"gpuNodePool.{field}"
    return f"extraGpuNodePools.{next(i for i, p in enumerate(cfg.extra_gpu_node_pools) if p is pool)}.{field}"


def _check_capacity(cfg: StackConfig) -> None:
    """Without a node autoscaler the pool's desiredSize must hold every replica (with replica
    autoscaling: maxReplicas); with one, its maxSize must hold maxReplicas."""
    pool = cfg.serving_pool
    s = cfg.serving
    replicas = cfg.autoscaling.max_replicas if cfg.autoscaling.enabled else s.replicas
    needed = serving_nodes(replicas, s.tensor_parallel_size, pool.instance.gpus, s.spread == "hard")
    if node_autoscaled(cfg, pool):
        if needed > pool.max_size:
            raise ConfigError(_pool_key(cfg, "maxSize"), (
                f"{pool.max_size} — autoscaling.maxReplicas {replicas} x {s.tensor_parallel_size} GPUs "
                f"({s.spread} spread) need {needed} {pool.instance_type} nodes — raise maxSize to >= {needed} "
                "or lower autoscaling.maxReplicas"))
        return
    if needed > pool.desired_size:
        raise ConfigError(_pool_key(cfg, "desiredSize"), (
            f"{pool.desired_size} — {replicas} replicas x {s.tensor_parallel_size} GPUs ({s.spread} spread) need "
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
    replicas = max(s.replicas, cfg.autoscaling.max_replicas if cfg.autoscaling.enabled else 0)
    per_node = pods_per_node(replicas, tp, instance.gpus, s.spread == "hard")
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
        raise ConfigError(exc.key, f"{format_value(_lookup(cfg, exc.key))} — {exc.message}") from None


def _lookup(cfg: StackConfig, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, snake_case(part))
    return obj


