"""True costs (components/planning/cost.py, prices.py, eks.py; config/estimate.py) and the performance
output, workload config and summary lines of synthesized stacks.

Oracles: AWS's published rates (EKS $0.10 / $0.60 per cluster-hour, standard / extended support; a
version is in standard support 14 months and extended support 12 more; NAT $0.045/h, public IPv4
$0.005/h, gp3 $0.08 and S3 Standard $0.023 per GB-month, m6i.large $0.096/h), NVIDIA's licence list
price ($4,500 per GPU-year), the p4de price ($27.44705/h) and the source document's 40 / 60 / 4 hours.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import set_key, stack_config, synth, synth_config
from servingstack.config import ConfigError, parse_stack_config
from servingstack.config.estimate import estimate
from servingstack.config.fields import K8S_VERSION
from servingstack.planning import eks, prices
from servingstack.planning.cost import fixed_costs, gpu_use, packed_alternative
from servingstack.tools.output import summary

P4DE = 27.44705
DAY = dt.date(2026, 12, 1)


def cfg_for(name: str, **overrides):
    config = stack_config(name)
    for dotted, value in overrides.items():
        set_key(config, dotted, value)
    return parse_stack_config(config)


# ---- GPUs paid, used, idle; packing -----------------------------------------------------------

def test_prod_pays_for_16_gpus_and_uses_4():
    use = gpu_use(nodes=2, gpus_per_node=8, replicas=2, gpus_per_replica=2, node_usd_per_hour=P4DE)
    assert (use.gpus_paid, use.gpus_used, use.idle_gpus) == (16, 4, 12)
    assert use.idle_usd_per_month == pytest.approx(12 * P4DE / 8 * 730)  # ~$30k a month idle
    assert 30_000 < use.idle_usd_per_month < 30_100


def test_packed_alternative_for_prod():
    """2x A100 80GB is 6 idle GPUs per p4de, or 4 packed replicas: prod's 2 replicas fit one node."""
    packed = packed_alternative(replicas=2, gpus_per_replica=2, gpus_per_node=8, nodes=2, node_usd_per_hour=P4DE)
    assert (packed.nodes, packed.replicas_per_node, packed.fill_replicas) == (1, 4, 8)
    assert packed.usd_per_month == pytest.approx(P4DE * 730) == pytest.approx(20_036.35, abs=0.01)
    assert packed.saves_usd_per_month == pytest.approx(P4DE * 730)
    assert packed_alternative(1, 8, 8, 1, P4DE) is None  # nothing to pack


# ---- EKS control plane by version and date ------------------------------------------------------

def test_control_plane_rate_by_version_and_date():
    assert eks.STANDARD_USD_PER_HOUR == 0.10 and eks.EXTENDED_USD_PER_HOUR == 0.60
    assert eks.control_plane_usd_per_hour("1.33", dt.date(2026, 7, 28)) == 0.10
    assert eks.control_plane_usd_per_hour("1.33", dt.date(2026, 7, 29)) == 0.60  # billed from the end day
    assert eks.control_plane_usd_per_hour("1.33", DAY, "STANDARD") == 0.10      # EKS upgrades it instead
    assert eks.support_status("1.33", DAY) == "extended"
    assert eks.support_status("1.35", DAY) == "standard"
    assert eks.support_status("1.29", DAY) == "ended"


def test_every_version_the_config_accepts_is_in_the_table_with_14_plus_12_months_of_support():
    import re

    accepted = [f"1.{m}" for m in range(20, 40) if re.match(K8S_VERSION, f"1.{m}")]
    assert accepted and set(accepted) <= set(eks.VERSIONS)
    for v in eks.VERSIONS.values():
        months = (v.end_of_standard_support.year - v.eks_release.year) * 12 + (
            v.end_of_standard_support.month - v.eks_release.month)
        assert months == 14, v.version
        end = v.end_of_standard_support
        assert v.end_of_extended_support == end.replace(year=end.year + 1), v.version


# ---- the fixed lines ---------------------------------------------------------------------------

