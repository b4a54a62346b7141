"""The whole stack config as pydantic models: the one place Pulumi config is read.

Every key lives under the `servingstack:` namespace with camelCase names. Unknown keys, wrong types,
out-of-range numbers and cross-field conflicts raise `ConfigError` (a `pulumi.RunError`, so the CLI
prints one line without a traceback) before any resource is registered.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Literal, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from ..planning import catalog, prices
from .errors import RuleError, format_value
from .fields import (
    AvailabilityZone,
    AwsRegion,
    AwsTags,
    ChartVersion,
    ConfigModel,
    Dns1123Label,
    Enum as EnumField,
    KmsKeyArn,
    NodeLabels,
    S3BucketName,
    check_sizes,
    covered_share,
)
from .cluster import (  # noqa: F401 - re-exported
    ADOPT_ONLY_CLUSTER_KEYS,
    ADOPT_ONLY_MODEL_STORE_KEYS,
    CREATE_ONLY_CLUSTER_KEYS,
    LOG_RETENTION_DAYS,
    RELEASE_VERSION,
    ZONE_ID,
    ClusterConfig,
    SystemNodePoolConfig,
)
from .autoscaling import AutoscalingConfig, check_autoscaling, check_cooldown
from .observability import ObservabilityConfig
from .provider import AwsProviderConfig
from .serving import ServingConfig
from .workload import WorkloadConfig
from .benchmark import BenchmarkConfig, benchmark_rules

class Environment(str, Enum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class GpuNodePoolConfig(ConfigModel):
    name: Dns1123Label = "gpu"
    """Pool name; also the value of the `servingstack.io/pool` node label."""
    instance_type: str = "p4de.24xlarge"
    """GPU instance type from the catalog: p4d.24xlarge (8x A100 40 GB), p4de.24xlarge (8x A100 80 GB), p5.48xlarge, g5/g6/g6e sizes."""
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = "AL2023_x86_64_NVIDIA"
    """EKS AMI type; Bottlerocket NVIDIA bundles the device plugin (none is installed for it)."""
    capacity_type: Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"] = "ON_DEMAND"
    """How the nodes are bought; CAPACITY_BLOCK needs capacityReservationId and availabilityZone."""
    capacity_reservation_id: Optional[str] = Field(None, pattern=r"^cr-[0-9a-f]{8,17}$", max_length=20)
    """The cr-... id of the EC2 Capacity Block (CAPACITY_BLOCK only)."""
    availability_zone: Optional[AvailabilityZone] = None
    """Single-AZ placement, a zone of aws:region (required for capacity blocks: the reservation's AZ)."""
    min_size: int = Field(0, ge=0, le=100)
    """Minimum nodes."""
    max_size: int = Field(2, ge=1, le=100)
    """Maximum nodes; must hold the serving replicas."""
    desired_size: int = Field(2, ge=0, le=100)
    """Nodes to run: without autoscaling it must hold every serving replica (0 scales to zero); with the
    Cluster Autoscaler (autoscaling.enabled) only the size at creation."""
    disk_size_gib: int = Field(200, ge=100, le=16384)
    """Encrypted gp3 volume for images and logs (Bottlerocket: the /dev/xvdb data volume)."""
    metadata_hop_limit: int = Field(1, ge=1, le=64)
    """IMDSv2 hop limit; 1 keeps pods from the node's instance role."""
    local_nvme_raid0: bool = True
    """Assemble instance-store NVMe as RAID0 for kubelet ephemeral storage (AL2023 only)."""
    max_unavailable: int = Field(1, ge=1, le=100)
    """Nodes replaced at once during a node-group update."""
    labels: NodeLabels = Field(default_factory=dict)
    """Extra node labels, up to 50 (nvidia.com/gpu.present and servingstack.io/pool are always set)."""
    release_version: Optional[str] = Field(None, pattern=RELEASE_VERSION)
    """AMI release of the nodes, e.g. "1.35.4-20260423"; unset: the recommended release for the
    cluster version (AWS's SSM parameter), read on every run — a new release replaces the nodes one
    at a time on the next `pulumi up`."""

    @field_validator("instance_type")
    @classmethod
    def _instance(cls, v: str) -> str:
        if v not in catalog.INSTANCE_TYPES:
            raise ValueError(f"is not a known GPU instance type — use one of {', '.join(catalog.INSTANCE_TYPES)}")
        return v

    @model_validator(mode="after")
    def _rules(self) -> "GpuNodePoolConfig":
        check_sizes(self.min_size, self.max_size, self.desired_size)
        if self.capacity_type == "CAPACITY_BLOCK":
            if not self.capacity_reservation_id:
                raise RuleError("capacityReservationId", "is required when capacityType is CAPACITY_BLOCK "
                             "(the cr-... id of the purchased capacity block)")
            if self.instance_type not in catalog.CAPACITY_BLOCK_REGIONS:
                blocks = sorted(catalog.CAPACITY_BLOCK_REGIONS)
                raise RuleError("instanceType", f"'{self.instance_type}' is not sold as a capacity block — use "
                             f"one of {', '.join(blocks)} or capacityType ON_DEMAND/SPOT")
            if not self.availability_zone:
                raise RuleError("availabilityZone", "is required when capacityType is CAPACITY_BLOCK (the "
                             "reservation's availability zone, e.g. us-east-2a)")
        elif self.capacity_reservation_id:
            raise RuleError("capacityReservationId", f"is only used with capacityType CAPACITY_BLOCK, not "
                         f"{self.capacity_type} — remove it or set capacityType: CAPACITY_BLOCK")
        return self

    @property
    def instance(self) -> catalog.GpuInstanceType:
        return catalog.INSTANCE_TYPES[self.instance_type]


class ModelStoreConfig(ConfigModel):
    create: bool = True
    """True: create the bucket. False: adopt the existing bucket `bucketName`."""
    bucket_name: Optional[S3BucketName] = None
    """Bucket name: required when adopting, auto-named when creating and unset."""
    model_prefix: str = Field("models/", pattern=r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/$", max_length=512)
    """Key prefix holding model weights and the Triton repository; the pod role reads only this."""
    kms_key_arn: Optional[KmsKeyArn] = None
    """Adopt only: KMS key of the adopted bucket, for the pods' kms:Decrypt."""
    noncurrent_version_days: int = Field(30, ge=1, le=3650)
    """Days before noncurrent object versions expire."""
    force_destroy: bool = False
    """Let `pulumi destroy` delete a non-empty bucket. Allowed only in dev."""


class DevicePluginConfig(ConfigModel):
    chart_version: ChartVersion = catalog.DEVICE_PLUGIN_CHART_VERSION
    """nvidia-device-plugin Helm chart version."""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    """Device plugin MIG strategy."""
    time_slicing_replicas: int = Field(0, ge=0, le=48)
    """Advertise each GPU this many times (0 = off). Only for dev pools: sharing is not isolation."""
    gpu_feature_discovery: bool = False
    """Install GPU feature discovery (and NFD) for GPU model labels."""
    dcgm_exporter: bool = False
    """Install the DCGM exporter (GPU metrics on :9400) on the GPU pools."""
    dcgm_exporter_chart_version: ChartVersion = catalog.DCGM_EXPORTER_CHART_VERSION
    """dcgm-exporter Helm chart version."""


class SetupHoursConfig(ConfigModel):
    vllm: float = Field(prices.SOURCE_DOCUMENT_SETUP_HOURS["vllm"], ge=0, le=100_000)
    """Engineering hours to set up the vLLM stack (source document: 40 h)."""
    triton: float = Field(prices.SOURCE_DOCUMENT_SETUP_HOURS["triton"], ge=0, le=100_000)
    """Engineering hours to set up the Triton stack (source document: 60 h)."""
    nim: float = Field(prices.SOURCE_DOCUMENT_SETUP_HOURS["nim"], ge=0, le=100_000)
    """Engineering hours to set up the NIM stack (source document: 4 h)."""


class CostConfig(ConfigModel):
    spot_usd_per_hour: Optional[float] = Field(None, gt=0, le=1000)
    """Expected spot price per GPU node-hour (used when capacityType is SPOT)."""
    capacity_block_usd_per_hour: Optional[float] = Field(None, gt=0, le=1000)
    """Capacity block price per GPU node-hour (used when capacityType is CAPACITY_BLOCK)."""
    nim_license_usd_per_gpu_year: float = Field(prices.NIM_LICENSE_USD_PER_GPU_YEAR, ge=0, le=1_000_000)
    """NVIDIA AI Enterprise licence per GPU-year for nim: NVIDIA's list price, $4,500 (2023-11; about $1 per
    GPU-hour in cloud marketplaces). The source document's ~$4,500/month for 2 GPUs is 6x that."""
    nim_license_usd_per_gpu_month: Optional[float] = Field(None, ge=0, le=100_000)
    """Earlier name of the licence rate, per GPU-month; still honoured (x12) when set. Set only one of the two."""
    engineering_usd_per_hour: float = Field(prices.DEFAULT_ENGINEERING_USD_PER_HOUR, ge=0, le=10_000)
    """Loaded engineering rate for the first-year total's setup hours (a round planning figure: set yours)."""
    setup_hours: SetupHoursConfig = Field(default_factory=SetupHoursConfig)
    """Setup engineering hours per stack for the first-year total (defaults: the source document's 40/60/4)."""

    @model_validator(mode="after")
    def _licence(self) -> "CostConfig":
        if self.nim_license_usd_per_gpu_month is not None and "nim_license_usd_per_gpu_year" in self.model_fields_set:
            raise RuleError("nimLicenseUsdPerGpuMonth", f"{self.nim_license_usd_per_gpu_month:g} and "
                            f"nimLicenseUsdPerGpuYear {self.nim_license_usd_per_gpu_year:g} are both set — keep "
                            "only nimLicenseUsdPerGpuYear (the monthly key is its earlier name)")
        return self

    @property
    def nim_license_usd_per_gpu_per_month(self) -> float:
        """The licence per GPU-month this config prices: the monthly key when set, else the yearly / 12."""
        if self.nim_license_usd_per_gpu_month is not None:
            return self.nim_license_usd_per_gpu_month
        return self.nim_license_usd_per_gpu_year / 12


class StackConfig(ConfigModel):
    environment: Environment = EnumField()
    """Environment tier: sets defaults and which rules apply (forceDestroy and time-slicing only in dev)."""
    region: AwsRegion = "us-east-1"
    """AWS region (the AWS provider's own config key)."""
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    """The EKS cluster: create a new one or adopt an existing one."""
    gpu_node_pool: GpuNodePoolConfig = Field(default_factory=GpuNodePoolConfig)
    """The primary GPU node pool (the serving stack's unless serving.nodePool names another)."""
    extra_gpu_node_pools: list[GpuNodePoolConfig] = Field(default_factory=list, max_length=20)
    """Further GPU pools, each shaped like gpuNodePool with its own name."""
    model_store: ModelStoreConfig = Field(default_factory=ModelStoreConfig)
    """S3 bucket for model weights and the Triton model repository."""
    serving: ServingConfig = Field(default_factory=ServingConfig)
    """The serving stack and the engine-neutral settings all three understand."""
    device_plugin: DevicePluginConfig = Field(default_factory=DevicePluginConfig)
    """NVIDIA device plugin and DCGM exporter."""
    cost: CostConfig = Field(default_factory=CostConfig)
    """Rates for the monthly cost estimate."""
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    """The traffic the performance estimate plans for (prompt and output lengths, concurrency, targets)."""
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    """Metrics, dashboards and alerts (kube-prometheus-stack or an existing Prometheus Operator)."""
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    """Replicas that follow the queue (KEDA) and GPU nodes that follow the pods (Cluster Autoscaler)."""
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    """A Job that measures the deployed endpoint with a pinned load generator (off by default)."""
    tags: AwsTags = Field(default_factory=dict)
    """Extra AWS tags for every resource (up to 45; keys 1-128 and values up to 256 characters, no aws:
    prefix; never in launch templates: a tag change recycles no node)."""
    aws: AwsProviderConfig = Field(default_factory=AwsProviderConfig)
    """The AWS provider's `aws:profile` and `aws:assumeRoles`, for the kubeconfig's `aws eks get-token`."""

    @model_validator(mode="after")
    def _cross(self) -> "StackConfig":
        names = [self.gpu_node_pool.name] + [p.name for p in self.extra_gpu_node_pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RuleError("extraGpuNodePools", f"pool name '{dupes[0]}' is used twice — give every pool its own name")
        if self.serving.node_pool is not None and self.serving.node_pool not in names:
            raise RuleError("serving.nodePool", f"'{self.serving.node_pool}' is not a configured pool — use one of "
                         f"{', '.join(names)}")
        if self.cluster.create and not self.cluster.public_access_cidrs:
            raise RuleError("cluster.publicAccessCidrs", "[] — a new cluster with a private-only endpoint cannot be "
                         "reached by the same `pulumi up` that creates its VPC (every Kubernetes resource would "
                         "time out); list the CIDRs your deploy runner egresses from")
        if not self.cluster.create and not self.cluster.name:
            raise RuleError("cluster.name", "is required when cluster.create is false (the existing cluster to adopt)")
        if not self.model_store.create and not self.model_store.bucket_name:
            raise RuleError("modelStore.bucketName", "is required when modelStore.create is false")
        if self.model_store.force_destroy and self.environment != Environment.DEV:
            raise RuleError("modelStore.forceDestroy", f"true is only allowed in dev, not {self.environment} — "
                         "empty the bucket by hand before destroying it")
        if self.device_plugin.time_slicing_replicas and self.environment != Environment.DEV:
            raise RuleError("devicePlugin.timeSlicingReplicas", f"{self.device_plugin.time_slicing_replicas} is only "
                         f"allowed in dev (shared GPUs give no memory isolation), not {self.environment}")
        share = covered_share(self.cluster.public_access_cidrs)
        if self.environment == Environment.PROD and share > self.cluster.public_access_max_share:
            raise RuleError("cluster.publicAccessCidrs", f"{format_value(self.cluster.public_access_cidrs)} together "
                            f"cover {share:.4%} of the IPv4 address space, more than publicAccessMaxShare "
                            f"{self.cluster.public_access_max_share:.4%}: that opens the prod API endpoint to the "
                            "internet — list your VPN or CI egress CIDRs")
        if self.observability.prometheus != "none" and self.observability.namespace == self.serving.namespace:
            raise RuleError("observability.namespace", f"'{self.serving.namespace}' is also serving.namespace: the "
                            "serving namespace is created by servingstack with Pod Security 'restricted', which "
                            "Prometheus' node exporter cannot run under — give monitoring its own namespace")
        pools = [("gpuNodePool", self.gpu_node_pool)] + [(f"extraGpuNodePools.{i}", p)
                                                         for i, p in enumerate(self.extra_gpu_node_pools)]
        for key, p in pools:
            if p.availability_zone and not p.availability_zone[:-1] == self.region:
                raise RuleError(f"{key}.availabilityZone", f"{format_value(p.availability_zone)} is not a zone of "
                                f"aws:region {self.region} — use one of {self.region}a, {self.region}b, ...")
        for i, p in enumerate([self.gpu_node_pool, *self.extra_gpu_node_pools]):
            regions = catalog.CAPACITY_BLOCK_REGIONS.get(p.instance_type, ())
            if p.capacity_type == "CAPACITY_BLOCK" and self.region not in regions:
                key = "gpuNodePool" if i == 0 else f"extraGpuNodePools.{i - 1}"
                raise RuleError(f"{key}.capacityType", f"CAPACITY_BLOCK: capacity blocks of {p.instance_type} are "
                             f"sold in {', '.join(regions)}, not {self.region} (EC2 User Guide, Capacity Blocks "
                             f"for ML, {catalog.CAPACITY_BLOCKS_AS_OF}) — use one of those regions or ON_DEMAND")
        pool = self.serving_pool
        if pool.ami_type.startswith("BOTTLEROCKET") and (
            self.device_plugin.time_slicing_replicas or self.device_plugin.mig_strategy != "none"
        ):
            raise RuleError("devicePlugin.timeSlicingReplicas", "Bottlerocket NVIDIA pools run their bundled device "
                         "plugin; configure sharing in Bottlerocket settings or use AL2023_x86_64_NVIDIA")
        if self.device_plugin.time_slicing_replicas and self.serving.tensor_parallel_size > 1:
            raise RuleError("devicePlugin.timeSlicingReplicas", f"{self.device_plugin.time_slicing_replicas} with "
                         f"serving.tensorParallelSize {self.serving.tensor_parallel_size} — a time-sliced pool hands "
                         "a multi-GPU request slices that may share one GPU (and the plugin, set to fail such "
                         "requests, would refuse the pod) — use tensorParallelSize 1 or no time-slicing")
        check_autoscaling(self)
        check_cooldown(self)
        benchmark_rules(self)
        return self

    @property
    def serving_pool(self) -> GpuNodePoolConfig:
        wanted = self.serving.node_pool or self.gpu_node_pool.name
        for pool in [self.gpu_node_pool, *self.extra_gpu_node_pools]:
            if pool.name == wanted:
                return pool
        raise AssertionError("validated above")

    @property
    def cluster_name(self) -> str:
        return self.cluster.name or default_cluster_name(pulumi_stack_name())


def default_cluster_name(stack: str) -> str:
    """servingstack-<stack>, with every character an EKS cluster name cannot hold ('.' is allowed in
    Pulumi stack names: Pulumi.team.prod.yaml is stack team.prod) replaced by '-'. The loader refuses
    a stack name that makes it longer than EKS's 100 characters."""
    return "servingstack-" + re.sub(r"[^A-Za-z0-9_-]", "-", stack, flags=re.ASCII)


def pulumi_stack_name() -> str:
    try:
        return pulumi.get_stack()
    except Exception:  # noqa: BLE001 - outside a Pulumi run (pure tests)
        return "local"
