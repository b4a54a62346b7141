"""`servingstack check`: synthesize a stack offline, then validate what it would build.

1. Schema: every manifest written to <out>/manifests is validated by kubernetes-validate (strict:
   unknown fields fail) for the stack's Kubernetes version (`cluster.version`). A kind/apiVersion
   without a schema in a built-in API group (removed or misspelled API, e.g. policy/v1beta1) fails;
   one in another group (a CRD) is a warning, as no CRD schemas are vendored. Errors on values the
   recorder redacted (the "[secret]" marker) are not counted: the real value is not known offline.
   Helm release files (helmrelease-*.yaml) are not Kubernetes objects: only their chart version is
   checked (pinned to an exact version).
2. Semantics schemas miss: selector matchLabels within the pod template's labels, quantities that
   parse, extended resources (nvidia.com/gpu) with request == limit, Service/PDB/NetworkPolicy
   selectors that select some pod template in their namespace.
3. The CrossGuard policies of policy/policies.py, run in-process on the recorded resources (inputs
   as the engine passes them, wrapped in the SDK's unknown-checking proxies), at the enforcement
   levels of the stack's environment: a mandatory violation fails, an advisory one warns.

One table (check, resource, result, message) and a summary line; exit 1 on any failure.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Optional

import yaml

PASS, WARN, FAIL, NOT_APPLICABLE = "pass", "warn", "fail", "n/a"
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
PINNED_CHART = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")
POD_TEMPLATE_KINDS = {"Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
                      "DaemonSet": ("spec", "template"), "ReplicaSet": ("spec", "template"),
                      "Job": ("spec", "template"), "CronJob": ("spec", "jobTemplate", "spec", "template")}


@dataclass(frozen=True)
class Row:
    check: str
    resource: str
    result: str
    message: str = ""


# ---- the policy pack ------------------------------------------------------------------------------

def policy_dir() -> Path:
    """policy/ next to the components package (editable install / checkout), else under the project root."""
    here = Path(__file__).resolve().parents[2] / "policy"
    if (here / "policies.py").is_file():
        return here
    from .project import project_root

    return project_root() / "policy"


def load_policies() -> ModuleType:
    """policy/policies.py as a module (it is not part of the installed package: the pack has its own
    virtualenv and imports it as a sibling module)."""
    name = "servingstack_policies"
    if name in sys.modules:
        return sys.modules[name]
    path = policy_dir() / "policies.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"policy pack not found at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# ---- 1. schema --------------------------------------------------------------------------------------

def builtin_group(api_version: str) -> bool:
    """Core, un-dotted (apps, batch, policy, ...) and *.k8s.io groups are Kubernetes' own."""
    group = api_version.rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


def schema_errors(doc: dict[str, Any], version: str) -> list[tuple[str, str]]:
    """All strict-schema errors as (path, message), ignoring errors on redacted values. Raises
    kubernetes_validate's SchemaNotFoundError / VersionNotSupportedError."""
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    from ..config import REDACTED

    try:
        used = kubernetes_validate.validate(doc, version, strict=True)
        return []
    except kubernetes_validate.ValidationError as exc:
        used = exc.version
    # validate() stops at the first error: collect them all from the same bundled schema.
    full = [v for v in utils.all_versions() if utils.major_minor(v) == used][-1]
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
    folder = f"kubernetes-json-schema/v{full}-local-strict"
    schema = utils.schema_contents(f"{folder}/{doc['kind'].lower()}-{api}.json", used)
    definitions = utils.schema_contents(f"{folder}/_definitions.json", used)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    errors = jsonschema.Draft202012Validator(schema, registry=registry).iter_errors(doc)
    return [(".".join(str(p) for p in e.absolute_path) or "<root>", e.message)
            for e in errors if e.instance != REDACTED]


