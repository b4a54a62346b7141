"""Issue 4: device plugin, NGC/HF credentials, model store and read-only pod access."""

import base64
import json

import parliament
import pytest

import servingstack.tools.offline.recorder as recorder_module
from servingstack.aws.iam_spec import model_read_policy
from servingstack.aws.nodepool_spec import tolerations_for
from servingstack.config import REDACTED
from servingstack.k8s.credentials import HuggingFaceToken, NgcCredentials
from servingstack.k8s.device_plugin_spec import tolerates
from servingstack.tools.offline.recorder import run_program
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
    # DCGM's ServiceMonitor follows observability (prod installs kube-prometheus-stack); off without it.
    dcgm = release(synth("prod"), "dcgm-exporter")
    assert dcgm["values"]["serviceMonitor"] == {"enabled": True, "interval": "15s"}
    quiet = synth_config(set_key(stack_config("prod"), "servingstack:observability", {"prometheus": "none"}))
    assert release(quiet, "dcgm-exporter")["values"]["serviceMonitor"] == {"enabled": False}


def test_time_slicing_dev_only_and_rendered():
    cfg = set_key(stack_config("dev"), "servingstack:devicePlugin.timeSlicingReplicas", 4)
    # Time-slicing with tensor parallelism > 1 is refused (tests/test_engine_behaviour.py).
    set_key(cfg, "servingstack:serving.tensorParallelSize", 1)
    set_key(cfg, "servingstack:serving.model", "meta-llama/Llama-3.1-8B-Instruct")
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


PLANTED_NGC = "nvapi-PLANTED"
SECRET = "kubernetes:core/v1:Secret"


def recorded_secret(result, name):
    (r,) = [r for r in result.of_type(SECRET) if r.inputs["metadata"]["name"] == name]
    return r.inputs


def test_ngc_pull_secret_decodes_to_nvcr_oauthtoken_with_the_planted_key():
    # keep_secrets: the recorder shows the secret values the Secrets would really carry.
    kept = synth_config(stack_config("dev"), "dev", secrets={"ngcApiKey": PLANTED_NGC}, keep_secrets=True)
    pull = recorded_secret(kept, "ngc-secret")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    assert set(pull["stringData"]) == {".dockerconfigjson"}
    auths = json.loads(pull["stringData"][".dockerconfigjson"])["auths"]
    assert set(auths) == {"nvcr.io"}
    assert auths["nvcr.io"]["username"] == "$oauthtoken"
    assert auths["nvcr.io"]["password"] == PLANTED_NGC
    assert base64.b64decode(auths["nvcr.io"]["auth"], validate=True).decode() == f"$oauthtoken:{PLANTED_NGC}"
    api = recorded_secret(kept, "ngc-api")
    assert api["type"] == "Opaque" and api["stringData"] == {"NGC_API_KEY": PLANTED_NGC}

    # The same run without keep_secrets (the default) shows only the marker.
    default = synth_config(stack_config("dev"), "dev", secrets={"ngcApiKey": PLANTED_NGC})
    assert recorded_secret(default, "ngc-secret")["stringData"] == {".dockerconfigjson": REDACTED}
    assert recorded_secret(default, "ngc-api")["stringData"] == {"NGC_API_KEY": REDACTED}
    assert PLANTED_NGC not in repr(default.resources)


def test_ngc_secrets_are_redacted_as_secret_outputs_not_by_string_scrubbing(monkeypatch):
    # The recorder has two redactions: values Pulumi marks secret, and a scrubber replacing known
    # secret strings (and their base64 forms) anywhere. Switch the scrubber off: what is still
    # redacted reached the Secret as a secret Output, as it must to be encrypted in Pulumi state.
    monkeypatch.setattr(recorder_module, "scrub", lambda text, secrets: text)
    result = synth_config(stack_config("dev"), "dev", secrets={"ngcApiKey": PLANTED_NGC})
    assert recorded_secret(result, "ngc-secret")["stringData"] == {".dockerconfigjson": REDACTED}
    assert recorded_secret(result, "ngc-api")["stringData"] == {"NGC_API_KEY": REDACTED}
    assert PLANTED_NGC not in repr(result.resources)


