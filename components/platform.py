"""ServingPlatform: the composition root wiring cluster, GPU pools, add-ons, storage and one serving
stack from a validated StackConfig. Everything it builds is decided by the config; it holds no logic
beyond choosing and connecting components."""

from typing import Any, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

import sys

from . import config as config_module
from .arguments import check_arguments
from .aws.cluster import EksCluster
from .aws.preflight import Preflight, run_preflight
from .aws.model_store import ModelReadAccess, ModelStore
from .aws.nodepool import GpuNodePool
from .config import GpuNodePoolConfig, StackConfig
from .config.estimate import estimate, performance_output, true_cost_output
from .config.load import whole_numbers
from .config.fields import snake_case
from .config.triton_plan import models_output
from .planning import resources
from .k8s.credentials import HuggingFaceToken, NgcCredentials
from .planning.resources import startup_budget_seconds
from .k8s.device_plugin import NvidiaDevicePlugin
from .operations import Operations
from .serving.benchmark import add_benchmark
from .serving.nim import NimServer
from .serving.triton import TritonServer
from .serving.vllm import VllmServer
from .base import Component

SERVICE_ACCOUNT = "llm-server"


def fixed_tags(cfg: StackConfig) -> dict[str, str]:
    """Tags that never change for a stack: the only ones launch templates put on instances."""
    return {"servingstack.io/environment": str(cfg.environment), "servingstack.io/stack": pulumi.get_stack(),
            "managed-by": "pulumi"}


def default_tags(cfg: StackConfig) -> dict[str, str]:
    return {**fixed_tags(cfg), **cfg.tags}


class ServingPlatformArgs(TypedDict):
    config: dict[str, Any]
    """The stack config as a stack file holds it, keys without the `servingstack:` prefix
    (`environment`, `cluster`, `gpuNodePool`, `modelStore`, `serving`, ...) plus `region` (the
    `aws:region`). Validated exactly as `pulumi up` validates a stack file. Required."""
    ngc_api_key: NotRequired[pulumi.Input[str]]
    """NGC API key (pass a secret); required when `serving.stack` is nim. Default unset."""
    hf_token: NotRequired[pulumi.Input[str]]
    """Hugging Face token (pass a secret); required for vLLM and Triton when a gated model (Llama,
    Mistral) comes from Hugging Face (`serving.weightsSource: huggingface`). Default unset."""


def config_from_args(args: ServingPlatformArgs) -> tuple[StackConfig, dict[str, pulumi.Output[str]], list[str]]:
    """Validate ServingPlatformArgs (the component package's inputs) like a stack file: returns the
    StackConfig, the secrets it needs as secret Outputs, and notices. Raises ConfigError."""
    raw: dict[str, Any] = {}
    for key, value in (args.get("config") or {}).items():
        if key.removeprefix(f"{config_module.NAMESPACE}:") in config_module.SECRET_KEYS:
            secret = key.removeprefix(f"{config_module.NAMESPACE}:")
            raise config_module.ConfigError(secret, f"belongs in the ServingPlatform input `{secret}` (a secret), "
                                                    "not in `config`")
        raw[key if ":" in key else ("aws:region" if key == "region" else f"{config_module.NAMESPACE}:{key}")] = \
            whole_numbers(value)  # protobuf doubles from the component package host
    notices: list[str] = []
    cfg = config_module.parse_stack_config(raw, notices=notices)
    given = {"ngcApiKey": args.get("ngc_api_key"), "hfToken": args.get("hf_token")}
    secrets = {}
    usable = config_module.secret_usable(cfg)
    for key, need in config_module.secret_needed(cfg).items():
        if need and given[key] is None:
            raise config_module.ConfigError(key, "is not set — pass it as the ServingPlatform input "
                                                 f"`{key}` (a secret)")
        if usable[key] and given[key] is not None:
            secrets[key] = pulumi.Output.secret(given[key])
    return cfg, secrets, notices


