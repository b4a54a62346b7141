"""Pure: Grafana dashboards as code, as ConfigMaps the kube-prometheus-stack Grafana sidecar loads
(label grafana_dashboard: "1"). One serving dashboard per stack with that stack's metric names
(planning/metrics.py), and one GPU dashboard from the DCGM exporter. No Pulumi imports.

Queries carry no Grafana template variables, so each is plain PromQL (tests check them with
promtool); a panel whose metric the stack does not expose is left out.
"""

from __future__ import annotations

import json
from typing import Optional

from ..planning import metrics
from .monitoring_spec import ServingTarget

DASHBOARD_LABEL = {"grafana_dashboard": "1"}
SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
"""kube-prometheus-stack's provisioned Prometheus datasource (grafana.sidecar.datasources.uid default)."""


def _panel(pid: int, title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int,
           max_: Optional[float] = None) -> dict:
    field = {"unit": unit, **({"max": max_, "min": 0} if max_ is not None else {})}
    return {
        "id": pid, "type": "timeseries", "title": title, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": field, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(targets)],
    }


def _dashboard(uid: str, title: str, panels: list[tuple[str, list[tuple[str, str]], str, Optional[float]]]) -> dict:
    laid = [_panel(i + 1, title_, targets, unit, 12 * (i % 2), 8 * (i // 2), max_)
            for i, (title_, targets, unit, max_) in enumerate(panels)]
    return {"uid": uid, "title": title, "tags": ["servingstack"], "timezone": "utc", "editable": False,
            "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "panels": laid}


def serving_dashboard(t: ServingTarget) -> dict:
    """Requests, running and waiting sequences, TTFT and ITL percentiles, KV-cache usage, prefix-cache
    hit rate and errors, each where the stack's engine exposes it."""
    e, s = t.engine, t.sel()
    rate = lambda m, extra="": f"sum(rate({m}{t.sel(extra)}[5m]))"  # noqa: E731
    panels: list[tuple[str, list[tuple[str, str]], str, Optional[float]]] = []
    if e.requests_ok:
        panels.append(("Requests per second", [(rate(e.requests_ok), "ok")], "reqps", None))
    queue = [(f"sum({m}{s})", legend) for m, legend in ((e.running, "running"), (e.waiting, "waiting")) if m]
    panels.append(("Running and waiting requests", queue, "short", None))
    for metric, label in ((e.ttft, "Time to first token"), (e.itl, "Inter-token latency (time per output token)")):
        if metric:
            panels.append((label, [(metrics.quantile_query(metric, q, t.namespace, t.service), f"p{int(q * 100)}")
                                   for q in (0.5, 0.9, 0.99)], "s", None))
    if e.kv_cache_usage:
        panels.append(("KV-cache usage", [(f"max by (pod) ({e.kv_cache_usage}{s})", "{{pod}}")], "percentunit", 1.0))
    if e.prefix_cache_queries and e.prefix_cache_hits:
        panels.append(("Prefix-cache hit rate", [(
            f"{rate(e.prefix_cache_hits)} / clamp_min({rate(e.prefix_cache_queries)}, 1)", "hit rate")],
            "percentunit", 1.0))
    if e.prompt_tokens and e.generation_tokens:
        panels.append(("Tokens per second", [(rate(e.prompt_tokens), "prompt"), (rate(e.generation_tokens), "generated")],
                       "short", None))
    if e.preemptions:
        panels.append(("Preemptions per second", [(rate(e.preemptions), "preempted")], "short", None))
    if e.requests_failed == "http_requests_total":
        panels.append(("Errors (HTTP 5xx per second)", [(rate(e.requests_failed, 'status="5xx"'), "5xx")],
                       "reqps", None))
    elif e.requests_failed:
        panels.append(("Errors (failed requests per second)", [(rate(e.requests_failed), "failed")], "reqps", None))
    return _dashboard(f"servingstack-{t.stack}", f"servingstack {t.stack}: {t.namespace}/{t.service}", panels)


def gpu_dashboard() -> dict:
    """Utilisation, memory, power, temperature and XID errors of every GPU (DCGM exporter)."""
    by = "{{Hostname}} gpu {{gpu}}"
    panels: list[tuple[str, list[tuple[str, str]], str, Optional[float]]] = [
        ("GPU utilisation", [(f"avg by (Hostname, gpu) ({metrics.DCGM_GPU_UTIL})", by)], "percent", 100.0),
        ("GPU memory used", [(f"max by (Hostname, gpu) ({metrics.DCGM_FB_USED} / ({metrics.DCGM_FB_USED} + "
                              f"{metrics.DCGM_FB_FREE}))", by)], "percentunit", 1.0),
        ("GPU power", [(f"max by (Hostname, gpu) ({metrics.DCGM_POWER})", by)], "watt", None),
        ("GPU temperature", [(f"max by (Hostname, gpu) ({metrics.DCGM_TEMP})", by)], "celsius", None),
        ("GPU XID errors (last XID, 0 = none)", [(f"max by (Hostname, gpu) ({metrics.DCGM_XID})", by)], "none", None),
    ]
    return _dashboard("servingstack-gpus", "servingstack GPUs (DCGM)", panels)


def dashboard_configmap(name: str, namespace: str, dashboard: dict) -> dict:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**DASHBOARD_LABEL, "app.kubernetes.io/part-of": "servingstack"}},
        "data": {f"{name}.json": json.dumps(dashboard, indent=1, sort_keys=True)},
    }


def dashboard_queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