def test_credential_components_wrap_a_plain_value_as_secret(monkeypatch):
    # pulumi_kubernetes' Secret marks stringData secret by itself, so the recorded Secret cannot
    # show whether the components wrap the key. Capture what they hand to the Secret instead: given
    # a plain (non-secret) string, every stringData value must already be a secret Output.
    import pulumi_kubernetes as k8s

    handed = {}

    class SpySecret(k8s.core.v1.Secret):
        def __init__(self, resource_name, opts=None, **kwargs):
            for key, value in (kwargs.get("string_data") or {}).items():
                handed[f"{resource_name}/{key}"] = value
            super().__init__(resource_name, opts=opts, **kwargs)

    monkeypatch.setattr(k8s.core.v1, "Secret", SpySecret)

    def program():
        NgcCredentials("ngc", {"namespace": "ns", "api_key": PLANTED_NGC, "allow_default_provider": True})
        HuggingFaceToken("hf", {"namespace": "ns", "token": "hf_PLANTED", "allow_default_provider": True})
        return dict(handed)  # run_program replaces a secret output by the marker

    # No secret value is known to the scrubber: only secret marking can redact.
    result = run_program(program, {}, [], "credentials", "us-east-1")
    assert result.outputs == {"ngc-pull/.dockerconfigjson": REDACTED, "ngc-api/NGC_API_KEY": REDACTED,
                              "hf-secret/HF_TOKEN": REDACTED}
    assert recorded_secret(result, "ngc-api")["stringData"] == {"NGC_API_KEY": REDACTED}
    assert "PLANTED" not in repr(result.resources) + repr(result.outputs)
    handed.clear()
    kept = run_program(program, {}, [], "credentials", "us-east-1", keep_secrets=True)  # the oracle can see
    assert kept.outputs["ngc-api/NGC_API_KEY"] == PLANTED_NGC
    assert recorded_secret(kept, "hf-token")["stringData"] == {"HF_TOKEN": "hf_PLANTED"}


def test_ngc_dockerconfig_shape():
    from servingstack.k8s.credentials import ngc_docker_config

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


def _adopted_bucket_config():
    cfg = stack_config("prod")
    cfg["servingstack:modelStore"] = {"create": False, "bucketName": "team-models",
                                      "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/abc-123"}
    return cfg


POD_ROLE_CONFIGS = {
    "prod": lambda: synth("prod"),            # vLLM, Pod Identity
    "staging": lambda: synth("staging"),      # Triton, IRSA
    "dev": lambda: synth("dev"),              # NIM
    "adopted-bucket": lambda: synth_config(_adopted_bucket_config(), "adopted"),
}


@pytest.mark.parametrize("config", list(POD_ROLE_CONFIGS))
def test_recorded_pod_role_policy_passes_parliament_and_stays_read_only(config):
    result = POD_ROLE_CONFIGS[config]()
    text = result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    findings = parliament.analyze_policy_string(text).findings
    assert findings == [], [(f.issue, f.detail) for f in findings]

    statements = json.loads(text)["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    by_action = {}
    for s in statements:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        for action in actions:
            by_action.setdefault(action, []).append(s)
    assert set(by_action) == {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"}
    (get,) = by_action["s3:GetObject"]
    (object_arn,) = get["Resource"]
    bucket_arn, _, prefix = object_arn.partition("/")
    assert prefix == "models/*" and "Condition" not in get  # objects: only under the model prefix
    assert bucket_arn.startswith("arn:aws:s3:::") and "*" not in bucket_arn
    if config == "adopted-bucket":
        assert bucket_arn == "arn:aws:s3:::team-models"
    for s in by_action["s3:ListBucket"]:
        assert s["Resource"] == [bucket_arn]
    listing = [s for s in by_action["s3:ListBucket"] if "Condition" in s]
    unconditioned = [s for s in by_action["s3:ListBucket"] if "Condition" not in s]
    for s in listing:
        assert s["Condition"] == {"StringLike": {"s3:prefix": ["models/", "models/*"]}}
    if result.outputs["servingStack"] == "triton":
        # Triton's S3 client calls HeadBucket, authorised as s3:ListBucket without an s3:prefix.
        assert len(unconditioned) == 1
    else:
        assert listing and not unconditioned
    (kms,) = by_action["kms:Decrypt"]
    assert kms["Resource"] and all(r.startswith("arn:aws:kms:") and "*" not in r for r in kms["Resource"])


def test_read_policy_passes_parliament():
    for region in (None, "us-east-1"):
        policy = model_read_policy("arn:aws:s3:::bucket", "models/", "arn:aws:kms:us-east-1:123456789012:key/k",
                                   region=region)
        findings = parliament.analyze_policy_string(json.dumps(policy)).findings
        assert findings == [], [f.issue for f in findings]
    bad = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObjekt"], "Resource": ["arn:aws:s3:::bucket"]}]})
    assert parliament.analyze_policy_string(bad).findings  # the oracle can fail


def test_hf_token_only_for_gated_models():
    from servingstack.config import parse_stack_config, secret_needed

    cfg = stack_config("prod")
    assert secret_needed(parse_stack_config(cfg))["hfToken"] is True  # Llama is gated
    cfg["servingstack:serving"]["model"] = "Qwen/Qwen2.5-72B-Instruct"
    assert secret_needed(parse_stack_config(cfg))["hfToken"] is False
    result = synth_config(cfg)
    assert not [m for m in result.manifests() if m["kind"] == "Secret"]
    assert "HF_TOKEN_PATH" not in {e["name"] for e in result.manifest("Deployment")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
