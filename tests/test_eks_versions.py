"""Issue 11: the EKS version table, control-plane rates, the default version's support window, and
the synth summary's extended-support warning."""

from __future__ import annotations

from datetime import date

import pytest

from servingstack.planning import eks
from conftest import STACK_NAMES, set_key, stack_config, synth, synth_config

TODAY = date(2026, 12, 1)


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return d.replace(year=d.year + y, month=m + 1)


@pytest.mark.parametrize("version", sorted(eks.VERSIONS))
def test_table_follows_the_documented_lifecycle(version):
    """EKS: standard support for 14 months after the EKS release, extended support 12 months more
    (kubernetes-versions.adoc) — an oracle for typos in the table."""
    v = eks.VERSIONS[version]
    assert v.end_of_standard_support == add_months(v.eks_release, 14)
    assert v.end_of_extended_support == add_months(v.end_of_standard_support, 12)


def test_support_windows_on_the_anchor_dates():
    assert eks.support_status("1.33", date(2026, 7, 28)) == "standard"
    assert eks.support_status("1.33", date(2026, 7, 29)) == "extended"  # billed from the start of that day
    assert eks.support_status("1.34", TODAY) == "standard"
    assert eks.support_status("1.34", date(2026, 12, 2)) == "extended"
    assert eks.support_status("1.29", TODAY) == "ended"
    assert eks.support_status("1.36", TODAY) == "unknown"


def test_default_version_is_in_standard_support_today_and_the_newest():
    assert eks.support_status(eks.DEFAULT_VERSION, TODAY) == "standard"
    assert eks.DEFAULT_VERSION == max(eks.VERSIONS, key=lambda v: tuple(map(int, v.split("."))))


def test_control_plane_rate_by_version_date_and_policy():
    assert eks.control_plane_usd_per_hour("1.35", TODAY) == 0.10
    assert eks.control_plane_usd_per_hour("1.33", TODAY) == 0.60  # EXTENDED: the API default
    assert eks.control_plane_usd_per_hour("1.33", TODAY, "STANDARD") == 0.10  # EKS upgrades instead
    assert eks.control_plane_usd_per_hour("1.34", date(2026, 12, 2)) == 0.60


@pytest.mark.parametrize("name", STACK_NAMES)
def test_shipped_stacks_run_a_version_in_standard_support(name):
    version = synth(name).outputs["kubernetesVersion"]
    assert eks.support_status(version, TODAY) == "standard", (name, version)


def test_upgrade_policy_is_explicit_and_configurable():
    cluster = synth("prod").one("aws:eks/cluster:Cluster").inputs
    assert cluster["upgradePolicy"] == {"supportType": "STANDARD"}
    cfg = set_key(stack_config("prod"), "servingstack:cluster.supportType", "EXTENDED")
    assert synth_config(cfg).one("aws:eks/cluster:Cluster").inputs["upgradePolicy"] == {"supportType": "EXTENDED"}


def test_summary_warns_when_the_version_is_in_extended_support():
    from servingstack.tools.output import summary

    result = synth("prod")
    assert "warning:" not in summary(result, today=TODAY)
    later = summary(result, today=date(2027, 4, 1))
    assert "warning: Kubernetes 1.35 left standard support on 2027-03-27" in later
    assert "with upgradePolicy STANDARD EKS upgrades the control plane" in later
    cfg = set_key(stack_config("prod"), "servingstack:cluster.supportType", "EXTENDED")
    extended = summary(synth_config(cfg, name="prod"), today=date(2027, 4, 1))
    assert "bills $0.60/h instead of $0.10/h (+$365/month)" in extended


def test_versions_without_support_dates_are_refused():
    from servingstack.config import ConfigError

    with pytest.raises(ConfigError, match=r"servingstack:cluster.version: '1.36' is not a Kubernetes minor version"):
        synth_config(set_key(stack_config("prod"), "servingstack:cluster.version", "1.36"))
