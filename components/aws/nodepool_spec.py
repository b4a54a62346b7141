"""Pure helpers for GPU node pools: labels, taints, disks, node user data. No Pulumi imports."""

from __future__ import annotations

from typing import Optional

from ..planning.catalog import GpuInstanceType
from ..planning.node import (
    EKS_TO_K8S_EFFECT,
    GPU_PRESENT_LABEL,
    GPU_TAINT_EFFECT_EKS,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    POOL_LABEL,
    uses_nvme_raid,
)

MIME_BOUNDARY = "//servingstack//"


def pool_labels(pool_name: str, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Node labels of a GPU pool. `nvidia.com/gpu.present=true` is what the device plugin chart's
    default node affinity requires (without it the DaemonSet schedules nowhere)."""
    labels = dict(extra or {})
    labels[GPU_PRESENT_LABEL] = "true"
    labels[POOL_LABEL] = pool_name
    return labels


def gpu_taints() -> list[dict[str, str]]:
    """Taints as the EKS node-group API takes them."""
    return [{"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT_EKS}]


def tolerations_for(taints: list[dict[str, str]]) -> list[dict[str, str]]:
    """Kubernetes tolerations that tolerate exactly the given EKS-style taints."""
    return [
        {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": EKS_TO_K8S_EFFECT[t["effect"]]}
        for t in taints
    ]


def data_volume_device(ami_type: str) -> str:
    """Where images and logs live: AL2023's root volume, Bottlerocket's separate data volume."""
    return "/dev/xvdb" if ami_type.startswith("BOTTLEROCKET") else "/dev/xvda"


def node_user_data(ami_type: str, instance: GpuInstanceType, nvme_raid0: bool) -> Optional[str]:
    """MIME multi-part user data that EKS merges with its own bootstrap. On AL2023 with local NVMe,
    a nodeadm NodeConfig assembles the instance store as RAID0 and puts kubelet's ephemeral storage
    (and so every emptyDir model cache) on it. None when nothing needs adding."""
    if not uses_nvme_raid(ami_type, instance, nvme_raid0):
        return None
    return (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"\n'
        "\n"
        f"--{MIME_BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n"
        "\n"
        "---\n"
        "apiVersion: node.eks.aws/v1alpha1\n"
        "kind: NodeConfig\n"
        "spec:\n"
        "  instance:\n"
        "    localStorage:\n"
        "      strategy: RAID0\n"
        "\n"
        f"--{MIME_BOUNDARY}--\n"
    )


def node_role_policy_arns(partition: str = "aws") -> list[str]:
    """The managed policies an EKS node needs, and no more: join the cluster, pull images from ECR,
    and let the VPC CNI (which runs with the node's credentials) manage ENIs."""
    return [
        f"arn:{partition}:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        f"arn:{partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        f"arn:{partition}:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]


def ec2_assume_role_policy() -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
