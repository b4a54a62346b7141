"""What an autoscaled environment costs per month at its fewest, expected and most replicas, from
the same estimate (config/estimate.py) and performance model (planning/performance.py) as a fixed one.

- min / max: autoscaling.minReplicas / maxReplicas, on the nodes they occupy; an autoscaled pool
  shrinks to its minSize (0: no GPU node, so only the environment's fixed costs remain).
- expected: where KEDA settles for servingstack:workload. KEDA's prometheus trigger (AverageValue)
  asks for replicas until the requests waiting per replica are at most queueThreshold; the
  performance model gives the requests each replica queues (its share of the workload's concurrency
  beyond what its batch and KV cache hold), so expected = the fewest replicas in [min, max] (at least
  one while the workload sends anything) whose predicted queue per replica is within the threshold,
  else max.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..planning.performance import predict
from ..planning.resources import serving_nodes
from ..planning.sizing import FitError
from .autoscaling import node_autoscaled
from .estimate import engine_shape, estimate
from .models import StackConfig


@dataclass(frozen=True)
class ScalingPoint:
    label: str
    replicas: int
    gpu_nodes: int
    serving_usd: float
    """Serving GPU nodes and licences per month."""
    environment_usd: float
    """The whole environment per month (fixed costs and other pools too)."""


def expected_replicas(cfg: StackConfig) -> int:
    """The replica count KEDA settles at for the configured workload (see the module docstring)."""
    a, s = cfg.autoscaling, cfg.serving
    shape = engine_shape(cfg, str(s.stack))
    for replicas in range(max(a.min_replicas, 1), a.max_replicas + 1):
        try:
            queued = predict(s.architecture, cfg.serving_pool.instance, shape, cfg.workload.per_replica(replicas)).queued
        except FitError:
            return a.max_replicas
        if queued <= a.queue_threshold:
            return replicas
    return a.max_replicas


def at_replicas(cfg: StackConfig, replicas: int) -> StackConfig:
    """The config as it stands with `replicas` serving replicas: an autoscaled serving pool holds
    just the nodes they need (never fewer than its minSize)."""
    s, pool = cfg.serving, cfg.serving_pool
    update: dict = {"serving": s.model_copy(update={"replicas": replicas})}
    if node_autoscaled(cfg, pool):
        nodes = serving_nodes(replicas, s.tensor_parallel_size, pool.instance.gpus, s.spread == "hard")
        sized = pool.model_copy(update={"desired_size": max(pool.min_size, nodes)})
        if pool is cfg.gpu_node_pool:
            update["gpu_node_pool"] = sized
        else:
            update["extra_gpu_node_pools"] = [sized if p is pool else p for p in cfg.extra_gpu_node_pools]
    return cfg.model_copy(update=update)


def scaling_costs(cfg: StackConfig) -> list[ScalingPoint]:
    """Monthly cost at min, expected and max replicas (autoscaling on), from `estimate`."""
    a = cfg.autoscaling
    points = []
    for label, replicas in (("min", a.min_replicas), ("expected", expected_replicas(cfg)), ("max", a.max_replicas)):
        e = estimate(at_replicas(cfg, replicas))
        points.append(ScalingPoint(label, replicas, e.gpu_nodes, round(e.cost.total_usd, 2), round(e.environment_usd, 2)))
    return points


def scaling_cost_output(cfg: StackConfig) -> dict:
    """outputs.json's autoscaling.monthlyCost: {min|expected|max: {replicas, gpuNodes, servingUsd, environmentUsd}}."""
    return {p.label: {"replicas": p.replicas, "gpuNodes": p.gpu_nodes, "servingUsd": p.serving_usd,
                      "environmentUsd": p.environment_usd} for p in scaling_costs(cfg)}
