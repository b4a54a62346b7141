"""Pure facts about GPU nodes that every layer shares: the labels that select a GPU pool, the taint
that keeps other pods off it, and when its local NVMe backs ephemeral storage. No Pulumi import.

The node pools set these, the device plugin and DCGM exporter schedule by them, and the serving
pods select and tolerate them by default: one definition, so the layers cannot drift apart."""

from __future__ import annotations

from .catalog import GpuInstanceType

GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
"""Node label the device plugin chart's default node affinity requires (value "true")."""
POOL_LABEL = "servingstack.io/pool"
"""Node label naming the servingstack GPU pool a node belongs to."""
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
#: EKS API spelling; Kubernetes spells the same effect "NoSchedule".
GPU_TAINT_EFFECT_EKS = "NO_SCHEDULE"
GPU_TAINT_EFFECT_K8S = "NoSchedule"
EKS_TO_K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
                     "NO_EXECUTE": "NoExecute"}


def uses_nvme_raid(ami_type: str, instance: GpuInstanceType, enabled: bool) -> bool:
    """Whether the instance-store NVMe is assembled as RAID0 for kubelet's ephemeral storage: AL2023
    only (nodeadm's localStorage strategy), and only on instance types with local NVMe."""
    return enabled and instance.has_nvme and ami_type.startswith("AL2023")
