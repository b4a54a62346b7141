"""Node count and monthly cost (components/planning/resources.py serving_nodes, components/planning/cost.py monthly_cost, components/config/estimate.py,
components/tools/costreport.py) and the `servingstack cost` command.

Prices: us-east-1 on-demand, instances.vantage.sh data of 2026-01-21 (serving-facts.md §1.1 [S1]):
p4de.24xlarge $27.44705/h, p4d.24xlarge $21.957642/h, g6.xlarge $0.8048/h. Capacity Blocks:
p4d.24xlarge $14.75/h US East (Ohio) (serving-facts.md §1.1 [S6], illustrative). A month is 730 h.
NIM licence: NVIDIA AI Enterprise list price, $4,500 per GPU-year = $375 per GPU-month
(performance-facts.md §6 [S27]; components/planning/prices.py), not the source document's "~$4,500
(NVAIE)" a month for 2 GPUs. The other fixed lines are in tests/test_true_cost.py.
"""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servingstack.planning import catalog
from servingstack.planning.catalog import HOURS_PER_MONTH, INSTANCE_TYPES
from servingstack.planning.prices import NIM_LICENSE_USD_PER_GPU_YEAR
from servingstack.tools.cli import EXIT_CONFIG, EXIT_OK, main
from servingstack.config import ConfigError, parse_stack_config
from servingstack.tools.costreport import STACKS, cost_rows, cost_table
from servingstack.config.estimate import estimate, hourly_rate
from servingstack.planning.cost import monthly_cost
from servingstack.planning.resources import serving_nodes
from conftest import ROOT, set_key, stack_config, write_stack_file

P4DE_USD_PER_HOUR = 27.44705
P4D_USD_PER_HOUR = 21.957642
G6_XLARGE_USD_PER_HOUR = 0.8048
ROW_LABELS = ("GPU compute / month", "Software licence / month", "Other GPU pools / month", "Fixed costs / month",
              "Total / month", "Setup engineering", "First-year total", "$ per 1M output tokens")
NIM_PER_GPU_MONTH = 4500 / 12  # 375


def cfg_for(name: str, **overrides):
    """A checked-in stack's config (conftest.stack_config), with dotted-key overrides."""
    config = stack_config(name)
    for dotted, value in overrides.items():
        set_key(config, dotted, value)
    return parse_stack_config(config)


# ---- constants ---------------------------------------------------------------------------------

def test_constants_match_sources():
    assert HOURS_PER_MONTH == 730
    assert NIM_LICENSE_USD_PER_GPU_YEAR == 4500.0  # NVIDIA's list price per GPU-year [S27]
    assert INSTANCE_TYPES["p4de.24xlarge"].on_demand_usd_per_hour == P4DE_USD_PER_HOUR
    assert INSTANCE_TYPES["p4d.24xlarge"].on_demand_usd_per_hour == P4D_USD_PER_HOUR
    assert catalog.PRICES_AS_OF == "2026-01-21"


# ---- monthly_cost ------------------------------------------------------------------------------

def test_monthly_cost_prod_example():
    c = monthly_cost(2, P4DE_USD_PER_HOUR)
    assert c.gpu_compute_usd == 2 * P4DE_USD_PER_HOUR * 730
    assert c.gpu_compute_usd == pytest.approx(40_072.693)
    assert (c.license_usd, c.licensed_gpus, c.rate_source) == (0, 0, "on-demand")
    assert c.total_usd == c.gpu_compute_usd
    assert c.first_year_usd == c.total_usd * 12


@settings(max_examples=500)
@given(nodes=st.integers(min_value=0, max_value=200),
       rate=st.floats(min_value=0.01, max_value=500, allow_nan=False),
       gpus=st.integers(min_value=0, max_value=1600),
       licence=st.floats(min_value=0, max_value=10_000, allow_nan=False))
