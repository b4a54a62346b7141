"""Pure: the kubeconfig for an EKS cluster (token from `aws eks get-token`, no static credentials)."""

from __future__ import annotations

import json
from typing import Optional


def get_token_args(cluster_name: str, region: str, profile: Optional[str] = None,
                   role_arn: Optional[str] = None) -> list[str]:
    """`aws eks get-token` arguments: the same profile and assumed role as the AWS provider
    (`aws:profile`, last of `aws:assumeRoles`), so Kubernetes calls run as the principal that made the
    cluster's access entries."""
    args = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"]
    if role_arn:
        args += ["--role-arn", role_arn]
    if profile:
        args += ["--profile", profile]
    return args


def eks_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str, profile: Optional[str] = None,
                   role_arn: Optional[str] = None) -> str:
    """A kubeconfig JSON string that authenticates with the caller's AWS identity (or `profile` /
    `role_arn`, the AWS provider's)."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{
            "name": cluster_name,
            "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "aws",
                "args": get_token_args(cluster_name, region, profile, role_arn),
                "interactiveMode": "Never",
            }},
        }],
    })


def oidc_provider_arn(account_id: str, issuer_url: str, partition: str = "aws") -> str:
    """The IAM OIDC provider ARN for a cluster issuer (what IRSA trust policies name)."""
    return f"arn:{partition}:iam::{account_id}:oidc-provider/{issuer_url.removeprefix('https://')}"
