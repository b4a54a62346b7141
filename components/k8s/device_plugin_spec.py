"""Pure Helm values for the NVIDIA device plugin and DCGM exporter charts. No Pulumi imports."""

from __future__ import annotations

from typing import Optional

import yaml

from ..planning.node import GPU_PRESENT_LABEL, GPU_TAINT_KEY, POOL_LABEL


def gpu_node_affinity(pool_names: list[str]) -> dict:
    """Required node affinity for the GPU pools that need the plugin (Bottlerocket pools bring their own)."""
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
        "matchExpressions": [
            {"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]},
            {"key": POOL_LABEL, "operator": "In", "values": sorted(pool_names)},
        ],
    }]}}}


def gpu_tolerations() -> list[dict]:
    """Tolerate the GPU taint whatever its value, plus CriticalAddonsOnly like the chart's default."""
    return [
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
    ]


def time_slicing_config(replicas: int) -> str:
    """The plugin's sharing config. failRequestsGreaterThanOne: a pod asking for more than one shared
    GPU is refused at admission instead of being handed slices that may all be one GPU (the
    config layer already refuses time-slicing with tensorParallelSize > 1; this fences other pods)."""
    return yaml.safe_dump({"version": "v1", "sharing": {"timeSlicing": {
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}}}, sort_keys=False)


def device_plugin_values(pool_names: list[str], mig_strategy: str = "none", time_slicing_replicas: int = 0,
                         gpu_feature_discovery: bool = False) -> dict:
    values: dict = {
        "affinity": gpu_node_affinity(pool_names),
        "tolerations": gpu_tolerations(),
        "priorityClassName": "system-node-critical",
        "migStrategy": mig_strategy,
        "gfd": {"enabled": gpu_feature_discovery},
        # NFD comes with GFD; its worker tolerates nvidia.com/gpu=present:NoSchedule, our taint.
        "nfd": {"enabled": gpu_feature_discovery},
    }
    if time_slicing_replicas:
        values["config"] = {"map": {"default": time_slicing_config(time_slicing_replicas)}, "default": "default"}
    return values


def dcgm_exporter_values(pool_names: list[str], service_monitor: bool = False,
                         monitor_labels: Optional[dict[str, str]] = None) -> dict:
    """The chart's default tolerations cover only control-plane taints: without ours it runs on no
    GPU node. The ServiceMonitor (the chart's default is on) only with monitoring: it needs the
    Prometheus Operator CRDs, and the chart does not check for them."""
    monitor: dict = {"enabled": service_monitor}
    if service_monitor:
        monitor["interval"] = "15s"
        if monitor_labels:
            monitor["additionalLabels"] = dict(monitor_labels)
    return {
        "affinity": gpu_node_affinity(pool_names),
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "serviceMonitor": monitor,
    }


def tolerates(tolerations: list[dict], taint: dict, effect_k8s: Optional[str] = None) -> bool:
    """Kubernetes toleration matching: does any toleration tolerate this taint?
    `taint` uses Kubernetes spelling (key, value, effect NoSchedule...)."""
    effect = effect_k8s or taint["effect"]
    for t in tolerations:
        if t.get("effect") and t["effect"] != effect:
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if op == "Equal" and t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False
