"""Pure sizing math (components/planning/sizing.py, components/planning/catalog.py) and the plan-time fit check of a
stack config (components/config/: parse_stack_config, fit_check).

Every number asserted here is taken from /work/shared/reference/serving-facts.md ("facts"):
section 1.1 (instance specs, us-east-1 on-demand prices of instances.vantage.sh data of 2026-01-21,
Karpenter's instance-types reference) and section 6 (model architectures from meta-llama/llama-models
sku_list.py and each checkpoint's config.json; KV bytes per token; weight sizes; vLLM V1 memory model
of vllm/v1/worker/gpu_worker.py; the per-GPU KV estimates at gpuMemoryUtilization 0.90).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from servingstack.planning import catalog, sizing
from servingstack.planning.catalog import GIB, INSTANCE_TYPES, MODELS, ModelArchitecture
from servingstack.config import ConfigError, fit_check, parse_stack_config
from servingstack.planning.sizing import (
    OVERHEAD_RESERVE_GIB,
    FitError,
    ServingShape,
    check_fit,
    kv_bytes_per_token,
    weight_dtype,
)
from conftest import set_key, stack_config

KIB = 1024
GB = 1e9

L8B = "meta-llama/Llama-3.1-8B-Instruct"
L70B = "meta-llama/Llama-3.1-70B-Instruct"
L405B = "meta-llama/Llama-3.1-405B-Instruct"
L405B_FP8 = "meta-llama/Llama-3.1-405B-Instruct-FP8"
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"
QWEN = "Qwen/Qwen2.5-72B-Instruct"

P4D = INSTANCE_TYPES["p4d.24xlarge"]    # 8x A100 40 GB (40960 MiB each)
P4DE = INSTANCE_TYPES["p4de.24xlarge"]  # 8x A100 80 GB (81920 MiB each)


def shape(tp: int = 1, max_model_len: int = 8192, util: float = 0.92, **kw) -> ServingShape:
    return ServingShape(replicas=1, tensor_parallel_size=tp, max_model_len=max_model_len,
                        gpu_memory_utilization=util, **kw)


def refusal(model: str | ModelArchitecture, instance, s: ServingShape) -> FitError:
    arch = MODELS[model] if isinstance(model, str) else model
    with pytest.raises(FitError) as exc:
        check_fit(arch, instance, s)
    return exc.value


def raw_config(serving: dict, pool: dict | None = None, environment: str = "dev") -> dict:
    """A raw `servingstack:` config map as the engine passes it (objects as JSON strings)."""
    raw = {"servingstack:environment": environment, "servingstack:serving": json.dumps(serving),
           "servingstack:cluster": json.dumps({"publicAccessCidrs": ["203.0.113.0/24"]})}
    if pool is not None:
        raw["servingstack:gpuNodePool"] = json.dumps(pool)
    return raw


def config_error(raw: dict) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        parse_stack_config(raw)
    return exc.value


# ---- catalog vs serving-facts.md -------------------------------------------------------------

# facts §1.1 table: GPUs, GPU MiB (Karpenter instance-gpu-memory), vCPU, RAM MiB, NVMe GB, EFA, $/hr.
INSTANCE_FACTS = {
    "p4d.24xlarge": (8, 40960, 96, 1179648, 8000, 4, 21.957642),
    "p4de.24xlarge": (8, 81920, 96, 1179648, 8000, 4, 27.44705),
    "p5.48xlarge": (8, 81920, 192, 2048 * 1024, 30400, 32, 55.04),
    "g5.xlarge": (1, 22888, 4, 16 * 1024, 250, 0, 1.006),
    "g5.12xlarge": (4, 22888, 48, 192 * 1024, 3800, 1, 5.672),
    "g5.48xlarge": (8, 22888, 192, 768 * 1024, 7600, 1, 16.288),
    "g6.xlarge": (1, 22888, 4, 16 * 1024, 250, 0, 0.8048),
    "g6.12xlarge": (4, 22888, 48, 192 * 1024, 3760, 1, 4.6016),
    "g6.48xlarge": (8, 22888, 192, 768 * 1024, 7520, 1, 13.3504),
}


@pytest.mark.parametrize("name", sorted(INSTANCE_FACTS))
def test_instance_specs_match_facts_table(name):
    """serving-facts.md §1.1 (specs [S2] Karpenter instance-types.md; prices [S1] vantage 2026-01-21)."""
    i = INSTANCE_TYPES[name]
    assert (i.gpus, i.gpu_memory_mib, i.vcpus, i.memory_mib, i.nvme_gb, i.efa_interfaces,
            i.on_demand_usd_per_hour) == INSTANCE_FACTS[name]


def test_g6e_prices_and_gpu_counts_match_facts():
    """serving-facts.md §1.1: g6e.xl/48xl 1/8x L40S 48 GB, 4/192 vCPU, $1.861 / $30.13118 per hour."""
    assert (INSTANCE_TYPES["g6e.xlarge"].gpus, INSTANCE_TYPES["g6e.48xlarge"].gpus) == (1, 8)
    assert (INSTANCE_TYPES["g6e.xlarge"].vcpus, INSTANCE_TYPES["g6e.48xlarge"].vcpus) == (4, 192)
    assert INSTANCE_TYPES["g6e.xlarge"].on_demand_usd_per_hour == 1.861
    assert INSTANCE_TYPES["g6e.48xlarge"].on_demand_usd_per_hour == 30.13118


def test_gpu_names_and_compute_capability():
    """Karpenter `instance-gpu-name` a100|h100|l4|a10g (facts §1.1); A100 is SM80, which has no FP8
    compute, so FP8 checkpoints run weight-only W8A16 (facts §4 "FP8 on A100" [S33])."""
    assert {n: INSTANCE_TYPES[n].gpu_name for n in ("p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge",
                                                     "g5.xlarge", "g6.xlarge")} == {
        "p4d.24xlarge": "a100", "p4de.24xlarge": "a100", "p5.48xlarge": "h100", "g5.xlarge": "a10g",
        "g6.xlarge": "l4"}
    assert P4D.compute_capability == P4DE.compute_capability == "8.0"
    assert P4D.capacity_block  # Capacity Blocks: p4d.24xlarge $14.75/hr US East (Ohio) [S6]


# facts §6 table: params, layers, hidden, Q heads, KV heads, head_dim, ctx (Qwen: Instruct 32768).
MODEL_FACTS = {
    L8B: (8.03e9, 32, 4096, 32, 8, 128, 131072),
    L70B: (70.55e9, 80, 8192, 64, 8, 128, 131072),
    L405B: (405.85e9, 126, 16384, 128, 8, 128, 131072),
    L405B_FP8: (405.85e9, 126, 16384, 128, 8, 128, 131072),
    MISTRAL: (7.25e9, 32, 4096, 32, 8, 128, 32768),
    QWEN: (72.71e9, 80, 8192, 64, 8, 128, 32768),
}


@pytest.mark.parametrize("model_id", sorted(MODEL_FACTS))
def test_model_architecture_matches_facts_table(model_id):
    """serving-facts.md §6 table (params computed untied [S38][S39]; meta-llama config.json)."""
    m = MODELS[model_id]
    assert (m.parameters, m.layers, m.hidden_size, m.attention_heads, m.kv_heads, m.head_dim,
            m.max_context) == MODEL_FACTS[model_id]
    assert m.hidden_size == m.attention_heads * m.head_dim


def test_checkpoint_dtypes():
    """The 405B FP8 checkpoint is Meta's FP8 release; all others are bf16 (config.json torch_dtype)."""
    assert {k: m.native_dtype for k, m in MODELS.items()} == {
        L8B: "bf16", L70B: "bf16", L405B: "bf16", L405B_FP8: "fp8", MISTRAL: "bf16", QWEN: "bf16"}


