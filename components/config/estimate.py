"""What a validated stack config occupies, costs and delivers: fit, nodes, GPUs paid vs used, the
environment's monthly and first-year cost, and the performance estimate with its warnings."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from dataclasses import dataclass
from typing import Optional

from ..planning import catalog
from ..planning.catalog import BYTES_PER_PARAM, HOURS_PER_MONTH
from ..planning.cost import (
    FixedCost,
    GpuUse,
    MonthlyCost,
    PackedAlternative,
    first_year_usd,
    fixed_costs,
    gpu_use,
    monthly_cost,
    packed_alternative,
)
from ..planning.performance import Prediction, Workload, predict, usd_per_million_tokens
from ..planning.resources import serving_nodes
from ..planning.sizing import FitError, FitReport, ServingShape, check_fit
from .fit import fit_check
from .models import StackConfig


@dataclass(frozen=True)
class Performance:
    """The performance estimate of the serving replicas at the configured workload."""

    replica: Prediction
    """The busiest replica (the workload's concurrency split evenly, rounded up)."""
    output_tokens_per_second: float
    """All replicas together."""
    total_tokens_per_second: float
    usd_per_million_output_tokens_per_replica: float
    usd_per_million_output_tokens: float
    """Serving GPUs (idle ones included) and licences over the environment's output tokens."""
    usd_per_million_output_tokens_all_in: float
    """The environment's whole monthly cost (fixed costs and other GPU pools too) over its output tokens."""


@dataclass(frozen=True)
class Estimate:
    fit: FitReport
    gpus_per_replica: int
    gpu_nodes: int
    cost: MonthlyCost
    extra_pools_usd: float = 0.0
    """Other GPU pools at their desired size and on-demand price (not in `cost`)."""
    gpu_use: Optional[GpuUse] = None
    packed: Optional[PackedAlternative] = None
    fixed: tuple[FixedCost, ...] = ()
    environment_usd: float = 0.0
    """Per month: serving GPUs, licences, other GPU pools and the fixed costs."""
    setup_hours: float = 0.0
    first_year_usd: float = 0.0
    """12 x environment_usd + setup hours x the engineering rate."""
    performance: Optional[Performance] = None
    warnings: tuple[str, ...] = ()


def hourly_rate(cfg: StackConfig) -> tuple[float, str]:
    """The per-node hourly rate for the serving pool's capacity type, and where it came from."""
    pool = cfg.serving_pool
    if pool.capacity_type == "SPOT" and cfg.cost.spot_usd_per_hour:
        return cfg.cost.spot_usd_per_hour, "spot (configured rate)"
    if pool.capacity_type == "CAPACITY_BLOCK" and cfg.cost.capacity_block_usd_per_hour:
        return cfg.cost.capacity_block_usd_per_hour, "capacity block (configured rate)"
    note = "" if pool.capacity_type == "ON_DEMAND" else f" (no {pool.capacity_type} rate configured)"
    return pool.instance.on_demand_usd_per_hour, f"on-demand {catalog.PRICES_AS_OF}{note}"


def engine_shape(cfg: StackConfig, stack: str) -> ServingShape:
    """The shape `stack` really runs: kvCacheDtype is a vLLM flag, and NIM picks its own profile (its
    precision is not in the config, so it is estimated as the checkpoint's)."""
    shape = cfg.serving.shape
    if stack != "vllm":
        shape = dataclasses.replace(shape, kv_cache_dtype="auto")
    if stack == "nim":
        shape = dataclasses.replace(shape, quantization=None)
    return shape


def estimate(cfg: StackConfig, stack: str | None = None, on: Optional[_dt.date] = None) -> Estimate:
    """Fit, nodes, costs and performance of the serving pool, optionally as if `stack` served it;
    `on` is the date the EKS control-plane rate is taken for (default today)."""
    stack = stack or str(cfg.serving.stack)
    on = on or _dt.date.today()
    pool = cfg.serving_pool
    s = cfg.serving
    tp = s.tensor_parallel_size
    nodes = serving_nodes(s.replicas, tp, pool.instance.gpus, s.spread == "hard", pool.desired_size)
    rate, source = hourly_rate(cfg)
    licensed = s.replicas * tp if stack == "nim" else 0
    cost = monthly_cost(nodes, rate, licensed, cfg.cost.nim_license_usd_per_gpu_per_month, source)
    extra = sum(p.desired_size * p.instance.on_demand_usd_per_hour * HOURS_PER_MONTH
                for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools] if p is not pool)
    c = cfg.cluster
    model = s.architecture
    in_bucket = model.parameters * BYTES_PER_PARAM[model.native_dtype] / 1e9 if s.weights_source == "s3" else 0.0
    fixed = tuple(fixed_costs(
        create_cluster=c.create, version=c.version, on=on,
        nat_gateways=1 if c.single_nat_gateway else len(c.availability_zone_ids or ()) or c.availability_zone_count,
        system_instance_type=c.system_node_pool.instance_type, system_nodes=c.system_node_pool.desired_size,
        gpu_nodes=sum(p.desired_size for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools]),
        gpu_disk_gib=pool.disk_size_gib, model_store_gb=in_bucket, support_type=c.support_type))
    environment = cost.total_usd + extra + sum(f.usd_per_month for f in fixed)
    hours = getattr(cfg.cost.setup_hours, stack)
    use = gpu_use(nodes, pool.instance.gpus, s.replicas, tp, rate)
    packed = packed_alternative(s.replicas, tp, pool.instance.gpus, nodes, rate)
    performance, warnings = _performance(cfg, stack, cost, environment)
    return Estimate(fit=fit_check(cfg), gpus_per_replica=tp, gpu_nodes=nodes, cost=cost, extra_pools_usd=extra,
                    gpu_use=use, packed=packed, fixed=fixed, environment_usd=environment, setup_hours=hours,
                    first_year_usd=first_year_usd(environment, hours, cfg.cost.engineering_usd_per_hour),
                    performance=performance, warnings=tuple(warnings))


