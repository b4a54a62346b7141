"""Pure plan-time performance model: ITL, TTFT, throughput, KV concurrency and cost per token of one replica.

Nothing here imports Pulumi or pydantic. The formulas are performance-facts.md §5 (GB = 10^9 bytes):

    weights read per decode step per GPU   W  = ((P_lin·b_w) + P_head·b_head) / TP
        P_head = vocab x hidden (the LM head; the untied embedding is only gathered, B rows a step),
        P_lin  = parameters - 2·P_head, b_w the serving weight bytes (catalog.BYTES_PER_PARAM of
        sizing.serving_weight_dtype: 2 bf16, 1 fp8, 0.5 int4); quantized checkpoints keep the LM head
        in 16 bits (vLLM and ModelOpt leave it unquantized)
    KV read per step per GPU                K  = B·ctx·kv_tok (sizing.kv_bytes_per_token: per GPU)
    decode FLOPs per step per GPU           Fd = 2·(P_lin + P_head)·B/TP + 4·L·d_attn·ctx·B/TP
    ITL floor (100 % of peak)               max((W + K)/BW, Fd/F)
    ITL step (expected)                     max((W + K)/(BW·η_bw), Fd/(F·η_f)) + t_comm(B) + t_sched
        t_comm(n) = 2L·(α·log2(TP) + n·d·2 B·r/BW_link) for TP > 1, r = 2(TP-1)/TP (ring all-reduce;
        both factors are 1 at TP 2, the case performance-facts.md §2.3 works out)
    prefill FLOPs                           Fp(n) = 2·P_lin·n + 2·L·d_attn·n² + 2·P_head
    prefill time                            t_pf = max(Fp/(TP·F·η_f), W/(BW·η_bw)) + t_comm(ISL)
    TTFT floor                              max(Fp/(TP·F), W/BW)

F is the dense BF16 peak, or the FP8 peak where weights are FP8 and the GPU has FP8 tensor cores (W8A8;
Ampere runs FP8 weights as W8A16 and computes in BF16, performance-facts.md §5.1).

Closed loop with C requests in flight at the replica (performance-facts.md §5.2, "mixed steady state"):
B = min(C, KV concurrency, maxNumSeqs) sequences run, the rest wait for a slot. With the completion
rate λ = B/E2E, the prefill share of the GPU is ρ = λ·t_pf; a sequence's decode steps are stretched by
the OTHER sequences' prefills, ITL = t_step/(1 - ρ'), ρ' = ρ·(B-1)/B; a prompt waits behind the
other prefills (M/D/1 mean wait ρ'·t_pf/(2(1-ρ'))); TTFT = t_fixed + wait + t_pf; E2E = TTFT + (OSL-1)·ITL, solved for
the fixed point. Little's law then gives X_out = B·OSL/E2E and X_total = B·(ISL+OSL)/E2E; a client's
TTFT adds the wait for a slot, (C-B)/λ.

Every expected value is >= its floor by construction (η <= 1, additive terms >= 0, 1/(1-ρ) >= 1) and
clamped to it besides. The efficiency factors below are ONE set for every GPU, engine and anchor
(performance-facts.md §5.3); tests/test_performance.py holds them to the published measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .catalog import BYTES_PER_PARAM, GpuHardware, GpuInstanceType, ModelArchitecture
from .sizing import ServingShape, check_fit, kv_bytes_per_token, serving_weight_dtype

#: Decode memory-bandwidth utilization (MBU). Evidence: NIM 2x H100 FP8 at C=1 gives 0.56, vLLM 2x A100
#: PCIe bf16 single stream 0.61 (performance-facts.md §5.3, [D from S9, S16]); default 0.65.
ETA_BW = 0.65
#: Hard cap on ETA_BW: the best HBM read kernel reaches 88 % of the A100's datasheet figure ([S5]).
ETA_BW_CAP = 0.88
#: Prefill model-FLOP utilization (MFU). Evidence: TRT-LLM A100 TP4 2,048-token first token 0.61,
#: NIM H100 FP8 TP2 5,000 tokens 0.45 of FP8 peak (§5.3, [D from S12, S9]); default 0.55.
ETA_F = 0.55
#: Latency of one all-reduce (the α of t_comm): an assumption of 5-10 µs (§2.3); 160 per step at 80 layers.
ALLREDUCE_LATENCY_S = 7.5e-6
#: Engine CPU time per decode step (scheduling, sampling, detokenization): 0.5-2 ms (§5.2, [S7]).
SCHEDULER_S = 1.0e-3
#: Fixed part of TTFT (HTTP, tokenization, first scheduling): 10-30 ms (§5.2, [D from S9]).
FIXED_TTFT_S = 20e-3

assert 0 < ETA_BW <= ETA_BW_CAP and 0 < ETA_F <= 1


@dataclass(frozen=True)
class Workload:
    """What the clients send to ONE replica: fixed prompt and output lengths, C requests in flight."""

    input_tokens: int
    output_tokens: int
    concurrency: int
    ttft_p99_ms: Optional[float] = None
    itl_p50_ms: Optional[float] = None

    def __post_init__(self) -> None:
        if self.input_tokens < 1 or self.output_tokens < 1 or self.concurrency < 1:
            raise ValueError("a workload needs input_tokens, output_tokens and concurrency >= 1")

    @property
    def mean_context(self) -> float:
        """Mean tokens in a sequence's KV cache while it decodes: the prompt plus half the output."""
        return self.input_tokens + self.output_tokens / 2