# ---- KV bytes per token ----------------------------------------------------------------------

@pytest.mark.parametrize("model_id, bf16_bytes", [
    # facts §6: KV bytes/token = 2 x layers x kv_heads x head_dim x bytes.
    (L8B, 131_072),        # 2 x 32 x 8 x 128 x 2 = 128 KiB
    (MISTRAL, 131_072),    # same attention shape as Llama-3.1-8B
    (L70B, 327_680),       # 2 x 80 x 8 x 128 x 2 = 320 KiB (meta-llama config.json: 80 layers, 8 KV heads)
    (QWEN, 327_680),       # 80 layers, 8 KV heads, head_dim 128
    (L405B, 516_096),      # 2 x 126 x 8 x 128 x 2 = 504 KiB
    (L405B_FP8, 516_096),  # FP8 weights (W8A16 on A100), bf16 KV cache unless kvCacheDtype fp8
])
def test_kv_bytes_per_token_match_facts(model_id, bf16_bytes):
    m = MODELS[model_id]
    assert kv_bytes_per_token(m, shape(tp=1)) == bf16_bytes
    assert kv_bytes_per_token(m, shape(tp=1, kv_cache_dtype="fp8")) == bf16_bytes // 2  # 64/160/252 KiB
    assert kv_bytes_per_token(m, shape(tp=1, dtype="float16")) == bf16_bytes
    # TP <= kv_heads (8): each GPU holds 1/TP of the KV heads.
    for tp in (2, 4, 8):
        assert kv_bytes_per_token(m, shape(tp=tp)) == bf16_bytes // tp


