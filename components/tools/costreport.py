"""Pure: the vLLM vs Triton vs NIM cost comparison for one stack's model and hardware."""

from __future__ import annotations

from ..config import StackConfig
from ..config.estimate import estimate
from ..planning.catalog import HOURS_PER_MONTH

STACKS = ("vllm", "triton", "nim")


def cost_rows(cfg: StackConfig) -> list[dict]:
    rows = []
    for stack in STACKS:
        e = estimate(cfg, stack)
        rows.append({"stack": stack, "gpuComputeUsd": e.cost.gpu_compute_usd, "licenseUsd": e.cost.license_usd,
                     "totalUsd": e.cost.total_usd, "firstYearUsd": e.cost.first_year_usd, "nodes": e.gpu_nodes})
    return rows


def cost_table(cfg: StackConfig, stack_name: str) -> str:
    rows = cost_rows(cfg)
    pool = cfg.serving_pool
    e = estimate(cfg)
    replicas, tp = cfg.serving.replicas, cfg.serving.tensor_parallel_size
    head = (f"stack {stack_name}: {cfg.serving.model}, {replicas} replica{'' if replicas == 1 else 's'} x "
            f"{tp} GPU{'' if tp == 1 else 's'} on {e.gpu_nodes} x {pool.instance_type} "
            f"({e.cost.rate_source}, ${e.cost.hourly_rate_usd:,.4f}/node-hour x {HOURS_PER_MONTH} h)")
    labels = (("GPU compute / month", "gpuComputeUsd"), ("Software licence / month", "licenseUsd"),
              ("Total / month", "totalUsd"), ("First-year total", "firstYearUsd"))
    width = max(len(label) for label, _ in labels) + 2  # every row's figures line up under the header
    lines = [head, "", f"{'':{width}}" + "".join(f"{r['stack']:>16}" for r in rows)]
    for label, key in labels:
        lines.append(f"{label:{width}}" + "".join(f"{'$' + format(r[key], ',.0f'):>16}" for r in rows))
    lines += ["", f"NIM licence: ${cfg.cost.nim_license_usd_per_gpu_month:,.0f} per GPU-month "
                  "(source document: ~$4,500/month NVAIE for 2 GPUs); vLLM and Triton are free software.",
              f"Current stack: {cfg.serving.stack}. Excludes EKS control plane, system nodes, NAT, storage, "
              "data transfer and engineering time."]
    return "\n".join(lines)
