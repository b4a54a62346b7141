"""servingstack's CrossGuard policies, importable without side effects.

`POLICIES` is the list the pack (policy/__main__.py) serves and `servingstack check` runs in-process
on the offline recorder's resources; `policies_for(environment)` gives copies carrying the
environment's enforcement levels (`enforcement_levels`).

Props are read as the engine passes them: provider-schema camelCase names (`metadataOptions.httpTokens`,
`vpcConfig.endpointPublicAccess`), numbers possibly as floats (protobuf Struct), booleans possibly as
the strings "true"/"false" (pulumi-aws carries some nested booleans that way), MaxItems=1 blocks as an
object or a one-element list, and, under the engine, mappings/sequences wrapped in pulumi_policy's
unknown-checking proxies (so only `collections.abc.Mapping`/`Sequence` are assumed, never dict/list).
Reading a value unknown during preview raises UnknownValueError, which the SDK reports as an advisory
"can't run policy during preview" instead of a violation.

Secrets: the offline recorder replaces every secret value by the marker "[secret]" (REDACTED). Under
a real engine, pulumi-policy's Analyze deserializes props without its secret proxies, so a policy
sees secret values already decrypted and cannot tell them from plaintext inputs. The Secret-data half
of `k8s-no-plaintext-secrets` therefore runs only when its policy config names the marker
(`offline_config()`, which `servingstack check` passes); the env half runs everywhere.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Iterator, Optional

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

REDACTED = "[secret]"
"""The offline recorder's stand-in for a secret value (servingstack.config.REDACTED)."""
TP_ANNOTATION = "servingstack.io/tensor-parallel-size"
GPU = "nvidia.com/gpu"
ENVIRONMENTS = ("dev", "staging", "prod")
ENVIRONMENT_VAR = "SERVINGSTACK_ENVIRONMENT"

S3_BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_SSE_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
S3_PAB_TYPES = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
LAUNCH_TEMPLATE_TYPES = ("aws:ec2/launchTemplate:LaunchTemplate",)
EKS_CLUSTER_TYPES = ("aws:eks/cluster:Cluster",)
SECRET_TYPES = ("kubernetes:core/v1:Secret",)
PDB_TYPES = ("kubernetes:policy/v1:PodDisruptionBudget",)
# Where each workload kind keeps its pod template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template"),
    "kubernetes:core/v1:Pod": (),
}
WORKLOAD_TYPES = tuple(POD_TEMPLATE_PATHS)
REPLICATED_TYPES = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")


# ---- reading props as the engine passes them --------------------------------------------------

def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(obj: Any, *path: Any, default: Any = None) -> Any:
    """obj[path...] or `default`; a one-element list standing for a MaxItems=1 block is stepped into."""
    for key in path:
        if isinstance(key, str) and is_seq(obj):
            if len(obj) != 1:
                return default
            obj = obj[0]
        if isinstance(key, int):
            if not is_seq(obj) or not -len(obj) <= key < len(obj):
                return default
        elif not is_map(obj) or key not in obj:
            return default
        obj = obj[key]
    return default if obj is None else obj


def items(value: Any) -> list[Any]:
    """A list field (absent -> [], a single object -> [it])."""
    if value is None:
        return []
    if is_seq(value):
        return list(value)
    return [value]


def as_bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+]?\d+\s*", value):
        return int(value)
    return None


def _config(args: Any, key: str, default: Any) -> Any:
    config = args.get_config() or {}
    value = config.get(key) if is_map(config) else None
    return default if value is None else value


# ---- policy construction ------------------------------------------------------------------------