def test_kv_cache_sizes_at_8k_and_128k_tokens():
    """facts §6 "(fp16 at 8K / 128K tokens)": 8B 1.0 / 16 GiB; 70B 2.5 / 40 GiB; 405B 3.94 / 63 GiB."""
    for model_id, at_8k, at_128k in ((L8B, 1.0, 16), (L70B, 2.5, 40), (L405B, 3.94, 63)):
        per_token = kv_bytes_per_token(MODELS[model_id], shape(tp=1))
        assert per_token * 8192 / GIB == pytest.approx(at_8k, abs=0.005)
        assert per_token * 131072 / GIB == pytest.approx(at_128k, abs=0.5)


def test_tp_beyond_kv_heads_replicates_kv_heads():
    """facts §6: "TP > 8 replicates KV heads" - per-GPU KV bytes stop shrinking at TP = kv_heads."""
    m = dataclasses.replace(MODELS[L8B], hf_id="example/four-kv-heads", kv_heads=4)
    total = 2 * 32 * 4 * 128 * 2
    assert kv_bytes_per_token(m, shape(tp=4)) == total // 4
    assert kv_bytes_per_token(m, shape(tp=8)) == total // 4


# ---- weights ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model_id, gb, gib", [
    # facts §6 "Weights" (bf16): 8B 16.1 GB (15.0 GiB); 70B 141.1 GB (131.4 GiB);
    # 405B 811.7 GB (756 GiB; exceeds a p4de's 640 GB); Mistral-7B 14.5 GB; Qwen2.5-72B 145.4 GB.
    (L8B, 16.1, 15.0),
    (L70B, 141.1, 131.4),
    (L405B, 811.7, 756.0),
    (MISTRAL, 14.5, 13.5),
    (QWEN, 145.4, 135.4),
])
def test_bf16_weight_sizes_match_facts(model_id, gb, gib):
    m = MODELS[model_id]
    bytes_ = m.parameters * catalog.BYTES_PER_PARAM[weight_dtype(m, shape())]
    assert bytes_ / GB == pytest.approx(gb, abs=0.06)
    assert bytes_ / GIB == pytest.approx(gib, abs=0.06)


def test_fp8_and_int4_weight_sizes():
    """facts §6: fp8 ~1 B/param (70B ~70.6 GB, 405B ~406 GB), int4 ~0.5 B/param (70B ~35 GB)."""
    assert MODELS[L405B_FP8].parameters * catalog.BYTES_PER_PARAM["fp8"] / GB == pytest.approx(406, abs=0.5)
    assert MODELS[L70B].parameters * catalog.BYTES_PER_PARAM["fp8"] / GB == pytest.approx(70.6, abs=0.1)
    assert MODELS[L70B].parameters * catalog.BYTES_PER_PARAM["int4"] / GB == pytest.approx(35, abs=0.5)
    assert check_fit(MODELS[L405B_FP8], P4DE, shape(tp=8)).weights_gib == pytest.approx(378.0, abs=0.05)


def test_weight_dtype_rules():
    m70 = MODELS[L70B]
    assert weight_dtype(m70, shape()) == "bf16"
    assert weight_dtype(m70, shape(dtype="float16")) == "fp16"
    assert weight_dtype(m70, shape(dtype="float32")) == "fp32"
    # Online FP8 reads the 16-bit checkpoint first: bf16 weights must fit while loading (issue 6).
    assert weight_dtype(m70, shape(quantization="fp8")) == "bf16"
    assert weight_dtype(MODELS[L405B_FP8], shape()) == "fp8"
    assert weight_dtype(MODELS[L405B_FP8], shape(dtype="bfloat16")) == "fp8"


# ---- the must-hold fit cases (issue 6) --------------------------------------------------------

def test_70b_bf16_tp1_on_p4de_is_refused():
    """131.4 GiB of bf16 weights on one 80 GB A100 (73.6 GiB usable at 0.92)."""
    err = refusal(L70B, P4DE, shape(tp=1))
    assert err.key == "serving.tensorParallelSize"
    assert "131 GiB of bf16 weights" in err.message
    assert "use tensorParallelSize 2" in err.message


