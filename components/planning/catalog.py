"""Pure data: GPU instance types, the GPUs' hardware figures, model architectures, prices and pinned images.

Nothing here imports Pulumi. Figures and their sources are in ../shared/reference/serving-facts.md and
performance-facts.md (§1.1 hardware, §6 prices); GPU instance prices are us-east-1 on-demand USD/hour
from instances.vantage.sh data of 2026-01-21 (after AWS's June 2025 P4/P5 price cut; they agree with
the skypilot-catalog v8 snapshot, performance-facts.md [S23]) and drift: override them per stack with
`servingstack:cost`. The environment's other prices (EKS, NAT, storage, the NIM licence) are in prices.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

PRICES_AS_OF = "2026-01-21"
HOURS_PER_MONTH = 730
MIB = 1024 * 1024
GIB = 1024 * MIB


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
    """Whether EC2 Capacity Blocks for ML sell this instance type (in the Regions of
    CAPACITY_BLOCK_REGIONS)."""
    gpu_model: Optional[str] = None
    """Key of the GPU's hardware figures in GPU_HARDWARE (default: INSTANCE_GPU[name])."""

    @property
    def gpu_memory_gib(self) -> float:
        return self.gpu_memory_mib / 1024

    @property
    def has_nvme(self) -> bool:
        return self.nvme_gb > 0

    @property
    def hardware(self) -> "GpuHardware":
        """Bandwidth, FLOP/s and interconnect of one of this instance's GPUs."""
        return GPU_HARDWARE[self.gpu_model or INSTANCE_GPU[self.name]]


_INSTANCES = [
    # name, gpu, n, gpu MiB, vCPU, RAM MiB, NVMe GB, EFA, $/h, sm, capacity block
    GpuInstanceType("p4d.24xlarge", "a100", 8, 40960, 96, 1179648, 8000, 4, 21.957642, "8.0", True),
    GpuInstanceType("p4de.24xlarge", "a100", 8, 81920, 96, 1179648, 8000, 4, 27.44705, "8.0"),
    GpuInstanceType("p5.48xlarge", "h100", 8, 81920, 192, 2097152, 30400, 32, 55.04, "9.0", True),
    GpuInstanceType("g5.xlarge", "a10g", 1, 22888, 4, 16384, 250, 0, 1.006, "8.6"),
    GpuInstanceType("g5.12xlarge", "a10g", 4, 22888, 48, 196608, 3800, 1, 5.672, "8.6"),
    GpuInstanceType("g5.48xlarge", "a10g", 8, 22888, 192, 786432, 7600, 1, 16.288, "8.6"),
    GpuInstanceType("g6.xlarge", "l4", 1, 22888, 4, 16384, 250, 0, 0.8048, "8.9"),
    GpuInstanceType("g6.12xlarge", "l4", 4, 22888, 48, 196608, 3760, 1, 4.6016, "8.9"),
    GpuInstanceType("g6.48xlarge", "l4", 8, 22888, 192, 786432, 7520, 1, 13.3504, "8.9"),
    # L40S: 45776 MiB per GPU as DescribeInstanceTypes reports it (aws/karpenter-provider-aws
    # website/content/en/docs/reference/instance-types.md; skypilot-catalog vms.csv GpuInfo).
    GpuInstanceType("g6e.xlarge", "l40s", 1, 45776, 4, 32768, 250, 0, 1.861, "8.9"),
    GpuInstanceType("g6e.48xlarge", "l40s", 8, 45776, 192, 1572864, 7600, 4, 30.13118, "8.9"),
]

INSTANCE_TYPES: dict[str, GpuInstanceType] = {i.name: i for i in _INSTANCES}

#: Where EC2 Capacity Blocks for ML sell each catalogued instance type. Source: Amazon EC2 User
#: Guide "Capacity Blocks for ML" (ec2-capacity-blocks.html, supported instance types and Regions;
#: read 2026-12-01): p5.48xlarge in us-east-1, us-east-2, us-west-2 and ap-northeast-1;
#: p4d.24xlarge in us-east-2 and us-west-2. p4de.24xlarge is not listed there.
CAPACITY_BLOCKS_AS_OF = "2026-12-01"
CAPACITY_BLOCK_REGIONS: dict[str, tuple[str, ...]] = {
    "p5.48xlarge": ("us-east-1", "us-east-2", "us-west-2", "ap-northeast-1"),
    "p4d.24xlarge": ("us-east-2", "us-west-2"),
}


