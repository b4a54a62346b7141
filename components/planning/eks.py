"""Pure data: Amazon EKS Kubernetes versions, their support windows and control-plane prices.

No Pulumi import. The cost estimate (cost.fixed_costs) prices the control plane from
`control_plane_usd_per_hour`.

Sources (read 2026-12-01):
- Release calendar (EKS release, end of standard and of extended support, UTC): the EKS user guide's
  Kubernetes version lifecycle page and endoflife.date/amazon-eks (1.33 left standard support on
  2026-07-29, 1.34 on 2026-12-02); 1.35 from the same AWS table as quoted by aws-samples'
  eks-operation-review skill (verified 2026-04-24). Standard support lasts 14 months from the EKS
  release, extended support 12 more.
- Prices: "$0.10 per cluster per hour" in standard support and "a total of $0.60 per cluster per
  hour" in extended support (AWS Containers blog "Amazon EKS extended support for Kubernetes versions
  pricing", effective from the April 2024 billing cycle).
- Extended support is on by default: the API's default upgrade policy is EXTENDED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

STANDARD_USD_PER_HOUR = 0.10
EXTENDED_USD_PER_HOUR = 0.60
PRICES_SOURCE = "AWS Containers blog 'Amazon EKS extended support for Kubernetes versions pricing'; EKS pricing page"


@dataclass(frozen=True)
class EksVersion:
    version: str
    eks_release: date
    end_of_standard_support: date
    end_of_extended_support: date


_VERSIONS = [
    EksVersion("1.35", date(2026, 1, 27), date(2027, 3, 27), date(2028, 3, 27)),
    EksVersion("1.34", date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
    EksVersion("1.33", date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
    EksVersion("1.32", date(2025, 1, 23), date(2026, 3, 23), date(2027, 3, 23)),
    EksVersion("1.31", date(2024, 9, 26), date(2025, 11, 26), date(2026, 11, 26)),
    EksVersion("1.30", date(2024, 5, 23), date(2025, 7, 23), date(2026, 7, 23)),
    EksVersion("1.29", date(2024, 1, 23), date(2025, 3, 23), date(2026, 3, 23)),
]

VERSIONS: dict[str, EksVersion] = {v.version: v for v in _VERSIONS}


def support_status(version: str, on: date) -> str:
    """'standard', 'extended', 'ended' (past extended support: EKS upgrades it) or 'unknown'.
    Billing for extended support starts at the beginning of the end-of-standard-support day (UTC)."""
    v = VERSIONS.get(version)
    if v is None:
        return "unknown"
    if on < v.end_of_standard_support:
        return "standard"
    if on < v.end_of_extended_support:
        return "extended"
    return "ended"


def control_plane_usd_per_hour(version: str, on: date, support_type: str = "EXTENDED") -> float:
    """The control plane's hourly rate for `version` on `on`. With upgradePolicy STANDARD a cluster
    never bills the extended rate (EKS upgrades it at the end of standard support instead); with
    EXTENDED (the API default) it does once the version leaves standard support. Unknown versions
    are priced at the standard rate."""
    if support_type == "EXTENDED" and support_status(version, on) == "extended":
        return EXTENDED_USD_PER_HOUR
    return STANDARD_USD_PER_HOUR
