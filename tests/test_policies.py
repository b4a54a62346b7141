"""The CrossGuard policies (policy/policies.py), each fed passing and violating resources shaped as
the engine passes them: camelCase props, numbers as floats, nested booleans as "true"/"false"
strings, MaxItems=1 blocks as objects or one-element lists, and mappings wrapped in the SDK's
unknown-checking proxies."""

from __future__ import annotations

import copy
import os
import runpy
import sys
from typing import Any, Optional

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

from servingstack.tools.check import load_policies, policy_dir

P = load_policies()
BY_NAME = {p.name: p for p in P.POLICIES}
OPTS = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                             custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])
OFFLINE = P.offline_config()["k8s-no-plaintext-secrets"]

SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET = "aws:s3/bucket:Bucket"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
EKS = "aws:eks/cluster:Cluster"
DEP = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SECRET = "kubernetes:core/v1:Secret"
KMS = "arn:aws:kms:us-east-1:123456789012:key/k"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::servingstack::{type_}::{name}"


def run(policy: str, type_: str, props: dict, config: Optional[dict] = None, name: str = "r") -> Any:
    """Violation messages, or "n/a" when the policy declared itself not applicable."""
    out: list[str] = []
    args = ResourceValidationArgs(type_, unknown_checking_proxy(copy.deepcopy(props)), urn(type_, name), name, OPTS,
                                  None, config)
    try:
        BY_NAME[policy].validate(args, lambda message, urn=None: out.append(message))
    except _NotApplicableError:
        return "n/a"
    return out


def stack_run(policy: str, resources: list[tuple], config: Optional[dict] = None) -> list[tuple[str, str]]:
    """resources: (type, name, props, {prop: [names it depends on]})."""
    made = {name: PolicyResource(t, unknown_checking_proxy(copy.deepcopy(props)), urn(t, name), name, OPTS, None,
                                 None, [], {})
            for t, name, props, _ in resources}
    for _, name, _, deps in resources:
        made[name].property_dependencies = {k: [made[d] for d in v] for k, v in deps.items()}
    out: list[tuple[str, str]] = []
    BY_NAME[policy].validate(StackValidationArgs(list(made.values()), config),
                             lambda message, urn=None: out.append((message, urn)))
    return out


# ---- resource policies: (policy, type, props, config, expected) ----------------------------------

def deployment(gpus: Any = "2", limit: Any = None, annotation: Any = "2", args: Optional[list] = None,
               image: str = "vllm/vllm-openai:v0.8.4", env: Optional[list] = None, replicas: Any = 2.0,
               labels: Optional[dict] = None, namespace: str = "llm-serving") -> dict:
    labels = labels or {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "x"}
    resources: dict = {"requests": {"cpu": "16", "memory": "200Gi"}, "limits": {"cpu": "16", "memory": "200Gi"}}
    if gpus is not None:
        resources["requests"]["nvidia.com/gpu"] = gpus
    if (limit if limit is not None else gpus) is not None:
        resources["limits"]["nvidia.com/gpu"] = limit if limit is not None else gpus
    meta: dict = {"name": "x", "namespace": namespace, "labels": labels}
    if annotation is not None:
        meta["annotations"] = {P.TP_ANNOTATION: annotation, "checkov.io/skip1": "CKV_K8S_43=tag"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {
        "replicas": replicas, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
            "name": "vllm", "image": image, "args": args if args is not None else ["--model", "m"],
            "env": env or [], "resources": resources}]}}}}


def secret(**fields: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, "type": "Opaque",
            **fields}


GOOD_SSE = {"bucket": "b-id", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                                "kmsMasterKeyId": KMS},
                                         "bucketKeyEnabled": "true"}]}
GOOD_PAB = {"bucket": "b-id", "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
            "restrictPublicBuckets": True}
