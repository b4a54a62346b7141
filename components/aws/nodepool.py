"""GpuNodePool: an EKS managed node group of GPU instances, tainted so only GPU work lands there."""

import base64
import json
from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..base import Component
from ..config.errors import RuleError
from ..config.fields import check_sizes
from ..planning import catalog
from ..planning.resources import DISK_RESERVED_GIB, MIN_STARTUP_SECONDS_LARGE
from .cluster_autoscaler_spec import node_template_tags, tag_suffix
from .nodepool_spec import (
    data_volume_device,
    ec2_assume_role_policy,
    gpu_taints,
    instance_tags,
    node_role_policy_arns,
    node_user_data,
    policy_name,
    pool_labels,
    tolerations_for,
    update_timeout_minutes,
    uses_nvme_raid,
)


class GpuNodePoolArgs(TypedDict):
    cluster_name: pulumi.Input[str]
    """Name of the EKS cluster to join."""
    subnet_ids: pulumi.Input[list[str]]
    """Private subnets for the nodes (for capacity blocks: only the reservation's zone)."""
    pool_name: NotRequired[str]
    """Pool name; the `servingstack.io/pool` label value and the node-group name suffix. Default "gpu"."""
    instance_type: NotRequired[str]
    """EC2 GPU instance type from the catalog. Default "p4de.24xlarge" (8x A100 80 GB)."""
    ami_type: NotRequired[str]
    """AL2023_x86_64_NVIDIA (default) or BOTTLEROCKET_x86_64_NVIDIA (bundles the device plugin)."""
    capacity_type: NotRequired[str]
    """ON_DEMAND (default), SPOT or CAPACITY_BLOCK."""
    capacity_reservation_id: NotRequired[str]
    """cr-... id of the capacity block; required with CAPACITY_BLOCK. Default unset."""
    min_size: NotRequired[int]
    """Minimum nodes. Default 0."""
    max_size: NotRequired[int]
    """Maximum nodes. Default 2."""
    desired_size: NotRequired[int]
    """Desired nodes (0 scales the pool to zero); managed by this program, not an autoscaler. Default 2."""
    disk_size_gib: NotRequired[int]
    """Encrypted gp3 volume for images and logs, GiB (Bottlerocket: the /dev/xvdb data volume). Default 200."""
    metadata_hop_limit: NotRequired[int]
    """IMDSv2 PUT response hop limit; 1 keeps pods away from the instance role. Default 1."""
    local_nvme_raid0: NotRequired[bool]
    """RAID0 the instance-store NVMe for kubelet ephemeral storage (AL2023). Default true."""
    max_unavailable: NotRequired[int]
    """Nodes replaced at once during updates (update strategy MINIMAL: old nodes go before new ones
    come, so no GPU node is ever added on top). Default 1."""
    labels: NotRequired[dict[str, str]]
    """Extra node labels. Default {}."""
    kubernetes_version: NotRequired[str]
    """Kubernetes version of the nodes (the cluster's, e.g. "1.35"). Default unset: EKS picks the
    cluster's at creation and upgrades never reach the nodes."""
    release_version: NotRequired[str]
    """AMI release of the nodes, e.g. "1.35.4-20260423". Default unset: the recommended release of
    `kubernetes_version` from AWS's public SSM parameter (none without `kubernetes_version`)."""
    startup_seconds: NotRequired[int]
    """Start-up budget of the pods these nodes serve, seconds; sizes the update timeout. Default 1840."""
    tags: NotRequired[dict[str, str]]
    """Tags for the node group, its role and the launch template resource (not in its contents). Default {}."""
    instance_tags: NotRequired[dict[str, str]]
    """Tags the launch template puts on instances and volumes, fixed for the pool's life (changing
    them recycles every node), plus Name and servingstack.io/pool. Default {}."""
    cluster_autoscaler: NotRequired[bool]
    """A Cluster Autoscaler sizes this pool: `desired_size` is only the size at creation (later
    changes are ignored), and the pool's Auto Scaling group gets the node-template tags that let the
    autoscaler scale it up from zero. Never for CAPACITY_BLOCK pools. Default false."""