def resource_policy(name: str, description: str, resource_types: Iterable[str],
                    check: Callable[[ResourceValidationArgs, ReportViolation], None], *,
                    severity: Severity = Severity.HIGH, remediation: str = "",
                    config_schema: Optional[PolicyConfigSchema] = None) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy that runs `check` only on `resource_types` (kept on the policy as
    `.resource_types`, so `servingstack check` can report a pass for each resource it examined)."""
    types = tuple(resource_types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in types:
            check(args, report_violation)

    policy = ResourceValidationPolicy(name=name, description=description, validate=validate, severity=severity,
                                      remediation_steps=remediation or None, config_schema=config_schema)
    policy.resource_types = types  # type: ignore[attr-defined]
    return policy


def stack_policy(name: str, description: str, resource_types: Iterable[str],
                 check: Callable[[StackValidationArgs, ReportViolation], None], *,
                 severity: Severity = Severity.HIGH, remediation: str = "",
                 config_schema: Optional[PolicyConfigSchema] = None) -> StackValidationPolicy:
    policy = StackValidationPolicy(name=name, description=description, validate=check, severity=severity,
                                   remediation_steps=remediation or None, config_schema=config_schema)
    policy.resource_types = tuple(resource_types)  # type: ignore[attr-defined]
    return policy


# ---- S3 -------------------------------------------------------------------------------------------

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def sse_kms_problem(rules: Any) -> Optional[str]:
    """None when some default-encryption rule uses SSE-KMS, else what is wrong."""
    algorithms = [get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in items(rules)]
    if any(a in KMS_ALGORITHMS for a in algorithms):
        return None
    if not algorithms:
        return "has no default-encryption rule"
    return f"sseAlgorithm is {', '.join(repr(a) for a in algorithms)}, not aws:kms (SSE-KMS)"


def pab_problem(props: Any) -> Optional[str]:
    off = [flag for flag in PAB_FLAGS if as_bool(get(props, flag)) is not True]
    return f"{', '.join(off)} not true" if off else None


def _s3_sse_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    problem = sse_kms_problem(get(args.props, "rules"))
    if problem:
        report(f"bucket encryption {args.name} {problem}: set rules[].applyServerSideEncryptionByDefault."
               f"sseAlgorithm to aws:kms with a customer-managed kmsMasterKeyId")


def _s3_public_access_block(args: ResourceValidationArgs, report: ReportViolation) -> None:
    problem = pab_problem(args.props)
    if problem:
        report(f"public access block {args.name}: {problem}; all four flags must be true")


def _refers_to(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    """Whether `resource.props[prop]` references `target`: by the engine's property dependencies,
    or by the target's explicit name."""
    deps = getattr(resource, "property_dependencies", None) or {}
    if any(getattr(d, "urn", None) == target.urn for d in deps.get(prop, [])):
        return True
    try:
        value = get(resource.props, prop)
        name = get(target.props, "bucket")
    except UnknownValueError:
        return False
    return value is not None and value == name


def _s3_bucket_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type in S3_BUCKET_TYPES]
    sses = [r for r in args.resources if r.resource_type in S3_SSE_TYPES]
    pabs = [r for r in args.resources if r.resource_type in S3_PAB_TYPES]
    for bucket in buckets:
        inline = get(bucket.props, "serverSideEncryptionConfiguration", "rule")
        encrypted = inline is not None and sse_kms_problem(inline) is None
        encrypted = encrypted or any(_refers_to(s, "bucket", bucket) and sse_kms_problem(get(s.props, "rules")) is None
                                     for s in sses)
        blocked = any(_refers_to(p, "bucket", bucket) and pab_problem(p.props) is None for p in pabs)
        missing = [what for what, ok in (("an SSE-KMS BucketServerSideEncryptionConfiguration", encrypted),
                                         ("a BucketPublicAccessBlock with all four flags true", blocked)) if not ok]
        if missing:
            report(f"bucket {bucket.name} has no {' and no '.join(missing)} referencing it", bucket.urn)


# ---- EC2 launch templates ---------------------------------------------------------------------------

HOP_LIMIT_SCHEMA = PolicyConfigSchema(properties={"maxHopLimit": {"type": "integer", "minimum": 1, "default": 1}})


def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    options = get(args.props, "metadataOptions", default={})
    if str(get(options, "httpEndpoint", default="enabled")).lower() == "disabled":
        return  # no instance metadata at all: nothing to steal
    tokens = get(options, "httpTokens")
    if tokens != "required":
        report(f"launch template {args.name}: metadataOptions.httpTokens is {tokens!r}, not 'required' (IMDSv1 "
               f"stays enabled)")
    limit = as_int(get(options, "httpPutResponseHopLimit"))
    max_limit = as_int(_config(args, "maxHopLimit", 1)) or 1
    if limit is None or limit > max_limit:
        shown = "unset" if limit is None else limit
        report(f"launch template {args.name}: metadataOptions.httpPutResponseHopLimit is {shown}; set it to <= "
               f"{max_limit} so pods cannot reach the node role's credentials through IMDS")


# ---- EKS ------------------------------------------------------------------------------------------

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def _eks_secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    configs = items(get(args.props, "encryptionConfig"))
    ok = any("secrets" in items(get(c, "resources")) and get(c, "provider", "keyArn") for c in configs)
    if not ok:
        report(f"EKS cluster {args.name}: encryptionConfig must list resources ['secrets'] with a "
               f"provider.keyArn (KMS envelope encryption of Kubernetes Secrets)")


