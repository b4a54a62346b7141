"""ClusterNetwork: a VPC with private and public subnets across availability zones, NAT egress and an
S3 gateway endpoint on the private route tables."""

from typing import Optional, TypedDict

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..base import Component
from .network_spec import subnet_cidrs, subnet_tags


class ClusterNetworkArgs(TypedDict):
    cluster_name: pulumi.Input[str]
    """Name of the EKS cluster the subnets are tagged for."""
    availability_zones: list[str]
    """Availability zones to spread subnets over (at least two)."""
    vpc_cidr: NotRequired[str]
    """VPC IPv4 CIDR. Default "10.0.0.0/16"."""
    single_nat_gateway: NotRequired[bool]
    """One NAT gateway for all zones (cheaper, not zone-redundant). Default false: one per zone."""
    region: NotRequired[str]
    """AWS region, for the S3 gateway endpoint's service name. Default: the provider's region."""
    tags: NotRequired[dict[str, str]]
    """Tags for every network resource. Default {}."""


class ClusterNetwork(Component):
    """A VPC, one private and one public subnet per zone, an internet gateway, NAT gateways and an S3
    gateway endpoint. `egress` (a Python attribute, not an output) lists what nodes in the private
    subnets need before they can reach anything: NAT gateways, private route tables and their
    associations, the S3 endpoint — for depends_on."""

    vpc_id: pulumi.Output[str]
    """ID of the VPC."""
    private_subnet_ids: pulumi.Output[list[str]]
    """Private subnets (nodes and pods), in availability-zone order."""
    public_subnet_ids: pulumi.Output[list[str]]
    """Public subnets (NAT gateways, internet-facing load balancers), in zone order."""

    def __init__(self, name: str, args: ClusterNetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:ClusterNetwork", name, opts, args)
        child = self.child_opts()
        tags = dict(args.get("tags") or {})
        zones = list(args["availability_zones"])
        private_cidrs, public_cidrs = subnet_cidrs(args.get("vpc_cidr", "10.0.0.0/16"), zones)
        cluster = args["cluster_name"]

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.get("vpc_cidr", "10.0.0.0/16"), enable_dns_hostnames=True,
                          enable_dns_support=True, tags={**tags, "Name": f"{name}-vpc"}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags=tags, opts=child,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
        )
        public, private, nats, private_rts, egress = [], [], [], [], []
        for i, zone in enumerate(zones):
            pub = aws.ec2.Subnet(
                f"{name}-public-{zone}", vpc_id=vpc.id, cidr_block=public_cidrs[i], availability_zone=zone,
                map_public_ip_on_launch=False, opts=child,
                tags=pulumi.Output.from_input(cluster).apply(lambda c, z=zone: {**tags, **subnet_tags(c, True),
                                                                                  "Name": f"{name}-public-{z}"}),
            )
            aws.ec2.RouteTableAssociation(f"{name}-public-{zone}", subnet_id=pub.id, route_table_id=public_rt.id,
                                          opts=child)
            public.append(pub)
            if i == 0 or not args.get("single_nat_gateway", False):
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags, opts=child)
                nats.append(aws.ec2.NatGateway(f"{name}-nat-{zone}", allocation_id=eip.id, subnet_id=pub.id,
                                               tags=tags, opts=self.child_opts(depends_on=[igw])))
            priv = aws.ec2.Subnet(
                f"{name}-private-{zone}", vpc_id=vpc.id, cidr_block=private_cidrs[i], availability_zone=zone,
                opts=child,
                tags=pulumi.Output.from_input(cluster).apply(lambda c, z=zone: {**tags, **subnet_tags(c, False),
                                                                                  "Name": f"{name}-private-{z}"}),
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-{zone}", vpc_id=vpc.id, tags=tags, opts=child,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id)],
            )
            assoc = aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=priv.id, route_table_id=rt.id,
                                                  opts=child)
            private.append(priv)
            private_rts.append(rt)
            egress += [rt, assoc]
        region = args.get("region") or aws.get_region().region
        # Weights and Triton repositories come from S3: a gateway endpoint keeps that traffic off the
        # NAT gateways (billed per GB) at no charge of its own.
        s3 = aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, service_name=f"com.amazonaws.{region}.s3",
                                 vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_rts],
                                 tags={**tags, "Name": f"{name}-s3"}, opts=child)

        self.egress = [*nats, *egress, s3]
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
                               "public_subnet_ids": self.public_subnet_ids})