@dataclass(frozen=True)
class Prediction:
    """Floors (100 % of peak, no overheads) and expected values at the default efficiencies, per replica."""

    workload: Workload
    batch: int
    """Sequences the engine runs at once: min(concurrency, kvConcurrency, maxNumSeqs)."""
    queued: int
    """Requests waiting for a slot (concurrency - batch)."""
    itl_floor_ms: float
    itl_expected_ms: float
    ttft_floor_ms: float
    ttft_expected_ms: float
    output_tokens_per_second: float
    total_tokens_per_second: float
    output_ceiling_tokens_per_second: float
    """batch / ITL floor: no engine can emit more output tokens per second at this batch."""
    e2e_seconds: float
    """A client's request latency (queueing included)."""
    prefill_share: float
    """Fraction of GPU time spent in prefill (ρ); near 1 the replica is prefill-saturated."""
    kv_cache_tokens: int
    kv_concurrency: int
    """Requests of input+output tokens the KV cache holds at once without preemption."""
    decode_bound: str
    """memory or compute: which term sets the decode step."""
    saturated: bool = False
    notes: tuple[str, ...] = field(default=())


# ---- the model's pieces (per GPU of one replica) ---------------------------------------------

def head_parameters(model: ModelArchitecture) -> float:
    """P_head = vocab x hidden (0 when the vocabulary is unknown: every parameter then counts as linear)."""
    return float(model.vocab_size or 0) * model.hidden_size


def linear_parameters(model: ModelArchitecture) -> float:
    """P_lin: every parameter but the untied embedding and LM head."""
    return model.parameters - 2 * head_parameters(model)


def weight_bytes_per_step(model: ModelArchitecture, shape: ServingShape) -> float:
    """W: weight bytes each GPU reads per forward pass (linear layers and LM head, 1/TP each)."""
    fmt = serving_weight_dtype(model, shape)
    head_bytes = BYTES_PER_PARAM[fmt] if fmt in ("bf16", "fp16", "fp32") else 2.0
    return (linear_parameters(model) * BYTES_PER_PARAM[fmt]
            + head_parameters(model) * head_bytes) / shape.tensor_parallel_size


def compute_tflops(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware) -> float:
    """Peak dense TFLOP/s the matmuls run at: FP8 only for FP8 weights on GPUs with FP8 tensor cores."""
    if serving_weight_dtype(model, shape) == "fp8" and hw.fp8_tflops:
        return hw.fp8_tflops
    return hw.bf16_tflops


def _attn_width(model: ModelArchitecture) -> int:
    return model.attention_heads * model.head_dim


