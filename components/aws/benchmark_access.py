"""BenchmarkWriteAccess: the benchmark Job's own IAM role, allowed to write only under its results prefix."""

import json
from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..base import Component
from .iam_spec import benchmark_write_policy
from .workload_role import bind_workload_role, check_irsa_args, workload_role


class BenchmarkWriteAccessArgs(TypedDict):
    cluster_name: pulumi.Input[str]
    """EKS cluster whose Job gets access."""
    namespace: str
    """Namespace of the benchmark ServiceAccount (the serving namespace)."""
    service_account: str
    """Name of the benchmark ServiceAccount."""
    bucket_arn: pulumi.Input[str]
    """ARN of the model-store bucket."""
    kms_key_arn: pulumi.Input[str]
    """KMS key of the bucket's SSE-KMS encryption ("" when unknown: no KMS statement)."""
    results_prefix: str
    """Key prefix the Job may write under, e.g. "benchmarks/prod/"."""
    region: str
    """Region of the bucket (the kms:ViaService condition)."""
    use_pod_identity: NotRequired[bool]
    """EKS Pod Identity association (true, default) or IRSA (false)."""
    oidc_provider_arn: NotRequired[pulumi.Input[str]]
    """IAM OIDC provider ARN; required for IRSA. Default unset."""
    oidc_issuer_url: NotRequired[pulumi.Input[str]]
    """Cluster OIDC issuer URL; required for IRSA. Default unset."""
    tags: NotRequired[dict[str, str]]
    """Tags for the role. Default {}."""


class BenchmarkWriteAccess(Component):
    """A role for one ServiceAccount that can put objects under the results prefix (and use the
    bucket's key for that, through S3 only); bound by Pod Identity or an IRSA trust policy."""

    role_arn: pulumi.Output[str]
    """ARN of the write-only role."""
    service_account_annotations: pulumi.Output[dict[str, str]]
    """Annotations the ServiceAccount needs (the IRSA role annotation; empty for Pod Identity)."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        check_irsa_args(args)

    def __init__(self, name: str, args: BenchmarkWriteAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:BenchmarkWriteAccess", name, opts, args)
        child = self.child_opts()
        ns, sa = args["namespace"], args["service_account"]
        role = workload_role(name, args, ns, sa, child)
        aws.iam.RolePolicy(f"{name}-write", role=role.id, opts=child,
                           policy=pulumi.Output.all(args["bucket_arn"], args["kms_key_arn"]).apply(
                               lambda a: json.dumps(benchmark_write_policy(a[0], args["results_prefix"], a[1],
                                                                           args["region"]))))
        _, self.service_account_annotations = bind_workload_role(name, args, role, ns, sa, child)
        self.role_arn = role.arn
        self.register_outputs({"role_arn": self.role_arn,
                               "service_account_annotations": self.service_account_annotations})
