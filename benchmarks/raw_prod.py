"""The prod stack (stacks/Pulumi.prod.yaml, without its observability section) written by hand with raw pulumi-aws and pulumi-kubernetes
resources: no components, no config model, no sizing. Values are literals as someone writing the
program directly would type them; resource names and inputs match what ServingPlatform registers
for prod (benchmarks/construct.py reports how many resources have identical inputs, and
tests/test_benchmarks.py checks the same resource types, names and counts), so timing it against the
component program shows what the components cost at construction time.
"""

import base64
import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from servingstack.program import tune_gc

CLUSTER = "servingstack-prod"
REGION = "us-east-1"
NAMESPACE = "llm-serving"
APP = "vllm-llama-3-1-70b-instruct"
MODEL = "meta-llama/Llama-3.1-70B-Instruct"


def policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


EKS_TRUST = policy([{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"},
                     "Action": ["sts:AssumeRole", "sts:TagSession"]}])
EC2_TRUST = policy([{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}])
POD_IDENTITY_TRUST = policy([{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                              "Action": ["sts:AssumeRole", "sts:TagSession"]}])
NODE_POLICIES = ["arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                 "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
                 "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
GPU_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//servingstack//"

--//servingstack//
Content-Type: application/node.eks.aws

---
apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  instance:
    localStorage:
      strategy: RAID0

--//servingstack//--
"""
GPU_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]},
                          {"key": "servingstack.io/pool", "operator": "In", "values": ["gpu"]}]}]}}}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
LABELS = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": APP,
          "app.kubernetes.io/component": "llm-server", "app.kubernetes.io/part-of": "servingstack",
          "servingstack.io/model": "llama-3-1-70b-instruct"}
SELECTOR = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": APP}
HEALTH = {"path": "/health", "port": 8000}


ADDONS = {"vpc-cni": "v1.21.1-eksbuild.3", "kube-proxy": "v1.35.0-eksbuild.2",
          "eks-pod-identity-agent": "v1.3.10-eksbuild.3", "coredns": "v1.13.2-eksbuild.1"}
RELEASE = "1.35.4-20260423"


def kubeconfig(name: str, endpoint: str, ca: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}], "current-context": name,
        "users": [{"name": name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", name, "--region", REGION, "--output", "json"],
            "interactiveMode": "Never"}}}],
    })


def main() -> dict[str, Any]:
    tune_gc()  # as components/program.py does (see tune_gc), so comparisons stay like for like
    tags = {"servingstack.io/environment": "prod", "servingstack.io/stack": pulumi.get_stack(), "managed-by": "pulumi"}
    hf_token = pulumi.Config().require_secret("hfToken")

    # ---- network ----
    zones = {"us-east-1a": 0, "us-east-1d": 3}  # use1-az6 and use1-az4 offer p4de; CIDR slot by zone letter
    vpc = aws.ec2.Vpc("cluster-net-vpc", cidr_block="10.0.0.0/16", enable_dns_hostnames=True,
                      enable_dns_support=True, tags={**tags, "Name": "cluster-net-vpc"})
    igw = aws.ec2.InternetGateway("cluster-net-igw", vpc_id=vpc.id, tags=tags)
    public_rt = aws.ec2.RouteTable("cluster-net-public", vpc_id=vpc.id, tags=tags,
                                   routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)])
    private_subnets, egress, private_rts = [], [], []
    for zone, i in zones.items():
        public = aws.ec2.Subnet(f"cluster-net-public-{zone}", vpc_id=vpc.id, cidr_block=f"10.0.{128 + 2 * i}.0/23",
                                availability_zone=zone, map_public_ip_on_launch=False,
                                tags={**tags, f"kubernetes.io/cluster/{CLUSTER}": "shared",
                                      "kubernetes.io/role/elb": "1", "Name": f"cluster-net-public-{zone}"})
        aws.ec2.RouteTableAssociation(f"cluster-net-public-{zone}", subnet_id=public.id, route_table_id=public_rt.id)
        eip = aws.ec2.Eip(f"cluster-net-nat-{zone}", domain="vpc", tags=tags)
        nat = aws.ec2.NatGateway(f"cluster-net-nat-{zone}", allocation_id=eip.id, subnet_id=public.id, tags=tags,
                                 opts=pulumi.ResourceOptions(depends_on=[igw]))
        private = aws.ec2.Subnet(f"cluster-net-private-{zone}", vpc_id=vpc.id, cidr_block=f"10.0.{16 * i}.0/20",
                                 availability_zone=zone,
                                 tags={**tags, f"kubernetes.io/cluster/{CLUSTER}": "shared",
                                       "kubernetes.io/role/internal-elb": "1", "Name": f"cluster-net-private-{zone}"})
        rt = aws.ec2.RouteTable(f"cluster-net-private-{zone}", vpc_id=vpc.id, tags=tags,
                                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)])
        assoc = aws.ec2.RouteTableAssociation(f"cluster-net-private-{zone}", subnet_id=private.id,
                                              route_table_id=rt.id)
        private_subnets.append(private)
        private_rts.append(rt)
        egress += [nat, rt, assoc]
    egress.append(aws.ec2.VpcEndpoint("cluster-net-s3", vpc_id=vpc.id, service_name=f"com.amazonaws.{REGION}.s3",
                                      vpc_endpoint_type="Gateway", route_table_ids=[rt.id for rt in private_rts],
                                      tags={**tags, "Name": "cluster-net-s3"}))
    subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])

    # ---- cluster ----
    role = aws.iam.Role("cluster-cluster-role", assume_role_policy=EKS_TRUST, tags=tags)
    attach = aws.iam.RolePolicyAttachment("cluster-cluster-policy", role=role.name,
                                          policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy")
    keep = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
    key = aws.kms.Key("cluster-secrets-key", description=f"EKS Secrets envelope encryption for {CLUSTER}",
                      enable_key_rotation=True, deletion_window_in_days=30, tags=tags, opts=keep)
    logs = aws.cloudwatch.LogGroup("cluster-logs", name=f"/aws/eks/{CLUSTER}/cluster", retention_in_days=90,
                                   tags=tags)
    cluster = aws.eks.Cluster(
        "cluster-eks", name=CLUSTER, version="1.35", role_arn=role.arn,
        vpc_config=aws.eks.ClusterVpcConfigArgs(subnet_ids=subnet_ids, endpoint_private_access=True,
                                                endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"]),
        encryption_config=aws.eks.ClusterEncryptionConfigArgs(
            provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]),
        enabled_cluster_log_types=["api", "audit", "authenticator", "controllerManager", "scheduler"],
        access_config=aws.eks.ClusterAccessConfigArgs(authentication_mode="API",
                                                      bootstrap_cluster_creator_admin_permissions=True),
        bootstrap_self_managed_addons=False,
        upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"), deletion_protection=True,
        tags=tags, opts=pulumi.ResourceOptions.merge(keep, pulumi.ResourceOptions(depends_on=[attach, logs, *egress])))
    admins = []
    for entry_name, principal in [("admin-262f3962", "arn:aws:iam::123456789012:role/platform-admins")]:
        entry = aws.eks.AccessEntry(f"cluster-{entry_name}", cluster_name=cluster.name, principal_arn=principal,
                                    type="STANDARD", tags=tags)
        admins.append(aws.eks.AccessPolicyAssociation(
            f"cluster-{entry_name}", cluster_name=cluster.name, principal_arn=principal, policy_arn=ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(depends_on=[entry])))

    def addon(name: str, depends_on: list, config: str = None) -> aws.eks.Addon:
        return aws.eks.Addon(f"cluster-{name}", cluster_name=cluster.name, addon_name=name,
                             addon_version=ADDONS[name], configuration_values=config, resolve_conflicts_on_create="OVERWRITE",
                             resolve_conflicts_on_update="OVERWRITE", tags=tags,
                             opts=pulumi.ResourceOptions(depends_on=depends_on))

    vpc_cni = addon("vpc-cni", [cluster], json.dumps({"enableNetworkPolicy": "true"}))
    kube_proxy = addon("kube-proxy", [cluster])
    pod_identity = addon("eks-pod-identity-agent", [cluster])
    node_role = aws.iam.Role("cluster-system-node-role", assume_role_policy=EC2_TRUST, tags=tags)
    node_attachments = [aws.iam.RolePolicyAttachment(
        f"cluster-system-node-{arn.rsplit('/', 1)[1]}", role=node_role.name, policy_arn=arn,
        opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name=f"cluster-system-node-{i}")]))
        for i, arn in enumerate(NODE_POLICIES)]
    system_lt = aws.ec2.LaunchTemplate(
        "cluster-system-lt",
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_endpoint="enabled", http_tokens="required",
                                                                  http_put_response_hop_limit=1),
        block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_size=50, volume_type="gp3", encrypted="true", delete_on_termination="true"))],
        tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(
            resource_type="instance", tags={**tags, "Name": f"{CLUSTER}-system", "servingstack.io/pool": "system"})],
        tags=tags)
    system = aws.eks.NodeGroup(
        "cluster-system", cluster_name=cluster.name, node_role_arn=node_role.arn, subnet_ids=subnet_ids,
        instance_types=["m6i.large"], ami_type="AL2023_x86_64_STANDARD", capacity_type="ON_DEMAND",
        version="1.35", release_version=RELEASE,
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=2, max_size=4, desired_size=2),
        update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
        launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=system_lt.id,
                                                            version=system_lt.latest_version.apply(str)),
        labels={"servingstack.io/pool": "system"}, tags=tags,
        opts=pulumi.ResourceOptions(depends_on=[vpc_cni, kube_proxy, *node_attachments, *egress]))
    coredns = addon("coredns", [system])
    aws.iam.OpenIdConnectProvider("cluster-oidc", url=cluster.identities[0].oidcs[0].issuer,
                                  client_id_lists=["sts.amazonaws.com"], tags=tags)
    config = pulumi.Output.secret(pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data)
                                  .apply(lambda a: kubeconfig(*a)))
    provider = k8s.Provider("cluster-k8s", kubeconfig=config, cluster_identifier=cluster.name,
                            enable_server_side_apply=True,
                            opts=pulumi.ResourceOptions(depends_on=[vpc_cni, kube_proxy, pod_identity, coredns,
                                                                    system, *admins]))
    on_cluster = pulumi.ResourceOptions(provider=provider)

    # ---- GPU node pool ----
    gpu_role = aws.iam.Role("pool-gpu-node-role", assume_role_policy=EC2_TRUST, tags=tags,
                            opts=pulumi.ResourceOptions(depends_on=[cluster]))
    gpu_attachments = [aws.iam.RolePolicyAttachment(
        f"pool-gpu-node-{arn.rsplit('/', 1)[1]}", role=gpu_role.name, policy_arn=arn,
        opts=pulumi.ResourceOptions(depends_on=[cluster], aliases=[pulumi.Alias(name=f"pool-gpu-node-{i}")]))
        for i, arn in enumerate(NODE_POLICIES)]
    gpu_lt = aws.ec2.LaunchTemplate(
        "pool-gpu-lt", description="servingstack GPU pool gpu (p4de.24xlarge)",
        metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_endpoint="enabled", http_tokens="required",
                                                                  http_put_response_hop_limit=1),
        block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
            device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                volume_size=200, volume_type="gp3", encrypted="true", delete_on_termination="true",
                throughput=500, iops=6000))],
        user_data=base64.b64encode(GPU_USER_DATA.encode()).decode(),
        tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind,
                                                                       tags={**tags, "Name": "pool-gpu-gpu",
                                                                             "servingstack.io/pool": "gpu"})
                            for kind in ("instance", "volume")],
        update_default_version=True, tags=tags, opts=pulumi.ResourceOptions(depends_on=[cluster]))
    gpu_pool = aws.eks.NodeGroup(
        "pool-gpu-ng", cluster_name=cluster.name, node_role_arn=gpu_role.arn, subnet_ids=subnet_ids,
        ami_type="AL2023_x86_64_NVIDIA", capacity_type="ON_DEMAND", instance_types=["p4de.24xlarge"],
        version="1.35", release_version=RELEASE,
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=2, max_size=3, desired_size=2),
        update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1, update_strategy="MINIMAL"),
        launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=gpu_lt.id, version=gpu_lt.latest_version.apply(str)),
        labels={"nvidia.com/gpu.present": "true", "servingstack.io/pool": "gpu"},
        taints=[aws.eks.NodeGroupTaintArgs(key="nvidia.com/gpu", value="present", effect="NO_SCHEDULE")],
        tags={**tags, "servingstack.io/pool": "gpu"},
        opts=pulumi.ResourceOptions(depends_on=[cluster, vpc_cni, *egress, *gpu_attachments],
                                    custom_timeouts=pulumi.CustomTimeouts(update="171m")))

    # ---- device plugin and DCGM exporter ----
    def release(name: str, chart: str, repo: str, version: str, values: dict) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            name, name=name, chart=chart, version=version, namespace="nvidia-device-plugin", create_namespace=True,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo), values=values, atomic=True,
            cleanup_on_fail=True, timeout=600, opts=on_cluster)

    plugin = release("device-plugin", "nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.17.4", {
        "migStrategy": "none", "affinity": GPU_AFFINITY, "priorityClassName": "system-node-critical",
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}, GPU_TOLERATION],
        "gfd": {"enabled": False}, "nfd": {"enabled": False}})
    dcgm = release("device-plugin-dcgm", "dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts",
                   "4.8.2", {"affinity": GPU_AFFINITY, "tolerations": [GPU_TOLERATION],
                             "serviceMonitor": {"enabled": False}})

    # ---- namespace, model store, read access ----
    namespace = k8s.core.v1.Namespace("serving-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
        name=NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "restricted",
                                "app.kubernetes.io/part-of": "servingstack"}), opts=on_cluster)
    keep = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
    store_key = aws.kms.Key("model-store-key", description="servingstack model store", enable_key_rotation=True,
                            deletion_window_in_days=30, tags=tags, opts=keep)
    bucket = aws.s3.Bucket("model-store-bucket", force_destroy=False, tags=tags, opts=keep)
    aws.s3.BucketOwnershipControls("model-store-ownership", bucket=bucket.id,
                                   rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"))
    access_block = aws.s3.BucketPublicAccessBlock("model-store-public-access", bucket=bucket.id,
                                                  block_public_acls=True, block_public_policy=True,
                                                  ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketServerSideEncryptionConfiguration(
        "model-store-sse", bucket=bucket.id, rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=store_key.arn), bucket_key_enabled=True)])
    versioning = aws.s3.BucketVersioning("model-store-versioning", bucket=bucket.id,
                                         versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                                             status="Enabled"))
    aws.s3.BucketLifecycleConfiguration(
        "model-store-lifecycle", bucket=bucket.id, opts=pulumi.ResourceOptions(depends_on=[versioning]),
        rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions", status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=30),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7))])
    aws.s3.BucketPolicy("model-store-tls-only", bucket=bucket.id, opts=pulumi.ResourceOptions(depends_on=[access_block]),
                        policy=bucket.arn.apply(lambda arn: policy([{
                            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                            "Resource": [arn, f"{arn}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}])))
    read_role = aws.iam.Role("model-read-role", assume_role_policy=POD_IDENTITY_TRUST, tags=tags)
    aws.iam.RolePolicy("model-read-read", role=read_role.id, policy=pulumi.Output.all(bucket.arn, store_key.arn).apply(
        lambda a: policy([
            {"Sid": "ReadModelObjects", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{a[0]}/models/*"]},
            {"Sid": "ListModelPrefix", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [a[0]],
             "Condition": {"StringLike": {"s3:prefix": ["models/", "models/*"]}}},
            {"Sid": "DecryptModelObjects", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [a[1]],
             "Condition": {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"},
                           "StringLike": {"kms:EncryptionContext:aws:s3:arn": [a[0], f"{a[0]}/models/*"]}}}])))
    aws.eks.PodIdentityAssociation("model-read-association", cluster_name=cluster.name, namespace=NAMESPACE,
                                   service_account="llm-server", role_arn=read_role.arn)

    # ---- Hugging Face token and the vLLM server ----
    hf = k8s.core.v1.Secret("hf-token-secret", metadata=k8s.meta.v1.ObjectMetaArgs(name="hf-token", namespace=NAMESPACE),
                            type="Opaque", string_data={"HF_TOKEN": hf_token},
                            opts=pulumi.ResourceOptions(provider=provider, depends_on=[namespace],
                                                        additional_secret_outputs=["data", "stringData"]))
    after = pulumi.ResourceOptions(provider=provider, depends_on=[namespace, plugin, dcgm, gpu_pool, hf])
    meta = {"name": APP, "namespace": NAMESPACE, "labels": LABELS}
    sa = k8s.core.v1.ServiceAccount("serving-sa", metadata={"name": "llm-server", "namespace": NAMESPACE,
                                                            "labels": LABELS},
                                    automount_service_account_token=False, opts=after)
    deployment = k8s.apps.v1.Deployment(
        "serving-deployment",
        metadata={**meta, "annotations": {
            "servingstack.io/tensor-parallel-size": "2",
            "checkov.io/skip1": "CKV_K8S_15=IfNotPresent on purpose: re-pulling a multi-GB serving image on every "
                                "start delays recovery",
            "checkov.io/skip2": "CKV_K8S_43=pinned to a release tag; set the stack's image to an @sha256 digest to "
                                "pin by content"}},
        spec={
            "replicas": 2, "progressDeadlineSeconds": 2903, "selector": {"matchLabels": SELECTOR},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": LABELS, "annotations": {"prometheus.io/scrape": "true",
                                                               "prometheus.io/port": "8000",
                                                               "prometheus.io/path": "/metrics"}},
                "spec": {
                    "serviceAccountName": "llm-server", "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 163,
                    "nodeSelector": {"nvidia.com/gpu.present": "true", "servingstack.io/pool": "gpu"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                     "effect": "NoSchedule"}],
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": SELECTOR}, "topologyKey": "kubernetes.io/hostname"}]}},
                    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                   "whenUnsatisfiable": "ScheduleAnyway",
                                                   "labelSelector": {"matchLabels": SELECTOR}}],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "vllm", "image": "vllm/vllm-openai:v0.8.4", "imagePullPolicy": "IfNotPresent",
                        "args": ["--model", MODEL, "--tensor-parallel-size", "2", "--max-model-len", "8192",
                                 "--gpu-memory-utilization", "0.92", "--enable-prefix-caching", "--max-num-seqs",
                                 "64", "--dtype", "auto"],
                        "env": [{"name": "HOME", "value": "/cache"}, {"name": "USER", "value": "vllm"},
                                {"name": "LOGNAME", "value": "vllm"}, {"name": "HF_HOME", "value": "/cache/huggingface"},
                                {"name": "VLLM_CACHE_ROOT", "value": "/cache/vllm"},
                                {"name": "XDG_CACHE_HOME", "value": "/cache"},
                                {"name": "VLLM_NO_USAGE_STATS", "value": "1"}, {"name": "DO_NOT_TRACK", "value": "1"},
                                {"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "1"},
                                {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/huggingface/HF_TOKEN"}],
                        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                        "resources": {k: {"cpu": "16", "memory": "200Gi", "nvidia.com/gpu": "2",
                                          "ephemeral-storage": "182Gi"} for k in ("requests", "limits")},
                        "startupProbe": {"httpGet": HEALTH, "periodSeconds": 10, "timeoutSeconds": 5,
                                         "failureThreshold": 184},
                        "readinessProbe": {"httpGet": HEALTH, "periodSeconds": 10, "timeoutSeconds": 5,
                                           "failureThreshold": 3},
                        "livenessProbe": {"httpGet": HEALTH, "periodSeconds": 15, "timeoutSeconds": 10,
                                          "failureThreshold": 4},
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "133"]}}},
                        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"},
                                         {"name": "model-cache", "mountPath": "/cache"},
                                         {"name": "tmp", "mountPath": "/tmp"},
                                         {"name": "hf-token", "mountPath": "/var/run/secrets/huggingface",
                                          "readOnly": True}],
                    }],
                    "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
                                {"name": "model-cache", "emptyDir": {"sizeLimit": "172Gi"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}},
                                {"name": "hf-token", "secret": {"secretName": "hf-token", "defaultMode": 0o440}}],
                },
            },
        },
        opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(
            depends_on=[sa], custom_timeouts=pulumi.CustomTimeouts(create="97m", update="97m"))))
    k8s.core.v1.Service("serving-service", metadata={"name": "llm", "namespace": NAMESPACE, "labels": LABELS,
                                                     "annotations": {"pulumi.com/skipAwait": "true"}},
                        spec={"type": "ClusterIP", "selector": SELECTOR,
                              "ports": [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]},
                        opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[deployment])))
    k8s.policy.v1.PodDisruptionBudget("serving-pdb", metadata=meta,
                                      spec={"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR},
                                            "unhealthyPodEvictionPolicy": "AlwaysAllow"}, opts=after)
    k8s.networking.v1.NetworkPolicy("serving-netpol", metadata=meta, opts=after, spec={
        "podSelector": {"matchLabels": SELECTOR}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["gateway", NAMESPACE]}]}}],
            "ports": [{"port": 8000, "protocol": "TCP"}]}]})

    endpoint = deployment.id.apply(lambda _: f"http://llm.{NAMESPACE}.svc.cluster.local:8000")
    return {"environment": "prod", "clusterName": cluster.name, "kubeconfig": config, "servingStack": "vllm",
            "model": MODEL, "namespace": NAMESPACE, "endpoint": endpoint,
            "openaiBaseUrl": endpoint.apply(lambda e: f"{e}/v1"), "modelStoreBucket": bucket.bucket,
            "modelStoreAccess": "pod-identity", "devicePlugin": "nvidia-device-plugin 0.17.4 on pools gpu",
            "gpuSummary": {"instanceType": "p4de.24xlarge", "gpusPerReplica": 2, "replicas": 2, "gpuNodes": 2,
                           "gpuMemoryGibPerGpu": 80}}
    # Not reproduced: the KV-cache and cost estimates, which the component program computes from the
    # model catalog and price table (part of what the components provide).
