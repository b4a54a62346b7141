"""The three components that give one ServiceAccount an IAM role (ModelReadAccess, BenchmarkWriteAccess,
ClusterAutoscaler) share aws/workload_role.py: under IRSA each refuses a missing OIDC argument at
construction, in one line naming it (not a KeyError in the program), and each binds its role the same
way (a Pod Identity association, or the IRSA annotation)."""

from __future__ import annotations

import pulumi
import pytest

from servingstack import ModelReadAccess
from servingstack.aws.benchmark_access import BenchmarkWriteAccess
from servingstack.aws.cluster_autoscaler import ClusterAutoscaler
from servingstack.config import ConfigError
from servingstack.testing import run

COMMON = {"cluster_name": "team-a", "bucket_arn": "arn:aws:s3:::b", "kms_key_arn": ""}
ARGS = {
    "ModelReadAccess": (ModelReadAccess, {**COMMON, "namespace": "llm", "service_account": "triton"}),
    "BenchmarkWriteAccess": (BenchmarkWriteAccess, {**COMMON, "namespace": "llm", "service_account": "bench",
                                                    "results_prefix": "benchmarks/dev/", "region": "us-west-2"}),
    "ClusterAutoscaler": (ClusterAutoscaler, {"cluster_name": "team-a", "region": "us-west-2",
                                              "kubernetes_version": "1.35",
                                              "groups": [{"asg_name": "asg-1", "min_size": 0, "max_size": 2}]}),
}


def build(component: str, extra: dict):
    cls, base = ARGS[component]

    def program():
        provider = pulumi.ProviderResource("kubernetes", "k8s") if component == "ClusterAutoscaler" else None
        opts = pulumi.ResourceOptions(providers={"kubernetes": provider}) if provider else None
        cls("x", {**base, **extra}, opts=opts)

    return run(program, config={"aws:region": "us-west-2"}, project="team")


@pytest.mark.parametrize("component", sorted(ARGS))
@pytest.mark.parametrize("missing", ["oidc_provider_arn", "oidc_issuer_url"])
def test_irsa_without_its_oidc_argument_is_one_line_naming_it(component, missing):
    extra = {"use_pod_identity": False, "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/x",
             "oidc_issuer_url": "https://oidc.eks.us-west-2.amazonaws.com/id/X"}
    del extra[missing]
    with pytest.raises(ConfigError) as info:
        build(component, extra)
    message = str(info.value)
    assert "\n" not in message and component in message and missing in message, message
    assert "is required when use_pod_identity is false" in message, message


@pytest.mark.parametrize("component", sorted(ARGS))
def test_pod_identity_binds_by_association_and_irsa_by_trust_policy(component):
    pod = build(component, {})
    assert [r.name for r in pod.resources if r.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation"] \
        == ["x-association"]
    role = next(r for r in pod.resources if r.type == "aws:iam/role:Role")
    assert role.name == "x-role" and "pods.eks.amazonaws.com" in role.inputs["assumeRolePolicy"]
    irsa = build(component, {"use_pod_identity": False, "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/x",
                             "oidc_issuer_url": "https://oidc.eks.us-west-2.amazonaws.com/id/X"})
    assert not [r for r in irsa.resources if r.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation"]
    trust = next(r for r in irsa.resources if r.type == "aws:iam/role:Role").inputs["assumeRolePolicy"]
    assert "sts:AssumeRoleWithWebIdentity" in trust and "oidc.eks.us-west-2.amazonaws.com/id/X:sub" in trust