def _performance(cfg: StackConfig, stack: str, cost: MonthlyCost,
                 environment_usd: float) -> tuple[Optional[Performance], list[str]]:
    s = cfg.serving
    w = cfg.workload
    if s.replicas == 0:
        return None, []
    model, instance, shape = s.architecture, cfg.serving_pool.instance, engine_shape(cfg, stack)
    busy = w.per_replica(s.replicas)
    try:
        replica = predict(model, instance, shape, busy)
    except FitError as exc:
        return None, [f"performance: not estimated for {stack} — {exc.message}"]
    # The concurrency split: `high` replicas carry ceil(C/R), the others floor(C/R) (possibly none).
    high = w.concurrency % s.replicas or s.replicas
    light = busy.concurrency - 1 if w.concurrency % s.replicas else busy.concurrency
    x_out, x_total = high * replica.output_tokens_per_second, high * replica.total_tokens_per_second
    if s.replicas > high and light > 0:
        other = predict(model, instance, shape, dataclasses.replace(busy, concurrency=light))
        x_out += (s.replicas - high) * other.output_tokens_per_second
        x_total += (s.replicas - high) * other.total_tokens_per_second
    serving_per_hour = cost.total_usd / HOURS_PER_MONTH
    perf = Performance(
        replica=replica, output_tokens_per_second=x_out, total_tokens_per_second=x_total,
        usd_per_million_output_tokens_per_replica=usd_per_million_tokens(serving_per_hour / s.replicas,
                                                                         replica.output_tokens_per_second),
        usd_per_million_output_tokens=usd_per_million_tokens(serving_per_hour, x_out),
        usd_per_million_output_tokens_all_in=usd_per_million_tokens(environment_usd / HOURS_PER_MONTH, x_out))
    return perf, _warnings(cfg, stack, shape, busy, replica)


def _warnings(cfg: StackConfig, stack: str, shape: ServingShape, w: Workload, p: Prediction) -> list[str]:
    s = cfg.serving
    out: list[str] = []
    per_request = w.input_tokens + w.output_tokens
    if per_request > s.max_model_len:
        out.append(f"workload: {w.input_tokens}+{w.output_tokens}-token requests exceed serving.maxModelLen "
                   f"{s.max_model_len}: the engine rejects them — raise maxModelLen to >= {per_request} or "
                   "shorten the workload")
    if w.concurrency > p.kv_concurrency:
        fixes = _kv_fixes(cfg, stack, shape, w)
        out.append(f"workload: {w.concurrency} concurrent {w.input_tokens}+{w.output_tokens}-token requests per "
                   f"replica exceed the KV cache ({p.kv_cache_tokens} tokens hold {p.kv_concurrency}): "
                   f"{w.concurrency - p.batch} wait for a slot and TTFT grows to ~{p.ttft_expected_ms / 1e3:.1f} s"
                   + (f" — fix: {'; '.join(fixes)}" if fixes else ""))
    elif w.concurrency > p.batch:
        out.append(f"workload: {w.concurrency} concurrent requests per replica exceed serving.maxNumSeqs "
                   f"{s.max_num_seqs}: {w.concurrency - p.batch} wait for a slot — raise maxNumSeqs")
    if w.ttft_p99_ms is not None and p.ttft_expected_ms > w.ttft_p99_ms:
        out.append(f"workload.ttftP99Ms: target {w.ttft_p99_ms:g} ms missed — expected TTFT {p.ttft_expected_ms:,.0f} ms "
                   f"(floor {p.ttft_floor_ms:,.0f} ms); fewer concurrent requests per replica (more replicas), a "
                   "larger tensorParallelSize or shorter prompts lower it")
    if w.itl_p50_ms is not None and p.itl_expected_ms > w.itl_p50_ms:
        hint = ("it is below the physical floor: only smaller weights (quantization fp8/awq) or faster GPUs reach it"
                if p.itl_floor_ms > w.itl_p50_ms else
                "fewer concurrent requests per replica, quantization fp8 or a larger tensorParallelSize lower it")
        out.append(f"workload.itlP50Ms: target {w.itl_p50_ms:g} ms missed — expected ITL {p.itl_expected_ms:.1f} ms "
                   f"(floor {p.itl_floor_ms:.1f} ms); {hint}")
    return out


