"""Pure data: EKS Kubernetes versions, their support windows and what the control plane costs.

Nothing here imports Pulumi. A minor version is in standard support for 14 months after its EKS
release, then in extended support for 12 more; extended support is on by default (the API's default
upgrade policy is EXTENDED) and bills the higher rate (AWS EKS user guide, "Understand the Kubernetes
version lifecycle on EKS").

Rates: $0.10 per cluster-hour in standard support, $0.60 in extended support, since the April 2024
billing cycle (AWS Containers blog, "Amazon EKS extended support for Kubernetes versions pricing").
Dates: the EKS version calendar as reproduced by aws-samples' eks-operation-review skill (last verified
2026-04-24) and endoflife.date/amazon-eks (1.33 left standard support on 2026-07-29, 1.34 on 2026-12-02).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

CONTROL_PLANE_USD_PER_HOUR_STANDARD = 0.10
CONTROL_PLANE_USD_PER_HOUR_EXTENDED = 0.60
RATES_SOURCE = "AWS EKS pricing: $0.10/cluster-hour standard, $0.60 extended support (since 2024-04-01)"


@dataclass(frozen=True)
class EksVersion:
    version: str
    end_of_standard_support: _dt.date
    end_of_extended_support: _dt.date


_VERSIONS = [
    EksVersion("1.29", _dt.date(2025, 3, 23), _dt.date(2026, 3, 23)),
    EksVersion("1.30", _dt.date(2025, 7, 23), _dt.date(2026, 7, 23)),
    EksVersion("1.31", _dt.date(2025, 11, 26), _dt.date(2026, 11, 26)),
    EksVersion("1.32", _dt.date(2026, 3, 23), _dt.date(2027, 3, 23)),
    EksVersion("1.33", _dt.date(2026, 7, 29), _dt.date(2027, 7, 29)),
    EksVersion("1.34", _dt.date(2026, 12, 2), _dt.date(2027, 12, 2)),
    EksVersion("1.35", _dt.date(2027, 3, 27), _dt.date(2028, 3, 27)),
]
EKS_VERSIONS: dict[str, EksVersion] = {v.version: v for v in _VERSIONS}


def support_status(version: str, on: _dt.date) -> str:
    """"standard", "extended" or "ended" (past extended support: EKS upgrades the cluster itself)."""
    v = EKS_VERSIONS[version]
    if on <= v.end_of_standard_support:
        return "standard"
    return "extended" if on <= v.end_of_extended_support else "ended"


def control_plane_usd_per_hour(version: str, on: _dt.date) -> float:
    """The control plane's rate for a cluster on `version` on the date `on`."""
    if support_status(version, on) == "standard":
        return CONTROL_PLANE_USD_PER_HOUR_STANDARD
    return CONTROL_PLANE_USD_PER_HOUR_EXTENDED
