"""Documentation values in a stack file that cannot work on a real account.

The shipped stacks carry them on purpose (they must synthesize anywhere): `servingstack synth` keeps
them with a notice; a real `pulumi preview` / `up` refuses them in one line before anything is built
(servingstack.platform), naming the key and what to put there.

- RFC 5737 reserves 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 (TEST-NET-1..3) for
  documentation: no deploy runner egresses from them, so an API endpoint open only to them is closed
  to `pulumi up` itself (every Kubernetes resource times out after the cluster is built).
- 123456789012, 111122223333 and 444455556666 are the account ids of the AWS documentation's
  examples: EKS refuses access entries for them ("The specified principalArn is invalid").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import NAMESPACE, ConfigError
from .models import StackConfig

TEST_NETS = tuple(ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))
DOC_ACCOUNTS = ("123456789012", "111122223333", "444455556666")

CIDR_FIX = ("list the CIDR your deploy runner egresses from, e.g. "
            "\"$(curl -s https://checkip.amazonaws.com)/32\", and your VPN's")
ARN_FIX = ("use an ARN in your account (`aws sts get-caller-identity --query Account`); SSO roles "
           "need their full aws-reserved/sso.amazonaws.com/ path")


@dataclass(frozen=True)
class Placeholder:
    key: str
    value: str
    what: str
    fix: str

    @property
    def full_key(self) -> str:
        return f"{NAMESPACE}:{self.key}"

    def error(self) -> ConfigError:
        return ConfigError(self.key, f"{self.value!r} is {self.what}, a placeholder that cannot work on a "
                                     f"real account — {self.fix}")


def _doc_account(arn: str) -> bool:
    m = re.match(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):", arn)
    return bool(m) and m.group(1) in DOC_ACCOUNTS


def find_placeholders(cfg: StackConfig) -> list[Placeholder]:
    """Every documentation value in the config, in key order."""
    found: list[Placeholder] = []
    if cfg.cluster.create:
        for cidr in cfg.cluster.public_access_cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            if any(net.overlaps(t) for t in TEST_NETS):
                found.append(Placeholder("cluster.publicAccessCidrs", cidr,
                                         "an RFC 5737 documentation range (TEST-NET)", CIDR_FIX))
        for arn in cfg.cluster.admin_principal_arns:
            if _doc_account(arn):
                found.append(Placeholder("cluster.adminPrincipalArns", arn,
                                         "an ARN in the AWS documentation's example account", ARN_FIX))
    if cfg.model_store.kms_key_arn and _doc_account(cfg.model_store.kms_key_arn):
        found.append(Placeholder("modelStore.kmsKeyArn", cfg.model_store.kms_key_arn,
                                 "an ARN in the AWS documentation's example account",
                                 "use the ARN of the key your bucket encrypts with (aws s3api "
                                 "get-bucket-encryption --bucket NAME)"))
    return found


def refuse_placeholders(cfg: StackConfig) -> None:
    """Raise the first placeholder as a one-line ConfigError (real runs only)."""
    found = find_placeholders(cfg)
    if found:
        raise found[0].error()