def test_fixed_costs_of_prod_on_a_date():
    lines = {f.name: f for f in fixed_costs(create_cluster=True, version="1.33", on=DAY, nat_gateways=3,
                                           system_instance_type="m6i.large", system_nodes=2, gpu_nodes=2,
                                           gpu_disk_gib=200, model_store_gb=0)}
    assert lines["EKS control plane"].usd_per_month == pytest.approx(0.60 * 730)       # extended support
    assert "1.33 extended support since 2026-07-29" in lines["EKS control plane"].detail
    assert lines["NAT gateways"].usd_per_month == pytest.approx(3 * (0.045 + 0.005) * 730)
    assert lines["System nodes"].usd_per_month == pytest.approx(2 * 0.096 * 730 + 2 * 20 * 0.08)
    assert lines["GPU node volumes"].usd_per_month == pytest.approx(2 * 200 * 0.08)
    assert lines["Model storage"].usd_per_month == 0
    assert all(f.detail for f in lines.values())


def test_weights_in_the_model_store_are_priced():
    """weightsSource s3: the checkpoint's bytes at S3 Standard (70.55e9 params x 2 B = 141.1 GB)."""
    e = estimate(cfg_for("prod", **{"servingstack:serving.weightsSource": "s3"}), on=DAY)
    storage = next(f for f in e.fixed if f.name == "Model storage")
    assert storage.usd_per_month == pytest.approx(141.1 * 0.023, rel=1e-3)


def test_an_adopted_cluster_prices_only_what_the_stack_adds():
    e = estimate(cfg_for("dev-small"), on=DAY)
    assert {f.name for f in e.fixed} == {"GPU node volumes", "Model storage"}


def test_environment_and_first_year_totals():
    cfg = cfg_for("prod")
    e = estimate(cfg, on=DAY)
    assert e.environment_usd == pytest.approx(e.cost.total_usd + e.extra_pools_usd + sum(f.usd_per_month for f in e.fixed))
    assert e.setup_hours == 40 == prices.SOURCE_DOCUMENT_SETUP_HOURS["vllm"]
    assert e.first_year_usd == pytest.approx(12 * e.environment_usd + 40 * 100)
    nim = estimate(cfg, "nim", on=DAY)
    assert nim.setup_hours == 4 and nim.cost.license_usd == pytest.approx(4 * 4500 / 12)
    custom = cfg_for("prod", **{"servingstack:cost.engineeringUsdPerHour": 150,
                                "servingstack:cost.setupHours": {"vllm": 10}})
    e2 = estimate(custom, on=DAY)
    assert e2.first_year_usd == pytest.approx(12 * e2.environment_usd + 10 * 150)


# ---- workload config ---------------------------------------------------------------------------

def test_workload_defaults_are_the_source_documents_32_concurrent_requests():
    w = cfg_for("prod").workload
    assert (w.input_tokens, w.output_tokens, w.concurrency, w.ttft_p99_ms, w.itl_p50_ms) == (1024, 256, 32, None, None)
    assert w.per_replica(2).concurrency == 16 and w.per_replica(3).concurrency == 11 and w.per_replica(0).concurrency == 32


@pytest.mark.parametrize("key,value,needle", [
    ("concurrency", 0, "servingstack:workload.concurrency: 0 — Input should be greater than or equal to 1"),
    ("inputTokens", "many", "servingstack:workload.inputTokens: 'many'"),
    ("ttftP99", 500, "servingstack:workload.ttftP99: unknown key"),
])
def test_bad_workload_is_one_line(key, value, needle):
    config = stack_config("prod")
    config["servingstack:workload"] = {key: value}
    with pytest.raises(ConfigError) as exc:
        parse_stack_config(config)
    assert str(exc.value).startswith(needle) and "\n" not in str(exc.value)


# ---- the performance estimate of a stack and its warnings --------------------------------------

def test_prod_splits_the_workload_over_its_replicas():
    e = estimate(cfg_for("prod"), on=DAY)
    p = e.performance
    assert p.replica.workload.concurrency == 16 and p.replica.queued == 0  # 16 per replica fit 19
    assert p.output_tokens_per_second == pytest.approx(2 * p.replica.output_tokens_per_second)
    serving_per_hour = e.cost.total_usd / 730
    assert p.usd_per_million_output_tokens == pytest.approx(serving_per_hour / (p.output_tokens_per_second * 3600) * 1e6)
    assert not e.warnings


