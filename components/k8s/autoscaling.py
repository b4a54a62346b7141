"""KedaAutoscaler: a pinned KEDA install and a ScaledObject scaling the serving Deployment on its
engine's queue metric from Prometheus."""

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from ..base import Component, KubernetesArgs
from ..planning import catalog
from .autoscaling_spec import KEDA_API, keda_values, scaled_object
from .helm import HelmChart, helm_release
from .monitoring_spec import ServingTarget, selector_labels

KEDA_NAMESPACE = "keda"


class KedaAutoscalerArgs(KubernetesArgs):
    stack: str
    """vllm, triton or nim (picks the queue metric)."""
    namespace: str
    """Namespace of the serving Deployment."""
    service_name: str
    """Name of the serving Service (its series carry service=<name>)."""
    deployment_name: pulumi.Input[str]
    """Name of the Deployment to scale."""
    prometheus_url: str
    """Where KEDA queries Prometheus, e.g. http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090."""
    min_replicas: int
    """Fewest replicas (0 scales to zero)."""
    max_replicas: int
    """Most replicas."""
    queue_threshold: int
    """Waiting requests per replica that add a replica."""
    cooldown_seconds: int
    """Seconds of calm before scaling in (and to zero); longer than a cold start."""
    install_keda: NotRequired[bool]
    """Install the pinned KEDA chart (false: KEDA already runs). Default true."""
    keda_chart_version: NotRequired[str]
    """KEDA chart version. Default the pinned catalog version."""


class KedaAutoscaler(Component):
    """KEDA (pinned) and one ScaledObject targeting the serving Deployment by name."""

    scaled_object_name: pulumi.Output[str]
    """Name of the ScaledObject (the Deployment's name)."""

    def __init__(self, name: str, args: KedaAutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:KedaAutoscaler", name, opts, args)
        waits: list[pulumi.Resource] = []
        if args.get("install_keda", True):
            chart = HelmChart("keda", catalog.KEDA_CHART_REPO,
                              args.get("keda_chart_version", catalog.KEDA_CHART_VERSION), KEDA_NAMESPACE)
            waits.append(helm_release("keda", chart, keda_values(), self.child_opts()))
        doc = pulumi.Output.from_input(args["deployment_name"]).apply(lambda d: scaled_object(
            ServingTarget(args["stack"], args["namespace"], args["service_name"], d, selector_labels(args["stack"], d)),
            args["min_replicas"], args["max_replicas"], args["queue_threshold"], args["cooldown_seconds"],
            args["prometheus_url"]))
        k8s.apiextensions.CustomResource(
            f"{name}-scaledobject", api_version=KEDA_API, kind="ScaledObject", metadata=doc.apply(lambda m: m["metadata"]),
            spec=doc.apply(lambda m: m["spec"]), opts=self.child_opts(depends_on=waits))
        self.scaled_object_name = doc.apply(lambda m: m["metadata"]["name"])
        self.register_outputs({"scaled_object_name": self.scaled_object_name})
