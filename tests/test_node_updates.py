"""Issue 11: node updates that can finish with GPUs, pinned versions, and the options a real run
depends on (protect, retain, ignore_changes, aliases, timeouts, dependencies), asserted on
recorded inputs and options."""

from __future__ import annotations

import json
import math

import pytest

from servingstack.config.estimate import estimate
from servingstack.planning.resources import startup_budget_seconds
from conftest import recording, set_key, stack_config, synth, synth_config

NG = "aws:eks/nodeGroup:NodeGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
ATTACH = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def by_name(result, name):
    (r,) = [r for r in result.resources if r.name == name]
    return r


def test_gpu_node_groups_update_minimal_one_at_a_time(stack):
    for group in synth(stack).of_type(NG):
        if group.name == "cluster-system":
            continue
        assert group.inputs["updateConfig"]["updateStrategy"] == "MINIMAL", group.name
        assert group.inputs["updateConfig"]["maxUnavailable"] == 1


def test_update_timeout_covers_every_node_starting_its_model():
    """prod: 3 nodes at maxSize, one at a time; each replacement waits for eviction (<= 15 min), the
    60 s cordon, a node boot and the serving start-up budget of the 70B model."""
    result = synth("prod")
    group = result.one(NG, "pool-gpu-ng")
    minutes = int(group.options["customTimeouts"]["update"].removesuffix("m"))
    startup = startup_budget_seconds(estimate(result.config).fit.weights_gib)
    assert minutes >= 3 * math.ceil(startup / 60) + 3 * 15
    assert minutes > 60  # longer than the provider's default, which a GPU rollout would overrun


def test_a_tag_change_recycles_no_node():
    """Only `servingstack:tags` changes: every launch-template input except its own tags is the
    same, so no new template version and no node replacement."""
    base = synth("prod")
    cfg = stack_config("prod")
    cfg["servingstack:tags"] = {"cost-center": "ml-42"}
    tagged = synth_config(cfg, name="prod")
    templates = [r.name for r in base.of_type(LT)]
    assert templates == ["cluster-system-lt", "pool-gpu-lt"]
    for name in templates:
        before, after = base.one(LT, name).inputs, tagged.one(LT, name).inputs
        assert after["tags"] != before["tags"]
        assert {k: v for k, v in after.items() if k != "tags"} == {k: v for k, v in before.items() if k != "tags"}
    for group in base.of_type(NG):
        before, after = group.inputs, tagged.one(NG, group.name).inputs
        assert {k: v for k, v in after.items() if k != "tags"} == {k: v for k, v in before.items() if k != "tags"}
    # Instances still carry the stack's fixed tags.
    spec = base.one(LT, "pool-gpu-lt").inputs["tagSpecifications"][0]["tags"]
    assert spec["servingstack.io/stack"] == "prod" and spec["servingstack.io/pool"] == "gpu"


def test_node_groups_pin_kubernetes_and_ami_release_versions(stack):
    """Every node group follows the cluster version and pins the AMI release AWS publishes for it
    (the recorded answer to the SSM parameter the EKS docs name)."""
    from servingstack.planning.eks import release_version_parameter

    result = synth(stack)
    rec = recording(result.config.region)
    for group in result.of_type(NG):
        i = group.inputs
        assert i["version"] == result.outputs["kubernetesVersion"] == "1.35"
        assert i["releaseVersion"] == rec["ssmParameters"][release_version_parameter(i["amiType"], i["version"])]


def test_pinned_release_and_addon_versions_win_over_the_lookups():
    cfg = stack_config("prod")
    set_key(cfg, "servingstack:gpuNodePool.releaseVersion", "1.35.2-20260304")
    set_key(cfg, "servingstack:cluster.addonVersions", {"coredns": "v1.12.4-eksbuild.1"})
    result = synth_config(cfg)
    assert result.one(NG, "pool-gpu-ng").inputs["releaseVersion"] == "1.35.2-20260304"
    addons = {r.inputs["addonName"]: r.inputs["addonVersion"] for r in result.of_type("aws:eks/addon:Addon")}
    assert addons == {"coredns": "v1.12.4-eksbuild.1", "vpc-cni": "v1.21.1-eksbuild.3",
                      "kube-proxy": "v1.35.0-eksbuild.2", "eks-pod-identity-agent": "v1.3.10-eksbuild.3"}


def test_a_version_without_published_amis_in_the_recording_fails_in_one_line():
    from servingstack.config import ConfigError

    cfg = set_key(stack_config("prod"), "servingstack:cluster.version", "1.34")
    with pytest.raises(ConfigError) as exc:
        synth_config(cfg)
    message = str(exc.value)
    assert message.startswith("servingstack:cluster.") and "1.34" in message and "\n" not in message


def test_bottlerocket_pool_pins_the_bottlerocket_release():
    cfg = set_key(stack_config("prod"), "servingstack:gpuNodePool.amiType", "BOTTLEROCKET_x86_64_NVIDIA")
    set_key(cfg, "servingstack:gpuNodePool.diskSizeGib", 300)
    group = synth_config(cfg).one(NG, "pool-gpu-ng").inputs
    assert group["releaseVersion"] == recording()["ssmParameters"][
        "/aws/service/bottlerocket/aws-k8s-1.35-nvidia/x86_64/latest/image_version"]