class ServingPlatform(Component):
    """Everything one environment runs: EKS cluster (created or adopted), GPU node pools, NVIDIA
    device plugin, model store with read-only pod access, credentials, and the chosen serving stack.

    `args` is either a validated StackConfig (Python programs: `ServingPlatform("servingstack",
    load_stack_config())`, secrets from the stack's secret config) or ServingPlatformArgs (the
    component package: a raw config map validated here, secrets as inputs). All outputs are also in
    the `outputs` dict, keyed by their camelCase names."""

    environment: pulumi.Output[str]
    """Environment: dev, staging or prod."""
    cluster_name: pulumi.Output[str]
    """Name of the EKS cluster."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig JSON of the cluster (secret)."""
    serving_stack: pulumi.Output[str]
    """Serving stack: vllm, triton or nim."""
    model: pulumi.Output[str]
    """Model id being served."""
    namespace: pulumi.Output[str]
    """Kubernetes namespace of the serving workload."""
    endpoint: pulumi.Output[str]
    """In-cluster base URL of the server, http://<service>.<namespace>.svc.cluster.local:8000."""
    openai_base_url: pulumi.Output[str]
    """OpenAI-compatible base URL (`endpoint` + /v1); absent for Triton."""
    model_store_bucket: pulumi.Output[str]
    """Name of the model-store S3 bucket."""
    model_store_access: pulumi.Output[str]
    """How pods read the model store: pod-identity or irsa."""
    device_plugin: pulumi.Output[str]
    """What the NVIDIA device plugin component installed, or why nothing."""
    gpu_summary: pulumi.Output[dict[str, Any]]
    """instanceType, gpusPerReplica, replicas, gpuNodes, gpuMemoryGibPerGpu, gpusPaid, gpusUsed, idleGpus."""
    performance: pulumi.Output[dict[str, Any]]
    """Plan-time performance estimate at servingstack:workload: workload, itlFloorMs, itlExpectedMs,
    ttftExpectedMs, outputTokensPerSecond, totalTokensPerSecond, kvConcurrency, usdPerMillionOutputTokens
    (per replica), environment (the same for all replicas) and warnings."""
    triton_models: pulumi.Output[list[dict[str, Any]]]
    """Triton with serving.triton.models only: each model of the repository (the LLM first) with its
    kind, endpoint path, served versions (and per-version paths), GPUs and GPU memory per GPU
    (gpuMemoryGibPerGpu, gpuShare of one GPU)."""
    kv_cache_tokens: pulumi.Output[int]
    """Estimated KV-cache capacity per replica, tokens."""
    max_concurrent_sequences: pulumi.Output[int]
    """Full-length sequences the KV cache holds at once per replica."""
    benchmark: pulumi.Output[dict[str, Any]]
    """With servingstack:benchmark enabled: jobName, namespace, runId, resultsUri (s3://<bucket>/benchmarks/<stack>/),
    tool, sweep (concurrencies) and the report command."""
    monthly_cost_usd: pulumi.Output[float]
    """Estimated monthly cost of the GPU nodes (and NIM licences), USD."""
    monthly_cost_breakdown: pulumi.Output[dict[str, Any]]
    """gpuComputeUsd, softwareLicenseUsd, nodes, hourlyRateUsd, rateSource, extraGpuPoolsUsd, fixed (EKS
    control plane, NAT, system nodes, volumes, model storage with rates and dates), environmentUsd,
    idleGpuUsd, packed, setupHours, firstYearUsd, excludes."""
    kubernetes_version: pulumi.Output[str]
    """Kubernetes version of the cluster (configured, or the adopted cluster's)."""
    availability_zones: pulumi.Output[dict[str, str]]
    """New clusters: zone name -> zone id of the cluster's zones (pin the ids in cluster.availabilityZoneIds)."""
    quota_needs: pulumi.Output[dict[str, Any]]
    """Service Quotas code -> {name, vcpus, quota}: vCPUs the GPU pools can run at maxSize (update
    surge included; none with MINIMAL) and the account's quota when known (null offline)."""

    def __init__(self, name: str, args: ServingPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Fail before building: secrets the stack needs are checked before the first registration.
        if isinstance(args, StackConfig):
            cfg = args
            needed = config_module.secret_needed(cfg)
            secrets = {key: config_module.require_secret(key) for key, need in needed.items() if need}
            for key, usable in config_module.secret_usable(cfg).items():
                if usable and key not in secrets:
                    value = config_module.optional_secret(key)
                    if value is not None:
                        secrets[key] = value
        else:
            check_arguments(type(self), name, args, opts)
            cfg, secrets, notices = config_from_args(args)
            for notice in notices:
                pulumi.log.warn(notice)
        plan = estimate(cfg)
        # What AWS answers decides before anything is registered: zones, versions, quotas, an
        # adopted cluster's OIDC provider and subnets (and, on a real run, placeholders).
        pre = run_preflight(cfg)
        for notice in pre.notices:
            print(notice, file=sys.stderr)
        super().__init__("servingstack:index:ServingPlatform", name, opts)
        tags = default_tags(cfg)
        child = self.child_opts()
        c = cfg.cluster
        zones = pre.zones
        cluster = EksCluster("cluster", {
            "cluster_name": cfg.cluster_name, "region": cfg.region, "create": c.create, "version": c.version,
            "support_type": c.support_type, "vpc_cidr": c.vpc_cidr,
            **({"availability_zones": [z.name for z in zones.cluster_zones],
                "required_zones": [z.name for z in zones.extra_zones],
                "system_zones": zones.pool_zones["cluster.systemNodePool"]} if zones else {}),
            "single_nat_gateway": c.single_nat_gateway, "public_access_cidrs": c.public_access_cidrs,
            "admin_principal_arns": c.admin_principal_arns, "log_types": list(c.log_types),
            "log_retention_days": c.log_retention_days, "addon_versions": pre.addon_versions,
            "system_instance_type": c.system_node_pool.instance_type, "system_min_size": c.system_node_pool.min_size,
            "system_max_size": c.system_node_pool.max_size, "system_desired_size": c.system_node_pool.desired_size,
            **({"system_release_version": pre.release_versions["cluster.systemNodePool"]}
               if pre.release_versions.get("cluster.systemNodePool") else {}),
            "pod_identity": c.pod_identity, **({"subnet_ids": c.subnet_ids} if c.subnet_ids else {}),
            "protect": str(cfg.environment) == "prod", "tags": tags, "instance_tags": fixed_tags(cfg),
            **({"aws_profile": cfg.aws.profile} if cfg.aws.profile else {}),
            **({"aws_role_arn": cfg.aws.assume_role_arn} if cfg.aws.assume_role_arn else {}),
        }, opts=child)
        # Nodes join only once the VPC CNI runs and their subnets have egress (created by
        # EksCluster; nothing when adopting).
        after_cluster = self.child_opts(depends_on=cluster.node_prerequisites)
        startup = cfg.serving.startup_seconds or startup_budget_seconds(plan.fit.weights_gib)
        pools = {p.name: self._pool(cfg, key, p, cluster, pre, tags, fixed_tags(cfg),
                                    startup if p is cfg.serving_pool else None, after_cluster)
                 for key, p in gpu_pool_keys(cfg)}
        pool = pools[cfg.serving_pool.name]

        k8s_opts = self.child_opts(providers={"kubernetes": cluster.provider})
        ops = Operations(cfg, cluster, pools, tags, k8s_opts)
        device_pools = [p.name for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools]
                        if not p.ami_type.startswith("BOTTLEROCKET")]
        dp = cfg.device_plugin
        plugin = NvidiaDevicePlugin("device-plugin", {
            "pool_names": device_pools,
            **({} if device_pools else {"skip_reason": "every GPU pool runs Bottlerocket NVIDIA, whose AMI "
                                                        "bundles the device plugin"}),
            "chart_version": dp.chart_version, "mig_strategy": dp.mig_strategy,
            "time_slicing_replicas": dp.time_slicing_replicas, "gpu_feature_discovery": dp.gpu_feature_discovery,
            "dcgm_exporter": dp.dcgm_exporter, "dcgm_exporter_chart_version": dp.dcgm_exporter_chart_version,
            # GPU metrics on every GPU pool, Bottlerocket ones included.
            "metrics_pool_names": [p.name for p in [cfg.gpu_node_pool, *cfg.extra_gpu_node_pools]],
            **ops.device_plugin_args(),
        }, opts=ops.after_monitoring(k8s_opts))

        s = cfg.serving
        namespace = k8s.core.v1.Namespace("serving-namespace", metadata=k8s.meta.v1.ObjectMetaArgs(
            name=s.namespace, labels={
                # Every serving pod meets the restricted Pod Security Standard; enforce it.
                "pod-security.kubernetes.io/enforce": "restricted",
                "app.kubernetes.io/part-of": "servingstack"}),
            opts=k8s_opts)
        ms = cfg.model_store
        store = ModelStore("model-store", {
            "create": ms.create, **({"bucket_name": ms.bucket_name} if ms.bucket_name else {}),
            **({"kms_key_arn": ms.kms_key_arn} if ms.kms_key_arn else {}),
            "noncurrent_version_days": ms.noncurrent_version_days, "force_destroy": ms.force_destroy,
            "protect": str(cfg.environment) == "prod", "tags": tags,
        }, opts=child)
        # Triton's S3 client is known to work with IRSA; Pod Identity is unconfirmed for it.
        use_pod_identity = c.pod_identity and s.stack != "triton"
        access = ModelReadAccess("model-read", {
            "cluster_name": cluster.cluster_name, "namespace": s.namespace, "service_account": SERVICE_ACCOUNT,
            "bucket_arn": store.bucket_arn, "kms_key_arn": store.kms_key_arn, "model_prefix": ms.model_prefix,
            "use_pod_identity": use_pod_identity, "oidc_provider_arn": cluster.oidc_provider_arn,
            "oidc_issuer_url": cluster.oidc_issuer_url,
            # Triton's S3 client calls HeadBucket, authorised as an s3:ListBucket with no prefix.
            "allow_bucket_listing": s.stack == "triton", "region": cfg.region, "tags": tags,
        }, opts=child)

        # Pods get Pod Identity/IRSA credentials only if their role exists when they are admitted, and
        # Triton's repository must land in the bucket after its SSE-KMS configuration.
        serving_deps: list[pulumi.Resource] = [namespace, plugin, pool, access, store]
        cpu_per_gpu, memory_gib_per_gpu = config_module.pod_resources(cfg)
        common = {
            "namespace": s.namespace, "model": s.model, "node_labels": pool.labels, "tolerations": pool.tolerations,
            "replicas": s.replicas, "tensor_parallel_size": s.tensor_parallel_size, "max_model_len": s.max_model_len,
            "gpu_memory_utilization": s.gpu_memory_utilization, "max_num_seqs": s.max_num_seqs,
            "enable_prefix_caching": s.enable_prefix_caching, "dtype": s.dtype,
            **({"quantization": s.quantization} if s.quantization else {}),
            **({"served_model_name": s.served_model_name} if s.served_model_name else {}),
            "instance_type": cfg.serving_pool.instance_type,
            "local_nvme": pool.local_nvme, "cpu_per_gpu": cpu_per_gpu, "memory_gib_per_gpu": memory_gib_per_gpu,
            "weights_gib": plan.fit.weights_gib,
            **({"startup_seconds": s.startup_seconds} if s.startup_seconds else {}),
            "service_name": s.service_name, "service_account": SERVICE_ACCOUNT,
            "service_account_annotations": access.service_account_annotations,
            "allowed_namespaces": s.allowed_namespaces, "hard_spread": s.spread == "hard",
            **ops.serving_args(),
            "spare_replica_slots": spare_replica_slots(cfg), "parallel_replacement": second_set_fits(cfg),
            **({"drain_seconds": s.drain_seconds} if s.drain_seconds else {}),
        }
        if "hfToken" in secrets:
            hf = HuggingFaceToken("hf-token", {"namespace": s.namespace, "token": secrets["hfToken"]},
                                  opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])))
            serving_deps.append(hf)
            if s.stack != "nim":  # NIM downloads with its NGC key; the token is the benchmark's tokenizer's
                common["hf_token_secret"] = "hf-token"
        serving_opts = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=serving_deps))
        if s.stack == "vllm":
            server = VllmServer("serving", {
                **common, **({"image": s.vllm.image} if s.vllm.image else {}),
                "kv_cache_dtype": s.vllm.kv_cache_dtype,
                **({"load_format": s.vllm.load_format} if s.vllm.load_format else {}),
                **({"model_uri": store.bucket_name.apply(lambda b: f"s3://{b}/{ms.model_prefix}{s.model}/")}
                   if s.weights_source == "s3" else {}),
                **({"speculative_model": s.vllm.speculative_model,
                    "num_speculative_tokens": s.vllm.num_speculative_tokens} if s.vllm.speculative_model else {}),
                **({"enable_chunked_prefill": s.vllm.enable_chunked_prefill}
                   if s.vllm.enable_chunked_prefill is not None else {}),
                "extra_args": s.vllm.extra_args, "region": cfg.region,
                **({"release": s.vllm.release} if s.vllm.release else {}),
            }, opts=serving_opts)
        elif s.stack == "triton":
            server = TritonServer("serving", {
                **common, **({"image": s.triton.image} if s.triton.image else {}),
                "bucket_name": store.bucket_name, "repository_prefix": f"{ms.model_prefix}triton/",
                "model_name": s.triton.model_name, "repository_poll_seconds": s.triton.repository_poll_seconds,
                "region": cfg.region,
                **({"models": [m.model_dump(exclude_none=True) for m in s.triton.models]} if s.triton.models else {}),
            }, opts=serving_opts)
        else:
            # NIM 2.x public models run without an NGC key: credentials only when one is given.
            ngc = NgcCredentials("ngc", {"namespace": s.namespace, "api_key": secrets["ngcApiKey"]},
                                 opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
                                 ) if "ngcApiKey" in secrets else None
            server = NimServer("serving", {
                **common, **({"image": s.nim.image} if s.nim.image else {}),
                **({"model_profile": s.nim.model_profile} if s.nim.model_profile else {}),
                **({"release": s.nim.release} if s.nim.release else {}),
                **({"pull_secret_name": ngc.pull_secret_name, "api_secret_name": ngc.api_secret_name} if ngc else {}),
            }, opts=pulumi.ResourceOptions.merge(serving_opts, pulumi.ResourceOptions(
                depends_on=[*serving_deps, *([ngc] if ngc else [])])))

        ops.serve(server, namespace)

        bench = add_benchmark(cfg, pulumi.get_stack(), cluster, store, server, "hfToken" in secrets, tags,
                              self.child_opts(), self.child_opts(providers={"kubernetes": cluster.provider})
                              ) if cfg.benchmark.enabled else None

        cost = plan.cost
        self.outputs = {
            "environment": str(cfg.environment),
            "clusterName": cluster.cluster_name,
            "kubeconfig": cluster.kubeconfig,
            "servingStack": str(s.stack),
            "model": s.model,
            "namespace": s.namespace,
            "endpoint": server.endpoint,
            "openaiBaseUrl": server.endpoint.apply(lambda e: f"{e}/v1") if s.stack != "triton" else None,
            "modelStoreBucket": store.bucket_name,
            "modelStoreAccess": access.mode,
            "devicePlugin": plugin.status,
            "gpuSummary": {
                "instanceType": cfg.serving_pool.instance_type, "gpusPerReplica": plan.gpus_per_replica,
                "replicas": s.replicas, "gpuNodes": plan.gpu_nodes,
                "gpuMemoryGibPerGpu": cfg.serving_pool.instance.gpu_memory_gib,
                "gpusPaid": plan.gpu_use.gpus_paid, "gpusUsed": plan.gpu_use.gpus_used,
                "idleGpus": plan.gpu_use.idle_gpus,
            },
            "performance": performance_output(plan, cfg),
            "benchmark": bench,
            "kvCacheTokens": plan.fit.kv_cache_tokens,
            "maxConcurrentSequences": plan.fit.max_concurrent_sequences,
            "tritonModels": models_output(cfg),
            "monthlyCostUsd": round(cost.total_usd, 2),
            "monthlyCostBreakdown": {
                "gpuComputeUsd": round(cost.gpu_compute_usd, 2), "softwareLicenseUsd": round(cost.license_usd, 2),
                "nodes": cost.nodes, "hourlyRateUsd": cost.hourly_rate_usd, "rateSource": cost.rate_source,
                "extraGpuPoolsUsd": round(plan.extra_pools_usd, 2),
                **true_cost_output(plan),
                "excludes": "monthlyCostUsd is the serving pool and licences only; environmentUsd adds extra GPU "
                            "pools and the fixed lines; data transfer and NAT per-GB processing are not priced",
            },
            "kubernetesVersion": pre.version,
            "availabilityZones": {z.name: z.zone_id for z in zones.cluster_zones} if zones else None,
            "quotaNeeds": {q.code: {"name": q.name, "vcpus": q.vcpus, "quota": q.quota, "pools": list(q.pools)}
                           for q in pre.quota_needs},
        }
        self.outputs.update(ops.outputs())
        self.outputs = {k: v for k, v in self.outputs.items() if v is not None}
        for key, value in self.outputs.items():  # the annotated outputs, for the component package
            setattr(self, snake_case(key), pulumi.Output.from_input(value))
        self.register_outputs(self.outputs)

    def _pool(self, cfg: StackConfig, key: str, p: GpuNodePoolConfig, cluster: EksCluster, pre: Preflight,
              tags: dict[str, str], instance_tags: dict[str, str], startup_seconds: Optional[int],
              opts: pulumi.ResourceOptions) -> GpuNodePool:
        if pre.zones is not None:
            wanted = pre.zones.pool_zones[key]
            subnets = cluster.zone_subnet_ids.apply(lambda m: [m[z] for z in wanted])
        else:
            subnets = pulumi.Output.from_input(pre.pool_subnets[key])
        return GpuNodePool(f"pool-{p.name}", {
            "cluster_name": cluster.cluster_name, "subnet_ids": subnets, "pool_name": p.name,
            "instance_type": p.instance_type, "ami_type": p.ami_type, "capacity_type": p.capacity_type,
            **({"capacity_reservation_id": p.capacity_reservation_id} if p.capacity_reservation_id else {}),
            "min_size": p.min_size, "max_size": p.max_size, "desired_size": p.desired_size,
            "disk_size_gib": p.disk_size_gib, "metadata_hop_limit": p.metadata_hop_limit,
            "local_nvme_raid0": p.local_nvme_raid0, "max_unavailable": p.max_unavailable, "labels": p.labels,
            "kubernetes_version": pre.version,
            **({"release_version": pre.release_versions[key]} if pre.release_versions.get(key) else {}),
            **({"startup_seconds": startup_seconds} if startup_seconds else {}),
            "tags": tags, "instance_tags": instance_tags,
            **({"cluster_autoscaler": True} if config_module.node_autoscaled(cfg, p) else {}),
        }, opts=opts)