def test_monthly_cost_is_exactly_nodes_x_price_x_730_plus_licence(nodes, rate, gpus, licence):
    c = monthly_cost(nodes, rate, gpus, licence)
    assert c.gpu_compute_usd == nodes * rate * 730
    assert c.license_usd == gpus * licence
    assert c.total_usd == nodes * rate * 730 + gpus * licence
    assert c.first_year_usd == c.total_usd * 12
    assert (c.nodes, c.hourly_rate_usd, c.licensed_gpus) == (nodes, rate, gpus)


# ---- serving_nodes -----------------------------------------------------------------------------

def test_soft_spread_packs_replicas_onto_nodes():
    assert serving_nodes(2, 2, 8, hard_spread=False) == 1   # two TP-2 replicas share one 8-GPU node
    assert serving_nodes(4, 2, 8, hard_spread=False) == 1
    assert serving_nodes(5, 2, 8, hard_spread=False) == 2
    assert serving_nodes(3, 3, 8, hard_spread=False) == 2   # 2 replicas of 3 GPUs per node (6 of 8)
    assert serving_nodes(2, 8, 8, hard_spread=False) == 2
    assert serving_nodes(0, 2, 8, hard_spread=False) == 0


def test_hard_spread_puts_one_replica_per_node():
    assert serving_nodes(2, 2, 8, hard_spread=True) == 2
    assert serving_nodes(3, 1, 1, hard_spread=True) == 3


def test_desired_size_is_a_floor():
    assert serving_nodes(1, 2, 8, hard_spread=False, desired_size=3) == 3
    assert serving_nodes(0, 2, 8, hard_spread=False, desired_size=1) == 1
    assert serving_nodes(4, 2, 8, hard_spread=True, desired_size=2) == 4


def test_a_replica_cannot_span_nodes():
    with pytest.raises(ValueError):
        serving_nodes(1, 8, 4, hard_spread=False)


@settings(max_examples=500)
@given(replicas=st.integers(min_value=0, max_value=64), gpus_per_node=st.sampled_from([1, 4, 8]),
       data=st.data(), hard=st.booleans(), desired=st.integers(min_value=0, max_value=100))
def test_node_count_never_below_replicas_x_tp_over_gpus_per_node(replicas, gpus_per_node, data, hard, desired):
    tp = data.draw(st.integers(min_value=1, max_value=gpus_per_node))
    nodes = serving_nodes(replicas, tp, gpus_per_node, hard, desired)
    assert nodes >= math.ceil(replicas * tp / gpus_per_node)
    assert nodes * gpus_per_node >= replicas * tp
    assert nodes >= desired
    without_floor = serving_nodes(replicas, tp, gpus_per_node, hard)
    assert nodes == max(without_floor, desired)
    if hard:
        assert without_floor == replicas
    else:
        # Packing is tight: one node fewer could not hold every replica whole.
        per_node = gpus_per_node // tp
        assert without_floor <= replicas
        assert (without_floor - 1) * per_node < replicas or replicas == 0


# ---- estimate() for the checked-in stacks ------------------------------------------------------

def test_prod_estimate():
    """prod: 2 replicas x TP 2, hard spread, desiredSize 2 -> 2 p4de nodes, on-demand, no licence."""
    e = estimate(cfg_for("prod"))
    assert (e.gpu_nodes, e.gpus_per_replica) == (2, 2)
    assert e.cost.hourly_rate_usd == P4DE_USD_PER_HOUR
    assert e.cost.rate_source == "on-demand 2026-01-21"
    assert e.cost.gpu_compute_usd == 2 * 27.44705 * 730
    assert e.cost.license_usd == 0
    assert e.cost.total_usd == 2 * 27.44705 * 730
    assert e.fit.kv_cache_tokens == 25_520


def test_prod_as_nim_licenses_every_serving_gpu():
    e = estimate(cfg_for("prod"), "nim")
    assert e.cost.licensed_gpus == 4                     # 2 replicas x 2 GPUs
    assert e.cost.license_usd == pytest.approx(4 * 375)
    assert e.cost.total_usd == pytest.approx(2 * 27.44705 * 730 + 4 * 375)


