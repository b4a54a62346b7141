"""The one pod-spec contract vLLM, Triton and NIM share. Pure: builds Kubernetes manifests as dicts.

Every serving stack gets the same GPU request = limit = tensor-parallel size, GPU tolerations and
node selection, a memory-backed /dev/shm sized for tensor parallelism (counted in the memory limit),
a model cache on the node's (NVMe-backed where available) ephemeral storage, start-up/readiness/
liveness probes with a start-up budget from the model's size, a restricted security context, a
rolling update that surges one pod only where the pool has a free slot, a preStop drain and a grace
period that let in-flight streams finish, topology spread and a PodDisruptionBudget (that never
blocks evicting an unhealthy pod) for >= 2 replicas, and a NetworkPolicy that admits only
configured namespaces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional

from ..planning.resources import EPHEMERAL_HEADROOM_GIB, SHUTDOWN_SECONDS

SERVING_PORT = 8000
#: Time to pull a multi-GB serving image onto a fresh node, on top of the start-up budget.
PULL_SLACK_SECONDS = 900
PROBE_PERIOD_SECONDS = 10
COMPONENT = "llm-server"
TENSOR_PARALLEL_ANNOTATION = "servingstack.io/tensor-parallel-size"


@dataclass(frozen=True)
class Probes:
    ready_path: str
    live_path: str
    port: int = SERVING_PORT
    startup_seconds: int = 1840


@dataclass(frozen=True)
class ServingWorkload:
    """Everything the shared builder needs; each stack fills in only what is specific to it."""

    name: str
    """Deployment name (DNS label)."""
    namespace: str
    stack: str
    model_slug: str
    image: str
    container_name: str
    args: list[str]
    probes: Probes
    gpus: int
    replicas: int
    cpu: float
    memory_gib: int
    shm_gib: int
    cache_mount_path: str
    cache_size_gib: int
    service_account: str
    tolerations: list[dict]
    node_selector: dict[str, str]
    command: Optional[list[str]] = None
    env: list[dict] = field(default_factory=list)
    ports: list[dict] = field(default_factory=lambda: [{"name": "http", "containerPort": SERVING_PORT}])
    extra_volumes: list[dict] = field(default_factory=list)
    extra_mounts: list[dict] = field(default_factory=list)
    image_pull_secrets: list[str] = field(default_factory=list)
    run_as_user: int = 10001
    hard_spread: bool = False
    checkov_waivers: dict[str, str] = field(default_factory=dict)
    """checkov check id -> reason, written as `checkov.io/skipN` annotations on the Deployment."""
    metrics_path: str = "/metrics"
    metrics_port: int = SERVING_PORT
    max_surge: int = 0
    """Pods above `replicas` during a rolling update: 1 only where the pool has a free slot."""
    drain_seconds: int = 0
    """preStop delay before SIGTERM, for in-flight streams (0: no preStop hook)."""
    pod_annotations: dict[str, str] = field(default_factory=dict)
    """Extra pod-template annotations (a change rolls the pods, e.g. a config content hash)."""


def dns_label(text: str, limit: int = 63) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", label)[:limit].rstrip("-")


def selector_labels(w: ServingWorkload) -> dict[str, str]:
    return {"app.kubernetes.io/name": w.stack, "app.kubernetes.io/instance": w.name}


def workload_labels(w: ServingWorkload) -> dict[str, str]:
    return {**selector_labels(w), "app.kubernetes.io/component": COMPONENT,
            "app.kubernetes.io/part-of": "servingstack", "servingstack.io/model": w.model_slug}


def resources(w: ServingWorkload) -> dict:
    """GPU request = limit = tensor-parallel size. The memory-backed /dev/shm counts against the
    container's memory limit, so the limit is the working set plus shm; requests equal limits
    (Guaranteed QoS: a serving pod should be the last evicted)."""
    memory = f"{w.memory_gib + w.shm_gib}Gi"
    cpu = _cpu(w.cpu)
    ephemeral = f"{w.cache_size_gib + EPHEMERAL_HEADROOM_GIB}Gi"
    amounts = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": str(w.gpus), "ephemeral-storage": ephemeral}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _cpu(cores: float) -> str:
    return str(int(cores)) if float(cores).is_integer() else f"{int(cores * 1000)}m"


def termination_grace_seconds(drain_seconds: int) -> int:
    """The drain (preStop) plus the engine's own shutdown after SIGTERM."""
    return drain_seconds + SHUTDOWN_SECONDS


def replacement_seconds(startup_seconds: int, drain_seconds: int) -> int:
    """One replica replaced: the old pod drains and frees its GPUs (with a single surge slot the
    next new pod waits for them too), the new one pulls its image and loads within its budget."""
    return startup_seconds + PULL_SLACK_SECONDS + termination_grace_seconds(drain_seconds)


def rollout_timeout_minutes(replicas: int, startup_seconds: int, drain_seconds: int = 0) -> int:
    """How long `pulumi up` waits for a rollout: replicas are replaced one at a time (maxSurge 1 with
    maxUnavailable 0, or maxSurge 0 with maxUnavailable 1), each as long as replacement_seconds."""
    return math.ceil(max(1, replicas) * replacement_seconds(startup_seconds, drain_seconds) / 60)