@dataclass(frozen=True)
class GpuHardware:
    """Datasheet figures of one GPU model: what the performance model (performance.py) divides by."""

    name: str
    memory_bandwidth_gb_s: float
    """Peak memory bandwidth, GB/s (10^9 bytes)."""
    bf16_tflops: float
    """Dense BF16/FP16 tensor-core peak, TFLOP/s (without sparsity)."""
    fp8_tflops: Optional[float]
    """Dense FP8 tensor-core peak, TFLOP/s; None where the GPU has no FP8 tensor cores (Ampere)."""
    link: str
    """How the GPUs of one instance talk to each other."""
    link_gb_s_per_direction: float
    """GPU-to-GPU bandwidth per direction, GB/s (the all-reduce bandwidth term of tensor parallelism)."""
    source: str


#: performance-facts.md §1.1 ([S1] A100, [S2] H100, [S3] L40S); A10G: Baseten, "NVIDIA A10 vs A10G for
#: ML model inference" (same 24 GB GDDR6 at 600 GB/s as the A10, lower tensor peak); L4: NVIDIA L4
#: datasheet as reproduced by retailers (300 GB/s; 121 BF16 / 242.5 FP8 TFLOPS dense, half the
#: sparsity figures). PCIe Gen4 x16: 64 GB/s bidirectional, 32 per direction ([S3]).
_GPU_HARDWARE = [
    GpuHardware("A100-SXM4-40GB", 1555, 312, None, "NVLink 3 via NVSwitch", 300, "A100 datasheet [S1]"),
    GpuHardware("A100-SXM4-80GB", 2039, 312, None, "NVLink 3 via NVSwitch", 300, "A100 datasheet [S1]"),
    GpuHardware("A100-PCIe-80GB", 1935, 312, None, "PCIe Gen4 x16 (no NVLink bridge)", 32, "A100 datasheet [S1]"),
    GpuHardware("H100-SXM5-80GB", 3350, 989, 1979, "NVLink 4 via NVSwitch", 450, "H100 datasheet [S2]"),
    GpuHardware("A10G", 600, 70, None, "PCIe Gen4 x16", 32, "Baseten A10 vs A10G"),
    GpuHardware("L4", 300, 121, 242.5, "PCIe Gen4 x16", 32, "L4 datasheet"),
    GpuHardware("L40S", 864, 362, 733, "PCIe Gen4 x16", 32, "L40S datasheet [S3]"),
]
GPU_HARDWARE: dict[str, GpuHardware] = {g.name: g for g in _GPU_HARDWARE}

#: The GPU each catalogued instance carries (p4d: A100 40 GB, p4de: A100 80 GB, both SXM4 on NVSwitch).
INSTANCE_GPU: dict[str, str] = {
    "p4d.24xlarge": "A100-SXM4-40GB", "p4de.24xlarge": "A100-SXM4-80GB", "p5.48xlarge": "H100-SXM5-80GB",
    "g5.xlarge": "A10G", "g5.12xlarge": "A10G", "g5.48xlarge": "A10G",
    "g6.xlarge": "L4", "g6.12xlarge": "L4", "g6.48xlarge": "L4",
    "g6e.xlarge": "L40S", "g6e.48xlarge": "L40S",
}


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
    vocab_size: Optional[int] = None
    """vocab_size from config.json: the untied embedding and LM head are vocab x hidden each (the
    performance model reads the head every decode step and only gathers embedding rows)."""


