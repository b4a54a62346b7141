"""Writing a synthesized stack: manifests/, plan.json, outputs.json, and the summary synth prints."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml

from .offline.recorder import RecordedResource, SynthResult, normalize
from .outdir import replace_outputs


def _jsonable(value: Any) -> Any:
    if isinstance(value, pulumi.FileAsset):
        # A local file the program uploads (Triton model artifacts): its path and content hash, so a
        # changed file shows in plan.json as a changed input, as Pulumi's own asset hash would.
        return {"fileAsset": value.path, "sha256": _sha256(value.path)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__name__}>"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ordered_manifest(m: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first, as people write manifests."""
    head = {k: m[k] for k in ("apiVersion", "kind", "metadata") if k in m}
    return {**head, **{k: v for k, v in m.items() if k not in head}}


def manifest_filename(m: dict[str, Any]) -> str:
    meta = m.get("metadata") or {}
    parts = [m["kind"].lower(), meta.get("namespace") or "cluster", meta.get("name") or "unnamed"]
    return "-".join(re.sub(r"[^a-z0-9.-]+", "-", p.lower()) for p in parts) + ".yaml"


def helm_release_doc(r: RecordedResource) -> dict[str, Any]:
    i = normalize(r.inputs)
    return {"helmRelease": {"name": i.get("name", r.name), "chart": i.get("chart"),
                            "repo": (i.get("repositoryOpts") or {}).get("repo"), "version": i.get("version"),
                            "namespace": i.get("namespace"), "values": i.get("values") or {}}}


def write_outputs(result: SynthResult, out_dir: Path) -> None:
    """Write manifests/, plan.json and outputs.json into out_dir, replacing earlier results only once
    all of them are written (tools/outdir.py). Raises OutputError (one line) when out_dir cannot take them."""
    replace_outputs(Path(out_dir), lambda folder: _write_into(result, folder))


def _write_into(result: SynthResult, out_dir: Path) -> None:
    manifests_dir = out_dir / "manifests"
    manifests_dir.mkdir()
    for m in result.manifests():
        (manifests_dir / manifest_filename(m)).write_text(yaml.safe_dump(_jsonable(ordered_manifest(m)),
                                                                         sort_keys=False))
    for r in result.of_type("kubernetes:helm.sh/v3:Release"):
        doc = helm_release_doc(r)
        fname = f"helmrelease-{doc['helmRelease']['namespace']}-{doc['helmRelease']['name']}.yaml"
        (manifests_dir / fname).write_text(yaml.safe_dump(_jsonable(doc), sort_keys=False))
    (out_dir / "plan.json").write_text(plan_json(result))
    (out_dir / "outputs.json").write_text(json.dumps(_jsonable(result.outputs), indent=2, sort_keys=True,
                                                     allow_nan=False) + "\n")


def plan_document(result: SynthResult) -> dict[str, Any]:
    """Every registered resource with its inputs, options and (placeholder) computed outputs, sorted by URN."""
    resources = [{"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "provider": r.provider,
                  "custom": r.custom, "dependsOn": r.dependencies, "propertyDependencies": r.property_dependencies,
                  "options": _jsonable(r.options),
                  "inputs": _jsonable(normalize(r.inputs)), "computed": _jsonable(normalize(r.computed))}
                 for r in sorted(result.resources, key=lambda r: r.urn)]
    return {"project": result.project, "stack": result.stack, "resources": resources}


def plan_json(result: SynthResult) -> str:
    """plan.json's text: the same bytes for the same inputs (resources by URN, keys sorted)."""
    return json.dumps(plan_document(result), indent=2, sort_keys=True, allow_nan=False) + "\n"


def cluster_lines(result: SynthResult, today: Optional[date] = None) -> list[str]:
    """Kubernetes version and support window, zones, GPU quota needs, and an extended-support warning."""
    from ..planning import eks

    o, cfg = result.outputs, result.config
    today = today or date.today()
    version = o.get("kubernetesVersion")
    lines = []
    if version:
        info = eks.VERSIONS.get(version)
        support = (f"standard support until {info.end_of_standard_support}" if info else "support dates unknown")
        policy = f"; upgradePolicy {cfg.cluster.support_type}" if cfg is not None and cfg.cluster.create else ""
        zones = o.get("availabilityZones") or {}
        where = f"; zones {', '.join(f'{n} ({i})' for n, i in zones.items())}" if zones else ""
        lines.append(f"cluster:   Kubernetes {version} ({support}{policy}){where}")
        support_type = cfg.cluster.support_type if cfg is not None and cfg.cluster.create else "EXTENDED"
        warning = eks.extended_support_warning(version, today, support_type)
        if warning:
            lines.append(warning)
    for code, q in sorted((o.get("quotaNeeds") or {}).items()):
        known = "quota unknown offline" if q.get("quota") is None else f"quota {q['quota']:g}"
        lines.append(f"quota:     {code} {q['name']}: {q['vcpus']} vCPUs at maxSize ({', '.join(q['pools'])}); {known}")
    return lines


