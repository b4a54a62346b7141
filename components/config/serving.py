"""The serving part of the stack config: the engine-neutral settings and each stack's own."""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional

from pydantic import Field, model_validator

from ..planning import catalog, engines
from ..planning.sizing import ServingShape
from .errors import RuleError
from .fields import (
    ConfigModel,
    ContainerArg,
    Dns1035Label,
    Dns1123Label,
    Enum as EnumField,
    HfModelId,
    ImageRef,
    ServingNamespace,
)
from .triton_models import TritonModelConfig, check_models

#: Activation dtypes vLLM runs each quantization method with: `QuantizationConfig.get_supported_act_dtypes`
#: (vllm/model_executor/layers/quantization/awq.py and gptq.py: [torch.half]; fp8.py: [torch.bfloat16,
#: torch.half]), checked at model load ("torch.bfloat16 is not supported for quantization method awq").
#: `auto` takes the checkpoint's dtype, which only the checkpoint knows.
QUANTIZATION_DTYPES = {"awq": ("auto", "float16", "half"), "gptq": ("auto", "float16", "half"),
                       "fp8": ("auto", "bfloat16", "float16", "half")}


class ServingStackKind(str, Enum):
    VLLM = "vllm"
    TRITON = "triton"
    NIM = "nim"


class VllmConfig(ConfigModel):
    image: Optional[ImageRef] = None
    """Defaults to the pinned vllm/vllm-openai release."""
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = "auto"
    """vLLM --kv-cache-dtype (fp8 halves KV memory; check accuracy)."""
    release: Optional[str] = Field(None, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+(\.post[0-9]+)?$")
    """vLLM release the image runs, when its tag does not say (e.g. a digest); flags are spelled for it."""
    load_format: Optional[Literal["auto", "safetensors", "runai_streamer", "runai_streamer_sharded"]] = None
    """Defaults to runai_streamer when weightsSource is s3, else vLLM's own default."""
    speculative_model: Optional[str] = Field(None, pattern=r"^([A-Za-z0-9_.-]{1,96}/[A-Za-z0-9_.-]{1,96}|\[ngram\])$")
    """Draft model for speculative decoding (Hugging Face id, or "[ngram]")."""
    num_speculative_tokens: Optional[int] = Field(None, ge=1, le=16)
    """Tokens the draft proposes per step (with speculativeModel)."""
    enable_chunked_prefill: Optional[bool] = None
    """Force chunked prefill on or off; unset keeps vLLM's default."""
    extra_args: list[ContainerArg] = Field(default_factory=list, max_length=64)
    """Passed through after the generated flags (up to 64, each one line)."""

    @model_validator(mode="after")
    def _spec(self) -> "VllmConfig":
        if (self.speculative_model is None) != (self.num_speculative_tokens is None):
            raise RuleError("numSpeculativeTokens", "speculativeModel and numSpeculativeTokens must be set together")
        return self


class TritonConfig(ConfigModel):
    image: Optional[ImageRef] = None
    """Defaults to the pinned tritonserver <yy.mm>-vllm-python-py3 release (24.08)."""
    model_name: str = Field("llm", pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    """Name of the model in the Triton repository (the `/v2/models/<name>/generate` path)."""
    repository_poll_seconds: int = Field(30, ge=5, le=3600)
    """Triton --repository-poll-secs (poll model control mode)."""
    models: list[TritonModelConfig] = Field(default_factory=list)
    """Models served beside the LLM in the same repository (ONNX, TorchScript, TensorRT, Python, ensembles)."""


class NimConfig(ConfigModel):
    image: Optional[ImageRef] = None
    """Defaults to the pinned NIM image for the model (nvcr.io/nim/<org>/<model>:<tag>)."""
    model_profile: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,256}$")
    """NIM_MODEL_PROFILE (from `list-model-profiles`); unset lets NIM pick one for the GPUs."""
    release: Optional[str] = Field(None, pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?([-.][A-Za-z0-9.-]+)?$")
    """NIM LLM version the image runs, when its tag does not say (1.x or 2.x: environment contract, writable paths, NGC key)."""


class CustomModelConfig(ConfigModel):
    """Architecture of a model that is not in the catalog (numbers from its config.json)."""

    parameters: float = Field(gt=1e6, le=5e12)
    """Total parameter count, e.g. 7.25e9."""
    layers: int = Field(ge=1, le=1000)
    """num_hidden_layers."""
    hidden_size: int = Field(ge=64, le=65536)
    """hidden_size."""
    attention_heads: int = Field(ge=1, le=1024)
    """num_attention_heads (tensorParallelSize must divide it)."""
    kv_heads: int = Field(ge=1, le=1024)
    """num_key_value_heads (must divide attentionHeads)."""
    head_dim: int = Field(ge=16, le=1024)
    """head_dim (hidden_size / attention heads for most models)."""
    native_dtype: Literal["bf16", "fp16", "fp8", "int4"] = "bf16"
    """Dtype of the checkpoint's weights."""
    max_context: int = Field(131072, ge=512, le=10_485_760)
    """max_position_embeddings."""
    gated: bool = True
    """Whether Hugging Face requires an accepted licence, and so servingstack:hfToken, to download it."""

    @model_validator(mode="after")
    def _consistent(self) -> "CustomModelConfig":
        if self.kv_heads > self.attention_heads or self.attention_heads % self.kv_heads:
            raise RuleError("kvHeads", f"{self.kv_heads} does not divide attentionHeads {self.attention_heads} "
                            "(grouped-query attention shares each KV head among a whole number of query heads) — "
                            "copy num_key_value_heads from the model's config.json")
        if self.head_dim * self.attention_heads > 4 * self.hidden_size:
            raise RuleError("headDim", f"{self.head_dim} x {self.attention_heads} attention heads is more than 4 x "
                            f"hiddenSize {self.hidden_size} — copy head_dim from the model's config.json")
        return self


class ServingConfig(ConfigModel):
    stack: ServingStackKind = EnumField(ServingStackKind.VLLM)
    """The serving stack; switching it changes only serving resources."""
    namespace: ServingNamespace = "llm-serving"
    """Namespace of the serving objects (created, Pod Security 'restricted'; not default, kube-* or the
    device plugin's)."""
    model: HfModelId = "meta-llama/Llama-3.1-70B-Instruct"
    """Hugging Face model id; must be in the catalog or described in customModel."""
    custom_model: Optional[CustomModelConfig] = None
    """Architecture of a model outside the catalog (numbers from its config.json)."""
    served_model_name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_./-]{1,128}$")
    """Model name clients send (default: the model id)."""
    service_name: Dns1035Label = "llm"
    """Name of the in-cluster Service, the same for all three stacks (DNS-1035: starts with a letter)."""
    node_pool: Optional[Dns1123Label] = None
    """Name of the GPU pool to run on (default: the primary gpuNodePool)."""
    replicas: int = Field(2, ge=0, le=64)
    """Pod replicas (>= 2 adds a PodDisruptionBudget and topology spread)."""
    tensor_parallel_size: int = Field(2, ge=1, le=8)
    """GPUs per replica (request = limit); must divide the attention heads and fit one node."""
    max_model_len: int = Field(8192, ge=256, le=1048576)
    """Maximum tokens per sequence (prompt + output); one must fit in the KV cache."""
    gpu_memory_utilization: float = Field(0.92, gt=0.1, le=0.98)
    """Fraction of each GPU's memory the engine may use. Triton with other GPU models (triton.models): when unset,
    the largest fraction (at most 0.92) that leaves room for their instances on every GPU."""
    max_num_seqs: int = Field(64, ge=1, le=4096)
    """Maximum sequences batched at once."""
    enable_prefix_caching: bool = True
    """Reuse KV cache across requests sharing a prefix."""
    dtype: Literal["auto", "bfloat16", "float16", "half", "float32"] = "auto"
    """Compute dtype (auto = the checkpoint's)."""
    quantization: Optional[Literal["awq", "gptq", "fp8"]] = None
    """awq/gptq (int4 checkpoints) or fp8 (FP8 checkpoint, or online FP8 of a 16-bit one)."""
    weights_source: Literal["huggingface", "s3"] = "huggingface"
    """Where weights come from: Hugging Face (hfToken for gated models) or the model store (s3, vLLM only, Run:ai streamer)."""
    spread: Literal["soft", "hard"] = "soft"
    """soft: replicas may share a node; hard: one replica per node (anti-affinity)."""
    allowed_namespaces: list[Dns1123Label] = Field(default_factory=list, max_length=64)
    """Namespaces (besides the serving one) whose pods may reach port 8000 (up to 64)."""
    cpu_per_gpu: Optional[float] = Field(None, gt=0, le=64)
    """CPU cores requested and limited per GPU (default: 8, or the instance's share when smaller)."""
    memory_gib_per_gpu: Optional[int] = Field(None, ge=1, le=2048)
    """Memory (GiB) requested and limited per GPU, before /dev/shm (default: 96, or the instance's share)."""
    startup_seconds: Optional[int] = Field(None, ge=60, le=14400)
    """Start-up probe budget; defaults to one derived from the model's weight size, and may not be
    shorter than the time its weights take to load at the fastest path planned for."""
    drain_seconds: Optional[int] = Field(None, ge=1, le=3600)
    """Seconds a stopping pod keeps serving in-flight streams before SIGTERM (default: the longest planned stream, from maxModelLen)."""
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    """vLLM-only settings (kept, validated and unused when another stack is active)."""
    triton: TritonConfig = Field(default_factory=TritonConfig)
    """Triton-only settings."""
    nim: NimConfig = Field(default_factory=NimConfig)
    """NIM-only settings."""

    @model_validator(mode="after")
    def _rules(self) -> "ServingConfig":
        if self.model not in catalog.MODELS and self.custom_model is None:
            raise RuleError("model", f"'{self.model}' is not in the model catalog and has no customModel "
                         f"description — use one of {', '.join(catalog.MODELS)} or add serving.customModel")
        if self.stack == ServingStackKind.NIM and self.nim.image is None and catalog.nim_image_for(self.model) is None:
            raise RuleError("nim.image", f"no NIM image is catalogued for '{self.model}' — set serving.nim.image "
                         "or choose a model NVIDIA publishes a NIM for")
        twice = next((i for i, ns in enumerate(self.allowed_namespaces) if ns in self.allowed_namespaces[:i]), None)
        if twice is not None:
            raise RuleError(f"allowedNamespaces.{twice}", f"'{self.allowed_namespaces[twice]}' is listed twice — "
                            "list each namespace once")
        allowed = QUANTIZATION_DTYPES.get(self.quantization or "")
        if allowed is not None and self.dtype not in allowed:
            raise RuleError("dtype", f"{self.dtype} is not an activation dtype vLLM runs quantization "
                            f"{self.quantization} with (it refuses to load: supported {', '.join(allowed[1:])}) — "
                            f"use dtype {allowed[1]} or auto")
        if self.triton.models and self.stack != ServingStackKind.TRITON:
            raise RuleError("triton.models", f"{len(self.triton.models)} model(s) are configured but serving.stack is "
                            f"{self.stack}, which serves one model — use stack: triton, or remove serving.triton.models")
        check_models(self.triton.models, self.triton.model_name)
        try:
            release = engines.vllm_release(self.vllm.image, self.vllm.release)
            nim_image = self.nim.image or catalog.nim_image_for(self.model)
            if nim_image is not None:
                engines.nim_major(nim_image, self.nim.release)
        except engines.ReleaseError as exc:
            raise RuleError(exc.key, exc.message) from None
        unsupported = engines.vllm_unsupported(release, {"vllm.loadFormat": self.vllm.load_format})
        if unsupported:
            raise RuleError(*unsupported)
        if self.weights_source == "s3" and self.stack != ServingStackKind.VLLM:
            raise RuleError("weightsSource", f"s3 is supported for vllm only, not {self.stack}: Triton's bundled "
                         "vLLM and NIM download the weights themselves — use weightsSource: huggingface")
        if self.weights_source == "s3" and self.vllm.load_format not in (None, "runai_streamer", "runai_streamer_sharded"):
            raise RuleError("vllm.loadFormat", f"{self.vllm.load_format} cannot read weights from S3 (vLLM streams "
                            "s3:// models only with runai_streamer or runai_streamer_sharded) — use runai_streamer "
                            "or leave it unset")
        return self

    @property
    def architecture(self) -> catalog.ModelArchitecture:
        if self.custom_model is not None:
            c = self.custom_model
            return catalog.ModelArchitecture(self.model, c.parameters, c.layers, c.hidden_size, c.attention_heads,
                                             c.kv_heads, c.head_dim, c.native_dtype, c.max_context, gated=c.gated)
        return catalog.MODELS[self.model]

    @property
    def shape(self) -> ServingShape:
        return ServingShape(self.replicas, self.tensor_parallel_size, self.max_model_len,
                            self.gpu_memory_utilization, self.dtype, self.quantization, self.vllm.kv_cache_dtype,
                            self.max_num_seqs)
