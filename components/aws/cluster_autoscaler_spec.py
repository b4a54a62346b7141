"""Pure: what the Cluster Autoscaler needs on AWS: its IAM policy, the node-template tags that let
it scale a managed node group up from zero, and its Helm values. No Pulumi imports.

Sources: kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md (the IAM policy,
"Auto-Discovery Setup", the node-template tags for labels, taints and resources, and that
eks:DescribeNodegroup supplies a managed group's labels and taints only until it first has nodes;
hence the tags too) and the cluster-autoscaler chart 9.59.0 values.yaml.

Why the Cluster Autoscaler and not Karpenter: the GPU pools already are EKS managed node groups
(launch templates with IMDSv2, NVMe RAID0 user data, capacity blocks); the Cluster Autoscaler scales
exactly those groups between their min and max sizes, with nothing new to keep in step (Karpenter
would replace them with NodePools and EC2NodeClasses, its own AMI selection and node IAM, an
interruption queue and an access entry: a second way to make GPU nodes).
"""

from __future__ import annotations

from typing import Optional

from ..planning.catalog import GpuInstanceType
from ..planning.node import EKS_TO_K8S_EFFECT

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"
TEMPLATE_PREFIX = "k8s.io/cluster-autoscaler/node-template"


def node_template_tags(labels: dict[str, str], taints: list[dict[str, str]], instance: GpuInstanceType,
                       ephemeral_storage_gib: Optional[int] = None) -> dict[str, str]:
    """ASG tags describing a node of the pool before one exists: its labels, taints (EKS spelling in,
    `value:Effect` out), GPUs and, when known, ephemeral storage (a serving pod requests its model
    cache from it; without the tag the autoscaler assumes too little and never scales up for it)."""
    tags = {f"{TEMPLATE_PREFIX}/label/{k}": v for k, v in sorted(labels.items())}
    for t in taints:
        tags[f"{TEMPLATE_PREFIX}/taint/{t['key']}"] = f"{t['value']}:{EKS_TO_K8S_EFFECT[t['effect']]}"
    tags[f"{TEMPLATE_PREFIX}/resources/nvidia.com/gpu"] = str(instance.gpus)
    if ephemeral_storage_gib:
        tags[f"{TEMPLATE_PREFIX}/resources/ephemeral-storage"] = f"{ephemeral_storage_gib}Gi"
    return tags


def tag_suffix(key: str) -> str:
    """A resource-name suffix for one node-template tag (stable, readable, unique per key)."""
    import hashlib
    import re

    short = re.sub(r"[^a-z0-9]+", "-", key.removeprefix(TEMPLATE_PREFIX + "/").lower()).strip("-")
    return f"{short[:40]}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def asg_arn(region: str, account: str, asg_name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{asg_name}"


def autoscaler_policy(region: str, account: str, cluster_name: str, asg_names: list[str],
                      partition: str = "aws") -> dict:
    """The README's policy, narrowed: read-only discovery calls on "*" (they take no resource), the
    managed node groups of this cluster for DescribeNodegroup, and only the listed ASGs for changing
    capacity and terminating instances."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Discover", "Effect": "Allow", "Resource": ["*"], "Action": [
                "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
                "ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements"]},
            {"Sid": "DescribeManagedNodegroups", "Effect": "Allow", "Action": ["eks:DescribeNodegroup"],
             "Resource": [f"arn:{partition}:eks:{region}:{account}:nodegroup/{cluster_name}/*/*"]},
            {"Sid": "ScaleGpuPools", "Effect": "Allow",
             "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
             "Resource": [asg_arn(region, account, n, partition) for n in sorted(asg_names)]},
        ],
    }


def autoscaler_values(region: str, image_tag: str, groups: list[dict],
                      service_account_annotations: dict[str, str], scale_down_unneeded_minutes: int) -> dict:
    """Chart values: explicit node groups (`groups`: name = ASG name, minSize, maxSize) and no
    auto-discovery (`autoDiscovery.clusterName` unset: EKS tags every managed group's ASG for
    discovery, the system pool and capacity-block pools included), so only the GPU pools it may
    scale are scaled; on the system nodes, with the image matching the cluster's minor version.

    Flags: serving pods keep their model cache in an emptyDir, which by default
    (--skip-nodes-with-local-storage=true) would keep a node forever; GPU pools scale in only after
    the serving replicas left them for `scale_down_unneeded_minutes`."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoscalingGroups": groups,
        "image": {"tag": image_tag},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT,
                                    "annotations": dict(service_account_annotations)}},
        "customArgs": [
            "--skip-nodes-with-local-storage=false",
            "--balance-similar-node-groups=true",
            "--expander=least-waste",
            f"--scale-down-unneeded-time={scale_down_unneeded_minutes}m",
            "--scale-down-delay-after-add=10m",
            "--max-node-provision-time=25m",
        ],
    }