def test_70b_bf16_tp2_on_p4d_is_refused():
    """65.7 GiB per GPU > 36.8 GiB usable on a 40 GB A100; TP 4 (32.9 + 4 GiB) misses by 0.1 GiB,
    TP 8 (16.4 GiB/GPU, facts §6 "70B bf16 TP8 p4d 16.4") is the smallest that fits."""
    err = refusal(L70B, P4D, shape(tp=2))
    assert err.key == "serving.tensorParallelSize"
    assert "p4d.24xlarge" in err.message and "36.8 GiB usable per GPU" in err.message
    assert "use tensorParallelSize 8" in err.message
    refusal(L70B, P4D, shape(tp=4))


def test_70b_bf16_tp2_on_p4de_is_accepted_and_reports_kv():
    """The source document's vLLM deployment (prod stack): TP 2, maxModelLen 8192, util 0.92."""
    r = check_fit(MODELS[L70B], P4DE, shape(tp=2))
    assert r.weights_per_gpu_gib == pytest.approx(65.7, abs=0.01)
    assert r.usable_per_gpu_gib == pytest.approx(80 * 0.92)
    assert r.kv_budget_per_gpu_gib == pytest.approx(80 * 0.92 - 65.7 - OVERHEAD_RESERVE_GIB, abs=0.01)
    assert r.kv_bytes_per_token_per_gpu == 327_680 // 2
    assert r.kv_cache_tokens == 25_520
    assert r.max_concurrent_sequences == 3


def test_70b_bf16_tp8_on_p4d_is_accepted():
    """facts §6 estimate "70B bf16 TP8 p4d 16.4 -> 15.6 (40 KiB/tok/GPU) -> 400K" (at util 0.90)."""
    r = check_fit(MODELS[L70B], P4D, shape(tp=8, util=0.90))
    assert r.weights_per_gpu_gib == pytest.approx(16.4, abs=0.05)
    assert r.kv_budget_per_gpu_gib == pytest.approx(15.6, abs=0.05)
    assert r.kv_bytes_per_token_per_gpu == 40 * KIB
    assert r.kv_cache_tokens == pytest.approx(400_000, rel=0.03)
    check_fit(MODELS[L70B], P4D, shape(tp=8))  # and at the default 0.92


def test_405b_bf16_on_one_p4de_is_refused_with_a_fix():
    """facts §6: 405B bf16 is 811.7 GB (756 GiB) and "exceeds a p4de's 640 GB"; Meta lists BF16 at
    8 x 120 GB or 16 x 70 GB (sku_list.py hardware_requirements [S38])."""
    err = refusal(L405B, P4DE, shape(tp=8))
    assert err.key == "serving.model"
    assert "756 GiB of bf16 weights" in err.message
    assert "no tensorParallelSize up to 8 fits" in err.message
    assert f"serving.model: {L405B_FP8} with tensorParallelSize 8" in err.message
    assert "multi-node serving is not supported" not in err.message  # the fix must be actionable


def test_no_fitting_tp_suggests_the_cheapest_instance_type_that_fits():
    """70B bf16 (131.4 GiB) on a g5.12xlarge (4x A10G, 22888 MiB) fits at no TP; the cheapest
    catalogued type that holds it with an 8192-token context is p4d.24xlarge ($21.957642/h, facts
    §1.1) at TP 8 (g5/g6.48xlarge leave < 0.2 GiB of KV per GPU; g6e.48xlarge costs $30.13/h)."""
    err = refusal(L70B, INSTANCE_TYPES["g5.12xlarge"], shape(tp=4))
    assert err.key == "serving.model"
    assert "use gpuNodePool.instanceType p4d.24xlarge (tensorParallelSize 8)" in err.message


def test_405b_fp8_tp8_on_p4de_is_accepted():
    """facts §6: 405B FP8 ~406 GB "fits 8x80 GB, ~20 GiB/GPU for KV"; estimate "405B FP8 TP8 p4de
    47.2 -> 20.8 (63 KiB) -> 345K" at util 0.90; Meta lists FP8 as 8 x 70 GB [S38]."""
    r = check_fit(MODELS[L405B_FP8], P4DE, shape(tp=8, util=0.90))
    assert r.weight_dtype == "fp8"
    assert r.weights_per_gpu_gib == pytest.approx(47.2, abs=0.05)
    assert r.kv_budget_per_gpu_gib == pytest.approx(20.8, abs=0.05)
    assert r.kv_bytes_per_token_per_gpu == 516_096 // 8  # 63 KiB
    assert r.kv_cache_tokens == pytest.approx(345_000, rel=0.03)
    check_fit(MODELS[L405B_FP8], P4DE, shape(tp=8))
    refusal(L405B_FP8, P4DE, shape(tp=4))  # 94.5 GiB of fp8 weights per GPU


