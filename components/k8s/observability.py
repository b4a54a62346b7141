"""MonitoringStack (a pinned kube-prometheus-stack, or an existing Prometheus Operator) and
ServingObservability (the serving stack's ServiceMonitor, alerts and dashboards)."""

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from ..base import Component, KubernetesArgs
from ..planning import catalog
from .dashboards import dashboard_configmap, gpu_dashboard, serving_dashboard
from .helm import HelmChart, helm_release
from .monitoring_spec import (
    MONITORING_API,
    ServingTarget,
    Thresholds,
    kube_prometheus_stack_values,
    prometheus_rule,
    selector_labels,
    service_monitor,
)

KPS_RELEASE = "kube-prometheus-stack"


class MonitoringStackArgs(KubernetesArgs):
    mode: str
    """install (a pinned kube-prometheus-stack) or existing (a Prometheus Operator already runs)."""
    namespace: NotRequired[str]
    """Namespace of Prometheus and Grafana. Default "monitoring"."""
    chart_version: NotRequired[str]
    """kube-prometheus-stack chart version (install). Default the pinned catalog version."""
    retention: NotRequired[str]
    """Prometheus retention (install). Default "15d"."""


class MonitoringStack(Component):
    """kube-prometheus-stack (Prometheus, Alertmanager, Grafana, node exporter, kube-state-metrics)
    selecting monitors and rules from every namespace, or nothing for an existing operator. Objects
    using the operator's CRDs (ServiceMonitor, PrometheusRule) must wait for `ready`."""

    namespace: pulumi.Output[str]
    """Namespace of Prometheus and Grafana."""
    installed: pulumi.Output[bool]
    """Whether kube-prometheus-stack was installed."""

    def __init__(self, name: str, args: MonitoringStackArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:MonitoringStack", name, opts, args)
        namespace = args.get("namespace", "monitoring")
        self.ready: list[pulumi.Resource] = []
        if args["mode"] == "install":
            chart = HelmChart(KPS_RELEASE, catalog.KUBE_PROMETHEUS_STACK_CHART_REPO,
                              args.get("chart_version", catalog.KUBE_PROMETHEUS_STACK_CHART_VERSION), namespace)
            self.ready.append(helm_release(KPS_RELEASE, chart, kube_prometheus_stack_values(
                args.get("retention", "15d")), self.child_opts()))
        self.namespace = pulumi.Output.from_input(namespace)
        self.installed = pulumi.Output.from_input(args["mode"] == "install")
        self.register_outputs({"namespace": self.namespace, "installed": self.installed})


class ServingObservabilityArgs(KubernetesArgs):
    stack: str
    """vllm, triton or nim."""
    namespace: str
    """Namespace of the serving objects."""
    service_name: str
    """Name of the serving Service."""
    deployment_name: pulumi.Input[str]
    """Name of the serving Deployment (the serving component's `deployment_name`)."""
    monitoring_namespace: str
    """Namespace of Prometheus and Grafana (dashboards go there)."""
    thresholds: dict[str, float]
    """Alert thresholds, the fields of monitoring_spec.Thresholds: queue_waiting, queue_minutes,
    kv_cache_usage (fraction), ttft_p99_seconds, gpu_memory_fraction, no_replica_minutes, gpu_alerts (0/1)."""
    monitor_labels: NotRequired[dict[str, str]]
    """Labels for the ServiceMonitor and PrometheusRule (an existing Prometheus's selectors). Default {}."""
    gpu_dashboard: NotRequired[bool]
    """Also ship the GPU (DCGM) dashboard. Default true."""


class ServingObservability(Component):
    """A ServiceMonitor on the serving Service's metrics endpoint, the PrometheusRule of its alerts,
    and Grafana dashboards (serving, GPUs) as sidecar-loaded ConfigMaps."""

    alerts: pulumi.Output[list[str]]
    """Names of the alerts in the PrometheusRule."""

    def __init__(self, name: str, args: ServingObservabilityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:ServingObservability", name, opts, args)
        child = self.child_opts()
        labels = dict(args.get("monitor_labels") or {})
        target = pulumi.Output.from_input(args["deployment_name"]).apply(lambda d: ServingTarget(
            args["stack"], args["namespace"], args["service_name"], d, selector_labels(args["stack"], d)))

        def custom(res: str, kind: str, doc: pulumi.Output) -> None:
            k8s.apiextensions.CustomResource(res, api_version=MONITORING_API, kind=kind,
                                             metadata=doc.apply(lambda m: m["metadata"]),
                                             spec=doc.apply(lambda m: m["spec"]), opts=child)

        custom(f"{name}-servicemonitor", "ServiceMonitor", target.apply(lambda t: service_monitor(t, labels)))
        th = args["thresholds"]
        thresholds = Thresholds(int(th["queue_waiting"]), int(th["queue_minutes"]), float(th["kv_cache_usage"]),
                                float(th["ttft_p99_seconds"]), float(th["gpu_memory_fraction"]),
                                int(th["no_replica_minutes"]), bool(th.get("gpu_alerts", 1)))
        rule = target.apply(lambda t: prometheus_rule(t, thresholds, labels))
        custom(f"{name}-alerts", "PrometheusRule", rule)
        boards = [("servingstack-serving", target.apply(serving_dashboard))]
        if args.get("gpu_dashboard", True):
            boards.append(("servingstack-gpus", pulumi.Output.from_input(gpu_dashboard())))
        for board_name, board in boards:
            cm = board.apply(lambda b, n=board_name: dashboard_configmap(n, args["monitoring_namespace"], b))
            k8s.core.v1.ConfigMap(f"{name}-{board_name}", metadata=cm.apply(lambda m: m["metadata"]),
                                  data=cm.apply(lambda m: m["data"]), opts=child)
        self.alerts = rule.apply(lambda r: [a["alert"] for g in r["spec"]["groups"] for a in g["rules"]])
        self.register_outputs({"alerts": self.alerts})