def _eks_public_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    vpc = get(args.props, "vpcConfig", default={})
    public = as_bool(get(vpc, "endpointPublicAccess"))
    if public is False:
        return
    cidrs = [str(c) for c in items(get(vpc, "publicAccessCidrs"))]
    where = "public endpoint (endpointPublicAccess defaults to true)" if public is None else "public endpoint"
    if not cidrs:
        report(f"EKS cluster {args.name}: {where} with no publicAccessCidrs is open to 0.0.0.0/0; list your VPN/CI "
               f"CIDRs or set endpointPublicAccess false")
    elif any(c in OPEN_CIDRS for c in cidrs):
        report(f"EKS cluster {args.name}: publicAccessCidrs {cidrs} opens the API endpoint to the internet")


# ---- Kubernetes workloads ------------------------------------------------------------------------

def pod_template(resource_type: str, props: Any) -> Any:
    path = POD_TEMPLATE_PATHS.get(resource_type)
    if path is None:
        return None
    return get(props, *path) if path else props


def containers(template: Any) -> Iterator[tuple[str, Any]]:
    """(kind, container) for every container of a pod template."""
    spec = get(template, "spec", default={})
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in items(get(spec, kind)):
            yield kind, c


def gpu_amounts(container: Any) -> tuple[Any, Any]:
    return get(container, "resources", "requests", GPU), get(container, "resources", "limits", GPU)


def requests_gpus(container: Any) -> bool:
    return any(v is not None for v in gpu_amounts(container))


_TP_FLAG = re.compile(r"^(?:--tensor-parallel-size|-tp)(?:=(\S+))?$")


def tensor_parallel_sources(props: Any, template: Any) -> dict[str, Any]:
    """Every place a workload states its tensor-parallel size: annotation, engine flags, NIM profile."""
    found: dict[str, Any] = {}
    for where, meta in (("metadata.annotations", get(props, "metadata")),
                        ("template annotations", get(template, "metadata"))):
        value = get(meta, "annotations", TP_ANNOTATION)
        if value is not None:
            found[f"{where}[{TP_ANNOTATION}]"] = value
    for _, c in containers(template):
        argv = [str(a) for a in items(get(c, "command")) + items(get(c, "args"))]
        for i, arg in enumerate(argv):
            m = _TP_FLAG.match(arg)
            if m:
                value = m.group(1) if m.group(1) is not None else (argv[i + 1] if i + 1 < len(argv) else None)
                found[f"{get(c, 'name')} {arg.split('=')[0]}"] = value
        for env in items(get(c, "env")):
            if get(env, "name") == "NIM_MODEL_PROFILE":
                m = re.search(r"(?:^|[-_])tp(\d+)(?:$|[-_])", str(get(env, "value", default="")))
                if m:
                    found[f"{get(c, 'name')} NIM_MODEL_PROFILE"] = m.group(1)
    return found


def _gpu_tensor_parallel(args: ResourceValidationArgs, report: ReportViolation) -> None:
    template = pod_template(args.resource_type, args.props)
    gpu_containers = [c for _, c in containers(template) if requests_gpus(c)]
    sources = tensor_parallel_sources(args.props, template)
    if not gpu_containers:
        if any(k.startswith(("metadata", "template")) for k in sources):
            report(f"{args.name}: annotated {TP_ANNOTATION} but no container requests {GPU}")
            return
        args.not_applicable(f"no container requests {GPU}")
    sizes = {k: as_int(v) for k, v in sources.items()}
    bad = [k for k, v in sizes.items() if v is None or v < 1]
    if bad:
        report(f"{args.name}: tensor-parallel size at {', '.join(bad)} is not a positive integer")
        return
    tp_values = set(sizes.values())
    if len(tp_values) > 1:
        report(f"{args.name}: tensor-parallel sizes disagree: "
               + ", ".join(f"{k}={v}" for k, v in sizes.items()))
        return
    tp = next(iter(tp_values)) if tp_values else None
    for c in gpu_containers:
        request, limit = (as_int(v) for v in gpu_amounts(c))
        raw_request, raw_limit = gpu_amounts(c)
        name = get(c, "name")
        if raw_request is None or raw_limit is None:
            report(f"{args.name}: container {name} must set {GPU} in both requests and limits "
                   f"(requests={raw_request!r}, limits={raw_limit!r})")
        elif request is None or limit is None or request != limit:
            report(f"{args.name}: container {name} {GPU} request {raw_request!r} != limit {raw_limit!r}")
        elif tp is None:
            report(f"{args.name}: container {name} requests {limit} GPUs but the tensor-parallel size is not "
                   f"stated: add the annotation {TP_ANNOTATION} or the engine's --tensor-parallel-size flag")
        elif limit != tp:
            report(f"{args.name}: container {name} gets {limit} GPUs but the tensor-parallel size is {tp} "
                   f"(GPUs per replica must equal it)")