# Through the config layer: the refusal names the key path (servingstack:<key>) and a fix.

@pytest.mark.parametrize("instance, tp, model", [
    ("p4de.24xlarge", 1, L70B),
    ("p4d.24xlarge", 2, L70B),
    ("p4de.24xlarge", 8, L405B),
])
def test_config_refusals_name_key_path_and_fix(instance, tp, model):
    err = config_error(raw_config({"model": model, "replicas": 1, "tensorParallelSize": tp},
                                  {"instanceType": instance, "maxSize": 1, "desiredSize": 1}))
    text = str(err)
    assert text.startswith(f"servingstack:{err.key}: ")
    assert err.key in ("serving.tensorParallelSize", "serving.model")
    assert " — use " in text  # the fix
    assert "\n" not in text


@pytest.mark.parametrize("instance, tp, model", [
    ("p4de.24xlarge", 2, L70B),
    ("p4d.24xlarge", 8, L70B),
    ("p4de.24xlarge", 8, L405B_FP8),
])
def test_config_acceptances(instance, tp, model):
    cfg = parse_stack_config(raw_config({"model": model, "replicas": 1, "tensorParallelSize": tp},
                                        {"instanceType": instance, "maxSize": 1, "desiredSize": 1}))
    report = fit_check(cfg)
    assert report.kv_cache_tokens >= cfg.serving.max_model_len
    assert report.max_concurrent_sequences >= 1


def test_prod_stack_reports_kv_tokens_and_concurrency():
    """A fitting config reports KV-cache tokens and concurrent full-length sequences (issue 6)."""
    cfg = parse_stack_config(stack_config("prod"))
    report = fit_check(cfg)
    assert (report.kv_cache_tokens, report.max_concurrent_sequences) == (25_520, 3)
    assert report.max_concurrent_sequences == report.kv_cache_tokens // cfg.serving.max_model_len


@pytest.mark.parametrize("name", ["dev", "dev-small", "prod", "staging"])
def test_checked_in_stacks_fit(name):
    report = fit_check(parse_stack_config(stack_config(name)))
    assert report.kv_cache_tokens >= 8192


# ---- more of the facts §6 estimates (util 0.90, ~4 GiB/GPU overhead) -------------------------

@pytest.mark.parametrize("model_id, instance, tp, weights, budget, tokens", [
    (L8B, "p4d.24xlarge", 1, 15.0, 17, 140_000),     # 8B bf16 A100-40: 15.0 -> 17 -> 140K
    (L8B, "p4de.24xlarge", 1, 15.0, 53, 435_000),    # A100-80: -> 53 -> 435K
    (L70B, "p4de.24xlarge", 4, 32.9, 35, 460_000),   # 70B TP4 A100-80: 32.9 -> 35 (80 KiB) -> 460K
    (L70B, "p4de.24xlarge", 8, 16.4, 51.6, 1_350_000),  # 70B TP8 p4de: 16.4 -> 51.6 -> 1.35M
    (MISTRAL, "g5.xlarge", 1, 13.5, 2.6, 21_000),    # Mistral-7B bf16 A10G (22888 MiB): 13.5 -> 2.6 -> 21K
    (MISTRAL, "g6.xlarge", 1, 13.5, 2.6, 21_000),    # ... and L4 (same 22888 MiB)
])
def test_kv_estimates_match_facts(model_id, instance, tp, weights, budget, tokens):
    r = check_fit(MODELS[model_id], INSTANCE_TYPES[instance], shape(tp=tp, max_model_len=4096, util=0.90))
    assert r.weights_per_gpu_gib == pytest.approx(weights, abs=0.05)
    assert r.kv_budget_per_gpu_gib == pytest.approx(budget, abs=0.15)
    assert r.kv_cache_tokens == pytest.approx(tokens, rel=0.03)


def test_70b_tp8_p4de_holds_about_ten_full_128k_contexts():
    """facts §6: "TP8 p4de 16.4 -> 51.6 -> 1.35M (~10 full 128K contexts)"."""
    r = check_fit(MODELS[L70B], P4DE, shape(tp=8, max_model_len=131072, util=0.90))
    assert r.max_concurrent_sequences == 10


