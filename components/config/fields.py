"""The base every config model shares and the field checks several models use."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .errors import RuleError


class ConfigModel(BaseModel):
    """camelCase keys, unknown keys refused, frozen, defaults validated, docstrings as descriptions."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, use_enum_values=True,
        validate_default=True, use_attribute_docstrings=True,
    )


K8S_VERSION = r"^1\.(2[9]|3[0-5])$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
IMAGE = r"^[a-z0-9][a-z0-9._\-/:]*[a-z0-9_](@sha256:[a-f0-9]{64})?$"


def check_cidr(value: str) -> str:
    m = CIDR.match(value)
    if not m or any(int(p) > 255 for p in m.groups()[:4]) or int(m.group(5)) > 32:
        raise ValueError(f"'{value}' is not an IPv4 CIDR such as 203.0.113.0/24")
    return value


def check_sizes(min_size: int, max_size: int, desired: int) -> None:
    """min <= desired <= max, as EKS requires of a node group's scaling config."""
    if min_size > max_size:
        raise RuleError("minSize", f"{min_size} is greater than maxSize {max_size} — minSize must be <= maxSize")
    if not min_size <= desired <= max_size:
        raise RuleError("desiredSize", f"{desired} is outside [minSize {min_size}, maxSize {max_size}]")


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