def parse_image(image: str) -> tuple[str, Optional[str], Optional[str]]:
    """(repository, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag or None, digest or None


def _images(args: ResourceValidationArgs) -> list[tuple[str, str]]:
    template = pod_template(args.resource_type, args.props)
    return [(str(get(c, "name")), str(get(c, "image", default=""))) for _, c in containers(template)]


def _image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for name, image in _images(args):
        _, tag, digest = parse_image(image)
        if tag == "latest":
            report(f"{args.name}: container {name} image {image!r} uses the tag 'latest'; pin a release tag "
                   f"or an @sha256 digest")
        elif tag is None and digest is None:
            report(f"{args.name}: container {name} image {image!r} has no tag (means 'latest'); pin a release tag "
                   f"or an @sha256 digest")


def _image_digest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for name, image in _images(args):
        if not (parse_image(image)[2] or "").startswith("sha256:"):
            report(f"{args.name}: container {name} image {image!r} is not pinned by digest (@sha256:...); a tag "
                   f"can be moved to different content")


# ---- availability (stack) --------------------------------------------------------------------------

HA_SCHEMA = PolicyConfigSchema(properties={"minReplicas": {"type": "integer", "minimum": 1, "default": 2}})


def selector_matches(selector: Any, labels: Any) -> bool:
    """Kubernetes LabelSelector semantics (an empty selector matches everything)."""
    labels = labels if is_map(labels) else {}
    for key, value in (get(selector, "matchLabels", default={}) or {}).items():
        if labels.get(key) != value:
            return False
    for expr in items(get(selector, "matchExpressions")):
        key, op, values = get(expr, "key"), get(expr, "operator"), [str(v) for v in items(get(expr, "values"))]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _namespace(props: Any) -> str:
    return str(get(props, "metadata", "namespace", default="default"))


def _serving_ha(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = as_int(_config(args, "minReplicas", 2)) or 2
    pdbs = [r for r in args.resources if r.resource_type in PDB_TYPES]
    for r in args.resources:
        if r.resource_type not in REPLICATED_TYPES:
            continue
        template = pod_template(r.resource_type, r.props)
        if not any(requests_gpus(c) for _, c in containers(template)):
            continue
        replicas = get(r.props, "spec", "replicas", default=1)
        count = as_int(replicas)
        if count is None or count < minimum:
            report(f"serving workload {r.name} has {replicas if count is None else count} replicas; at least "
                   f"{minimum} keep it serving "
                   f"through a node loss or a rolling update", r.urn)
        labels = get(template, "metadata", "labels", default={})
        ns = _namespace(r.props)
        matching = [p for p in pdbs if _namespace(p.props) == ns
                    and get(p.props, "spec", "selector") is not None
                    and selector_matches(get(p.props, "spec", "selector"), labels)]
        if not matching:
            report(f"serving workload {r.name} has no PodDisruptionBudget selecting its pods in namespace {ns}",
                   r.urn)
        for p in matching:
            spec = get(p.props, "spec", default={})
            if as_int(get(spec, "maxUnavailable")) == 0 or (
                    count is not None and as_int(get(spec, "minAvailable")) is not None
                    and as_int(get(spec, "minAvailable")) >= count):
                report(f"PodDisruptionBudget {p.name} allows no voluntary disruption of {r.name}; node drains "
                       f"and upgrades would hang (use maxUnavailable: 1)", p.urn)


# ---- secrets ----------------------------------------------------------------------------------------

SECRETS_SCHEMA = PolicyConfigSchema(properties={"redactionMarker": {
    "type": "string",
    "description": "Set only for recorded (offline) resources: the value that stands for a secret. Secret "
                   "data other than this marker is plaintext.",
}})
_SECRET_NAME_WORDS = {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "APIKEY", "CREDENTIAL", "CREDENTIALS"}
_NOT_A_SECRET_SUFFIXES = {"PATH", "FILE", "DIR", "NAME", "ID", "URL", "URI", "ENDPOINT", "REF", "TYPE"}
CREDENTIAL_PATTERNS = {
    "an NGC API key": re.compile(r"\bnvapi-[A-Za-z0-9_-]{20,}"),
    "a Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def secret_like_name(name: str) -> bool:
    words = [w for w in re.split(r"[^A-Z0-9]+", name.upper()) if w]
    if not words or words[-1] in _NOT_A_SECRET_SUFFIXES:
        return False
    joined = "_".join(words)
    return bool(_SECRET_NAME_WORDS & set(words)) or joined.endswith(("API_KEY", "ACCESS_KEY", "PRIVATE_KEY"))


def credential_kind(value: str) -> Optional[str]:
    for kind, pattern in CREDENTIAL_PATTERNS.items():
        if pattern.search(value):
            return kind
    return None


def _is_redacted(value: Any, marker: str) -> bool:
    """The recorder's marker, or a pulumi_policy.Secret (how the SDK marks secrets when it keeps them)."""
    return isinstance(value, Secret) or value == marker


