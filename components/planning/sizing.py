"""Pure plan-time sizing: does the model fit its GPUs, and how much KV cache is left.

Nothing here imports Pulumi. The memory model follows vLLM V1's worker (vllm/v1/worker/gpu_worker.py):

    usable per GPU   = GPU memory x gpuMemoryUtilization
    fits when          weights at their loading peak / TP + OVERHEAD_RESERVE_GIB <= usable
    KV budget / GPU  = usable - serving weights / TP - OVERHEAD_RESERVE_GIB
    KV bytes / token = 2 (K and V) x layers x KV heads x head_dim x KV dtype bytes, split over
                       min(TP, KV heads) GPUs (TP beyond the KV-head count replicates KV heads)

The loading peak and the serving size differ only for online fp8 (`quantization: fp8` on a 16-bit
checkpoint): vLLM loads the 16-bit weights, quantizes them in `process_weights_after_loading`, and
measures the model's memory (`model_memory_usage`) after that, so the KV budget sees fp8 weights.

The overhead reserve stands for activations of the profiling run, the CUDA context, NCCL buffers and
CUDA graphs; it is an estimate (serving-facts.md section 6), so the real "Available KV cache memory"
in the engine's start-up log is the figure to trust on first deploy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .catalog import BYTES_PER_PARAM, GIB, GpuInstanceType, ModelArchitecture
from .errors import KeyedError

OVERHEAD_RESERVE_GIB = 4.0
KV_BLOCK_TOKENS = 16
#: Smallest maxModelLen the config accepts (serving.maxModelLen >= 256).
MIN_MAX_MODEL_LEN = 256

_DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float": "fp32", "float32": "fp32"}


class FitError(KeyedError):
    """A config that cannot work on its hardware. `key` is the config key path to change."""


@dataclass(frozen=True)
class ServingShape:
    """The engine-neutral serving settings the sizing math reads."""

    replicas: int
    tensor_parallel_size: int
    max_model_len: int
    gpu_memory_utilization: float
    dtype: str = "auto"
    """vLLM `--dtype`: auto (the checkpoint's), bfloat16, float16, half, float, float32."""
    quantization: Optional[str] = None
    """awq, gptq (int4 checkpoints) or fp8 (FP8 checkpoint, or online FP8 of a 16-bit one)."""
    kv_cache_dtype: str = "auto"
    """auto (the compute dtype) or fp8 / fp8_e4m3 / fp8_e5m2."""
    max_num_seqs: int = 256
    """Most sequences the engine batches at once (vLLM --max-num-seqs; 256 is vLLM's default)."""


@dataclass(frozen=True)
class FitReport:
    weight_dtype: str
    """The dtype the weights occupy while loading (the larger of checkpoint and runtime form)."""
    weights_gib: float
    weights_per_gpu_gib: float
    """At the loading peak (what must fit)."""
    usable_per_gpu_gib: float
    overhead_per_gpu_gib: float
    kv_budget_per_gpu_gib: float
    kv_bytes_per_token_per_gpu: int
    kv_cache_tokens: int
    """Tokens of KV cache one replica holds (across its tensor-parallel GPUs)."""
    max_concurrent_sequences: int
    """Full `maxModelLen` sequences one replica can hold at once."""
    serving_weights_per_gpu_gib: float = 0.0
    """While serving (after online fp8 quantization): what the KV budget is left beside."""


def weight_dtype(model: ModelArchitecture, shape: ServingShape) -> str:
    """The dtype the weights occupy at their peak (while loading)."""
    if shape.quantization in ("awq", "gptq"):
        return "int4"
    if model.native_dtype in ("fp8", "int4"):
        return model.native_dtype
    compute = _DTYPE_ALIASES.get(shape.dtype, model.native_dtype) if shape.dtype != "auto" else model.native_dtype
    # Online fp8 quantization reads the 16-bit checkpoint first: those weights must fit while loading.
    return compute


def serving_weight_dtype(model: ModelArchitecture, shape: ServingShape) -> str:
    """The dtype the weights have while serving: online fp8 of a 16-bit checkpoint serves fp8."""
    if shape.quantization in ("awq", "gptq") or model.native_dtype == "int4":
        return "int4"
    if shape.quantization == "fp8" or model.native_dtype == "fp8":
        return "fp8"
    return weight_dtype(model, shape)


def kv_dtype_bytes(model: ModelArchitecture, shape: ServingShape) -> float:
    if shape.kv_cache_dtype.startswith("fp8"):
        return 1.0
    if shape.dtype in ("float", "float32"):
        return 4.0
    return 2.0


def kv_bytes_per_token(model: ModelArchitecture, shape: ServingShape) -> int:
    """KV-cache bytes per token on ONE GPU of a replica."""
    total = 2 * model.layers * model.kv_heads * model.head_dim * kv_dtype_bytes(model, shape)
    return int(math.ceil(total / min(shape.tensor_parallel_size, model.kv_heads)))


def check_parallelism(model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape) -> None:
    tp = shape.tensor_parallel_size
    if tp > instance.gpus:
        raise FitError(
            "serving.tensorParallelSize",
            f"{tp} GPUs per replica do not fit on one {instance.name} ({instance.gpus} GPUs); multi-node "
            f"serving is not supported — use tensorParallelSize <= {instance.gpus} or a larger instance type",
        )
    if model.attention_heads % tp:
        allowed = [d for d in range(1, instance.gpus + 1) if model.attention_heads % d == 0]
        raise FitError(
            "serving.tensorParallelSize",
            f"{tp} does not divide the {model.attention_heads} attention heads of {model.hf_id} — "
            f"use one of {', '.join(map(str, allowed))}",
        )
    if model.kv_heads % tp and tp % model.kv_heads:
        allowed = [d for d in range(1, instance.gpus + 1) if _valid_tp(model, d)]
        raise FitError(
            "serving.tensorParallelSize",
            f"{tp} neither divides nor is a multiple of the {model.kv_heads} KV heads of {model.hf_id} — "
            f"use one of {', '.join(map(str, allowed)) or '1'}",
        )


def _valid_tp(model: ModelArchitecture, tp: int) -> bool:
    """vLLM's rule: TP divides the attention heads, and divides or is a multiple of the KV heads."""
    return model.attention_heads % tp == 0 and not (model.kv_heads % tp and tp % model.kv_heads)


def check_quantization(model: ModelArchitecture, shape: ServingShape) -> None:
    """`quantization` must match the checkpoint: awq/gptq load int4 checkpoints only (vLLM reads the
    checkpoint's quantization_config and cannot quantize 16-bit weights to int4 itself); fp8 either
    loads an FP8 checkpoint or quantizes a 16-bit one online, never an int4 one."""
    q = shape.quantization
    if q in ("awq", "gptq") and model.native_dtype != "int4":
        raise FitError(
            "serving.quantization",
            f"{q} needs an int4 {q.upper()} checkpoint, but {model.hf_id} is a {model.native_dtype} checkpoint — "
            f"remove serving.quantization, use fp8 (online FP8 of a 16-bit checkpoint), or point serving.model "
            f"at a {q.upper()}-quantized checkpoint described in serving.customModel with nativeDtype int4",
        )
    if q == "fp8" and model.native_dtype == "int4":
        raise FitError(
            "serving.quantization",
            f"fp8 cannot re-quantize the int4 checkpoint {model.hf_id} — remove serving.quantization "
            "(vLLM reads the int4 format from the checkpoint) or use awq/gptq to match it",
        )


def check_context(model: ModelArchitecture, shape: ServingShape) -> None:
    """vLLM refuses a --max-model-len above the checkpoint's context (max_position_embeddings)."""
    if shape.max_model_len > model.max_context:
        raise FitError(
            "serving.maxModelLen",
            f"{shape.max_model_len} tokens exceed the {model.max_context}-token context of {model.hf_id} "
            f"(max_position_embeddings in its config.json) — use maxModelLen <= {model.max_context}",
        )


def check_fit(model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape) -> FitReport:
    """Refuse (FitError) or report the KV capacity of one replica. Pure."""
    return _fit(model, instance, shape, explain=True)


def weights_gib(model: ModelArchitecture, shape: ServingShape) -> float:
    """GiB the weights occupy at their peak (in the dtype `weight_dtype` gives)."""
    return model.parameters * BYTES_PER_PARAM[weight_dtype(model, shape)] / GIB


def _fit(model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape, explain: bool) -> FitReport:
    """check_fit; with explain=False a weights refusal skips the search for a fix (which itself
    calls _fit on other shapes, instance types and checkpoints)."""
    check_parallelism(model, instance, shape)
    check_quantization(model, shape)
    check_context(model, shape)
    tp = shape.tensor_parallel_size
    dtype = weight_dtype(model, shape)
    weights = weights_gib(model, shape)
    per_gpu = weights / tp
    usable = instance.gpu_memory_gib * shape.gpu_memory_utilization
    if per_gpu + OVERHEAD_RESERVE_GIB > usable:
        detail = (
            f"{model.hf_id} needs ~{weights:.0f} GiB of {dtype} weights; tensorParallelSize {tp} on "
            f"{instance.name} gives {usable:.1f} GiB usable per GPU, less than {per_gpu:.1f} GiB weights + "
            f"{OVERHEAD_RESERVE_GIB:.0f} GiB overhead per GPU"
        )
        if not explain:
            raise FitError("serving.tensorParallelSize", detail)
        needed_tp = _smallest_fitting_tp(model, instance, shape, weights)
        if needed_tp:
            raise FitError("serving.tensorParallelSize",
                           f"{detail} — use tensorParallelSize {needed_tp} (the smallest that fits)")
        # No tensor-parallel size on this instance type fits: the model (or the hardware) must change.
        raise FitError("serving.model", f"{detail}, and no tensorParallelSize up to {instance.gpus} fits — "
                                        f"{_no_fit_fix(model, instance, shape)}")
    serving_per_gpu = model.parameters * BYTES_PER_PARAM[serving_weight_dtype(model, shape)] / GIB / tp
    kv_budget_gib = usable - serving_per_gpu - OVERHEAD_RESERVE_GIB
    per_token = kv_bytes_per_token(model, shape)
    blocks = int(kv_budget_gib * GIB // (per_token * KV_BLOCK_TOKENS))
    tokens = blocks * KV_BLOCK_TOKENS
    if tokens < shape.max_model_len:
        fixes = [f"maxModelLen <= {tokens}"] if tokens >= MIN_MAX_MODEL_LEN else []
        if any(_valid_tp(model, t) for t in range(tp + 1, instance.gpus + 1)):
            fixes.append("a larger tensorParallelSize")
        fixes.append("a higher gpuMemoryUtilization" if shape.gpu_memory_utilization < 0.95
                     else "kvCacheDtype fp8 or a GPU with more memory")
        raise FitError(
            "serving.maxModelLen",
            f"{shape.max_model_len} tokens do not fit: {model.hf_id} with tensorParallelSize {tp} on "
            f"{instance.name} leaves {kv_budget_gib:.1f} GiB of KV cache per GPU, {tokens} tokens — use "
            f"{', '.join(fixes[:-1]) + ' or ' + fixes[-1] if len(fixes) > 1 else fixes[0]}",
        )
    return FitReport(
        weight_dtype=dtype,
        weights_gib=weights,
        weights_per_gpu_gib=per_gpu,
        usable_per_gpu_gib=usable,
        overhead_per_gpu_gib=OVERHEAD_RESERVE_GIB,
        kv_budget_per_gpu_gib=kv_budget_gib,
        kv_bytes_per_token_per_gpu=per_token,
        kv_cache_tokens=tokens,
        max_concurrent_sequences=tokens // shape.max_model_len,
        serving_weights_per_gpu_gib=serving_per_gpu,
    )


def _smallest_fitting_tp(
    model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape, weights_gib: float
) -> Optional[int]:
    usable = instance.gpu_memory_gib * shape.gpu_memory_utilization
    for tp in range(shape.tensor_parallel_size + 1, instance.gpus + 1):
        if _valid_tp(model, tp) and weights_gib / tp + OVERHEAD_RESERVE_GIB <= usable:
            return tp
    return None


def _fits_somewhere(model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape) -> Optional[int]:
    """The smallest tensor-parallel size at which `model` passes check_fit on `instance`, if any."""
    for tp in range(1, instance.gpus + 1):
        if not _valid_tp(model, tp):
            continue
        try:
            _fit(model, instance, ServingShape(shape.replicas, tp, shape.max_model_len,
                                               shape.gpu_memory_utilization, shape.dtype, None,
                                               shape.kv_cache_dtype), explain=False)
        except FitError:
            continue
        return tp
    return None


def _no_fit_fix(model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape) -> str:
    """A concrete fix when no tensor-parallel size fits: a catalogued pre-quantized checkpoint of the
    same architecture that fits this instance type, else an instance type the model fits on."""
    from .catalog import INSTANCE_TYPES, MODELS

    for other in MODELS.values():
        same_arch = (other.hf_id != model.hf_id and other.layers == model.layers
                     and other.hidden_size == model.hidden_size and other.kv_heads == model.kv_heads
                     and BYTES_PER_PARAM[other.native_dtype] < BYTES_PER_PARAM[weight_dtype(model, shape)])
        if same_arch:
            tp = _fits_somewhere(other, instance, shape)
            if tp:
                return (f"use the {other.native_dtype} checkpoint serving.model: {other.hf_id} with "
                        f"tensorParallelSize {tp}")
    bigger = sorted((i for i in INSTANCE_TYPES.values()
                     if i.name != instance.name and _fits_somewhere(model, i, shape)),
                    key=lambda i: i.on_demand_usd_per_hour)
    if bigger:
        return (f"use gpuNodePool.instanceType {bigger[0].name} "
                f"(tensorParallelSize {_fits_somewhere(model, bigger[0], shape)}) or a quantized checkpoint "
                "(FP8/AWQ) described in serving.customModel")
    return ("use a quantized checkpoint (FP8/AWQ) described in serving.customModel; no catalogued instance "
            "type holds these weights on one node and multi-node serving is not supported")