def test_70b_fp8_checkpoint_tp4_on_a100_40():
    """facts §6: "70B FP8 W8A16 TP4 A100-40 16.4 -> 15.6 -> 200K" (an FP8 checkpoint, customModel)."""
    fp8 = dataclasses.replace(MODELS[L70B], hf_id="example/Llama-3.1-70B-Instruct-FP8", native_dtype="fp8")
    r = check_fit(fp8, P4D, shape(tp=4, util=0.90))
    assert r.weights_per_gpu_gib == pytest.approx(16.4, abs=0.05)
    assert r.kv_budget_per_gpu_gib == pytest.approx(15.6, abs=0.05)
    assert r.kv_cache_tokens == pytest.approx(200_000, rel=0.03)


def test_mistral_on_a10g_needs_short_context():
    """facts §6: Mistral-7B on A10G/L4 -> ~21K tokens: "--max-model-len <= ~16K, or fp8/AWQ"."""
    g5 = INSTANCE_TYPES["g5.xlarge"]
    check_fit(MODELS[MISTRAL], g5, shape(max_model_len=16384, util=0.90))
    err = refusal(MISTRAL, g5, shape(max_model_len=32768, util=0.90))
    assert err.key == "serving.maxModelLen"
    assert "use maxModelLen <=" in err.message
    assert check_fit(MODELS[MISTRAL], g5, shape(max_model_len=32768, util=0.90,
                                                kv_cache_dtype="fp8")).kv_cache_tokens >= 32768


# ---- online fp8, quantization, context, parallelism -------------------------------------------

def test_online_fp8_must_fit_bf16_weights_while_loading():
    """Online FP8 of a bf16 checkpoint loads the bf16 weights first (issue 6): 70B TP1 on p4de is
    refused even with quantization fp8, though an FP8 *checkpoint* (65.7 GiB) would fit there."""
    err = refusal(L70B, P4DE, shape(tp=1, quantization="fp8"))
    assert "bf16 weights" in err.message
    fp8_checkpoint = dataclasses.replace(MODELS[L70B], hf_id="example/70B-FP8", native_dtype="fp8")
    assert check_fit(fp8_checkpoint, P4DE, shape(tp=1)).weight_dtype == "fp8"
    assert check_fit(MODELS[L70B], P4DE, shape(tp=2, quantization="fp8")).weight_dtype == "bf16"


@pytest.mark.parametrize("q", ["awq", "gptq"])
def test_int4_quantization_needs_an_int4_checkpoint(q):
    """vLLM's awq/gptq read the checkpoint's quantization_config; they cannot quantize bf16 weights."""
    err = refusal(L70B, P4DE, shape(tp=2, quantization=q))
    assert err.key == "serving.quantization"
    assert "remove serving.quantization" in err.message
    awq = dataclasses.replace(MODELS[L70B], hf_id="example/70B-AWQ", native_dtype="int4")
    r = check_fit(awq, P4D, shape(tp=2, quantization=q))
    assert r.weight_dtype == "int4"
    assert r.weights_gib == pytest.approx(70.55e9 * 0.5 / GIB)
    err = refusal(awq, P4D, shape(tp=2, quantization="fp8"))
    assert err.key == "serving.quantization"


def test_max_model_len_above_model_context_is_refused():
    """vLLM refuses --max-model-len above max_position_embeddings: Mistral-7B-v0.3 and
    Qwen2.5-72B-Instruct are 32768 (facts §6 table, sliding_window null / YaRN off)."""
    for model_id in (MISTRAL, QWEN):
        err = refusal(model_id, P4DE, shape(tp=8, max_model_len=32769))
        assert err.key == "serving.maxModelLen"
        assert "use maxModelLen <= 32768" in err.message
        check_fit(MODELS[model_id], P4DE, shape(tp=8, max_model_len=32768))


def test_tp_must_divide_attention_heads():
    err = refusal(L70B, P4DE, shape(tp=3))
    assert err.key == "serving.tensorParallelSize"
    assert "64 attention heads" in err.message and "use one of 1, 2, 4, 8" in err.message


def test_tp_must_fit_one_node():
    g6_12 = INSTANCE_TYPES["g6.12xlarge"]  # 4x L4
    err = refusal(L8B, g6_12, shape(tp=8))
    assert err.key == "serving.tensorParallelSize"
    assert "use tensorParallelSize <= 4" in err.message


