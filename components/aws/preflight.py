"""What the program asks AWS before it registers anything: the zones a new cluster can use and the
offerings in them, AMI releases and add-on versions for the cluster version, the account's GPU
quotas, and whether an adopted cluster can take IRSA roles and private node subnets.

Every question is a provider invoke (answered from a recording of real AWS answers offline,
servingstack.tools.offline.awsdata). Every refusal is one ConfigError line naming the key to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi_aws as aws

from ..base import offline_runtime
from ..config import ConfigError, GpuNodePoolConfig, StackConfig
from ..config.placeholders import refuse_placeholders
from ..planning import eks, quotas
from .zones_spec import EKS_UNSUPPORTED_ZONE_IDS, PoolNeed, Zone, ZoneError, ZonePlan, plan_zones

SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"


@dataclass
class Preflight:
    version: str
    """Kubernetes version of the cluster (configured, or the adopted cluster's)."""
    zones: Optional[ZonePlan] = None
    """New clusters: the VPC's zones and each node group's share."""
    pool_subnets: dict[str, list[str]] = field(default_factory=dict)
    """Adopted clusters: node-group key -> subnet ids in zones offering its type."""
    release_versions: dict[str, Optional[str]] = field(default_factory=dict)
    """Node-group key -> AMI release version (None: unanswered by a test's own mocks)."""
    addon_versions: dict[str, str] = field(default_factory=dict)
    quota_needs: list[quotas.QuotaNeed] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def gpu_pools(cfg: StackConfig) -> list[tuple[str, GpuNodePoolConfig]]:
    """Every GPU pool with its config key (gpuNodePool, extraGpuNodePools.N)."""
    return [("gpuNodePool", cfg.gpu_node_pool),
            *[(f"extraGpuNodePools.{i}", p) for i, p in enumerate(cfg.extra_gpu_node_pools)]]


def uses_irsa(cfg: StackConfig) -> bool:
    """Whether the serving pods get credentials through IRSA (Triton, or no Pod Identity agent)."""
    return not (cfg.cluster.pod_identity and cfg.serving.stack != "triton")


def unanswered(value: object) -> bool:
    """An invoke answered without its data: only a test's own mocks do that (Pulumi's standard
    mocks echo the arguments back; servingstack's offline runtime answers from its recordings, and
    AWS always answers). The question is then treated as unknown: nothing is refused or pinned."""
    return value is None and offline_runtime()


# ---- zones ---------------------------------------------------------------------------------

def zone_answers() -> Optional[tuple[list[Zone], list[Zone], list[Zone]]]:
    """From DescribeAvailabilityZones: (zones a new cluster may take, the same in any state, every
    zone the account sees); None when unanswered (a test's own mocks)."""
    everything = aws.get_availability_zones(all_availability_zones=True)
    regional = [aws.GetAvailabilityZonesFilterArgs(name="zone-type", values=["availability-zone"]),
                aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])]
    any_state = aws.get_availability_zones(exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS), filters=regional)
    usable = aws.get_availability_zones(state="available", exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS),
                                        filters=regional)
    if any(unanswered(r.names) for r in (everything, any_state, usable)):
        return None
    as_zones = lambda r: [Zone(n, i) for n, i in zip(r.names, r.zone_ids or ["unknown"] * len(r.names))]  # noqa: E731
    return as_zones(usable), as_zones(any_state), as_zones(everything)


def offering_answers(instance_types: list[str]) -> Optional[dict[str, set[str]]]:
    """Instance type -> zone names offering it (DescribeInstanceTypeOfferings by availability zone);
    None when unanswered (a test's own mocks)."""
    found: dict[str, set[str]] = {t: set() for t in instance_types}
    if not instance_types:
        return found
    r = aws.ec2.get_instance_type_offerings(
        location_type="availability-zone",
        filters=[aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=sorted(instance_types))])
    if unanswered(r.instance_types):
        return None
    for itype, location in zip(r.instance_types, r.locations or []):
        found.setdefault(itype, set()).add(location)
    return found


