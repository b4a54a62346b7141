"""Pure data: Amazon EKS Kubernetes versions, their support windows and control-plane prices, the
managed add-ons this project installs, and where EKS publishes node AMI release versions.

No Pulumi import. The cost estimate (cost.fixed_costs) prices the control plane from
`control_plane_usd_per_hour`.

Sources (read 2026-12-01):
- Release calendar (EKS release, end of standard and of extended support, UTC):
  awsdocs/amazon-eks-user-guide `latest/ug/versioning/kubernetes-versions.adoc` (1.29-1.34), and
  endoflife.date `products/amazon-eks.md`; 1.35 (EKS release 2026-01-27, end of standard support
  2027-03-27, end of extended support 2028-03-27) from the same AWS table as quoted by
  aws-samples/sample-apex-skills `eks-operation-review/references/cluster-lifecycle` (verified
  2026-04-24). 1.36 is available on EKS (../shared/reference/anchors-2026-12.md) but no public
  source here gives its support dates, so it is not in the table and not accepted by the config.
- Prices: "$0.10 per cluster per hour" in standard support and "a total of $0.60 per cluster per
  hour" in extended support (AWS Containers blog "Amazon EKS extended support for Kubernetes
  versions pricing", unchanged on aws.amazon.com/eks/pricing as of 2026-03).
- API default upgrade policy EXTENDED: botocore `eks` service model, `UpgradePolicyRequest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Optional

from .catalog import HOURS_PER_MONTH

VERSIONS_AS_OF = "2026-12-01"
VERSIONS_SOURCE = ("EKS user guide kubernetes-versions.adoc release calendar; endoflife.date amazon-eks; "
                   "1.35 dates as quoted by aws-samples/sample-apex-skills (verified 2026-04-24)")

STANDARD_USD_PER_HOUR = 0.10
EXTENDED_USD_PER_HOUR = 0.60
PRICES_SOURCE = "AWS Containers blog 'Amazon EKS extended support for Kubernetes versions pricing'; EKS pricing page"

SUPPORT_TYPES = ("STANDARD", "EXTENDED")


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

#: The version new clusters get: the newest in the table (in standard support until 2027-03-27).
DEFAULT_VERSION = "1.35"


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


def extended_support_warning(version: str, on: date, support_type: str) -> Optional[str]:
    """One line for the synth summary when `version` is past standard support on `on`, else None."""
    status = support_status(version, on)
    if status not in ("extended", "ended"):
        return None
    v = VERSIONS[version]
    extra = (EXTENDED_USD_PER_HOUR - STANDARD_USD_PER_HOUR) * HOURS_PER_MONTH
    if status == "ended":
        return (f"warning: Kubernetes {version} left extended support on {v.end_of_extended_support}: EKS "
                f"upgrades the control plane itself — set cluster.version to {DEFAULT_VERSION}")
    if support_type == "EXTENDED":
        return (f"warning: Kubernetes {version} left standard support on {v.end_of_standard_support}: the "
                f"control plane bills ${EXTENDED_USD_PER_HOUR:.2f}/h instead of ${STANDARD_USD_PER_HOUR:.2f}/h "
                f"(+${extra:,.0f}/month) until {v.end_of_extended_support} — upgrade to {DEFAULT_VERSION}")
    return (f"warning: Kubernetes {version} left standard support on {v.end_of_standard_support}: with "
            f"upgradePolicy STANDARD EKS upgrades the control plane to the next version on its own (staying "
            f"would cost +${extra:,.0f}/month with EXTENDED) — upgrade to {DEFAULT_VERSION}")


# ---- managed add-ons and node AMI releases -------------------------------------------------

#: The EKS managed add-ons every new cluster gets, in install order (cluster.py).
ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns")


def release_version_parameter(ami_type: str, version: str) -> str:
    """The public SSM parameter holding the recommended AMI release for a node group of `ami_type`
    on Kubernetes `version` (terraform-aws-modules/terraform-aws-eks
    `modules/eks-managed-node-group/main.tf`, `ssm_ami_type_to_ssm_param`)."""
    paths = {
        "AL2023_x86_64_STANDARD": f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/standard/"
                                  "recommended/release_version",
        "AL2023_x86_64_NVIDIA": f"/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/nvidia/"
                                "recommended/release_version",
        "BOTTLEROCKET_x86_64_NVIDIA": f"/aws/service/bottlerocket/aws-k8s-{version}-nvidia/x86_64/latest/"
                                      "image_version",
    }
    try:
        return paths[ami_type]
    except KeyError:
        raise ValueError(f"no release-version parameter known for AMI type {ami_type!r}") from None
