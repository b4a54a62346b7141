"""ClusterAutoscaler: the pinned Cluster Autoscaler chart scaling the GPU managed node groups between
their min and max sizes, with its own least-privilege IAM role (Pod Identity or IRSA)."""

import json
from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..base import Component, KubernetesArgs
from ..k8s.helm import HelmChart, helm_release
from ..planning import catalog
from .cluster_autoscaler_spec import NAMESPACE, SERVICE_ACCOUNT, autoscaler_policy, autoscaler_values
from .workload_role import bind_workload_role, check_irsa_args, workload_role


class AutoscaledGroup(TypedDict):
    asg_name: pulumi.Input[str]
    """Name of the node group's Auto Scaling group (GpuNodePool `autoscaling_group_name`)."""
    min_size: int
    """Fewest nodes."""
    max_size: int
    """Most nodes."""


class ClusterAutoscalerArgs(KubernetesArgs):
    cluster_name: pulumi.Input[str]
    """EKS cluster name."""
    region: str
    """AWS region of the cluster."""
    kubernetes_version: str
    """Cluster minor version, e.g. "1.33": picks the matching autoscaler image."""
    groups: list[dict[str, Any]]
    """The node groups it may scale (never capacity-block pools), each an AutoscaledGroup dict:
    asg_name (the GpuNodePool's `autoscaling_group_name`), min_size, max_size."""
    use_pod_identity: NotRequired[bool]
    """EKS Pod Identity association (true, default) or IRSA (false)."""
    oidc_provider_arn: NotRequired[pulumi.Input[str]]
    """IAM OIDC provider ARN; required for IRSA. Default unset."""
    oidc_issuer_url: NotRequired[pulumi.Input[str]]
    """Cluster OIDC issuer URL; required for IRSA. Default unset."""
    chart_version: NotRequired[str]
    """cluster-autoscaler chart version. Default the pinned catalog version."""
    scale_down_unneeded_minutes: NotRequired[int]
    """Minutes a node must be unneeded before it is removed. Default 10."""
    tags: NotRequired[dict[str, str]]
    """Tags for the IAM role. Default {}."""


class ClusterAutoscaler(Component):
    """Cluster Autoscaler for the listed managed node groups."""

    role_arn: pulumi.Output[str]
    """ARN of the autoscaler's IAM role."""
    image_tag: pulumi.Output[str]
    """Autoscaler image tag (matches the cluster's minor version)."""

    @classmethod
    def check_args(cls, args: Mapping[str, Any]) -> None:
        check_irsa_args(args)

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:ClusterAutoscaler", name, opts, args)
        child = self.child_opts()
        version = args["kubernetes_version"]
        if version not in catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS:
            raise pulumi.RunError(f"no Cluster Autoscaler image is pinned for Kubernetes {version} — use one of "
                                  f"{', '.join(catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS)}")
        tag = catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS[version]
        role = workload_role(name, args, NAMESPACE, SERVICE_ACCOUNT, child)
        account = aws.get_caller_identity_output().account_id
        groups = args["groups"]
        policy = pulumi.Output.all(args["cluster_name"], account, *[g["asg_name"] for g in groups]).apply(
            lambda a: json.dumps(autoscaler_policy(args["region"], a[1], a[0], list(a[2:]))))
        role_policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)
        waits: list[pulumi.Resource] = [role_policy]
        association, annotations = bind_workload_role(name, args, role, NAMESPACE, SERVICE_ACCOUNT, child)
        if association is not None:
            waits.append(association)
        values = pulumi.Output.all(annotations, *[g["asg_name"] for g in groups]).apply(
            lambda a: autoscaler_values(args["region"], tag, [
                {"name": asg, "minSize": g["min_size"], "maxSize": g["max_size"]} for g, asg in zip(groups, a[1:])],
                a[0], args.get("scale_down_unneeded_minutes", 10)))
        chart = HelmChart("cluster-autoscaler", catalog.CLUSTER_AUTOSCALER_CHART_REPO,
                          args.get("chart_version", catalog.CLUSTER_AUTOSCALER_CHART_VERSION), NAMESPACE)
        helm_release(name, chart, values, child, depends_on=waits)  # type: ignore[arg-type]
        self.role_arn = role.arn
        self.image_tag = pulumi.Output.from_input(tag)
        self.register_outputs({"role_arn": self.role_arn, "image_tag": self.image_tag})
