"""The base every config model shares, and reusable field types built from the rules of the formats
they hold. New config keys should use these rather than their own patterns.

Strictness is the house default: `ConfigModel` is pydantic-strict (no `yes` for a boolean, no
`true` or `"2"` for an integer) and refuses NaN and infinities. Patterns are matched whole
(`re.fullmatch`) with ASCII classes, so `"1.33\\n"` or Arabic-Indic digits never pass a version or
CIDR check. Field validators raise `ValueError` with a message that does not repeat the value: the
loader prefixes it, quoted and bounded (`errors.format_value`).

Field types (use as annotations, e.g. `namespace: ServingNamespace = "llm-serving"`):
  Dns1123Label, Dns1035Label, ServingNamespace, K8sLabelKey, K8sLabelValue, NodeLabels,
  AwsTagKey, AwsTagValue, AwsTags, S3BucketName, EksClusterName, ChartVersion, ImageRef,
  ContainerArg, HfModelId, Ipv4Cidr, VpcCidr, AvailabilityZone, AwsRegion, Enum (lenient enum)
Functions: check_cidr, covered_share, check_eks_cluster_name, matching, check_sizes, snake_case.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Annotated, Any, Callable, Iterable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ..planning.node import GPU_PRESENT_LABEL, POOL_LABEL
from .errors import RuleError


class ConfigModel(BaseModel):
    """camelCase keys, unknown keys refused, frozen, defaults validated, docstrings as descriptions;
    strict types (a boolean is true/false, an integer an integer) and finite numbers only."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, use_enum_values=True,
        validate_default=True, use_attribute_docstrings=True, strict=True, allow_inf_nan=False,
    )


def Enum(default: Any = ..., **kwargs: Any) -> Any:  # noqa: N802 - reads as a field kind
    """Field() for an Enum-typed key: strict mode would demand an Enum instance, a stack file gives
    its value ('prod'), so enum fields alone validate by value."""
    return Field(default, strict=False, **kwargs)


def matching(pattern: str, what: str, max_len: int = 253) -> Callable[[str], str]:
    """A validator: the whole string matches `pattern` (ASCII classes) and is at most `max_len` long."""
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if len(value) > max_len:
            raise ValueError(f"is {len(value)} characters long — {what}, at most {max_len} characters")
        if not compiled.fullmatch(value):
            raise ValueError(f"is not {what}")
        return value
    return check


def _text(pattern: str, what: str, max_len: int = 253) -> Any:
    return Annotated[str, AfterValidator(matching(pattern, what, max_len))]


# ---- Kubernetes names (apimachinery validation: IsDNS1123Label, IsDNS1035Label, IsQualifiedName) -

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"

Dns1123Label = _text(_DNS1123_LABEL, "a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
                     "with a letter or digit, e.g. llm-serving)", 63)
Dns1035Label = _text(_DNS1035_LABEL, "a DNS-1035 label, as Kubernetes Service names must be (lowercase letters, "
                     "digits and '-', starting with a letter, e.g. llm)", 63)

#: Namespaces Kubernetes, EKS or this platform's add-ons own; serving objects never go there.
#: The device plugin's is servingstack.k8s.device_plugin.NAMESPACE (a test keeps them equal).
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "nvidia-device-plugin")


def _serving_namespace(value: str) -> str:
    if value in SYSTEM_NAMESPACES or value.startswith("kube-"):
        raise ValueError("is a system namespace (Kubernetes reserves default and kube-*; nvidia-device-plugin runs "
                         "the device plugin) — give the serving objects their own namespace, e.g. llm-serving")
    return value


ServingNamespace = Annotated[Dns1123Label, AfterValidator(_serving_namespace)]


def _label_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if len(key) > 63:  # EKS node group labels: keys of 1 to 63 characters, prefix included
        raise ValueError(f"is {len(key)} characters long — EKS node labels keys are at most 63 characters")
    if not re.fullmatch(_QUALIFIED_NAME, name, re.ASCII) or (slash and not re.fullmatch(_DNS1123_SUBDOMAIN, prefix,
                                                                                          re.ASCII)):
        raise ValueError("is not a Kubernetes label key ([prefix/]name: a DNS subdomain prefix, a name of letters, "
                         "digits, '-', '_' and '.', starting and ending with a letter or digit)")
    reserved = prefix in ("kubernetes.io", "k8s.io") or prefix.endswith((".kubernetes.io", ".k8s.io"))
    allowed = any(prefix == p or prefix.endswith("." + p) for p in ("node.kubernetes.io", "kubelet.kubernetes.io"))
    if reserved and not allowed:
        raise ValueError("uses a prefix Kubernetes reserves (kubelet refuses kubernetes.io/ and k8s.io/ node labels "
                         "except under node.kubernetes.io/ and kubelet.kubernetes.io/) — use your own prefix")
    if key in (GPU_PRESENT_LABEL, POOL_LABEL):
        raise ValueError("is set by servingstack on every GPU pool — remove it from labels")
    return key


