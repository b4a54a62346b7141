"""Pure data: GPU instance types, model architectures, prices and pinned images.

Nothing here imports Pulumi. Figures and their sources are in ../shared/reference/serving-facts.md;
prices are us-east-1 on-demand USD/hour from instances.vantage.sh data of 2026-01-21 (after AWS's
June 2025 P4/P5 price cut) and drift: override them per stack with `servingstack:cost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

PRICES_AS_OF = "2026-01-21"
HOURS_PER_MONTH = 730
MIB = 1024 * 1024
GIB = 1024 * MIB

#: Source document's cost table: NIM licence "~$4,500 (NVAIE)" per month for 2x A100, i.e.
#: $2,250 per GPU-month. Configurable with `servingstack:cost.nimLicenseUsdPerGpuMonth`.
NIM_LICENSE_USD_PER_GPU_MONTH = 2250.0


@dataclass(frozen=True)
class GpuInstanceType:
    """One EC2 GPU instance type, as the scheduler and the sizing math see it."""

    name: str
    gpu_name: str
    """Short GPU name as in Karpenter's `instance-gpu-name` label (a100, h100, l4, a10g, l40s)."""
    gpus: int
    gpu_memory_mib: int
    """Memory of ONE GPU in MiB (nominal, as AWS publishes it)."""
    vcpus: int
    memory_mib: int
    nvme_gb: int
    """Local instance-store NVMe in GB (0 when the instance has none)."""
    efa_interfaces: int
    on_demand_usd_per_hour: float
    compute_capability: str
    capacity_block: bool = False
    """Whether EC2 Capacity Blocks for ML sell this instance type."""

    @property
    def gpu_memory_gib(self) -> float:
        return self.gpu_memory_mib / 1024

    @property
    def has_nvme(self) -> bool:
        return self.nvme_gb > 0


_INSTANCES = [
    # name, gpu, n, gpu MiB, vCPU, RAM MiB, NVMe GB, EFA, $/h, sm, capacity block
    GpuInstanceType("p4d.24xlarge", "a100", 8, 40960, 96, 1179648, 8000, 4, 21.957642, "8.0", True),
    GpuInstanceType("p4de.24xlarge", "a100", 8, 81920, 96, 1179648, 8000, 4, 27.44705, "8.0", True),
    GpuInstanceType("p5.48xlarge", "h100", 8, 81920, 192, 2097152, 30400, 32, 55.04, "9.0", True),
    GpuInstanceType("g5.xlarge", "a10g", 1, 22888, 4, 16384, 250, 0, 1.006, "8.6"),
    GpuInstanceType("g5.12xlarge", "a10g", 4, 22888, 48, 196608, 3800, 1, 5.672, "8.6"),
    GpuInstanceType("g5.48xlarge", "a10g", 8, 22888, 192, 786432, 7600, 1, 16.288, "8.6"),
    GpuInstanceType("g6.xlarge", "l4", 1, 22888, 4, 16384, 250, 0, 0.8048, "8.9"),
    GpuInstanceType("g6.12xlarge", "l4", 4, 22888, 48, 196608, 3760, 1, 4.6016, "8.9"),
    GpuInstanceType("g6.48xlarge", "l4", 8, 22888, 192, 786432, 7520, 1, 13.3504, "8.9"),
    GpuInstanceType("g6e.xlarge", "l40s", 1, 46068, 4, 32768, 250, 0, 1.861, "8.9"),
    GpuInstanceType("g6e.48xlarge", "l40s", 8, 46068, 192, 1572864, 7600, 4, 30.13118, "8.9"),
]

INSTANCE_TYPES: dict[str, GpuInstanceType] = {i.name: i for i in _INSTANCES}


@dataclass(frozen=True)
class ModelArchitecture:
    """What the sizing math needs to know about a checkpoint (from its config.json)."""

    hf_id: str
    parameters: float
    """Total parameter count (not billions)."""
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    native_dtype: str
    """Checkpoint weight dtype: bf16, fp16, fp8 or int4."""
    max_context: int
    nim_image: Optional[str] = None
    """Pinned NIM image (repository:tag) serving this model, when NVIDIA publishes one."""
    gated: bool = True
    """Whether Hugging Face requires an accepted licence (and so a token) to download it."""


# Architecture numbers: meta-llama/llama-models sku_list.py and each checkpoint's config.json
# (serving-facts.md section 6). Parameter counts computed with untied embedding and LM head.
_MODELS = [
    ModelArchitecture("meta-llama/Llama-3.1-8B-Instruct", 8.03e9, 32, 4096, 32, 8, 128, "bf16", 131072,
                      "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4"),
    ModelArchitecture("meta-llama/Llama-3.1-70B-Instruct", 70.55e9, 80, 8192, 64, 8, 128, "bf16", 131072,
                      "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.0"),
    ModelArchitecture("meta-llama/Llama-3.1-405B-Instruct", 405.85e9, 126, 16384, 128, 8, 128, "bf16", 131072,
                      "nvcr.io/nim/meta/llama-3.1-405b-instruct:1.8.0"),
    ModelArchitecture("meta-llama/Llama-3.1-405B-Instruct-FP8", 405.85e9, 126, 16384, 128, 8, 128, "fp8", 131072),
    ModelArchitecture("mistralai/Mistral-7B-Instruct-v0.3", 7.25e9, 32, 4096, 32, 8, 128, "bf16", 32768,
                      "nvcr.io/nim/mistralai/mistral-7b-instruct-v03:1.1.2"),
    ModelArchitecture("Qwen/Qwen2.5-72B-Instruct", 72.71e9, 80, 8192, 64, 8, 128, "bf16", 32768, gated=False),
]

MODELS: dict[str, ModelArchitecture] = {m.hf_id: m for m in _MODELS}

#: Bytes per weight parameter by checkpoint dtype or quantization. int4 (AWQ/GPTQ) is 0.5 B/param
#: plus group scales and unquantized embeddings, which the sizing overhead reserve covers.
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.5}

# ---- Pinned images and charts ---------------------------------------------------------------
VLLM_IMAGE = "vllm/vllm-openai:v0.8.4"
#: 24.05 (the source document's tag) bundles vLLM 0.4.0.post1, which cannot load Llama 3.1's
#: "llama3" RoPE scaling; vLLM 0.5.3.post1 added it, and 24.08 is the oldest Triton release that
#: bundles it (build.py TRITON_VERSION_MAP on r24.08).
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-vllm-python-py3"

DEVICE_PLUGIN_CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
DEVICE_PLUGIN_CHART_VERSION = "0.17.4"
DCGM_EXPORTER_CHART_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_CHART_VERSION = "4.8.2"


def nim_image_for(model_id: str) -> Optional[str]:
    """The pinned NIM image for a catalogued model, or None when NVIDIA publishes no NIM for it."""
    model = MODELS.get(model_id)
    return model.nim_image if model is not None else None
