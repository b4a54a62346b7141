"""Pure: the EC2 vCPU quotas GPU node pools draw on, and how many vCPUs each pool can need.

EC2 limits running instances per instance family in vCPUs, per Region, through Service Quotas
(service code "ec2"). The codes below are those of the console's "Running On-Demand P instances",
"Running On-Demand G and VT instances", "All P Spot Instance Requests" and "All G and VT Spot
Instance Requests" (as used by public quota checkers, e.g. the aws-quota-checker project, and
../shared/reference/real-deploy-findings.md item 5). Default values vary per account (often 0 for
GPU families), so they are looked up, never assumed.

What a pool needs: every node at `maxSize`, plus the nodes an update adds on top. Managed node
groups with the DEFAULT update strategy surge by the larger of twice the number of Availability
Zones and `maxUnavailable`; MINIMAL "terminat[es] the old nodes before creating the new ones, so
that total capacity never increases beyond your configured quantity" (awsdocs/amazon-eks-user-guide
`latest/ug/nodes/managed-node-update-behavior.adoc`). Capacity-block pools run on capacity bought
per block and are not counted here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

SERVICE_CODE = "ec2"

#: (family, purchase option) -> (quota code, quota name)
QUOTAS: dict[tuple[str, str], tuple[str, str]] = {
    ("P", "ON_DEMAND"): ("L-417A185B", "Running On-Demand P instances"),
    ("G", "ON_DEMAND"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("P", "SPOT"): ("L-7212CCBC", "All P Spot Instance Requests"),
    ("G", "SPOT"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
}


def family(instance_type: str) -> str:
    """The quota family of a GPU instance type: 'P' (p4d, p4de, p5) or 'G' (g5, g6, g6e; VT shares it)."""
    m = re.match(r"^([a-z]+)\d", instance_type)
    letters = m.group(1) if m else ""
    if letters.startswith("p"):
        return "P"
    if letters.startswith("g") or letters.startswith("vt"):
        return "G"
    raise ValueError(f"{instance_type!r} is not a P, G or VT instance type")


def surge_nodes(update_strategy: str, zones: int, max_unavailable: int) -> int:
    """Nodes a managed node-group update launches on top of the current ones."""
    if update_strategy == "MINIMAL":
        return 0
    return max(2 * zones, max_unavailable)


@dataclass(frozen=True)
class PoolDemand:
    """What one GPU pool can run at once, for the quota preflight."""

    pool: str
    instance_type: str
    vcpus_per_node: int
    capacity_type: str
    max_size: int
    surge: int = 0


@dataclass(frozen=True)
class QuotaNeed:
    code: str
    name: str
    vcpus: int
    pools: tuple[str, ...]
    quota: Optional[float] = None
    """The account's value, when known (a real lookup or a recorded one)."""

    @property
    def short(self) -> bool:
        return self.quota is not None and self.quota < self.vcpus


def quota_needs(pools: Iterable[PoolDemand]) -> list[QuotaNeed]:
    """vCPUs per Service Quotas code, summed over the pools that draw on it (sorted by code)."""
    totals: dict[str, list] = {}
    for p in pools:
        if p.capacity_type not in ("ON_DEMAND", "SPOT"):
            continue
        code, name = QUOTAS[(family(p.instance_type), p.capacity_type)]
        entry = totals.setdefault(code, [name, 0, []])
        entry[1] += p.vcpus_per_node * (p.max_size + p.surge)
        entry[2].append(p.pool)
    return [QuotaNeed(code, name, vcpus, tuple(pools_)) for code, (name, vcpus, pools_) in sorted(totals.items())]