def test_tp_must_divide_or_be_a_multiple_of_kv_heads():
    """vLLM: TP < kv_heads must divide them; TP >= kv_heads must be a multiple of them."""
    m = ModelArchitecture("example/odd-kv", 1e9, 16, 2048, 24, 6, 128, "bf16", 8192)
    err = refusal(m, P4DE, shape(tp=4))
    assert err.key == "serving.tensorParallelSize"
    assert "6 KV heads" in err.message and "use one of 1, 2, 3, 6" in err.message
    check_fit(m, P4DE, shape(tp=6))


# ---- customModel -----------------------------------------------------------------------------

CUSTOM_70B = {"parameters": 70.55e9, "layers": 80, "hiddenSize": 8192, "attentionHeads": 64, "kvHeads": 8,
              "headDim": 128, "nativeDtype": "bf16", "maxContext": 131072}


def test_custom_model_uses_the_same_math_as_the_catalog():
    cfg = parse_stack_config(raw_config(
        {"model": "acme/llama-70b-finetune", "customModel": CUSTOM_70B, "replicas": 1, "tensorParallelSize": 2},
        {"maxSize": 1, "desiredSize": 1}))
    assert fit_check(cfg) == check_fit(MODELS[L70B], P4DE, shape(tp=2))


def test_custom_model_refusal_names_key_path():
    err = config_error(raw_config(
        {"model": "acme/llama-70b-finetune", "customModel": CUSTOM_70B, "replicas": 1, "tensorParallelSize": 1},
        {"maxSize": 1, "desiredSize": 1}))
    assert str(err).startswith("servingstack:serving.tensorParallelSize: 1 — acme/llama-70b-finetune needs")


def test_unknown_model_without_description_is_a_one_line_error():
    err = config_error(raw_config({"model": "acme/mystery-13b", "replicas": 1, "tensorParallelSize": 1}))
    text = str(err)
    assert text.startswith("servingstack:serving.model: 'acme/mystery-13b'")
    assert "serving.customModel" in text and "\n" not in text


def test_stack_file_overrides_via_conftest_helper():
    """conftest.set_key on a checked-in stack: prod with TP 1 is refused at parse time."""
    config = set_key(stack_config("prod"), "servingstack:serving.tensorParallelSize", 1)
    err = config_error(config)
    assert err.key == "serving.tensorParallelSize"
    assert "use tensorParallelSize 2" in str(err)


# ---- properties (hypothesis) -----------------------------------------------------------------

INSTANCES = st.sampled_from(sorted(INSTANCE_TYPES.values(), key=lambda i: i.name))
UTIL = st.floats(min_value=0.11, max_value=0.98, allow_nan=False)
LEN = st.integers(min_value=256, max_value=131072)


@st.composite
def architectures(draw) -> ModelArchitecture:
    kv_heads = draw(st.sampled_from([1, 2, 4, 8, 16]))
    group = draw(st.sampled_from([1, 2, 4, 8]))
    head_dim = draw(st.sampled_from([64, 128, 256]))
    return ModelArchitecture(
        hf_id="example/generated",
        parameters=10 ** draw(st.floats(min_value=8.0, max_value=12.0, allow_nan=False)),  # 100M .. 1T
        layers=draw(st.integers(min_value=1, max_value=160)),
        hidden_size=kv_heads * group * head_dim,
        attention_heads=kv_heads * group,
        kv_heads=kv_heads,
        head_dim=head_dim,
        native_dtype=draw(st.sampled_from(["bf16", "fp16", "fp8", "int4"])),
        max_context=131072,
    )


MODELS_ST = st.one_of(st.sampled_from(sorted(MODELS.values(), key=lambda m: m.hf_id)), architectures())


def valid_tps(model: ModelArchitecture, instance) -> list[int]:
    return [t for t in range(1, instance.gpus + 1) if sizing._valid_tp(model, t)]


def fit(model, instance, s):
    try:
        return check_fit(model, instance, s)
    except FitError:
        return None


@st.composite
def cases(draw):
    model = draw(MODELS_ST)
    instance = draw(INSTANCES)
    tp = draw(st.sampled_from(valid_tps(model, instance)))
    s = ServingShape(1, tp, min(draw(LEN), model.max_context), draw(UTIL),
                     kv_cache_dtype=draw(st.sampled_from(["auto", "fp8"])))
    return model, instance, s


@settings(max_examples=300, deadline=None)
@given(cases(), st.floats(min_value=1.0, max_value=4.0))
def test_monotonic_in_model_size(case, factor):
    """A larger model (more parameters, same attention) never fits where a smaller one does not, and
    never leaves more KV cache."""
    model, instance, s = case
    bigger = dataclasses.replace(model, parameters=model.parameters * factor)
    small, big = fit(model, instance, s), fit(bigger, instance, s)
    if big is not None:
        assert small is not None
        assert small.kv_cache_tokens >= big.kv_cache_tokens
        assert small.kv_budget_per_gpu_gib >= big.kv_budget_per_gpu_gib


