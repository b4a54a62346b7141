"""Pure: which Availability Zones a new cluster's VPC uses, and which of them each node group gets.

Rules (../shared/reference/real-deploy-findings.md items 3, 4, 10):
- Only zones of type availability-zone that need no opt-in: Local and Wavelength zones cannot hold
  the control plane or managed node groups (EKS user guide `networking/network-reqs.adoc`), and an
  opted-in Local Zone sorts before the region's zones (us-east-1-atl-2a < us-east-1a).
- Never a zone id EKS refuses for cluster subnets (same page): us-east-1 use1-az3, us-west-1
  usw1-az2, ca-central-1 cac1-az3.
- The cluster's zones offer every GPU pool's instance type (and the system pool's): EKS rejects a
  node group with a subnet in a zone that does not offer its type.
- Stable: pinned zone ids (`cluster.availabilityZoneIds`) are used as given. Unpinned, zones are
  taken in name order among those that qualify, so a zone AWS adds later, a Local Zone, or a
  listing in another order never shifts the chosen ones; a change of offerings can, hence the
  notice that says which ids to pin.

No Pulumi import; errors are ZoneError(key, message), turned into one-line ConfigErrors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..planning.errors import KeyedError

#: Zone ids EKS refuses for cluster subnets (EKS user guide, "Subnet requirements for clusters").
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")


class ZoneError(KeyedError):
    """Zones AWS does not offer for a pool, or more zones than offer its type; `key` is the key to change."""


@dataclass(frozen=True)
class Zone:
    name: str
    zone_id: str

    def __str__(self) -> str:
        return f"{self.name} ({self.zone_id})"


@dataclass(frozen=True)
class PoolNeed:
    """A node group's placement needs: its config key, instance type and pinned zone (if any)."""

    key: str
    instance_type: str
    zone: Optional[str] = None


@dataclass
class ZonePlan:
    cluster_zones: list[Zone]
    """Zones of the control plane and system pool, in name order."""
    extra_zones: list[Zone] = field(default_factory=list)
    """Zones only pinned pools use (their subnets are added, never put first)."""
    pool_zones: dict[str, list[str]] = field(default_factory=dict)
    """Node-group key -> zone names its subnets are in."""
    notices: list[str] = field(default_factory=list)

    @property
    def all_zones(self) -> list[Zone]:
        return self.cluster_zones + self.extra_zones

    @property
    def zone_ids(self) -> list[str]:
        return [z.zone_id for z in self.cluster_zones]


def _names(zones: list[Zone]) -> str:
    return ", ".join(str(z) for z in zones) or "none"


