"""The Triton repository of a validated stack config planned against its hardware: every model's
record, the GPU memory plan of the whole server (planning/triton_memory.py), and the summary of
what each model serves where."""

from __future__ import annotations

from typing import Any, Optional

from ..planning.triton import RepoModel, RepositoryError
from ..planning.triton_memory import MemoryPlan, plan_memory
from .errors import ConfigError
from .models import StackConfig
from .triton_models import repository

PREFIX = "serving.triton.models"


def has_models(cfg: StackConfig) -> bool:
    return str(cfg.serving.stack) == "triton" and bool(cfg.serving.triton.models)


def records(cfg: StackConfig) -> list[RepoModel]:
    """The repository, the LLM first (keys under serving.triton)."""
    t = cfg.serving.triton
    return repository(list(t.models), t.model_name, PREFIX, "serving.triton.modelName")


def memory_plan(cfg: StackConfig) -> Optional[MemoryPlan]:
    """The server's GPU memory plan, or None without other models. Raises ConfigError."""
    if not has_models(cfg):
        return None
    s = cfg.serving
    try:
        return plan_memory(s.triton.model_name, s.architecture, s.shape, cfg.serving_pool.instance, records(cfg),
                           "gpu_memory_utilization" in s.model_fields_set)
    except RepositoryError as exc:
        raise ConfigError(exc.key, exc.message) from None


def settle_memory(cfg: StackConfig) -> StackConfig:
    """The config with the engine's gpuMemoryUtilization planned: when it is not configured and the
    other models' GPU instances need room, the largest fraction that leaves it. Raises ConfigError
    when the models cannot fit together (or a configured fraction leaves too little room)."""
    plan = memory_plan(cfg)
    if plan is None or plan.gpu_memory_utilization == cfg.serving.gpu_memory_utilization:
        return cfg
    serving = cfg.serving.model_copy(update={"gpu_memory_utilization": plan.gpu_memory_utilization})
    return cfg.model_copy(update={"serving": serving})


def models_output(cfg: StackConfig) -> Optional[list[dict[str, Any]]]:
    """Each model of the repository with its endpoint path, the versions it serves and its share of
    GPU memory (the `tritonModels` output), or None without other models."""
    plan = memory_plan(cfg)
    if plan is None:
        return None
    total = plan.gpu_memory_gib
    out = []
    for m in records(cfg):
        verb = "generate" if m.kind == "vllm" else "infer"
        entry: dict[str, Any] = {"name": m.name, "kind": m.kind, "endpoint": f"/v2/models/{m.name}/{verb}",
                                 "versions": list(m.served_versions)}
        if len(m.served_versions) > 1:
            entry["versionEndpoints"] = [f"/v2/models/{m.name}/versions/{v}/{verb}" for v in m.served_versions]
        if m.kind == "vllm":
            entry["gpus"] = list(range(plan.gpus))
            entry["gpuMemoryGibPerGpu"] = plan.engine_gib
            entry["gpuShare"] = round(plan.gpu_memory_utilization, 4)
        else:
            placed = [p for p in plan.placements if p.model == m.name]
            if placed:
                entry["gpus"] = [p.gpu for p in placed]
                entry["gpuMemoryGibPerGpu"] = max(p.gib for p in placed)
                entry["gpuShare"] = round(max(p.gib for p in placed) / total, 4)
                entry["gpuMemorySource"] = m.gpu_memory_source
            else:
                entry["gpus"] = []
                entry["gpuShare"] = 0.0
        out.append(entry)
    return out
