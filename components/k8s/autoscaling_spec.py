"""Pure: the KEDA ScaledObject that scales a serving Deployment on its engine's queue, read from
Prometheus, and the KEDA chart values. No Pulumi imports.

KEDA's `cooldownPeriod` applies only to scaling to zero; scaling in between 1 and maxReplicas is the
HPA's, so its scale-down stabilization window gets the same cooldown, and scale-down removes one pod
per period. Once KEDA owns the Deployment the program stops managing `spec.replicas` (the Deployment
ignores changes to it) so a `pulumi up` never resets what the autoscaler chose, and server-side apply
does not conflict with the HPA's writes to the scale subresource (ignoreChanges is the provider's
documented answer: pulumi/pulumi-kubernetes#2215, fixed for unrelated changes in #2542).
"""

from __future__ import annotations

from ..planning import metrics
from .monitoring_spec import ServingTarget

KEDA_API = "keda.sh/v1alpha1"
POLLING_SECONDS = 15


def scaled_object(t: ServingTarget, min_replicas: int, max_replicas: int, queue_threshold: int,
                  cooldown_seconds: int, prometheus_url: str) -> dict:
    """A ScaledObject on the Deployment: one replica per `queue_threshold` waiting requests
    (KEDA's prometheus scaler, AverageValue), between min and max replicas."""
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": {"name": t.deployment, "namespace": t.namespace,
                     "labels": {**t.selector_labels, "app.kubernetes.io/part-of": "servingstack"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": t.deployment},
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "pollingInterval": POLLING_SECONDS,
            "cooldownPeriod": cooldown_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": cooldown_seconds,
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]},
                "scaleUp": {"stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            }}},
            "triggers": [_trigger("queue", metrics.queue_query(t.stack, t.namespace, t.service), queue_threshold,
                                  prometheus_url),
                         *([_trigger("activity", metrics.activity_query(t.stack, t.namespace, t.service),
                                     ACTIVITY_THRESHOLD, prometheus_url)] if min_replicas == 0 else [])],
        },
    }


#: With minReplicas 0, KEDA scales to zero once no trigger has been active for cooldownPeriod. The
#: queue alone is inactive while a replica serves light traffic (nothing waits), so a second
#: trigger counts requests in flight; its huge target never asks for more than one replica.
ACTIVITY_THRESHOLD = 1_000_000


def _trigger(name: str, query: str, threshold: int, prometheus_url: str) -> dict:
    return {
        "type": "prometheus", "name": name, "metricType": "AverageValue",
        "metadata": {
            "serverAddress": prometheus_url, "query": query, "threshold": str(threshold),
            # No series (no replica scraped yet, or none running): an idle queue, not an error.
            "ignoreNullValues": "true",
        },
    }


def keda_values() -> dict:
    """KEDA on the system nodes with its CRDs (the chart installs them as templates)."""
    return {"crds": {"install": True}}
