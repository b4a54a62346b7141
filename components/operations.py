"""Day-two wiring of ServingPlatform: monitoring (kube-prometheus-stack or an existing operator), the
serving stack's monitors, alerts and dashboards, KEDA on the queue and the Cluster Autoscaler on the
GPU pools, all decided by `servingstack:observability` and `servingstack:autoscaling`. Part of the
composition root (platform layer): it only chooses and connects components."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import pulumi

from . import config as config_module
from .aws.cluster_autoscaler import ClusterAutoscaler
from .aws.cluster import EksCluster
from .aws.nodepool import GpuNodePool
from .config import StackConfig
from .config.scaling_cost import scaling_cost_output
from .k8s.autoscaling import KedaAutoscaler
from .k8s.monitoring_spec import Thresholds
from .k8s.observability import MonitoringStack, ServingObservability
from .planning import coldstart, metrics


class Operations:
    """Registers the operations components with `k8s_opts` (children of the ServingPlatform, on its
    Kubernetes provider)."""

    def __init__(self, cfg: StackConfig, cluster: EksCluster,
                 pools: dict[str, GpuNodePool], tags: dict[str, str], k8s_opts: pulumi.ResourceOptions):
        self.cfg, self.k8s_opts = cfg, k8s_opts
        obs, auto = cfg.observability, cfg.autoscaling
        self.monitoring: Optional[MonitoringStack] = None
        if obs.enabled:
            self.monitoring = MonitoringStack("monitoring", {
                "mode": obs.prometheus, "namespace": obs.namespace, "chart_version": obs.chart_version,
                "retention": obs.retention}, opts=k8s_opts)
        self.node_autoscaler: Optional[ClusterAutoscaler] = None
        self.autoscaled_pools = [p.name for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools]
                                 if config_module.node_autoscaled(cfg, p)]
        if self.autoscaled_pools:
            by_name = {p.name: p for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools]}
            c = cfg.cluster
            self.node_autoscaler = ClusterAutoscaler("node-autoscaler", {
                "cluster_name": cluster.cluster_name, "region": cfg.region, "kubernetes_version": c.version,
                "groups": [{"asg_name": pools[n].autoscaling_group_name, "min_size": by_name[n].min_size,
                            "max_size": by_name[n].max_size} for n in self.autoscaled_pools],
                "use_pod_identity": c.pod_identity, "oidc_provider_arn": cluster.oidc_provider_arn,
                "oidc_issuer_url": cluster.oidc_issuer_url,
                "chart_version": auto.cluster_autoscaler_chart_version, "tags": tags,
            }, opts=k8s_opts)
        self.observability: Optional[ServingObservability] = None
        self.keda: Optional[KedaAutoscaler] = None
        self.keda_name = "<deployment>"

    def after_monitoring(self, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
        """`opts` waiting for the Prometheus Operator CRDs (nothing to wait for otherwise)."""
        if self.monitoring is None or not self.monitoring.ready:
            return opts
        return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.monitoring]))

    def device_plugin_args(self) -> dict[str, Any]:
        obs = self.cfg.observability
        if not (obs.enabled and self.cfg.device_plugin.dcgm_exporter):
            return {}
        return {"dcgm_service_monitor": True, "monitor_labels": dict(obs.monitor_labels)}

    def serving_args(self) -> dict[str, Any]:
        obs, auto = self.cfg.observability, self.cfg.autoscaling
        return {**({"monitoring_namespace": obs.namespace} if obs.enabled else {}),
                **({"replicas_autoscaled": True} if auto.enabled else {})}

    def thresholds(self) -> Thresholds:
        a, s = self.cfg.observability.alerts, self.cfg.serving
        return Thresholds(
            queue_waiting=a.queue_waiting, queue_minutes=a.queue_waiting_minutes, kv_cache_usage=a.kv_cache_usage,
            ttft_p99_seconds=ttft_p99_ms(self.cfg) / 1000, gpu_memory_fraction=round(min(0.99, s.gpu_memory_utilization +
                                                                                 a.gpu_memory_headroom), 4),
            no_replica_minutes=math.ceil(config_module.cold_start_seconds(self.cfg) / 60),
            gpu_alerts=self.cfg.device_plugin.dcgm_exporter)

    def serve(self, server: Any, namespace: pulumi.Resource) -> None:
        """The serving stack's monitors, alerts, dashboards and autoscaler, once it exists."""
        cfg, obs, auto, s = self.cfg, self.cfg.observability, self.cfg.autoscaling, self.cfg.serving
        if obs.enabled:
            opts = pulumi.ResourceOptions.merge(self.after_monitoring(self.k8s_opts),
                                                pulumi.ResourceOptions(depends_on=[namespace]))
            self.observability = ServingObservability("observability", {
                "stack": str(s.stack), "namespace": s.namespace, "service_name": s.service_name,
                "deployment_name": server.deployment_name, "monitoring_namespace": obs.namespace,
                "thresholds": {k: float(v) for k, v in dataclasses.asdict(self.thresholds()).items()}, "monitor_labels": dict(obs.monitor_labels),
                "gpu_dashboard": cfg.device_plugin.dcgm_exporter,
            }, opts=opts)
        if auto.enabled:
            url = obs.query_url()
            assert url is not None  # config rule: autoscaling needs a Prometheus URL
            self.keda_name = server.deployment_name
            self.keda = KedaAutoscaler("autoscaler", {
                "stack": str(s.stack), "namespace": s.namespace, "service_name": s.service_name,
                "deployment_name": server.deployment_name, "prometheus_url": url,
                "min_replicas": auto.min_replicas, "max_replicas": auto.max_replicas,
                "queue_threshold": auto.queue_threshold, "cooldown_seconds": config_module.cooldown_seconds(cfg),
                "keda_chart_version": auto.keda_chart_version,
            }, opts=pulumi.ResourceOptions.merge(self.k8s_opts, pulumi.ResourceOptions(depends_on=[server])))

    def outputs(self) -> dict[str, Any]:
        cfg, obs, auto = self.cfg, self.cfg.observability, self.cfg.autoscaling
        out: dict[str, Any] = {}
        if obs.enabled:
            out["observability"] = {
                "prometheus": obs.prometheus, "namespace": obs.namespace,
                "alerts": self.observability.alerts if self.observability else [],
                "dashboards": ["servingstack-serving", *(["servingstack-gpus"] if cfg.device_plugin.dcgm_exporter
                                                         else [])],
            }
        if auto.enabled:
            cold = config_module.cold_start_seconds(cfg)
            out["autoscaling"] = {
                "minReplicas": auto.min_replicas, "maxReplicas": auto.max_replicas,
                "queueMetric": metrics.ENGINES[str(cfg.serving.stack)].waiting,
                "queueThreshold": auto.queue_threshold, "cooldownSeconds": config_module.cooldown_seconds(cfg),
                "coldStartSeconds": cold,
                "coldStart": {"nodeBootSeconds": coldstart.NODE_BOOT_SECONDS,
                              "imagePullSeconds": coldstart.IMAGE_PULL_SECONDS,
                              "startupSeconds": cold - coldstart.NODE_BOOT_SECONDS - coldstart.IMAGE_PULL_SECONDS},
                "nodeAutoscaler": auto.node_autoscaler, "autoscaledPools": self.autoscaled_pools,
                "monthlyCost": scaling_cost_output(cfg),
                **({"scaleToZero": scale_to_zero_notice(cfg, self.keda_name)} if auto.min_replicas == 0 else {}),
            }
        return out