def _kv_fixes(cfg: StackConfig, stack: str, shape: ServingShape, w: Workload) -> list[str]:
    """Changes that would hold the workload's concurrency, each checked with the same fit math."""
    s, model, instance = cfg.serving, cfg.serving.architecture, cfg.serving_pool.instance
    per_request = w.input_tokens + w.output_tokens

    def holds(candidate: ServingShape) -> Optional[int]:
        try:
            return check_fit(model, instance, candidate).kv_cache_tokens // per_request
        except FitError:
            return None

    fixes = []
    if stack == "vllm" and not shape.kv_cache_dtype.startswith("fp8"):
        n = holds(dataclasses.replace(shape, kv_cache_dtype="fp8"))
        if n:
            fixes.append(f"serving.vllm.kvCacheDtype fp8 (holds {n})")
    for tp in range(shape.tensor_parallel_size + 1, instance.gpus + 1):
        n = holds(dataclasses.replace(shape, tensor_parallel_size=tp))
        if n and n > 0:
            fixes.append(f"serving.tensorParallelSize {tp} (holds {n})")
            break
    need = -(-cfg.workload.concurrency // max(1, holds(shape) or 1))
    if need > s.replicas:
        fixes.append(f"serving.replicas {need} (the workload split {need} ways)")
    return fixes


# ---- outputs.json ----------------------------------------------------------------------------

def performance_output(e: Estimate, cfg: StackConfig) -> dict:
    """The `performance` output: per-replica figures at the top level, the environment's beside them."""
    w = cfg.workload
    workload = {"inputTokens": w.input_tokens, "outputTokens": w.output_tokens, "concurrency": w.concurrency,
                "concurrencyPerReplica": w.per_replica(cfg.serving.replicas).concurrency,
                **({"ttftP99Ms": w.ttft_p99_ms} if w.ttft_p99_ms is not None else {}),
                **({"itlP50Ms": w.itl_p50_ms} if w.itl_p50_ms is not None else {})}
    p = e.performance
    if p is None:
        return {"workload": workload, "notEstimated": "; ".join(e.warnings) or "no serving replicas",
                "warnings": list(e.warnings)}
    r = p.replica
    return {
        "workload": workload,
        "method": "plan-time estimate: roofline floors and one set of efficiency factors held to published "
                  "measurements (README 'Performance model'); replace with a benchmark",
        "batch": r.batch, "queued": r.queued,
        "itlFloorMs": round(r.itl_floor_ms, 2), "itlExpectedMs": round(r.itl_expected_ms, 2),
        "ttftFloorMs": round(r.ttft_floor_ms, 1), "ttftExpectedMs": round(r.ttft_expected_ms, 1),
        "outputTokensPerSecond": round(r.output_tokens_per_second, 1),
        "totalTokensPerSecond": round(r.total_tokens_per_second, 1),
        "outputCeilingTokensPerSecond": round(r.output_ceiling_tokens_per_second, 1),
        "kvCacheTokens": r.kv_cache_tokens, "kvConcurrency": r.kv_concurrency,
        "usdPerMillionOutputTokens": round(p.usd_per_million_output_tokens_per_replica, 2),
        "environment": {
            "replicas": cfg.serving.replicas,
            "outputTokensPerSecond": round(p.output_tokens_per_second, 1),
            "totalTokensPerSecond": round(p.total_tokens_per_second, 1),
            "usdPerMillionOutputTokens": round(p.usd_per_million_output_tokens, 2),
            "usdPerMillionOutputTokensAllIn": round(p.usd_per_million_output_tokens_all_in, 2),
        },
        "warnings": list(e.warnings),
    }


def true_cost_output(e: Estimate) -> dict:
    """What monthlyCostBreakdown adds to the serving pool's cost: fixed lines, totals, idle and packed."""
    out = {
        "fixed": [{"name": f.name, "usd": round(f.usd_per_month, 2), "detail": f.detail} for f in e.fixed],
        "environmentUsd": round(e.environment_usd, 2),
        "setupHours": e.setup_hours, "firstYearUsd": round(e.first_year_usd, 2),
    }
    if e.gpu_use is not None:
        out["idleGpuUsd"] = round(e.gpu_use.idle_usd_per_month, 2)
    if e.packed is not None and e.packed.saves_usd_per_month > 0:
        out["packed"] = {"nodes": e.packed.nodes, "usd": round(e.packed.usd_per_month, 2),
                         "savesUsd": round(e.packed.saves_usd_per_month, 2),
                         "replicasPerNode": e.packed.replicas_per_node}
    return out
