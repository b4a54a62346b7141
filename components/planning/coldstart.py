"""Pure: how long a replica takes from "none running" to "serving", as the autoscaler cooldown and the
scale-to-zero notice use it. A stated estimate (upper bounds), not a measurement. No Pulumi import.

- Node boot: EC2 launch of a GPU instance, AL2023 NVIDIA boot, kubelet join and the device plugin
  advertising nvidia.com/gpu. Published cold starts put node provisioning at ~2-5 minutes (a 966 s
  breakdown with node provisioning 29 % in kaito-project/kaito#2325; ~2-3 min per Karpenter node in
  dirien/what-is-ai-platform-engineering-and-why-should-you-care STARTUP_OPTIMIZATION.md): 300 s.
- Image pull: the serving images are 10-20 GB; the rollout already allows 900 s for the pull on a
  fresh node (k8s/podspec.py PULL_SLACK_SECONDS, the same number).
- Weight load and engine start: the pod's start-up probe budget (planning/resources.py).
"""

from __future__ import annotations

NODE_BOOT_SECONDS = 300
IMAGE_PULL_SECONDS = 900


def cold_start_seconds(startup_budget_seconds: int) -> int:
    """Node boot + image pull + the start-up budget: what the first request after idle may wait."""
    return NODE_BOOT_SECONDS + IMAGE_PULL_SECONDS + startup_budget_seconds
