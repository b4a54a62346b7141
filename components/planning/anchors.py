"""Pure data: the published measurements the performance model is held to, and the source document's
claims it is set beside (performance-facts.md §3 and §4, with their sources).

Each anchor states the setup as published and, where the publication leaves something open, the
assumption the model makes (`assumption`). The model's constants are the same for every anchor
(performance.py); nothing here tunes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from .catalog import INSTANCE_TYPES, MODELS, GpuInstanceType, ModelArchitecture
from .performance import Prediction, Workload, itl_floor_s, predict
from .sizing import ServingShape

#: Tolerances the anchor test enforces (issue 15): ITL and output throughput within ±35 % at
#: concurrency <= 25, TTFT within ±35 % at concurrency 1. Other rows are reported, not enforced.
TOLERANCE = 0.35
TOLERANCE_MAX_CONCURRENCY = 25

LLAMA_70B = MODELS["meta-llama/Llama-3.1-70B-Instruct"]
#: NVIDIA's ModelOpt FP8 checkpoints quantize weights and KV cache to FP8 and leave lm_head in 16 bits
#: (hf_quant_config.json: quant_algo FP8, kv_cache_quant_algo FP8, exclude_modules [lm_head]).
LLAMA_70B_FP8 = dataclasses.replace(LLAMA_70B, hf_id="nvidia/Llama-3.3-70B-Instruct-FP8", native_dtype="fp8")
#: "LLaMA 70B" of TensorRT-LLM v0.5/v0.6 is Llama 2 70B: the same 80 x 8,192 layers with GQA-8 and a
#: 32,000-token vocabulary, 68.98 B parameters, 4,096-token context (its config.json).
LLAMA_2_70B = dataclasses.replace(LLAMA_70B, hf_id="meta-llama/Llama-2-70b-hf", parameters=68.98e9,
                                  native_dtype="fp16", max_context=4096, vocab_size=32000, nim_image=None)
P4DE = INSTANCE_TYPES["p4de.24xlarge"]
P5 = INSTANCE_TYPES["p5.48xlarge"]
#: Two A100 80GB PCIe cards, as in vLLM issue #7567 (not an AWS instance: price 0, never advised).
A100_PCIE_PAIR = GpuInstanceType("2x A100 80GB PCIe", "a100", 2, 81920, 32, 262144, 0, 0, 0.0, "8.0",
                                 gpu_model="A100-PCIe-80GB")

METRICS = {"ttft_ms": "TTFT ms", "itl_ms": "ITL ms", "output_tps": "output tok/s",
           "decode_tps": "single-stream decode tok/s"}


@dataclass(frozen=True)
class Anchor:
    key: str
    source: str
    setup: str
    model: ModelArchitecture
    instance: GpuInstanceType
    shape: ServingShape
    workload: Workload
    measured: dict[str, float]
    assumption: str = ""


def _nim(c: int, ttft: float, itl: float, tps: float) -> Anchor:
    return Anchor(
        f"A nim-c{c}", "NIM LLM benchmarking, Performance [S9]", "NIM 1.8.0 Llama-3.3-70B, 2x H100 SXM FP8 TP2",
        LLAMA_70B_FP8, P5, ServingShape(1, 2, 8192, 0.9, kv_cache_dtype="fp8", max_num_seqs=256),
        Workload(5000, 500, c), {"ttft_ms": ttft, "itl_ms": itl, "output_tps": tps},
        "FP8 KV cache and 16-bit lm_head, as NVIDIA's ModelOpt FP8 checkpoints ship; KV sized at 0.9")


ANCHORS: tuple[Anchor, ...] = (
    _nim(1, 406.8, 18.58, 51.7), _nim(5, 546.7, 21.83, 218.5), _nim(25, 688.7, 38.75, 623.4),
    _nim(50, 834.5, 59.73, 814.4),
    Anchor("C trt-128", "TensorRT-LLM performance page, v0.5/v0.6.1 [S12]", "LLaMA 70B (Llama 2) FP16, A100 TP4",
           LLAMA_2_70B, P4DE, ServingShape(1, 4, 4096, 0.9), Workload(128, 1, 1), {"ttft_ms": 47.0},
           "A100 80GB SXM (the page says A100); batch 1 first-token latency"),
    Anchor("C trt-2048", "TensorRT-LLM performance page, v0.5/v0.6.1 [S12]", "LLaMA 70B (Llama 2) FP16, A100 TP4",
           LLAMA_2_70B, P4DE, ServingShape(1, 4, 4096, 0.9), Workload(2048, 1, 1), {"ttft_ms": 377.0},
           "A100 80GB SXM (the page says A100); batch 1 first-token latency"),
    Anchor("G vllm-pcie", "vLLM issue #7567 [S16]", "vLLM, Llama 3.1 70B bf16, 2x A100 PCIe TP2",
           LLAMA_70B, A100_PCIE_PAIR, ServingShape(1, 2, 8192, 0.9), Workload(256, 512, 1), {"decode_tps": 17.0},
           "A100 80GB PCIe (1,935 GB/s; 70B bf16 needs 80 GB cards) without an NVLink bridge; prompt and "
           "output lengths not published (256/512 assumed; the decode step barely depends on them)"),
)


@dataclass(frozen=True)
class AnchorRow:
    anchor: Anchor
    metric: str
    measured: float
    floor: Optional[float]
    predicted: float
    enforced: bool

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1


def _value(metric: str, p: Prediction) -> tuple[Optional[float], float]:
    """(floor, expected) of `metric` in the prediction; throughputs have a ceiling, not a floor."""
    if metric == "ttft_ms":
        return p.ttft_floor_ms, p.ttft_expected_ms
    if metric == "itl_ms":
        return p.itl_floor_ms, p.itl_expected_ms
    if metric == "output_tps":
        return p.output_ceiling_tokens_per_second, p.output_tokens_per_second
    return 1e3 / p.itl_floor_ms, 1e3 / p.itl_expected_ms


def enforced(metric: str, concurrency: int) -> bool:
    if metric == "ttft_ms":
        return concurrency == 1
    return concurrency <= TOLERANCE_MAX_CONCURRENCY


def anchor_rows() -> list[AnchorRow]:
    rows = []
    for a in ANCHORS:
        p = predict(a.model, a.instance, a.shape, a.workload)
        for metric, measured in a.measured.items():
            floor, expected = _value(metric, p)
            rows.append(AnchorRow(a, metric, measured, floor, expected, enforced(metric, a.workload.concurrency)))
    return rows


# ---- the source document's claims (Llama 3.1 70B on 2x A100 80GB, 32 concurrent requests) ----------

#: Its vLLM deployment: TP 2, --max-model-len 8192, --gpu-memory-utilization 0.92, --max-num-seqs 64,
#: bf16 (dtype auto); the workload default (1,024 in / 256 out) since it states no lengths.
CLAIMS_SHAPE = ServingShape(1, 2, 8192, 0.92, max_num_seqs=64)
CLAIMS_WORKLOAD = Workload(1024, 256, 32)
#: (metric, vLLM, Triton+vLLM, NIM) as its benchmark table lists them.
CLAIMS = (("Throughput (tok/s)", 2100, 1950, 2400), ("TTFT P50 (ms)", 180, 210, 150),
          ("TTFT P99 (ms)", 450, 520, 380), ("ITL P50 (ms)", 28, 32, 24))


@dataclass(frozen=True)
class ClaimsModel:
    itl_floor_32_ms: float
    """Floor with all 32 sequences in the batch at 1,152-token contexts (the mean of 1,024 in / 256 out)."""
    output_ceiling_32: float
    bf16: Prediction
    """The document's settings: bf16 weights and KV cache."""
    fp8_kv: Prediction
    """The same with --kv-cache-dtype fp8 (the cache then holds all 32)."""


def claims_model() -> ClaimsModel:
    hw = P4DE.hardware
    floor = itl_floor_s(LLAMA_70B, CLAIMS_SHAPE, hw, 32, CLAIMS_WORKLOAD.mean_context)
    return ClaimsModel(floor * 1e3, 32 / floor, predict(LLAMA_70B, P4DE, CLAIMS_SHAPE, CLAIMS_WORKLOAD),
                       predict(LLAMA_70B, P4DE, dataclasses.replace(CLAIMS_SHAPE, kv_cache_dtype="fp8"),
                               CLAIMS_WORKLOAD))