GOOD_LT = {"metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1.0}}
GOOD_EKS = {"name": "c", "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": True,
                                       "publicAccessCidrs": ["203.0.113.0/24"]},
            "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KMS}}}

CASES = [
    # s3-bucket-sse-kms
    ("s3-bucket-sse-kms", SSE, GOOD_SSE, None, "pass"),
    ("s3-bucket-sse-kms", SSE, {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms:dsse"}}]}, None, "pass"),
    ("s3-bucket-sse-kms", SSE, {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "AES256"}}]}, None, "AES256"),
    ("s3-bucket-sse-kms", SSE, {"bucket": "b", "rules": []}, None, "no default-encryption rule"),
    # s3-bucket-public-access-block
    ("s3-bucket-public-access-block", PAB, GOOD_PAB, None, "pass"),
    ("s3-bucket-public-access-block", PAB, {**GOOD_PAB, "ignorePublicAcls": "true", "blockPublicAcls": "True"},
     None, "pass"),
    ("s3-bucket-public-access-block", PAB, {**GOOD_PAB, "restrictPublicBuckets": "false"}, None,
     "restrictPublicBuckets"),
    ("s3-bucket-public-access-block", PAB, {"bucket": "b", "blockPublicAcls": True}, None, "blockPublicPolicy"),
    # ec2-launch-template-imdsv2
    ("ec2-launch-template-imdsv2", LT, GOOD_LT, None, "pass"),
    ("ec2-launch-template-imdsv2", LT, {"metadataOptions": [{"httpTokens": "required",
                                                             "httpPutResponseHopLimit": "1"}]}, None, "pass"),
    ("ec2-launch-template-imdsv2", LT, {"metadataOptions": {"httpEndpoint": "disabled"}}, None, "pass"),
    ("ec2-launch-template-imdsv2", LT, {"metadataOptions": {"httpTokens": "optional",
                                                            "httpPutResponseHopLimit": 1}}, None, "'optional'"),
    ("ec2-launch-template-imdsv2", LT, {"description": "no metadata options"}, None, "httpTokens is None"),
    ("ec2-launch-template-imdsv2", LT, {"metadataOptions": {"httpTokens": "required",
                                                            "httpPutResponseHopLimit": 2.0}}, None, "HopLimit is 2"),
    ("ec2-launch-template-imdsv2", LT, {"metadataOptions": {"httpTokens": "required",
                                                            "httpPutResponseHopLimit": 2.0}}, {"maxHopLimit": 2},
     "pass"),
    # eks-secrets-encryption
    ("eks-secrets-encryption", EKS, GOOD_EKS, None, "pass"),
    ("eks-secrets-encryption", EKS, {**GOOD_EKS, "encryptionConfig": [GOOD_EKS["encryptionConfig"]]}, None, "pass"),
    ("eks-secrets-encryption", EKS, {"name": "c", "vpcConfig": GOOD_EKS["vpcConfig"]}, None, "encryptionConfig"),
    ("eks-secrets-encryption", EKS, {**GOOD_EKS, "encryptionConfig": {"resources": [], "provider": {"keyArn": KMS}}},
     None, "encryptionConfig"),
    # eks-public-endpoint-restricted
    ("eks-public-endpoint-restricted", EKS, GOOD_EKS, None, "pass"),
    ("eks-public-endpoint-restricted", EKS, {"vpcConfig": {"endpointPublicAccess": "false"}}, None, "pass"),
    ("eks-public-endpoint-restricted", EKS, {"vpcConfig": {"endpointPublicAccess": "true",
                                                           "publicAccessCidrs": ["10.0.0.0/8", "0.0.0.0/0"]}},
     None, "internet"),
    ("eks-public-endpoint-restricted", EKS, {"vpcConfig": {"endpointPublicAccess": True}}, None, "0.0.0.0/0"),
    ("eks-public-endpoint-restricted", EKS, {"vpcConfig": {"subnetIds": ["a"]}}, None, "defaults to true"),
    # k8s-gpu-tensor-parallel
    ("k8s-gpu-tensor-parallel", DEP, deployment(), None, "pass"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(gpus=2.0, annotation=None,
                                                args=["--model", "m", "--tensor-parallel-size", "2"]), None, "pass"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(annotation=None, args=["--tensor-parallel-size=2"]), None, "pass"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(gpus="1", limit="2"), None, "request '1' != limit '2'"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(gpus="4", annotation="2"), None, "tensor-parallel size is 2"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(annotation=None), None, "not stated"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(annotation="2", args=["--tensor-parallel-size", "4"]), None,
     "disagree"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(gpus=None, annotation=None), None, "n/a"),
    ("k8s-gpu-tensor-parallel", DEP, deployment(gpus=None, annotation="2"), None, "no container requests"),
    # k8s-image-pinned
    ("k8s-image-pinned", DEP, deployment(), None, "pass"),
    ("k8s-image-pinned", DEP, deployment(image="nvcr.io/nim/meta/llama@sha256:" + "a" * 64), None, "pass"),
    ("k8s-image-pinned", DEP, deployment(image="vllm/vllm-openai:latest"), None, "'latest'"),
    ("k8s-image-pinned", DEP, deployment(image="localhost:5000/vllm"), None, "no tag"),
    # k8s-image-digest
    ("k8s-image-digest", DEP, deployment(image="vllm/vllm-openai:v0.8.4@sha256:" + "b" * 64), None, "pass"),
    ("k8s-image-digest", DEP, deployment(), None, "not pinned by digest"),
    # k8s-no-plaintext-secrets: Secret data (offline, with the redaction marker configured)
    ("k8s-no-plaintext-secrets", SECRET, secret(stringData="[secret]"), OFFLINE, "pass"),
    ("k8s-no-plaintext-secrets", SECRET, secret(stringData={"NGC_API_KEY": "[secret]"}), OFFLINE, "pass"),
    ("k8s-no-plaintext-secrets", SECRET, secret(stringData={"HF_TOKEN": "hf_plaintext"}), OFFLINE, "['HF_TOKEN']"),
    ("k8s-no-plaintext-secrets", SECRET, secret(data={"password": "cGxhaW4="}), OFFLINE, "['password']"),
    ("k8s-no-plaintext-secrets", SECRET, secret(stringData={"HF_TOKEN": "hf_x"}), None, "n/a"),
    # k8s-no-plaintext-secrets: container env (everywhere)
    ("k8s-no-plaintext-secrets", DEP, deployment(env=[
        {"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "ngc-api", "key": "NGC_API_KEY"}}},
        {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/huggingface/HF_TOKEN"},
        {"name": "HOME", "value": "/cache"}]), OFFLINE, "pass"),
    ("k8s-no-plaintext-secrets", DEP, deployment(env=[{"name": "HF_TOKEN", "value": "[secret]"}]), OFFLINE,
     "inlines a secret"),
    ("k8s-no-plaintext-secrets", DEP, deployment(env=[{"name": "NGC_API_KEY", "value": "abc"}]), None,
     "literal value"),
    ("k8s-no-plaintext-secrets", DEP, deployment(env=[{"name": "EXTRA", "value": "hf_" + "a" * 30}]), None,
     "Hugging Face token"),
]


@pytest.mark.parametrize("policy,type_,props,config,expected", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_resource_policy(policy, type_, props, config, expected):
    result = run(policy, type_, props, config)
    if expected == "pass":
        assert result == []
    elif expected == "n/a":
        assert result == "n/a"
    else:
        assert result != "n/a" and result, f"{policy} should flag {props}"
        assert any(expected in m for m in result), result


def test_resource_policies_ignore_other_types():
    for policy in BY_NAME.values():
        if not isinstance(policy, StackValidationPolicy):
            assert run(policy.name, "aws:iam/role:Role", {"name": "x"}) == []


# ---- stack policies -------------------------------------------------------------------------------

BUCKET_PROPS = {"forceDestroy": False, "tags": {"managed-by": "pulumi"}}


@pytest.mark.parametrize("resources,expected", [
    ([(BUCKET, "b", BUCKET_PROPS, {}), (SSE, "sse", GOOD_SSE, {"bucket": ["b"]}),
      (PAB, "pab", GOOD_PAB, {"bucket": ["b"]})], None),
    # referenced by the bucket's explicit name instead of a property dependency
    ([(BUCKET, "b", {"bucket": "models-prod"}, {}), (SSE, "sse", {**GOOD_SSE, "bucket": "models-prod"}, {}),
      (PAB, "pab", {**GOOD_PAB, "bucket": "models-prod"}, {})], None),
    # deprecated inline encryption on the bucket itself
    ([(BUCKET, "b", {"serverSideEncryptionConfiguration": {"rule": GOOD_SSE["rules"][0]}}, {}),
      (PAB, "pab", GOOD_PAB, {"bucket": ["b"]})], None),
    ([(BUCKET, "b", BUCKET_PROPS, {}), (SSE, "sse", GOOD_SSE, {"bucket": ["b"]})], "BucketPublicAccessBlock"),
    ([(BUCKET, "b", BUCKET_PROPS, {}), (PAB, "pab", GOOD_PAB, {"bucket": ["b"]})], "SSE-KMS"),
    ([(BUCKET, "b", BUCKET_PROPS, {}), (BUCKET, "other", BUCKET_PROPS, {}),
      (SSE, "sse", GOOD_SSE, {"bucket": ["other"]}), (PAB, "pab", GOOD_PAB, {"bucket": ["b"]})], "SSE-KMS"),
    ([(BUCKET, "b", BUCKET_PROPS, {}), (PAB, "pab", GOOD_PAB, {"bucket": ["b"]}),
      (SSE, "sse", {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
       {"bucket": ["b"]})], "SSE-KMS"),
], ids=["deps", "by-name", "inline", "no-pab", "no-sse", "sse-on-other-bucket", "sse-aes256"])
def test_s3_bucket_encrypted_and_private(resources, expected):
    found = stack_run("s3-bucket-encrypted-and-private", resources)
    if expected is None:
        assert found == []
    else:
        assert found and expected in found[0][0]
        assert found[0][1] == urn(BUCKET, "b")


def pdb(labels: dict, namespace: str = "llm-serving", **spec: Any) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x", "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, **(spec or {"maxUnavailable": 1.0})}}


SEL = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "x"}


@pytest.mark.parametrize("resources,expected", [
    ([(DEP, "dep", deployment(replicas=2.0), {}), (PDB, "pdb", pdb(SEL), {})], []),
    ([(DEP, "dep", deployment(replicas="3"), {}), (PDB, "pdb", pdb({"app.kubernetes.io/instance": "x"}), {})], []),
    # not a GPU workload: out of scope
    ([(DEP, "web", deployment(gpus=None, annotation=None, replicas=1.0), {})], []),
    ([(DEP, "dep", deployment(replicas=1.0), {}), (PDB, "pdb", pdb(SEL), {})], ["has 1 replicas"]),
    ([(DEP, "dep", deployment(replicas=2.0), {})], ["no PodDisruptionBudget"]),
    ([(DEP, "dep", deployment(replicas=2.0), {}), (PDB, "pdb", pdb(SEL, namespace="other"), {})],
     ["no PodDisruptionBudget"]),
    ([(DEP, "dep", deployment(replicas=2.0), {}), (PDB, "pdb", pdb({"app": "other"}), {})],
     ["no PodDisruptionBudget"]),
    ([(DEP, "dep", deployment(replicas=2.0), {}), (PDB, "pdb", pdb(SEL, maxUnavailable=0.0), {})],
     ["allows no voluntary disruption"]),
    ([(DEP, "dep", deployment(replicas=2.0), {}), (PDB, "pdb", pdb(SEL, minAvailable="2"), {})],
     ["allows no voluntary disruption"]),
], ids=["ok", "ok-3-replicas", "non-gpu", "one-replica", "no-pdb", "pdb-other-ns", "pdb-other-labels",
        "pdb-max-0", "pdb-min-all"])
def test_k8s_serving_ha(resources, expected):
    found = stack_run("k8s-serving-ha", resources)
    assert len(found) == len(expected), found
    for (message, _), needle in zip(found, expected):
        assert needle in message


def test_k8s_serving_ha_min_replicas_is_configurable():
    found = stack_run("k8s-serving-ha", [(DEP, "dep", deployment(replicas=2.0), {}), (PDB, "pdb", pdb(SEL), {})],
                      config={"minReplicas": 3})
    assert len(found) == 1 and "at least 3" in found[0][0]


def test_every_policy_has_passing_and_violating_cases():
    covered_pass = {c[0] for c in CASES if c[4] == "pass"} | {"s3-bucket-encrypted-and-private", "k8s-serving-ha"}
    covered_fail = {c[0] for c in CASES if c[4] not in ("pass", "n/a")} | {"s3-bucket-encrypted-and-private",
                                                                         "k8s-serving-ha"}
    names = set(BY_NAME)
    assert names == covered_pass == covered_fail


# ---- engine-shaped values ---------------------------------------------------------------------------

def test_unknown_values_raise_for_the_sdk_to_report_as_advisory():
    """During preview a computed value is a sentinel; reading it raises UnknownValueError, which the
    SDK turns into an advisory "can't run policy during preview" rather than a violation."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    with pytest.raises(UnknownValueError):
        run("ec2-launch-template-imdsv2", LT, {"metadataOptions": {"httpTokens": UNKNOWN_STRING_VALUE}})


def test_helpers_accept_engine_shapes():
    assert P.as_bool("true") is True and P.as_bool("False") is False and P.as_bool(True) is True
    assert P.as_bool("yes") is None and P.as_int(2.0) == 2 and P.as_int("3") == 3 and P.as_int(2.5) is None
    assert P.get({"a": [{"b": 1}]}, "a", "b") == 1
    assert P.parse_image("registry:5000/org/img:1.2@sha256:abc") == ("registry:5000/org/img", "1.2", "sha256:abc")
    assert P.parse_image("registry:5000/img") == ("registry:5000/img", None, None)
    assert P.secret_like_name("NGC_API_KEY") and P.secret_like_name("AWS_SECRET_ACCESS_KEY")
    assert not P.secret_like_name("HF_TOKEN_PATH") and not P.secret_like_name("NIM_CACHE_PATH")


# ---- enforcement per environment and the pack entry point -----------------------------------------

def test_enforcement_levels_per_environment():
    dev, staging, prod = (P.enforcement_levels(e) for e in ("dev", "staging", "prod"))
    assert set(dev.values()) == {EnforcementLevel.ADVISORY}
    assert prod["k8s-image-digest"] == EnforcementLevel.ADVISORY
    assert {n for n, lvl in prod.items() if lvl == EnforcementLevel.MANDATORY} == set(BY_NAME) - {"k8s-image-digest"}
    assert staging["k8s-serving-ha"] == EnforcementLevel.ADVISORY
    assert staging["eks-public-endpoint-restricted"] == EnforcementLevel.MANDATORY
    assert P.enforcement_levels("qa") == prod  # unknown environments fail closed
    assert P.pack_enforcement_level("dev") == EnforcementLevel.ADVISORY
    assert P.pack_enforcement_level("prod") == EnforcementLevel.MANDATORY


def test_policies_for_sets_levels_on_copies():
    copies = P.policies_for("dev")
    assert [p.name for p in copies] == [p.name for p in P.POLICIES]
    assert all(p.enforcement_level == EnforcementLevel.ADVISORY for p in copies)
    assert all(p.enforcement_level is None for p in P.POLICIES)


@pytest.mark.parametrize("environ,expected", [
    ({}, "prod"),
    ({"PULUMI_CONFIG": '{"servingstack:environment": "dev", "aws:region": "us-east-1"}'}, "dev"),
    ({"PULUMI_CONFIG": '{"servingstack:config:environment": "staging"}'}, "staging"),
    ({"PULUMI_CONFIG": '{"servingstack:environment": "dev"}', "SERVINGSTACK_ENVIRONMENT": "prod"}, "prod"),
    ({"PULUMI_CONFIG": "not json"}, "prod"),
])
def test_environment_from_process_environment(environ, expected):
    assert P.environment_from(environ) == expected


def test_pack_entry_point_only_assembles_the_pack(monkeypatch):
    import pulumi_policy

    built = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kw: built.update(kw))
    monkeypatch.setenv("PULUMI_CONFIG", '{"servingstack:environment": "dev"}')
    monkeypatch.delenv("SERVINGSTACK_ENVIRONMENT", raising=False)
    monkeypatch.syspath_prepend(str(policy_dir()))
    sys.modules.pop("policies", None)
    runpy.run_path(str(policy_dir() / "__main__.py"), run_name="__main__")
    sys.modules.pop("policies", None)
    assert built["name"] == "servingstack"
    assert [p.name for p in built["policies"]] == [p.name for p in P.POLICIES]
    assert built["enforcement_level"] == EnforcementLevel.ADVISORY
    assert all(p.enforcement_level == EnforcementLevel.ADVISORY for p in built["policies"])


def test_pack_metadata_files():
    import yaml

    meta = yaml.safe_load((policy_dir() / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python"
    reqs = (policy_dir() / "requirements.txt").read_text()
    assert "pulumi-policy>=1.21.0,<2.0.0" in reqs


def test_policy_constants_match_the_program():
    from servingstack.config import REDACTED
    from servingstack.k8s.podspec import TENSOR_PARALLEL_ANNOTATION

    assert P.REDACTED == REDACTED
    assert P.TP_ANNOTATION == TENSOR_PARALLEL_ANNOTATION
    assert os.path.basename(P.__file__) == "policies.py"