def test_dev_nim_licence_is_two_gpus_at_the_list_price():
    """dev: the source document's NIM deployment, 1 replica x 2 GPUs -> 2 x $4,500 / 12 = $750/month
    (the source document's table says ~$4,500 a month: 6x the list price)."""
    e = estimate(cfg_for("dev"))
    assert e.gpu_nodes == 1
    assert e.cost.licensed_gpus == 2
    assert e.cost.license_usd == pytest.approx(2 * 4500 / 12) == 750
    assert e.cost.gpu_compute_usd == 1 * 27.44705 * 730
    assert e.cost.total_usd == pytest.approx(27.44705 * 730 + 750)
    assert estimate(cfg_for("dev"), "vllm").cost.license_usd == 0
    assert estimate(cfg_for("dev"), "triton").cost.license_usd == 0


def test_nim_licence_rate_is_configurable_per_year():
    cfg = cfg_for("dev", **{"servingstack:cost.nimLicenseUsdPerGpuYear": 12_000})
    assert estimate(cfg).cost.license_usd == pytest.approx(2 * 1000)


def test_the_earlier_monthly_licence_key_is_still_honoured():
    """Stacks written for the earlier key keep their (monthly) figure."""
    cfg = cfg_for("dev", **{"servingstack:cost.nimLicenseUsdPerGpuMonth": 1000})
    assert estimate(cfg).cost.license_usd == 2 * 1000


def test_both_licence_keys_are_refused_in_one_line():
    config = stack_config("dev")
    set_key(config, "servingstack:cost.nimLicenseUsdPerGpuMonth", 1000)
    set_key(config, "servingstack:cost.nimLicenseUsdPerGpuYear", 4500)
    with pytest.raises(ConfigError) as exc:
        parse_stack_config(config)
    assert exc.value.key == "cost.nimLicenseUsdPerGpuMonth"
    assert "keep only nimLicenseUsdPerGpuYear" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_spot_rate_used_when_configured():
    """dev-small: capacityType SPOT with servingstack:cost.spotUsdPerHour 0.35."""
    cfg = cfg_for("dev-small")
    rate, source = hourly_rate(cfg)
    assert (rate, source) == (0.35, "spot (configured rate)")
    e = estimate(cfg)
    assert e.gpu_nodes == 1
    assert e.cost.gpu_compute_usd == 1 * 0.35 * 730


def test_spot_without_a_rate_falls_back_to_on_demand_and_says_so():
    config = stack_config("dev-small")
    del config["servingstack:cost"]
    cfg = parse_stack_config(config)
    rate, source = hourly_rate(cfg)
    assert rate == G6_XLARGE_USD_PER_HOUR
    assert source == "on-demand 2026-01-21 (no SPOT rate configured)"
    assert estimate(cfg).cost.gpu_compute_usd == G6_XLARGE_USD_PER_HOUR * 730


def test_spot_rate_ignored_for_on_demand_pools():
    cfg = cfg_for("prod", **{"servingstack:cost.spotUsdPerHour": 9.0})
    assert hourly_rate(cfg) == (P4DE_USD_PER_HOUR, "on-demand 2026-01-21")


def test_capacity_block_rate_used_when_configured():
    """p4d.24xlarge Capacity Block $14.75/h (serving-facts.md §1.1 [S6])."""
    cfg = cfg_for("prod", **{
        "aws:region": "us-east-2",  # capacity blocks of p4d.24xlarge: us-east-2, us-west-2 (catalog)
        "servingstack:gpuNodePool.instanceType": "p4d.24xlarge",
        "servingstack:gpuNodePool.capacityType": "CAPACITY_BLOCK",
        "servingstack:gpuNodePool.capacityReservationId": "cr-0123456789abcdef0",
        "servingstack:gpuNodePool.availabilityZone": "us-east-2a",
        "servingstack:serving.tensorParallelSize": 8,
        "servingstack:cost.capacityBlockUsdPerHour": 14.75,
    })
    e = estimate(cfg)
    assert e.cost.rate_source == "capacity block (configured rate)"
    assert e.gpu_nodes == 2
    assert e.cost.gpu_compute_usd == 2 * 14.75 * 730


