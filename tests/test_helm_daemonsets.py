"""Issue 12: every DaemonSet the device plugin and DCGM exporter releases render (Helm's engine, pinned
chart sources: tests/helm_render.py) would run on the GPU pools it serves: its pod template tolerates
each pool's taints and its nodeSelector and required node affinity match the pool's node labels, as
recorded in the node groups' inputs. For every shipped stack and for variants (GPU feature discovery
with NFD, MIG, time-slicing, a Bottlerocket pool). Other charts' DaemonSets (the observability stack's node
exporter) are held to the same rule; an unaccounted DaemonSet fails the test."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import STACK_NAMES, set_key, stack_config, synth, synth_config
from helm_render import recorded_releases, render_recorded
from servingstack.planning.node import EKS_TO_K8S_EFFECT, GPU_PRESENT_LABEL

#: Labels EKS and the kubelet put on every managed node besides the node group's own
#: (kubernetes.io/docs/reference/labels-annotations-taints; EKS managed node group labels).
def _well_known(ng: dict[str, Any]) -> dict[str, str]:
    return {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": ng["instanceTypes"][0],
            "eks.amazonaws.com/nodegroup": ng.get("nodeGroupName", ""),
            "eks.amazonaws.com/capacityType": ng.get("capacityType", "ON_DEMAND")}


def gpu_pools(result) -> dict[str, dict[str, Any]]:
    """pool name -> {labels, taints (Kubernetes spelling), ami_type} of every recorded GPU node group."""
    pools = {}
    for r in result.of_type("aws:eks/nodeGroup:NodeGroup"):
        ng = r.inputs
        if ng.get("labels", {}).get(GPU_PRESENT_LABEL) != "true":
            continue
        pools[ng["labels"]["servingstack.io/pool"]] = {
            "labels": {**_well_known(ng), **ng["labels"]},
            "taints": [{"key": t["key"], "value": t.get("value", ""), "effect": EKS_TO_K8S_EFFECT[t["effect"]]}
                       for t in ng.get("taints", [])],
            "ami_type": ng["amiType"],
        }
    return pools


def _expression_matches(expr: dict, labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values", [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt"):
        return key in labels and (int(labels[key]) > int(values[0]) if op == "Gt" else int(labels[key]) < int(values[0]))
    raise AssertionError(f"unknown operator {op}")


def _tolerated(taint: dict, tolerations: list[dict]) -> bool:
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint["key"]:
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint["value"]:
            return True
    return False


def why_not_scheduled(pod: dict, pool: dict) -> list[str]:
    """Reasons the kube-scheduler would not place this pod template on a node of the pool."""
    reasons = []
    labels = pool["labels"]
    for key, value in (pod.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            reasons.append(f"nodeSelector {key}={value}")
    required = (((pod.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")
    if required and not any(all(_expression_matches(e, labels) for e in term.get("matchExpressions", []))
                            for term in required):
        reasons.append(f"required node affinity {required}")
    for taint in pool["taints"]:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not _tolerated(taint, pod.get("tolerations")):
            reasons.append(f"taint {taint['key']}={taint['value']}:{taint['effect']} not tolerated")
    return reasons


#: Rendered DaemonSet name (release-prefixed) fragment -> which GPU pools it must run on.
#: "plugin": pools running the device plugin (AL2023 NVIDIA); "all": every GPU pool.
EXPECTED = {"nvidia-device-plugin": "plugin", "gpu-feature-discovery": "plugin", "node-feature-discovery-worker": "plugin",
            "dcgm-exporter": "all",
            # kube-prometheus-stack's node exporter (observability): node metrics of the GPU nodes too.
            "prometheus-node-exporter": "all"}
#: Rendered only to wait for a node label that MPS sharing sets; no servingstack config enables MPS.
NOT_FOR_GPU_POOLS = ("mps-control-daemon",)


def _kind_of(name: str) -> str:
    for fragment in sorted(EXPECTED, key=len, reverse=True):
        if fragment in name:
            return fragment
    raise AssertionError(f"rendered DaemonSet {name} is not accounted for")


def unschedulable(result) -> list[str]:
    pools = gpu_pools(result)
    assert pools, "no GPU pool recorded"
    problems, seen = [], set()
    for _, inputs in recorded_releases(result):
        rendered = render_recorded(inputs)
        for ds in rendered.of_kind("DaemonSet"):
            name = ds["metadata"]["name"]
            if any(f in name for f in NOT_FOR_GPU_POOLS):
                continue
            kind = _kind_of(name)
            seen.add(kind)
            targets = [p for p, pool in pools.items()
                       if EXPECTED[kind] == "all" or not pool["ami_type"].startswith("BOTTLEROCKET")]
            for pool_name in targets:
                for reason in why_not_scheduled(ds["spec"]["template"]["spec"], pools[pool_name]):
                    problems.append(f"{name} on pool {pool_name}: {reason}")
    assert "nvidia-device-plugin" in seen or all(p["ami_type"].startswith("BOTTLEROCKET") for p in pools.values())
    return problems


def _dev(**keys: Any) -> dict:
    cfg = stack_config("dev")
    for key, value in keys.items():
        set_key(cfg, key, value)
    return cfg


VARIANTS = {
    "gfd-nfd": _dev(**{"servingstack:devicePlugin.gpuFeatureDiscovery": True}),
    "mig-mixed": _dev(**{"servingstack:devicePlugin.migStrategy": "mixed"}),
    "time-slicing": _dev(**{"servingstack:devicePlugin.timeSlicingReplicas": 4,
                            "servingstack:serving.tensorParallelSize": 1,
                            "servingstack:serving.model": "meta-llama/Llama-3.1-8B-Instruct"}),
    "bottlerocket-extra-pool": _dev(**{"servingstack:extraGpuNodePools": [
        {"name": "br", "instanceType": "g6e.xlarge", "amiType": "BOTTLEROCKET_x86_64_NVIDIA", "desiredSize": 1}]}),
}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_shipped_daemonsets_run_on_every_gpu_pool(stack):
    assert not unschedulable(synth(stack))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_daemonsets_run_on_every_gpu_pool(variant):
    result = synth_config(VARIANTS[variant])
    if variant == "gfd-nfd":
        names = [ds["metadata"]["name"] for _, i in recorded_releases(result) for ds in render_recorded(i).of_kind("DaemonSet")]
        assert any("gpu-feature-discovery" in n for n in names) and any("node-feature-discovery-worker" in n for n in names)
    if variant == "bottlerocket-extra-pool":
        assert set(gpu_pools(result)) == {"gpu", "br"}
    assert not unschedulable(result)


def test_the_check_fails_for_a_daemonset_that_would_not_schedule():
    """The oracle can fail: without our tolerations and affinity the DCGM exporter's chart defaults
    keep it off the tainted GPU nodes; a selector for another pool does not match."""
    result = synth("prod")
    pools = gpu_pools(result)
    (dcgm,) = [i for _, i in recorded_releases(result) if i["chart"] == "dcgm-exporter"]
    defaults = render_recorded({**dcgm, "values": {"serviceMonitor": {"enabled": False}}})
    (ds,) = defaults.of_kind("DaemonSet")
    assert any("not tolerated" in r for r in why_not_scheduled(ds["spec"]["template"]["spec"], pools["gpu"]))
    wrong = render_recorded({**dcgm, "values": {**dcgm["values"], "nodeSelector": {"servingstack.io/pool": "other"}}})
    (ds,) = wrong.of_kind("DaemonSet")
    assert why_not_scheduled(ds["spec"]["template"]["spec"], pools["gpu"]) == ["nodeSelector servingstack.io/pool=other"]
