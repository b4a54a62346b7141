"""Observability on every shipped stack: a ServiceMonitor selecting the serving pods' Service on the
right port and path, the DCGM exporter's ServiceMonitor, dashboards that parse with valid PromQL for
the metric names the pinned engines expose, the PrometheusRule, kube-prometheus-stack selecting
monitors across namespaces, and a NetworkPolicy that admits the monitoring namespace on the metrics
port and nothing else new. Custom resources are held to the pinned charts' CRD schemas."""

from __future__ import annotations

import json
import re

import pytest

from conftest import STACK_NAMES, set_key, stack_config, synth, synth_config
from crd_schemas import crd_errors
from helm_render import recorded_releases, render_recorded
from promtool import check_rules
from servingstack.k8s.dashboards import dashboard_queries
from servingstack.planning import metrics

WITHOUT = {"prometheus": "none"}


def manifests(result, kind):
    return [m for m in result.manifests() if m["kind"] == kind]


def _without_observability(stack):
    cfg = set_key(stack_config(stack), "servingstack:observability", WITHOUT)
    cfg.pop("servingstack:autoscaling", None)  # the autoscaler reads Prometheus
    return synth_config(cfg, name=stack)


# ---- the serving ServiceMonitor --------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACK_NAMES)
def test_service_monitor_selects_the_serving_service_on_its_metrics_port_and_path(stack):
    result = synth(stack)
    assert result.config.observability.enabled, "every shipped stack turns observability on"
    (monitor,) = manifests(result, "ServiceMonitor")
    service = result.manifest("Service")
    dep = result.manifest("Deployment")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()  # selects the Service...
    assert selector == service["spec"]["selector"]  # ...whose pods are the Deployment's
    assert service["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    container = dep["spec"]["template"]["spec"]["containers"][0]
    target = next(p for p in container["ports"] if p["name"] == port["targetPort"])
    # The endpoint the engine serves metrics on (what the pod annotations advertise too).
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert (target["containerPort"], endpoint["path"]) == \
        (int(annotations["prometheus.io/port"]), annotations["prometheus.io/path"])
    expected = {"vllm": (8000, "/metrics"), "triton": (8002, "/metrics"), "nim": (8000, "/v1/metrics")}
    assert (target["containerPort"], endpoint["path"]) == expected[str(result.config.serving.stack)]
    assert monitor["metadata"]["labels"].items() >= result.config.observability.monitor_labels.items()


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_monitoring_objects_pass_the_pinned_crd_schemas(stack):
    result = synth(stack)
    custom = [m for m in result.manifests() if m["apiVersion"].split("/")[0] in ("monitoring.coreos.com", "keda.sh")]
    assert {m["kind"] for m in custom} >= {"ServiceMonitor", "PrometheusRule"}
    for doc in custom:
        assert not crd_errors(doc), (doc["kind"], crd_errors(doc))


def test_crd_oracle_can_fail():
    monitor = json.loads(json.dumps(manifests(synth("prod"), "ServiceMonitor")[0]))
    monitor["spec"]["endpoints"][0]["prot"] = "http"
    assert crd_errors(monitor)


def test_no_monitoring_objects_without_observability():
    result = _without_observability("prod")
    assert not [m for m in result.manifests() if m["apiVersion"].startswith("monitoring.coreos.com")]
    assert not [m for m in result.manifests() if m.get("metadata", {}).get("labels", {}).get("grafana_dashboard")]


# ---- kube-prometheus-stack and the DCGM exporter, rendered ----------------------------------------

def _release(result, chart):
    return next(inputs for _, inputs in recorded_releases(result) if inputs["chart"] == chart)


def test_kube_prometheus_stack_selects_monitors_and_rules_of_every_namespace():
    """The rendered Prometheus: empty selectors (every monitor, not only `release: <release>`) and
    empty namespace selectors (every namespace); its Service is what the autoscaler queries."""
    result = synth("prod")
    rendered = render_recorded(_release(result, "kube-prometheus-stack"))
    (prom,) = rendered.of_kind("Prometheus")
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert prom["spec"][f"{kind}Selector"] == {}, kind
        assert prom["spec"][f"{kind}NamespaceSelector"] == {}, kind
    assert not crd_errors(prom)
    url = result.config.observability.query_url()
    name, namespace = re.match(r"http://([^.]+)\.([^.]+)\.svc", url).groups()
    service = next(s for s in rendered.of_kind("Service") if s["metadata"]["name"] == name)
    assert service["metadata"]["namespace"] == namespace and 9090 in [p["port"] for p in service["spec"]["ports"]]
    # EKS hides the control plane: no scrape jobs for it.
    monitors = {m["metadata"]["name"] for m in rendered.of_kind("ServiceMonitor")}
    assert not [m for m in monitors if re.search("controller-manager|scheduler|etcd|kube-proxy", m)]
    # Grafana loads ConfigMaps labelled grafana_dashboard: "1" from every namespace.
    sidecar = next(c for d in rendered.of_kind("Deployment") if d["metadata"]["name"].endswith("grafana")
                   for c in d["spec"]["template"]["spec"]["containers"] if "dashboard" in c["name"])
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["LABEL"] == "grafana_dashboard" and env["LABEL_VALUE"] == "1" and env["NAMESPACE"] == "ALL"


def test_kube_prometheus_stack_default_would_miss_our_monitors():
    """The oracle can fail: with the chart's defaults the Prometheus selects only release-labelled monitors."""
    inputs = dict(_release(synth("prod"), "kube-prometheus-stack"), values={})
    (prom,) = render_recorded(inputs).of_kind("Prometheus")
    assert prom["spec"]["serviceMonitorSelector"] == {"matchLabels": {"release": "kube-prometheus-stack"}}


@pytest.mark.parametrize("stack", [s for s in STACK_NAMES if s != "dev-small"])
def test_dcgm_exporter_service_monitor_renders_and_passes_its_crd(stack):
    result = synth(stack)
    rendered = render_recorded(_release(result, "dcgm-exporter"))
    (monitor,) = rendered.of_kind("ServiceMonitor")
    (service,) = rendered.of_kind("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert not crd_errors(monitor)
    # It is installed only once the operator's CRDs exist (the chart does not check for them).
    dcgm = next(r for r, i in recorded_releases(result) if i["chart"] == "dcgm-exporter")
    kps = next(r for r, i in recorded_releases(result) if i["chart"] == "kube-prometheus-stack")
    assert kps.urn in dcgm.dependencies


def test_existing_prometheus_gets_its_labels_on_every_monitor():
    result = synth_config(set_key(stack_config("dev-small"), "servingstack:devicePlugin.dcgmExporter", True))
    labels = result.config.observability.monitor_labels
    assert labels == {"release": "kube-prometheus-stack"}
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert manifests(result, kind)[0]["metadata"]["labels"].items() >= labels.items()
    rendered = render_recorded(_release(result, "dcgm-exporter"))
    assert rendered.of_kind("ServiceMonitor")[0]["metadata"]["labels"].items() >= labels.items()
    assert not [i for _, i in recorded_releases(result) if i["chart"] == "kube-prometheus-stack"]


def test_dcgm_metric_names_are_the_exporters_default_counters():
    """Every DCGM field the dashboards and alerts use is in the chart's default counters ConfigMap."""
    rendered = render_recorded(_release(synth("prod"), "dcgm-exporter"))
    (cm,) = [c for c in rendered.of_kind("ConfigMap") if c["metadata"]["name"] == "exporter-metrics-config-map"]
    fields = {line.split(",")[0].strip() for line in cm["data"]["metrics"].splitlines()
              if line.strip() and not line.strip().startswith("#")}
    assert metrics.DCGM_NAMES <= fields, metrics.DCGM_NAMES - fields


# ---- dashboards -------------------------------------------------------------------------------------

def _dashboards(result):
    out = {}
    for cm in manifests(result, "ConfigMap"):
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            (text,) = cm["data"].values()
            out[cm["metadata"]["name"]] = json.loads(text)
    return out


PROMQL_WORDS = {"sum", "rate", "increase", "max", "avg", "by", "histogram_quantile", "clamp_min", "and"}


def _metric_names(expr: str) -> set[str]:
    """Metric names a query reads: identifiers left once label matchers, `by (...)` groupings and
    range selectors are removed (histograms read through their _bucket series)."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\bby\s*\([^)]*\)", " ", expr)
    names = {n for n in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare) if n not in PROMQL_WORDS}
    return {n.removesuffix("_bucket") for n in names}


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_dashboards_parse_and_every_query_is_non_empty(stack):
    result = synth(stack)
    boards = _dashboards(result)
    want = {"servingstack-serving"} | ({"servingstack-gpus"} if result.config.device_plugin.dcgm_exporter else set())
    assert set(boards) == want
    for name, board in boards.items():
        assert {"uid", "title", "panels", "schemaVersion"} <= board.keys(), name
        assert board["panels"], name
        for panel in board["panels"]:
            assert panel["type"] == "timeseries" and panel["title"] and panel["gridPos"]["w"] > 0
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["expr"].strip() and target["refId"], (name, panel["title"])
    for cm in manifests(result, "ConfigMap"):
        if cm["metadata"]["name"] in boards:
            assert cm["metadata"]["namespace"] == result.config.observability.namespace


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_dashboard_queries_use_only_the_pinned_engines_metric_names(stack):
    result = synth(stack)
    engine = metrics.ENGINES[str(result.config.serving.stack)]
    boards = _dashboards(result)
    serving = {n for q in dashboard_queries(boards["servingstack-serving"]) for n in _metric_names(q)}
    assert serving and serving <= engine.names, serving - engine.names
    if "servingstack-gpus" in boards:
        gpus = {n for q in dashboard_queries(boards["servingstack-gpus"]) for n in _metric_names(q)}
        assert gpus <= metrics.DCGM_NAMES, gpus - metrics.DCGM_NAMES
    titles = {p["title"] for p in boards["servingstack-serving"]["panels"]}
    assert "Running and waiting requests" in titles and "Time to first token" in titles
    if engine.kv_cache_usage:
        assert "KV-cache usage" in titles


@pytest.mark.parametrize("stack", STACK_NAMES)
def test_dashboard_and_autoscaler_queries_are_valid_promql(stack, tmp_path):
    """promtool parses each query as a recording rule's expression."""
    result = synth(stack)
    queries = [q for b in _dashboards(result).values() for q in dashboard_queries(b)]
    queries += [metrics.queue_query(s, "ns", "svc") for s in metrics.ENGINES]
    queries += [metrics.activity_query(s, "ns", "svc") for s in metrics.ENGINES]
    rules = [{"record": f"servingstack:query_{i}", "expr": q} for i, q in enumerate(queries)]
    proc = check_rules([{"name": "queries", "rules": rules}], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promql_oracle_can_fail(tmp_path):
    proc = check_rules([{"name": "q", "rules": [{"record": "x:y", "expr": "sum(rate(vllm:foo[5m])"}]}], tmp_path)
    assert proc.returncode != 0


# ---- the NetworkPolicy ------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACK_NAMES)
def test_network_policy_admits_the_monitoring_namespace_on_the_metrics_port_and_nothing_else(stack):
    result = synth(stack)
    with_obs = result.manifest("NetworkPolicy")
    without = _without_observability(stack).manifest("NetworkPolicy")
    before, after = without["spec"]["ingress"], with_obs["spec"]["ingress"]
    assert after[:len(before)] == before  # the existing rules are unchanged
    (new,) = after[len(before):]  # exactly one new rule
    (peer,) = new["from"]
    assert peer == {"namespaceSelector": {"matchExpressions": [{
        "key": "kubernetes.io/metadata.name", "operator": "In", "values": [result.config.observability.namespace]}]}}
    metrics_port = {"vllm": 8000, "triton": 8002, "nim": 8000}[str(result.config.serving.stack)]
    assert new["ports"] == [{"protocol": "TCP", "port": metrics_port}]
    assert {k: v for k, v in with_obs["spec"].items() if k != "ingress"} == \
        {k: v for k, v in without["spec"].items() if k != "ingress"}
