"""Pure: GPU memory planned for a whole Triton server — the vLLM engine beside every other model's
GPU instances, on each of the pod's GPUs.

How the memory is shared (per GPU of the pod; the pod has tensorParallelSize GPUs):
    vLLM engine        gpuMemoryUtilization x GPU memory on every GPU (vLLM caps its own use at that
                       fraction of the GPU's TOTAL memory and does not count what other processes
                       hold, so the others must fit in the rest: vLLM 0.5.x worker
                       determine_num_available_blocks, the same in V1's gpu_worker.py)
    other models       per GPU: for each served version, each GPU instance placed there (`count` on
                       every listed GPU, or on every GPU of the pod when `gpus` is unset, as Triton
                       places KIND_GPU instances) x its memory (declared, or estimated below)
    reload headroom    the largest one model occupies on that GPU: poll mode reloads a changed model
                       by loading the new copy before it unloads the old one (Triton's model
                       management: "without any loss of availability"), so both exist for a moment

    fits when          utilization x memory + others + headroom <= memory, on every GPU
    the engine needs   weights / TP + OVERHEAD_RESERVE_GIB + KV of one maxModelLen sequence per GPU
                       (vLLM refuses to start when one sequence does not fit)

Estimate of one GPU instance from its artifact (when no gpuMemoryGib is declared): the weights once,
about as much again for the runtime's workspace and arena (ONNX Runtime's CUDA arena, TensorRT
workspace, libtorch caching allocator), plus GPU_INSTANCE_OVERHEAD_GIB for the framework's CUDA
handles. It is a rough planning figure, not a measurement: declare gpuMemoryGib from `nvidia-smi`
after a test load for anything close to the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalog import BYTES_PER_PARAM, GIB, GpuInstanceType, ModelArchitecture
from .sizing import OVERHEAD_RESERVE_GIB, ServingShape, kv_bytes_per_token, serving_weight_dtype, weights_gib
from .triton import RepoModel, RepositoryError

ARTIFACT_WORKSPACE_FACTOR = 2.0
"""GPU memory of one instance per artifact byte: the weights, and about as much workspace again."""
GPU_INSTANCE_OVERHEAD_GIB = 0.5
"""Per GPU instance beside the weights: cuBLAS/cuDNN handles and the framework's own buffers."""


def estimate_instance_gib(artifact_bytes: int) -> float:
    return round(artifact_bytes / GIB * ARTIFACT_WORKSPACE_FACTOR + GPU_INSTANCE_OVERHEAD_GIB, 2)


@dataclass(frozen=True)
class Placement:
    model: str
    key: str
    gpu: int
    gib: float
    """What the model holds on this GPU: instances x served versions x per-instance memory."""
    instances: int


@dataclass(frozen=True)
class MemoryPlan:
    gpu_memory_gib: float
    """Memory of one GPU."""
    gpus: int
    gpu_memory_utilization: float
    """The engine's fraction: the configured one, or the largest that leaves room (when not configured)."""
    utilization_limit: float
    """The largest fraction that leaves room for the other models on the busiest GPU."""
    engine_need_gib: float
    """Per GPU: weights, overhead and one maxModelLen sequence of KV cache."""
    placements: tuple[Placement, ...]
    headroom_gib: tuple[float, ...]
    """Per GPU: room kept to reload the largest model there in place."""

    def others_gib(self, gpu: int) -> float:
        return round(sum(p.gib for p in self.placements if p.gpu == gpu), 2)

    @property
    def engine_gib(self) -> float:
        return round(self.gpu_memory_utilization * self.gpu_memory_gib, 2)


def placements(models: list[RepoModel], gpus: int) -> list[Placement]:
    """Where every GPU instance of every served version lands, per GPU of the pod."""
    out: list[Placement] = []
    for m in models:
        if m.kind in ("vllm", "ensemble"):
            continue
        per_gpu: dict[int, int] = {}
        for j, group in enumerate(m.instance_groups):
            if group.kind != "GPU":
                continue
            for g in group.gpus if group.gpus is not None else range(gpus):
                if g >= gpus:
                    raise RepositoryError(f"{m.key}.instanceGroups.{j}.gpus", (
                        f"model {m.name!r} places instances on GPU {g}, but the Triton pod has {gpus} GPU(s) "
                        f"(0..{gpus - 1}, serving.tensorParallelSize) — use GPU indexes below {gpus}"))
                per_gpu[g] = per_gpu.get(g, 0) + group.count
        if not per_gpu:
            continue
        if m.gpu_memory_gib is None:
            raise RepositoryError(f"{m.key}.gpuMemoryGib", (
                f"model {m.name!r} runs on GPUs but its memory is unknown "
                f"({m.gpu_memory_source or 'no local artifact to estimate it from'}) — declare gpuMemoryGib per "
                "instance, GiB (or run it on the CPU: instanceGroups kind CPU)"))
        versions = len(m.served_versions)
        for g, count in sorted(per_gpu.items()):
            out.append(Placement(m.name, m.key, g, round(count * versions * m.gpu_memory_gib, 2), count * versions))
    return out


