"""Issue 4: device plugin, NGC/HF credentials, model store and read-only pod access."""

import json

import pytest

from components.aws.iam_spec import model_read_policy
from components.aws.nodepool_spec import tolerations_for
from components.k8s.device_plugin_spec import tolerates
from conftest import set_key, stack_config, synth, synth_config

RELEASE = "kubernetes:helm.sh/v3:Release"
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule"}


def release(result, chart):
    (r,) = [r for r in result.of_type(RELEASE) if r.inputs["chart"] == chart]
    return r.inputs


def _node_matches_affinity(labels, affinity):
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return any(all(labels.get(e["key"]) in e["values"] for e in t["matchExpressions"]) for t in terms)


@pytest.mark.parametrize("chart", ["nvidia-device-plugin", "dcgm-exporter"])
def test_gpu_daemonsets_tolerate_taint_and_select_pool_from_node_group_inputs(chart):
    result = synth("prod")
    values = release(result, chart)["values"]
    ng = result.one("aws:eks/nodeGroup:NodeGroup", "pool-gpu-ng").inputs
    for taint in ng["taints"]:  # the node group's real taints, not constants
        assert tolerates(values["tolerations"], {**taint, "effect": K8S_EFFECT[taint["effect"]]})
    assert _node_matches_affinity(ng["labels"], values["affinity"])
    assert not _node_matches_affinity({**ng["labels"], "servingstack.io/pool": "other"}, values["affinity"])


def test_device_plugin_chart_pinned_from_official_repo():
    r = release(synth("prod"), "nvidia-device-plugin")
    assert r["repositoryOpts"]["repo"] == "https://nvidia.github.io/k8s-device-plugin"
    assert r["version"] == "0.17.4"
    assert r["namespace"] == "nvidia-device-plugin"
    assert r["values"]["migStrategy"] == "none"
    assert r["values"]["gfd"] == {"enabled": False}
    assert "config" not in r["values"]
    dcgm = release(synth("prod"), "dcgm-exporter")
    assert dcgm["values"]["serviceMonitor"] == {"enabled": False}


def test_time_slicing_dev_only_and_rendered():
    cfg = set_key(stack_config("dev"), "servingstack:devicePlugin.timeSlicingReplicas", 4)
    values = release(synth_config(cfg), "nvidia-device-plugin")["values"]
    assert values["config"]["default"] == "default"
    assert "replicas: 4" in values["config"]["map"]["default"]


def test_tolerates_semantics():
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert tolerates([{"key": "nvidia.com/gpu", "operator": "Exists"}], taint)
    assert tolerates(tolerations_for([{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]), taint)
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true"}], taint)
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], taint)
    assert not tolerates([{"key": "node-role.kubernetes.io/master", "operator": "Exists"}], taint)


def test_ngc_credentials_only_for_nim_and_secret():
    dev = synth("dev")  # nim
    pull = dev.manifest("Secret", "ngc-secret")
    api = dev.manifest("Secret", "ngc-api")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    assert pull["stringData"] == {".dockerconfigjson": "[secret]"}
    assert api["type"] == "Opaque" and api["stringData"] == {"NGC_API_KEY": "[secret]"}
    for r in dev.of_type("kubernetes:core/v1:Secret"):
        assert r.inputs["metadata"]["namespace"] == "llm-serving"
    for name in ("prod", "staging"):
        assert not [m for m in synth(name).manifests() if m["kind"] == "Secret" and m["metadata"]["name"].startswith("ngc")]


def test_ngc_dockerconfig_shape():
    from components.k8s.credentials import ngc_docker_config

    doc = json.loads(ngc_docker_config("nvapi-x"))
    assert doc["auths"]["nvcr.io"]["username"] == "$oauthtoken"
    assert doc["auths"]["nvcr.io"]["password"] == "nvapi-x"


def test_hf_token_secret_for_vllm_and_triton_not_nim():
    for name in ("prod", "staging"):
        assert synth(name).manifest("Secret", "hf-token")["stringData"] == {"HF_TOKEN": "[secret]"}
    assert not [m for m in synth("dev").manifests() if m["kind"] == "Secret" and m["metadata"]["name"] == "hf-token"]


def test_model_store_bucket_hardening_prod():
    result = synth("prod")
    bucket = result.one("aws:s3/bucket:Bucket")
    assert bucket.inputs.get("forceDestroy") is False
    sse = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs
    (rule,) = sse["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].endswith("model-store-key")
    assert rule["bucketKeyEnabled"] is True
    pab = result.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                         "restrictPublicBuckets"))
    own = result.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert own["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    ver = result.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert ver["versioningConfiguration"] == {"status": "Enabled"}
    life = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs
    assert life["rules"][0]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    policy = json.loads(result.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    deny = policy["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_force_destroy_only_in_dev():
    assert synth("dev").one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is True


def test_adopted_bucket_registers_no_bucket():
    cfg = stack_config("prod")
    cfg["servingstack:modelStore"] = {"create": False, "bucketName": "team-models",
                                      "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc-123"}
    result = synth_config(cfg)
    assert not result.of_type("aws:s3/bucket:Bucket")
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    resources = [s["Resource"] for s in policy["Statement"]]
    assert ["arn:aws:s3:::team-models/models/*"] in resources
    assert ["arn:aws:kms:us-east-1:123456789012:key/abc-123"] in resources


def test_pod_role_read_only_and_pod_identity_for_vllm():
    result = synth("prod")
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    actions = sorted(a for s in policy["Statement"] for a in s["Action"])
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]
    assoc = result.one("aws:eks/podIdentityAssociation:PodIdentityAssociation").inputs
    assert (assoc["namespace"], assoc["serviceAccount"]) == ("llm-serving", "llm-server")
    trust = json.loads(result.one("aws:iam/role:Role", "model-read-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    sa = result.manifest("ServiceAccount", "llm-server")
    assert sa["automountServiceAccountToken"] is False
    assert result.manifest("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "llm-server"


def test_triton_uses_irsa_scoped_to_its_service_account():
    result = synth("staging")
    assert not result.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    trust = json.loads(result.one("aws:iam/role:Role", "model-read-role").inputs["assumeRolePolicy"])
    stmt = trust["Statement"][0]
    assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert stmt["Principal"]["Federated"].endswith("oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/SYNTHPLACEHOLDER")
    cond = stmt["Condition"]["StringEquals"]
    assert cond["oidc.eks.us-east-1.amazonaws.com/id/SYNTHPLACEHOLDER:sub"] == "system:serviceaccount:llm-serving:llm-server"
    sa = result.manifest("ServiceAccount", "llm-server")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("model-read-role")


def test_no_static_aws_keys_anywhere():
    for name in ("dev", "staging", "prod", "dev-small"):
        text = json.dumps(synth(name).manifests())
        assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
        assert not synth(name).of_type("aws:iam/accessKey:AccessKey")


def test_read_policy_passes_parliament():
    parliament = pytest.importorskip("parliament", reason="parliament (IAM linter) not installed")
    policy = model_read_policy("arn:aws:s3:::bucket", "models/", "arn:aws:kms:us-east-1:123456789012:key/k")
    findings = parliament.analyze_policy_string(json.dumps(policy)).findings
    assert findings == [], [f.issue for f in findings]
    bad = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObjekt"], "Resource": ["arn:aws:s3:::bucket"]}]})
    assert parliament.analyze_policy_string(bad).findings  # the oracle can fail
