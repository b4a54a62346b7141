"""ClusterAutoscaler: the pinned Cluster Autoscaler chart scaling the GPU managed node groups between
their min and max sizes, with its own least-privilege IAM role (Pod Identity or IRSA)."""

import json
from typing import Any, Optional, TypedDict

import pulumi
import pulumi_aws as aws
from typing_extensions import NotRequired

from ..base import Component, KubernetesArgs
from ..k8s.helm import HelmChart, helm_release
from ..planning import catalog
from .cluster_autoscaler_spec import NAMESPACE, SERVICE_ACCOUNT, autoscaler_policy, autoscaler_values
from .iam_spec import irsa_trust_policy, pod_identity_trust_policy


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

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("servingstack:index:ClusterAutoscaler", name, opts, args)
        child = self.child_opts()
        version = args["kubernetes_version"]
        if version not in catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS:
            raise pulumi.RunError(f"no Cluster Autoscaler image is pinned for Kubernetes {version} — use one of "
                                  f"{', '.join(catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS)}")
        tag = catalog.CLUSTER_AUTOSCALER_IMAGE_TAGS[version]
        pod_identity = args.get("use_pod_identity", True)
        if pod_identity:
            trust = pulumi.Output.from_input(json.dumps(pod_identity_trust_policy()))
        else:
            trust = pulumi.Output.all(args["oidc_provider_arn"], args["oidc_issuer_url"]).apply(
                lambda a: json.dumps(irsa_trust_policy(a[0], a[1], NAMESPACE, SERVICE_ACCOUNT)))
        role = aws.iam.Role(f"{name}-role", assume_role_policy=trust, tags=dict(args.get("tags") or {}), opts=child)
        account = aws.get_caller_identity_output().account_id
        groups = args["groups"]
        policy = pulumi.Output.all(args["cluster_name"], account, *[g["asg_name"] for g in groups]).apply(
            lambda a: json.dumps(autoscaler_policy(args["region"], a[1], a[0], list(a[2:]))))
        role_policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)
        waits: list[pulumi.Resource] = [role_policy]
        if pod_identity:
            waits.append(aws.eks.PodIdentityAssociation(
                f"{name}-association", cluster_name=args["cluster_name"], namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT, role_arn=role.arn, opts=child))
            annotations: pulumi.Input[dict[str, str]] = {}
        else:
            annotations = role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn})
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
