"""Offline synthesis: run the real program in-process under Pulumi's mock runtime and record every
registered resource. The same recorder backs the tests (tests/conftest.py).

No cloud credentials, Pulumi CLI or kubeconfig are needed: invokes (availability zones, caller
identity, an adopted cluster) get obviously fake placeholder answers, and secret config values,
which synth cannot decrypt, are replaced by a redaction marker.

`keep_secrets=True` (tests only; the CLI never sets it) records secret values unwrapped instead of
redacted, so a test can check what a Secret would really carry. Never write such a result out.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from .config import NAMESPACE, REDACTED, StackConfig, parse_stack_config, secret_needed
from .fakes import fake_invoke, fake_outputs


@dataclass
class RecordedResource:
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    provider: str = ""
    urn: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    """URNs this registration waits for (explicit depends_on and the resources its inputs come from)."""
    timeouts: dict[str, str] = field(default_factory=dict)
    """Custom create/update/delete timeouts, e.g. {"create": "62m"}."""

    @property
    def is_kubernetes_object(self) -> bool:
        return (self.type.startswith("kubernetes:") and self.custom and "apiVersion" in self.inputs
                and "kind" in self.inputs)


@dataclass
class SynthResult:
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    config: Optional[StackConfig] = None
    """The validated stack config (set by synth_stack)."""

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: Optional[str] = None) -> RecordedResource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def manifests(self) -> list[dict[str, Any]]:
        return [normalize(r.inputs) for r in self.resources if r.is_kubernetes_object]

    def manifest(self, kind: str, name: Optional[str] = None) -> dict[str, Any]:
        found = [m for m in self.manifests() if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
        if len(found) != 1:
            raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
        return found[0]


# ---- stack files -------------------------------------------------------------------------------

class StackFileError(ValueError):
    pass


def stack_name_for(path: Path) -> str:
    m = re.match(r"^Pulumi\.(.+)\.ya?ml$", path.name)
    return m.group(1) if m else path.stem


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` map of a Pulumi stack file."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StackFileError(f"{path}: cannot read stack file: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise StackFileError(f"{path}: a stack file is a YAML map with a `config:` map")
    return dict(doc.get("config") or {})


def engine_config(stack_config: dict[str, Any]) -> tuple[dict[str, str], list[str], list[str]]:
    """Stack-file values as the engine hands them to a program (strings; objects as JSON), with
    `secure:` values replaced by the redaction marker. Returns (config, secret keys, secure keys)."""
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    secure: list[str] = []
    for key, value in stack_config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = REDACTED
            secret_keys.append(key)
            secure.append(key)
        elif isinstance(value, str):
            config[key] = value
        else:
            config[key] = json.dumps(value)
    return config, secret_keys, secure


# ---- the recorder -------------------------------------------------------------------------------

def _mocks_base():
    import pulumi

    return pulumi.runtime.Mocks


class Recorder(_mocks_base()):  # type: ignore[misc]
    """Mocks that echo inputs back (plus fake computed outputs) and record every registration."""

    def __init__(self, region: str, secret_values: tuple[str, ...] = (), keep_secrets: bool = False):
        self.region = region
        self.resources: list[RecordedResource] = []
        self.secret_values = tuple(v for v in secret_values if v and v != REDACTED)
        self.keep_secrets = keep_secrets  # tests only: record secret values unwrapped, scrub nothing
        self._local = threading.local()
        self._lock = threading.Lock()

    def new_resource(self, args):  # noqa: ANN001 - pulumi.runtime.MockResourceArgs
        inputs = dict(args.inputs)
        record = RecordedResource(type=args.typ, name=args.name, inputs=self.redact(inputs), custom=bool(args.custom),
                                  provider=args.provider or "", parent=getattr(self._local, "parent", ""))
        with self._lock:
            self.resources.append(record)
        self._local.record = record
        outputs = {**fake_outputs(args.typ, args.name, inputs, self.region), **inputs}
        return f"{args.name}-id", outputs

    def call(self, args):  # noqa: ANN001 - pulumi.runtime.MockCallArgs
        return fake_invoke(args.token, dict(args.args), self.region)

    def redact(self, value: Any) -> Any:
        from pulumi.runtime import rpc

        if rpc.is_rpc_secret(value):
            if self.keep_secrets:
                return self.redact(rpc.unwrap_rpc_secret(value))
            return _redact_leaves(rpc.unwrap_rpc_secret(value))
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact(v) for v in value]
        if isinstance(value, str):
            return value if self.keep_secrets else scrub(value, self.secret_values)
        return value


def _redact_leaves(value: Any) -> Any:
    """Keep a secret's shape (a Secret's stringData stays a map), replace every value."""
    if isinstance(value, dict):
        return {k: _redact_leaves(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_leaves(v) for v in value]
    return REDACTED


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Replace secret values, and their base64 forms, by the redaction marker."""
    for secret in secrets:
        forms = {secret, base64.b64encode(secret.encode()).decode()}
        forms |= {base64.b64encode(f"$oauthtoken:{secret}".encode()).decode()}
        for form in forms:
            text = text.replace(form, REDACTED)
    return text


