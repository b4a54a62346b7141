"""Pure manifests for monitoring: kube-prometheus-stack values, the serving stack's ServiceMonitor and
the PrometheusRule of its alerts. No Pulumi imports.

Selectors across namespaces: kube-prometheus-stack's Prometheus selects only monitors and rules
labelled `release: <release>` while `*SelectorNilUsesHelmValues` is true (its default); the values
here set them false with empty selectors, so it selects every ServiceMonitor, PodMonitor, Probe,
ScrapeConfig and PrometheusRule in every namespace (empty namespace selectors are the chart's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from ..planning import metrics

MONITORING_API = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "15s"

#: Port name and path of each stack's metrics endpoint on its Service (k8s/podspec.py ports and
#: the serving components' metrics_path/metrics_port; tests hold the two together).
METRICS_ENDPOINTS = {"vllm": ("http", "/metrics"), "triton": ("metrics", "/metrics"), "nim": ("http", "/v1/metrics")}


@dataclass(frozen=True)
class ServingTarget:
    """The serving stack as the monitors, dashboards, alerts and autoscaler see it."""

    stack: str
    namespace: str
    service: str
    deployment: str
    selector_labels: dict[str, str]
    """The Service's (and pods') selector labels (podspec.selector_labels)."""

    @property
    def engine(self) -> metrics.EngineMetrics:
        return metrics.ENGINES[self.stack]

    def sel(self, extra: str = "") -> str:
        return metrics.selector(self.namespace, self.service, extra)


def selector_labels(stack: str, deployment: str) -> dict[str, str]:
    """The labels podspec.selector_labels gives the serving Service and pods."""
    return {"app.kubernetes.io/name": stack, "app.kubernetes.io/instance": deployment}


def kube_prometheus_stack_values(retention: str) -> dict:
    """Values for the pinned kube-prometheus-stack on EKS: select monitors and rules from every
    namespace and release; no scrape jobs for the control plane EKS hides (controller manager,
    scheduler, etcd) nor kube-proxy (EKS binds its metrics to 127.0.0.1), so their alerts are off
    too (the chart gates them on the same keys). Grafana's admin password is the chart's random one,
    kept in the Secret <release>-grafana (key admin-password)."""
    spec = {f"{kind}SelectorNilUsesHelmValues": False
            for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig")}
    return {
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheus": {"prometheusSpec": {**spec, "retention": retention, "scrapeInterval": SCRAPE_INTERVAL}},
        "grafana": {"sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1",
                                               "searchNamespace": "ALL"}}},
    }


def service_monitor(t: ServingTarget, labels: dict[str, str]) -> dict:
    """A ServiceMonitor on the serving Service's metrics port and path."""
    port, path = METRICS_ENDPOINTS[t.stack]
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": t.deployment, "namespace": t.namespace,
                     "labels": {**t.selector_labels, "app.kubernetes.io/part-of": "servingstack", **labels}},
        "spec": {
            "selector": {"matchLabels": dict(t.selector_labels)},
            "namespaceSelector": {"matchNames": [t.namespace]},
            "endpoints": [{"port": port, "path": path, "interval": SCRAPE_INTERVAL, "scheme": "http"}],
        },
    }


@dataclass(frozen=True)
class Thresholds:
    queue_waiting: int
    queue_minutes: int
    kv_cache_usage: float
    ttft_p99_seconds: float
    gpu_memory_fraction: float
    no_replica_minutes: int
    """How long no replica may be ready (while some are wanted) before alerting: the cold-start budget."""
    gpu_alerts: bool = True
    """GPU alerts (XID, memory) need the DCGM exporter."""


def alert_rules(t: ServingTarget, th: Thresholds) -> list[dict]:
    """The serving and GPU alerts, each only where the stack exposes its metric."""
    e = t.engine
    deploy = f'namespace="{t.namespace}",deployment="{t.deployment}"'
    rules: list[dict] = [_alert(
        "ServingNoReadyReplica",
        f"kube_deployment_spec_replicas{{{deploy}}} > 0 and kube_deployment_status_replicas_available{{{deploy}}} < 1",
        f"{th.no_replica_minutes}m", "critical",
        f"No ready {t.stack} replica of {t.namespace}/{t.deployment} although replicas are wanted",
        "Longer than the cold-start budget: check `kubectl -n {{ $labels.namespace }} get pods` (Pending: GPU "
        "capacity or quota; CrashLoopBackOff: engine logs).")]
    if e.waiting:
        rules.append(_alert(
            "ServingQueueBacklog", f"{metrics.queue_query(t.stack, t.namespace, t.service)} > {th.queue_waiting}",
            f"{th.queue_minutes}m", "warning",
            f"More than {th.queue_waiting} requests waiting on {t.namespace}/{t.service} for {th.queue_minutes} min",
            "Add replicas (or raise autoscaling.maxReplicas) or shed load."))
    if e.kv_cache_usage:
        rules.append(_alert(
            "ServingKvCacheFull", f"max({e.kv_cache_usage}{t.sel()}) > {th.kv_cache_usage:g}", "5m", "warning",
            f"KV cache above {th.kv_cache_usage:.0%} on {t.namespace}/{t.service}",
            "Sequences are being preempted and recomputed: lower maxNumSeqs or maxModelLen, or add replicas."))
    if e.ttft:
        rules.append(_alert(
            "ServingTtftP99High",
            f"{metrics.quantile_query(e.ttft, 0.99, t.namespace, t.service)} > {th.ttft_p99_seconds:g}", "10m",
            "warning", f"P99 time to first token above {th.ttft_p99_seconds * 1000:g} ms on {t.namespace}/{t.service}",
            "The latency objective is missed: check the queue and KV-cache panels."))
    gpu = [
        _alert("GpuXidError", f"max by (Hostname, gpu) ({metrics.DCGM_XID}) > 0", "0m", "critical",
               "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID error {{ $value }}",
               "Check the XID in NVIDIA's XID catalogue; most need the node drained and replaced."),
        _alert("GpuMemoryNearlyFull",
               f"max by (Hostname, gpu) ({metrics.DCGM_FB_USED} / ({metrics.DCGM_FB_USED} + {metrics.DCGM_FB_FREE})) "
               f"> {th.gpu_memory_fraction:g}", "10m", "warning",
               f"GPU memory above {th.gpu_memory_fraction:.0%} on {{{{ $labels.Hostname }}}} GPU {{{{ $labels.gpu }}}}",
               "More than the engine reserves (serving.gpuMemoryUtilization): another process or a leak."),
    ]
    rules += [
        *(gpu if th.gpu_alerts else []),
        _alert("NodeNotReady", 'kube_node_status_condition{condition="Ready",status="true"} == 0', "5m", "critical",
               "Node {{ $labels.node }} is not Ready", "Its serving pods are being rescheduled elsewhere."),
    ]
    return rules


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
    rule = {"alert": name, "expr": expr, "labels": {"severity": severity, "part_of": "servingstack"},
            "annotations": {"summary": summary, "description": description}}
    if for_ != "0m":
        rule["for"] = for_
    return rule


def prometheus_rule(t: ServingTarget, th: Thresholds, labels: dict[str, str]) -> dict:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": {"name": f"{t.deployment}-alerts", "namespace": t.namespace,
                     "labels": {"app.kubernetes.io/part-of": "servingstack", **labels}},
        "spec": {"groups": [{"name": f"servingstack-{t.stack}", "rules": alert_rules(t, th)}]},
    }


def rule_names(rule: dict) -> list[str]:
    return [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]