def _no_plaintext_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    marker = _config(args, "redactionMarker", None)
    if args.resource_type in SECRET_TYPES:
        if not marker:
            args.not_applicable("secret values arrive decrypted under the engine; Secret data is checked on "
                                "recorded resources (servingstack check)")
        for field in ("stringData", "data"):
            value = get(args.props, field)
            if value is None or _is_redacted(value, marker):
                continue
            if not is_map(value):
                report(f"Secret {args.name}: {field} is plaintext; build it from a secret Output")
                continue
            plain = sorted(k for k, v in value.items() if not _is_redacted(v, marker))
            if plain:
                report(f"Secret {args.name}: {field} keys {plain} hold plaintext values; build them from secret "
                       f"config (pulumi config set --secret) so they stay encrypted in state")
        return
    template = pod_template(args.resource_type, args.props)
    for _, c in containers(template):
        cname = get(c, "name")
        for env in items(get(c, "env")):
            name, value = str(get(env, "name", default="")), get(env, "value")
            if value is None or value == "":
                continue
            text = str(value)
            if marker and text == marker:
                report(f"{args.name}: container {cname} env {name} inlines a secret value; reference it with "
                       f"valueFrom.secretKeyRef (or mount it as a file)")
            elif secret_like_name(name):
                report(f"{args.name}: container {cname} env {name} has a literal value; credentials belong in a "
                       f"Secret referenced by valueFrom.secretKeyRef")
            elif credential_kind(text):
                report(f"{args.name}: container {cname} env {name} holds what looks like {credential_kind(text)}; "
                       f"use valueFrom.secretKeyRef")


# ---- the list -------------------------------------------------------------------------------------

POLICIES: list[Policy] = [
    resource_policy("s3-bucket-sse-kms", "S3 bucket default encryption uses SSE-KMS.", S3_SSE_TYPES, _s3_sse_kms,
                    remediation="Set sseAlgorithm aws:kms and kmsMasterKeyId on the bucket's encryption rule."),
    resource_policy("s3-bucket-public-access-block", "S3 public access blocks set all four flags.", S3_PAB_TYPES,
                    _s3_public_access_block,
                    remediation="blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets: true."),
    stack_policy("s3-bucket-encrypted-and-private",
                 "Every S3 bucket has an SSE-KMS encryption configuration and a full public access block.",
                 S3_BUCKET_TYPES, _s3_bucket_protected,
                 remediation="Create BucketServerSideEncryptionConfiguration and BucketPublicAccessBlock for it."),
    resource_policy("ec2-launch-template-imdsv2",
                    "Node launch templates require IMDSv2 (httpTokens required) with a response hop limit of 1.",
                    LAUNCH_TEMPLATE_TYPES, _imdsv2, config_schema=HOP_LIMIT_SCHEMA,
                    remediation="metadataOptions: {httpTokens: required, httpPutResponseHopLimit: 1}."),
    resource_policy("eks-secrets-encryption", "EKS clusters envelope-encrypt Kubernetes Secrets with KMS.",
                    EKS_CLUSTER_TYPES, _eks_secrets_encryption,
                    remediation="encryptionConfig: {resources: [secrets], provider: {keyArn: <KMS key ARN>}}."),
    resource_policy("eks-public-endpoint-restricted",
                    "The EKS API endpoint is private or limited to listed CIDRs (never 0.0.0.0/0).",
                    EKS_CLUSTER_TYPES, _eks_public_endpoint,
                    remediation="Set cluster.publicAccessCidrs to your VPN/CI egress ranges."),
    resource_policy("k8s-gpu-tensor-parallel",
                    "GPU containers request = limit = the tensor-parallel size.", WORKLOAD_TYPES,
                    _gpu_tensor_parallel,
                    remediation=f"Set {GPU} requests and limits to the tensor-parallel size; annotate "
                                f"{TP_ANNOTATION}."),
    resource_policy("k8s-image-pinned", "Container images have a tag other than 'latest', or a digest.",
                    WORKLOAD_TYPES, _image_pinned, remediation="Use a release tag or an @sha256 digest."),
    resource_policy("k8s-image-digest", "Container images are pinned by digest (preferred in prod).",
                    WORKLOAD_TYPES, _image_digest, severity=Severity.LOW,
                    remediation="Set the stack's image to repository@sha256:<digest>."),
    stack_policy("k8s-serving-ha",
                 "GPU serving workloads run >= 2 replicas and have a PodDisruptionBudget selecting their pods.",
                 REPLICATED_TYPES, _serving_ha, severity=Severity.MEDIUM, config_schema=HA_SCHEMA,
                 remediation="serving.replicas: 2 or more (the components then add a PodDisruptionBudget)."),
    resource_policy("k8s-no-plaintext-secrets",
                    "No plaintext secret values in Kubernetes Secrets or container env.",
                    SECRET_TYPES + WORKLOAD_TYPES, _no_plaintext_secrets, severity=Severity.CRITICAL,
                    config_schema=SECRETS_SCHEMA,
                    remediation="Take secrets from `pulumi config set --secret`; reference them with secretKeyRef."),
]

