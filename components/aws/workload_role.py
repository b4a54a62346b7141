"""The IAM role of one Kubernetes ServiceAccount, bound by EKS Pod Identity (default) or an IRSA trust
policy: the shape ModelReadAccess, BenchmarkWriteAccess and ClusterAutoscaler share. The caller
attaches its own policy to the role; no static keys anywhere."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

import pulumi
import pulumi_aws as aws

from ..config.errors import RuleError
from .iam_spec import irsa_trust_policy, pod_identity_trust_policy

#: The ServiceAccount annotation IRSA reads (EKS docs, "Assign IAM roles to Kubernetes service accounts").
IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


def check_irsa_args(args: Mapping[str, Any]) -> None:
    """IRSA (use_pod_identity false) needs the cluster's OIDC provider and issuer: refuse in one line
    at construction instead of a KeyError deep in the program."""
    if not args.get("use_pod_identity", True):
        for key in ("oidc_provider_arn", "oidc_issuer_url"):
            if not args.get(key):
                raise RuleError(key, "is required when use_pod_identity is false (IRSA): pass the EksCluster's "
                                     f"`{key}` output")


def workload_role(name: str, args: Mapping[str, Any], namespace: str, service_account: str,
                  opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The role `<name>-role` that the ServiceAccount `namespace/service_account` may assume."""
    if args.get("use_pod_identity", True):
        trust = pulumi.Output.from_input(json.dumps(pod_identity_trust_policy()))
    else:
        trust = pulumi.Output.all(args["oidc_provider_arn"], args["oidc_issuer_url"]).apply(
            lambda a: json.dumps(irsa_trust_policy(a[0], a[1], namespace, service_account)))
    return aws.iam.Role(f"{name}-role", assume_role_policy=trust, tags=dict(args.get("tags") or {}), opts=opts)


def bind_workload_role(name: str, args: Mapping[str, Any], role: aws.iam.Role, namespace: str,
                       service_account: str, opts: pulumi.ResourceOptions
                       ) -> tuple[Optional[aws.eks.PodIdentityAssociation], pulumi.Output[dict[str, str]]]:
    """Pod Identity: the association `<name>-association` and no annotation. IRSA: no association and
    the role annotation the ServiceAccount must carry."""
    if args.get("use_pod_identity", True):
        association = aws.eks.PodIdentityAssociation(
            f"{name}-association", cluster_name=args["cluster_name"], namespace=namespace,
            service_account=service_account, role_arn=role.arn, opts=opts)
        return association, pulumi.Output.from_input({})
    return None, role.arn.apply(lambda arn: {IRSA_ROLE_ANNOTATION: arn})