@settings(max_examples=300, deadline=None)
@given(cases(), LEN)
def test_monotonic_in_max_model_len(case, other_len):
    """Longer maxModelLen: never accepted where a shorter one is refused; same KV tokens; fewer or
    equal concurrent full-length sequences."""
    model, instance, s = case
    lo, hi = sorted((s.max_model_len, min(other_len, model.max_context)))
    short = fit(model, instance, dataclasses.replace(s, max_model_len=lo))
    long_ = fit(model, instance, dataclasses.replace(s, max_model_len=hi))
    if long_ is not None:
        assert short is not None
        assert short.kv_cache_tokens == long_.kv_cache_tokens
        assert short.max_concurrent_sequences >= long_.max_concurrent_sequences


@settings(max_examples=300, deadline=None)
@given(cases(), UTIL)
def test_monotonic_in_utilization(case, other_util):
    """A higher gpuMemoryUtilization never refuses what a lower one accepts, nor leaves less KV."""
    model, instance, s = case
    lo, hi = sorted((s.gpu_memory_utilization, other_util))
    low = fit(model, instance, dataclasses.replace(s, gpu_memory_utilization=lo))
    high = fit(model, instance, dataclasses.replace(s, gpu_memory_utilization=hi))
    if low is not None:
        assert high is not None
        assert high.kv_cache_tokens >= low.kv_cache_tokens
        assert high.max_concurrent_sequences >= low.max_concurrent_sequences


@settings(max_examples=200, deadline=None)
@given(cases())
def test_more_tensor_parallelism_never_hurts(case):
    """Among valid TP sizes, a larger TP never refuses what a smaller accepts (weights and, up to
    the KV-head count, the KV cache split over more GPUs)."""
    model, instance, s = case
    results = [(tp, fit(model, instance, dataclasses.replace(s, tensor_parallel_size=tp)))
               for tp in valid_tps(model, instance)]
    for (tp_a, a), (tp_b, b) in zip(results, results[1:]):
        if a is not None:
            assert b is not None, (tp_a, tp_b)
            assert b.kv_cache_tokens >= a.kv_cache_tokens


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases(), st.integers(min_value=256, max_value=8192))
def test_report_is_internally_consistent(case, short_len):
    model, instance, s = case
    s = dataclasses.replace(s, max_model_len=short_len)  # short contexts: most generated cases fit
    r = fit(model, instance, s)
    assume(r is not None)
    tp = s.tensor_parallel_size
    assert r.weights_gib == model.parameters * catalog.BYTES_PER_PARAM[r.weight_dtype] / GIB
    assert r.weights_per_gpu_gib == pytest.approx(r.weights_gib / tp)
    assert r.usable_per_gpu_gib == pytest.approx(instance.gpu_memory_gib * s.gpu_memory_utilization)
    assert r.weights_per_gpu_gib + r.overhead_per_gpu_gib + r.kv_budget_per_gpu_gib == pytest.approx(
        r.usable_per_gpu_gib)
    total_kv = 2 * model.layers * model.kv_heads * model.head_dim * (1 if s.kv_cache_dtype == "fp8" else 2)
    assert r.kv_bytes_per_token_per_gpu * min(tp, model.kv_heads) >= total_kv
    assert r.kv_cache_tokens % sizing.KV_BLOCK_TOKENS == 0
    assert r.kv_cache_tokens * r.kv_bytes_per_token_per_gpu <= r.kv_budget_per_gpu_gib * GIB
    assert r.kv_cache_tokens >= s.max_model_len
    assert r.max_concurrent_sequences == r.kv_cache_tokens // s.max_model_len >= 1


@settings(max_examples=300, deadline=None)
@given(MODELS_ST, INSTANCES, st.integers(min_value=1, max_value=8), LEN, UTIL)
def test_every_refusal_names_a_key_and_a_fix(model, instance, tp, max_len, util):
    s = ServingShape(1, tp, max_len, util)
    try:
        check_fit(model, instance, s)
    except FitError as err:
        assert err.key in ("serving.tensorParallelSize", "serving.maxModelLen", "serving.model",
                           "serving.quantization")
        assert " — use " in err.message or " — remove " in err.message
        assert "\n" not in err.message
