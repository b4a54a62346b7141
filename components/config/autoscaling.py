"""`servingstack:autoscaling`: serving replicas that follow the engine's queue (KEDA) and GPU nodes
that follow the pods (Cluster Autoscaler on the managed node groups), and the rules tying them to
the rest of the stack config."""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from ..planning import catalog, coldstart
from ..planning.resources import startup_budget_seconds
from ..planning.sizing import weights_gib
from .errors import RuleError
from .fields import ConfigModel


class AutoscalingConfig(ConfigModel):
    enabled: bool = False
    """Scale the serving Deployment on its queue (KEDA ScaledObject) and the GPU pools on the pods
    (Cluster Autoscaler). Needs observability.prometheus install or existing."""
    min_replicas: int = Field(1, ge=0, le=64)
    """Fewest serving replicas; 0 (scale to zero when idle) is allowed only in dev."""
    max_replicas: int = Field(2, ge=1, le=64)
    """Most serving replicas; the serving pool's maxSize must hold them."""
    queue_threshold: int = Field(8, ge=1, le=10000)
    """Requests waiting per replica that add a replica (KEDA's target average value)."""
    cooldown_seconds: Optional[int] = Field(None, ge=60, le=86400)
    """Seconds of calm before scaling in (and to zero); must exceed the cold-start budget (node boot +
    image pull + weight load). Default: the cold-start budget plus 5 minutes, rounded up to a minute."""
    node_autoscaler: Literal["cluster-autoscaler", "none"] = "cluster-autoscaler"
    """cluster-autoscaler: install it (pinned chart, Pod Identity or IRSA role) for the GPU pools;
    none: the cluster already runs a node autoscaler."""
    keda_chart_version: str = Field(catalog.KEDA_CHART_VERSION, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    """KEDA Helm chart version."""
    cluster_autoscaler_chart_version: str = Field(catalog.CLUSTER_AUTOSCALER_CHART_VERSION, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    """cluster-autoscaler Helm chart version (its image follows cluster.version)."""

    @model_validator(mode="after")
    def _range(self) -> "AutoscalingConfig":
        if self.min_replicas > self.max_replicas:
            raise RuleError("minReplicas", f"{self.min_replicas} is greater than maxReplicas {self.max_replicas}")
        return self


def cold_start_seconds(cfg: Any) -> int:
    """What the first request after idle (or a new replica) waits, at most: a GPU node boots, pulls
    the image, and the pod loads the weights within its start-up budget."""
    startup = cfg.serving.startup_seconds or startup_budget_seconds(weights_gib(cfg.serving.architecture,
                                                                                 cfg.serving.shape))
    return coldstart.cold_start_seconds(startup)


def cooldown_seconds(cfg: Any) -> int:
    """The configured cooldown, or the cold-start budget plus 5 minutes rounded up to a minute."""
    a = cfg.autoscaling
    if a.cooldown_seconds is not None:
        return a.cooldown_seconds
    return int(math.ceil((cold_start_seconds(cfg) + 300) / 60) * 60)


def check_autoscaling(cfg: Any) -> None:
    """Cross-section rules of a StackConfig (called from its validator; raises RuleError with keys
    relative to the stack config)."""
    a = cfg.autoscaling
    if not a.enabled:
        return
    if not cfg.observability.enabled:
        raise RuleError("autoscaling.enabled", "true needs Prometheus for the queue metric — set "
                        "observability.prometheus: install (or existing, with observability.prometheusUrl)")
    if cfg.observability.query_url() is None:
        raise RuleError("observability.prometheusUrl", "is required with prometheus: existing and autoscaling "
                        "enabled (the autoscaler queries it), e.g. http://prometheus-operated.monitoring.svc:9090")
    if a.min_replicas == 0 and str(cfg.environment) != "dev":
        raise RuleError("autoscaling.minReplicas", f"0 is only allowed in dev, not {cfg.environment} (the first "
                        "request after idle waits for a GPU node and a model load) — use minReplicas >= 1")
    if not a.min_replicas <= cfg.serving.replicas <= a.max_replicas:
        raise RuleError("serving.replicas", f"{cfg.serving.replicas} is outside [autoscaling.minReplicas "
                        f"{a.min_replicas}, maxReplicas {a.max_replicas}] — it is the replica count the Deployment "
                        "starts with, before the autoscaler owns it")


def check_cooldown(cfg: Any) -> None:
    """The cooldown must outlast a cold start, or the autoscaler removes replicas (and nodes) it will
    need again before a new one could be ready. Raises RuleError."""
    a = cfg.autoscaling
    if not a.enabled or a.cooldown_seconds is None:
        return
    budget = cold_start_seconds(cfg)
    if a.cooldown_seconds <= budget:
        raise RuleError("autoscaling.cooldownSeconds", f"{a.cooldown_seconds} is not longer than the cold-start "
                        f"budget of {budget} s (node boot {coldstart.NODE_BOOT_SECONDS} s + image pull "
                        f"{coldstart.IMAGE_PULL_SECONDS} s + start-up {budget - coldstart.NODE_BOOT_SECONDS - coldstart.IMAGE_PULL_SECONDS} s) "
                        f"— use cooldownSeconds >= {budget + 60} or leave it unset")


def node_autoscaled(cfg: Any, pool: Any) -> bool:
    """Whether the Cluster Autoscaler manages this GPU pool: autoscaling on with the installed node
    autoscaler, and never a capacity-block pool (its size is the reservation's)."""
    a = cfg.autoscaling
    return a.enabled and a.node_autoscaler == "cluster-autoscaler" and pool.capacity_type != "CAPACITY_BLOCK"