def manifest_label(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    parts = [str(doc.get("kind", "?")), meta.get("namespace"), str(meta.get("name", "?"))]
    return "/".join(p for p in parts if p)


def validate_manifests(manifests_dir: Path, version: str) -> tuple[list[Row], list[dict[str, Any]]]:
    """Schema rows for every file in manifests/, and the Kubernetes objects read."""
    import kubernetes_validate

    rows: list[Row] = []
    objects: list[dict[str, Any]] = []
    for path in sorted(manifests_dir.glob("*.yaml")):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            rows.append(Row("schema", path.name, FAIL, f"not YAML: {str(exc).splitlines()[0]}"))
            continue
        for doc in docs:
            if isinstance(doc, dict) and "helmRelease" in doc:
                rows.append(helm_release_row(doc["helmRelease"], path.name))
                continue
            if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
                rows.append(Row("schema", path.name, FAIL, "not a Kubernetes object (no apiVersion/kind)"))
                continue
            objects.append(doc)
            label = manifest_label(doc)
            try:
                errors = schema_errors(doc, version)
            except kubernetes_validate.SchemaNotFoundError as exc:
                if builtin_group(doc["apiVersion"]):
                    rows.append(Row("schema", label, FAIL, f"{exc.message}: a removed or unknown Kubernetes API"))
                else:
                    rows.append(Row("schema", label, WARN, f"{exc.message}: custom resource, not validated"))
                continue
            except kubernetes_validate.VersionNotSupportedError as exc:
                rows.append(Row("schema", label, FAIL, exc.message))
                continue
            if errors:
                shown = "; ".join(f"{p}: {m}" for p, m in errors[:5])
                more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
                rows.append(Row("schema", label, FAIL, f"Kubernetes {version} strict: {shown}{more}"))
            else:
                rows.append(Row("schema", label, PASS, f"Kubernetes {version} strict"))
    return rows, objects


def helm_release_row(release: Any, filename: str) -> Row:
    release = release if isinstance(release, dict) else {}
    label = f"HelmRelease/{release.get('namespace') or '?'}/{release.get('name') or filename}"
    version = release.get("version")
    if isinstance(version, str) and PINNED_CHART.match(version):
        return Row("helm-chart-pinned", label, PASS, f"{release.get('chart')} {version}")
    return Row("helm-chart-pinned", label, FAIL,
               f"chart {release.get('chart')!r} version {version!r} is not pinned to an exact version (x.y.z)")


# ---- 2. semantics -----------------------------------------------------------------------------------

def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_template_of(doc: dict[str, Any]) -> Optional[dict[str, Any]]:
    if doc.get("kind") == "Pod":
        return doc
    path = POD_TEMPLATE_KINDS.get(str(doc.get("kind")))
    template = _dig(doc, *path) if path else None
    return template if isinstance(template, dict) else None


def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template.get("spec") or {}
    return [c for kind in ("initContainers", "containers") for c in (spec.get(kind) or []) if isinstance(c, dict)]


def semantic_rows(objects: list[dict[str, Any]]) -> list[Row]:
    policies = load_policies()
    rows: list[Row] = []
    workloads = [(d, pod_template_of(d)) for d in objects]
    workloads = [(d, t) for d, t in workloads if t is not None]
    for doc, template in workloads:
        label = manifest_label(doc)
        labels = _dig(template, "metadata", "labels") or {}
        selector = _dig(doc, "spec", "selector")
        if doc.get("kind") not in ("Pod", "CronJob", "Job") or selector is not None:
            match_labels = (selector or {}).get("matchLabels") or {}
            missing = {k: v for k, v in match_labels.items() if labels.get(k) != v}
            if selector is None:
                rows.append(Row("selector-labels", label, FAIL, "spec.selector is missing"))
            elif missing or not policies.selector_matches(selector, labels):
                rows.append(Row("selector-labels", label, FAIL,
                                f"selector {missing or selector} not within the pod template labels {labels}"))
            else:
                rows.append(Row("selector-labels", label, PASS, "selector within the pod template labels"))
        bad_quantities, extended, has_extended = [], [], False
        for c in _containers(template):
            res = c.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            for where, amounts in (("requests", requests), ("limits", limits)):
                for name, amount in amounts.items():
                    if not QUANTITY.match(str(amount)):
                        bad_quantities.append(f"{c.get('name')} {where}.{name}={amount!r}")
            for name in sorted({*requests, *limits}):
                if "/" not in name:
                    continue
                has_extended = True
                if name not in limits:
                    extended.append(f"{c.get('name')} {name} requested but not in limits")
                elif name in requests and str(requests[name]) != str(limits[name]):
                    extended.append(f"{c.get('name')} {name} request {requests[name]} != limit {limits[name]}")
        for vol in (template.get("spec") or {}).get("volumes") or []:
            size = _dig(vol, "emptyDir", "sizeLimit")
            if size is not None and not QUANTITY.match(str(size)):
                bad_quantities.append(f"volume {vol.get('name')} sizeLimit={size!r}")
        rows.append(Row("quantities", label, FAIL if bad_quantities else PASS,
                        "; ".join(bad_quantities) if bad_quantities else "requests, limits and sizes parse"))
        if has_extended:
            rows.append(Row("extended-resources", label, FAIL if extended else PASS,
                            "; ".join(extended) if extended else "extended resources: request == limit"))
    for doc in objects:
        kind = doc.get("kind")
        if kind == "Service":
            selector = _dig(doc, "spec", "selector")
            selector = {"matchLabels": selector} if selector else None
        elif kind == "PodDisruptionBudget":
            selector = _dig(doc, "spec", "selector")
        elif kind == "NetworkPolicy":
            selector = _dig(doc, "spec", "podSelector")
            if not selector:  # {} selects every pod of the namespace (e.g. default deny)
                continue
        else:
            continue
        if not selector:
            continue
        ns = _dig(doc, "metadata", "namespace") or "default"
        selected = [manifest_label(d) for d, t in workloads
                    if (_dig(d, "metadata", "namespace") or "default") == ns
                    and policies.selector_matches(selector, _dig(t, "metadata", "labels") or {})]
        rows.append(Row("selects-pods", manifest_label(doc), PASS if selected else FAIL,
                        f"selects {', '.join(selected)}" if selected
                        else f"selector {selector} matches no pod template in namespace {ns}"))
    return rows


# ---- 3. policies ------------------------------------------------------------------------------------

def resource_label(resource_type: str, name: str) -> str:
    return f"{resource_type.rsplit(':', 1)[-1]}/{name}"


def _options(parent: str = ""):
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions

    return PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
                                 parent=parent or None)


