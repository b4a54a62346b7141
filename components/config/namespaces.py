"""Stack config keys as the Pulumi CLI and the AWS provider read them: `<namespace>:<name>` keys,
near-miss namespaces, and the AWS provider's own keys.

- A key is parsed as Pulumi's `config.ParseKey` does (sdk/go/common/resource/config/key.go): one
  ':' (`ns:name`) or the legacy `ns:config:name`; anything else is refused, as the CLI refuses it
  ("could not parse ... as a configuration key").
- A namespace a small edit away from `servingstack` or `aws`, or differing only in case
  (`servingstak:`, `ServingStack:`, `AWS:`), is refused with "did you mean": its keys would
  otherwise be silently ignored and the defaults deployed. Other namespaces are left alone.
- `aws:` keys must be the AWS provider's: the default provider refuses any other ("`aws:foo` is
  not a valid configuration key for the aws provider", pulumi/pulumi-aws#3360,
  pulumi/pulumi-terraform-bridge#1663).
"""

from __future__ import annotations

from typing import Iterable

from .errors import NAMESPACE, ConfigError, _edit_distance, close_match, did_you_mean, format_value

#: The AWS provider's configuration keys: pulumi-aws 7.51.1 `pulumi_aws/config/vars.py` (2026-11;
#: tests/test_input_hardening.py compares this list with the installed package).
AWS_PROVIDER_KEYS = (
    "accessKey", "allowedAccountIds", "assumeRoleWithWebIdentity", "assumeRoles", "customCaBundle", "defaultTags",
    "ec2MetadataServiceEndpoint", "ec2MetadataServiceEndpointMode", "endpoints", "forbiddenAccountIds", "httpProxy",
    "httpsProxy", "ignoreTags", "insecure", "maxRetries", "noProxy", "profile", "region", "retryMode",
    "s3UsEast1RegionalEndpoint", "s3UsePathStyle", "secretKey", "sharedConfigFiles", "sharedCredentialsFiles",
    "skipCredentialsValidation", "skipMetadataApiCheck", "skipRegionValidation", "skipRequestingAccountId",
    "stsRegion", "tagPolicyCompliance", "token", "tokenBucketRateLimiterCapacity", "useDualstackEndpoint",
    "useFipsEndpoint", "userAgents",
)

#: Namespaces of real Pulumi packages that are an edit or so from `aws`: never near misses.
KNOWN_NAMESPACES = ("awsx", "aws-native", "aws-iam", "aws-apigateway", "aws-static-website", "eks", "pulumi")

#: The keys a stack file holds beside config (sdk/go/common/workspace/project.go, ProjectStack).
STACK_FILE_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")


def split_key(full_key: str, known_keys: Iterable[str] = ()) -> tuple[str, str]:
    """(namespace, name) of a config key, by Pulumi's rule; ConfigError for a key the CLI refuses."""
    parts = full_key.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "config" and parts[0] and parts[2]:
        return parts[0], parts[2]
    match = close_match(full_key, known_keys) if len(parts) == 1 else None
    hint = f" — did you mean {format_value(f'{NAMESPACE}:{match}')}?" if match else ""
    raise ConfigError(full_key, f"could not parse {format_value(full_key)} as a configuration key (the Pulumi CLI "
                      f"refuses it: configuration keys should be of the form `<namespace>:<name>`){hint}",
                      absolute=True)


def near_miss(namespace: str) -> str | None:
    """`servingstack` or `aws` when `namespace` looks like a misspelling of one, else None."""
    if namespace in (NAMESPACE, "aws") or namespace.lower() in KNOWN_NAMESPACES:
        return None
    low = namespace.lower()
    for target, distance in ((NAMESPACE, 2), ("aws", 1)):
        if low == target or (len(low) >= 2 and _edit_distance(low[:40], target) <= distance):
            return target
    return None


def check_key(full_key: str, known_keys: Iterable[str] = ()) -> tuple[str, str]:
    """(namespace, name) of a key servingstack may read, after refusing what the CLI or the AWS
    provider would refuse, and near-miss namespaces."""
    namespace, name = split_key(full_key, known_keys)
    target = near_miss(namespace)
    if target is not None:
        raise ConfigError(full_key, f"unknown namespace {format_value(namespace)} — did you mean "
                          f"{format_value(f'{target}:{name}')}? (keys under another namespace are not read by "
                          "servingstack, so this one would be ignored)", absolute=True)
    if namespace == "aws" and name not in AWS_PROVIDER_KEYS:
        hint = did_you_mean(full_key, [f"aws:{k}" for k in AWS_PROVIDER_KEYS])
        raise ConfigError(full_key, f"is not a configuration key of the AWS provider (the default provider refuses "
                          f"it){hint} — keys meant for another tool need their own namespace", absolute=True)
    return namespace, name
