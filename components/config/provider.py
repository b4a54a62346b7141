"""The AWS provider settings the program itself needs: who `aws eks get-token` runs as.

They are the AWS provider's own config keys, `aws:profile` and `aws:assumeRoles` (pulumi-aws 7: a
list of {roleArn, sessionName, ...}; the legacy single `aws:assumeRole` object is read too), never
`servingstack:` keys. The kubeconfig passes the same profile and the last role of the chain (the
principal the provider ends up as) to `aws eks get-token`, so AWS and Kubernetes calls run as the
same principal (pulumi/pulumi-eks#1578, providerCredentialOpts).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from pydantic import Field

from .errors import ConfigError
from .fields import ConfigModel

ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$"


class AwsProviderConfig(ConfigModel):
    profile: Optional[str] = Field(None, min_length=1)
    """`aws:profile`: the shared-config profile the provider uses; unset: the default credential chain."""
    assume_role_arn: Optional[str] = Field(None, pattern=ROLE_ARN)
    """The role the provider assumes last (`aws:assumeRoles`); unset: none."""


def provider_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """`aws:profile` / `aws:assumeRoles` / `aws:assumeRole` from raw engine config (strings or JSON),
    as the fields of AwsProviderConfig. Raises ConfigError for a malformed role setting."""
    out: dict[str, Any] = {}
    if raw.get("aws:profile"):
        out["profile"] = raw["aws:profile"]
    for key in ("aws:assumeRoles", "aws:assumeRole"):
        value = raw.get(key)
        if value in (None, ""):
            continue
        try:
            decoded = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raise ConfigError(key, f"{value!r} is not JSON/YAML — see the pulumi-aws provider configuration") from None
        roles = decoded if isinstance(decoded, list) else [decoded]
        arns = [r.get("roleArn") for r in roles if isinstance(r, dict) and r.get("roleArn")]
        if not arns:
            raise ConfigError(key, "has no roleArn — list roles as [{roleArn: arn:aws:iam::ACCOUNT:role/NAME}]")
        out["assume_role_arn"] = arns[-1]
    return out
