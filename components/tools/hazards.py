"""The risks in a stack's changes, each with the resource and one line of why: the cluster replaced,
node groups whose nodes are recycled (or that cannot surge to do it), buckets deleted or replaced,
protected resources the engine will refuse to touch, serving outages, endpoint changes, a live
object deleted by a URN change, and policy-pack violations the base did not have. Pure: works on
PlanDiff (plandiff.py), the two outputs.json documents and precomputed policy violations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..planning.node import GPU_PRESENT_LABEL, GPU_TAINT_KEY
from .plandiff import CREATE, DELETE, REPLACE, UPDATE, Change, PlanDiff, resource_name
from .replacement import rule_for

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
BUCKET = "aws:s3/bucket:Bucket"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
KINDS = ("cluster-replaced", "node-recycle", "node-group-no-surge", "bucket-deleted", "bucket-replaced",
         "protected-resource", "serving-outage", "endpoint-change", "delete-of-live-object", "policy-violation")
"""Every hazard kind `servingstack diff` reports (the JSON `kind` values)."""


@dataclass(frozen=True)
class Hazard:
    kind: str
    urn: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "urn": self.urn, "message": self.message}


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str
    label: str
    message: str


def _inputs(r: Optional[dict]) -> dict[str, Any]:
    return (r or {}).get("inputs") or {}


def _protected(r: Optional[dict]) -> bool:
    return bool(((r or {}).get("options") or {}).get("protect"))


def _retained(r: Optional[dict]) -> bool:
    return bool(((r or {}).get("options") or {}).get("retainOnDelete"))


def is_gpu_node_group(inputs: dict[str, Any]) -> bool:
    labels = inputs.get("labels") or {}
    taints = inputs.get("taints") or []
    return (str(labels.get(GPU_PRESENT_LABEL, "")).lower() == "true"
            or any(isinstance(t, dict) and t.get("key") == GPU_TAINT_KEY for t in taints))


def _why(change: Change) -> str:
    paths = change.replace_paths or change.paths
    if change.via == "recreate":
        return f"URN changed from {change.old_urn} with no alias"
    return ", ".join(paths[:4]) + (" ..." if len(paths) > 4 else "") if paths else "a dependency is replaced"


def _verb(change: Change) -> str:
    return {REPLACE: "replaced", DELETE: "deleted", CREATE: "created", UPDATE: "updated"}[change.change]


# ---- per resource --------------------------------------------------------------------------------------

def _cluster(change: Change) -> list[Hazard]:
    if change.type != CLUSTER or change.change not in (REPLACE, DELETE):
        return []
    name = _inputs(change.head or change.base).get("name", resource_name(change.urn))
    return [Hazard("cluster-replaced", change.urn,
                   f"EKS cluster {name} is {_verb(change)} ({_why(change)}): every node group, add-on and "
                   f"Kubernetes object in it goes with it")]


def _node_group(change: Change, diff: PlanDiff) -> list[Hazard]:
    if change.type != NODE_GROUP:
        return []
    inputs = _inputs(change.head or change.base)
    kind = "GPU" if is_gpu_node_group(inputs) else "system"
    size = (inputs.get("scalingConfig") or {}).get("desiredSize")
    types = ", ".join(inputs.get("instanceTypes") or []) or "?"
    name = resource_name(change.urn)
    if change.change in (REPLACE, DELETE):
        how = ("a new node group is created and the old one deleted" if change.change == REPLACE
               else "the node group is deleted")
        return [Hazard("node-recycle", change.urn,
                       f"{kind} node group {name} is {_verb(change)} ({_why(change)}): every {kind} node "
                       f"({size} x {types}) is recycled; {how}")]
    if change.change != UPDATE:
        return []
    rule = rule_for(NODE_GROUP, diff.rules)
    if not rule.rolls_nodes(change.paths):
        return []
    if _launch_template_version_without_new_version(change, diff):
        # A preview shows launchTemplate.version unknown, but the template change creates no new
        # version (e.g. only the template's own tags): apply keeps the version and the nodes.
        return []
    rolling = [p for p in change.paths if any(p.startswith(k) for k in rule.rolls_nodes_on)]
    hazards = [Hazard("node-recycle", change.urn,
                      f"{kind} node group {name}: {', '.join(rolling)} changes, so EKS replaces every {kind} node "
                      f"({size} x {types}) in a rolling update")]
    capacity = str(inputs.get("capacityType") or "")
    if capacity == "CAPACITY_BLOCK":
        hazards.append(Hazard("node-group-no-surge", change.urn,
                              f"node group {name} runs on a capacity block: a rolling update cannot add surge "
                              f"nodes, so nodes are drained before their replacements exist"))
    return hazards


def _launch_template_version_without_new_version(change: Change, diff: PlanDiff) -> bool:
    """The node group's launchTemplate.version is only unknown because its template changed in a way
    that creates no new version (e.g. the template's own tags)."""
    rolling = {p for p in change.paths if p.startswith(("launchTemplate.version", "releaseVersion", "version"))}
    if rolling != {"launchTemplate.version"} or "launchTemplate.version" not in change.unknown:
        return False
    lt_rule = rule_for(LAUNCH_TEMPLATE, diff.rules)
    templates = [c for c in diff.changes.values() if c.type == LAUNCH_TEMPLATE and c.change == UPDATE
                 and c.urn in ((change.head or {}).get("dependsOn") or [])]
    return bool(templates) and not any(lt_rule.creates_new_version(t.paths) for t in templates)


def _bucket(change: Change) -> list[Hazard]:
    if change.type != BUCKET or change.change not in (REPLACE, DELETE):
        return []
    r = change.base or change.head
    name = _inputs(r).get("bucket") or resource_name(change.urn)
    kind = "bucket-deleted" if change.change == DELETE else "bucket-replaced"
    if _protected(change.base) or _protected(change.head):
        fate = ("it is protected: `pulumi up` stops with an error (\"resource is protected\") until protect is "
                "removed; without protect the bucket and its objects would be deleted")
    elif _retained(r):
        fate = "retainOnDelete keeps the old bucket and its objects in AWS, no longer managed by the stack"
    else:
        fate = "the old bucket and every object in it are deleted"
    what = "replaced" if change.change == REPLACE else "deleted"
    return [Hazard(kind, change.urn, f"S3 bucket {name} is {what} ({_why(change)}): {fate}")]


def _protected_resource(change: Change) -> list[Hazard]:
    if change.type == BUCKET or change.change not in (REPLACE, DELETE):
        return []
    if not (_protected(change.base) or (change.change == REPLACE and _protected(change.head))):
        return []
    return [Hazard("protected-resource", change.urn,
                   f"{resource_name(change.urn)} ({change.type}) is protected and would be {_verb(change)} "
                   f"({_why(change)}): `pulumi up` stops with an error until protect is removed")]


def _serving(change: Change) -> list[Hazard]:
    if change.type != DEPLOYMENT or change.change == CREATE:
        return []
    inputs = _inputs(change.head or change.base)
    name = (inputs.get("metadata") or {}).get("name", resource_name(change.urn))
    if change.change == DELETE:
        return [Hazard("serving-outage", change.urn, f"Deployment {name} is deleted: its pods stop")]
    if change.change == REPLACE:
        if change.via == "recreate":
            old = (_inputs(change.base).get("metadata") or {}).get("name")
            return [Hazard("serving-outage", change.urn,
                           f"Deployment {old} is replaced by {name} (URN changed): every replica is replaced at "
                           f"once; the new pods must pull the image and load the model, on free GPUs beside the "
                           f"old pods (or the create waits until its timeout), before the old Deployment is deleted")]
        old = (_inputs(change.base).get("metadata") or {}).get("name", name)
        if old != name and not ((change.head or {}).get("options") or {}).get("deleteBeforeReplace"):
            return [Hazard("serving-outage", change.urn,
                           f"Deployment {old} is replaced by {name} ({_why(change)}): the new pods start on free GPUs "
                           f"beside the old ones, which are deleted once the new ones are ready (the pool holds a "
                           f"second set)")]
        if old != name:
            return [Hazard("serving-outage", change.urn,
                           f"Deployment {old} is replaced by {name} ({_why(change)}) with deleteBeforeReplace (no "
                           f"room for a second set): every replica is down until the new pods are ready")]
        return [Hazard("serving-outage", change.urn,
                       f"Deployment {name} is replaced ({_why(change)}): the provider deletes it before creating "
                       f"the new one (same name), so every replica is down until the new pods are ready")]
    if not any(p.startswith("spec.template") for p in change.paths):
        return []
    spec = inputs.get("spec") or {}
    replicas = spec.get("replicas", 1)
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    if strategy.get("type") == "Recreate":
        return [Hazard("serving-outage", change.urn,
                       f"Deployment {name}: pod template changes with strategy Recreate: all {replicas} replicas "
                       f"stop before the new ones start")]
    if replicas == 1 and str(rolling.get("maxSurge", "25%")) in ("0", "0%"):
        return [Hazard("serving-outage", change.urn,
                       f"Deployment {name}: pod template changes with a single replica and maxSurge 0: the pod "
                       f"stops before its replacement is ready (image pull and model load)")]
    return []


def _service(change: Change) -> list[Hazard]:
    if change.type != SERVICE or change.change not in (REPLACE, DELETE):
        return []
    name = (_inputs(change.head or change.base).get("metadata") or {}).get("name", resource_name(change.urn))
    return [Hazard("endpoint-change", change.urn,
                   f"Service {name} is {_verb(change)} ({_why(change)}): its cluster IP changes and the endpoint "
                   f"has no backend while it is recreated")]


def _live_objects(diff: PlanDiff) -> list[Hazard]:
    out = []
    for old, new in diff.same_identity_recreations():
        meta = _inputs(new).get("metadata") or {}
        what = (f"{_inputs(new).get('kind')} {meta.get('namespace') + '/' if meta.get('namespace') else ''}"
                f"{meta.get('name')}" if meta else resource_name(new["urn"]))
        out.append(Hazard("delete-of-live-object", new["urn"],
                          f"{what} keeps its name but moves from {old['urn']} to a new URN with no alias: the engine "
                          f"creates the new resource (adopting or colliding with the live object), then deletes the "
                          f"old URN, which deletes the live object"))
    return out


# ---- the stack ------------------------------------------------------------------------------------------

def endpoint_hazards(base_outputs: dict[str, Any], head_outputs: dict[str, Any], diff: PlanDiff) -> list[Hazard]:
    before, after = base_outputs.get("endpoint"), head_outputs.get("endpoint")
    if not before or not after or before == after:
        return []
    service = next((c.urn for c in diff.changes.values() if c.type == SERVICE), "")
    return [Hazard("endpoint-change", service, f"the serving endpoint changes from {before} to {after}: "
                                               f"clients must be reconfigured")]


def policy_hazards(base: Iterable[Violation], head: Iterable[Violation]) -> list[Hazard]:
    known = {(v.policy, v.label) for v in base}
    return [Hazard("policy-violation", v.urn, f"policy {v.policy} fails on {v.label} (not in the base): {v.message}")
            for v in head if (v.policy, v.label) not in known]


def stack_hazards(diff: PlanDiff, base_outputs: dict[str, Any], head_outputs: dict[str, Any],
                  base_violations: Iterable[Violation] = (), head_violations: Iterable[Violation] = ()) -> list[Hazard]:
    hazards: list[Hazard] = []
    for change in diff.sorted_changes():
        hazards += _cluster(change)
        hazards += _node_group(change, diff)
        hazards += _bucket(change)
        hazards += _protected_resource(change)
        hazards += _serving(change)
        hazards += _service(change)
    hazards += _live_objects(diff)
    hazards += endpoint_hazards(base_outputs, head_outputs, diff)
    hazards += policy_hazards(base_violations, head_violations)
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for h in hazards:
        if (h.kind, h.urn, h.message) not in seen:
            seen.add((h.kind, h.urn, h.message))
            unique.append(h)
    return unique


def gpu_totals(outputs: dict[str, Any]) -> tuple[Optional[int], Optional[int]]:
    """(GPUs, GPU nodes) from outputs.json's gpuSummary."""
    gpu = outputs.get("gpuSummary") or {}
    if not gpu:
        return None, None
    gpus = int(gpu.get("replicas") or 0) * int(gpu.get("gpusPerReplica") or 0)
    return gpus, int(gpu.get("gpuNodes") or 0)