class GpuNodePool(Component):
    """A managed node group of GPU instances: IMDSv2-only launch template, encrypted gp3 disk,
    NVMe RAID0, the `nvidia.com/gpu=present:NoSchedule` taint and GPU labels."""

    node_group_name: pulumi.Output[str]
    """Name of the EKS managed node group."""
    role_arn: pulumi.Output[str]
    """ARN of the node IAM role."""
    labels: pulumi.Output[dict[str, str]]
    """Node labels to select this pool with."""
    taints: pulumi.Output[list[dict[str, str]]]
    """Node taints (EKS spelling: key, value, effect NO_SCHEDULE)."""
    tolerations: pulumi.Output[list[dict[str, str]]]
    """Kubernetes tolerations that tolerate this pool's taints."""
    instance_type: pulumi.Output[str]
    """EC2 instance type of the nodes."""
    gpus_per_node: pulumi.Output[int]
    """GPUs per node."""
    gpu_memory_mib: pulumi.Output[int]
    """Memory of one GPU, MiB."""
    local_nvme: pulumi.Output[bool]
    """Whether kubelet ephemeral storage (emptyDir) sits on RAID0 NVMe."""
    bundles_device_plugin: pulumi.Output[bool]
    """True on Bottlerocket NVIDIA, whose AMI runs the device plugin itself."""
    autoscaling_group_name: pulumi.Output[str]
    """Name of the Auto Scaling group EKS made for the node group."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        check_sizes(args.get("min_size", 0), args.get("max_size", 2), args.get("desired_size", 2))
        block = args.get("capacity_type", "ON_DEMAND") == "CAPACITY_BLOCK"
        if block and not args.get("capacity_reservation_id"):
            raise RuleError("capacity_reservation_id", "is required when capacity_type is CAPACITY_BLOCK (the "
                                                       "cr-... id of the purchased capacity block)")
        if not block and args.get("capacity_reservation_id"):
            raise RuleError("capacity_reservation_id", "is only used with capacity_type CAPACITY_BLOCK — remove "
                                                       "it or set capacity_type: CAPACITY_BLOCK")
        instance = catalog.INSTANCE_TYPES[args.get("instance_type", "p4de.24xlarge")]
        if block and not instance.capacity_block:
            raise RuleError("instance_type", f"{instance.name!r} is not sold as a capacity block — use one of "
                                             f"{', '.join(n for n, i in catalog.INSTANCE_TYPES.items() if i.capacity_block)}")

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:GpuNodePool", name, opts, args)
        child = self.child_opts()
        pool = args.get("pool_name", "gpu")
        instance = catalog.INSTANCE_TYPES[args.get("instance_type", "p4de.24xlarge")]
        ami_type = args.get("ami_type", "AL2023_x86_64_NVIDIA")
        capacity_type = args.get("capacity_type", "ON_DEMAND")
        tags = dict(args.get("tags") or {})
        labels = pool_labels(pool, args.get("labels"))
        taints = gpu_taints()
        nvme = uses_nvme_raid(ami_type, instance, args.get("local_nvme_raid0", True))
        autoscaled = bool(args.get("cluster_autoscaler")) and capacity_type != "CAPACITY_BLOCK"

        role = aws.iam.Role(f"{name}-node-role", assume_role_policy=json.dumps(ec2_assume_role_policy()),
                            tags=tags, opts=child)
        # Named after the policy; the alias keeps stacks made when they were named by list index.
        attachments = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{policy_name(arn)}", role=role.name, policy_arn=arn,
                                         opts=self.child_opts(aliases=[pulumi.Alias(name=f"{name}-node-{i}")]))
            for i, arn in enumerate(node_role_policy_arns())
        ]
        user_data = node_user_data(ami_type, instance, args.get("local_nvme_raid0", True))
        capacity_block = capacity_type == "CAPACITY_BLOCK"
        lt = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"servingstack GPU pool {pool} ({instance.name})",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required",
                http_put_response_hop_limit=args.get("metadata_hop_limit", 1)),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name=data_volume_device(ami_type),
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=args.get("disk_size_gib", 200), volume_type="gp3", encrypted="true",
                    delete_on_termination="true", throughput=500, iops=6000))],
            user_data=base64.b64encode(user_data.encode()).decode() if user_data else None,
            # Capacity blocks need the market type and reservation in the template, and the
            # instance type there rather than on the node group.
            instance_type=instance.name if capacity_block else None,
            instance_market_options=aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block")
            if capacity_block else None,
            capacity_reservation_specification=aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    capacity_reservation_id=args.get("capacity_reservation_id")))
            if capacity_block else None,
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags=instance_tags(dict(args.get("instance_tags") or {}), f"{name}-{pool}", pool))
                for kind in ("instance", "volume")
            ],
            update_default_version=True,
            tags=tags,
            opts=child,
        )
        version = args.get("kubernetes_version")
        release = args.get("release_version")
        if release is None and version:
            from .preflight import release_version
            release = release_version(ami_type, version)
        max_size, max_unavailable = args.get("max_size", 2), args.get("max_unavailable", 1)
        minutes = update_timeout_minutes(max_size, max_unavailable,
                                         args.get("startup_seconds", MIN_STARTUP_SECONDS_LARGE))
        group = aws.eks.NodeGroup(
            f"{name}-ng",
            cluster_name=args["cluster_name"],
            node_role_arn=role.arn,
            subnet_ids=args["subnet_ids"],
            ami_type=ami_type,
            capacity_type=capacity_type,
            instance_types=None if capacity_block else [instance.name],
            version=version,
            release_version=release,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.get("min_size", 0), max_size=max_size, desired_size=args.get("desired_size", 2)),
            # MINIMAL: an AMI or launch-template update terminates a node before launching its
            # replacement, `maxUnavailable` at a time, instead of surging up to twice the zones in
            # extra GPU nodes (quota, cost; capacity blocks cannot surge at all).
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=max_unavailable, update_strategy="MINIMAL"),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=lt.id, version=lt.latest_version.apply(str)),
            labels=labels,
            taints=[aws.eks.NodeGroupTaintArgs(**t) for t in taints],
            tags={**tags, "servingstack.io/pool": pool},
            # desiredSize stays under this program's control, except when a Cluster Autoscaler sizes
            # the pool, and in capacity blocks: EKS scales them to 0 forty minutes before the block
            # ends, and a `pulumi up --refresh` must not scale them back up.
            opts=self.child_opts(
                depends_on=attachments,
                ignore_changes=["scalingConfig.desiredSize"] if autoscaled or capacity_block else None,
                custom_timeouts=pulumi.CustomTimeouts(update=f"{minutes}m")),
        )
        # EKS reports the group's Auto Scaling group in `resources` (eks-<node group>-<uuid>).
        # (Absent under mocks that compute nothing: "".)
        self.autoscaling_group_name = group.resources.apply(
            lambda r: r[0].autoscaling_groups[0].name if r and r[0].autoscaling_groups else "")
        if autoscaled:
            ephemeral = int(instance.nvme_gb * 1e9 / 2**30 * 0.95) if nvme else \
                args.get("disk_size_gib", 200) - DISK_RESERVED_GIB
            for key, value in node_template_tags(labels, taints, instance, ephemeral).items():
                aws.autoscaling.Tag(f"{name}-asg-{tag_suffix(key)}", autoscaling_group_name=self.autoscaling_group_name,
                                    tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                                    opts=child)

        self.node_group_name = group.node_group_name
        self.role_arn = role.arn
        self.labels = pulumi.Output.from_input(labels)
        self.taints = pulumi.Output.from_input(taints)
        self.tolerations = pulumi.Output.from_input(tolerations_for(taints))
        self.instance_type = pulumi.Output.from_input(instance.name)
        self.gpus_per_node = pulumi.Output.from_input(instance.gpus)
        self.gpu_memory_mib = pulumi.Output.from_input(instance.gpu_memory_mib)
        self.local_nvme = pulumi.Output.from_input(nvme)
        self.bundles_device_plugin = pulumi.Output.from_input(ami_type.startswith("BOTTLEROCKET"))
        self.ready = group.arn
        self.register_outputs({
            "node_group_name": self.node_group_name, "role_arn": self.role_arn, "labels": self.labels,
            "taints": self.taints, "tolerations": self.tolerations, "instance_type": self.instance_type,
            "gpus_per_node": self.gpus_per_node, "gpu_memory_mib": self.gpu_memory_mib,
            "local_nvme": self.local_nvme, "bundles_device_plugin": self.bundles_device_plugin,
            "autoscaling_group_name": self.autoscaling_group_name,
        })