# ---- enforcement per environment ------------------------------------------------------------------

ALWAYS_ADVISORY = frozenset({"k8s-image-digest"})
"""Preferences: reported, never blocking."""
PROD_ONLY = frozenset({"k8s-serving-ha"})
"""Availability rules that cost a second GPU replica: mandatory in prod only."""


def normalize_environment(environment: Optional[str]) -> str:
    """dev, staging or prod; anything unknown is treated as prod (fail closed)."""
    env = (environment or "").strip().lower()
    return env if env in ENVIRONMENTS else "prod"


def enforcement_levels(environment: Optional[str]) -> dict[str, EnforcementLevel]:
    """Policy name -> level. dev: all advisory. staging: mandatory except availability (prod-only) and
    preferences. prod (and anything unknown): mandatory except preferences."""
    env = normalize_environment(environment)
    levels = {}
    for p in POLICIES:
        advisory = env == "dev" or p.name in ALWAYS_ADVISORY or (env == "staging" and p.name in PROD_ONLY)
        levels[p.name] = EnforcementLevel.ADVISORY if advisory else EnforcementLevel.MANDATORY
    return levels


def pack_enforcement_level(environment: Optional[str]) -> EnforcementLevel:
    return EnforcementLevel.ADVISORY if normalize_environment(environment) == "dev" else EnforcementLevel.MANDATORY


def policies_for(environment: Optional[str]) -> list[Policy]:
    """Copies of POLICIES with this environment's enforcement level set on each (POLICIES is untouched)."""
    levels = enforcement_levels(environment)
    out = []
    for p in POLICIES:
        q = copy.copy(p)
        q.enforcement_level = levels[p.name]
        out.append(q)
    return out


def environment_from(environ: Mapping[str, str]) -> str:
    """The environment the pack enforces, from the process environment of the policy pack:
    1. SERVINGSTACK_ENVIRONMENT (explicit override, e.g. in CI);
    2. the stack's own `servingstack:environment`, from PULUMI_CONFIG (the engine hands a policy pack
       the stack's config as JSON in that variable, as it does to a language host);
    3. otherwise prod (fail closed)."""
    explicit = environ.get(ENVIRONMENT_VAR)
    if explicit:
        return normalize_environment(explicit)
    try:
        config = json.loads(environ.get("PULUMI_CONFIG") or "{}")
    except json.JSONDecodeError:
        config = {}
    if isinstance(config, dict):
        for key in ("servingstack:environment", "servingstack:config:environment"):
            if config.get(key):
                return normalize_environment(str(config[key]))
    return "prod"


def offline_config() -> dict[str, dict[str, Any]]:
    """Policy config for runs on the offline recorder's resources (secret values are REDACTED)."""
    return {"k8s-no-plaintext-secrets": {"redactionMarker": REDACTED}}