def comm_seconds(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, tokens: float) -> float:
    """t_comm: 2 all-reduces per layer of tokens x hidden x 2 bytes; 0 without tensor parallelism. The
    latency term grows with log2(TP) (a tree's depth: 1x at TP 2, 2x at 4, 3x at 8) — an assumption."""
    tp = shape.tensor_parallel_size
    if tp == 1:
        return 0.0
    ring = 2 * (tp - 1) / tp
    per_allreduce = (ALLREDUCE_LATENCY_S * math.log2(tp)
                     + tokens * model.hidden_size * 2 * ring / (hw.link_gb_s_per_direction * 1e9))
    return 2 * model.layers * per_allreduce


def decode_bytes_per_step(model: ModelArchitecture, shape: ServingShape, batch: int, context: float) -> float:
    """W + K: bytes each GPU reads for one decode step of `batch` sequences of `context` tokens."""
    return weight_bytes_per_step(model, shape) + batch * context * kv_bytes_per_token(model, shape)


def memory_bandwidth_utilization(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, batch: int,
                                 context: float, itl_s: float) -> float:
    """MBU of a decode step that took `itl_s`: (W + K) / itl / peak bandwidth (performance-facts.md §4 H)."""
    return decode_bytes_per_step(model, shape, batch, context) / itl_s / (hw.memory_bandwidth_gb_s * 1e9)


def _decode_terms(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, batch: int,
                  context: float) -> tuple[float, float]:
    """(bytes, FLOPs) per GPU for one decode step of `batch` sequences of `context` tokens."""
    tp = shape.tensor_parallel_size
    flops = (2 * (linear_parameters(model) + head_parameters(model)) * batch
             + 4 * model.layers * _attn_width(model) * context * batch) / tp
    return decode_bytes_per_step(model, shape, batch, context), flops


def itl_floor_s(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, batch: int, context: float) -> float:
    """Physical floor of one decode step: every byte at peak bandwidth or every FLOP at peak, no overheads."""
    nbytes, flops = _decode_terms(model, shape, hw, batch, context)
    return max(nbytes / (hw.memory_bandwidth_gb_s * 1e9), flops / (compute_tflops(model, shape, hw) * 1e12))


def decode_step_s(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, batch: int,
                  context: float) -> tuple[float, str]:
    """Expected decode step at the default efficiencies, and whether memory or compute bounds it."""
    nbytes, flops = _decode_terms(model, shape, hw, batch, context)
    memory = nbytes / (hw.memory_bandwidth_gb_s * 1e9 * ETA_BW)
    compute = flops / (compute_tflops(model, shape, hw) * 1e12 * ETA_F)
    step = max(memory, compute) + comm_seconds(model, shape, hw, batch) + SCHEDULER_S
    return max(step, itl_floor_s(model, shape, hw, batch, context)), ("memory" if memory >= compute else "compute")


def prefill_flops(model: ModelArchitecture, tokens: int) -> float:
    """Fp(n) = 2·P_lin·n + 2·L·d_attn·n² (causal attention) + 2·P_head (the last token's logits)."""
    return (2 * linear_parameters(model) * tokens + 2 * model.layers * _attn_width(model) * tokens ** 2
            + 2 * head_parameters(model))


def ttft_floor_s(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, tokens: int) -> float:
    """Physical floor of a prefill: all FLOPs at peak on TP GPUs, or the weights read once at peak."""
    compute = prefill_flops(model, tokens) / (shape.tensor_parallel_size * compute_tflops(model, shape, hw) * 1e12)
    return max(compute, weight_bytes_per_step(model, shape) / (hw.memory_bandwidth_gb_s * 1e9))


def prefill_s(model: ModelArchitecture, shape: ServingShape, hw: GpuHardware, tokens: int) -> float:
    """Expected GPU time of one prompt's prefill, its tensor-parallel communication included."""
    compute = prefill_flops(model, tokens) / (shape.tensor_parallel_size * compute_tflops(model, shape, hw) * 1e12
                                              * ETA_F)
    memory = weight_bytes_per_step(model, shape) / (hw.memory_bandwidth_gb_s * 1e9 * ETA_BW)
    return max(compute, memory) + comm_seconds(model, shape, hw, tokens)


