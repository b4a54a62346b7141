"""`servingstack:observability`: metrics, dashboards and alerts for the serving stack and its GPUs."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from ..planning import catalog
from .errors import RuleError
from .fields import DNS_LABEL, ConfigModel


class AlertsConfig(ConfigModel):
    queue_waiting: int = Field(16, ge=1, le=100000)
    """Alert when more requests than this wait for the engine (summed over replicas) ..."""
    queue_waiting_minutes: int = Field(10, ge=1, le=1440)
    """... for this many minutes."""
    kv_cache_usage: float = Field(0.95, gt=0.5, le=1.0)
    """Alert when a replica's KV cache is fuller than this fraction for 5 minutes (preemptions follow)."""
    ttft_p99_ms: Optional[float] = Field(None, ge=10, le=600000)
    """Alert when the P99 time to first token over 5 minutes exceeds this, ms, for 10 minutes.
    Default: workload.ttftP99Ms, else 2000 ms."""
    gpu_memory_headroom: float = Field(0.04, ge=0.005, le=0.5)
    """Alert when a GPU's used memory exceeds serving.gpuMemoryUtilization plus this fraction
    (the engine reserves gpuMemoryUtilization by design; more than that is something else)."""


class ObservabilityConfig(ConfigModel):
    prometheus: Literal["install", "existing", "none"] = "none"
    """install: a pinned kube-prometheus-stack (Prometheus, Alertmanager, Grafana, node exporter,
    kube-state-metrics) in `namespace`; existing: a Prometheus Operator already runs (its CRDs
    present); none: no monitors, dashboards or alerts."""
    namespace: str = Field("monitoring", pattern=DNS_LABEL)
    """Namespace of Prometheus and Grafana: the NetworkPolicy admits it on the metrics ports and the
    dashboard ConfigMaps go there."""
    chart_version: str = Field(catalog.KUBE_PROMETHEUS_STACK_CHART_VERSION, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    """kube-prometheus-stack chart version (install)."""
    prometheus_url: Optional[str] = Field(None, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._/-]*)?$")
    """Prometheus query URL for the autoscaler (existing; install derives it from the release)."""
    monitor_labels: dict[str, str] = Field(default_factory=dict)
    """Labels put on every ServiceMonitor and PrometheusRule, for an existing Prometheus whose
    selectors need them (e.g. release: kube-prometheus-stack)."""
    retention: str = Field("15d", pattern=r"^[0-9]+[hdw]$")
    """Prometheus retention (install; data lives on the pod's emptyDir and goes with it)."""
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    """Alert thresholds."""

    @model_validator(mode="after")
    def _rules(self) -> "ObservabilityConfig":
        if self.prometheus != "existing" and self.prometheus_url:
            raise RuleError("prometheusUrl", "is only used with prometheus: existing (install derives it) — remove it")
        return self

    @property
    def enabled(self) -> bool:
        return self.prometheus != "none"

    def query_url(self) -> Optional[str]:
        """Where Prometheus answers queries: the installed release's Service, or the configured URL."""
        if self.prometheus == "install":
            return f"http://{KPS_RELEASE}-prometheus.{self.namespace}.svc.cluster.local:9090"
        return self.prometheus_url


#: Helm release name of kube-prometheus-stack (its fullname, so its Services, derive from it).
KPS_RELEASE = "kube-prometheus-stack"