def plan_zones(eligible: list[Zone], azs: list[Zone], zones: list[Zone], offerings: dict[str, set[str]],
               pools: list[PoolNeed], system_type: Optional[str], count: int, count_explicit: bool,
               pinned_ids: Optional[list[str]], region: str) -> ZonePlan:
    """The zones of a new cluster's VPC and each node group's share of them (see the module doc).
    `eligible`: the zones a new cluster may take (availability-zone type, no opt-in, state
    available, not refused by EKS); `azs`: the same in any state (a pinned zone AWS later marks
    constrained or impaired stays); `zones`: every zone the account sees; `offerings` maps instance
    types to the zone names offering them; `system_type` None means no system pool. Raises
    ZoneError naming the key to change."""
    by_id = {z.zone_id: z for z in zones}
    ok = sorted(eligible, key=lambda z: z.name)
    keep = sorted(set(azs) | set(eligible), key=lambda z: z.name)
    floating = [p for p in pools if p.zone is None]
    types = sorted({p.instance_type for p in floating} | ({system_type} if system_type else set()))

    def offers_all(z: Zone) -> bool:
        return all(z.name in offerings.get(t, set()) for t in types)

    notices: list[str] = []
    if pinned_ids:
        cluster_zones = []
        for zid in pinned_ids:
            z = by_id.get(zid)
            if z is None:
                # Suggest only the zones that can hold the cluster and offer every pool's type.
                usable = sorted(z.zone_id for z in keep if offers_all(z)) or sorted(z.zone_id for z in keep)
                offered = ", ".join(types) or "the pools' types"
                raise ZoneError("cluster.availabilityZoneIds", f"'{zid}' is not a zone of {region} — use zones "
                                f"that can hold an EKS cluster and offer {offered}: {', '.join(usable)}")
            if z not in keep:
                why = ("EKS refuses cluster subnets there" if zid in EKS_UNSUPPORTED_ZONE_IDS
                       else "it is a Local or Wavelength zone, or needs opt-in")
                raise ZoneError("cluster.availabilityZoneIds", f"'{zid}' ({z.name}) cannot hold an EKS cluster: {why}")
            if z not in ok:
                notices.append(f"notice: pinned zone {z} is not in state available: its subnets stay, new nodes "
                               "there may fail to launch")
            cluster_zones.append(z)
        cluster_zones.sort(key=lambda z: z.name)
    else:
        candidates = [z for z in ok if offers_all(z)]
        if len(candidates) < count:
            owners = {t: [p.key for p in floating if p.instance_type == t] or ["cluster.systemNodePool"] for t in types}
            scarce = [t for t in types if len([z for z in ok if z.name in offerings.get(t, set())]) < count] or types
            short = "; ".join(f"{t} ({', '.join(owners[t])}) in "
                              f"{_names([z for z in ok if z.name in offerings.get(t, set())])}" for t in scarce)
            if count_explicit or len(candidates) < 2:
                if len(candidates) >= 2:
                    key, fix = "cluster.availabilityZoneCount", (f"set availabilityZoneCount: {len(candidates)} or pin "
                                                                 "cluster.availabilityZoneIds")
                else:
                    key, fix = (_first_key(floating, types, offerings, ok),
                                "choose an instance type or region with at least 2 such zones (EKS needs 2)")
                raise ZoneError(key, f"{count} zones wanted, but only {len(candidates)} zone(s) of {region} that EKS "
                                f"can use offer {', '.join(types)} — offered: {short} — {fix}")
            notices.append(f"notice: servingstack:cluster.availabilityZoneCount is left at {count}, but only "
                           f"{len(candidates)} zones of {region} offer {', '.join(types)}: using "
                           f"{_names(candidates)}")
        cluster_zones = candidates[:count]
        notices.append(f"notice: cluster zones chosen in {region}: {_names(cluster_zones)} — pin them with "
                       f"servingstack:cluster.availabilityZoneIds: [{', '.join(z.zone_id for z in cluster_zones)}] so "
                       "a later change of AWS offerings can never move them")
    plan = ZonePlan(cluster_zones=cluster_zones, notices=notices)
    names = {z.name for z in cluster_zones}
    for p in pools:
        if p.zone is not None:
            z = next((z for z in zones if z.name == p.zone), None)
            if z is None or z not in keep:
                raise ZoneError(f"{p.key}.availabilityZone", f"'{p.zone}' is not a zone of {region} EKS can use "
                                f"(those are {', '.join(z.name for z in keep)})")
            if p.zone not in offerings.get(p.instance_type, set()):
                raise ZoneError(f"{p.key}.availabilityZone", f"'{p.zone}' does not offer {p.instance_type} (offered "
                                f"in {_names([z for z in ok if z.name in offerings.get(p.instance_type, set())])})")
            if p.zone not in names and z not in plan.extra_zones:
                plan.extra_zones.append(z)
            plan.pool_zones[p.key] = [p.zone]
            continue
        mine = [z.name for z in cluster_zones if z.name in offerings.get(p.instance_type, set())]
        if not mine:
            raise ZoneError("cluster.availabilityZoneIds", f"none of the pinned zones ({_names(cluster_zones)}) offers "
                            f"{p.instance_type} ({p.key}); it is offered in "
                            f"{_names([z for z in ok if z.name in offerings.get(p.instance_type, set())])}")
        if len(mine) < len(cluster_zones):
            plan.notices.append(f"notice: servingstack:{p.key} ({p.instance_type}) gets subnets in "
                                f"{', '.join(mine)} only: the other pinned zones do not offer it")
        plan.pool_zones[p.key] = mine
    if system_type:
        mine = [z.name for z in cluster_zones if z.name in offerings.get(system_type, set())]
        if not mine:
            raise ZoneError("cluster.systemNodePool.instanceType", f"'{system_type}' is offered in none of the "
                            f"cluster's zones ({_names(cluster_zones)})")
        plan.pool_zones["cluster.systemNodePool"] = mine
    return plan


def _first_key(pools: list[PoolNeed], types: list[str], offerings: dict[str, set[str]], ok: list[Zone]) -> str:
    """The instance-type key to blame when fewer than 2 zones offer every type: the scarcest pool's."""
    def offered(t: str) -> int:
        return sum(1 for z in ok if z.name in offerings.get(t, set()))
    scarce = min(types, key=offered)
    for p in pools:
        if p.instance_type == scarce:
            return f"{p.key}.instanceType"
    return "cluster.systemNodePool.instanceType"
