"""The cluster section of the stack config (`servingstack:cluster`, its system node pool) and the
constants the node-pool models share (split from models.py by concern; models.py re-exports them)."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from ..planning import eks
from .errors import RuleError, format_value
from .fields import (
    ConfigModel,
    EksClusterName,
    IamPrincipalArn,
    InstanceTypeName,
    Ipv4Cidr,
    K8sMinorVersion,
    SubnetId,
    VpcCidr,
    check_sizes,
)

#: CloudWatch Logs retention values (PutRetentionPolicy `retentionInDays`).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
ZONE_ID = r"^[a-z]+[0-9]+-az[0-9]+$"
RELEASE_VERSION = r"^[0-9]+\.[0-9]+\.[0-9]+-[0-9a-z]+$"


class SystemNodePoolConfig(ConfigModel):
    instance_type: InstanceTypeName = "m6i.large"
    """CPU instance type for coredns and other untainted system pods."""
    min_size: int = Field(2, ge=1, le=20)
    """Minimum system nodes."""
    max_size: int = Field(4, ge=1, le=50)
    """Maximum system nodes."""
    desired_size: int = Field(2, ge=1, le=50)
    """System nodes at creation."""
    release_version: Optional[str] = Field(None, pattern=RELEASE_VERSION)
    """AMI release of the system nodes, e.g. "1.35.4-20260423"; unset: the recommended release for
    the cluster version (AWS's SSM parameter), read on every run."""

    @model_validator(mode="after")
    def _sizes(self) -> "SystemNodePoolConfig":
        check_sizes(self.min_size, self.max_size, self.desired_size)
        return self


class ClusterConfig(ConfigModel):
    create: bool = True
    """True: build a VPC and EKS cluster. False: adopt the existing cluster `name`."""
    name: Optional[EksClusterName] = None
    """Cluster name. Required when adopting; defaults to servingstack-<stack> when creating ('.' and
    other characters EKS refuses in the stack name become '-')."""
    version: K8sMinorVersion = eks.DEFAULT_VERSION
    """Kubernetes minor version, e.g. "1.35" (in EKS standard support until 2027-03-27)."""
    support_type: Literal["STANDARD", "EXTENDED"] = "STANDARD"
    """EKS upgrade policy: STANDARD upgrades the control plane when its version leaves standard
    support; EXTENDED keeps it, billed at the extended-support rate ($0.60/h instead of $0.10/h)."""
    vpc_cidr: VpcCidr = "10.0.0.0/16"
    """IPv4 CIDR of the new VPC, /16 to /21 (private subnets take its first half)."""
    availability_zone_count: int = Field(3, ge=2, le=6)
    """Availability zones to spread subnets over; only zones offering every GPU pool's instance type
    count (left at the default, it narrows to the zones that offer them, with a notice)."""
    availability_zone_ids: Optional[list[str]] = None
    """Pinned zone ids of the new VPC (e.g. [use1-az6, use1-az4]): zones never move, whatever AWS
    later lists or offers. Unset: chosen on every run (the notice says which ids to pin)."""
    log_retention_days: int = 90
    """Days CloudWatch keeps the control-plane logs (/aws/eks/<name>/cluster, created before the cluster)."""
    addon_versions: dict[str, str] = Field(default_factory=dict)
    """Pinned EKS add-on versions by add-on name (vpc-cni, kube-proxy, eks-pod-identity-agent, coredns);
    unset ones get the most recent for the cluster version."""
    public_access_cidrs: list[Ipv4Cidr] = Field(default_factory=list, max_length=40)
    """CIDRs allowed to reach the public API endpoint (EKS takes up to 40); empty keeps the endpoint private-only."""
    public_access_max_share: float = Field(1 / 256, gt=0, le=1)
    """prod only: the largest share of the IPv4 address space publicAccessCidrs may cover together
    (default 1/256, one /8); a wider list is treated as an endpoint open to the internet."""
    admin_principal_arns: list[IamPrincipalArn] = Field(default_factory=list, max_length=100)
    """IAM role/user ARNs granted cluster-admin access entries: the CI or admin roles that deploy later.
    The principal that creates the cluster gets it from EKS itself and must not be listed."""
    log_types: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]] = Field(
        default_factory=lambda: ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    """Control-plane log types sent to CloudWatch."""
    system_node_pool: SystemNodePoolConfig = Field(default_factory=SystemNodePoolConfig)
    """Small untainted CPU node group for coredns and other system pods."""
    single_nat_gateway: bool = False
    """One NAT gateway for all zones (cheaper, not zone-redundant) instead of one per zone."""
    subnet_ids: list[SubnetId] = Field(default_factory=list, max_length=16)
    """Adopt only: private subnets for node pools (default: the cluster's own subnets)."""
    pod_identity: bool = True
    """Whether the cluster runs the EKS Pod Identity agent (adopted clusters without it use IRSA)."""
    allow_public_node_subnets: bool = False
    """Adopt only: allow node subnets that auto-assign public IPv4 addresses (public subnets)."""

    @field_validator("availability_zone_ids")
    @classmethod
    def _zone_ids(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        if v is None:
            return v
        for zid in v:
            if not re.match(ZONE_ID, zid):
                raise ValueError(f"'{zid}' is not an Availability Zone id such as use1-az6 (Local and Wavelength "
                                 "zones cannot hold EKS subnets)")
        if len(set(v)) != len(v) or not 2 <= len(v) <= 6:
            raise ValueError("lists 2 to 6 distinct zone ids (EKS needs subnets in at least 2 zones)")
        return v

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            raise ValueError(f"{v} is not a CloudWatch Logs retention — use one of "
                             f"{', '.join(map(str, LOG_RETENTION_DAYS))}")
        return v

    @field_validator("addon_versions")
    @classmethod
    def _addons(cls, v: dict[str, str]) -> dict[str, str]:
        for name, version in v.items():
            if name not in eks.ADDONS:
                raise ValueError(f"'{name}' is not an add-on this stack installs — use {', '.join(eks.ADDONS)}")
            if not re.match(r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$", version):
                raise ValueError(f"'{version}' is not an EKS add-on version such as v1.21.1-eksbuild.3")
        return v

    @model_validator(mode="after")
    def _zones(self) -> "ClusterConfig":
        if (self.availability_zone_ids and "availability_zone_count" in self.model_fields_set
                and self.availability_zone_count != len(self.availability_zone_ids)):
            raise RuleError("availabilityZoneCount", f"{self.availability_zone_count} disagrees with the "
                            f"{len(self.availability_zone_ids)} pinned availabilityZoneIds — drop availabilityZoneCount")
        return self

    @model_validator(mode="after")
    def _lists(self) -> "ClusterConfig":
        # (adminPrincipalArns may repeat: the cluster makes one access entry per principal.)
        for key, items in (("publicAccessCidrs", self.public_access_cidrs), ("subnetIds", self.subnet_ids),
                           ("logTypes", self.log_types)):
            twice = next((i for i, item in enumerate(items) if item in items[:i]), None)
            if twice is not None:
                raise RuleError(f"{key}.{twice}", f"{format_value(items[twice])} is listed twice — list each once")
        return self


CREATE_ONLY_CLUSTER_KEYS = ("vpcCidr", "availabilityZoneCount", "availabilityZoneIds", "publicAccessCidrs",
                            "publicAccessMaxShare", "logTypes", "logRetentionDays", "systemNodePool", "version",
                            "supportType", "addonVersions", "singleNatGateway", "adminPrincipalArns")
ADOPT_ONLY_CLUSTER_KEYS = ("subnetIds", "podIdentity", "allowPublicNodeSubnets")
"""Cluster keys a new cluster ignores (it makes its own subnets and always runs the Pod Identity agent)."""
ADOPT_ONLY_MODEL_STORE_KEYS = ("kmsKeyArn",)
"""Model-store keys a new bucket ignores (it gets its own KMS key)."""
