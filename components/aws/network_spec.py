"""Pure helpers for the cluster network: subnet CIDRs and tags. No Pulumi imports."""

from __future__ import annotations

import ipaddress


ZONE_SLOTS = 8


def zone_slot(zone: str) -> int:
    """A zone's fixed place in the address plan, from its letter (us-east-1a -> 0 ... h -> 7), so that
    adding, removing or reordering zones never renumbers another zone's subnets."""
    slot = ord(zone[-1]) - ord("a")
    if not 0 <= slot < ZONE_SLOTS:
        raise ValueError(f"availability zone {zone!r} has no subnet slot (zones a to h are supported)")
    return slot


def subnet_cidrs(vpc_cidr: str, zones: list[str]) -> tuple[list[str], list[str]]:
    """One large private subnet (nodes and pods: the VPC CNI gives every pod a VPC address) and one
    small public subnet (NAT gateways, load balancers) per zone, in the order given.

    Private subnets are eighths of the VPC's first half; public ones are 64ths of its second half,
    leaving most of it free for later use. Each zone's blocks depend only on its letter."""
    net = ipaddress.ip_network(vpc_cidr)
    half_private, half_public = list(net.subnets(prefixlen_diff=1))
    private_blocks = list(half_private.subnets(prefixlen_diff=3))
    public_blocks = list(half_public.subnets(prefixlen_diff=6))
    slots = [zone_slot(z) for z in zones]
    return [str(private_blocks[i]) for i in slots], [str(public_blocks[i]) for i in slots]


def subnet_tags(cluster_name: str, public: bool) -> dict[str, str]:
    """Tags the AWS Load Balancer Controller uses to find subnets."""
    role = "kubernetes.io/role/elb" if public else "kubernetes.io/role/internal-elb"
    return {role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}