def test_desired_size_floor_in_estimate():
    cfg = cfg_for("prod", **{"servingstack:gpuNodePool.desiredSize": 3})
    e = estimate(cfg)
    assert e.gpu_nodes == 3
    assert e.cost.gpu_compute_usd == 3 * P4DE_USD_PER_HOUR * 730


def test_soft_spread_prod_packs_two_replicas_but_desired_keeps_two_nodes():
    cfg = cfg_for("prod", **{"servingstack:serving.spread": "soft"})
    assert serving_nodes(2, 2, 8, False) == 1
    assert estimate(cfg).gpu_nodes == 2  # desiredSize 2
    cfg = cfg_for("prod", **{"servingstack:serving.spread": "soft", "servingstack:gpuNodePool.desiredSize": 1,
                             "servingstack:gpuNodePool.minSize": 0})
    assert estimate(cfg).gpu_nodes == 1


def test_capacity_check_refuses_too_small_a_pool():
    """_check_capacity: hard spread of 2 replicas needs 2 nodes; with no autoscaler, desiredSize 1 is
    refused with a fix."""
    config = stack_config("prod")
    set_key(config, "servingstack:gpuNodePool.minSize", 0)
    set_key(config, "servingstack:gpuNodePool.desiredSize", 1)
    set_key(config, "servingstack:gpuNodePool.maxSize", 1)
    with pytest.raises(ConfigError) as exc:
        parse_stack_config(config)
    assert exc.value.key == "gpuNodePool.desiredSize"
    assert "need 2 p4de.24xlarge nodes" in str(exc.value)
    assert "raise desiredSize (and maxSize) to >= 2" in str(exc.value)


# ---- the comparison table ----------------------------------------------------------------------

def test_cost_rows_compare_the_three_stacks():
    rows = cost_rows(cfg_for("prod"))
    assert [r["stack"] for r in rows] == list(STACKS) == ["vllm", "triton", "nim"]
    compute = 2 * P4DE_USD_PER_HOUR * 730
    assert all(r["gpuComputeUsd"] == compute and r["nodes"] == 2 for r in rows)
    assert [r["licenseUsd"] for r in rows] == pytest.approx([0, 0, 4 * 375])
    fixed = rows[0]["fixedUsd"]
    assert fixed > 0 and all(r["fixedUsd"] == fixed for r in rows)  # the same environment for every stack
    assert [r["totalUsd"] for r in rows] == pytest.approx([compute + fixed, compute + fixed, compute + fixed + 1500])
    # First year: 12 months plus the source document's 40 / 60 / 4 setup hours at $100/h.
    assert [r["setupUsd"] for r in rows] == [4000, 6000, 400]
    assert [r["firstYearUsd"] for r in rows] == pytest.approx(
        [12 * (compute + fixed) + 4000, 12 * (compute + fixed) + 6000, 12 * (compute + fixed + 1500) + 400])


def test_cost_table_columns_line_up():
    lines = cost_table(cfg_for("prod"), "prod").splitlines()
    table = [line for line in lines if line.startswith(ROW_LABELS)]
    header = next(line for line in lines if line.split() == ["vllm", "triton", "nim"])
    assert len(table) == len(ROW_LABELS)
    assert {len(line) for line in table} == {len(header)}


def _rows(out: str) -> dict[str, list[str]]:
    return {label: line[len(label):].split() for line in out.splitlines() for label in ROW_LABELS
            if line.startswith(label)}