def engine_need_gib(model: ModelArchitecture, shape: ServingShape) -> tuple[float, str]:
    """Per GPU, what the vLLM engine needs at the least: (GiB, the sum spelled out)."""
    tp = shape.tensor_parallel_size
    load = weights_gib(model, shape) / tp
    serving = model.parameters * BYTES_PER_PARAM[serving_weight_dtype(model, shape)] / GIB / tp
    kv = kv_bytes_per_token(model, shape) * shape.max_model_len / GIB
    need = max(load, serving + kv) + OVERHEAD_RESERVE_GIB
    return need, (f"{serving:.1f} GiB weights + {OVERHEAD_RESERVE_GIB:.0f} GiB overhead + {kv:.1f} GiB KV for one "
                  f"{shape.max_model_len}-token sequence")


def plan_memory(llm_name: str, model: ModelArchitecture, shape: ServingShape, instance: GpuInstanceType,
                models: list[RepoModel], utilization_configured: bool, unset_hint: bool = True) -> MemoryPlan:
    """The memory plan of one Triton pod, or a RepositoryError with the numbers. `shape` carries the
    configured (or default) gpuMemoryUtilization; when it was not configured the plan lowers it to
    the largest fraction that leaves room for the other models."""
    total = instance.gpu_memory_gib
    tp = shape.tensor_parallel_size
    placed = placements(models, tp)
    headroom = tuple(max((p.gib for p in placed if p.gpu == g), default=0.0) for g in range(tp))
    reserve = [sum(p.gib for p in placed if p.gpu == g) + headroom[g] for g in range(tp)]
    busiest = max(range(tp), key=lambda g: reserve[g])
    limit = math.floor((total - reserve[busiest]) / total * 100) / 100
    need, need_text = engine_need_gib(model, shape)
    util = shape.gpu_memory_utilization
    if reserve[busiest] and need + reserve[busiest] > total:
        on = [p for p in placed if p.gpu == busiest]
        biggest = max(on, key=lambda p: p.gib)
        listed = ", ".join(f"{p.model} {p.gib:g} GiB" for p in on)
        raise RepositoryError(f"{biggest.key}.instanceGroups", (
            f"the models do not fit together on GPU {busiest} of {instance.name} ({total:.0f} GiB): {llm_name} "
            f"needs {need:.1f} GiB ({need_text}), {listed} and {headroom[busiest]:g} GiB to reload "
            f"{biggest.model} in place need {reserve[busiest]:.1f} GiB more — {need + reserve[busiest]:.1f} > "
            f"{total:.0f} GiB; move instances to CPU (kind CPU) or to other GPUs (gpus), serve fewer versions, "
            "use a larger serving.tensorParallelSize or a GPU with more memory"))
    if util > limit:
        if utilization_configured:
            raise RepositoryError("serving.gpuMemoryUtilization", (
                f"{util:g} gives {llm_name} {util * total:.1f} GiB of each {total:.0f} GiB GPU, leaving "
                f"{total - util * total:.1f} GiB, but the other models need {reserve[busiest]:.1f} GiB on GPU "
                f"{busiest} (with room to reload the largest in place) — use gpuMemoryUtilization <= {limit:g}"
                + (" (or leave it unset: the plan then picks it)" if unset_hint else "")))
        util = limit
    if util * total < need:
        raise RepositoryError("serving.gpuMemoryUtilization", (
            f"{util:g} gives {llm_name} {util * total:.1f} GiB per GPU, less than the {need:.1f} GiB it needs "
            f"({need_text}) — raise it (at most {limit:g} with the other models) or lower serving.maxModelLen"))
    return MemoryPlan(total, tp, util, limit, round(need, 2), tuple(placed), headroom)