def summary(result: SynthResult, today: Optional[date] = None) -> str:
    counts: dict[str, int] = {}
    for r in result.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    o = result.outputs
    gpu = o.get("gpuSummary", {})
    cost = o.get("monthlyCostBreakdown", {})
    lines = [
        f"stack {result.stack}: {len(result.resources)} resources",
        *[f"  {n:3d}  {t}" for t, n in sorted(counts.items())],
        f"serving:   {o.get('servingStack')} {o.get('model')}",
        f"gpus:      {gpu.get('gpusPerReplica')} per replica x {gpu.get('replicas')} replicas on "
        f"{gpu.get('gpuNodes')} x {gpu.get('instanceType')}",
        f"kv cache:  {o.get('kvCacheTokens')} tokens per replica, {o.get('maxConcurrentSequences')} "
        f"full-length sequences",
        f"cost:      ${o.get('monthlyCostUsd', 0):,.2f}/month (GPU ${cost.get('gpuComputeUsd', 0):,.2f} + licence "
        f"${cost.get('softwareLicenseUsd', 0):,.2f}; {cost.get('rateSource')}); environment "
        f"${cost.get('environmentUsd', 0):,.2f}/month, first year ${cost.get('firstYearUsd', 0):,.0f}",
        *_idle_lines(gpu, cost),
        *_performance_lines(o.get("performance") or {}),
        f"endpoint:  {o.get('endpoint')}",
        *_triton_model_lines(o.get("tritonModels") or []),
        *cluster_lines(result, today),
        *operations_lines(o),
        *_benchmark_lines(o.get("benchmark")),
    ]
    return "\n".join(lines)


def _triton_model_lines(models: list[dict[str, Any]]) -> list[str]:
    """Each model of a multi-model Triton repository: its endpoint path and its share of GPU memory."""
    lines = []
    for i, m in enumerate(models):
        gpus = m.get("gpus") or []
        where = (f"{m['gpuMemoryGibPerGpu']:g} GiB ({m['gpuShare']:.1%}) on "
                 f"{'each of GPUs' if len(gpus) > 1 else 'GPU'} {_ranges(gpus)}" if gpus else "CPU only" if m["kind"] != "ensemble" else "no GPU memory (ensemble)")
        versions = m.get("versions") or []
        label = f"v{','.join(map(str, versions))}" if versions else ""
        lines.append(f"{'models:' if i == 0 else '':11}{m['name']} ({m['kind']} {label}) {m['endpoint']} — {where}")
    return lines


def _ranges(gpus: list[int]) -> str:
    ordered = sorted(set(gpus))
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(map(str, ordered))


def _benchmark_lines(b: Any) -> list[str]:
    if not b:
        return []
    return [f"benchmark: Job {b['jobName']} ({b['tool']}, concurrency {', '.join(map(str, b['sweep']))}) -> "
            f"{b['resultsUri']}<timestamp>/; `servingstack bench report` reads it"]


def _idle_lines(gpu: dict[str, Any], cost: dict[str, Any]) -> list[str]:
    if not gpu.get("idleGpus"):
        return []
    line = (f"idle:      {gpu['idleGpus']} of {gpu['gpusPaid']} paid GPUs idle, ${cost.get('idleGpuUsd', 0):,.2f}/month")
    packed = cost.get("packed")
    if packed:
        line += (f"; packed ({packed['replicasPerNode']} replicas per node) {packed['nodes']} node(s) would save "
                 f"${packed['savesUsd']:,.2f}/month")
    return [line]


def _performance_lines(p: dict[str, Any]) -> list[str]:
    w = p.get("workload") or {}
    if "itlExpectedMs" not in p:
        return [f"perf:      not estimated ({p.get('notEstimated', 'no estimate')})"]
    env = p.get("environment") or {}
    lines = [f"perf:      {w.get('concurrency')} x {w.get('inputTokens')}/{w.get('outputTokens')}-token requests: "
             f"ITL ~{p['itlExpectedMs']:.0f} ms (floor {p['itlFloorMs']:.1f}), TTFT ~{p['ttftExpectedMs']:,.0f} ms, "
             f"{env.get('outputTokensPerSecond', 0):,.0f} output tok/s ({env.get('totalTokensPerSecond', 0):,.0f} "
             f"total), ${env.get('usdPerMillionOutputTokens', 0):,.2f} per 1M output tokens (estimate)"]
    lines += [f"warning:   {w_}" for w_ in p.get("warnings") or []]
    return lines


def operations_lines(o: dict[str, Any]) -> list[str]:
    """Monitoring and autoscaling, when the stack has them."""
    lines = []
    obs = o.get("observability")
    if obs:
        lines.append(f"metrics:   {obs.get('prometheus')} Prometheus in {obs.get('namespace')}; "
                     f"{len(obs.get('alerts') or [])} alerts, dashboards {', '.join(obs.get('dashboards') or [])}")
    auto = o.get("autoscaling")
    if auto:
        lines.append(f"scaling:   {auto.get('minReplicas')}-{auto.get('maxReplicas')} replicas on "
                     f"{auto.get('queueMetric')} (>{auto.get('queueThreshold')} waiting per replica adds one), "
                     f"cooldown {auto.get('cooldownSeconds')} s; nodes: {auto.get('nodeAutoscaler')} on "
                     f"{', '.join(auto.get('autoscaledPools') or []) or 'no pool'}")
        costs = auto.get("monthlyCost") or {}
        if costs:
            lines.append("scaled:    " + " / ".join(
                f"{label} {c['replicas']} replica(s) on {c['gpuNodes']} node(s) ${c['environmentUsd']:,.2f}"
                for label, c in costs.items()) + " per month (environment)")
        if auto.get("scaleToZero"):
            lines.append(f"at zero:   {auto['scaleToZero']}")
    return lines