def rolling_update(max_surge: int) -> dict:
    """Surge one pod where a free slot exists (no capacity lost during the rollout); otherwise
    replace one at a time, taking one replica down (the only way without a spare GPU)."""
    if max_surge > 0:
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": 0}}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def probes(p: Probes) -> dict:
    """Start-up probe covers loading; liveness only starts after it, so a slow load is never killed."""
    startup_failures = max(1, math.ceil(p.startup_seconds / PROBE_PERIOD_SECONDS))
    http = lambda path: {"httpGet": {"path": path, "port": p.port}}  # noqa: E731
    return {
        "startupProbe": {**http(p.ready_path), "periodSeconds": PROBE_PERIOD_SECONDS, "timeoutSeconds": 5,
                         "failureThreshold": startup_failures},
        "readinessProbe": {**http(p.ready_path), "periodSeconds": PROBE_PERIOD_SECONDS, "timeoutSeconds": 5,
                           "failureThreshold": 3},
        "livenessProbe": {**http(p.live_path), "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
    }


def container_security_context() -> dict:
    return {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security_context(uid: int) -> dict:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def volumes(w: ServingWorkload) -> tuple[list[dict], list[dict]]:
    vols = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{w.shm_gib}Gi"}},
        # On NVMe pools kubelet's ephemeral storage is the RAID0 array, so this emptyDir is NVMe.
        {"name": "model-cache", "emptyDir": {"sizeLimit": f"{w.cache_size_gib}Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}},
        *w.extra_volumes,
    ]
    mounts = [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "model-cache", "mountPath": w.cache_mount_path},
        {"name": "tmp", "mountPath": "/tmp"},
        *w.extra_mounts,
    ]
    return vols, mounts


def affinity_and_spread(w: ServingWorkload) -> dict:
    """For >= 2 replicas: hard = one replica per node (required anti-affinity) and zone spread
    preferred; soft = spread over nodes when possible, packing allowed."""
    if w.replicas < 2:
        return {}
    selector = {"matchLabels": selector_labels(w)}
    if w.hard_spread:
        return {
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}]}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                           "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector}],
        }
    return {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                           "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector}]}


def deployment(w: ServingWorkload) -> dict:
    vols, mounts = volumes(w)
    container = {
        "name": w.container_name,
        "image": w.image,
        "imagePullPolicy": "IfNotPresent",
        **({"command": w.command} if w.command else {}),
        "args": w.args,
        "env": w.env,
        "ports": [{**p, "protocol": "TCP"} for p in w.ports],
        "resources": resources(w),
        **probes(w.probes),
        # Removed from the Service at once, the pod keeps serving its in-flight streams this long
        # before SIGTERM (none of the three engines drains on SIGTERM within the grace period).
        **({"lifecycle": {"preStop": {"exec": {"command": ["sleep", str(w.drain_seconds)]}}}}
           if w.drain_seconds else {}),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }
    annotations = {f"checkov.io/skip{i}": f"{check}={reason}"
                   for i, (check, reason) in enumerate(sorted(w.checkov_waivers.items()), start=1)}
    annotations[TENSOR_PARALLEL_ANNOTATION] = str(w.gpus)  # read by policy k8s-gpu-tensor-parallel
    pod_annotations = {"prometheus.io/scrape": "true", "prometheus.io/path": w.metrics_path,
                       "prometheus.io/port": str(w.metrics_port), **w.pod_annotations}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": workload_labels(w),
                     **({"annotations": annotations} if annotations else {})},
        "spec": {
            "replicas": w.replicas,
            # Loading a large model is progress too: report a stalled rollout only after the budget.
            "progressDeadlineSeconds": replacement_seconds(w.probes.startup_seconds, w.drain_seconds),
            "selector": {"matchLabels": selector_labels(w)},
            "strategy": rolling_update(w.max_surge),
            "template": {
                "metadata": {"labels": workload_labels(w), "annotations": pod_annotations},
                "spec": {
                    "serviceAccountName": w.service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(w.run_as_user),
                    "nodeSelector": dict(w.node_selector),
                    "tolerations": list(w.tolerations),
                    **affinity_and_spread(w),
                    **({"imagePullSecrets": [{"name": n} for n in w.image_pull_secrets]}
                       if w.image_pull_secrets else {}),
                    "terminationGracePeriodSeconds": termination_grace_seconds(w.drain_seconds),
                    "containers": [container],
                    "volumes": vols,
                },
            },
        },
    }


def service(w: ServingWorkload, service_name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name, "namespace": w.namespace, "labels": workload_labels(w)},
        "spec": {"type": "ClusterIP", "selector": selector_labels(w),
                 "ports": [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": "TCP"}
                           for p in w.ports]},
    }


def pod_disruption_budget(w: ServingWorkload) -> Optional[dict]:
    if w.replicas < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": workload_labels(w)},
        # A crash-looping or still-loading replica must not block a node drain (KEP-3017, GA 1.31).
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(w)},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }


def network_policy(w: ServingWorkload, allowed_namespaces: list[str],
                   monitoring_namespace: Optional[str] = None) -> dict:
    """Only pods of the serving namespace and the allowed namespaces reach the serving ports; with a
    monitoring namespace, its pods (the Prometheus scraper) reach the metrics port, and only that."""
    namespaces = sorted({w.namespace, *allowed_namespaces})
    scrape = ([{"from": [{"namespaceSelector": {"matchExpressions": [
                  {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [monitoring_namespace]}]}}],
                "ports": [{"protocol": "TCP", "port": w.metrics_port}]}]
              if monitoring_namespace else [])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": workload_labels(w)},
        "spec": {
            "podSelector": {"matchLabels": selector_labels(w)},
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [{"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}}],
                "ports": [{"protocol": "TCP", "port": p["containerPort"]} for p in w.ports],
            }, *scrape],
        },
    }


def service_account(w: ServingWorkload, annotations: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": w.service_account, "namespace": w.namespace, "labels": workload_labels(w),
                     **({"annotations": annotations} if annotations else {})},
        "automountServiceAccountToken": False,
    }