def scale_to_zero_notice(cfg: StackConfig, scaled_object: Any) -> Any:
    """What minReplicas 0 means for the first request after idle (the README says the same)."""
    cold, idle, ns = config_module.cold_start_seconds(cfg), config_module.cooldown_seconds(cfg), cfg.serving.namespace

    def text(name: str) -> str:
        return (f"after {idle} s without requests the replicas go to zero and the Cluster Autoscaler removes the idle "
                f"GPU node; at zero nothing serves or queues, so requests fail until a replica is woken: "
                f"`kubectl -n {ns} annotate scaledobject {name} autoscaling.keda.sh/paused-replicas=1` (remove "
                f"the annotation to hand it back to KEDA); the first request after idle then waits up to {cold} s "
                f"(~{math.ceil(cold / 60)} min: node boot + image pull + model load)")

    return pulumi.Output.from_input(scaled_object).apply(text)


def ttft_p99_ms(cfg: StackConfig) -> float:
    """The TTFT P99 alert threshold: observability.alerts.ttftP99Ms, else the workload's target
    (workload.ttftP99Ms), else 2000 ms."""
    return cfg.observability.alerts.ttft_p99_ms or cfg.workload.ttft_p99_ms or DEFAULT_TTFT_P99_MS


DEFAULT_TTFT_P99_MS = 2000.0