def plan_cluster_zones(region: str, pools: list[PoolNeed], system_type: Optional[str], count: int,
                       count_explicit: bool, pinned_ids: Optional[list[str]]) -> ZonePlan:
    answers = zone_answers()
    if answers is None:  # a test's own mocks: the region's first zone names stand in, no refusal
        names = [f"{region}{letter}" for letter in "abcdef"][:len(pinned_ids) if pinned_ids else count]
        extra = sorted({p.zone for p in pools if p.zone and p.zone not in names})
        return ZonePlan([Zone(n, "unknown") for n in names], [Zone(n, "unknown") for n in extra],
                        pool_zones={**{p.key: [p.zone] if p.zone else names for p in pools},
                                    "cluster.systemNodePool": names})
    usable, any_state, everything = answers
    types = sorted({p.instance_type for p in pools} | ({system_type} if system_type else set()))
    offerings = offering_answers(types)
    if offerings is None:
        offerings = {t: {z.name for z in everything} for t in types}
    try:
        return plan_zones(usable, any_state, everything, offerings, pools, system_type, count,
                          count_explicit, pinned_ids, region)
    except ZoneError as exc:
        raise ConfigError(exc.key, exc.message) from None


# ---- versions ------------------------------------------------------------------------------

def release_version(ami_type: str, version: str) -> Optional[str]:
    """The recommended AMI release for `ami_type` on Kubernetes `version` (public SSM parameter);
    None when unanswered (a test's own mocks: the node group then takes EKS's latest)."""
    name = eks.release_version_parameter(ami_type, version)
    try:
        value = aws.ssm.get_parameter(name=name).value
        return None if unanswered(value) else value
    except Exception as exc:  # noqa: BLE001 - the provider raises a plain Exception for AWS errors
        raise ConfigError("cluster.version", f"{version!r} — no {ami_type} AMI release found ({name}: "
                          f"{_reason(exc)}); pin releaseVersion or use a version EKS publishes AMIs for") from None


def addon_versions(version: str, pinned: dict[str, str]) -> dict[str, str]:
    """Every managed add-on's version: pinned ones as given, the rest the most recent for `version`."""
    out = {}
    for addon in eks.ADDONS:
        if addon in pinned:
            out[addon] = pinned[addon]
            continue
        try:
            found = aws.eks.get_addon_version(addon_name=addon, kubernetes_version=version,
                                              most_recent=True).version
            if not unanswered(found):  # a test's own mocks: the add-on then takes EKS's default
                out[addon] = found
        except Exception as exc:  # noqa: BLE001
            raise ConfigError("cluster.addonVersions", f"no {addon} version for Kubernetes {version} "
                              f"({_reason(exc)}) — pin it in cluster.addonVersions") from None
    return out


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0].removeprefix("invoke of ").strip()


# ---- quotas --------------------------------------------------------------------------------

def quota_preflight(cfg: StackConfig, offline: bool) -> tuple[list[quotas.QuotaNeed], list[str]]:
    """vCPUs each Service Quotas code must allow, with the account's value when known. Refuses in one
    line when a known quota is lower (a real run always knows it; offline only when recorded)."""
    demands = [quotas.PoolDemand(key, p.instance_type, p.instance.vcpus, p.capacity_type, p.max_size,
                                 quotas.surge_nodes("MINIMAL", 1, p.max_unavailable))
               for key, p in gpu_pools(cfg)]
    needs, notices = [], []
    for need in quotas.quota_needs(demands):
        value = None
        try:
            value = aws.servicequotas.get_service_quota(service_code=quotas.SERVICE_CODE, quota_code=need.code).value
        except Exception as exc:  # noqa: BLE001 - no servicequotas permission must not block a deploy
            notices.append(f"notice: could not read the {need.name} quota ({need.code}): {_reason(exc)}; make sure "
                           f"it allows {need.vcpus} vCPUs")
        need = quotas.QuotaNeed(need.code, need.name, need.vcpus, need.pools, value)
        if need.short:
            key = need.pools[0]
            raise ConfigError(f"{key}.maxSize", f"the pools drawing on '{need.name}' ({need.code}) can run "
                              f"{need.vcpus} vCPUs in {cfg.region}, the account's quota is {value:g} — request "
                              f"more (aws service-quotas request-service-quota-increase --service-code ec2 "
                              f"--quota-code {need.code} --desired-value {need.vcpus}) or lower maxSize")
        if value is None and not offline:
            notices.append(f"notice: {need.name} ({need.code}) unknown: make sure it allows {need.vcpus} vCPUs")
        needs.append(need)
    return needs, notices


# ---- adopted clusters ----------------------------------------------------------------------