def test_dev_warns_that_the_kv_cache_does_not_hold_the_workload():
    """dev: one NIM replica, 32 x 1,280 tokens need 40,960 of the 25,520 tokens the bf16 cache holds."""
    e = estimate(cfg_for("dev"), on=DAY)
    [warning] = e.warnings
    assert warning.startswith("workload: 32 concurrent 1024+256-token requests per replica exceed the KV cache "
                              "(25520 tokens hold 19): 13 wait for a slot")
    assert "serving.tensorParallelSize 4" in warning and "serving.replicas 2" in warning
    assert "kvCacheDtype" not in warning  # a vLLM flag; dev runs NIM
    vllm = estimate(cfg_for("dev", **{"servingstack:serving.stack": "vllm",
                                      "servingstack:hfToken": "x"}), on=DAY)
    assert "serving.vllm.kvCacheDtype fp8 (holds 39)" in vllm.warnings[0]
    fixed = estimate(cfg_for("dev", **{"servingstack:serving.stack": "vllm",
                                       "servingstack:serving.vllm.kvCacheDtype": "fp8"}), on=DAY)
    assert not fixed.warnings


def test_missed_targets_warn_with_the_floor():
    e = estimate(cfg_for("prod", **{"servingstack:workload.itlP50Ms": 28, "servingstack:workload.ttftP99Ms": 150}),
                 on=DAY)
    itl = next(w for w in e.warnings if w.startswith("workload.itlP50Ms"))
    assert "target 28 ms missed" in itl and "below the physical floor" in itl
    assert any(w.startswith("workload.ttftP99Ms: target 150 ms missed") for w in e.warnings)
    assert not estimate(cfg_for("prod", **{"servingstack:workload.itlP50Ms": 500}), on=DAY).warnings


def test_maxmodellen_shorter_than_a_request_warns():
    e = estimate(cfg_for("prod", **{"servingstack:workload.inputTokens": 8000}), on=DAY)
    assert any("exceed serving.maxModelLen 8192: the engine rejects them" in w for w in e.warnings)


def test_scaled_to_zero_has_no_estimate():
    config = stack_config("dev")
    set_key(config, "servingstack:serving.replicas", 0)
    set_key(config, "servingstack:gpuNodePool.desiredSize", 0)
    e = estimate(parse_stack_config(config), on=DAY)
    assert e.performance is None and e.gpu_use.gpus_used == 0


# ---- outputs and the synth summary -------------------------------------------------------------

def test_outputs_carry_performance_and_gpu_use(stack_result):
    o = stack_result.outputs
    gpu = o["gpuSummary"]
    assert gpu["gpusPaid"] == gpu["gpuNodes"] * {"p4de.24xlarge": 8, "g6.xlarge": 1}[gpu["instanceType"]]
    assert gpu["gpusUsed"] == gpu["replicas"] * gpu["gpusPerReplica"]
    assert gpu["idleGpus"] == gpu["gpusPaid"] - gpu["gpusUsed"]
    p = o["performance"]
    for key in ("workload", "itlFloorMs", "itlExpectedMs", "ttftExpectedMs", "outputTokensPerSecond",
                "totalTokensPerSecond", "kvConcurrency", "usdPerMillionOutputTokens"):
        assert key in p
    for key in ("outputTokensPerSecond", "totalTokensPerSecond", "usdPerMillionOutputTokens"):
        assert key in p["environment"]
    assert p["itlExpectedMs"] >= p["itlFloorMs"]
    assert p["kvCacheTokens"] == o["kvCacheTokens"]
    b = o["monthlyCostBreakdown"]
    assert b["environmentUsd"] == pytest.approx(o["monthlyCostUsd"] + b["extraGpuPoolsUsd"]
                                                + sum(f["usd"] for f in b["fixed"]), abs=0.05)
    json.dumps(o)  # JSON-serializable as written to outputs.json


def test_every_summary_has_a_performance_line(stack_result):
    lines = summary(stack_result).splitlines()
    perf = [line for line in lines if line.startswith("perf:")]
    assert len(perf) == 1 and "ITL ~" in perf[0] and "per 1M output tokens" in perf[0]


def test_prod_summary_has_the_idle_gpu_line():
    lines = summary(synth("prod")).splitlines()
    idle = next(line for line in lines if line.startswith("idle:"))
    assert idle.startswith("idle:      12 of 16 paid GPUs idle, $30,054.52/month")
    assert "packed (4 replicas per node) 1 node(s) would save $20,036.35/month" in idle
    assert not [line for line in summary(synth("dev-small")).splitlines() if line.startswith("idle:")]


def test_dev_summary_shows_the_kv_warning():
    lines = summary(synth("dev")).splitlines()
    assert any(line.startswith("warning:   workload: 32 concurrent") for line in lines)


def test_nim_licence_output_uses_the_list_price():
    o = synth_config(stack_config("dev")).outputs
    assert o["monthlyCostBreakdown"]["softwareLicenseUsd"] == 750.0  # 2 GPUs x $4,500 / 12