def engine_props(inputs: dict[str, Any]) -> Any:
    """Recorded inputs in the shape a policy gets from the engine (unknown-checking proxies)."""
    from pulumi_policy.proxy import unknown_checking_proxy

    return unknown_checking_proxy(copy.deepcopy(inputs))


def policy_resources(resources: Iterable[Any]) -> list[Any]:
    """PolicyResources for a stack policy, with parents and top-level property dependencies. The
    recorder's mocks give every resource the id "<name>-id", so an input equal to such an id is a
    reference to that resource (what the engine reports as a property dependency)."""
    from pulumi_policy import PolicyResource

    resources = list(resources)
    out = [PolicyResource(r.type, engine_props(r.inputs), r.urn, r.name, _options(r.parent), None, None, [], {})
           for r in resources]
    by_urn = {p.urn: p for p in out}
    by_id: dict[str, list[Any]] = {}
    for r, p in zip(resources, out):
        if r.custom:
            by_id.setdefault(f"{r.name}-id", []).append(p)
    for r, p in zip(resources, out):
        p.parent = by_urn.get(r.parent)
        for key, value in r.inputs.items():
            if isinstance(value, str) and value in by_id:
                p.property_dependencies[key] = list(by_id[value])
                p.dependencies.extend(d for d in by_id[value] if d not in p.dependencies)
    return out


