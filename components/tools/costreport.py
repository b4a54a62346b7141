"""Pure: the vLLM vs Triton vs NIM cost comparison for one stack's model and hardware, with the
environment's fixed costs, the GPUs paid but idle, the packed alternative and the first-year total."""

from __future__ import annotations

import datetime as _dt
from typing import Optional

from ..config import StackConfig
from ..config.estimate import Estimate, estimate
from ..planning import prices
from ..planning.catalog import HOURS_PER_MONTH

STACKS = ("vllm", "triton", "nim")
ROWS = (("GPU compute / month", "gpuComputeUsd"), ("Software licence / month", "licenseUsd"),
        ("Other GPU pools / month", "extraPoolsUsd"), ("Fixed costs / month", "fixedUsd"),
        ("Total / month", "totalUsd"), ("Setup engineering", "setupUsd"), ("First-year total", "firstYearUsd"),
        ("$ per 1M output tokens", "usdPerMillionOutputTokens"))


def cost_rows(cfg: StackConfig, on: Optional[_dt.date] = None) -> list[dict]:
    rows = []
    for stack in STACKS:
        e = estimate(cfg, stack, on)
        perf = e.performance
        rows.append({"stack": stack, "gpuComputeUsd": e.cost.gpu_compute_usd, "licenseUsd": e.cost.license_usd,
                     "extraPoolsUsd": e.extra_pools_usd, "fixedUsd": sum(f.usd_per_month for f in e.fixed),
                     "totalUsd": e.environment_usd, "setupHours": e.setup_hours,
                     "setupUsd": e.setup_hours * cfg.cost.engineering_usd_per_hour,
                     "firstYearUsd": e.first_year_usd, "nodes": e.gpu_nodes,
                     "usdPerMillionOutputTokens": perf.usd_per_million_output_tokens if perf else None})
    return rows


def _money(value: Optional[float], cents: bool = False) -> str:
    if value is None:
        return "n/a"
    return "$" + format(value, ",.2f" if cents else ",.0f")


def cost_table(cfg: StackConfig, stack_name: str, on: Optional[_dt.date] = None) -> str:
    rows = cost_rows(cfg, on)
    pool = cfg.serving_pool
    e = estimate(cfg, on=on)
    replicas, tp = cfg.serving.replicas, cfg.serving.tensor_parallel_size
    head = (f"stack {stack_name}: {cfg.serving.model}, {replicas} replica{'' if replicas == 1 else 's'} x "
            f"{tp} GPU{'' if tp == 1 else 's'} on {e.gpu_nodes} x {pool.instance_type} "
            f"({e.cost.rate_source}, ${e.cost.hourly_rate_usd:,.4f}/node-hour x {HOURS_PER_MONTH} h)")
    width = max(len(label) for label, _ in ROWS) + 2  # every row's figures line up under the header
    lines = [head, "", f"{'':{width}}" + "".join(f"{r['stack']:>16}" for r in rows)]
    for label, key in ROWS:
        cents = key == "usdPerMillionOutputTokens"
        lines.append(f"{label:{width}}" + "".join(f"{_money(r[key], cents):>16}" for r in rows))
    lines += ["", *_gpu_lines(cfg, e), *_fixed_lines(e), *_scaling_lines(cfg), "", *_notes(cfg, rows)]
    return "\n".join(lines)


def _scaling_lines(cfg: StackConfig) -> list[str]:
    """With autoscaling, the current stack's environment at its fewest, expected and most replicas."""
    if not cfg.autoscaling.enabled:
        return []
    from ..config.scaling_cost import scaling_costs

    lines = ["", f"Autoscaled ({cfg.serving.stack}; expected = where KEDA settles for servingstack:workload):"]
    for p in scaling_costs(cfg):
        lines.append(f"  {p.label:9}{p.replicas:3d} replica(s) on {p.gpu_nodes} node(s)  serving "
                     f"{_money(p.serving_usd, True):>12}  environment {_money(p.environment_usd, True):>12} / month")
    return lines


def _gpu_lines(cfg: StackConfig, e: Estimate) -> list[str]:
    use = e.gpu_use
    assert use is not None
    lines = [f"GPUs: {use.gpus_paid} paid, {use.gpus_used} used by the replicas, {use.idle_gpus} idle "
             f"(${use.idle_usd_per_month:,.0f}/month of idle GPUs)"]
    packed = e.packed
    if packed is not None and packed.saves_usd_per_month > 0:
        why = (" — needs serving.spread soft and a smaller gpuNodePool.desiredSize, and gives up one replica per "
               "node (a node loss then takes every replica)" if cfg.serving.spread == "hard"
               else " — lower gpuNodePool.desiredSize to match")
        lines.append(f"Packed: the {cfg.serving.replicas} replicas fit {packed.nodes} node(s) at "
                     f"{packed.replicas_per_node} per node: ${packed.usd_per_month:,.0f}/month, saving "
                     f"${packed.saves_usd_per_month:,.0f}{why}")
    if packed is not None and packed.fill_replicas > cfg.serving.replicas:
        lines.append(f"Or keep the {e.gpu_nodes} node(s) and run {packed.fill_replicas} replicas on the paid GPUs "
                     "(more throughput for the same GPU bill)")
    return lines


def _fixed_lines(e: Estimate) -> list[str]:
    lines = ["Fixed monthly costs (the same for every stack):"]
    width = max((len(f.name) for f in e.fixed), default=0) + 2
    lines += [f"  {f.name:{width}}{_money(f.usd_per_month, True):>12}  {f.detail}" for f in e.fixed]
    if e.extra_pools_usd:
        lines.append(f"  {'Other GPU pools':{width}}{_money(e.extra_pools_usd, True):>12}  desired size x on-demand")
    return lines


def _notes(cfg: StackConfig, rows: list[dict]) -> list[str]:
    c = cfg.cost
    if c.nim_license_usd_per_gpu_month is not None:
        licence = f"${c.nim_license_usd_per_gpu_month:,.0f} per GPU-month (configured, cost.nimLicenseUsdPerGpuMonth)"
    elif c.nim_license_usd_per_gpu_year != prices.NIM_LICENSE_USD_PER_GPU_YEAR:
        licence = f"${c.nim_license_usd_per_gpu_year:,.0f} per GPU-year (configured, cost.nimLicenseUsdPerGpuYear)"
    else:
        licence = "$4,500 per GPU-year"
    hours = " / ".join(f"{r['setupHours']:g}" for r in rows)
    return [
        f"NIM licence: {licence}, licensing the GPUs the NIM replicas use. Source: {prices.NIM_LICENSE_SOURCE}; "
        f"about ${prices.NIM_LICENSE_MARKETPLACE_USD_PER_GPU_HOUR:g}/GPU-hour in cloud marketplaces instead. The source "
        f"document's \"~$4,500 (NVAIE)\" a month for 2 GPUs is 6x the list price. vLLM and Triton are free software.",
        f"Setup hours {hours} (vllm / triton / nim; the source document's figures) x "
        f"${c.engineering_usd_per_hour:,.0f}/h (cost.engineeringUsdPerHour), in the first-year total only.",
        "Cost per token: serving GPUs (idle ones included) and licences over the estimated output tokens "
        "at servingstack:workload (a plan-time estimate; benchmark before you buy).",
        f"Current stack: {cfg.serving.stack}. Not priced: data transfer, NAT per-GB processing, logs.",
    ]