def adopted_checks(cfg: StackConfig, existing: aws.eks.AwaitableGetClusterResult) -> dict[str, list[str]]:
    """Refuse an adopted cluster that cannot work: IRSA without an OIDC provider, node subnets that
    auto-assign public IPs (unless allowed). Returns each pool's subnets in zones offering its type."""
    c = cfg.cluster
    issuer = existing.identities[0].oidcs[0].issuer
    if uses_irsa(cfg):
        try:
            aws.iam.get_open_id_connect_provider(url=issuer)
        except Exception:  # noqa: BLE001 - NoSuchEntity
            raise ConfigError("cluster.name", f"{c.name!r} has no IAM OIDC provider for its issuer {issuer}, so the "
                              "serving pods' IRSA role cannot be trusted — create it (eksctl utils "
                              f"associate-iam-oidc-provider --cluster {c.name} --approve) or use Pod Identity "
                              "(cluster.podIdentity: true; Triton always uses IRSA)") from None
    key = "cluster.subnetIds" if c.subnet_ids else "cluster.name"
    zones: dict[str, str] = {}
    for sid in list(c.subnet_ids or existing.vpc_config.subnet_ids):
        try:
            subnet = aws.ec2.get_subnet(id=sid)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(key, f"subnet {sid} cannot be read ({_reason(exc)}) — list private subnets of the "
                              "cluster's VPC in cluster.subnetIds") from None
        if subnet.map_public_ip_on_launch and not c.allow_public_node_subnets:
            raise ConfigError(key, f"subnet {sid} ({subnet.availability_zone}) auto-assigns public IPv4 addresses: "
                              "GPU nodes there would be reachable from the internet — list private subnets in "
                              "cluster.subnetIds, or set cluster.allowPublicNodeSubnets: true")
        zones[sid] = subnet.availability_zone
    pools = gpu_pools(cfg)
    offerings = offering_answers(sorted({p.instance_type for _, p in pools}))
    if offerings is None or any(unanswered(z) for z in zones.values()):  # a test's own mocks
        return {pkey: list(zones) for pkey, _ in pools}
    out = {}
    for pkey, p in pools:
        mine = [s for s, z in zones.items() if z in offerings.get(p.instance_type, set())
                and (p.availability_zone is None or z == p.availability_zone)]
        if not mine:
            where = f" in {p.availability_zone}" if p.availability_zone else ""
            raise ConfigError(key, f"none of the node subnets ({', '.join(f'{s} {z}' for s, z in zones.items())}) "
                              f"is in a zone{where} offering {p.instance_type} ({pkey}; offered in "
                              f"{', '.join(sorted(offerings.get(p.instance_type, set()))) or 'no zone'}) — list a "
                              "subnet there in cluster.subnetIds")
        out[pkey] = mine
    return out


# ---- all of it -----------------------------------------------------------------------------

def run_preflight(cfg: StackConfig) -> Preflight:
    """Every AWS-dependent check, in the order a user would fix them. Real runs (not under the
    offline runtime) also refuse documentation placeholders first."""
    offline = offline_runtime()
    if not offline:
        refuse_placeholders(cfg)
    c = cfg.cluster
    pools = gpu_pools(cfg)
    if c.create:
        pre = Preflight(version=c.version)
        pre.zones = plan_cluster_zones(
            cfg.region, [PoolNeed(k, p.instance_type, p.availability_zone) for k, p in pools],
            c.system_node_pool.instance_type, c.availability_zone_count,
            "availability_zone_count" in c.model_fields_set, c.availability_zone_ids)
        pre.notices += pre.zones.notices
        pre.addon_versions = addon_versions(c.version, c.addon_versions)
        pre.release_versions["cluster.systemNodePool"] = (c.system_node_pool.release_version
                                                          or release_version(SYSTEM_AMI_TYPE, c.version))
    else:
        existing = aws.eks.get_cluster(name=c.name)
        if unanswered(existing.identities):  # a test's own mocks: nothing to check against
            pre = Preflight(version=existing.version or c.version)
            subnets = list(c.subnet_ids or (existing.vpc_config.subnet_ids if existing.vpc_config else None) or [])
            pre.pool_subnets = {key: subnets for key, _ in pools}
        else:
            pre = Preflight(version=existing.version)
            pre.pool_subnets = adopted_checks(cfg, existing)
    resolved: dict[str, str] = {}
    for key, p in pools:
        if p.release_version:
            pre.release_versions[key] = p.release_version
        else:
            if p.ami_type not in resolved:
                resolved[p.ami_type] = release_version(p.ami_type, pre.version)
            pre.release_versions[key] = resolved[p.ami_type]
    pre.quota_needs, notices = quota_preflight(cfg, offline)
    pre.notices += notices
    if pre.version not in eks.VERSIONS:
        pre.notices.append(f"notice: Kubernetes {pre.version} is not in the shipped EKS version table "
                           f"(servingstack.planning.eks, {eks.VERSIONS_AS_OF}): its support dates are unknown")
    return pre