def _pool_shape(cfg: StackConfig) -> Optional[tuple[int, int, int, int, bool]]:
    """(replicas, GPUs per replica, advertised GPUs per node, nodes, hard spread) of the serving
    pool at its fullest: with autoscaling, maxReplicas replicas on maxSize nodes (the node autoscaler,
    installed or the cluster's own, adds a node for a pending surge pod); without, replicas on
    desiredSize nodes. None for MIG pools, whose slice counts the config cannot know."""
    pool, s, dp, auto = cfg.serving_pool, cfg.serving, cfg.device_plugin, cfg.autoscaling
    if dp.mig_strategy != "none":
        return None
    replicas = auto.max_replicas if auto.enabled else s.replicas
    nodes = pool.max_size if auto.enabled else pool.desired_size
    return (replicas, s.tensor_parallel_size, pool.instance.gpus * max(1, dp.time_slicing_replicas),
            nodes, s.spread == "hard")


def spare_replica_slots(cfg: StackConfig) -> int:
    shape = _pool_shape(cfg)
    return resources.spare_replica_slots(*shape) if shape else 0


def second_set_fits(cfg: StackConfig) -> bool:
    shape = _pool_shape(cfg)
    return resources.second_set_fits(*shape) if shape else False


def gpu_pool_keys(cfg: StackConfig) -> list[tuple[str, GpuNodePoolConfig]]:
    from .aws.preflight import gpu_pools

    return gpu_pools(cfg)