def policy_rows(resources: list[Any], environment: str) -> list[Row]:
    from pulumi_policy import EnforcementLevel, ResourceValidationArgs, StackValidationArgs, StackValidationPolicy
    from pulumi_policy.policy import _NotApplicableError

    policies = load_policies()
    levels = policies.enforcement_levels(environment)
    config = policies.offline_config()
    rows: list[Row] = []
    stack_resources: Optional[list[Any]] = None
    labels = {r.urn: resource_label(r.type, r.name) for r in resources}
    for policy in policies.POLICIES:
        level = levels[policy.name]
        if level == EnforcementLevel.DISABLED:
            continue
        bad = FAIL if level == EnforcementLevel.MANDATORY else WARN
        types = getattr(policy, "resource_types", ())
        if isinstance(policy, StackValidationPolicy):
            if stack_resources is None:
                stack_resources = policy_resources(resources)
            found: list[tuple[str, Optional[str]]] = []
            try:
                policy.validate(StackValidationArgs(stack_resources, config.get(policy.name)),
                                lambda message, urn=None: found.append((message, urn)))
            except _NotApplicableError as exc:
                rows.append(Row(policy.name, "(stack)", NOT_APPLICABLE, str(exc.reason or "")))
                continue
            flagged = set()
            for message, urn in found:
                flagged.add(urn)
                rows.append(Row(policy.name, labels.get(urn or "", "(stack)"), bad, message))
            for r in resources:
                if r.type in types and r.urn not in flagged:
                    rows.append(Row(policy.name, labels[r.urn], PASS, ""))
            continue
        for r in resources:
            if r.type not in types:
                continue
            messages: list[str] = []
            args = ResourceValidationArgs(r.type, engine_props(r.inputs), r.urn, r.name, _options(r.parent), None,
                                          config.get(policy.name))
            try:
                policy.validate(args, lambda message, urn=None: messages.append(message))
            except _NotApplicableError as exc:
                rows.append(Row(policy.name, labels[r.urn], NOT_APPLICABLE, str(exc.reason or "")))
                continue
            rows.extend(Row(policy.name, labels[r.urn], bad, m) for m in messages)
            if not messages:
                rows.append(Row(policy.name, labels[r.urn], PASS, ""))
    return rows


# ---- the command -----------------------------------------------------------------------------------

def format_table(rows: list[Row]) -> str:
    header = Row("CHECK", "RESOURCE", "RESULT", "MESSAGE")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("check", "resource", "result")]
    lines = []
    for r in [header, *rows]:
        cells = [r.check.ljust(widths[0]), r.resource.ljust(widths[1]), r.result.ljust(widths[2]), r.message]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def check_rows(path: Path, stack: str, out_dir: Path, reuse: bool = False,
               aws_data: Any = None) -> tuple[list[Row], Any, Any]:
    """Synthesize (writing out_dir as `synth` does, notices printed once the outputs are written) and
    return (rows, StackConfig, resources). With `reuse`, check what synth already wrote to out_dir
    instead (reused_build). `aws_data`: a recording of AWS answers replacing the shipped one of the
    stack's region. Raises ConfigError / StackFileError / AwsDataError for a bad stack file or
    recording, OutputError when out_dir cannot take the outputs, StaleBuildError for a missing build."""
    from .outdir import preflight
    from .output import write_outputs
    from .synth import check_stack_name, emit_notices, load_stack_file, reused_build, synth_stack

    if reuse:
        cfg, resources = reused_build(path, stack, out_dir)
        version = cfg.cluster.version
    else:
        stack_file = load_stack_file(path)
        check_stack_name(path, stack)
        preflight(out_dir)
        result = synth_stack(stack_file, stack, aws_data=aws_data)
        cfg, resources = result.config, result.resources
        write_outputs(result, out_dir)
        emit_notices(result.notices)
        # An adopted cluster's schemas are those of its own version.
        version = result.outputs.get("kubernetesVersion") or cfg.cluster.version
    rows, objects = validate_manifests(out_dir / "manifests", version)
    rows += semantic_rows(objects)
    rows += policy_rows(resources, str(cfg.environment))
    return rows, cfg, resources


def run_check(path: Path, stack: str, out_dir: Path, reuse: bool = False, aws_data: Any = None) -> int:
    """`servingstack check`: print the table and a summary; 0 when nothing failed, else 1."""
    from .synth import StaleBuildError

    try:
        rows, cfg, _ = check_rows(Path(path), stack, Path(out_dir), reuse=reuse, aws_data=aws_data)
    except StaleBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    counts = {k: sum(1 for r in rows if r.result == k) for k in (PASS, WARN, FAIL, NOT_APPLICABLE)}
    print(f"\nstack {stack} (environment {cfg.environment}, Kubernetes {cfg.cluster.version}): {len(rows)} checks, "
          f"{counts[PASS]} passed, {counts[WARN]} warnings, {counts[FAIL]} failed, "
          f"{counts[NOT_APPLICABLE]} not applicable; manifests in {out_dir}/manifests")
    return 1 if counts[FAIL] else 0