def _label_value(value: str) -> str:
    if not 1 <= len(value) <= 63 or not re.fullmatch(_QUALIFIED_NAME, value, re.ASCII):
        raise ValueError("is not an EKS node label value (1 to 63 letters, digits, '-', '_' and '.', starting and "
                         "ending with a letter or digit)")
    return value


K8sLabelKey = Annotated[str, AfterValidator(_label_key)]
K8sLabelValue = Annotated[str, AfterValidator(_label_value)]
NodeLabels = Annotated[dict[K8sLabelKey, K8sLabelValue], Field(max_length=50)]


# ---- AWS names and tags -----------------------------------------------------------------------

#: Tags servingstack adds to a resource beside the user's (environment, stack, managed-by, Name,
#: pool); AWS allows 50 user tags per resource.
PLATFORM_TAGS = 5
_TAG_PUNCTUATION = set("_.:/=+-@ ")


def _tag_text(value: str) -> bool:
    """Letters, digits, spaces and _ . : / = + - @ (the set every tagging service accepts)."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" for c in value)


def _tag_key(key: str) -> str:
    if not 1 <= len(key) <= 128:
        raise ValueError(f"is {len(key)} characters long — AWS tag keys have 1 to 128 characters")
    if key.lower().startswith("aws:"):
        raise ValueError("starts with aws:, which AWS reserves for its own tags — choose another key")
    if not _tag_text(key):
        raise ValueError("has characters AWS tags refuse — use letters, digits, spaces and _ . : / = + - @")
    return key


def _tag_value(value: str) -> str:
    if len(value) > 256:
        raise ValueError(f"is {len(value)} characters long — AWS tag values have at most 256 characters")
    if not _tag_text(value):
        raise ValueError("has characters AWS tags refuse — use letters, digits, spaces and _ . : / = + - @")
    return value


AwsTagKey = Annotated[str, AfterValidator(_tag_key)]
AwsTagValue = Annotated[str, AfterValidator(_tag_value)]
AwsTags = Annotated[dict[AwsTagKey, AwsTagValue], Field(max_length=50 - PLATFORM_TAGS)]

_S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _bucket_name(value: str) -> str:
    """S3 general purpose bucket naming rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)."""
    if not 3 <= len(value) <= 63 or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", value, re.ASCII):
        raise ValueError("is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-', starting and "
                         "ending with a letter or digit)")
    if ".." in value:
        raise ValueError("has two adjacent periods, which S3 bucket names may not")
    if re.fullmatch(r"[0-9]+(\.[0-9]+){3}", value):
        raise ValueError("is formatted as an IP address, which S3 bucket names may not be")
    reserved = next((p for p in _S3_RESERVED_PREFIXES if value.startswith(p)), None) or \
        next((s for s in _S3_RESERVED_SUFFIXES if value.endswith(s)), None)
    if reserved:
        raise ValueError(f"uses {reserved!r}, which S3 reserves in bucket names")
    return value


S3BucketName = Annotated[str, AfterValidator(_bucket_name)]

#: EKS CreateCluster `name`: 1-100 characters, ^[0-9A-Za-z][A-Za-z0-9\-_]*$ (EKS API reference).
EKS_CLUSTER_NAME = r"[0-9A-Za-z][A-Za-z0-9_-]*"


def check_eks_cluster_name(value: str) -> str:
    return matching(EKS_CLUSTER_NAME, "an EKS cluster name (letters, digits, '-' and '_', starting with a letter or "
                    "digit)", 100)(value)


EksClusterName = Annotated[str, AfterValidator(check_eks_cluster_name)]
AwsRegion = _text(r"[a-z]{2}(-[a-z]+)+-[0-9]", "an AWS region name such as us-east-1", 32)
AvailabilityZone = _text(r"[a-z]{2}(-[a-z]+)+-[0-9][a-h]", "an availability zone such as us-east-1a (zones a "
                         "to h)", 32)
IamPrincipalArn = _text(r"arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}",
                        "an IAM role or user ARN (arn:aws:iam::123456789012:role/name; for an assumed-role session, "
                        "name its role)", 600)
KmsKeyArn = _text(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}",
                  "a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)", 256)
SubnetId = _text(r"subnet-[0-9a-f]{8,17}", "a subnet id (subnet-0123456789abcdef0)", 24)
InstanceTypeName = _text(r"[a-z0-9-]+\.[a-z0-9]+", "an EC2 instance type such as m6i.large", 64)


# ---- versions, images, models, engine arguments -----------------------------------------------

ChartVersion = _text(r"[0-9]+\.[0-9]+\.[0-9]+", "an exact chart version such as 0.17.0", 32)
K8sMinorVersion = _text(r"1\.(29|3[0-5])", "a Kubernetes minor version this release supports — use \"1.29\" to "
                        "\"1.35\" (quoted, so YAML keeps it a string)", 8)
ImageRef = _text(r"[a-z0-9][a-z0-9._/:-]*[a-z0-9_](@sha256:[a-f0-9]{64})?",
                 "a container image reference (registry/repository:tag or @sha256:digest, lowercase)", 512)
HfModelId = _text(r"[A-Za-z0-9_.-]{1,96}/[A-Za-z0-9_.-]{1,96}", "a Hugging Face model id such as "
                  "meta-llama/Llama-3.1-8B-Instruct", 200)


def _container_arg(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty — remove it (an empty argument is passed to the engine as '')")
    if len(value) > 4096:
        raise ValueError(f"is {len(value)} characters long — container arguments here are at most 4096 characters")
    if not value.isprintable():
        raise ValueError("holds a newline or control character — give each flag and value as its own list item")
    return value


ContainerArg = Annotated[str, AfterValidator(_container_arg)]


# ---- networks -----------------------------------------------------------------------------------

def check_cidr(value: str, min_prefix: int = 0, max_prefix: int = 32, what: str = "this key") -> str:
    """An IPv4 network in canonical form (ipaddress): an explicit prefix, the network address (no host
    bits), no leading zeros or netmask spelling, prefix within [min_prefix, max_prefix]."""
    try:
        interface = ipaddress.IPv4Interface(value)
    except (ValueError, TypeError):
        raise ValueError("is not an IPv4 CIDR such as 203.0.113.0/24") from None
    net = interface.network
    if "/" not in value:
        raise ValueError(f"is not an IPv4 CIDR: it has no prefix length (e.g. {net.network_address}/16)")
    if interface.ip != net.network_address:
        raise ValueError(f"has host bits set — use the network address {net}")
    if str(net) != value:
        raise ValueError(f"is not written canonically — write it {net}")
    if not min_prefix <= net.prefixlen <= max_prefix:
        raise ValueError(f"has prefix /{net.prefixlen} — {what} takes /{min_prefix} to /{max_prefix}")
    return value


def covered_share(cidrs: Iterable[str]) -> float:
    """The share of the IPv4 address space the networks cover together (overlaps counted once)."""
    nets = ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in cidrs)
    return sum(n.num_addresses for n in nets) / 2**32


Ipv4Cidr = Annotated[str, AfterValidator(check_cidr)]
#: AWS allows VPCs of /16 to /28; the address plan (aws/network_spec.py) gives every zone a private
#: sixteenth and a public 128th of the VPC, and AWS subnets are /28 at the smallest: /16 to /21.
VpcCidr = Annotated[str, AfterValidator(lambda v: check_cidr(v, 16, 21, "a VPC (AWS allows /16 to /28; the subnet "
                                                              "plan needs /21 or larger)"))]


# Patterns for `Field(pattern=...)` kept for keys that use them (pydantic matches them whole with its
# Rust engine: `$` is the end of the text); prefer the types above.
K8S_VERSION = r"^1\.(29|3[0-5])$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
IMAGE = r"^[a-z0-9][a-z0-9._\-/:]*[a-z0-9_](@sha256:[a-f0-9]{64})?$"


def check_sizes(min_size: int, max_size: int, desired: int) -> None:
    """min <= desired <= max, as EKS requires of a node group's scaling config."""
    if min_size > max_size:
        raise RuleError("minSize", f"{min_size} is greater than maxSize {max_size} — minSize must be <= maxSize")
    if not min_size <= desired <= max_size:
        raise RuleError("desiredSize", f"{desired} is outside [minSize {min_size}, maxSize {max_size}]")


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