# Architecture numbers: meta-llama/llama-models sku_list.py and each checkpoint's config.json
# (serving-facts.md section 6). Parameter counts computed with untied embedding and LM head.
_MODELS = [
    ModelArchitecture("meta-llama/Llama-3.1-8B-Instruct", 8.03e9, 32, 4096, 32, 8, 128, "bf16", 131072,
                      "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.4", vocab_size=128256),
    ModelArchitecture("meta-llama/Llama-3.1-70B-Instruct", 70.55e9, 80, 8192, 64, 8, 128, "bf16", 131072,
                      "nvcr.io/nim/meta/llama-3.1-70b-instruct:1.8.0", vocab_size=128256),
    ModelArchitecture("meta-llama/Llama-3.1-405B-Instruct", 405.85e9, 126, 16384, 128, 8, 128, "bf16", 131072,
                      "nvcr.io/nim/meta/llama-3.1-405b-instruct:1.8.0", vocab_size=128256),
    ModelArchitecture("meta-llama/Llama-3.1-405B-Instruct-FP8", 405.85e9, 126, 16384, 128, 8, 128, "fp8", 131072,
                      vocab_size=128256),
    ModelArchitecture("mistralai/Mistral-7B-Instruct-v0.3", 7.25e9, 32, 4096, 32, 8, 128, "bf16", 32768,
                      "nvcr.io/nim/mistralai/mistral-7b-instruct-v03:1.1.2", vocab_size=32768),
    ModelArchitecture("Qwen/Qwen2.5-72B-Instruct", 72.71e9, 80, 8192, 64, 8, 128, "bf16", 32768, gated=False,
                      vocab_size=152064),
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

#: The benchmark Job's load generator: NVIDIA AIPerf (PyPI `aiperf`, 0.13.0 the release on PyPI as of
#: 2026-11, performance-facts.md [S34]). The image is the one AIPerf itself pins for a release:
#: `nvcr.io/nvidia/aiperf:{__version__}` (aiperf 0.13.0, cli_commands/kube/_kube_common.py
#: pin_default_direct_image); the tests install the same version from PyPI, so one version is measured.
AIPERF_VERSION = "0.13.0"
AIPERF_IMAGE = f"nvcr.io/nvidia/aiperf:{AIPERF_VERSION}"
#: Uploads the benchmark's result files to the model store. AWS CLI v2 >= 2.15.0 reads EKS Pod Identity
#: credentials (EKS user guide, pod-id-minimum-sdk, checked 2026-11); 2.34.48 is a published tag of the
#: Docker Hub image (seen in use with runAsUser 1000 and /bin/sh, 2026).
AWS_CLI_IMAGE = "amazon/aws-cli:2.34.48"

DEVICE_PLUGIN_CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
DEVICE_PLUGIN_CHART_VERSION = "0.17.4"
DCGM_EXPORTER_CHART_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_CHART_VERSION = "4.8.2"


def nim_image_for(model_id: str) -> Optional[str]:
    """The pinned NIM image for a catalogued model, or None when NVIDIA publishes no NIM for it."""
    model = MODELS.get(model_id)
    return model.nim_image if model is not None else None

# ---- Operations: monitoring and autoscaling charts (exact versions; sources in ../shared/charts/*/SOURCE.txt)
KUBE_PROMETHEUS_STACK_CHART_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_CHART_VERSION = "88.5.3"
KEDA_CHART_REPO = "https://kedacore.github.io/charts"
KEDA_CHART_VERSION = "2.20.2"
CLUSTER_AUTOSCALER_CHART_REPO = "https://kubernetes.github.io/autoscaler"
CLUSTER_AUTOSCALER_CHART_VERSION = "9.59.0"
#: The Cluster Autoscaler image must match the cluster's minor version (its README's version
#: table); newest patch of each minor per the kubernetes/autoscaler tags cluster-autoscaler-1.N.P
#: (commit dates: 1.29.5 2024-10-16, 1.30.7 2025-10-29, 1.31.5 2025-10-08, 1.32.7 2026-02-13,
#: 1.33.6 / 1.34.5 / 1.35.2 2026-07-22). Image registry.k8s.io/autoscaling/cluster-autoscaler.
CLUSTER_AUTOSCALER_IMAGE_TAGS = {"1.29": "v1.29.5", "1.30": "v1.30.7", "1.31": "v1.31.5", "1.32": "v1.32.7",
                                 "1.33": "v1.33.6", "1.34": "v1.34.5", "1.35": "v1.35.2"}
CLUSTER_AUTOSCALER_TAGS_AS_OF = "2026-12"