def test_cli_cost_prod(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["cost", "--stack", "prod"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("stack prod: meta-llama/Llama-3.1-70B-Instruct, 2 replicas x 2 GPUs "
                                          "on 2 x p4de.24xlarge (on-demand 2026-01-21, $27.4471/node-hour x 730 h)")
    header = next(line for line in out.splitlines() if "vllm" in line)
    assert header.split() == ["vllm", "triton", "nim"]
    rows = _rows(out)
    # 2 x 27.44705 x 730 = 40,072.69; NIM 4 GPUs x $375 = 1,500.
    assert rows["GPU compute / month"] == ["$40,073", "$40,073", "$40,073"]
    assert rows["Software licence / month"] == ["$0", "$0", "$1,500"]
    assert rows["Setup engineering"] == ["$4,000", "$6,000", "$400"]
    assert "$4,500 per GPU-year" in out and "6x the list price" in out
    # The true-cost lines: GPUs paid / used / idle and the idle cost (2 nodes x 8 GPUs, 2 x 2 used).
    idle = 12 * 27.44705 / 8 * 730
    assert f"GPUs: 16 paid, 4 used by the replicas, 12 idle (${idle:,.0f}/month of idle GPUs)" in out
    assert "Packed: the 2 replicas fit 1 node(s) at 4 per node: $20,036/month, saving $20,036" in out
    # The fixed lines with their rates (1.35 is in standard support until 2027-03-27; prod pins two zones,
    # so two NAT gateways).
    import re

    assert re.search(r"^  EKS control plane +\$73\.00  \$0\.10/h, Kubernetes 1\.35 ", out, re.M)
    assert re.search(r"^  NAT gateways +\$73\.00  2 x \$0\.050/h", out, re.M)
    assert re.search(r"^  System nodes +\$143\.36  2 x m6i\.large \$0\.0960/h", out, re.M)


def test_cli_cost_dev_shows_the_list_price_licence(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["cost", "--stack", "dev"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1 replica x 2 GPUs on 1 x p4de.24xlarge" in out
    assert _rows(out)["Software licence / month"] == ["$0", "$0", "$750"]
    assert "Current stack: nim." in out


def test_cli_cost_dev_small_uses_the_spot_rate(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["cost", "--stack", "dev-small"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "(spot (configured rate), $0.3500/node-hour x 730 h)" in out
    assert _rows(out)["GPU compute / month"] == ["$255", "$255", "$255"]  # 1 x 0.35 x 730 = 255.5 (255.4999.. in floats)
    assert "GPUs: 1 paid, 1 used by the replicas, 0 idle" in out


def test_cli_cost_refused_config_is_one_line_exit_2(tmp_path, capsys):
    config = stack_config("prod")
    set_key(config, "servingstack:serving.model", "meta-llama/Llama-3.1-405B-Instruct")
    set_key(config, "servingstack:serving.tensorParallelSize", 8)
    path = write_stack_file(tmp_path, config)
    assert main(["cost", "--config", str(path)]) == EXIT_CONFIG
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith("error: servingstack:serving.model: 'meta-llama/Llama-3.1-405B-Instruct' — ")
    assert "meta-llama/Llama-3.1-405B-Instruct-FP8" in err


def test_extra_pools_priced_beside_the_serving_pool():
    from conftest import synth_config

    cfg = stack_config("prod")
    cfg["servingstack:extraGpuNodePools"] = [{"name": "l4", "instanceType": "g6.48xlarge", "minSize": 0,
                                              "maxSize": 2, "desiredSize": 2}]
    outputs = synth_config(cfg).outputs
    assert outputs["monthlyCostUsd"] == round(2 * 27.44705 * 730, 2)  # the serving pool alone, as before
    assert outputs["monthlyCostBreakdown"]["extraGpuPoolsUsd"] == round(2 * 13.3504 * 730, 2)


@pytest.mark.parametrize("support_type, usd", [("STANDARD", 73.0), ("EXTENDED", 438.0)])
def test_control_plane_priced_by_the_configured_upgrade_policy(support_type, usd):
    """cluster.supportType reaches the fixed lines: 1.33 after 2026-07-29 bills the extended rate only
    with EXTENDED (with STANDARD EKS upgrades the control plane instead). Pinned zones set the NAT count."""
    cfg = cfg_for("prod", **{"servingstack:cluster.version": "1.33",
                             "servingstack:cluster.supportType": support_type})
    fixed = {f.name: f for f in estimate(cfg, on=date(2026, 12, 1)).fixed}
    assert fixed["EKS control plane"].usd_per_month == pytest.approx(usd)
    assert fixed["NAT gateways"].detail.startswith("2 x ")
