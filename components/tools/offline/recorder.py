"""The offline runtime: run a Pulumi program in-process under Pulumi's mock runtime and record every
registered resource (type, name, inputs, URN, parent, provider, dependencies, options).

Secret Outputs are recorded as the redaction marker; `keep_secrets=True` (tests only; the CLI never
sets it) records secret values unwrapped instead, so a test can check what a Secret would really
carry. Never write such a result out. Invokes are answered by offline/fakes.py from a recording
of real AWS answers (offline/awsdata.py).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ...config import REDACTED, StackConfig
from .awsdata import AwsAnswers, load_recording
from .fakes import ACCOUNT, PLACEHOLDER, fake_invoke, fake_outputs


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
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    """Per top-level input: the URNs of the resources its value comes from (what the engine is told)."""
    timeouts: dict[str, str] = field(default_factory=dict)
    """Custom create/update/delete timeouts, e.g. {"create": "62m"}."""
    options: dict[str, Any] = field(default_factory=dict)
    """The resource options that matter to a real run, as the engine receives them: protect,
    retainOnDelete, ignoreChanges, deleteBeforeReplace, replaceOnChanges, deletedWith,
    additionalSecretOutputs, customTimeouts, and aliases (resolved to URNs as the engine resolves
    alias specs, parents' aliases included). Only options that are set appear."""
    computed: dict[str, Any] = field(default_factory=dict)
    """What the provider would compute (offline placeholders): the id and the outputs that are not
    inputs. A dependent whose input holds one of these values references this resource; when this
    resource is replaced, a preview shows those inputs unknown (servingstack diff follows them)."""

    @classmethod
    def from_plan(cls, entry: dict[str, Any]) -> "RecordedResource":
        """A resource as plan.json records it (tools/output.py plan_document)."""
        options = dict(entry.get("options") or {})
        return cls(type=entry["type"], name=entry["name"], inputs=dict(entry.get("inputs") or {}),
                   custom=bool(entry.get("custom")), provider=entry.get("provider") or "", urn=entry["urn"],
                   parent=entry.get("parent") or "", dependencies=list(entry.get("dependsOn") or []),
                   property_dependencies={k: list(v) for k, v in (entry.get("propertyDependencies") or {}).items()},
                   timeouts=dict(options.get("customTimeouts") or {}), options=options,
                   computed=dict(entry.get("computed") or {}))

    @property
    def is_kubernetes_object(self) -> bool:
        return (self.type.startswith("kubernetes:") and self.custom and "apiVersion" in self.inputs
                and "kind" in self.inputs)


@dataclass
class SynthResult:
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    """The stack outputs: what the program exported (`pulumi.export`) and what it returned."""
    notices: list[str] = field(default_factory=list)
    config: Optional[StackConfig] = None
    """The validated stack config (set by synth_stack)."""
    project: str = "servingstack"
    """The Pulumi project the program ran as (the second part of every URN)."""

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


def _mocks_base():
    import pulumi

    return pulumi.runtime.Mocks


class Recorder(_mocks_base()):  # type: ignore[misc]
    """Mocks that echo inputs back (plus fake computed outputs) and record every registration."""

    def __init__(self, region: str, secret_values: tuple[str, ...] = (), keep_secrets: bool = False,
                 aws_data: Any = None):
        self.region = region
        # A file given on the command line is read (and refused if malformed) now; the shipped
        # recording of the region on the first invoke, so programs that ask AWS nothing run anywhere.
        self._aws = AwsAnswers(load_recording(region, aws_data), ACCOUNT, PLACEHOLDER) if aws_data is not None else None
        self.resources: list[RecordedResource] = []
        self.secret_values = tuple(v for v in secret_values if v and v != REDACTED)
        self.keep_secrets = keep_secrets  # tests only: record secret values unwrapped, scrub nothing
        self._local = threading.local()
        self._lock = threading.Lock()

    def by_urn(self, urn: str) -> Optional[RecordedResource]:
        with self._lock:
            return next((r for r in self.resources if r.urn == urn), None) if urn else None

    def new_resource(self, args):  # noqa: ANN001 - pulumi.runtime.MockResourceArgs
        inputs = dict(args.inputs)
        record = RecordedResource(type=args.typ, name=args.name, inputs=self.redact(inputs), custom=bool(args.custom),
                                  provider=args.provider or "", parent=getattr(self._local, "parent", ""))
        with self._lock:
            self.resources.append(record)
        self._local.record = record
        fake = fake_outputs(args.typ, args.name, inputs, self.region)
        if record.custom:
            record.computed = self.redact({"id": f"{args.name}-id", **{k: v for k, v in fake.items() if k not in inputs}})
        return f"{args.name}-id", {**fake, **inputs}

    @property
    def aws(self) -> AwsAnswers:
        if self._aws is None:
            self._aws = AwsAnswers(load_recording(self.region), ACCOUNT, PLACEHOLDER)
        return self._aws

    def call(self, args):  # noqa: ANN001 - pulumi.runtime.MockCallArgs
        return fake_invoke(args.token, dict(args.args), self.region, self.aws)

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


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the Pulumi engine makes it (resource.NewURN): the parent's whole qualified type
    chain, then this type; nothing for the root Stack. (The SDK's MockMonitor keeps only the
    parent's last type, so two resources could share a mock URN and not a real one.)"""
    if parent:
        qualified = parent.split("::")[2]
        if qualified != "pulumi:pulumi:Stack":
            type_ = f"{qualified}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _monitor_class():
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_project, get_stack

    class RecordingMonitor(MockMonitor):
        """Adds what MockResourceArgs lacks: each registration's URN, parent, dependencies and
        options, with URNs and aliases computed as the engine computes them."""

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            return engine_urn(get_stack(), get_project(), parent, type_, name)

        def RegisterResource(self, request):  # noqa: N802, ANN001
            recorder: Recorder = self.mocks
            recorder._local.parent = request.parent
            recorder._local.record = None
            response = super().RegisterResource(request)
            record = recorder._local.record
            if record is not None:
                record.urn = response.urn
                record.dependencies = sorted(request.dependencies)
                record.property_dependencies = {key: sorted(set(deps.urns))
                                                for key, deps in sorted(request.propertyDependencies.items())
                                                if deps.urns}
                t = request.customTimeouts
                record.timeouts = {k: v for k, v in (("create", t.create), ("update", t.update),
                                                     ("delete", t.delete)) if v}
                record.options = self._options(request, record, recorder)
            return response

        def _options(self, request, record: RecordedResource, recorder: "Recorder") -> dict[str, Any]:  # noqa: ANN001
            options: dict[str, Any] = {
                "protect": bool(request.protect),
                "retainOnDelete": bool(request.retainOnDelete),
                "ignoreChanges": sorted(request.ignoreChanges),
                "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                "replaceOnChanges": sorted(request.replaceOnChanges),
                "deletedWith": request.deletedWith,
                "additionalSecretOutputs": sorted(set(request.additionalSecretOutputs)),
                "customTimeouts": dict(record.timeouts),
                "aliases": self._aliases(request, record, recorder),
            }
            return {k: v for k, v in options.items() if v}

        def _aliases(self, request, record: RecordedResource, recorder: "Recorder") -> list[str]:  # noqa: ANN001
            """Alias URNs as the engine derives them from the SDK's alias specs, plus the aliases a
            child inherits from its parent's aliases (the engine's inheritedChildAlias: the child
            under each parent alias, its name's parent-name prefix replaced by the alias's name)."""
            stack, project = get_stack(), get_project()
            found: list[str] = list(request.aliasURNs)
            for alias in request.aliases:
                if alias.urn:
                    found.append(alias.urn)
                    continue
                spec = alias.spec
                parent = "" if spec.noParent else (spec.parentUrn or request.parent)
                found.append(engine_urn(spec.stack or stack, spec.project or project, parent,
                                        spec.type or request.type, spec.name or request.name))
            parent_record = recorder.by_urn(request.parent)
            if parent_record is not None:
                parent_name = parent_record.name
                for parent_alias in parent_record.options.get("aliases", []):
                    alias_name = parent_alias.rsplit("::", 1)[-1]
                    name = (alias_name + request.name[len(parent_name):]
                            if request.name.startswith(parent_name) else request.name)
                    found.append(engine_urn(stack, project, parent_alias, request.type, name))
            return sorted(set(found) - {record.urn})

    return RecordingMonitor


def run_program(program: Callable[[], Optional[dict[str, Any]]], config: dict[str, str], secret_keys: list[str],
                stack: str, region: str, secret_values: tuple[str, ...] = (),
                keep_secrets: bool = False, project: str = "servingstack", aws_data: Any = None) -> SynthResult:
    """Run `program` under the recording mocks as stack `stack` of project `project`, with `config`
    (full keys, e.g. "aws:region", "<project>:clusterName"), and return what it registered and its
    outputs: what it exported with `pulumi.export` plus the dict it returns, if any (secret outputs
    redacted unless `keep_secrets`, tests only). Invokes are answered from `aws_data` (a recording
    file or map) or the shipped recording of `region`. Exceptions from the program propagate."""
    import pulumi

    from pulumi.runtime import settings

    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    recorder = Recorder(region, secret_values, keep_secrets=keep_secrets, aws_data=aws_data)
    settings.ROOT.set(None)  # a fresh root Stack per run, so URNs and parents name this stack
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=False,
                             monitor=_monitor_class()(recorder))
    outputs: dict[str, Any] = {}

    def body() -> Any:
        returned = program() or {}
        root = settings.get_root_resource()
        result = {**(getattr(root, "outputs", None) or {}), **returned}  # pulumi.export()s, then the returned

        async def resolve() -> None:
            for key, value in result.items():
                out = pulumi.Output.from_input(value)
                resolved = await out.future()
                secret = await out.is_secret() and not recorder.keep_secrets
                outputs[key] = REDACTED if secret else recorder.redact(normalize(resolved))

        return resolve()

    # pulumi.runtime.test runs the body and waits for every outstanding registration.
    pulumi.runtime.test(body)()
    # Registration order depends on thread scheduling: sort by URN so results are deterministic.
    resources = sorted(recorder.resources, key=lambda r: r.urn)
    return SynthResult(stack=stack, resources=resources, outputs=outputs, project=project)


def normalize(value: Any) -> Any:
    """Integers back from the mock's floats (protobuf Struct numbers are doubles)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value
