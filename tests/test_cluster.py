"""Issue 3: the EKS cluster (create or adopt) and GPU node pools, asserted on recorded inputs."""

import base64
import json

import pytest

from servingstack.aws.network_spec import subnet_cidrs
from servingstack.aws.nodepool_spec import node_user_data, pool_labels
from servingstack.planning.catalog import INSTANCE_TYPES
from conftest import stack_config, synth, synth_config, set_key

NG = "aws:eks/nodeGroup:NodeGroup"
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def gpu_group(result, pool="gpu"):
    return result.one(NG, f"pool-{pool}-ng").inputs


def gpu_template(result, pool="gpu"):
    return result.one(LT, f"pool-{pool}-lt").inputs


def test_prod_cluster_endpoint_encryption_logging_and_auth():
    cluster = synth("prod").one("aws:eks/cluster:Cluster").inputs
    assert cluster["version"] == "1.35"
    # Explicit: the API's default upgrade policy is EXTENDED (botocore eks UpgradePolicyRequest).
    assert cluster["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster["deletionProtection"] is True
    vpc = cluster["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert "0.0.0.0/0" not in vpc["publicAccessCidrs"]
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    key_arn = cluster["encryptionConfig"]["provider"]["keyArn"]
    key = [r for r in synth("prod").of_type("aws:kms/key:Key") if r.name == "cluster-secrets-key"][0]
    assert key.inputs["enableKeyRotation"] is True
    assert key_arn.endswith("cluster-secrets-key")
    assert set(cluster["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    # The creating principal gets cluster-admin from EKS itself, fixed at creation.
    assert cluster["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}
    assert cluster["bootstrapSelfManagedAddons"] is False


def test_new_cluster_needs_public_cidrs_adopted_does_not():
    from servingstack.config import ConfigError

    cfg = stack_config("prod")
    cfg["servingstack:cluster"]["publicAccessCidrs"] = []
    with pytest.raises(ConfigError, match="cluster.publicAccessCidrs: .*private-only endpoint"):
        synth_config(cfg)
    cfg["servingstack:cluster"].update({"create": False, "name": "existing"})
    assert not synth_config(cfg).of_type("aws:eks/cluster:Cluster")


def test_access_entries_for_configured_admins_named_by_principal():
    import hashlib

    result = synth("prod")
    entries = result.of_type("aws:eks/accessEntry:AccessEntry")
    admin = "arn:aws:iam::123456789012:role/platform-admins"
    assert [r.inputs["principalArn"] for r in entries] == [admin]
    # Named after the principal (stable when the list is reordered), never after whoever runs pulumi.
    assert entries[0].name == f"cluster-admin-{hashlib.sha256(admin.encode()).hexdigest()[:8]}"
    assert not any("synth-placeholder" in r.inputs["principalArn"] for r in entries)
    for assoc in result.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        assert assoc.inputs["policyArn"].endswith("AmazonEKSClusterAdminPolicy")
        assert assoc.inputs["accessScope"] == {"type": "cluster"}
    # Duplicates in the list make one entry (a second entry for a principal fails in EKS).
    cfg = stack_config("prod")
    cfg["servingstack:cluster"]["adminPrincipalArns"] = [admin, admin]
    assert len(synth_config(cfg, name="prod").of_type("aws:eks/accessEntry:AccessEntry")) == 1


def depends_on(result, later, earlier):
    """Whether the recorded registration of `later` waits for `earlier` (names of custom resources)."""
    (after,) = [r for r in result.resources if r.name == later]
    (before,) = [r for r in result.resources if r.name == earlier]
    return before.urn in after.dependencies


def test_addons_order_and_network_policy():
    result = synth("prod")
    addons = {r.inputs["addonName"]: r for r in result.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"}
    assert json.loads(addons["vpc-cni"].inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # vpc-cni before any node group (the GPU pool's component dependency reaches its node group);
    # coredns only after the system nodes exist.
    assert depends_on(result, "cluster-system", "cluster-vpc-cni")
    assert depends_on(result, "pool-gpu-ng", "cluster-vpc-cni")
    assert depends_on(result, "cluster-coredns", "cluster-system")
    assert not depends_on(result, "cluster-vpc-cni", "cluster-system")


def test_system_pool_is_untainted_cpu():
    system = synth("prod").one(NG, "cluster-system").inputs
    assert system["amiType"] == "AL2023_x86_64_STANDARD"
    assert "taints" not in system or not system["taints"]
    assert not INSTANCE_TYPES.get(system["instanceTypes"][0])


def test_kubernetes_provider_is_explicit_with_stable_identifier():
    result = synth("prod")
    provider = result.one("pulumi:providers:kubernetes")
    assert provider.inputs["clusterIdentifier"] == "servingstack-prod"
    assert provider.inputs["kubeconfig"] == "[secret]"
    for r in result.resources:
        if r.type.startswith("kubernetes:"):
            assert "pulumi:providers:kubernetes::cluster-k8s::" in r.provider, r.name
    assert result.outputs["kubeconfig"] == "[secret]"


def test_gpu_node_group_prod():
    result = synth("prod")
    ng = gpu_group(result)
    assert ng["amiType"] == "AL2023_x86_64_NVIDIA"
    assert ng["capacityType"] == "ON_DEMAND"
    assert ng["instanceTypes"] == ["p4de.24xlarge"]
    assert ng["scalingConfig"] == {"minSize": 2, "maxSize": 3, "desiredSize": 2}
    assert ng["updateConfig"] == {"maxUnavailable": 1, "updateStrategy": "MINIMAL"}
    assert (ng["version"], ng["releaseVersion"]) == ("1.35", "1.35.4-20260423")
    assert ng["labels"]["nvidia.com/gpu.present"] == "true"
    assert ng["labels"]["servingstack.io/pool"] == "gpu"
    assert ng["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    role = result.one("aws:iam/role:Role", "pool-gpu-node-role")
    policies = sorted(r.inputs["policyArn"].rsplit("/", 1)[1] for r in result.of_type(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment") if r.name.startswith("pool-gpu-node-"))
    assert policies == ["AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_gpu_launch_template_imdsv2_disk_nvme():
    lt = gpu_template(synth("prod"))
    assert lt["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                     "httpPutResponseHopLimit": 1}
    (disk,) = lt["blockDeviceMappings"]
    assert disk["deviceName"] == "/dev/xvda"
    assert disk["ebs"]["volumeType"] == "gp3" and disk["ebs"]["encrypted"] == "true"
    assert disk["ebs"]["volumeSize"] >= 200
    user_data = base64.b64decode(lt["userData"]).decode()
    assert "Content-Type: application/node.eks.aws" in user_data
    assert "strategy: RAID0" in user_data
    assert {t["resourceType"] for t in lt["tagSpecifications"]} == {"instance", "volume"}


def test_bottlerocket_uses_data_volume_and_no_raid_and_skips_plugin():
    cfg = set_key(stack_config("prod"), "servingstack:gpuNodePool.amiType", "BOTTLEROCKET_x86_64_NVIDIA")
    set_key(cfg, "servingstack:gpuNodePool.diskSizeGib", 300)  # no NVMe RAID: the 70B cache is on this disk
    result = synth_config(cfg)
    lt = gpu_template(result)
    assert lt["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"
    assert "userData" not in lt
    assert not result.of_type("kubernetes:helm.sh/v3:Release") or all(
        r.inputs["chart"] != "nvidia-device-plugin" for r in result.of_type("kubernetes:helm.sh/v3:Release"))
    assert "Bottlerocket" in result.outputs["devicePlugin"]
    # GPU metrics still run there: DCGM's affinity names the (Bottlerocket) pool.
    (dcgm,) = [r for r in result.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "dcgm-exporter"]
    terms = dcgm.inputs["values"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][1]["values"] == ["gpu"]


def test_model_cache_must_fit_the_disk_without_nvme():
    from servingstack.config import ConfigError

    cfg = set_key(stack_config("prod"), "servingstack:gpuNodePool.localNvmeRaid0", False)
    with pytest.raises(ConfigError, match=r"gpuNodePool.diskSizeGib: 200 — .*182 GiB.*>= 222"):
        synth_config(cfg)
    set_key(cfg, "servingstack:gpuNodePool.diskSizeGib", 222)
    assert synth_config(cfg).manifest("Deployment")


def test_capacity_block_pool():
    cfg = stack_config("prod")
    # p5.48xlarge capacity blocks are sold in us-east-1 (catalog.CAPACITY_BLOCK_REGIONS); us-east-1b
    # (use1-az1) offers p5 and is not one of prod's pinned zones.
    set_key(cfg, "servingstack:gpuNodePool.instanceType", "p5.48xlarge")
    set_key(cfg, "servingstack:gpuNodePool.capacityType", "CAPACITY_BLOCK")
    set_key(cfg, "servingstack:gpuNodePool.capacityReservationId", "cr-0123456789abcdef0")
    set_key(cfg, "servingstack:gpuNodePool.availabilityZone", "us-east-1b")
    result = synth_config(cfg)
    ng, lt = gpu_group(result), gpu_template(result)
    assert ng["capacityType"] == "CAPACITY_BLOCK"
    assert "instanceTypes" not in ng  # the instance type lives in the launch template
    assert lt["instanceType"] == "p5.48xlarge"
    # EKS scales capacity-block groups to 0 before the block ends: the program must not fight it.
    assert result.one(NG, "pool-gpu-ng").options["ignoreChanges"] == ["scalingConfig.desiredSize"]
    assert lt["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert lt["capacityReservationSpecification"]["capacityReservationTarget"] == {
        "capacityReservationId": "cr-0123456789abcdef0"}
    # Only the reservation's zone: the private subnet created in us-east-1b.
    subnets = {r.inputs["availabilityZone"]: r for r in result.of_type("aws:ec2/subnet:Subnet") if "private" in r.name}
    assert ng["subnetIds"] == [f"{subnets['us-east-1b'].name}-id"]


def test_spot_pool_and_hop_limit():
    cfg = stack_config("prod")
    set_key(cfg, "servingstack:gpuNodePool.capacityType", "SPOT")
    set_key(cfg, "servingstack:gpuNodePool.metadataHopLimit", 2)
    result = synth_config(cfg)
    assert gpu_group(result)["capacityType"] == "SPOT"
    assert gpu_template(result)["metadataOptions"]["httpPutResponseHopLimit"] == 2


def test_extra_gpu_pool_alongside_primary():
    cfg = stack_config("prod")
    cfg["servingstack:extraGpuNodePools"] = [{"name": "l4", "instanceType": "g6.12xlarge", "minSize": 0,
                                              "maxSize": 2, "desiredSize": 0}]
    result = synth_config(cfg)
    l4 = gpu_group(result, "l4")
    assert l4["instanceTypes"] == ["g6.12xlarge"] and l4["labels"]["servingstack.io/pool"] == "l4"
    assert gpu_group(result)["instanceTypes"] == ["p4de.24xlarge"]
    # The serving stack stays on the primary pool unless serving.nodePool names another.
    dep = result.manifest("Deployment")
    assert dep["spec"]["template"]["spec"]["nodeSelector"]["servingstack.io/pool"] == "gpu"


def test_adopted_cluster_registers_no_vpc_cluster_or_cluster_role():
    result = synth("dev-small")
    types = {r.type for r in result.resources}
    assert not types & {"aws:ec2/vpc:Vpc", "aws:eks/cluster:Cluster", "aws:ec2/subnet:Subnet",
                        "aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry"}
    assert not [r for r in result.of_type("aws:iam/role:Role") if "cluster" in r.name]
    # ...and still deploys node pools and everything downstream.
    ng = result.one(NG).inputs
    assert ng["clusterName"] == "platform-dev"
    assert ng["subnetIds"] == [f"subnet-synth-placeholder-{i}" for i in range(3)]
    assert result.manifest("Deployment")
    assert result.one("pulumi:providers:kubernetes").inputs["clusterIdentifier"] == "platform-dev"


def test_adopt_is_one_line_flip(capfd):
    cfg = stack_config("prod")
    cfg["servingstack:cluster"]["create"] = False
    cfg["servingstack:cluster"]["name"] = "existing"
    result = synth_config(cfg)
    assert not result.of_type("aws:eks/cluster:Cluster")
    assert any("publicAccessCidrs" in n for n in result.notices)  # ignored, with a notice (the CLI prints it)


@pytest.mark.parametrize("cidr,count", [("10.0.0.0/16", 2), ("10.0.0.0/16", 3), ("10.20.0.0/16", 6),
                                        ("172.16.0.0/12", 8)])
def test_subnet_cidrs_are_disjoint_inside_vpc(cidr, count):
    import ipaddress

    zones = [f"us-east-1{letter}" for letter in "abcdefgh"[:count]]
    private, public = subnet_cidrs(cidr, zones)
    nets = [ipaddress.ip_network(c) for c in private + public]
    assert len(private) == len(public) == count
    vpc = ipaddress.ip_network(cidr)
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])


def test_pure_helpers():
    assert pool_labels("a100", {"team": "x"}) == {"team": "x", "nvidia.com/gpu.present": "true",
                                                 "servingstack.io/pool": "a100"}
    assert node_user_data("AL2023_x86_64_NVIDIA", INSTANCE_TYPES["g6.xlarge"], True)
    assert node_user_data("AL2023_x86_64_NVIDIA", INSTANCE_TYPES["p4d.24xlarge"], False) is None
    assert node_user_data("BOTTLEROCKET_x86_64_NVIDIA", INSTANCE_TYPES["p4d.24xlarge"], True) is None


def test_pinning_a_zone_never_renumbers_existing_subnets():
    def private_cidrs(result):
        return {r.inputs["availabilityZone"]: r.inputs["cidrBlock"] for r in result.of_type("aws:ec2/subnet:Subnet")
                if "private" in r.name}

    def unchanged_by_pinning(result):
        """What replacing would cost: the control plane's and the system pool's subnets."""
        return (result.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["subnetIds"],
                result.one(NG, "cluster-system").inputs["subnetIds"])

    base = synth("prod")
    before = private_cidrs(base)
    for zone in ("us-east-1b", "us-east-1c"):  # both offer g6.12xlarge, neither is a prod zone
        cfg = stack_config("prod")
        cfg["servingstack:extraGpuNodePools"] = [{"name": "l4", "instanceType": "g6.12xlarge", "minSize": 0,
                                                  "maxSize": 1, "desiredSize": 0, "availabilityZone": zone}]
        pinned = synth_config(cfg, name="prod")
        after = private_cidrs(pinned)
        assert set(after) == set(before) | {zone}
        assert {z: c for z, c in after.items() if z in before} == before
        assert unchanged_by_pinning(pinned) == unchanged_by_pinning(base)


def test_single_az_pool_outside_the_cluster_zones_gets_its_subnet():
    cfg = stack_config("prod")
    cfg["servingstack:extraGpuNodePools"] = [{"name": "l4", "instanceType": "g6.12xlarge", "minSize": 0,
                                              "maxSize": 1, "desiredSize": 0, "availabilityZone": "us-east-1c"}]
    result = synth_config(cfg)
    zones = sorted(r.inputs["availabilityZone"] for r in result.of_type("aws:ec2/subnet:Subnet") if "private" in r.name)
    assert zones == ["us-east-1a", "us-east-1c", "us-east-1d"]
    (subnet,) = [r for r in result.of_type("aws:ec2/subnet:Subnet") if r.name.endswith("private-us-east-1c")]
    assert gpu_group(result, "l4")["subnetIds"] == [f"{subnet.name}-id"]