def _monitor_class():
    from pulumi.runtime.mocks import MockMonitor

    class RecordingMonitor(MockMonitor):
        """Adds what MockResourceArgs lacks: each registration's URN and parent."""

        def RegisterResource(self, request):  # noqa: N802, ANN001
            recorder: Recorder = self.mocks
            recorder._local.parent = request.parent
            recorder._local.record = None
            response = super().RegisterResource(request)
            if recorder._local.record is not None:
                recorder._local.record.urn = response.urn
                recorder._local.record.dependencies = sorted(request.dependencies)
                t = request.customTimeouts
                recorder._local.record.timeouts = {k: v for k, v in (("create", t.create), ("update", t.update),
                                                                     ("delete", t.delete)) if v}
            return response

    return RecordingMonitor


def run_program(program: Callable[[], dict[str, Any]], config: dict[str, str], secret_keys: list[str],
                stack: str, region: str, secret_values: tuple[str, ...] = (),
                keep_secrets: bool = False) -> SynthResult:
    """Run `program` under the recording mocks with `config` and return what it registered and
    its outputs (secret outputs redacted unless `keep_secrets`, tests only). Exceptions from the
    program propagate."""
    import pulumi

    from pulumi.runtime import settings

    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    recorder = Recorder(region, secret_values, keep_secrets=keep_secrets)
    settings.ROOT.set(None)  # a fresh root Stack per run, so URNs and parents name this stack
    pulumi.runtime.set_mocks(recorder, project="servingstack", stack=stack, preview=False,
                             monitor=_monitor_class()(recorder))
    outputs: dict[str, Any] = {}

    def body() -> Any:
        result = program()

        async def resolve() -> None:
            for key, value in result.items():
                out = pulumi.Output.from_input(value)
                resolved = await out.future()
                secret = await out.is_secret() and not recorder.keep_secrets
                outputs[key] = REDACTED if secret else recorder.redact(normalize(resolved))

        return resolve()

    # pulumi.runtime.test runs the body and waits for every outstanding registration.
    pulumi.runtime.test(body)()
    return SynthResult(stack=stack, resources=recorder.resources, outputs=outputs)


def synth_stack(stack_config: dict[str, Any], stack: str, program: Optional[Callable[[], dict[str, Any]]] = None,
                secrets: Optional[dict[str, str]] = None, keep_secrets: bool = False) -> SynthResult:
    """Validate and synthesize one stack's config. `secrets` (tests only) plays the engine's role of
    handing the program decrypted secret values; they never reach the result in plaintext unless
    `keep_secrets` (tests only) asks for secret values unwrapped.
    Raises ConfigError for config mistakes (before anything is registered)."""
    from .program import build

    config, secret_keys, secure = engine_config(stack_config)
    notices: list[str] = []
    for key in secure:
        notices.append(f"notice: {key} is a `secure:` value synth cannot decrypt; using the placeholder {REDACTED}")
    for key, value in (secrets or {}).items():
        config[f"{NAMESPACE}:{key}"] = value
        secret_keys.append(f"{NAMESPACE}:{key}")
    # The program prints config notices itself (components.config.load_stack_config).
    cfg = parse_stack_config(config, notices=[])
    for key, needed in secret_needed(cfg).items():
        full = f"{NAMESPACE}:{key}"
        if needed and full not in config:
            config[full] = REDACTED
            secret_keys.append(full)
            notices.append(f"notice: {full} is not set; synth uses the placeholder {REDACTED} (under the engine this "
                           f"is an error: run `pulumi config set --secret {full} <value>`)")
    result = run_program(program or build, config, secret_keys, stack, cfg.region,
                         tuple((secrets or {}).values()), keep_secrets=keep_secrets)
    result.notices = notices
    result.config = cfg
    return result


# ---- writing -------------------------------------------------------------------------------------

def normalize(value: Any) -> Any:
    """Integers back from the mock's floats (protobuf Struct numbers are doubles)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__name__}>"


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
    """Write manifests/, plan.json and outputs.json into out_dir (replacing earlier results)."""
    manifests_dir = out_dir / "manifests"
    manifests_dir.mkdir(parents=True, exist_ok=True)
    for old in manifests_dir.glob("*.yaml"):
        old.unlink()
    for m in result.manifests():
        (manifests_dir / manifest_filename(m)).write_text(yaml.safe_dump(_jsonable(ordered_manifest(m)),
                                                                         sort_keys=False))
    for r in result.of_type("kubernetes:helm.sh/v3:Release"):
        doc = helm_release_doc(r)
        fname = f"helmrelease-{doc['helmRelease']['namespace']}-{doc['helmRelease']['name']}.yaml"
        (manifests_dir / fname).write_text(yaml.safe_dump(_jsonable(doc), sort_keys=False))
    plan = [{"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "provider": r.provider,
             "custom": r.custom, "dependsOn": r.dependencies, "inputs": _jsonable(normalize(r.inputs))}
            for r in result.resources]
    (out_dir / "plan.json").write_text(json.dumps({"stack": result.stack, "resources": plan}, indent=2) + "\n")
    (out_dir / "outputs.json").write_text(json.dumps(_jsonable(result.outputs), indent=2, sort_keys=True) + "\n")


def summary(result: SynthResult) -> str:
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
        f"${cost.get('softwareLicenseUsd', 0):,.2f}; {cost.get('rateSource')})",
        f"endpoint:  {o.get('endpoint')}",
    ]
    return "\n".join(lines)


def emit_notices(notices: list[str]) -> None:
    for n in notices:
        print(n, file=sys.stderr)
