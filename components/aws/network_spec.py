"""Pure helpers for the cluster network: subnet CIDRs and tags. No Pulumi imports."""

from __future__ import annotations

import ipaddress


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Split the VPC into `zones` large private subnets (nodes and pods: the VPC CNI gives every pod a
    VPC address) and `zones` small public subnets (NAT gateways and load balancers).

    Private subnets split the first half of the VPC; public subnets are eight times smaller blocks
    of the second half, leaving most of it free for later use."""
    net = ipaddress.ip_network(vpc_cidr)
    half_private, half_public = list(net.subnets(prefixlen_diff=1))
    bits = max(1, (zones - 1).bit_length())
    private = [str(s) for s in list(half_private.subnets(prefixlen_diff=bits))[:zones]]
    public = [str(s) for s in list(half_public.subnets(prefixlen_diff=bits + 3))[:zones]]
    return private, public


def subnet_tags(cluster_name: str, public: bool) -> dict[str, str]:
    """Tags the AWS Load Balancer Controller uses to find subnets."""
    role = "kubernetes.io/role/elb" if public else "kubernetes.io/role/internal-elb"
    return {role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}