# ---- the closed loop -------------------------------------------------------------------------

def predict(model: ModelArchitecture, instance: GpuInstanceType, shape: ServingShape, workload: Workload,
            hardware: Optional[GpuHardware] = None) -> Prediction:
    """One replica of `shape` on `instance` serving `workload` (its concurrency is this replica's).
    Raises sizing.FitError when the shape does not fit the instance."""
    hw = hardware or instance.hardware
    fit = check_fit(model, instance, shape)
    w = workload
    per_request = w.input_tokens + w.output_tokens
    kv_concurrency = fit.kv_cache_tokens // per_request
    notes: list[str] = []
    batch = min(w.concurrency, max(kv_concurrency, 1), shape.max_num_seqs)
    if kv_concurrency == 0:
        notes.append(f"one request of {per_request} tokens exceeds the {fit.kv_cache_tokens}-token KV cache")
    if per_request > shape.max_model_len:
        notes.append(f"input + output ({per_request} tokens) exceed maxModelLen {shape.max_model_len}: "
                     "the engine rejects such requests")
    context = w.mean_context
    step, bound = decode_step_s(model, shape, hw, batch, context)
    t_pf = prefill_s(model, shape, hw, w.input_tokens)
    osl = w.output_tokens

    def loop(e2e: float) -> tuple[float, float, float, float]:
        """(E2E, ITL, TTFT, ρ) implied by assuming the engine's E2E is `e2e`."""
        rho = batch / e2e * t_pf
        others = rho * (batch - 1) / batch  # the GPU share of the other sequences' prefills
        if rho >= 1:
            return math.inf, math.inf, math.inf, rho
        itl = step / (1 - others)
        ttft = FIXED_TTFT_S + t_pf + others * t_pf / (2 * (1 - others))
        return ttft + (osl - 1) * itl, itl, ttft, rho

    # loop() falls as e2e grows: bisect for its fixed point between the unloaded E2E and a safe bound.
    lo = FIXED_TTFT_S + t_pf + (osl - 1) * step
    hi = max(lo, batch * t_pf) * 4 + 1.0
    while loop(hi)[0] > hi:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if loop(mid)[0] > mid:
            lo = mid
        else:
            hi = mid
    e2e, itl, ttft, rho = loop(hi)
    saturated = rho > 0.9
    if saturated:
        notes.append(f"prefill takes {rho:.0%} of the GPU: the replica is prefill-saturated and TTFT grows with load")
    x_out = batch * osl / e2e
    client_e2e = w.concurrency * osl / x_out
    client_ttft = ttft + (client_e2e - e2e)
    itl_floor = itl_floor_s(model, shape, hw, batch, context)
    ttft_floor = ttft_floor_s(model, shape, hw, w.input_tokens)
    return Prediction(
        workload=w, batch=batch, queued=w.concurrency - batch,
        itl_floor_ms=itl_floor * 1e3, itl_expected_ms=max(itl, itl_floor) * 1e3,
        ttft_floor_ms=ttft_floor * 1e3, ttft_expected_ms=max(client_ttft, ttft_floor) * 1e3,
        output_tokens_per_second=x_out, total_tokens_per_second=batch * per_request / e2e,
        output_ceiling_tokens_per_second=batch / itl_floor, e2e_seconds=client_e2e, prefill_share=rho,
        kv_cache_tokens=fit.kv_cache_tokens, kv_concurrency=kv_concurrency, decode_bound=bound,
        saturated=saturated, notes=tuple(notes),
    )


def usd_per_million_tokens(usd_per_hour: float, tokens_per_second: float) -> float:
    """$ / 1M tokens = price per hour / (tokens per second x 3,600) x 10^6 (performance-facts.md §5.2)."""
    if tokens_per_second <= 0:
        return math.inf
    return usd_per_hour / (tokens_per_second * 3600) * 1e6
