"""What a validated stack config occupies and costs (fit, nodes, monthly cost)."""

from __future__ import annotations

from dataclasses import dataclass

from ..planning import catalog
from ..planning.catalog import HOURS_PER_MONTH
from ..planning.cost import MonthlyCost, monthly_cost
from ..planning.resources import serving_nodes
from ..planning.sizing import FitReport
from .fit import fit_check
from .models import StackConfig


@dataclass(frozen=True)
class Estimate:
    fit: FitReport
    gpus_per_replica: int
    gpu_nodes: int
    cost: MonthlyCost
    extra_pools_usd: float = 0.0
    """Other GPU pools at their desired size and on-demand price (not in `cost`)."""


def hourly_rate(cfg: StackConfig) -> tuple[float, str]:
    """The per-node hourly rate for the serving pool's capacity type, and where it came from."""
    pool = cfg.serving_pool
    if pool.capacity_type == "SPOT" and cfg.cost.spot_usd_per_hour:
        return cfg.cost.spot_usd_per_hour, "spot (configured rate)"
    if pool.capacity_type == "CAPACITY_BLOCK" and cfg.cost.capacity_block_usd_per_hour:
        return cfg.cost.capacity_block_usd_per_hour, "capacity block (configured rate)"
    note = "" if pool.capacity_type == "ON_DEMAND" else f" (no {pool.capacity_type} rate configured)"
    return pool.instance.on_demand_usd_per_hour, f"on-demand {catalog.PRICES_AS_OF}{note}"


def estimate(cfg: StackConfig, stack: str | None = None) -> Estimate:
    """Fit, node count and monthly cost of the serving pool, optionally as if `stack` served it."""
    stack = stack or str(cfg.serving.stack)
    pool = cfg.serving_pool
    tp = cfg.serving.tensor_parallel_size
    nodes = serving_nodes(cfg.serving.replicas, tp, pool.instance.gpus, cfg.serving.spread == "hard",
                          pool.desired_size)
    rate, source = hourly_rate(cfg)
    licensed = cfg.serving.replicas * tp if stack == "nim" else 0
    cost = monthly_cost(nodes, rate, licensed, cfg.cost.nim_license_usd_per_gpu_month, source)
    extra = sum(p.desired_size * p.instance.on_demand_usd_per_hour * HOURS_PER_MONTH
                for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools] if p is not pool)
    return Estimate(fit=fit_check(cfg), gpus_per_replica=tp, gpu_nodes=nodes, cost=cost, extra_pools_usd=extra)