def test_policy_attachments_are_named_by_policy_with_aliases_to_their_old_index_names():
    result = synth("prod")
    for prefix in ("cluster-system-node", "pool-gpu-node"):
        attachments = [r for r in result.of_type(ATTACH) if r.name.startswith(prefix)]
        assert sorted(r.name.removeprefix(prefix + "-") for r in attachments) == [
            "AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"]
        order = ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"]
        for r in attachments:
            old = f"{prefix}-{order.index(r.inputs['policyArn'].rsplit('/', 1)[1])}"
            # The alias is the URN the attachment had when it was named by list index.
            assert r.options["aliases"] == [r.urn.rsplit("::", 1)[0] + f"::{old}"]


def test_prod_cluster_and_secrets_key_are_protected_and_kept():
    result = synth("prod")
    for name in ("cluster-eks", "cluster-secrets-key"):
        assert by_name(result, name).options.get("protect") and by_name(result, name).options.get("retainOnDelete")
    assert by_name(result, "cluster-eks").inputs["deletionProtection"] is True
    dev = synth("dev")
    assert not by_name(dev, "cluster-eks").options.get("protect")
    assert "deletionProtection" not in by_name(dev, "cluster-eks").inputs


def test_log_group_with_retention_exists_before_the_cluster():
    result = synth("prod")
    logs = result.one("aws:cloudwatch/logGroup:LogGroup")
    assert logs.inputs == {"name": "/aws/eks/servingstack-prod/cluster", "retentionInDays": 90,
                           "tags": logs.inputs["tags"]}
    assert logs.urn in by_name(result, "cluster-eks").dependencies
    cfg = set_key(stack_config("prod"), "servingstack:cluster.logRetentionDays", 365)
    assert synth_config(cfg).one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 365


def test_cluster_and_node_groups_wait_for_nat_and_route_table_associations():
    result = synth("prod")
    egress = {r.urn for r in result.resources if r.type in ("aws:ec2/natGateway:NatGateway",
                                                              "aws:ec2/routeTableAssociation:RouteTableAssociation")
              and "public" not in r.name.rsplit("-", 3)[1:2] and ("nat" in r.name or "private" in r.name)}
    assert len(egress) == 4  # 2 NAT gateways, 2 private route-table associations
    for name in ("cluster-eks", "cluster-system", "pool-gpu-ng"):
        assert egress <= set(by_name(result, name).dependencies), name


def test_s3_gateway_endpoint_on_the_private_route_tables():
    result = synth("prod")
    endpoint = result.one("aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    private_rts = sorted(f"{r.name}-id" for r in result.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name)
    assert endpoint["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert endpoint["vpcEndpointType"] == "Gateway"
    assert sorted(endpoint["routeTableIds"]) == private_rts and len(private_rts) == 2


def test_pod_kms_decrypt_only_through_s3_for_this_bucket():
    result = synth("prod")
    policy = json.loads(result.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    (decrypt,) = [s for s in policy["Statement"] if s["Action"] == ["kms:Decrypt"]]
    bucket = f"arn:aws:s3:::{result.one('aws:s3/bucket:Bucket').name}-synth-placeholder"
    assert decrypt["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}
    # The bucket's ARN is S3's encryption context with a Bucket Key, the object's ARN without one (an
    # adopted bucket, or objects written before Bucket Keys): both decrypt, and only under the model prefix.
    assert decrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:aws:s3:arn": [bucket, f"{bucket}/models/*"]}


def test_kubeconfig_get_token_uses_the_providers_profile_and_role():
    cfg = stack_config("prod")
    cfg["aws:profile"] = "deploy"
    cfg["aws:assumeRoles"] = [{"roleArn": "arn:aws:iam::210987654321:role/hop"},
                              {"roleArn": "arn:aws:iam::210987654321:role/deployer", "sessionName": "ci"}]
    result = synth_config(cfg, keep_secrets=True, secrets={"hfToken": "hf_x"})
    kubeconfig = json.loads(result.one("pulumi:providers:kubernetes").inputs["kubeconfig"])
    args = kubeconfig["users"][0]["user"]["exec"]["args"]
    assert args[args.index("--role-arn") + 1] == "arn:aws:iam::210987654321:role/deployer"
    assert args[args.index("--profile") + 1] == "deploy"
    plain = json.loads(synth("prod").config.model_dump_json())["aws"]
    assert plain == {"profile": None, "assume_role_arn": None}


def test_plan_json_records_the_options_a_real_run_depends_on(tmp_path):
    from servingstack.tools.output import plan_document

    cfg = stack_config("prod")
    set_key(cfg, "servingstack:gpuNodePool.instanceType", "p5.48xlarge")
    set_key(cfg, "servingstack:gpuNodePool.capacityType", "CAPACITY_BLOCK")
    set_key(cfg, "servingstack:gpuNodePool.capacityReservationId", "cr-0123456789abcdef0")
    set_key(cfg, "servingstack:gpuNodePool.availabilityZone", "us-east-1b")
    doc = {r["name"]: r for r in plan_document(synth_config(cfg, name="prod"))["resources"]}
    assert doc["cluster-eks"]["options"]["protect"] and doc["cluster-eks"]["options"]["retainOnDelete"]
    assert doc["pool-gpu-ng"]["options"]["ignoreChanges"] == ["scalingConfig.desiredSize"]
    assert doc["pool-gpu-ng"]["options"]["customTimeouts"]["update"].endswith("m")
    assert doc["pool-gpu-node-AmazonEKSWorkerNodePolicy"]["options"]["aliases"]
    assert any("natGateway" in urn for urn in doc["pool-gpu-ng"]["dependsOn"])
