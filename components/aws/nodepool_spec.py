"""Pure helpers for GPU node pools: labels, taints, disks, node user data. No Pulumi imports."""

from __future__ import annotations

import math
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


def policy_name(arn: str) -> str:
    """The name a policy attachment is keyed by: the policy's own name, never a list index."""
    return arn.rsplit("/", 1)[-1]


#: Per node replaced by a managed node-group update (awsdocs/amazon-eks-user-guide
#: latest/ug/nodes/managed-node-update-behavior.adoc): EKS waits up to 15 minutes for the pods to
#: leave before failing with PodEvictionFailure, then 60 s after cordoning; a GPU node then boots
#: and joins (planned 10 minutes) and the serving pods start within their start-up budget.
EVICTION_WAIT_MINUTES = 15
CORDON_WAIT_MINUTES = 1
NODE_BOOT_MINUTES = 10
PROVIDER_DEFAULT_TIMEOUT_MINUTES = 60


def update_timeout_minutes(max_size: int, max_unavailable: int, startup_seconds: int) -> int:
    """How long a `pulumi up` waits for a node-group update (new AMI release or launch template):
    every batch of `max_unavailable` nodes drained, replaced and serving again. Never below the
    provider's 60-minute default."""
    batches = math.ceil(max(1, max_size) / max(1, max_unavailable))
    per_batch = EVICTION_WAIT_MINUTES + CORDON_WAIT_MINUTES + NODE_BOOT_MINUTES + math.ceil(startup_seconds / 60)
    return max(PROVIDER_DEFAULT_TIMEOUT_MINUTES, batches * per_batch)


def instance_tags(fixed: dict[str, str], name: str, pool: str) -> dict[str, str]:
    """Tags a launch template puts on instances and volumes: only values fixed for the stack's life
    (never `servingstack:tags`), because any change to a launch template's contents makes a new
    version and EKS recycles every node of the group."""
    return {**fixed, "Name": name, "servingstack.io/pool": pool}
